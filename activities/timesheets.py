"""Freezing a week into its snapshot, and mirroring a timesheet's status into the database."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select
from temporalio import activity

from activities.db import DatabaseActivities
from domain.messages import FreezeInput, SnapshotResult, StatusRecord
from domain.timesheet import Timesheet
from store.captures import live_timesheet
from store.models import Contract, Dispute, TimesheetSnapshot, utcnow


def _snapshot(session: Session, contract_id: uuid.UUID, week: datetime) -> TimesheetSnapshot | None:
    query = select(TimesheetSnapshot).where(
        TimesheetSnapshot.contract_id == contract_id, TimesheetSnapshot.week_start == week
    )
    return session.exec(query).first()


class TimesheetActivities(DatabaseActivities):
    @activity.defn(name="freeze_timesheet")
    def freeze_timesheet(self, request: FreezeInput) -> SnapshotResult:
        """Compute the week through ``domain`` and store it once. A retry after a crash (or a concurrent
        attempt) finds the stored snapshot and returns it unchanged: the snapshot is immutable. The insert
        comes first and the stored one is read only on a conflict: one statement fewer on the usual path."""
        contract_id = uuid.UUID(request.contract_id)
        with self.session() as session:
            contract = session.get(Contract, contract_id)
            if contract is None:
                raise ValueError(f"contract {contract_id} does not exist")
            timesheet = live_timesheet(
                session=session,
                contract=contract,
                week=request.week_start,
                weekly_limit_hours=request.weekly_limit_hours,
            )
            digest = timesheet.content_hash()
            inserted = session.execute(
                insert(TimesheetSnapshot)
                .values(
                    id=uuid.uuid4(),
                    contract_id=contract_id,
                    week_start=timesheet.week_start,
                    content_hash=digest,
                    body=timesheet.model_dump(mode="json"),
                    billable_minutes=timesheet.billable_minutes,
                    amount_cents=timesheet.amount_cents,
                    guaranteed_cents=timesheet.guaranteed_cents,
                    status="submitted",
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
                .on_conflict_do_nothing(constraint="uq_snapshot_contract_week")
            )
            if inserted.rowcount == 1:  # type: ignore[attr-defined]
                return SnapshotResult(timesheet=timesheet, content_hash=digest)
            # stored by an earlier attempt: that snapshot is the one
            stored = _snapshot(session, contract_id, timesheet.week_start)
            assert stored is not None
            return SnapshotResult(
                timesheet=Timesheet.model_validate(stored.body), content_hash=stored.content_hash
            )

    @activity.defn(name="record_timesheet_status")
    def record_timesheet_status(self, record: StatusRecord) -> None:
        """Mirror the workflow's status (and dispute) into PostgreSQL for pages and lists."""
        contract_id = uuid.UUID(record.contract_id)
        if record.status == "submitted" and record.dispute is None:
            return  # freeze_timesheet stored the snapshot as submitted, in its own transaction
        if record.dispute is None:  # the common case, in one statement
            with self.connection() as connection:
                connection.execute(
                    update(TimesheetSnapshot)
                    .where(
                        col(TimesheetSnapshot.contract_id) == contract_id,
                        col(TimesheetSnapshot.week_start) == record.week_start,
                    )
                    .values(status=record.status, updated_at=utcnow())
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
