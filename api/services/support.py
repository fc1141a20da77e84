"""Support's reads: the dispute queue, timesheet search through Temporal visibility, and raw workflow
histories. Every read is written to the audit log.

Visibility queries are built from validated values only (UUIDs, a status from the known list, a week
parsed by ``domain.calendar``): no text a caller sends is ever interpolated into a query."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from sqlmodel import Session
from temporalio.client import WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from api.schemas import DisputeQueueItem, TimesheetFound, TimesheetSearch
from api.services import Services
from api.temporal import domain_error
from domain.calendar import iso_week_name, parse_week
from domain.errors import InvalidInput, NotFound
from domain.messages import TimesheetStatus
from store.audit import audit
from store.models import User
from store.settings import Settings
from store.timesheets import contracts_matching, open_disputes, parties_of
from workflows.attributes import CONTRACT_ID, DISPUTE_OPEN, TIMESHEET_STATUS, WEEK_START
from workflows.timesheet import timesheet_workflow_id

STATUSES: tuple[str, ...] = get_args(TimesheetStatus)
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
WORKFLOW_ID = re.compile(
    rf"^(?:contract-(?P<contract>{_UUID})|timesheet-(?P<sheet>{_UUID})-(?P<week>\d{{4}}-\d{{2}}-\d{{2}}))$"
)
FOREIGN_PAGE_TOKEN = "page_token is not one this API gave out: start again without it"


def audit_read(
    session: Session, user: User, subject_type: str, subject_id: str, detail: dict[str, Any] | None = None
) -> None:
    audit(session=session, actor=user, action="support.read", subject_type=subject_type, subject_id=subject_id,
          detail=detail)  # fmt: skip


def dispute_queue(
    session: Session, support: User, *, limit: int, offset: int
) -> tuple[list[DisputeQueueItem], int]:
    """Timesheets waiting for the provider's answer or for support, oldest dispute first."""
    rows, total = open_disputes(session=session, limit=limit, offset=offset)
    audit_read(session, support, "disputes", "queue", {"limit": limit, "offset": offset})
    return [
        DisputeQueueItem(
            contract_id=row.contract.id,
            title=row.contract.title,
            client_id=row.contract.client_id,
            provider_id=row.contract.provider_id,
            week_start=row.snapshot.week_start,
            iso_week=iso_week_name(row.snapshot.week_start),
            status=row.snapshot.status,
            workflow_id=timesheet_workflow_id(str(row.contract.id), row.snapshot.week_start),
            amount_cents=row.snapshot.amount_cents,
            currency=row.contract.currency,
            disputed_entries=list(row.dispute.entry_ids) if row.dispute else [],
            reason=row.dispute.reason if row.dispute else "",
            opened_at=row.dispute.opened_at if row.dispute else None,
            provider_response=row.dispute.provider_response if row.dispute else None,
        )
        for row in rows
    ], total


@dataclass(frozen=True)
class SearchFilter:
    """Validated search values; :meth:`query` is the only place a visibility query is written."""

    contract_id: uuid.UUID | None = None
    provider_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    status: str | None = None
    week: datetime | None = None
    dispute_open: bool | None = None
    contract_ids: tuple[uuid.UUID, ...] | None = None  # the contracts a text search found

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise InvalidInput(f"status {self.status!r} is unknown: use one of {', '.join(STATUSES)}")

    def query(self) -> str:
        parts = ["WorkflowType = 'TimesheetWorkflow'"]
        for name, value in (
            ("ContractId", self.contract_id),
            ("ProviderId", self.provider_id),
            ("ClientId", self.client_id),
        ):
            if value is not None:
                parts.append(f"{name} = '{uuid.UUID(str(value))}'")  # canonical form only
        if self.contract_ids is not None:
            listed = ", ".join(f"'{uuid.UUID(str(value))}'" for value in self.contract_ids) or "''"
            parts.append(f"ContractId IN ({listed})")
        if self.status is not None:
            parts.append(f"TimesheetStatus = '{STATUSES[STATUSES.index(self.status)]}'")
        if self.week is not None:
            # a range, not equality: visibility stores may keep the instant with sub-second digits
            start, end = self.week.astimezone(UTC), self.week.astimezone(UTC) + timedelta(days=1)
            parts.append(
                f"WeekStart >= '{start:%Y-%m-%dT%H:%M:%SZ}' AND WeekStart < '{end:%Y-%m-%dT%H:%M:%SZ}'"
            )
        if self.dispute_open is not None:
            parts.append(f"DisputeOpen = {'true' if self.dispute_open else 'false'}")
        return " AND ".join(parts)


def _token_in(token: str | None) -> bytes | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInput(FOREIGN_PAGE_TOKEN) from None


