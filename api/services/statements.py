"""Money people can read (docs/design.md, "Statements and invoices"): a client's statement with a running
balance, a provider's earnings per week and per contract, and the guarantee fund's position. Everything
is read from the ledger (``store/statements.py``); nothing here moves money."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from sqlmodel import Session

from api.schemas import (
    EarningContractPublic,
    EarningsPublic,
    EarningWeekPublic,
    FundPositionPublic,
    StatementLinePublic,
    StatementPublic,
)
from domain.calendar import iso_week_name, week_start
from domain.errors import Forbidden
from domain.money import check_currency
from domain.timesheet import Timesheet, TimesheetEntry
from store import statements
from store.audit import audit
from store.models import User, utcnow

# Weeks whose money is final: each gets an invoice (the hold and the guarantee have both paid what they
# will). A week still waiting for support's payout decision gets its invoice when that is decided.
INVOICED_STATUSES = frozenset({"charged", "paid_by_guarantee", "settled"})


def _need(user: User, role: str, what: str) -> None:
    if user.role != role:
        raise Forbidden(f"{what} is for a {role}; you are {user.role}", "role_required")


def statement(
    session: Session, user: User, currency: str = "USD", last: int | None = None
) -> StatementPublic:
    """The client's statement: every top-up, hold, charge and hold release, oldest first, with the
    running available balance and hold; the last line's figures equal the ledger's balances. ``last``
    keeps only the newest lines (their running figures still count everything before them)."""
    _need(user, "client", "a statement")
    currency = check_currency(currency)
    lines = statements.client_statement(session=session, client_id=user.id, currency=currency)
    total = len(lines)
    if last is not None:
        lines = lines[-last:] if last else []
    balances = statements.owner_balances(session=session, owner_id=user.id)
    return StatementPublic(
        client_id=user.id, currency=currency,
        balance_cents=balances.get(("client_balance", currency), 0),
        held_cents=balances.get(("client_hold", currency), 0),
        owed_cents=-balances.get(("client_receivable", currency), 0), total_lines=total,
        lines=[
            StatementLinePublic(
                at=line.at, kind=line.kind, contract_id=line.contract_id, week_start=line.week_start, memo=line.memo,
                amount_cents=line.available_change, held_change_cents=line.held_change, balance_cents=line.available,
                held_cents=line.held,
            )
            for line in lines
        ],
    )  # fmt: skip


def _week_public(
    week: statements.EarningWeek, numbers: dict[tuple[uuid.UUID, str], int]
) -> EarningWeekPublic:
    return EarningWeekPublic(
        contract_id=week.contract_id, title=week.title, week_start=week.week_start,
        iso_week=iso_week_name(week.week_start), status=week.status, billable_minutes=week.billable_minutes,
        amount_cents=week.amount_cents, charged_cents=week.charged_cents, guarantee_cents=week.guarantee_cents,
        in_review_cents=week.in_review_cents, in_escrow_cents=week.in_escrow_cents,
        released_cents=week.released_cents,
        invoice_number=numbers.get((week.contract_id, f"{week.week_start:%Y-%m-%d}")),
    )  # fmt: skip


def _invoice_numbers(session: Session, user: User) -> dict[tuple[uuid.UUID, str], int]:
    return {
        (i.contract_id, f"{i.week_start:%Y-%m-%d}"): i.number
        for i in statements.invoices_of(session=session, user_id=user.id, limit=1000)
    }


def weeks(session: Session, user: User, currency: str = "USD") -> list[EarningWeekPublic]:
    """The frozen weeks of the user's contracts (as provider or client), newest first."""
    currency = check_currency(currency)
    if user.role == "provider":
        found = statements.earning_weeks(session=session, provider_id=user.id)
    else:
        found = statements.earning_weeks(session=session, client_id=user.id)
    rows = [w for w in found if w.currency == currency]
    numbers = _invoice_numbers(session, user)
    return [_week_public(w, numbers) for w in rows]


def currencies(session: Session, user: User) -> list[str]:
    """The currencies the user has money or weeks in (USD when none yet)."""
    found = {currency for _, currency in statements.owner_balances(session=session, owner_id=user.id)}
    if user.role == "provider":
        found |= {w.currency for w in statements.earning_weeks(session=session, provider_id=user.id)}
    else:
        found |= {w.currency for w in statements.earning_weeks(session=session, client_id=user.id)}
    return sorted(found) or ["USD"]


