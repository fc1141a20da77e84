"""An optional tray icon (``pip install 'workproof[tray]'``, which brings ``pystray``) beside the window.

Never needed for tracking: pystray is imported only here, in the icon's own thread, and only when it is
installed and the ``tray`` setting is on. Whatever goes wrong creating the icon (no tray on this
desktop, no X server, a missing GTK) is reported once and the tracker goes on without it.
macOS is left out: pystray's Cocoa loop must own the main thread, which runs the tracker.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable
from typing import Any


class TrayActions:
    """What the icon's menu can do: callbacks into the running tracker (none of them blocks for long)."""

    def __init__(
        self,
        *,
        open_window: Callable[[], object],
        pause: Callable[[], None],
        resume: Callable[[], None],
        stop: Callable[[], None],
        paused: Callable[[], bool],
    ) -> None:
        self.open_window = open_window
        self.pause = pause
        self.resume = resume
        self.stop = stop
        self.paused = paused

    def toggle(self) -> None:
        if self.paused():
            self.resume()
        else:
            self.pause()


def tray_available() -> bool:
    return sys.platform != "darwin" and importlib.util.find_spec("pystray") is not None


def icon_image(paused: bool = False) -> Any:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, 60, 60), fill=(154, 103, 0) if paused else (26, 127, 55))
    draw.rectangle((22, 18, 42, 46), fill=(255, 255, 255))  # a page: documented work
    return image


class Tray:
    """The icon and its thread. ``start`` returns at once; ``close`` removes the icon."""

    def __init__(self, actions: TrayActions, report: Callable[[str], None]) -> None:
        self.actions = actions
        self._report = report
        self._icon: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Start the icon's thread if pystray is installed here; False when there is nothing to start."""
        if not tray_available():
            return False
        self._thread = threading.Thread(target=self._run, name="workproof-tray", daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        try:
            import pystray

            actions = self.actions
            menu = pystray.Menu(
                pystray.MenuItem("Open window", lambda: actions.open_window(), default=True),
                pystray.MenuItem(lambda _item: "Resume" if actions.paused() else "Pause", actions.toggle),
                pystray.MenuItem("Stop tracking", lambda: actions.stop()),
            )
            self._icon = pystray.Icon("workproof", icon_image(), "Workproof agent", menu)
            self._icon.run()
        except Exception as error:  # no tray on this desktop: the window is still there
            self._report(
                f"no tray icon ({type(error).__name__}: {error}); open the window with `workproof-agent ui`"
            )

    def close(self) -> None:
        icon = self._icon
        if icon is not None:
            try:
                icon.stop()
            except Exception:  # the icon is going away with the process anyway
                return
