"""Freezing a week into its snapshot, and mirroring a timesheet's status into the database."""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg.types.json import Json
from sqlmodel import Session, select
from temporalio import activity

from activities.db import DatabaseActivities
from domain.activities import FREEZE_TIMESHEET, RECORD_TIMESHEET_STATUS
from domain.messages import FreezeInput, SnapshotResult, StatusRecord
from domain.timesheet import Timesheet
from store.captures import week_timesheet
from store.models import Dispute, TimesheetSnapshot, utcnow


def _snapshot(session: Session, contract_id: uuid.UUID, week: datetime) -> TimesheetSnapshot | None:
    query = select(TimesheetSnapshot).where(
        TimesheetSnapshot.contract_id == contract_id, TimesheetSnapshot.week_start == week
    )
    return session.exec(query).first()


_INSERT_SNAPSHOT = (
    "INSERT INTO timesheet_snapshots (id, contract_id, week_start, content_hash, body, billable_minutes, "
    "amount_cents, guaranteed_cents, status, created_at, updated_at) VALUES (%(id)s, %(contract)s, %(week)s, "
    "%(hash)s, %(body)s, %(minutes)s, %(amount)s, %(guaranteed)s, 'submitted', %(now)s, %(now)s) "
    "ON CONFLICT ON CONSTRAINT uq_snapshot_contract_week DO NOTHING RETURNING id"
)
_STORED_SNAPSHOT = "SELECT body, content_hash FROM timesheet_snapshots WHERE contract_id = %(contract)s AND week_start = %(week)s"


class TimesheetActivities(DatabaseActivities):
    @activity.defn(name=FREEZE_TIMESHEET.name)
    def freeze_timesheet(self, request: FreezeInput) -> SnapshotResult:
        """Compute the week through ``domain`` and store it once. A retry after a crash (or a concurrent
        attempt) finds the stored snapshot and returns it unchanged: the snapshot is immutable. The insert
        comes first and the stored one is read only on a conflict: one statement fewer on the usual path."""
        contract_id = uuid.UUID(request.contract_id)
        with self.connection() as connection:
            timesheet = week_timesheet(
                db=connection,
                contract_id=contract_id,
                week=request.week_start,
                weekly_limit_hours=request.weekly_limit_hours,
            )
            if timesheet is None:
                raise ValueError(f"contract {contract_id} does not exist")
            digest = timesheet.content_hash()
            now = utcnow()
            inserted = connection.execute(
                _INSERT_SNAPSHOT,
                {
                    "id": uuid.uuid4(), "contract": contract_id, "week": timesheet.week_start, "hash": digest,
                    "body": Json(timesheet.model_dump(mode="json")), "minutes": timesheet.billable_minutes,
                    "amount": timesheet.amount_cents, "guaranteed": timesheet.guaranteed_cents, "now": now,
                },
            ).fetchone()  # fmt: skip
            if inserted is not None:
                return SnapshotResult(timesheet=timesheet, content_hash=digest)
            # stored by an earlier attempt: that snapshot is the one
            stored = connection.execute(
                _STORED_SNAPSHOT, {"contract": contract_id, "week": timesheet.week_start}
            ).fetchone()
            assert stored is not None
            body, stored_hash = stored
            return SnapshotResult(timesheet=Timesheet.model_validate(body), content_hash=stored_hash)

    @activity.defn(name=RECORD_TIMESHEET_STATUS.name)
    def record_timesheet_status(self, record: StatusRecord) -> None:
        """Mirror the workflow's status (and dispute) into PostgreSQL for pages and lists."""
        contract_id = uuid.UUID(record.contract_id)
        if record.status == "submitted" and record.dispute is None:
            return  # freeze_timesheet stored the snapshot as submitted, in its own transaction
        if record.dispute is None:  # the common case, in one statement
            self.execute(
                "UPDATE timesheet_snapshots SET status = %(status)s, updated_at = %(now)s "
                "WHERE contract_id = %(contract)s AND week_start = %(week)s",
                {
                    "status": record.status,
                    "now": utcnow(),
                    "contract": contract_id,
                    "week": record.week_start,
                },
            )
            return
        with self.session() as session:
            snapshot = _snapshot(session, contract_id, record.week_start)
            if snapshot is not None:
                snapshot.status = record.status
                snapshot.updated_at = utcnow()
                session.add(snapshot)
            if record.dispute is not None:
                d = record.dispute
                row = session.exec(
                    select(Dispute).where(
                        Dispute.contract_id == contract_id, Dispute.week_start == record.week_start
                    )
                ).first()
                if row is None:
                    row = Dispute(
                        contract_id=contract_id,
                        week_start=record.week_start,
                        entry_ids=d.entry_ids,
                        reason=d.reason,
                        opened_by=uuid.UUID(d.opened_by),
                        opened_at=d.opened_at,
                    )
                row.status = record.status
                row.provider_response = d.response
                row.resolutions = dict(d.resolutions)
                if d.resolutions and set(d.resolutions) >= set(d.entry_ids) and row.resolved_at is None:
                    row.resolved_at = utcnow()
                session.add(row)
