"""Shots and keyframes of a video: PySceneDetect's AdaptiveDetector on a downscaled decode, then
a few full-resolution keyframes per shot, near-duplicates skipped by perceptual hash before OCR.

Two passes over the file:

1. ``scan_video`` decodes every frame with PyAV (frame threads), shrinks it to
   ``analysis_width`` (for yuv420p straight from the decoder's planes, which costs about as much
   as the decode itself) and feeds every ``frame_step``-th one to AdaptiveDetector; it also keeps
   each analysed frame's perceptual hash (64 bytes) so the keyframe plan needs no second look.
2. ``extract_keyframes`` decodes only the planned keyframes at full resolution, seeking to the
   keyframe before each target when the next one is far ahead, and encodes them as JPEG.

Keyframe plan (``plan_keyframes``): per shot, a first candidate shortly after the cut and one
every ``keyframe_interval_s`` after it. Within a shot, a candidate whose hash is within
``dedupe_distance`` bits of the last kept keyframe is folded into it (not decoded, not OCR'd);
the first candidate of each shot is always kept, as the detector already saw a change there.
Each kept keyframe carries the interval its picture stands for (``start``..``until``): the frames
around it whose hash stays within the distance, so a caption that appears on a static shot is
timed to the frame, and on moving pictures the interval shrinks towards the sampling grid.

Times are seconds from the start of the container's timeline (``av`` presentation timestamps
minus the container's start time), the same clock as audio decoded with PyAV.
"""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.container
import av.video.stream
import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image
from pydantic import BaseModel, Field
from scenedetect.common import FrameTimecode, Timecode  # type: ignore[import-untyped]
from scenedetect.detectors import AdaptiveDetector  # type: ignore[import-untyped]

from medialens.errors import InvalidMediaError
from medialens.media.pixels import perceptual_hash_bits
from medialens.settings import Settings

# Seek instead of decoding through when the next keyframe is further ahead than this: decoding
# 5 s of 720p takes about as long as a seek plus decoding one group of pictures.
SEEK_AHEAD_S = 5.0
_YUV420 = frozenset({"yuv420p", "yuvj420p"})


class VideoOptions(BaseModel):
    """How to find shots and keyframes; ``from_settings`` reads the deployment's values."""

    analysis_width: int | None = Field(default=320, description="decode width for the detector; None: full size")
    frame_step: int = Field(default=1, ge=1, description="analyse every Nth decoded frame")
    adaptive_threshold: float = 3.0
    min_scene_len_s: float = Field(default=0.6, ge=0, description="shortest shot the detector may cut")
    min_content_val: float = 15.0
    window_width: int = Field(default=2, ge=1)
    keyframe_interval_s: float = Field(default=2.0, gt=0)
    first_keyframe_offset_s: float = Field(default=0.5, ge=0, description="after the cut, past any transition")
    hash_size: int = Field(default=16, ge=4)
    dedupe_distance: int = Field(default=16, ge=0, description="max differing hash bits of a near-duplicate")
    max_side: int = Field(default=1280, ge=64, description="longer side of keyframe JPEGs (never upscaled)")
    max_keyframes: int = Field(
        default=2400, ge=1, description="keyframes kept at most; past it, an even selection over the video"
    )
    jpeg_quality: int = Field(default=90, ge=30, le=100)

    @classmethod
    def from_settings(cls, settings: Settings) -> VideoOptions:
        return cls(
            analysis_width=settings.shot_analysis_width,
            frame_step=settings.shot_frame_step,
            keyframe_interval_s=settings.keyframe_interval_s,
            hash_size=settings.keyframe_hash_size,
            dedupe_distance=settings.keyframe_dedupe_distance,
            max_side=settings.keyframe_max_side,
            max_keyframes=settings.keyframe_max,
        )


class Shot(BaseModel):
    index: int = Field(ge=0)
    start: float = Field(ge=0, description="seconds; the first frame after the cut")
    end: float = Field(ge=0, description="seconds; the next shot's start, or the end of the video")

    @property
    def duration(self) -> float:
        return self.end - self.start


