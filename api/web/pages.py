"""The server-rendered pages: sign-in, the contract list, the week (the client's Work View and the
provider's week), and the support console. Actions post to page routes that call the same workflow
updates and data functions as the API, so a page can never do what the API would refuse.

Every page answer carries the security headers (``api/web/security.py``); every POST form carries the
session's CSRF token; no page shows a contract its viewer is not a party to (``visible_contract``)."""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlmodel import col, select
from starlette.types import Scope

from api.deps import SESSION_COOKIE
from api.links import make_link
from api.routes.contracts import actor
from api.routes.support import (
    STATUSES,
    SearchFilter,
    TimesheetSearch,
    contract_timeline,
    dispute_queue,
    search_timesheets,
    temporal_ui,
)
from api.routes.timesheets import TimesheetPublic, load_timesheet, send_update, with_workflow_view
from api.temporal import TemporalGateway
from api.web.security import (
    LOGIN_CSRF_COOKIE,
    LoginWindow,
    Viewer,
    home_of,
    new_request_id,
    request_id,
    safe_next,
    same_token,
    secure,
    set_login_csrf_cookie,
    set_session_cookie,
)
from api.web.view import (
    MINUTES,
    REASON_WORDS,
    Clock,
    duration,
    money,
    week_days,
    week_grid,
    zone,
)
from domain.calendar import iso_week_name, parse_week, week_label
from domain.errors import DomainError, Forbidden, InvalidInput, NotFound, Unauthorized
from domain.messages import Approve, Dispute, ExtendDeadline, Resolve, Respond
from domain.settlement import rule_resolution
from store.audit import audit, audit_support_read
from store.captures import add_manual, delete_capture, delete_manual, get_capture, list_captures
from store.contracts import list_contracts, visible_contract
from store.db import session_scope
from store.models import Capture, Contract, TimesheetSnapshot, User
from store.objects import ObjectStoreUnavailable
from store.settings import Settings
from store.users import authenticate, issue_token, revoke_token

log = logging.getLogger("workproof.web")

HERE = Path(__file__).parent
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every value is escaped; nothing is marked safe
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.globals.update(money=money, duration=duration, MINUTES=MINUTES)
TEMPLATES.filters["reasons"] = lambda codes: ", ".join(REASON_WORDS.get(c, c) for c in codes)

NOTICES = {
    "approved": "Approved: the client will be charged for the week.",
    "disputed": "Disputed: the provider has been asked to respond.",
    "deleted": "The capture was deleted: its 12 minutes are no longer in the week.",
    "manual": "Manual time added. It is billable but never guaranteed.",
    "manual_deleted": "The manual time entry was deleted.",
    "accepted": "You accepted the dispute: the disputed entries are refunded to the client.",
    "contested": "You contested the dispute: support will decide each entry.",
    "resolved": "Resolution recorded.",
    "extended": "Deadline extended.",
}
STATUS_WORDS = {
    "open": "open: the week is still being tracked",
    "freezing": "being submitted",
    "submitted": "submitted: waiting for the client's review",
    "approved": "approved by the client",
    "auto_approved": "auto-approved (no dispute before the deadline)",
    "disputed": "disputed: waiting for the provider's answer",
    "in_support": "in support: support decides each disputed entry",
    "charged": "charged: held for the security period",
    "paid_by_guarantee": "paid by the guarantee fund",
    "unpaid": "unpaid",
    "settled": "settled",
}
TEMPLATES.globals["STATUS_WORDS"] = STATUS_WORDS


@asynccontextmanager
async def _steady_heap(app: Any) -> AsyncIterator[None]:
    """After start-up, move every object alive so far (modules, clients, templates) out of the
    collector's reach: a full collection then scans only what requests made, instead of pausing a page
    for the whole heap (the p95 of a 200-slot Work View otherwise doubles). Runs after the app's own
    start-up (FastAPI nests a router's lifespan inside the app's)."""
    gc.collect()
    gc.freeze()
    yield


