"""The week as a viewer sees it, and every action on a timesheet. Each action is an update of the week's
workflow whose validator refuses a late, repeated or invalid action before anything is written; the
caller's request id, scoped to the caller and the action, is the update id, so a retried request returns
the first result and nobody's request id can answer for another user's or another action's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlmodel import Session
from temporalio.workflow import UpdateMethodMultiParam

from api.schemas import TimesheetPublic, WeekSummary
from api.services import Services
from api.temporal import domain_error
from domain.calendar import edit_cutoff, iso_week_name, review_deadline, week_start
from domain.messages import (
    ActionResult,
    Actor,
    Approve,
    DecidePayout,
    Dispute,
    ExtendDeadline,
    Resolution,
    Resolve,
    Respond,
    TimesheetView,
)
from domain.timesheet import Timesheet
from store.audit import audit, audit_support_read
from store.captures import list_captures, live_timesheet
from store.contracts import visible_contract
from store.models import Capture, Contract, User, utcnow
from store.security import secured
from store.settings import Settings
from store.timesheets import snapshot_of, snapshots, users_by_id, weeks_in_review
from workflows.handles import update_name
from workflows.timesheet import TimesheetWorkflow, timesheet_workflow_id

P = TypeVar("P")


def actor(user: User) -> Actor:
    return Actor.model_validate({"user_id": str(user.id), "role": user.role})


def load_week(
    session: Session, settings: Settings, user: User, contract_id: uuid.UUID, week: datetime
) -> TimesheetPublic:
    """The week from the database: the frozen snapshot if there is one, else computed live."""
    contract = visible_contract(session=session, user=user, contract_id=contract_id)
    start = week_start(week)
    snapshot = snapshot_of(session=session, contract_id=contract.id, week=start)
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
    held = secured(session=session, contract_id=contract.id, week_start=start)
    return TimesheetPublic(
        **body.model_dump(), iso_week=iso_week_name(start), status=status, frozen=frozen, snapshot_hash=digest,
        edit_cutoff=edit_cutoff(start, policy), review_deadline=review_deadline(start, policy),
        held_cents=held.held_cents, credit_cents=held.credit_cents, secured_cents=held.secured_cents,
    )  # fmt: skip


async def with_workflow_view(services: Services, sheet: TimesheetPublic) -> TimesheetPublic:
    """Add what only the workflow knows (dispute, deadlines extended, money moved); best effort: the
    stored week stands when the workflow engine does not answer."""
    if not sheet.frozen:
        return sheet
    try:
        client = await services.temporal.client()
        handle = client.get_workflow_handle(timesheet_workflow_id(sheet.contract_id, sheet.week_start))
        view: TimesheetView = await handle.query(TimesheetWorkflow.view)
    except Exception:
        return sheet
    return sheet.model_copy(
        update={
            "status": view.status, "review_deadline": view.review_deadline, "dispute": view.dispute,
            "owed_cents": view.owed_cents, "charged_cents": view.charged_cents,
            "guarantee_paid_cents": view.guarantee_paid_cents, "released_cents": view.released_cents,
            "history": view.history, "payout_review": view.payout_review,
        }
    )  # fmt: skip


async def week_view(
    services: Services, user: User, contract_id: uuid.UUID, week: datetime
) -> TimesheetPublic:
    """The week: every entry with billable and guaranteed minutes and, if not guaranteed, why."""
    sheet = await services.db(lambda session: load_week(session, services.settings, user, contract_id, week))
    return await with_workflow_view(services, sheet)


def list_weeks(
    session: Session, settings: Settings, user: User, contract_id: uuid.UUID, limit: int
) -> list[WeekSummary]:
    """The contract's weeks, newest first: the running week (and last week until its freeze), computed
    live, then every frozen week."""
    contract = visible_contract(session=session, user=user, contract_id=contract_id)
    frozen = snapshots(session=session, contract_id=contract.id, limit=limit)
    weeks = [
        WeekSummary(
            week_start=r.week_start,
            iso_week=iso_week_name(r.week_start),
            status=r.status,
            billable_minutes=r.billable_minutes,
            amount_cents=r.amount_cents,
            guaranteed_cents=r.guaranteed_cents,
        )
        for r in frozen
    ]
    if contract.accepted_at is None:
        return weeks
    now, seen = utcnow(), {week_start(r.week_start) for r in frozen}
    first = week_start(contract.accepted_at)
    running = []
    for start in (week_start(now), week_start(now) - timedelta(days=7)):
        ended_before = contract.ended_at is not None and contract.ended_at <= start
        if start in seen or start < first or ended_before:
            continue
        sheet = live_timesheet(session=session, contract=contract, week=start)
        running.append(
            WeekSummary(
                week_start=start,
                iso_week=iso_week_name(start),
                status="open" if now < edit_cutoff(start, settings.policy) else "freezing",
                billable_minutes=sheet.billable_minutes,
                amount_cents=sheet.amount_cents,
                guaranteed_cents=sheet.guaranteed_cents,
            )
        )
    return (running + weeks)[:limit]


async def _update(
    services: Services, user: User, contract_id: uuid.UUID, week: datetime,
    update: UpdateMethodMultiParam[[Any, P], ActionResult], arg: P, request_id: str,
) -> ActionResult:  # fmt: skip
    start = week_start(week)
    await services.db(lambda session: visible_contract(session=session, user=user, contract_id=contract_id))
    client = await services.temporal.client()
    handle = client.get_workflow_handle(timesheet_workflow_id(str(contract_id), start))
    try:
        return await handle.execute_update(update, arg, id=f"{update_name(update)}:{user.id}:{request_id}")
    except Exception as error:
        raise domain_error(error, f"timesheet for the week of {start:%Y-%m-%d}") from None


async def approve(
    services: Services, client: User, contract_id: uuid.UUID, week: datetime, request_id: str
) -> ActionResult:
    return await _update(
        services,
        client,
        contract_id,
        week,
        TimesheetWorkflow.approve,
        Approve(actor=actor(client)),
        request_id,
    )


async def dispute(
    services: Services, client: User, contract_id: uuid.UUID, week: datetime, entry_ids: list[str], reason: str,
    request_id: str,
) -> ActionResult:  # fmt: skip
    arg = Dispute(actor=actor(client), entry_ids=entry_ids, reason=reason)
    return await _update(
        services, client, contract_id, week, TimesheetWorkflow.dispute_entries, arg, request_id
    )


async def respond(
    services: Services, provider: User, contract_id: uuid.UUID, week: datetime, accept: bool, note: str,
    request_id: str,
) -> ActionResult:  # fmt: skip
    arg = Respond(actor=actor(provider), accept=accept, note=note)
    return await _update(services, provider, contract_id, week, TimesheetWorkflow.respond, arg, request_id)


async def resolve(
    services: Services, support: User, contract_id: uuid.UUID, week: datetime,
    resolutions: dict[str, Resolution], note: str, request_id: str,
) -> ActionResult:  # fmt: skip
    arg = Resolve(actor=actor(support), resolutions=resolutions, note=note)
    return await _update(services, support, contract_id, week, TimesheetWorkflow.resolve, arg, request_id)


async def decide_payout(
    services: Services, support: User, contract_id: uuid.UUID, week: datetime, approve: bool, reason: str,
    request_id: str,
) -> ActionResult:  # fmt: skip
    """Support approves or refuses a guarantee payout above the review threshold (audited in the
    workflow's history and the audit log)."""
    arg = DecidePayout(actor=actor(support), approve=approve, reason=reason)
    result = await _update(
        services, support, contract_id, week, TimesheetWorkflow.decide_payout, arg, request_id
    )
    await services.db(lambda session: audit(
        session=session, actor=support, action="payout.approve" if approve else "payout.refuse",
        subject_type="timesheet", subject_id=f"{contract_id}:{week_start(week):%Y-%m-%d}", detail={"reason": reason},
    ))  # fmt: skip
    return result


async def extend(
    services: Services, support: User, contract_id: uuid.UUID, week: datetime, deadline: str, until: datetime,
    reason: str, request_id: str,
) -> ActionResult:  # fmt: skip
    arg = ExtendDeadline(actor=actor(support), deadline=deadline, until=until, reason=reason)
    return await _update(
        services, support, contract_id, week, TimesheetWorkflow.extend_deadline, arg, request_id
    )


@dataclass
class WeekPage:
    """What the week page shows: the week, its contract, its captures and the two parties."""

    sheet: TimesheetPublic
    contract: Contract
    captures: list[Capture]
    client: User | None
    provider: User | None


async def week_page(services: Services, user: User, contract_id: uuid.UUID, week: datetime) -> WeekPage:
    def load(session: Session) -> WeekPage:
        sheet = load_week(session, services.settings, user, contract_id, week)
        contract = visible_contract(session=session, user=user, contract_id=contract_id)
        captures = list_captures(session=session, contract_id=contract.id, week=week_start(week))
        parties = users_by_id(session=session, ids=[contract.client_id, contract.provider_id])
        return WeekPage(
            sheet, contract, captures, parties.get(contract.client_id), parties.get(contract.provider_id)
        )

    page = await services.db(load)
    page.sheet = await with_workflow_view(services, page.sheet)
    return page


def weeks_waiting(
    session: Session, settings: Settings, user: User, contract_id: uuid.UUID
) -> list[TimesheetPublic]:
    """The contract's weeks that wait for a review, an answer or support, as ``user`` sees them."""
    return [
        load_week(session, settings, user, contract_id, week)
        for week in weeks_in_review(session=session, contract_id=contract_id)
    ]
