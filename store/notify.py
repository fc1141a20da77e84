"""Notifications in the database: recording one (once per dedupe key), the inbox, email preferences,
webhook endpoints and their deliveries, and what operators see (queues by kind and age). The fan-out
and the senders that use these live in api/services/notifications.py. docs/design.md, "Notifications"."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select

from store.mail import wake
from store.models import Notification, NotificationPref, OutboxMail, User, Webhook, WebhookDelivery, utcnow


def record(
    session: Session, *, kind: str, recipient_id: uuid.UUID, dedupe_key: str, payload: dict[str, Any],
    contract_id: uuid.UUID | None = None, week_start: datetime | None = None,
) -> bool:  # fmt: skip
    """One notification for one person in the caller's transaction; False when its key exists already."""
    statement = (
        insert(Notification)
        .values(
            id=uuid.uuid4(),
            dedupe_key=f"{dedupe_key}:{recipient_id}"[:200],
            kind=kind,
            recipient_id=recipient_id,
            contract_id=contract_id,
            week_start=week_start,
            payload=payload,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    new = bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]
    if new:
        wake(session)
    return new


def record_for_admins(session: Session, *, kind: str, dedupe_key: str, payload: dict[str, Any]) -> None:
    admins = session.exec(select(User.id).where(User.role == "admin", col(User.disabled_at).is_(None))).all()
    for admin_id in admins:
        record(session, kind=kind, recipient_id=admin_id, dedupe_key=dedupe_key, payload=payload)


# --- the inbox ------------------------------------------------------------------------------------------


def inbox(
    session: Session, user_id: uuid.UUID, *, unread_only: bool = False, limit: int = 100
) -> list[Notification]:
    query = select(Notification).where(Notification.recipient_id == user_id)
    if unread_only:
        query = query.where(col(Notification.read_at).is_(None))
    return list(session.exec(query.order_by(col(Notification.created_at).desc()).limit(limit)).all())


def unread_count(session: Session, user_id: uuid.UUID) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(Notification)
            .where(Notification.recipient_id == user_id, col(Notification.read_at).is_(None))
        ).one()
    )


def item(session: Session, user_id: uuid.UUID, notification_id: uuid.UUID) -> Notification | None:
    row = session.get(Notification, notification_id)
    return row if row is not None and row.recipient_id == user_id else None


