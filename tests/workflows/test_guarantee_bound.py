"""The guarantee never pays more than was secured for the week (shape 3): money held on the client's
balance when the week starts (topped up at the freeze), then credit an admin granted. A client with no
funds and no credit creates no guaranteed exposure, whatever the rate; a payout above the deployment's
threshold waits for support, whose silence pays it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import WorkflowHandle, WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.messages import (
    TIMESHEET_SHAPE,
    Actor,
    Approve,
    DeadlinePolicy,
    DecidePayout,
    TimesheetInput,
    TimesheetView,
)
from tests.workflows.conftest import TASK_QUEUE, Week, keep_history, ledger_invariants, make_week
from tests.workflows.test_timesheet_paths import current_week, kinds, rejected, until_submitted
from workflows.timesheet import TimesheetWorkflow, timesheet_workflow_id

REVIEW = DeadlinePolicy(guarantee_review_cents=50_00, payout_review_s=2 * 86400)


async def start(
    env: WorkflowEnvironment, w: Week, *, limit: int = 2, policy: DeadlinePolicy | None = None
) -> WorkflowHandle:
    return await env.client.start_workflow(
        TimesheetWorkflow.run,
        TimesheetInput(
            contract_id=w.contract_id, client_id=w.client_id, provider_id=w.provider_id, week_start=w.week,
            rate_cents=w.rate_cents, currency=w.currency, weekly_limit_hours=limit,
            policy=policy or DeadlinePolicy(), shape=TIMESHEET_SHAPE,
        ),
        id=timesheet_workflow_id(w.contract_id, w.week),
        task_queue=TASK_QUEUE,
        result_type=TimesheetView,
    )  # fmt: skip


def a_documented_hour(w: Week) -> None:
    w.slots(day=1, hour=9, count=5)  # five documented slots with memos: one guaranteed hour


async def test_a_client_with_no_funds_and_no_credit_creates_no_guaranteed_exposure(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    """The drain: an absurd rate, a colluding provider's documented hour, an approval — and nothing paid."""
    w = make_week(database_url, await current_week(env), rate_cents=1_000_000_000)
    a_documented_hour(w)
    handle = await start(env, w)
    await until_submitted(env, handle, w)
    await handle.execute_update(
        TimesheetWorkflow.approve, Approve(actor=Actor(user_id=w.client_id, role="client"))
    )
    view = await handle.result()
    await keep_history(handle, "timesheet-nothing-secured")
    assert view.status == "unpaid" and view.guaranteed_cents == 1_000_000_000
    assert view.secured is not None and view.secured.secured_cents == 0
    assert view.guarantee_paid_cents == 0 and view.charged_cents == 0 and view.released_cents == 0
    assert w.transfers() == []
    assert w.balance("guarantee_fund", None) == 0
    ledger_invariants(database_url)


