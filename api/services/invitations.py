"""Invitations by email: a client invites a provider to an hourly offer (or offers an existing provider
a contract directly), an admin invites staff. The link is single-use, random, stored hashed and lasts 7
days; accepting creates the account if needed and goes through the contract's own accept use case."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from api.schemas import InvitationPublic, OfferTerms
from api.services import Services, contracts, mail
from domain.accounts import check_password
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from domain.money import check_cents, check_currency, format_money
from domain.text import MAX_TITLE_CHARS, check_text
from domain.timesheet import check_weekly_limit
from store import accounts as accounts_repo
from store import contracts as contracts_repo
from store import invitations as repo
from store.audit import audit
from store.models import Invitation, User, utcnow
from store.users import check_email, create_user


def check_offer(offer: OfferTerms, max_rate_cents: int | None = None) -> dict[str, Any]:
    title = check_text(offer.title, what="title", max_chars=MAX_TITLE_CHARS)
    if not title:
        raise InvalidInput("give the contract a title")
    check_cents(offer.rate_cents, what="rate_cents")
    if max_rate_cents is not None and offer.rate_cents > max_rate_cents:
        raise InvalidInput(
            f"rate_cents {offer.rate_cents} is above this platform's ceiling of {max_rate_cents} cents an hour",
            "rate_too_high",
        )
    check_weekly_limit(offer.weekly_limit_hours)
    return {**offer.model_dump(), "title": title, "currency": check_currency(offer.currency)}


def _offer_words(offer: dict[str, Any]) -> dict[str, Any]:
    return {**offer, "rate": format_money(offer["rate_cents"], offer["currency"])}


def public(row: Invitation) -> InvitationPublic:
    return InvitationPublic(
        id=row.id, email=row.email, role=row.role, state=repo.state_of(row), offer=row.offer or None,
        contract_id=row.contract_id, created_at=row.created_at, sent_at=row.sent_at, expires_at=row.expires_at,
    )  # fmt: skip


def _mail(session: Session, services: Services, row: Invitation, secret: str, inviter: User) -> None:
    mail.send(session, services.settings, "invitation", row.email, inviter=inviter.name or inviter.email,
              role=row.role, offer=_offer_words(row.offer) if row.offer else None,
              link=f"{services.settings.base_url}/invite/{secret}",
              expires=f"{row.expires_at:%Y-%m-%d %H:%M} UTC")  # fmt: skip


def invite(session: Session, services: Services, user: User, *, email: str, role: str,
           offer: OfferTerms | None) -> InvitationPublic | uuid.UUID:  # fmt: skip
    """A client invites a provider with an offer; an admin invites support or admin staff. An address
    that is a provider's already gets the offer as a contract directly (its id is returned)."""
    email = check_email(email)
    if user.role == "client":
        if role != "provider" or offer is None:
            raise InvalidInput("a client invites a provider, with an offer (title, rate, currency, limit)")
        terms = check_offer(offer, services.settings.max_rate_cents)
        existing = accounts_repo.find_user(session=session, email=email)
        if existing is not None and existing.role == "provider" and existing.disabled_at is None:
            return offer_directly(session, services, user, existing, terms)
    elif user.role == "admin":
        if role not in ("support", "admin"):
            raise InvalidInput(
                "an admin invites support or admin staff; clients sign up, providers are invited"
            )
        terms = {}
    else:
        raise Forbidden("only clients (a provider, with an offer) and admins (staff) invite", "role_required")
    secret, row = repo.create(session=session, email=email, role=role, invited_by=user.id, offer=terms)
    _mail(session, services, row, secret, user)
    audit(session=session, actor=user, action="invitation.send", subject_type="invitation", subject_id=str(row.id),
          detail={"role": role})  # fmt: skip
    return public(row)


def offer_directly(
    session: Session, services: Services, client: User, provider: User, terms: dict[str, Any]
) -> uuid.UUID:
    made = contracts.offer(
        session, services.settings, client, provider_id=provider.id, title=terms["title"], rate_cents=terms["rate_cents"],
        currency=terms["currency"], weekly_limit_hours=terms["weekly_limit_hours"],
        manual_allowed=terms["manual_allowed"], work_view=terms["work_view"], mailed=True,
    )  # fmt: skip
    mail.send(session, services.settings, "offer", provider.email, name=provider.name,
              inviter=client.name or client.email, offer=_offer_words(terms),
              link=f"{services.settings.base_url}/contracts")  # fmt: skip
    return made.id


