"""Statements, earnings, invoices and CSV exports (docs/design.md, "Statements and invoices"). Each route
parses its request and calls one use case in ``api/services/statements.py`` or ``exports.py``.

Registered before the timesheet routes, so ``/timesheets/{week}.csv`` is never read as a week."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import AdminUser, ClientUser, CurrentUser, ProviderUser, SessionDep, SettingsDep
from api.schemas import EarningsPublic, FundPositionPublic, StatementPublic
from api.services import exports
from api.services import statements as service
from domain.calendar import parse_week, week_label

router = APIRouter(prefix="/v1")
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with a header row"}
}
PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "The invoice as a PDF"}
}


def csv_response(text: str, filename: str) -> Response:
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.get("/statement", response_model=StatementPublic, tags=["client"])
def statement(
    session: SessionDep, client: ClientUser, currency: str = Query("USD", max_length=3),
    last: int | None = Query(None, ge=1, le=100_000, description="Only the newest lines"),
) -> StatementPublic:  # fmt: skip
    """Every top-up, hold, charge and hold release of your money, oldest first, with the running balance."""
    return service.statement(session, client, currency, last)


@router.get("/statement.csv", tags=["client"], response_class=Response, responses=CSV)
def statement_csv(
    session: SessionDep, client: ClientUser, currency: str = Query("USD", max_length=3)
) -> Response:
    """The statement as CSV (UTF-8, amounts in cents and formatted)."""
    return csv_response(exports.statement_csv(session, client, currency), "statement.csv")


@router.get("/earnings", response_model=EarningsPublic, tags=["provider"])
def earnings(
    session: SessionDep, provider: ProviderUser, currency: str = Query("USD", max_length=3)
) -> EarningsPublic:
    """In review, in escrow (the security period), released and available: per week and per contract."""
    return service.earnings(session, provider, currency)


@router.get(
    "/contracts/{contract_id}/invoices/{week}.pdf", tags=["everyone"], response_class=Response, responses=PDF
)
def invoice(
    contract_id: uuid.UUID, week: str, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> Response:
    """The week's numbered invoice (issued once, never changed); 404 until someone paid for the week."""
    number, pdf = exports.invoice_pdf(session, user, contract_id, parse_week(week), settings.base_url)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="invoice-{number}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/contracts/{contract_id}/timesheets/{week}.csv",
    tags=["everyone"],
    response_class=Response,
    responses=CSV,
)
def week_csv(contract_id: uuid.UUID, week: str, session: SessionDep, user: CurrentUser) -> Response:
    """A submitted week's entries as CSV."""
    start = parse_week(week)
    return csv_response(exports.weeks_csv(session, user, contract_id, start), f"week-{week_label(start)}.csv")


@router.get(
    "/contracts/{contract_id}/timesheets.csv", tags=["everyone"], response_class=Response, responses=CSV
)
def weeks_csv(
    contract_id: uuid.UUID,
    session: SessionDep,
    user: CurrentUser,
    from_: str = Query(alias="from", max_length=10),
    to: str = Query(max_length=10),
) -> Response:
    """The entries of every submitted week from ``from`` to ``to`` (Mondays, at most a year)."""
    first, last = parse_week(from_), parse_week(to)
    return csv_response(
        exports.weeks_csv(session, user, contract_id, first, last),
        f"weeks-{week_label(first)}-{week_label(last)}.csv",
    )


@router.get("/admin/guarantee-fund", response_model=list[FundPositionPublic], tags=["admin"])
def guarantee_fund(session: SessionDep, admin: AdminUser) -> list[FundPositionPublic]:
    """The guarantee fund per currency: paid out to providers, recovered from clients, still owed."""
    return service.fund_position(session, admin)
