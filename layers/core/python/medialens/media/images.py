"""Still images: technical metadata and EXIF, perceptual hash, and on-image text as passages.

Every decode goes through ``open_image``, which loads the pixels fully so a truncated or corrupt
file fails here with ``InvalidMediaError`` rather than yielding a half-grey picture to OCR.
EXIF orientation is applied before hashing, OCR and embedding: phones store portrait photos
sideways and rely on the tag, and OCR on the stored pixels would read vertical text.

The perceptual hash (``perceptual_hash``) is shared with video keyframes, so an image and a frame
can be compared: dHash as imagehash computes it (grey, shrink, one bit per neighbour comparison),
horizontal and vertical, 16x16 each (512 bits, 128 hex digits). The plain 8x8 horizontal dHash
is blind to what matters before OCR: on the sample video a burnt-in caption changes 0-5 of its
64 bits, and two flat shots of different colours hash the same; horizontal+vertical 16x16 moves
32-55 bits of 512 for the same captions.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, Field

from medialens.domain.moments import Modality, Passage
from medialens.errors import InvalidMediaError
from medialens.ml.ocr import OcrLine

if TYPE_CHECKING:
    from medialens.ml.ocr import TextRecognizer

# What the recognisers and embedders accept: encoded bytes (JPEG, PNG, WebP), a file path, a
# Pillow image, or an RGB uint8 array (height, width, 3).
ImageInput = bytes | Path | Image.Image | npt.NDArray[np.uint8]
RgbArray = npt.NDArray[np.uint8]

DEFAULT_HASH_SIZE = 16

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
    passages: list[Passage] = Field(default_factory=list)
    ocr_model: str | None = Field(default=None, description="version of the recogniser, when OCR ran")


def open_image(source: Path | str | bytes) -> Image.Image:
    """Open and fully decode an image (first frame of an animation); ``InvalidMediaError`` if the
    data is not an image, is cut short or corrupt, or is absurdly large (a decompression bomb)."""
    name = "image data" if isinstance(source, bytes) else Path(source).name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else Path(source))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidMediaError(
            f"image too large to analyse: {name} ({error}); downscale it below {Image.MAX_IMAGE_PIXELS:,} pixels"
        ) from error
    except UnidentifiedImageError as error:
        raise InvalidMediaError(f"not a readable image: {name} is in no format Pillow can decode") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        text = str(error)
        what = "truncated image" if "truncated" in text or isinstance(error, EOFError) else "corrupt image"
        raise InvalidMediaError(
            f"{what}: {name} cannot be decoded ({text}); the upload was probably cut short or damaged, "
            "upload the original file again"
        ) from error
    return image


def upright(image: Image.Image) -> Image.Image:
    """The image as a viewer shows it: EXIF orientation applied, converted to RGB (alpha over white)."""
    turned = ImageOps.exif_transpose(image)
    if turned.mode in ("RGBA", "LA") or (turned.mode == "P" and "transparency" in turned.info):
        rgba = turned.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, "white")
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return turned.convert("RGB")


def as_rgb_array(image: ImageInput) -> RgbArray:
    """Any ``ImageInput`` as an RGB uint8 array; files and bytes are decoded and turned upright."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"image arrays must be uint8 RGB, got {image.dtype}")
        if image.ndim == 2:
            return np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(f"image arrays must be (height, width, 3) RGB, got shape {image.shape}")
        return np.ascontiguousarray(image[:, :, :3])
    if isinstance(image, Image.Image):
        return np.asarray(upright(image) if image.mode != "RGB" else image, dtype=np.uint8)
    opened = open_image(image)
    try:
        return np.asarray(upright(opened), dtype=np.uint8)
    finally:
        opened.close()


def perceptual_hash_bits(gray: npt.NDArray[np.uint8], hash_size: int = DEFAULT_HASH_SIZE) -> npt.NDArray[np.bool_]:
    """dHash bits of a greyscale picture: ``hash_size`` x ``hash_size`` horizontal comparisons,
    then as many vertical ones (area-averaged shrink, so encoder noise mostly cancels out)."""
    wide = cv2.resize(gray, (hash_size + 1, hash_size), interpolation=cv2.INTER_AREA)
    tall = cv2.resize(gray, (hash_size, hash_size + 1), interpolation=cv2.INTER_AREA)
    return np.concatenate([(wide[:, 1:] > wide[:, :-1]).ravel(), (tall[1:, :] > tall[:-1, :]).ravel()])


def hash_hex(bits: npt.NDArray[np.bool_]) -> str:
    """Bits as hex, first bit most significant (as imagehash writes its hashes)."""
    packed = np.packbits(bits.astype(np.uint8))
    return packed.tobytes().hex()[: (len(bits) + 3) // 4]


def hash_distance(first: str, second: str) -> int:
    """Hamming distance between two hex hashes of the same size."""
    if len(first) != len(second):
        raise ValueError(f"hashes of different sizes: {len(first)} and {len(second)} hex digits")
    return (int(first, 16) ^ int(second, 16)).bit_count()


def perceptual_hash(image: Image.Image | RgbArray, hash_size: int = DEFAULT_HASH_SIZE) -> str:
    """Hex perceptual hash of an (upright) picture; compare two with ``hash_distance``."""
    array: RgbArray = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.uint8)
    gray: RgbArray = cv2.cvtColor(array, cv2.COLOR_RGB2GRAY) if array.ndim == 3 else array  # type: ignore[assignment]
    return hash_hex(perceptual_hash_bits(gray, hash_size))


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


def analyze_image(
    path: Path | str,
    recognizer: TextRecognizer | None,
    *,
    min_confidence: float = 0.5,
    hash_size: int = DEFAULT_HASH_SIZE,
) -> ImageAnalysis:
    """Metadata, hash and (with a recogniser) OCR of one image, its text as IMAGE_TEXT passages."""
    info, picture = inspect_image(path, hash_size=hash_size)
    if recognizer is None:
        return ImageAnalysis(info=info)
    (lines,) = recognizer.recognize([np.asarray(picture, dtype=np.uint8)])
    kept = [line for line in lines if line.confidence >= min_confidence]
    return ImageAnalysis(info=info, lines=kept, passages=image_text_passages(kept), ocr_model=recognizer.version)


def image_text_passages(lines: Sequence[OcrLine], *, first_index: int = 0) -> list[Passage]:
    """Group OCR lines into blocks (a vertical gap wider than a line's height starts a new one)
    and make one IMAGE_TEXT passage per block, in reading order, confidence = length-weighted mean."""
    ordered = sorted(lines, key=lambda line: (line.top, line.left))
    if not ordered:
        return []
    gap_limit = median(line.height for line in ordered)
    blocks: list[list[OcrLine]] = [[ordered[0]]]
    for line in ordered[1:]:
        previous = blocks[-1][-1]
        if line.top - previous.bottom > gap_limit:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    passages = []
    for number, block in enumerate(blocks):
        weights = [max(len(line.text), 1) for line in block]
        confidence = sum(w * line.confidence for w, line in zip(weights, block, strict=True)) / sum(weights)
        passages.append(
            Passage(
                index=first_index + number,
                text="\n".join(line.text for line in block),
                modality=Modality.IMAGE_TEXT,
                confidence=round(confidence, 4),
            )
        )
    return passages


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
