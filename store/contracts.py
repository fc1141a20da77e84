"""Contracts, their Work View intervals, and who may see them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session, col, func, or_, select

from domain.calendar import as_utc, slot_end, slot_start
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from domain.money import check_cents, check_currency
from domain.text import MAX_TITLE_CHARS, check_text
from domain.timesheet import ContractTerms, check_weekly_limit
from domain.timesheet import WorkViewInterval as TermsInterval
from store.models import Contract, User, WorkViewInterval, utcnow


def create_offer(
    *,
    session: Session,
    client: User,
    provider_id: uuid.UUID,
    title: str,
    rate_cents: int,
    currency: str,
    weekly_limit_hours: int,
    manual_allowed: bool,
    work_view: bool,
    max_rate_cents: int | None = None,
) -> Contract:
    if client.role != "client":
        raise Forbidden("only clients make contract offers", "role_required")
    provider = session.get(User, provider_id)
    if provider is None or provider.role != "provider" or provider.disabled_at is not None:
        raise InvalidInput(
            f"provider {provider_id} is not a provider on this platform: check the id", "provider_unknown"
        )
    title = check_text(title, what="title", max_chars=MAX_TITLE_CHARS)
    if not title:
        raise InvalidInput("give the contract a title", "invalid_input")
    check_cents(rate_cents, what="rate_cents")
    if max_rate_cents is not None and rate_cents > max_rate_cents:
        raise InvalidInput(
            f"rate_cents {rate_cents} is above this platform's ceiling of {max_rate_cents} cents an hour",
            "rate_too_high",
        )
    check_weekly_limit(weekly_limit_hours)
    contract = Contract(
        client_id=client.id,
        provider_id=provider.id,
        title=title,
        rate_cents=rate_cents,
        currency=check_currency(currency),
        weekly_limit_hours=weekly_limit_hours,
        manual_allowed=manual_allowed,
        work_view_initial=work_view,
    )
    session.add(contract)
    session.flush()
    return contract


def visible_contract(*, session: Session, user: User, contract_id: uuid.UUID, lock: bool = False) -> Contract:
    """The contract if ``user`` is a party to it (or support/admin); a stranger gets 404, never 403,
    so ids of other parties' contracts cannot be probed."""
    query = select(Contract).where(Contract.id == contract_id)
    if lock:
        query = query.with_for_update()
    contract = session.exec(query).first()
    if contract is None or not can_see(user, contract):
        raise NotFound(f"no contract {contract_id} that you are a party to", "contract_not_found")
    return contract


def can_see(user: User, contract: Contract) -> bool:
    return user.role in ("support", "admin") or user.id in (contract.client_id, contract.provider_id)


def list_contracts(
    *, session: Session, user: User, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Contract], int]:
    query = select(Contract)
    if user.role not in ("support", "admin"):
        query = query.where(or_(Contract.client_id == user.id, Contract.provider_id == user.id))
    if status:
        query = query.where(Contract.status == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Contract.created_at).desc()).offset(offset).limit(limit)).all()
    return list(rows), int(total)


def accept(*, session: Session, provider: User, contract: Contract, now: datetime | None = None) -> Contract:
    if contract.provider_id != provider.id:
        raise Forbidden("only the contract's provider can accept it", "not_a_party")
    if contract.status == "active":
        return contract
    if contract.status != "offered":
        raise Conflict(
            f"the contract is {contract.status}; only an offered contract can be accepted",
            "contract_not_active",
        )
    now = as_utc(now or utcnow())
    contract.status = "active"
    contract.accepted_at = now
    session.add(contract)
    if contract.work_view_initial:
        session.add(WorkViewInterval(contract_id=contract.id, start=slot_start(now)))
    session.flush()
    return contract


def close_offer(*, session: Session, user: User, contract: Contract, status: str) -> Contract:
    """The client withdraws (``withdrawn``) or the provider declines (``declined``) an offer that is
    still open; nothing else about the contract changes and no workflow ever ran."""
    if status == "withdrawn" and contract.client_id != user.id:
        raise Forbidden("only the client who made the offer can withdraw it", "not_a_party")
    if status == "declined" and contract.provider_id != user.id:
        raise Forbidden("only the provider it was made to can decline an offer", "not_a_party")
    if contract.status == status:
        return contract
    if contract.status != "offered":
        raise Conflict(
            f"the offer is {contract.status} already: only an open offer can be {status}", "offer_closed"
        )
    contract.status = status
    contract.ended_at = utcnow()
    session.add(contract)
    session.flush()
    return contract


def intervals(*, session: Session, contract_id: uuid.UUID) -> list[WorkViewInterval]:
    query = select(WorkViewInterval).where(WorkViewInterval.contract_id == contract_id)
    return list(session.exec(query.order_by(col(WorkViewInterval.start))).all())


def work_view_on(*, session: Session, contract_id: uuid.UUID, at: datetime) -> bool:
    return terms_of(session=session, contract=session.get(Contract, contract_id)).work_view_on(at)  # type: ignore[arg-type]


def set_work_view(*, session: Session, contract: Contract, on: bool, now: datetime | None = None) -> datetime:
    """Turn Work View on or off from the next slot; returns when the change takes effect."""
    if contract.status != "active":
        raise Conflict(
            f"the contract is {contract.status}: Work View can only change on an active contract",
            "contract_not_active",
        )
    effective = slot_end(as_utc(now or utcnow()))
    rows = intervals(session=session, contract_id=contract.id)
    open_row = next((r for r in rows if r.end is None), None)
    if on and open_row is None:
        session.add(WorkViewInterval(contract_id=contract.id, start=effective))
    elif not on and open_row is not None:
        if open_row.start >= effective:  # switched on and off within one slot: nothing remains
            session.delete(open_row)
        else:
            open_row.end = effective
            session.add(open_row)
    session.flush()
    return effective


def end_contract(*, session: Session, contract: Contract, now: datetime | None = None) -> Contract:
    if contract.status == "ended":
        return contract
    if contract.status not in ("active", "offered"):
        raise Conflict(f"the contract is {contract.status} and cannot be ended", "contract_not_active")
    now = as_utc(now or utcnow())
    contract.status = "ended" if contract.status == "active" else "declined"
    contract.ended_at = now
    for row in intervals(session=session, contract_id=contract.id):
        if row.end is None:
            if row.start >= now:
                session.delete(row)
            else:
                row.end = now
                session.add(row)
    session.add(contract)
    session.flush()
    return contract


def terms_of(*, session: Session, contract: Contract) -> ContractTerms:
    return ContractTerms(
        contract_id=str(contract.id),
        rate_cents=contract.rate_cents,
        currency=contract.currency,
        weekly_limit_hours=contract.weekly_limit_hours,
        manual_allowed=contract.manual_allowed,
        work_view=[
            TermsInterval(start=r.start, end=r.end)
            for r in intervals(session=session, contract_id=contract.id)
        ],
    )
