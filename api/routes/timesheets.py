"""Timesheets: the week as it stands (live before the edit cutoff, the frozen snapshot after), and the
client's, provider's and support's actions (``api/services/timesheets.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import ClientUser, CurrentUser, ProviderUser, ServicesDep, SessionDep, SettingsDep, SupportUser
from api.schemas import TimesheetPublic, WeekSummary
from api.services import timesheets as service
from domain.calendar import parse_week
from domain.messages import ActionResult, Resolution
from domain.text import MAX_REASON_CHARS

router = APIRouter(prefix="/v1/contracts/{contract_id}/timesheets", tags=["timesheets"])


class ActionBase(BaseModel):
    request_id: str = Field(
        min_length=8, max_length=100, description="Your idempotency key; retry with the same one"
    )


class DisputeBody(ActionBase):
    entry_ids: list[str] = Field(min_length=1, max_length=1000)
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class RespondBody(ActionBase):
    accept: bool
    note: str = Field(default="", max_length=MAX_REASON_CHARS)


class ResolveBody(ActionBase):
    resolutions: dict[str, Resolution] = Field(min_length=1)
    note: str = Field(default="", max_length=MAX_REASON_CHARS)


class PayoutDecisionBody(ActionBase):
    approve: bool
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class ExtendBody(ActionBase):
    deadline: str = Field(pattern="^(review|response)$")
    until: datetime
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


@router.get("", response_model=list[WeekSummary])
def list_weeks(
    contract_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    limit: int = Query(52, ge=1, le=520),
) -> list[WeekSummary]:
    """The contract's weeks, newest first: the running week (status ``open``, or ``freezing`` between the
    week's end and its edit cutoff) computed live, then the frozen ones."""
    return service.list_weeks(session, settings, user, contract_id, limit)


@router.get("/{week}", response_model=TimesheetPublic)
async def get_week(
    contract_id: uuid.UUID, week: str, user: CurrentUser, services: ServicesDep
) -> TimesheetPublic:
    """The week: every entry with billable and guaranteed minutes and, if not guaranteed, why."""
    return await service.week_view(services, user, contract_id, parse_week(week))


@router.post("/{week}/approve", response_model=ActionResult, tags=["client"])
async def approve(
    contract_id: uuid.UUID, week: str, body: ActionBase, client: ClientUser, services: ServicesDep
) -> ActionResult:
    return await service.approve(services, client, contract_id, parse_week(week), body.request_id)


@router.post("/{week}/dispute", response_model=ActionResult, tags=["client"])
async def dispute(
    contract_id: uuid.UUID, week: str, body: DisputeBody, client: ClientUser, services: ServicesDep
) -> ActionResult:
    return await service.dispute(
        services, client, contract_id, parse_week(week), body.entry_ids, body.reason, body.request_id
    )


@router.post("/{week}/respond", response_model=ActionResult, tags=["provider"])
async def respond(
    contract_id: uuid.UUID, week: str, body: RespondBody, provider: ProviderUser, services: ServicesDep
) -> ActionResult:
    return await service.respond(
        services, provider, contract_id, parse_week(week), body.accept, body.note, body.request_id
    )


@router.post("/{week}/resolve", response_model=ActionResult, tags=["support"])
async def resolve(
    contract_id: uuid.UUID, week: str, body: ResolveBody, support: SupportUser, services: ServicesDep
) -> ActionResult:
    return await service.resolve(
        services, support, contract_id, parse_week(week), dict(body.resolutions), body.note, body.request_id
    )


@router.post("/{week}/extend", response_model=ActionResult, tags=["support"])
async def extend(
    contract_id: uuid.UUID, week: str, body: ExtendBody, support: SupportUser, services: ServicesDep
) -> ActionResult:
    return await service.extend(
        services,
        support,
        contract_id,
        parse_week(week),
        body.deadline,
        body.until,
        body.reason,
        body.request_id,
    )


@router.post("/{week}/payout", response_model=ActionResult, tags=["support"])
async def decide_payout(
    contract_id: uuid.UUID, week: str, body: PayoutDecisionBody, support: SupportUser, services: ServicesDep
) -> ActionResult:
    """Approve or refuse a guarantee payout that waits for support (above the review threshold); support's
    silence until the deadline pays it."""
    return await service.decide_payout(
        services, support, contract_id, parse_week(week), body.approve, body.reason, body.request_id
    )
