"""Domain errors → HTTP, in one place. Every refusal's body is ``{"detail": message, "code": code}``: the
message is the rule's own, which says what to do; the code is stable and listed in the schema and in
docs/errors.md, and it is what programs branch on."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import DomainError, ErrorCode, RateLimited, Unavailable
from store.objects import ObjectStoreUnavailable

log = logging.getLogger("workproof.api")


class ErrorBody(BaseModel):
    """Every refusal, whatever its status: the rule's own message, which says what to do, and a stable
    code for programs (docs/errors.md)."""

    detail: str
    code: ErrorCode


def refusal(
    message: str, code: ErrorCode, status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": message, "code": code}, status_code=status, headers=headers)


# Documented on every operation, so the schema says what a refusal looks like (FastAPI would otherwise
# document its own list-shaped 422, which this API never sends).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be read"},
    401: {"model": ErrorBody, "description": "No valid credentials: send `Authorization: Bearer <token>`"},
    403: {"model": ErrorBody, "description": "Known caller, but not allowed to do this"},
    404: {"model": ErrorBody, "description": "No such object, or not one the caller may see"},
    409: {"model": ErrorBody, "description": "Not possible in the current state: too late, or already done"},
    413: {"model": ErrorBody, "description": "A body or image over a documented limit"},
    422: {"model": ErrorBody, "description": "The request is malformed or breaks a rule"},
    429: {"model": ErrorBody, "description": "Too many attempts: retry after `Retry-After` seconds"},
    503: {"model": ErrorBody, "description": "A dependency is down: retry after `Retry-After` seconds"},
}


_HTTP_CODES: dict[int, ErrorCode] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "invalid_input",
}


def install(app: FastAPI) -> None:
    """The handlers below, and their documentation: call before the routers are included, so every
    operation documents ``ERROR_RESPONSES`` (a route may still declare its own for a status)."""
    app.router.responses = {**ERROR_RESPONSES, **app.router.responses}

    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError) -> JSONResponse:
        headers = {}
        if isinstance(error, (Unavailable, RateLimited)):
            headers["Retry-After"] = str(error.retry_after)
        if error.status_code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return refusal(error.message, error.code, error.status_code, headers)

    @app.exception_handler(ObjectStoreUnavailable)
    async def _store(request: Request, error: ObjectStoreUnavailable) -> JSONResponse:
        log.warning("object store unavailable: %s", error)
        return refusal(
            "image storage is unavailable: keep the capture and retry",
            "unavailable",
            503,
            {"Retry-After": "5"},
        )

    @app.exception_handler(OperationalError)
    async def _db(request: Request, error: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", error)
        return refusal("the database is unavailable: retry shortly", "unavailable", 503, {"Retry-After": "5"})

    @app.exception_handler(DataError)
    async def _data(request: Request, error: DataError) -> JSONResponse:
        # SQLSTATE class 22: a value that passed validation but the database cannot hold (a NUL character
        # in text, a number beyond its column's range). The caller's input, so a 422, not a 500.
        reason = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else "invalid value"
        log.warning("database refused a value: %s", reason)
        return refusal(f"a value in the request cannot be stored: {reason}", "invalid_input", 422)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, error: DBAPIError) -> JSONResponse:
        if error.connection_invalidated:
            return refusal(
                "the database is unavailable: retry shortly", "unavailable", 503, {"Retry-After": "5"}
            )
        log.exception("database error")
        return refusal("the request could not be stored", "server_error", 500)

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(request: Request, error: UnicodeEncodeError) -> JSONResponse:
        # A lone surrogate ("\ud800" in JSON) is no text: refused whichever field carried it. The free-text
        # rules (domain.text) refuse it before this; this catches any other field on its way to storage.
        return refusal(
            "the request holds a lone surrogate, which is no text: send proper UTF-8",
            "text_invalid_character",
            422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # The framework's own refusals (an unreadable body, an unknown path or method) in the same shape.
        code = _HTTP_CODES.get(error.status_code, "bad_request")
        return refusal(str(error.detail), code, error.status_code, dict(error.headers or {}))

    # The ingest path speaks to psycopg directly (store/captures.py, store/auth.py): its errors arrive
    # unwrapped, and mean what SQLAlchemy's wrappers above mean.
    @app.exception_handler(psycopg.OperationalError)
    async def _pg_down(request: Request, error: psycopg.OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", error)
        return refusal("the database is unavailable: retry shortly", "unavailable", 503, {"Retry-After": "5"})

    @app.exception_handler(psycopg.DataError)
    async def _pg_data(request: Request, error: psycopg.DataError) -> JSONResponse:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "invalid value"
        log.warning("database refused a value: %s", reason)
        return refusal(f"a value in the request cannot be stored: {reason}", "invalid_input", 422)

    @app.exception_handler(psycopg.Error)
    async def _pg(request: Request, error: psycopg.Error) -> JSONResponse:
        log.exception("database error")
        return refusal("the request could not be stored", "server_error", 500)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        parts = []
        for item in error.errors()[:5]:
            where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return refusal("; ".join(parts) or "invalid request", "invalid_input", 422)