def mark_read(session: Session, user_id: uuid.UUID, notification_id: uuid.UUID, read: bool = True) -> bool:
    result = session.execute(
        update(Notification)
        .where(col(Notification.id) == notification_id, col(Notification.recipient_id) == user_id)
        .values(read_at=utcnow() if read else None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_all_read(session: Session, user_id: uuid.UUID) -> int:
    result = session.execute(
        update(Notification)
        .where(col(Notification.recipient_id) == user_id, col(Notification.read_at).is_(None))
        .values(read_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- email preferences ----------------------------------------------------------------------------------


def choices(session: Session, user_id: uuid.UUID) -> dict[str, bool]:
    rows = session.exec(select(NotificationPref).where(NotificationPref.user_id == user_id)).all()
    return {row.kind: row.email for row in rows}


def choices_of(session: Session, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, bool]]:
    found: dict[uuid.UUID, dict[str, bool]] = {u: {} for u in user_ids}
    if user_ids:
        rows = session.exec(select(NotificationPref).where(col(NotificationPref.user_id).in_(user_ids))).all()
        for row in rows:
            found[row.user_id][row.kind] = row.email
    return found


def set_choices(session: Session, user_id: uuid.UUID, wanted: dict[str, bool]) -> None:
    for kind, email in wanted.items():
        session.execute(
            insert(NotificationPref)
            .values(user_id=user_id, kind=kind, email=email)
            .on_conflict_do_update(index_elements=["user_id", "kind"], set_={"email": email})
        )


# --- webhooks -------------------------------------------------------------------------------------------


def webhooks_of(session: Session, owner_id: uuid.UUID | None) -> list[Webhook]:
    query = select(Webhook).where(
        col(Webhook.owner_id).is_(None) if owner_id is None else Webhook.owner_id == owner_id
    )
    return list(session.exec(query.order_by(col(Webhook.created_at))).all())


def matching_webhooks(session: Session, recipient_ids: list[uuid.UUID]) -> list[Webhook]:
    """Enabled endpoints of these people and of the deployment (filtered by kind by the caller)."""
    query = select(Webhook).where(
        col(Webhook.enabled).is_(True),
        (col(Webhook.owner_id).is_(None)) | (col(Webhook.owner_id).in_(recipient_ids)),
    )
    return list(session.exec(query).all())


def deliveries(session: Session, webhook_id: uuid.UUID, limit: int = 50) -> list[WebhookDelivery]:
    return list(
        session.exec(
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(col(WebhookDelivery.created_at).desc())
            .limit(limit)
        ).all()
    )


def add_delivery(
    session: Session, *, delivery_id: uuid.UUID, webhook_id: uuid.UUID, notification_id: uuid.UUID, kind: str,
    body: str,
) -> None:  # fmt: skip
    session.execute(
        insert(WebhookDelivery)
        .values(
            id=delivery_id,
            webhook_id=webhook_id,
            notification_id=notification_id,
            kind=kind,
            body=body,
            created_at=utcnow(),
            next_attempt_at=utcnow(),
            attempts=0,
            last_error="",
        )
        .on_conflict_do_nothing(constraint="uq_webhook_delivery")
    )


# --- what operators see ---------------------------------------------------------------------------------

_BACKLOG = """
SELECT 'mail' AS channel, kind, count(*) AS waiting, count(*) FILTER (WHERE attempts > 0) AS failing,
       min(created_at) AS oldest, max(last_error) FILTER (WHERE last_error <> '') AS last_error
  FROM mail_outbox WHERE sent_at IS NULL GROUP BY kind
UNION ALL
SELECT 'webhook', kind, count(*) FILTER (WHERE failed_at IS NULL), count(*) FILTER (WHERE attempts > 0),
       min(created_at), max(last_error) FILTER (WHERE last_error <> '')
  FROM webhook_deliveries WHERE delivered_at IS NULL GROUP BY kind
UNION ALL
SELECT 'fan-out', kind, count(*), 0, min(created_at), NULL
  FROM notifications WHERE sent_at IS NULL GROUP BY kind
ORDER BY 1, 2
"""


def backlog(session: Session) -> list[dict[str, Any]]:
    """Per channel and kind: how many wait, how many have failed at least once, the oldest's age."""
    now = utcnow()
    rows = session.execute(text(_BACKLOG)).all()
    return [
        {
            "channel": r.channel, "kind": r.kind, "waiting": int(r.waiting), "failing": int(r.failing),
            "oldest": r.oldest, "oldest_age_s": round((now - r.oldest).total_seconds(), 1) if r.oldest else None,
            "last_error": r.last_error or "",
        }
        for r in rows
    ]  # fmt: skip


def failed_deliveries(session: Session, limit: int = 50) -> list[tuple[WebhookDelivery, Webhook]]:
    rows = session.exec(
        select(WebhookDelivery, Webhook)
        .join(Webhook, col(Webhook.id) == WebhookDelivery.webhook_id)
        .where(col(WebhookDelivery.failed_at).is_not(None))
        .order_by(col(WebhookDelivery.failed_at).desc())
        .limit(limit)
    ).all()
    return [(d, w) for d, w in rows]


def mail_state(session: Session) -> dict[str, Any]:
    """The mail sender as /health reports it: last success, queue length, oldest pending."""
    row = session.execute(
        select(
            func.max(OutboxMail.sent_at),
            func.count().filter(col(OutboxMail.sent_at).is_(None)),
            func.min(OutboxMail.created_at).filter(col(OutboxMail.sent_at).is_(None)),
        )
    ).one()
    last, queued, oldest = row
    now = utcnow()
    return {
        "last_success": last.isoformat() if last else None,
        "queue_length": int(queued or 0),
        "oldest_pending": oldest.isoformat() if oldest else None,
        "oldest_pending_age_s": round((now - oldest).total_seconds(), 1) if oldest else None,
    }