class SecureStatic(StaticFiles):
    """The CSS and JS, with the same headers as the pages and a short cache."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        secure(response, cache=True)
        response.headers.setdefault("Cache-Control", "public, max-age=300")
        return response


class LoginRequired(Exception):
    """No valid session: the page redirects to the sign-in form."""


def render(
    name: str, context: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    context.setdefault("viewer", None)
    context.setdefault("clock", Clock(UTC))
    context.setdefault("notice", None)
    context.setdefault("error", None)
    return HTMLResponse(TEMPLATES.get_template(name).render(context), status_code=status, headers=headers)


class PageRoute(APIRoute):
    """Every page route: a missing session redirects to sign-in; a refused action, a malformed request
    or an unknown id is shown as a page with its status; every answer gets the security headers and
    the server's time (``Server-Timing``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            began = time.perf_counter()
            response: Response
            try:
                response = await handle(request)
            except LoginRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            except DomainError as error:
                response = error_page(error.message, error.status_code)
            except RequestValidationError as error:
                if any(item.get("loc", ("",))[0] == "path" for item in error.errors()):
                    response = error_page("no such page: check the address", 404)
                else:
                    response = error_page(
                        "the form or address was not understood: go back and try again", 422
                    )
            except ObjectStoreUnavailable:
                response = error_page("image storage is unavailable: try again shortly", 503)
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - began) * 1000:.1f}"
            return secure(response)

        return guarded


def error_page(message: str, status: int) -> Response:
    title = {404: "Not found", 403: "Not allowed", 503: "Unavailable"}.get(status, "Not possible")
    return render("error.html", {"title": title, "message": message, "status": status}, status)


router = APIRouter(include_in_schema=False, lifespan=_steady_heap, route_class=PageRoute)


router.mount("/static", SecureStatic(directory=HERE / "static"), name="static")


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def temporal_of(request: Request) -> TemporalGateway:
    return request.app.state.temporal


def database(request: Request) -> str:
    url = settings_of(request).database_url
    assert url
    return url


