"""Who may do what, as a table: representative endpoints x the caller's role x whose contract it is.

The rules (docs/design.md, "API and web"): no token is 401; a role that may not do this is 403; a contract
(or a capture, a manual entry, a timesheet) that is not the caller's is 404, exactly as if it did not
exist, and the answer never leaks its data. Support and admin see every contract; only the parties
change one. Tokens are random, stored as their sha256 only, and stop working when revoked or expired.

"own" is a contract the caller is a party to (for support and admin: any contract); "other" is a
contract between another client and another provider.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from domain.calendar import slot_start, week_label, week_start
from store.db import get_engine, session_scope
from store.models import User
from store.users import create_user, issue_token
from tests.badinput.images import screenshot
from tests.e2e.test_support_api import Party, make_party, past_week, slot_id, submit_week, temporal
from tests.harness import RunningStack

pytestmark = pytest.mark.e2e

ROLES = ("provider", "client", "support", "admin")


@dataclass
class World:
    stack: RunningStack
    own: Party  # between `client` and `provider`
    other: Party  # between two strangers of the same roles
    support_id: str
    support_token: str
    admin_id: str
    admin_token: str
    approve_week: str  # submitted for review: the own client's approval succeeds
    dispute_week: str  # submitted for review: the own client's dispute succeeds
    dispute_entry: str
    links_capture: dict[str, str]  # own / other: a capture whose links are asked for

    def token(self, role: str) -> str:
        return {
            "provider": self.own.provider_token, "client": self.own.client_token,
            "support": self.support_token, "admin": self.admin_token,
        }[role]  # fmt: skip

    def party(self, whose: str) -> Party:
        return self.own if whose == "own" else self.other

    def secrets_of_other(self) -> list[str]:
        """What a stranger must never read in an answer about the other contract."""
        with session_scope(self.stack.database_url) as session:
            emails = [
                user.email
                for user_id in (self.other.client_id, self.other.provider_id)
                if (user := session.get(User, uuid.UUID(user_id))) is not None
            ]
        return [self.other.client_id, self.other.provider_id, "Other party's secret project", *emails]


@pytest.fixture(scope="module")
async def world(stack: RunningStack) -> World:
    client = await temporal(stack)
    own = await make_party(stack, client, title="Own contract")
    other = await make_party(stack, client, title="Other party's secret project")
    support_id, support_token = stack.create_user("support")
    admin_id, admin_token = stack.create_user("admin")
    approve_week, dispute_week = past_week(2), past_week(3)
    own.capture(approve_week + timedelta(days=1, hours=9, minutes=3), "Schema migration")
    disputed_at = dispute_week + timedelta(days=2, hours=14, minutes=5)
    own.capture(disputed_at, "Invoice export")
    await submit_week(own, client, approve_week)
    await submit_week(own, client, dispute_week)
    recently = datetime.now(UTC) - timedelta(hours=2)
    links = {"own": own.capture(recently, "Links"), "other": other.capture(recently, "Links")}
    return World(
        stack, own, other, support_id, support_token, admin_id, admin_token, week_label(approve_week),
        week_label(dispute_week), slot_id(disputed_at), links,
    )  # fmt: skip


# --- the requests ------------------------------------------------------------------------------------

Request = tuple[str, str, dict[str, Any] | None]  # method, path, JSON body
Target = Callable[[World, str, str], Request]  # (world, caller's role, "own" / "other") -> the request


def on_contract(method: str, path: str, body: dict[str, Any] | None = None) -> Target:
    return lambda w, role, whose: (method, path.format(id=w.party(whose).contract_id), body)


def this_week() -> str:
    return week_label(datetime.now(UTC))


def a_past_half_hour() -> tuple[datetime, datetime]:
    """Thirty whole minutes, an hour ago, inside one week."""
    end = slot_start(datetime.now(UTC) - timedelta(hours=1))
    if week_start(end - timedelta(minutes=30)) != week_start(end - timedelta(microseconds=1)):
        end = week_start(end)
    return end - timedelta(minutes=30), end


def upload(w: World, role: str, whose: str) -> Request:
    meta = {"capture_id": str(uuid.uuid4()), "captured_at": datetime.now(UTC).isoformat(), "memo": "Access"}
    return "UPLOAD", f"/v1/contracts/{w.party(whose).contract_id}/captures", meta


def delete_capture(w: World, role: str, whose: str) -> Request:
    capture_id = w.party(whose).capture(datetime.now(UTC) - timedelta(hours=2), "To delete")
    return "DELETE", f"/v1/captures/{capture_id}", None


def add_manual(w: World, role: str, whose: str) -> Request:
    start, end = a_past_half_hour()
    body = {"start": start.isoformat(), "end": end.isoformat(), "memo": "Call with the client"}
    return "POST", f"/v1/contracts/{w.party(whose).contract_id}/manual", body


def delete_manual(w: World, role: str, whose: str) -> Request:
    start = (datetime.now(UTC) - timedelta(hours=5)).replace(second=0, microsecond=0)
    return "DELETE", f"/v1/manual/{w.party(whose).manual(start, 20, 'Planning')}", None


def end_contract(w: World, role: str, whose: str) -> Request:
    party = w.party(whose)
    if role in ("provider", "client") and whose == "own":  # this one succeeds: end a contract of its own
        contract_id = w.stack.create_contract(
            party.client_token, party.provider_id, title="Own contract, ending"
        )
    else:
        contract_id = party.contract_id
    return "POST", f"/v1/contracts/{contract_id}/end", None


def approve(w: World, role: str, whose: str) -> Request:
    path = f"/v1/contracts/{w.party(whose).contract_id}/timesheets/{w.approve_week}/approve"
    return "POST", path, {"request_id": f"approve-{uuid.uuid4()}"}


def dispute(w: World, role: str, whose: str) -> Request:
    path = f"/v1/contracts/{w.party(whose).contract_id}/timesheets/{w.dispute_week}/dispute"
    body = {
        "request_id": f"dispute-{uuid.uuid4()}",
        "entry_ids": [w.dispute_entry],
        "reason": "Not on my project",
    }
    return "POST", path, body


def links(w: World, role: str, whose: str) -> Request:
    return "GET", f"/v1/captures/{w.links_capture[whose]}/links", None


def admin_create_user(w: World, role: str, whose: str) -> Request:
    return (
        "POST",
        "/v1/admin/users",
        {"email": f"new-{uuid.uuid4().hex[:8]}@test.workproof.dev", "role": "provider"},
    )


def admin_issue_token(w: World, role: str, whose: str) -> Request:
    return "POST", f"/v1/admin/users/{w.party(whose).provider_id}/tokens", {"name": "access table"}


def admin_revoke_token(w: World, role: str, whose: str) -> Request:
    with session_scope(w.stack.database_url) as session:
        user = session.get(User, uuid.UUID(w.party(whose).provider_id))
        assert user is not None
        _, row = issue_token(session=session, user=user, days=1)
        token_id = row.id
    return "DELETE", f"/v1/admin/tokens/{token_id}", None


def admin_fund(w: World, role: str, whose: str) -> Request:
    body = {"amount_cents": 100, "currency": "USD", "request_id": f"access-{uuid.uuid4()}"}
    return "POST", f"/v1/admin/clients/{w.party(whose).client_id}/funding", body


def offered(w: World, role: str, whose: str) -> str:
    """A fresh open offer between the party's client and provider."""
    party = w.party(whose)
    with w.stack.client(party.client_token) as http:
        answer = http.post("/v1/contracts", json={**OFFER, "provider_id": party.provider_id})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def decline_offer(w: World, role: str, whose: str) -> Request:
    return "POST", f"/v1/contracts/{offered(w, role, whose)}/decline", None


