"""Shared dependencies as ``Annotated`` aliases, so a route's or a page's signature says what it needs.
Both front ends use these: one way to reach the database, the settings, Temporal and the use cases, one
authentication and one CSRF check.

- API callers send ``Authorization: Bearer <token>`` (``CurrentUser``); a browser that calls the API with
  its session cookie must send the session's CSRF token in ``X-CSRF-Token`` for any change.
- Pages use the session cookie (``ViewerDep``); a page's form carries the session's CSRF token in its
  ``csrf`` field (``FormViewerDep``)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlmodel import Session

from api.services import Services
from api.temporal import TemporalGateway
from domain.accounts import needs_second_factor
from domain.errors import ErrorCode, Forbidden, Unauthorized
from store import notify as notify_store
from store.db import session_scope
from store.models import User
from store.objects import ObjectStore
from store.settings import Settings
from store.users import authenticate

SESSION_COOKIE = "wp_session"


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(request: Request) -> Settings:
    return get_services(request).settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(request: Request) -> Iterator[Session]:
    with session_scope(get_services(request).database_url) as session:
        yield session


# Committed when the route function returns, before the answer is sent: a client that was told "revoked"
# (or "created") never reaches a replica, or this one, before the change is visible.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_store(request: Request) -> ObjectStore:
    return get_services(request).objects


StoreDep = Annotated[ObjectStore, Depends(get_store)]


def get_temporal(request: Request) -> TemporalGateway:
    return get_services(request).temporal


TemporalDep = Annotated[TemporalGateway, Depends(get_temporal)]


def client_address(request: Request) -> str:
    """The caller's address: the peer's, or the nearest untrusted hop of ``X-Forwarded-For`` when the
    peer is a proxy named in ``WORKPROOF_TRUSTED_PROXIES`` (by default none: the header is ignored, as
    anyone can send it)."""
    peer = request.client.host if request.client else "unknown"
    proxies = get_settings(request).proxies
    if not proxies or not _within(peer, proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _within(hop, proxies):
            return hop[:64]
    return hops[0][:64] if hops else peer


def _within(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


AddressDep = Annotated[str, Depends(client_address)]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token; empty never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def get_current_user(request: Request) -> User:
    """Bearer token (API, agent) or session cookie (a browser calling the API). A bearer token's check is
    cached for seconds, and the cache is dropped as soon as any token is revoked (``store/auth.py``)."""
    token = bearer(request)
    if token is not None:
        user = get_services(request).tokens.authenticate(token, kind="api")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise Unauthorized("sign in: send `Authorization: Bearer <token>`", "token_missing")
        with session_scope(get_services(request).database_url) as session:
            user, row = authenticate(session=session, secret=cookie, kind="session")
        # A cookie rides along on cross-site requests: a change made with one must also carry the
        # session's CSRF token, which only our own pages know.
        if request.method not in ("GET", "HEAD", "OPTIONS") and not same_token(
            row.csrf_secret, request.headers.get("x-csrf-token", "")
        ):
            raise Forbidden(
                "missing or wrong CSRF token: send the X-CSRF-Token header of your session", "csrf_failed"
            )
        reason = must_enrol_or_confirm(user)
        if reason is not None:
            raise Forbidden(
                "finish signing up on the web first (confirm your address; staff: enrol a second factor)",
                reason,
            )
        request.state.session_token = row
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def role_required(*roles: str) -> Any:
    def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden(f"this needs the {' or '.join(roles)} role; you are {user.role}", "role_required")
        return user

    return Depends(check)


ProviderUser = Annotated[User, role_required("provider")]
ClientUser = Annotated[User, role_required("client")]
SupportUser = Annotated[User, role_required("support")]
AdminUser = Annotated[User, role_required("admin")]


# --- the web pages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a page and the session's CSRF token."""

    user: User
    csrf: str
    session_id: str
    unread: int = 0  # the bell on every page (store/notify.py)


class LoginRequired(Exception):
    """No valid session on a page: it redirects to the sign-in form."""


class SetupRequired(Exception):
    """A signed-in account that must first confirm its address or enrol a second factor: the page
    redirects there."""

    def __init__(self, to: str) -> None:
        self.to = to


# Pages an account may open before it has confirmed its address or (staff) enrolled a second factor.
SETUP_PAGES = ("/verify", "/account/second-factor", "/logout")


def must_enrol_or_confirm(user: User) -> ErrorCode | None:
    """Why the account cannot act yet: ``email_unverified``, ``second_factor_required`` or None."""
    if user.email_verified_at is None:
        return "email_unverified"
    if needs_second_factor(user.role) and user.totp_enabled_at is None:
        return "second_factor_required"
    return None


def _viewer(request: Request, session: Session, *, form: bool) -> Viewer:
    secret = request.cookies.get(SESSION_COOKIE)
    try:
        if not secret:
            raise Unauthorized("no session", "token_missing")
        user, row = authenticate(session=session, secret=secret, kind="session")
    except Unauthorized:
        if form:  # a form sent after its session ended: say so, never act
            raise Forbidden(
                "your session has ended: sign in again, then repeat the action", "session_ended"
            ) from None
        raise LoginRequired from None
    reason = must_enrol_or_confirm(user)
    if reason is not None and not request.url.path.startswith(SETUP_PAGES):
        if form:
            raise Forbidden("finish setting up your account first", reason)
        raise SetupRequired("/verify" if reason == "email_unverified" else "/account/second-factor")
    unread = notify_store.unread_count(session, user.id)
    return Viewer(user=user, csrf=row.csrf_secret, session_id=str(row.id), unread=unread)


def get_viewer(request: Request, session: SessionDep) -> Viewer:
    """The page's signed-in user; without a valid session the page redirects to sign-in."""
    return _viewer(request, session, form=False)


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def get_maybe_viewer(request: Request, session: SessionDep) -> Viewer | None:
    """The signed-in user of a page anyone may open (an invitation), or None."""
    try:
        return _viewer(request, session, form=False)
    except (LoginRequired, SetupRequired):
        return None


MaybeViewerDep = Annotated[Viewer | None, Depends(get_maybe_viewer)]


def _form_session(request: Request, session: SessionDep) -> Viewer:
    return _viewer(request, session, form=True)


async def get_form_viewer(request: Request, viewer: Annotated[Viewer, Depends(_form_session)]) -> Viewer:
    """The signed-in user of a form post, whose ``csrf`` field must be the session's (else 403)."""
    form = await request.form()
    if not same_token(viewer.csrf, str(form.get("csrf", ""))):
        raise Forbidden(
            "this form did not carry a valid CSRF token: reload the page and try again", "csrf_failed"
        )
    return viewer


FormViewerDep = Annotated[Viewer, Depends(get_form_viewer)]
