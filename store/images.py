"""Checking uploaded screenshots before anything is kept, and making thumbnails."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

from domain.errors import InvalidInput, TooLarge

FORMATS = {"WEBP": ("webp", "image/webp"), "PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg")}
THUMB_WIDTH = 320


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    format: str
    extension: str
    content_type: str
    width: int
    height: int


def check_image(data: bytes, *, index: int, max_bytes: int, max_pixels: int) -> CheckedImage:
    """The image if it is a whole WebP, PNG or JPEG within the limits; else a 413/422 saying why."""
    what = f"image {index + 1}"
    if len(data) == 0:
        raise InvalidInput(f"{what} is empty")
    if len(data) > max_bytes:
        raise TooLarge(f"{what} is {len(data)} bytes; the limit is {max_bytes} bytes per monitor image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format or ""
                width, height = probe.size
                if fmt not in FORMATS:
                    raise InvalidInput(f"{what} is {fmt or 'not an image'}; send WebP, PNG or JPEG")
                # The header's size is checked before any pixel is decoded: a bomb never expands.
                if width <= 0 or height <= 0 or width * height > max_pixels:
                    raise TooLarge(f"{what} is {width}x{height} pixels; the limit is {max_pixels} pixels")
                probe.load()  # a truncated or corrupt file fails here
    except (InvalidInput, TooLarge):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge(f"{what} decompresses to too many pixels (a decompression bomb?)") from None
    except Exception:
        raise InvalidInput(f"{what} is truncated or corrupt: send a whole WebP, PNG or JPEG file") from None
    extension, content_type = FORMATS[fmt]
    return CheckedImage(data, fmt, extension, content_type, width, height)


def thumbnail(image: CheckedImage, width: int = THUMB_WIDTH) -> bytes:
    with Image.open(io.BytesIO(image.data)) as source:
        source.draft("RGB", (width, width))  # JPEG: decode at a reduced scale
        frame = source.convert("RGB")
        height = max(1, round(frame.height * width / frame.width))
        frame = frame.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
        out = io.BytesIO()
        frame.save(out, "WEBP", quality=55, method=2)
        return out.getvalue()