def withdraw_offer(w: World, role: str, whose: str) -> Request:
    return "POST", f"/v1/contracts/{offered(w, role, whose)}/withdraw", None


OFFER = {"title": "Access table offer", "rate_cents": 1000, "currency": "USD", "weekly_limit_hours": 10}


def send_invitation(w: World, role: str, whose: str) -> Request:
    body = {"email": f"invited-{uuid.uuid4().hex[:8]}@test.workproof.dev", "role": "provider", "offer": OFFER}
    return "POST", "/v1/invitations", body


def an_invitation(w: World, whose: str) -> str:
    with w.stack.client(w.party(whose).client_token) as http:
        answer = http.post("/v1/invitations", json=send_invitation(w, "client", whose)[2])
    assert answer.status_code == 201, answer.text
    return str(answer.json()["invitation"]["id"])


def withdraw_invitation(w: World, role: str, whose: str) -> Request:
    return "POST", f"/v1/invitations/{an_invitation(w, whose)}/withdraw", None


def resend_invitation(w: World, role: str, whose: str) -> Request:
    return "POST", f"/v1/invitations/{an_invitation(w, whose)}/resend", None


_device_addresses = itertools.count()


def approve_device(w: World, role: str, whose: str) -> Request:
    # Codes are rate-limited per client address: each asks from its own (X-Forwarded-For, trusted from
    # 127.0.0.1), so the other tests' device codes in this session do not use this one's allowance up.
    address = f"198.51.100.{next(_device_addresses) % 254 + 1}"
    with httpx.Client(base_url=w.stack.api_url, headers={"X-Forwarded-For": address}, timeout=30) as http:
        answer = http.post("/v1/device/code", json={"machine": "access"})
        assert answer.status_code == 201, answer.text
        code = answer.json()["user_code"]
    return "POST", "/v1/device/approve", {"user_code": code}


