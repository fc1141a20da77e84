"""Real display servers for the capture tests: Xvfb (X11, with RandR monitors) and headless sway (Wayland).

Each helper starts its own process and stops it (and only it) when done. When a server cannot start,
the test fails with the reason: a capture test that silently skips proves nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# sway refuses to run as root; under root the compositor runs as this unprivileged account.
UNPRIVILEGED_UID = 65534  # nobody
UNPRIVILEGED_GID = 65534  # nogroup


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: apt-get install -y {package}", pytrace=False)
    return path


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass(frozen=True)
class XDisplay:
    name: str  # ":93"
    width: int
    height: int


@contextlib.contextmanager
def xvfb(
    width: int = 1920, height: int = 1080, monitors: list[tuple[int, int, int, int]] | None = None
) -> Iterator[XDisplay]:
    """An Xvfb screen of width x height; ``monitors`` (w, h, x, y) become RandR 1.5 monitors.

    ``-noreset`` matters: without it the server resets when its last client disconnects and forgets the
    monitors that xrandr has just defined.
    """
    binary = _require("Xvfb", "xvfb")
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [
            binary,
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            f"{width}x{height}x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write_fd)
    try:
        number = b""
        deadline = time.monotonic() + 15
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            chunk = os.read(read_fd, 16)
            if not chunk:
                break
            number += chunk
        os.close(read_fd)
        if not number.strip():
            _stop(process)
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            pytest.fail(f"Xvfb did not start: {error.strip()[-500:]}", pytrace=False)
        display = XDisplay(f":{int(number)}", width, height)
        if monitors:
            xrandr = _require("xrandr", "x11-xserver-utils")
            for index, (w, h, x, y) in enumerate(monitors):
                # The first monitor takes over the screen's own output, so only ours are listed.
                output = "screen" if index == 0 else "none"
                done = subprocess.run(
                    [
                        xrandr,
                        "--setmonitor",
                        f"TEST-{index + 1}",
                        f"{w}/{w // 4}x{h}/{h // 4}+{x}+{y}",
                        output,
                    ],
                    env={**os.environ, "DISPLAY": display.name},
                    capture_output=True,
                    check=False,
                )
                if done.returncode != 0:
                    pytest.fail(f"xrandr --setmonitor failed: {done.stderr.decode().strip()}", pytrace=False)
        yield display
    finally:
        _stop(process)


def x_solid_background(display: XDisplay, colour: str) -> None:
    """Paint the root window (what a capture of an empty X screen shows)."""
    tool = _require("xsetroot", "x11-xserver-utils")
    subprocess.run([tool, "-solid", colour], env={**os.environ, "DISPLAY": display.name}, check=True)


@dataclass(frozen=True)
class WaylandSession:
    environ: dict[str, str]  # WAYLAND_DISPLAY, XDG_RUNTIME_DIR, SWAYSOCK for a client of this session
    runtime_dir: Path


SWAY_CONFIG = """\
output HEADLESS-1 pos 0 0 res 1280x720
output HEADLESS-2 pos 1280 0 res 1024x768
"""


@contextlib.contextmanager
def headless_sway() -> Iterator[WaylandSession]:
    """sway with two headless outputs (1280x720 at 0,0 and 1024x768 at 1280,0), pixman rendering.

    As root, sway runs as nobody (``setpriv``) in a 0700 runtime folder owned by nobody; the test process
    (root) connects to its socket directly.
    """
    sway = _require("sway", "sway")
    _require("grim", "grim")
    runtime = Path(tempfile.mkdtemp(prefix="wp-sway-"))
    config = runtime / "sway.config"
    config.write_text(SWAY_CONFIG)
    config.chmod(0o644)
    argv = [sway, "-c", str(config)]
    if os.geteuid() == 0:
        setpriv = _require("setpriv", "util-linux")
        os.chown(runtime, UNPRIVILEGED_UID, UNPRIVILEGED_GID)
        argv = [
            setpriv,
            f"--reuid={UNPRIVILEGED_UID}",
            f"--regid={UNPRIVILEGED_GID}",
            "--clear-groups",
            *argv,
        ]
    runtime.chmod(0o700)
    log = runtime / "sway.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(runtime),
        "XDG_RUNTIME_DIR": str(runtime),
        "WLR_BACKENDS": "headless",
        "WLR_RENDERER": "pixman",
        "WLR_LIBINPUT_NO_DEVICES": "1",
        "WLR_HEADLESS_OUTPUTS": "2",
    }
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            argv, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 15
        wayland: Path | None = None
        ipc: Path | None = None
        while time.monotonic() < deadline and process.poll() is None:
            wayland = next((p for p in runtime.glob("wayland-*") if not p.name.endswith(".lock")), None)
            ipc = next(iter(runtime.glob("sway-ipc.*.sock")), None)
            if wayland and ipc:
                break
            time.sleep(0.05)
        if not (wayland and ipc):
            _stop(process)
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            pytest.fail(f"headless sway did not start (exit {process.poll()}):\n{tail}", pytrace=False)
        session = WaylandSession(
            environ={"WAYLAND_DISPLAY": wayland.name, "XDG_RUNTIME_DIR": str(runtime), "SWAYSOCK": str(ipc)},
            runtime_dir=runtime,
        )
        _wait_for_outputs(session, 2)
        yield session
    finally:
        _stop(process)
        shutil.rmtree(runtime, ignore_errors=True)


def _wait_for_outputs(session: WaylandSession, count: int) -> None:
    """sway creates its outputs just after its sockets appear: wait until swaymsg lists them all."""
    import json

    deadline = time.monotonic() + 10
    last = ""
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["swaymsg", "-t", "get_outputs", "-r"],
            env={**os.environ, **session.environ},
            capture_output=True,
            check=False,
        )
        last = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        if done.returncode == 0 and sum(1 for o in json.loads(done.stdout) if o.get("active")) >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"sway did not bring up {count} outputs: {last[-500:]}", pytrace=False)
