"""Benchmark: the time to serve the client's Work View of a full 40-hour week (200 slots).

- figure: p95 wall time of ``GET /contracts/{id}/week/{week}`` through the running API (HTTP on
  loopback, a signed-in session): the submitted week is read from its snapshot, the workflow is asked
  for its state, 200 slots are laid out with signed thumbnail and image links, and the page rendered;
- floor: p95 of ``GET /v1/contracts/{id}/timesheets/{week}`` for the same week, same run: the same
  database reads and workflow query, answered as JSON (what the page adds is its layout and HTML).

Also reported: the server's own time (``Server-Timing``) and an open week of 200 slots computed live
from its captures. Many repetitions after a warm-up. It starts its own stack on free ports.

Target: figure p95 < 150 ms. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from PIL import Image, ImageDraw
from sqlmodel import select
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from deploy.stack import EmbeddedStack
from domain.calendar import slot_start, week_label, week_start
from domain.messages import TIMESHEET_SHAPE, DeadlinePolicy, TimesheetInput, TimesheetView
from store.db import session_scope
from store.images import check_image, thumbnail
from store.models import Capture, Contract, WorkViewInterval
from tests.harness import RunningStack, drop_database, local_postgres_url, stack_settings
from workflows.attributes import CLIENT_ID, CONTRACT_ID, PROVIDER_ID, TIMESHEET_STATUS, WEEK_START
from workflows.client import connect
from workflows.timesheet import TimesheetWorkflow, timesheet_workflow_id

REPO = Path(__file__).resolve().parents[1]

RATE = 6000
TARGET_P95_MS = 150.0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class BenchParty:
    contract_id: str
    client_id: str
    client_token: str
    provider_id: str
    provider_token: str


class BenchStack:
    """The whole stack on free ports in a temporary folder, and contracts to measure with."""

    def __enter__(self) -> BenchStack:
        self.folder = Path(tempfile.mkdtemp(prefix="workproof-bench-"))
        self.database_url = local_postgres_url()
        self.stack = EmbeddedStack(stack_settings(self.folder, self.database_url), quiet=True)
        print("starting the stack ...", flush=True)
        self.stack.start()
        self.running = RunningStack(self.stack)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stack.stop()
        if self.database_url:
            drop_database(self.database_url)
        shutil.rmtree(self.folder, ignore_errors=True)

    def party(self, backdate: timedelta, fund: bool = True) -> BenchParty:
        """A contract accepted through the API, its Work View backdated so earlier captures count; the
        client's balance funded unless ``fund`` is False."""
        client_id, client_token = self.running.create_user("client")
        provider_id, provider_token = self.running.create_user("provider")
        contract_id = self.running.create_contract(
            client_token, provider_id, rate_cents=RATE, title="Bench contract"
        )
        if fund:
            self.running.fund(client_id, 10_000_000)
        this_week = timesheet_workflow_id(contract_id, week_start(datetime.now(UTC)))
        self.run(lambda client: wait_for(lambda: client.get_workflow_handle(this_week).describe()))
        since = slot_start(datetime.now(UTC) - backdate)
        with session_scope(self.running.database_url) as session:
            contract = session.get(Contract, uuid.UUID(contract_id))
            assert contract is not None
            contract.accepted_at = since
            for interval in session.exec(
                select(WorkViewInterval).where(WorkViewInterval.contract_id == contract.id)
            ):
                interval.start = since
                session.add(interval)
        return BenchParty(contract_id, client_id, client_token, provider_id, provider_token)

    def run(self, work: Callable[[Any], Any]) -> Any:
        async def go() -> Any:
            client = await connect(self.stack.temporal_address)
            return await work(client)

        return asyncio.run(go())

    @contextmanager
    def web_session(self, token: str) -> Iterator[httpx.Client]:
        """An HTTP client signed in to the pages (a session cookie)."""
        with httpx.Client(base_url=self.running.api_url, timeout=30) as http:
            form = http.get("/login")
            match = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert match
            signed = http.post("/login", data={"token": token, "csrf": match[1], "next": "/"})
            assert signed.status_code == 303, signed.text
            yield http


