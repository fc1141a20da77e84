"""The Uploader drains the capture queue to the server, oldest first, until it is empty.

Every upload is idempotent by capture id: the server answers 200 with the stored record when it already
has the capture with the same bytes, so a crash between "the server stored it" and "the file was
removed" costs one repeated request, never a lost or doubled capture.

What the answer means for the capture:
- 201 / 200 with matching sha256: delivered, removed from the queue;
- connection errors, timeouts, 408/425/429 and 5xx (503 with ``Retry-After``): kept, retried later with
  exponential backoff and full jitter, never sooner than the server asked;
- 401: kept; the token is wrong or revoked, nothing can upload until the provider logs in again;
- ``work_view_off`` for a screenshot (the agent learnt of the switch late, e.g. offline): the images are
  destroyed unsent and the slot goes up again as tracked time, same id and memo;
- any other refusal (``capture_conflict`` for other bytes under the same id, 413, 422, 403, 404...):
  moved to ``rejected/`` with the server's message; retrying the same bytes would only be refused again.

Decisions are taken on the refusal's ``code`` (docs/errors.md), never on the wording of its message; the
status decides only for answers that carry no code (a proxy's error page).
"""

from __future__ import annotations

import enum
import json
import random
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.api import ClientCache, UploadImage, WorkproofClient
from agent.config import Credentials
from agent.durable import write_atomically
from agent.errors import AgentError, ServerRefused, ServerUnreachable
from agent.queue import CaptureQueue, DamagedCapture, QueuedCapture

RETRYABLE_STATUSES = frozenset({408, 425, 429})
RETRYABLE_CODES = frozenset({"unavailable", "rate_limited", "server_error"})
CREDENTIAL_CODES = frozenset(
    {"unauthorized", "token_missing", "token_unknown", "token_revoked", "token_expired", "account_disabled"}
)


class Backoff:
    """Exponential backoff with full jitter: the n-th wait is uniform in [0, min(cap, base * 2**n)).

    Full jitter spreads the retries of many agents after an outage, so a recovering server is not hit by
    all of them at the same instant. ``Retry-After`` from the server is a floor, never shortened.
    """

    def __init__(self, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or secrets.SystemRandom()

    def ceiling(self) -> float:
        # min() before the power would overflow for a long outage; the exponent is bounded instead.
        return min(self.cap, self.base * 2 ** min(self.failures, 60))

    def next_delay(self, retry_after: float | None = None) -> float:
        delay = self._rng.uniform(0.0, self.ceiling())
        self.failures += 1
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def reset(self) -> None:
        self.failures = 0


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    RETRY = "retry"
    UNAUTHORIZED = "unauthorized"
    GONE = "gone"  # deleted locally while waiting for its turn


@dataclass
class UploadAttempt:
    outcome: Outcome
    message: str = ""
    retry_after: float | None = None
    status: int = 0


@dataclass
class UploaderState:
    """What ``status`` shows about uploads; persisted so it is known when the tracker is not running."""

    last_upload_at: str | None = None
    last_capture_id: str | None = None
    delivered_total: int = 0
    last_error: str | None = None
    last_error_at: str | None = None
    next_retry_at: str | None = None

    @classmethod
    def load(cls, path: Path) -> UploaderState:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self, path: Path) -> None:
        write_atomically(path, json.dumps(asdict(self), indent=2).encode())


@dataclass
class DrainReport:
    delivered: int = 0
    rejected: int = 0
    remaining: int = 0
    messages: list[str] = field(default_factory=list)
    retry_after: float | None = None
    stopped_by: Outcome | None = None  # RETRY or UNAUTHORIZED when the pass ended early


EventSink = Callable[[str], None]


