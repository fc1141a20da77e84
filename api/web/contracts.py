"""The contract list and the week: the client's Work View, the provider's week, and (for support) a
read-only view of it, with the client's, provider's and the capture actions. Every action goes through the
same use case as the API (``api/services``), so a page can never do what the API would refuse."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from fastapi import Form, Query
from fastapi.responses import Response

from api.deps import FormViewerDep, ServicesDep, Viewer, ViewerDep
from api.links import make_link
from api.services import captures as capture_service
from api.services import timesheets as service
from api.services.contracts import contract_lines
from api.services.statements import INVOICED_STATUSES
from api.web.money import day_chart
from api.web.render import NOTICES, base_context, clock_for, page_router, redirect, render
from api.web.security import home_of, new_request_id, request_id
from api.web.view import Clock, week_days, week_grid
from domain.calendar import iso_week_name, parse_week, week_label
from domain.errors import DomainError, Forbidden, InvalidInput
from domain.text import MAX_REASON_CHARS
from store.models import Capture

router = page_router()


@router.get("/")
async def home(viewer: ViewerDep) -> Response:
    return redirect(home_of(viewer.user))


@router.get("/contracts")
async def contracts(
    viewer: ViewerDep, services: ServicesDep, offset: int = Query(0, ge=0, le=100_000),
    done: str | None = Query(None, max_length=40),
) -> Response:  # fmt: skip
    lines, total = await services.db(
        lambda session: contract_lines(session, viewer.user, limit=50, offset=offset)
    )
    return render("contracts.html", base_context(
        viewer, "Contracts", lines=lines, total=total, offset=offset, this_week=week_label(datetime.now(UTC)),
        week_label=week_label, iso_week_name=iso_week_name, notice=NOTICES.get(done or ""),
    ))  # fmt: skip


@router.get("/contracts/{contract_id}")
async def contract_home(contract_id: uuid.UUID, viewer: ViewerDep) -> Response:
    return redirect(f"/contracts/{contract_id}/week/{week_label(datetime.now(UTC))}")


@router.get("/contracts/{contract_id}/week")
async def pick_week(contract_id: uuid.UUID, viewer: ViewerDep, w: str = Query("", max_length=10)) -> Response:
    return redirect(f"/contracts/{contract_id}/week/{week_label(parse_week(w))}")


@router.get("/contracts/{contract_id}/week/{week}")
async def week_page(
    contract_id: uuid.UUID, week: str, viewer: ViewerDep, services: ServicesDep,
    done: str | None = Query(None, max_length=40),
) -> Response:  # fmt: skip
    """The client's Work View, the provider's week, or (for support) a read-only view of it."""
    return await render_week(services, viewer, contract_id, week, notice=NOTICES.get(done or ""))


async def render_week(
    services: ServicesDep, viewer: Viewer, contract_id: uuid.UUID, week: str, *, notice: str | None = None,
    error: str | None = None, status: int = 200, entered: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    """The week page; ``entered`` refills the manual-time form after a refusal."""
    start = parse_week(week)
    user = viewer.user
    page = await service.week_page(services, user, contract_id, start)
    sheet, contract = page.sheet, page.contract
    clock = clock_for(viewer)
    secret, seconds = services.settings.resolved_secret_key(), services.settings.presign_seconds

    def sign(capture: Capture, part: str) -> str:
        return make_link(secret, capture.capture_id, part, seconds)[0]

    grid = week_grid(sheet, page.captures, sign, clock, image_base=f"/contracts/{contract.id}/captures")
    is_client, is_provider = user.id == contract.client_id, user.id == contract.provider_id
    dispute = sheet.dispute
    editable = is_provider and not sheet.frozen and clock.now < sheet.edit_cutoff
    client, provider = page.client, page.provider
    context = base_context(
        viewer, f"{contract.title} · {sheet.iso_week}", notice=notice, error=error, contract=contract, sheet=sheet,
        grid=grid, week=week_label(start), base=f"/contracts/{contract.id}",
        prev_week=week_label(start - timedelta(days=7)), next_week=week_label(start + timedelta(days=7)),
        prev_name=iso_week_name(start - timedelta(days=7)), next_name=iso_week_name(start + timedelta(days=7)),
        this_week=week_label(clock.now), week_days=week_days(start),
        client_name=(client.name or client.email) if client else "", provider_name=(provider.name or provider.email) if provider else "",
        is_client=is_client, is_provider=is_provider, is_support=user.role == "support",
        can_review=is_client and sheet.status == "submitted" and clock.now < sheet.review_deadline,
        can_respond=is_provider and sheet.status == "disputed" and dispute is not None and dispute.response is None
        and clock.now < dispute.response_deadline,
        editable=editable, manual_form=editable and contract.manual_allowed,
        disputed=set(dispute.entry_ids) if dispute else set(), request_id=new_request_id(), day_chart=day_chart(sheet, clock),
        invoiced=sheet.status in INVOICED_STATUSES,
        entered=entered or {"start": clock.input_value(min(clock.now, start + timedelta(days=7)) - timedelta(hours=1)),
                            "end": "", "memo": ""},
    )  # fmt: skip
    return render("week.html", context, status)


async def week_action(
    services: ServicesDep, viewer: Viewer, contract_id: uuid.UUID, week: str, action: Callable[[], Awaitable[object]],
    done: str, entered: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    """Run an action; on success back to the week with a notice, on refusal the week with the rule's
    message and its status (409/422/403). A contract the viewer may not see is a plain 404 page."""
    try:
        await action()
    except DomainError as error:
        if error.code == "contract_not_found":
            raise
        return await render_week(
            services,
            viewer,
            contract_id,
            week,
            error=error.message,
            status=error.status_code,
            entered=entered,
        )
    return redirect(f"/contracts/{contract_id}/week/{week_label(parse_week(week))}?done={done}")


@router.get("/contracts/{contract_id}/captures/{capture_id}/image/{part}")
async def capture_image(
    contract_id: uuid.UUID, capture_id: uuid.UUID, part: str, viewer: ViewerDep, services: ServicesDep
) -> Response:
    """A fresh signed link to one image of a capture (``thumb`` or the monitor's number): what the
    lightbox opens, and what a thumbnail reloads from when its link has expired."""
    link = await services.db(
        lambda session: capture_service.image_link(
            session, services.settings, viewer.user, capture_id, part, contract_id=contract_id
        )
    )
    return redirect(link)


def need_role(viewer: Viewer, role: str, what: str) -> None:
    if viewer.user.role != role:
        raise Forbidden(f"only the contract's {role} can {what}", "role_required")


@router.post("/contracts/{contract_id}/week/{week}/approve")
async def approve(
    contract_id: uuid.UUID, week: str, viewer: FormViewerDep, services: ServicesDep,
    request_id_: str = Form("", alias="request_id", max_length=100),
) -> Response:  # fmt: skip
    need_role(viewer, "client", "approve a timesheet")

    async def act() -> object:
        return await service.approve(
            services, viewer.user, contract_id, parse_week(week), request_id(request_id_)
        )

    return await week_action(services, viewer, contract_id, week, act, "approved")


@router.post("/contracts/{contract_id}/week/{week}/dispute")
async def dispute(
    contract_id: uuid.UUID, week: str, viewer: FormViewerDep, services: ServicesDep,
    request_id_: str = Form("", alias="request_id", max_length=100), entry: list[str] = Form([]),
    reason: str = Form("", max_length=4000),
) -> Response:  # fmt: skip
    need_role(viewer, "client", "dispute a timesheet")

    async def act() -> object:
        if not entry:
            raise InvalidInput("tick at least one entry to dispute", "dispute_invalid")
        return await service.dispute(
            services,
            viewer.user,
            contract_id,
            parse_week(week),
            entry[:1000],
            reason,
            request_id(request_id_),
        )

    return await week_action(services, viewer, contract_id, week, act, "disputed")


@router.post("/contracts/{contract_id}/week/{week}/respond")
async def respond(
    contract_id: uuid.UUID, week: str, viewer: FormViewerDep, services: ServicesDep,
    request_id_: str = Form("", alias="request_id", max_length=100), answer: str = Form("", max_length=10),
    note: str = Form("", max_length=MAX_REASON_CHARS),
) -> Response:  # fmt: skip
    need_role(viewer, "provider", "answer a dispute")

    async def act() -> object:
        if answer not in ("accept", "contest"):
            raise InvalidInput("choose whether you accept or contest the dispute")
        return await service.respond(
            services,
            viewer.user,
            contract_id,
            parse_week(week),
            answer == "accept",
            note,
            request_id(request_id_),
        )

    return await week_action(
        services, viewer, contract_id, week, act, "accepted" if answer == "accept" else "contested"
    )


@router.post("/contracts/{contract_id}/captures/{capture_id}/delete")
async def remove_capture(
    contract_id: uuid.UUID, capture_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep,
    week: str = Form("", max_length=10),
) -> Response:  # fmt: skip
    async def act() -> None:
        await services.db(
            lambda session: capture_service.delete_capture(
                session, services.objects, services.settings, viewer.user, capture_id, contract_id=contract_id
            )
        )

    return await week_action(
        services, viewer, contract_id, week or week_label(datetime.now(UTC)), act, "deleted"
    )


@router.post("/contracts/{contract_id}/week/{week}/manual")
async def manual_time(
    contract_id: uuid.UUID, week: str, viewer: FormViewerDep, services: ServicesDep,
    start: str = Form("", max_length=40), end: str = Form("", max_length=40), memo: str = Form("", max_length=10_000),
) -> Response:  # fmt: skip
    clock = clock_for(viewer)

    async def act() -> None:
        begins, ends = local_input(start, clock, "start"), local_input(end, clock, "end")
        await services.db(
            lambda session: capture_service.add_manual(
                session, services.settings, viewer.user, contract_id, begins, ends, memo
            )
        )

    return await week_action(
        services, viewer, contract_id, week, act, "manual", entered={"start": start, "end": end, "memo": memo}
    )


@router.post("/contracts/{contract_id}/manual/{entry_id}/delete")
async def remove_manual(
    contract_id: uuid.UUID, entry_id: uuid.UUID, viewer: FormViewerDep, services: ServicesDep,
    week: str = Form("", max_length=10),
) -> Response:  # fmt: skip
    async def act() -> None:
        await services.db(
            lambda session: capture_service.delete_manual(session, services.settings, viewer.user, entry_id)
        )

    return await week_action(
        services, viewer, contract_id, week or week_label(datetime.now(UTC)), act, "manual_deleted"
    )


def local_input(value: str, clock: Clock, what: str) -> datetime:
    """A ``datetime-local`` value, read in the viewer's timezone."""
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{what} is not a date and time such as 2026-11-24T09:30", "time_invalid"
        ) from None
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=clock.tz).astimezone(UTC)