async def wait_for(probe: Callable[[], Any], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await probe()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def fill_week(bench: BenchStack, party: BenchParty, week: datetime) -> int:
    """A full 40-hour week: Monday to Friday, 09:00-17:00 UTC, every slot documented with a memo."""
    picture = Image.new("RGB", (1920, 1080), (240, 242, 245))
    ImageDraw.Draw(picture).text((40, 40), "bench screen", fill=(20, 20, 20))
    out = io.BytesIO()
    picture.save(out, "WEBP", quality=60)
    image = out.getvalue()
    checked = check_image(image, index=0, max_bytes=8 << 20, max_pixels=40_000_000)
    base = f"{party.contract_id}/{week_label(week)}/bench"
    store = bench.running.store
    store.put(f"{base}-m0.webp", image, "image/webp")
    store.put(f"{base}-thumb.webp", thumbnail(checked), "image/webp")
    rows = []
    for day in range(5):
        for hour in range(9, 17):
            for slot in range(5):
                at = week + timedelta(days=day, hours=hour, minutes=12 * slot + 5, seconds=slot * 7)
                rows.append(
                    Capture(
                        capture_id=uuid.uuid4(), contract_id=uuid.UUID(party.contract_id), kind="screenshot",
                        captured_at=at, slot_start=slot_start(at), week_start=week,
                        memo=f"Feature work: module {day}-{hour} step {slot}, reviewing the pull request",
                        monitor_count=1, image_keys=[f"{base}-m0.webp"], thumbnail_key=f"{base}-thumb.webp",
                        sha256=["0" * 64], widths=[1920], heights=[1080], bytes_total=len(image),
                        keyboard_events=100 + slot, mouse_events=40 + hour,
                    )
                )  # fmt: skip
    with session_scope(bench.running.database_url) as session:
        session.add_all(rows)
    return len(rows)


async def submit(client: Any, bench: BenchStack, party: BenchParty, week: datetime) -> None:
    now = datetime.now(UTC)
    review_after = (now + timedelta(days=2)) - (week + timedelta(days=7))
    handle = await client.start_workflow(
        TimesheetWorkflow.run,
        TimesheetInput(
            contract_id=party.contract_id, client_id=party.client_id, provider_id=party.provider_id,
            week_start=week, rate_cents=RATE, currency="USD", weekly_limit_hours=40,
            policy=DeadlinePolicy(review_deadline_after_week_s=int(review_after.total_seconds())),
            shape=TIMESHEET_SHAPE,
        ),
        id=timesheet_workflow_id(party.contract_id, week),
        task_queue=bench.running.settings.temporal_task_queue,
        result_type=TimesheetView,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(CONTRACT_ID, party.contract_id), SearchAttributePair(PROVIDER_ID, party.provider_id),
            SearchAttributePair(CLIENT_ID, party.client_id), SearchAttributePair(WEEK_START, week),
            SearchAttributePair(TIMESHEET_STATUS, "open"),
        ]),
    )  # fmt: skip

    async def submitted() -> bool:
        view = await handle.query(TimesheetWorkflow.view)
        if view.status != "submitted":
            raise RuntimeError(view.status)
        return True

    await wait_for(submitted)


def measure(http: httpx.Client, url: str, repeat: int, warmup: int) -> tuple[list[float], list[float]]:
    """(wall seconds, server milliseconds from Server-Timing) of ``repeat`` GETs after ``warmup``."""
    for _ in range(warmup):
        assert http.get(url).status_code == 200
    walls: list[float] = []
    server: list[float] = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = http.get(url)
        walls.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text[:300]
        timing = re.search(r"dur=([0-9.]+)", response.headers.get("server-timing", ""))
        if timing:
            server.append(float(timing[1]))
    return walls, server


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    ms = 1000.0
    with BenchStack() as bench:
        party = bench.party(backdate=timedelta(days=30))
        submitted = week_start(datetime.now(UTC)) - timedelta(days=14)
        live = submitted + timedelta(days=7)  # no workflow: computed live from its captures
        slots = fill_week(bench, party, submitted)
        fill_week(bench, party, live)
        bench.run(lambda client: submit(client, bench, party, submitted))
        page_url = f"/contracts/{party.contract_id}/week/{week_label(submitted)}"
        with bench.web_session(party.client_token) as http:
            first = http.get(page_url)
            cells = first.text.count('<td class="slot guaranteed')
            if first.status_code != 200 or cells != slots:
                raise SystemExit(
                    f"the page is not the expected week: HTTP {first.status_code}, {cells} slots"
                )
            print(
                f"a {slots}-slot week, {len(first.content) // 1024} KB of HTML; measuring {args.repeat} GETs ...",
                flush=True,
            )
            page_wall, page_server = measure(http, page_url, args.repeat, args.warmup)
            live_wall, live_server = measure(
                http,
                f"/contracts/{party.contract_id}/week/{week_label(live)}",
                args.repeat // 3,
                args.warmup // 3,
            )
        with bench.running.client(party.client_token) as api:
            api_wall, _ = measure(
                api,
                f"/v1/contracts/{party.contract_id}/timesheets/{week_label(submitted)}",
                args.repeat,
                args.warmup,
            )

    figure, floor = percentile(page_wall, 95) * ms, percentile(api_wall, 95) * ms
    print(f"floor (the same week as JSON): p50 {percentile(api_wall, 50) * ms:.1f} ms, p95 {floor:.1f} ms")
    print(f"Work View page, submitted week: p50 {percentile(page_wall, 50) * ms:.1f} ms, p95 {figure:.1f} ms "
          f"(server p95 {percentile(page_server, 95):.1f} ms)")  # fmt: skip
    print(f"Work View page, open week computed live: p50 {percentile(live_wall, 50) * ms:.1f} ms, "
          f"p95 {percentile(live_wall, 95) * ms:.1f} ms (server p95 {percentile(live_server, 95):.1f} ms)")  # fmt: skip
    print(
        f"ratio {figure / floor:.2f}; target p95 < {TARGET_P95_MS:.0f} ms: {'met' if figure < TARGET_P95_MS else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "bench": "workview",
                "figure": round(figure, 1),
                "unit": "ms",
                "floor": round(floor, 1),
                "ratio": round(figure / floor, 2),
                "target_p95_ms": TARGET_P95_MS,
                "meets_target": figure < TARGET_P95_MS,
                "slots": slots,
                "repeat": args.repeat,
                "p50_ms": round(percentile(page_wall, 50) * ms, 1),
                "server_p95_ms": round(percentile(page_server, 95), 1),
                "live_week_p95_ms": round(percentile(live_wall, 95) * ms, 1),
                "mean_ms": round(statistics.fmean(page_wall) * ms, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