def earnings(session: Session, user: User, currency: str = "USD") -> EarningsPublic:
    """The provider's money: in review (billed, unpaid), in escrow (the security period), released and
    available, per week and per contract."""
    _need(user, "provider", "earnings")
    currency = check_currency(currency)
    listed = weeks(session, user, currency)
    per_contract: dict[uuid.UUID, EarningContractPublic] = {}
    totals: dict[str, int] = defaultdict(int)
    for week in listed:
        line = per_contract.setdefault(
            week.contract_id,
            EarningContractPublic(contract_id=week.contract_id, title=week.title, amount_cents=0, in_review_cents=0,
                                  in_escrow_cents=0, released_cents=0),
        )  # fmt: skip
        for name in ("amount_cents", "in_review_cents", "in_escrow_cents", "released_cents"):
            setattr(line, name, getattr(line, name) + getattr(week, name))
            totals[name] += getattr(week, name)
    balances = statements.owner_balances(session=session, owner_id=user.id)
    available = balances.get(("provider_available", currency), 0)
    return EarningsPublic(
        provider_id=user.id, currency=currency, in_review_cents=totals["in_review_cents"],
        in_escrow_cents=balances.get(("escrow", currency), 0), available_cents=available,
        paid_out_cents=max(totals["released_cents"] - available, 0), released_cents=totals["released_cents"],
        weeks=listed, contracts=sorted(per_contract.values(), key=lambda c: c.title),
    )  # fmt: skip


def fund_position(session: Session, admin: User) -> list[FundPositionPublic]:
    """The guarantee fund per currency: paid out, recovered from clients, still owed."""
    _need(admin, "admin", "the guarantee fund's position")
    audit(
        session=session,
        actor=admin,
        action="admin.read",
        subject_type="guarantee_fund",
        subject_id="position",
    )
    return [
        FundPositionPublic(
            currency=p.currency, paid_out_cents=p.paid_out_cents, recovered_cents=p.recovered_cents,
            outstanding_cents=p.outstanding_cents, balance_cents=p.balance_cents,
        )
        for p in statements.fund_position(session=session)
    ]  # fmt: skip


def clients_money(
    session: Session, admin: User, currency: str = "USD", *, limit: int = 100, offset: int = 0
) -> list[statements.ClientMoney]:
    """Clients by email with their balance, hold, debt and credit line."""
    _need(admin, "admin", "the clients' balances")
    audit(session=session, actor=admin, action="admin.read", subject_type="users", subject_id="money",
          detail={"offset": offset})  # fmt: skip
    return statements.clients_money(
        session=session, currency=check_currency(currency), limit=limit, offset=offset
    )


@dataclass(frozen=True)
class WorkSplit:
    """Billable minutes split the way the charts show them."""

    guaranteed: int = 0
    other: int = 0  # billable, not guaranteed, not manual
    manual: int = 0

    def add(self, entry: TimesheetEntry) -> WorkSplit:
        manual = entry.billable_minutes if entry.kind == "manual" else 0
        other = 0 if entry.kind == "manual" else entry.billable_minutes - entry.guaranteed_minutes
        return WorkSplit(self.guaranteed + entry.guaranteed_minutes, self.other + other, self.manual + manual)


def split_by_day(sheet: Timesheet, tz: tzinfo = UTC) -> list[tuple[date, WorkSplit]]:
    """Each day the week touches in ``tz`` (seven in UTC, eight elsewhere: the UTC week straddles two
    local Mondays), with the billable time that starts on it."""
    first = sheet.week_start.astimezone(tz).date()
    last = (sheet.week_start + timedelta(days=7, microseconds=-1)).astimezone(tz).date()
    days = {first + timedelta(days=i): WorkSplit() for i in range((last - first).days + 1)}
    for entry in sheet.entries:
        day = entry.start.astimezone(tz).date()
        days[day] = days.get(day, WorkSplit()).add(entry)
    return sorted(days.items())


def work_by_week(session: Session, user: User, weeks_back: int = 12) -> list[tuple[datetime, WorkSplit]]:
    """The user's billable time per week over the last ``weeks_back`` weeks, oldest first (all contracts;
    weeks without a frozen timesheet count zero)."""
    first = week_start(utcnow()) - timedelta(days=7 * weeks_back)
    totals = {first + timedelta(days=7 * i): WorkSplit() for i in range(weeks_back)}
    for start, body in statements.week_bodies(session=session, user_id=user.id, since=first):
        sheet = Timesheet.model_validate(body)
        split = totals.get(week_start(start), WorkSplit())
        for entry in sheet.entries:
            split = split.add(entry)
        if week_start(start) in totals:
            totals[week_start(start)] = split
    return sorted(totals.items())
