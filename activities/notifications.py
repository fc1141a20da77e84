"""The workflows' notifications: one row per recipient and dedupe key, fanned out by the workers into the
inbox, mail and webhooks (api/services/notifications.py)."""

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
        # and, when any is new, wake the workers' fan-out (LISTEN workproof_outbox) instead of its next poll
        sql = "WITH new AS (INSERT INTO notifications (id, dedupe_key, kind, recipient_id, contract_id, week_start, "
        sql += f"payload, created_at) VALUES {rows} ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1) "
        sql += "SELECT 1 FROM new, LATERAL (SELECT pg_notify('workproof_outbox', '')) AS woken"
        return self.execute(sql, params)