def sent(session: Session, user: User) -> list[InvitationPublic]:
    return [public(row) for row in repo.sent_by(session=session, user_id=user.id)]


def _own(session: Session, user: User, invitation_id: uuid.UUID) -> Invitation:
    row = session.get(Invitation, invitation_id, with_for_update=True)
    if row is None or row.invited_by != user.id:
        raise NotFound(f"no invitation {invitation_id} of yours")
    return row


def withdraw(session: Session, user: User, invitation_id: uuid.UUID) -> InvitationPublic:
    row = _own(session, user, invitation_id)
    if row.state != "pending":
        raise Conflict(f"the invitation was {row.state} already", "invitation_closed")
    row.state, row.answered_at = "withdrawn", utcnow()
    session.add(row)
    audit(
        session=session,
        actor=user,
        action="invitation.withdraw",
        subject_type="invitation",
        subject_id=str(row.id),
    )
    return public(row)


def resend(session: Session, services: Services, user: User, invitation_id: uuid.UUID) -> InvitationPublic:
    """A new link (the old one stops working), seven more days, and the mail again."""
    row = _own(session, user, invitation_id)
    if row.state != "pending":
        raise Conflict(f"the invitation was {row.state} already", "invitation_closed")
    secret = repo.renew(session=session, row=row)
    _mail(session, services, row, secret, user)
    audit(
        session=session,
        actor=user,
        action="invitation.resend",
        subject_type="invitation",
        subject_id=str(row.id),
    )
    return public(row)


@dataclass
class Shown:
    invitation: Invitation
    inviter: str
    offer: dict[str, Any] | None
    has_account: bool


def show(session: Session, secret: str) -> Shown:
    row = repo.by_secret(session=session, secret=secret)
    inviter = session.get(User, row.invited_by)
    return Shown(row, (inviter.name or inviter.email) if inviter else "", _offer_words(row.offer) if row.offer else None,
                 accounts_repo.find_user(session=session, email=row.email) is not None)  # fmt: skip


async def accept(services: Services, secret: str, viewer: User | None, *, name: str = "",
                 password: str = "") -> tuple[User, uuid.UUID | None]:  # fmt: skip
    """Accept by link: as the signed-in account (of the invitation's role), or as a new account made
    now (name and password). A provider's offer becomes a contract, accepted through the contract's own
    use case (which starts its workflow). The user and the contract's id."""

    def take(session: Session) -> tuple[User, uuid.UUID | None]:
        row = repo.by_secret(session=session, secret=secret, lock=True)
        if viewer is not None:
            user = session.get(User, viewer.id)
            assert user is not None
            if user.role != row.role:
                raise Forbidden(f"this invitation is for a {row.role}; you are signed in as a {user.role}: "
                                "sign out, then open the link again", "invitation_wrong_role")  # fmt: skip
        else:
            if accounts_repo.find_user(session=session, email=row.email) is not None:
                raise Conflict(
                    f"{row.email} has an account: sign in, then open the link again", "account_exists"
                )
            check_password(password)
            user = create_user(session=session, email=row.email, role=row.role, name=name, verified=True)
            accounts_repo.set_password(user, password)
            session.add(user)
        contract_id = None
        if row.offer:
            client = session.get(User, row.invited_by)
            assert client is not None
            contract_id = contracts_repo.create_offer(session=session, client=client, provider_id=user.id,
                                                      **_offer_args(row.offer)).id  # fmt: skip
        row.state, row.answered_at, row.contract_id = "accepted", utcnow(), contract_id
        session.add(row)
        audit(session=session, actor=user, action="invitation.accept", subject_type="invitation",
              subject_id=str(row.id))  # fmt: skip
        return user, contract_id

    user, contract_id = await services.db(take)
    if contract_id is not None:
        await contracts.accept(services, user, contract_id)
    return user, contract_id


def _offer_args(offer: dict[str, Any]) -> dict[str, Any]:
    keys = ("title", "rate_cents", "currency", "weekly_limit_hours", "manual_allowed", "work_view")
    return {key: offer[key] for key in keys}


def decline(session: Session, secret: str) -> Invitation:
    row = repo.by_secret(session=session, secret=secret, lock=True)
    row.state, row.answered_at = "declined", utcnow()
    session.add(row)
    audit(
        session=session,
        actor=None,
        action="invitation.decline",
        subject_type="invitation",
        subject_id=str(row.id),
    )
    return row
