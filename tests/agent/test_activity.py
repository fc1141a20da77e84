"""Input-activity counts under X11: key presses and mouse events are counted, never recorded."""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Iterator

import pytest

from agent.activity import NoActivityCounts, X11ActivityCounter, activity_counter
from tests.agent.displays import XDisplay

HOLD = 0.2  # longer than the counter's poll, so no press falls between two polls


class FakeInput:
    """Synthetic keyboard and mouse through the XTEST extension (what xdotool does)."""

    def __init__(self, display: XDisplay) -> None:
        x11 = ctypes.util.find_library("X11")
        xtst = ctypes.util.find_library("Xtst")
        if not x11 or not xtst:
            pytest.fail("libX11 or libXtst missing: apt-get install -y libx11-6 libxtst6", pytrace=False)
        self.x = ctypes.CDLL(x11)
        self.xtst = ctypes.CDLL(xtst)
        self.x.XOpenDisplay.restype = ctypes.c_void_p
        self.x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self.x.XFlush.argtypes = [ctypes.c_void_p]
        self.x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.x.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        self.xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
        self.xtst.XTestFakeMotionEvent.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_ulong,
        ]
        self.display = self.x.XOpenDisplay(display.name.encode())
        if not self.display:
            pytest.fail(f"cannot open X display {display.name}", pytrace=False)

    def type_keys(self, count: int) -> None:
        keycode = self.x.XKeysymToKeycode(self.display, 0x61)  # "a"
        for _ in range(count):
            self.xtst.XTestFakeKeyEvent(self.display, keycode, 1, 0)
            self.x.XFlush(self.display)
            time.sleep(HOLD)
            self.xtst.XTestFakeKeyEvent(self.display, keycode, 0, 0)
            self.x.XFlush(self.display)
            time.sleep(HOLD)

    def move_mouse(self, points: list[tuple[int, int]], hold: float = HOLD) -> None:
        for x, y in points:
            self.xtst.XTestFakeMotionEvent(self.display, -1, x, y, 0)
            self.x.XFlush(self.display)
            time.sleep(hold)

    def close(self) -> None:
        self.x.XCloseDisplay(self.display)


@pytest.fixture
def fake_input(x_display: XDisplay) -> Iterator[FakeInput]:
    device = FakeInput(x_display)
    try:
        yield device
    finally:
        device.close()


@pytest.mark.display
def test_key_presses_and_mouse_moves_are_counted_per_take(x_display: XDisplay, fake_input: FakeInput) -> None:
    counter = X11ActivityCounter(x_display.name)
    counter.start()
    try:
        time.sleep(HOLD)
        assert counter.take() == (0, 0)
        fake_input.type_keys(4)
        fake_input.move_mouse([(100, 100), (300, 200), (500, 400)])
        assert counter.take() == (4, 3)
        assert counter.take() == (0, 0)  # each take starts a new count
    finally:
        counter.stop()


@pytest.mark.display
def test_counts_become_none_when_the_x_server_is_gone() -> None:
    from tests.agent.displays import xvfb

    with xvfb(640, 480) as display:
        counter = X11ActivityCounter(display.name)
        counter.start()
        time.sleep(HOLD)
        assert counter.take() == (0, 0)
    time.sleep(HOLD * 2)
    assert counter.take() == (None, None)
    counter.stop()


def test_wayland_and_disabled_settings_report_no_counts() -> None:
    assert isinstance(activity_counter(False, {"DISPLAY": ":0"}), NoActivityCounts)
    assert isinstance(
        activity_counter(True, {"WAYLAND_DISPLAY": "wayland-1", "DISPLAY": ":0"}), NoActivityCounts
    )
    assert NoActivityCounts().take() == (None, None)


@pytest.mark.display
def test_a_quiet_desk_is_polled_slowly_and_the_counter_speeds_up_at_the_first_input(
    x_display: XDisplay, fake_input: FakeInput
) -> None:
    """Two polls a second after a quiet spell; input held for one slow poll is still seen, and from then on
    every press counts again."""
    counter = X11ActivityCounter(x_display.name, quiet_after=0.3)
    counter.start()
    try:
        time.sleep(1.0)  # quiet: now at the slow pace
        assert counter.take() == (0, 0)
        fake_input.move_mouse([(41, 43)], hold=0.6)  # longer than a slow poll
        keys, mouse = counter.take()
        assert mouse == 1 and keys == 0
        fake_input.type_keys(3)
        fake_input.move_mouse([(120, 80), (200, 160)])
        assert counter.take() == (3, 2)
    finally:
        counter.stop()
