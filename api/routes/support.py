"""Support: the dispute queue, timesheet search through Temporal visibility, a contract's timeline in
plain words (built from its workflow histories and the ledger), and raw workflow histories.

Every read is written to the audit log. Resolving and extending deadlines are timesheet updates
(``api/routes/timesheets.py``); this module only reads.

Visibility queries are built from validated values only (UUIDs, a status from the known list, a week
parsed by ``domain.calendar``): no text a caller sends is ever interpolated into a query."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel
from sqlmodel import Session, col, func, select
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from api.deps import SessionDep, SettingsDep, SupportUser, TemporalDep
from api.schemas import Page
from api.temporal import TemporalGateway, domain_error
from domain.calendar import iso_week_name, parse_week
from domain.errors import InvalidInput, NotFound
from domain.messages import (
    ActionResult,
    Approve,
    ChargeInput,
    ChargeResult,
    ContractRecord,
    ContractState,
    Dispute,
    EndContract,
    ExtendDeadline,
    Resolve,
    Respond,
    SnapshotResult,
    StatusRecord,
    TimesheetInput,
    TimesheetStatus,
    WeeklyLimitChange,
    WorkViewChange,
    WorkViewChanged,
)
from domain.money import format_money
from domain.timesheet import Timesheet
from store import ledger
from store.audit import audit
from store.contracts import visible_contract
from store.db import session_scope
from store.models import Contract, LedgerTransfer, TimesheetSnapshot, User
from store.models import Dispute as DisputeRow
from store.settings import Settings
from workflows.attributes import CONTRACT_ID, DISPUTE_OPEN, TIMESHEET_STATUS, WEEK_START
from workflows.contract import contract_workflow_id
from workflows.timesheet import timesheet_workflow_id

router = APIRouter(prefix="/v1/support", tags=["support"])

STATUSES: tuple[str, ...] = get_args(TimesheetStatus)
OPEN_DISPUTE = ("disputed", "in_support")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
WORKFLOW_ID = re.compile(
    rf"^(?:contract-(?P<contract>{_UUID})|timesheet-(?P<sheet>{_UUID})-(?P<week>\d{{4}}-\d{{2}}-\d{{2}}))$"
)
MAX_HISTORIES = 400  # a contract of several years: about two runs a week


# --- response models -----------------------------------------------------------------------------------


class DisputeQueueItem(BaseModel):
    contract_id: uuid.UUID
    title: str
    client_id: uuid.UUID
    provider_id: uuid.UUID
    week_start: datetime
    iso_week: str
    status: str
    workflow_id: str
    amount_cents: int
    currency: str
    disputed_entries: list[str]
    reason: str
    opened_at: datetime | None
    provider_response: str | None


class TimesheetFound(BaseModel):
    workflow_id: str
    run_id: str
    contract_id: str | None
    week_start: datetime | None
    iso_week: str | None
    status: str | None
    dispute_open: bool | None
    execution: str
    started_at: datetime
    closed_at: datetime | None


class TimesheetSearch(BaseModel):
    items: list[TimesheetFound]
    total: int
    limit: int
    next_page_token: str | None


class TimelineEvent(BaseModel):
    at: datetime
    kind: str
    actor: str
    actor_id: str | None = None
    text: str
    week: str | None = None
    workflow_id: str | None = None
    amount_cents: int | None = None


class WorkflowRun(BaseModel):
    workflow_id: str
    run_id: str
    workflow_type: str
    execution: str
    started_at: datetime
    closed_at: datetime | None
    history_url: str
    ui_url: str


class ContractTimeline(BaseModel):
    contract_id: uuid.UUID
    title: str
    currency: str
    client: str
    provider: str
    workflows: list[WorkflowRun]
    events: list[TimelineEvent]


# --- the dispute queue (database) ----------------------------------------------------------------------


def dispute_queue(*, session: Session, limit: int, offset: int) -> tuple[list[DisputeQueueItem], int]:
    """Timesheets with an open dispute, oldest dispute first (the status mirrors the workflow's)."""
    base = (
        select(TimesheetSnapshot, Contract, DisputeRow)
        .join(Contract, col(Contract.id) == col(TimesheetSnapshot.contract_id))
        .join(
            DisputeRow,
            (col(DisputeRow.contract_id) == col(TimesheetSnapshot.contract_id))
            & (col(DisputeRow.week_start) == col(TimesheetSnapshot.week_start)),
            isouter=True,
        )
        .where(col(TimesheetSnapshot.status).in_(OPEN_DISPUTE))
    )
    total = session.exec(select(func.count()).select_from(base.subquery())).one()
    rows = session.exec(
        base.order_by(col(DisputeRow.opened_at).asc().nulls_last(), col(TimesheetSnapshot.week_start))
        .offset(offset)
        .limit(limit)
    ).all()
    items = [
        DisputeQueueItem(
            contract_id=contract.id,
            title=contract.title,
            client_id=contract.client_id,
            provider_id=contract.provider_id,
            week_start=snap.week_start,
            iso_week=iso_week_name(snap.week_start),
            status=snap.status,
            workflow_id=timesheet_workflow_id(str(contract.id), snap.week_start),
            amount_cents=snap.amount_cents,
            currency=contract.currency,
            disputed_entries=list(dispute.entry_ids) if dispute else [],
            reason=dispute.reason if dispute else "",
            opened_at=dispute.opened_at if dispute else None,
            provider_response=dispute.provider_response if dispute else None,
        )
        for snap, contract, dispute in rows
    ]
    return items, int(total)


@router.get("/disputes", response_model=Page[DisputeQueueItem])
def disputes(
    session: SessionDep,
    support: SupportUser,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=100_000),
) -> Page[DisputeQueueItem]:
    """The dispute queue: timesheets waiting for the provider's answer or for support, oldest first."""
    items, total = dispute_queue(session=session, limit=limit, offset=offset)
    audit(session=session, actor=support, action="support.read", subject_type="disputes",
          subject_id="queue", detail={"limit": limit, "offset": offset})  # fmt: skip
    return Page(items=items, total=total, limit=limit, offset=offset)


