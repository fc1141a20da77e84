"""Screen capture back ends: one RGB frame per monitor, in monitor order.

- X11, macOS, Windows: ``mss`` (pure Python over ctypes), one grab per monitor (``monitors[1:]``).
- Wayland on wlroots compositors (sway, Hyprland, river, Wayfire...): ``grim``, one grab per output.
  Outputs are listed with ``swaymsg``, ``wlr-randr`` or ``hyprctl``; without any of them, one grab of
  the whole layout.
- Other Wayland desktops (GNOME, KDE): the xdg-desktop-portal Screenshot interface over D-Bus
  (:mod:`agent.portal`), which answers one image of all monitors.

Under Wayland, X11 is never used even when ``DISPLAY`` is set: XWayland would show only X clients, and
the screenshots would be black where the provider's real work is.

Frames are yielded one at a time so a cycle holds at most one monitor's raw pixels: with several 4K
monitors, grabbing all first would multiply peak memory.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from agent.errors import CaptureUnavailable

if TYPE_CHECKING:
    import mss

FORCE_ENV = "WORKPROOF_AGENT_CAPTURE"
GRIM_TIMEOUT_SECONDS = 20.0


class CaptureBackend(Protocol):
    name: str

    def frames(self) -> Iterator[Image.Image]:
        """One RGB image per monitor, in monitor order."""
        ...


class MssBackend:
    name = "mss"

    def __init__(self, display: str | None = None) -> None:
        self.display = display

    def _connect(self) -> mss.MSS:
        import mss

        return mss.MSS(display=self.display) if self.display and sys.platform == "linux" else mss.MSS()

    def frames(self) -> Iterator[Image.Image]:
        import mss

        try:
            # A new connection per capture: mss caches the monitor layout, so a long-lived instance
            # would miss a monitor plugged in during the day.
            with self._connect() as grabber:
                monitors = grabber.monitors[1:]
            if not monitors:
                raise CaptureUnavailable("the X server reports no monitor: check your display settings")
            for monitor in monitors:
                # One connection per grab, closed before the frame is built: under X11 mss keeps a
                # shared-memory segment the size of the screen for as long as it is open, and holding
                # it through the conversion and the WebP encode would add 8 MB at 1080p to the peak.
                with self._connect() as grabber:
                    shot = grabber.grab(monitor)
                # frombuffer with a converting raw mode copies into a packed RGB image, so the
                # 4-bytes-per-pixel BGRA buffer can be freed right away.
                frame = Image.frombuffer("RGB", shot.size, shot.raw, "raw", "BGRX")
                del shot
                yield frame
        except mss.ScreenShotError as error:
            raise CaptureUnavailable(f"screen capture through mss failed: {error}") from None


Runner = Callable[[list[str]], bytes]


def command_runner(environ: Mapping[str, str] | None = None) -> Runner:
    """Runs a tool in the session being captured (its WAYLAND_DISPLAY, SWAYSOCK...), answers stdout."""
    env = None if environ is None else dict(environ)

    def run(argv: list[str]) -> bytes:
        return _run(argv, env)

    return run


def _run(argv: list[str], env: dict[str, str] | None = None) -> bytes:
    done = subprocess.run(argv, capture_output=True, timeout=GRIM_TIMEOUT_SECONDS, check=False, env=env)
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, "\n".join(message[-3:]))
    return done.stdout


def wayland_outputs(run: Runner) -> list[str] | None:
    """Names of the active outputs, left to right then top to bottom; None when no tool can list them."""
    listers: list[tuple[str, list[str]]] = [
        ("swaymsg", ["swaymsg", "-t", "get_outputs", "-r"]),
        ("wlr-randr", ["wlr-randr", "--json"]),
        ("hyprctl", ["hyprctl", "monitors", "-j"]),
    ]
    for tool, argv in listers:
        if shutil.which(tool) is None:
            continue
        try:
            raw = json.loads(run(argv))
        except (OSError, subprocess.SubprocessError, ValueError):
            continue
        outputs = _parse_outputs(tool, raw)
        if outputs:
            return outputs
    return None


def _parse_outputs(tool: str, raw: object) -> list[str]:
    if not isinstance(raw, list):
        return []
    placed: list[tuple[int, int, str]] = []
    for item in raw:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        if tool == "swaymsg":
            if not item.get("active", False):
                continue
            rect = item.get("rect", {})
            placed.append((int(rect.get("x", 0)), int(rect.get("y", 0)), str(item["name"])))
        elif tool == "wlr-randr":
            if not item.get("enabled", False):
                continue
            position = item.get("position", {})
            placed.append((int(position.get("x", 0)), int(position.get("y", 0)), str(item["name"])))
        else:  # hyprctl
            if item.get("disabled", False):
                continue
            placed.append((int(item.get("x", 0)), int(item.get("y", 0)), str(item["name"])))
    return [name for _, _, name in sorted(placed)]


class GrimBackend:
    """wlroots compositors, through ``grim`` (the wlr-screencopy protocol)."""

    name = "grim"

    def __init__(self, run: Runner | None = None) -> None:
        self._run = run or command_runner()

    def frames(self) -> Iterator[Image.Image]:
        named: list[str | None] = list(wayland_outputs(self._run) or [])
        outputs = named or [None]
        for output in outputs:
            argv = ["grim", *(["-o", output] if output else []), "-t", "ppm", "-"]
            try:
                raw = self._run(argv)
            except FileNotFoundError:
                raise CaptureUnavailable("grim is not installed: install the `grim` package") from None
            except subprocess.TimeoutExpired:
                raise CaptureUnavailable(
                    "grim did not answer within 20 s: is the compositor frozen?"
                ) from None
            except subprocess.CalledProcessError as error:
                hint = ""
                if "screencopy" in str(error.stderr):
                    hint = (
                        ": this compositor has no wlr-screencopy; install xdg-desktop-portal and your "
                        "desktop's portal back end (xdg-desktop-portal-gnome or -kde)"
                    )
                raise CaptureUnavailable(f"grim failed ({error.stderr}){hint}") from None
            # PPM is raw pixels: no PNG compression in grim, no decompression here.
            frame = Image.open(io.BytesIO(raw))
            frame.load()
            del raw
            yield frame if frame.mode == "RGB" else frame.convert("RGB")


def is_wayland(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("WAYLAND_DISPLAY")) or environ.get("XDG_SESSION_TYPE") == "wayland"


def candidate_backends(environ: Mapping[str, str] | None = None) -> list[CaptureBackend]:
    """The back ends worth trying in this session, best first; raises when there is none at all."""
    env = os.environ if environ is None else environ
    forced = env.get(FORCE_ENV, "").strip().lower()
    if forced:
        return [_backend_named(forced, env)]
    if sys.platform in ("win32", "darwin"):
        return [MssBackend()]
    if is_wayland(env):
        found: list[CaptureBackend] = []
        if shutil.which("grim", path=env.get("PATH")):
            found.append(GrimBackend(command_runner(env)))
        if env.get("DBUS_SESSION_BUS_ADDRESS") or env.get("XDG_RUNTIME_DIR"):
            from agent.portal import PortalBackend

            found.append(PortalBackend())
        if not found:
            raise CaptureUnavailable(
                "no Wayland screen capture available: install `grim` (sway, Hyprland and other wlroots "
                "desktops) or xdg-desktop-portal with your desktop's back end (GNOME, KDE), "
                "or log in to an X11 session"
            )
        return found
    if env.get("DISPLAY"):
        return [MssBackend(env.get("DISPLAY"))]
    raise CaptureUnavailable(
        "no graphical session: DISPLAY and WAYLAND_DISPLAY are unset; run workproof-agent from a terminal "
        "inside your desktop session"
    )


def _backend_named(name: str, env: Mapping[str, str]) -> CaptureBackend:
    if name == "mss":
        return MssBackend(env.get("DISPLAY"))
    if name == "grim":
        return GrimBackend(command_runner(env))
    if name == "portal":
        from agent.portal import PortalBackend

        return PortalBackend()
    raise CaptureUnavailable(f"{FORCE_ENV}={name!r} is not a capture back end: use mss, grim or portal")


def choose_backend(environ: Mapping[str, str] | None = None) -> CaptureBackend:
    """The first back end that actually grabs a frame here (the probe frames are dropped unseen)."""
    failures: list[str] = []
    candidates = candidate_backends(environ)
    for backend in candidates:
        try:
            for frame in backend.frames():
                frame.close()
            return backend
        except CaptureUnavailable as error:
            failures.append(f"{backend.name}: {error.message}")
    if len(candidates) == 1:
        raise CaptureUnavailable(failures[0].split(": ", 1)[1])
    raise CaptureUnavailable("no screen capture works here: " + "; ".join(failures))
