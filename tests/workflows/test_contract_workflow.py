"""The contract workflow: one timesheet per week started at the boundary, continue-as-new each week,
Work View from the next slot, the weekly limit from the next week, and the end after the last week settles."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.calendar import slot_end, week_start
from domain.messages import (
    Actor,
    ContractState,
    ContractTermsInput,
    EndContract,
    TimesheetView,
    WeeklyLimitChange,
    WorkViewChange,
)
from store.contracts import intervals
from store.db import session_scope
from store.models import Contract
from tests.workflows.conftest import TASK_QUEUE, Week, keep_history, ledger_invariants, make_week
from workflows.contract import ContractWorkflow, contract_workflow_id
from workflows.timesheet import timesheet_workflow_id


async def start_contract(env: WorkflowEnvironment, w: Week) -> WorkflowHandle:
    now = await env.get_current_time()
    terms = ContractTermsInput(
        contract_id=w.contract_id, client_id=w.client_id, provider_id=w.provider_id, title="t",
        rate_cents=w.rate_cents, currency="USD", weekly_limit_hours=40, manual_allowed=True, work_view_on=True,
        accepted_at=now,
    )  # fmt: skip
    return await env.client.start_workflow(
        ContractWorkflow.run,
        ContractState(terms=terms),
        id=contract_workflow_id(w.contract_id),
        task_queue=TASK_QUEUE,
    )


async def described(env: WorkflowEnvironment, workflow_id: str):  # type: ignore[no-untyped-def]
    """The workflow once it exists (a child starts a moment after its parent's workflow task)."""
    for _ in range(100):
        try:
            return await env.client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} never started")


async def terminate_all(env: WorkflowEnvironment, w: Week) -> None:
    """Leave nothing running for the next test: the contract and the timesheets it abandoned to live on."""
    ids = [contract_workflow_id(w.contract_id)]
    ids += [timesheet_workflow_id(w.contract_id, w.week + timedelta(days=7 * i)) for i in range(3)]
    for workflow_id in ids:
        with contextlib.suppress(RPCError):
            await env.client.get_workflow_handle(workflow_id).terminate("test over")


async def test_each_week_gets_its_timesheet_and_the_contract_continues_as_new(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    now = await env.get_current_time()
    w = make_week(database_url, week_start(now))
    handle = await start_contract(env, w)
    first_run = (await handle.describe()).run_id
    this_week = await described(env, timesheet_workflow_id(w.contract_id, w.week))
    assert this_week.id.endswith(f"{w.week:%Y-%m-%d}")
    await env.sleep(w.week + timedelta(days=7, minutes=1) - now)
    next_week = w.week + timedelta(days=7)
    started = await described(env, timesheet_workflow_id(w.contract_id, next_week))
    assert started.search_attributes["ContractId"] == [w.contract_id]
    state = await env.client.get_workflow_handle(handle.id).query(ContractWorkflow.state_now)
    assert (
        await env.client.get_workflow_handle(handle.id).describe()
    ).run_id != first_run  # continued as new
    assert state.weeks_started[-2:] == [f"{w.week:%Y-%m-%d}", f"{next_week:%Y-%m-%d}"]
    await keep_history(
        env.client.get_workflow_handle(handle.id, run_id=first_run), "contract-first-week-continued-as-new"
    )
    await terminate_all(env, w)


async def test_work_view_changes_from_the_next_slot_and_is_recorded(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    now = await env.get_current_time()
    w = make_week(database_url, week_start(now))
    handle = await start_contract(env, w)
    change = await handle.execute_update(
        ContractWorkflow.set_work_view,
        WorkViewChange(actor=Actor(user_id=w.provider_id, role="provider"), on=False),
    )
    assert change.effective_at == slot_end(await env.get_current_time()) or change.effective_at > now
    with session_scope(database_url) as session:
        rows = intervals(session=session, contract_id=uuid.UUID(w.contract_id))
    assert [r.end for r in rows][-1] == change.effective_at
    stranger = Actor(user_id=str(uuid.uuid4()), role="client")
    try:
        await handle.execute_update(ContractWorkflow.set_work_view, WorkViewChange(actor=stranger, on=True))
        raise AssertionError("a stranger changed Work View")
    except Exception as error:
        assert "client or provider" in str(getattr(error, "cause", error))
    await terminate_all(env, w)


async def test_a_weekly_limit_change_applies_from_next_week(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    now = await env.get_current_time()
    w = make_week(database_url, week_start(now))
    handle = await start_contract(env, w)
    record = await handle.execute_update(
        ContractWorkflow.change_weekly_limit,
        WeeklyLimitChange(actor=Actor(user_id=w.client_id, role="client"), weekly_limit_hours=10),
    )
    assert record.weekly_limit_hours == 40 and record.next_weekly_limit_hours == 10
    await env.sleep(w.week + timedelta(days=7, minutes=1) - now)
    with session_scope(database_url) as session:
        contract = session.get(Contract, uuid.UUID(w.contract_id))
        assert contract is not None
        assert (contract.weekly_limit_hours, contract.next_weekly_limit_hours) == (10, None)
    state = await env.client.get_workflow_handle(handle.id).query(ContractWorkflow.state_now)
    assert state.terms.weekly_limit_hours == 10
    await terminate_all(env, w)


async def test_a_contract_ended_mid_week_settles_its_last_week_and_then_ends(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    now = await env.get_current_time()
    w = make_week(database_url, week_start(now))
    w.fund(10_000)
    handle = await start_contract(env, w)
    await env.sleep(timedelta(minutes=20))
    w.capture(now + timedelta(minutes=10))  # 12 minutes documented between acceptance and the end
    await handle.execute_update(
        ContractWorkflow.end_contract, EndContract(actor=Actor(user_id=w.client_id, role="client"))
    )
    result = await handle.result()  # time skips through cutoff, review, charge and release of the last week
    await keep_history(handle, "contract-ended-mid-week")
    assert result.startswith("ended at")
    last = await env.client.get_workflow_handle(
        timesheet_workflow_id(w.contract_id, w.week), result_type=TimesheetView
    ).result()
    assert last.status == "settled" and last.released_cents == last.charged_cents == 1200
    next_week = timesheet_workflow_id(w.contract_id, w.week + timedelta(days=7))
    try:
        await env.client.get_workflow_handle(next_week).describe()
        raise AssertionError("a week after the end got a timesheet")
    except Exception as error:
        assert "not found" in str(error).lower()
    with session_scope(database_url) as session:
        contract = session.get(Contract, uuid.UUID(w.contract_id))
        assert contract is not None and contract.status == "ended" and contract.ended_at is not None
    ledger_invariants(database_url)
