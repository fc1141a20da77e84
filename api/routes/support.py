"""Support: the dispute queue, timesheet search through Temporal visibility, a contract's timeline in
plain words, and raw workflow histories; every read is audited (``api/services/support.py``,
``api/services/timeline.py``). Resolving and extending deadlines are timesheet actions
(``api/routes/timesheets.py``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import ServicesDep, SessionDep, SupportUser
from api.schemas import ContractTimeline, DisputeQueueItem, Page, TimesheetSearch
from api.services import support as service
from api.services.timeline import contract_timeline
from domain.calendar import parse_week
from domain.messages import TimesheetStatus

router = APIRouter(prefix="/v1/support", tags=["support"])


@router.get("/disputes", response_model=Page[DisputeQueueItem])
def disputes(
    session: SessionDep,
    support: SupportUser,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=100_000),
) -> Page[DisputeQueueItem]:
    """The dispute queue: timesheets waiting for the provider's answer or for support, oldest first."""
    items, total = service.dispute_queue(session, support, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/timesheets", response_model=TimesheetSearch)
async def timesheets(
    support: SupportUser,
    services: ServicesDep,
    contract_id: uuid.UUID | None = None,
    provider_id: uuid.UUID | None = None,
    client_id: uuid.UUID | None = None,
    status: TimesheetStatus | None = None,
    week: str | None = Query(None, max_length=10, description="Any day of the week (YYYY-MM-DD) or 2026-W48"),
    dispute_open: bool | None = None,
    q: str | None = Query(
        None, max_length=200, description="Part of a contract's title or a party's name or email"
    ),
    limit: int = Query(50, ge=1, le=200),
    page_token: str | None = Query(None, max_length=4000),
) -> TimesheetSearch:
    """Timesheets by text (title, name, email), contract, provider, client, status and week, newest first,
    through Temporal visibility, with each contract's title and parties. Page on with the answer's
    ``next_page_token``."""
    if q and q.strip():
        found = await service.find(services, support, text=q, status=status, week=week or "", limit=limit,
                                   page_token=page_token)  # fmt: skip
        return found or TimesheetSearch(items=[], total=0, limit=limit, next_page_token=None)
    search = service.SearchFilter(
        contract_id=contract_id, provider_id=provider_id, client_id=client_id, status=status,
        week=parse_week(week, any_day=True) if week else None, dispute_open=dispute_open,
    )  # fmt: skip
    return await service.search_timesheets(services, support, search, limit=limit, page_token=page_token)


@router.get(
    "/workflows/{workflow_id}/history",
    responses={200: {"content": {"application/json": {}}, "description": "The history as Temporal JSON"}},
)
async def workflow_history(
    workflow_id: str, support: SupportUser, services: ServicesDep, run_id: uuid.UUID | None = None
) -> Response:
    """The workflow's full event history in Temporal's JSON form (``WorkflowHistory.to_json``): load it
    with ``WorkflowHistory.from_json`` to replay it, or open it in the Temporal Web UI. Without
    ``run_id``, the latest run."""
    history = await service.workflow_history(services, support, workflow_id, run_id)
    return Response(
        history.to_json(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'inline; filename="{workflow_id}.json"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/contracts/{contract_id}/timeline", response_model=ContractTimeline)
async def timeline(contract_id: uuid.UUID, support: SupportUser, services: ServicesDep) -> ContractTimeline:
    """Everything that happened to the contract, in plain words and time order: who did what (accept,
    Work View, limit, end, submission, approval, dispute, answer, resolution, extensions) and what money
    moved (from the ledger). Each workflow's raw history is linked in ``workflows``."""
    return await contract_timeline(services, support, contract_id)
