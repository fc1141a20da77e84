"""The audit log: who did what to which object; support reads are written here too."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from store.models import AuditLog, User


def audit_support_read(*, session: Session, user: User, subject_type: str, subject_id: str) -> None:
    """Support staff read every contract; each read is recorded. Other roles' reads are not."""
    if user.role == "support":
        audit(
            session=session,
            actor=user,
            action="support.read",
            subject_type=subject_type,
            subject_id=subject_id,
        )


def audit(
    *,
    session: Session,
    actor: User | None,
    action: str,
    subject_type: str,
    subject_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            actor_id=actor.id if actor else None,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            detail=detail or {},
        )
    )
