"""Money you can read: ``/money`` shows a client's statement (every top-up, hold, charge and hold release
with the running balance) or a provider's earnings (in review, in escrow, released and available, per
week and per contract), with the weeks' invoices and CSV links and two pictures (hours per week, money
per week). ``/admin/money`` lets an admin record a top-up (money received outside the platform: the
prepaid adapter), set a client's credit line, and see the guarantee fund's position.

Thin: every figure comes from ``api/services/statements.py``, every change from ``api/services/money.py``,
the same use cases as the REST API."""

from __future__ import annotations

import uuid

from fastapi import Form, Query
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import FormViewerDep, ServicesDep, Viewer, ViewerDep
from api.schemas import EarningWeekPublic
from api.services import exports
from api.services import money as money_service
from api.services import statements as service
from api.web.charts import PAID_SERIES, WORK_SERIES, Chart, hours, stacked
from api.web.render import base_context, page_router, redirect, render
from api.web.security import new_request_id, request_id
from api.web.view import Clock
from domain.calendar import week_label
from domain.errors import DomainError, Forbidden
from domain.money import cents_from_text, check_currency, format_money
from domain.text import MAX_REASON_CHARS
from domain.timesheet import Timesheet

router = page_router()
CHART_WEEKS = 12
CLIENTS_PER_PAGE = 100
STATEMENT_LINES = 200  # the newest; the CSV has them all
ADMIN_NOTICES = {
    "funded": "Top-up recorded: the client's balance is credited.",
    "credit": "Credit line set.",
}


def day_chart(sheet: Timesheet, clock: Clock) -> Chart:
    """Hours per day of one week (the week page), by the viewer's days like the grid below it."""
    days = service.split_by_day(sheet, clock.tz)
    return stacked(
        "hours-per-day", "Hours per day", f"Billable hours on each day of the week ({clock.name} days): "
        "guaranteed, billable but not guaranteed, and manual time, stacked; each column's total is written above it.",
        WORK_SERIES, [f"{day:%a %d}" for day, _ in days], [[d.guaranteed, d.other, d.manual] for _, d in days], hours,
        "hours", scale_step=60,
    )  # fmt: skip


def _money_charts(
    session: Session, viewer: Viewer, weeks: list[EarningWeekPublic], currency: str
) -> list[Chart]:
    work = service.work_by_week(session, viewer.user, CHART_WEEKS)
    labels = [f"{start:%d %b}" for start, _ in work]
    worked = stacked(
        "hours-per-week", f"Hours per week, last {CHART_WEEKS} weeks",
        "Billable hours of each week (by its Monday): guaranteed, billable but not guaranteed, and manual time, "
        "stacked; each column's total is written above it.",
        WORK_SERIES, labels, [[s.guaranteed, s.other, s.manual] for _, s in work], hours, "hours", scale_step=60,
    )  # fmt: skip
    paid = {week_label(start): [0, 0] for start, _ in work}
    for week in weeks:
        row = paid.get(week_label(week.week_start))
        if row is not None:
            row[0] += week.charged_cents
            row[1] += week.guarantee_cents
    spend = "Spend" if viewer.user.role == "client" else "Earnings"
    money = stacked(
        "money-per-week", f"{spend} per week, last {CHART_WEEKS} weeks",
        f"{spend} for each week's work (by its Monday), paid by the client or by the guarantee fund, stacked; "
        "each column's total is written above it.",
        PAID_SERIES, labels, [paid[week_label(start)] for start, _ in work], lambda c: format_money(c, currency), currency,
    )  # fmt: skip
    return [worked, money]


