"""The asset's spoken language: which windows are listened to, how their probabilities decide,
and the uploader's hint as S3 metadata."""

from __future__ import annotations

import pytest

from medialens.domain.assets import LANGUAGE_METADATA, SourceObject, UploadOptions
from medialens.domain.steps import AudioChunkRef, LanguageWindow
from medialens.pipeline.audio import decide_language, language_windows

pytestmark = pytest.mark.unit


def chunks(count: int) -> list[AudioChunkRef]:
    return [
        AudioChunkRef(index=i, uri=f"s3://a/chunk-{i}.wav", start=90.0 * i, end=90.0 * (i + 1)) for i in range(count)
    ]


def window(start: float, language: str, probability: float) -> LanguageWindow:
    return LanguageWindow(start=start, end=start + 30.0, language=language, probability=probability)


def test_windows_spread_over_the_whole_recording() -> None:
    assert [c.index for c in language_windows(chunks(10), 4)] == [0, 3, 6, 9]
    assert [c.index for c in language_windows(chunks(3), 4)] == [0, 1, 2]
    assert [c.index for c in language_windows(chunks(5), 1)] == [2]
    assert language_windows([], 4) == []


def test_the_language_the_windows_agree_on_is_decided() -> None:
    windows = [window(0, "sv", 0.9), window(90, "sv", 0.8), window(180, "no", 0.5)]
    spoken = decide_language(
        windows, [{"sv": 0.9, "no": 0.1}, {"sv": 0.8, "no": 0.2}, {"no": 0.5, "sv": 0.45, "da": 0.05}], 0.5
    )
    assert (spoken.language, spoken.source, spoken.windows) == ("sv", "detected", windows)
    assert spoken.probability == pytest.approx((0.9 + 0.8 + 0.45) / 3, abs=1e-4)


def test_windows_that_disagree_leave_it_to_each_chunk() -> None:
    """A recording in two languages: no language reaches the minimum, so none is forced on it."""
    windows = [window(0, "en", 0.95), window(90, "es", 0.9)]
    spoken = decide_language(windows, [{"en": 0.95, "es": 0.05}, {"es": 0.9, "en": 0.1}], 0.6)
    assert spoken.language is None and spoken.source == "undecided"
    assert spoken.probability == pytest.approx(0.525)


def test_no_speech_decides_nothing() -> None:
    spoken = decide_language([], [], 0.5)
    assert (spoken.language, spoken.source, spoken.probability) == (None, "no speech", 0.0)


def test_the_hint_travels_as_metadata_and_sets_the_revision_apart() -> None:
    options = UploadOptions(language="sv")
    assert options.as_metadata() == {LANGUAGE_METADATA: "sv"}
    assert UploadOptions.from_metadata({LANGUAGE_METADATA: " SV "}) == options
    plain = SourceObject(bucket="b", key="incoming/a.wav", etag="e", size=1)
    hinted = plain.model_copy(update={"options": options})
    assert plain.revision != hinted.revision  # another analysis of the same bytes: another asset


@pytest.mark.parametrize("bad", ["swedish", "s", "s1", "sv-SE"])
def test_a_malformed_hint_is_refused_in_code_and_ignored_in_metadata(bad: str) -> None:
    with pytest.raises(ValueError, match="ISO 639-1"):
        UploadOptions(language=bad)
    assert UploadOptions.from_metadata({LANGUAGE_METADATA: bad}).language is None
