"""What secures a contract-week, so the guarantee never pays more than money the platform holds or credit
an admin explicitly granted (docs/design.md, "The guarantee and what secures it").

- When a week starts, its timesheet workflow **holds** the client's balance up to the week's maximum (rate
  times weekly limit): a transfer ``client_balance → client_hold``. What the balance cannot cover is
  **reserved** against the client's credit line, if an admin granted one. At the freeze the workflow tops
  both up to the frozen amount (the client may have funded the balance during the week).
- When the week is settled the money is **collected**: from the hold first (``client_hold → escrow``), the
  rest of the hold goes back to the balance, and what the hold did not cover is charged to the balance.
- If that charge fails, the guarantee may pay the guaranteed time the hold did not pay for, capped by the
  credit the week reserved (``domain.settlement.collection_plan``). A client with nothing held and no
  credit creates no guaranteed exposure.

Each step is one transaction, idempotent by its business keys: the week's row in ``week_security`` is
locked first, so a retried or concurrent attempt finds what the first did. Plain SQL on the driver's
connection, like the ledger (these run for every contract-week)."""

from __future__ import annotations

import uuid
from datetime import datetime

from domain.calendar import as_utc
from domain.messages import Collection, Security
from domain.money import check_cents, check_currency
from domain.settlement import collection_plan
from store import ledger
from store.db import Db, driver_connection
from store.models import CreditLine

__all__ = ["CreditLine", "available_credit", "collect_week", "secure_week", "secured", "set_credit_line"]

_ENSURE_ROW = (
    "INSERT INTO week_security (contract_id, week_start, client_id, currency, held_cents, credit_cents, updated_at) "
    "VALUES (%(contract)s, %(week)s, %(client)s, %(currency)s, 0, 0, now()) "
    "ON CONFLICT ON CONSTRAINT pk_week_security DO NOTHING"
)
_LOCK_ROW = (
    "SELECT held_cents, credit_cents, collected_at, from_hold_cents, from_balance_cents, rest_failed, "
    "guarantee_cap_cents, reason FROM week_security "
    "WHERE contract_id = %(contract)s AND week_start = %(week)s FOR UPDATE"
)
_READ_ROW = "SELECT held_cents, credit_cents FROM week_security WHERE contract_id = %(contract)s AND week_start = %(week)s"
_UPDATE_SECURED = (
    "UPDATE week_security SET held_cents = %(held)s, credit_cents = %(credit)s, updated_at = now() "
    "WHERE contract_id = %(contract)s AND week_start = %(week)s"
)
_COLLECTED = (
    "UPDATE week_security SET collected_at = now(), updated_at = now(), from_hold_cents = %(from_hold)s, "
    "from_balance_cents = %(from_balance)s, rest_failed = %(failed)s, guarantee_cap_cents = %(cap)s, "
    "reason = %(reason)s WHERE contract_id = %(contract)s AND week_start = %(week)s"
)
_CREDIT_LINE = (
    "SELECT limit_cents FROM credit_lines WHERE client_id = %(client)s AND currency = %(currency)s FOR UPDATE"
)
_RESERVED = (
    "SELECT COALESCE(SUM(credit_cents), 0) FROM week_security "
    "WHERE client_id = %(client)s AND currency = %(currency)s AND collected_at IS NULL"
)
_SET_CREDIT_LINE = (
    "INSERT INTO credit_lines (client_id, currency, limit_cents, reason, granted_by, updated_at) "
    "VALUES (%(client)s, %(currency)s, %(limit)s, %(reason)s, %(by)s, now()) "
    "ON CONFLICT ON CONSTRAINT pk_credit_lines DO UPDATE SET limit_cents = EXCLUDED.limit_cents, "
    "reason = EXCLUDED.reason, granted_by = EXCLUDED.granted_by, updated_at = now()"
)


def _week(week_start: datetime) -> str:
    return f"{as_utc(week_start):%Y-%m-%d}"


def secured(*, session: Db, contract_id: uuid.UUID, week_start: datetime) -> Security:
    """What is secured for the week now (nothing before the week's workflow secured it)."""
    row = (
        driver_connection(session)
        .execute(_READ_ROW, {"contract": contract_id, "week": week_start})
        .fetchone()
    )
    return Security(held_cents=int(row[0]), credit_cents=int(row[1])) if row else Security()


def available_credit(*, session: Db, client_id: uuid.UUID, currency: str, lock: bool = False) -> int:
    """The client's credit line less what open weeks reserved and what the client owes after payouts."""
    connection = driver_connection(session)
    query = _CREDIT_LINE if lock else _CREDIT_LINE.replace(" FOR UPDATE", "")
    row = connection.execute(query, {"client": client_id, "currency": currency}).fetchone()
    if row is None:
        return 0
    reserved = connection.execute(_RESERVED, {"client": client_id, "currency": currency}).fetchone()
    receivable = ledger.account(
        session=session, kind="client_receivable", owner_id=client_id, currency=currency
    )
    owed = -ledger.balance(session=session, account_id=receivable.id)
    return max(int(row[0]) - int(reserved[0] if reserved else 0) - max(owed, 0), 0)


def set_credit_line(
    *, session: Db, client_id: uuid.UUID, currency: str, limit_cents: int, reason: str, granted_by: uuid.UUID
) -> None:
    """An admin's decision: the platform accepts up to ``limit_cents`` of guaranteed exposure for this
    client beyond the client's held money (0 withdraws the line; weeks already secured keep theirs)."""
    check_cents(limit_cents, what="limit_cents")
    driver_connection(session).execute(
        _SET_CREDIT_LINE,
        {"client": client_id, "currency": check_currency(currency), "limit": limit_cents, "reason": reason[:500],
         "by": granted_by},
    )  # fmt: skip


