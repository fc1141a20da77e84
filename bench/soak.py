"""Soak: simulated agents post real captures through the API for a while as weeks settle; then the invariants.

- agents: N threads (default 8), each a provider with its own contract and keep-alive connection, posting
  realistic 1920x1080 WebP screens (``bench/ingest.py``'s, 100-300 KB) as fast as the API answers, each
  capture under a new random id dated earlier this week; and, like real agents on real networks:
  - ~10 %: the first attempt is abandoned by the client while the server works on it (a read timeout),
    then retried with the same id and bytes (201 or 200, whoever wins);
  - ~5 %: sent twice at once over two connections (one 201, one 200);
  - ~5 %: sent again after it was stored, as when the answer was lost (200);
- weeks: for every contract, ``--weeks`` past weeks of five documented slots (rows and their objects
  written straight to the database and the store), each settled by its ``TimesheetWorkflow`` with a
  review deadline inside the run: funded clients are charged; unfunded ones are not, so the guarantee
  pays for documented slots (weeks with memos) and the week ends ``unpaid`` where nothing was guaranteed
  (weeks without memos).

Then it checks what must hold whatever the load: every capture answered 2xx is stored exactly once (one
row, its objects present, sha256 matching the bytes sent), no object without its row and no row without
its objects, the ledger sums to zero with no duplicate idempotency key, one charge per funded week and one
payout per guaranteed unfunded week, every timesheet in a final state (``settled`` or ``unpaid``).

It prints what it held: captures/s, p50/p95 upload latency, captures stored, weeks settled, charges,
payouts, the charges' lateness after their deadlines, answers by status code. The last line is JSON; the
exit status is 1 when an invariant broke. It starts its own stack on free ports.

Run: ``.venv/bin/python -m bench.soak [--agents 8] [--seconds 60] [--weeks 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlmodel import col, select
from temporalio.client import Client

from bench.ingest import screen
from bench.workview import RATE, BenchParty, BenchStack, percentile
from domain.calendar import WEEK, slot_start, week_label, week_start
from domain.messages import TIMESHEET_SHAPE, DeadlinePolicy, TimesheetInput, TimesheetView
from store import ledger
from store.db import session_scope
from store.images import check_image, thumbnail
from store.models import Capture, LedgerTransfer
from workflows.timesheet import TimesheetWorkflow, timesheet_workflow_id

REPO = Path(__file__).resolve().parents[1]

BACKDATE = timedelta(days=35)  # contracts (and Work View) began before the oldest seeded week
SLOTS = 5  # per seeded week: one hour, RATE cents
ABANDON_AFTER_S = 0.02  # the read timeout of an attempt the client gives up on
FINAL = ("settled", "unpaid")


# --- the parties -------------------------------------------------------------------------------------------


def contract_for(bench: BenchStack, funded: bool) -> BenchParty:
    """An accepted contract whose Work View (and acceptance) go back ``BACKDATE``; unfunded ones run
    into the guarantee."""
    return bench.party(backdate=BACKDATE, fund=funded)


# --- the weeks that settle during the run ------------------------------------------------------------------


@dataclass
class SeededWeek:
    party: BenchParty
    week: datetime
    funded: bool
    memo: str
    deadline: datetime | None = None

    @property
    def workflow_id(self) -> str:
        return timesheet_workflow_id(self.party.contract_id, self.week)

    @property
    def expected(self) -> str:
        """What the money should do: charge, payout (guaranteed), or unpaid (nothing guaranteed)."""
        return "charge" if self.funded else ("payout" if self.memo.strip() else "unpaid")


def seed_week(bench: BenchStack, week: SeededWeek, image: bytes) -> set[str]:
    """Five documented slots on the Tuesday, each a row with its image and thumbnail in the store."""
    checked = check_image(image, index=0, max_bytes=8 << 20, max_pixels=40_000_000, make_thumbnail=True)
    thumb = thumbnail(checked)
    digest = hashlib.sha256(image).hexdigest()
    rows = []
    for i in range(SLOTS):
        at = week.week + timedelta(days=1, hours=9, minutes=12 * i + 3)
        capture_id = uuid.uuid4()
        base = f"{week.party.contract_id}/{week_label(week.week)}/{capture_id}/seed"
        bench.running.store.put(f"{base}-m0.webp", image, "image/webp")
        bench.running.store.put(f"{base}-thumb.webp", thumb, "image/webp")
        rows.append(
            Capture(
                capture_id=capture_id, contract_id=uuid.UUID(week.party.contract_id), kind="screenshot",
                captured_at=at, slot_start=slot_start(at), week_start=week.week, memo=week.memo, monitor_count=1,
                image_keys=[f"{base}-m0.webp"], thumbnail_key=f"{base}-thumb.webp", sha256=[digest],
                widths=[checked.width], heights=[checked.height], bytes_total=len(image),
            )
        )  # fmt: skip
    with session_scope(bench.running.database_url) as session:
        session.add_all(rows)
    return {str(row.capture_id) for row in rows}


async def start_weeks(client: Client, task_queue: str, weeks: list[SeededWeek]) -> None:
    for week in weeks:
        assert week.deadline is not None
        week_end = week.week + WEEK
        policy = DeadlinePolicy(
            edit_cutoff_after_week_s=0,  # long past: the week freezes and is submitted at once
            review_deadline_after_week_s=int((week.deadline - week_end).total_seconds()),
            response_window_s=600,
            security_period_s=1,
        )
        await client.start_workflow(
            TimesheetWorkflow.run,
            TimesheetInput(
                contract_id=week.party.contract_id, client_id=week.party.client_id,
                provider_id=week.party.provider_id, week_start=week.week, rate_cents=RATE, currency="USD",
                weekly_limit_hours=40, policy=policy, shape=TIMESHEET_SHAPE,
            ),
            id=week.workflow_id,
            task_queue=task_queue,
        )  # fmt: skip


async def final_views(client: Client, weeks: list[SeededWeek], seconds: float) -> list[TimesheetView | str]:
    """Each week's result once its workflow closes, or why there is none."""

    async def one(week: SeededWeek) -> TimesheetView | str:
        handle = client.get_workflow_handle(week.workflow_id, result_type=TimesheetView)
        try:
            return await asyncio.wait_for(handle.result(), timeout=seconds)
        except TimeoutError:
            view = await handle.query(TimesheetWorkflow.view)
            return f"still {view.status} {seconds:.0f}s after the run"
        except Exception as error:
            return f"failed: {error!r}"

    return list(await asyncio.gather(*(one(week) for week in weeks)))


