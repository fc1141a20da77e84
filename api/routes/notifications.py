"""One's own notifications (the inbox as JSON) and, for admins, what waits undelivered."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query

from api.deps import AdminUser, CurrentUser, SessionDep
from api.schemas import MailSenderState, MarkedRead, NotificationBacklog, NotificationPublic
from api.services import notifications as service
from store import notify as repo

router = APIRouter(prefix="/v1", tags=["notifications"])


@router.get("/me/notifications", response_model=list[NotificationPublic])
def mine(user: CurrentUser, session: SessionDep, unread: bool = Query(False)) -> list[NotificationPublic]:
    """The caller's inbox, newest first (at most 100)."""
    return [NotificationPublic(**asdict(item)) for item in service.inbox(session, user, unread_only=unread)]


@router.post("/me/notifications/read", response_model=MarkedRead)
def read_all(user: CurrentUser, session: SessionDep) -> MarkedRead:
    """Mark every item of the caller's inbox read."""
    return MarkedRead(marked=repo.mark_all_read(session, user.id))


@router.get("/admin/notifications", response_model=NotificationBacklog, tags=["admin"])
def backlog(_: AdminUser, session: SessionDep) -> NotificationBacklog:
    """Undelivered mails, webhook deliveries and notifications not yet fanned out, per kind and age;
    the mail sender's state."""
    return NotificationBacklog.model_validate(
        {"backlog": repo.backlog(session), "mail_sender": MailSenderState(**repo.mail_state(session))}
    )
