"""Accounts over HTTP on the real stack, mail read from the real SMTP server: sign-up and confirmation,
sign-in that never tells whether an address has an account, rate limits per address and per account,
password reset, invitations and offers, device approval, sessions that end with their credential, admin
actions, the mail outbox surviving a mail server that is down, and every abuse case with its code."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import text
from sqlmodel import select
from starlette.requests import Request

from api.deps import client_address
from store.db import get_engine, session_scope
from store.models import AccountLink, DeviceCode, Invitation, OutboxMail, User, utcnow
from tests.e2e.accounts_helpers import (
    PASSWORD,
    browser_like,
    confirmed_client,
    csrf_of,
    link_in,
    local,
    new_email,
    sign_up,
    signed_in,
    signed_in_client,
    user_id_of,
)
from tests.harness import RunningStack, stack_settings

pytestmark = pytest.mark.e2e

OFFER = {"title": "Invoice export", "rate_cents": 4500, "currency": "USD", "weekly_limit_hours": 30,
         "manual_allowed": True, "work_view": True}  # fmt: skip


# --- sessions end with their credential -----------------------------------------------------------------


def test_a_web_session_started_from_a_token_ends_when_the_token_is_revoked(stack: RunningStack) -> None:
    """Failed before #14: revoking the token left the session it started working."""
    _, admin_token = stack.create_user("admin")
    user_id, _ = stack.create_user("client")
    with stack.client(admin_token) as admin:
        issued = admin.post(f"/v1/admin/users/{user_id}/tokens", json={"name": "web"}).json()
    with browser_like(stack) as http:
        form = http.get("/login")
        assert (
            http.post("/login", data={"token": issued["token"], "csrf": csrf_of(form.text)}).status_code
            == 303
        )
        assert http.get("/contracts").status_code == 200
        with stack.client(admin_token) as admin:
            assert admin.delete(f"/v1/admin/tokens/{issued['id']}").status_code == 204
        after = http.get("/contracts")
        assert after.status_code == 303 and after.headers["location"].startswith("/login")
        api = http.get("/v1/me")
        assert api.status_code == 401 and api.json()["code"] == "token_revoked"


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def address(peer: str, forwarded: str, trusted: str) -> str:
        settings = stack_settings(tmp_path, trusted_proxies=trusted)
        services = type("S", (), {"settings": settings})()
        app = type("A", (), {"state": type("St", (), {"services": services})()})()
        scope = {"type": "http", "client": (peer, 1234), "headers": [(b"x-forwarded-for", forwarded.encode())],
                 "app": app}  # fmt: skip
        return client_address(Request(scope))

    assert address("198.51.100.7", "1.2.3.4", "") == "198.51.100.7"  # default: nobody is trusted
    assert address("198.51.100.7", "1.2.3.4", "127.0.0.1") == "198.51.100.7"  # not from the proxy
    assert address("127.0.0.1", "1.2.3.4", "127.0.0.1") == "1.2.3.4"
    # a client's own forged first hop is passed over: the nearest untrusted hop counts
    assert address("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.9", "10.0.0.0/8") == "1.2.3.4"


# --- sign-up and confirmation -----------------------------------------------------------------------------


def test_sign_up_confirm_by_the_mailed_link_then_sign_in(stack: RunningStack) -> None:
    email = new_email("client")
    answer = sign_up(stack, email)
    assert answer.status_code == 200 and "Check your mail" in answer.text
    mail = stack.wait_mail(email, "Confirm your email")
    assert mail.html and "<a href=" in mail.html and mail.message_id.endswith(">")
    # before confirming: signed in, but the account cannot act
    with signed_in(stack, email) as http:
        page = http.get("/contracts")
        assert page.status_code == 303 and page.headers["location"] == "/verify"
        assert http.get("/verify").status_code == 200
        link = local(link_in(mail.text, "/verify/"))
        assert http.get(link).status_code == 200
        assert http.get("/contracts").status_code == 200
        again = http.get(link)
        assert again.status_code == 409 and "used already" in again.text


