"""Invitations by email and device codes: rows and queries. Secrets are random and stored as sha256."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlmodel import Session, col, select

from domain.accounts import DEVICE_CODE_LIFETIME, INVITATION_LIFETIME, new_user_code
from domain.errors import Conflict, NotFound
from store.accounts import sha256
from store.models import DeviceCode, Invitation, utcnow


def create(
    *, session: Session, email: str, role: str, invited_by: uuid.UUID, offer: dict[str, Any]
) -> tuple[str, Invitation]:
    secret = secrets.token_urlsafe(32)
    row = Invitation(
        token_hash=sha256(secret), email=email, role=role, invited_by=invited_by, offer=offer,
        expires_at=utcnow() + INVITATION_LIFETIME,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return secret, row


def renew(*, session: Session, row: Invitation) -> str:
    """A new link (the old one stops working) and seven more days."""
    secret = secrets.token_urlsafe(32)
    row.token_hash = sha256(secret)
    row.sent_at = utcnow()
    row.expires_at = utcnow() + INVITATION_LIFETIME
    session.add(row)
    session.flush()
    return secret


def by_secret(*, session: Session, secret: str, lock: bool = False) -> Invitation:
    """The pending invitation of a link; an unknown, answered or expired one is refused."""
    query = select(Invitation).where(Invitation.token_hash == sha256(secret or ""))
    row = session.exec(query.with_for_update() if lock else query).first()
    if row is None or len(secret or "") > 100:
        raise NotFound("this invitation link is not known: check that it was copied whole", "link_unknown")
    if row.state != "pending":
        raise Conflict(f"this invitation was {row.state} already", "invitation_closed")
    if row.expires_at <= utcnow():
        raise Conflict("this invitation has expired: ask the sender to send it again", "link_expired")
    return row


def sent_by(*, session: Session, user_id: uuid.UUID, limit: int = 100) -> list[Invitation]:
    query = select(Invitation).where(Invitation.invited_by == user_id)
    return list(session.exec(query.order_by(col(Invitation.created_at).desc()).limit(limit)).all())


def state_of(row: Invitation) -> str:
    return "expired" if row.state == "pending" and row.expires_at <= utcnow() else row.state


# --- device codes --------------------------------------------------------------------------------------


def new_device_code(*, session: Session, machine: str) -> tuple[str, DeviceCode]:
    for _ in range(5):  # a user code collides once in ~10^10; try again then
        code = new_user_code()
        if session.exec(select(DeviceCode).where(DeviceCode.user_code == code)).first() is None:
            break
    secret = secrets.token_urlsafe(32)
    row = DeviceCode(device_hash=sha256(secret), user_code=code, machine=machine[:100],
                     expires_at=utcnow() + DEVICE_CODE_LIFETIME)  # fmt: skip
    session.add(row)
    session.flush()
    return secret, row


def device_by_user_code(*, session: Session, user_code: str, lock: bool = False) -> DeviceCode:
    query = select(DeviceCode).where(DeviceCode.user_code == user_code)
    row = session.exec(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound("no such device code: check the code the agent printed", "device_code_unknown")
    return row


def device_by_secret(*, session: Session, secret: str) -> DeviceCode:
    row = session.exec(
        select(DeviceCode).where(DeviceCode.device_hash == sha256(secret or "")).with_for_update()
    ).first()
    if row is None:
        raise NotFound("no such device code: start `workproof-agent login` again", "device_code_unknown")
    return row
