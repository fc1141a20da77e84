"""Mirroring the contract workflow's decisions into PostgreSQL, where ingest checks them."""

from __future__ import annotations

import uuid

from sqlmodel import col, delete
from temporalio import activity

from activities.db import DatabaseActivities
from domain.activities import RECORD_CONTRACT, RECORD_WORK_VIEW
from domain.messages import ContractRecord, WorkViewRecord
from store.models import Contract, WorkViewInterval


class ContractActivities(DatabaseActivities):
    @activity.defn(name=RECORD_WORK_VIEW.name)
    def record_work_view(self, record: WorkViewRecord) -> None:
        """Replace the contract's Work View intervals with the workflow's (idempotent)."""
        contract_id = uuid.UUID(record.contract_id)
        with self.session() as session:
            session.execute(delete(WorkViewInterval).where(col(WorkViewInterval.contract_id) == contract_id))
            for interval in record.intervals:
                session.add(WorkViewInterval(contract_id=contract_id, start=interval.start, end=interval.end))

    @activity.defn(name=RECORD_CONTRACT.name)
    def record_contract(self, record: ContractRecord) -> None:
        with self.session() as session:
            contract = session.get(Contract, uuid.UUID(record.contract_id), with_for_update=True)
            if contract is None:
                raise ValueError(f"contract {record.contract_id} does not exist")
            if record.weekly_limit_hours is not None:
                contract.weekly_limit_hours = record.weekly_limit_hours
            contract.next_weekly_limit_hours = record.next_weekly_limit_hours
            if record.ended_at is not None and contract.status != "ended":
                contract.status = "ended"
                contract.ended_at = record.ended_at
                contract.end_reason = record.end_reason or ""
            session.add(contract)