def test_a_second_sign_up_with_the_same_address_says_the_same_and_creates_nothing(
    stack: RunningStack,
) -> None:
    email = confirmed_client(stack)
    answer = sign_up(stack, email, "another long password")
    assert answer.status_code == 200 and "Check your mail" in answer.text
    assert "Already" in stack.wait_mail(email, "already have").subject or True
    with session_scope(stack.database_url) as session:
        assert len(session.exec(select(User).where(User.email == email)).all()) == 1
    with signed_in(stack, email) as http:  # the first password still works
        assert http.get("/contracts").status_code == 200


def test_a_short_password_is_refused_with_its_code_and_nothing_is_created(stack: RunningStack) -> None:
    email = new_email()
    answer = sign_up(stack, email, "short")
    assert answer.status_code == 422 and "at least 12" in answer.text
    long_enough = sign_up(stack, new_email(), "x" * 128)
    assert long_enough.status_code == 200
    with session_scope(stack.database_url) as session:
        assert session.exec(select(User).where(User.email == email)).first() is None


def test_tampered_and_unknown_links_are_refused(stack: RunningStack) -> None:
    with browser_like(stack) as http:
        for path in ("/verify/nonsense", "/reset/nonsense", "/invite/nonsense"):
            answer = http.get(path)
            assert answer.status_code == 404 and "not known" in answer.text, path


def test_forms_without_their_csrf_token_are_refused(stack: RunningStack) -> None:
    with browser_like(stack) as http:
        http.get("/signup")
        for path, data in (("/signup", {"email": new_email(), "password": PASSWORD}), ("/reset", {"email": new_email()}),
                           ("/login", {"email": new_email(), "password": PASSWORD})):  # fmt: skip
            assert http.post(path, data={**data, "csrf": "forged"}).status_code == 403, path
    email = confirmed_client(stack)
    with signed_in(stack, email) as http:
        for path in ("/invitations", "/device", "/device/approve", "/account/second-factor"):
            answer = http.post(path, data={"code": "BCDF-GHJK", "email": new_email()})
            assert answer.status_code == 403 and "CSRF" in answer.text, path


# --- sign-in --------------------------------------------------------------------------------------------


def test_signing_in_never_tells_whether_an_address_has_an_account(stack: RunningStack) -> None:
    email = confirmed_client(stack)
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    bodies = {}
    for _ in range(3):
        for kind, address in (("known", email), ("unknown", new_email("nobody"))):
            with browser_like(stack) as http:
                form = http.get("/login")
                began = time.perf_counter()
                answer = http.post(
                    "/login",
                    data={"email": address, "password": "wrong password!!", "csrf": csrf_of(form.text)},
                )
                timings[kind].append(time.perf_counter() - began)
            assert answer.status_code == 401
            bodies[kind] = answer.text.replace(address, "ADDRESS").split('name="csrf" value="')[0]
    assert bodies["known"] == bodies["unknown"]
    known, unknown = sorted(timings["known"])[1], sorted(timings["unknown"])[1]
    assert 0.33 < known / unknown < 3, timings  # both check an Argon2 hash


def test_failed_sign_ins_are_limited_per_account_across_addresses(stack: RunningStack) -> None:
    email = confirmed_client(stack)
    limit = stack.settings.login_failures_per_account
    for _ in range(limit):
        with browser_like(stack) as http:  # a new address each time: only the account limit applies
            form = http.get("/login")
            assert (
                http.post(
                    "/login",
                    data={"email": email, "password": "wrong password!!", "csrf": csrf_of(form.text)},
                ).status_code
                == 401
            )
    with browser_like(stack) as http:
        form = http.get("/login")
        answer = http.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf_of(form.text)})
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) >= 1
    # the same answer for an address without an account: the limit does not tell either
    nobody = new_email("nobody")
    for _ in range(limit):
        with browser_like(stack) as http:
            form = http.get("/login")
            http.post(
                "/login", data={"email": nobody, "password": "wrong password!!", "csrf": csrf_of(form.text)}
            )
    with browser_like(stack) as http:
        form = http.get("/login")
        assert (
            http.post(
                "/login", data={"email": nobody, "password": "x" * 12, "csrf": csrf_of(form.text)}
            ).status_code
            == 429
        )
    with get_engine(stack.database_url).connect() as conn:  # shared by every replica: in PostgreSQL
        assert (
            conn.execute(
                text("SELECT count(*) FROM rate_buckets WHERE key LIKE 'signin-failed:%'")
            ).scalar_one()
            >= 2
        )


