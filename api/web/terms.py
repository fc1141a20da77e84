"""A contract's terms and their history, and the changes its parties make in the browser: Work View on or
off (either party, from the next slot), the weekly limit (the client, from next Monday), and ending the
contract (either party, with a reason both see, after a confirmation that says what follows). Each change
is the same use case as the API's (``api/services/contracts.py``): an update of the contract's workflow."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Form, Query
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import FormViewerDep, ServicesDep, Viewer, ViewerDep
from api.schemas import ContractPublic
from api.services import contracts as service
from api.web.render import base_context, page_router, redirect, render
from api.web.security import request_id
from domain.calendar import week_label
from domain.errors import DomainError, InvalidInput
from domain.text import MAX_REASON_CHARS
from domain.timesheet import MAX_WEEKLY_LIMIT_HOURS, MIN_WEEKLY_LIMIT_HOURS
from store import contracts as repo
from store.models import User, WorkViewInterval
from store.timesheets import users_by_id

router = page_router()

DONE = {
    "work_view_on": "Work View turns on from the next slot.",
    "work_view_off": "Work View turns off from the next slot: the agent tracks time without screenshots, "
    "billable but not guaranteed.",
    "limit": "The new weekly limit applies from next Monday 00:00 UTC.",
    "ended": "The contract has ended. Its last week is still submitted, reviewed and settled.",
}


@dataclass
class TermsPage:
    contract: ContractPublic
    client: User | None
    provider: User | None
    intervals: list[WorkViewInterval]


def load(session: Session, user: User, contract_id: uuid.UUID) -> TermsPage:
    contract = repo.visible_contract(session=session, user=user, contract_id=contract_id)
    parties = users_by_id(session=session, ids=[contract.client_id, contract.provider_id])
    intervals = sorted(repo.intervals(session=session, contract_id=contract.id), key=lambda i: i.start)
    return TermsPage(
        service.public(session, contract),
        parties.get(contract.client_id),
        parties.get(contract.provider_id),
        intervals,
    )


async def render_terms(
    services: ServicesDep, viewer: Viewer, contract_id: uuid.UUID, *, notice: str | None = None,
    error: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    page = await services.db(lambda session: load(session, viewer.user, contract_id))
    user = viewer.user
    return render("terms.html", base_context(
        viewer, f"{page.contract.title} · terms", page=page, notice=notice, error=error,
        is_client=user.id == page.contract.client_id, is_provider=user.id == page.contract.provider_id,
        this_week=week_label(datetime.now(UTC)), request_id=request_id(None),
        min_limit=MIN_WEEKLY_LIMIT_HOURS, max_limit=MAX_WEEKLY_LIMIT_HOURS, max_reason=MAX_REASON_CHARS,
    ), status)  # fmt: skip


@router.get("/contracts/{contract_id}/terms")
async def terms(
    contract_id: uuid.UUID,
    viewer: ViewerDep,
    services: ServicesDep,
    done: str | None = Query(None, max_length=20),
) -> Response:
    return await render_terms(services, viewer, contract_id, notice=DONE.get(done or ""))


async def _change(
    services: ServicesDep,
    viewer: Viewer,
    contract_id: uuid.UUID,
    act: Callable[[], Awaitable[None]],
    done: str,
) -> Response:
    try:
        await act()
    except DomainError as error:
        if error.code == "contract_not_found":
            raise
        return await render_terms(
            services, viewer, contract_id, error=error.message, status=error.status_code
        )
    return redirect(f"/contracts/{contract_id}/terms?done={done}")


@router.post("/contracts/{contract_id}/terms/work-view")
async def work_view(
    contract_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep, on: str = Form("", max_length=5),
    request_id_: str = Form("", alias="request_id", max_length=100),
) -> Response:  # fmt: skip
    async def act() -> None:
        if on not in ("on", "off"):
            raise InvalidInput("choose whether Work View is on or off")
        await service.set_work_view(services, viewer.user, contract_id, on == "on", request_id(request_id_))

    return await _change(services, viewer, contract_id, act, f"work_view_{on}" if on in ("on", "off") else "")


@router.post("/contracts/{contract_id}/terms/weekly-limit")
async def weekly_limit(
    contract_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep, hours: str = Form("", max_length=4),
    request_id_: str = Form("", alias="request_id", max_length=100),
) -> Response:  # fmt: skip
    async def act() -> None:
        if viewer.user.role != "client":
            raise InvalidInput("only the contract's client changes the weekly limit", "not_a_party")
        if not hours.strip().isdigit():
            raise InvalidInput("the weekly limit is a whole number of hours", "weekly_limit_invalid")
        await service.change_weekly_limit(
            services, viewer.user, contract_id, int(hours), request_id(request_id_)
        )

    return await _change(services, viewer, contract_id, act, "limit")


@router.post("/contracts/{contract_id}/terms/end")
async def end(
    contract_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep,
    reason: str = Form("", max_length=MAX_REASON_CHARS), confirm: str = Form("", max_length=3),
    request_id_: str = Form("", alias="request_id", max_length=100),
) -> Response:  # fmt: skip
    async def act() -> None:
        if not reason.strip():
            raise InvalidInput("say why the contract ends: both parties see the reason")
        if confirm != "yes":
            raise InvalidInput("tick the box to confirm: ending cannot be undone")
        await service.end(services, viewer.user, contract_id, request_id(request_id_), reason)

    return await _change(services, viewer, contract_id, act, "ended")
