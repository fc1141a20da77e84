"""What each notification says, to whom it matters, and the webhook signature scheme. Pure: the fan-out
(api/services/notifications.py) renders these words into mails, inbox items and webhook bodies.
docs/design.md, "Notifications"."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One kind of notification: its words, where its link goes, and whether its email is on unless the
    reader turns it off (deadlines, money and security: on; the rest: off)."""

    name: str
    label: str  # for the preferences page
    title: str  # the subject and the inbox line; may use {week} and {title}
    happened: str  # what happened
    action: str  # what the reader can do
    page: str  # "week", "contracts", "account", "webhooks"
    email_default: bool = True
    deadline_words: str = ""  # "by when", when the payload carries a deadline
    by_role: tuple[
        tuple[str, str], ...
    ] = ()  # (role, action) where a client and a provider can do different things

    def action_for(self, role: str) -> str:
        return dict(self.by_role).get(role, self.action)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("timesheet_submitted", "A week's timesheet is submitted", "Timesheet for the week of {week} submitted",
             "The timesheet for the week of {week} on “{title}” was submitted for the client's review.",
             "Review it: approve it or dispute entries. If nothing happens, it is approved at the deadline.",
             "week", True, "The review closes", (("provider", "Nothing: the client reviews it, and silence approves it at the deadline."),)),
        Kind("review_closing", "The review window closes soon", "Review of the week of {week} closes soon",
             "The review window for the week of {week} on “{title}” closes soon. Silence approves the week.",
             "Approve it, or dispute entries before the deadline.", "week", True, "The review closes"),
        Kind("dispute_opened", "A dispute is opened", "Dispute about the week of {week}",
             "The client disputed entries of the week of {week} on “{title}”.",
             "Accept the dispute (refund the entries) or contest it before the deadline; unanswered disputes go "
             "to support.", "week", True, "The provider's answer is due",
             (("client", "Wait for the provider's answer; if they contest it, support decides each entry."),)),
        Kind("dispute_answered", "The provider answered a dispute", "The provider answered the dispute about {week}",
             "The provider accepted the dispute about the week of {week} on “{title}”: the disputed entries "
             "are refunded.", "Nothing to do; the rest of the week is charged.", "week", False),
        Kind("dispute_resolved", "Support resolved a dispute", "The dispute about the week of {week} is resolved",
             "Support resolved every disputed entry of the week of {week} on “{title}”.",
             "Read each entry's resolution on the week's page.", "week", True),
        Kind("charge_failed", "A charge failed", "The charge for the week of {week} failed",
             "Charging the client for the week of {week} on “{title}” failed.",
             "Guaranteed time is paid by the guarantee fund.", "week", True, "",
             (("client", "Add funds to your balance: the amount stays owed."),)),
        Kind("guarantee_payout", "The guarantee fund paid", "The guarantee fund paid the week of {week}",
             "The guarantee fund paid the guaranteed time of the week of {week} on “{title}”.",
             "Nothing to do; the funds are released after the security period.", "week", True),
        Kind("funds_released", "Funds are released", "Funds for the week of {week} are released",
             "The funds for the week of {week} on “{title}” are released to the provider.",
             "Nothing to do.", "week", True),
        Kind("contract_ended", "A contract ended", "The contract “{title}” ended",
             "The contract “{title}” ended; weeks already worked still settle as usual.",
             "Nothing to do.", "contracts", True),
        Kind("offer_received", "An offer arrives", "New offer: “{title}”",
             "You received an offer for the contract “{title}”.",
             "Accept or decline it in your contract list.", "contracts", True),
        Kind("offer_accepted", "An offer is accepted", "Your offer “{title}” was accepted",
             "The provider accepted your offer “{title}”: the contract is active.",
             "Watch the work in the contract's weeks.", "contracts", False),
        Kind("offer_declined", "An offer is declined", "Your offer “{title}” was declined",
             "The provider declined your offer “{title}”.", "You may make another offer.", "contracts", False),
        Kind("device_approved", "A device is signed in", "A device was approved for your account",
             "A desktop agent on “{machine}” was approved to act as you.",
             "If this was not you, revoke the device on your account page and change your password.",
             "account", True),
        Kind("password_changed", "Your password changes", "Your Workproof password was changed",
             "The password of your account was changed and every session ended.",
             "If this was not you, reset your password now.", "account", True),
        Kind("webhook_disabled", "A webhook endpoint is disabled", "Webhook endpoint disabled",
             "Deliveries to {url} failed {failures} times in a row, so the endpoint was disabled.",
             "Fix the endpoint, then enable it again: waiting deliveries resume.", "webhooks", True),
    )
}  # fmt: skip


def page_of(kind: str, contract_id: str | None, week: str | None) -> str:
    """The path of the exact page a notification is about."""
    page = KINDS[kind].page if kind in KINDS else "contracts"
    if page == "week" and contract_id and week:
        return f"/contracts/{contract_id}/week/{week}"
    return {"account": "/account", "webhooks": "/settings/notifications"}.get(page, "/contracts")


def email_wanted(kind: str, choices: dict[str, bool]) -> bool:
    """The reader's choice for ``kind``, else the kind's default."""
    return choices.get(kind, KINDS[kind].email_default if kind in KINDS else True)


# --- webhook signatures --------------------------------------------------------------------------------

SIGNATURE_HEADER = "Workproof-Signature"
DELIVERY_HEADER = "Workproof-Delivery"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1``: hex HMAC-SHA256 of ``"{timestamp}." + body`` with the endpoint's secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (the README has the same lines): the timestamp is recent and the HMAC
    matches."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(parts.get("v1", ""), signature(secret, timestamp, body))
