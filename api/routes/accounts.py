"""Accounts over the API: invitations (a client's to a provider with an offer, an admin's to staff), the
agent's sign-in by device approval, and the caller's own tokens and devices
(``api/services/invitations.py``, ``devices.py``, ``users.py``). Signing in as a person (password,
second factor) is a web page; the API takes bearer tokens."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from api.deps import AddressDep, CurrentUser, ServicesDep, SessionDep
from api.schemas import (
    DeviceApprove,
    DeviceCodeIssued,
    DevicePoll,
    DeviceStart,
    DeviceTokenIssued,
    InvitationCreate,
    InvitationPublic,
    InvitationSent,
    SessionPublic,
)
from api.services import accounts, devices
from api.services import invitations as service
from api.services import users as user_service

router = APIRouter(prefix="/v1", tags=["accounts"])


@router.post("/invitations", response_model=InvitationSent, status_code=status.HTTP_201_CREATED)
def invite(
    body: InvitationCreate, session: SessionDep, user: CurrentUser, services: ServicesDep
) -> InvitationSent:
    """A client invites a provider by email with an hourly offer (an address that is a provider's
    already gets the offer as a contract: ``contract_id``); an admin invites support or admin staff.
    The mail carries a single-use link valid 7 days."""
    made = service.invite(session, services, user, email=body.email, role=body.role, offer=body.offer)
    if isinstance(made, uuid.UUID):
        return InvitationSent(invitation=None, contract_id=made)
    return InvitationSent(invitation=made, contract_id=None)


@router.get("/invitations", response_model=list[InvitationPublic])
def sent(session: SessionDep, user: CurrentUser) -> list[InvitationPublic]:
    """The invitations you sent, newest first, with their state."""
    return service.sent(session, user)


@router.post("/invitations/{invitation_id}/withdraw", response_model=InvitationPublic)
def withdraw(invitation_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> InvitationPublic:
    return service.withdraw(session, user, invitation_id)


@router.post("/invitations/{invitation_id}/resend", response_model=InvitationPublic)
def resend(
    invitation_id: uuid.UUID, session: SessionDep, user: CurrentUser, services: ServicesDep
) -> InvitationPublic:
    """Mail it again with a new link (the old one stops working), valid 7 more days."""
    return service.resend(session, services, user, invitation_id)


# --- device approval -------------------------------------------------------------------------------------


@router.post(
    "/device/code", response_model=DeviceCodeIssued, status_code=status.HTTP_201_CREATED, tags=["agent"]
)
async def device_code(body: DeviceStart, services: ServicesDep, address: AddressDep) -> DeviceCodeIssued:
    """No credentials: a device code for the agent to poll with, and the short code a person approves
    at ``verification_uri``. Valid 15 minutes."""
    s = services.settings
    await accounts.throttle(services, (f"device:address:{address}", s.login_attempts_per_minute, 60))
    return await services.db(lambda session: devices.start(session, services, body.machine))


@router.post("/device/token", response_model=DeviceTokenIssued, tags=["agent"])
def device_token(body: DevicePoll, session: SessionDep, services: ServicesDep) -> DeviceTokenIssued:
    """Poll: ``device_pending`` (409) until the code is approved, then the device token, once."""
    return devices.poll(session, services, body.device_code)


@router.post("/device/approve", status_code=status.HTTP_204_NO_CONTENT, tags=["agent"])
async def device_approve(body: DeviceApprove, user: CurrentUser, services: ServicesDep) -> None:
    """Approve a device code as the caller: the agent's next poll gets a token of this account."""
    await accounts.throttle(services, (f"device-approve:account:{user.id}", 20, 60))
    await services.db(lambda session: devices.approve(session, user, body.user_code))


# --- the caller's own tokens -------------------------------------------------------------------------------


@router.get("/me/tokens", response_model=list[SessionPublic])
def my_tokens(session: SessionDep, user: CurrentUser) -> list[SessionPublic]:
    """Your live API tokens, device tokens and web sessions, with their last use."""
    rows = accounts.tokens_of(session, user.id) + accounts.sessions_of(session, user.id)
    return [SessionPublic.model_validate(row, from_attributes=True) for row in rows]


@router.delete("/me/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_mine(token_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> None:
    user_service.end_session(session, user, token_id)