# --- search (Temporal visibility) ----------------------------------------------------------------------


@dataclass(frozen=True)
class SearchFilter:
    """Validated search values; :meth:`query` is the only place a visibility query is written."""

    contract_id: uuid.UUID | None = None
    provider_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    status: str | None = None
    week: datetime | None = None
    dispute_open: bool | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise InvalidInput(f"status {self.status!r} is unknown: use one of {', '.join(STATUSES)}")

    def query(self) -> str:
        parts = ["WorkflowType = 'TimesheetWorkflow'"]
        for name, value in (
            ("ContractId", self.contract_id),
            ("ProviderId", self.provider_id),
            ("ClientId", self.client_id),
        ):
            if value is not None:
                parts.append(f"{name} = '{uuid.UUID(str(value))}'")  # canonical form only
        if self.status is not None:
            parts.append(f"TimesheetStatus = '{STATUSES[STATUSES.index(self.status)]}'")
        if self.week is not None:
            # a range, not equality: visibility stores may keep the instant with sub-second digits
            start, end = self.week.astimezone(UTC), self.week.astimezone(UTC) + timedelta(days=1)
            parts.append(
                f"WeekStart >= '{start:%Y-%m-%dT%H:%M:%SZ}' AND WeekStart < '{end:%Y-%m-%dT%H:%M:%SZ}'"
            )
        if self.dispute_open is not None:
            parts.append(f"DisputeOpen = {'true' if self.dispute_open else 'false'}")
        return " AND ".join(parts)


FOREIGN_PAGE_TOKEN = "page_token is not one this API gave out: start again without it"


