"""An optional tray icon (``pip install 'workproof[tray]'``, which brings ``pystray``) beside the window.

Never needed for tracking: pystray is imported only here, in the icon's own thread, and only when it is
installed and the ``tray`` setting is on. Whatever goes wrong creating the icon (no tray on this
desktop, no X server, a missing GTK) is reported once and the tracker goes on without it. pystray does
not raise when the desktop has no tray (its X11 back end logs "Failed to dock icon" with a traceback,
again at every attempt): its log is taken over, its first error is the one report, and the icon stops.
macOS is left out: pystray's Cocoa loop must own the main thread, which runs the tracker.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import logging
import os
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


def _uses_x11_backend() -> bool:
    """Whether pystray would pick its X11 (XEmbed) back end here: Linux/BSD without GTK's ``gi``."""
    chosen = os.environ.get("PYSTRAY_BACKEND")
    if chosen:
        return chosen == "xorg"
    return sys.platform not in ("win32", "darwin") and importlib.util.find_spec("gi") is None


class _Atom(ctypes.Structure):
    _fields_ = [("response_type", ctypes.c_uint8), ("pad0", ctypes.c_uint8), ("sequence", ctypes.c_uint16),
                ("length", ctypes.c_uint32), ("atom", ctypes.c_uint32)]  # fmt: skip


class _Owner(ctypes.Structure):
    _fields_ = [("response_type", ctypes.c_uint8), ("pad0", ctypes.c_uint8), ("sequence", ctypes.c_uint16),
                ("length", ctypes.c_uint32), ("owner", ctypes.c_uint32)]  # fmt: skip


def x11_tray_present(display: str | None = None) -> bool:
    """Whether an X11 tray runs (someone owns ``_NET_SYSTEM_TRAY_S0``), asked over XCB with ctypes.

    Before pystray is imported: its X11 back end (with python-xlib, ~2.5 MB) would otherwise load only
    to find that there is nowhere to dock.
    """
    xcb_name, libc_name = ctypes.util.find_library("xcb"), ctypes.util.find_library("c")
    if not xcb_name or not libc_name:
        return False
    xcb, libc = ctypes.CDLL(xcb_name), ctypes.CDLL(libc_name)
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    xcb.xcb_intern_atom.restype = ctypes.c_uint
    xcb.xcb_intern_atom.argtypes = [ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint16, ctypes.c_char_p]
    xcb.xcb_intern_atom_reply.restype = ctypes.POINTER(_Atom)
    xcb.xcb_intern_atom_reply.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p]
    xcb.xcb_get_selection_owner.restype = ctypes.c_uint
    xcb.xcb_get_selection_owner.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    xcb.xcb_get_selection_owner_reply.restype = ctypes.POINTER(_Owner)
    xcb.xcb_get_selection_owner_reply.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p]
    libc.free.argtypes = [ctypes.c_void_p]
    screen = ctypes.c_int(0)
    connection = xcb.xcb_connect(display.encode() if display else None, ctypes.byref(screen))
    try:
        if not connection or xcb.xcb_connection_has_error(connection):
            return False
        name = f"_NET_SYSTEM_TRAY_S{screen.value}".encode()
        atom = xcb.xcb_intern_atom_reply(
            connection, xcb.xcb_intern_atom(connection, 0, len(name), name), None
        )
        if not atom:
            return False
        selection = atom.contents.atom
        libc.free(atom)
        owner = xcb.xcb_get_selection_owner_reply(
            connection, xcb.xcb_get_selection_owner(connection, selection), None
        )
        if not owner:
            return False
        present = owner.contents.owner != 0
        libc.free(owner)
        return present
    finally:
        if connection:
            xcb.xcb_disconnect(connection)


class _FirstError(logging.Handler):
    """pystray's log: its first error (e.g. no tray to dock into) ends the icon, reported once."""

    def __init__(self, tray: Tray) -> None:
        super().__init__(logging.ERROR)
        self.tray = tray

    def emit(self, record: logging.LogRecord) -> None:
        reason = record.getMessage()
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            reason += f" ({type(error).__name__}{': ' + str(error) if str(error) else ''})"
        if self.tray.failed(reason):
            # Not from inside pystray's own call: stop the icon from another thread.
            threading.Thread(target=self.tray.close, daemon=True).start()


class Tray:
    """The icon and its thread. ``start`` returns at once; ``close`` removes the icon."""

    def __init__(self, actions: TrayActions, report: Callable[[str], None]) -> None:
        self.actions = actions
        self._report = report
        self._icon: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._reported = False

    def failed(self, reason: str) -> bool:
        """Report the tray's failure, the first time only; True when this was the first."""
        with self._lock:
            if self._reported:
                return False
            self._reported = True
        self._report(f"no tray icon: {reason}; open the window with `workproof-agent ui`")
        return True

    def start(self) -> bool:
        """Start the icon's thread if pystray is installed here; False when there is nothing to start."""
        if not tray_available():
            return False
        self._thread = threading.Thread(target=self._run, name="workproof-tray", daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        log = logging.getLogger("pystray")
        log.addHandler(_FirstError(self))
        log.propagate = False  # nothing of pystray's on the provider's terminal but the one line
        try:
            if _uses_x11_backend() and not x11_tray_present():
                self.failed("this desktop has no system tray")
                return
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
            self.failed(f"{type(error).__name__}: {error}")

    def close(self) -> None:
        icon = self._icon
        if icon is not None:
            try:
                icon.stop()
            except Exception:  # the icon is going away with the process anyway
                return
