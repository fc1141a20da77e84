"""What keeps the web pages safe: security headers, the session cookie, CSRF tokens and the login rate
limit. The pages themselves live in ``api/web/pages.py``."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid

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
        LOGIN_CSRF_COOKIE, token, max_age=3600, path="/", secure=https(settings), httponly=True,
        samesite="strict",
    )  # fmt: skip


SECOND_FACTOR_COOKIE = "wp_second_factor"
SECOND_FACTOR_SECONDS = 300


def _sign(settings: Settings, value: str) -> str:
    key = settings.resolved_secret_key().encode()
    return hmac.new(key, f"second-factor:{value}".encode(), hashlib.sha256).hexdigest()


def second_factor_ticket(settings: Settings, user_id: uuid.UUID, origin_id: uuid.UUID | None,
                         now: float | None = None) -> str:  # fmt: skip
    """Signed proof that the first factor passed, for five minutes: the second factor's form finishes
    the sign-in with it (nothing is stored, so an unfinished sign-in leaves nothing behind)."""
    expires = int((now or time.time()) + SECOND_FACTOR_SECONDS)
    value = f"{user_id}.{origin_id or ''}.{expires}"
    return f"{value}.{_sign(settings, value)}"


def read_ticket(settings: Settings, ticket: str | None) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    parts = (ticket or "").split(".")
    if len(parts) != 4:
        return None
    value = ".".join(parts[:3])
    if not hmac.compare_digest(_sign(settings, value), parts[3]):
        return None
    try:
        if int(parts[2]) < time.time():
            return None
        return uuid.UUID(parts[0]), uuid.UUID(parts[1]) if parts[1] else None
    except ValueError:
        return None


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
    return {"support": "/support", "admin": "/admin/users"}.get(user.role, "/contracts")
