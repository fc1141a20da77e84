"""The Tracker: while tracking, one capture per slot at the slot's random moment, queued, then uploaded.

Threads, and what each may touch:
- the tracker thread (``run``) sleeps until each slot's moment and captures; only it grabs the screen;
- the uploader thread drains the queue (:class:`agent.uploader.Uploader`);
- the work-view thread asks the server once per slot whether the contract's Work View is on;
- the control thread (:mod:`agent.control`) calls ``set_memo``/``pause``/``resume``/``stop``/``sync``.
Shared state (memo, paused, contract, counters) lives behind ``self._changed``, a Condition, so a
``stop`` wakes a sleeping tracker at once. The next moment is never shown to anyone: a provider who
knew it could look busy just then.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.activity import ActivityCounter, NoActivityCounts
from agent.api import Contract
from agent.capture import CaptureBackend, choose_backend
from agent.config import Settings
from agent.durable import write_atomically
from agent.errors import AgentError, InvalidArgument, QueueFull
from agent.imaging import encode_webp, pixelate, thumbnail_webp
from agent.queue import CaptureQueue, QueuedMeta
from agent.schedule import SlotPlan, SlotScheduler
from agent.uploader import DrainReport, Uploader
from domain.errors import DomainError
from domain.text import clean_memo

Clock = Callable[[], datetime]
Report = Callable[[str], None]
ContractLookup = Callable[[str], Contract | None]
THUMBNAIL_RETENTION = timedelta(days=35)  # past the edit cutoff and review window of their week


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_memo(memo: str) -> str:
    """The server's memo rules (``domain.text``), checked when the memo is set rather than when a capture
    is refused hours later."""
    try:
        return clean_memo(memo)
    except DomainError as error:
        raise InvalidArgument(error.message) from None


@dataclass
class TrackerCounters:
    captures: int = 0
    tracked: int = 0
    skipped_paused: int = 0
    missed: int = 0
    failed: int = 0
    last_capture_at: datetime | None = None
    last_capture_id: str | None = None
    last_capture_slot: datetime | None = None
    last_capture_kind: str | None = None
    last_problem: str | None = None


class CaptureCycle:
    """Grab → (pixelate) → encode → queue, one monitor at a time. Shared by the tracker and the bench."""

    def __init__(self, queue: CaptureQueue, settings: Settings, thumbnails_folder: Path | None) -> None:
        self.queue = queue
        self.settings = settings
        self.thumbnails_folder = thumbnails_folder

    def screenshot(self, backend: CaptureBackend, meta: QueuedMeta) -> tuple[QueuedMeta, list[int]]:
        images: list[bytes] = []
        sizes: list[tuple[int, int]] = []
        thumbnails: list[bytes] = []
        for frame in backend.frames():
            if self.settings.blur:
                blurred = pixelate(frame, self.settings.blur_block_px)
                frame.close()
                frame = blurred
            images.append(encode_webp(frame, self.settings.webp_quality))
            sizes.append(frame.size)
            if self.thumbnails_folder is not None:
                thumbnails.append(thumbnail_webp(frame))
            # The raw frame is the big allocation (6 MB at 1080p): drop it before grabbing the next one.
            frame.close()
            del frame
        if not images:
            raise AgentError("the capture back end returned no image")
        item = self.queue.put(meta, images, sizes)
        self._keep_thumbnails(meta.capture_id, thumbnails)
        return item.meta, [len(content) for content in images]

    def tracked(self, meta: QueuedMeta) -> QueuedMeta:
        return self.queue.put(meta, [], []).meta

    def _keep_thumbnails(self, capture_id: str, thumbnails: list[bytes]) -> None:
        # Previews are a convenience for `shots`: losing one in a crash costs nothing, so no fsync.
        if self.thumbnails_folder is None:
            return
        with contextlib.suppress(OSError):
            self.thumbnails_folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            for index, content in enumerate(thumbnails):
                (self.thumbnails_folder / f"{capture_id}-{index + 1}.webp").write_bytes(content)


def prune_thumbnails(folder: Path, *, keep: timedelta = THUMBNAIL_RETENTION, now: float | None = None) -> int:
    """Forget previews older than ``keep`` (their weeks are long submitted); answers how many went."""
    limit = (time.time() if now is None else now) - keep.total_seconds()
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for path in folder.glob("*.webp"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
    return removed


class Tracker:
    def __init__(
        self,
        *,
        contract: Contract,
        memo: str,
        settings: Settings,
        queue: CaptureQueue,
        uploader: Uploader,
        scheduler: SlotScheduler,
        thumbnails_folder: Path | None = None,
        contracts_cache: Path | None = None,
        lookup_contract: ContractLookup | None = None,
        backend: CaptureBackend | None = None,
        choose: Callable[[], CaptureBackend] = choose_backend,
        activity: ActivityCounter | None = None,
        clock: Clock = utc_now,
        report: Report | None = None,
        notify: Report | None = None,
    ) -> None:
        self.contract = contract
        self.memo = check_memo(memo)
        self.settings = settings
        self.queue = queue
        self.uploader = uploader
        self.scheduler = scheduler
        self.cycle = CaptureCycle(queue, settings, thumbnails_folder if settings.thumbnails else None)
        self.contracts_cache = contracts_cache
        self._lookup_contract = lookup_contract
        self._backend = backend
        self._choose = choose
        self._activity = activity or NoActivityCounts()
        self._clock = clock
        self._report = report or (lambda message: None)  # problems and warnings (stderr)
        self._notify = notify or (lambda message: None)  # ordinary events (stdout)
        self.counters = TrackerCounters()
        self.paused = False
        self.started_at = clock()
        self._plan: SlotPlan | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._refresh = threading.Event()
        self._threads: list[threading.Thread] = []
        self._warned_late: set[str] = set()
        self._warned_weeks: set[str] = set()
        self._warned_disk = False

    # -- control (any thread) ----------------------------------------------------------------------

    def set_memo(self, memo: str) -> None:
        with self._changed:
            self.memo = check_memo(memo)

    def pause(self) -> None:
        with self._changed:
            self.paused = True
            self._changed.notify_all()

    def resume(self) -> None:
        with self._changed:
            if self.paused:
                # Activity during the pause is not the work of any tracked slot.
                self._activity.take()
            self.paused = False
            self._changed.notify_all()

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self.uploader.wake()
        self._refresh.set()  # the Work View thread waits on it

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def sync(self) -> DrainReport:
        self.uploader.wake(reset_backoff=True)
        return self.uploader.drain()

    def delete_local(self, capture_id: str) -> bool:
        return self.queue.discard(capture_id)

    def snapshot(self) -> dict[str, Any]:
        with self._changed:
            plan = self._plan
            counters = replace(self.counters)
            state: dict[str, Any] = {
                "state": "stopping" if self.stopping else ("paused" if self.paused else "tracking"),
                "contract": self.contract.as_dict(),
                "memo": self.memo,
                "work_view_on": self.contract.work_view_on,
                "started_at": self.started_at.isoformat(),
                "slot_start": plan.slot_start.isoformat() if plan else None,
                "slot_end": plan.slot_end.isoformat() if plan else None,
            }
        state |= {
            "backend": self._backend.name if self._backend else None,
            "captures": counters.captures,
            "tracked": counters.tracked,
            "skipped_paused": counters.skipped_paused,
            "missed": counters.missed,
            "failed": counters.failed,
            "last_capture_at": counters.last_capture_at.isoformat() if counters.last_capture_at else None,
            "last_capture_id": counters.last_capture_id,
            "last_capture_slot": counters.last_capture_slot.isoformat()
            if counters.last_capture_slot
            else None,
            "last_capture_kind": counters.last_capture_kind,
            "blur": self.settings.blur,
            "last_problem": counters.last_problem,
            "uploader": self.uploader.status(),
        }
        return state

    # -- the tracker thread ------------------------------------------------------------------------

    def run(self, on_tick: Callable[[], None] | None = None) -> None:
        """Track until :meth:`stop`. ``on_tick`` is called about once a second (the status line)."""
        self._activity.start()
        self._spawn("workproof-uploader", lambda: self.uploader.run(self._stop))
        if self._lookup_contract is not None:
            self._spawn("workproof-work-view", self._watch_work_view)
        try:
            plan = self.scheduler.plan(self._clock())
            while not self.stopping:
                with self._changed:
                    self._plan = plan
                self._refresh.set()
                self._wait_until(plan.moment, on_tick)
                if self.stopping:
                    break
                now = self._clock()
                if now >= plan.slot_end:
                    # Slept through the slot (suspend, a stalled clock): a late capture would be dated in
                    # another slot, so this one is missed, and said so.
                    self._note_problem(
                        f"slot {_hhmm(plan.slot_start)} missed: the computer was asleep or busy"
                    )
                    with self._changed:
                        self.counters.missed += 1
                    plan = self.scheduler.plan(now)
                    continue
                with self._changed:
                    paused = self.paused
                    if paused:
                        self.counters.skipped_paused += 1
                if not paused:
                    self._capture(plan, now)
                self._check_queue()
                plan = self.scheduler.plan_after(plan, self._clock())
        finally:
            self.stop()
            for thread in self._threads:
                thread.join(timeout=5)
            self._activity.stop()
            self._last_upload()

    def _last_upload(self) -> None:
        """One pass over the queue before exiting, so a normal stop leaves nothing behind.

        When the server is unreachable this ends at the first failed connection; what remains is
        durable and goes up at the next start or ``sync``.
        """
        waiting = len(self.queue.pending())
        if not waiting:
            return
        self._notify(f"uploading {waiting} queued capture(s) before stopping...")
        try:
            self.uploader.drain()
        except Exception as error:  # stopping must not fail: the captures stay queued on disk
            self._report(f"upload before stopping failed: {error!r}")

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _wait_until(self, moment: datetime, on_tick: Callable[[], None] | None) -> None:
        # Short waits against the wall clock, not one long sleep: after a suspend the loop notices at once
        # that the moment (or the whole slot) has passed.
        while not self.stopping:
            left = (moment - self._clock()).total_seconds()
            if left <= 0:
                return
            with self._changed:
                self._changed.wait(min(left, 0.5 if on_tick is None else 1.0))
            if on_tick is not None:
                on_tick()

    def _capture(self, plan: SlotPlan, now: datetime) -> None:
        keyboard, mouse = self._activity.take()
        with self._changed:
            memo, contract = self.memo, self.contract
        meta = QueuedMeta(
            capture_id=str(uuid.uuid4()),
            contract_id=contract.id,
            captured_at=now,
            memo=memo,
            kind="screenshot" if contract.work_view_on else "tracked",
            keyboard_events=keyboard,
            mouse_events=mouse,
        )
        try:
            if contract.work_view_on:
                if self._backend is None:
                    self._backend = self._choose()
                _, sizes = self.cycle.screenshot(self._backend, meta)
                done = f"captured {len(sizes)} monitor(s), {sum(sizes) / 1024:.0f} KiB"
            else:
                self.cycle.tracked(meta)
                done = "tracked this slot (Work View off: no screenshot)"
        except (AgentError, OSError) as error:
            message = error.message if isinstance(error, AgentError) else str(error)
            with self._changed:
                self.counters.failed += 1
            self._note_problem(f"slot {_hhmm(plan.slot_start)} not documented: {message}")
            if isinstance(error, QueueFull):
                self._warned_disk = True
            return
        with self._changed:
            self.counters.captures += 1
            self.counters.tracked += meta.kind == "tracked"
            self.counters.last_capture_at = now
            self.counters.last_capture_id = meta.capture_id
            self.counters.last_capture_slot = plan.slot_start
            self.counters.last_capture_kind = meta.kind
            self.counters.last_problem = None
        self._notify(done)
        if not memo.strip():
            self._report(
                "captured without a memo: this slot is not guaranteed; "
                "set one with `workproof-agent memo TEXT`"
            )
        self.uploader.wake()

    def _check_queue(self) -> None:
        """Say so, loudly and once, when captures near their week's edit cutoff or the disk limit."""
        usage = self.queue.usage(self._clock())
        for week, (count, cutoff) in usage.at_risk.items():
            if week not in self._warned_weeks:
                self._warned_weeks.add(week)
                self._report(
                    f"{count} capture(s) of the week of {week} are not uploaded yet and must reach the server "
                    f"before {cutoff:%a %H:%M} UTC: check your connection"
                )
        for capture_id in usage.late:
            if capture_id not in self._warned_late:
                self._warned_late.add(capture_id)
                self._report(
                    f"capture {capture_id} could not upload before its week's edit cutoff: the server may "
                    "refuse it; it stays queued (see `workproof-agent status`)"
                )
        if usage.near_limit and not self._warned_disk:
            self._warned_disk = True
            self._report(
                f"capture queue uses {usage.bytes_used / 2**20:.0f} MiB of {usage.limit_bytes / 2**20:.0f} "
                "MiB: connect to the network so captures can upload"
            )
        elif not usage.near_limit:
            self._warned_disk = False

    def _note_problem(self, message: str) -> None:
        with self._changed:
            self.counters.last_problem = message
        self._report(message)

    def _watch_work_view(self) -> None:
        """Re-read the contract once per slot; the last known answer stands while the server is away."""
        assert self._lookup_contract is not None
        while not self.stopping:
            self._refresh.wait()
            self._refresh.clear()
            if self.stopping:
                return
            try:
                fresh = self._lookup_contract(self.contract.id)
            except AgentError:
                continue
            if fresh is None:
                continue
            with self._changed:
                changed = fresh.work_view_on != self.contract.work_view_on
                self.contract = fresh
            if changed:
                state = "on: screenshots" if fresh.work_view_on else "off: tracked time, no screenshots"
                self._report(f"Work View is now {state}")
            if fresh.status == "ended":
                self._report("the contract has ended: tracking stops")
                self.stop()
            self._cache_contract(fresh)

    def _cache_contract(self, contract: Contract) -> None:
        if self.contracts_cache is None:
            return
        with contextlib.suppress(OSError, ValueError):
            cached: dict[str, Any] = {}
            if self.contracts_cache.exists():
                cached = json.loads(self.contracts_cache.read_text(encoding="utf-8"))
            cached[contract.id] = contract.as_dict()
            write_atomically(self.contracts_cache, json.dumps(cached, indent=2).encode())


def _hhmm(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S UTC")
