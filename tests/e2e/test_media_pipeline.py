"""Video, audio and images through the real pipeline: shots, keyframes, OCR, speech-to-text,
moments with time ranges, and bad media failing with reasons while the rest of the batch goes on."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medialens.domain.assets import AssetStatus
from medialens.domain.moments import Modality
from medialens.domain.search import SearchFilters, SearchHit, SearchMode, SearchQuery
from medialens.local.runtime import LocalRuntime
from medialens.media.shots import VideoAnalysis
from medialens.settings import Settings

from ..conftest import MODEL_CACHE
from .conftest import REPO_ROOT, assets_by_file_name, ingest_and_wait

sys.path.insert(0, str(REPO_ROOT / "scripts"))

import make_sample_media  # the scripts that also feed the demo
import sample_audio
import sample_video

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def media_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    folder = tmp_path_factory.mktemp("media") / "media"
    return folder, sample_video.ensure(folder) + sample_audio.write_audio(folder)


@pytest.fixture(scope="module")
def analysed(media_folder: tuple[Path, list[Any]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One runtime for the module: ingesting the media once is the expensive part. (Module
    fixtures run before the per-test environment isolation, so this one isolates itself.)"""
    folder, expected = media_folder
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("MEDIALENS_") or name == "AWS_ENDPOINT_URL":
                env.delenv(name)
        settings = Settings(home=tmp_path_factory.mktemp("home"), model_cache=MODEL_CACHE)
        runtime = LocalRuntime(settings).start()
    try:
        files = [
            folder / sample_video.VIDEO,
            folder / sample_video.VIDEO_WEBM,
            folder / "images",
            folder / "audio",
            folder / "bad",
        ]
        uploaded, assets = ingest_and_wait(runtime, files, timeout_s=600)
        by_name = assets_by_file_name(uploaded, assets)
        yield runtime, by_name, {f.path: f for f in expected}
    finally:
        runtime.stop()


def _search(
    runtime: LocalRuntime, text: str, mode: SearchMode = SearchMode.HYBRID, k: int = 5, **filters: Any
) -> list[SearchHit]:
    assert runtime.services is not None
    query = SearchQuery(text=text, k=k, mode=mode, filters=SearchFilters(**filters))
    return runtime.services.search.search(query).hits


def _overlaps(hit: SearchHit, start: float, end: float) -> bool:
    assert hit.start is not None and hit.end is not None
    return hit.start < end and hit.end > start


def test_every_file_ends_in_its_expected_state(analysed: Any) -> None:
    _, by_name, expected = analysed
    audio = len(sample_audio.RECORDINGS)
    assert len(by_name) == 2 + 3 + audio + 5  # videos, images, recordings, bad files: none dropped
    for name, asset in by_name.items():
        want = next(e for path, e in expected.items() if path.endswith(name))
        assert asset.status.value == want.status, (name, asset.error_reason)
        if want.status == "FAILED":
            assert want.reason_contains in (asset.error_reason or ""), (name, asset.error_reason)
        else:
            assert asset.moment_count > 0, name


def test_shots_are_found_at_the_known_cuts(analysed: Any) -> None:
    runtime, by_name, _ = analysed
    video = by_name["product-launch.mp4"]
    assert runtime.services is not None
    manifest = VideoAnalysis.model_validate_json(runtime.services.blobs.get_text(video.artifacts["keyframes"]))
    cuts = [shot.start for shot in manifest.shots[1:]]
    assert len(cuts) == len(sample_video.CUTS)
    for found, known in zip(cuts, sample_video.CUTS, strict=True):
        assert abs(found - known) <= 0.2
    assert manifest.skipped_duplicates > 0  # the static shot's repeats were not OCR'd


def test_text_shown_only_on_screen_is_found_at_its_time(analysed: Any) -> None:
    runtime, by_name, _ = analysed
    video = by_name["product-launch.mp4"]
    for caption in sample_video.CAPTIONS:
        hits = _search(runtime, caption.text.lower(), SearchMode.KEYWORD, asset_ids=[video.asset_id])
        on_screen = [h for h in hits if h.modality is Modality.SCREEN_TEXT and caption.text in h.text]
        assert on_screen, (caption, [(h.text, h.start) for h in hits])
        assert _overlaps(on_screen[0], caption.start, caption.end), (caption, on_screen[0])


