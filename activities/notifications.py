"""The notification outbox: rows a delivery adapter (mail, chat) sends later. One row per dedupe key."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from temporalio import activity

from activities.db import DatabaseActivities
from domain.messages import Notify
from store.models import Notification, utcnow


class NotificationActivities(DatabaseActivities):
    @activity.defn(name="notify")
    def notify(self, request: Notify) -> int:
        """Queue one notification per recipient; returns how many were new."""
        created = 0
        with self.session() as session:
            for recipient in request.recipient_ids:
                result = session.execute(
                    insert(Notification)
                    .values(
                        id=uuid.uuid4(),
                        dedupe_key=f"{request.dedupe_key}:{recipient}",
                        kind=request.kind,
                        recipient_id=uuid.UUID(recipient),
                        contract_id=uuid.UUID(request.contract_id),
                        week_start=request.week_start,
                        payload=dict(request.payload),
                        created_at=utcnow(),
                    )
                    .on_conflict_do_nothing(index_elements=["dedupe_key"])
                )
                created += result.rowcount or 0  # type: ignore[attr-defined]
        return created
