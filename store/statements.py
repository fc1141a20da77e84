"""Money as people read it, straight from the ledger (docs/design.md, "Statements and invoices"):

- a client's **statement**: every transfer into or out of the client's balance and hold, oldest first,
  with the running available balance and the running hold (the last line's figures are the ledger's);
- a provider's **earnings** per contract-week: what the weeks' snapshots say, what sits in escrow for the
  provider (the security period), what was released to the available balance, and who paid;
- the **guarantee fund's position**: paid out, recovered and still owed by clients;
- the **invoices**: one immutable, sequentially numbered row per charged or guarantee-paid week.

Plain SQL on the driver's connection, read-only except :func:`issue_invoice`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from store.db import Db, driver_connection


@dataclass(frozen=True, slots=True)
class StatementLine:
    at: datetime
    kind: str  # funding, hold, hold_release, charge, refund, ...
    contract_id: uuid.UUID | None
    week_start: datetime | None
    memo: str
    available_change: int  # what the line did to the available balance, in cents
    held_change: int  # what it did to the money held for weeks in progress
    available: int  # running, after the line
    held: int


_CLIENT_LINES = (
    "SELECT t.created_at, t.kind, t.contract_id, t.week_start, t.memo, t.amount_cents, "
    "fa.kind AS from_kind, ta.kind AS to_kind "
    "FROM ledger_transfers t JOIN ledger_accounts fa ON fa.id = t.from_account "
    "JOIN ledger_accounts ta ON ta.id = t.to_account "
    "WHERE t.currency = %(currency)s AND ("
    "(fa.owner_id = %(client)s AND fa.kind IN ('client_balance', 'client_hold')) OR "
    "(ta.owner_id = %(client)s AND ta.kind IN ('client_balance', 'client_hold'))) "
    # one transaction writes several transfers at one instant: show them in the order they happen
    "ORDER BY t.created_at, CASE t.kind WHEN 'funding' THEN 0 WHEN 'hold' THEN 1 WHEN 'charge' THEN 2 "
    "WHEN 'hold_release' THEN 3 ELSE 4 END, t.id"
)


def client_statement(*, session: Db, client_id: uuid.UUID, currency: str) -> list[StatementLine]:
    """Every movement of the client's money, oldest first, with running figures."""
    rows = driver_connection(session).execute(_CLIENT_LINES, {"client": client_id, "currency": currency})
    lines: list[StatementLine] = []
    available = held = 0
    for at, kind, contract_id, week, memo, amount, from_kind, to_kind in rows.fetchall():
        change = {"client_balance": 0, "client_hold": 0}
        if from_kind in change:
            change[from_kind] -= int(amount)
        if to_kind in change:
            change[to_kind] += int(amount)
        available += change["client_balance"]
        held += change["client_hold"]
        lines.append(
            StatementLine(
                at=at, kind=kind, contract_id=contract_id, week_start=week, memo=memo or "",
                available_change=change["client_balance"], held_change=change["client_hold"], available=available,
                held=held,
            )
        )  # fmt: skip
    return lines


@dataclass(frozen=True, slots=True)
class EarningWeek:
    contract_id: uuid.UUID
    title: str
    week_start: datetime
    currency: str
    status: str  # the snapshot's status
    billable_minutes: int
    amount_cents: int  # what the frozen week bills
    charged_cents: int  # paid by the client (into escrow)
    guarantee_cents: int  # paid by the guarantee fund (into escrow)
    released_cents: int  # released to the provider's available balance
    refunded_cents: int  # given back to the client (a dispute the provider accepted, say)

    @property
    def in_escrow_cents(self) -> int:
        return max(self.charged_cents + self.guarantee_cents - self.released_cents - self.refunded_cents, 0)

    @property
    def in_review_cents(self) -> int:
        """Billed by the snapshot, not yet paid by anyone."""
        if self.charged_cents or self.guarantee_cents or self.status in ("settled", "unpaid"):
            return 0
        return self.amount_cents


_WEEKS = (
    "SELECT s.contract_id, c.title, s.week_start, c.currency, s.status, s.billable_minutes, s.amount_cents, "
    "COALESCE(SUM(t.amount_cents) FILTER (WHERE t.kind = 'charge'), 0), "
    "COALESCE(SUM(t.amount_cents) FILTER (WHERE t.kind = 'guarantee_payout'), 0), "
    "COALESCE(SUM(t.amount_cents) FILTER (WHERE t.kind = 'release'), 0), "
    "COALESCE(SUM(t.amount_cents) FILTER (WHERE t.kind = 'refund'), 0) "
    "FROM timesheet_snapshots s JOIN contracts c ON c.id = s.contract_id "
    "LEFT JOIN ledger_transfers t ON t.contract_id = s.contract_id AND t.week_start = s.week_start "
    "WHERE {who} GROUP BY s.contract_id, c.title, s.week_start, c.currency, s.status, s.billable_minutes, "
    "s.amount_cents ORDER BY s.week_start DESC, c.title LIMIT %(limit)s"
)


