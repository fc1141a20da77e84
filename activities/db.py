"""The database handle every activity class shares."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, LiteralString

from sqlmodel import Session

from store.db import Raw, raw_statement, raw_transaction, session_scope


class DatabaseActivities:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.database_url, pre_ping=False) as session:
            yield session

    @contextmanager
    def connection(self) -> Iterator[Raw]:
        """One transaction on the driver's connection, for activities that run plain SQL only: it commits
        on success and rolls back on any error, like ``session``, without the ORM's unit of work or
        SQLAlchemy's statement layer (store.db.raw_transaction)."""
        with raw_transaction(self.database_url, pre_ping=False) as connection:
            yield connection

    def execute(self, query: LiteralString, params: Mapping[str, Any]) -> int:
        """One statement on its own (autocommit): for activities that write a single row or batch, one
        round trip instead of three. Returns the rows it changed."""
        return raw_statement(self.database_url, query, params, pre_ping=False)
