"""Reading frozen weeks, disputes and the facts around a contract: the queries behind the week pages, the
contract list, the dispute queue and the support timeline. The API's services call these; no SQL is
written above ``store/``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, or_, select

from domain.calendar import week_start
from store import ledger
from store.models import Capture, Contract, Dispute, LedgerTransfer, ManualEntry, TimesheetSnapshot, User

OPEN_DISPUTE = ("disputed", "in_support")
IN_REVIEW_OR_DISPUTE = ("submitted", "disputed", "in_support", "payout_review")


def snapshot_of(*, session: Session, contract_id: uuid.UUID, week: datetime) -> TimesheetSnapshot | None:
    """The frozen week, or None while it is still open."""
    return session.exec(
        select(TimesheetSnapshot).where(
            TimesheetSnapshot.contract_id == contract_id, TimesheetSnapshot.week_start == week_start(week)
        )
    ).first()


def snapshots(*, session: Session, contract_id: uuid.UUID, limit: int = 52) -> list[TimesheetSnapshot]:
    """Frozen weeks of one contract, newest first."""
    return list(
        session.exec(
            select(TimesheetSnapshot)
            .where(TimesheetSnapshot.contract_id == contract_id)
            .order_by(col(TimesheetSnapshot.week_start).desc())
            .limit(limit)
        ).all()
    )


def recent_snapshots(
    *, session: Session, contract_ids: Sequence[uuid.UUID], per_contract: int = 6
) -> dict[uuid.UUID, list[TimesheetSnapshot]]:
    """The latest ``per_contract`` frozen weeks of each contract, newest first."""
    found: dict[uuid.UUID, list[TimesheetSnapshot]] = {}
    if not contract_ids:
        return found
    query = select(TimesheetSnapshot).where(col(TimesheetSnapshot.contract_id).in_(list(contract_ids)))
    for snap in session.exec(query.order_by(col(TimesheetSnapshot.week_start).desc())):
        weeks = found.setdefault(snap.contract_id, [])
        if len(weeks) < per_contract:
            weeks.append(snap)
    return found


def weeks_in_review(*, session: Session, contract_id: uuid.UUID, limit: int = 20) -> list[datetime]:
    """Weeks of a contract that wait for the client, the provider or support (oldest first)."""
    return list(
        session.exec(
            select(TimesheetSnapshot.week_start)
            .where(TimesheetSnapshot.contract_id == contract_id)
            .where(col(TimesheetSnapshot.status).in_(IN_REVIEW_OR_DISPUTE))
            .order_by(col(TimesheetSnapshot.week_start))
            .limit(limit)
        ).all()
    )


def users_by_id(*, session: Session, ids: Iterable[uuid.UUID | str]) -> dict[uuid.UUID, User]:
    """Users by id; ids that are not UUIDs or not known are left out."""
    wanted: set[uuid.UUID] = set()
    for value in ids:
        try:
            wanted.add(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except ValueError:
            continue
    if not wanted:
        return {}
    return {u.id: u for u in session.exec(select(User).where(col(User.id).in_(wanted))).all()}


@dataclass
class OpenDispute:
    snapshot: TimesheetSnapshot
    contract: Contract
    dispute: Dispute | None


def open_disputes(*, session: Session, limit: int, offset: int) -> tuple[list[OpenDispute], int]:
    """Timesheets with an open dispute, oldest dispute first (the status mirrors the workflow's)."""
    base = (
        select(TimesheetSnapshot, Contract, Dispute)
        .join(Contract, col(Contract.id) == col(TimesheetSnapshot.contract_id))
        .join(
            Dispute,
            (col(Dispute.contract_id) == col(TimesheetSnapshot.contract_id))
            & (col(Dispute.week_start) == col(TimesheetSnapshot.week_start)),
            isouter=True,
        )
        .where(col(TimesheetSnapshot.status).in_(OPEN_DISPUTE))
    )
    total = session.exec(select(func.count()).select_from(base.subquery())).one()
    rows = session.exec(
        base.order_by(col(Dispute.opened_at).asc().nulls_last(), col(TimesheetSnapshot.week_start))
        .offset(offset)
        .limit(limit)
    ).all()
    return [OpenDispute(snap, contract, dispute) for snap, contract, dispute in rows], int(total)


@dataclass
class ContractFacts:
    """What the support timeline reads from the database beside the workflow histories: the frozen weeks,
    the money, and the provider's edits (deleted captures, manual time), which a dispute turns on."""

    snapshots: list[TimesheetSnapshot]
    transfers: list[LedgerTransfer]
    deleted_captures: list[Capture]
    manual_entries: list[ManualEntry]


def contract_facts(*, session: Session, contract_id: uuid.UUID, limit: int = 5000) -> ContractFacts:
    snaps = list(
        session.exec(select(TimesheetSnapshot).where(TimesheetSnapshot.contract_id == contract_id)).all()
    )
    deleted = session.exec(
        select(Capture)
        .where(Capture.contract_id == contract_id, col(Capture.deleted_at).is_not(None))
        .order_by(col(Capture.deleted_at))
        .limit(limit)
    ).all()
    manual = session.exec(
        select(ManualEntry)
        .where(ManualEntry.contract_id == contract_id)
        .order_by(col(ManualEntry.created_at))
        .limit(limit)
    ).all()
    return ContractFacts(
        snaps, ledger.transfers_for(session=session, contract_id=contract_id), list(deleted), list(manual)
    )


@dataclass
class ContractParties:
    contract: Contract
    client: User | None
    provider: User | None


def contracts_matching(*, session: Session, text: str, limit: int = 50) -> list[uuid.UUID]:
    """Contracts whose title, or whose client's or provider's name or email, contains ``text`` (any case):
    what support types in the search box."""
    pattern = "%" + text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    client = aliased(User)
    provider = aliased(User)
    query = (
        select(Contract.id)
        .join(client, col(client.id) == col(Contract.client_id))
        .join(provider, col(provider.id) == col(Contract.provider_id))
        .where(
            or_(
                func.lower(Contract.title).like(pattern, escape="\\"),
                func.lower(client.name).like(pattern, escape="\\"),
                func.lower(client.email).like(pattern, escape="\\"),
                func.lower(provider.name).like(pattern, escape="\\"),
                func.lower(provider.email).like(pattern, escape="\\"),
            )
        )
        .order_by(col(Contract.created_at).desc())
        .limit(limit)
    )
    return list(session.exec(query).all())


def parties_of(*, session: Session, contract_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ContractParties]:
    ids = list(set(contract_ids))
    if not ids:
        return {}
    contracts = session.exec(select(Contract).where(col(Contract.id).in_(ids))).all()
    users = users_by_id(
        session=session, ids={c.client_id for c in contracts} | {c.provider_id for c in contracts}
    )
    return {c.id: ContractParties(c, users.get(c.client_id), users.get(c.provider_id)) for c in contracts}
