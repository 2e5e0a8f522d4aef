"""Subtitle files through the real pipeline: timed SUBTITLE moments that play in the video beside
them (same base name, with or without a language tag), stand alone without one, and a file
whose timings are all broken fails with the line to fix."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from medialens.domain.assets import AssetStatus, MediaType
from medialens.domain.moments import Modality
from medialens.domain.search import SearchFilters, SearchMode, SearchQuery
from medialens.local.runtime import LocalRuntime

from .conftest import assets_by_file_name, fast_settings, ingest_and_wait

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CUES = """1
00:00:01,000 --> 00:00:03,000
The night shift begins at ten.

2
00:00:03,500 --> 00:00:06,000
Forklifts are charged before midnight.
"""


def _video(path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg missing: run scripts/install_system_deps.sh"
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x180:r=10:d=6",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )


def test_subtitle_moments_play_in_their_video_or_stand_alone(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    folder = tmp_path / "depot"
    folder.mkdir()
    _video(folder / "night-shift.mp4")
    (folder / "night-shift.en.srt").write_text(CUES, encoding="utf-8")
    (folder / "briefing.vtt").write_text("WEBVTT\n\n00:00:02.000 --> 00:00:05.000\nGate B closes for inspection.\n")
    (folder / "broken.srt").write_text("1\n10 seconds in --> later\nHello\n")
    runtime = start_runtime(fast_settings(visibility_timeout_s=60, max_receive_count=3))
    uploaded, assets = ingest_and_wait(runtime, [folder], timeout_s=300)
    by_name = assets_by_file_name(uploaded, assets)
    assert runtime.services is not None
    search = runtime.services.search

    subtitles = by_name["night-shift.en.srt"]
    assert subtitles.status is AssetStatus.SUCCEEDED, subtitles.error_reason
    video = by_name["night-shift.mp4"]
    query = SearchQuery(
        text="when are the forklifts charged", k=3, filters=SearchFilters(modalities=[Modality.SUBTITLE])
    )
    hit = search.search(query).hits[0]
    assert hit.asset_id == subtitles.asset_id and "Forklifts" in hit.text
    assert hit.media_type is MediaType.VIDEO and hit.source == video.source.uri  # plays in the video
    assert hit.start == 1.0 and hit.end == 6.0

    alone = search.search(SearchQuery(text="gate inspection", mode=SearchMode.KEYWORD, k=1)).hits[0]
    assert alone.asset_id == by_name["briefing.vtt"].asset_id and alone.media_type is MediaType.DOCUMENT
    assert (alone.start, alone.end, alone.modality) == (2.0, 5.0, Modality.SUBTITLE)

    broken = by_name["broken.srt"]
    assert broken.status is AssetStatus.FAILED and broken.error_code == "MediaLens.InvalidMedia"
    assert "no cue with a valid timing line" in (broken.error_reason or "") and "line 2" in (broken.error_reason or "")
