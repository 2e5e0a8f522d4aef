"""Probe a media file with PyAV: container, streams, codecs, duration, geometry, and integrity.

``probe_media(path)`` classifies a file by what FFmpeg's demuxers find in it, never by its
name, and fails with ``InvalidMediaError`` (a reason a person can act on) for files that are
empty, text, unparseable, cut short or undecodable. Truncation is found cheaply: after reading
the header, the probe seeks near the declared end and demuxes (and decodes) the last seconds;
data that stops well before the declared duration means the upload was cut short. The costlier
``verify="full"`` demuxes every packet instead.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.container
import av.stream
from pydantic import BaseModel, Field

from medialens.domain.assets import MediaType
from medialens.errors import InvalidMediaError
from medialens.media.detection import SNIFF_BYTES, detect_media_type, looks_like_text
from medialens.media.pixels import check_declared_size, open_image

Verify = Literal["tail", "full", "none"]
StreamKind = Literal["video", "audio", "subtitle", "data", "attachment", "unknown"]

# FFmpeg demuxers that read still images: a file they open is an image, not a one-frame video.
_IMAGE_DEMUXERS = frozenset({"image2", "apng", "gif", "webp_pipe", "tiff_pipe"})
# Seconds before the declared end where the tail check starts (after seeking to a keyframe).
# 8K video is 33 megapixels a frame; a declared frame beyond this is refused before one is decoded.
MAX_FRAME_PIXELS = 89_478_485  # Pillow's own bomb limit, so images and video share one bound
TAIL_WINDOW_S = 3.0
# Data may end a little before the declared duration (edit lists, the last frame's duration,
# audio priming): a truncation is a shortfall beyond this many seconds or this share.
TRUNCATION_TOLERANCE_S = 1.0
TRUNCATION_TOLERANCE_SHARE = 0.02


class StreamInfo(BaseModel):
    """One stream as the container declares it (video fields for video, audio fields for audio)."""

    index: int
    kind: StreamKind
    codec: str | None = None
    codec_long_name: str | None = None
    profile: str | None = None
    language: str | None = None
    duration_s: float | None = None
    bitrate: int | None = Field(default=None, description="bits per second, when declared")
    frames: int | None = Field(default=None, description="frame count the container declares, if any")
    width: int | None = None
    height: int | None = None
    fps: float | None = Field(default=None, description="average frame rate")
    pixel_format: str | None = None
    attached_picture: bool = Field(default=False, description="cover art, not a video track")
    sample_rate: int | None = None
    channels: int | None = None
    channel_layout: str | None = None


class MediaInfo(BaseModel):
    """What a media file holds. ``media_type`` comes from the streams PyAV found, not the name."""

    media_type: MediaType
    mime_type: str = Field(description="from the file's signature; container family ties go to the name")
    container: str = Field(description="FFmpeg demuxer name, e.g. 'mov,mp4,m4a,3gp,3g2,mj2'")
    container_long_name: str
    declared_extension: str = Field(description="the name's extension, lower case, without the dot")
    mislabelled: bool = Field(description="the name promised another kind of file than the content is")
    size_bytes: int
    duration_s: float | None = Field(description="declared by the container (or measured when it declares none)")
    bitrate: int | None = Field(default=None, description="overall bits per second")
    streams: list[StreamInfo]
    video_stream: int | None = Field(default=None, description="index of the primary video (or image) stream")
    audio_stream: int | None = Field(default=None, description="index of the primary audio stream")
    width: int | None = Field(default=None, description="coded width of the primary video stream")
    height: int | None = None
    display_width: int | None = Field(default=None, description="width after rotation, as a player shows it")
    display_height: int | None = None
    fps: float | None = None
    rotation: int = Field(
        default=0, description="degrees counter-clockwise a player turns the picture (0, 90, 180, 270)"
    )
    video_codec: str | None = None
    audio_codec: str | None = None
    verified: Verify = Field(description="how far integrity was checked")
    data_end_s: float | None = Field(default=None, description="where the demuxed media data ended, if checked")
    warnings: list[str] = Field(default_factory=list)

    @property
    def video(self) -> StreamInfo | None:
        return self._stream(self.video_stream)

    @property
    def audio(self) -> StreamInfo | None:
        return self._stream(self.audio_stream)

    def _stream(self, index: int | None) -> StreamInfo | None:
        return next((s for s in self.streams if s.index == index), None) if index is not None else None


def probe_media(path: Path | str, *, verify: Verify = "tail") -> MediaInfo:
    """Describe the audio, video or image file at ``path``; raise ``InvalidMediaError`` if unusable.

    ``verify``: ``"tail"`` (default) decodes the first frame and demuxes/decodes the last
    ``TAIL_WINDOW_S`` seconds; ``"full"`` demuxes every packet (reads the whole file); ``"none"``
    only reads the header and the first frame.
    """
    path = Path(path)
    size = path.stat().st_size
    name = path.name
    if size == 0:
        raise InvalidMediaError(f"empty file (0 bytes): {name} holds no media; upload the file again")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    detected = detect_media_type(name, head, size)
    if looks_like_text(head):
        raise InvalidMediaError(
            f"not a media file: {name} contains text"
            + (f", although it is named .{detected.declared_extension}" if detected.declared_extension else "")
            + "; upload the audio, video or image file itself"
        )
    if detected.media_type is MediaType.IMAGE:
        check_declared_size(path)  # before FFmpeg decodes a frame of a canvas too large to hold
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as error:
        raise InvalidMediaError(_unopenable_reason(path, size, error)) from error
    with container:
        info = _describe(container, path, size, detected.mime_type, detected.declared_extension, detected.mislabelled)
        if info.width and info.height and info.width * info.height > MAX_FRAME_PIXELS:
            raise InvalidMediaError(
                f"frames too large to analyse: {name} is {info.width:,}x{info.height:,}; the limit is "
                f"{MAX_FRAME_PIXELS / 1e6:,.0f} megapixels a frame: downscale it and upload it again"
            )
        _check_first_frame(container, info)
        if info.media_type is MediaType.IMAGE:
            _check_image(path)
            return info.model_copy(update={"verified": verify})
        if info.duration_s is None or verify == "full":
            end = _demuxed_end(container, info, start=None)
            if info.duration_s is None:
                info.duration_s = end
                info.warnings.append("the container declares no duration: measured by demuxing every packet")
            info.data_end_s = end
        elif verify == "tail":
            info.data_end_s = _demuxed_end(container, info, start=max(0.0, info.duration_s - TAIL_WINDOW_S))
        info.verified = verify
        if info.data_end_s is not None and info.duration_s is not None:
            _check_complete(container, info, size, tail=verify == "tail")
    return info


# --- describing -----------------------------------------------------------------------------


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _stream_info(stream: av.stream.Stream) -> StreamInfo:
    context: Any = stream.codec_context
    kind: StreamKind = stream.type if stream.type in ("video", "audio", "subtitle", "data", "attachment") else "unknown"
    codec = context.name if context is not None else None
    long_name = None
    with contextlib.suppress(AttributeError):
        long_name = context.codec.long_name
    info = StreamInfo(
        index=stream.index,
        kind=kind,
        codec=codec,
        codec_long_name=long_name,
        profile=getattr(stream, "profile", None) or None,
        language=stream.language,
        duration_s=_seconds(stream.duration, stream.time_base),
        bitrate=(context.bit_rate or None) if context is not None else None,
        frames=stream.frames or None,
    )
    if kind == "video":
        video: Any = stream
        rate = video.average_rate or video.guessed_rate
        info.width = context.width or None
        info.height = context.height or None
        info.fps = round(float(rate), 3) if rate else None
        info.pixel_format = context.pix_fmt
        info.attached_picture = bool(stream.disposition & av.stream.Disposition.attached_pic)
    elif kind == "audio":
        info.sample_rate = context.sample_rate or None
        info.channels = context.channels or None
        with contextlib.suppress(AttributeError):
            info.channel_layout = context.layout.name
    return info


def _describe(
    container: av.container.InputContainer,
    path: Path,
    size: int,
    mime: str,
    declared_extension: str,
    mislabelled: bool,
) -> MediaInfo:
    streams = [_stream_info(stream) for stream in container.streams]
    pictures = [s for s in streams if s.kind == "video" and s.attached_picture]
    videos = [s for s in streams if s.kind == "video" and not s.attached_picture]
    audios = [s for s in streams if s.kind == "audio"]
    demuxer = container.format.name
    if not videos and not audios:
        kinds = ", ".join(sorted({s.kind for s in streams})) or "no streams at all"
        raise InvalidMediaError(
            f"no audio or video in {path.name}: FFmpeg reads it as {container.format.long_name} with {kinds}; "
            "upload a video, audio or image file"
        )
    if videos and (demuxer in _IMAGE_DEMUXERS or demuxer.endswith("_pipe")) and not audios:
        media_type = MediaType.IMAGE
    elif videos:
        media_type = MediaType.VIDEO
    else:
        media_type = MediaType.AUDIO  # cover art (an attached picture) does not make a video
    video = max(videos, key=lambda s: (s.width or 0) * (s.height or 0), default=None)
    audio = audios[0] if audios else None
    duration = container.duration / av.time_base if container.duration else None
    if duration is None:
        duration = max((s.duration_s for s in videos + audios if s.duration_s), default=None)
    if media_type is MediaType.IMAGE:
        duration = None  # the image demuxers report a nominal one-frame duration
    warnings = []
    if pictures:
        warnings.append(f"{len(pictures)} attached picture(s) (cover art) ignored")
    if len(videos) > 1:
        warnings.append(f"{len(videos)} video streams: analysing stream {video.index if video else '?'}, the largest")
    return MediaInfo(
        media_type=media_type,
        mime_type=mime,
        container=demuxer,
        container_long_name=container.format.long_name,
        declared_extension=declared_extension,
        mislabelled=mislabelled,
        size_bytes=size,
        duration_s=round(duration, 3) if duration is not None else None,
        bitrate=(container.bit_rate or None) if media_type is not MediaType.IMAGE else None,
        streams=streams,
        video_stream=video.index if video else None,
        audio_stream=audio.index if audio else None,
        width=video.width if video else None,
        height=video.height if video else None,
        display_width=video.width if video else None,
        display_height=video.height if video else None,
        fps=video.fps if video and media_type is MediaType.VIDEO else None,
        video_codec=video.codec if video else None,
        audio_codec=audio.codec if audio else None,
        verified="none",
        warnings=warnings,
    )


def _check_first_frame(container: av.container.InputContainer, info: MediaInfo) -> None:
    """Decode the first frame of the primary stream: the codec works, and it says the rotation."""
    index = info.video_stream if info.video_stream is not None else info.audio_stream
    assert index is not None  # _describe raised otherwise
    stream = container.streams[index]
    codec = info.video_codec if index == info.video_stream else info.audio_codec
    try:
        frame = next(iter(container.decode(stream)), None)
    except av.error.FFmpegError as error:
        raise InvalidMediaError(
            f"corrupt {stream.type} stream: the first {stream.type} frame ({codec}) cannot be decoded ({error}); "
            "re-export or re-encode the file and upload it again"
        ) from error
    if frame is None:
        raise InvalidMediaError(
            f"no decodable {stream.type} frames: the {codec} stream of this {info.container_long_name} file is "
            "empty or cut short before its first frame; upload the complete file again"
        )
    if isinstance(frame, av.VideoFrame) and info.width and info.height:
        rotation = round(frame.rotation / 90.0) * 90 % 360
        info.rotation = rotation
        if rotation in (90, 270):
            info.display_width, info.display_height = info.height, info.width


def _check_image(path: Path) -> None:
    # FFmpeg's image decoders fill a cut-off image with grey without complaint; Pillow does not.
    open_image(path).close()


# --- integrity ------------------------------------------------------------------------------


def _av_streams(container: av.container.InputContainer, info: MediaInfo) -> list[av.stream.Stream]:
    indices = [i for i in (info.video_stream, info.audio_stream) if i is not None]
    return [container.streams[i] for i in indices]


def _demuxed_end(container: av.container.InputContainer, info: MediaInfo, start: float | None) -> float:
    """The latest packet end (seconds) of the primary streams, demuxing from ``start`` (a seek
    to the keyframe before it) or from the beginning; decodes the tail's video packets."""
    streams = _av_streams(container, info)
    video = container.streams[info.video_stream] if info.video_stream is not None else None
    if start is not None and start > 0:
        seek_stream = video or streams[0]
        assert seek_stream.time_base is not None
        try:
            container.seek(int(start / seek_stream.time_base), stream=seek_stream, backward=True)
        except av.error.FFmpegError:
            container.seek(0, stream=seek_stream)
    elif start is None:
        container.seek(0)
    end = 0.0
    decode = start is not None and video is not None
    try:
        for packet in container.demux(streams):
            if packet.pts is None and packet.dts is None:
                continue  # the flush packet at the end of each stream
            stamp = packet.pts if packet.pts is not None else packet.dts
            assert stamp is not None and packet.time_base is not None
            end = max(end, float((stamp + (packet.duration or 0)) * packet.time_base))
            if decode and packet.stream is video:
                _decode_tail_packet(packet, info)
        if decode and video is not None:
            _flush_decoder(video, info)
    except av.error.FFmpegError as error:
        info.warnings.append(f"demuxing stopped with an error at {end:.2f} s: {error}")
    return end