@router.get("/money")
async def money_page(
    viewer: ViewerDep, services: ServicesDep, currency: str = Query("", max_length=3)
) -> Response:
    """The client's statement or the provider's earnings, in one currency (the first the user has, or
    ``?currency=``)."""
    user = viewer.user
    if user.role == "admin":
        return redirect("/admin/money")
    if user.role not in ("client", "provider"):
        raise Forbidden("money pages are for clients, providers and admins", "role_required")

    def load(session: Session) -> dict:
        exports.issue_due(session, user)
        held = service.currencies(session, user)
        shown = check_currency(currency) if currency else held[0]
        weeks = service.weeks(session, user, shown)
        found: dict = {
            "weeks": weeks, "charts": _money_charts(session, viewer, weeks, shown), "statement": None,
            "earnings": None, "currencies": held, "currency": shown,
        }  # fmt: skip
        if user.role == "client":
            found["statement"] = service.statement(session, user, shown, last=STATEMENT_LINES)
        else:
            found["earnings"] = service.earnings(session, user, shown)
        return found

    data = await services.db(load)
    title = "Statement" if user.role == "client" else "Earnings"
    return render("money.html", base_context(viewer, title, **data))


@router.get("/admin/money")
async def admin_money(
    viewer: ViewerDep, services: ServicesDep, done: str | None = Query(None, max_length=40),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> Response:  # fmt: skip
    return await render_admin(services, viewer, notice=ADMIN_NOTICES.get(done or ""), offset=offset)


async def render_admin(
    services: ServicesDep, viewer: Viewer, *, notice: str | None = None, error: str | None = None, status: int = 200,
    offset: int = 0,
) -> Response:  # fmt: skip
    if viewer.user.role != "admin":
        raise Forbidden("this page is for admins", "role_required")

    def load(session: Session) -> dict:
        return {
            "clients": service.clients_money(session, viewer.user, limit=CLIENTS_PER_PAGE + 1, offset=offset),
            "fund": service.fund_position(session, viewer.user),
        }

    data = await services.db(load)
    more = len(data["clients"]) > CLIENTS_PER_PAGE
    data["clients"] = data["clients"][:CLIENTS_PER_PAGE]
    context = base_context(
        viewer, "Money (admin)", notice=notice, error=error, request_id=new_request_id(), offset=offset,
        next_offset=offset + CLIENTS_PER_PAGE if more else None, per_page=CLIENTS_PER_PAGE, **data,
    )  # fmt: skip
    return render("admin_money.html", context, status)


async def admin_action(services: ServicesDep, viewer: Viewer, action: object, done: str) -> Response:
    try:
        await services.db(action)  # type: ignore[arg-type]
    except DomainError as error:
        if error.code == "role_required":
            raise
        return await render_admin(services, viewer, error=error.message, status=error.status_code)
    return redirect(f"/admin/money?done={done}")


@router.post("/admin/money/funding")
async def top_up(
    viewer: FormViewerDep, services: ServicesDep, client_id: uuid.UUID = Form(), amount: str = Form("", max_length=40),
    currency: str = Form("USD", max_length=3), request_id_: str = Form("", alias="request_id", max_length=100),
) -> Response:  # fmt: skip
    """Record money received for a client outside the platform; the form's request id makes a resubmitted
    form a no-op."""
    if viewer.user.role != "admin":
        raise Forbidden("only an admin records a top-up", "role_required")
    key = request_id(request_id_)

    def act(session: Session) -> object:
        cents = cents_from_text(amount)
        return money_service.fund(session, viewer.user, client_id, cents, currency, key)

    return await admin_action(services, viewer, act, "funded")


@router.post("/admin/money/credit")
async def credit_line(
    viewer: FormViewerDep, services: ServicesDep, client_id: uuid.UUID = Form(), limit: str = Form("", max_length=40),
    currency: str = Form("USD", max_length=3), reason: str = Form("", max_length=MAX_REASON_CHARS),
) -> Response:  # fmt: skip
    if viewer.user.role != "admin":
        raise Forbidden("only an admin sets a credit line", "role_required")

    def act(session: Session) -> object:
        cents = cents_from_text(limit, what="limit")
        return money_service.set_credit_line(session, viewer.user, client_id, currency, cents, reason)

    return await admin_action(services, viewer, act, "credit")
