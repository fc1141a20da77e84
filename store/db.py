"""Engine, sessions and migrations."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


@lru_cache(maxsize=8)
def get_engine(url: str, pre_ping: bool = True) -> Engine:
    """One pool per URL and process. ``pre_ping`` tests each connection before handing it out, so a
    restarted PostgreSQL costs a request nothing. The worker's activities turn it off: the test is one
    more round trip per activity, and an activity that meets a dead connection fails, drops the pool
    (``raw_transaction``; SQLAlchemy does the same for a Session) and is retried by Temporal."""
    return create_engine(url, pool_pre_ping=pre_ping, pool_size=10, max_overflow=20, pool_recycle=1800)


@contextmanager
def session_scope(url: str, *, pre_ping: bool = True) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error: no half-written rows."""
    with Session(get_engine(url, pre_ping), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def ping(url: str) -> None:
    with get_engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))


# --- plain SQL on the driver's connection ------------------------------------------------------------------
# The settlement activities run a handful of fixed statements per contract-week; through SQLAlchemy's
# execution layer each statement cost more Python CPU than PostgreSQL spent on it (bench/settlement.py).
# They run on the driver's connection instead: the same pool, the same transaction when a Session or a
# Connection is handed in, psycopg's own placeholders (``%(name)s``) and server-side prepared statements.

Raw = psycopg.Connection[Any]
Db = Session | Connection | Raw


def driver_connection(db: Db) -> Raw:
    """The psycopg connection under ``db``, inside its transaction. A Session is flushed first: rows the
    caller added (an owner, say) must be in the database before plain SQL reads them."""
    if isinstance(db, psycopg.Connection):
        return db
    if isinstance(db, Session):
        db.flush()
        db = db.connection()
    raw = db.connection.driver_connection
    assert isinstance(raw, psycopg.Connection), "the database URL must use the psycopg driver"
    return raw


@contextmanager
def _pooled(url: str, pre_ping: bool) -> Iterator[Raw]:
    """A psycopg connection from the URL's pool, returned afterwards. One that broke (PostgreSQL
    restarted, the backend was killed) is dropped with every idle connection of the pool: they are most
    likely dead too, and the next caller must not meet them."""
    engine = get_engine(url, pre_ping)
    pooled = engine.raw_connection()
    raw = pooled.driver_connection
    assert isinstance(raw, psycopg.Connection), "the database URL must use the psycopg driver"
    try:
        yield raw
    except psycopg.Error:
        if raw.broken or raw.closed:
            pooled.invalidate()
            engine.dispose()
        raise
    finally:
        pooled.close()


@contextmanager
def raw_transaction(url: str, *, pre_ping: bool = True) -> Iterator[Raw]:
    """One transaction on a pooled psycopg connection: committed on success, rolled back on any error."""
    with _pooled(url, pre_ping) as raw:
        try:
            yield raw
            raw.commit()
        except BaseException:
            if not raw.closed:
                with suppress(psycopg.Error):
                    raw.rollback()
            raise


def raw_statement(url: str, query: LiteralString, params: Mapping[str, Any], *, pre_ping: bool = True) -> int:
    """One statement, atomic on its own (autocommit): no BEGIN and COMMIT round trips around it. Returns
    the rows it changed."""
    with _pooled(url, pre_ping) as raw:
        raw.autocommit = True
        try:
            return max(raw.execute(query, params).rowcount, 0)
        finally:
            if not (raw.broken or raw.closed):  # a lost connection is dropped from the pool, not reset
                raw.autocommit = False


@contextmanager
def autocommit_connection(url: str, *, pre_ping: bool = False) -> Iterator[Raw]:
    """A pooled psycopg connection in autocommit for the length of the block: each statement is its own
    transaction, with no BEGIN, COMMIT or reset round trips around it (the ingest path, the token check).
    Without ``pre_ping`` a connection that died idle fails its first statement, and the pool is dropped."""
    with _pooled(url, pre_ping) as raw:
        raw.autocommit = True
        try:
            yield raw
        finally:
            if not (raw.broken or raw.closed):  # a lost connection is dropped from the pool, not reset
                raw.autocommit = False
