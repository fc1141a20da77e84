"""Signing in and out of the web pages. A person signs in with email and password; an API user may
sign in with an API token instead (``wp_…``; the session then ends when that token does). An account
with a second factor is asked for its code before the session starts. The session is an HttpOnly,
SameSite cookie with its own CSRF token; attempts are limited per client address and per account
(``api/services/accounts.py``)."""

from __future__ import annotations

import uuid

from fastapi import Form, Query, Request
from fastapi.responses import Response

from api.deps import SESSION_COOKIE, AddressDep, FormViewerDep, ServicesDep, same_token
from api.services import accounts
from api.web.render import page_router, redirect, render
from api.web.security import (
    LOGIN_CSRF_COOKIE,
    SECOND_FACTOR_COOKIE,
    SECOND_FACTOR_SECONDS,
    home_of,
    https,
    new_request_id,
    read_ticket,
    safe_next,
    second_factor_ticket,
    set_login_csrf_cookie,
    set_session_cookie,
)
from domain.errors import DomainError, RateLimited, Unauthorized
from store.settings import Settings
from store.users import authenticate, revoke_token

router = page_router()


def form_page(
    template: str, settings: Settings, context: dict, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A page whose form is sent before any session exists: its CSRF token is a double-submit cookie
    (login CSRF would sign a victim in as the attacker)."""
    token = new_request_id()
    context = {"csrf": token, "error": None, "notice": None, **context}
    response = render(template, context, status, headers)
    set_login_csrf_cookie(response, token, settings)
    return response


def refused(template: str, settings: Settings, context: dict, error: DomainError) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
    return form_page(template, settings, {**context, "error": error.message, "code": error.code},
                     error.status_code, headers)  # fmt: skip


def pre_session_csrf_ok(request: Request, csrf: str) -> bool:
    return same_token(request.cookies.get(LOGIN_CSRF_COOKIE), csrf)


def login_page(settings: Settings, next_url: str | None, error: DomainError | None = None) -> Response:
    context = {"title": "Sign in", "next": safe_next(next_url), "email": ""}
    if error is not None:
        return refused("login.html", settings, context, error)
    return form_page("login.html", settings, context)


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
    return login_page(services.settings, next)


@router.post("/login")
async def login(
    request: Request,
    services: ServicesDep,
    address: AddressDep,
    email: str = Form("", max_length=254),
    password: str = Form("", max_length=1024),
    token: str = Form("", max_length=300),
    csrf: str = Form("", max_length=200),
    next: str = Form("/", max_length=500),
) -> Response:
    """Email and password (or an API token) → the second factor if the account has one → a session."""
    settings = services.settings
    if not pre_session_csrf_ok(request, csrf):
        return form_page("login.html", settings, {"title": "Sign in", "next": safe_next(next), "email": email,
                         "error": "The sign-in form expired: please try again."}, 403)  # fmt: skip
    try:
        if token.strip():
            passed = await accounts.check_token_sign_in(services, token, address)
        else:
            passed = await accounts.check_password_sign_in(services, email, password, address)
    except DomainError as error:
        context = {"title": "Sign in", "next": safe_next(next), "email": email}
        if isinstance(error, Unauthorized):
            error.message = f"Sign-in failed: {error.message}"
        elif isinstance(error, RateLimited):
            error.message = f"Too many sign-in attempts: wait {error.retry_after} s and try again."
        return refused("login.html", settings, context, error)
    if passed.second_factor:
        response = redirect(f"/login/second-factor?next={safe_next(next)}")
        response.set_cookie(SECOND_FACTOR_COOKIE, second_factor_ticket(settings, passed.user_id, passed.origin_id),
                            max_age=SECOND_FACTOR_SECONDS, path="/login", secure=https(settings), httponly=True,
                            samesite="strict")  # fmt: skip
        return response
    return await finish(services, passed, address, next)


async def finish(services: ServicesDep, passed: accounts.FirstFactor, address: str, next: str) -> Response:
    secret, user = await services.db(
        lambda session: accounts.start_session(session, services, passed, address)
    )
    response = redirect(safe_next(next) if next and next != "/" else home_of(user))
    set_session_cookie(response, SESSION_COOKIE, secret, services.settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    response.delete_cookie(SECOND_FACTOR_COOKIE, path="/login")
    return response


@router.get("/login/second-factor")
async def second_factor_form(
    request: Request, services: ServicesDep, next: str | None = Query(None, max_length=500)
) -> Response:
    if read_ticket(services.settings, request.cookies.get(SECOND_FACTOR_COOKIE)) is None:
        return redirect("/login")
    return form_page(
        "second_factor.html", services.settings, {"title": "Second factor", "next": safe_next(next)}
    )


@router.post("/login/second-factor")
async def second_factor(
    request: Request,
    services: ServicesDep,
    address: AddressDep,
    code: str = Form("", max_length=64),
    csrf: str = Form("", max_length=200),
    next: str = Form("/", max_length=500),
) -> Response:
    settings = services.settings
    ticket = read_ticket(settings, request.cookies.get(SECOND_FACTOR_COOKIE))
    context = {"title": "Second factor", "next": safe_next(next)}
    if ticket is None:
        return redirect("/login")
    if not pre_session_csrf_ok(request, csrf):
        return form_page(
            "second_factor.html", settings, {**context, "error": "The form expired: try again."}, 403
        )
    user_id, origin_id = ticket
    try:
        await accounts.check_second_factor(services, user_id, code, address)
    except DomainError as error:
        return refused("second_factor.html", settings, context, error)
    return await finish(services, accounts.FirstFactor(user_id, origin_id, True), address, next)


@router.post("/logout")
async def logout(viewer: FormViewerDep, services: ServicesDep) -> Response:
    await services.db(lambda session: revoke_token(session=session, token_id=uuid.UUID(viewer.session_id)))
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
