"""Reading a workflow history in plain words: each accepted update (who did what), each status the
week reached, what was frozen and charged, and what money moved (from the ledger), as timeline events.

The decoder reads the messages of ``domain/messages.py`` out of each history. In production a payload
that no longer decodes still shows as an event, in fewer words; with ``strict=True`` (the tests, which
read every recorded history through it) a message shape the decoder does not know fails loudly instead of
quietly dropping detail. Update and activity names come from their definitions, never from strings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.converter import DataConverter

from api.schemas import TimelineEvent
from api.services.support import week_of_workflow
from domain.activities import (
    CHARGE_CLIENT,
    COLLECT_WEEK,
    FREEZE_TIMESHEET,
    RECORD_TIMESHEET_STATUS,
    SECURE_WEEK,
)
from domain.calendar import iso_week_name, parse_week
from domain.messages import (
    ActionResult,
    Approve,
    ChargeInput,
    ChargeResult,
    Collection,
    ContractRecord,
    ContractState,
    DecidePayout,
    Dispute,
    EndContract,
    ExtendDeadline,
    Resolve,
    Respond,
    Security,
    SnapshotResult,
    StatusRecord,
    TimesheetInput,
    WeeklyLimitChange,
    WorkViewChange,
    WorkViewChanged,
)
from domain.money import format_money
from domain.timesheet import Timesheet
from store.models import Capture, Contract, LedgerTransfer, ManualEntry
from workflows.contract import ContractWorkflow
from workflows.handles import update_name
from workflows.timesheet import TimesheetWorkflow, timesheet_workflow_id

SET_WORK_VIEW = update_name(ContractWorkflow.set_work_view)
CHANGE_WEEKLY_LIMIT = update_name(ContractWorkflow.change_weekly_limit)
END_CONTRACT = update_name(ContractWorkflow.end_contract)
APPROVE = update_name(TimesheetWorkflow.approve)
DISPUTE = update_name(TimesheetWorkflow.dispute_entries)
RESPOND = update_name(TimesheetWorkflow.respond)
RESOLVE = update_name(TimesheetWorkflow.resolve)
EXTEND = update_name(TimesheetWorkflow.extend_deadline)
DECIDE_PAYOUT = update_name(TimesheetWorkflow.decide_payout)
_UPDATE_ARGS: dict[str, type[BaseModel]] = {
    SET_WORK_VIEW: WorkViewChange,
    CHANGE_WEEKLY_LIMIT: WeeklyLimitChange,
    END_CONTRACT: EndContract,
    APPROVE: Approve,
    DISPUTE: Dispute,
    RESPOND: Respond,
    RESOLVE: Resolve,
    EXTEND: ExtendDeadline,
    DECIDE_PAYOUT: DecidePayout,
}
_UPDATE_RESULTS: dict[str, type[BaseModel]] = {
    SET_WORK_VIEW: WorkViewChanged,
    CHANGE_WEEKLY_LIMIT: ContractRecord,
    END_CONTRACT: ContractRecord,
}
CONTRACT_TYPE = ContractWorkflow.__name__
_MONEY = {
    "hold": "{amount} of the client's balance was held for {week}",
    "hold_release": "{amount} held for {week} and not needed went back to the client's balance",
    "charge": "The client was charged {amount} for {week} (held for the security period)",
    "guarantee_payout": "The guarantee fund paid the provider {amount} for the guaranteed hours of {week}",
    "receivable": "A receivable of {amount} was recorded against the client for {week}",
    "release": "{amount} for {week} was released to the provider",
}
_STATUS_WORDS = {
    "payout_review": "The guarantee payout for {week} is above the review threshold: support decides "
    "(support's silence pays it at the deadline)",
    "submitted": "The timesheet for {week} was frozen and submitted to the client for review",
    "auto_approved": "The review deadline passed without a dispute: {week} was auto-approved",
    "unpaid": "The charge for {week} failed and none of its time was guaranteed: it stays unpaid",
    "settled": "{week} is settled",
}


def utc_words(at: datetime) -> str:
    return f"{at.astimezone(UTC):%a %d %b %Y %H:%M} UTC"


def entry_words(entry_id: str, sheet: Timesheet | None) -> str:
    entry = sheet.entry(entry_id) if sheet else None
    if entry is not None:
        what = {"slot": "slot", "tracked": "tracked slot", "manual": "manual time"}[entry.kind]
        span = f"{entry.start.astimezone(UTC):%a %d %b %H:%M} to {entry.end.astimezone(UTC):%H:%M} UTC"
        return f"{what} {span} ({entry.billable_minutes} min billed)"
    return entry_id


def _entries(ids: Sequence[str], sheet: Timesheet | None) -> str:
    return "; ".join(entry_words(e, sheet) for e in ids)


@dataclass
class Facts:
    """What the timeline needs from the database."""

    contract: Contract
    sheets: dict[str, Timesheet]
    transfers: list[LedgerTransfer]
    snapshot_weeks: list[str]
    deleted_captures: list[Capture] = field(default_factory=list)
    manual_entries: list[ManualEntry] = field(default_factory=list)


@dataclass
class History:
    workflow_id: str
    run_id: str
    workflow_type: str
    events: list[HistoryEvent] = field(default_factory=list)


class TimelineBuilder:
    """Turns history events into sentences: who did what when, and what money moved."""

    def __init__(self, facts: Facts, converter: DataConverter, *, strict: bool = False) -> None:
        self.facts = facts
        self.converter = converter
        self.strict = strict
        self.currency = facts.contract.currency
        self.events: list[TimelineEvent] = []

    def money(self, cents: int | None) -> str:
        return format_money(cents or 0, self.currency)

    async def decode(self, payloads: Sequence[Payload], kind: type[BaseModel]) -> Any:
        try:
            values = await self.converter.decode(list(payloads), [kind])
        except Exception:
            if self.strict:
                raise
            return None  # an older message shape: the event still shows, in fewer words
        return values[0] if values else None

    def add(self, at: datetime, kind: str, text: str, history: History | None, *, actor_id: str | None = None,
            role: str | None = None, amount: int | None = None, week: str | None = None) -> None:  # fmt: skip
        self.events.append(
            TimelineEvent(
                at=at,
                kind=kind,
                actor=(role or "someone") if actor_id else "Workproof",
                actor_id=actor_id,
                text=text,
                week=week or (week_of_workflow(history.workflow_id) if history else None),
                workflow_id=history.workflow_id if history else None,
                amount_cents=amount,
            )
        )

    async def read(self, history: History) -> None:
        week = week_of_workflow(history.workflow_id)
        sheet = self.facts.sheets.get(week or "")
        label = f"week {iso_week_name(parse_week(week))} ({week})" if week else ""
        accepted: dict[str, tuple[str, Any, datetime]] = {}
        scheduled: dict[int, tuple[str, Any]] = {}
        last_status: str | None = None
        for event in history.events:
            at = event.event_time.ToDatetime(tzinfo=UTC)
            which = event.WhichOneof("attributes")
            if which == "workflow_execution_started_event_attributes":
                attrs = event.workflow_execution_started_event_attributes
                if attrs.continued_execution_run_id:
                    continue  # a new run of the same contract (weekly continue-as-new): nothing happened
                if history.workflow_type == CONTRACT_TYPE:
                    state = await self.decode(attrs.input.payloads, ContractState)
                    if isinstance(state, ContractState):
                        terms = state.terms
                        self.add(
                            terms.accepted_at, "accept",
                            f"accepted the contract “{terms.title}” at {self.money(terms.rate_cents)}/h, weekly limit "
                            f"{terms.weekly_limit_hours} h, manual time {'allowed' if terms.manual_allowed else 'not allowed'}, "
                            f"Work View {'on' if terms.work_view_on else 'off'}",
                            history, actor_id=terms.provider_id, role="provider",
                        )  # fmt: skip
                else:
                    request = await self.decode(attrs.input.payloads, TimesheetInput)
                    limit = f" (weekly limit {request.weekly_limit_hours} h)" if request else ""
                    self.add(at, "week_opened", f"The timesheet for {label} was opened{limit}", history)
            elif which == "workflow_execution_update_accepted_event_attributes":
                req = event.workflow_execution_update_accepted_event_attributes.accepted_request
                name = req.input.name
                kind = _UPDATE_ARGS.get(name)
                arg = await self.decode(req.input.args.payloads, kind) if kind else None
                # keyed by the update's id: the completion names it (its accepted_event_id may be 0)
                accepted[req.meta.update_id] = (name, arg, at)
            elif which == "workflow_execution_update_completed_event_attributes":
                attrs_c = event.workflow_execution_update_completed_event_attributes
                name, arg, when = accepted.pop(attrs_c.meta.update_id, ("", None, at))
                if not attrs_c.outcome.HasField("success"):
                    actor = getattr(arg, "actor", None)
                    self.add(
                        at, "update_failed",
                        f"tried {name} on {history.workflow_id}, which failed: {attrs_c.outcome.failure.message[:300]}",
                        history, actor_id=actor.user_id if actor else None, role=actor.role if actor else None,
                    )  # fmt: skip
                    continue
                result = await self.decode(
                    attrs_c.outcome.success.payloads, _UPDATE_RESULTS.get(name, ActionResult)
                )
                status = self.update_event(name, arg, result, when, history, sheet, label)
                last_status = status or last_status
            elif which == "activity_task_scheduled_event_attributes":
                attrs_s = event.activity_task_scheduled_event_attributes
                activity = attrs_s.activity_type.name
                scheduled[event.event_id] = (activity, attrs_s.input.payloads)
                if activity == RECORD_TIMESHEET_STATUS.name:
                    record = await self.decode(attrs_s.input.payloads, StatusRecord)
                    if isinstance(record, StatusRecord) and record.status != last_status:
                        self.status_event(record, at, history, label)
                        last_status = record.status
            elif which == "activity_task_completed_event_attributes":
                attrs_d = event.activity_task_completed_event_attributes
                activity, inputs = scheduled.get(attrs_d.scheduled_event_id, ("", []))
                if activity == FREEZE_TIMESHEET.name:
                    snap = await self.decode(attrs_d.result.payloads, SnapshotResult)
                    if isinstance(snap, SnapshotResult):
                        t = snap.timesheet
                        self.add(
                            at, "frozen",
                            f"{label} was frozen: {_hours(t.billable_minutes)} billable, {self.money(t.amount_cents)}, of "
                            f"which {self.money(t.guaranteed_cents)} guaranteed (snapshot {snap.content_hash[:12]})",
                            history, amount=t.amount_cents,
                        )  # fmt: skip
                elif activity == SECURE_WEEK.name:
                    secured = await self.decode(attrs_d.result.payloads, Security)
                    if isinstance(secured, Security):
                        self.add(
                            at, "secured",
                            f"{label} is secured for {self.money(secured.secured_cents)}: "
                            f"{self.money(secured.held_cents)} held on the client's balance, "
                            f"{self.money(secured.credit_cents)} of credit",
                            history, amount=secured.secured_cents,
                        )  # fmt: skip
                elif activity == COLLECT_WEEK.name:
                    collected = await self.decode(attrs_d.result.payloads, Collection)
                    if isinstance(collected, Collection) and collected.rest_failed:
                        self.add(
                            at, "charge_failed",
                            f"Charging the client beyond the hold for {label} failed: {collected.reason}; the "
                            f"guarantee may pay up to {self.money(collected.guarantee_cap_cents)} (the credit secured)",
                            history, amount=collected.guarantee_cap_cents,
                        )  # fmt: skip
                elif activity == CHARGE_CLIENT.name:
                    charge = await self.decode(attrs_d.result.payloads, ChargeResult)
                    asked = await self.decode(inputs, ChargeInput)
                    if isinstance(charge, ChargeResult) and not charge.ok:
                        amount = asked.amount_cents if isinstance(asked, ChargeInput) else None
                        self.add(
                            at, "charge_failed",
                            f"Charging the client {self.money(amount)} for {label} failed: {charge.reason}",
                            history, amount=amount,
                        )  # fmt: skip
            elif which == "activity_task_failed_event_attributes":
                attrs_f = event.activity_task_failed_event_attributes
                activity, _ = scheduled.get(attrs_f.scheduled_event_id, ("", []))
                self.add(at, "activity_failed",
                         f"The step {activity} failed and is retried: {attrs_f.failure.message[:300]}", history)  # fmt: skip
            elif which == "workflow_execution_signaled_event_attributes":
                continue  # the week reporting it settled: the timesheet's own "settled" says it
            elif (
                which == "workflow_execution_completed_event_attributes"
                and history.workflow_type == CONTRACT_TYPE
            ):
                self.add(
                    at,
                    "contract_closed",
                    "The contract's workflow finished: all its weeks are settled",
                    history,
                )
            elif which == "workflow_execution_terminated_event_attributes":
                reason = event.workflow_execution_terminated_event_attributes.reason
                self.add(
                    at,
                    "terminated",
                    f"An operator terminated the workflow: {reason or 'no reason given'}",
                    history,
                )

    def update_event(
        self,
        name: str,
        arg: Any,
        result: Any,
        at: datetime,
        history: History,
        sheet: Timesheet | None,
        label: str,
    ) -> str | None:
        """Words for one accepted update; returns the timesheet status it led to, if known."""
        actor = getattr(arg, "actor", None)
        actor_id, role = (actor.user_id, actor.role) if actor is not None else (None, None)
        status = result.status if isinstance(result, ActionResult) else None

        def add(kind: str, text: str) -> None:
            self.add(at, kind, text, history, actor_id=actor_id, role=role)

        if name == SET_WORK_VIEW and isinstance(arg, WorkViewChange):
            when = f", from {utc_words(result.effective_at)}" if isinstance(result, WorkViewChanged) else ""
            add("work_view", f"turned Work View {'on' if arg.on else 'off'}{when}")
        elif name == CHANGE_WEEKLY_LIMIT and isinstance(arg, WeeklyLimitChange):
            add("weekly_limit", f"changed the weekly limit to {arg.weekly_limit_hours} h from next week")
        elif name == END_CONTRACT:
            why = (
                f" because: “{arg.reason.strip()}”"
                if isinstance(arg, EndContract) and arg.reason.strip()
                else ""
            )
            add("end", f"ended the contract{why}; its last week is still submitted, reviewed and settled")
        elif name == APPROVE:
            add("approve", f"approved the timesheet for {label}")
        elif name == DISPUTE and isinstance(arg, Dispute):
            add("dispute", f"disputed {len(arg.entry_ids)} entries of {label} ({_entries(arg.entry_ids, sheet)}) "
                           f"because: “{arg.reason.strip()}”")  # fmt: skip
        elif name == RESPOND and isinstance(arg, Respond):
            note = f": “{arg.note.strip()}”" if arg.note.strip() else ""
            if arg.accept:
                add(
                    "respond",
                    f"accepted the dispute of {label}: the disputed entries are refunded to the client{note}",
                )
            else:
                add("respond", f"contested the dispute of {label}: support decides each entry{note}")
        elif name == RESOLVE and isinstance(arg, Resolve):
            sides = "; ".join(
                f"{entry_words(e, sheet)} → {'owed to the provider' if side == 'provider' else 'refunded to the client'}"
                for e, side in arg.resolutions.items()
            )
            note = f" Note: “{arg.note.strip()}”" if arg.note.strip() else ""
            add("resolve", f"resolved the dispute of {label}: {sides}.{note}")
        elif name == EXTEND and isinstance(arg, ExtendDeadline):
            add("extend", f"extended the {arg.deadline} deadline of {label} to {utc_words(arg.until)} "
                          f"because: “{arg.reason.strip()}”")  # fmt: skip
        elif name == DECIDE_PAYOUT and isinstance(arg, DecidePayout):
            verdict = "approved" if arg.approve else "refused"
            add(
                "payout_decision",
                f"{verdict} the guarantee payout of {label} because: “{arg.reason.strip()}”",
            )
        elif name:
            add("update", f"sent {name} to {history.workflow_id}")
        return status

    def status_event(self, record: StatusRecord, at: datetime, history: History, label: str) -> None:
        words = _STATUS_WORDS.get(record.status)
        if (
            record.status == "in_support"
            and record.dispute is not None
            and record.dispute.response == "silence"
        ):
            words = "The provider did not answer the dispute of {week} in time: support decides each entry"
        if words:
            self.add(at, f"status_{record.status}", words.format(week=label), history)

    def money_events(self) -> None:
        for transfer in self.facts.transfers:
            words = _MONEY.get(transfer.kind)
            if words is None or transfer.week_start is None:
                continue
            week = f"{transfer.week_start.astimezone(UTC):%Y-%m-%d}"
            label = f"week {iso_week_name(transfer.week_start)} ({week})"
            self.events.append(
                TimelineEvent(
                    at=transfer.created_at,
                    kind=transfer.kind,
                    actor="Workproof",
                    text=words.format(
                        amount=format_money(transfer.amount_cents, transfer.currency), week=label
                    ),
                    week=week,
                    workflow_id=timesheet_workflow_id(str(transfer.contract_id), transfer.week_start),
                    amount_cents=transfer.amount_cents,
                )
            )

    def edit_events(self) -> None:
        """The provider's edits, from the database: captures deleted before submission (each removed a
        slot) and manual time added or deleted (billable, never guaranteed)."""
        provider = str(self.facts.contract.provider_id)
        for capture in self.facts.deleted_captures:
            assert capture.deleted_at is not None
            week = f"{capture.week_start.astimezone(UTC):%Y-%m-%d}"
            memo = f" (memo “{capture.memo}”)" if capture.memo.strip() else ""
            self._edit(capture.deleted_at, "capture_deleted", provider, week,
                       f"deleted the {capture.kind} captured {utc_words(capture.captured_at)}{memo}: its slot "
                       f"{capture.slot_start.astimezone(UTC):%H:%M} UTC no longer counts")  # fmt: skip
        for entry in self.facts.manual_entries:
            week = f"{entry.week_start.astimezone(UTC):%Y-%m-%d}"
            minutes = int((entry.end - entry.start).total_seconds() // 60)
            span = f"{utc_words(entry.start)} to {entry.end.astimezone(UTC):%H:%M} UTC ({_hours(minutes)})"
            memo = f" “{entry.memo}”" if entry.memo.strip() else ""
            self._edit(entry.created_at, "manual_added", provider, week,
                       f"added manual time {span}{memo}: billable, never guaranteed")  # fmt: skip
            if entry.deleted_at is not None:
                self._edit(
                    entry.deleted_at, "manual_deleted", provider, week, f"deleted the manual time {span}"
                )

    def _edit(self, at: datetime, kind: str, actor_id: str, week: str, text: str) -> None:
        self.events.append(
            TimelineEvent(
                at=at,
                kind=kind,
                actor="provider",
                actor_id=actor_id,
                text=text,
                week=week,
                workflow_id=timesheet_workflow_id(str(self.facts.contract.id), parse_week(week)),
            )
        )


def _hours(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if rest else f"{hours} h"


def started(run: History) -> datetime:
    return run.events[0].event_time.ToDatetime(tzinfo=UTC) if run.events else datetime.now(UTC)


CLOSING = {
    "workflow_execution_completed_event_attributes": "completed",
    "workflow_execution_continued_as_new_event_attributes": "continued as new",
    "workflow_execution_failed_event_attributes": "failed",
    "workflow_execution_terminated_event_attributes": "terminated",
    "workflow_execution_canceled_event_attributes": "canceled",
    "workflow_execution_timed_out_event_attributes": "timed out",
}
