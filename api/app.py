"""The FastAPI application: routes by audience, the web pages, and the clients made in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.routes import accounts, captures, contracts, health, notifications, support, timesheets, users
from api.services import Services
from api.temporal import TemporalGateway
from api.web import pages
from store.objects import ObjectStore
from store.settings import Settings, get_settings

log = logging.getLogger("workproof.api")


class BodyLimit:
    """Refuse a body over ``limit`` bytes with 413 before it is parsed or spooled, whether it declares
    its length or streams it chunked."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
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
                await _too_large(send, self.limit)


class _BodyTooLarge(BaseException):
    """A BaseException so that no ``except Exception`` between here and the body's reader (FastAPI
    turns form-reading errors into a 400) swallows the limit: BodyLimit answers 413 itself."""


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"detail":"the request body is over the limit of {limit} bytes","code":"too_large"}}'.encode()
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json"),
                                                                          (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.database_url:
        raise SystemExit(
            "WORKPROOF_DATABASE_URL is not set: `workproof up` sets it, or point it at PostgreSQL"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = Services(
            settings=settings,
            temporal=TemporalGateway(
                settings.temporal_address or f"127.0.0.1:{settings.embedded_temporal_port}",
                settings.temporal_namespace,
                settings.temporal_task_queue,
            ),
            objects=ObjectStore.from_settings(settings),
        )
        yield

    app = FastAPI(
        title="Workproof",
        version="0.1.0",
        summary="Documented hourly work with guaranteed payment.",
        lifespan=lifespan,
    )
    errors.install(app)
    for module in (health, users, accounts, contracts, captures, timesheets, support, notifications, pages):
        app.include_router(module.router)
    body_limit = settings.max_image_bytes * settings.max_monitors + 256 * 1024
    app.add_middleware(BodyLimit, limit=body_limit)
    return app
