"""The FastAPI application: routes by audience, the web pages, and the clients made in the lifespan."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.deps import SESSION_COOKIE
from api.routes import (
    accounts,
    captures,
    contracts,
    credit,
    health,
    money,
    notifications,
    support,
    timesheets,
    users,
)
from api.services import Services
from api.temporal import TemporalGateway
from api.web import docs, pages
from store.auth import TokenCache
from store.objects import ObjectStore
from store.settings import Settings, get_settings

log = logging.getLogger("workproof.api")


class BodyLimit:
    """Refuse a body over its route's limit with 413 before it is parsed or spooled, whether it declares
    its length or streams it chunked: captures (the one route that carries images) may be ``upload_limit``
    bytes, everything else ``limit``. An API write that carries no credentials at all is refused with 401
    before a byte of its body is read."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH", "DELETE"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = dict(scope["headers"])
        if (
            path.startswith("/v1/")
            and path not in PUBLIC_WRITES
            and b"authorization" not in headers
            and SESSION_COOKIE.encode() not in headers.get(b"cookie", b"")
        ):
            await _refuse(send, 401, "sign in: send `Authorization: Bearer <token>`", "token_missing")
            return
        limit = self.upload_limit if scope["method"] == "POST" and _UPLOAD.match(path) else self.limit
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(send, limit)


_UPLOAD = re.compile(r"^/v1/contracts/[^/]+/captures/?$")
# API writes made before anyone is signed in: the agent asking for a device code and polling for its token.
PUBLIC_WRITES = frozenset({"/v1/device/code", "/v1/device/token"})


class _BodyTooLarge(BaseException):
    """A BaseException so that no ``except Exception`` between here and the body's reader (FastAPI
    turns form-reading errors into a 400) swallows the limit: BodyLimit answers 413 itself."""


async def _too_large(send: Send, limit: int) -> None:
    await _refuse(send, 413, f"the request body is over the limit of {limit} bytes", "too_large")


async def _refuse(send: Send, status: int, detail: str, code: str) -> None:
    body = json.dumps({"detail": detail, "code": code}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.database_url:
        raise SystemExit(
            "WORKPROOF_DATABASE_URL is not set: `workproof up` sets it, or point it at PostgreSQL"
        )

    database_url = settings.database_url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = Services(
            settings=settings,
            temporal=TemporalGateway(
                settings.temporal_address or f"127.0.0.1:{settings.embedded_temporal_port}",
                settings.temporal_namespace,
                settings.temporal_task_queue,
                vouch_key=settings.resolved_secret_key(),
            ),
            objects=ObjectStore.from_settings(settings),
            tokens=TokenCache(database_url),
        )
        yield

    app = FastAPI(
        title="Workproof",
        version="0.1.0",
        summary="Documented hourly work with guaranteed payment.",
        lifespan=lifespan,
        docs_url=None,  # api/web/docs.py serves it from local assets
        redoc_url=None,
    )
    errors.install(app)
    for module in (
        health,
        users,
        accounts,
        credit,
        money,
        contracts,
        captures,
        timesheets,
        support,
        notifications,
        docs,
        pages,
    ):
        app.include_router(module.router)
    upload_limit = settings.max_image_bytes * settings.max_monitors + 256 * 1024
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, upload_limit=upload_limit)
    return app
