"""Property-based fuzzing of the API on the real stack: schemathesis generates requests from the running
API's ``/openapi.json`` for every documented operation, as each role, and every answer must be free of
server errors and match the schema the API documents for that status.

Generated ids are mixed with real ones (a contract between the fuzzing client and provider, its week, a
capture, a manual entry, the users), so requests reach past "not found" into the rules behind it.
``/v1/images/{ticket}`` is not in the schema (it serves bytes to a signed link), so it is not fuzzed
here; ``tests/e2e/test_api_ingest.py`` covers it.

Budget: a dozen examples per operation and role, no shrinking (a failure prints the request as a curl
command); about half a minute. The seed is fixed, so CI sends the same requests each run; set
``WORKPROOF_FUZZ_SEED`` (and ``WORKPROOF_FUZZ_EXAMPLES``) to explore others.

What fuzzing found is pinned at the end as plain requests, so it stays fixed whatever the seed.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from domain.calendar import week_label, week_start
from store.db import session_scope
from store.models import Contract, User
from store.users import issue_token
from tests.harness import RunningStack

pytestmark = pytest.mark.e2e

ROLES = ("provider", "client", "support", "admin")
# Per operation and role; a deeper run: WORKPROOF_FUZZ_EXAMPLES=200. Another seed explores other requests.
EXAMPLES = int(os.environ.get("WORKPROOF_FUZZ_EXAMPLES", "12"))
SEED = int(os.environ.get("WORKPROOF_FUZZ_SEED", "20261127"))


@dataclass
class World:
    """The fuzzing users (a token per role) and real objects for generated requests to hit."""

    stack: RunningStack
    tokens: dict[str, str]
    ids: dict[str, str]  # path parameter name → a real value

    def http(self, role: str) -> httpx.Client:
        return self.stack.client(self.tokens[role])


@pytest.fixture
def world(stack: RunningStack) -> World:
    """Fresh for each role: one role's fuzzing (ending the contract, deleting the capture) does not
    leave the next only refusals."""
    users = {role: stack.create_user(role) for role in ROLES}
    provider_id, provider_token = users["provider"]
    client_id, client_token = users["client"]
    contract_id = stack.create_contract(client_token, provider_id)
    stack.fund(client_id, 100_000)
    now = datetime.now(UTC)
    with session_scope(stack.database_url) as session:  # started yesterday, so manual time can be added
        contract = session.get(Contract, uuid.UUID(contract_id))
        assert contract is not None and contract.accepted_at is not None
        contract.accepted_at -= timedelta(days=1)
        session.add(contract)
    image = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 90, 160)).save(image, "WEBP")
    capture_id = str(uuid.uuid4())
    with stack.client(provider_token) as http:
        uploaded = http.post(
            f"/v1/contracts/{contract_id}/captures",
            data={
                "meta": json.dumps({"capture_id": capture_id, "captured_at": now.isoformat(), "memo": "Fuzz"})
            },
            files=[("images", ("m0.webp", image.getvalue(), "image/webp"))],
        )
        assert uploaded.status_code == 201, uploaded.text
        manual = http.post(
            f"/v1/contracts/{contract_id}/manual",
            json={
                "start": (now - timedelta(hours=3)).replace(second=0, microsecond=0).isoformat(),
                "end": (now - timedelta(hours=2, minutes=30)).replace(second=0, microsecond=0).isoformat(),
                "memo": "Call",
            },
        )
        assert manual.status_code == 201, manual.text
    with stack.client(client_token) as http:  # the account endpoints get real ids too
        invited = http.post("/v1/invitations", json={"email": f"fuzz-{uuid.uuid4().hex[:8]}@test.workproof.dev",
                            "offer": {"title": "Fuzz", "rate_cents": 100, "currency": "USD"}})  # fmt: skip
        assert invited.status_code == 201, invited.text
        invitation_id = str(invited.json()["invitation"]["id"])
    with session_scope(stack.database_url) as session:  # a token to revoke that no fuzzing role uses
        provider = session.get(User, uuid.UUID(provider_id))
        assert provider is not None
        spare_token = str(issue_token(session=session, user=provider, days=1, name="spare")[1].id)
    ids = {
        "contract_id": contract_id,
        "capture_id": capture_id,
        "entry_id": str(manual.json()["id"]),
        "user_id": provider_id,
        "client_id": client_id,
        "week": week_label(week_start(now)),
        "workflow_id": f"contract-{contract_id}",
        "invitation_id": invitation_id,
        "token_id": spare_token,
    }
    return World(stack, tokens={role: token for role, (_, token) in users.items()}, ids=ids)


@pytest.fixture(scope="module")
def api_schema(stack: RunningStack) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json")


def cases(operation: APIOperation, real_ids: dict[str, str]) -> st.SearchStrategy[Case]:
    """Valid requests on generated ids, invalid requests, and (half the time, when the path names any)
    valid requests on real objects."""
    names = {p.name for p in operation.path_parameters}
    real = {name: value for name, value in real_ids.items() if name in names}
    strategies = [operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    if real:
        on_real_objects = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real)
        strategies = [on_real_objects, on_real_objects, *strategies]
    return st.one_of(*strategies)


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_without_server_errors_and_as_documented(
    role: str, world: World, api_schema: BaseSchema, stack: RunningStack
) -> None:
    headers = {"Authorization": f"Bearer {world.tokens[role]}"}
    failures: list[str] = []
    answered: set[str] = set()  # operations that answered 2xx at least once
    operations = []
    for loaded in api_schema.get_all_operations():
        if isinstance(loaded, Ok):
            operations.append(loaded.ok())
        else:
            failures.append(f"--- an operation the schema documents cannot be fuzzed: {loaded.err()}")
    assert len(operations) >= 30  # the whole documented API

    for operation in operations:

        @seed(SEED)
        @given(case=cases(operation, world.ids))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Case) -> None:
            response = case.call_and_validate(
                base_url=stack.api_url,
                headers=headers,
                checks=[not_a_server_error, response_schema_conformance],
            )
            if response.status_code < 300:
                answered.add(case.operation.label)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as failure:  # schemathesis groups a case's failures
            failures.append(f"--- {role} {operation.label} (WORKPROOF_FUZZ_SEED={SEED})\n{failure}")

    assert not failures, "\n".join(failures)
    # the role's token worked, and requests got past refusals into real answers
    assert "GET /v1/me" in answered and len(answered) >= 5, sorted(answered)


# --- what fuzzing found, pinned: each request once answered 5xx or broke the documented schema -------------


def test_a_request_id_reused_for_another_action_or_by_another_user_runs_its_own_update(world: World) -> None:
    contract = world.ids["contract_id"]
    with world.http("provider") as provider, world.http("client") as client:
        first = provider.post(
            f"/v1/contracts/{contract}/work-view", json={"on": False}, headers={"X-Request-Id": "null"}
        )
        assert first.status_code == 200 and first.json()["on"] is False
        mine = client.post(
            f"/v1/contracts/{contract}/work-view", json={"on": True}, headers={"X-Request-Id": "null"}
        )
        assert mine.status_code == 200 and mine.json()["on"] is True  # not the provider's answer
        other_action = client.post(
            f"/v1/contracts/{contract}/weekly-limit",
            json={"weekly_limit_hours": 30},
            headers={"X-Request-Id": "null"},
        )
        assert other_action.status_code == 200 and other_action.json()["next_weekly_limit_hours"] == 30
        again = client.post(
            f"/v1/contracts/{contract}/work-view", json={"on": True}, headers={"X-Request-Id": "null"}
        )
        assert again.json() == mine.json()  # a retry still returns the first result


def test_a_body_that_is_not_utf8_json_is_a_400_with_its_code(world: World) -> None:
    """Found with the account endpoints in the schema: FastAPI's own 400 had no code."""
    with world.http("provider") as http:
        answer = http.post(
            "/v1/device/approve", content=b".\xffiL\xaaNp", headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 400 and answer.json()["code"] == "bad_request"


@pytest.mark.parametrize(
    ("role", "method", "path", "sent"),
    [
        ("admin", "POST", "/v1/admin/users/{user_id}/tokens", {"json": {"name": "a\u0000b"}}),
        ("admin", "GET", "/v1/admin/users", {"params": {"offset": 2**63}}),
        ("client", "GET", "/v1/contracts", {"params": {"offset": 10**30}}),
        ("client", "GET", "/v1/balance", {"params": {"currency": "abcd"}}),
        ("client", "GET", "/v1/balance", {"params": {"currency": "A/B"}}),
        ("support", "GET", "/v1/support/timesheets", {"params": {"page_token": "a"}}),
        ("support", "GET", "/v1/support/timesheets", {"params": {"page_token": "AAAAAAAA"}}),
    ],
)
def test_a_value_the_api_cannot_use_is_a_422_with_the_reason(
    world: World, role: str, method: str, path: str, sent: dict[str, Any]
) -> None:
    with world.http(role) as http:
        answer = http.request(method, path.format(**world.ids), **sent)
    assert answer.status_code == 422, answer.text
    assert set(answer.json()) == {"detail", "code"} and answer.json()["detail"]
    assert answer.json()["code"] in ("invalid_input", "currency_invalid", "week_invalid")