async def test_a_hold_short_of_the_week_pays_what_it_holds_and_the_rest_is_not_guaranteed(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    w = make_week(database_url, await current_week(env))  # 60.00/h, limit 2 h: at most 120.00
    w.fund(30_00)
    a_documented_hour(w)
    view = await (await start(env, w)).result()
    assert view.secured is not None and (view.secured.held_cents, view.secured.credit_cents) == (30_00, 0)
    assert view.status == "settled" and view.charged_cents == 30_00 and view.guarantee_paid_cents == 0
    assert kinds(w) == {"hold": 30_00, "charge": 30_00, "release": 30_00}
    assert any("the rest was not secured" in line for line in view.history)
    ledger_invariants(database_url)


async def test_money_funded_during_the_week_is_held_at_the_freeze(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    w = make_week(database_url, await current_week(env))
    a_documented_hour(w)
    handle = await start(env, w)
    await env.sleep(timedelta(days=2))  # the week runs with nothing held
    assert (await handle.query(TimesheetWorkflow.view)).secured.secured_cents == 0  # type: ignore[union-attr]
    w.fund(100_00)
    view = await handle.result()
    assert view.secured is not None and view.secured.held_cents == 6000  # the frozen amount, no more
    assert view.status == "settled" and view.charged_cents == 6000
    assert w.balance("client_balance", w.client_id) == 4000
    ledger_invariants(database_url)


async def test_credit_secures_only_as_far_as_it_goes_across_the_clients_open_weeks(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    week = await current_week(env)
    w = make_week(database_url, week)
    w.credit(90_00)
    a_documented_hour(w)
    view = await (await start(env, w)).result()
    # 120.00 at most this week: 90.00 of credit reserved; the guaranteed hour (60.00) is paid by the fund
    assert view.secured is not None and view.secured.credit_cents == 90_00
    assert view.status == "settled" and view.guarantee_paid_cents == 6000
    assert kinds(w) == {"guarantee_payout": 6000, "receivable": 6000, "release": 6000}
    ledger_invariants(database_url)


async def test_a_week_with_no_time_gives_the_hold_back(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    w = make_week(database_url, await current_week(env))
    w.fund(50_00)
    view = await (await start(env, w)).result()
    assert view.status == "settled" and view.amount_cents == 0
    assert kinds(w) == {"hold": 50_00, "hold_release": 50_00}
    assert w.balance("client_balance", w.client_id) == 50_00
    ledger_invariants(database_url)


async def payout_waiting(env: WorkflowEnvironment, database_url: str) -> tuple[Week, WorkflowHandle]:
    """A week whose guarantee payout (60.00) is above the review threshold (50.00)."""
    w = make_week(database_url, await current_week(env))
    w.credit(500_00)
    a_documented_hour(w)
    handle = await start(env, w, policy=REVIEW)
    await until_submitted(env, handle, w)
    await env.sleep(timedelta(days=5))  # past the review deadline: auto-approved, the charge fails
    view = await handle.query(TimesheetWorkflow.view)
    assert view.status == "payout_review" and view.payout_review is not None
    assert view.payout_review.amount_cents == 6000
    return w, handle


def support() -> Actor:
    return Actor(user_id=str(uuid.uuid4()), role="support")


async def test_a_payout_above_the_threshold_waits_for_support_who_approves_it(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    w, handle = await payout_waiting(env, database_url)
    assert "guarantee_payout" not in kinds(w)  # nothing paid while support decides
    kind, _ = await rejected(handle.execute_update(TimesheetWorkflow.decide_payout, DecidePayout(
        actor=Actor(user_id=w.client_id, role="client"), approve=True, reason="mine")))  # fmt: skip
    assert kind == "Forbidden"
    kind, _ = await rejected(
        handle.execute_update(
            TimesheetWorkflow.decide_payout, DecidePayout(actor=support(), approve=True, reason=" ")
        )
    )
    assert kind == "InvalidInput"
    await handle.execute_update(
        TimesheetWorkflow.decide_payout,
        DecidePayout(actor=support(), approve=True, reason="slots look genuine"),
    )
    kind, _ = await rejected(  # decided once: a second decision is refused
        handle.execute_update(
            TimesheetWorkflow.decide_payout, DecidePayout(actor=support(), approve=False, reason="x")
        )
    )
    assert kind == "Conflict"
    view = await handle.result()
    await keep_history(handle, "timesheet-payout-reviewed")
    assert view.status == "settled" and view.guarantee_paid_cents == 6000
    assert view.payout_review is not None and view.payout_review.decision == "approved"
    ledger_invariants(database_url)


async def test_a_refused_payout_pays_nothing(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    w, handle = await payout_waiting(env, database_url)
    # Accepted, and then the week ends at once (nothing was held): the outcome is read from the week
    # itself, as the test server forgets the updates of a workflow that has finished.
    await handle.start_update(
        TimesheetWorkflow.decide_payout,
        DecidePayout(actor=support(), approve=False, reason="screens are blank"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )
    view = await handle.result()
    assert view.status == "unpaid" and view.guarantee_paid_cents == 0
    assert view.payout_review is not None and view.payout_review.decision == "refused"
    assert view.payout_review.reason == "screens are blank"
    assert "guarantee_payout" not in kinds(w)
    ledger_invariants(database_url)


async def test_supports_silence_until_the_deadline_pays(
    env: WorkflowEnvironment, worker: Worker, database_url: str
) -> None:
    _w, handle = await payout_waiting(env, database_url)
    await env.sleep(timedelta(days=3))
    view = await handle.result()
    assert view.status == "settled" and view.guarantee_paid_cents == 6000
    assert view.payout_review is not None and view.payout_review.decision == "deadline"
    ledger_invariants(database_url)
