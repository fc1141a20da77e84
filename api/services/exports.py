"""Invoices and exports (docs/design.md, "Statements and invoices").

- **Invoices**: each charged or guarantee-paid week gets one immutable, sequentially numbered invoice,
  issued on first request (``store/statements.py``) and rendered as a PDF with fpdf2: the parties, the
  week, hours by day, the rate, the amount, who paid it, the snapshot's content hash and a link to the week.
- **CSV**: a week's entries, a range of weeks, and the client's statement: UTF-8, a header row, amounts in
  cents and formatted; a text cell starting with ``= + - @`` (or a tab / carriage return) gets a leading
  apostrophe, so a spreadsheet never runs a memo as a formula.

A party who may not see the contract gets 404 (``visible_contract``), as everywhere."""

from __future__ import annotations

import csv
import io
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlmodel import Session

from api.services import statements as statement_service
from domain.calendar import iso_week_name, week_label, week_start
from domain.errors import InvalidInput, NotFound
from domain.money import amount_for_minutes, format_money
from domain.timesheet import Timesheet
from store import statements
from store.audit import audit_support_read
from store.contracts import visible_contract
from store.models import Contract, User
from store.timesheets import snapshot_of, users_by_id

MAX_RANGE_WEEKS = 53
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """User text for a spreadsheet: a leading apostrophe before anything a spreadsheet would evaluate."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


# --- weeks as CSV --------------------------------------------------------------------------------------

WEEK_HEADER = (
    "week", "entry_id", "kind", "start_utc", "minutes", "billable_minutes", "guaranteed_minutes",
    "not_guaranteed_because", "memo", "rate_cents", "amount_cents", "amount",
)  # fmt: skip


def _frozen_week(session: Session, contract: Contract, start: datetime) -> Timesheet | None:
    snapshot = snapshot_of(session=session, contract_id=contract.id, week=start)
    return Timesheet.model_validate(snapshot.body) if snapshot is not None else None


def _week_rows(sheet: Timesheet) -> list[list[object]]:
    label = week_label(sheet.week_start)
    return [
        [
            label, e.entry_id, e.kind, f"{e.start:%Y-%m-%dT%H:%M:%SZ}", e.minutes, e.billable_minutes,
            e.guaranteed_minutes, " ".join(e.not_guaranteed_because), safe_cell(e.memo), sheet.rate_cents,
            amount_for_minutes(e.billable_minutes, sheet.rate_cents),
            format_money(amount_for_minutes(e.billable_minutes, sheet.rate_cents), sheet.currency),
        ]
        for e in sheet.entries
    ]  # fmt: skip


def weeks_csv(
    session: Session, user: User, contract_id: uuid.UUID, first: datetime, last: datetime | None = None
) -> str:
    """The entries of one frozen week, or of every frozen week from ``first`` to ``last`` (at most a year).
    Each entry's amount is its billable minutes at the rate; the week's own amount is rounded once, so it
    can differ from their sum by a cent or two per week (the snapshot's amount is what was charged)."""
    contract = visible_contract(session=session, user=user, contract_id=contract_id)
    start, end = week_start(first), week_start(last or first)
    if end < start:
        raise InvalidInput("`to` is before `from`: give the weeks oldest first", "week_invalid")
    if (end - start).days // 7 >= MAX_RANGE_WEEKS:
        raise InvalidInput(f"at most {MAX_RANGE_WEEKS} weeks at once", "week_invalid")
    rows: list[list[object]] = []
    week = start
    while week <= end:
        sheet = _frozen_week(session, contract, week)
        if sheet is not None:
            rows.extend(_week_rows(sheet))
        week += timedelta(days=7)
    if last is None and not rows and _frozen_week(session, contract, start) is None:
        raise NotFound(f"week {week_label(start)} is not submitted yet: nothing to export", "not_found")
    audit_support_read(
        session=session, user=user, subject_type="timesheet", subject_id=f"{contract.id}:{start:%Y-%m-%d}:csv"
    )
    return _csv(WEEK_HEADER, rows)


STATEMENT_HEADER = (
    "at_utc", "kind", "contract_id", "week", "memo", "amount_cents", "amount", "held_change_cents",
    "balance_cents", "balance", "held_cents",
)  # fmt: skip


def statement_csv(session: Session, user: User, currency: str = "USD") -> str:
    """The client's statement as CSV: the running balance column ends at the ledger's balance."""
    found = statement_service.statement(session, user, currency)
    return _csv(
        STATEMENT_HEADER,
        (
            [
                f"{line.at:%Y-%m-%dT%H:%M:%SZ}", line.kind, line.contract_id or "",
                week_label(line.week_start) if line.week_start else "", safe_cell(line.memo), line.amount_cents,
                format_money(line.amount_cents, found.currency), line.held_change_cents, line.balance_cents,
                format_money(line.balance_cents, found.currency), line.held_cents,
            ]
            for line in found.lines
        ),
    )  # fmt: skip


# --- invoices ------------------------------------------------------------------------------------------


def invoice_for(
    session: Session, user: User, contract_id: uuid.UUID, week: datetime
) -> tuple[statements.Invoice, Contract, Timesheet]:
    """The week's invoice, issued on first request once the week's money is final; 404 before that, and
    for anyone who is not a party (or support / admin)."""
    contract = visible_contract(session=session, user=user, contract_id=contract_id)
    start = week_start(week)
    snapshot = snapshot_of(session=session, contract_id=contract.id, week=start)
    if snapshot is None:
        raise NotFound(f"week {week_label(start)} has no invoice: it is not submitted yet", "not_found")
    invoice = statements.find_invoice(session=session, contract_id=contract.id, week_start=start)
    if invoice is None and snapshot.status in statement_service.INVOICED_STATUSES:
        invoice = statements.issue_invoice(
            session=session, contract_id=contract.id, week_start=start, currency=contract.currency,
            content_hash=snapshot.content_hash,
        )  # fmt: skip
    if invoice is None:
        raise NotFound(f"week {week_label(start)} has no invoice: nobody has paid for it yet", "not_found")
    audit_support_read(session=session, user=user, subject_type="invoice", subject_id=str(invoice.number))
    return invoice, contract, Timesheet.model_validate(snapshot.body)


def issue_due(session: Session, user: User) -> None:
    """Issue the invoices of the user's weeks whose money is final, oldest week first (the money page
    calls it, so a party's weeks are numbered in week order the first time either party looks, rather
    than in the order someone downloads them)."""
    due = [
        w
        for c in statement_service.currencies(session, user)
        for w in statement_service.weeks(session, user, c)
    ]
    for week in sorted(due, key=lambda w: (w.week_start, w.title)):
        if week.invoice_number is None and week.status in statement_service.INVOICED_STATUSES:
            snapshot = snapshot_of(session=session, contract_id=week.contract_id, week=week.week_start)
            if snapshot is not None:
                statements.issue_invoice(
                    session=session, contract_id=week.contract_id, week_start=week.week_start,
                    currency=snapshot.body.get("currency", "USD"), content_hash=snapshot.content_hash,
                )  # fmt: skip


_NO_DECOMPOSITION = {
    "Ł": "L",
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "Œ": "OE",
    "œ": "oe",
    "\u0131": "i",  # dotless i
    "Ŧ": "T",
    "ŧ": "t",
}


def _latin(text: str) -> str:
    """The PDF's core font covers Latin-1 only: accents are kept where Latin-1 has them, other letters
    lose their marks, the euro sign is written EUR, and anything else becomes ``?``."""
    out = []
    for char in text.replace("€", "EUR "):
        char = _NO_DECOMPOSITION.get(char, char)
        if ord(char) < 256:
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode("latin-1")
        out.append(base or "?")
    return "".join(out)


def invoice_pdf(
    session: Session, user: User, contract_id: uuid.UUID, week: datetime, public_url: str = ""
) -> tuple[int, bytes]:
    """The invoice's number and its PDF."""
    from fpdf import FPDF  # imported on first use: only invoices need it

    invoice, contract, sheet = invoice_for(session, user, contract_id, week)
    people = users_by_id(session=session, ids=[contract.client_id, contract.provider_id])
    client, provider = people.get(contract.client_id), people.get(contract.provider_id)
    currency = invoice.currency
    start = invoice.week_start
    minutes_by_day = [0] * 7
    for entry in sheet.entries:
        minutes_by_day[(entry.start - start).days] += entry.billable_minutes
    link = f"{public_url.rstrip('/')}/contracts/{contract.id}/week/{week_label(start)}"

    pdf = FPDF(format="A4")
    pdf.set_title(_latin(f"Invoice {invoice.number}"))
    pdf.set_creator("Workproof")
    pdf.set_creation_date(invoice.issued_at)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 18)
    pdf.cell(0, 10, f"Invoice {invoice.number}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    pdf.cell(0, 5, "Workproof: documented hourly work with guaranteed payment", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("helvetica", size=10)

    def line(label: str, value: str) -> None:
        pdf.set_font("helvetica", "B", 10)
        pdf.cell(45, 6, _latin(label))
        pdf.set_font("helvetica", size=10)
        pdf.multi_cell(0, 6, _latin(value), new_x="LMARGIN", new_y="NEXT")

    line("Issued", f"{invoice.issued_at:%Y-%m-%d %H:%M} UTC")
    line("Contract", f"{contract.title} ({contract.id})")
    line("Provider", f"{provider.name} <{provider.email}>" if provider else str(contract.provider_id))
    line("Client", f"{client.name} <{client.email}>" if client else str(contract.client_id))
    line("Week", f"{iso_week_name(start)}: {start:%Y-%m-%d} to {start + timedelta(days=6):%Y-%m-%d} (UTC)")
    line("Rate", f"{format_money(sheet.rate_cents, currency)} per hour")
    pdf.ln(3)
    pdf.set_font("helvetica", "B", 10)
    pdf.cell(60, 7, "Day", border="B")
    pdf.cell(40, 7, "Billable hours", border="B", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=10)
    for offset, minutes in enumerate(minutes_by_day):
        day = start + timedelta(days=offset)
        pdf.cell(60, 6, f"{day:%a %Y-%m-%d}")
        pdf.cell(40, 6, f"{minutes // 60}:{minutes % 60:02d}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "B", 10)
    total = sheet.billable_minutes
    pdf.cell(60, 7, "Total", border="T")
    pdf.cell(40, 7, f"{total // 60}:{total % 60:02d}", border="T", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    line("Amount", format_money(invoice.amount_cents, currency))
    paid = []
    if invoice.client_paid_cents:
        paid.append(f"the client: {format_money(invoice.client_paid_cents, currency)}")
    if invoice.guarantee_paid_cents:
        paid.append(f"the guarantee fund: {format_money(invoice.guarantee_paid_cents, currency)}")
    line("Paid by", "; ".join(paid))
    if sheet.amount_cents != invoice.amount_cents:
        line("Billed", f"{format_money(sheet.amount_cents, currency)} (the frozen week; see the week's page)")
    line("Snapshot hash", f"sha256 {invoice.content_hash}")
    line("The week", link)
    pdf.ln(4)
    pdf.set_font("helvetica", "I", 8)
    pdf.multi_cell(
        0, 4,
        "This invoice was issued once by Workproof from the frozen timesheet named by its hash and the "
        "platform's ledger; it never changes. Amounts are exact to the cent; hours are billable time by UTC day.",
    )  # fmt: skip
    return invoice.number, bytes(pdf.output())