async def signed_in(request: Request, csrf: str | None = None, *, post: bool = False) -> Viewer:
    """The session's user; for a POST, the form's CSRF token must be the session's (else 403)."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        if post:
            raise Forbidden("your session has ended: sign in again, then repeat the action")
        raise LoginRequired
    url = database(request)

    def load() -> Viewer:
        with session_scope(url) as session:
            user, row = authenticate(session=session, secret=secret, kind="session")
            return Viewer(user=user, csrf=row.csrf_secret, session_id=str(row.id))

    try:
        viewer = await run_in_threadpool(load)
    except Unauthorized:
        if post:
            raise Forbidden("your session has ended: sign in again, then repeat the action") from None
        raise LoginRequired from None
    if post and not same_token(viewer.csrf, csrf):
        raise Forbidden("this form did not carry a valid CSRF token: reload the page and try again")
    return viewer


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def clock_for(viewer: Viewer) -> Clock:
    return Clock(zone(viewer.user.timezone))


def base_context(viewer: Viewer, title: str, **more: Any) -> dict[str, Any]:
    return {"viewer": viewer, "clock": clock_for(viewer), "title": title, **more}


def login_window(request: Request) -> LoginWindow:
    window = getattr(request.app.state, "login_window", None)
    if window is None:
        window = request.app.state.login_window = LoginWindow(settings_of(request).login_attempts_per_minute)
    return window


# --- sign in and out -----------------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request, next: str | None = Query(None, max_length=500)) -> Response:
    try:
        viewer = await signed_in(request)
        return redirect(safe_next(next) if next else home_of(viewer.user))
    except LoginRequired:
        pass
    return login_page(request, next, None, 200)


def login_page(request: Request, next_url: str | None, error: str | None, status: int,
               headers: dict[str, str] | None = None) -> Response:  # fmt: skip
    token = new_request_id()
    response = render("login.html", {"title": "Sign in", "csrf": token, "next": safe_next(next_url),
                                     "error": error}, status, headers)  # fmt: skip
    set_login_csrf_cookie(response, token, settings_of(request))
    return response


@router.post("/login")
async def login(
    request: Request,
    token: str = Form("", max_length=300),
    csrf: str = Form("", max_length=200),
    next: str = Form("/", max_length=500),
) -> Response:
    """Trade an API token (``wp_…``) for a web session; at most ``login_attempts_per_minute`` tries per
    address."""
    settings = settings_of(request)
    address = request.client.host if request.client else "unknown"
    allowed, wait = login_window(request).allow(address)
    if not allowed:
        return login_page(request, next, f"Too many sign-in attempts from your address: wait {wait} s and try again.",
                          429, {"Retry-After": str(wait)})  # fmt: skip
    if not same_token(request.cookies.get(LOGIN_CSRF_COOKIE), csrf):
        return login_page(request, next, "The sign-in form expired: please try again.", 403)
    url = database(request)

    def start_session() -> tuple[str, User]:
        with session_scope(url) as session:
            user, _ = authenticate(session=session, secret=token.strip(), kind="api")
            secret, _row = issue_token(
                session=session, user=user, kind="session", name="web session",
                lifetime=timedelta(hours=settings.session_hours),
            )  # fmt: skip
            audit(session=session, actor=user, action="session.start", subject_type="user",
                  subject_id=str(user.id), detail={"address": address})  # fmt: skip
            return secret, user

    try:
        secret, user = await run_in_threadpool(start_session)
    except Unauthorized as error:
        return login_page(request, next, f"Sign-in failed: {error.message}", 401)
    response = redirect(safe_next(next) if next and next != "/" else home_of(user))
    set_session_cookie(response, SESSION_COOKIE, secret, settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, csrf: str = Form("", max_length=200)) -> Response:
    viewer = await signed_in(request, csrf, post=True)
    url = database(request)

    def end() -> None:
        with session_scope(url) as session:
            revoke_token(session=session, token_id=uuid.UUID(viewer.session_id))

    await run_in_threadpool(end)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home(request: Request) -> Response:
    viewer = await signed_in(request)
    return redirect(home_of(viewer.user))


# --- contracts -----------------------------------------------------------------------------------------


@dataclass
class ContractLine:
    contract: Contract
    other: str
    weeks: list[TimesheetSnapshot]


@router.get("/contracts")
async def contracts(request: Request, offset: int = Query(0, ge=0, le=100_000)) -> Response:
    viewer = await signed_in(request)
    url = database(request)

    def load() -> tuple[list[ContractLine], int]:
        with session_scope(url) as session:
            rows, total = list_contracts(session=session, user=viewer.user, limit=50, offset=offset)
            ids = {c.client_id for c in rows} | {c.provider_id for c in rows}
            users = {u.id: u for u in session.exec(select(User).where(col(User.id).in_(ids)))} if ids else {}
            snaps: dict[uuid.UUID, list[TimesheetSnapshot]] = {}
            if rows:
                query = select(TimesheetSnapshot).where(
                    col(TimesheetSnapshot.contract_id).in_([c.id for c in rows])
                )
                for snap in session.exec(query.order_by(col(TimesheetSnapshot.week_start).desc())):
                    snaps.setdefault(snap.contract_id, []).append(snap)
            lines = []
            for c in rows:
                other = users.get(c.provider_id if viewer.user.id == c.client_id else c.client_id)
                lines.append(
                    ContractLine(c, (other.name or other.email) if other else "", snaps.get(c.id, [])[:6])
                )
            return lines, total

    lines, total = await run_in_threadpool(load)
    this_week = week_label(datetime.now(UTC))
    return render("contracts.html", base_context(
        viewer, "Contracts", lines=lines, total=total, offset=offset, this_week=this_week,
        week_label=week_label, iso_week_name=iso_week_name,
    ))  # fmt: skip


@router.get("/contracts/{contract_id}")
async def contract_home(request: Request, contract_id: uuid.UUID) -> Response:
    await signed_in(request)
    return redirect(f"/contracts/{contract_id}/week/{week_label(datetime.now(UTC))}")


@router.get("/contracts/{contract_id}/week")
async def pick_week(request: Request, contract_id: uuid.UUID, w: str = Query("", max_length=10)) -> Response:
    await signed_in(request)
    return redirect(f"/contracts/{contract_id}/week/{week_label(parse_week(w))}")


@router.get("/contracts/{contract_id}/week/{week}")
async def week_page(
    request: Request, contract_id: uuid.UUID, week: str, done: str | None = Query(None, max_length=40)
) -> Response:
    """The client's Work View, the provider's week, or (for support) a read-only view of it."""
    viewer = await signed_in(request)
    return await render_week(request, viewer, contract_id, week, notice=NOTICES.get(done or ""))


async def render_week(
    request: Request, viewer: Viewer, contract_id: uuid.UUID, week: str, *, notice: str | None = None,
    error: str | None = None, status: int = 200, entered: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    """The week page; ``entered`` refills the manual-time form after a refusal."""
    settings = settings_of(request)
    start = parse_week(week)
    url = database(request)
    user = viewer.user

    def load() -> tuple[TimesheetPublic, Contract, list[Capture], dict[uuid.UUID, User]]:
        with session_scope(url) as session:
            sheet = load_timesheet(session, settings, user, contract_id, start)
            contract = visible_contract(session=session, user=user, contract_id=contract_id)
            captures = list_captures(session=session, contract_id=contract.id, week=start)
            parties = session.exec(
                select(User).where(col(User.id).in_([contract.client_id, contract.provider_id]))
            )
            return sheet, contract, captures, {u.id: u for u in parties}

    sheet, contract, captures, parties = await run_in_threadpool(load)
    sheet = await with_workflow_view(temporal_of(request), sheet)
    clock = clock_for(viewer)
    secret, seconds = settings.resolved_secret_key(), settings.presign_seconds

    def sign(capture: Capture, part: str) -> str:
        return make_link(secret, capture.capture_id, part, seconds)[0]

    grid = week_grid(sheet, captures, sign, clock, image_base=f"/contracts/{contract.id}/captures")
    is_client, is_provider = user.id == contract.client_id, user.id == contract.provider_id
    dispute = sheet.dispute
    editable = is_provider and not sheet.frozen and clock.now < sheet.edit_cutoff
    client, provider = parties.get(contract.client_id), parties.get(contract.provider_id)
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
        disputed=set(dispute.entry_ids) if dispute else set(), request_id=new_request_id(),
        entered=entered or {"start": clock.input_value(min(clock.now, start + timedelta(days=7)) - timedelta(hours=1)),
                            "end": "", "memo": ""},
    )  # fmt: skip
    return render("week.html", context, status)


async def week_action(
    request: Request, viewer: Viewer, contract_id: uuid.UUID, week: str, action: Callable[[], Awaitable[object]],
    done: str, entered: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    """Run an action; on success back to the week with a notice, on refusal the week with the rule's
    message and its status (409/422/403)."""
    try:
        await action()
    except DomainError as error:
        if isinstance(error, NotFound) and "contract" in error.message:
            raise
        return await render_week(
            request, viewer, contract_id, week, error=error.message, status=error.status_code, entered=entered
        )
    return redirect(f"/contracts/{contract_id}/week/{week_label(parse_week(week))}?done={done}")


@router.get("/contracts/{contract_id}/captures/{capture_id}/image/{part}")
async def capture_image(
    request: Request, contract_id: uuid.UUID, capture_id: uuid.UUID, part: str
) -> Response:
    """A fresh signed link to one image of a capture (``thumb`` or the monitor's number): what the
    lightbox opens, and what a thumbnail reloads from when its link has expired."""
    viewer = await signed_in(request)
    settings, url = settings_of(request), database(request)
    if part != "thumb" and not (part.isdigit() and int(part) < settings.max_monitors):
        raise NotFound("no such image")

    def check() -> Capture:
        with session_scope(url) as session:
            capture, _ = get_capture(session=session, user=viewer.user, capture_id=capture_id)
            if capture.contract_id != contract_id or capture.deleted_at or capture.images_purged_at:
                raise NotFound("this image was deleted")
            if part != "thumb" and int(part) >= capture.monitor_count:
                raise NotFound("no such image")
            audit_support_read(
                session=session, user=viewer.user, subject_type="capture", subject_id=str(capture_id)
            )
            return capture

    await run_in_threadpool(check)
    link, _ = make_link(settings.resolved_secret_key(), capture_id, "thumb" if part == "thumb" else f"m{part}",
                        settings.presign_seconds)  # fmt: skip
    return redirect(link)


def need_role(viewer: Viewer, role: str, what: str) -> None:
    if viewer.user.role != role:
        raise Forbidden(f"only the contract's {role} can {what}")


@router.post("/contracts/{contract_id}/week/{week}/approve")
async def approve(
    request: Request, contract_id: uuid.UUID, week: str, csrf: str = Form("", max_length=200),
    request_id_: str = Form("", alias="request_id", max_length=100),
) -> Response:  # fmt: skip
    viewer = await signed_in(request, csrf, post=True)
    need_role(viewer, "client", "approve a timesheet")

    async def act() -> object:
        return await send_update(
            temporal_of(request), settings_of(request), viewer.user, contract_id, week, "approve",
            Approve(actor=actor(viewer.user)), request_id(request_id_),
        )  # fmt: skip

    return await week_action(request, viewer, contract_id, week, act, "approved")


@router.post("/contracts/{contract_id}/week/{week}/dispute")
async def dispute(
    request: Request, contract_id: uuid.UUID, week: str, csrf: str = Form("", max_length=200),
    request_id_: str = Form("", alias="request_id", max_length=100), entry: list[str] = Form([]),
    reason: str = Form("", max_length=4000),
) -> Response:  # fmt: skip
    viewer = await signed_in(request, csrf, post=True)
    need_role(viewer, "client", "dispute a timesheet")

    async def act() -> object:
        if not entry:
            raise InvalidInput("tick at least one entry to dispute")
        return await send_update(
            temporal_of(request), settings_of(request), viewer.user, contract_id, week, "dispute_entries",
            Dispute(actor=actor(viewer.user), entry_ids=entry[:1000], reason=reason), request_id(request_id_),
        )  # fmt: skip

    return await week_action(request, viewer, contract_id, week, act, "disputed")


@router.post("/contracts/{contract_id}/week/{week}/respond")
async def respond(
    request: Request, contract_id: uuid.UUID, week: str, csrf: str = Form("", max_length=200),
    request_id_: str = Form("", alias="request_id", max_length=100), answer: str = Form("", max_length=10),
    note: str = Form("", max_length=2000),
) -> Response:  # fmt: skip
    viewer = await signed_in(request, csrf, post=True)
    need_role(viewer, "provider", "answer a dispute")

    async def act() -> object:
        if answer not in ("accept", "contest"):
            raise InvalidInput("choose whether you accept or contest the dispute")
        return await send_update(
            temporal_of(request), settings_of(request), viewer.user, contract_id, week, "respond",
            Respond(actor=actor(viewer.user), accept=answer == "accept", note=note), request_id(request_id_),
        )  # fmt: skip

    return await week_action(
        request, viewer, contract_id, week, act, "accepted" if answer == "accept" else "contested"
    )


@router.post("/contracts/{contract_id}/captures/{capture_id}/delete")
async def remove_capture(
    request: Request, contract_id: uuid.UUID, capture_id: uuid.UUID, csrf: str = Form("", max_length=200),
    week: str = Form("", max_length=10),
) -> Response:  # fmt: skip
    viewer = await signed_in(request, csrf, post=True)
    settings, url, store = settings_of(request), database(request), request.app.state.store

    def act_sync() -> None:
        with session_scope(url) as session:
            capture = session.get(Capture, capture_id)
            if capture is None or capture.contract_id != contract_id:
                raise NotFound(f"no capture {capture_id} in this contract")
            delete_capture(
                session=session, store=store, user=viewer.user, capture_id=capture_id, policy=settings.policy
            )

    async def act() -> None:
        await run_in_threadpool(act_sync)

    return await week_action(
        request, viewer, contract_id, week or week_label(datetime.now(UTC)), act, "deleted"
    )


@router.post("/contracts/{contract_id}/week/{week}/manual")
async def manual_time(
    request: Request, contract_id: uuid.UUID, week: str, csrf: str = Form("", max_length=200),
    start: str = Form("", max_length=40), end: str = Form("", max_length=40), memo: str = Form("", max_length=10_000),
) -> Response:  # fmt: skip
    viewer = await signed_in(request, csrf, post=True)
    settings, url, clock = settings_of(request), database(request), clock_for(viewer)

    def act_sync() -> None:
        begins, ends = local_input(start, clock, "start"), local_input(end, clock, "end")
        with session_scope(url) as session:
            add_manual(
                session=session, user=viewer.user, contract_id=contract_id, start=begins, end=ends, memo=memo,
                policy=settings.policy, max_memo_chars=settings.max_memo_chars,
            )  # fmt: skip

    async def act() -> None:
        await run_in_threadpool(act_sync)

    return await week_action(
        request, viewer, contract_id, week, act, "manual", entered={"start": start, "end": end, "memo": memo}
    )


@router.post("/contracts/{contract_id}/manual/{entry_id}/delete")
async def remove_manual(
    request: Request, contract_id: uuid.UUID, entry_id: uuid.UUID, csrf: str = Form("", max_length=200),
    week: str = Form("", max_length=10),
) -> Response:  # fmt: skip
    viewer = await signed_in(request, csrf, post=True)
    settings, url = settings_of(request), database(request)

    def act_sync() -> None:
        with session_scope(url) as session:
            delete_manual(session=session, user=viewer.user, entry_id=entry_id, policy=settings.policy)

    async def act() -> None:
        await run_in_threadpool(act_sync)

    return await week_action(
        request, viewer, contract_id, week or week_label(datetime.now(UTC)), act, "manual_deleted"
    )


def local_input(value: str, clock: Clock, what: str) -> datetime:
    """A ``datetime-local`` value, read in the viewer's timezone."""
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{what} is not a date and time such as 2026-11-24T09:30") from None
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=clock.tz).astimezone(UTC)


