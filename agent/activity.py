"""Input-activity counts per slot: how many key presses and mouse events, never which keys or where.

- X11: polls the key map and pointer 20 times a second over its own XCB connection (ctypes, no
  compiled module). A key counts once per press (up to down); a mouse event is a poll in which the
  pointer moved or a button went down. Presses shorter than a poll can be missed: the counts are a
  measure of activity, not a keylogger's tally. After ``QUIET_AFTER_SECONDS`` without any input it
  polls only twice a second (a desk nobody touches costs next to nothing), and back at 20 a second from
  the first change it sees: the first press after a quiet spell may go uncounted.
- macOS: the window server's own event counters (``CGEventSourceCounterForEventType``).
- Windows and Wayland: ``None`` (not measured). Wayland by design shows a client no global input;
  Windows would need a low-level input hook thread, not built yet.

XCB rather than Xlib: Xlib's default I/O error handler *exits the process* when the X server goes away
(logout, a test's Xvfb ending); XCB just answers an error, and counting stops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from agent.capture import is_wayland

POLL_SECONDS = 0.05  # while the provider uses the keyboard or the mouse
QUIET_POLL_SECONDS = 0.5  # after QUIET_AFTER_SECONDS without input: 2 polls a second instead of 20
QUIET_AFTER_SECONDS = 10.0


class ActivityCounter(Protocol):
    def start(self) -> None: ...

    def take(self) -> tuple[int | None, int | None]:
        """(keyboard events, mouse events) since the last take; None when not measured."""
        ...

    def stop(self) -> None: ...


class NoActivityCounts:
    def start(self) -> None:
        pass

    def take(self) -> tuple[int | None, int | None]:
        return None, None

    def stop(self) -> None:
        pass


class _KeymapReply(ctypes.Structure):
    _fields_ = [
        ("response_type", ctypes.c_uint8),
        ("pad0", ctypes.c_uint8),
        ("sequence", ctypes.c_uint16),
        ("length", ctypes.c_uint32),
        ("keys", ctypes.c_uint8 * 32),
    ]


class _PointerReply(ctypes.Structure):
    _fields_ = [
        ("response_type", ctypes.c_uint8),
        ("same_screen", ctypes.c_uint8),
        ("sequence", ctypes.c_uint16),
        ("length", ctypes.c_uint32),
        ("root", ctypes.c_uint32),
        ("child", ctypes.c_uint32),
        ("root_x", ctypes.c_int16),
        ("root_y", ctypes.c_int16),
        ("win_x", ctypes.c_int16),
        ("win_y", ctypes.c_int16),
        ("mask", ctypes.c_uint16),
        ("pad1", ctypes.c_uint8 * 2),
    ]


class _Cookie(ctypes.Structure):
    _fields_ = [("sequence", ctypes.c_uint)]


class _ScreenIterator(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint32)), ("rem", ctypes.c_int), ("index", ctypes.c_int)]


_BUTTON_MASK = 0x1F00  # Button1..Button5 bits of the pointer's modifier/button mask


class X11ActivityCounter:
    """Counts by polling over XCB; stops counting (and reports None) if the X server goes away."""

    def __init__(self, display: str | None, *, quiet_after: float = QUIET_AFTER_SECONDS) -> None:
        self.display = display
        self.quiet_after = quiet_after
        self._keys = 0
        self._mouse = 0
        self._alive = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        xcb_name = ctypes.util.find_library("xcb")
        libc_name = ctypes.util.find_library("c")
        if not xcb_name or not libc_name:
            return
        self._xcb = ctypes.CDLL(xcb_name)
        self._libc = ctypes.CDLL(libc_name)
        self._declare()
        connection = self._xcb.xcb_connect(self.display.encode() if self.display else None, None)
        if not connection or self._xcb.xcb_connection_has_error(connection):
            if connection:
                self._xcb.xcb_disconnect(connection)
            return
        roots = self._xcb.xcb_setup_roots_iterator(self._xcb.xcb_get_setup(connection))
        root = roots.data[0]  # xcb_screen_t begins with the root window id
        self._alive = True
        self._thread = threading.Thread(
            target=self._poll, args=(connection, root), name="workproof-activity", daemon=True
        )
        self._thread.start()

    def _declare(self) -> None:
        xcb = self._xcb
        xcb.xcb_connect.restype = ctypes.c_void_p
        xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
        xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
        xcb.xcb_get_setup.restype = ctypes.c_void_p
        xcb.xcb_get_setup.argtypes = [ctypes.c_void_p]
        xcb.xcb_setup_roots_iterator.restype = _ScreenIterator
        xcb.xcb_setup_roots_iterator.argtypes = [ctypes.c_void_p]
        xcb.xcb_query_keymap.restype = _Cookie
        xcb.xcb_query_keymap.argtypes = [ctypes.c_void_p]
        xcb.xcb_query_keymap_reply.restype = ctypes.POINTER(_KeymapReply)
        xcb.xcb_query_keymap_reply.argtypes = [ctypes.c_void_p, _Cookie, ctypes.c_void_p]
        xcb.xcb_query_pointer.restype = _Cookie
        xcb.xcb_query_pointer.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        xcb.xcb_query_pointer_reply.restype = ctypes.POINTER(_PointerReply)
        xcb.xcb_query_pointer_reply.argtypes = [ctypes.c_void_p, _Cookie, ctypes.c_void_p]
        self._libc.free.argtypes = [ctypes.c_void_p]

    def _poll(self, connection: int, root: int) -> None:
        xcb, free = self._xcb, self._libc.free
        previous_keys: bytes | None = None
        previous_pointer: tuple[int, int, int] | None = None
        interval = POLL_SECONDS
        last_change = time.monotonic()
        try:
            while not self._stop.wait(interval):
                keymap = xcb.xcb_query_keymap_reply(connection, xcb.xcb_query_keymap(connection), None)
                pointer = xcb.xcb_query_pointer_reply(
                    connection, xcb.xcb_query_pointer(connection, root), None
                )
                if not keymap or not pointer:
                    break  # the X server is gone
                keys = bytes(keymap.contents.keys)
                position = (
                    pointer.contents.root_x,
                    pointer.contents.root_y,
                    pointer.contents.mask & _BUTTON_MASK,
                )
                free(keymap)
                free(pointer)
                presses = 0
                if previous_keys is not None:
                    presses = sum(
                        bin(new & ~old & 0xFF).count("1")
                        for new, old in zip(keys, previous_keys, strict=True)
                    )
                moved = 0
                if previous_pointer is not None:
                    moved_xy = position[:2] != previous_pointer[:2]
                    pressed = bool(position[2] & ~previous_pointer[2])
                    moved = int(moved_xy or pressed)
                now = time.monotonic()
                if keys != previous_keys or position != previous_pointer:
                    last_change, interval = now, POLL_SECONDS
                elif now - last_change >= self.quiet_after:
                    interval = QUIET_POLL_SECONDS
                previous_keys, previous_pointer = keys, position
                if presses or moved:
                    with self._lock:
                        self._keys += presses
                        self._mouse += moved
        finally:
            with self._lock:
                self._alive = False
            xcb.xcb_disconnect(connection)

    def take(self) -> tuple[int | None, int | None]:
        with self._lock:
            if not self._alive:
                return None, None
            counts = self._keys, self._mouse
            self._keys = self._mouse = 0
        return counts

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


class MacActivityCounter:
    """The window server counts every event type since login; the difference between takes is ours."""

    _KEY_DOWN = 10
    _MOUSE_TYPES = (1, 3, 5, 6, 7, 22, 25)  # down left/right, moved, dragged left/right, scroll, down other
    _COMBINED_SESSION = 0

    def __init__(self) -> None:
        self._counter: Callable[[int, int], int] | None = None
        self._last: tuple[int, int] | None = None

    def _read(self) -> tuple[int, int]:
        assert self._counter is not None
        keys = int(self._counter(self._COMBINED_SESSION, self._KEY_DOWN))
        mouse = sum(int(self._counter(self._COMBINED_SESSION, kind)) for kind in self._MOUSE_TYPES)
        return keys, mouse

    def start(self) -> None:
        path = ctypes.util.find_library("ApplicationServices")
        if not path:
            return
        counter = ctypes.CDLL(path).CGEventSourceCounterForEventType
        counter.restype = ctypes.c_uint32
        counter.argtypes = [ctypes.c_int32, ctypes.c_uint32]
        self._counter = counter
        self._last = self._read()

    def take(self) -> tuple[int | None, int | None]:
        if self._counter is None or self._last is None:
            return None, None
        now = self._read()
        # The counters are 32-bit and wrap; modular difference keeps a wrap from reading as negative.
        counts = ((now[0] - self._last[0]) % 2**32, (now[1] - self._last[1]) % 2**32)
        self._last = now
        return counts

    def stop(self) -> None:
        self._counter = None


def activity_counter(enabled: bool, environ: Mapping[str, str]) -> ActivityCounter:
    if not enabled:
        return NoActivityCounts()
    if sys.platform == "darwin":
        return MacActivityCounter()
    if sys.platform == "linux" and not is_wayland(environ) and environ.get("DISPLAY"):
        # Under Wayland, XWayland would see only X clients' input: report nothing rather than too little.
        return X11ActivityCounter(environ.get("DISPLAY"))
    return NoActivityCounts()