# --- the agents --------------------------------------------------------------------------------------------


@dataclass
class Sent:
    contract_id: str
    sha256: str
    answers: list[int | str] = field(default_factory=list)  # status codes, or what went wrong


@dataclass
class AgentLog:
    sent: dict[str, Sent] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    abandoned: int = 0
    retried: int = 0
    doubled: int = 0
    repeated: int = 0


class Agent:
    def __init__(
        self, index: int, url: str, party: BenchParty, images: list[bytes], stop: threading.Event
    ) -> None:
        self.rng = random.Random(index)
        self.party = party
        self.images = images
        self.digests = [hashlib.sha256(image).hexdigest() for image in images]
        self.stop = stop
        self.log = AgentLog()
        headers = {"Authorization": f"Bearer {party.provider_token}"}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=60)
        self.second = httpx.Client(base_url=url, headers=headers, timeout=60)  # for the doubled sends

    def post(
        self, http: httpx.Client, capture_id: str, meta: str, image: bytes, *, abandon: bool = False
    ) -> None:
        began = time.perf_counter()
        try:
            response = http.post(
                f"/v1/contracts/{self.party.contract_id}/captures",
                data={"meta": meta},
                files=[("images", ("m0.webp", image, "image/webp"))],
                timeout=httpx.Timeout(60, read=ABANDON_AFTER_S) if abandon else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException:
            self.log.sent[capture_id].answers.append("abandoned" if abandon else "timeout")
            if abandon:
                self.log.abandoned += 1
            return
        except httpx.HTTPError as error:
            self.log.sent[capture_id].answers.append(type(error).__name__)
            return
        self.log.latencies.append(time.perf_counter() - began)
        self.log.sent[capture_id].answers.append(response.status_code)

    def capture(self) -> None:
        now = datetime.now(UTC)
        into_week = (now - week_start(now)).total_seconds()
        captured_at = now - timedelta(seconds=self.rng.uniform(0, max(0.0, min(3000.0, into_week - 1))))
        capture_id = str(uuid.uuid4())
        which = self.rng.randrange(len(self.images))
        image = self.images[which]
        meta = json.dumps(
            {"capture_id": capture_id, "captured_at": captured_at.isoformat(), "memo": "soak: feature work",
             "keyboard_events": self.rng.randint(0, 400), "mouse_events": self.rng.randint(0, 200)}
        )  # fmt: skip
        self.log.sent[capture_id] = Sent(self.party.contract_id, self.digests[which])
        roll = self.rng.random()
        if roll < 0.10:  # a flaky network: the client gives up while the server works, then retries
            self.post(self.http, capture_id, meta, image, abandon=True)
            self.log.retried += 1
            self.post(self.http, capture_id, meta, image)
        elif roll < 0.15:  # the same capture twice at once
            self.log.doubled += 1
            other = threading.Thread(target=self.post, args=(self.second, capture_id, meta, image))
            other.start()
            self.post(self.http, capture_id, meta, image)
            other.join()
        elif roll < 0.20:  # the answer was lost: sent again after it was stored
            self.log.repeated += 1
            self.post(self.http, capture_id, meta, image)
            self.post(self.http, capture_id, meta, image)
        else:
            self.post(self.http, capture_id, meta, image)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.capture()
        finally:
            self.http.close()
            self.second.close()


# --- the invariants ----------------------------------------------------------------------------------------


def keys_of(row: Capture) -> set[str]:
    return {*row.image_keys, *([row.thumbnail_key] if row.thumbnail_key else [])}


def check_captures(
    bench: BenchStack, sent: dict[str, Sent], seeded: set[str], contract_ids: list[str],
    orphans_expected: bool = False,
) -> list[str]:  # fmt: skip
    """What is wrong between the rows, the bucket and what the agents were told. A row naming an object the
    bucket lacks is always wrong. Objects no row names (orphans) are wrong too, unless ``orphans_expected``:
    an API process killed between its PUTs and its INSERT leaves them, the agent's retry stores the capture
    again under new keys, and the retention sweep removes them (``activities/retention.py``)."""
    problems: list[str] = []
    with session_scope(bench.running.database_url) as session:
        ids = [uuid.UUID(c) for c in contract_ids]
        rows = {
            str(r.capture_id): r
            for r in session.exec(select(Capture).where(col(Capture.contract_id).in_(ids)))
        }
    objects: dict[str, set[str]] = {}
    for key in bench.running.list_objects():
        parts = key.split("/")
        objects.setdefault(parts[2] if len(parts) > 3 else key, set()).add(key)

    orphans = sorted(k for capture_id, keys in objects.items() if capture_id not in rows for k in keys)
    orphans += sorted(k for c, row in rows.items() for k in objects.get(c, set()) - keys_of(row))
    if orphans and not orphans_expected:
        problems.append(f"{len(orphans)} objects no row names, e.g. {orphans[:3]}")
    for capture_id, row in rows.items():
        missing = keys_of(row) - objects.get(capture_id, set())
        if missing:
            problems.append(f"capture {capture_id}: the store lacks {sorted(missing)}, which its row names")
    stored_ok = [c for c, s in sent.items() if any(isinstance(a, int) and 200 <= a < 300 for a in s.answers)]
    for capture_id in stored_ok:
        found = rows.get(capture_id)
        if found is None:
            problems.append(f"capture {capture_id} was answered 2xx but has no row")
        elif found.sha256 != [sent[capture_id].sha256]:
            problems.append(f"capture {capture_id}: the row's sha256 is not that of the bytes sent")
    phantoms = set(rows) - set(sent) - seeded
    if phantoms:
        problems.append(f"{len(phantoms)} rows for captures no agent sent, e.g. {sorted(phantoms)[:3]}")

    def stored_digest(capture_id: str) -> tuple[str, str]:
        row = rows[capture_id]
        return capture_id, hashlib.sha256(bench.running.store.get(row.image_keys[0])).hexdigest()

    with ThreadPoolExecutor(8) as pool:
        present = [c for c in stored_ok if c in rows]
        for capture_id, digest in pool.map(stored_digest, present):
            if digest != rows[capture_id].sha256[0]:
                problems.append(f"capture {capture_id}: the stored image does not match its sha256")
    return problems


def check_money(bench: BenchStack, weeks: list[SeededWeek], views: list[TimesheetView | str]) -> list[str]:
    problems: list[str] = []
    with session_scope(bench.running.database_url) as session:
        if (total := ledger.sum_of_balances(session=session)) != 0:
            problems.append(f"the ledger sums to {total}, not zero")
        if duplicates := ledger.duplicate_keys(session=session):
            problems.append(f"duplicate idempotency keys: {duplicates[:3]}")
        ids = list({uuid.UUID(w.party.contract_id) for w in weeks})
        transfers = session.exec(select(LedgerTransfer).where(col(LedgerTransfer.contract_id).in_(ids))).all()
    moved = Counter((str(t.contract_id), t.week_start, t.kind) for t in transfers)
    for week, view in zip(weeks, views, strict=True):
        if isinstance(view, str) or view.status not in FINAL:
            problems.append(
                f"{week.workflow_id}: {view if isinstance(view, str) else view.status}, not final"
            )
            continue
        found = {
            kind: moved[(week.party.contract_id, week.week, kind)] for kind in ("charge", "guarantee_payout")
        }
        want = {
            "charge": ({"charge": 1, "guarantee_payout": 0}, "settled"),
            "payout": ({"charge": 0, "guarantee_payout": 1}, "settled"),
            "unpaid": ({"charge": 0, "guarantee_payout": 0}, "unpaid"),
        }[week.expected]
        if (found, view.status) != want:
            problems.append(
                f"{week.workflow_id}: {view.status} with {found}, expected {want[1]} with {want[0]}"
            )
    return problems


# --- the run -----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--weeks", type=int, default=2, help="past weeks settled per contract during the run")
    parser.add_argument("--images", type=int, default=8, help="distinct screens the agents cycle through")
    args = parser.parse_args()
    if args.agents < 1 or args.seconds <= 0 or not 1 <= args.weeks <= 4:
        parser.error("--agents >= 1, --seconds > 0 and 1 <= --weeks <= 4")

    print(f"making {args.images} screens of 1920x1080 ...", flush=True)
    images = [screen(seed) for seed in range(args.images)]
    with BenchStack() as bench:
        parties = [contract_for(bench, funded=i % 2 == 0) for i in range(args.agents)]
        this_week = week_start(datetime.now(UTC))
        weeks = [
            SeededWeek(
                party, this_week - (k + 2) * WEEK, funded=i % 2 == 0, memo="" if k % 2 else "Feature work"
            )
            for i, party in enumerate(parties)
            for k in range(args.weeks)
        ]
        seeded: set[str] = set()
        for n, week in enumerate(weeks):
            seeded |= seed_week(bench, week, images[n % len(images)])
        # Deadlines over the first 70 % of the run, so every week settles while the agents post.
        began = datetime.now(UTC) + timedelta(seconds=5)
        for n, week in enumerate(weeks):
            week.deadline = began + timedelta(seconds=args.seconds * 0.7 * n / len(weeks))
        task_queue = bench.running.settings.temporal_task_queue
        bench.run(lambda client: start_weeks(client, task_queue, weeks))
        print(
            f"{args.agents} agents posting for {args.seconds:.0f}s; {len(weeks)} weeks settling "
            f"({sum(w.expected == 'charge' for w in weeks)} funded, {sum(w.expected == 'payout' for w in weeks)} "
            f"guaranteed unfunded, {sum(w.expected == 'unpaid' for w in weeks)} unguaranteed unfunded) ...",
            flush=True,
        )

        stop = threading.Event()
        agents = [Agent(i, bench.running.api_url, p, images, stop) for i, p in enumerate(parties)]
        threads = [threading.Thread(target=agent.run, name=f"agent-{i}") for i, agent in enumerate(agents)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started

        print("agents stopped; waiting for every week to close and checking ...", flush=True)
        views = bench.run(lambda client: final_views(client, weeks, 90))
        sent = {capture_id: s for agent in agents for capture_id, s in agent.log.sent.items()}
        problems = check_captures(bench, sent, seeded, [p.contract_id for p in parties])
        problems += check_money(bench, weeks, views)
        with session_scope(bench.running.database_url) as session:
            ids = [uuid.UUID(p.contract_id) for p in parties]
            transfers = session.exec(
                select(LedgerTransfer).where(col(LedgerTransfer.contract_id).in_(ids))
            ).all()

    answers: Counter[int | str] = Counter(a for s in sent.values() for a in s.answers)
    stored = sum(1 for s in sent.values() if any(isinstance(a, int) and 200 <= a < 300 for a in s.answers))
    latencies = [lat for agent in agents for lat in agent.log.latencies]
    figure = stored / elapsed
    settled = [v for v in views if not isinstance(v, str) and v.status in FINAL]
    charges = [t for t in transfers if t.kind == "charge"]
    payouts = [t for t in transfers if t.kind == "guarantee_payout"]
    deadlines = {(w.party.contract_id, w.week): w.deadline for w in weeks}
    lateness = [
        (t.created_at - deadline).total_seconds()
        for t in charges + payouts
        if t.week_start and (deadline := deadlines.get((str(t.contract_id), t.week_start))) is not None
    ]
    errors = {str(k): v for k, v in sorted(answers.items(), key=str) if k not in (200, 201, "abandoned")}
    ms = 1000.0
    logs = [agent.log for agent in agents]
    print(
        f"{stored} captures stored in {elapsed:.1f}s by {args.agents} agents: {figure:.1f} captures/s; "
        f"{sum(len(s.answers) for s in sent.values())} requests "
        f"(retries after an abandoned attempt {sum(g.retried for g in logs)}, doubled {sum(g.doubled for g in logs)}, "
        f"repeated {sum(g.repeated for g in logs)})"
    )  # fmt: skip
    print(
        f"upload latency p50 {percentile(latencies, 50) * ms:.0f} ms, p95 {percentile(latencies, 95) * ms:.0f} ms"
    )
    print(f"answers: {dict(sorted(((str(k), v) for k, v in answers.items())))}; errors: {errors or 'none'}")
    print(
        f"weeks final: {len(settled)}/{len(weeks)} ({Counter(v.status for v in settled)}); charges {len(charges)}, "
        f"guarantee payouts {len(payouts)}; money moved after its deadline: "
        f"p50 {percentile(lateness, 50):.2f}s, max {max(lateness, default=float('nan')):.2f}s"
    )  # fmt: skip
    for problem in problems[:20]:
        print(f"BROKEN: {problem}")
    invariants = "held" if not problems else f"broken: {len(problems)} problem(s), e.g. {problems[0]}"
    print(f"invariants: {invariants}")
    print(
        json.dumps(
            {
                "bench": "soak",
                "figure": round(figure, 2),
                "unit": "captures/s",
                "seconds": round(elapsed, 1),
                "agents": args.agents,
                "captures": stored,
                "weeks_settled": len(settled),
                "charges": len(charges),
                "payouts": len(payouts),
                "p50_ms": round(percentile(latencies, 50) * ms, 1),
                "p95_ms": round(percentile(latencies, 95) * ms, 1),
                "errors": errors,
                "invariants": invariants,
            }
        )
    )
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
