"""The audit log: who did what to which object; support reads are written here too."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from store.models import AuditLog, User


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
