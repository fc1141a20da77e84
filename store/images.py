"""Checking uploaded screenshots before anything is kept, and making thumbnails."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

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
    thumbnail: bytes | None = None


def declared_pixels(data: bytes) -> int:
    """Width times height as the image's header declares them, without decoding it (0 when the header cannot
    be read: ``check_image`` then says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Exception:
        return 0
    return max(width, 0) * max(height, 0)


def check_pixel_budget(images: list[bytes], max_capture_pixels: int) -> None:
    """All of a capture's monitors together, from their headers, before any is decoded: eight 40-megapixel
    images would otherwise cost seconds of CPU each and pass the per-image limit."""
    total = sum(declared_pixels(data) for data in images)
    if total > max_capture_pixels:
        raise TooLarge(
            f"the capture's images hold {total} pixels together; the limit is {max_capture_pixels} per capture",
            "image_too_large",
        )


def check_image(
    data: bytes, *, index: int, max_bytes: int, max_pixels: int, make_thumbnail: bool = False
) -> CheckedImage:
    """The image if it is a whole WebP, PNG or JPEG within the limits; else a 413/422 saying why."""
    what = f"image {index + 1}"
    if len(data) == 0:
        raise InvalidInput(f"{what} is empty", "image_invalid")
    if len(data) > max_bytes:
        raise TooLarge(
            f"{what} is {len(data)} bytes; the limit is {max_bytes} bytes per monitor image",
            "image_too_large",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format or ""
                width, height = probe.size
                if fmt not in FORMATS:
                    raise InvalidInput(
                        f"{what} is {fmt or 'not an image'}; send WebP, PNG or JPEG", "image_invalid"
                    )
                # The header's size is checked before any pixel is decoded: a bomb never expands.
                if width <= 0 or height <= 0 or width * height > max_pixels:
                    raise TooLarge(
                        f"{what} is {width}x{height} pixels; the limit is {max_pixels} pixels",
                        "image_too_large",
                    )
                probe.load()  # a truncated or corrupt file fails here
                # The frame is decoded once: the thumbnail comes from the same pixels.
                thumb = _thumbnail_of(probe) if make_thumbnail else None
    except (InvalidInput, TooLarge):
        raise
    except UnidentifiedImageError:
        raise InvalidInput(f"{what} is not an image; send WebP, PNG or JPEG", "image_invalid") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge(
            f"{what} decompresses to too many pixels (a decompression bomb?)", "image_too_large"
        ) from None
    except Exception:
        raise InvalidInput(
            f"{what} is truncated or corrupt: send a whole WebP, PNG or JPEG file", "image_invalid"
        ) from None
    extension, content_type = FORMATS[fmt]
    return CheckedImage(data, fmt, extension, content_type, width, height, thumb)


def _thumbnail_of(frame: Image.Image, width: int = THUMB_WIDTH) -> bytes:
    factor = max(1, frame.width // width)
    small = frame.reduce(factor) if factor > 1 else frame  # box average in C: cheap on a full frame
    if small.mode not in ("RGB", "RGBA"):
        small = small.convert("RGB")
    height = max(1, round(small.height * width / small.width))
    small = small.resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    small.save(out, "WEBP", quality=55, method=0)
    return out.getvalue()


def thumbnail(image: CheckedImage, width: int = THUMB_WIDTH) -> bytes:
    """The image's thumbnail: the one made while checking it, or made now."""
    if image.thumbnail is not None and width == THUMB_WIDTH:
        return image.thumbnail
    with Image.open(io.BytesIO(image.data)) as source:
        source.load()
        return _thumbnail_of(source, width)
