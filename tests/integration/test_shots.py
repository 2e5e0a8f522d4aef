"""Shot detection and keyframes on real decodes of the sample video (cuts at known times)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medialens.media.shots import (
    FrameScan,
    VideoAnalysis,
    VideoOptions,
    analyze_video,
    detect_shots,
    plan_keyframes,
    shots_from_cuts,
)
from medialens.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import sample_video  # the script that writes the sample media, via sys.path above

pytestmark = pytest.mark.integration

CUT_TOLERANCE_S = 0.2


@pytest.fixture(scope="session")
def analysis(video_samples: Path) -> VideoAnalysis:
    return analyze_video(video_samples / sample_video.VIDEO)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def _assert_cuts(starts: list[float], expected: tuple[float, ...]) -> None:
    assert len(starts) == len(expected), (starts, expected)
    for found, cut in zip(starts, expected, strict=True):
        assert abs(found - cut) <= CUT_TOLERANCE_S, (starts, expected)


def test_shots_at_the_known_cuts(analysis: VideoAnalysis) -> None:
    _assert_cuts([shot.start for shot in analysis.shots[1:]], sample_video.CUTS)
    assert analysis.shots[0].start == 0.0
    assert analysis.shots[-1].end == pytest.approx(sample_video.DURATION, abs=0.05)
    assert all(a.end == b.start for a, b in zip(analysis.shots, analysis.shots[1:], strict=False))
    assert [s.index for s in analysis.shots] == list(range(len(analysis.shots)))
    assert analysis.analysis_width == 320 and analysis.frames_decoded == sample_video.DURATION * sample_video.FPS


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "cuts"),
    [
        (sample_video.VIDEO_MKV, sample_video.CUTS),
        (sample_video.VIDEO_WEBM, sample_video.CUTS[:1]),
    ],
)
def test_shots_in_other_containers(video_samples: Path, name: str, cuts: tuple[float, ...]) -> None:
    _assert_cuts([shot.start for shot in detect_shots(video_samples / name)[1:]], cuts)


@pytest.mark.slow
@pytest.mark.parametrize(("width", "step"), [(None, 1), (160, 1), (320, 3)])
def test_shots_at_other_resolutions_and_frame_steps(video_samples: Path, width: int | None, step: int) -> None:
    shots = detect_shots(video_samples / sample_video.VIDEO, VideoOptions(analysis_width=width, frame_step=step))
    _assert_cuts([shot.start for shot in shots[1:]], sample_video.CUTS)


def test_static_shot_is_deduplicated_but_a_caption_appearing_is_kept(analysis: VideoAnalysis) -> None:
    static = sample_video.STATIC_SHOT
    keyframes = [k for k in analysis.keyframes if static.start <= k.time < static.end]
    # 30 s at one candidate every 2 s: 15 candidates; the picture changes twice (the caption
    # appears at 25 s and goes at 31 s), so three keyframes remain.
    assert len(keyframes) == 3
    assert sum(k.duplicates_skipped for k in keyframes) == 12
    before, captioned, after = keyframes
    caption = sample_video.CAPTIONS[-1]
    # The hash runs time the caption to the analysed frame (25 fps: 0.04 s).
    assert captioned.start == pytest.approx(caption.start, abs=0.05)
    assert captioned.until == pytest.approx(caption.end, abs=0.05)
    assert before.start == pytest.approx(static.start, abs=0.05) and before.until == pytest.approx(
        caption.start, abs=0.05
    )
    assert after.until == pytest.approx(static.end, abs=0.05)
    assert analysis.candidates == len(analysis.keyframes) + analysis.skipped_duplicates
    assert analysis.skipped_duplicates >= 12


@pytest.mark.slow
def test_a_static_30s_clip_yields_one_keyframe(tmp_path: Path) -> None:
    clip = tmp_path / "static.mp4"
    _ffmpeg("-f", "lavfi", "-i", "smptebars=s=640x360:r=25:d=30", "-c:v", "libx264", "-preset", "veryfast", str(clip))
    analysis = analyze_video(clip)
    assert len(analysis.shots) == 1
    assert len(analysis.keyframes) == 1 and analysis.keyframes[0].duplicates_skipped == 14
    assert (analysis.keyframes[0].start, analysis.keyframes[0].until) == (0.0, pytest.approx(30.0, abs=0.05))


def test_every_shot_has_a_keyframe_and_jpegs_are_real(analysis: VideoAnalysis) -> None:
    assert {k.shot_index for k in analysis.keyframes} == {s.index for s in analysis.shots}
    first_per_shot = [next(k for k in analysis.keyframes if k.shot_index == s.index) for s in analysis.shots]
    assert all(k.reason == "shot" for k in first_per_shot)
    times = [k.time for k in analysis.keyframes]
    assert times == sorted(times) and [k.index for k in analysis.keyframes] == list(range(len(times)))
    for keyframe in analysis.keyframes:
        shot = analysis.shots[keyframe.shot_index]
        assert shot.start <= keyframe.start <= keyframe.time <= keyframe.until <= shot.end
        with Image.open(io.BytesIO(keyframe.jpeg)) as image:
            assert image.format == "JPEG" and image.size == (keyframe.width, keyframe.height) == (640, 360)
        assert len(keyframe.dhash) == 128 and keyframe.file_name.endswith(".jpg")
    # The manifest leaves the JPEG bytes out.
    assert "jpeg" not in analysis.model_dump_json() and '"dhash"' in analysis.model_dump_json()


def test_keyframes_show_the_frame_at_their_time(analysis: VideoAnalysis) -> None:
    # The navy shot (4-9 s) is a flat colour: its keyframe's centre pixel is navy, not the bars.
    navy = next(k for k in analysis.keyframes if k.shot_index == 1)
    with Image.open(io.BytesIO(navy.jpeg)) as image:
        r, g, b = image.convert("RGB").getpixel((320, 100))  # type: ignore[misc]
    assert abs(r - 0x1F) < 12 and abs(g - 0x3B) < 12 and abs(b - 0x73) < 12


def test_keyframes_capped_and_upright(video_samples: Path, tmp_path: Path) -> None:
    rotated = tmp_path / "portrait.mp4"
    _ffmpeg(
        "-i",
        str(video_samples / sample_video.VIDEO),
        "-t",
        "3",
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        str(rotated),
    )
    analysis = analyze_video(rotated, VideoOptions(max_side=320))
    assert analysis.rotation == 90
    keyframe = analysis.keyframes[0]
    assert (keyframe.width, keyframe.height) == (180, 320)  # portrait, longer side capped at 320
    with Image.open(io.BytesIO(keyframe.jpeg)) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    # The caption box (dark, at the bottom of the landscape frame) turned counter-clockwise sits
    # at the right-hand edge of the portrait keyframe.
    assert pixels[:, -40:].mean() < pixels[:, :40].mean()


def test_options_from_settings() -> None:
    options = VideoOptions.from_settings(Settings(keyframe_interval_s=5.0, shot_analysis_width=240, shot_frame_step=2))
    assert (options.keyframe_interval_s, options.analysis_width, options.frame_step) == (5.0, 240, 2)


def test_plan_keyframes_on_synthetic_hashes() -> None:
    """Pure planning: 10 s at 10 fps, one cut at 5 s; frames 0-49 identical, 50-69 another
    picture, 70-99 a third (a change inside the second shot)."""
    times = np.arange(100) / 10.0
    a, b, c = (np.packbits(np.random.default_rng(seed).random(512) > 0.5) for seed in (1, 2, 3))
    hashes = np.stack([a] * 50 + [b] * 20 + [c] * 30)
    scan = FrameScan(times, hashes, [5.0], 10.0, 10.0, 64, 36, 0, 0, 0.0, 64, 100)
    shots = shots_from_cuts(scan.cuts, scan.duration)
    plans, candidates = plan_keyframes(scan, shots, VideoOptions(keyframe_interval_s=1.0, dedupe_distance=16))
    assert candidates == 10  # 0.5, 1.5, ... 4.5 and 5.5 ... 9.5
    assert [(p.time, p.start, p.until, p.shot_index, p.reason, p.duplicates_skipped) for p in plans] == [
        (0.5, 0.0, 5.0, 0, "shot", 4),
        (5.5, 5.0, 7.0, 1, "shot", 1),
        (7.5, 7.0, 10.0, 1, "periodic", 2),
    ]
    # A picture that never holds still (every frame hashes differently) keeps every candidate,
    # each standing for just its own frame.
    moving = FrameScan(
        times,
        np.packbits(np.random.default_rng(4).random((100, 512)) > 0.5, axis=1),
        [5.0],
        10.0,
        10.0,
        64,
        36,
        0,
        0,
        0.0,
        64,
        100,
    )
    plans, _ = plan_keyframes(moving, shots, VideoOptions(keyframe_interval_s=1.0, dedupe_distance=16))
    assert [p.time for p in plans] == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5]
    assert all(p.duplicates_skipped == 0 and p.until == pytest.approx(p.time + 0.1) for p in plans)
    assert shots_from_cuts([0.0, 3.0, 12.0], 10.0) == shots_from_cuts([3.0], 10.0)


def test_a_video_of_flickering_one_frame_shots_keeps_a_bounded_number_of_keyframes(tmp_path: Path) -> None:
    """Every frame a new picture: the detector's shortest shot and the
    keyframe budget bound what the branch holds, OCRs and labels."""
    import av

    video = tmp_path / "flicker.mp4"
    rng = np.random.default_rng(7)
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for _ in range(25 * 60):
            blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)  # a new picture every frame
            picture = np.kron(blocks, np.ones((40, 40, 1), dtype=np.uint8))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    unbounded = analyze_video(video, VideoOptions())
    assert len(unbounded.shots) <= 60 / VideoOptions().min_scene_len_s + 1  # never one shot per frame
    budget = 20
    capped = analyze_video(video, VideoOptions(max_keyframes=budget))
    assert len(capped.keyframes) == budget and capped.over_budget == len(unbounded.keyframes) - budget
    times = [keyframe.time for keyframe in capped.keyframes]
    assert times == sorted(times) and times[0] < 5 and times[-1] > 55  # spread over the whole video
