"""One's own notifications (the inbox as JSON), one's webhook endpoints, and, for admins, what waits
undelivered."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from fastapi import APIRouter, Query, status

from api.deps import AdminUser, CurrentUser, SessionDep, SettingsDep
from api.schemas import (
    DeliveryPublic,
    MailSenderState,
    MarkedRead,
    NotificationBacklog,
    NotificationPublic,
    WebhookCreate,
    WebhookIssued,
    WebhookPublic,
)
from api.services import notifications as service
from store import notify as repo
from store.models import Webhook, WebhookDelivery

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


def _public(hook: Webhook, deliveries: list[WebhookDelivery]) -> dict[str, object]:
    return {
        "id": hook.id, "url": hook.url, "kinds": hook.kinds, "deployment": hook.owner_id is None,
        "enabled": hook.enabled, "consecutive_failures": hook.consecutive_failures,
        "disabled_reason": hook.disabled_reason, "created_at": hook.created_at,
        "deliveries": [DeliveryPublic.model_validate(d, from_attributes=True) for d in deliveries],
    }  # fmt: skip


@router.get("/me/webhooks", response_model=list[WebhookPublic])
def webhooks(user: CurrentUser, session: SessionDep) -> list[WebhookPublic]:
    """The caller's webhook endpoints (an admin's: also the deployment's), each with its recent deliveries."""
    return [WebhookPublic.model_validate(_public(h, d)) for h, d in service.webhooks(session, user)]


@router.post("/me/webhooks", response_model=WebhookIssued, status_code=status.HTTP_201_CREATED)
def register(
    body: WebhookCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> WebhookIssued:
    """Register an endpoint; the answer carries its signing secret, shown only this once (README,
    "Verifying a webhook delivery")."""
    hook = service.register_webhook(session, settings, user, url=body.url, kinds=body.kinds,
                                    deployment=body.deployment)  # fmt: skip
    return WebhookIssued.model_validate({**_public(hook, []), "secret": hook.secret})


@router.delete("/me/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(webhook_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> None:
    """Remove an endpoint and its delivery log; nothing more is sent to it."""
    service.delete_webhook(session, user, webhook_id)