class Uploader:
    def __init__(
        self,
        queue: CaptureQueue,
        credentials: Callable[[], Credentials],
        state_file: Path,
        *,
        backoff: Backoff | None = None,
        clients: ClientCache | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.queue = queue
        self._credentials = credentials
        self.state_file = state_file
        self.backoff = backoff or Backoff()
        self.clients = clients or ClientCache()
        self._on_event = on_event or (lambda message: None)
        self._state_lock = threading.Lock()
        self.state = UploaderState.load(state_file)
        self._wake = threading.Event()

    # -- one capture -------------------------------------------------------------------------------

    def upload(self, client: WorkproofClient, item: QueuedCapture) -> UploadAttempt:
        with self.queue.claim(item.capture_id):
            if not item.path.exists():
                return UploadAttempt(Outcome.GONE)
            return self._send(client, item)

    def _send(self, client: WorkproofClient, item: QueuedCapture) -> UploadAttempt:
        try:
            contents = item.read_images()
        except DamagedCapture as error:
            self.queue.reject(item, 0, str(error))
            return UploadAttempt(Outcome.REJECTED, str(error))
        images = [
            UploadImage(content, stored.sha256) for content, stored in zip(contents, item.images, strict=True)
        ]
        del contents
        try:
            status, record = client.upload_capture(item.meta.contract_id, item.meta.api_meta(), images)
        except ServerUnreachable as error:
            return UploadAttempt(Outcome.RETRY, error.message)
        except ServerRefused as error:
            if error.code == "work_view_off" and item.meta.kind == "screenshot":
                return self._send(client, self._keep_as_tracked(item))
            return self._refused(item, error)
        expected = [image.sha256 for image in images]
        stored = record.get("sha256")
        if stored != expected:
            message = f"the server holds other images for capture {item.capture_id} (sha256 {stored})"
            self.queue.reject(item, status, message)
            return UploadAttempt(Outcome.REJECTED, message, status=status)
        self.queue.remove(item)
        return UploadAttempt(Outcome.DELIVERED, status=status)

    def _keep_as_tracked(self, item: QueuedCapture) -> QueuedCapture:
        """Work View was off at the capture's moment (the agent only learnt it late, e.g. offline).

        The client did not agree to screenshots then, so the images are destroyed, unsent; the time is
        still the provider's and goes up as a tracked slot with the same id and memo.
        """
        tracked = self.queue.put(replace(item.meta, kind="tracked"), [], [])
        self._on_event(
            f"capture {item.capture_id}: Work View was off at that moment; the screenshot is deleted and "
            "the slot is kept as tracked time"
        )
        return tracked

    def _refused(self, item: QueuedCapture, error: ServerRefused) -> UploadAttempt:
        if error.code is not None:
            retry, credentials = error.code in RETRYABLE_CODES, error.code in CREDENTIAL_CODES
        else:  # not Workproof's own answer (a proxy's or load balancer's page): only the status tells
            retry = error.status >= 500 or error.status in RETRYABLE_STATUSES
            credentials = error.status == 401
        if retry:
            return UploadAttempt(Outcome.RETRY, error.message, error.retry_after, error.status)
        if credentials:
            return UploadAttempt(
                Outcome.UNAUTHORIZED,
                f"the server refused the token ({error.detail}): run `workproof-agent login` again",
                status=401,
            )
        self.queue.reject(item, error.status, error.detail)
        return UploadAttempt(Outcome.REJECTED, error.message, status=error.status)

    # -- the whole queue ---------------------------------------------------------------------------

    def drain(self, stop: threading.Event | None = None) -> DrainReport:
        """One pass over the queue, oldest first; stops at the first failure worth retrying."""
        report = DrainReport()
        items = self.queue.pending()
        if not items:
            return report
        try:
            credentials = self._credentials()
        except AgentError as error:
            report.stopped_by = Outcome.UNAUTHORIZED
            report.messages.append(error.message)
            report.remaining = len(items)
            self._record_error(error.message)
            return report
        client = self.clients.client(credentials.server, credentials.token)
        for index, item in enumerate(items):
            if stop is not None and stop.is_set():
                report.remaining = len(items) - index
                break
            attempt = self.upload(client, item)
            if attempt.outcome is Outcome.DELIVERED:
                report.delivered += 1
                self._record_delivery(item)
            elif attempt.outcome is Outcome.REJECTED:
                report.rejected += 1
                message = f"capture {item.capture_id} rejected: {attempt.message}"
                report.messages.append(message)
                self._on_event(message)
            elif attempt.outcome in (Outcome.RETRY, Outcome.UNAUTHORIZED):
                report.stopped_by = attempt.outcome
                report.retry_after = attempt.retry_after
                report.messages.append(attempt.message)
                report.remaining = len(items) - index
                self._record_error(attempt.message)
                break
        if report.stopped_by is None:
            self.backoff.reset()
            with self._state_lock:
                self.state.next_retry_at = None
                if self.state.last_error is not None:
                    self.state.last_error = None
                    self.state.save(self.state_file)
        return report

    def _record_delivery(self, item: QueuedCapture) -> None:
        with self._state_lock:
            self.state.last_upload_at = datetime.now(UTC).isoformat()
            self.state.last_capture_id = item.capture_id
            self.state.delivered_total += 1
            self.state.last_error = None
            self.state.save(self.state_file)

    def _record_error(self, message: str) -> None:
        with self._state_lock:
            self.state.last_error = message
            self.state.last_error_at = datetime.now(UTC).isoformat()
            self.state.save(self.state_file)

    # -- the background loop -----------------------------------------------------------------------

    def wake(self, *, reset_backoff: bool = False) -> None:
        """New work (a capture was queued) or an explicit ``sync``: try now."""
        if reset_backoff:
            self.backoff.reset()
        self._wake.set()

    def run(self, stop: threading.Event, idle_seconds: float = 60.0) -> None:
        """Drain until ``stop``; sleep between passes, longer after failures (backoff)."""
        while not stop.is_set():
            self._wake.clear()
            try:
                report = self.drain(stop)
            except Exception as error:  # a bug here must not end uploads for the day; report and retry
                report = DrainReport(stopped_by=Outcome.RETRY, messages=[f"upload error: {error!r}"])
                self._on_event(report.messages[0])
            if report.stopped_by is None:
                wait = idle_seconds
            else:
                wait = self.backoff.next_delay(report.retry_after)
                retry_at = datetime.now(UTC).timestamp() + wait
                with self._state_lock:
                    self.state.next_retry_at = datetime.fromtimestamp(retry_at, UTC).isoformat()
                self._on_event(f"upload failed, retrying in {wait:.0f} s: {report.messages[-1]}")
            if stop.is_set():
                break
            # A wake (new capture, sync) cuts an idle wait short; after a failure only sync or stop does,
            # so a burst of captures during an outage cannot defeat the backoff.
            self._sleep(stop, wait, interruptible_by_wake=report.stopped_by is None)

    def _sleep(self, stop: threading.Event, seconds: float, *, interruptible_by_wake: bool) -> None:
        deadline = datetime.now(UTC).timestamp() + seconds
        while not stop.is_set():
            left = deadline - datetime.now(UTC).timestamp()
            if left <= 0:
                return
            if self._wake.wait(min(left, 0.5)):
                if interruptible_by_wake or self.backoff.failures == 0:
                    return
                self._wake.clear()

    def status(self) -> dict[str, Any]:
        with self._state_lock:
            return asdict(self.state)
