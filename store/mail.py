"""Mail that is never lost: the outbox and its sender.

A message is written to ``mail_outbox`` in the same transaction as the action that causes it (an
invitation, a password reset): if the action rolls back, no mail; if it commits, the mail will go out.
The sender (:func:`run_sender`, run by every worker process) claims due rows with
``FOR UPDATE SKIP LOCKED`` — so any number of workers share the outbox without sending a row twice at
once — hands each to the SMTP server and marks it sent in the same transaction, or records the error
and tries again later with a growing delay. A crash between the server's acceptance and the commit
sends that message once more: the stable ``Message-ID`` lets mail systems and people see it is the
same one. docs/design.md, "Mail".

The notification fan-out (api/services/notifications.py) enqueues through :func:`enqueue` too, naming
each mail after its notification (:func:`message_id_for`), so it is made once and keeps its id."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, parseaddr
from urllib.parse import unquote, urlsplit

import psycopg
from sqlalchemy import text
from sqlmodel import Session, col, select

from store.db import session_scope
from store.models import OutboxMail, utcnow

log = logging.getLogger("workproof.mail")
_WIRE = compat32.clone(linesep="\r\n")  # SMTP's line ending: sendmail() passes bytes as they are
MAX_BACKOFF = timedelta(minutes=30)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def message_id_for(key: str, sender: str) -> str:
    """The Message-ID of a mail made from ``key`` (a notification's id): the same on every retry."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "workproof.invalid"
    return f"<{key}@{domain}>"


def enqueue(
    *, session: Session, kind: str, recipient: str, mail: Rendered, sender: str, key: str | None = None
) -> OutboxMail:
    """Add a message to the outbox in the caller's transaction (``key``: a stable id to name it by)."""
    row = outbox_row(kind=kind, recipient=recipient, mail=mail, sender=sender, key=key)
    session.add(row)
    session.flush()
    wake(session)
    return row


def outbox_row(
    *, kind: str, recipient: str, mail: Rendered, sender: str, key: str | None = None
) -> OutboxMail:
    """An outbox row not yet added (the fan-out adds many at once, then calls :func:`wake` once)."""
    return OutboxMail(
        message_id=message_id_for(key or str(uuid.uuid4()), sender), kind=kind, recipient=recipient, subject=mail.subject[:300],
        text_body=mail.text, html_body=mail.html,
    )  # fmt: skip


WAKE_CHANNEL = "workproof_outbox"


def wake(session: Session) -> None:
    """Tell every worker's loops (on commit; PostgreSQL sends one per transaction) that work is waiting."""
    session.execute(text(f"NOTIFY {WAKE_CHANNEL}"))


def listen(database_url: str, wakes: list[threading.Event], stop: threading.Event) -> None:
    """Set every event in ``wakes`` whenever someone commits work for the loops (``NOTIFY
    workproof_outbox``): the loops then start at once instead of at their next poll, which stays as the
    fallback (a lost connection, a notification sent while reconnecting)."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"LISTEN {WAKE_CHANNEL}")
                for event in wakes:  # anything committed while we were away
                    event.set()
                while not stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        for event in wakes:
                            event.set()
        except psycopg.Error as error:
            log.warning("outbox listener: %s; polling until it reconnects", error)
            stop.wait(2.0)


def nap(wake_event: threading.Event | None, stop: threading.Event, every: float) -> None:
    """Wait for a wake-up (or ``every`` seconds, or the stop)."""
    if wake_event is None:
        stop.wait(every)
        return
    wake_event.wait(every)
    wake_event.clear()


def pending(*, session: Session, recipient: str | None = None) -> list[OutboxMail]:
    query = select(OutboxMail).where(col(OutboxMail.sent_at).is_(None))
    if recipient:
        query = query.where(OutboxMail.recipient == recipient)
    return list(session.exec(query.order_by(col(OutboxMail.created_at))).all())


def message_of(row: OutboxMail, sender: str) -> bytes:
    """The message as sent: multipart/alternative (plain text, then HTML), UTF-8 bodies in base64, the
    row's Message-ID. Built with the classic MIME classes: the newer ``EmailMessage`` API costs about a
    millisecond of header parsing per message, a third of what the SMTP exchange costs here."""
    message = MIMEMultipart("alternative")
    message["From"] = sender
    message["To"] = row.recipient
    message["Subject"] = row.subject if row.subject.isascii() else Header(row.subject, "utf-8").encode()
    message["Message-ID"] = row.message_id
    message["Date"] = format_datetime(row.created_at)
    message.attach(MIMEText(row.text_body, "plain", "utf-8"))
    message.attach(MIMEText(row.html_body, "html", "utf-8"))
    return message.as_bytes(policy=_WIRE)


class Smtp:
    """One SMTP server, from ``smtp://user:pass@host:587`` (STARTTLS, required unless the host is this
    machine) or ``smtps://user:pass@host:465`` (TLS from the first byte)."""

    def __init__(self, url: str, timeout: float = 20.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                "WORKPROOF_SMTP_URL must look like smtp://user:pass@host:587 or smtps://host:465"
            )
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.tls else 587)
        self.user = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        self.timeout = timeout

    def connect(self) -> smtplib.SMTP:
        """A signed-in connection, to send one or more messages over."""
        context = ssl.create_default_context()
        server: smtplib.SMTP
        if self.tls:
            server = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if not self.tls:
                server.ehlo()
                if server.has_extn("starttls"):
                    server.starttls(context=context)
                    server.ehlo()
                elif self.host not in LOOPBACK:
                    raise smtplib.SMTPException(f"{self.host} does not offer STARTTLS: use smtps://")
            if self.user:
                server.login(self.user, self.password)
        except BaseException:
            server.close()
            raise
        return server

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        with self.connect() as server:
            server.sendmail(parseaddr(sender)[1], [recipient], message)


