"""Notifications through the real stack: the workflows' rows fanned out by the worker into the inbox,
the outbox (sent over SMTP to the real local server, read back from its Maildir) and signed webhook
deliveries to a real HTTP receiver on this machine. Faults: the SMTP server stopped during a burst, a
receiver answering 500 before 200, the worker killed while a mail is being sent."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlmodel import select

from activities.notifications import NotificationActivities
from domain.calendar import week_start
from domain.messages import Notify
from store.db import session_scope
from store.models import Notification, OutboxMail, Webhook, WebhookDelivery
from tests.e2e.accounts_helpers import csrf_of, signed_in
from tests.harness import RunningStack
from tests.ports import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


def person(stack: RunningStack, role: str) -> tuple[str, str]:
    """A user with a password (to sign in to the pages); their id and email."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@test.workproof.dev"
    user_id, _ = stack.create_user(role, email)
    stack.set_password(user_id, PASSWORD)
    return user_id, email


def contract(stack: RunningStack) -> tuple[str, str, str, str, str]:
    """A client and a provider with an active contract: (contract, client id, email, provider id, email)."""
    client_id, client_email = person(stack, "client")
    provider_id, provider_email = person(stack, "provider")
    contract_id = stack.create_contract(stack.tokens[client_id], provider_id, title="Notified work")
    return contract_id, client_id, client_email, provider_id, provider_email


def notify(stack: RunningStack, kind: str, contract_id: str, recipients: list[str], week: datetime,
           **payload: Any) -> None:  # fmt: skip
    """What a timesheet workflow's NOTIFY activity does (the real activity, called directly)."""
    request = Notify.model_validate({
        "kind": kind, "recipient_ids": recipients, "contract_id": contract_id, "week_start": week,
        "dedupe_key": f"{kind}:{contract_id}:{week:%Y-%m-%d}", "payload": {"week": f"{week:%Y-%m-%d}", **payload},
    })  # fmt: skip
    NotificationActivities(stack.database_url).notify(request)


