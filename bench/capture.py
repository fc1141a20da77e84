"""Benchmark: one capture cycle of the agent at 1920x1080 under Xvfb, against a floor measured in the same run.

- figure: the agent's real cycle (``MssBackend`` + ``CaptureCycle``): grab, WebP encode (quality 60),
  local thumbnail, durable queue write (temp file, fsync, rename, fsync of the folder);
- floor: a bare ``mss`` grab of the same screen and a Pillow WebP encode of that frame, nothing else.

Each side runs in a fresh subprocess (so peak RSS is that side's alone), several times, alternating;
the medians are reported. CPU time is the process's user + system time over the measured cycles (the
first cycle, which warms imports and caches, is excluded). The screen shows a synthetic desktop (text
in an editor-like layout), so the WebP size is representative rather than that of a blank screen.

Targets: ratio <= 1.2, peak RSS <= 64 MiB. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

REPO = Path(__file__).resolve().parents[1]

WIDTH, HEIGHT = 1920, 1080
CYCLES = 8
RUNS = 3


# -- the screen ------------------------------------------------------------------------------------------


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("Xvfb")
    if binary is None:
        sys.exit("Xvfb is not installed: apt-get install -y xvfb")
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [
            binary,
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            f"{WIDTH}x{HEIGHT}x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    number = b""
    while not number.endswith(b"\n"):
        chunk = os.read(read_fd, 16)
        if not chunk:
            break
        number += chunk
    os.close(read_fd)
    if not number.strip():
        process.kill()
        sys.exit("Xvfb did not start")
    return process, f":{int(number)}"


def synthetic_desktop() -> bytes:
    """An editor-like screen (:func:`desktop_image`) as BGRX pixels for XPutImage."""
    from PIL import Image

    image = desktop_image()
    r, g, b = image.split()
    return Image.merge("RGBX", (b, g, r, Image.new("L", image.size, 0))).tobytes()


def desktop_image() -> Image.Image:
    """An editor-like screen at 1920x1080: a side bar, a title bar and lines of text (also what
    bench/browser_tracker.py shares as its screen)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (WIDTH, HEIGHT), (30, 30, 36))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 34), fill=(60, 63, 72))
    draw.rectangle((0, 34, 300, HEIGHT), fill=(37, 37, 44))
    words = "def capture cycle queue upload slot memo contract week return self for in if else".split()
    for row, y in enumerate(range(50, HEIGHT - 20, 19)):
        draw.text((10, y), f"  {words[row % len(words)]}_{row}.py", fill=(170, 170, 180))
        x = 320 + (row % 7) * 16
        for column in range(3 + (row * 5) % 9):
            word = words[(row * 3 + column) % len(words)]
            colour = ((90 + 37 * column) % 255, (140 + 53 * row) % 255, 200)
            draw.text((x, y), word, fill=colour)
            x += 9 * len(word) + 10
    return image


