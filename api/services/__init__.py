"""The use cases, one module per area, called by both front ends: the REST routes (``api/routes``) and the
web pages (``api/web``), so a page can never do what the API would refuse, nor the API what a page would.

Each function takes the :class:`Services` context (settings, database, Temporal, object store) and the
acting user, and answers with public models (``api/schemas.py``). Rules live in ``domain/``; SQL in
``store/``; the Temporal messages in ``domain/messages.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from api.temporal import TemporalGateway
from store.auth import TokenCache
from store.db import session_scope
from store.objects import ObjectStore
from store.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Services:
    """What every use case may reach, made once in the app's lifespan."""

    settings: Settings
    temporal: TemporalGateway
    objects: ObjectStore
    tokens: TokenCache  # bearer tokens, checked once and then for seconds against auth_generation

    @property
    def database_url(self) -> str:
        url = self.settings.database_url
        assert url, "the app refuses to start without WORKPROOF_DATABASE_URL"
        return url

    async def db(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction on a worker thread (committed when it returns, rolled back if
        it raises), so the event loop never waits on PostgreSQL."""

        def run() -> T:
            with session_scope(self.database_url) as session:
                return work(session)

        return await run_in_threadpool(run)
