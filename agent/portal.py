"""Screenshots on GNOME, KDE and other Wayland desktops through xdg-desktop-portal (D-Bus, via jeepney).

The portal answers asynchronously: the call returns a Request object path and the result arrives as
that Request's ``Response`` signal, so the match rule must be in place *before* the call or a fast
portal can answer into the void. The portal writes the picture to a file (usually in ~/Pictures); it is
read into memory and deleted at once so no unblurred screenshot lingers on disk. The portal gives one
image of the whole desktop, not one per monitor.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from PIL import Image

from agent.errors import CaptureUnavailable

PORTAL_TIMEOUT_SECONDS = 60.0  # the first call may wait for the provider to allow screenshots


def screenshot_request_path(unique_name: str, token: str) -> str:
    """Where the portal will publish the Request for our call (xdg-desktop-portal's documented rule)."""
    sender = unique_name.lstrip(":").replace(".", "_")
    return f"/org/freedesktop/portal/desktop/request/{sender}/{token}"


def uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise CaptureUnavailable(f"the screenshot portal answered an unexpected location {uri!r}")
    return Path(unquote(parsed.path))


class PortalBackend:
    name = "portal"

    def frames(self) -> Iterator[Image.Image]:
        if sys.platform != "linux":
            raise CaptureUnavailable("the desktop portal exists only on Linux")
        path = self._request_screenshot()
        try:
            with Image.open(path) as picture:
                frame = picture.convert("RGB")
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
        yield frame

    def _request_screenshot(self) -> Path:
        try:
            from jeepney import DBusAddress, MatchRule, MessageType, new_method_call
            from jeepney.bus_messages import message_bus
            from jeepney.io.blocking import Proxy, open_dbus_connection
        except ImportError:
            raise CaptureUnavailable(
                "the Python package jeepney is missing: reinstall workproof-agent"
            ) from None
        try:
            connection = open_dbus_connection(bus="SESSION")
        except (OSError, KeyError, ValueError) as error:
            raise CaptureUnavailable(
                f"no D-Bus session bus ({error}): run the agent inside your desktop session"
            ) from None
        with connection:
            token = "workproof_" + secrets.token_hex(8)
            request_path = screenshot_request_path(str(connection.unique_name), token)
            rule = MatchRule(
                type="signal",
                interface="org.freedesktop.portal.Request",
                member="Response",
                path=request_path,
            )
            Proxy(message_bus, connection).AddMatch(rule)
            portal = DBusAddress(
                "/org/freedesktop/portal/desktop",
                bus_name="org.freedesktop.portal.Desktop",
                interface="org.freedesktop.portal.Screenshot",
            )
            options: dict[str, tuple[str, Any]] = {"handle_token": ("s", token), "interactive": ("b", False)}
            with connection.filter(rule) as responses:
                try:
                    reply = connection.send_and_get_reply(
                        new_method_call(portal, "Screenshot", "sa{sv}", ("", options)), timeout=10
                    )
                except TimeoutError:
                    raise CaptureUnavailable("the screenshot portal did not answer within 10 s") from None
                if reply.header.message_type == MessageType.error:
                    raise CaptureUnavailable(
                        f"the screenshot portal is not available ({reply.body[0] if reply.body else 'error'}): "
                        "install xdg-desktop-portal and your desktop's back end (xdg-desktop-portal-gnome, "
                        "-kde or -wlr)"
                    )
                try:
                    signal = connection.recv_until_filtered(responses, timeout=PORTAL_TIMEOUT_SECONDS)
                except TimeoutError:
                    raise CaptureUnavailable("the screenshot portal did not answer within 60 s") from None
        code, results = signal.body
        if code != 0:
            raise CaptureUnavailable(
                "the desktop refused the screenshot: allow Workproof to take screenshots in your "
                "desktop's privacy settings"
            )
        return uri_to_path(str(results["uri"][1]))
