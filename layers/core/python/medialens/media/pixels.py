"""Pixels: decoding any image input to upright RGB, and perceptual hashes.

Every decode goes through ``open_image``, which loads the pixels fully so a truncated or corrupt
file fails here with ``InvalidMediaError`` rather than yielding a half-grey picture to OCR.
EXIF orientation is applied before hashing, OCR and embedding: phones store portrait photos
sideways and rely on the tag, and OCR on the stored pixels would read vertical text.

The perceptual hash (``perceptual_hash``) is shared by still images and video keyframes, so an
image and a frame can be compared: dHash as imagehash computes it (grey, shrink, one bit per
neighbour comparison), horizontal and vertical, 16x16 each (512 bits, 128 hex digits). The plain
8x8 horizontal dHash is blind to what matters before OCR: on the sample video a burnt-in caption
changes 0-5 of its 64 bits, and two flat shots of different colours hash the same;
horizontal+vertical 16x16 moves 32-55 bits of 512 for the same captions.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from medialens.errors import InvalidMediaError

# What the recognisers and embedders accept: encoded bytes (JPEG, PNG, WebP), a file path, a
# Pillow image, or an RGB uint8 array (height, width, 3).
ImageInput = bytes | Path | Image.Image | npt.NDArray[np.uint8]
RgbArray = npt.NDArray[np.uint8]

DEFAULT_HASH_SIZE = 16


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


def check_declared_size(source: Path | str, *, max_pixels: int | None = None) -> tuple[int, int]:
    """The image's width and height as its header declares them, read without decoding a pixel;
    ``InvalidMediaError`` when it is over ``max_pixels`` (default Pillow's bomb limit), so a
    small file declaring a huge canvas is refused before anything allocates it."""
    limit = max_pixels or Image.MAX_IMAGE_PIXELS or 0
    name = Path(source).name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # judged below, on the numbers
            with Image.open(source) as image:
                width, height = image.size
    except Image.DecompressionBombError:  # over twice the limit: Pillow will not even say the size
        raise InvalidMediaError(
            f"image too large to analyse: {name} declares a canvas over twice {limit:,} pixels; "
            "downscale it and upload it again"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        return 0, 0  # not readable as an image here: the decoders that follow say why
    if limit and width * height > limit:
        raise InvalidMediaError(
            f"image too large to analyse: {name} is {width:,}x{height:,} = {width * height / 1e6:,.0f} megapixels; "
            f"the limit is {limit / 1e6:,.0f} megapixels: downscale it and upload it again"
        )
    return width, height


def upright(image: Image.Image) -> Image.Image:
    """The image as a viewer shows it: EXIF orientation applied, converted to RGB (alpha over white;
    16-bit and floating-point greys scaled to 8 bits, where Pillow's own conversion clips them white)."""
    turned = ImageOps.exif_transpose(image)
    if turned.mode.startswith("I;16") or turned.mode in ("I", "F"):
        values = np.asarray(turned, dtype=np.float64)
        low, high = (0.0, 65535.0) if turned.mode.startswith("I;16") else (float(values.min()), float(values.max()))
        scaled = (values - low) * (255.0 / max(high - low, 1e-9))
        return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8)).convert("RGB")
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
