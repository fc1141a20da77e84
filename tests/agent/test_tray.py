"""The optional tray icon: absent pystray is no problem, a failing tray is reported once, the menu steers."""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.machinery
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

from agent import tray as tray_module
from agent.tray import Tray, TrayActions, tray_available, x11_tray_present
from tests.agent.displays import XDisplay


class Steering:
    def __init__(self) -> None:
        self.paused = False
        self.calls: list[str] = []

    def actions(self) -> TrayActions:
        return TrayActions(
            open_window=lambda: self.calls.append("open"),
            pause=lambda: self._set(True),
            resume=lambda: self._set(False),
            stop=lambda: self.calls.append("stop"),
            paused=lambda: self.paused,
        )

    def _set(self, paused: bool) -> None:
        self.paused = paused
        self.calls.append("pause" if paused else "resume")


def fake_pystray(run: Callable[[Any], None]) -> types.ModuleType:
    module = types.ModuleType("pystray")
    module.__spec__ = importlib.machinery.ModuleSpec("pystray", None)

    class MenuItem:
        def __init__(self, text: Any, action: Callable[[], None], default: bool = False) -> None:
            self.text, self.action, self.default = text, action, default

    class Menu:
        def __init__(self, *items: MenuItem) -> None:
            self.items = items

    class Icon:
        def __init__(self, name: str, image: Any, title: str, menu: Menu) -> None:
            self.menu = menu
            self.stopped = False

        def run(self) -> None:
            run(self)

        def stop(self) -> None:
            self.stopped = True

    module.Menu, module.MenuItem, module.Icon = Menu, MenuItem, Icon  # type: ignore[attr-defined]
    return module


@pytest.mark.skipif(sys.platform == "darwin", reason="no tray on macOS")
def test_a_tray_that_cannot_start_is_reported_once_and_tracking_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_tray(icon: Any) -> None:
        raise RuntimeError("no system tray on this desktop")

    monkeypatch.setitem(sys.modules, "pystray", fake_pystray(no_tray))
    monkeypatch.setattr(tray_module, "_uses_x11_backend", lambda: False)  # as with GTK's appindicator
    reports: list[str] = []
    tray = Tray(Steering().actions(), reports.append)
    assert tray.start()
    assert tray._thread is not None
    tray._thread.join(timeout=5)
    assert reports == [
        "no tray icon: RuntimeError: no system tray on this desktop; open the window with `workproof-agent ui`"
    ]
    tray.close()


@pytest.mark.skipif(sys.platform == "darwin", reason="no tray on macOS")
def test_the_tray_menu_opens_the_window_pauses_resumes_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    icons: list[Any] = []
    monkeypatch.setitem(sys.modules, "pystray", fake_pystray(icons.append))
    monkeypatch.setattr(tray_module, "_uses_x11_backend", lambda: False)
    steering = Steering()
    reports: list[str] = []
    tray = Tray(steering.actions(), reports.append)
    assert tray.start()
    assert tray._thread is not None
    tray._thread.join(timeout=5)
    (icon,) = icons
    opener, toggle, stop = icon.menu.items
    assert opener.default and opener.text == "Open window"
    opener.action()
    assert toggle.text(toggle) == "Pause"
    toggle.action()
    assert toggle.text(toggle) == "Resume"
    toggle.action()
    stop.action()
    assert steering.calls == ["open", "pause", "resume", "stop"]
    tray.close()
    assert icon.stopped and reports == []


def test_without_pystray_there_is_no_tray_and_nothing_to_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pystray", None)  # as if not installed
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert not tray_available()
    reports: list[str] = []
    assert not Tray(Steering().actions(), reports.append).start()
    assert reports == []


@pytest.mark.display
def test_an_x11_desktop_without_a_tray_is_told_before_pystray_is_imported(
    x_display: XDisplay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pystray's X11 back end does not raise without a tray: it logs at every attempt. The tracker asks
    the X server first (who owns _NET_SYSTEM_TRAY_S0) and says so once, without loading pystray."""
    monkeypatch.setenv("DISPLAY", x_display.name)
    monkeypatch.setenv("PYSTRAY_BACKEND", "xorg")
    assert not x11_tray_present(x_display.name)
    monkeypatch.setitem(sys.modules, "pystray", fake_pystray(lambda icon: pytest.fail("pystray was used")))
    reports: list[str] = []
    tray = Tray(Steering().actions(), reports.append)
    assert tray.start()
    assert tray._thread is not None
    tray._thread.join(timeout=5)
    assert reports == [
        "no tray icon: this desktop has no system tray; open the window with `workproof-agent ui`"
    ]

    # A tray appears (it owns the selection): now there is one.
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XCreateSimpleWindow.restype = ctypes.c_ulong
    x11.XCreateSimpleWindow.argtypes = (
        [ctypes.c_void_p, ctypes.c_ulong] + [ctypes.c_int] * 2 + [ctypes.c_uint] * 3 + [ctypes.c_ulong] * 2
    )
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    connection = x11.XOpenDisplay(x_display.name.encode())
    try:
        window = x11.XCreateSimpleWindow(connection, x11.XDefaultRootWindow(connection), 0, 0, 1, 1, 0, 0, 0)
        atom = x11.XInternAtom(connection, b"_NET_SYSTEM_TRAY_S0", 0)
        x11.XSetSelectionOwner(connection, atom, window, 0)
        x11.XSync(connection, 0)
        assert x11_tray_present(x_display.name)
    finally:
        x11.XCloseDisplay(connection)
    assert not x11_tray_present(x_display.name)  # its owner gone, the selection is free again
