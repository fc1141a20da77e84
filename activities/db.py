"""The database handle every activity class shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session

from store.db import session_scope


class DatabaseActivities:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.database_url) as session:
            yield session
