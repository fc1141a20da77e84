"""Double-entry ledger in integer cents. Append-only; every transfer has a unique idempotency key built
from business identity, so a retried activity or a crashed worker can never move money twice.

A transfer moves ``amount`` from one account to another: the first's balance falls, the second's rises,
so the balances of all accounts always sum to zero.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from domain.errors import Conflict, InsufficientFunds
from domain.money import check_cents, check_currency
from store.models import LedgerAccount, LedgerTransfer


def account(
    *, session: Session, kind: str, currency: str, owner_id: uuid.UUID | None = None
) -> LedgerAccount:
    """The account, created on first use (safe under concurrency)."""
    session.execute(
        insert(LedgerAccount)
        .values(id=uuid.uuid4(), kind=kind, owner_id=owner_id, currency=currency, created_at=func.now())
        .on_conflict_do_nothing(constraint="uq_ledger_account")
    )
    # `owner_id == None` compiles to IS NULL: one query serves the platform's own accounts too.
    query = select(LedgerAccount).where(
        LedgerAccount.kind == kind, LedgerAccount.currency == currency, LedgerAccount.owner_id == owner_id
    )
    return session.exec(query).one()


def balance(*, session: Session, account_id: uuid.UUID) -> int:
    incoming = session.exec(
        select(func.coalesce(func.sum(LedgerTransfer.amount_cents), 0)).where(
            LedgerTransfer.to_account == account_id
        )
    ).one()
    outgoing = session.exec(
        select(func.coalesce(func.sum(LedgerTransfer.amount_cents), 0)).where(
            LedgerTransfer.from_account == account_id
        )
    ).one()
    return int(incoming) - int(outgoing)


def transfer(
    *,
    session: Session,
    key: str,
    source: LedgerAccount,
    target: LedgerAccount,
    amount_cents: int,
    kind: str,
    contract_id: uuid.UUID | None = None,
    week_start: datetime | None = None,
    memo: str = "",
) -> LedgerTransfer:
    """Record the transfer once. The same key again returns the first transfer; the same key with other
    terms is a bug in the caller and is refused."""
    check_cents(amount_cents, what="amount", allow_zero=False)
    if source.currency != target.currency:
        raise Conflict(f"cannot move {source.currency} into a {target.currency} account")
    session.execute(
        insert(LedgerTransfer)
        .values(
            id=uuid.uuid4(),
            idempotency_key=key,
            from_account=source.id,
            to_account=target.id,
            amount_cents=amount_cents,
            currency=source.currency,
            kind=kind,
            contract_id=contract_id,
            week_start=week_start,
            memo=memo[:500],
            created_at=func.now(),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    row = session.exec(select(LedgerTransfer).where(LedgerTransfer.idempotency_key == key)).one()
    if (row.from_account, row.to_account, row.amount_cents) != (source.id, target.id, amount_cents):
        raise Conflict(f"transfer {key} exists with other terms ({row.amount_cents} cents)")
    return row


def find_transfer(*, session: Session, key: str) -> LedgerTransfer | None:
    return session.exec(select(LedgerTransfer).where(LedgerTransfer.idempotency_key == key)).first()


def fund_client(
    *, session: Session, client_id: uuid.UUID, amount_cents: int, currency: str, key: str, memo: str = ""
) -> LedgerTransfer:
    currency = check_currency(currency)
    source = account(session=session, kind="client_funding", owner_id=client_id, currency=currency)
    target = account(session=session, kind="client_balance", owner_id=client_id, currency=currency)
    return transfer(
        session=session,
        key=key,
        source=source,
        target=target,
        amount_cents=amount_cents,
        kind="funding",
        memo=memo,
    )


def client_balance(*, session: Session, client_id: uuid.UUID, currency: str) -> int:
    acc = account(session=session, kind="client_balance", owner_id=client_id, currency=currency)
    return balance(session=session, account_id=acc.id)


def charge_client(
    *,
    session: Session,
    key: str,
    client_id: uuid.UUID,
    provider_id: uuid.UUID,
    amount_cents: int,
    currency: str,
    contract_id: uuid.UUID,
    week_start: datetime,
) -> LedgerTransfer:
    """The built-in payments adapter: draw on the client's prepaid balance into the provider's escrow.
    Raises InsufficientFunds (and writes nothing) when the balance does not cover the amount."""
    done = find_transfer(session=session, key=key)
    if done is not None:
        return done
    source = account(session=session, kind="client_balance", owner_id=client_id, currency=currency)
    # Lock the balance row: two charges of one client can't both see the same funds.
    session.execute(text("SELECT id FROM ledger_accounts WHERE id = :id FOR UPDATE"), {"id": source.id})
    available = balance(session=session, account_id=source.id)
    if available < amount_cents:
        raise InsufficientFunds(
            f"the client's prepaid balance is {available} cents; {amount_cents} cents are due: fund the balance"
        )
    target = account(session=session, kind="escrow", owner_id=provider_id, currency=currency)
    return transfer(
        session=session, key=key, source=source, target=target, amount_cents=amount_cents, kind="charge",
        contract_id=contract_id, week_start=week_start, memo="timesheet charge",
    )  # fmt: skip


def guarantee_payout(
    *,
    session: Session,
    contract_id: uuid.UUID,
    week_start: datetime,
    client_id: uuid.UUID,
    provider_id: uuid.UUID,
    amount_cents: int,
    currency: str,
) -> LedgerTransfer:
    """The guarantee fund pays the provider (into escrow, released after the security period) and
    records a receivable against the client. Exactly once per contract-week by its keys."""
    week = week_start.strftime("%Y-%m-%d")
    fund = account(session=session, kind="guarantee_fund", currency=currency)
    escrow = account(session=session, kind="escrow", owner_id=provider_id, currency=currency)
    receivable = account(session=session, kind="client_receivable", owner_id=client_id, currency=currency)
    payout = transfer(
        session=session, key=f"guarantee-payout:{contract_id}:{week}", source=fund, target=escrow,
        amount_cents=amount_cents, kind="guarantee_payout", contract_id=contract_id, week_start=week_start,
        memo="guaranteed hours paid by the platform",
    )  # fmt: skip
    transfer(
        session=session, key=f"guarantee-receivable:{contract_id}:{week}", source=receivable, target=fund,
        amount_cents=amount_cents, kind="receivable", contract_id=contract_id, week_start=week_start,
        memo="owed by the client for guaranteed hours",
    )  # fmt: skip
    return payout


def release(
    *, session: Session, key: str, provider_id: uuid.UUID, amount_cents: int, currency: str,
    contract_id: uuid.UUID, week_start: datetime,
) -> LedgerTransfer:  # fmt: skip
    escrow = account(session=session, kind="escrow", owner_id=provider_id, currency=currency)
    available = account(session=session, kind="provider_available", owner_id=provider_id, currency=currency)
    return transfer(
        session=session, key=key, source=escrow, target=available, amount_cents=amount_cents, kind="release",
        contract_id=contract_id, week_start=week_start, memo="released after the security period",
    )  # fmt: skip


def sum_of_balances(*, session: Session) -> int:
    """Always zero: every transfer leaves one account and enters another."""
    accounts = session.exec(select(LedgerAccount.id)).all()
    return sum(balance(session=session, account_id=a) for a in accounts)


def duplicate_keys(*, session: Session) -> list[str]:
    rows = session.exec(
        select(LedgerTransfer.idempotency_key)
        .group_by(LedgerTransfer.idempotency_key)
        .having(func.count() > 1)
    ).all()
    return list(rows)


def transfers_for(*, session: Session, contract_id: uuid.UUID) -> list[LedgerTransfer]:
    query = select(LedgerTransfer).where(LedgerTransfer.contract_id == contract_id)
    return list(session.exec(query.order_by(LedgerTransfer.created_at)).all())  # type: ignore[arg-type]