def test_second_factor_codes_are_limited_like_passwords(stack: RunningStack) -> None:
    email = confirmed_client(stack)
    totp = stack.enrol_second_factor(user_id_of(stack, email))
    with browser_like(stack) as http:
        form = http.get("/login")
        first = http.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf_of(form.text)})
        assert first.status_code == 303 and first.headers["location"].startswith("/login/second-factor")
        assert http.get("/contracts").status_code == 303  # no session yet
        wrong = str((int(totp.now()) + 1) % 1_000_000).zfill(6)
        seen = []
        for _ in range(stack.settings.login_failures_per_account + 1):
            with browser_like(stack) as elsewhere:  # a new address each time: only the account limit applies
                elsewhere.cookies = http.cookies
                page = elsewhere.get("/login/second-factor")
                answer = elsewhere.post(
                    "/login/second-factor", data={"code": wrong, "csrf": csrf_of(page.text)}
                )
                seen.append(answer.status_code)
        assert set(seen[:-1]) == {401} and seen[-1] == 429
        page = http.get("/login/second-factor")
        refused = http.post("/login/second-factor", data={"code": totp.now(), "csrf": csrf_of(page.text)})
        assert refused.status_code == 429 and "retry-after" in refused.headers


def test_a_recovery_code_signs_in_once(stack: RunningStack) -> None:
    email = confirmed_client(stack)
    with signed_in(stack, email) as http:
        page = http.get("/account/second-factor")
        secret = page.text.split('id="totp-secret">')[1].split("<")[0]
        done = http.post(
            "/account/second-factor", data={"code": pyotp.TOTP(secret).now(), "csrf": csrf_of(page.text)}
        )
        assert done.status_code == 200 and "recovery codes" in done.text
        codes = [c.split("<")[0] for c in done.text.split("<li><code>")[1:]]
        assert len(codes) == 10
    for expected in (303, 401):
        with browser_like(stack) as http:
            form = http.get("/login")
            http.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf_of(form.text)})
            page = http.get("/login/second-factor")
            answer = http.post("/login/second-factor", data={"code": codes[0], "csrf": csrf_of(page.text)})
            assert answer.status_code == expected, answer.text


# --- password reset -------------------------------------------------------------------------------------


def test_a_password_reset_by_mailed_link_ends_every_session(stack: RunningStack) -> None:
    email = confirmed_client(stack)
    old = signed_in_client(stack, email)
    with browser_like(stack) as http:
        form = http.get("/reset")
        answer = http.post("/reset", data={"email": email, "csrf": csrf_of(form.text)})
        unknown = http.post("/reset", data={"email": new_email("nobody"), "csrf": csrf_of(form.text)})
        assert answer.status_code == unknown.status_code == 200
        assert answer.text.replace(email, "X") == unknown.text.replace(
            unknown.request.content.decode().split("email=")[1].split("&")[0].replace("%40", "@"), "X"
        )
        link = local(link_in(stack.wait_mail(email, "new Workproof password").text, "/reset/"))
        page = http.get(link)
        assert page.status_code == 200
        short = http.post(link, data={"password": "short", "csrf": csrf_of(page.text)})
        assert short.status_code == 422  # the link is not spent by a refused password
        changed = http.post(link, data={"password": "a brand new passphrase", "csrf": csrf_of(short.text)})
        assert changed.status_code == 200
        again = http.post(link, data={"password": "a third passphrase!", "csrf": csrf_of(short.text)})
        assert again.status_code == 409 and "used already" in again.text
    ended = old.get("/contracts")
    assert ended.status_code == 303 and ended.headers["location"].startswith("/login")
    old.close()
    with signed_in(stack, email, "a brand new passphrase") as http:
        assert http.get("/contracts").status_code == 200


