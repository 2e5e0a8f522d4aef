"""Every moment knows its language, and a search can ask for one: speech from the recogniser,
text (documents, on-screen and image text) identified when it is embedded. A question in one
language finds what was said or written in another."""

from __future__ import annotations

import subprocess
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medialens.domain.assets import AssetStatus, UploadOptions
from medialens.domain.search import SearchFilters, SearchMode, SearchQuery
from medialens.local.runtime import LocalRuntime
from medialens.local.uploads import plan_uploads, upload

from .conftest import assets_by_file_name, fast_settings, ingest_and_wait

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPOKEN = {
    # (language, words per minute, text): voices and speeds whose language Whisper base tells from
    # espeak-ng's synthetic speech (its German, French, Swedish and Dutch it mostly does not).
    "tren-es.wav": ("es", 140, "El tren a Madrid salió de la estación muy temprano por la mañana."),
    "tag-en.wav": ("en", 140, "The train to Gothenburg left the station early in the morning."),
    "treno-it.wav": ("it", 120, "Il museo apre alle dieci e chiude alle sei di sera, anche la domenica."),
}
WRITTEN = {
    "notes-de.txt": ("de", "Der Zug nach Hamburg verließ den Bahnhof früh am Morgen, pünktlich um sechs Uhr."),
    "rathaus-fr.txt": ("fr", "La mairie restera fermée lundi toute la journée en raison de la fête nationale."),
    # Distractors in the answers' languages: a cross-language hit must beat same-language text.
    "weather-en.txt": ("en", "The weather in Lisbon stayed warm and sunny for the whole week of the festival."),
    "budget-es.txt": ("es", "El presupuesto del departamento de finanzas aumentó un diez por ciento este año."),
}


def test_moments_carry_their_language_and_searches_filter_by_it(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    for name, (voice, speed, text) in SPOKEN.items():
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(media / name), text], check=True)
    for name, (_, text) in WRITTEN.items():
        (media / name).write_text(text + "\n", encoding="utf-8")
    runtime = start_runtime(fast_settings(visibility_timeout_s=60, max_receive_count=3))
    uploaded, assets = ingest_and_wait(runtime, [media], timeout_s=300)
    by_name = assets_by_file_name(uploaded, assets)
    for name, asset in by_name.items():
        assert asset.status is AssetStatus.SUCCEEDED, f"{name}: {asset.stage} {asset.error_reason}"
    assert runtime.services is not None
    index, search = runtime.services.index, runtime.services.search

    expected = {name: spec[0] for name, spec in (SPOKEN | WRITTEN).items()}
    for name, language in expected.items():
        moments = index.asset_moments(by_name[name].asset_id, 10)
        assert moments and {m.language for m in moments} == {language}, name
        assert by_name[name].quality.language in (language, None)  # text files record none

    def found(text: str, languages: list[str] | None) -> set[str]:
        query = SearchQuery(text=text, k=10, filters=SearchFilters(languages=languages))
        return {hit.source.rsplit("/", 1)[1] for hit in search.search(query).hits}

    assert found("train station early morning", None) >= {"tag-en.wav"}
    assert found("tren estación mañana", ["es"]) == {"tren-es.wav", "budget-es.txt"}
    assert found("Zug Bahnhof Morgen", ["de"]) == {"notes-de.txt"}
    assert found("Zug Bahnhof Morgen", ["es", "en"]) <= {
        name for name, lang in expected.items() if lang in ("es", "en")
    }
    assert found("train station early morning", ["fi"]) == set()

    def best(text: str, languages: list[str] | None = None) -> tuple[str, float | None, float | None]:
        query = SearchQuery(text=text, k=1, mode=SearchMode.SEMANTIC, filters=SearchFilters(languages=languages))
        (hit,) = search.search(query).hits
        return hit.source.rsplit("/", 1)[1], hit.start, hit.end

    # English questions find Spanish and Italian speech, with the time it was said.
    for question, name, language in [
        ("Which train left early in the morning for Madrid?", "tren-es.wav", "es"),
        ("What time does the museum open on Sunday?", "treno-it.wav", "it"),
    ]:
        found_name, start, end = best(question, [language])
        assert found_name == name, question
        with wave.open(str(media / name)) as spoken:
            duration = spoken.getnframes() / spoken.getframerate()
        assert start is not None and end is not None and 0.0 <= start < end <= duration + 0.5
    assert best("When is the town hall closed?", ["fr"])[0] == "rathaus-fr.txt"
    # Foreign questions find English content, and the answer beats the same-language distractor.
    assert best("¿Qué tiempo hizo en Lisboa durante el festival?", ["en"])[0] == "weather-en.txt"
    assert best("Welcher Zug fuhr früh am Morgen nach Göteborg?", ["en"])[0] == "tag-en.wav"
    # Unfiltered, the Spanish answer ranks beside the English sentence that differs by one city
    # (English moments are ranked by both encoders, the Spanish one by the multilingual alone).
    query = SearchQuery(text="Which train left early in the morning for Madrid?", k=2, mode=SearchMode.SEMANTIC)
    assert {hit.source.rsplit("/", 1)[1] for hit in search.search(query).hits} == {"tren-es.wav", "tag-en.wav"}