def _decode_tail_packet(packet: av.Packet[Any], info: MediaInfo) -> None:
    try:
        packet.decode()
    except av.error.InvalidDataError as error:
        stamp = float((packet.pts or 0) * (packet.time_base or 0))
        raise _corrupt_tail(info, f"the frame at {stamp:.2f} s", error) from error


def _flush_decoder(video: av.stream.Stream, info: MediaInfo) -> None:
    """Drain the frames the decoder still holds (B-frame reordering) so they are checked too."""
    try:
        with contextlib.suppress(av.error.EOFError):
            video.decode(None)  # type: ignore[attr-defined]
    except av.error.InvalidDataError as error:
        raise _corrupt_tail(info, "the last frames", error) from error


def _corrupt_tail(info: MediaInfo, where: str, error: Exception) -> InvalidMediaError:
    return InvalidMediaError(
        f"corrupt video data near the end: {where} ({info.video_codec}) cannot be decoded ({error}); "
        "upload the file again or re-encode it"
    )


def _check_complete(container: av.container.InputContainer, info: MediaInfo, size: int, *, tail: bool) -> None:
    assert info.duration_s is not None and info.data_end_s is not None
    declared, end = info.duration_s, info.data_end_s
    tolerance = max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_SHARE * declared)
    if end >= declared - tolerance:
        return
    if tail:
        # The tail check only says the data stops early; demux it all to say where.
        end = _demuxed_end(container, info, start=None)
        info.data_end_s = end
        if end >= declared - tolerance:
            info.warnings.append("seeking near the end failed, but every packet is there")
            return
    kind = "video" if info.video_stream is not None else "audio"
    raise InvalidMediaError(
        f"truncated file: the {info.container_long_name} container declares {declared:.1f} s but its {kind} data "
        f"stops at {end:.1f} s ({size:,} bytes on disk); the upload or export was cut short, upload the "
        "complete file again"
    )