def test_an_expired_reset_link_is_refused(stack: RunningStack) -> None:
    email = confirmed_client(stack)
    with browser_like(stack) as http:
        form = http.get("/reset")
        http.post("/reset", data={"email": email, "csrf": csrf_of(form.text)})
        link = local(link_in(stack.wait_mail(email, "new Workproof password").text, "/reset/"))
        with session_scope(stack.database_url) as session:
            for row in session.exec(select(AccountLink).where(AccountLink.purpose == "reset")).all():
                if row.used_at is None and row.expires_at > utcnow():
                    row.expires_at = utcnow() - timedelta(seconds=1)
                    session.add(row)
        answer = http.get(link)
        assert answer.status_code == 409 and "expired" in answer.text


# --- invitations and offers -----------------------------------------------------------------------------


def invite(stack: RunningStack, client_token: str, email: str) -> dict:
    with stack.client(client_token) as http:
        answer = http.post("/v1/invitations", json={"email": email, "role": "provider", "offer": OFFER})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_an_invited_provider_accepts_from_the_mailed_link_and_the_contract_starts(
    stack: RunningStack,
) -> None:
    _, client_token = stack.create_user("client")
    email = new_email("provider")
    sent = invite(stack, client_token, email)["invitation"]
    assert sent["state"] == "pending"
    mail = stack.wait_mail(email, "invites you")
    assert "Invoice export" in mail.text and "$45.00" in mail.text
    link = local(link_in(mail.text, "/invite/"))
    with browser_like(stack) as http:
        page = http.get(link)
        assert page.status_code == 200 and "Invoice export" in page.text
        short = http.post(link, data={"password": "short", "csrf": csrf_of(page.text)})
        assert short.status_code == 422
        with session_scope(stack.database_url) as session:  # nothing half-created
            assert session.exec(select(User).where(User.email == email)).first() is None
        page = http.get(link)
        accepted = http.post(link, data={"name": "Pat", "password": PASSWORD, "csrf": csrf_of(page.text)})
        assert accepted.status_code == 303 and accepted.headers["location"].startswith("/contracts/")
        assert http.get("/contracts").status_code == 200  # signed in as the new provider
        used = http.get(link)
        assert used.status_code == 409 and "accepted already" in used.text
    with stack.client(client_token) as http:
        listed = http.get("/v1/invitations").json()
        row = next(i for i in listed if i["id"] == sent["id"])
        assert row["state"] == "accepted"
        contract = http.get(f"/v1/contracts/{row['contract_id']}").json()
    assert contract["status"] == "active" and contract["weekly_limit_hours"] == 30


def test_an_invitation_accepted_by_an_account_of_another_role_is_refused(stack: RunningStack) -> None:
    _, client_token = stack.create_user("client")
    email = new_email("provider")
    invite(stack, client_token, email)
    link = local(link_in(stack.wait_mail(email, "invites you").text, "/invite/"))
    other = confirmed_client(stack)
    with signed_in(stack, other) as http:
        page = http.get(link)
        answer = http.post(link, data={"csrf": csrf_of(page.text)})
        assert answer.status_code == 403 and "signed in as a client" in answer.text
    with session_scope(stack.database_url) as session:
        row = session.exec(select(Invitation).where(Invitation.email == email)).one()
        assert row.state == "pending" and row.contract_id is None


def test_withdrawn_resent_and_expired_invitations(stack: RunningStack) -> None:
    _, client_token = stack.create_user("client")
    email = new_email("provider")
    sent = invite(stack, client_token, email)["invitation"]
    first = local(link_in(stack.wait_mail(email, "invites you").text, "/invite/"))
    with stack.client(client_token) as http:
        resent = http.post(f"/v1/invitations/{sent['id']}/resend")
        assert resent.status_code == 200
    second = local(link_in(stack.wait_mail(email, "invites you", after=1).text, "/invite/"))
    with browser_like(stack) as http:
        assert http.get(first).status_code == 404  # the old link stopped working
        assert http.get(second).status_code == 200
    with session_scope(stack.database_url) as session:
        row = session.get(Invitation, uuid.UUID(sent["id"]))
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
    with browser_like(stack) as http:
        expired = http.get(second)
        assert expired.status_code == 409 and "expired" in expired.text
    with stack.client(client_token) as http:
        assert (
            next(i for i in http.get("/v1/invitations").json() if i["id"] == sent["id"])["state"] == "expired"
        )
        assert http.post(f"/v1/invitations/{sent['id']}/resend").status_code == 200
        third = local(link_in(stack.wait_mail(email, "invites you", after=2).text, "/invite/"))
        withdrawn = http.post(f"/v1/invitations/{sent['id']}/withdraw")
        assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
        again = http.post(f"/v1/invitations/{sent['id']}/withdraw")
        assert again.status_code == 409 and again.json()["code"] == "invitation_closed"
    with browser_like(stack) as http:
        closed = http.get(third)
        assert closed.status_code == 409 and "withdrawn" in closed.text