def wait(probe: Any, within: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {within:.0f}s: {what}")


def ids_to(stack: RunningStack, email: str, subject: str = "") -> Counter[str]:
    return Counter(m.message_id for m in stack.mails(email) if subject in m.subject)


def test_a_burst_while_the_smtp_server_is_down_arrives_once_each(stack: RunningStack) -> None:
    contract_id, client_id, client_email, provider_id, provider_email = contract(stack)
    smtp = stack.stack.smtp
    assert smtp is not None
    weeks = [week_start(datetime.now(UTC)) - timedelta(days=7 * n) for n in range(1, 13)]
    smtp.stop()
    try:
        for week in weeks:  # 12 weeks x 2 parties = 24 mails
            notify(stack, "timesheet_submitted", contract_id, [client_id, provider_id], week,
                   deadline=(week + timedelta(days=12)).isoformat())  # fmt: skip

        def tried() -> bool:
            with session_scope(stack.database_url) as session:
                rows = (
                    session.query(OutboxMail)
                    .filter(
                        OutboxMail.recipient.in_([client_email, provider_email]),
                        OutboxMail.kind == "timesheet_submitted",
                    )
                    .all()
                )
                return len(rows) == 24 and any(r.attempts > 0 and r.last_error for r in rows)

        wait(tried, what="the fan-out put 24 mails in the outbox and the sender failed on the stopped server")
        # the worker's /health keeps answering; the API's /health shows the queue
        with httpx.Client(base_url=stack.api_url, timeout=10) as http:
            sender = http.get("/health").json()["mail_sender"]
        assert sender["queue_length"] >= 24 and sender["oldest_pending"] is not None
        time.sleep(2)  # the server stays down for a while: several sender rounds fail
    finally:
        smtp.start()
    wait(lambda: all(sum(ids_to(stack, e, "Timesheet").values()) >= 12 for e in (client_email, provider_email)),
         within=90, what="every mail after the server came back")  # fmt: skip
    time.sleep(1.5)  # nothing more comes
    for email in (client_email, provider_email):
        counts = ids_to(stack, email, "Timesheet")
        assert len(counts) == 12 and set(counts.values()) == {1}, counts
        subjects = {m.subject for m in stack.mails(email) if "Timesheet" in m.subject}
        assert subjects == {f"Timesheet for the week of {w:%Y-%m-%d} submitted" for w in weeks}
    mail = stack.mails(client_email)[0]
    assert (
        f"/contracts/{contract_id}/week/" in mail.text
        and "UTC" in mail.text
        and "The review closes" in mail.text
    )
    assert "<a href=" in mail.html
    with session_scope(stack.database_url) as session:
        unsent = session.query(OutboxMail).filter(OutboxMail.recipient.in_([client_email, provider_email]),
                                                  OutboxMail.sent_at.is_(None)).count()  # fmt: skip
        mailed = session.query(OutboxMail).filter(OutboxMail.recipient == client_email,
                                                  OutboxMail.kind == "timesheet_submitted").all()  # fmt: skip
    assert unsent == 0
    assert all(m.message_id.startswith("<notification-") for m in mailed)  # named after the notification


# --- webhooks -----------------------------------------------------------------------------------------


class Receiver:
    """A real HTTP receiver on this machine: answers 500 to the first ``failures`` requests, then 200;
    keeps every request's headers and body."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = 500 if len(owner.requests) <= owner.failures else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no" if status == 500 else b"ok")

            def log_message(self, *args: object) -> None:
                return

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(failures=2)
    yield running
    running.server.shutdown()


def readme_verify() -> Any:
    """The verification snippet of README.md, as a receiver would copy it."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Verifying a webhook delivery", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "README.md has no verification snippet"
    namespace: dict[str, Any] = {}
    exec(compile(code[1], "README.md", "exec"), namespace)  # our own README's snippet
    return namespace["verify"]


def register(stack: RunningStack, email: str, url: str, kinds: list[str]) -> str:
    """Registers an endpoint from the settings page; the secret it shows once."""
    with signed_in(stack, email) as http:
        page = http.get("/settings/notifications")
        answer = http.post(
            "/settings/webhooks", data={"csrf": csrf_of(page.text), "url": url, "kinds": kinds}
        )
        assert answer.status_code == 200, answer.text
        found = re.search(r"<code>(whsec_[^<]+)</code>", answer.text)
        assert found, answer.text
        return found[1]


def test_a_webhook_answering_500_then_200_gets_each_delivery_once_signed(
    stack: RunningStack, receiver: Receiver
) -> None:
    contract_id, client_id, client_email, _, _ = contract(stack)
    secret = register(stack, client_email, receiver.url, ["dispute_resolved", "review_closing"])
    week = week_start(datetime.now(UTC)) - timedelta(days=14)
    notify(
        stack,
        "review_closing",
        contract_id,
        [client_id],
        week,
        deadline=(week + timedelta(days=12)).isoformat(),
    )
    notify(stack, "funds_released", contract_id, [client_id], week)  # a kind the endpoint did not pick
    wait(lambda: any(r for r in receiver.requests[2:]), what="a delivery after two 500s")
    time.sleep(1.5)  # no further attempt comes after the 200
    assert len(receiver.requests) == 3
    ids = {headers["workproof-delivery"] for headers, _ in receiver.requests}
    assert len(ids) == 1  # every retry carries the same delivery id: the receiver's dedupe key
    verify = readme_verify()
    for headers, body in receiver.requests:
        assert verify(secret, headers["workproof-signature"], body)
        assert not verify("whsec_wrong", headers["workproof-signature"], body)
        assert not verify(secret, headers["workproof-signature"], body + b" ")
    payload = json.loads(receiver.requests[-1][1])
    assert (
        payload["kind"] == "review_closing" and payload["id"] in ids and payload["contract_id"] == contract_id
    )
    assert payload["link"].endswith(f"/contracts/{contract_id}/week/{week:%Y-%m-%d}")
    with session_scope(stack.database_url) as session:
        delivery = session.query(WebhookDelivery).filter(WebhookDelivery.id == uuid.UUID(payload["id"])).one()
        assert delivery.attempts == 3 and delivery.delivered_at is not None and delivery.last_status == 200
    # the owner sees the log on the settings page
    with signed_in(stack, client_email) as http:
        page = http.get("/settings/notifications").text
    assert payload["id"] in page and "delivered (200)" in page


def test_an_endpoint_failing_again_and_again_is_disabled_and_its_owner_told(stack: RunningStack) -> None:
    contract_id, client_id, client_email, _, _ = contract(stack)
    failing = Receiver(failures=10_000)
    try:
        register(stack, client_email, failing.url, ["charge_failed"])
        with session_scope(stack.database_url) as session:
            hook = session.query(Webhook).filter(Webhook.url == failing.url).one()
            hook.consecutive_failures = stack.settings.webhook_disable_after - 2  # as after a bad day
        week = week_start(datetime.now(UTC)) - timedelta(days=21)
        notify(stack, "charge_failed", contract_id, [client_id], week)
        told = stack.wait_mail(client_email, "Webhook endpoint disabled", timeout=60)
        assert failing.url in told.text and "/settings/notifications" in told.text
        with signed_in(stack, client_email) as http:
            inbox = http.get("/inbox").text
        assert "Webhook endpoint disabled" in inbox
        count = len(failing.requests)
        time.sleep(1.5)
        assert len(failing.requests) == count  # nothing more is sent to a disabled endpoint
    finally:
        failing.server.shutdown()


def test_endpoints_on_private_addresses_are_refused_in_production() -> None:
    from api.services.notifications import endpoint_problem

    assert endpoint_problem("http://127.0.0.1:9/x", allow_private=True) is None
    for url in ("http://127.0.0.1:9/x", "https://127.0.0.1/x", "https://10.1.2.3/x", "https://[::1]/x",
                "https://169.254.169.254/latest", "https://localhost/x", "https://[::ffff:192.168.0.1]/x",
                "ftp://example.com/x", "https://user:pw@example.com/x"):  # fmt: skip
        assert endpoint_problem(url, allow_private=False), url


# --- the worker killed while it sends --------------------------------------------------------------------


def test_a_worker_killed_mid_send_still_delivers_the_mail_once(stack: RunningStack) -> None:
    contract_id, client_id, client_email, _, _ = contract(stack)
    smtp = stack.stack.smtp
    assert smtp is not None and smtp.process is not None
    pgid = smtp.process.pid
    os.killpg(pgid, signal.SIGSTOP)  # the SMTP server takes the connection and then says nothing
    try:
        week = week_start(datetime.now(UTC)) - timedelta(days=28)
        notify(stack, "dispute_resolved", contract_id, [client_id], week)
        url = stack.database_url.replace("postgresql+psycopg://", "postgresql://", 1)

        def claimed_by_the_sender() -> bool:
            with psycopg.connect(url, autocommit=False) as conn:
                mine = "recipient = %s AND kind = 'dispute_resolved' AND sent_at IS NULL"
                if not conn.execute(f"SELECT id FROM mail_outbox WHERE {mine}", (client_email,)).fetchall():
                    return False
                try:
                    conn.execute(
                        f"SELECT id FROM mail_outbox WHERE {mine} FOR UPDATE NOWAIT", (client_email,)
                    )
                except psycopg.errors.LockNotAvailable:
                    return True  # the sender holds it: it is in the middle of sending
                return False

        wait(claimed_by_the_sender, what="the sender in the middle of sending the mail")
        stack.kill_worker()
    finally:
        os.killpg(pgid, signal.SIGCONT)
    stack.start_worker()
    found = stack.wait_mail(client_email, "is resolved", timeout=90)
    time.sleep(1.5)
    assert ids_to(stack, client_email)[found.message_id] == 1
    with session_scope(stack.database_url) as session:
        row = session.query(OutboxMail).filter(OutboxMail.recipient == client_email,
                                               OutboxMail.kind == "dispute_resolved").one()  # fmt: skip
        assert row.message_id == found.message_id and row.sent_at is not None and row.attempts >= 1
        kinds = [
            n.kind
            for n in session.query(Notification).filter(Notification.recipient_id == uuid.UUID(client_id))
        ]
        assert kinds.count("dispute_resolved") == 1


# --- the kinds accounts bring; the inbox and the backlog over the API --------------------------------------


def test_an_offer_its_acceptance_a_password_change_and_a_device_notify_and_the_inbox_reads_over_the_api(
    stack: RunningStack,
) -> None:
    contract_id, client_id, client_email, provider_id, provider_email = contract(stack)
    # the offer reached the provider's inbox and mail; its acceptance the client's inbox (mail off by default)
    stack.wait_mail(provider_email, "New offer: “Notified work”")
    with stack.client(stack.tokens[client_id]) as http:
        items = wait(lambda: http.get("/v1/me/notifications").json(), what="the client's inbox")
        assert [i["kind"] for i in items] == ["offer_accepted"] and items[0]["path"] == "/contracts"
        assert http.get("/v1/me/notifications?unread=true").json()
        assert http.post("/v1/me/notifications/read").json() == {"marked": 1}
        assert http.get("/v1/me/notifications?unread=true").json() == []
    assert not [m for m in stack.mails(client_email) if "accepted" in m.subject]

    with signed_in(stack, client_email) as http:
        page = http.get("/account")
        changed = http.post("/account/password", data={"csrf": csrf_of(page.text), "current": PASSWORD,
                                                       "password": PASSWORD + " again"})  # fmt: skip
        assert changed.status_code == 303
    mail = stack.wait_mail(client_email, "Your Workproof password was changed")
    assert "reset your password" in mail.text and "/account" in mail.text

    # an agent approved to act as the provider: the provider is told, whoever approved it
    with stack.client() as http:
        code = http.post("/v1/device/code", json={"machine": "studio-laptop"}).json()["user_code"]
    with stack.client(stack.tokens[provider_id]) as http:
        assert http.post("/v1/device/approve", json={"user_code": code}).status_code in (200, 204)
    device = stack.wait_mail(provider_email, "A device was approved")
    assert "studio-laptop" in device.text and "revoke the device" in device.text

    admin_id, admin_token = stack.create_user("admin")
    with stack.client(admin_token) as http:
        backlog = http.get("/v1/admin/notifications")
        assert backlog.status_code == 200 and "queue_length" in backlog.json()["mail_sender"]
    with stack.client(stack.tokens[provider_id]) as http:
        assert http.get("/v1/admin/notifications").status_code == 403
    assert contract_id and admin_id


def test_inbox_forms_need_their_csrf_token_and_nobody_opens_anothers_item(stack: RunningStack) -> None:
    _, client_id, client_email, provider_id, provider_email = contract(stack)
    with session_scope(stack.database_url) as session:
        theirs = wait(
            lambda: session.exec(
                select(Notification).where(Notification.recipient_id == uuid.UUID(provider_id))
            ).first(),
            what="the provider's offer notification",
        )
        their_id = str(theirs.id)
    with signed_in(stack, client_email) as http:
        assert http.post("/inbox/read-all", data={}).status_code == 403
        assert http.post(f"/inbox/{their_id}/read", data={"csrf": "wrong"}).status_code == 403
        assert http.get(f"/inbox/{their_id}", follow_redirects=False).status_code == 404
        page = http.get("/settings/notifications")
        csrf = csrf_of(page.text)
        assert http.post(f"/inbox/{their_id}/read", data={"csrf": csrf}).status_code == 404
        refused = http.post(
            "/settings/webhooks",
            data={"csrf": csrf, "url": "ftp://example.com/x", "kinds": ["charge_failed"]},
        )
        assert refused.status_code == 422 and "https://" in refused.text
        assert (
            http.post(
                "/settings/webhooks", data={"url": "http://127.0.0.1:9/x", "kinds": ["charge_failed"]}
            ).status_code
            == 403
        )
        # email preferences: off for one kind, the page shows it
        saved = http.post("/settings/notifications", data={"csrf": csrf, "email": ["review_closing"]})
        assert saved.status_code == 303
        page = http.get("/settings/notifications").text
        assert 'value="review_closing" checked' in page and 'value="timesheet_submitted" checked' not in page
    with session_scope(stack.database_url) as session:
        assert session.get(Notification, uuid.UUID(their_id)).read_at is None  # type: ignore[union-attr]
    assert client_id and provider_email


def test_webhook_endpoints_over_the_api(stack: RunningStack, receiver: Receiver) -> None:
    contract_id, client_id, _, provider_id, _ = contract(stack)
    with stack.client(stack.tokens[client_id]) as http:
        made = http.post("/v1/me/webhooks", json={"url": receiver.url, "kinds": ["funds_released"]})
        assert made.status_code == 201, made.text
        hook = made.json()
        assert hook["secret"].startswith("whsec_") and hook["enabled"] and not hook["deployment"]
        bad = http.post("/v1/me/webhooks", json={"url": receiver.url, "kinds": ["no_such_kind"]})
        assert bad.status_code == 422 and bad.json()["code"] == "webhook_kinds_invalid"
        refused = http.post("/v1/me/webhooks", json={"url": "gopher://x", "kinds": ["funds_released"]})
        assert refused.status_code == 422 and refused.json()["code"] == "webhook_url_refused"
        staff_only = http.post("/v1/me/webhooks", json={"url": receiver.url, "kinds": ["funds_released"],
                                                        "deployment": True})  # fmt: skip
        assert staff_only.status_code == 403 and staff_only.json()["code"] == "role_required"
    week = week_start(datetime.now(UTC)) - timedelta(days=35)
    notify(stack, "funds_released", contract_id, [client_id], week)
    wait(lambda: receiver.requests[2:], what="the delivery after two 500s")
    with stack.client(stack.tokens[client_id]) as http:
        listed = wait(lambda: [h for h in http.get("/v1/me/webhooks").json() if h["deliveries"]
                               and h["deliveries"][0]["delivered_at"]], what="the delivery in the log")  # fmt: skip
        assert "secret" not in listed[0] and listed[0]["deliveries"][0]["attempts"] == 3
    with stack.client(stack.tokens[provider_id]) as http:
        assert http.delete(f"/v1/me/webhooks/{hook['id']}").status_code == 404  # not theirs
    with stack.client(stack.tokens[client_id]) as http:
        assert http.delete(f"/v1/me/webhooks/{hook['id']}").status_code == 204
        assert http.get("/v1/me/webhooks").json() == []
