"""On the real dev server with the real worker process: actions racing each other and the deadline, and
a worker killed (SIGKILL) in the middle of a charge and of a payout. Exactly one outcome, one charge,
one payout, every time."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from sqlmodel import select
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from domain.calendar import week_start
from domain.messages import (
    TIMESHEET_SHAPE,
    Actor,
    Approve,
    DeadlinePolicy,
    Dispute,
    TimesheetInput,
    TimesheetView,
)
from store import ledger
from store.db import session_scope
from store.models import TimesheetSnapshot, User
from store.users import issue_token
from tests.harness import RunningStack
from tests.workflows.conftest import Week, ledger_invariants, make_week
from workflows.client import connect
from workflows.timesheet import TimesheetWorkflow, timesheet_workflow_id

pytestmark = pytest.mark.e2e


async def temporal(stack: RunningStack) -> Client:
    """A client that signs its updates as the API does (the workers refuse unsigned ones)."""
    return await connect(stack.stack.temporal_address, vouch_key=stack.settings.resolved_secret_key())


def past_week() -> datetime:
    return week_start(datetime.now(UTC)) - timedelta(days=14)


async def start_week(
    stack: RunningStack, w: Week, *, deadline_in: float, activity_timeout_s: int = 60
) -> WorkflowHandle:
    """A past week whose edit cutoff has passed and whose review deadline is ``deadline_in`` seconds away."""
    week_end = w.week + timedelta(days=7)
    deadline = datetime.now(UTC) + timedelta(seconds=deadline_in)
    policy = DeadlinePolicy(
        edit_cutoff_after_week_s=0,
        review_deadline_after_week_s=int((deadline - week_end).total_seconds()),
        response_window_s=600,
        security_period_s=1,
    )
    client = await temporal(stack)
    return await client.start_workflow(
        TimesheetWorkflow.run,
        TimesheetInput(
            contract_id=w.contract_id, client_id=w.client_id, provider_id=w.provider_id, week_start=w.week,
            rate_cents=w.rate_cents, currency="USD", weekly_limit_hours=40, policy=policy,
            activity_timeout_s=activity_timeout_s, shape=TIMESHEET_SHAPE,
        ),
        id=timesheet_workflow_id(w.contract_id, w.week),
        task_queue=stack.settings.temporal_task_queue,
        result_type=TimesheetView,
    )  # fmt: skip


async def until_status(handle: WorkflowHandle, status: str, seconds: float = 20) -> TimesheetView:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        view = await handle.query(TimesheetWorkflow.view)
        if view.status == status:
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id} never reached {status}")


def client_token(stack: RunningStack, w: Week) -> str:
    with session_scope(stack.database_url) as session:
        user = session.get(User, uuid.UUID(w.client_id))
        assert user is not None
        token, _ = issue_token(session=session, user=user, days=1)
    return token


def charges(stack: RunningStack, w: Week) -> dict[str, int]:
    with session_scope(stack.database_url) as session:
        rows = ledger.transfers_for(session=session, contract_id=uuid.UUID(w.contract_id))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.kind] = counts.get(row.kind, 0) + 1
    return counts


async def test_approving_at_the_moment_of_the_deadline_has_exactly_one_outcome(stack: RunningStack) -> None:
    weeks = []
    for _ in range(6):
        w = make_week(stack.database_url, past_week())
        w.slots(day=1, hour=9, count=3)
        w.fund(10_000)
        weeks.append(w)
    handles = [await start_week(stack, w, deadline_in=5) for w in weeks]
    for handle in handles:
        await until_status(handle, "submitted")
    deadline = (await handles[0].query(TimesheetWorkflow.view)).review_deadline

    async def approve_near_deadline(i: int, handle: WorkflowHandle, w: Week) -> str:
        moment = deadline + timedelta(milliseconds=-150 + 60 * i)  # from just before to just after
        await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
        try:
            await handle.execute_update(
                TimesheetWorkflow.approve, Approve(actor=Actor(user_id=w.client_id, role="client"))
            )
            return "approved"
        except WorkflowUpdateFailedError as error:
            # Too late: refused as a conflict whose reason names the state (window closed, auto-approved,
            # or already charged when the update reached the workflow after the charge).
            assert getattr(error.cause, "type", None) in ("not_in_review", "review_window_closed"), (
                error.cause
            )
            assert "cannot approve" in str(error.cause)
            return "rejected"

    outcomes = await asyncio.gather(
        *(approve_near_deadline(i, h, w) for i, (h, w) in enumerate(zip(handles, weeks, strict=True)))
    )
    for outcome, handle, w in zip(outcomes, handles, weeks, strict=True):
        view = await handle.result()
        assert view.status == "settled" and view.charged_cents == 3600
        decided = (
            "approved" if any(" approved" in line and "auto" not in line for line in view.history) else "auto"
        )
        assert decided == ("approved" if outcome == "approved" else "auto"), (outcome, view.history)
        assert charges(stack, w) == {"hold": 1, "charge": 1, "hold_release": 1, "release": 1}
    ledger_invariants(stack.database_url)


async def test_two_approvals_with_different_request_ids_one_wins_one_gets_409(stack: RunningStack) -> None:
    w = make_week(stack.database_url, past_week())
    w.slots(day=2, hour=9, count=2)
    w.fund(10_000)
    handle = await start_week(stack, w, deadline_in=60)
    await until_status(handle, "submitted")
    token = client_token(stack, w)
    url = f"/v1/contracts/{w.contract_id}/timesheets/{w.week:%Y-%m-%d}/approve"
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        ids = ["approve-a-" + uuid.uuid4().hex, "approve-b-" + uuid.uuid4().hex]
        first, second = await asyncio.gather(*(http.post(url, json={"request_id": i}) for i in ids))
        assert sorted([first.status_code, second.status_code]) == [200, 409]
        loser = first if first.status_code == 409 else second
        assert "already approved" in loser.json()["detail"]
        winner = first if first.status_code == 200 else second
        # the winner's request id again: the first result, not a 409
        again = await http.post(url, json={"request_id": ids[0] if winner is first else ids[1]})
        assert again.status_code == 200 and again.json() == winner.json()
    view = await handle.result()
    assert view.charged_cents == 2400
    assert charges(stack, w)["charge"] == 1


async def test_a_dispute_and_an_approval_at_once_have_exactly_one_outcome(stack: RunningStack) -> None:
    w = make_week(stack.database_url, past_week())
    w.slots(day=3, hour=9, count=2)
    w.fund(10_000)
    handle = await start_week(stack, w, deadline_in=60)
    view = await until_status(handle, "submitted")
    client = Actor(user_id=w.client_id, role="client")
    with session_scope(stack.database_url) as session:
        snapshot = session.exec(
            select(TimesheetSnapshot).where(TimesheetSnapshot.contract_id == uuid.UUID(w.contract_id))
        ).one()
    entry_ids = [e["entry_id"] for e in snapshot.body["entries"]]
    results = await asyncio.gather(
        handle.execute_update(TimesheetWorkflow.approve, Approve(actor=client)),
        handle.execute_update(
            TimesheetWorkflow.dispute_entries, Dispute(actor=client, entry_ids=entry_ids[:1], reason="x")
        ),
        return_exceptions=True,
    )
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
    assert len(accepted) == 1 and len(refused) == 1, results
    view = await handle.query(TimesheetWorkflow.view)
    assert view.status in ("approved", "charged", "settled", "disputed")
    assert (view.dispute is None) == (accepted[0].status == "approved")
    await handle.terminate("test over")


def hold_row_lock(database_url: str, account_id: uuid.UUID) -> psycopg.Connection:
    """Lock an account row in an open transaction: the activity touching it blocks mid-transaction."""
    conn = psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"))
    conn.execute("SELECT id FROM ledger_accounts WHERE id = %s FOR UPDATE", (account_id,))
    return conn


async def until_activity_running(handle: WorkflowHandle, activity: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pending = (await handle.describe()).raw_description.pending_activities
        if any(p.activity_type.name == activity and p.state == 2 for p in pending):  # 2 = STARTED
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{activity} never started")


@pytest.mark.parametrize("phase", ["charge", "payout"])
async def test_a_worker_killed_mid_charge_or_mid_payout_moves_money_exactly_once(
    stack: RunningStack, phase: str
) -> None:
    w = make_week(stack.database_url, past_week())
    w.slots(day=4, hour=9, count=5)
    with session_scope(stack.database_url) as session:
        if phase == "charge":
            ledger.fund_client(session=session, client_id=uuid.UUID(w.client_id), amount_cents=10_000, currency="USD",
                               key=f"funding:{uuid.uuid4()}")  # fmt: skip
            locked = ledger.account(
                session=session, kind="client_balance", owner_id=uuid.UUID(w.client_id), currency="USD"
            )
        else:  # no funds but credit: the charge fails and the guarantee pays what the credit secured
            locked = ledger.account(session=session, kind="guarantee_fund", currency="USD")
    if phase == "payout":
        w.credit(100_00)
    handle = await start_week(stack, w, deadline_in=4, activity_timeout_s=4)
    await until_status(handle, "submitted")  # secured (the balance held) and frozen: now block the money
    lock = hold_row_lock(stack.database_url, locked.id)
    try:
        await until_activity_running(handle, "collect_week" if phase == "charge" else "guarantee_payout")
        await asyncio.sleep(0.3)  # the activity is inside its transaction, waiting on the lock
        stack.kill_worker()
    finally:
        lock.rollback()
        lock.close()
    stack.start_worker()
    view = await asyncio.wait_for(handle.result(), timeout=60)
    assert view.status == "settled"
    counts = charges(stack, w)
    if phase == "charge":
        assert view.charged_cents == 6000
        assert counts == {"hold": 1, "charge": 1, "hold_release": 1, "release": 1}
    else:
        assert view.guarantee_paid_cents == 6000
        assert counts == {"guarantee_payout": 1, "receivable": 1, "release": 1}
    ledger_invariants(stack.database_url)