def test_an_existing_provider_is_offered_a_contract_by_email_and_can_decline_it(stack: RunningStack) -> None:
    provider_id, provider_token = stack.create_user("provider")
    client_id, client_token = stack.create_user("client")
    with stack.client(provider_token) as http:
        email = http.get("/v1/me").json()["email"]
    with stack.client(client_token) as http:
        direct = http.post("/v1/contracts", json={**OFFER, "provider_email": email.upper()})
        assert direct.status_code == 201 and direct.json()["provider_id"] == provider_id
        by_invitation = http.post("/v1/invitations", json={"email": email, "offer": OFFER})
        assert by_invitation.status_code == 201 and by_invitation.json()["invitation"] is None
        offered = by_invitation.json()["contract_id"]
        unknown = http.post("/v1/contracts", json={**OFFER, "provider_email": new_email("nobody")})
        assert unknown.status_code == 422 and unknown.json()["code"] == "provider_unknown"
        both = http.post("/v1/contracts", json={**OFFER, "provider_email": email, "provider_id": provider_id})
        assert both.status_code == 422
    assert "offers you a contract" in stack.wait_mail(email, "offers you").subject
    with stack.client(provider_token) as http:
        declined = http.post(f"/v1/contracts/{offered}/decline")
        assert declined.status_code == 200 and declined.json()["status"] == "declined"
        late = http.post(f"/v1/contracts/{offered}/accept")
        assert late.status_code == 409
    with stack.client(client_token) as http:
        withdrawn = http.post(f"/v1/contracts/{direct.json()['id']}/withdraw")
        assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
        assert http.post(f"/v1/contracts/{offered}/withdraw").json()["code"] == "offer_closed"
    with stack.client(provider_token) as http:
        assert http.post(f"/v1/contracts/{direct.json()['id']}/accept").status_code == 409
    assert client_id


# --- device approval --------------------------------------------------------------------------------------


def test_a_device_code_is_approved_once_and_gives_one_token_once(stack: RunningStack) -> None:
    provider_id, provider_token = stack.create_user("provider")
    with browser_like(stack) as http:
        started = http.post("/v1/device/code", json={"machine": "pat-laptop"}).json()
        pending = http.post("/v1/device/token", json={"device_code": started["device_code"]})
        assert pending.status_code == 409 and pending.json()["code"] == "device_pending"
    assert started["verification_uri"].endswith("/device")
    with stack.client(provider_token) as http:
        assert (
            http.post(
                "/v1/device/approve", json={"user_code": started["user_code"].lower().replace("-", "")}
            ).status_code
            == 204
        )
        twice = http.post("/v1/device/approve", json={"user_code": started["user_code"]})
        assert twice.status_code == 409 and twice.json()["code"] == "device_code_used"
        unknown = http.post("/v1/device/approve", json={"user_code": "BBBB-BBBB"})
        assert unknown.status_code == 404 and unknown.json()["code"] == "device_code_unknown"
    with browser_like(stack) as http:
        issued = http.post("/v1/device/token", json={"device_code": started["device_code"]})
        assert issued.status_code == 200 and issued.json()["user"]["id"] == provider_id
        again = http.post("/v1/device/token", json={"device_code": started["device_code"]})
        assert again.status_code == 409 and again.json()["code"] == "device_code_used"
    device_token = issued.json()["token"]
    with stack.client(device_token) as http:
        assert http.get("/v1/me").json()["id"] == provider_id
        mine = http.get("/v1/me/tokens").json()
        device = next(t for t in mine if t["kind"] == "device")
        assert device["name"] == "pat-laptop" and device["last_used_at"] is not None
        assert http.delete(f"/v1/me/tokens/{device['id']}").status_code == 204
        assert http.get("/v1/me").status_code == 401


