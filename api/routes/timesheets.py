"""Timesheets: the week as it stands (live before the edit cutoff, the frozen snapshot after), and the
client's, provider's and support's actions, each sent to the week's workflow as an update whose id is
the caller's request id (a retried request returns the first result)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import ClientUser, CurrentUser, ProviderUser, SessionDep, SettingsDep, SupportUser, TemporalDep
from api.routes.contracts import actor
from api.temporal import TemporalGateway, domain_error
from domain.calendar import edit_cutoff, iso_week_name, parse_week, review_deadline, week_start
from domain.messages import (
    ActionResult,
    Approve,
    Dispute,
    DisputeState,
    ExtendDeadline,
    Resolution,
    Resolve,
    Respond,
    TimesheetView,
)
from domain.timesheet import Timesheet
from store.audit import audit_support_read
from store.captures import live_timesheet
from store.contracts import visible_contract
from store.db import session_scope
from store.models import TimesheetSnapshot, User, utcnow
from store.settings import Settings
from workflows.timesheet import timesheet_workflow_id

router = APIRouter(prefix="/v1/contracts/{contract_id}/timesheets", tags=["timesheets"])


class TimesheetPublic(Timesheet):
    iso_week: str
    status: str
    frozen: bool
    snapshot_hash: str | None = None
    edit_cutoff: datetime
    review_deadline: datetime
    dispute: DisputeState | None = None
    owed_cents: int | None = None
    charged_cents: int = 0
    guarantee_paid_cents: int = 0
    released_cents: int = 0
    history: list[str] = Field(default_factory=list)


class WeekSummary(BaseModel):
    week_start: datetime
    iso_week: str
    status: str
    billable_minutes: int
    amount_cents: int
    guaranteed_cents: int


class ActionBase(BaseModel):
    request_id: str = Field(
        min_length=8, max_length=100, description="Your idempotency key; retry with the same one"
    )


class DisputeBody(ActionBase):
    entry_ids: list[str] = Field(min_length=1, max_length=1000)
    reason: str = Field(min_length=1, max_length=2000)


class RespondBody(ActionBase):
    accept: bool
    note: str = Field(default="", max_length=2000)


class ResolveBody(ActionBase):
    resolutions: dict[str, Resolution] = Field(min_length=1)
    note: str = Field(default="", max_length=2000)


class ExtendBody(ActionBase):
    deadline: str = Field(pattern="^(review|response)$")
    until: datetime
    reason: str = Field(min_length=1, max_length=2000)


def load_timesheet(
    session: SessionDep, settings: Settings, user: User, contract_id: uuid.UUID, week: datetime
) -> TimesheetPublic:
    contract = visible_contract(session=session, user=user, contract_id=contract_id)
    start = week_start(week)
    snapshot = session.exec(
        select(TimesheetSnapshot).where(
            TimesheetSnapshot.contract_id == contract.id, TimesheetSnapshot.week_start == start
        )
    ).first()
    policy = settings.policy
    if snapshot is not None:
        body = Timesheet.model_validate(snapshot.body)
        status, frozen, digest = snapshot.status, True, snapshot.content_hash
    else:
        body = live_timesheet(session=session, contract=contract, week=start)
        status = "open" if utcnow() < edit_cutoff(start, policy) else "freezing"
        frozen, digest = False, None
    audit_support_read(
        session=session, user=user, subject_type="timesheet", subject_id=f"{contract_id}:{start:%Y-%m-%d}"
    )
    return TimesheetPublic(
        **body.model_dump(), iso_week=iso_week_name(start), status=status, frozen=frozen, snapshot_hash=digest,
        edit_cutoff=edit_cutoff(start, policy), review_deadline=review_deadline(start, policy),
    )  # fmt: skip


async def with_workflow_view(temporal: TemporalGateway, sheet: TimesheetPublic) -> TimesheetPublic:
    """Add what only the workflow knows (dispute, deadlines extended, money moved); best effort."""
    if not sheet.frozen:
        return sheet
    try:
        client = await temporal.client()
        handle = client.get_workflow_handle(timesheet_workflow_id(sheet.contract_id, sheet.week_start))
        view = await handle.query("view", result_type=TimesheetView)
    except Exception:
        return sheet
    return sheet.model_copy(
        update={
            "status": view.status, "review_deadline": view.review_deadline, "dispute": view.dispute,
            "owed_cents": view.owed_cents, "charged_cents": view.charged_cents,
            "guarantee_paid_cents": view.guarantee_paid_cents, "released_cents": view.released_cents,
            "history": view.history,
        }
    )  # fmt: skip


@router.get("", response_model=list[WeekSummary])
def list_weeks(
    contract_id: uuid.UUID, session: SessionDep, user: CurrentUser, limit: int = Query(52, ge=1, le=520)
) -> list[WeekSummary]:
    """Frozen weeks, newest first."""
    contract = visible_contract(session=session, user=user, contract_id=contract_id)
    rows = session.exec(
        select(TimesheetSnapshot)
        .where(TimesheetSnapshot.contract_id == contract.id)
        .order_by(col(TimesheetSnapshot.week_start).desc())
        .limit(limit)
    ).all()
    return [
        WeekSummary(
            week_start=r.week_start,
            iso_week=iso_week_name(r.week_start),
            status=r.status,
            billable_minutes=r.billable_minutes,
            amount_cents=r.amount_cents,
            guaranteed_cents=r.guaranteed_cents,
        )
        for r in rows
    ]


@router.get("/{week}", response_model=TimesheetPublic)
async def get_week(
    contract_id: uuid.UUID, week: str, user: CurrentUser, settings: SettingsDep, temporal: TemporalDep
) -> TimesheetPublic:
    """The week: every entry with billable and guaranteed minutes and, if not guaranteed, why."""
    start = parse_week(week)
    url = settings.database_url
    assert url

    def load() -> TimesheetPublic:
        with session_scope(url) as session:
            return load_timesheet(session, settings, user, contract_id, start)

    return await with_workflow_view(temporal, await run_in_threadpool(load))


async def send_update(
    temporal: TemporalGateway, settings: Settings, user: User, contract_id: uuid.UUID, week: str, update: str,
    arg: object, request_id: str,
) -> ActionResult:  # fmt: skip
    start = parse_week(week)
    url = settings.database_url
    assert url

    def check() -> None:
        with session_scope(url) as session:
            visible_contract(session=session, user=user, contract_id=contract_id)

    await run_in_threadpool(check)
    client = await temporal.client()
    handle = client.get_workflow_handle(timesheet_workflow_id(str(contract_id), start))
    try:
        # The update id is the caller's request id, scoped to the caller and the action: a retry returns
        # the first result, and nobody's request id can answer for another user's or another action's.
        return await handle.execute_update(
            update, arg, id=f"{update}:{user.id}:{request_id}", result_type=ActionResult
        )
    except Exception as error:
        raise domain_error(error, f"timesheet for the week of {start:%Y-%m-%d}") from None


@router.post("/{week}/approve", response_model=ActionResult, tags=["client"])
async def approve(
    contract_id: uuid.UUID,
    week: str,
    body: ActionBase,
    client: ClientUser,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> ActionResult:
    return await send_update(
        temporal,
        settings,
        client,
        contract_id,
        week,
        "approve",
        Approve(actor=actor(client)),
        body.request_id,
    )


@router.post("/{week}/dispute", response_model=ActionResult, tags=["client"])
async def dispute(
    contract_id: uuid.UUID,
    week: str,
    body: DisputeBody,
    client: ClientUser,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> ActionResult:
    arg = Dispute(actor=actor(client), entry_ids=body.entry_ids, reason=body.reason)
    return await send_update(
        temporal, settings, client, contract_id, week, "dispute_entries", arg, body.request_id
    )


@router.post("/{week}/respond", response_model=ActionResult, tags=["provider"])
async def respond(
    contract_id: uuid.UUID, week: str, body: RespondBody, provider: ProviderUser, settings: SettingsDep,
    temporal: TemporalDep,
) -> ActionResult:  # fmt: skip
    arg = Respond(actor=actor(provider), accept=body.accept, note=body.note)
    return await send_update(temporal, settings, provider, contract_id, week, "respond", arg, body.request_id)


@router.post("/{week}/resolve", response_model=ActionResult, tags=["support"])
async def resolve(
    contract_id: uuid.UUID, week: str, body: ResolveBody, support: SupportUser, settings: SettingsDep,
    temporal: TemporalDep,
) -> ActionResult:  # fmt: skip
    arg = Resolve(actor=actor(support), resolutions=body.resolutions, note=body.note)
    return await send_update(temporal, settings, support, contract_id, week, "resolve", arg, body.request_id)


@router.post("/{week}/extend", response_model=ActionResult, tags=["support"])
async def extend(
    contract_id: uuid.UUID, week: str, body: ExtendBody, support: SupportUser, settings: SettingsDep,
    temporal: TemporalDep,
) -> ActionResult:  # fmt: skip
    arg = ExtendDeadline(actor=actor(support), deadline=body.deadline, until=body.until, reason=body.reason)
    return await send_update(
        temporal, settings, support, contract_id, week, "extend_deadline", arg, body.request_id
    )
