"""Shared dependencies as ``Annotated`` aliases, so a route's signature says what it needs."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from api.temporal import TemporalGateway
from domain.errors import Forbidden, Unauthorized
from store.db import session_scope
from store.models import User
from store.objects import ObjectStore
from store.settings import Settings
from store.users import authenticate

SESSION_COOKIE = "wp_session"


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(request: Request) -> Iterator[Session]:
    settings: Settings = request.app.state.settings
    assert settings.database_url
    with session_scope(settings.database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


StoreDep = Annotated[ObjectStore, Depends(get_store)]


def get_temporal(request: Request) -> TemporalGateway:
    return request.app.state.temporal


TemporalDep = Annotated[TemporalGateway, Depends(get_temporal)]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def get_current_user(request: Request, session: SessionDep) -> User:
    """Bearer token (API, agent) or session cookie (web pages)."""
    token = bearer(request)
    if token is not None:
        user, _ = authenticate(session=session, secret=token, kind="api")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise Unauthorized("sign in: send `Authorization: Bearer <token>`")
        user, row = authenticate(session=session, secret=cookie, kind="session")
        # A cookie rides along on cross-site requests: a change made with one must also carry the
        # session's CSRF token, which only our own pages know.
        if request.method not in ("GET", "HEAD", "OPTIONS") and not hmac.compare_digest(
            request.headers.get("x-csrf-token", ""), row.csrf_secret
        ):
            raise Forbidden("missing or wrong CSRF token: send the X-CSRF-Token header of your session")
        request.state.session_token = row
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def role_required(*roles: str):
    def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden(f"this needs the {' or '.join(roles)} role; you are {user.role}")
        return user

    return Depends(check)


ProviderUser = Annotated[User, role_required("provider")]
ClientUser = Annotated[User, role_required("client")]
SupportUser = Annotated[User, role_required("support")]
AdminUser = Annotated[User, role_required("admin")]
