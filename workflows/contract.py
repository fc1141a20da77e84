"""The long-lived entity of a contract: ``contract-{id}``.

Holds the terms and the Work View intervals, starts each week's timesheet workflow at the week
boundary, continues-as-new every week (state in one ``ContractState``), and ends once the contract is
ended and its last week has settled.

Hazards:
- Continue-as-new drops in-flight handlers: it waits for ``all_handlers_finished`` first.
- Timesheets are started with ParentClosePolicy.ABANDON, so they outlive each run of this workflow;
  they report back with the ``week_settled`` signal, which survives continue-as-new as state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from domain.activities import NOTIFY, RECORD_CONTRACT, RECORD_WORK_VIEW, ActivitySpec
    from domain.calendar import WEEK, slot_end, slot_start, week_start
    from domain.errors import DomainError
    from domain.messages import (
        TIMESHEET_SHAPE,
        ContractRecord,
        ContractState,
        EndContract,
        Notify,
        TimesheetInput,
        WeeklyLimitChange,
        WeekSettled,
        WorkViewChange,
        WorkViewChanged,
        WorkViewRecord,
    )
    from domain.text import MAX_REASON_CHARS, check_text
    from domain.timesheet import WorkViewInterval, check_weekly_limit
    from workflows.attributes import CLIENT_ID, CONTRACT_ID, PROVIDER_ID, TIMESHEET_STATUS, WEEK_START
    from workflows.calls import call
    from workflows.refusals import reject
    from workflows.timesheet import TimesheetWorkflow, timesheet_workflow_id

ACTIVITY_TIMEOUT = timedelta(seconds=60)
In = TypeVar("In")


def contract_workflow_id(contract_id: str) -> str:
    return f"contract-{contract_id}"


@workflow.defn
class ContractWorkflow:
    @workflow.init
    def __init__(self, state: ContractState) -> None:
        self.state = state
        self.wake = 0  # bumped by handlers so the main loop re-reads the state

    @workflow.run
    async def run(self, state: ContractState) -> str:
        terms = self.state.terms
        if not self.state.weeks_started and terms.work_view_on and not self.state.work_view:
            self.state.work_view = [WorkViewInterval(start=slot_start(terms.accepted_at))]
            await self._record_work_view()
        while True:
            now = workflow.now()
            week = week_start(now)
            label = f"{week:%Y-%m-%d}"
            # The week of acceptance always gets its timesheet, even if an end arrived in the same moment.
            first_week = not self.state.weeks_started
            if (self.state.status == "active" or first_week) and label not in self.state.weeks_started:
                await self._start_timesheet(week)
            if self.state.status == "ended" and not self.state.weeks_unsettled:
                await workflow.wait_condition(workflow.all_handlers_finished)
                return f"ended at {self.state.ended_at.isoformat() if self.state.ended_at else '?'}"
            boundary = week + WEEK
            seen = self.wake
            try:
                await workflow.wait_condition(self._woken_since(seen), timeout=boundary - now)
            except TimeoutError:
                pass
            if workflow.now() >= boundary and self.state.status == "active":
                await self._apply_next_limit()
            if workflow.now() >= boundary or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)

    async def _activity(self, spec: ActivitySpec[In, Any], arg: In) -> None:
        await call(spec, arg, start_to_close=ACTIVITY_TIMEOUT)

    def _woken_since(self, seen: int) -> Callable[[], bool]:
        return lambda: self.wake != seen

    async def _start_timesheet(self, week: datetime) -> None:
        terms = self.state.terms
        label = f"{week:%Y-%m-%d}"
        await workflow.start_child_workflow(
            TimesheetWorkflow.run,
            TimesheetInput(
                contract_id=terms.contract_id,
                client_id=terms.client_id,
                provider_id=terms.provider_id,
                week_start=week,
                rate_cents=terms.rate_cents,
                currency=terms.currency,
                weekly_limit_hours=terms.weekly_limit_hours,
                policy=self.state.policy,
                contract_workflow_id=workflow.info().workflow_id,
                shape=TIMESHEET_SHAPE,
            ),
            id=timesheet_workflow_id(terms.contract_id, week),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(CONTRACT_ID, terms.contract_id),
                    SearchAttributePair(PROVIDER_ID, terms.provider_id),
                    SearchAttributePair(CLIENT_ID, terms.client_id),
                    SearchAttributePair(WEEK_START, week),
                    SearchAttributePair(TIMESHEET_STATUS, "open"),
                ]
            ),
            memo={"contract_id": terms.contract_id, "week": label, "title": terms.title},
        )
        self.state.weeks_started.append(label)
        self.state.weeks_unsettled.append(label)
        # Only the recent weeks matter for duplicate starts; keep the state small across years.
        self.state.weeks_started = self.state.weeks_started[-8:]

    async def _apply_next_limit(self) -> None:
        if self.state.next_weekly_limit_hours is None:
            return
        self.state.terms.weekly_limit_hours = self.state.next_weekly_limit_hours
        self.state.next_weekly_limit_hours = None
        await self._activity(
            RECORD_CONTRACT,
            ContractRecord(
                contract_id=self.state.terms.contract_id,
                weekly_limit_hours=self.state.terms.weekly_limit_hours,
                next_weekly_limit_hours=None,
            ),
        )

    async def _record_work_view(self) -> None:
        await self._activity(
            RECORD_WORK_VIEW,
            WorkViewRecord(contract_id=self.state.terms.contract_id, intervals=self.state.work_view),
        )

    # --- messages ------------------------------------------------------------------------------------------

    @workflow.signal
    def week_settled(self, message: WeekSettled) -> None:
        if message.week in self.state.weeks_unsettled:
            self.state.weeks_unsettled.remove(message.week)
        self.wake += 1

    @workflow.update
    async def set_work_view(self, change: WorkViewChange) -> WorkViewChanged:
        effective = slot_end(workflow.now())  # from the next slot: a slot is never half on, half off
        intervals = self.state.work_view
        open_interval = next((i for i in intervals if i.end is None), None)
        if change.on and open_interval is None:
            intervals.append(WorkViewInterval(start=effective))
        elif not change.on and open_interval is not None:
            if open_interval.start >= effective:
                intervals.remove(open_interval)
            else:
                open_interval.end = effective
        await self._record_work_view()
        return WorkViewChanged(on=change.on, effective_at=effective)

    @set_work_view.validator
    def _check_work_view(self, change: WorkViewChange) -> None:
        self._check_party(change.actor.user_id, change.actor.role)
        self._check_active()

    @workflow.update
    async def change_weekly_limit(self, change: WeeklyLimitChange) -> ContractRecord:
        self.state.next_weekly_limit_hours = change.weekly_limit_hours
        record = ContractRecord(
            contract_id=self.state.terms.contract_id,
            weekly_limit_hours=self.state.terms.weekly_limit_hours,
            next_weekly_limit_hours=change.weekly_limit_hours,
        )
        await self._activity(RECORD_CONTRACT, record)
        return record

    @change_weekly_limit.validator
    def _check_limit(self, change: WeeklyLimitChange) -> None:
        if change.actor.role != "client" or change.actor.user_id != self.state.terms.client_id:
            raise reject("only the contract's client changes the weekly limit", "not_a_party")
        self._check_active()
        try:
            check_weekly_limit(change.weekly_limit_hours)
        except DomainError as error:
            raise reject(error.message, error.code) from None

    @workflow.update
    async def end_contract(self, request: EndContract) -> ContractRecord:
        now = workflow.now()
        self.state.status = "ended"
        self.state.ended_at = now
        for interval in list(self.state.work_view):
            if interval.end is None:
                if interval.start >= now:
                    self.state.work_view.remove(interval)
                else:
                    interval.end = now
        self.wake += 1
        record = ContractRecord(
            contract_id=self.state.terms.contract_id, ended_at=now, end_reason=request.reason.strip() or None
        )
        await self._activity(RECORD_CONTRACT, record)
        await self._record_work_view()
        terms = self.state.terms
        await self._activity(
            NOTIFY,
            Notify(
                kind="contract_ended",
                recipient_ids=[terms.client_id, terms.provider_id],
                contract_id=terms.contract_id,
                dedupe_key=f"contract_ended:{terms.contract_id}",
                payload={"by": request.actor.user_id},
            ),
        )
        return record

    @end_contract.validator
    def _check_end(self, request: EndContract) -> None:
        self._check_party(request.actor.user_id, request.actor.role)
        self._check_active()
        try:
            check_text(request.reason, what="reason", max_chars=MAX_REASON_CHARS)
        except DomainError as error:
            raise reject(error.message, error.code) from None

    @workflow.query
    def state_now(self) -> ContractState:
        return self.state

    def _check_party(self, user_id: str, role: str) -> None:
        terms = self.state.terms
        if user_id not in (terms.client_id, terms.provider_id) and role not in ("support", "admin"):
            raise reject("only the contract's client or provider can do this", "not_a_party")

    def _check_active(self) -> None:
        if self.state.status != "active":
            raise reject("the contract has ended", "contract_not_active")
