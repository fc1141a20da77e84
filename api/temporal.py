"""One Temporal client for the app, made in the lifespan and handed to routes (never a global, never a
connect per request). It connects lazily, so the API starts and reports "degraded" while Temporal is down."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.errors import (
    CATALOGUE,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unavailable,
    error_for_code,
)
from workflows.client import connect


class TemporalGateway:
    def __init__(self, address: str, namespace: str, task_queue: str, vouch_key: str | None = None) -> None:
        self.address = address
        self.namespace = namespace
        self.task_queue = task_queue
        self.vouch_key = vouch_key
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        connect(self.address, self.namespace, vouch_key=self.vouch_key), timeout=5
                    )
                except Exception as error:
                    raise Unavailable(
                        f"the workflow engine (Temporal at {self.address}) is unreachable: {error}"
                    ) from None
        return self._client

    async def ping(self) -> None:
        client = await self.client()
        await client.service_client.check_health(timeout=timedelta(seconds=3))


# Refusals of workers that predate the codes carried the class name as their type.
_KINDS: dict[str, type[DomainError]] = {
    "Conflict": Conflict,
    "InvalidInput": InvalidInput,
    "Forbidden": Forbidden,
    "NotFound": NotFound,
}


def domain_error(error: BaseException, what: str = "workflow") -> DomainError:
    """Turn a Temporal failure into the domain error the API maps to a status code: a validator's
    rejection keeps its message and kind (409/422/403); an unknown workflow is a 404."""
    if isinstance(error, WorkflowUpdateFailedError):
        cause: Any = error.cause
        while cause is not None and not isinstance(cause, ApplicationError):
            cause = getattr(cause, "cause", None)
        if isinstance(cause, ApplicationError):
            if cause.type in CATALOGUE:
                return error_for_code(cause.type, cause.message)
            return _KINDS.get(cause.type or "", Conflict)(cause.message)
        return Conflict(str(error.cause or error))
    if isinstance(error, RPCError):
        if error.status == RPCStatusCode.NOT_FOUND:
            return NotFound(f"no {what} (it has not started, or has finished and was removed)")
        if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return Unavailable("the workflow engine is unavailable: try again shortly")
        return Conflict(error.message)
    return Unavailable(f"the workflow engine failed: {error}")
