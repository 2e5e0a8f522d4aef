"""Still images: technical metadata and EXIF, and on-image text as passages.

Decoding, orientation and the perceptual hash are ``medialens.media.pixels``'s; reading the text
is the OCR model's (``medialens.ml.ocr``), run by the image step.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image
from pydantic import BaseModel, Field

from medialens.domain.moments import Modality, Passage
from medialens.media.ocr_lines import OcrLine, text_blocks
from medialens.media.pixels import DEFAULT_HASH_SIZE, open_image, perceptual_hash, upright
from medialens.media.visual import VisualLabel

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "TIFF": "image/tiff"}
_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
# The tags worth keeping as text: who/what made the picture and when, and how it was exposed.
_BASE_TAGS = ("Make", "Model", "Software", "DateTime", "Artist", "Copyright", "ImageDescription")
_EXIF_TAGS = (
    "DateTimeOriginal",
    "OffsetTimeOriginal",
    "ExposureTime",
    "FNumber",
    "ISOSpeedRatings",
    "FocalLength",
    "LensModel",
)
_MAX_TAG_CHARS = 200


class ImageInfo(BaseModel):
    """Technical metadata of a still image; width/height are the stored pixels, display_* after
    EXIF orientation."""

    format: str = Field(description="Pillow's format name: JPEG, PNG, WEBP, ...")
    mime_type: str
    width: int
    height: int
    display_width: int
    display_height: int
    orientation: int | None = Field(default=None, description="EXIF orientation tag (1-8), if present")
    mode: str = Field(description="Pillow pixel mode of the stored image (RGB, RGBA, L, P, CMYK, ...)")
    has_alpha: bool
    frames: int = Field(default=1, description="more than 1 for animations (the first frame is analysed)")
    dpi: tuple[float, float] | None = None
    icc_profile: bool = False
    exif: dict[str, str] = Field(default_factory=dict, description="selected EXIF tags as text")
    gps: tuple[float, float] | None = Field(default=None, description="(latitude, longitude) from EXIF GPS")
    dhash: str = Field(description="perceptual hash of the upright image (hex; see perceptual_hash)")
    hash_size: int = DEFAULT_HASH_SIZE


class ImageAnalysis(BaseModel):
    info: ImageInfo
    lines: list[OcrLine] = Field(default_factory=list, description="OCR lines on the upright image")
    labels: list[VisualLabel] = Field(default_factory=list, description="what the classifier sees, most probable first")
    passages: list[Passage] = Field(default_factory=list)
    ocr_model: str = Field(description="version of the recogniser that read the lines")
    label_model: str | None = Field(default=None, description="version of the classifier, when labels were asked for")


def inspect_image(path: Path | str, *, hash_size: int = DEFAULT_HASH_SIZE) -> tuple[ImageInfo, Image.Image]:
    """Metadata of the image at ``path`` and its upright RGB picture (for OCR or embedding)."""
    image = open_image(path)
    try:
        exif = image.getexif()
        orientation = exif.get(_ORIENTATION)
        picture = upright(image)
        dpi = image.info.get("dpi")
        info = ImageInfo(
            format=image.format or "unknown",
            mime_type=_MIME.get(image.format or "", f"image/{(image.format or 'unknown').lower()}"),
            width=image.width,
            height=image.height,
            display_width=picture.width,
            display_height=picture.height,
            orientation=int(orientation) if isinstance(orientation, int) and 1 <= orientation <= 8 else None,
            mode=image.mode,
            has_alpha=image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info,
            frames=int(getattr(image, "n_frames", 1)),
            dpi=(float(dpi[0]), float(dpi[1])) if isinstance(dpi, tuple) and len(dpi) == 2 else None,
            icc_profile=bool(image.info.get("icc_profile")),
            exif=_exif_text(exif),
            gps=_gps(exif),
            dhash=perceptual_hash(picture, hash_size),
            hash_size=hash_size,
        )
    finally:
        image.close()
    return info, picture


def image_text_passages(lines: Sequence[OcrLine], *, first_index: int = 0) -> list[Passage]:
    """One IMAGE_TEXT passage per block of lines (``ocr_lines.text_blocks``), in reading order,
    confidence = the block's length-weighted mean."""
    return [
        Passage(
            index=first_index + number,
            text=block.text,
            modality=Modality.IMAGE_TEXT,
            confidence=round(block.confidence, 4),
        )
        for number, block in enumerate(text_blocks(lines))
    ]


# --- EXIF -----------------------------------------------------------------------------------


def _tag_text(value: Any) -> str | None:
    if value is None or isinstance(value, bytes):
        return None  # maker notes, thumbnails, undecoded blobs: not text
    if isinstance(value, tuple):
        parts = [_tag_text(v) for v in value]
        return ", ".join(p for p in parts if p is not None) or None
    if isinstance(value, Fraction) or type(value).__name__ == "IFDRational":
        number = float(value)
        return f"{number:g}" if number >= 1 or number == 0 else f"1/{round(1 / number):d}"
    text = str(value).strip("\x00 ").strip()
    return text[:_MAX_TAG_CHARS] or None


def _exif_text(exif: Image.Exif) -> dict[str, str]:
    names = {name: tag for tag, name in ExifTags.TAGS.items()}
    found: dict[str, str] = {}
    for name in _BASE_TAGS:
        value = _tag_text(exif.get(names[name]))
        if value is not None:
            found[name] = value
    sub = exif.get_ifd(_EXIF_IFD)
    for name in _EXIF_TAGS:
        value = _tag_text(sub.get(names[name]))
        if value is not None:
            found[name] = value
    return found


def _gps(exif: Image.Exif) -> tuple[float, float] | None:
    gps = exif.get_ifd(_GPS_IFD)
    try:
        lat, lat_ref, lon, lon_ref = gps[2], gps[1], gps[4], gps[3]
        latitude = (float(lat[0]) + float(lat[1]) / 60 + float(lat[2]) / 3600) * (-1 if lat_ref == "S" else 1)
        longitude = (float(lon[0]) + float(lon[1]) / 60 + float(lon[2]) / 3600) * (-1 if lon_ref == "W" else 1)
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
        return None
    return round(latitude, 6), round(longitude, 6)
