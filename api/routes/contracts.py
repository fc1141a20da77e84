"""Contracts: the client's offer, the provider's acceptance (which starts the contract workflow), Work
View, the weekly limit, and the end (``api/services/contracts.py``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Header, Query, status
from pydantic import BaseModel, Field

from api.deps import ClientUser, CurrentUser, ProviderUser, ServicesDep, SessionDep, SettingsDep
from api.schemas import (
    ContractCreate,
    ContractPublic,
    Page,
    WeeklyLimitUpdate,
    WorkViewChangedPublic,
    WorkViewToggle,
)
from api.services import contracts as service
from domain.calendar import as_utc
from domain.messages import ContractRecord
from domain.text import MAX_REASON_CHARS
from store import contracts as repo
from store.audit import audit_support_read

router = APIRouter(prefix="/v1/contracts", tags=["contracts"])


class EndBody(BaseModel):
    reason: str = Field(default="", max_length=MAX_REASON_CHARS, description="Said to both parties")


@router.post("", response_model=ContractPublic, status_code=status.HTTP_201_CREATED, tags=["client"])
def create(
    body: ContractCreate, session: SessionDep, settings: SettingsDep, client: ClientUser
) -> ContractPublic:
    """An hourly offer to a provider (by id or email address); it becomes active when the provider
    accepts it. To invite someone who has no account yet, use ``POST /v1/invitations``."""
    return service.offer(
        session, settings, client, provider_id=service.provider_named(session, body.provider_id, body.provider_email),
        title=body.title, rate_cents=body.rate_cents,
        currency=body.currency, weekly_limit_hours=body.weekly_limit_hours, manual_allowed=body.manual_allowed,
        work_view=body.work_view,
    )  # fmt: skip


@router.get("", response_model=Page[ContractPublic])
def list_all(
    session: SessionDep,
    user: CurrentUser,
    status_filter: str | None = Query(None, alias="status", pattern="^(offered|active|ended|declined)$"),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=100_000),  # as the dispute queue: past this, narrow the query
) -> Page[ContractPublic]:
    rows, total = repo.list_contracts(
        session=session, user=user, status=status_filter, limit=limit, offset=offset
    )
    return Page(items=[service.public(session, c) for c in rows], total=total, limit=limit, offset=offset)


@router.get("/{contract_id}", response_model=ContractPublic)
def get_one(contract_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> ContractPublic:
    contract = repo.visible_contract(session=session, user=user, contract_id=contract_id)
    audit_support_read(session=session, user=user, subject_type="contract", subject_id=str(contract_id))
    return service.public(session, contract)


@router.post("/{contract_id}/accept", response_model=ContractPublic, tags=["provider"])
async def accept(contract_id: uuid.UUID, provider: ProviderUser, services: ServicesDep) -> ContractPublic:
    """Accept an offer: the contract becomes active and its workflow starts. Safe to retry."""
    return await service.accept(services, provider, contract_id)


@router.post("/{contract_id}/decline", response_model=ContractPublic, tags=["provider"])
def decline(contract_id: uuid.UUID, provider: ProviderUser, session: SessionDep) -> ContractPublic:
    """Decline an open offer made to you."""
    return service.close_offer(session, provider, contract_id, "declined")


@router.post("/{contract_id}/withdraw", response_model=ContractPublic, tags=["client"])
def withdraw(contract_id: uuid.UUID, client: ClientUser, session: SessionDep) -> ContractPublic:
    """Withdraw an offer you made that is still open."""
    return service.close_offer(session, client, contract_id, "withdrawn")


@router.post("/{contract_id}/work-view", response_model=WorkViewChangedPublic)
async def toggle_work_view(
    contract_id: uuid.UUID, body: WorkViewToggle, user: CurrentUser, services: ServicesDep,
    x_request_id: str | None = Header(None, max_length=100),
) -> WorkViewChangedPublic:  # fmt: skip
    """Turn Work View on or off from the next slot (either party)."""
    result = await service.set_work_view(services, user, contract_id, body.on, x_request_id)
    return WorkViewChangedPublic(on=result.on, effective_at=as_utc(result.effective_at))


@router.post("/{contract_id}/weekly-limit", response_model=ContractRecord, tags=["client"])
async def change_limit(
    contract_id: uuid.UUID, body: WeeklyLimitUpdate, client: ClientUser, services: ServicesDep,
    x_request_id: str | None = Header(None, max_length=100),
) -> ContractRecord:  # fmt: skip
    """Change the weekly hour limit from next week (Monday 00:00 UTC)."""
    return await service.change_weekly_limit(
        services, client, contract_id, body.weekly_limit_hours, x_request_id
    )


@router.post("/{contract_id}/end", response_model=ContractRecord)
async def end(
    contract_id: uuid.UUID, user: CurrentUser, services: ServicesDep,
    x_request_id: str | None = Header(None, max_length=100), body: EndBody | None = None,
) -> ContractRecord:  # fmt: skip
    """End the contract now, with a reason both parties see; its last week is still submitted, reviewed
    and settled."""
    return await service.end(services, user, contract_id, x_request_id, body.reason if body else "")
