"""What happens to a frame between the grab and the queue: pixelation, WebP encoding, a local thumbnail."""

from __future__ import annotations

import io

# WebPImagePlugin registers the WebP encoder now. Without it, the first save(format="WEBP") makes Pillow
# import every one of its format plugins (AVIF, JPEG 2000, TIFF... with their libraries): about 3.5 MB
# that then stays resident in the tracker all day for nothing.
from PIL import Image, WebPImagePlugin  # noqa: F401

WEBP_METHOD = 4  # Pillow's default: the size/CPU balance; 6 saves ~5 % for twice the CPU
THUMBNAIL_WIDTH = 320


def pixelate(image: Image.Image, block_px: int) -> Image.Image:
    """Blocks of ``block_px`` pixels, each its average colour: text and faces become unreadable.

    Done on the frame in memory, before encoding, so no unblurred byte is ever written or sent.
    """
    width, height = image.size
    # reduce() averages exact block_px squares (the last row and column average what is there), so
    # blocks sit on a fixed grid; the upscale is then a plain repeat of each average.
    small = image.reduce(block_px)
    grid = small.resize((small.width * block_px, small.height * block_px), Image.Resampling.NEAREST)
    small.close()
    if grid.size == (width, height):
        return grid
    return grid.crop((0, 0, width, height))


def encode_webp(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=quality, method=WEBP_METHOD)
    return out.getvalue()


def thumbnail_webp(image: Image.Image, quality: int = 50) -> bytes:
    """A small preview kept on this machine only (the server makes its own)."""
    width = image.width
    factor = max(1, width // THUMBNAIL_WIDTH)
    # reduce() averages whole blocks in C: far cheaper than a filtered resize of the full frame.
    small = image.reduce(factor) if factor > 1 else image
    return encode_webp(small, quality)
