"""The database handle every activity class shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlmodel import Session

from store.db import get_engine, session_scope


class DatabaseActivities:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.database_url) as session:
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """One transaction on a bare connection, for activities that write with plain SQL only: it
        commits on success and rolls back on any error, like ``session``, without the ORM's unit of work."""
        with get_engine(self.database_url).begin() as connection:
            yield connection