def _token_in(token: str | None) -> bytes | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInput(FOREIGN_PAGE_TOKEN) from None


async def search_timesheets(
    temporal: TemporalGateway, search: SearchFilter, *, limit: int, page_token: str | None = None
) -> TimesheetSearch:
    client = await temporal.client()
    query = search.query()
    token = _token_in(page_token)  # before the engine is asked: a bad token is the caller's 422
    try:
        listing = client.list_workflows(query, page_size=limit, next_page_token=token)
        await listing.fetch_next_page()
        counted = await client.count_workflows(query)
    except RPCError as error:
        # The query is built from validated values only, so a refusal that is not an outage is about the
        # token: one that decodes but that visibility never handed out.
        if token is not None and error.status not in (
            RPCStatusCode.UNAVAILABLE,
            RPCStatusCode.DEADLINE_EXCEEDED,
        ):
            raise InvalidInput(FOREIGN_PAGE_TOKEN) from None
        raise domain_error(error, "timesheet") from None
    except Exception as error:
        raise domain_error(error, "timesheet") from None
    items = []
    for execution in listing.current_page or []:
        attrs = execution.typed_search_attributes
        week = attrs.get(WEEK_START)
        items.append(
            TimesheetFound(
                workflow_id=execution.id,
                run_id=execution.run_id,
                contract_id=attrs.get(CONTRACT_ID),
                week_start=week,
                iso_week=iso_week_name(week) if week else None,
                status=attrs.get(TIMESHEET_STATUS),
                dispute_open=attrs.get(DISPUTE_OPEN),
                execution=execution.status.name.lower() if execution.status else "unknown",
                started_at=execution.start_time,
                closed_at=execution.close_time,
            )
        )
    token = listing.next_page_token
    return TimesheetSearch(
        items=items, total=counted.count, limit=limit,
        next_page_token=base64.urlsafe_b64encode(token).decode().rstrip("=") if token else None,
    )  # fmt: skip


@router.get("/timesheets", response_model=TimesheetSearch)
async def timesheets(
    support: SupportUser,
    settings: SettingsDep,
    temporal: TemporalDep,
    contract_id: uuid.UUID | None = None,
    provider_id: uuid.UUID | None = None,
    client_id: uuid.UUID | None = None,
    status: TimesheetStatus | None = None,
    week: str | None = Query(None, max_length=10, description="The week's Monday (YYYY-MM-DD) or 2026-W48"),
    dispute_open: bool | None = None,
    limit: int = Query(50, ge=1, le=200),
    page_token: str | None = Query(None, max_length=4000),
) -> TimesheetSearch:
    """Timesheets by contract, provider, client, status and week, newest first, through Temporal
    visibility. Page on with the answer's ``next_page_token``."""
    search = SearchFilter(
        contract_id=contract_id, provider_id=provider_id, client_id=client_id, status=status,
        week=parse_week(week) if week else None, dispute_open=dispute_open,
    )  # fmt: skip
    found = await search_timesheets(temporal, search, limit=limit, page_token=page_token)
    await run_in_threadpool(
        _audit,
        settings,
        support,
        "timesheets",
        "search",
        {"query": search.query(), "found": len(found.items)},
    )
    return found


def _audit(
    settings: Settings, user: User, subject_type: str, subject_id: str, detail: dict[str, Any]
) -> None:
    url = settings.database_url
    assert url
    with session_scope(url) as session:
        audit(session=session, actor=user, action="support.read", subject_type=subject_type,
              subject_id=subject_id, detail=detail)  # fmt: skip


# --- raw workflow history ------------------------------------------------------------------------------


def check_workflow_id(workflow_id: str) -> str:
    """Only this platform's workflow ids: ``contract-<uuid>`` or ``timesheet-<uuid>-<YYYY-MM-DD>``."""
    match = WORKFLOW_ID.match(workflow_id)
    if match is None:
        raise NotFound("no such workflow: ids look like contract-<uuid> or timesheet-<uuid>-<YYYY-MM-DD>")
    if match["week"]:
        parse_week(match["week"])  # a real Monday
    return workflow_id


