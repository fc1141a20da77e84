"""Every path of a contract-week, with time skipped: auto-approval, early approval, disputes each way,
a failed charge paid by the guarantee (documented slots only), and a week with no time."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlmodel import select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.calendar import week_start
from domain.errors import error_for_code
from domain.messages import (
    TIMESHEET_SHAPE,
    ActionResult,
    Actor,
    Approve,
    DeadlinePolicy,
    Dispute,
    ExtendDeadline,
    Resolve,
    Respond,
    TimesheetInput,
    TimesheetView,
)
from store.db import session_scope
from store.models import Notification, TimesheetSnapshot
from tests.workflows.conftest import TASK_QUEUE, Week, keep_history, ledger_invariants, make_week
from workflows.timesheet import TimesheetWorkflow, timesheet_workflow_id

POLICY = DeadlinePolicy()


async def current_week(env: WorkflowEnvironment) -> datetime:
    return week_start(await env.get_current_time())


async def start(env: WorkflowEnvironment, w: Week, *, limit: int = 40) -> WorkflowHandle:
    return await env.client.start_workflow(
        TimesheetWorkflow.run,
        TimesheetInput(
            contract_id=w.contract_id, client_id=w.client_id, provider_id=w.provider_id, week_start=w.week,
            rate_cents=w.rate_cents, currency=w.currency, weekly_limit_hours=limit, policy=POLICY,
            shape=TIMESHEET_SHAPE,
        ),
        id=timesheet_workflow_id(w.contract_id, w.week),
        task_queue=TASK_QUEUE,
        result_type=TimesheetView,
    )  # fmt: skip


async def until_submitted(env: WorkflowEnvironment, handle: WorkflowHandle, w: Week) -> TimesheetView:
    cutoff = w.week + timedelta(days=7, hours=12)
    now = await env.get_current_time()
    if cutoff > now:
        await env.sleep(cutoff - now + timedelta(minutes=1))
    view = await handle.query(TimesheetWorkflow.view)
    assert view.status == "submitted", view.status
    return view


def client(w: Week) -> Actor:
    return Actor(user_id=w.client_id, role="client")


def provider(w: Week) -> Actor:
    return Actor(user_id=w.provider_id, role="provider")


def support() -> Actor:
    return Actor(user_id=str(uuid.uuid4()), role="support")


async def rejected(coro: object) -> tuple[str, str]:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await coro  # type: ignore[misc]
    cause = caught.value.cause
    code, message = getattr(cause, "type", ""), str(getattr(cause, "message", cause))
    # the refusal's code, and the class (status) the API answers it with
    return type(error_for_code(code, message)).__name__, message


def kinds(w: Week) -> dict[str, int]:
    return {t.kind: t.amount_cents for t in w.transfers()}


async def test_silence_until_the_deadline_is_approval(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    w = make_week(database_url, await current_week(env))
    w.slots(day=0, hour=9, count=5)  # one documented hour at 60.00/h
    w.fund(100_00)
    handle = await start(env, w)
    view = await handle.result()
    await keep_history(handle, "timesheet-auto-approved")
    assert view.status == "settled"
    assert view.amount_cents == 6000 and view.charged_cents == 6000 and view.released_cents == 6000
    # the week's most (40 h at 60.00) was held as far as the balance went; the charge came from the hold
    assert kinds(w) == {"hold": 100_00, "charge": 6000, "hold_release": 4000, "release": 6000}
    assert w.balance("provider_available", w.provider_id) == 6000
    assert w.balance("client_balance", w.client_id) == 4000 and w.balance("client_hold", w.client_id) == 0
    assert any("auto_approved" in line for line in view.history)
    with session_scope(database_url) as session:
        sent = {
            n.kind
            for n in session.exec(
                select(Notification).where(Notification.contract_id == uuid.UUID(w.contract_id))
            )
        }
    assert {"timesheet_submitted", "review_closing", "funds_released"} <= sent
    ledger_invariants(database_url)


async def test_early_approval_charges_once_and_a_retried_request_returns_the_first_result(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    w = make_week(database_url, await current_week(env))
    w.slots(day=1, hour=10, count=3)
    w.fund(100_00)
    handle = await start(env, w)
    await until_submitted(env, handle, w)
    first = await handle.execute_update(
        TimesheetWorkflow.approve, Approve(actor=client(w)), id="req-approve-1"
    )
    again = await handle.execute_update(
        TimesheetWorkflow.approve, Approve(actor=client(w)), id="req-approve-1"
    )
    assert first == again == ActionResult(status="approved", message="approved: the client will be charged")
    kind, message = await rejected(
        handle.execute_update(TimesheetWorkflow.approve, Approve(actor=client(w)), id="req-approve-2")
    )
    assert kind == "Conflict" and "already approved" in message
    view = await handle.result()
    await keep_history(handle, "timesheet-approved-early")
    assert view.status == "settled" and view.charged_cents == 3600
    assert kinds(w) == {"hold": 100_00, "charge": 3600, "hold_release": 6400, "release": 3600}
    ledger_invariants(database_url)


async def test_a_dispute_the_provider_accepts_refunds_the_disputed_entries(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    w = make_week(database_url, await current_week(env))
    w.slots(day=2, hour=14, count=5)
    w.fund(100_00)
    handle = await start(env, w)
    view = await until_submitted(env, handle, w)
    snapshot = await _snapshot_entries(database_url, w)
    disputed = snapshot[:2]
    result = await handle.execute_update(
        TimesheetWorkflow.dispute_entries,
        Dispute(actor=client(w), entry_ids=disputed, reason="I was in a meeting with him"),
    )
    assert result.status == "disputed"
    await handle.execute_update(TimesheetWorkflow.respond, Respond(actor=provider(w), accept=True))
    view = await handle.result()
    await keep_history(handle, "timesheet-dispute-accepted")
    assert view.owed_cents == 3600 and view.charged_cents == 3600  # 3 of 5 slots at 60.00/h
    assert view.dispute is not None and view.dispute.response == "accept"
    ledger_invariants(database_url)


@pytest.mark.parametrize(("side", "charged"), [("provider", 6000), ("client", 3600)])
async def test_a_contested_dispute_goes_to_support_who_resolve_each_entry(
    env: WorkflowEnvironment, worker: Worker, database_url: str, side: str, charged: int
) -> None:
    w = make_week(database_url, await current_week(env))
    w.slots(day=3, hour=8, count=5)
    w.fund(100_00)
    handle = await start(env, w)
    await until_submitted(env, handle, w)
    disputed = (await _snapshot_entries(database_url, w))[:2]
    await handle.execute_update(
        TimesheetWorkflow.dispute_entries, Dispute(actor=client(w), entry_ids=disputed, reason="no")
    )
    await handle.execute_update(
        TimesheetWorkflow.respond, Respond(actor=provider(w), accept=False, note="I worked")
    )
    # a caller who is not support cannot resolve
    kind, _ = await rejected(
        handle.execute_update(
            TimesheetWorkflow.resolve, Resolve(actor=client(w), resolutions=dict.fromkeys(disputed, "client"))
        )
    )
    assert kind == "Forbidden"
    await _until_status(env, handle, "in_support")
    kind, message = await rejected(
        handle.execute_update(
            TimesheetWorkflow.resolve, Resolve(actor=support(), resolutions={"slot-nope": "client"})
        )
    )
    assert kind == "InvalidInput" and "not disputed" in message
    for entry in disputed:  # one entry at a time, as support works through them
        await handle.execute_update(
            TimesheetWorkflow.resolve, Resolve(actor=support(), resolutions={entry: side})
        )  # type: ignore[dict-item]
    view = await handle.result()
    await keep_history(handle, f"timesheet-dispute-resolved-for-{side}")
    assert view.charged_cents == charged and view.status == "settled"
    ledger_invariants(database_url)


async def test_a_dispute_the_provider_ignores_goes_to_support(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    w = make_week(database_url, await current_week(env))
    w.slots(day=4, hour=8, count=2)
    w.fund(100_00)
    handle = await start(env, w)
    await until_submitted(env, handle, w)
    disputed = await _snapshot_entries(database_url, w)
    await handle.execute_update(
        TimesheetWorkflow.dispute_entries, Dispute(actor=client(w), entry_ids=disputed, reason="x")
    )
    await env.sleep(timedelta(days=3, minutes=1))  # the response window passes in silence
    view = await handle.query(TimesheetWorkflow.view)
    assert view.status == "in_support" and view.dispute is not None and view.dispute.response == "silence"
    kind, _ = await rejected(
        handle.execute_update(TimesheetWorkflow.respond, Respond(actor=provider(w), accept=True))
    )
    assert kind == "Conflict"
    await handle.execute_update(
        TimesheetWorkflow.resolve, Resolve(actor=support(), resolutions=dict.fromkeys(disputed, "provider"))
    )  # type: ignore[arg-type]
    assert (await handle.result()).charged_cents == 2400
    await keep_history(handle, "timesheet-dispute-unanswered")
    ledger_invariants(database_url)


async def test_a_failed_charge_is_paid_by_the_guarantee_for_documented_slots_only(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    week = await current_week(env)
    # Work View off on Thursday 12:00-14:00; limit 2 hours a week
    w = make_week(
        database_url,
        week,
        rate_cents=6000,
        weekly_limit_hours=2,
        work_view_until=week + timedelta(days=3, hours=12),
    )
    w.manual(week + timedelta(days=1, hours=8), 30)  # Tue: 30 min manual: billed, never guaranteed
    w.slots(day=2, hour=9, count=4)  # Wed: 48 min documented with memo
    w.slots(day=2, hour=10, count=1, memo="  ")  # 12 min documented, no memo: not guaranteed
    w.slots(day=2, hour=11, count=5)  # documented; the 2-hour limit is reached 6 minutes into the 3rd slot
    w.capture(
        week + timedelta(days=3, hours=12, minutes=5), kind="tracked"
    )  # Thu, Work View off, over the limit
    # no funding: the client's prepaid balance is empty, so the charge fails; an admin granted credit, so
    # the guaranteed part is secured and the guarantee pays it
    w.credit(100_00)
    handle = await start(env, w, limit=2)
    view = await handle.result()
    await keep_history(handle, "timesheet-guarantee-payout")
    assert view.status == "settled"
    # billable: 30 + 48 + 12 + (12 + 12 + 6) = 120 min = 120.00; guaranteed: 48 + 30 = 78 min = 78.00
    assert view.amount_cents == 12000 and view.guaranteed_cents == 7800
    assert view.charged_cents == 0 and view.guarantee_paid_cents == 7800 and view.released_cents == 7800
    assert kinds(w) == {"guarantee_payout": 7800, "receivable": 7800, "release": 7800}
    assert w.balance("client_receivable", w.client_id) == -7800  # the client owes the platform
    assert w.balance("provider_available", w.provider_id) == 7800
    ledger_invariants(database_url)


async def test_a_week_with_no_time_is_still_a_snapshot_with_no_charge_and_no_payout(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    w = make_week(database_url, await current_week(env))
    handle = await start(env, w)
    view = await handle.result()
    await keep_history(handle, "timesheet-no-time")
    assert view.status == "settled" and view.amount_cents == 0 and view.content_hash
    assert w.transfers() == []
    with session_scope(database_url) as session:
        snapshot = session.exec(
            select(TimesheetSnapshot).where(TimesheetSnapshot.contract_id == uuid.UUID(w.contract_id))
        ).one()
    assert snapshot.amount_cents == 0 and snapshot.content_hash == view.content_hash


async def test_late_invalid_and_foreign_actions_are_rejected_before_anything_is_written(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    w = make_week(database_url, await current_week(env))
    w.slots(day=0, hour=9, count=2)
    w.fund(100_00)
    handle = await start(env, w)
    kind, message = await rejected(handle.execute_update(TimesheetWorkflow.approve, Approve(actor=client(w))))
    assert kind == "Conflict" and "not submitted yet" in message
    await until_submitted(env, handle, w)
    other = Actor(user_id=str(uuid.uuid4()), role="client")
    kind, _ = await rejected(handle.execute_update(TimesheetWorkflow.approve, Approve(actor=other)))
    assert kind == "Forbidden"
    kind, message = await rejected(
        handle.execute_update(
            TimesheetWorkflow.dispute_entries,
            Dispute(actor=client(w), entry_ids=["slot-19990101T0000Z"], reason="x"),
        )
    )
    assert kind == "InvalidInput" and "not in this week's timesheet" in message
    # support extends the review deadline by a day, with a reason
    view = await handle.query(TimesheetWorkflow.view)
    later = view.review_deadline + timedelta(days=1)
    await handle.execute_update(
        TimesheetWorkflow.extend_deadline,
        ExtendDeadline(actor=support(), deadline="review", until=later, reason="client travelling"),
    )
    await env.sleep(view.review_deadline - await env.get_current_time() + timedelta(hours=1))
    assert (
        await handle.query(TimesheetWorkflow.view)
    ).status == "submitted"  # the old deadline passed: still open
    await env.sleep(timedelta(days=1))
    kind, message = await rejected(
        handle.execute_update(
            TimesheetWorkflow.dispute_entries, Dispute(actor=client(w), entry_ids=[], reason="late")
        )
    )
    assert kind == "Conflict"
    view = await handle.result()
    await keep_history(handle, "timesheet-deadline-extended")
    assert view.status == "settled" and view.charged_cents == 2400
    ledger_invariants(database_url)


async def _snapshot_entries(database_url: str, w: Week) -> list[str]:
    with session_scope(database_url) as session:
        snapshot = session.exec(
            select(TimesheetSnapshot).where(TimesheetSnapshot.contract_id == uuid.UUID(w.contract_id))
        ).one()
        return [e["entry_id"] for e in snapshot.body["entries"]]


async def _until_status(env: WorkflowEnvironment, handle: WorkflowHandle, status: str) -> None:
    for _ in range(50):
        if (await handle.query(TimesheetWorkflow.view)).status == status:
            return
        await env.sleep(timedelta(seconds=1))
    raise AssertionError(f"never reached {status}")
