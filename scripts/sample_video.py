"""Sample video, images and bad media inputs with known cuts, captions, speech and text.

    python scripts/sample_video.py --out sample-media

``write_video(out_dir)`` and ``write_images(out_dir)`` write the files and return their
``ExpectedFile`` entries; ``video_queries()`` returns the searches they answer. Everything is
made from FFmpeg's lavfi sources, ``drawtext`` (a DejaVu font found with ``fc-match``), espeak-ng
and Pillow, so nothing is downloaded. The constants below (cut times, caption intervals, the
spoken sentence, image text) are what the tests check the analysis against.

Determinism: x264 and libvpx run single-threaded and every muxer in bitexact mode (no encoder
version strings, Matroska/WebM UIDs derived from content), and Pillow encodes with fixed
settings, so the same FFmpeg/espeak-ng/Pillow versions give the same bytes on every run.
Different tool versions may encode differently; the timings and text do not change.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_sample_media import ExpectedFile, ExpectedQuery  # the sibling script, via sys.path above

WIDTH, HEIGHT, FPS = 640, 360, 25


@dataclass(frozen=True)
class Segment:
    """One shot of the sample video: a lavfi source shown from ``start`` to ``end`` seconds."""

    source: str  # lavfi source with its options, without size, rate and duration
    start: float
    end: float


@dataclass(frozen=True)
class Caption:
    """Text burnt into the frames only while ``start <= t < end`` (seconds)."""

    text: str
    start: float
    end: float
    y: int = 280


# Four shots with hard cuts at 4, 9 and 13 s. The last one is 30 s of a static frame, where a
# caption appears half-way: keyframe de-duplication must keep the frames that differ by it.
SEGMENTS: tuple[Segment, ...] = (
    Segment("testsrc2", 0.0, 4.0),
    Segment("color=c=0x1f3b73", 4.0, 9.0),
    Segment("smptebars", 9.0, 13.0),
    Segment("color=c=0x2e5e3a", 13.0, 43.0),
)
CUTS: tuple[float, ...] = tuple(segment.start for segment in SEGMENTS[1:])
DURATION = SEGMENTS[-1].end
STATIC_SHOT = SEGMENTS[-1]

CAPTIONS: tuple[Caption, ...] = (
    Caption("ACME ROBOTICS", 0.5, 3.5),
    Caption("WAREHOUSE ROBOT R2", 5.0, 8.0),
    Caption("SHIPS 14 OCTOBER", 9.5, 12.5, y=40),
    Caption("QUESTIONS AND ANSWERS", 25.0, 31.0),
)
SPEECH = (
    "Welcome to Acme Robotics. Our new warehouse robot can carry up to two hundred kilograms "
    "and works through the night."
)
SPEECH_START = 0.5  # seconds of silence before the sentence

VIDEO = "video/product-launch.mp4"
VIDEO_MOV = "video/product-launch.mov"
VIDEO_MKV = "video/product-launch.mkv"
# Subtitles beside the video (same base name, a language tag): their cues play in the video.
SUBTITLES = "video/product-launch.en.srt"
SUBTITLE_CUES = (
    (13.5, 17.0, "Pilot customers in Gothenburg receive their robots in November."),
    (17.5, 21.0, "A service contract covers the first three years."),
)
# The first two shots only, re-encoded as VP9/Opus: WebM cannot carry H.264/AAC.
VIDEO_WEBM = "video/product-teaser.webm"
WEBM_DURATION = SEGMENTS[1].end

IMAGE_PNG = "images/invoice-4721.png"
IMAGE_JPEG_ROTATED = "images/whiteboard-rotated.jpg"
IMAGE_WEBP = "images/shelf-label.webp"
# Text drawn into each image, top to bottom (one OCR line each).
IMAGE_TEXT: dict[str, tuple[str, ...]] = {
    IMAGE_PNG: ("INVOICE 4721", "TOTAL DUE 1250 EUR"),
    IMAGE_JPEG_ROTATED: ("SPRINT GOAL", "SHIP FIRMWARE 3.2"),
    IMAGE_WEBP: ("AISLE 7 BIN 42", "GEAR MOTORS"),
}
# EXIF orientation 6: the stored pixels are turned 90 degrees counter-clockwise, and a viewer
# turns them back clockwise; OCR on the stored pixels alone would read vertical text.
JPEG_ORIENTATION = 6

BAD_TRUNCATED_MP4 = "bad/truncated.mp4"
BAD_TEXT_AS_MP4 = "bad/not-a-video.mp4"
BAD_EMPTY_MOV = "bad/empty.mov"
BAD_TRUNCATED_JPEG = "bad/truncated.jpg"
TRUNCATED_FRACTION = 0.55  # of the sample MP4's bytes kept: its index (moov) is at the front


def font_path(bold: bool = True) -> str:
    """The DejaVu Sans file on this machine, found the way fontconfig would."""
    pattern = "DejaVu Sans:bold" if bold else "DejaVu Sans"
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        raise RuntimeError("fc-match not found: install fontconfig and fonts-dejavu-core")
    found = subprocess.run([fc_match, "-f", "%{file}", pattern], check=True, capture_output=True, text=True)
    path = found.stdout.strip()
    if "DejaVu" not in Path(path).name:
        raise RuntimeError(f"fc-match offers {path!r} for {pattern!r}: install fonts-dejavu-core")
    return path


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: run scripts/install_system_deps.sh")
    return path


def _run(args: list[str]) -> None:
    done = subprocess.run(args, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _ffmpeg(*args: str) -> None:
    _run([_tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args])


def _escape_drawtext(text: str) -> str:
    # drawtext's own escaping, then the filtergraph's: keep sample captions to safe characters.
    if any(char in text for char in "\\':,;[]%"):
        raise ValueError(f"caption {text!r} needs filtergraph escaping; keep captions to letters and digits")
    return text


def _video_filter(font: str) -> str:
    """Concatenate the shots and burn the captions in on the joined timeline."""
    parts = []
    labels = []
    for number, segment in enumerate(SEGMENTS):
        duration = segment.end - segment.start
        joiner = ":" if "=" in segment.source else "="
        options = f"s={WIDTH}x{HEIGHT}:r={FPS}:d={duration:g}"
        parts.append(f"{segment.source}{joiner}{options},format=yuv420p[v{number}]")
        labels.append(f"[v{number}]")
    chain = f"{''.join(labels)}concat=n={len(SEGMENTS)}:v=1:a=0"
    for caption in CAPTIONS:
        chain += (
            f",drawtext=fontfile='{font}':text='{_escape_drawtext(caption.text)}':fontsize=40:"
            f"fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=12:x=(w-text_w)/2:y={caption.y}:"
            f"enable='between(t,{caption.start:g},{caption.end:g})'"
        )
    return ";".join(parts) + f";{chain}[v]"


_BITEXACT = ("-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact")


def _speech_wav(path: Path) -> None:
    _run([_tool("espeak-ng"), "-v", "en-us", "-s", "150", "-w", str(path), SPEECH])


def _subrip(cues: tuple[tuple[float, float, str], ...]) -> str:
    def stamp(seconds: float) -> str:
        whole = int(seconds)
        return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d},{round((seconds - whole) * 1000):03d}"

    return "".join(f"{n}\n{stamp(a)} --> {stamp(b)}\n{text}\n\n" for n, (a, b, text) in enumerate(cues, 1))


def write_video(out_dir: Path, *, remuxed: bool = True) -> list[ExpectedFile]:
    """The sample video as MP4 (H.264/AAC, index at the front), MOV and MKV (the same streams;
    ``remuxed=False`` leaves these twins out) and a WebM teaser (VP9/Opus, first two shots), plus
    the bad inputs made from them."""
    out_dir = Path(out_dir)
    (out_dir / "video").mkdir(parents=True, exist_ok=True)
    mp4 = out_dir / VIDEO
    with tempfile.TemporaryDirectory(prefix="medialens-sample-") as tmp:
        wav = Path(tmp) / "speech.wav"
        _speech_wav(wav)
        _ffmpeg(
            "-i", str(wav),
            "-filter_complex",
            f"{_video_filter(font_path())};[0:a]adelay={int(SPEECH_START * 1000)}:all=1,apad[a]",
            "-map", "[v]", "-map", "[a]", "-t", f"{DURATION:g}",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-g", "50", "-threads", "1",
            "-x264-params", "threads=1:lookahead-threads=1",
            "-c:a", "aac", "-b:a", "48k", "-ar", "22050", "-ac", "1",
            "-movflags", "+faststart", *_BITEXACT, str(mp4),
        )  # fmt: skip
    if remuxed:
        _ffmpeg("-i", str(mp4), "-map", "0", "-c", "copy", *_BITEXACT, str(out_dir / VIDEO_MOV))
        _ffmpeg("-i", str(mp4), "-map", "0", "-c", "copy", *_BITEXACT, str(out_dir / VIDEO_MKV))
    _ffmpeg(
        "-i", str(mp4), "-t", f"{WEBM_DURATION:g}", "-map", "0",
        "-c:v", "libvpx-vp9", "-b:v", "400k", "-deadline", "realtime", "-cpu-used", "8", "-threads", "1",
        "-row-mt", "0", "-g", "50", "-c:a", "libopus", "-b:a", "32k", *_BITEXACT, str(out_dir / VIDEO_WEBM),
    )  # fmt: skip
    (out_dir / SUBTITLES).write_text(_subrip(SUBTITLE_CUES), encoding="utf-8", newline="\n")
    twins = [ExpectedFile(VIDEO_MOV, "SUCCEEDED", "video"), ExpectedFile(VIDEO_MKV, "SUCCEEDED", "video")]
    return [
        ExpectedFile(VIDEO, "SUCCEEDED", "video"),
        ExpectedFile(SUBTITLES, "SUCCEEDED", "document"),
        *(twins if remuxed else []),
        ExpectedFile(VIDEO_WEBM, "SUCCEEDED", "video"),
        *write_bad_media(out_dir),
    ]


def write_bad_media(out_dir: Path) -> list[ExpectedFile]:
    """A truncated MP4 (an upload cut short), text named .mp4, an empty .mov, a truncated JPEG.

    Needs the sample MP4 (``write_video``) and JPEG (``write_images``) when those exist; each bad
    file is only written once its source is there.
    """
    bad = Path(out_dir) / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    expected = []
    mp4 = Path(out_dir) / VIDEO
    if mp4.exists():
        data = mp4.read_bytes()
        (bad / "truncated.mp4").write_bytes(data[: int(len(data) * TRUNCATED_FRACTION)])
        expected.append(ExpectedFile(BAD_TRUNCATED_MP4, "FAILED", "video", "MediaLens.InvalidMedia", "truncated"))
    (bad / "not-a-video.mp4").write_text(
        "Minutes of the launch meeting.\nThis is a text file that was saved with the wrong name.\n",
        encoding="utf-8",
        newline="\n",
    )
    expected.append(ExpectedFile(BAD_TEXT_AS_MP4, "FAILED", "document", "MediaLens.InvalidMedia", "mislabelled file"))
    (bad / "empty.mov").write_bytes(b"")
    expected.append(ExpectedFile(BAD_EMPTY_MOV, "FAILED", None, "MediaLens.InvalidMedia", "empty file"))
    jpeg = Path(out_dir) / IMAGE_JPEG_ROTATED
    if jpeg.exists():
        data = jpeg.read_bytes()
        (bad / "truncated.jpg").write_bytes(data[: len(data) // 2])
        expected.append(ExpectedFile(BAD_TRUNCATED_JPEG, "FAILED", "image", "MediaLens.InvalidMedia", "truncated"))
    return expected


def _text_image(lines: tuple[str, ...], size: tuple[int, int], background: str) -> Image.Image:
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(font_path(), 44)
    y = 60
    for line in lines:
        draw.text((50, y), line, font=font, fill="black")
        y += 80
    return image


def write_images(out_dir: Path) -> list[ExpectedFile]:
    """A PNG, a JPEG stored sideways with EXIF orientation 6 (and camera tags), a WebP."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    _text_image(IMAGE_TEXT[IMAGE_PNG], (800, 300), "white").save(out_dir / IMAGE_PNG, optimize=False)

    upright = _text_image(IMAGE_TEXT[IMAGE_JPEG_ROTATED], (720, 320), "#f4f1e8")
    exif = Image.Exif()
    exif[0x0112] = JPEG_ORIENTATION  # Orientation
    exif[0x010F] = "Acme"  # Make
    exif[0x0110] = "Field Camera 2"  # Model
    exif[0x0132] = "2024:03:01 09:30:00"  # DateTime
    # Stored pixels = the upright picture turned 90 degrees counter-clockwise (Pillow's ROTATE_90);
    # orientation 6 tells a viewer to turn them 90 degrees clockwise.
    upright.transpose(Image.Transpose.ROTATE_90).save(
        out_dir / IMAGE_JPEG_ROTATED, quality=90, exif=exif.tobytes(), optimize=False, progressive=False
    )

    _text_image(IMAGE_TEXT[IMAGE_WEBP], (640, 300), "#fff6cc").save(out_dir / IMAGE_WEBP, quality=90, method=4)
    return [
        ExpectedFile(IMAGE_PNG, "SUCCEEDED", "image"),
        ExpectedFile(IMAGE_JPEG_ROTATED, "SUCCEEDED", "image"),
        ExpectedFile(IMAGE_WEBP, "SUCCEEDED", "image"),
    ]