def send_due(database_url: str, smtp: Smtp, sender: str, batch: int = 100, per_commit: int = 10) -> int:
    """Send up to ``batch`` due messages over one connection; how many went out. Rows are claimed
    ``per_commit`` at a time with ``FOR UPDATE SKIP LOCKED`` and marked sent in the transaction that
    claimed them (one commit per group: PostgreSQL's commit, not SMTP, was the cost per message). A crash
    after the server took some of a group sends those again, with their Message-IDs."""
    sent = 0
    envelope = parseaddr(sender)[1]
    server: smtplib.SMTP | None = None
    try:
        while sent < batch:
            with session_scope(database_url) as session:
                rows = session.exec(
                    select(OutboxMail)
                    .where(col(OutboxMail.sent_at).is_(None), col(OutboxMail.next_attempt_at) <= utcnow())
                    .order_by(col(OutboxMail.next_attempt_at))
                    .limit(per_commit)
                    .with_for_update(skip_locked=True)
                ).all()
                if not rows:
                    return sent
                for row in rows:
                    row.attempts += 1
                    try:
                        if server is None:
                            server = smtp.connect()
                        server.sendmail(envelope, [row.recipient], message_of(row, sender))
                    except (OSError, smtplib.SMTPException) as error:
                        delay = min(MAX_BACKOFF, timedelta(seconds=2 ** min(row.attempts, 12)))
                        row.next_attempt_at = utcnow() + delay
                        row.last_error = f"{type(error).__name__}: {error}"[:1000]
                        log.warning("mail %s to %s not sent (attempt %d, next in %s): %s", row.message_id,
                                    row.recipient, row.attempts, delay, row.last_error)  # fmt: skip
                        session.add(row)
                        return sent  # the server is likely down: the next round tries again
                    row.sent_at = utcnow()
                    row.last_error = ""
                    session.add(row)
                    sent += 1
        return sent
    finally:
        if server is not None:
            try:
                server.quit()
            except (OSError, smtplib.SMTPException):
                server.close()


def run_sender(
    database_url: str, smtp_url: str, sender: str, stop: threading.Event, every: float = 1.0,
    wake_event: threading.Event | None = None,
) -> None:  # fmt: skip
    """The sender loop: runs until ``stop`` is set (each worker process runs one, in a thread); it looks
    at the outbox every ``every`` seconds, or at once when ``wake_event`` is set (:func:`listen`)."""
    smtp = Smtp(smtp_url)
    while not stop.is_set():
        try:
            if send_due(database_url, smtp, sender):
                continue  # more may be due
        except Exception:  # the database away: try again next round
            log.exception("mail sender round failed")
        nap(wake_event, stop, every)
