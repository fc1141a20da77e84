"""What keeps the web pages safe: security headers, the session cookie, CSRF tokens and the login rate
limit. The pages themselves live in ``api/web/pages.py``."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import deque

from starlette.responses import Response

from store.models import User
from store.settings import Settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
LOGIN_CSRF_COOKIE = "wp_login_csrf"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,100}$")


def secure(response: Response, *, cache: bool = False) -> Response:
    """Every page response carries the security headers; pages hold personal data and signed links,
    so they are never cached."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    if not cache:
        response.headers["Cache-Control"] = "no-store"
    return response


def https(settings: Settings) -> bool:
    return settings.base_url.startswith("https://")


def set_session_cookie(response: Response, name: str, secret: str, settings: Settings) -> None:
    response.set_cookie(
        name, secret, max_age=settings.session_hours * 3600, path="/", secure=https(settings),
        httponly=True, samesite="lax",
    )  # fmt: skip


def set_login_csrf_cookie(response: Response, token: str, settings: Settings) -> None:
    """The login form has no session yet: its CSRF token is a double-submit cookie (login CSRF would
    sign a victim in as the attacker)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, path="/login", secure=https(settings), httponly=True,
        samesite="strict",
    )  # fmt: skip


def new_request_id() -> str:
    return "web-" + secrets.token_urlsafe(12)


def request_id(value: str | None) -> str:
    """The form's idempotency key (the workflow update id): a resubmitted form returns the first
    result instead of acting twice."""
    return value if value and _REQUEST_ID.match(value) else new_request_id()


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and len(value) < 500
    ):
        return value
    return "/"


def home_of(user: User) -> str:
    return "/support" if user.role == "support" else "/contracts"


class LoginWindow:
    """Login attempts per client address in a sliding minute, in this process."""

    def __init__(self, per_minute: int, window: float = 60.0, max_addresses: int = 10_000) -> None:
        self.per_minute = per_minute
        self.window = window
        self.max_addresses = max_addresses
        self.attempts: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def allow(self, address: str, now: float | None = None) -> tuple[bool, int]:
        """(whether this attempt may go ahead, seconds to wait if not). Refused attempts are not
        counted, so waiting out the minute always works."""
        now = time.monotonic() if now is None else now
        with self.lock:
            if len(self.attempts) > self.max_addresses:
                self._sweep(now)
            seen = self.attempts.setdefault(address, deque())
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.per_minute:
                return False, max(1, int(seen[0] + self.window - now) + 1)
            seen.append(now)
            return True, 0

    def _sweep(self, now: float) -> None:
        for address in [a for a, seen in self.attempts.items() if not seen or seen[-1] <= now - self.window]:
            del self.attempts[address]
