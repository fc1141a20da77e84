"""Contracts: the client's offer, the provider's acceptance (which starts the contract workflow), Work
View, the weekly limit, and the end. Changes to a running contract go to its workflow as updates."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Header, Query, status
from fastapi.concurrency import run_in_threadpool
from temporalio.common import WorkflowIDConflictPolicy

from api.deps import ClientUser, CurrentUser, ProviderUser, SessionDep, SettingsDep, TemporalDep
from api.schemas import (
    ContractCreate,
    ContractPublic,
    Page,
    WeeklyLimitUpdate,
    WorkViewChangedPublic,
    WorkViewToggle,
)
from api.temporal import domain_error
from domain.calendar import as_utc
from domain.errors import Conflict, DomainError, Forbidden
from domain.messages import (
    Actor,
    ContractRecord,
    ContractState,
    ContractTermsInput,
    EndContract,
    WeeklyLimitChange,
    WorkViewChange,
    WorkViewChanged,
)
from store import contracts as repo
from store.audit import audit, audit_support_read
from store.db import session_scope
from store.models import Contract, User, utcnow
from store.settings import Settings
from workflows.contract import ContractWorkflow, contract_workflow_id

router = APIRouter(prefix="/v1/contracts", tags=["contracts"])


def public(session: SessionDep, contract: Contract) -> ContractPublic:
    terms = repo.terms_of(session=session, contract=contract)
    return ContractPublic(
        **contract.model_dump(exclude={"work_view_initial"}),
        work_view_on=contract.status == "active" and terms.work_view_on(utcnow()),
    )


def actor(user: User) -> Actor:
    return Actor(user_id=str(user.id), role=user.role)


@router.post("", response_model=ContractPublic, status_code=status.HTTP_201_CREATED, tags=["client"])
def create(body: ContractCreate, session: SessionDep, client: ClientUser) -> ContractPublic:
    """An hourly offer to a provider; it becomes active when the provider accepts it."""
    contract = repo.create_offer(
        session=session, client=client, provider_id=body.provider_id, title=body.title,
        rate_cents=body.rate_cents, currency=body.currency, weekly_limit_hours=body.weekly_limit_hours,
        manual_allowed=body.manual_allowed, work_view=body.work_view,
    )  # fmt: skip
    audit(
        session=session,
        actor=client,
        action="contract.offer",
        subject_type="contract",
        subject_id=str(contract.id),
    )
    return public(session, contract)


@router.get("", response_model=Page[ContractPublic])
def list_all(
    session: SessionDep,
    user: CurrentUser,
    status_filter: str | None = Query(None, alias="status", pattern="^(offered|active|ended|declined)$"),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=100_000),  # as the dispute queue: past this, narrow the query
) -> Page[ContractPublic]:
    rows, total = repo.list_contracts(
        session=session, user=user, status=status_filter, limit=limit, offset=offset
    )
    return Page(items=[public(session, c) for c in rows], total=total, limit=limit, offset=offset)


@router.get("/{contract_id}", response_model=ContractPublic)
def get_one(contract_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> ContractPublic:
    contract = repo.visible_contract(session=session, user=user, contract_id=contract_id)
    audit_support_read(session=session, user=user, subject_type="contract", subject_id=str(contract_id))
    return public(session, contract)


@router.post("/{contract_id}/accept", response_model=ContractPublic, tags=["provider"])
async def accept(
    contract_id: uuid.UUID, provider: ProviderUser, settings: SettingsDep, temporal: TemporalDep
) -> ContractPublic:
    """Accept an offer: the contract becomes active and its workflow starts. Safe to retry."""
    url = settings.database_url
    assert url

    def activate() -> tuple[ContractTermsInput, bool]:
        with session_scope(url) as session:
            contract = repo.visible_contract(
                session=session, user=provider, contract_id=contract_id, lock=True
            )
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

    terms, was_offered = await run_in_threadpool(activate)
    try:
        client = await temporal.client()
        await client.start_workflow(
            ContractWorkflow.run,
            ContractState(terms=terms, policy=settings.policy),
            id=contract_workflow_id(terms.contract_id),
            task_queue=temporal.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except Exception as error:
        if was_offered:  # undo, so a retry starts cleanly: never an active contract without its workflow

            def revert() -> None:
                with session_scope(url) as session:
                    contract = session.get(Contract, contract_id, with_for_update=True)
                    if contract is not None and contract.status == "active":
                        contract.status, contract.accepted_at = "offered", None
                        for row in repo.intervals(session=session, contract_id=contract_id):
                            session.delete(row)

            await run_in_threadpool(revert)
        raise error if isinstance(error, DomainError) else domain_error(error) from None

    def load() -> ContractPublic:
        with session_scope(url) as session:
            contract = repo.visible_contract(session=session, user=provider, contract_id=contract_id)
            audit(session=session, actor=provider, action="contract.accept", subject_type="contract",
                  subject_id=str(contract_id))  # fmt: skip
            return public(session, contract)

    return await run_in_threadpool(load)


async def _contract_update(
    contract_id: uuid.UUID, user: User, settings: Settings, temporal: TemporalDep, update: str, arg: object,
    result_type: type, request_id: str | None,
) -> object:  # fmt: skip
    url = settings.database_url
    assert url

    def check() -> None:
        with session_scope(url) as session:
            contract = repo.visible_contract(session=session, user=user, contract_id=contract_id)
            if contract.status != "active":
                raise Conflict(f"the contract is {contract.status}: only an active contract can change")

    await run_in_threadpool(check)
    client = await temporal.client()
    handle = client.get_workflow_handle(contract_workflow_id(str(contract_id)))
    try:
        # As for timesheets: the request id is scoped to the caller and the action, so a reused id never
        # returns another action's result (of another type) or answers for another user.
        update_id = f"{update}:{user.id}:{request_id}" if request_id else str(uuid.uuid4())
        return await handle.execute_update(update, arg, id=update_id, result_type=result_type)
    except Exception as error:
        raise domain_error(error, "contract workflow") from None


@router.post("/{contract_id}/work-view", response_model=WorkViewChangedPublic)
async def toggle_work_view(
    contract_id: uuid.UUID, body: WorkViewToggle, user: CurrentUser, settings: SettingsDep, temporal: TemporalDep,
    x_request_id: str | None = Header(None, max_length=100),
) -> WorkViewChangedPublic:  # fmt: skip
    """Turn Work View on or off from the next slot (either party)."""
    if user.role not in ("client", "provider"):
        raise Forbidden("only the contract's parties change Work View")
    result = await _contract_update(
        contract_id, user, settings, temporal, "set_work_view", WorkViewChange(actor=actor(user), on=body.on),
        WorkViewChanged, x_request_id,
    )  # fmt: skip
    assert isinstance(result, WorkViewChanged)
    return WorkViewChangedPublic(on=result.on, effective_at=as_utc(result.effective_at))


@router.post("/{contract_id}/weekly-limit", response_model=ContractRecord, tags=["client"])
async def change_limit(
    contract_id: uuid.UUID, body: WeeklyLimitUpdate, client: ClientUser, settings: SettingsDep,
    temporal: TemporalDep, x_request_id: str | None = Header(None, max_length=100),
) -> ContractRecord:  # fmt: skip
    """Change the weekly hour limit from next week (Monday 00:00 UTC)."""
    result = await _contract_update(
        contract_id, client, settings, temporal, "change_weekly_limit",
        WeeklyLimitChange(actor=actor(client), weekly_limit_hours=body.weekly_limit_hours), ContractRecord,
        x_request_id,
    )  # fmt: skip
    assert isinstance(result, ContractRecord)
    return result


@router.post("/{contract_id}/end", response_model=ContractRecord)
async def end(
    contract_id: uuid.UUID, user: CurrentUser, settings: SettingsDep, temporal: TemporalDep,
    x_request_id: str | None = Header(None, max_length=100),
) -> ContractRecord:  # fmt: skip
    """End the contract now; its last week is still submitted, reviewed and settled."""
    if user.role not in ("client", "provider"):
        raise Forbidden("only the contract's parties end it")
    result = await _contract_update(
        contract_id, user, settings, temporal, "end_contract", EndContract(actor=actor(user)), ContractRecord,
        x_request_id,
    )  # fmt: skip
    assert isinstance(result, ContractRecord)
    return result
