"""Free text meets one set of rules wherever it is written (domain/text.py): a lone surrogate is a 422,
never a 500; a bidirectional override is refused in titles, dispute reasons, notes and memos alike, so
nobody can make the platform's own words (a deadline, an amount) read backwards on another person's
screen. Each refusal carries its code and leaves nothing behind."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from store.db import session_scope
from store.models import Capture, Contract
from tests.e2e.test_support_api import make_party, past_week, submit_week, temporal
from tests.harness import RunningStack

pytestmark = pytest.mark.e2e

LONE_SURROGATE = "\ud800"
OVERRIDE = "\u202e"


def raw_json(value: dict[str, object]) -> bytes:
    """JSON as an attacker writes it: ``ensure_ascii`` spells the lone surrogate as ``\\ud800``."""
    return json.dumps(value, ensure_ascii=True).encode()


@pytest.mark.parametrize("title", [f"Design {LONE_SURROGATE}", f"Invoice {OVERRIDE}0001 USD"])
def test_a_title_with_a_lone_surrogate_or_an_override_is_refused(stack: RunningStack, title: str) -> None:
    _, client_token = stack.create_user("client")
    provider_id, _ = stack.create_user("provider")
    with stack.client(client_token) as http:
        answer = http.post(
            "/v1/contracts",
            content=raw_json({"provider_id": provider_id, "title": title, "rate_cents": 2500}),
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 422, answer.text
    # the JSON reader refuses a lone surrogate itself; the text rules refuse the override
    assert answer.json()["code"] in ("invalid_input", "text_invalid_character")
    with session_scope(stack.database_url) as session:
        assert (
            session.exec(select(Contract).where(Contract.provider_id == uuid.UUID(provider_id))).all() == []
        )


def test_a_memo_with_a_lone_surrogate_is_a_422_and_stores_nothing(stack: RunningStack) -> None:
    _, client_token = stack.create_user("client")
    provider_id, provider_token = stack.create_user("provider")
    contract_id = stack.create_contract(client_token, provider_id)
    capture_id = str(uuid.uuid4())
    meta = {"capture_id": capture_id, "captured_at": datetime.now(UTC).isoformat(), "memo": f"x{LONE_SURROGATE}",
            "kind": "tracked"}  # fmt: skip
    with stack.client(provider_token) as http:
        answer = http.post(
            f"/v1/contracts/{contract_id}/captures", files=[("meta", (None, raw_json(meta), None))]
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "text_invalid_character"
    with session_scope(stack.database_url) as session:
        assert session.get(Capture, uuid.UUID(capture_id)) is None


@pytest.mark.parametrize("name", ["a lone surrogate in a token's name", "an override in a user's name"])
def test_other_fields_refuse_unstorable_text_with_a_422(stack: RunningStack, name: str) -> None:
    _, admin_token = stack.create_user("admin")
    with stack.client(admin_token) as http:
        if "token" in name:
            user_id, _ = stack.create_user("client")
            answer = http.post(f"/v1/admin/users/{user_id}/tokens", content=raw_json({"name": LONE_SURROGATE}),
                               headers={"content-type": "application/json"})  # fmt: skip
        else:
            answer = http.post("/v1/admin/users", json={"email": f"{uuid.uuid4().hex[:8]}@t.dev", "role": "client",
                                                        "name": f"Ana {OVERRIDE}evil"})  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] in ("invalid_input", "text_invalid_character")


async def test_a_dispute_reason_with_an_override_is_refused_before_anything_is_written(
    stack: RunningStack,
) -> None:
    client = await temporal(stack)
    party = await make_party(stack, client)
    week = past_week()
    party.capture(week + timedelta(days=1, hours=10, minutes=3), "Reports")
    await submit_week(party, client, week)
    with stack.client(party.client_token) as http:
        sheet = http.get(f"/v1/contracts/{party.contract_id}/timesheets/{week:%Y-%m-%d}").json()
        entry_id = sheet["entries"][0]["entry_id"]
        answer = http.post(
            f"/v1/contracts/{party.contract_id}/timesheets/{week:%Y-%m-%d}/dispute",
            json={"request_id": "override-1", "entry_ids": [entry_id],
                  "reason": f"deadline {OVERRIDE}1202-21-21 moved"},
        )  # fmt: skip
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "text_invalid_character"
        assert (
            http.get(f"/v1/contracts/{party.contract_id}/timesheets/{week:%Y-%m-%d}").json()["status"]
            == "submitted"
        )