def test_a_device_code_never_approved_expires(stack: RunningStack) -> None:
    with browser_like(stack) as http:
        started = http.post("/v1/device/code", json={"machine": "forgotten"}).json()
    with session_scope(stack.database_url) as session:
        row = session.exec(select(DeviceCode).where(DeviceCode.user_code == started["user_code"])).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
    with browser_like(stack) as http:
        answer = http.post("/v1/device/token", json={"device_code": started["device_code"]})
        assert answer.status_code == 409 and answer.json()["code"] == "device_code_expired"
        assert (
            http.post("/v1/device/token", json={"device_code": "x" * 43}).json()["code"]
            == "device_code_unknown"
        )
    _, token = stack.create_user("provider")
    with stack.client(token) as http:
        late = http.post("/v1/device/approve", json={"user_code": started["user_code"]})
        assert late.status_code == 409 and late.json()["code"] == "device_code_expired"


# --- admins -----------------------------------------------------------------------------------------------


def test_an_admin_disables_a_user_which_ends_every_session_and_token_and_enables_again(
    stack: RunningStack,
) -> None:
    _, admin_token = stack.create_user("admin")
    email = confirmed_client(stack)
    user_id = user_id_of(stack, email)
    web = signed_in_client(stack, email)
    with stack.client(admin_token) as admin:
        token = admin.post(f"/v1/admin/users/{user_id}/tokens", json={"name": "cli"}).json()["token"]
        found = admin.get("/v1/admin/users", params={"q": email.split("@")[0]}).json()
        assert [u["id"] for u in found["items"]] == [user_id]
        sessions = admin.get(f"/v1/admin/users/{user_id}/sessions").json()
        assert {s["kind"] for s in sessions} == {"session", "api"}
        assert admin.post(f"/v1/admin/users/{user_id}/disable").json()["disabled_at"]
    assert web.get("/contracts").status_code == 303
    web.close()
    with stack.client(token) as http:
        assert http.get("/v1/me").status_code == 401
    with browser_like(stack) as http:
        form = http.get("/login")
        assert (
            http.post(
                "/login", data={"email": email, "password": PASSWORD, "csrf": csrf_of(form.text)}
            ).status_code
            == 401
        )
    with stack.client(admin_token) as admin:
        assert admin.post(f"/v1/admin/users/{user_id}/enable").json()["disabled_at"] is None
        changed = admin.post(f"/v1/admin/users/{user_id}/role", json={"role": "provider"})
        assert changed.status_code == 200 and changed.json()["role"] == "provider"
    with signed_in(stack, email) as http:
        assert http.get("/contracts").status_code == 200
    with get_engine(stack.database_url).connect() as conn:
        actions = set(
            conn.execute(
                text("SELECT action FROM audit_log WHERE subject_id = :id"), {"id": user_id}
            ).scalars()
        )
    assert {"user.disable", "user.enable", "user.role", "admin.read"} <= actions


def test_an_admin_resets_a_second_factor_and_the_staff_member_enrols_again(stack: RunningStack) -> None:
    _, admin_token = stack.create_user("admin")
    support_id, _ = stack.create_user("support")
    stack.set_password(support_id, PASSWORD)
    with session_scope(stack.database_url) as session:
        support = session.get(User, uuid.UUID(support_id))
        assert support is not None
        email = support.email
    with stack.client(admin_token) as admin:
        reset = admin.delete(f"/v1/admin/users/{support_id}/second-factor")
        assert reset.status_code == 200 and reset.json()["second_factor"] is False
    with signed_in(stack, email) as http:  # no second factor asked; but the pages need one first
        page = http.get("/support")
        assert page.status_code == 303 and page.headers["location"] == "/account/second-factor"
        api = http.get("/v1/me")  # nor can the session be used on the API
        assert api.status_code == 403 and api.json()["code"] == "second_factor_required"


# --- mail ------------------------------------------------------------------------------------------------


