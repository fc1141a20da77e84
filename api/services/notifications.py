"""Notifications that reach people: the fan-out, the webhook sender, and the use cases of the inbox,
preferences, endpoints and the operators' view. docs/design.md, "Notifications".

- **Fan-out** (:func:`fan_out_due`): claims waiting ``notifications`` rows with ``FOR UPDATE SKIP
  LOCKED``; for each, in one transaction, puts a mail in the outbox (when the reader wants it; its
  Message-ID is made from the notification's id), a delivery for every matching webhook endpoint (one
  per endpoint and notification, by a UNIQUE constraint), and sets ``sent_at``. The row itself is the
  inbox item. A crash before the commit leaves everything to the next round; after it, nothing is done
  twice.
- **Mail** goes out through the outbox sender of store/mail.py.
- **Webhooks** (:func:`deliver_due`): each due delivery is claimed the same way, POSTed with a signed
  body (domain/notify.py), and marked delivered, or retried with exponential backoff and jitter for
  ``webhook_retry_hours``; ``webhook_disable_after`` failed attempts in a row disable the endpoint and
  tell its owner (inbox and mail).

Every worker process runs :func:`run_notifier` in a thread next to the mail sender."""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from sqlalchemy import text
from sqlmodel import Session, col, select

from api.services.mail import _HTML, _TEXT
from domain.errors import Forbidden, InvalidInput, NotFound
from domain.notify import DELIVERY_HEADER, KINDS, SIGNATURE_HEADER, email_wanted, page_of, signature_header
from store import notify as repo
from store.db import session_scope
from store.mail import Rendered, nap, outbox_row, wake
from store.models import Contract, Notification, User, Webhook, WebhookDelivery, utcnow
from store.settings import Settings

