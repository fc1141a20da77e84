"""Signing in and out of the web pages. Today a person signs in with an API token (``wp_…``), which
becomes an HttpOnly, SameSite session cookie with its own CSRF token; sign-ins are rate-limited per
client address."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import SESSION_COOKIE, FormViewerDep, ServicesDep, same_token
from api.web.render import page_router, redirect, render
from api.web.security import (
    LOGIN_CSRF_COOKIE,
    LoginWindow,
    home_of,
    new_request_id,
    safe_next,
    set_login_csrf_cookie,
    set_session_cookie,
)
from domain.errors import Unauthorized
from store.audit import audit
from store.models import User
from store.settings import Settings
from store.users import authenticate, issue_token, revoke_token

router = page_router()


def login_window(request: Request, settings: Settings) -> LoginWindow:
    window: LoginWindow | None = getattr(request.app.state, "login_window", None)
    if window is None:
        window = request.app.state.login_window = LoginWindow(settings.login_attempts_per_minute)
    return window


def login_page(
    settings: Settings,
    next_url: str | None,
    error: str | None,
    status: int,
    headers: dict[str, str] | None = None,
) -> Response:
    token = new_request_id()
    response = render("login.html", {"title": "Sign in", "csrf": token, "next": safe_next(next_url),
                                     "error": error}, status, headers)  # fmt: skip
    set_login_csrf_cookie(response, token, settings)
    return response


@router.get("/login")
async def login_form(
    request: Request, services: ServicesDep, next: str | None = Query(None, max_length=500)
) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        try:
            user, _ = await services.db(
                lambda session: authenticate(session=session, secret=secret, kind="session")
            )
            return redirect(safe_next(next) if next else home_of(user))
        except Unauthorized:
            pass
    return login_page(services.settings, next, None, 200)


@router.post("/login")
async def login(
    request: Request,
    services: ServicesDep,
    token: str = Form("", max_length=300),
    csrf: str = Form("", max_length=200),
    next: str = Form("/", max_length=500),
) -> Response:
    """Trade an API token (``wp_…``) for a web session; at most ``login_attempts_per_minute`` tries per
    address."""
    settings = services.settings
    address = request.client.host if request.client else "unknown"
    allowed, wait = login_window(request, settings).allow(address)
    if not allowed:
        return login_page(settings, next, f"Too many sign-in attempts from your address: wait {wait} s and try again.",
                          429, {"Retry-After": str(wait)})  # fmt: skip
    if not same_token(request.cookies.get(LOGIN_CSRF_COOKIE), csrf):
        return login_page(settings, next, "The sign-in form expired: please try again.", 403)

    def start_session(session: Session) -> tuple[str, User]:
        user, _ = authenticate(session=session, secret=token.strip(), kind="api")
        secret, _row = issue_token(
            session=session, user=user, kind="session", name="web session",
            lifetime=timedelta(hours=settings.session_hours),
        )  # fmt: skip
        audit(session=session, actor=user, action="session.start", subject_type="user",
              subject_id=str(user.id), detail={"address": address})  # fmt: skip
        return secret, user

    try:
        secret, user = await services.db(start_session)
    except Unauthorized as error:
        return login_page(settings, next, f"Sign-in failed: {error.message}", 401)
    response = redirect(safe_next(next) if next and next != "/" else home_of(user))
    set_session_cookie(response, SESSION_COOKIE, secret, settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(viewer: FormViewerDep, services: ServicesDep) -> Response:
    await services.db(lambda session: revoke_token(session=session, token_id=uuid.UUID(viewer.session_id)))
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
