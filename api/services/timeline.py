"""A contract's timeline in plain words, built from its workflow histories (``history.py`` decodes them)
and the ledger: who did what (accept, Work View, limit, end, submission, approval, dispute, answer,
resolution, extensions) and what money moved, in time order, with a link to each workflow's raw history.
The read is audited."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC

from sqlmodel import Session
from temporalio.client import Client

from api.schemas import ContractTimeline, WorkflowRun
from api.services import Services
from api.services.history import CLOSING, Facts, History, TimelineBuilder, started
from api.services.support import audit_read, temporal_ui
from api.temporal import domain_error
from domain.calendar import parse_week
from domain.timesheet import Timesheet
from store.contracts import visible_contract
from store.models import User
from store.timesheets import contract_facts, users_by_id
from workflows.contract import contract_workflow_id
from workflows.timesheet import timesheet_workflow_id

MAX_HISTORIES = 400  # a contract of several years: about two runs a week


async def _runs(client: Client, contract_id: str, known_weeks: list[str]) -> list[History]:
    """Every run of the contract workflow and every timesheet of the contract."""
    found: dict[tuple[str, str], History] = {}
    queries = (
        f"WorkflowId = '{contract_workflow_id(contract_id)}'",
        f"WorkflowType = 'TimesheetWorkflow' AND ContractId = '{contract_id}'",
    )
    for query in queries:
        async for execution in client.list_workflows(query, limit=MAX_HISTORIES):
            found[(execution.id, execution.run_id)] = History(
                execution.id, execution.run_id, execution.workflow_type
            )
    seen_ids = {wid for wid, _ in found}
    for week in known_weeks:  # a timesheet started without search attributes is still found by its id
        wid = timesheet_workflow_id(contract_id, parse_week(week))
        if wid not in seen_ids:
            try:
                description = await client.get_workflow_handle(wid).describe()
            except Exception:  # noqa: S112  (removed by retention: the ledger still tells the money)
                continue
            found[(wid, description.run_id)] = History(wid, description.run_id, description.workflow_type)
    return list(found.values())[:MAX_HISTORIES]


def load_facts(session: Session, user: User, contract_id: uuid.UUID) -> Facts:
    contract = visible_contract(session=session, user=user, contract_id=contract_id)
    found = contract_facts(session=session, contract_id=contract.id)
    sheets = {
        f"{s.week_start.astimezone(UTC):%Y-%m-%d}": Timesheet.model_validate(s.body) for s in found.snapshots
    }
    audit_read(session, user, "timeline", str(contract.id))
    return Facts(
        contract, sheets, found.transfers, sorted(sheets), found.deleted_captures, found.manual_entries
    )


async def contract_timeline(services: Services, user: User, contract_id: uuid.UUID) -> ContractTimeline:
    """Everything that happened to the contract, in plain words and time order, with a link to each
    workflow's raw history. The read is audited."""
    facts = await services.db(lambda session: load_facts(session, user, contract_id))
    client = await services.temporal.client()
    cid = str(facts.contract.id)
    try:
        runs = await _runs(client, cid, facts.snapshot_weeks)
        limiter = asyncio.Semaphore(8)

        async def fetch(run: History) -> None:
            async with limiter:
                history = await client.get_workflow_handle(run.workflow_id, run_id=run.run_id).fetch_history()
                run.events = list(history.events)

        await asyncio.gather(*(fetch(r) for r in runs))
    except Exception as error:
        raise domain_error(error, f"workflow of contract {cid}") from None
    runs.sort(key=started)

    builder = TimelineBuilder(facts, client.data_converter)
    for run in runs:
        await builder.read(run)
    builder.money_events()
    builder.edit_events()
    ids = {e.actor_id for e in builder.events if e.actor_id}
    ids |= {str(facts.contract.client_id), str(facts.contract.provider_id)}
    users = await services.db(lambda session: users_by_id(session=session, ids=ids))
    for event in builder.events:
        if event.actor_id:
            found = users.get(uuid.UUID(event.actor_id)) if _is_uuid(event.actor_id) else None
            event.actor = (
                f"{found.name or found.email} ({found.role})" if found else f"{event.actor} {event.actor_id}"
            )

    ui = temporal_ui(services.settings)
    namespace = services.temporal.namespace
    workflows = []
    for run in runs:
        last = run.events[-1] if run.events else None
        ending = CLOSING.get(last.WhichOneof("attributes") or "") if last is not None else None
        workflows.append(
            WorkflowRun(
                workflow_id=run.workflow_id,
                run_id=run.run_id,
                workflow_type=run.workflow_type,
                execution=ending or "running",
                started_at=started(run),
                closed_at=last.event_time.ToDatetime(tzinfo=UTC) if ending and last is not None else None,
                history_url=f"/v1/support/workflows/{run.workflow_id}/history?run_id={run.run_id}",
                ui_url=f"{ui}/namespaces/{namespace}/workflows/{run.workflow_id}/{run.run_id}/history",
            )
        )
    client_user, provider_user = users.get(facts.contract.client_id), users.get(facts.contract.provider_id)
    return ContractTimeline(
        contract_id=facts.contract.id, title=facts.contract.title, currency=facts.contract.currency,
        client=client_user.email if client_user else str(facts.contract.client_id),
        provider=provider_user.email if provider_user else str(facts.contract.provider_id),
        workflows=workflows, events=sorted(builder.events, key=lambda e: e.at),
    )  # fmt: skip


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