def secure_week(
    *, session: Db, contract_id: uuid.UUID, client_id: uuid.UUID, week_start: datetime, currency: str,
    target_cents: int, stage: str,
) -> Security:  # fmt: skip
    """Raise what is secured for the week towards ``target_cents``: hold the client's balance first, then
    reserve credit. Never lowers it; a week already collected is left as it is."""
    check_cents(target_cents, what="target_cents")
    connection = driver_connection(session)
    params = {"contract": contract_id, "week": week_start, "client": client_id, "currency": currency}
    connection.execute(_ENSURE_ROW, params)
    row = connection.execute(_LOCK_ROW, params).fetchone()
    assert row is not None
    held, credit, collected_at = int(row[0]), int(row[1]), row[2]
    if collected_at is not None:
        return Security(held_cents=held, credit_cents=credit)
    key = f"hold:{contract_id}:{_week(week_start)}:{stage}"
    done = ledger.find_transfer(session=session, key=key)
    if done is None and held + credit < target_cents:
        # Locked: a charge of another week of the same client cannot spend the same funds meanwhile.
        balance_account = ledger.account(
            session=session, kind="client_balance", owner_id=client_id, currency=currency, lock=True
        )
        amount = min(
            target_cents - held - credit,
            max(ledger.balance(session=session, account_id=balance_account.id), 0),
        )
        if amount > 0:
            hold = ledger.account(session=session, kind="client_hold", owner_id=client_id, currency=currency)
            ledger.transfer(
                session=session, key=key, source=balance_account, target=hold, amount_cents=amount, kind="hold",
                contract_id=contract_id, week_start=week_start, memo=f"held for the week ({stage})",
            )  # fmt: skip
            held += amount
    if held + credit < target_cents:
        more = min(target_cents - held - credit, available_credit(session=session, client_id=client_id,
                                                                  currency=currency, lock=True))  # fmt: skip
        credit += max(more, 0)
    connection.execute(_UPDATE_SECURED, {**params, "held": held, "credit": credit})
    return Security(held_cents=held, credit_cents=credit)


def collect_week(
    *, session: Db, contract_id: uuid.UUID, client_id: uuid.UUID, provider_id: uuid.UUID, week_start: datetime,
    currency: str, owed_cents: int, guaranteed_cents: int,
) -> Collection:  # fmt: skip
    """Collect the week once: the hold pays first (its rest goes back to the balance), the balance pays
    what the hold did not; the answer says what the guarantee may still pay if that failed."""
    connection = driver_connection(session)
    params = {"contract": contract_id, "week": week_start, "client": client_id, "currency": currency}
    connection.execute(_ENSURE_ROW, params)
    row = connection.execute(_LOCK_ROW, params).fetchone()
    assert row is not None
    held, credit, collected_at = int(row[0]), int(row[1]), row[2]
    if collected_at is not None:  # a retry: the first attempt's answer
        return Collection(from_hold_cents=int(row[3]), from_balance_cents=int(row[4]), rest_failed=bool(row[5]),
                          guarantee_cap_cents=int(row[6]), reason=str(row[7] or ""))  # fmt: skip
    plan = collection_plan(
        owed_cents=owed_cents, guaranteed_cents=guaranteed_cents, held_cents=held, credit_cents=credit
    )
    week = _week(week_start)
    hold = ledger.account(session=session, kind="client_hold", owner_id=client_id, currency=currency)
    escrow = ledger.account(session=session, kind="escrow", owner_id=provider_id, currency=currency)
    if plan.from_hold_cents:
        ledger.transfer(
            session=session, key=f"charge:{contract_id}:{week}", source=hold, target=escrow,
            amount_cents=plan.from_hold_cents, kind="charge", contract_id=contract_id, week_start=week_start,
            memo="timesheet charge, from the week's hold",
        )  # fmt: skip
    balance_account = ledger.account(
        session=session, kind="client_balance", owner_id=client_id, currency=currency, lock=True
    )
    if plan.hold_released_cents:
        ledger.transfer(
            session=session, key=f"hold-release:{contract_id}:{week}", source=hold, target=balance_account,
            amount_cents=plan.hold_released_cents, kind="hold_release", contract_id=contract_id,
            week_start=week_start, memo="the unused hold, back to the balance",
        )  # fmt: skip
    from_balance, failed, reason = 0, False, ""
    if plan.rest_cents:
        available = ledger.balance(session=session, account_id=balance_account.id)
        if available >= plan.rest_cents:
            ledger.transfer(
                session=session, key=f"charge-rest:{contract_id}:{week}", source=balance_account, target=escrow,
                amount_cents=plan.rest_cents, kind="charge", contract_id=contract_id, week_start=week_start,
                memo="timesheet charge, beyond the week's hold",
            )  # fmt: skip
            from_balance = plan.rest_cents
        else:
            failed = True
            reason = (
                f"the client's prepaid balance is {available} cents; {plan.rest_cents} cents beyond the week's "
                "hold are due: fund the balance"
            )
    cap = plan.guarantee_cap_cents if failed else 0
    connection.execute(
        _COLLECTED,
        {**params, "from_hold": plan.from_hold_cents, "from_balance": from_balance, "failed": failed, "cap": cap,
         "reason": reason},
    )  # fmt: skip
    return Collection(
        from_hold_cents=plan.from_hold_cents, from_balance_cents=from_balance, rest_failed=failed, reason=reason,
        guarantee_cap_cents=cap,
    )  # fmt: skip