def caller_id(w: World, role: str) -> str:
    return {"provider": w.own.provider_id, "client": w.own.client_id, "support": w.support_id,
            "admin": w.admin_id}[role]  # fmt: skip


def revoke_own_token(w: World, role: str, whose: str) -> Request:
    """``own``: a spare token of the caller's account; ``other``: one of the other party's provider."""
    owner = caller_id(w, role) if whose == "own" and role != "stranger" else w.other.provider_id
    with session_scope(w.stack.database_url) as session:
        user = session.get(User, uuid.UUID(owner))
        assert user is not None
        _, row = issue_token(session=session, user=user, days=1, name="spare")
        token_id = row.id
    return "DELETE", f"/v1/me/tokens/{token_id}", None


def a_spare_user(w: World) -> str:
    with session_scope(w.stack.database_url) as session:
        user = create_user(
            session=session, email=f"spare-{uuid.uuid4().hex[:8]}@test.workproof.dev", role="client"
        )
        return str(user.id)


def on_spare_user(method: str, path: str, body: dict[str, Any] | None = None) -> Target:
    return lambda w, role, whose: (method, path.format(id=a_spare_user(w)), body)


def fixed(method: str, path: str, body: dict[str, Any] | None = None) -> Target:
    return lambda w, role, whose: (method, path, body)


def send(http: httpx.Client, request: Request) -> httpx.Response:
    method, path, body = request
    if method == "UPLOAD":
        parts = [("meta", (None, json.dumps(body).encode(), None)),
                 ("images", ("monitor-1.webp", screenshot("access"), "image/webp"))]  # fmt: skip
        return http.post(path, files=parts)
    return http.request(method, path, json=body)


# --- the table ---------------------------------------------------------------------------------------

