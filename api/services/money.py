"""Money an admin decides: the guarantee exposure the platform accepts for a client (a credit line), and
top-ups recorded for money received outside the platform."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from api.schemas import BalancePublic, CreditLinePublic
from domain.errors import NotFound
from domain.money import check_currency
from domain.text import MAX_REASON_CHARS, check_text
from store import ledger, security
from store.audit import audit
from store.models import User


def _client(session: Session, client_id: uuid.UUID) -> User:
    client = session.get(User, client_id)
    if client is None or client.role != "client":
        raise NotFound(f"no client {client_id}")
    return client


def credit_line(session: Session, admin: User, client_id: uuid.UUID, currency: str) -> CreditLinePublic:
    client = _client(session, client_id)
    currency = check_currency(currency)
    row = session.get(security.CreditLine, (client.id, currency))
    audit(
        session=session,
        actor=admin,
        action="admin.read",
        subject_type="credit_line",
        subject_id=str(client.id),
    )
    return CreditLinePublic(
        client_id=client.id, currency=currency, limit_cents=row.limit_cents if row else 0,
        available_cents=security.available_credit(session=session, client_id=client.id, currency=currency),
    )  # fmt: skip


def set_credit_line(
    session: Session, admin: User, client_id: uuid.UUID, currency: str, limit_cents: int, reason: str
) -> CreditLinePublic:
    """The guaranteed exposure the platform accepts for this client beyond the client's held money:
    weeks reserve it as they start, and the guarantee never pays more than a week reserved."""
    client = _client(session, client_id)
    currency = check_currency(currency)
    reason = check_text(reason, what="reason", max_chars=MAX_REASON_CHARS)
    security.set_credit_line(
        session=session, client_id=client.id, currency=currency, limit_cents=limit_cents, reason=reason,
        granted_by=admin.id,
    )  # fmt: skip
    audit(
        session=session, actor=admin, action="client.credit_line", subject_type="user", subject_id=str(client.id),
        detail={"currency": currency, "limit_cents": limit_cents, "reason": reason},
    )  # fmt: skip
    return credit_line(session, admin, client_id, currency)


def fund(
    session: Session, admin: User, client_id: uuid.UUID, amount_cents: int, currency: str, request_id: str
) -> BalancePublic:
    """Record money received for a client outside the platform (the prepaid adapter): a top-up of the
    client's balance, once per request id."""
    client = _client(session, client_id)
    currency = check_currency(currency)
    ledger.fund_client(
        session=session, client_id=client.id, amount_cents=amount_cents, currency=currency,
        key=f"funding:{client.id}:{request_id}", memo=f"funded by {admin.email}",
    )  # fmt: skip
    audit(
        session=session, actor=admin, action="client.fund", subject_type="user", subject_id=str(client.id),
        detail={"amount_cents": amount_cents, "currency": currency},
    )  # fmt: skip
    return balance(session, client.id, currency)


def balance(session: Session, client_id: uuid.UUID, currency: str) -> BalancePublic:
    receivable = ledger.account(
        session=session, kind="client_receivable", owner_id=client_id, currency=currency
    )
    return BalancePublic(
        client_id=client_id,
        currency=currency,
        balance_cents=ledger.client_balance(session=session, client_id=client_id, currency=currency),
        owed_cents=-ledger.balance(session=session, account_id=receivable.id),
    )
