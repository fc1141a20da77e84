"""Signing the agent in by device approval (as ``gh auth login``): ask the server for a code, print it
with the link where the provider approves it (signed in on the web), and poll until the server hands
over a device token named after this machine. The code expires after 15 minutes."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import TextIO

import httpx

from agent.api import USER_AGENT, error_code, error_detail
from agent.errors import NotLoggedIn, ServerRefused, ServerUnreachable


def machine_name() -> str:
    return (platform.node() or "agent")[:100]


def device_login(
    server: str, out: TextIO, *, machine: str | None = None, sleep: Callable[[float], None] = time.sleep
) -> str:
    """The device token, once a person approves the printed code; raises NotLoggedIn when the code
    expires or is refused."""
    with httpx.Client(base_url=server, headers={"User-Agent": USER_AGENT}, timeout=30) as http:
        try:
            started = http.post("/v1/device/code", json={"machine": machine or machine_name()})
        except httpx.TransportError as error:
            raise ServerUnreachable(
                f"server {server} unreachable ({type(error).__name__}): check the URL"
            ) from None
        if started.status_code != 201:
            raise ServerRefused(started.status_code, error_detail(started), None, error_code(started))
        body = started.json()
        link = f"{body['verification_uri']}?code={body['user_code']}"
        print(f"To sign this agent in, open {link}", file=out)
        print(f"signed in as the provider, and approve the code {body['user_code']}", file=out)
        print(
            f"(it expires in {body['expires_in'] // 60} minutes; waiting for the approval ...)",
            file=out,
            flush=True,
        )
        interval = max(1, int(body.get("interval", 2)))
        deadline = time.monotonic() + int(body["expires_in"]) + 5
        while time.monotonic() < deadline:
            sleep(interval)
            try:
                polled = http.post("/v1/device/token", json={"device_code": body["device_code"]})
            except httpx.TransportError:
                continue  # the server is briefly away: keep polling until the code expires
            if polled.status_code == 200:
                return str(polled.json()["token"])
            code = error_code(polled)
            if code == "device_pending" or polled.status_code in (429, 503):
                continue
            raise NotLoggedIn(f"the server refused the sign-in ({error_detail(polled)}): run login again")
    raise NotLoggedIn("the code expired before it was approved: run `workproof-agent login SERVER_URL` again")


def discard_token(server: str, token: str) -> None:
    """Revoke a device token this login received but will not keep (best effort)."""
    headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
    try:
        with httpx.Client(base_url=server, headers=headers, timeout=10) as http:
            mine = http.get("/v1/me/tokens").json()
            for row in mine:
                if row.get("kind") == "device" and token.startswith(str(row.get("prefix"))):
                    http.delete(f"/v1/me/tokens/{row['id']}")
    except (httpx.HTTPError, ValueError, AttributeError):
        return