class Keyframe(BaseModel):
    """A kept keyframe: the frame at ``time``, standing for the picture from ``start`` to ``until``."""

    index: int = Field(ge=0)
    time: float
    start: float
    until: float
    shot_index: int
    reason: Literal["shot", "periodic"]
    dhash: str = Field(description="perceptual hash (hex) of the frame; see media.pixels.perceptual_hash")
    duplicates_skipped: int = Field(default=0, description="later candidates folded into this keyframe")
    width: int
    height: int
    jpeg: bytes = Field(
        default=b"", exclude=True, repr=False, description="the frame, upright, as JPEG (not in manifests)"
    )

    @property
    def file_name(self) -> str:
        """Stable name for the JPEG artifact: order and time in milliseconds."""
        return f"{self.index:05d}-{round(self.time * 1000):09d}ms.jpg"


class VideoAnalysis(BaseModel):
    """Shots and keyframes of one video; ``model_dump_json()`` is the keyframes.json manifest
    (JPEG bytes excluded: store each ``keyframe.jpeg`` under ``keyframe.file_name``)."""

    duration_s: float
    fps: float
    width: int
    height: int
    rotation: int = 0
    analysis_width: int
    frame_step: int
    frames_decoded: int
    frames_analysed: int
    shots: list[Shot]
    keyframes: list[Keyframe]
    candidates: int = Field(description="keyframe candidates on the sampling grid")
    skipped_duplicates: int = Field(description="candidates not decoded or OCR'd: near-duplicates")
    over_budget: int = Field(default=0, description="keyframes left out to stay within max_keyframes")
    hash_size: int
    seconds: dict[str, float] = Field(default_factory=dict, description="wall time of scan and extract")


@dataclass
class FrameScan:
    """Pass 1's result: analysed frame times and hashes, cut times, stream facts."""

    times: npt.NDArray[np.float64]
    hashes: npt.NDArray[np.uint8]  # (frames, bits / 8): packed, 64 bytes a frame at the default size
    cuts: list[float]
    duration: float
    fps: float
    width: int
    height: int
    rotation: int
    stream_index: int
    start_offset: float
    analysis_width: int
    frames_decoded: int


@dataclass(frozen=True)
class KeyframePlan:
    frame: int  # index into FrameScan.times
    time: float
    start: float
    until: float
    shot_index: int
    reason: Literal["shot", "periodic"]
    duplicates_skipped: int


# --- pass 1: decode small, detect cuts, hash ------------------------------------------------


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        raise InvalidMediaError("no video stream to analyse (audio only, or just cover art)")
    return max(streams, key=lambda s: (s.codec_context.width or 0) * (s.codec_context.height or 0))


def _analysis_size(width: int, height: int, target: int | None) -> tuple[int, int]:
    if target is None or target >= width:
        return width, height
    # Even width and a height divisible by 4: the shrunk 4:2:0 planes then pack as one I420 image.
    scaled = max(4, round(height * target / width / 4) * 4)
    return target - target % 2, scaled


