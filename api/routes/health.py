"""``GET /health``: each dependency's status and latency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from store import notify as notify_store
from store.db import ping

router = APIRouter(tags=["health"])


async def _check(probe: Callable[[], Awaitable[Any]], limit: float = 4.0) -> dict[str, Any]:
    began = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), limit)
    except Exception as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return {
            "status": "down",
            "latency_ms": round((time.perf_counter() - began) * 1000, 1),
            "error": message[:300],
        }
    return {"status": "ok", "latency_ms": round((time.perf_counter() - began) * 1000, 1)}


@router.get(
    "/health",
    summary="Status and latency of each dependency",
    responses={503: {"description": "A dependency is down: the same report, with status `degraded`"}},
)
async def health(services: ServicesDep) -> JSONResponse:
    url = services.database_url
    checks = dict(
        zip(
            ("temporal", "database", "object_store"),
            await asyncio.gather(
                _check(services.temporal.ping),
                _check(lambda: run_in_threadpool(ping, url)),
                _check(lambda: run_in_threadpool(services.objects.ping)),
            ),
            strict=True,
        )
    )
    ok = all(c["status"] == "ok" for c in checks.values())
    body: dict[str, Any] = {"status": "ok" if ok else "degraded", "checks": checks}
    if checks["database"]["status"] == "ok":
        try:  # the mail sender's state, as the outbox shows it (the sender runs in the workers)
            body["mail_sender"] = await services.db(notify_store.mail_state)
        except Exception as error:
            body["mail_sender"] = {"error": str(error)[:300]}
    return JSONResponse(body, status_code=200 if ok else 503)
