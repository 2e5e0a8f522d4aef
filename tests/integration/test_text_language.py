"""The embedded profile keeps the language model unpacked in the model cache: the copy gives the
packaged model's answers, a damaged copy is replaced, a cache that cannot be written only costs
the unpacking, and the AWS profile never writes one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medialens.ml import language
from medialens.settings import get_settings

pytestmark = pytest.mark.integration

TEXTS = (
    "How much paid leave do staff get each year?",
    "hur många semesterdagar får personalen varje år",
    "Wie viele Urlaubstage bekommen die Mitarbeiter?",
    "東京の天気はどうですか",
    "ok",
)


@pytest.fixture
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MEDIALENS_MODEL_CACHE", str(tmp_path / "models"))
    get_settings.cache_clear()
    language._identifier.cache_clear()
    yield tmp_path / "models"
    language._identifier.cache_clear()


def _packaged() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _unpack_again() -> Any:
    language._identifier.cache_clear()
    return language._identifier()


def test_the_unpacked_copy_answers_as_the_packaged_model(model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = language._identifier()
    (copy,) = (model_cache / "py3langid").glob("model-*.npz")
    assert not list((model_cache / "py3langid").glob(".*"))  # nothing staged left behind

    import py3langid.modelio  # type: ignore[import-untyped]

    def unpacked_again(path: Path) -> None:
        raise AssertionError(f"unpacked {path} again")

    monkeypatch.setattr(py3langid.modelio, "load_model", unpacked_again)
    second = _unpack_again()
    reference = _packaged()
    for identifier in (first, second):
        assert identifier.nb_classes == reference.nb_classes
        assert np.array_equal(identifier.nb_ptc, reference.nb_ptc) and identifier.nb_ptc.dtype == reference.nb_ptc.dtype
        assert np.array_equal(identifier.nb_pc, reference.nb_pc)
        assert identifier.tk_nextmove == reference.tk_nextmove and identifier.tk_row == reference.tk_row
        assert identifier.tk_output == reference.tk_output
        assert [identifier.classify(text) for text in TEXTS] == [reference.classify(text) for text in TEXTS]
    assert language.guess_language(TEXTS[0]) == "en" and language.guess_language(TEXTS[1]) == "sv"
    assert copy.exists()


def test_a_damaged_copy_is_replaced(model_cache: Path) -> None:
    language._identifier()
    (copy,) = (model_cache / "py3langid").glob("model-*.npz")
    copy.write_bytes(copy.read_bytes()[: 1 << 20])  # truncated
    assert _unpack_again().classify(TEXTS[1]) == _packaged().classify(TEXTS[1])
    assert _unpack_again().tk_output == _packaged().tk_output  # read from the rewritten copy


def test_a_cache_that_cannot_be_written_unpacks_each_time(model_cache: Path) -> None:
    model_cache.mkdir(parents=True)
    (model_cache / "py3langid").write_text("a file where the folder would go", encoding="utf-8")
    assert language.guess_language(TEXTS[0]) == "en"
    assert _unpack_again().classify(TEXTS[1]) == _packaged().classify(TEXTS[1])


def test_the_aws_profile_reads_a_copy_but_never_writes_one(model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIALENS_PROFILE", "aws")
    get_settings.cache_clear()
    assert language.guess_language(TEXTS[0]) == "en"
    assert not (model_cache / "py3langid").exists()
