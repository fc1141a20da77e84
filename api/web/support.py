"""The support console: the dispute queue, timesheet search, each contract's timeline in plain words,
and the resolve and extend-deadline forms. Only support staff see it; for anyone else it does not exist
(404). Every read is audited by the use cases it calls (``api/services/support.py``, ``timeline.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from fastapi.responses import Response

from api.deps import FormViewerDep, ServicesDep, Viewer, ViewerDep
from api.schemas import TimesheetPublic, TimesheetSearch
from api.services import support as service
from api.services import timesheets as timesheet_service
from api.services.timeline import contract_timeline
from api.web.contracts import local_input
from api.web.render import NOTICES, base_context, clock_for, page_router, redirect, render
from api.web.security import new_request_id, request_id
from domain.calendar import parse_week, week_label
from domain.errors import DomainError, InvalidInput, NotFound
from domain.settlement import rule_resolution
from domain.text import MAX_REASON_CHARS

router = page_router()


def need_support(viewer: Viewer) -> None:
    if viewer.user.role != "support":
        raise NotFound("no such page")  # the console's existence is nobody else's business


def _uuid_or_none(value: str, what: str) -> uuid.UUID | None:
    if not value.strip():
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise InvalidInput(f"{what} is not an id such as 0b6c…-…: paste the whole id") from None


@router.get("/support")
async def support_console(
    viewer: ViewerDep,
    services: ServicesDep,
    offset: int = Query(0, ge=0, le=100_000),
    contract_id: str = Query("", max_length=64),
    provider_id: str = Query("", max_length=64),
    client_id: str = Query("", max_length=64),
    status: str = Query("", max_length=32),
    week: str = Query("", max_length=10),
    page_token: str = Query("", max_length=4000),
    q: str = Query("", max_length=200),
    searched: str = Query("", max_length=1),
) -> Response:
    need_support(viewer)
    queue, total = await services.db(
        lambda session: service.dispute_queue(session, viewer.user, limit=50, offset=offset)
    )
    asked = any(value.strip() for value in (contract_id, provider_id, client_id, status, week, q))
    found: TimesheetSearch | None = None
    error = nothing = None
    form = {"q": q, "contract_id": contract_id, "provider_id": provider_id, "client_id": client_id,
            "status": status, "week": week}  # fmt: skip
    if searched and not asked:
        nothing = "Type a title, a name or an email, or choose a status or a week, then search."
    elif asked:
        try:
            if q.strip():
                found = await service.find(
                    services, viewer.user, text=q, status=status or None, week=week, limit=50,
                    page_token=page_token or None,
                )  # fmt: skip
            else:
                search = service.SearchFilter(
                    contract_id=_uuid_or_none(contract_id, "contract id"), provider_id=_uuid_or_none(provider_id, "provider id"),
                    client_id=_uuid_or_none(client_id, "client id"), status=status or None,
                    week=parse_week(week, any_day=True) if week.strip() else None,
                )  # fmt: skip
                found = await service.search_timesheets(
                    services, viewer.user, search, limit=50, page_token=page_token or None
                )
            if found is None or not found.items:
                nothing = (
                    f"No timesheet matches {', '.join(f'{k} “{v}”' for k, v in form.items() if v.strip())}."
                )
        except DomainError as refused:
            error = refused.message
    next_search = None
    if found is not None and found.next_page_token:
        next_search = "/support?" + urlencode(
            {**{k: v for k, v in form.items() if v}, "page_token": found.next_page_token}
        )
    return render("support.html", base_context(
        viewer, "Support console", queue=queue, total=total, offset=offset, found=found, form=form, nothing=nothing,
        statuses=service.STATUSES, error=error, next_search=next_search, temporal_ui=service.temporal_ui(services.settings),
    ))  # fmt: skip


@dataclass
class OpenWeek:
    sheet: TimesheetPublic
    suggestions: dict[str, str]


@router.get("/support/contracts/{contract_id}")
async def timeline_page(
    contract_id: uuid.UUID,
    viewer: ViewerDep,
    services: ServicesDep,
    done: str | None = Query(None, max_length=40),
) -> Response:
    need_support(viewer)
    return await render_timeline(services, viewer, contract_id, notice=NOTICES.get(done or ""))


async def render_timeline(
    services: ServicesDep, viewer: Viewer, contract_id: uuid.UUID, *, notice: str | None = None,
    error: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    timeline = await contract_timeline(services, viewer.user, contract_id)
    waiting = await services.db(
        lambda session: timesheet_service.weeks_waiting(session, services.settings, viewer.user, contract_id)
    )
    open_weeks = []
    for sheet in waiting:
        sheet = await timesheet_service.with_workflow_view(services, sheet)
        suggestions = {}
        if sheet.dispute:
            for entry_id in sheet.dispute.entry_ids:
                entry = sheet.entry(entry_id)
                suggestions[entry_id] = rule_resolution(entry) if entry else "client"
        open_weeks.append(OpenWeek(sheet=sheet, suggestions=suggestions))
    clock = clock_for(viewer)
    return render("timeline.html", base_context(
        viewer, f"Timeline · {timeline.title}", notice=notice, error=error, timeline=timeline, open_weeks=open_weeks,
        request_id=new_request_id(), week_label=week_label, temporal_ui=service.temporal_ui(services.settings),
        until_default=clock.input_value(clock.now + timedelta(days=2)),
    ), status)  # fmt: skip


async def support_action(
    services: ServicesDep, viewer: Viewer, contract_id: uuid.UUID, action: Callable[[], Awaitable[object]],
    done: str,
) -> Response:  # fmt: skip
    try:
        await action()
    except DomainError as error:
        if error.code == "contract_not_found":
            raise
        return await render_timeline(
            services, viewer, contract_id, error=error.message, status=error.status_code
        )
    return redirect(f"/support/contracts/{contract_id}?done={done}")


@router.post("/support/contracts/{contract_id}/week/{week}/resolve")
async def resolve(
    request: Request, contract_id: uuid.UUID, week: str, viewer: FormViewerDep, services: ServicesDep
) -> Response:
    need_support(viewer)
    form = await request.form()  # one field per disputed entry: ``res:<entry id>`` = provider | client
    resolutions: dict[str, str] = {}
    for key, value in form.multi_items():
        if key.startswith("res:") and value in ("provider", "client"):
            resolutions[key[4:][:200]] = str(value)
    note = str(form.get("note", ""))[:MAX_REASON_CHARS]

    async def act() -> object:
        if not resolutions:
            raise InvalidInput("choose a side for at least one disputed entry", "resolution_invalid")
        return await timesheet_service.resolve(
            services, viewer.user, contract_id, parse_week(week), resolutions, note,  # type: ignore[arg-type]
            request_id(str(form.get("request_id", ""))),
        )  # fmt: skip

    return await support_action(services, viewer, contract_id, act, "resolved")


@router.post("/support/contracts/{contract_id}/week/{week}/payout")
async def decide_payout(
    contract_id: uuid.UUID, week: str, viewer: FormViewerDep, services: ServicesDep,
    request_id_: str = Form("", alias="request_id", max_length=100), decision: str = Form("", max_length=10),
    reason: str = Form("", max_length=MAX_REASON_CHARS),
) -> Response:  # fmt: skip
    need_support(viewer)

    async def act() -> object:
        if decision not in ("approve", "refuse"):
            raise InvalidInput("approve or refuse the payout")
        return await timesheet_service.decide_payout(
            services,
            viewer.user,
            contract_id,
            parse_week(week),
            decision == "approve",
            reason,
            request_id(request_id_),
        )

    return await support_action(services, viewer, contract_id, act, "payout_decided")


@router.post("/support/contracts/{contract_id}/week/{week}/extend")
async def extend(
    contract_id: uuid.UUID, week: str, viewer: FormViewerDep, services: ServicesDep,
    request_id_: str = Form("", alias="request_id", max_length=100), deadline: str = Form("", max_length=10),
    until: str = Form("", max_length=40), reason: str = Form("", max_length=MAX_REASON_CHARS),
) -> Response:  # fmt: skip
    need_support(viewer)

    async def act() -> object:
        if deadline not in ("review", "response"):
            raise InvalidInput("choose the review or the response deadline", "deadline_invalid")
        moment = local_input(until, clock_for(viewer), "the new deadline")
        return await timesheet_service.extend(
            services,
            viewer.user,
            contract_id,
            parse_week(week),
            deadline,
            moment,
            reason,
            request_id(request_id_),
        )

    return await support_action(services, viewer, contract_id, act, "extended")
