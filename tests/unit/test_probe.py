"""probe_media on the sample video, its container variants, images, and every kind of bad input."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from medialens.domain.assets import MediaType
from medialens.errors import InvalidMediaError
from medialens.media.detection import detect_media_type
from medialens.media.probe import _iso_boxes, probe_media
from medialens.pipeline.probe import ensure_named_for_content

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import sample_video  # the script that writes the sample media, via sys.path above

pytestmark = pytest.mark.unit

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def test_mp4_fields(video_samples: Path) -> None:
    info = probe_media(video_samples / sample_video.VIDEO)
    assert info.media_type is MediaType.VIDEO
    assert info.mime_type == "video/mp4" and not info.mislabelled
    assert info.container == "mov,mp4,m4a,3gp,3g2,mj2"
    assert info.duration_s == pytest.approx(sample_video.DURATION, abs=0.1)
    assert (info.width, info.height) == (sample_video.WIDTH, sample_video.HEIGHT)
    assert (info.display_width, info.display_height) == (sample_video.WIDTH, sample_video.HEIGHT)
    assert info.fps == pytest.approx(sample_video.FPS)
    assert info.rotation == 0
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.bitrate is not None and 20_000 < info.bitrate < 500_000
    assert info.audio is not None and info.audio.sample_rate == 22050 and info.audio.channels == 1
    assert info.video is not None and info.video.pixel_format == "yuv420p" and info.video.profile
    assert info.verified == "tail" and info.data_end_s == pytest.approx(sample_video.DURATION, abs=0.2)
    assert info.warnings == []


@pytest.mark.parametrize(
    ("name", "container", "mime", "codecs"),
    [
        (sample_video.VIDEO_MOV, "mov,mp4,m4a,3gp,3g2,mj2", "video/quicktime", ("h264", "aac")),
        (sample_video.VIDEO_MKV, "matroska,webm", "video/x-matroska", ("h264", "aac")),
        (sample_video.VIDEO_WEBM, "matroska,webm", "video/webm", ("vp9", "opus")),
    ],
)
def test_container_variants(video_samples: Path, name: str, container: str, mime: str, codecs: tuple[str, str]) -> None:
    info = probe_media(video_samples / name, verify="full")
    assert info.media_type is MediaType.VIDEO
    assert (info.container, info.mime_type) == (container, mime)
    assert (info.video_codec, info.audio_codec) == codecs
    expected = sample_video.WEBM_DURATION if name == sample_video.VIDEO_WEBM else sample_video.DURATION
    assert info.duration_s == pytest.approx(expected, abs=0.1)
    assert info.data_end_s == pytest.approx(expected, abs=0.2)


def test_mislabelled_container_is_classified_by_content(video_samples: Path, tmp_path: Path) -> None:
    named_mp4 = tmp_path / "actually-matroska.mp4"
    shutil.copyfile(video_samples / sample_video.VIDEO_MKV, named_mp4)
    info = probe_media(named_mp4)
    assert info.container == "matroska,webm" and info.mime_type == "video/x-matroska"
    assert info.declared_extension == "mp4" and info.mislabelled
    assert info.media_type is MediaType.VIDEO


@needs_ffmpeg
def test_rotation_from_display_matrix(video_samples: Path, tmp_path: Path) -> None:
    rotated = tmp_path / "portrait.mp4"
    _ffmpeg(
        "-i",
        str(video_samples / sample_video.VIDEO),
        "-t",
        "2",
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        str(rotated),
    )
    info = probe_media(rotated)
    assert info.rotation == 90
    assert (info.width, info.height) == (640, 360)
    assert (info.display_width, info.display_height) == (360, 640)


def test_images(video_samples: Path) -> None:
    png = probe_media(video_samples / sample_video.IMAGE_PNG)
    assert (png.media_type, png.mime_type, png.video_codec) == (MediaType.IMAGE, "image/png", "png")
    assert png.duration_s is None and png.bitrate is None and (png.width, png.height) == (800, 300)
    webp = probe_media(video_samples / sample_video.IMAGE_WEBP)
    assert (webp.media_type, webp.mime_type) == (MediaType.IMAGE, "image/webp")
    jpeg = probe_media(video_samples / sample_video.IMAGE_JPEG_ROTATED)
    assert jpeg.media_type is MediaType.IMAGE
    # Stored sideways (320x720) with EXIF orientation 6: shown 720x320.
    assert (jpeg.width, jpeg.height) == (320, 720)
    assert (jpeg.display_width, jpeg.display_height) == (720, 320)


@needs_ffmpeg
def test_audio_only(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=3", str(wav))
    info = probe_media(wav)
    assert info.media_type is MediaType.AUDIO and info.audio_codec == "pcm_s16le"
    assert info.video_stream is None and info.duration_s == pytest.approx(3.0, abs=0.05)


# --- bad inputs: each fails with a reason a person can act on --------------------------------


def test_empty_file(video_samples: Path) -> None:
    with pytest.raises(InvalidMediaError, match=r"empty file \(0 bytes\)"):
        probe_media(video_samples / sample_video.BAD_EMPTY_MOV)


def test_text_named_mp4(video_samples: Path) -> None:
    with pytest.raises(InvalidMediaError, match=r"not a media file: not-a-video\.mp4 contains text.*named \.mp4"):
        probe_media(video_samples / sample_video.BAD_TEXT_AS_MP4)


def test_truncated_mp4_with_index_in_front(video_samples: Path) -> None:
    with pytest.raises(InvalidMediaError) as caught:
        probe_media(video_samples / sample_video.BAD_TRUNCATED_MP4)
    reason = caught.value.reason
    assert reason.startswith("truncated file: ")
    assert "declares 43.0 s" in reason and "upload the complete file again" in reason
    data_end = float(reason.split("stops at ")[1].split(" s")[0])
    assert 0 < data_end < sample_video.DURATION * sample_video.TRUNCATED_FRACTION


def test_truncated_mp4_without_index(video_samples: Path, tmp_path: Path) -> None:
    # Recorders write the index (moov) last: cut short, the file has none.
    whole = tmp_path / "recording.mp4"
    _ffmpeg("-i", str(video_samples / sample_video.VIDEO), "-t", "10", "-c", "copy", str(whole))
    data = whole.read_bytes()
    assert b"moov" in data[-len(data) // 3 :]  # default muxing: index at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidMediaError, match=r"truncated file: the MP4/MOV ends inside its 'mdat' box .*'moov'"):
        probe_media(cut)
    boxes = [box for box, _, _ in _iso_boxes(cut, len(data) // 2)]
    assert boxes[0] == b"ftyp" and b"mdat" in boxes


@pytest.mark.parametrize("name", [sample_video.VIDEO_MKV, sample_video.VIDEO_WEBM])
def test_truncated_matroska(video_samples: Path, tmp_path: Path, name: str) -> None:
    data = (video_samples / name).read_bytes()
    cut = tmp_path / Path(name).name
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidMediaError, match="truncated file: the Matroska / WebM container declares"):
        probe_media(cut)


def test_truncated_jpeg(video_samples: Path) -> None:
    with pytest.raises(InvalidMediaError, match=r"truncated image: truncated\.jpg"):
        probe_media(video_samples / sample_video.BAD_TRUNCATED_JPEG)


def test_binary_garbage(tmp_path: Path) -> None:
    garbage = tmp_path / "clip.mov"
    garbage.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(InvalidMediaError, match="not a readable media file: FFmpeg recognises no audio, video or"):
        probe_media(garbage)


def test_mp4_without_index(tmp_path: Path) -> None:
    # A complete-looking MP4 head with media data but no moov box: never finalised.
    broken = tmp_path / "unfinished.mp4"
    mdat = b"\x00" * 4096
    broken.write_bytes(
        (24).to_bytes(4, "big") + b"ftypisom" + b"\x00\x00\x02\x00isomiso2"
        + (8 + len(mdat)).to_bytes(4, "big") + b"mdat" + mdat
    )  # fmt: skip
    with pytest.raises(InvalidMediaError, match=r"unplayable MP4/MOV: it has no index \('moov' box\)"):
        probe_media(broken)


def test_expected_files_name_the_reasons(video_samples: Path) -> None:
    """The corpus's expectations match what probing really says about each bad file."""
    expected = {f.path: f for f in sample_video.ensure(video_samples)}
    for path in (sample_video.BAD_EMPTY_MOV, sample_video.BAD_TRUNCATED_MP4):
        entry = expected[path]
        assert entry.status == "FAILED" and entry.error == "MediaLens.InvalidMedia"
        with pytest.raises(InvalidMediaError) as caught:
            probe_media(video_samples / path)
        assert entry.reason_contains is not None and entry.reason_contains in caught.value.reason
    # Text named .mp4 never reaches the decoder: the probe step's sniffing refuses the name first.
    entry = expected[sample_video.BAD_TEXT_AS_MP4]
    data = (video_samples / entry.path).read_bytes()
    with pytest.raises(InvalidMediaError) as caught:
        ensure_named_for_content(detect_media_type(Path(entry.path).name, data, len(data)))
    assert entry.reason_contains is not None and entry.reason_contains in caught.value.reason
    with pytest.raises(InvalidMediaError, match="not a media file"):
        probe_media(video_samples / entry.path)  # and the decoder would refuse it too


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares a canvas and holds one tiny compressed row: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)  # 16-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [16_000, 30_000])
def test_an_image_declaring_a_huge_canvas_is_refused_before_it_is_decoded(tmp_path: Path, side: int) -> None:
    bomb = tmp_path / "poster.png"
    bomb.write_bytes(_png_header(side, side))
    with pytest.raises(InvalidMediaError, match="image too large to analyse"):
        probe_media(bomb)
