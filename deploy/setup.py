"""``workproof migrate``: schema, bucket and search attributes, each idempotent, each retried until ready."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from store.db import migrate
from store.objects import ObjectStore
from store.settings import Settings
from workflows.attributes import CLI_TYPES
from workflows.retention import SCHEDULE_ID as RETENTION_SCHEDULE_ID

T = TypeVar("T")


class SetupError(Exception):
    pass


def _retry(what: str, fn: Callable[[], T], wait_seconds: float) -> T:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return fn()
        except Exception as error:
            if time.monotonic() >= deadline:
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise SetupError(f"{what} failed: {first}") from error
            time.sleep(0.5)


async def register_search_attributes(address: str, namespace: str) -> list[str]:
    """Add the search attributes the namespace lacks; returns the names added."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
    from temporalio.client import Client
    from temporalio.service import RPCError, RPCStatusCode

    kinds = {
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
        "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    }
    client = await Client.connect(address, namespace=namespace)
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        known = set(existing.custom_attributes) | set(existing.system_attributes)
    except RPCError as error:  # the time-skipping test server can add attributes but not list them
        if error.status != RPCStatusCode.UNIMPLEMENTED and "unimplemented" not in str(error).lower():
            raise
        known = set()
    missing = {name: kinds[kind] for name, kind in CLI_TYPES.items() if name not in known}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


def prepare(settings: Settings, *, wait_seconds: float = 30) -> None:
    if not settings.database_url:
        raise SetupError(
            "DATABASE_URL is not set: point it at PostgreSQL (postgresql://user:pass@host:5432/db)"
        )
    url = settings.database_url
    _retry("database migration", lambda: migrate(url), wait_seconds)
    store = ObjectStore.from_settings(settings)
    _retry(f"object store bucket set-up at {store.endpoint}", store.ensure_bucket, wait_seconds)
    if settings.temporal_address:
        address = settings.temporal_address
        _retry(
            f"Temporal search attributes at {address}",
            lambda: asyncio.run(register_search_attributes(address, settings.temporal_namespace)),
            wait_seconds,
        )
        _retry(
            f"Temporal schedule {RETENTION_SCHEDULE_ID} at {address}",
            lambda: asyncio.run(ensure_schedules(address, settings)),
            wait_seconds,
        )


async def ensure_schedules(address: str, settings: Settings) -> None:
    """The daily image retention sweep; created once, brought to the current settings on every run."""
    from workflows.client import connect
    from workflows.retention import ensure_retention_schedule

    client = await connect(address, settings.temporal_namespace)
    await ensure_retention_schedule(
        client, retention_days=settings.retention_days, task_queue=settings.temporal_task_queue
    )
