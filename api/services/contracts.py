"""Contracts: the client's offer, the provider's acceptance (which starts the contract workflow), and
changes to a running contract (Work View, the weekly limit, the end), each an update of its workflow."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import Session
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.workflow import UpdateMethodMultiParam

from api.schemas import ContractPublic
from api.services import Services
from api.services.timesheets import actor
from api.temporal import domain_error
from domain.errors import Conflict, DomainError, Forbidden, InvalidInput
from domain.messages import (
    ContractRecord,
    ContractState,
    ContractTermsInput,
    EndContract,
    WeeklyLimitChange,
    WorkViewChange,
    WorkViewChanged,
)
from domain.text import MAX_REASON_CHARS, check_text
from store import contracts as repo
from store import notify
from store.accounts import find_user
from store.audit import audit
from store.models import Contract, TimesheetSnapshot, User, utcnow
from store.settings import Settings
from store.timesheets import recent_snapshots, users_by_id
from workflows.contract import ContractWorkflow, contract_workflow_id
from workflows.handles import update_name

R = TypeVar("R")
P = TypeVar("P")


def public(session: Session, contract: Contract) -> ContractPublic:
    terms = repo.terms_of(session=session, contract=contract)
    return ContractPublic(
        **contract.model_dump(exclude={"work_view_initial"}),
        work_view_on=contract.status == "active" and terms.work_view_on(utcnow()),
    )


def provider_named(session: Session, provider_id: uuid.UUID | None, email: str | None) -> uuid.UUID:
    """The provider an offer names, by id or by email address (exactly one of the two)."""
    if (provider_id is None) == (not email):
        raise InvalidInput("name the provider by provider_id or by provider_email (one of the two)")
    if provider_id is not None:
        return provider_id
    user = find_user(session=session, email=email or "")
    if user is None or user.role != "provider" or user.disabled_at is not None:
        raise InvalidInput(
            f"{email} is not a provider on this platform: invite them (POST /v1/invitations)",
            "provider_unknown",
        )
    return user.id


def offer(
    session: Session, settings: Settings, client: User, *, provider_id: uuid.UUID, title: str, rate_cents: int,
    currency: str, weekly_limit_hours: int, manual_allowed: bool, work_view: bool, mailed: bool = False,
) -> ContractPublic:  # fmt: skip
    """An hourly offer to a provider; it becomes active when the provider accepts it. The provider is
    notified (``mailed``: the caller mails the offer itself, so the notification only reaches the inbox)."""
    contract = repo.create_offer(
        session=session, client=client, provider_id=provider_id, title=title, rate_cents=rate_cents,
        currency=currency, weekly_limit_hours=weekly_limit_hours, manual_allowed=manual_allowed, work_view=work_view,
        max_rate_cents=settings.max_rate_cents,
    )  # fmt: skip
    audit(session=session, actor=client, action="contract.offer", subject_type="contract",
          subject_id=str(contract.id))  # fmt: skip
    notify.record(session, kind="offer_received", recipient_id=provider_id, dedupe_key=f"offer_received:{contract.id}",
                  contract_id=contract.id, payload={"title": title, "mailed": mailed})  # fmt: skip
    return public(session, contract)


def close_offer(session: Session, user: User, contract_id: uuid.UUID, status: str) -> ContractPublic:
    """The client withdraws an open offer (``withdrawn``), or the provider declines it (``declined``)."""
    contract = repo.visible_contract(session=session, user=user, contract_id=contract_id, lock=True)
    repo.close_offer(session=session, user=user, contract=contract, status=status)
    if status == "declined":
        notify.record(session, kind="offer_declined", recipient_id=contract.client_id,
                      dedupe_key=f"offer_declined:{contract.id}", contract_id=contract.id,
                      payload={"title": contract.title})  # fmt: skip
    audit(session=session, actor=user, action=f"contract.{status[:-2] if status == 'declined' else 'withdraw'}",
          subject_type="contract", subject_id=str(contract_id))  # fmt: skip
    return public(session, contract)


async def accept(services: Services, provider: User, contract_id: uuid.UUID) -> ContractPublic:
    """Accept an offer: the contract becomes active and its workflow starts. Safe to retry."""

    def activate(session: Session) -> tuple[ContractTermsInput, bool]:
        contract = repo.visible_contract(session=session, user=provider, contract_id=contract_id, lock=True)
        was_offered = contract.status == "offered"
        repo.accept(session=session, provider=provider, contract=contract)
        assert contract.accepted_at is not None
        return (
            ContractTermsInput(
                contract_id=str(contract.id), client_id=str(contract.client_id),
                provider_id=str(contract.provider_id), title=contract.title, rate_cents=contract.rate_cents,
                currency=contract.currency, weekly_limit_hours=contract.weekly_limit_hours,
                manual_allowed=contract.manual_allowed, work_view_on=contract.work_view_initial,
                accepted_at=contract.accepted_at,
            ),
            was_offered,
        )  # fmt: skip

    terms, was_offered = await services.db(activate)
    try:
        client = await services.temporal.client()
        await client.start_workflow(
            ContractWorkflow.run,
            ContractState(terms=terms, policy=services.settings.policy),
            id=contract_workflow_id(terms.contract_id),
            task_queue=services.temporal.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except Exception as error:
        if was_offered:  # undo, so a retry starts cleanly: never an active contract without its workflow

            def revert(session: Session) -> None:
                contract = session.get(Contract, contract_id, with_for_update=True)
                if contract is not None and contract.status == "active":
                    contract.status, contract.accepted_at = "offered", None
                    for row in repo.intervals(session=session, contract_id=contract_id):
                        session.delete(row)

            await services.db(revert)
        raise error if isinstance(error, DomainError) else domain_error(error) from None

    def load(session: Session) -> ContractPublic:
        contract = repo.visible_contract(session=session, user=provider, contract_id=contract_id)
        audit(session=session, actor=provider, action="contract.accept", subject_type="contract",
              subject_id=str(contract_id))  # fmt: skip
        if was_offered:
            notify.record(session, kind="offer_accepted", recipient_id=contract.client_id,
                          dedupe_key=f"offer_accepted:{contract.id}", contract_id=contract.id,
                          payload={"title": contract.title})  # fmt: skip
        return public(session, contract)

    return await services.db(load)


async def _contract_update(
    services: Services, contract_id: uuid.UUID, user: User, update: UpdateMethodMultiParam[[Any, P], R], arg: P,
    request_id: str | None,
) -> R:  # fmt: skip
    def check(session: Session) -> None:
        contract = repo.visible_contract(session=session, user=user, contract_id=contract_id)
        if contract.status != "active":
            raise Conflict(
                f"the contract is {contract.status}: only an active contract can change",
                "contract_not_active",
            )

    await services.db(check)
    client = await services.temporal.client()
    handle = client.get_workflow_handle(contract_workflow_id(str(contract_id)))
    try:
        # As for timesheets: the request id is scoped to the caller and the action, so a reused id never
        # returns another action's result (of another type) or answers for another user.
        update_id = f"{update_name(update)}:{user.id}:{request_id}" if request_id else str(uuid.uuid4())
        return await handle.execute_update(update, arg, id=update_id)
    except Exception as error:
        raise domain_error(error, "contract workflow") from None


def _party(user: User, what: str) -> None:
    if user.role not in ("client", "provider"):
        raise Forbidden(f"only the contract's parties {what}", "not_a_party")


async def set_work_view(
    services: Services, user: User, contract_id: uuid.UUID, on: bool, request_id: str | None
) -> WorkViewChanged:
    """Turn Work View on or off from the next slot (either party)."""
    _party(user, "change Work View")
    arg = WorkViewChange(actor=actor(user), on=on)
    return await _contract_update(
        services, contract_id, user, ContractWorkflow.set_work_view, arg, request_id
    )


async def change_weekly_limit(
    services: Services, client: User, contract_id: uuid.UUID, hours: int, request_id: str | None
) -> ContractRecord:
    """Change the weekly hour limit from next week (Monday 00:00 UTC)."""
    arg = WeeklyLimitChange(actor=actor(client), weekly_limit_hours=hours)
    return await _contract_update(
        services, contract_id, client, ContractWorkflow.change_weekly_limit, arg, request_id
    )


async def end(
    services: Services, user: User, contract_id: uuid.UUID, request_id: str | None, reason: str = ""
) -> ContractRecord:
    """End the contract now, with a reason both parties see; its last week is still submitted, reviewed
    and settled."""
    _party(user, "end it")
    arg = EndContract(actor=actor(user), reason=check_text(reason, what="reason", max_chars=MAX_REASON_CHARS))
    return await _contract_update(services, contract_id, user, ContractWorkflow.end_contract, arg, request_id)


@dataclass
class ContractLine:
    """A contract as the list shows it: the other party's name and its latest frozen weeks."""

    contract: Contract
    other: str
    weeks: list[TimesheetSnapshot]


def contract_lines(
    session: Session, user: User, *, limit: int, offset: int
) -> tuple[list[ContractLine], int]:
    rows, total = repo.list_contracts(session=session, user=user, limit=limit, offset=offset)
    users = users_by_id(session=session, ids={c.client_id for c in rows} | {c.provider_id for c in rows})
    weeks = recent_snapshots(session=session, contract_ids=[c.id for c in rows])
    lines = []
    for c in rows:
        other = users.get(c.provider_id if user.id == c.client_id else c.client_id)
        lines.append(ContractLine(c, (other.name or other.email) if other else "", weeks.get(c.id, [])))
    return lines, total
