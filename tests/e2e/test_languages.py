"""Every moment knows its language, and a search can ask for one: speech from the recogniser,
text (documents, on-screen and image text) identified when it is embedded."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from medialens.domain.assets import AssetStatus
from medialens.domain.search import SearchFilters, SearchQuery
from medialens.local.runtime import LocalRuntime

from .conftest import assets_by_file_name, fast_settings, ingest_and_wait

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPOKEN = {
    # Spanish: Whisper hears espeak-ng's Swedish voice as Latin (language ID is issue 15's next part).
    "tren-es.wav": ("es", "El tren a Madrid salió de la estación muy temprano por la mañana."),
    "tag-en.wav": ("en", "The train to Gothenburg left the station early in the morning."),
}
WRITTEN = {
    "notes-de.txt": ("de", "Der Zug nach Hamburg verließ den Bahnhof früh am Morgen, pünktlich um sechs Uhr."),
}


def test_moments_carry_their_language_and_searches_filter_by_it(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    for name, (voice, text) in SPOKEN.items():
        subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(media / name), text], check=True)
    for name, (_, text) in WRITTEN.items():
        (media / name).write_text(text + "\n", encoding="utf-8")
    runtime = start_runtime(fast_settings(visibility_timeout_s=60, max_receive_count=3))
    uploaded, assets = ingest_and_wait(runtime, [media], timeout_s=300)
    by_name = assets_by_file_name(uploaded, assets)
    for name, asset in by_name.items():
        assert asset.status is AssetStatus.SUCCEEDED, f"{name}: {asset.stage} {asset.error_reason}"
    assert runtime.services is not None
    index, search = runtime.services.index, runtime.services.search

    expected = {name: language for name, (language, _) in (SPOKEN | WRITTEN).items()}
    for name, language in expected.items():
        moments = index.asset_moments(by_name[name].asset_id, 10)
        assert moments and {m.language for m in moments} == {language}, name
        assert by_name[name].quality.language in (language, None)  # text files record none

    def found(text: str, languages: list[str] | None) -> set[str]:
        query = SearchQuery(text=text, k=10, filters=SearchFilters(languages=languages))
        return {hit.source.rsplit("/", 1)[1] for hit in search.search(query).hits}

    assert found("train station early morning", None) >= {"tag-en.wav"}
    assert found("tren estación mañana", ["es"]) == {"tren-es.wav"}
    assert found("Zug Bahnhof Morgen", ["de"]) == {"notes-de.txt"}
    assert found("Zug Bahnhof Morgen", ["es", "en"]) <= {"tren-es.wav", "tag-en.wav"}
    assert found("train station early morning", ["fi"]) == set()