def video_queries() -> list[ExpectedQuery]:
    """Questions answered by what the sample video shows or says, and by the images' text."""
    return [
        ExpectedQuery("When will the R2 be shipped?", VIDEO, None, "14 OCTOBER", expect_start=9.5, expect_end=12.5),
        ExpectedQuery(
            "When is the Acme Robotics title on screen?", VIDEO, None, "ACME ROBOTICS", expect_start=0.5, expect_end=3.5
        ),
        ExpectedQuery(
            "How heavy a load can the warehouse robot carry?",
            VIDEO,
            None,
            "kilograms",
            expect_start=SPEECH_START,
            expect_end=9.0,
        ),
        ExpectedQuery(
            "Which city gets the first robots?", VIDEO, None, "Gothenburg", expect_start=13.5, expect_end=21.0
        ),
        ExpectedQuery("How much is owed on invoice 4721?", IMAGE_PNG, None, "1250 EUR"),
        ExpectedQuery("Which firmware release is the sprint aiming for?", IMAGE_JPEG_ROTATED, None, "FIRMWARE 3.2"),
        ExpectedQuery("Where are the gear motors stored?", IMAGE_WEBP, None, "AISLE 7"),
    ]


def main(out_dir: Path, *, remuxed: bool = True) -> list[ExpectedFile]:
    """Write the video, image and bad-media samples into ``out_dir``; returns their expectations."""
    out_dir = Path(out_dir)
    images = write_images(out_dir)
    videos = write_video(out_dir, remuxed=remuxed)  # also writes the bad inputs, now the JPEG exists
    return images + videos


def ensure(out_dir: Path) -> list[ExpectedFile]:
    """``main`` unless a previous run already wrote every file (tests share one copy per session);
    the record of a finished run sits beside the folder, so ingesting the folder never sees it."""
    out_dir = Path(out_dir)
    record = out_dir.with_name(f"{out_dir.name}.sample-video.json")
    if record.is_file():
        files = [ExpectedFile(**entry) for entry in json.loads(record.read_text(encoding="utf-8"))]
        if all((out_dir / f.path).is_file() for f in files):
            return files
    files = main(out_dir)
    record.write_text(json.dumps([asdict(f) for f in files], indent=2) + "\n", encoding="utf-8")
    return files


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("sample-media"), help="folder to write (default: %(default)s)")
    args = parser.parse_args(argv)
    files = main(args.out)
    for expected in files:
        print(f"{expected.status:9} {expected.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_cli())
