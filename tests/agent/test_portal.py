"""The xdg-desktop-portal back end, over a real private D-Bus session bus.

No desktop portal runs here (it needs GNOME or KDE), so a stand-in service answers on the bus with the
portal's documented protocol: the Screenshot call returns a Request path, the picture's URI comes in
that Request's Response signal. What is tested is the agent's side of that exchange for real: the
match rule set before the call, the request path, the signal's parsing, and the file's deletion.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from jeepney import DBusAddress, HeaderFields, MessageType, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import Proxy, open_dbus_connection
from PIL import Image

from agent.errors import CaptureUnavailable
from agent.portal import PortalBackend, screenshot_request_path


@pytest.fixture
def session_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.fail("dbus-daemon is not installed: apt-get install -y dbus", pytrace=False)
    process = subprocess.Popen(
        [daemon, "--session", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # as root it warns that it cannot raise its file limit
        text=True,
    )
    assert process.stdout is not None
    address = process.stdout.readline().strip()
    if not address:
        process.kill()
        pytest.fail("dbus-daemon did not print its address", pytrace=False)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    try:
        yield address
    finally:
        process.terminate()
        process.wait(timeout=5)


class FakeScreenshotPortal:
    """Answers org.freedesktop.portal.Screenshot.Screenshot like the real portal (one request only)."""

    def __init__(self, picture_folder: Path, response_code: int = 0) -> None:
        self.picture_folder = picture_folder
        self.response_code = response_code
        self.connection = open_dbus_connection(bus="SESSION")
        Proxy(message_bus, self.connection).RequestName("org.freedesktop.portal.Desktop")
        self.saved: Path | None = None
        self.options: dict[str, object] = {}
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            message = self.connection.receive(timeout=10)
            if message.header.message_type != MessageType.method_call:
                continue
            _parent, options = message.body
            self.options = {key: value[1] for key, value in options.items()}
            sender = str(message.header.fields[HeaderFields.sender])
            handle = screenshot_request_path(sender, str(self.options["handle_token"]))
            self.connection.send(new_method_return(message, "o", (handle,)))
            self.saved = self.picture_folder / "Screenshot from today.png"
            Image.new("RGB", (800, 600), (10, 200, 30)).save(self.saved)
            results = {"uri": ("s", self.saved.as_uri())} if self.response_code == 0 else {}
            request = DBusAddress(handle, interface="org.freedesktop.portal.Request")
            self.connection.send(new_signal(request, "Response", "ua{sv}", (self.response_code, results)))
            return

    def close(self) -> None:
        self.thread.join(timeout=5)
        self.connection.close()


def test_the_portal_screenshot_is_read_into_memory_and_its_file_deleted(
    session_bus: str, tmp_path: Path
) -> None:
    portal = FakeScreenshotPortal(tmp_path)
    try:
        (frame,) = list(PortalBackend().frames())
    finally:
        portal.close()
    assert (frame.mode, frame.size) == ("RGB", (800, 600))
    assert frame.getpixel((5, 5)) == (10, 200, 30)
    assert portal.options["interactive"] is False
    assert portal.saved is not None and not portal.saved.exists()


def test_a_refused_portal_screenshot_says_where_to_allow_it(session_bus: str, tmp_path: Path) -> None:
    portal = FakeScreenshotPortal(tmp_path, response_code=1)
    try:
        with pytest.raises(CaptureUnavailable, match="allow Workproof to take screenshots"):
            list(PortalBackend().frames())
    finally:
        portal.close()


def test_no_portal_on_the_bus_names_what_to_install(session_bus: str) -> None:
    with pytest.raises(CaptureUnavailable, match="install xdg-desktop-portal"):
        list(PortalBackend().frames())


def test_no_session_bus_at_all_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'nothing'}")
    with pytest.raises(CaptureUnavailable, match="no D-Bus session bus"):
        list(PortalBackend().frames())
    assert os.environ["DBUS_SESSION_BUS_ADDRESS"].endswith("nothing")
