"""Still images: metadata and EXIF, orientation before OCR, perceptual hashes, bad files."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medialens.domain.moments import Modality
from medialens.errors import InvalidMediaError
from medialens.media.images import image_text_passages, inspect_image
from medialens.media.ocr_lines import OcrLine
from medialens.media.pixels import hash_distance, open_image, perceptual_hash
from medialens.ml.ocr import RapidOcrRecognizer
from medialens.pipeline.images import read_image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import sample_video  # the script that writes the sample media, via sys.path above

pytestmark = pytest.mark.integration


def test_png_metadata(video_samples: Path) -> None:
    info, picture = inspect_image(video_samples / sample_video.IMAGE_PNG)
    assert (info.format, info.mime_type, info.mode) == ("PNG", "image/png", "RGB")
    assert (info.width, info.height) == (info.display_width, info.display_height) == (800, 300)
    assert info.orientation is None and info.exif == {} and info.gps is None and not info.has_alpha
    assert picture.size == (800, 300) and picture.mode == "RGB"
    assert len(info.dhash) == 128 and info.hash_size == 16


def test_jpeg_exif_and_orientation(video_samples: Path) -> None:
    info, picture = inspect_image(video_samples / sample_video.IMAGE_JPEG_ROTATED)
    assert (info.format, info.mime_type) == ("JPEG", "image/jpeg")
    assert info.orientation == sample_video.JPEG_ORIENTATION
    assert (info.width, info.height) == (320, 720)  # stored sideways
    assert (info.display_width, info.display_height) == picture.size == (720, 320)
    assert info.exif == {"Make": "Acme", "Model": "Field Camera 2", "DateTime": "2024:03:01 09:30:00"}


def test_webp_metadata(video_samples: Path) -> None:
    info, _ = inspect_image(video_samples / sample_video.IMAGE_WEBP)
    assert (info.format, info.mime_type, info.width, info.height) == ("WEBP", "image/webp", 640, 300)


@pytest.mark.slow
@pytest.mark.parametrize("name", [sample_video.IMAGE_PNG, sample_video.IMAGE_JPEG_ROTATED, sample_video.IMAGE_WEBP])
def test_image_ocr_passages(video_samples: Path, recognizer: RapidOcrRecognizer, name: str) -> None:
    analysis = read_image(video_samples / name, recognizer)
    assert [line.text for line in analysis.lines] == list(sample_video.IMAGE_TEXT[name])
    (passage,) = analysis.passages  # the lines sit 80 px apart (44 px glyphs): one block
    assert passage.modality is Modality.IMAGE_TEXT and passage.start is None
    assert passage.text == "\n".join(sample_video.IMAGE_TEXT[name])
    assert passage.confidence is not None and passage.confidence > 0.9
    assert analysis.ocr_model == recognizer.version


@pytest.mark.slow
def test_orientation_is_what_makes_the_sideways_jpeg_readable(
    video_samples: Path, recognizer: RapidOcrRecognizer
) -> None:
    with Image.open(video_samples / sample_video.IMAGE_JPEG_ROTATED) as stored:
        raw = np.asarray(stored.convert("RGB"))  # the stored pixels, EXIF ignored
    texts = {line.text for line in recognizer.recognize_one(raw)}
    assert "SPRINT GOAL" not in texts
    assert "SPRINT GOAL" in {
        line.text for line in recognizer.recognize_one(video_samples / sample_video.IMAGE_JPEG_ROTATED)
    }


def test_perceptual_hash_finds_near_duplicates(video_samples: Path) -> None:
    original, picture = inspect_image(video_samples / sample_video.IMAGE_PNG)
    recompressed = io.BytesIO()
    picture.resize((400, 150)).save(recompressed, format="JPEG", quality=60)
    again = perceptual_hash(open_image(recompressed.getvalue()))
    other, _ = inspect_image(video_samples / sample_video.IMAGE_WEBP)
    assert hash_distance(original.dhash, again) <= 16  # smaller and lossy: still a near-duplicate
    # Two different text-on-plain-paper pictures: most bits compare blank paper with blank paper
    # in both, yet they sit well apart (43 bits here) from the near-duplicate bound.
    assert hash_distance(original.dhash, other.dhash) > 32
    assert hash_distance(original.dhash, original.dhash) == 0
    with pytest.raises(ValueError, match="different sizes"):
        hash_distance(original.dhash, original.dhash[:16])


def test_transparent_png_is_flattened_on_white(tmp_path: Path) -> None:
    path = tmp_path / "logo.png"
    Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(path)
    info, picture = inspect_image(path)
    assert info.has_alpha and info.mode == "RGBA"
    assert picture.getpixel((5, 5)) == (255, 255, 255)


def test_truncated_jpeg(video_samples: Path) -> None:
    with pytest.raises(InvalidMediaError, match=r"truncated image: truncated\.jpg cannot be decoded"):
        inspect_image(video_samples / sample_video.BAD_TRUNCATED_JPEG)


def test_truncated_png(video_samples: Path, tmp_path: Path) -> None:
    data = (video_samples / sample_video.IMAGE_PNG).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidMediaError, match=r"^(truncated|corrupt) image: cut\.png"):
        inspect_image(cut)


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\x00\x01 definitely not an image " * 20)
    with pytest.raises(InvalidMediaError, match=r"not a readable image: photo\.jpg"):
        inspect_image(path)


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (200, 200)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(InvalidMediaError, match="image too large to analyse"):
        open_image(path)


def _line(text: str, top: float, height: float = 30.0) -> OcrLine:
    return OcrLine(text=text, confidence=0.9, box=((10, top), (200, top), (200, top + height), (10, top + height)))


def test_image_text_blocks() -> None:
    passages = image_text_passages(
        [_line("TOTAL", 200), _line("INVOICE", 10), _line("ACME LTD", 45), _line("DUE NOW", 235)], first_index=3
    )
    assert [(p.index, p.text) for p in passages] == [(3, "INVOICE\nACME LTD"), (4, "TOTAL\nDUE NOW")]
    assert image_text_passages([]) == []


def _unusual_images(folder: Path) -> dict[str, Path]:
    """A photo-like picture (smooth gradients and a block) saved in the forms users upload."""
    y, x = np.mgrid[0:240, 0:320]
    rgb = np.stack([x * 255 // 320, y * 255 // 240, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    rgb[60:180, 100:220] = (200, 40, 40)
    picture = Image.fromarray(rgb)
    paths = {name: folder / name for name in ("cmyk.jpg", "grey16.png", "animated.gif", "strip.png", "dot.png")}
    picture.convert("CMYK").save(paths["cmyk.jpg"])
    grey = np.asarray(picture.convert("L")).astype(np.uint16) * 257  # full 16-bit range
    Image.fromarray(grey).save(paths["grey16.png"])
    picture.save(paths["animated.gif"], save_all=True, append_images=[picture.rotate(90)], duration=100, loop=0)
    Image.new("RGB", (20000, 5), "white").save(paths["strip.png"])  # scales to nothing for the detector
    Image.new("RGB", (1, 1), "white").save(paths["dot.png"])
    return paths


def test_sixteen_bit_greys_are_scaled_not_clipped(tmp_path: Path) -> None:
    paths = _unusual_images(tmp_path)
    info, picture = inspect_image(paths["grey16.png"])
    assert info.mode.startswith("I;16") and picture.mode == "RGB"
    values = np.asarray(picture)
    # Pillow's own conversion clips every value over 255 to white; scaled, the gradient survives.
    assert values.min() < 60 and values.max() > 200 and len(np.unique(values)) > 100


@pytest.mark.slow
def test_unusual_images_are_read_and_labelled(recognizer: RapidOcrRecognizer, tmp_path: Path) -> None:
    from medialens.ml.visual_labels import get_image_labeler
    from medialens.settings import Settings

    labeler = get_image_labeler(Settings())
    for name, path in _unusual_images(tmp_path).items():
        analysis = read_image(path, recognizer, labeler=labeler, max_labels=5)
        (shown,) = [p for p in analysis.passages if p.modality is Modality.VISUAL]
        assert shown.text and shown.confidence is not None, name
        assert len(analysis.labels) == 5 and analysis.label_model == labeler.version, name
        if name == "strip.png":
            assert analysis.lines == []  # no line to read; the picture is still labelled
