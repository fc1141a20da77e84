"""Domain errors → HTTP, in one place. The message is the rule's own, which says what to do."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError

from domain.errors import DomainError, Unavailable
from store.objects import ObjectStoreUnavailable

log = logging.getLogger("workproof.api")


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError) -> JSONResponse:
        headers = {}
        if isinstance(error, Unavailable):
            headers["Retry-After"] = str(error.retry_after)
        if error.status_code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse({"detail": error.message}, status_code=error.status_code, headers=headers)

    @app.exception_handler(ObjectStoreUnavailable)
    async def _store(request: Request, error: ObjectStoreUnavailable) -> JSONResponse:
        log.warning("object store unavailable: %s", error)
        return JSONResponse(
            {"detail": "image storage is unavailable: keep the capture and retry"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(OperationalError)
    async def _db(request: Request, error: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", error)
        return JSONResponse(
            {"detail": "the database is unavailable: retry shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, error: DBAPIError) -> JSONResponse:
        if error.connection_invalidated:
            return JSONResponse(
                {"detail": "the database is unavailable: retry shortly"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        log.exception("database error")
        return JSONResponse({"detail": "the request could not be stored"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        parts = []
        for item in error.errors()[:5]:
            where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=422)
