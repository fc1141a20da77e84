"""The notification outbox: rows a delivery adapter (mail, chat) sends later. One row per dedupe key."""

from __future__ import annotations

import json
import uuid

from temporalio import activity

from activities.db import DatabaseActivities
from domain.activities import NOTIFY
from domain.messages import Notify
from store.models import utcnow


class NotificationActivities(DatabaseActivities):
    @activity.defn(name=NOTIFY.name)
    def notify(self, request: Notify) -> int:
        """Queue one notification per recipient; returns how many were new."""
        recipients = list(dict.fromkeys(request.recipient_ids))
        if not recipients:
            return 0
        rows = ", ".join(
            f"(%(id{i})s, %(key{i})s, %(kind)s, %(recipient{i})s, %(contract)s, %(week)s, %(payload)s::json, "
            "%(now)s)"
            for i in range(len(recipients))
        )
        params: dict[str, object] = {
            "kind": request.kind,
            "contract": uuid.UUID(request.contract_id),
            "week": request.week_start,
            "payload": json.dumps(dict(request.payload)),
            "now": utcnow(),
        }
        for i, recipient in enumerate(recipients):
            params[f"id{i}"] = uuid.uuid4()
            params[f"key{i}"] = f"{request.dedupe_key}:{recipient}"
            params[f"recipient{i}"] = uuid.UUID(recipient)
        # one statement for all recipients; only placeholders are formatted into it
        sql = "INSERT INTO notifications (id, dedupe_key, kind, recipient_id, contract_id, week_start, payload, "
        sql += f"created_at) VALUES {rows} ON CONFLICT (dedupe_key) DO NOTHING"
        return self.execute(sql, params)
