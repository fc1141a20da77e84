"""Statements, earnings, invoices and CSV exports on the real stack: a week charged to the client and a
week paid by the guarantee fund, read back through the API; the invoice PDF parsed back; the CSVs read
back with the csv module; strangers get 404."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy.exc import DBAPIError
from temporalio.client import Client

from domain.calendar import week_label
from store import ledger
from store.db import session_scope
from tests.e2e.test_support_api import (
    Party,
    grant_credit,
    make_party,
    past_week,
    submit_week,
    temporal,
)
from tests.harness import RunningStack

pytestmark = pytest.mark.e2e

INJECTION = '=HYPERLINK("http://example.invalid","click")'


async def settled_week(
    stack: RunningStack, client: Client, *, funds: int, credit: int = 0, title: str = "Ledger export"
) -> tuple[Party, str]:
    """A past week of 5 documented slots with memos (60 min) and 30 min of manual time (memo written to
    look like a formula), submitted, approved through the API and settled (security period 1 s)."""
    party = await make_party(stack, client, title=title, funds=funds)
    if credit:
        grant_credit(stack, party.client_id, credit)
    week = past_week()
    monday = week + timedelta(hours=9)
    for i in range(5):
        party.capture(monday + timedelta(minutes=12 * i + 3), f"Reconcile ledger {i}")
    party.manual(week + timedelta(days=2, hours=14), 30, INJECTION)
    handle = await submit_week(party, client, week, security_s=1)
    wk = week_label(week)
    with stack.client(party.client_token) as http:
        response = http.post(
            f"/v1/contracts/{party.contract_id}/timesheets/{wk}/approve",
            json={"request_id": f"approve-{uuid.uuid4()}"},
        )
        assert response.status_code == 200, response.text
    view = await asyncio.wait_for(handle.result(), timeout=60)
    assert view.status == "settled", view
    return party, wk


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


async def test_a_charged_week_reads_as_statement_earnings_invoice_and_csv(
    stack: RunningStack, artifacts: Path
) -> None:
    client = await temporal(stack)
    party, wk = await settled_week(stack, client, funds=5000_00)
    base = f"/v1/contracts/{party.contract_id}"

    with stack.client(party.client_token) as http:
        statement = http.get("/v1/statement").json()
        balance = http.get("/v1/balance").json()
        kinds = [line["kind"] for line in statement["lines"]]
        assert kinds[0] == "funding" and "hold" in kinds and "charge" in kinds and "hold_release" in kinds
        assert (
            statement["lines"][-1]["balance_cents"] == statement["balance_cents"] == balance["balance_cents"]
        )
        # this week's workflow holds up to its maximum (60.00 x 40 h) if it starts after the funding (a race
        # in make_party): either way the statement ends at the ledger's figures
        this_week = statement["held_cents"]
        assert statement["lines"][-1]["held_cents"] == this_week in (0, 2400_00)
        assert balance["balance_cents"] == 5000_00 - this_week - 90_00
        assert sum(line["amount_cents"] for line in statement["lines"]) == balance["balance_cents"]
        assert sum(line["held_change_cents"] for line in statement["lines"]) == statement["held_cents"]
        charges = [line for line in statement["lines"] if line["kind"] == "charge"]
        assert sum(-line["held_change_cents"] - line["amount_cents"] for line in charges) == 90_00

        newest = http.get("/v1/statement", params={"last": 2}).json()
        assert newest["lines"] == statement["lines"][-2:] and newest["total_lines"] == len(kinds)
        rows = read_csv(http.get("/v1/statement.csv").text)
        assert [r["kind"] for r in rows] == kinds
        assert int(rows[-1]["balance_cents"]) == balance["balance_cents"]
        assert rows[-1]["balance"] == ("$2,510.00" if this_week else "$4,910.00")

    # both parties ask for the invoice at once: one number is issued
    def fetch(token: str) -> int:
        with stack.client(token) as http:
            first = http.get(f"{base}/invoices/{wk}.pdf")
            assert first.status_code == 200 and first.headers["content-type"] == "application/pdf"
            return int(first.headers["content-disposition"].split("invoice-")[1].split(".pdf")[0])

    with ThreadPoolExecutor(4) as pool:
        numbers = set(pool.map(fetch, [party.client_token, party.provider_token] * 2))
    assert len(numbers) == 1
    number = numbers.pop()
    with stack.client(party.provider_token) as http:
        again = http.get(f"{base}/invoices/{wk}.pdf")
        assert again.status_code == 200
        assert f"invoice-{number}.pdf" in again.headers["content-disposition"]
        earnings = http.get("/v1/earnings").json()
        csv_week = http.get(f"{base}/timesheets/{wk}.csv")
        assert csv_week.headers["content-type"].startswith("text/csv")
        previous = week_label(past_week(3))
        csv_range = http.get(f"{base}/timesheets.csv", params={"from": previous, "to": wk})
    (artifacts / "invoice.pdf").write_bytes(again.content)
    text = pdf_text(again.content)
    for expected in (
        f"Invoice {number}",
        "$90.00",
        "$60.00 per hour",
        "the client: $90.00",
        "Ledger export",
        wk,
    ):
        assert expected in text, (expected, text)
    with session_scope(stack.database_url) as session:
        digest = (
            session.connection()
            .exec_driver_sql(
                "SELECT content_hash FROM timesheet_snapshots WHERE contract_id = %(c)s",
                {"c": uuid.UUID(party.contract_id)},
            )
            .scalar_one()
        )
        assert ledger.sum_of_balances(session=session) == 0
    assert digest in text.replace("\n", "")
    # issued once, never changed: the row refuses updates and deletes
    for change in ("UPDATE invoices SET amount_cents = 1, client_paid_cents = 1 WHERE number = %(n)s",
                   "DELETE FROM invoices WHERE number = %(n)s"):  # fmt: skip
        with pytest.raises(DBAPIError, match="never changed"), session_scope(stack.database_url) as session:
            session.connection().exec_driver_sql(change, {"n": number})

    [week] = earnings["weeks"]
    assert (week["amount_cents"], week["charged_cents"], week["guarantee_cents"]) == (90_00, 90_00, 0)
    assert (week["released_cents"], week["in_escrow_cents"], week["in_review_cents"]) == (90_00, 0, 0)
    assert week["invoice_number"] == number
    assert earnings["available_cents"] == 90_00 and earnings["in_escrow_cents"] == 0
    assert earnings["contracts"][0]["released_cents"] == 90_00

    rows = read_csv(csv_week.text)
    assert len(rows) == 6 and {r["week"] for r in rows} == {wk}
    assert sum(int(r["billable_minutes"]) for r in rows) == 90
    assert sum(int(r["amount_cents"]) for r in rows) == 90_00
    assert sum(int(r["guaranteed_minutes"]) for r in rows) == 60
    [manual] = [r for r in rows if r["kind"] == "manual"]
    assert manual["memo"] == "'" + INJECTION  # never a formula in a spreadsheet
    assert read_csv(csv_range.text) == rows  # the earlier week has no snapshot: the same entries


async def test_a_guarantee_paid_week_is_invoiced_to_the_fund_and_strangers_get_404(
    stack: RunningStack,
) -> None:
    client = await temporal(stack)
    party, wk = await settled_week(stack, client, funds=0, credit=100_00, title="Guaranteed week")
    base = f"/v1/contracts/{party.contract_id}"
    _, stranger = stack.create_user("client")
    _, other_provider = stack.create_user("provider")
    _, support = stack.create_user("support")
    _, admin = stack.create_user("admin")
    with stack.client(party.provider_token) as http:
        pdf = http.get(f"{base}/invoices/{wk}.pdf")
        assert pdf.status_code == 200
        earnings = http.get("/v1/earnings").json()
    text = pdf_text(pdf.content)
    assert (
        "the guarantee fund: $60.00" in text and "the client" not in text.split("Paid by")[1].split("\n")[0]
    )
    [week] = earnings["weeks"]
    assert (week["guarantee_cents"], week["charged_cents"], week["amount_cents"]) == (60_00, 0, 90_00)

    for token in (stranger, other_provider):
        with stack.client(token) as http:
            for path in (f"{base}/invoices/{wk}.pdf", f"{base}/timesheets/{wk}.csv"):
                response = http.get(path)
                assert response.status_code == 404, (path, response.text)
                assert party.contract_id not in response.text or "no contract" in response.text
            ranged = http.get(f"{base}/timesheets.csv", params={"from": wk, "to": wk})
            assert ranged.status_code == 404
    for token in (support, admin):
        with stack.client(token) as http:
            assert http.get(f"{base}/invoices/{wk}.pdf").status_code == 200
    with stack.client(party.client_token) as http:
        assert http.get("/v1/earnings").status_code == 403
        statement: dict[str, Any] = http.get("/v1/statement").json()
        assert statement["owed_cents"] == 60_00 and statement["balance_cents"] == 0
        # the week of the current Monday has no snapshot yet: no invoice, no CSV
        assert http.get(f"{base}/invoices/{week_label(past_week(0))}.pdf").status_code == 404
    with stack.client(party.provider_token) as http:
        assert http.get("/v1/statement").status_code == 403
    with stack.client(admin) as http:
        fund = http.get("/v1/admin/guarantee-fund")
        assert fund.status_code == 200, fund.text
        [usd] = [p for p in fund.json() if p["currency"] == "USD"]
        assert usd["paid_out_cents"] >= 60_00 and usd["outstanding_cents"] >= 60_00


def test_invoices_migrate_down_and_up_and_number_weeks_one_after_another(stack: RunningStack) -> None:
    """On a database of its own: 0005 downgrades and upgrades cleanly; issued invoices take consecutive
    numbers, a second issue of a week returns the first, and a week nobody paid for gets none."""
    from alembic import command
    from sqlmodel import Session

    from store import statements
    from store.db import alembic_config, get_engine
    from store.models import Contract
    from store.users import create_user
    from tests.harness import drop_database, fresh_database

    url = fresh_database(stack.database_url)  # the stack's PostgreSQL, machine or embedded: never skipped
    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        command.downgrade(config, "0002")
        command.upgrade(config, "head")
        with Session(get_engine(url)) as session:
            client = create_user(session=session, email="c@invoice.test", role="client")
            provider = create_user(session=session, email="p@invoice.test", role="provider")
            contract = Contract(client_id=client.id, provider_id=provider.id, title="T", rate_cents=6000,
                                currency="USD", weekly_limit_hours=40, status="active")  # fmt: skip
            session.add(contract)
            session.flush()
            weeks = [past_week(n) for n in (5, 4, 3)]
            for n, week in enumerate(weeks[:2]):
                ledger.fund_client(session=session, client_id=client.id, amount_cents=1000, currency="USD",
                                   key=f"funding:{n}")  # fmt: skip
                ledger.charge_client(session=session, key=f"charge:{contract.id}:{n}", client_id=client.id,
                                     provider_id=provider.id, amount_cents=1000, currency="USD",
                                     contract_id=contract.id, week_start=week)  # fmt: skip
            issued = [
                statements.issue_invoice(
                    session=session,
                    contract_id=contract.id,
                    week_start=week,
                    currency="USD",
                    content_hash="0" * 64,
                )
                for week in weeks
            ]
            first, second, unpaid = issued
            assert first is not None and second is not None and unpaid is None
            assert second.number == first.number + 1 and first.amount_cents == first.client_paid_cents == 1000
            again = statements.issue_invoice(
                session=session,
                contract_id=contract.id,
                week_start=weeks[0],
                currency="USD",
                content_hash="1" * 64,
            )
            assert again == first
            session.commit()
    finally:
        drop_database(url)