@router.get(
    "/workflows/{workflow_id}/history",
    responses={200: {"content": {"application/json": {}}, "description": "The history as Temporal JSON"}},
)
async def workflow_history(
    workflow_id: str,
    support: SupportUser,
    settings: SettingsDep,
    temporal: TemporalDep,
    run_id: uuid.UUID | None = None,
) -> Response:
    """The workflow's full event history in Temporal's JSON form (``WorkflowHistory.to_json``): load it
    with ``WorkflowHistory.from_json`` to replay it, or open it in the Temporal Web UI. Without
    ``run_id``, the latest run."""
    check_workflow_id(workflow_id)
    client = await temporal.client()
    handle = client.get_workflow_handle(workflow_id, run_id=str(run_id) if run_id else None)
    try:
        history = await handle.fetch_history()
    except Exception as error:
        raise domain_error(error, f"workflow {workflow_id}") from None
    await run_in_threadpool(
        _audit, settings, support, "workflow", workflow_id, {"run_id": str(run_id) if run_id else None}
    )
    return Response(
        history.to_json(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'inline; filename="{workflow_id}.json"',
            "Cache-Control": "no-store",
        },
    )


# --- the contract timeline -----------------------------------------------------------------------------


_UPDATE_ARGS: dict[str, type[BaseModel]] = {
    "set_work_view": WorkViewChange,
    "change_weekly_limit": WeeklyLimitChange,
    "end_contract": EndContract,
    "approve": Approve,
    "dispute_entries": Dispute,
    "respond": Respond,
    "resolve": Resolve,
    "extend_deadline": ExtendDeadline,
}
_UPDATE_RESULTS: dict[str, type[BaseModel]] = {
    "set_work_view": WorkViewChanged,
    "change_weekly_limit": ContractRecord,
    "end_contract": ContractRecord,
}
_MONEY = {
    "charge": "The client was charged {amount} for {week} (held for the security period)",
    "guarantee_payout": "The guarantee fund paid the provider {amount} for the guaranteed hours of {week}",
    "receivable": "A receivable of {amount} was recorded against the client for {week}",
    "release": "{amount} for {week} was released to the provider",
}
_STATUS_WORDS = {
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
class _Facts:
    """What the timeline needs from the database."""

    contract: Contract
    sheets: dict[str, Timesheet]
    transfers: list[LedgerTransfer]
    snapshot_weeks: list[str]


@dataclass
class _History:
    workflow_id: str
    run_id: str
    workflow_type: str
    events: list[HistoryEvent] = field(default_factory=list)


class TimelineBuilder:
    """Turns history events into sentences: who did what when, and what money moved."""

    def __init__(self, facts: _Facts, converter: DataConverter) -> None:
        self.facts = facts
        self.converter = converter
        self.currency = facts.contract.currency
        self.events: list[TimelineEvent] = []

    def money(self, cents: int | None) -> str:
        return format_money(cents or 0, self.currency)

    async def decode(self, payloads: Sequence[Payload], kind: type[BaseModel]) -> Any:
        try:
            values = await self.converter.decode(list(payloads), [kind])
        except Exception:  # an older message shape: the event still shows, in fewer words
            return None
        return values[0] if values else None

    def add(self, at: datetime, kind: str, text: str, history: _History | None, *, actor_id: str | None = None,
            role: str | None = None, amount: int | None = None, week: str | None = None) -> None:  # fmt: skip
        self.events.append(
            TimelineEvent(
                at=at,
                kind=kind,
                actor=(role or "someone") if actor_id else "Workproof",
                actor_id=actor_id,
                text=text,
                week=week or (_week_of(history.workflow_id) if history else None),
                workflow_id=history.workflow_id if history else None,
                amount_cents=amount,
            )
        )

    async def read(self, history: _History) -> None:
        week = _week_of(history.workflow_id)
        sheet = self.facts.sheets.get(week or "")
        label = f"week {iso_week_name(parse_week(week))} ({week})" if week else ""
        accepted: dict[int, tuple[str, Any, datetime]] = {}
        scheduled: dict[int, tuple[str, Any]] = {}
        last_status: str | None = None
        for event in history.events:
            at = event.event_time.ToDatetime(tzinfo=UTC)
            which = event.WhichOneof("attributes")
            if which == "workflow_execution_started_event_attributes":
                attrs = event.workflow_execution_started_event_attributes
                if attrs.continued_execution_run_id:
                    continue  # a new run of the same contract (weekly continue-as-new): nothing happened
                if history.workflow_type == "ContractWorkflow":
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
                accepted[event.event_id] = (name, arg, at)
            elif which == "workflow_execution_update_completed_event_attributes":
                attrs_c = event.workflow_execution_update_completed_event_attributes
                name, arg, when = accepted.pop(attrs_c.accepted_event_id, ("", None, at))
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
                if activity == "record_timesheet_status":
                    record = await self.decode(attrs_s.input.payloads, StatusRecord)
                    if isinstance(record, StatusRecord) and record.status != last_status:
                        self.status_event(record, at, history, label)
                        last_status = record.status
            elif which == "activity_task_completed_event_attributes":
                attrs_d = event.activity_task_completed_event_attributes
                activity, inputs = scheduled.get(attrs_d.scheduled_event_id, ("", []))
                if activity == "freeze_timesheet":
                    snap = await self.decode(attrs_d.result.payloads, SnapshotResult)
                    if isinstance(snap, SnapshotResult):
                        t = snap.timesheet
                        self.add(
                            at, "frozen",
                            f"{label} was frozen: {_hours(t.billable_minutes)} billable, {self.money(t.amount_cents)}, of "
                            f"which {self.money(t.guaranteed_cents)} guaranteed (snapshot {snap.content_hash[:12]})",
                            history, amount=t.amount_cents,
                        )  # fmt: skip
                elif activity == "charge_client":
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
                continue  # week_settled: the timesheet's own "settled" says it
            elif (
                which == "workflow_execution_completed_event_attributes"
                and history.workflow_type == "ContractWorkflow"
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
        history: _History,
        sheet: Timesheet | None,
        label: str,
    ) -> str | None:
        """Words for one accepted update; returns the timesheet status it led to, if known."""
        actor = getattr(arg, "actor", None)
        actor_id, role = (actor.user_id, actor.role) if actor is not None else (None, None)
        status = result.status if isinstance(result, ActionResult) else None

        def add(kind: str, text: str) -> None:
            self.add(at, kind, text, history, actor_id=actor_id, role=role)

        if name == "set_work_view" and isinstance(arg, WorkViewChange):
            when = f", from {utc_words(result.effective_at)}" if isinstance(result, WorkViewChanged) else ""
            add("work_view", f"turned Work View {'on' if arg.on else 'off'}{when}")
        elif name == "change_weekly_limit" and isinstance(arg, WeeklyLimitChange):
            add("weekly_limit", f"changed the weekly limit to {arg.weekly_limit_hours} h from next week")
        elif name == "end_contract":
            add("end", "ended the contract; its last week is still submitted, reviewed and settled")
        elif name == "approve":
            add("approve", f"approved the timesheet for {label}")
        elif name == "dispute_entries" and isinstance(arg, Dispute):
            add("dispute", f"disputed {len(arg.entry_ids)} entries of {label} ({_entries(arg.entry_ids, sheet)}) "
                           f"because: “{arg.reason.strip()}”")  # fmt: skip
        elif name == "respond" and isinstance(arg, Respond):
            note = f": “{arg.note.strip()}”" if arg.note.strip() else ""
            if arg.accept:
                add(
                    "respond",
                    f"accepted the dispute of {label}: the disputed entries are refunded to the client{note}",
                )
            else:
                add("respond", f"contested the dispute of {label}: support decides each entry{note}")
        elif name == "resolve" and isinstance(arg, Resolve):
            sides = "; ".join(
                f"{entry_words(e, sheet)} → {'owed to the provider' if side == 'provider' else 'refunded to the client'}"
                for e, side in arg.resolutions.items()
            )
            note = f" Note: “{arg.note.strip()}”" if arg.note.strip() else ""
            add("resolve", f"resolved the dispute of {label}: {sides}.{note}")
        elif name == "extend_deadline" and isinstance(arg, ExtendDeadline):
            add("extend", f"extended the {arg.deadline} deadline of {label} to {utc_words(arg.until)} "
                          f"because: “{arg.reason.strip()}”")  # fmt: skip
        elif name:
            add("update", f"sent {name} to {history.workflow_id}")
        return status

    def status_event(self, record: StatusRecord, at: datetime, history: _History, label: str) -> None:
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


def _week_of(workflow_id: str) -> str | None:
    match = WORKFLOW_ID.match(workflow_id)
    return match["week"] if match and match["week"] else None


def _hours(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if rest else f"{hours} h"


def _load_facts(settings: Settings, user: User, contract_id: uuid.UUID) -> _Facts:
    url = settings.database_url
    assert url
    with session_scope(url) as session:
        contract = visible_contract(session=session, user=user, contract_id=contract_id)
        snapshots = session.exec(
            select(TimesheetSnapshot).where(TimesheetSnapshot.contract_id == contract.id)
        ).all()
        sheets = {
            f"{s.week_start.astimezone(UTC):%Y-%m-%d}": Timesheet.model_validate(s.body) for s in snapshots
        }
        transfers = ledger.transfers_for(session=session, contract_id=contract.id)
        audit(session=session, actor=user, action="support.read", subject_type="timeline",
              subject_id=str(contract.id))  # fmt: skip
        return _Facts(contract, sheets, transfers, sorted(sheets))


def _load_users(settings: Settings, ids: set[str]) -> dict[str, User]:
    url = settings.database_url
    assert url
    wanted = []
    for value in ids:
        try:
            wanted.append(uuid.UUID(value))
        except ValueError:
            continue
    if not wanted:
        return {}
    with session_scope(url) as session:
        return {str(u.id): u for u in session.exec(select(User).where(col(User.id).in_(wanted))).all()}


def temporal_ui(settings: Settings) -> str:
    return (settings.temporal_ui_url or f"http://127.0.0.1:{settings.temporal_ui_port}").rstrip("/")


async def _runs(client: Client, contract_id: str, known_weeks: list[str]) -> list[_History]:
    """Every run of the contract workflow and every timesheet of the contract."""
    found: dict[tuple[str, str], _History] = {}
    queries = (
        f"WorkflowId = '{contract_workflow_id(contract_id)}'",
        f"WorkflowType = 'TimesheetWorkflow' AND ContractId = '{contract_id}'",
    )
    for query in queries:
        async for execution in client.list_workflows(query, limit=MAX_HISTORIES):
            found[(execution.id, execution.run_id)] = _History(
                execution.id, execution.run_id, execution.workflow_type
            )
    seen_ids = {wid for wid, _ in found}
    for week in known_weeks:  # a timesheet started without search attributes is still found by its id
        wid = timesheet_workflow_id(contract_id, parse_week(week))
        if wid not in seen_ids:
            try:
                description = await client.get_workflow_handle(wid).describe()
            except Exception:  # noqa: S112  (removed by retention: the ledger still tells the money)
                continue
            found[(wid, description.run_id)] = _History(wid, description.run_id, description.workflow_type)
    return list(found.values())[:MAX_HISTORIES]


async def contract_timeline(
    temporal: TemporalGateway, settings: Settings, user: User, contract_id: uuid.UUID
) -> ContractTimeline:
    facts = await run_in_threadpool(_load_facts, settings, user, contract_id)
    client = await temporal.client()
    cid = str(facts.contract.id)
    try:
        runs = await _runs(client, cid, facts.snapshot_weeks)
        limiter = asyncio.Semaphore(8)

        async def fetch(run: _History) -> None:
            async with limiter:
                history = await client.get_workflow_handle(run.workflow_id, run_id=run.run_id).fetch_history()
                run.events = list(history.events)

        await asyncio.gather(*(fetch(r) for r in runs))
    except Exception as error:
        raise domain_error(error, f"workflow of contract {cid}") from None
    runs.sort(key=_started)

    builder = TimelineBuilder(facts, client.data_converter)
    for run in runs:
        await builder.read(run)
    builder.money_events()
    ids = {e.actor_id for e in builder.events if e.actor_id}
    users = await run_in_threadpool(
        _load_users, settings, ids | {str(facts.contract.client_id), str(facts.contract.provider_id)}
    )
    for event in builder.events:
        if event.actor_id:
            found = users.get(event.actor_id)
            event.actor = (
                f"{found.name or found.email} ({found.role})" if found else f"{event.actor} {event.actor_id}"
            )

    ui = temporal_ui(settings)
    workflows = []
    for run in runs:
        last = run.events[-1] if run.events else None
        ending = _CLOSING.get(last.WhichOneof("attributes") or "") if last is not None else None
        workflows.append(
            WorkflowRun(
                workflow_id=run.workflow_id,
                run_id=run.run_id,
                workflow_type=run.workflow_type,
                execution=ending or "running",
                started_at=_started(run),
                closed_at=last.event_time.ToDatetime(tzinfo=UTC) if ending and last is not None else None,
                history_url=f"/v1/support/workflows/{run.workflow_id}/history?run_id={run.run_id}",
                ui_url=f"{ui}/namespaces/{temporal.namespace}/workflows/{run.workflow_id}/{run.run_id}/history",
            )
        )
    client_user = users.get(str(facts.contract.client_id))
    provider_user = users.get(str(facts.contract.provider_id))
    return ContractTimeline(
        contract_id=facts.contract.id, title=facts.contract.title, currency=facts.contract.currency,
        client=client_user.email if client_user else str(facts.contract.client_id),
        provider=provider_user.email if provider_user else str(facts.contract.provider_id),
        workflows=workflows, events=sorted(builder.events, key=lambda e: e.at),
    )  # fmt: skip


def _started(run: _History) -> datetime:
    return run.events[0].event_time.ToDatetime(tzinfo=UTC) if run.events else datetime.now(UTC)


_CLOSING = {
    "workflow_execution_completed_event_attributes": "completed",
    "workflow_execution_continued_as_new_event_attributes": "continued as new",
    "workflow_execution_failed_event_attributes": "failed",
    "workflow_execution_terminated_event_attributes": "terminated",
    "workflow_execution_canceled_event_attributes": "canceled",
    "workflow_execution_timed_out_event_attributes": "timed out",
}


@router.get("/contracts/{contract_id}/timeline", response_model=ContractTimeline)
async def timeline(
    contract_id: uuid.UUID, support: SupportUser, settings: SettingsDep, temporal: TemporalDep
) -> ContractTimeline:
    """Everything that happened to the contract, in plain words and time order: who did what (accept,
    Work View, limit, end, submission, approval, dispute, answer, resolution, extensions) and what money
    moved (from the ledger). Each workflow's raw history is linked in ``workflows``."""
    return await contract_timeline(temporal, settings, support, contract_id)


__all__ = [
    "ContractTimeline",
    "DisputeQueueItem",
    "SearchFilter",
    "TimelineEvent",
    "contract_timeline",
    "dispute_queue",
    "router",
    "search_timesheets",
]
