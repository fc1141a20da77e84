"""The money paths and the freeze on the driver's connection (store.ledger, store.db.raw_transaction,
store.captures.week_timesheet), against the real PostgreSQL: idempotency keys, refusals that write
nothing, the balance lock under concurrency, and connections that break mid-transaction."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import psycopg
import pytest
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.timesheets import TimesheetActivities
from domain.errors import Conflict, InsufficientFunds
from domain.messages import FreezeInput
from store import ledger
from store.captures import live_timesheet, week_timesheet
from store.db import get_engine, raw_statement, raw_transaction, session_scope
from store.models import Contract, LedgerTransfer, Notification
from tests.workflows.conftest import Week, ledger_invariants, make_week, this_week
from tests.workflows.test_timesheet_paths import current_week, start, until_submitted


def _charge(url: str, week: Week, key: str, cents: int) -> ledger.Transfer:
    with raw_transaction(url) as connection:
        return ledger.charge_client(
            session=connection, key=key, client_id=uuid.UUID(week.client_id),
            provider_id=uuid.UUID(week.provider_id), amount_cents=cents, currency="USD",
            contract_id=uuid.UUID(week.contract_id), week_start=week.week,
        )  # fmt: skip


def _transfers(url: str, key: str) -> list[LedgerTransfer]:
    with session_scope(url) as session:
        return list(session.exec(select(LedgerTransfer).where(LedgerTransfer.idempotency_key == key)).all())


def test_a_key_moves_money_once_and_refuses_other_terms(database_url: str) -> None:
    week = make_week(database_url, this_week() - timedelta(days=7))
    week.fund(10_000)
    key = f"charge:{uuid.uuid4()}"
    first = _charge(database_url, week, key, 6_000)
    again = _charge(database_url, week, key, 6_000)  # a retried activity
    assert again == first
    assert week.balance("client_balance", week.client_id) == 4_000
    with pytest.raises(Conflict, match="other terms"):
        with raw_transaction(database_url) as connection:
            source = ledger.account(session=connection, kind="escrow", owner_id=uuid.UUID(week.provider_id),
                                    currency="USD")  # fmt: skip
            target = ledger.account(session=connection, kind="provider_available",
                                    owner_id=uuid.UUID(week.provider_id), currency="USD")  # fmt: skip
            ledger.transfer(
                session=connection, key=key, source=source, target=target, amount_cents=1, kind="release"
            )
    assert [t.amount_cents for t in _transfers(database_url, key)] == [6_000]
    ledger_invariants(database_url)


def test_a_charge_the_balance_does_not_cover_writes_nothing(database_url: str) -> None:
    week = make_week(database_url, this_week() - timedelta(days=7))
    week.fund(1_000)
    key = f"charge:{uuid.uuid4()}"
    with pytest.raises(InsufficientFunds, match="fund the balance"):
        _charge(database_url, week, key, 6_000)
    assert _transfers(database_url, key) == []
    assert week.balance("client_balance", week.client_id) == 1_000
    ledger_invariants(database_url)


def test_two_charges_at_once_cannot_spend_the_same_funds(database_url: str) -> None:
    """The client's balance row is locked from the read to the commit: of two charges that each fit the
    balance alone, the second sees the first's transfer and is refused."""
    week = make_week(database_url, this_week() - timedelta(days=7))
    week.fund(10_000)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def charge(n: int) -> None:
        start.wait()
        try:
            _charge(database_url, week, f"charge:{week.contract_id}:{n}", 8_000)
            outcomes.append("charged")
        except InsufficientFunds:
            outcomes.append("refused")

    threads = [threading.Thread(target=charge, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["charged", "refused"]
    assert week.balance("client_balance", week.client_id) == 2_000
    ledger_invariants(database_url)


def test_the_same_paths_run_inside_an_orm_session(database_url: str) -> None:
    """The API moves money through a Session: plain SQL joins its transaction, so a rollback takes both."""
    week = make_week(database_url, this_week() - timedelta(days=7))
    key = f"funding:{uuid.uuid4()}"
    with pytest.raises(RuntimeError), session_scope(database_url) as session:
        ledger.fund_client(session=session, client_id=uuid.UUID(week.client_id), amount_cents=500,
                           currency="USD", key=key)  # fmt: skip
        raise RuntimeError("the request failed after the funding")
    assert _transfers(database_url, key) == []
    with session_scope(database_url) as session:
        ledger.fund_client(session=session, client_id=uuid.UUID(week.client_id), amount_cents=500,
                           currency="USD", key=key)  # fmt: skip
        assert (
            ledger.client_balance(session=session, client_id=uuid.UUID(week.client_id), currency="USD") == 500
        )
    ledger_invariants(database_url)


def test_a_failed_transaction_leaves_no_row(database_url: str) -> None:
    week = make_week(database_url, this_week() - timedelta(days=7))
    key = f"test:{uuid.uuid4()}"
    with pytest.raises(RuntimeError), raw_transaction(database_url) as connection:
        connection.execute(
            "INSERT INTO notifications (id, dedupe_key, kind, recipient_id, contract_id, week_start, payload, "
            "created_at) VALUES (%s, %s, 'funds_released', %s, %s, %s, '{}', now())",
            (uuid.uuid4(), key, uuid.UUID(week.provider_id), uuid.UUID(week.contract_id), week.week),
        )
        raise RuntimeError("the activity failed after its first statement")
    with session_scope(database_url) as session:
        assert session.exec(select(Notification).where(Notification.dedupe_key == key)).all() == []


def test_a_connection_broken_mid_transaction_is_not_handed_out_again(database_url: str) -> None:
    """As the worker's activities run: no test before use. The activity that meets the dead connection
    fails (Temporal retries it); the pool is dropped, so the retry gets a live one."""
    with pytest.raises(psycopg.OperationalError), raw_transaction(database_url, pre_ping=False) as connection:
        pid = connection.info.backend_pid
        with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        connection.execute("SELECT 1")
    # dropped with the pool's idle connections (likely dead too): the next callers get new ones
    assert get_engine(database_url, False).pool.checkedin() == 0
    for _ in range(3):
        with raw_transaction(database_url, pre_ping=False) as connection:
            row = connection.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None and row[0] != pid


def test_a_single_statement_commits_alone_and_leaves_the_connection_transactional(database_url: str) -> None:
    week = make_week(database_url, this_week() - timedelta(days=7))
    sql = (
        "INSERT INTO notifications (id, dedupe_key, kind, recipient_id, contract_id, week_start, payload, "
        "created_at) VALUES (%(id)s, %(key)s, 'funds_released', %(recipient)s, %(contract)s, %(week)s, '{}', "
        "now()) ON CONFLICT (dedupe_key) DO NOTHING"
    )
    params = {"key": f"test:{uuid.uuid4()}", "recipient": uuid.UUID(week.provider_id),
              "contract": uuid.UUID(week.contract_id), "week": week.week}  # fmt: skip
    assert raw_statement(database_url, sql, {**params, "id": uuid.uuid4()}, pre_ping=False) == 1
    assert raw_statement(database_url, sql, {**params, "id": uuid.uuid4()}, pre_ping=False) == 0  # deduped
    later = {**params, "id": uuid.uuid4(), "key": f"test:{uuid.uuid4()}"}
    with pytest.raises(RuntimeError), raw_transaction(database_url, pre_ping=False) as connection:
        assert not connection.autocommit  # the same pooled connection, back in transactional mode
        connection.execute(sql, later)
        raise RuntimeError("rolled back")
    with session_scope(database_url) as session:
        keys = {params["key"], later["key"]}
        rows = session.exec(select(Notification).where(col(Notification.dedupe_key).in_(keys))).all()
        assert [row.dedupe_key for row in rows] == [params["key"]]


def test_the_week_read_in_plain_sql_is_the_week_the_api_shows(database_url: str) -> None:
    week = make_week(database_url, this_week() - timedelta(days=7), weekly_limit_hours=1)
    week.slots(day=1, hour=9, count=7)  # 84 minutes documented; the limit pays 60
    week.manual(week.week + timedelta(days=2, hours=10), 30)
    with session_scope(database_url) as session:
        contract = session.get(Contract, uuid.UUID(week.contract_id))
        assert contract is not None
        shown = live_timesheet(session=session, contract=contract, week=week.week)
    with raw_transaction(database_url) as connection:
        read = week_timesheet(db=connection, contract_id=uuid.UUID(week.contract_id), week=week.week)
        assert week_timesheet(db=connection, contract_id=uuid.uuid4(), week=week.week) is None
    assert read == shown
    assert read.content_hash() == shown.content_hash()


def test_a_second_freeze_returns_the_stored_snapshot_unchanged(database_url: str) -> None:
    """A retried freeze (or a late capture between two attempts) never rewrites the week: the first
    snapshot is the one, byte for byte."""
    week = make_week(database_url, this_week() - timedelta(days=7))
    week.slots(day=1, hour=9, count=5)
    activities = TimesheetActivities(database_url)
    request = FreezeInput(contract_id=week.contract_id, week_start=week.week, weekly_limit_hours=40)
    first = activities.freeze_timesheet(request)
    week.slots(day=2, hour=9, count=5)  # arrives after the freeze
    second = activities.freeze_timesheet(request)
    assert second == first
    assert second.timesheet.billable_minutes == 60
    with pytest.raises(ValueError, match="does not exist"):
        activities.freeze_timesheet(request.model_copy(update={"contract_id": str(uuid.uuid4())}))


async def test_a_week_settles_after_postgresql_cut_every_connection_of_the_worker(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    """The worker's pool does not test connections before use. When PostgreSQL drops them all (a restart,
    an operator), the next activity fails on a dead connection, the pool is dropped, Temporal retries
    the activity, and the week ends as it would have: charged once, released once."""
    w = make_week(database_url, await current_week(env))
    w.slots(day=0, hour=9, count=5)
    w.fund(100_00)
    handle = await start(env, w)
    await until_submitted(env, handle, w)  # the freeze and the notification left idle connections pooled
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as admin:
        cut = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert cut is not None and cut[0] >= 1
    view = await handle.result()
    assert view.status == "settled" and view.charged_cents == 6000 and view.released_cents == 6000
    assert [t.kind for t in w.transfers()].count("charge") == 1
    history = await handle.fetch_history()
    retried = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.attempt > 1
    ]
    assert retried, "no activity met a dead connection: the test cut nothing the worker used"
    ledger_invariants(database_url)