def earning_weeks(
    *, session: Db, provider_id: uuid.UUID | None = None, client_id: uuid.UUID | None = None, limit: int = 104
) -> list[EarningWeek]:
    """Frozen weeks of the provider's (or the client's) contracts, newest first, with the money each moved."""
    who = "c.provider_id = %(who)s" if provider_id is not None else "c.client_id = %(who)s"
    rows = driver_connection(session).execute(
        _WEEKS.format(who=who), {"who": provider_id or client_id, "limit": limit}
    )
    return [
        EarningWeek(r[0], r[1], r[2], r[3], r[4], int(r[5]), *(int(v) for v in r[6:]))
        for r in rows.fetchall()
    ]


_ACCOUNT_BALANCES = (
    "SELECT a.kind, a.currency, COALESCE(SUM(CASE WHEN t.to_account = a.id THEN t.amount_cents "
    "ELSE -t.amount_cents END), 0) FROM ledger_accounts a LEFT JOIN ledger_transfers t "
    "ON t.to_account = a.id OR t.from_account = a.id WHERE a.owner_id = %(owner)s GROUP BY a.kind, a.currency"
)


def owner_balances(*, session: Db, owner_id: uuid.UUID) -> dict[tuple[str, str], int]:
    """Every account of one owner: (kind, currency) → balance."""
    rows = driver_connection(session).execute(_ACCOUNT_BALANCES, {"owner": owner_id}).fetchall()
    return {(r[0], r[1]): int(r[2]) for r in rows}


@dataclass(frozen=True, slots=True)
class FundPosition:
    currency: str
    paid_out_cents: int  # guarantee payouts to providers
    recovered_cents: int  # what clients paid back of their receivables
    outstanding_cents: int  # what clients still owe (the receivables)
    balance_cents: int  # the fund's own ledger balance


_FUND = (
    "SELECT c.currency, "
    "COALESCE((SELECT SUM(amount_cents) FROM ledger_transfers WHERE kind = 'guarantee_payout' "
    "AND currency = c.currency), 0), "
    "COALESCE((SELECT SUM(t.amount_cents) FROM ledger_transfers t JOIN ledger_accounts a ON a.id = t.to_account "
    "WHERE a.kind = 'client_receivable' AND t.currency = c.currency), 0), "
    "COALESCE((SELECT -SUM(CASE WHEN t.to_account = a.id THEN t.amount_cents ELSE -t.amount_cents END) "
    "FROM ledger_accounts a JOIN ledger_transfers t ON t.to_account = a.id OR t.from_account = a.id "
    "WHERE a.kind = 'client_receivable' AND a.currency = c.currency), 0), "
    "COALESCE((SELECT SUM(CASE WHEN t.to_account = a.id THEN t.amount_cents ELSE -t.amount_cents END) "
    "FROM ledger_accounts a JOIN ledger_transfers t ON t.to_account = a.id OR t.from_account = a.id "
    "WHERE a.kind = 'guarantee_fund' AND a.currency = c.currency), 0) "
    "FROM (SELECT DISTINCT currency FROM ledger_accounts) c ORDER BY c.currency"
)


def fund_position(*, session: Db) -> list[FundPosition]:
    """The guarantee fund, per currency."""
    rows = driver_connection(session).execute(_FUND).fetchall()
    return [FundPosition(r[0], *(int(v) for v in r[1:])) for r in rows]


@dataclass(frozen=True, slots=True)
class ClientMoney:
    client_id: uuid.UUID
    email: str
    name: str
    balance_cents: int
    held_cents: int
    owed_cents: int
    credit_limit_cents: int


_CLIENTS = (
    "SELECT u.id, u.email, u.name, "
    "COALESCE(SUM(CASE WHEN a.kind = 'client_balance' AND t.to_account = a.id THEN t.amount_cents "
    "WHEN a.kind = 'client_balance' THEN -t.amount_cents END), 0), "
    "COALESCE(SUM(CASE WHEN a.kind = 'client_hold' AND t.to_account = a.id THEN t.amount_cents "
    "WHEN a.kind = 'client_hold' THEN -t.amount_cents END), 0), "
    "COALESCE(SUM(CASE WHEN a.kind = 'client_receivable' AND t.to_account = a.id THEN -t.amount_cents "
    "WHEN a.kind = 'client_receivable' THEN t.amount_cents END), 0), "
    "COALESCE((SELECT limit_cents FROM credit_lines l WHERE l.client_id = u.id AND l.currency = %(currency)s), 0) "
    "FROM users u LEFT JOIN ledger_accounts a ON a.owner_id = u.id AND a.currency = %(currency)s "
    "LEFT JOIN ledger_transfers t ON t.to_account = a.id OR t.from_account = a.id "
    "WHERE u.role = 'client' GROUP BY u.id, u.email, u.name ORDER BY u.email LIMIT %(limit)s OFFSET %(offset)s"
)