log = logging.getLogger("workproof.notify")
MAX_RETRY_DELAY = timedelta(hours=1)


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def _when(value: Any, tz_name: str) -> tuple[str, str] | None:
    """A deadline in the reader's zone and in UTC, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    try:
        tz: tzinfo = ZoneInfo(tz_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = UTC
    local = at.astimezone(tz)
    return (
        f"{local:%a %d %b %Y %H:%M} ({getattr(local.tzinfo, 'key', 'UTC')})",
        f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    )


@dataclass(frozen=True)
class Words:
    title: str
    happened: str
    action: str
    deadline: str  # "The review closes Fri 05 Dec 2026 18:00 (Europe/Madrid) — 2026-12-05 17:00 UTC", or ""
    path: str


def words(row: Notification, title: str, tz_name: str = "UTC", role: str = "") -> Words:
    """What a notification says to its reader (the inbox line, the mail, the webhook body)."""
    kind = KINDS.get(row.kind)
    payload = dict(row.payload or {})
    week = str(payload.get("week") or (f"{row.week_start:%Y-%m-%d}" if row.week_start else ""))
    values = _Blank({**payload, "week": week, "title": title or payload.get("title") or "your contract"})
    if kind is None:
        return Words(row.kind, row.kind, "", "", "/inbox")
    deadline = ""
    when = _when(payload.get("deadline"), tz_name)
    if when and kind.deadline_words:
        deadline = f"{kind.deadline_words} {when[0]} — {when[1]}."
    contract = str(row.contract_id) if row.contract_id else None
    return Words(
        title=kind.title.format_map(values),
        happened=kind.happened.format_map(values),
        action=kind.action_for(role).format_map(values),
        deadline=deadline,
        path=page_of(row.kind, contract, week or None),
    )


def render_mail(row: Notification, reader: User, title: str, settings: Settings) -> Rendered:
    said = words(row, title, reader.timezone, reader.role)
    context = {
        "base_url": settings.base_url, "subject": said.title, "name": reader.name or reader.email, "w": said,
        "link": settings.base_url.rstrip("/") + said.path, "settings_link": settings.base_url.rstrip("/")
        + "/settings/notifications",
    }  # fmt: skip
    return Rendered(
        subject=said.title,
        text=_TEXT.get_template("mail/notification.txt").render(context),
        html=_HTML.get_template("mail/notification.html").render(context),
    )


def webhook_body(delivery_id: uuid.UUID, row: Notification, title: str, settings: Settings) -> str:
    said = words(row, title)
    return json.dumps(
        {
            "id": str(delivery_id), "notification_id": str(row.id), "kind": row.kind,
            "created_at": row.created_at.isoformat(), "recipient_id": str(row.recipient_id),
            "contract_id": str(row.contract_id) if row.contract_id else None,
            "week": row.payload.get("week") if row.payload else None, "title": said.title, "text": said.happened,
            "deadline": (row.payload or {}).get("deadline"), "link": settings.base_url.rstrip("/") + said.path,
            "payload": row.payload,
        },
        separators=(",", ":"), ensure_ascii=False,
    )  # fmt: skip


# --- the fan-out ----------------------------------------------------------------------------------------


def fan_out(session: Session, settings: Settings, batch: int = 100) -> int:
    """Turn up to ``batch`` waiting notifications into mails and webhook deliveries, in ``session``'s
    transaction; how many were handled."""
    rows = list(
        session.exec(
            select(Notification)
            .where(col(Notification.sent_at).is_(None))
            .order_by(col(Notification.created_at))
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
    )
    if not rows:
        return 0
    people = list({row.recipient_id for row in rows})
    users = {u.id: u for u in session.exec(select(User).where(col(User.id).in_(people))).all()}
    contract_ids = list({row.contract_id for row in rows if row.contract_id})
    titles = {
        c.id: c.title for c in session.exec(select(Contract).where(col(Contract.id).in_(contract_ids))).all()
    }
    choices = repo.choices_of(session, people)
    hooks = repo.matching_webhooks(session, people)
    mails = []
    for row in rows:
        reader = users.get(row.recipient_id)
        title = titles.get(row.contract_id, "") if row.contract_id else ""
        if (
            reader is not None
            and reader.disabled_at is None
            and not (row.payload or {}).get("mailed")  # the use case mailed it itself (an offer's link)
            and email_wanted(row.kind, choices.get(row.recipient_id, {}))
        ):
            mails.append(outbox_row(kind=row.kind, recipient=reader.email, key=f"notification-{row.id}",
                                    mail=render_mail(row, reader, title, settings), sender=settings.mail_from))  # fmt: skip
        for hook in hooks:
            if row.kind in hook.kinds and hook.owner_id in (None, row.recipient_id):
                delivery_id = uuid.uuid5(hook.id, str(row.id))  # the same on any retry of this fan-out
                repo.add_delivery(session, delivery_id=delivery_id, webhook_id=hook.id, notification_id=row.id,
                                  kind=row.kind, body=webhook_body(delivery_id, row, title, settings))  # fmt: skip
    session.add_all(mails)
    session.flush()
    session.execute(
        text("UPDATE notifications SET sent_at = :now WHERE id = ANY(:ids)"),
        {"now": utcnow(), "ids": [row.id for row in rows]},
    )
    for row in rows:  # already written: the session must not write them again
        session.expunge(row)
    if mails:
        wake(session)
    return len(rows)


def fan_out_due(database_url: str, settings: Settings, batch: int = 100) -> int:
    with session_scope(database_url) as session:
        return fan_out(session, settings, batch)


# --- webhook endpoints: where they may point --------------------------------------------------------------


def _forbidden_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
        or ip.is_unspecified or not ip.is_global
    )  # fmt: skip


def endpoint_problem(url: str, allow_private: bool) -> str | None:
    """Why ``url`` may not receive deliveries, or None. HTTPS only, and (SSRF) every address its host
    resolves to must be public, unless ``WORKPROOF_WEBHOOK_ALLOW_PRIVATE`` (the embedded stack, tests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "the endpoint must be an https:// URL"
    if parts.username or parts.password:
        return "the endpoint URL may not carry a user name or password"
    if parts.scheme == "http" and not allow_private:
        return "the endpoint must use https://"
    if allow_private:
        return None
    try:
        port = parts.port or 443
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        return f"{parts.hostname} does not resolve"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if _forbidden_address(address):
            return f"{parts.hostname} resolves to a private or local address ({address}): not allowed"
    return None


# --- webhook deliveries ---------------------------------------------------------------------------------


def retry_delay(attempts: int, base_s: float) -> timedelta:
    """Exponential (base * 2^(attempts-1), at most an hour) with +-50% jitter."""
    exact = min(MAX_RETRY_DELAY.total_seconds(), base_s * 2 ** min(attempts - 1, 20))
    return timedelta(seconds=exact * random.uniform(0.5, 1.5))


def _disable(session: Session, hook: Webhook, failures: int, error: str) -> None:
    changed = session.execute(
        text(
            "UPDATE webhooks SET enabled = false, disabled_at = now(), disabled_reason = :reason "
            "WHERE id = :id AND enabled"
        ),
        {"id": hook.id, "reason": f"{failures} failed attempts in a row; last: {error}"[:1000]},
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        return  # another worker disabled it first: it told the owner
    payload = {"url": hook.url, "failures": failures, "webhook_id": str(hook.id)}
    key = f"webhook_disabled:{hook.id}:{int(time.time())}"
    if hook.owner_id is not None:
        repo.record(
            session, kind="webhook_disabled", recipient_id=hook.owner_id, dedupe_key=key, payload=payload
        )
    else:
        repo.record_for_admins(session, kind="webhook_disabled", dedupe_key=key, payload=payload)
    log.warning("webhook %s disabled after %d failures: %s", hook.url, failures, error)


def deliver_one(session: Session, settings: Settings, http: httpx.Client) -> bool:
    """Claim one due delivery and attempt it; False when none is due."""
    row = session.exec(
        select(WebhookDelivery)
        .join(Webhook, col(Webhook.id) == WebhookDelivery.webhook_id)
        .where(
            col(WebhookDelivery.delivered_at).is_(None), col(WebhookDelivery.failed_at).is_(None),
            col(WebhookDelivery.next_attempt_at) <= utcnow(), col(Webhook.enabled).is_(True),
        )
        .order_by(col(WebhookDelivery.next_attempt_at))
        .limit(1)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    ).first()  # fmt: skip
    if row is None:
        return False
    hook = session.get(Webhook, row.webhook_id)
    assert hook is not None
    row.attempts += 1
    status: int | None = None
    error = endpoint_problem(hook.url, settings.webhook_allow_private)
    if error is None:
        body = row.body.encode()
        headers = {
            "Content-Type": "application/json", "User-Agent": "Workproof-Webhooks/1",
            SIGNATURE_HEADER: signature_header(hook.secret, int(time.time()), body), DELIVERY_HEADER: str(row.id),
        }  # fmt: skip
        try:
            response = http.post(hook.url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:200]}"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"[:1000]
    row.last_status = status
    now = utcnow()
    if error is None:
        row.delivered_at, row.last_error = now, ""
        session.execute(text("UPDATE webhooks SET consecutive_failures = 0 WHERE id = :id"), {"id": hook.id})
    else:
        row.last_error = error[:1000]
        if now - row.created_at >= timedelta(hours=settings.webhook_retry_hours):
            row.failed_at = now
        else:
            row.next_attempt_at = now + retry_delay(row.attempts, settings.webhook_retry_base_seconds)
        failures = session.execute(
            text("UPDATE webhooks SET consecutive_failures = consecutive_failures + 1 WHERE id = :id "
                 "RETURNING consecutive_failures"),
            {"id": hook.id},
        ).scalar_one()  # fmt: skip
        if failures >= settings.webhook_disable_after:
            _disable(session, hook, failures, row.last_error)
    session.add(row)
    return True


def deliver_due(database_url: str, settings: Settings, http: httpx.Client, batch: int = 20) -> int:
    done = 0
    for _ in range(batch):
        with session_scope(database_url) as session:
            if not deliver_one(session, settings, http):
                return done
        done += 1
    return done


def run_notifier(
    database_url: str, settings: Settings, stop: threading.Event, every: float = 1.0,
    wake_event: threading.Event | None = None,
) -> None:  # fmt: skip
    """The fan-out and webhook loop: runs until ``stop`` is set (each worker process runs one); it looks
    every ``every`` seconds, or at once when ``wake_event`` is set (store.mail.listen)."""
    with httpx.Client(timeout=10.0, follow_redirects=False) as http:
        while not stop.is_set():
            try:
                busy = fan_out_due(database_url, settings) + deliver_due(database_url, settings, http)
                if busy:
                    continue
            except Exception:  # the database away: try again next round
                log.exception("notifier round failed")
            nap(wake_event, stop, every)


# --- the use cases of the pages and the API -------------------------------------------------------------


@dataclass(frozen=True)
class InboxItem:
    id: str
    kind: str
    title: str
    text: str
    deadline: str
    path: str
    created_at: datetime
    read: bool


def inbox(session: Session, user: User, *, unread_only: bool = False) -> list[InboxItem]:
    rows = repo.inbox(session, user.id, unread_only=unread_only)
    ids = list({r.contract_id for r in rows if r.contract_id})
    titles = {c.id: c.title for c in session.exec(select(Contract).where(col(Contract.id).in_(ids))).all()}
    items = []
    for row in rows:
        said = words(
            row, titles.get(row.contract_id, "") if row.contract_id else "", user.timezone, user.role
        )
        items.append(InboxItem(id=str(row.id), kind=row.kind, title=said.title, text=said.happened,
                               deadline=said.deadline, path=said.path, created_at=row.created_at,
                               read=row.read_at is not None))  # fmt: skip
    return items


def open_item(session: Session, user: User, notification_id: uuid.UUID) -> str:
    """Mark the item read; the path of its page."""
    row = repo.item(session, user.id, notification_id)
    if row is None:
        raise NotFound(f"no notification {notification_id} in your inbox")
    repo.mark_read(session, user.id, notification_id)
    return words(row, "").path


def mark(session: Session, user: User, notification_id: uuid.UUID, read: bool) -> None:
    if not repo.mark_read(session, user.id, notification_id, read):
        raise NotFound(f"no notification {notification_id} in your inbox")


def preferences(session: Session, user: User) -> list[tuple[str, str, bool]]:
    """Every kind with its label and the reader's email choice."""
    chosen = repo.choices(session, user.id)
    return [(k.name, k.label, email_wanted(k.name, chosen)) for k in KINDS.values()]


def set_preferences(session: Session, user: User, wanted: set[str]) -> None:
    repo.set_choices(session, user.id, {kind: kind in wanted for kind in KINDS})


def _check_kinds(kinds: list[str]) -> list[str]:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise InvalidInput(f"choose at least one kind among: {', '.join(KINDS)}", "webhook_kinds_invalid")
    return list(dict.fromkeys(kinds))


def register_webhook(
    session: Session, settings: Settings, user: User, *, url: str, kinds: list[str], deployment: bool = False
) -> Webhook:
    """A new endpoint of ``user`` (or, for an admin, of the deployment); its secret is shown once."""
    if deployment and user.role != "admin":
        raise Forbidden("only an admin registers an endpoint for the whole deployment", "role_required")
    url = url.strip()
    problem = (
        endpoint_problem(url, settings.webhook_allow_private) if len(url) <= 500 else "the URL is too long"
    )
    if problem:
        raise InvalidInput(problem, "webhook_url_refused")
    hook = Webhook(
        owner_id=None if deployment else user.id, created_by=user.id, url=url, kinds=_check_kinds(kinds),
        secret="whsec_" + secrets.token_urlsafe(32),
    )  # fmt: skip
    session.add(hook)
    session.flush()
    return hook


def own_webhook(session: Session, user: User, webhook_id: uuid.UUID) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None or not (hook.owner_id == user.id or (hook.owner_id is None and user.role == "admin")):
        raise NotFound(f"no webhook endpoint {webhook_id}")
    return hook


def set_webhook_enabled(session: Session, user: User, webhook_id: uuid.UUID, enabled: bool) -> Webhook:
    hook = own_webhook(session, user, webhook_id)
    hook.enabled = enabled
    if enabled:
        hook.consecutive_failures, hook.disabled_at, hook.disabled_reason = 0, None, ""
    else:
        hook.disabled_at, hook.disabled_reason = utcnow(), "disabled by its owner"
    session.add(hook)
    return hook


def delete_webhook(session: Session, user: User, webhook_id: uuid.UUID) -> None:
    session.delete(own_webhook(session, user, webhook_id))


def webhooks(session: Session, user: User) -> list[tuple[Webhook, list[WebhookDelivery]]]:
    """The reader's endpoints (an admin's: also the deployment's) with their recent deliveries."""
    hooks = repo.webhooks_of(session, user.id)
    if user.role == "admin":
        hooks += repo.webhooks_of(session, None)
    return [(hook, repo.deliveries(session, hook.id, 20)) for hook in hooks]
