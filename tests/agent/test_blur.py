"""Pixelation: with blur on, only blocks of average colour ever leave memory."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageStat

from agent.config import Settings
from agent.imaging import pixelate
from agent.queue import CaptureQueue, QueuedMeta
from agent.tracker import CaptureCycle


def detailed_screen(width: int = 640, height: int = 360) -> Image.Image:
    """Fine text-like detail: one-pixel lines on white, the kind of thing blur must hide."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for y in range(0, height, 3):
        draw.line([(0, y), (width, y)], fill=(0, 0, 0) if y % 2 else (200, 30, 30))
    draw.text((20, 20), "password: hunter2", fill="black")
    return image


def blocks_are_uniform(image: Image.Image, block: int) -> bool:
    for top in range(0, image.height - block, block):
        for left in range(0, image.width - block, block):
            colours = image.crop((left, top, left + block, top + block)).getcolors(maxcolors=1)
            if colours is None:  # more than one colour in the block
                return False
    return True


def test_pixelation_turns_every_block_into_one_colour() -> None:
    blurred = pixelate(detailed_screen(), 16)
    assert blurred.size == (640, 360)
    assert blocks_are_uniform(blurred, 16)


def test_pixelation_keeps_the_overall_picture() -> None:
    original = detailed_screen()
    blurred = pixelate(original, 16)
    for before, after in zip(ImageStat.Stat(original).mean, ImageStat.Stat(blurred).mean, strict=True):
        assert abs(before - after) < 3


class DetailedScreen:
    name = "detailed"

    def frames(self) -> Iterator[Image.Image]:
        yield detailed_screen()


def test_with_blur_on_the_queued_image_is_the_pixelated_one(tmp_path: Path) -> None:
    queue = CaptureQueue(tmp_path / "queue", limit_bytes=2**30)
    meta = QueuedMeta(str(uuid.uuid4()), "contract-1", datetime.now(UTC), "m", "screenshot")
    settings = Settings(blur=True, blur_block_px=16, webp_quality=90)
    CaptureCycle(queue, settings, tmp_path / "thumbs").screenshot(DetailedScreen(), meta)

    (item,) = queue.pending()
    (content,) = item.read_images()
    stored = Image.open(io.BytesIO(content)).convert("RGB")
    expected = pixelate(detailed_screen(), 16)
    original = detailed_screen()
    distance_to_blurred = ImageStat.Stat(ImageChops.difference(stored, expected)).mean
    distance_to_original = ImageStat.Stat(ImageChops.difference(stored, original)).mean
    assert max(distance_to_blurred) < 4
    assert min(distance_to_original) > 20
    # The local thumbnail is made from the blurred frame too.
    (thumbnail,) = (tmp_path / "thumbs").glob("*.webp")
    assert Image.open(thumbnail).width <= 320
