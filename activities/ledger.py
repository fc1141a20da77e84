"""Money movements the timesheet workflow asks for. Each is idempotent by its business key, so an
activity retried after a worker crash never charges or pays twice."""

from __future__ import annotations

import uuid

from temporalio import activity

from activities.db import DatabaseActivities
from domain.activities import CHARGE_CLIENT, COLLECT_WEEK, GUARANTEE_PAYOUT, RELEASE_FUNDS, SECURE_WEEK
from domain.errors import InsufficientFunds
from domain.messages import (
    ChargeInput,
    ChargeResult,
    CollectInput,
    Collection,
    PayoutInput,
    ReleaseInput,
    SecureInput,
    Security,
    TransferResult,
)
from store import ledger, security


class LedgerActivities(DatabaseActivities):
    @activity.defn(name=CHARGE_CLIENT.name)
    def charge_client(self, request: ChargeInput) -> ChargeResult:
        """The built-in payments adapter: the client's prepaid balance. Insufficient funds is an answer
        (ok=False), not an error: the workflow turns it into a guarantee payout."""
        try:
            with self.connection() as connection:
                row = ledger.charge_client(
                    session=connection,
                    key=request.key,
                    client_id=uuid.UUID(request.client_id),
                    provider_id=uuid.UUID(request.provider_id),
                    amount_cents=request.amount_cents,
                    currency=request.currency,
                    contract_id=uuid.UUID(request.contract_id),
                    week_start=request.week_start,
                )
                return ChargeResult(ok=True, transfer_id=str(row.id))
        except InsufficientFunds as error:
            return ChargeResult(ok=False, reason=error.message)

    @activity.defn(name=GUARANTEE_PAYOUT.name)
    def guarantee_payout(self, request: PayoutInput) -> TransferResult:
        with self.connection() as connection:
            row = ledger.guarantee_payout(
                session=connection,
                contract_id=uuid.UUID(request.contract_id),
                week_start=request.week_start,
                client_id=uuid.UUID(request.client_id),
                provider_id=uuid.UUID(request.provider_id),
                amount_cents=request.amount_cents,
                currency=request.currency,
            )
            return TransferResult(transfer_id=str(row.id), amount_cents=row.amount_cents)

    @activity.defn(name=RELEASE_FUNDS.name)
    def release_funds(self, request: ReleaseInput) -> TransferResult:
        with self.connection() as connection:
            row = ledger.release(
                session=connection,
                key=request.key,
                provider_id=uuid.UUID(request.provider_id),
                amount_cents=request.amount_cents,
                currency=request.currency,
                contract_id=uuid.UUID(request.contract_id),
                week_start=request.week_start,
            )
            return TransferResult(transfer_id=str(row.id), amount_cents=row.amount_cents)

    @activity.defn(name=SECURE_WEEK.name)
    def secure_week(self, request: SecureInput) -> Security:
        """Hold the client's balance for the week, then reserve credit, up to the target (store/security.py)."""
        with self.connection() as connection:
            return security.secure_week(
                session=connection, contract_id=uuid.UUID(request.contract_id),
                client_id=uuid.UUID(request.client_id), week_start=request.week_start, currency=request.currency,
                target_cents=request.target_cents, stage=request.stage,
            )  # fmt: skip

    @activity.defn(name=COLLECT_WEEK.name)
    def collect_week(self, request: CollectInput) -> Collection:
        """Collect the week: from the hold first, then the balance; says what the guarantee may pay."""
        with self.connection() as connection:
            return security.collect_week(
                session=connection, contract_id=uuid.UUID(request.contract_id),
                client_id=uuid.UUID(request.client_id), provider_id=uuid.UUID(request.provider_id),
                week_start=request.week_start, currency=request.currency, owed_cents=request.owed_cents,
                guaranteed_cents=request.guaranteed_cents,
            )  # fmt: skip