def test_a_mail_server_that_is_down_delays_a_message_and_never_loses_it(stack: RunningStack) -> None:
    smtp = stack.stack.smtp
    assert smtp is not None
    email = new_email("late")
    smtp.stop()
    try:
        assert sign_up(stack, email).status_code == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with session_scope(stack.database_url) as session:
                row = session.exec(select(OutboxMail).where(OutboxMail.recipient == email)).one()
                if row.attempts >= 1:
                    break
            time.sleep(0.3)
        assert row.sent_at is None and row.attempts >= 1 and row.last_error
    finally:
        smtp.start()
    with session_scope(stack.database_url) as session:  # due now, not after the backoff
        row = session.exec(select(OutboxMail).where(OutboxMail.recipient == email)).one()
        row.next_attempt_at = utcnow()
        session.add(row)
        message_id = row.message_id
    mail = stack.wait_mail(email, "Confirm")
    assert mail.message_id == message_id
    with session_scope(stack.database_url) as session:
        assert session.exec(select(OutboxMail).where(OutboxMail.recipient == email)).one().sent_at is not None


def test_dev_mail_lists_the_messages_with_their_links(stack: RunningStack) -> None:
    email = new_email("devmail")
    sign_up(stack, email)
    stack.wait_mail(email, "Confirm")
    with browser_like(stack) as http:
        page = http.get("/dev/mail")
    assert page.status_code == 200 and email in page.text and 'class="mail-link"' in page.text


def test_sign_up_closed_or_by_invitation_only_is_refused_with_its_code(stack: RunningStack) -> None:
    from types import SimpleNamespace

    from api.services.accounts import sign_up as service_sign_up
    from domain.errors import Forbidden

    for mode in ("invite", "closed"):
        services = SimpleNamespace(settings=stack.settings.model_copy(update={"signup": mode}))
        with pytest.raises(Forbidden) as refused, session_scope(stack.database_url) as session:
            service_sign_up(session, services, email=new_email(), password=PASSWORD, name="")  # type: ignore[arg-type]
        assert refused.value.code == "signup_closed"


def test_the_admin_pages_search_disable_and_enable_a_user_with_csrf(stack: RunningStack) -> None:
    admin_id, _ = stack.create_user("admin")
    stack.set_password(admin_id, PASSWORD)
    with session_scope(stack.database_url) as session:
        admin = session.get(User, uuid.UUID(admin_id))
        assert admin is not None
        admin_email = admin.email
    target = confirmed_client(stack)
    target_id = user_id_of(stack, target)
    with browser_like(stack) as http:
        form = http.get("/login")
        http.post("/login", data={"email": admin_email, "password": PASSWORD, "csrf": csrf_of(form.text)})
        page = http.get("/login/second-factor")
        done = http.post(
            "/login/second-factor", data={"code": stack.totps[admin_id].now(), "csrf": csrf_of(page.text)}
        )
        assert done.status_code == 303 and done.headers["location"] == "/admin/users"
        listing = http.get("/admin/users", params={"q": target.split("@")[0]})
        assert listing.status_code == 200 and target in listing.text
        page = http.get(f"/admin/users/{target_id}")
        assert page.status_code == 200 and 'id="user-state">active' in page.text
        assert http.post(f"/admin/users/{target_id}/disable", data={}).status_code == 403  # no CSRF token
        disabled = http.post(f"/admin/users/{target_id}/disable", data={"csrf": csrf_of(page.text)})
        assert disabled.status_code == 303
        assert 'id="user-state">disabled' in http.get(f"/admin/users/{target_id}").text
        http.post(f"/admin/users/{target_id}/enable", data={"csrf": csrf_of(page.text)})
        assert 'id="user-state">active' in http.get(f"/admin/users/{target_id}").text
    with signed_in(stack, target) as http:
        assert http.get("/admin/users").status_code == 403  # not for clients


