"""The notification catalogue and the webhook signature scheme (domain/notify.py)."""

from __future__ import annotations

import time

from domain.messages import Notify
from domain.notify import KINDS, email_wanted, page_of, signature, signature_header, verify


def test_every_kind_the_workflows_record_has_words_and_a_page() -> None:
    recorded = Notify.model_fields["kind"].annotation.__args__  # type: ignore[union-attr]
    for kind in recorded:
        assert kind in KINDS, kind
        assert KINDS[kind].title and KINDS[kind].happened and KINDS[kind].action


def test_links_go_to_the_exact_page() -> None:
    assert page_of("dispute_opened", "c1", "2026-11-23") == "/contracts/c1/week/2026-11-23"
    assert page_of("device_approved", None, None) == "/account"
    assert page_of("offer_received", "c1", None) == "/contracts"
    assert page_of("webhook_disabled", None, None) == "/settings/notifications"


def test_deadline_money_and_security_mail_by_default_and_the_reader_decides() -> None:
    for kind in ("timesheet_submitted", "review_closing", "dispute_opened", "charge_failed", "guarantee_payout",
                 "funds_released", "password_changed", "device_approved"):  # fmt: skip
        assert email_wanted(kind, {}), kind
    assert not email_wanted("offer_accepted", {})
    assert email_wanted("offer_accepted", {"offer_accepted": True})
    assert not email_wanted("review_closing", {"review_closing": False})


def test_a_signature_verifies_only_with_its_secret_body_and_a_recent_time() -> None:
    body = b'{"kind":"review_closing"}'
    now = int(time.time())
    header = signature_header("whsec_a", now, body)
    assert header == f"t={now},v1={signature('whsec_a', now, body)}"
    assert verify("whsec_a", header, body, now)
    assert not verify("whsec_b", header, body, now)
    assert not verify("whsec_a", header, body + b" ", now)
    assert not verify("whsec_a", header, body, now + 301)  # replayed later
    assert not verify("whsec_a", "v1=abc", body, now)