# --- why a file does not open ---------------------------------------------------------------


def _iso_boxes(path: Path, size: int) -> Iterator[tuple[bytes, int, int]]:
    """Top-level ISO-BMFF boxes as (type, declared size, bytes present); stops at the first
    box that runs past the end of the file."""
    offset = 0
    with path.open("rb") as handle:
        while offset + 8 <= size:
            handle.seek(offset)
            header = handle.read(16)
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) >= 16:
                (box_size,) = struct.unpack(">Q", header[8:16])
            elif box_size == 0:
                box_size = size - offset
            if box_size < 8:
                return
            yield box_type, box_size, min(box_size, size - offset)
            offset += box_size


def _unopenable_reason(path: Path, size: int, error: av.error.FFmpegError) -> str:
    with path.open("rb") as handle:
        head = handle.read(12)
    if len(head) >= 8 and head[4:8] == b"ftyp":
        boxes = list(_iso_boxes(path, size))
        types = {box_type for box_type, _, _ in boxes}
        cut = next(((t, declared, present) for t, declared, present in boxes if present < declared), None)
        if b"moov" not in types and cut is not None:
            box, declared, present = cut
            return (
                f"truncated file: the MP4/MOV ends inside its '{box.decode('latin-1')}' box ({present:,} of "
                f"{declared:,} bytes present) and its index ('moov' box), which this file keeps at the end, is "
                "missing; the upload or recording was cut short, upload the complete file again"
            )
        if b"moov" not in types:
            return (
                "unplayable MP4/MOV: it has no index ('moov' box), so the recording was never finalised; "
                "re-export it from the source (or repair it with the recorder's tools) and upload it again"
            )
    return (
        f"not a readable media file: FFmpeg recognises no audio, video or image format in {path.name} "
        f"({size:,} bytes; {error.strerror or error}); the file is corrupt or of another kind, upload the "
        "original media file"
    )
