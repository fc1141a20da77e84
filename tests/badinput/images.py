"""Image parts for the capture upload: one good small WebP, and bad ones made from it or built byte by
byte. Each returns bytes; none needs more than a few milliseconds except ``over_byte_limit``."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

FILES = Path(__file__).parent / "files"


def screenshot(label: str = "screen", size: tuple[int, int] = (320, 200), fmt: str = "WEBP") -> bytes:
    """A valid, screen-like image that differs by ``label`` (so its sha256 differs too): a title bar with
    the label written on it, and lines of "text"."""
    rng = random.Random(label)
    image = Image.new("RGB", size, (246, 247, 249))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, size[0], 16), fill=(40, 44, 52))
    for row in range(24, size[1] - 8, 12):
        x = 8
        while x < size[0] - 24:
            width = rng.randint(8, 40)
            draw.rectangle((x, row, x + width, row + 6), fill=(rng.randint(40, 160),) * 3)
            x += width + rng.randint(4, 10)
    draw.text((6, 3), label[:80], fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 60} if fmt in ("WEBP", "JPEG") else {}))
    return out.getvalue()


# --- cut or damaged ---------------------------------------------------------------------------------


def truncated_webp() -> bytes:
    """The first half of a valid WebP: the header promises more than arrives."""
    data = screenshot("truncated webp")
    return data[: len(data) // 2]


def truncated_jpeg() -> bytes:
    data = screenshot("truncated jpeg", fmt="JPEG")
    return data[: len(data) * 3 // 5]


def truncated_png() -> bytes:
    data = screenshot("truncated png", fmt="PNG")
    return data[: len(data) // 2]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(width: int, height: int, idat: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def corrupt_png() -> bytes:
    """A well-formed PNG container (every CRC right) whose compressed pixels are garbage."""
    garbage = bytes(random.Random("corrupt").randrange(256) for _ in range(400))
    return _png(64, 40, b"\x78\x9c" + garbage)


def corrupt_webp() -> bytes:
    """A RIFF/WEBP header followed by noise where the VP8 bitstream should be."""
    noise = bytes(random.Random("corrupt webp").randrange(256) for _ in range(600))
    body = b"WEBP" + b"VP8 " + struct.pack("<I", len(noise)) + noise
    return b"RIFF" + struct.pack("<I", len(body)) + body


# --- bombs and size ---------------------------------------------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG (well under 100 bytes) whose header declares ``width`` x ``height`` pixels: a
    decompression bomb as far as anything that trusts the header is concerned."""
    return _png(width, height, zlib.compress(b"\x00" * 64))


def png_bomb() -> bytes:
    """100,000 x 100,000 pixels declared (10 gigapixels, 30 GB decoded) in a ~80-byte file."""
    return png_declaring(100_000, 100_000)


def png_over_pixel_limit(max_pixels: int) -> bytes:
    """Just over the deployment's pixel limit, yet under Pillow's own bomb threshold."""
    width = 8000
    return png_declaring(width, max_pixels // width + 1)


def over_byte_limit(max_bytes: int) -> bytes:
    """A real, valid PNG of incompressible noise a little over ``max_bytes``."""
    side = int(((max_bytes * 1.05) / 3) ** 0.5) + 1
    noise = random.Random("noise").randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), noise).save(out, "PNG", compress_level=0)
    data = out.getvalue()
    assert len(data) > max_bytes
    return data


# --- wrong kinds of file ------------------------------------------------------------------------------


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (32, 20), 3).save(out, "GIF")
    return out.getvalue()


def bmp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 20), (200, 30, 30)).save(out, "BMP")
    return out.getvalue()


def text_file() -> bytes:
    return (FILES / "notes.txt").read_bytes()


def svg_file() -> bytes:
    return (FILES / "vector.svg").read_bytes()