ENGLISH = (
    "Good morning, today we talk about the new robots in the warehouse and how they change our work. "
    "The robots carry the shelves to the packing stations, so nobody walks the long aisles any more."
)
SPANISH = (
    "Buenos días, hoy hablamos de los nuevos robots en el almacén y de cómo cambian nuestro trabajo. "
    "Los robots llevan las estanterías a las estaciones de embalaje, así nadie camina por los pasillos."
)


def _speak(path: Path, voice: str, text: str, speed: int = 150) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)


def test_the_spoken_language_is_identified_once_per_asset_and_a_hint_overrides_it(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    _speak(media / "robots-es.wav", "es", SPANISH)
    # Speech that fits in one chunk: the chunk identifies it as it is transcribed (no extra pass).
    _speak(media / "short-en.wav", "en-us", "The robots carry the shelves.")
    # Two languages, one after the other, in chunks of about 10 s: windows that disagree leave the
    # language to each chunk (code-switching), so both languages are transcribed as spoken.
    _speak(tmp_path / "en.wav", "en-us", ENGLISH)
    _speak(tmp_path / "es.wav", "es", SPANISH)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(tmp_path / "en.wav"), "-i", str(tmp_path / "es.wav"),
         "-filter_complex", "[0:a][1:a]concat=n=2:v=0:a=1", str(media / "mixed-en-es.wav")],
        check=True,
    )  # fmt: skip
    # No speech at all, and a tone: nothing to identify, nothing to transcribe, no failure.
    for name, source in (
        ("silence.wav", "anullsrc=r=16000:cl=mono"),
        ("tone.wav", "sine=frequency=440:sample_rate=16000"),
    ):
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-t", "8", str(media / name)], check=True)
    hinted = tmp_path / "hinted"
    hinted.mkdir()
    _speak(hinted / "tag-sv.wav", "sv", "Tåget till Göteborg lämnade stationen tidigt på morgonen.", 140)

    runtime = start_runtime(fast_settings(visibility_timeout_s=60, max_receive_count=3, speech_chunk_seconds=10.0))
    uploaded, assets = ingest_and_wait(runtime, [media], timeout_s=300)
    assert runtime.services is not None
    services = runtime.services
    plan, _ = plan_uploads([hinted], runtime.settings.drop_prefix)
    (hint_upload,) = upload(services, plan, options=UploadOptions(language="sv"))
    (hinted_asset,) = runtime.wait_for([hint_upload.asset_id], timeout_s=300)
    by_name = assets_by_file_name(uploaded, assets) | {"tag-sv.wav": hinted_asset}
    for name, asset in by_name.items():
        assert asset.status is AssetStatus.SUCCEEDED, f"{name}: {asset.stage} {asset.error_reason}"

    def spoken(name: str) -> dict[str, Any]:
        stored = services.registry.get(by_name[name].asset_id)
        assert stored is not None
        decided: dict[str, Any] = stored.metadata["spoken_language"]
        return decided

    def languages(name: str) -> set[str | None]:
        return {m.language for m in services.index.asset_moments(by_name[name].asset_id, 50)}

    spanish = spoken("robots-es.wav")
    assert spanish["language"] == "es" and spanish["source"] in ("detected", "chunk") and spanish["probability"] >= 0.6
    assert spanish["windows"] and all(w["language"] == "es" for w in spanish["windows"])
    assert languages("robots-es.wav") == {"es"}

    short = spoken("short-en.wav")
    assert (short["language"], short["source"], len(short["windows"])) == ("en", "chunk", 1)
    assert short["probability"] >= 0.5 and languages("short-en.wav") == {"en"}
    told = [e.detail for e in services.registry.events(by_name["short-en.wav"].asset_id) if e.kind == "language"]
    assert len(told) == 1 and told[0].startswith("en (chunk, p=")

    mixed = spoken("mixed-en-es.wav")
    assert len(mixed["windows"]) >= 2 and {w["language"] for w in mixed["windows"]} == {"en", "es"}
    assert (mixed["language"], mixed["source"]) == (None, "undecided")
    assert languages("mixed-en-es.wav") >= {"en", "es"}

    for name in ("silence.wav", "tone.wav"):
        quiet = spoken(name)
        assert quiet["language"] is None and quiet["source"] in ("no speech", "undecided", "chunk"), name
    assert spoken("silence.wav")["source"] == "no speech" and languages("silence.wav") == set()

    # Whisper alone hears espeak's Swedish voice as another language; the uploader's hint decides.
    swedish = spoken("tag-sv.wav")
    assert (swedish["language"], swedish["source"], swedish["windows"]) == ("sv", "hint", [])
    assert languages("tag-sv.wav") == {"sv"}
    events = [e.detail for e in services.registry.events(hinted_asset.asset_id) if e.kind == "language"]
    assert events == ["sv (hint, p=1.00, 0 windows)"]