# --- the support console -------------------------------------------------------------------------------


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
    request: Request,
    offset: int = Query(0, ge=0, le=100_000),
    contract_id: str = Query("", max_length=64),
    provider_id: str = Query("", max_length=64),
    client_id: str = Query("", max_length=64),
    status: str = Query("", max_length=32),
    week: str = Query("", max_length=10),
    page_token: str = Query("", max_length=4000),
) -> Response:
    viewer = await signed_in(request)
    need_support(viewer)
    url = database(request)

    def load() -> tuple[list[Any], int]:
        with session_scope(url) as session:
            items, total = dispute_queue(session=session, limit=50, offset=offset)
            audit(session=session, actor=viewer.user, action="support.read", subject_type="disputes",
                  subject_id="queue", detail={"offset": offset})  # fmt: skip
            return items, total

    queue, total = await run_in_threadpool(load)
    searched = any((contract_id, provider_id, client_id, status, week))
    found: TimesheetSearch | None = None
    error = None
    form = {"contract_id": contract_id, "provider_id": provider_id, "client_id": client_id, "status": status,
            "week": week}  # fmt: skip
    if searched:
        try:
            search = SearchFilter(
                contract_id=_uuid_or_none(contract_id, "contract id"), provider_id=_uuid_or_none(provider_id, "provider id"),
                client_id=_uuid_or_none(client_id, "client id"), status=status or None,
                week=parse_week(week) if week.strip() else None,
            )  # fmt: skip
            found = await search_timesheets(
                temporal_of(request), search, limit=50, page_token=page_token or None
            )
            await run_in_threadpool(_audit_search, url, viewer.user, search.query())
        except DomainError as refused:
            error = refused.message
    next_search = None
    if found is not None and found.next_page_token:
        next_search = "/support?" + urlencode(
            {**{k: v for k, v in form.items() if v}, "page_token": found.next_page_token}
        )
    return render("support.html", base_context(
        viewer, "Support console", queue=queue, total=total, offset=offset, found=found, form=form,
        statuses=STATUSES, error=error, next_search=next_search, temporal_ui=temporal_ui(settings_of(request)),
    ))  # fmt: skip


