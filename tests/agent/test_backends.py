"""Choosing the capture back end for the session, and the errors when none fits."""

from __future__ import annotations

import json

import pytest

from agent import capture
from agent.capture import GrimBackend, MssBackend, candidate_backends, wayland_outputs
from agent.errors import CaptureUnavailable
from agent.portal import PortalBackend, screenshot_request_path, uri_to_path


def without_tools(monkeypatch: pytest.MonkeyPatch, *missing: str) -> None:
    real = capture.shutil.which

    def which(name: str, path: str | None = None) -> str | None:
        return None if name in missing else real(name, path=path)

    monkeypatch.setattr(capture.shutil, "which", which)


def test_x11_sessions_use_mss() -> None:
    (backend,) = candidate_backends({"DISPLAY": ":0"})
    assert isinstance(backend, MssBackend) and backend.display == ":0"


def test_wayland_prefers_grim_then_the_portal_and_never_x11() -> None:
    backends = candidate_backends(
        {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_RUNTIME_DIR": "/run/user/1000"}
    )
    assert [type(b) for b in backends] == [GrimBackend, PortalBackend]


def test_wayland_without_grim_uses_the_portal(monkeypatch: pytest.MonkeyPatch) -> None:
    without_tools(monkeypatch, "grim")
    backends = candidate_backends(
        {"WAYLAND_DISPLAY": "wayland-0", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"}
    )
    assert [type(b) for b in backends] == [PortalBackend]


def test_wayland_with_nothing_to_capture_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    without_tools(monkeypatch, "grim")
    with pytest.raises(CaptureUnavailable) as error:
        candidate_backends({"WAYLAND_DISPLAY": "wayland-0"})
    assert "install `grim`" in error.value.message and "xdg-desktop-portal" in error.value.message


def test_no_graphical_session_is_a_clear_error() -> None:
    with pytest.raises(CaptureUnavailable, match="DISPLAY and WAYLAND_DISPLAY are unset"):
        candidate_backends({})


def test_the_back_end_can_be_forced_and_a_wrong_name_is_explained() -> None:
    assert isinstance(candidate_backends({"WORKPROOF_AGENT_CAPTURE": "grim"})[0], GrimBackend)
    with pytest.raises(CaptureUnavailable, match="use mss, grim or portal"):
        candidate_backends({"WORKPROOF_AGENT_CAPTURE": "scrot"})


def test_wayland_outputs_are_ordered_left_to_right_from_swaymsg() -> None:
    answer = [
        {"name": "DP-2", "active": True, "rect": {"x": 1920, "y": 0}},
        {"name": "eDP-1", "active": True, "rect": {"x": 0, "y": 0}},
        {"name": "HDMI-1", "active": False, "rect": {"x": 0, "y": 0}},
    ]

    def run(argv: list[str]) -> bytes:
        assert argv[0] == "swaymsg"
        return json.dumps(answer).encode()

    assert wayland_outputs(run) == ["eDP-1", "DP-2"]


def test_grim_failing_on_a_compositor_without_screencopy_points_to_the_portal() -> None:
    import subprocess

    def run(argv: list[str]) -> bytes:
        if argv[0] == "grim":
            raise subprocess.CalledProcessError(
                1, argv, b"", "compositor doesn't support wlr-screencopy-unstable-v1"
            )
        raise FileNotFoundError(argv[0])

    with pytest.raises(CaptureUnavailable, match="install xdg-desktop-portal"):
        list(GrimBackend(run).frames())


def test_the_portal_request_path_follows_the_documented_rule() -> None:
    assert (
        screenshot_request_path(":1.42", "workproof_ab")
        == "/org/freedesktop/portal/desktop/request/1_42/workproof_ab"
    )
    assert str(uri_to_path("file:///home/pat/Pictures/Screenshot%20from%202026.png")) == (
        "/home/pat/Pictures/Screenshot from 2026.png"
    )
    with pytest.raises(CaptureUnavailable):
        uri_to_path("https://example.com/shot.png")