# fmt: off
#                                                provider      client        support       admin
#                                                own   other   own   other   own   other   own   other
TABLE: dict[str, tuple[Target, tuple[int, ...]]] = {
    "GET contract":                (on_contract("GET", "/v1/contracts/{id}"),
                                                (200,  404,    200,  404,    200,  200,    200,  200)),
    "accept contract":             (on_contract("POST", "/v1/contracts/{id}/accept"),
                                                (200,  404,    403,  403,    403,  403,    403,  403)),
    "end contract":                (end_contract,
                                                (200,  404,    200,  404,    403,  403,    403,  403)),
    "turn Work View on":           (on_contract("POST", "/v1/contracts/{id}/work-view", {"on": True}),
                                                (200,  404,    200,  404,    403,  403,    403,  403)),
    "upload a capture":            (upload,     (201,  404,    403,  403,    403,  403,    403,  403)),
    "list a week's captures":      (lambda w, r, o: on_contract("GET", f"/v1/contracts/{{id}}/captures?week={this_week()}")(w, r, o),
                                                (200,  404,    200,  404,    200,  200,    200,  200)),
    "delete a capture":            (delete_capture,
                                                (204,  404,    403,  403,    403,  403,    403,  403)),
    "links to a capture's images": (links,      (200,  404,    200,  404,    200,  200,    200,  200)),
    "add manual time":             (add_manual, (201,  404,    403,  403,    403,  403,    403,  403)),
    "delete manual time":          (delete_manual,
                                                (204,  404,    403,  403,    403,  403,    403,  403)),
    "GET a timesheet":             (lambda w, r, o: on_contract("GET", f"/v1/contracts/{{id}}/timesheets/{this_week()}")(w, r, o),
                                                (200,  404,    200,  404,    200,  200,    200,  200)),
    "approve a timesheet":         (approve,    (403,  403,    200,  404,    403,  403,    403,  403)),
    "dispute a timesheet":         (dispute,    (403,  403,    200,  404,    403,  403,    403,  403)),
    "support: contract timeline":  (on_contract("GET", "/v1/support/contracts/{id}/timeline"),
                                                (403,  403,    403,  403,    200,  200,    403,  403)),
    "support: dispute queue":      (fixed("GET", "/v1/support/disputes"),
                                                (403,  403,    403,  403,    200,  200,    403,  403)),
    "balance":                     (fixed("GET", "/v1/balance"),
                                                (403,  403,    200,  200,    403,  403,    403,  403)),
    "admin: list users":           (fixed("GET", "/v1/admin/users"),
                                                (403,  403,    403,  403,    403,  403,    200,  200)),
    "admin: create a user":        (admin_create_user,
                                                (403,  403,    403,  403,    403,  403,    201,  201)),
    "admin: issue a token":        (admin_issue_token,
                                                (403,  403,    403,  403,    403,  403,    201,  201)),
    "admin: revoke a token":       (admin_revoke_token,
                                                (403,  403,    403,  403,    403,  403,    204,  204)),
    "admin: fund a client":        (admin_fund, (403,  403,    403,  403,    403,  403,    200,  200)),
    "decline an offer":            (decline_offer,
                                                (200,  404,    403,  403,    403,  403,    403,  403)),
    "withdraw an offer":           (withdraw_offer,
                                                (403,  403,    200,  404,    403,  403,    403,  403)),
    "send an invitation":          (send_invitation,
                                                (403,  403,    201,  201,    403,  403,    422,  422)),
    "list sent invitations":       (fixed("GET", "/v1/invitations"),
                                                (200,  200,    200,  200,    200,  200,    200,  200)),
    "withdraw an invitation":      (withdraw_invitation,
                                                (404,  404,    200,  404,    404,  404,    404,  404)),
    "resend an invitation":        (resend_invitation,
                                                (404,  404,    200,  404,    404,  404,    404,  404)),
    "approve a device code":       (approve_device,
                                                (204,  204,    204,  204,    204,  204,    204,  204)),
    "list my tokens":              (fixed("GET", "/v1/me/tokens"),
                                                (200,  200,    200,  200,    200,  200,    200,  200)),
    "revoke my token":             (revoke_own_token,
                                                (204,  404,    204,  404,    204,  404,    204,  204)),
    "admin: a user's sessions":    (on_spare_user("GET", "/v1/admin/users/{id}/sessions"),
                                                (403,  403,    403,  403,    403,  403,    200,  200)),
    "admin: change a role":        (on_spare_user("POST", "/v1/admin/users/{id}/role", {"role": "provider"}),
                                                (403,  403,    403,  403,    403,  403,    200,  200)),
    "admin: disable a user":       (on_spare_user("POST", "/v1/admin/users/{id}/disable"),
                                                (403,  403,    403,  403,    403,  403,    200,  200)),
    "admin: enable a user":        (on_spare_user("POST", "/v1/admin/users/{id}/enable"),
                                                (403,  403,    403,  403,    403,  403,    200,  200)),
    "admin: reset a second factor": (on_spare_user("DELETE", "/v1/admin/users/{id}/second-factor"),
                                                (403,  403,    403,  403,    403,  403,    200,  200)),
    # the other contract has no submitted week: nothing to export, for support and admin too
    "a week's entries as CSV":     (lambda w, r, o: on_contract("GET", f"/v1/contracts/{{id}}/timesheets/{w.approve_week}.csv")(w, r, o),
                                                (200,  404,    200,  404,    200,  404,    200,  404)),
    "weeks as CSV":                (lambda w, r, o: on_contract("GET", f"/v1/contracts/{{id}}/timesheets.csv?from={w.dispute_week}&to={w.approve_week}")(w, r, o),
                                                (200,  404,    200,  404,    200,  200,    200,  200)),
    "statement":                   (fixed("GET", "/v1/statement"),
                                                (403,  403,    200,  200,    403,  403,    403,  403)),
    "earnings":                    (fixed("GET", "/v1/earnings"),
                                                (200,  200,    403,  403,    403,  403,    403,  403)),
    "admin: the guarantee fund":   (fixed("GET", "/v1/admin/guarantee-fund"),
                                                (403,  403,    403,  403,    403,  403,    200,  200)),
}
# fmt: on
CELLS = [(role, whose) for role in ROLES for whose in ("own", "other")]