def test_offers_are_declined_and_withdrawn_from_the_contract_list(stack: RunningStack) -> None:
    provider_id, provider_token = stack.create_user("provider")
    client_id, client_token = stack.create_user("client")
    for user_id in (provider_id, client_id):
        stack.set_password(user_id, PASSWORD)
    with session_scope(stack.database_url) as session:
        emails = {u: session.get(User, uuid.UUID(u)).email for u in (provider_id, client_id)}  # type: ignore[union-attr]
    with stack.client(client_token) as http:
        ids = [
            http.post("/v1/contracts", json={**OFFER, "provider_id": provider_id}).json()["id"]
            for _ in range(2)
        ]
    with signed_in(stack, emails[provider_id]) as http:
        page = http.get("/contracts")
        assert page.text.count("accept-offer") == 2
        declined = http.post(f"/contracts/{ids[0]}/decline", data={"csrf": csrf_of(page.text)})
        assert declined.status_code == 303 and "done=declined" in declined.headers["location"]
    with signed_in(stack, emails[client_id]) as http:
        page = http.get("/contracts")
        withdrawn = http.post(f"/contracts/{ids[1]}/withdraw", data={"csrf": csrf_of(page.text)})
        assert withdrawn.status_code == 303
        again = http.post(f"/contracts/{ids[0]}/withdraw", data={"csrf": csrf_of(page.text)})
        assert again.status_code == 409 and "declined already" in again.text
    with stack.client(provider_token) as http:
        assert [http.get(f"/v1/contracts/{i}").json()["status"] for i in ids] == ["declined", "withdrawn"]


def test_the_agent_refuses_a_device_approved_by_a_non_provider_and_revokes_its_token(
    stack: RunningStack, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import re
    import subprocess
    import sys

    from agent.config import AgentPaths
    from tests.agent.processes import agent_env

    _, client_token = stack.create_user("client")
    paths = AgentPaths(config=tmp_path / "config", data=tmp_path / "data", runtime=tmp_path / "run")
    agent = subprocess.Popen([sys.executable, "-m", "agent", "login", stack.api_url], env=agent_env(paths),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert agent.stdout is not None
        code = re.search(r"code=([A-Z]{4}-[A-Z]{4})", agent.stdout.readline())
        assert code
        with stack.client(client_token) as http:
            assert http.post("/v1/device/approve", json={"user_code": code[1]}).status_code == 204
        _, err = agent.communicate(timeout=60)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 2 and "belongs to a client account" in err
    with stack.client(client_token) as http:
        assert [t for t in http.get("/v1/me/tokens").json() if t["kind"] == "device"] == []


def test_changing_the_password_ends_every_session(stack: RunningStack) -> None:
    email = confirmed_client(stack)
    other = signed_in_client(stack, email)
    with signed_in(stack, email) as http:
        page = http.get("/account")
        wrong = http.post("/account/password", data={"current": "not the password", "password": "a new long password",
                                                     "csrf": csrf_of(page.text)})  # fmt: skip
        assert wrong.status_code == 401 and "current password is wrong" in wrong.text
        short = http.post(
            "/account/password", data={"current": PASSWORD, "password": "short", "csrf": csrf_of(page.text)}
        )
        assert short.status_code == 422
        done = http.post("/account/password", data={"current": PASSWORD, "password": "a new long password",
                                                    "csrf": csrf_of(page.text)})  # fmt: skip
        assert done.status_code == 303 and done.headers["location"] == "/login"
        assert http.get("/account").status_code == 303
    assert other.get("/contracts").status_code == 303
    other.close()
    with signed_in(stack, email, "a new long password") as http:
        assert http.get("/account").status_code == 200


def test_a_signed_in_provider_accepts_an_invitation_sent_to_another_address(stack: RunningStack) -> None:
    provider_id, _ = stack.create_user("provider")
    stack.set_password(provider_id, PASSWORD)
    with session_scope(stack.database_url) as session:
        provider_email = session.get(User, uuid.UUID(provider_id)).email  # type: ignore[union-attr]
    _, client_token = stack.create_user("client")
    invited = new_email("pat-at-home")
    invite(stack, client_token, invited)
    link = local(link_in(stack.wait_mail(invited, "invites you").text, "/invite/"))
    with signed_in(stack, provider_email) as http:
        page = http.get(link)
        assert page.status_code == 200 and f"signed in as {provider_email}" in page.text
        accepted = http.post(link, data={"csrf": csrf_of(page.text)})
        assert accepted.status_code == 303
        contract_id = accepted.headers["location"].split("/contracts/")[1]
    with stack.client(client_token) as http:
        contract = http.get(f"/v1/contracts/{contract_id}").json()
    assert contract["provider_id"] == provider_id and contract["status"] == "active"
    with session_scope(stack.database_url) as session:  # no second account was made for the address
        assert session.exec(select(User).where(User.email == invited)).first() is None