def paint_root(display: str) -> None:
    """Draw the synthetic desktop on the root window with XPutImage (no window manager needed)."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
    x11.XRootWindow.restype = ctypes.c_ulong
    x11.XRootWindow.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XDefaultVisual.restype = ctypes.c_void_p
    x11.XDefaultVisual.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XDefaultGC.restype = ctypes.c_void_p
    x11.XDefaultGC.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCreateImage.restype = ctypes.c_void_p
    x11.XCreateImage.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_int, ctypes.c_int]  # fmt: skip
    x11.XPutImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                              ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]  # fmt: skip
    x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    connection = x11.XOpenDisplay(display.encode())
    screen = x11.XDefaultScreen(connection)
    pixels = ctypes.create_string_buffer(synthetic_desktop(), WIDTH * HEIGHT * 4)
    zpixmap = 2
    image = x11.XCreateImage(connection, x11.XDefaultVisual(connection, screen), 24, zpixmap, 0,
                             ctypes.cast(pixels, ctypes.c_char_p), WIDTH, HEIGHT, 32, 0)  # fmt: skip
    root = x11.XRootWindow(connection, screen)
    x11.XPutImage(connection, root, x11.XDefaultGC(connection, screen), image, 0, 0, 0, 0, WIDTH, HEIGHT)
    x11.XSync(connection, 0)
    # The image's pixel buffer belongs to Python: closing the display without XDestroyImage avoids a
    # double free.
    x11.XCloseDisplay(connection)


# -- the two sides, each in its own process -------------------------------------------------------------


def run_floor(cycles: int) -> dict[str, float]:
    import mss
    from PIL import Image

    sizes: list[int] = []

    def cycle(grabber: mss.MSS) -> None:
        shot = grabber.grab(grabber.monitors[1])
        frame = Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")
        out = io.BytesIO()
        frame.save(out, format="WEBP", quality=60)
        sizes.append(out.tell())

    with mss.MSS() as grabber:
        cycle(grabber)  # warm-up
        start = time.process_time()
        for _ in range(cycles):
            cycle(grabber)
        cpu = time.process_time() - start
    return {"cpu_ms": cpu * 1000 / cycles, "bytes": statistics.median(sizes)}


def run_agent(cycles: int) -> dict[str, float]:
    from agent.capture import MssBackend
    from agent.config import Settings
    from agent.memory import return_large_blocks_promptly
    from agent.queue import CaptureQueue, QueuedMeta
    from agent.tracker import CaptureCycle

    return_large_blocks_promptly()  # as `workproof-agent start` does
    folder = Path(tempfile.mkdtemp(prefix="wp-bench-"))
    try:
        queue = CaptureQueue(folder / "queue", limit_bytes=2**34)
        capture_cycle = CaptureCycle(queue, Settings(), folder / "thumbnails")
        backend = MssBackend(os.environ.get("DISPLAY"))

        def cycle() -> None:
            meta = QueuedMeta(str(uuid.uuid4()), "bench", datetime.now(UTC), "benchmark memo", "screenshot")
            capture_cycle.screenshot(backend, meta)

        cycle()  # warm-up
        start = time.process_time()
        for _ in range(cycles):
            cycle()
        cpu = time.process_time() - start
        sizes = [item.file_size for item in queue.pending()]
        return {"cpu_ms": cpu * 1000 / cycles, "bytes": statistics.median(sizes)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def child(side: str, cycles: int) -> None:
    result = run_floor(cycles) if side == "floor" else run_agent(cycles)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps(result | {"peak_rss_mib": peak_kib / 1024}))


def measure(side: str, display: str) -> dict[str, float]:
    env = {**os.environ, "DISPLAY": display, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, __file__, "--child", side, "--cycles", str(CYCLES)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"the {side} run failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["floor", "agent"])
    parser.add_argument("--cycles", type=int, default=CYCLES)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.cycles)
        return
    xvfb, display = start_xvfb()
    try:
        paint_root(display)
        floors: list[dict[str, float]] = []
        agents: list[dict[str, float]] = []
        for _ in range(RUNS):
            floors.append(measure("floor", display))
            agents.append(measure("agent", display))
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
    floor_ms = statistics.median(r["cpu_ms"] for r in floors)
    agent_ms = statistics.median(r["cpu_ms"] for r in agents)
    peak = max(r["peak_rss_mib"] for r in agents)
    floor_peak = max(r["peak_rss_mib"] for r in floors)
    size = statistics.median(r["bytes"] for r in agents)
    print(f"floor (mss grab + WebP encode): {floor_ms:.1f} ms CPU per cycle, peak RSS {floor_peak:.1f} MiB")
    print(
        f"agent (grab, encode, thumbnail, queue write): {agent_ms:.1f} ms CPU per cycle, peak RSS {peak:.1f} MiB"
    )
    print(f"ratio {agent_ms / floor_ms:.3f} (target <= 1.2); bytes per capture {size:.0f}")
    summary = {
        "bench": "agent",
        "figure": round(agent_ms, 2),
        "unit": "ms",
        "floor": round(floor_ms, 2),
        "ratio": round(agent_ms / floor_ms, 3),
        "peak_rss_mib": round(peak, 1),
        "bytes_per_capture": int(size),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
