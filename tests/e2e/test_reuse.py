"""Identical bytes analysed before are not analysed again: the real ASL on moto, the workers, the
registry and the index, with a spoken recording and a text file."""

from __future__ import annotations

import shutil
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from medialens.domain.assets import Asset, AssetStatus, UploadOptions
from medialens.domain.search import SearchMode, SearchQuery
from medialens.domain.steps import StepName
from medialens.local.runtime import LocalRuntime
from medialens.pipeline.catalog import CATALOG, WorkerClass
from medialens.pipeline.reuse import analysis_key, analysis_settings

from .conftest import assets_by_file_name, fast_settings, ingest_and_wait

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HEAVY = {spec.name.value for spec in CATALOG.values() if spec.worker is WorkerClass.HEAVY}
REUSE_PATH = {StepName.PROBE, StepName.REUSE_ANALYSIS, StepName.INDEX_MOMENTS, StepName.FINALIZE}


def _folder(tmp_path: Path, name: str) -> Path:
    import sample_audio  # a sibling script (tests/e2e/conftest puts scripts/ on the path)

    folder = tmp_path / name
    folder.mkdir()
    (folder / "minutes.txt").write_text(
        "The lighthouse keeper logged a green flash over the harbour at dusk.\n\n"
        "Ferry crossings resume on Monday after the storm repairs.\n",
        encoding="utf-8",
    )
    pcm = sample_audio.speak("The orchard harvest starts next Tuesday, weather permitting.")
    with wave.open(str(folder / "memo.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_audio.RATE)
        out.writeframes(sample_audio._silence(0.5) + pcm + sample_audio._silence(0.5))
    return folder


def _ingest(runtime: LocalRuntime, folder: Path, options: UploadOptions | None = None) -> dict[str, Asset]:
    return assets_by_file_name(*ingest_and_wait(runtime, [folder], timeout_s=300, options=options))


def _hits(runtime: LocalRuntime, text: str) -> list[str]:
    assert runtime.services is not None
    response = runtime.services.search.search(SearchQuery(text=text, k=10, mode=SearchMode.KEYWORD))
    return [hit.source for hit in response.hits]


def test_the_same_bytes_under_another_key_reuse_the_analysis_with_no_model_run(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime()
    assert runtime.services is not None
    registry, blobs = runtime.services.registry, runtime.services.blobs
    first = _ingest(runtime, _folder(tmp_path, "originals"))
    assert all(a.status is AssetStatus.SUCCEEDED and a.reused_from is None for a in first.values())
    assert all(a.content_sha256 and a.analysis_key for a in first.values())

    copies = tmp_path / "copies"
    shutil.copytree(tmp_path / "originals", copies)
    second = _ingest(runtime, copies)
    for name, copy in second.items():
        original = first[name]
        assert copy.status is AssetStatus.SUCCEEDED
        assert copy.asset_id != original.asset_id and copy.reused_from == original.asset_id
        assert copy.analysis_key == original.analysis_key
        assert set(copy.stage_seconds()) == REUSE_PATH  # zero inference: no heavy step ran
        assert not set(copy.stage_seconds()) & HEAVY
        assert copy.moment_count == original.moment_count > 0
        assert any(e.kind == "reuse" and original.asset_id in e.detail for e in registry.events(copy.asset_id))
        # Its artifacts are its own copies, naming it.
        own = runtime.services.artifact_uri(copy.asset_id) + "/"
        assert copy.artifacts and all(uri.startswith(own) for uri in copy.artifacts.values())
    transcript = blobs.get_text(second["memo.wav"].artifacts["transcript_json"])
    assert "orchard" in transcript.lower() and first["memo.wav"].asset_id not in transcript
    assert len(_hits(runtime, "orchard")) == 2 and len(_hits(runtime, "lighthouse")) == 2

    # The originals go; the copies keep their moments and artifacts.
    for original in first.values():
        blobs.delete(original.source.uri)
    assert runtime.wait_until_idle(timeout_s=60)
    assert all(registry.get(a.asset_id) is None for a in first.values())
    assert _hits(runtime, "orchard") == [second["memo.wav"].source.uri]
    assert _hits(runtime, "lighthouse") == [second["minutes.txt"].source.uri]
    assert "orchard" in blobs.get_text(second["memo.wav"].artifacts["transcript_json"]).lower()

    # A copy of a copy reuses the copy.
    third = _ingest(runtime, _folder(tmp_path, "again"))
    assert {name: a.reused_from for name, a in third.items()} == {n: a.asset_id for n, a in second.items()}


def test_other_options_or_a_broken_donor_mean_a_full_analysis(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime()
    assert runtime.services is not None
    registry, blobs = runtime.services.registry, runtime.services.blobs
    first = _ingest(runtime, _folder(tmp_path, "originals"))
    memo = first["memo.wav"]

    # The uploader says the language: another analysis (no identification), so no reuse.
    hinted = _ingest(runtime, _folder(tmp_path, "hinted"), UploadOptions(language="en"))
    assert hinted["memo.wav"].reused_from is None
    assert StepName.TRANSCRIBE_CHUNK in hinted["memo.wav"].stage_seconds()
    assert hinted["memo.wav"].analysis_key != memo.analysis_key

    # The donors' analyses are incomplete (the moments manifest is gone): analysed again, and said so.
    for asset in (*first.values(), *hinted.values()):
        blobs.delete(asset.artifacts["indexed"])
    again = _ingest(runtime, _folder(tmp_path, "again"))
    assert all(a.status is AssetStatus.SUCCEEDED and a.reused_from is None for a in again.values())
    assert StepName.TRANSCRIBE_CHUNK in again["memo.wav"].stage_seconds()
    events = [e.detail for e in registry.events(again["memo.wav"].asset_id) if e.kind == "reuse"]
    assert events and "cannot be copied" in events[0]
    assert all(blobs.head(uri) is not None for a in again.values() for uri in a.artifacts.values())


def test_the_key_follows_what_the_analysis_depends_on() -> None:
    settings = fast_settings()
    from medialens.domain.assets import SourceObject
    from medialens.domain.steps import AssetRef

    asset = AssetRef(
        asset_id="a1", source=SourceObject(bucket="drop", key="incoming/x.wav", etag="e", size=1), pipeline_version="2"
    )
    key = analysis_key("abc", asset, settings)
    assert analysis_key("abc", asset, settings) == key
    assert analysis_key("abd", asset, settings) != key
    assert analysis_key("abc", asset.model_copy(update={"pipeline_version": "3"}), settings) != key
    hinted = asset.model_copy(deep=True)
    hinted.source.options = UploadOptions(language="sv")
    assert analysis_key("abc", hinted, settings) != key
    for analysis in ({"speech_model": "whisper-tiny-en"}, {"ocr_min_confidence": 0.9}, {"passage_words": 80}):
        assert analysis_key("abc", asset, settings.model_copy(update=analysis)) != key, analysis
    for operational in ({"home": Path("/elsewhere")}, {"light_queue": "q2"}, {"speech_cpu_threads": 7}):
        assert analysis_key("abc", asset, settings.model_copy(update=operational)) == key, operational
    assert "home" not in analysis_settings(settings) and "speech_model" in analysis_settings(settings)