def clients_money(*, session: Db, currency: str, limit: int = 100, offset: int = 0) -> list[ClientMoney]:
    """Clients with their balance, hold, what they owe and their credit line, by email."""
    rows = (
        driver_connection(session)
        .execute(_CLIENTS, {"currency": currency, "limit": limit, "offset": offset})
        .fetchall()
    )
    return [ClientMoney(r[0], r[1], r[2], *(int(v) for v in r[3:])) for r in rows]


# --- invoices ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invoice:
    number: int
    contract_id: uuid.UUID
    week_start: datetime
    currency: str
    amount_cents: int
    client_paid_cents: int
    guarantee_paid_cents: int
    content_hash: str
    issued_at: datetime


_INVOICE = (
    "SELECT number, contract_id, week_start, currency, amount_cents, client_paid_cents, guarantee_paid_cents, "
    "content_hash, issued_at FROM invoices WHERE contract_id = %(contract)s AND week_start = %(week)s"
)
_LOCK_WEEK = (
    "SELECT pg_advisory_xact_lock(hashtextextended('invoice:' || %(contract)s::text || %(week)s::text, 0))"
)
_PAID = (
    "SELECT COALESCE(SUM(amount_cents) FILTER (WHERE kind = 'charge'), 0), "
    "COALESCE(SUM(amount_cents) FILTER (WHERE kind = 'guarantee_payout'), 0) "
    "FROM ledger_transfers WHERE contract_id = %(contract)s AND week_start = %(week)s"
)
_ISSUE = (
    "INSERT INTO invoices (contract_id, week_start, currency, amount_cents, client_paid_cents, "
    "guarantee_paid_cents, content_hash, issued_at) VALUES (%(contract)s, %(week)s, %(currency)s, %(amount)s, "
    "%(client)s, %(guarantee)s, %(hash)s, now())"
)


def find_invoice(*, session: Db, contract_id: uuid.UUID, week_start: datetime) -> Invoice | None:
    row = (
        driver_connection(session).execute(_INVOICE, {"contract": contract_id, "week": week_start}).fetchone()
    )
    return Invoice(*row) if row is not None else None


def issue_invoice(
    *, session: Db, contract_id: uuid.UUID, week_start: datetime, currency: str, content_hash: str
) -> Invoice | None:
    """The week's invoice, issued on first call with the next number; None while nobody paid for the week.
    The week is locked first, so two first calls never take two numbers; an issued invoice never changes
    (a trigger refuses updates and deletes)."""
    connection = driver_connection(session)
    params = {"contract": contract_id, "week": week_start}
    found = find_invoice(session=session, contract_id=contract_id, week_start=week_start)
    if found is not None:
        return found
    connection.execute(_LOCK_WEEK, params)
    found = find_invoice(session=session, contract_id=contract_id, week_start=week_start)
    if found is not None:
        return found
    row = connection.execute(_PAID, params).fetchone()
    client_paid, guarantee_paid = (int(row[0]), int(row[1])) if row else (0, 0)
    if client_paid + guarantee_paid == 0:
        return None
    connection.execute(
        _ISSUE,
        {**params, "currency": currency, "amount": client_paid + guarantee_paid, "client": client_paid,
         "guarantee": guarantee_paid, "hash": content_hash},
    )  # fmt: skip
    return find_invoice(session=session, contract_id=contract_id, week_start=week_start)


_INVOICES_OF = (
    "SELECT i.number, i.contract_id, i.week_start, i.currency, i.amount_cents, i.client_paid_cents, "
    "i.guarantee_paid_cents, i.content_hash, i.issued_at FROM invoices i JOIN contracts c ON c.id = i.contract_id "
    "WHERE c.client_id = %(who)s OR c.provider_id = %(who)s ORDER BY i.number DESC LIMIT %(limit)s"
)


def invoices_of(*, session: Db, user_id: uuid.UUID, limit: int = 200) -> list[Invoice]:
    rows = driver_connection(session).execute(_INVOICES_OF, {"who": user_id, "limit": limit}).fetchall()
    return [Invoice(*r) for r in rows]


_BODIES = (
    "SELECT s.week_start, s.body FROM timesheet_snapshots s JOIN contracts c ON c.id = s.contract_id "
    "WHERE (c.client_id = %(who)s OR c.provider_id = %(who)s) AND s.week_start >= %(since)s ORDER BY s.week_start"
)


def week_bodies(*, session: Db, user_id: uuid.UUID, since: datetime) -> list[tuple[datetime, dict]]:
    """The frozen weeks (their snapshot bodies) of the user's contracts since ``since``, oldest first."""
    rows = driver_connection(session).execute(_BODIES, {"who": user_id, "since": since}).fetchall()
    return [(r[0], r[1]) for r in rows]