def _small_bgr(frame: av.VideoFrame, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """The frame as BGR at ``size``; for 4:2:0 shrinks the planes and converts once, small."""
    width, height = size
    out: npt.NDArray[np.uint8]
    if (width, height) == (frame.width, frame.height):
        out = np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
        return out
    if frame.format.name in _YUV420 and frame.width % 2 == 0 and frame.height % 2 == 0 and height % 4 == 0:
        planes = frame.to_ndarray(format=frame.format.name)  # (height * 3/2, width): Y, then U, V
        h, w = frame.height, frame.width
        luma = cv2.resize(planes[:h], (width, height), interpolation=cv2.INTER_AREA)
        chroma = planes[h:].reshape(2, h // 2, w // 2)
        u = cv2.resize(chroma[0], (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        v = cv2.resize(chroma[1], (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        i420 = np.concatenate([luma, u.reshape(-1, width), v.reshape(-1, width)])
        out = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)  # type: ignore[assignment]
        return out
    out = np.asarray(frame.to_ndarray(format="bgr24", width=width, height=height, interpolation="AREA"), dtype=np.uint8)
    return out


def _container_start(container: av.container.InputContainer) -> float:
    return container.start_time / av.time_base if container.start_time else 0.0


def scan_video(path: Path | str, options: VideoOptions | None = None) -> FrameScan:
    """Pass 1: cut times (AdaptiveDetector) and per-frame hashes from a downscaled decode."""
    options = options or VideoOptions()
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        raise InvalidMediaError(f"cannot open the video ({error}); probe it first for the reason") from error
    with container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"  # frame threads: decode uses every core the process has
        time_base = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        size = _analysis_size(stream.codec_context.width, stream.codec_context.height, options.analysis_width)
        detector = AdaptiveDetector(
            adaptive_threshold=options.adaptive_threshold,
            min_scene_len=float(options.min_scene_len_s),
            window_width=options.window_width,
            min_content_val=options.min_content_val,
        )
        offset = _container_start(container)
        times: list[float] = []
        packed_hashes = bytearray()  # grows by 64 bytes a frame: two hours at 25 fps is 12 MB
        cut_codes: list[FrameTimecode] = []
        rotation = 0
        decoded = 0
        last_pts = -1
        last_decoded = 0.0  # seconds, of every decoded frame (not only the analysed ones)
        timecode: FrameTimecode | None = None
        try:
            for frame in container.decode(stream):
                decoded += 1
                if decoded == 1:
                    rotation = round(frame.rotation / 90.0) * 90 % 360
                # Frames without a timestamp (rare, broken muxes) continue the frame clock.
                pts = frame.pts if frame.pts is not None else last_pts + max(1, round(1 / (rate * time_base)))
                last_pts = pts
                last_decoded = max(last_decoded, float(pts * time_base) - offset)
                if (decoded - 1) % options.frame_step:
                    continue
                small = _small_bgr(frame, size)
                timecode = FrameTimecode(Timecode(pts=pts, time_base=time_base), fps=rate)
                cut_codes += detector.process_frame(timecode, small)
                times.append(max(0.0, float(pts * time_base) - offset))
                gray: npt.NDArray[np.uint8] = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)  # type: ignore[assignment]
                packed_hashes += np.packbits(perceptual_hash_bits(gray, options.hash_size)).tobytes()
        except av.error.FFmpegError as error:
            if not times:
                raise InvalidMediaError(f"the video stream cannot be decoded ({error})") from error
            # A damaged tail: keep what decoded (probe_media reports truncation up front).
        if timecode is not None:
            cut_codes += detector.post_process(timecode)
        if not times:
            raise InvalidMediaError("the video stream holds no decodable frames")
        # The end of the last decoded frame: what the file holds, whatever its header declares.
        duration = last_decoded + 1.0 / float(rate)
        return FrameScan(
            times=np.asarray(times, dtype=np.float64),
            hashes=np.frombuffer(bytes(packed_hashes), dtype=np.uint8).reshape(len(times), -1),
            cuts=sorted({max(0.0, code.seconds - offset) for code in cut_codes}),
            duration=round(duration, 3),
            fps=round(float(rate), 3),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            rotation=rotation,
            stream_index=stream.index,
            start_offset=offset,
            analysis_width=size[0],
            frames_decoded=decoded,
        )


def shots_from_cuts(cuts: list[float], duration: float) -> list[Shot]:
    """Shots between consecutive cuts (a cut at 0 or past the end is ignored)."""
    bounds = [0.0, *(c for c in sorted(cuts) if 0.0 < c < duration), duration]
    return [Shot(index=i, start=round(a, 3), end=round(b, 3)) for i, (a, b) in enumerate(itertools.pairwise(bounds))]


def detect_shots(path: Path | str, options: VideoOptions | None = None) -> list[Shot]:
    scan = scan_video(path, options)
    return shots_from_cuts(scan.cuts, scan.duration)


# --- keyframe plan --------------------------------------------------------------------------


_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.intp)


def _distances(hashes: npt.NDArray[np.uint8], reference: npt.NDArray[np.uint8]) -> npt.NDArray[np.intp]:
    """Hamming distances between packed hashes (rows) and one packed hash."""
    counts: npt.NDArray[np.intp] = _POPCOUNT[np.bitwise_xor(hashes, reference)].sum(axis=-1)
    return counts


def plan_keyframes(scan: FrameScan, shots: list[Shot], options: VideoOptions) -> tuple[list[KeyframePlan], int]:
    """Which analysed frames become keyframes, and the interval each stands for; also returns
    how many candidates the sampling grid had (kept + skipped as near-duplicates)."""
    times, hashes = scan.times, scan.hashes
    plans: list[KeyframePlan] = []
    candidates = 0
    for shot in shots:
        first = int(np.searchsorted(times, shot.start - 1e-6))
        last = int(np.searchsorted(times, shot.end - 1e-6))  # exclusive
        if first >= last:
            continue  # a shot shorter than the analysed frame spacing
        offset = min(options.first_keyframe_offset_s, shot.duration / 2)
        grid: list[int] = []
        target = shot.start + offset
        while target < shot.end:
            index = min(int(np.searchsorted(times, target - 1e-6)), last - 1)
            if not grid or index > grid[-1]:
                grid.append(index)
            target += options.keyframe_interval_s
        candidates += len(grid)
        kept: list[list[int]] = []  # [frame, last folded-in candidate frame, candidates skipped]
        for index in grid:
            if kept and int(_distances(hashes[index], hashes[kept[-1][0]])) <= options.dedupe_distance:
                kept[-1][1] = index
                kept[-1][2] += 1
            else:
                kept.append([index, index, 0])
        for number, (frame, last_folded, skipped) in enumerate(kept):
            # The picture's interval: the unbroken run of similar frames around the keyframe, at
            # most back to the previous keyframe's run and on to the next keyframe (or the cut).
            lo = kept[number - 1][1] + 1 if number else first
            hi = kept[number + 1][0] if number + 1 < len(kept) else last
            floor = shot.start if number == 0 else float(times[lo])
            ceiling = float(times[hi]) if number + 1 < len(kept) else shot.end
            start, until = _similar_run(scan, frame, last_folded, lo, hi, floor, ceiling, options.dedupe_distance)
            plans.append(
                KeyframePlan(
                    frame=frame,
                    time=round(float(times[frame]), 3),
                    start=round(start, 3),
                    until=round(until, 3),
                    shot_index=shot.index,
                    reason="shot" if number == 0 else "periodic",
                    duplicates_skipped=skipped,
                )
            )
    return plans, candidates


def within_budget(plans: list[KeyframePlan], budget: int) -> list[KeyframePlan]:
    """At most ``budget`` keyframes, evenly spread over the video when there are more (a video of
    thousands of one-frame shots, a very long recording): every keyframe is held as a JPEG and
    read by OCR and the labeller, so their number bounds the memory and time of the whole branch."""
    if len(plans) <= budget:
        return plans
    if budget == 1:
        return [plans[0]]
    step = (len(plans) - 1) / (budget - 1)
    return [plans[round(number * step)] for number in range(budget)]


def _similar_run(
    scan: FrameScan, frame: int, last_folded: int, lo: int, hi: int, floor: float, ceiling: float, distance: int
) -> tuple[float, float]:
    """Start and end (seconds) of the run of analysed frames whose hashes stay within
    ``distance`` of ``frame``'s: back from ``frame`` to ``lo`` (else ``floor``), on from
    ``last_folded`` to ``hi`` exclusive (else ``ceiling``, where the next picture begins)."""
    times, reference = scan.times, scan.hashes[frame]
    before = np.flatnonzero(_distances(scan.hashes[lo:frame], reference) > distance)
    start = floor if before.size == 0 else float(times[lo + int(before[-1]) + 1])
    after = np.flatnonzero(_distances(scan.hashes[last_folded + 1 : hi], reference) > distance)
    until = ceiling if after.size == 0 else float(times[last_folded + 1 + int(after[0])])
    return start, until


# --- pass 2: full-resolution keyframes ------------------------------------------------------


def _frames_from(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, seconds: float | None
) -> Iterator[av.VideoFrame]:
    if seconds is not None:
        assert stream.time_base is not None
        container.seek(max(0, int(seconds / stream.time_base)), stream=stream, backward=True)
    yield from container.decode(stream)


def _render(frame: av.VideoFrame, rotation: int, options: VideoOptions) -> tuple[bytes, int, int]:
    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    if rotation:
        image = image.rotate(rotation, expand=True)  # counter-clockwise, as the display matrix says
    if max(image.size) > options.max_side:
        image.thumbnail((options.max_side, options.max_side), Image.Resampling.BICUBIC, reducing_gap=2.0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=options.jpeg_quality)
    return buffer.getvalue(), image.width, image.height


def extract_keyframes(
    path: Path | str, scan: FrameScan, plans: list[KeyframePlan], options: VideoOptions
) -> list[Keyframe]:
    """Pass 2: decode the planned frames at full resolution, upright, as JPEG."""
    keyframes: list[Keyframe] = []
    if not plans:
        return keyframes
    with av.open(str(path)) as container:
        stream: Any = container.streams[scan.stream_index]
        stream.thread_type = "AUTO"
        time_base = stream.time_base
        frames: Iterator[av.VideoFrame] | None = None
        position = -1.0
        previous: av.VideoFrame | None = None
        for plan in sorted(plans, key=lambda p: p.time):
            if frames is None or plan.time - position > SEEK_AHEAD_S:
                frames = _frames_from(container, stream, plan.time + scan.start_offset)
                previous = None
            chosen = None
            for frame in frames:
                stamp = float(frame.pts * time_base) - scan.start_offset if frame.pts is not None else position
                position = stamp
                previous = frame
                if stamp >= plan.time - 1e-3:
                    chosen = frame
                    break
            if chosen is None:
                if previous is None:
                    raise InvalidMediaError(f"no frame could be decoded at {plan.time:.2f} s")
                chosen = previous  # the stream ended early: the last frame stands in
            jpeg, width, height = _render(chosen, scan.rotation, options)
            keyframes.append(
                Keyframe(
                    index=len(keyframes),
                    time=plan.time,
                    start=plan.start,
                    until=plan.until,
                    shot_index=plan.shot_index,
                    reason=plan.reason,
                    dhash=scan.hashes[plan.frame].tobytes().hex(),
                    duplicates_skipped=plan.duplicates_skipped,
                    width=width,
                    height=height,
                    jpeg=jpeg,
                )
            )
    return keyframes


def analyze_video(path: Path | str, options: VideoOptions | None = None) -> VideoAnalysis:
    """Shots and deduplicated keyframes of the video at ``path`` (both passes)."""
    options = options or VideoOptions()
    began = time.perf_counter()
    scan = scan_video(path, options)
    scanned = time.perf_counter()
    shots = shots_from_cuts(scan.cuts, scan.duration)
    planned, candidates = plan_keyframes(scan, shots, options)
    plans = within_budget(planned, options.max_keyframes)
    keyframes = extract_keyframes(path, scan, plans, options)
    return VideoAnalysis(
        duration_s=scan.duration,
        fps=scan.fps,
        width=scan.width,
        height=scan.height,
        rotation=scan.rotation,
        analysis_width=scan.analysis_width,
        frame_step=options.frame_step,
        frames_decoded=scan.frames_decoded,
        frames_analysed=len(scan.times),
        shots=shots,
        keyframes=keyframes,
        candidates=candidates,
        skipped_duplicates=candidates - len(planned),
        over_budget=len(planned) - len(plans),
        hash_size=options.hash_size,
        seconds={
            "scan": round(scanned - began, 3),
            "extract": round(time.perf_counter() - scanned, 3),
        },
    )
