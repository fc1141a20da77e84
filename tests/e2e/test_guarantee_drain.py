"""The guarantee fund cannot be drained (the attack that worked before the week was secured): a client
with no money offers an absurd rate, a colluding provider documents a few slots, the client approves, the
charge fails — and the guarantee used to pay whatever was due. Now the rate has a ceiling and the
guarantee never pays more than the week secured: money held on the client's balance, or credit an admin
granted. Money is whole cents: strings, booleans and fractions are refused."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from domain.calendar import week_label
from store import ledger
from store.db import session_scope
from tests.e2e.test_support_api import eventually, make_party, past_week, status_of, submit_week, temporal
from tests.harness import RunningStack
from workflows.timesheet import TimesheetWorkflow

pytestmark = pytest.mark.e2e


def guarantee_transfers(stack: RunningStack, contract_id: str) -> list[str]:
    with session_scope(stack.database_url) as session:
        rows = ledger.transfers_for(session=session, contract_id=uuid.UUID(contract_id))
    return [row.kind for row in rows if row.kind in ("guarantee_payout", "receivable")]


def test_an_offer_above_the_rate_ceiling_is_refused_with_its_code(stack: RunningStack) -> None:
    _, client_token = stack.create_user("client")
    provider_id, _ = stack.create_user("provider")
    with stack.client(client_token) as http:
        refused = http.post("/v1/contracts", json={
            "provider_id": provider_id, "title": "Drain", "rate_cents": 1_000_000_000, "currency": "USD",
        })  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "rate_too_high"
    assert str(stack.settings.max_rate_cents) in refused.json()["detail"]


@pytest.mark.parametrize("amount", ["100", True, 1e3, 12.5])
def test_money_is_whole_cents_never_a_string_a_boolean_or_a_fraction(
    stack: RunningStack, amount: object
) -> None:
    client_id, client_token = stack.create_user("client")
    provider_id, _ = stack.create_user("provider")
    _, admin_token = stack.create_user("admin")
    with stack.client(admin_token) as http:
        funded = http.post(f"/v1/admin/clients/{client_id}/funding",
                           json={"amount_cents": amount, "request_id": uuid.uuid4().hex})  # fmt: skip
    assert funded.status_code == 422, funded.text
    with stack.client(client_token) as http:
        offered = http.post(
            "/v1/contracts", json={"provider_id": provider_id, "title": "t", "rate_cents": amount}
        )
        assert offered.status_code == 422, offered.text
        assert http.get("/v1/balance").json()["balance_cents"] == 0


async def test_a_client_with_nothing_secured_drains_nothing_and_credit_bounds_the_payout(
    stack: RunningStack,
) -> None:
    client = await temporal(stack)
    party = await make_party(stack, client, funds=0)
    week = past_week()
    for minute in (3, 15, 27, 39, 51):  # a documented hour with memos
        party.capture(week + timedelta(days=1, hours=10, minutes=minute), "Reports")
    handle = await submit_week(party, client, week)
    with stack.client(party.client_token) as http:
        sheet = http.get(f"/v1/contracts/{party.contract_id}/timesheets/{week_label(week)}").json()
        assert sheet["guaranteed_cents"] > 0 and sheet["secured_cents"] == 0  # shown before anything is paid
        approved = http.post(f"/v1/contracts/{party.contract_id}/timesheets/{week_label(week)}/approve",
                             json={"request_id": "drain-approve-1"})  # fmt: skip
        assert approved.status_code == 200, approved.text
    await eventually(lambda: _is(handle, "unpaid"))
    view = await handle.result()
    assert view.guarantee_paid_cents == 0 and view.charged_cents == 0
    assert guarantee_transfers(stack, party.contract_id) == []

    # An admin grants credit through the API: the next week is secured up to it, and no further.
    _, admin_token = stack.create_user("admin")
    with stack.client(admin_token) as http:
        granted = http.put(f"/v1/admin/clients/{party.client_id}/credit",
                           json={"currency": "USD", "limit_cents": 30_00, "reason": "known client"})  # fmt: skip
        assert granted.status_code == 200, granted.text
        assert granted.json()["available_cents"] == 30_00
    later = past_week(1)
    for minute in (3, 15, 27, 39, 51):
        party.capture(later + timedelta(days=1, hours=10, minutes=minute), "Reports")
    second = await submit_week(party, client, later)
    await eventually(lambda: _is(second, "submitted"))
    with stack.client(party.client_token) as http:
        assert http.post(f"/v1/contracts/{party.contract_id}/timesheets/{week_label(later)}/approve",
                         json={"request_id": "drain-approve-2"}).status_code == 200  # fmt: skip
    await eventually(lambda: _is(second, "paid_by_guarantee"))
    view = await second.query(TimesheetWorkflow.view)
    assert view.guarantee_paid_cents == 30_00  # the hour is worth more; the credit secured 30.00
    assert guarantee_transfers(stack, party.contract_id) == ["guarantee_payout", "receivable"]


async def _is(handle: object, status: str) -> bool:
    return await status_of(handle) == status  # type: ignore[arg-type]