@pytest.mark.parametrize("endpoint", list(TABLE))
def test_each_role_gets_exactly_the_status_in_the_table(world: World, endpoint: str) -> None:
    target, expected = TABLE[endpoint]
    seen: dict[tuple[str, str], int] = {}
    leaks: list[str] = []
    secrets = world.secrets_of_other()
    for role, whose in CELLS:
        request = target(world, role, whose)
        with world.stack.client(world.token(role)) as http:
            response = send(http, request)
        seen[(role, whose)] = response.status_code
        if response.status_code >= 400:
            leaks += [f"{role}/{whose}: {s!r} in {response.text}" for s in secrets if s in response.text]
            if whose == "other" and world.other.contract_id not in request[1]:
                if world.other.contract_id in response.text:
                    leaks.append(f"{role}/{whose}: the other contract's id in {response.text}")
            assert response.json()["detail"], f"{role}/{whose}: a refusal without a reason"
    assert seen == dict(zip(CELLS, expected, strict=True))
    assert leaks == []


@pytest.mark.parametrize("endpoint", list(TABLE))
def test_no_token_or_an_unknown_one_is_401(world: World, endpoint: str) -> None:
    target, _ = TABLE[endpoint]
    request = target(world, "stranger", "own")
    for token in (None, "wp_" + "x" * 43, "not-even-the-format"):
        with world.stack.client(token) as http:
            response = send(http, request)
        assert response.status_code == 401, (token, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Own contract" not in response.text


def test_a_party_lists_only_its_own_contracts(world: World) -> None:
    for token, own in ((world.own.provider_token, world.own), (world.other.client_token, world.other)):
        with world.stack.client(token) as http:
            listed = {item["id"] for item in http.get("/v1/contracts", params={"limit": 200}).json()["items"]}
        assert own.contract_id in listed
        assert ({world.own.contract_id, world.other.contract_id} - {own.contract_id}).isdisjoint(listed)
    with world.stack.client(world.support_token) as http:
        listed = {item["id"] for item in http.get("/v1/contracts", params={"limit": 200}).json()["items"]}
    assert {world.own.contract_id, world.other.contract_id} <= listed


# --- tokens ------------------------------------------------------------------------------------------


def test_a_revoked_token_is_401(world: World) -> None:
    with world.stack.client(world.admin_token) as http:
        issued = http.post(
            f"/v1/admin/users/{world.other.provider_id}/tokens", json={"name": "to revoke"}
        ).json()
    with world.stack.client(issued["token"]) as http:
        assert http.get("/v1/me").status_code == 200
    with world.stack.client(world.admin_token) as http:
        assert http.delete(f"/v1/admin/tokens/{issued['id']}").status_code == 204
    with world.stack.client(issued["token"]) as http:
        response = http.get(f"/v1/contracts/{world.other.contract_id}")
    assert response.status_code == 401
    assert response.json()["detail"] == "this token was revoked: ask an admin for a new one"


def test_an_expired_token_is_401(world: World) -> None:
    with session_scope(world.stack.database_url) as session:
        user = session.get(User, uuid.UUID(world.other.client_id))
        assert user is not None
        secret, _ = issue_token(session=session, user=user, lifetime=timedelta(seconds=-1))
    with world.stack.client(secret) as http:
        response = http.get(f"/v1/contracts/{world.other.contract_id}")
    assert response.status_code == 401
    assert response.json()["detail"] == "this token has expired: ask an admin for a new one"


def test_tokens_are_stored_as_their_sha256_and_the_secret_nowhere(world: World) -> None:
    with world.stack.client(world.admin_token) as http:
        created = http.post(
            "/v1/admin/users", json={"email": f"hash-{uuid.uuid4().hex[:8]}@x.dev", "role": "client"}
        )
        issued = http.post(f"/v1/admin/users/{created.json()['id']}/tokens", json={"name": "hashed"}).json()
        listed = http.get(f"/v1/admin/users/{created.json()['id']}/tokens").json()
    secret = issued["token"]
    assert secret.startswith("wp_") and len(secret) >= 40
    assert all("token" not in item and "token_hash" not in item for item in listed)
    with world.stack.client(secret) as http:
        assert (
            http.get("/v1/me").json()["email"] == created.json()["email"]
        )  # used once: last_used_at is written

    engine = get_engine(world.stack.database_url)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT token_hash FROM api_tokens WHERE id = :id"), {"id": issued["id"]}
        ).scalar_one()
        assert stored == hashlib.sha256(secret.encode()).hexdigest()
        tables = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
        ).scalars().all()  # fmt: skip
        assert "api_tokens" in tables and "audit_log" in tables
        holding = [
            table
            for table in tables
            if conn.execute(text(f'SELECT count(*) FROM "{table}" AS t WHERE strpos(t::text, :secret) > 0'), {"secret": secret}).scalar_one()
        ]  # fmt: skip
    assert holding == []