def test_a_spoken_phrase_is_found_with_its_time_range(analysed: Any) -> None:
    runtime, by_name, _ = analysed
    video = by_name["product-launch.mp4"]
    hits = _search(runtime, "how much weight can the new warehouse robot carry", modalities=[Modality.SPEECH])
    spoken = [h for h in hits if h.asset_id == video.asset_id]
    assert spoken and "kilograms" in spoken[0].text
    assert _overlaps(spoken[0], sample_video.SPEECH_START, sample_video.SPEECH_START + 8.0)
    assert runtime.services is not None
    vtt = runtime.services.blobs.get_text(video.artifacts["transcript_vtt"])
    assert vtt.startswith("WEBVTT") and "-->" in vtt
    srt = runtime.services.blobs.get_text(video.artifacts["transcript_srt"])
    assert srt.startswith("1\n") and "-->" in srt


def test_image_text_is_searchable(analysed: Any) -> None:
    runtime, by_name, _ = analysed
    for name, needle in (("invoice-4721.png", "1250 EUR"), ("whiteboard-rotated.jpg", "FIRMWARE 3.2")):
        image = by_name[name]
        assert image.media_type is not None and image.media_type.value == "image"
        hits = _search(runtime, needle.lower(), SearchMode.KEYWORD, modalities=[Modality.IMAGE_TEXT])
        assert any(h.asset_id == image.asset_id and needle in h.text for h in hits), (name, hits)


def test_probe_records_technical_metadata(analysed: Any) -> None:
    _, by_name, _ = analysed
    details = by_name["product-launch.mp4"].metadata["details"]
    media = details["media"]
    assert details["has_video"] and details["has_audio"]
    assert (media["width"], media["height"]) == (sample_video.WIDTH, sample_video.HEIGHT)
    assert abs(media["duration_s"] - sample_video.DURATION) < 0.5
    assert media["video_codec"] == "h264"
    exif = by_name["whiteboard-rotated.jpg"].metadata["details"]["image"]
    assert exif["orientation"] == sample_video.JPEG_ORIENTATION and exif["exif"]


def test_results_are_one_ranked_list(analysed: Any) -> None:
    runtime, _, _ = analysed
    hits = _search(runtime, "acme robotics")
    assert {h.media_type.value for h in hits} >= {"video"}
    assert all(hits[i].score >= hits[i + 1].score for i in range(len(hits) - 1))


def test_phrases_spoken_in_recordings_are_found_with_their_time(analysed: Any) -> None:
    runtime, by_name, _ = analysed
    for query in sample_audio.audio_queries():
        recording = by_name[query.expect_file.rsplit("/", 1)[1]]
        assert recording.status is AssetStatus.SUCCEEDED, recording.error_reason
        everything = _search(runtime, query.query, k=10)
        hits = [h for h in everything if make_sample_media.answers(query.__dict__, h.source)]
        found = [h for h in hits if query.expect_text_contains in h.text.lower()]
        assert found, (query.query, [(h.source, h.text[:80]) for h in hits])
        assert query.expect_start is not None and query.expect_end is not None
        assert _overlaps(found[0], query.expect_start, query.expect_end), (query.query, found[0])


def test_speech_moments_record_the_models_that_made_them(analysed: Any) -> None:
    runtime, by_name, _ = analysed
    podcast = by_name["podcast-episode.mp3"]
    hits = _search(runtime, "robot technicians", SearchMode.KEYWORD, asset_ids=[podcast.asset_id])
    assert hits and hits[0].modality is Modality.SPEECH
    assert runtime.services is not None
    stored = runtime.services.blobs.get_text(podcast.artifacts["transcript_json"])
    assert '"segments"' in stored and "whisper" in stored
    assert podcast.metadata["details"]["has_audio"] and not podcast.metadata["details"]["has_video"]
