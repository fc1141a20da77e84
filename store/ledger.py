"""Double-entry ledger in integer cents. Append-only; every transfer has a unique idempotency key built
from business identity, so a retried activity or a crashed worker can never move money twice.

A transfer moves ``amount`` from one account to another: the first's balance falls, the second's rises,
so the balances of all accounts always sum to zero.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from domain.errors import Conflict, InsufficientFunds
from domain.money import check_cents, check_currency
from store.db import Db, driver_connection
from store.models import LedgerAccount, LedgerTransfer

# The money paths run in every charge and release of every contract-week, so they are plain SQL on the
# driver's connection (store.db.driver_connection): a Session, a SQLAlchemy Connection or a psycopg
# connection, always inside the caller's transaction. They return plain records, not ORM rows.


@dataclass(frozen=True, slots=True)
class Account:
    id: uuid.UUID
    kind: str
    owner_id: uuid.UUID | None
    currency: str


@dataclass(frozen=True, slots=True)
class Transfer:
    id: uuid.UUID
    idempotency_key: str
    from_account: uuid.UUID
    to_account: uuid.UUID
    amount_cents: int
    currency: str
    kind: str
    contract_id: uuid.UUID | None
    week_start: datetime | None
    memo: str
    created_at: datetime


_ACCOUNT = (
    "SELECT id, kind, owner_id, currency FROM ledger_accounts "
    "WHERE kind = %(kind)s AND currency = %(currency)s AND owner_id IS NOT DISTINCT FROM %(owner)s"
)
_ACCOUNT_LOCKED = _ACCOUNT + " FOR UPDATE"
_CREATE_ACCOUNT = (
    "INSERT INTO ledger_accounts (id, kind, owner_id, currency, created_at) "
    "VALUES (%(id)s, %(kind)s, %(owner)s, %(currency)s, now()) ON CONFLICT ON CONSTRAINT uq_ledger_account DO NOTHING"
)
_INSERT_TRANSFER = (
    "INSERT INTO ledger_transfers (id, idempotency_key, from_account, to_account, amount_cents, currency, kind, "
    "contract_id, week_start, memo, created_at) VALUES (%(id)s, %(key)s, %(source)s, %(target)s, %(amount)s, "
    "%(currency)s, %(kind)s, %(contract)s, %(week)s, %(memo)s, now()) ON CONFLICT (idempotency_key) DO NOTHING "
    "RETURNING id, idempotency_key, from_account, to_account, amount_cents, currency, kind, contract_id, "
    "week_start, memo, created_at"
)
_FIND_TRANSFER = (
    "SELECT id, idempotency_key, from_account, to_account, amount_cents, currency, kind, contract_id, "
    "week_start, memo, created_at FROM ledger_transfers WHERE idempotency_key = %(key)s"
)
_BALANCE = (
    "SELECT COALESCE(SUM(CASE WHEN to_account = %(a)s THEN amount_cents ELSE -amount_cents END), 0) "
    "FROM ledger_transfers WHERE to_account = %(a)s OR from_account = %(a)s"
)


def account(
    *, session: Db, kind: str, currency: str, owner_id: uuid.UUID | None = None, lock: bool = False
) -> Account:
    """The account, created on first use (safe under concurrency). ``lock`` holds its row until the
    transaction ends: two charges of one client cannot both spend the same funds."""
    params = {"kind": kind, "currency": currency, "owner": owner_id}
    query = _ACCOUNT_LOCKED if lock else _ACCOUNT
    connection = driver_connection(session)
    row = connection.execute(query, params).fetchone()
    if row is None:
        connection.execute(_CREATE_ACCOUNT, {**params, "id": uuid.uuid4()})
        row = connection.execute(query, params).fetchone()
        assert row is not None  # created now, or by a concurrent first use: the constraint is unique
    return Account(*row)


def balance(*, session: Db, account_id: uuid.UUID) -> int:
    """What came in minus what went out, in one pass over the account's transfers."""
    row = driver_connection(session).execute(_BALANCE, {"a": account_id}).fetchone()
    assert row is not None
    return int(row[0])


def transfer(
    *,
    session: Db,
    key: str,
    source: Account,
    target: Account,
    amount_cents: int,
    kind: str,
    contract_id: uuid.UUID | None = None,
    week_start: datetime | None = None,
    memo: str = "",
) -> Transfer:
    """Record the transfer once. The same key again returns the first transfer; the same key with other
    terms is a bug in the caller and is refused."""
    check_cents(amount_cents, what="amount", allow_zero=False)
    if source.currency != target.currency:
        raise Conflict(f"cannot move {source.currency} into a {target.currency} account", "ledger_conflict")
    row = driver_connection(session).execute(
        _INSERT_TRANSFER,
        {
            "id": uuid.uuid4(), "key": key, "source": source.id, "target": target.id, "amount": amount_cents,
            "currency": source.currency, "kind": kind, "contract": contract_id, "week": week_start,
            "memo": memo[:500],
        },
    ).fetchone()  # fmt: skip
    found = Transfer(*row) if row is not None else find_transfer(session=session, key=key)
    assert found is not None  # inserted now, or by an earlier attempt: the key is unique
    if (found.from_account, found.to_account, found.amount_cents) != (source.id, target.id, amount_cents):
        raise Conflict(
            f"transfer {key} exists with other terms ({found.amount_cents} cents)", "ledger_conflict"
        )
    return found


def find_transfer(*, session: Db, key: str) -> Transfer | None:
    row = driver_connection(session).execute(_FIND_TRANSFER, {"key": key}).fetchone()
    return Transfer(*row) if row is not None else None


def fund_client(
    *, session: Session, client_id: uuid.UUID, amount_cents: int, currency: str, key: str, memo: str = ""
) -> Transfer:
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
    session: Db,
    key: str,
    client_id: uuid.UUID,
    provider_id: uuid.UUID,
    amount_cents: int,
    currency: str,
    contract_id: uuid.UUID,
    week_start: datetime,
) -> Transfer:
    """The built-in payments adapter: draw on the client's prepaid balance into the provider's escrow.
    Raises InsufficientFunds (and writes nothing) when the balance does not cover the amount."""
    done = find_transfer(session=session, key=key)
    if done is not None:
        return done
    # Locked: two charges of one client can't both see the same funds.
    source = account(session=session, kind="client_balance", owner_id=client_id, currency=currency, lock=True)
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
    session: Db,
    contract_id: uuid.UUID,
    week_start: datetime,
    client_id: uuid.UUID,
    provider_id: uuid.UUID,
    amount_cents: int,
    currency: str,
) -> Transfer:
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
    *, session: Db, key: str, provider_id: uuid.UUID, amount_cents: int, currency: str,
    contract_id: uuid.UUID, week_start: datetime,
) -> Transfer:  # fmt: skip
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