async def search_timesheets(
    services: Services, support: User, search: SearchFilter, *, limit: int, page_token: str | None = None
) -> TimesheetSearch:
    """Timesheets by contract, provider, client, status and week, newest first, through Temporal
    visibility; page on with the answer's ``next_page_token``. The search is audited."""
    client = await services.temporal.client()
    query = search.query()
    token = _token_in(page_token)  # before the engine is asked: a bad token is the caller's 422
    try:
        listing = client.list_workflows(query, page_size=limit, next_page_token=token)
        await listing.fetch_next_page()
        counted = await client.count_workflows(query)
    except RPCError as error:
        # The query is built from validated values only, so a refusal that is not an outage is about the
        # token: one that decodes but that visibility never handed out.
        if token is not None and error.status not in (
            RPCStatusCode.UNAVAILABLE,
            RPCStatusCode.DEADLINE_EXCEEDED,
        ):
            raise InvalidInput(FOREIGN_PAGE_TOKEN) from None
        raise domain_error(error, "timesheet") from None
    except Exception as error:
        raise domain_error(error, "timesheet") from None
    items = []
    for execution in listing.current_page or []:
        attrs = execution.typed_search_attributes
        week = attrs.get(WEEK_START)
        items.append(
            TimesheetFound(
                workflow_id=execution.id,
                run_id=execution.run_id,
                contract_id=attrs.get(CONTRACT_ID),
                week_start=week,
                iso_week=iso_week_name(week) if week else None,
                status=attrs.get(TIMESHEET_STATUS),
                dispute_open=attrs.get(DISPUTE_OPEN),
                execution=execution.status.name.lower() if execution.status else "unknown",
                started_at=execution.start_time,
                closed_at=execution.close_time,
            )
        )

    def enrich(session: Session) -> None:
        audit_read(session, support, "timesheets", "search", {"query": query, "found": len(items)})
        ids = {uuid.UUID(item.contract_id) for item in items if item.contract_id}
        for item in items:
            found = (
                parties_of(session=session, contract_ids=ids).get(uuid.UUID(item.contract_id))
                if item.contract_id
                else None
            )
            if found is not None:
                item.title = found.contract.title
                item.client = _person(found.client)
                item.provider = _person(found.provider)

    await services.db(enrich)
    next_token = listing.next_page_token
    return TimesheetSearch(
        items=items, total=counted.count, limit=limit,
        next_page_token=base64.urlsafe_b64encode(next_token).decode().rstrip("=") if next_token else None,
    )  # fmt: skip


def _person(user: User | None) -> str | None:
    return f"{user.name} <{user.email}>" if user is not None else None


async def find(
    services: Services, support: User, *, text: str = "", status: str | None = None, week: str = "",
    limit: int = 50, page_token: str | None = None,
) -> TimesheetSearch | None:  # fmt: skip
    """What support types: a contract's title, a person's name or email (any part, any case), a status, a
    week (any day of it). None when the text matches no contract (say so; asking the engine for
    nothing would list everything)."""
    contract_ids: tuple[uuid.UUID, ...] | None = None
    if text.strip():
        found = await services.db(lambda session: contracts_matching(session=session, text=text))
        if not found:
            return None
        contract_ids = tuple(found)
    search = SearchFilter(
        status=status or None, week=parse_week(week, any_day=True) if week.strip() else None,
        contract_ids=contract_ids,
    )  # fmt: skip
    return await search_timesheets(services, support, search, limit=limit, page_token=page_token)


def check_workflow_id(workflow_id: str) -> str:
    """Only this platform's workflow ids: ``contract-<uuid>`` or ``timesheet-<uuid>-<YYYY-MM-DD>``."""
    match = WORKFLOW_ID.match(workflow_id)
    if match is None:
        raise NotFound("no such workflow: ids look like contract-<uuid> or timesheet-<uuid>-<YYYY-MM-DD>")
    if match["week"]:
        parse_week(match["week"])  # a real Monday
    return workflow_id


def week_of_workflow(workflow_id: str) -> str | None:
    match = WORKFLOW_ID.match(workflow_id)
    return match["week"] if match and match["week"] else None


async def workflow_history(
    services: Services, support: User, workflow_id: str, run_id: uuid.UUID | None
) -> WorkflowHistory:
    """The workflow's full event history (latest run without ``run_id``); the read is audited."""
    check_workflow_id(workflow_id)
    client = await services.temporal.client()
    handle = client.get_workflow_handle(workflow_id, run_id=str(run_id) if run_id else None)
    try:
        history = await handle.fetch_history()
    except Exception as error:
        raise domain_error(error, f"workflow {workflow_id}") from None
    detail = {"run_id": str(run_id) if run_id else None}
    await services.db(lambda session: audit_read(session, support, "workflow", workflow_id, detail))
    return history


def temporal_ui(settings: Settings) -> str:
    return (settings.temporal_ui_url or f"http://127.0.0.1:{settings.temporal_ui_port}").rstrip("/")
