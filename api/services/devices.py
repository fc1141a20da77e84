"""The agent's sign-in by device approval (as ``gh auth login``): the agent asks for a code, the person
approves it on the web, and the agent's next poll gets a device token named after the machine. A code
lasts 15 minutes, is approved once, and gives one token, once."""

from __future__ import annotations

from sqlmodel import Session

from api.schemas import DeviceCodeIssued, DeviceTokenIssued, UserPublic
from api.services import Services
from domain.accounts import DEVICE_CODE_LIFETIME, DEVICE_POLL_SECONDS, normalise_user_code
from domain.errors import Conflict, NotFound
from store import invitations as repo
from store import notify
from store.audit import audit
from store.models import DeviceCode, User, utcnow
from store.users import issue_token


def start(session: Session, services: Services, machine: str) -> DeviceCodeIssued:
    secret, row = repo.new_device_code(session=session, machine=machine.strip() or "agent")
    return DeviceCodeIssued(
        device_code=secret, user_code=row.user_code, verification_uri=f"{services.settings.base_url}/device",
        expires_in=int(DEVICE_CODE_LIFETIME.total_seconds()), interval=DEVICE_POLL_SECONDS,
    )  # fmt: skip


def pending(session: Session, user_code: str) -> DeviceCode:
    """The code a person typed, while it may still be approved."""
    code = normalise_user_code(user_code)
    if code is None:
        raise NotFound("that is not a device code: it looks like BCDF-GHJK", "device_code_unknown")
    row = repo.device_by_user_code(session=session, user_code=code, lock=True)
    if row.approved_at is not None or row.spent_at is not None:
        raise Conflict("this device code was approved already: each code works once", "device_code_used")
    if row.expires_at <= utcnow():
        raise Conflict(
            "this device code has expired: start `workproof-agent login` again", "device_code_expired"
        )
    return row


def approve(session: Session, user: User, user_code: str) -> DeviceCode:
    row = pending(session, user_code)
    row.approved_by, row.approved_at = user.id, utcnow()
    session.add(row)
    audit(session=session, actor=user, action="device.approve", subject_type="device_code", subject_id=str(row.id),
          detail={"machine": row.machine})  # fmt: skip
    notify.record(session, kind="device_approved", recipient_id=user.id, dedupe_key=f"device_approved:{row.id}",
                  payload={"machine": row.machine})  # fmt: skip
    return row


def poll(session: Session, services: Services, device_code: str) -> DeviceTokenIssued:
    """The device token, once the code is approved; ``device_pending`` until then."""
    row = repo.device_by_secret(session=session, secret=device_code)
    if row.spent_at is not None:
        raise Conflict(
            "this device code was used already: start `workproof-agent login` again", "device_code_used"
        )
    if row.approved_at is None:
        if row.expires_at <= utcnow():
            raise Conflict("the code expired before it was approved: start `workproof-agent login` again",
                           "device_code_expired")  # fmt: skip
        raise Conflict(f"not approved yet: poll again in {DEVICE_POLL_SECONDS} s", "device_pending")
    user = session.get(User, row.approved_by)
    if user is None or user.disabled_at is not None:
        raise Conflict("the account that approved this code is disabled", "device_code_used")
    secret, token = issue_token(session=session, user=user, kind="device", name=row.machine,
                                days=services.settings.token_days)  # fmt: skip
    row.token_id, row.spent_at = token.id, utcnow()
    session.add(row)
    audit(session=session, actor=user, action="device.token", subject_type="token", subject_id=str(token.id))
    return DeviceTokenIssued(token=secret, user=UserPublic.model_validate(user, from_attributes=True))