def _audit_search(url: str, user: User, query: str) -> None:
    with session_scope(url) as session:
        audit(session=session, actor=user, action="support.read", subject_type="timesheets", subject_id="search",
              detail={"query": query})  # fmt: skip


@dataclass
class OpenWeek:
    sheet: TimesheetPublic
    suggestions: dict[str, str]


@router.get("/support/contracts/{contract_id}")
async def timeline_page(
    request: Request, contract_id: uuid.UUID, done: str | None = Query(None, max_length=40)
) -> Response:
    viewer = await signed_in(request)
    need_support(viewer)
    return await render_timeline(request, viewer, contract_id, notice=NOTICES.get(done or ""))


async def render_timeline(
    request: Request, viewer: Viewer, contract_id: uuid.UUID, *, notice: str | None = None, error: str | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    settings, url, temporal = settings_of(request), database(request), temporal_of(request)
    timeline = await contract_timeline(temporal, settings, viewer.user, contract_id)

    def load() -> list[TimesheetPublic]:
        with session_scope(url) as session:
            weeks = session.exec(
                select(TimesheetSnapshot.week_start)
                .where(TimesheetSnapshot.contract_id == contract_id)
                .where(col(TimesheetSnapshot.status).in_(("submitted", "disputed", "in_support")))
                .order_by(col(TimesheetSnapshot.week_start))
                .limit(20)
            ).all()
            return [load_timesheet(session, settings, viewer.user, contract_id, w) for w in weeks]

    open_weeks = []
    for sheet in await run_in_threadpool(load):
        sheet = await with_workflow_view(temporal, sheet)
        suggestions = {}
        if sheet.dispute:
            for entry_id in sheet.dispute.entry_ids:
                entry = sheet.entry(entry_id)
                suggestions[entry_id] = rule_resolution(entry) if entry else "client"
        open_weeks.append(OpenWeek(sheet=sheet, suggestions=suggestions))
    clock = clock_for(viewer)
    return render("timeline.html", base_context(
        viewer, f"Timeline · {timeline.title}", notice=notice, error=error, timeline=timeline, open_weeks=open_weeks,
        request_id=new_request_id(), week_label=week_label, temporal_ui=temporal_ui(settings),
        until_default=clock.input_value(clock.now + timedelta(days=2)),
    ), status)  # fmt: skip


async def support_action(
    request: Request,
    viewer: Viewer,
    contract_id: uuid.UUID,
    action: Callable[[], Awaitable[object]],
    done: str,
) -> Response:
    try:
        await action()
    except DomainError as error:
        if isinstance(error, NotFound) and "contract" in error.message:
            raise
        return await render_timeline(
            request, viewer, contract_id, error=error.message, status=error.status_code
        )
    return redirect(f"/support/contracts/{contract_id}?done={done}")


@router.post("/support/contracts/{contract_id}/week/{week}/resolve")
async def resolve(request: Request, contract_id: uuid.UUID, week: str) -> Response:
    form = await request.form()
    viewer = await signed_in(request, str(form.get("csrf", "")), post=True)
    need_support(viewer)
    resolutions: dict[str, str] = {}
    for key, value in form.multi_items():
        if key.startswith("res:") and value in ("provider", "client"):
            resolutions[key[4:][:200]] = str(value)
    note = str(form.get("note", ""))[:2000]

    async def act() -> object:
        if not resolutions:
            raise InvalidInput("choose a side for at least one disputed entry")
        return await send_update(
            temporal_of(request), settings_of(request), viewer.user, contract_id, week, "resolve",
            Resolve.model_validate({"actor": actor(viewer.user), "resolutions": resolutions, "note": note}),
            request_id(str(form.get("request_id", ""))),
        )  # fmt: skip

    return await support_action(request, viewer, contract_id, act, "resolved")


@router.post("/support/contracts/{contract_id}/week/{week}/extend")
async def extend(
    request: Request, contract_id: uuid.UUID, week: str, csrf: str = Form("", max_length=200),
    request_id_: str = Form("", alias="request_id", max_length=100), deadline: str = Form("", max_length=10),
    until: str = Form("", max_length=40), reason: str = Form("", max_length=2000),
) -> Response:  # fmt: skip
    viewer = await signed_in(request, csrf, post=True)
    need_support(viewer)

    async def act() -> object:
        if deadline not in ("review", "response"):
            raise InvalidInput("choose the review or the response deadline")
        moment = local_input(until, clock_for(viewer), "the new deadline")
        return await send_update(
            temporal_of(request), settings_of(request), viewer.user, contract_id, week, "extend_deadline",
            ExtendDeadline(actor=actor(viewer.user), deadline=deadline, until=moment, reason=reason),
            request_id(request_id_),
        )  # fmt: skip

    return await support_action(request, viewer, contract_id, act, "extended")


__all__ = ["router"]
