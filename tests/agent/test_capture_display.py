"""Real captures: X11 under Xvfb through mss, Wayland under headless sway through grim.

The Wayland capture runs in this (root) test process against the socket of a sway that runs as nobody;
root may open the 0700 runtime folder, which is all a Wayland client needs.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from agent.capture import GrimBackend, MssBackend, candidate_backends, choose_backend
from agent.config import Settings
from agent.queue import CaptureQueue, QueuedMeta
from agent.tracker import CaptureCycle
from tests.agent.displays import WaylandSession, XDisplay, x_solid_background

pytestmark = pytest.mark.display


def meta(capture_id: str = "00000000-0000-4000-8000-000000000001") -> QueuedMeta:
    return QueuedMeta(capture_id, "contract-1", datetime.now(UTC), "checkout page", "screenshot")


def decoded(queue: CaptureQueue) -> list[Image.Image]:
    (item,) = queue.pending()
    return [Image.open(io.BytesIO(content)) for content in item.read_images()]


def test_x11_capture_is_one_webp_per_monitor_with_the_screen_content(
    x_display: XDisplay, tmp_path: Path
) -> None:
    x_solid_background(x_display, "#336699")
    (backend,) = candidate_backends({"DISPLAY": x_display.name})
    assert isinstance(backend, MssBackend)
    queue = CaptureQueue(tmp_path / "queue", limit_bytes=2**30)
    CaptureCycle(queue, Settings(), tmp_path / "thumbs").screenshot(backend, meta())

    (image,) = decoded(queue)
    assert image.format == "WEBP"
    assert image.size == (1920, 1080)
    red, green, blue = ImageStat.Stat(image.convert("RGB")).mean
    assert abs(red - 0x33) < 4 and abs(green - 0x66) < 4 and abs(blue - 0x99) < 4
    (thumbnail,) = (tmp_path / "thumbs").glob("*.webp")
    assert Image.open(thumbnail).width <= 320


def test_x11_randr_monitors_give_one_image_each_in_monitor_order(
    x_two_monitors: XDisplay, tmp_path: Path
) -> None:
    queue = CaptureQueue(tmp_path / "queue", limit_bytes=2**30)
    backend = choose_backend({"DISPLAY": x_two_monitors.name})
    CaptureCycle(queue, Settings(), None).screenshot(backend, meta())

    assert [image.size for image in decoded(queue)] == [(1920, 1080), (1280, 1024)]


def test_wayland_on_sway_captures_each_output_with_grim(wayland: WaylandSession, tmp_path: Path) -> None:
    # DISPLAY is set too, as XWayland would set it: the agent must still capture through Wayland.
    environ = {"PATH": "/usr/local/bin:/usr/bin:/bin", "DISPLAY": ":999", **wayland.environ}
    backend = choose_backend(environ)
    assert isinstance(backend, GrimBackend)
    queue = CaptureQueue(tmp_path / "queue", limit_bytes=2**30)
    CaptureCycle(queue, Settings(), None).screenshot(backend, meta())

    assert [image.size for image in decoded(queue)] == [(1280, 720), (1024, 768)]
