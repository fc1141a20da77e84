"""Faults injected for real: the stack's own processes (the embedded SeaweedFS, the embedded PostgreSQL, the
Temporal dev server, the API, the worker) are stopped, restarted or SIGKILLed while work is in flight.

The rules:
- the object store down: an upload is refused with 503 and ``Retry-After`` and leaves no row; once the
  store is back the same upload is stored once; the real agent keeps its captures queued meanwhile and
  delivers each exactly once afterwards;
- PostgreSQL restarted mid-ingest: every upload answered 201 has its row and its objects, every upload
  answered 503 left neither, and its retry is stored once the database is back;
- the Temporal dev server restarted (it persists to its SQLite file): a week waiting for its review
  deadline is auto-approved and charged on time, once;
- the API restarted while the agent uploads: every capture the agent took is stored exactly once;
- the worker SIGKILLed in the review window, a new one started after the deadline: auto-approved and
  charged once, as soon as the new worker gets the week's task.

Throughout: no row without its objects and no object without its row.

The module runs its own stack (the tests kill its parts), with the embedded PostgreSQL so that the
database server is a process this test may stop and start.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlmodel import select
from temporalio.client import WorkflowHandle
from temporalio.testing import ActivityEnvironment

from activities.retention import RetentionActivities
from deploy.stack import Child, EmbeddedStack, tcp_open
from deploy.stack import wait_for as wait_ready
from domain.messages import TimesheetView
from domain.retention import OrphanPage
from store import ledger
from store.db import ping, session_scope
from store.models import Capture, LedgerTransfer
from tests.agent.displays import XDisplay, xvfb
from tests.e2e.test_agent_e2e import AgentUnderTest, wait_for
from tests.e2e.test_lifecycle_races import charges, past_week, start_week, temporal, until_status
from tests.harness import RunningStack, stack_settings
from tests.workflows.conftest import ledger_invariants, make_week

pytestmark = pytest.mark.e2e

ON_TIME = timedelta(seconds=10)  # "on time": the charge within this long of the moment it became due
STICKY_TIMEOUT = timedelta(seconds=10)  # temporalio Worker's sticky_queue_schedule_to_start_timeout


# --- the stack, and bringing its parts back ------------------------------------------------------------


@pytest.fixture(scope="module")
def faulty() -> Iterator[RunningStack]:
    # Not under pytest's temporary root: a pytest starting elsewhere resets that folder to 0700, and a
    # PostgreSQL restarted as its own system user (under root) could no longer reach its data.
    data_dir = Path(tempfile.mkdtemp(prefix="workproof-faults-"))
    stack = EmbeddedStack(stack_settings(data_dir, None), quiet=True)  # embedded PostgreSQL
    try:
        stack.start()
    except Exception:
        for log in sorted((data_dir / "logs").glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        raise
    try:
        yield RunningStack(stack)
    finally:
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def every_part_running(faulty: RunningStack) -> Iterator[None]:
    """A test that fails half-way must not leave a part down for the next one."""
    yield
    for child in faulty.stack.children:
        if not child.alive():
            bring_back(faulty, child)


def bring_back(running: RunningStack, child: Child) -> float:
    """Start a stopped part and wait until it serves again; answers how long that took."""
    began = time.monotonic()
    settings = running.stack.settings

    def database_answers() -> bool:
        ping(running.database_url)
        return True

    def worker_healthy() -> bool:
        url = f"http://127.0.0.1:{settings.worker_health_port}/health"
        return httpx.get(url, timeout=1).status_code == 200

    ready = {
        "postgres": database_answers,
        "objects": lambda: running.store.ping() >= 0,  # a signed request answered, not just a port open
        "smtp": lambda: tcp_open("127.0.0.1", settings.embedded_smtp_port),
        "temporal": lambda: tcp_open("127.0.0.1", settings.embedded_temporal_port),
        "api": lambda: api_healthy(running),
        "worker": worker_healthy,
    }[child.name]
    child.start()
    wait_ready(child.name, ready, 60, child)
    return time.monotonic() - began


def part(running: RunningStack, name: str) -> Child:
    found = {
        "postgres": running.stack.postgres,
        "objects": running.stack.s3,
        "temporal": running.stack.temporal,
        "api": running.stack.api,
        "worker": running.stack.worker,
    }[name]
    assert found is not None and found.alive(), f"{name} is not running"
    return found


# --- captures over HTTP --------------------------------------------------------------------------------


@dataclass
class Party:
    contract_id: str
    provider_token: str


def new_party(running: RunningStack) -> Party:
    provider_id, provider_token = running.create_user("provider")
    _, client_token = running.create_user("client")
    return Party(running.create_contract(client_token, provider_id, work_view=True), provider_token)


def webp(seed: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((480, 300), 40 + seed).convert("RGB").save(out, "WEBP", quality=60)
    return out.getvalue()


def upload(http: httpx.Client, party: Party, capture_id: str, image: bytes) -> httpx.Response:
    meta = {"capture_id": capture_id, "captured_at": datetime.now(UTC).isoformat(), "memo": "fault injection"}
    return http.post(
        f"/v1/contracts/{party.contract_id}/captures",
        data={"meta": json.dumps(meta)},
        files=[("images", ("m0.webp", image, "image/webp"))],
    )


def rows_of(running: RunningStack, contract_id: str) -> dict[str, Capture]:
    with session_scope(running.database_url) as session:
        found = session.exec(select(Capture).where(Capture.contract_id == uuid.UUID(contract_id))).all()
    return {str(row.capture_id): row for row in found}


def keys_of(row: Capture) -> set[str]:
    return {*row.image_keys, *([row.thumbnail_key] if row.thumbnail_key else [])}


def objects_by_capture(running: RunningStack, contract_id: str) -> dict[str, set[str]]:
    """``{contract_id}/{week}/{capture_id}/...``: the stored objects grouped by capture id."""
    grouped: dict[str, set[str]] = {}
    for key in running.list_objects(f"{contract_id}/"):
        grouped.setdefault(key.split("/")[2], set()).add(key)
    return grouped


def assert_rows_and_objects_match(running: RunningStack, contract_id: str) -> dict[str, Capture]:
    """No row without its objects, no object without its row; answers the rows."""
    rows = rows_of(running, contract_id)
    objects = objects_by_capture(running, contract_id)
    orphans = {capture_id: keys for capture_id, keys in objects.items() if capture_id not in rows}
    assert orphans == {}, f"objects without a row: {orphans}"
    for capture_id, row in rows.items():
        assert objects.get(capture_id, set()) == keys_of(row), f"capture {capture_id}: row and objects differ"
    return rows


# --- the agent -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def display() -> Iterator[XDisplay]:
    with xvfb(1280, 720) as screen:
        yield screen


@pytest.fixture
def agent(faulty: RunningStack, tmp_path: Path, display: XDisplay) -> Iterator[AgentUnderTest]:
    under_test = AgentUnderTest(faulty, tmp_path / "agent", display)
    try:
        yield under_test
    finally:
        if under_test.process is not None:
            under_test.kill()


def taken_by(agent: AgentUnderTest) -> set[str]:
    """The agent's own record of the captures it took: one local preview per capture and monitor."""
    return {path.name.rsplit("-", 1)[0] for path in agent.paths.thumbnails_folder.glob("*.webp")}


def last_upload_error(agent: AgentUnderTest) -> str:
    try:
        state = json.loads(agent.paths.uploader_state_file.read_text())
    except (OSError, ValueError):
        return ""
    return str(state.get("last_error") or "")


def assert_delivered_exactly_once(agent: AgentUnderTest, stopped_output: str) -> set[str]:
    taken = taken_by(agent)
    assert f"stopped: {len(taken)} capture(s) this session" in stopped_output, (stopped_output, len(taken))
    listed = [record["capture_id"] for record in agent.on_server()]
    assert len(listed) == len(set(listed)), "a capture is listed twice"
    assert set(listed) == taken, f"lost {taken - set(listed)}, unknown {set(listed) - taken}"
    rows = assert_rows_and_objects_match(agent.stack, agent.contract_id)
    for capture_id in taken:
        assert len(rows[capture_id].image_keys) == 1, f"capture {capture_id} stored more than once"
    assert agent.rejected() == []
    return taken


# --- the object store ----------------------------------------------------------------------------------


def test_an_upload_while_the_object_store_is_down_gets_503_and_succeeds_once_it_is_back(
    faulty: RunningStack,
) -> None:
    party = new_party(faulty)
    capture_id, image = str(uuid.uuid4()), webp(1)
    objects = part(faulty, "objects")
    with faulty.client(party.provider_token) as http:
        before = upload(http, party, str(uuid.uuid4()), webp(2))
        assert before.status_code == 201, before.text
        objects.stop()
        try:
            refused = upload(http, party, capture_id, image)
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["Retry-After"]) > 0
            assert "retry" in refused.json()["detail"]
            assert capture_id not in rows_of(faulty, party.contract_id)
        finally:
            bring_back(faulty, objects)
        stored = upload(http, party, capture_id, image)
        again = upload(http, party, capture_id, image)
    assert stored.status_code == 201, stored.text
    assert again.status_code == 200 and again.json()["created_at"] == stored.json()["created_at"]
    rows = assert_rows_and_objects_match(faulty, party.contract_id)
    assert set(rows) == {before.json()["capture_id"], capture_id}


@pytest.mark.display
def test_the_agent_keeps_captures_while_the_object_store_is_down_and_delivers_each_once(
    agent: AgentUnderTest,
) -> None:
    agent.start("object store outage")
    wait_for(lambda: len(agent.on_server()) >= 1, 30, "a first capture on the server")
    objects = part(agent.stack, "objects")
    objects.stop()
    try:
        wait_for(lambda: len(agent.queued()) >= 3, 30, "three captures queued while the store is down")
        wait_for(lambda: "(503)" in last_upload_error(agent), 15, "the agent told to retry later")
        held = agent.queued()
    finally:
        bring_back(agent.stack, objects)
    wait_for(lambda: held <= {r["capture_id"] for r in agent.on_server()}, 30, "the backlog delivered")
    output = agent.stop()
    wait_for(lambda: not agent.queued(), 10, "an empty queue")

    assert held <= assert_delivered_exactly_once(agent, output)


# --- PostgreSQL ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    capture_id: str
    image: bytes
    status: int  # 0: no HTTP answer at all
    retry_after: str | None
    sent: float  # time.monotonic()
    answered: float


@contextmanager
def frozen(child: Child) -> Iterator[None]:
    """The part hangs (SIGSTOP) and resumes (SIGCONT): requests to it wait, mid-call."""
    assert child.process is not None
    os.killpg(child.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(child.process.pid, signal.SIGCONT)


def test_postgresql_restarted_mid_ingest_leaves_every_upload_either_whole_or_absent(
    faulty: RunningStack,
) -> None:
    party = new_party(faulty)
    images = [webp(seed) for seed in range(4)]
    answers: list[Answer] = []
    stop = threading.Event()

    def keep_uploading(index: int) -> None:
        with faulty.client(party.provider_token) as http:
            n = 0
            while not stop.is_set():
                capture_id, image = str(uuid.uuid4()), images[(index + n) % len(images)]
                n += 1
                sent = time.monotonic()
                try:
                    response = upload(http, party, capture_id, image)
                    status, retry_after = response.status_code, response.headers.get("Retry-After")
                except httpx.HTTPError:
                    status, retry_after = 0, None
                answers.append(Answer(capture_id, image, status, retry_after, sent, time.monotonic()))
                if status != 201:
                    time.sleep(0.2)  # a polite client: not a busy loop against a server that is down

    uploaders = [threading.Thread(target=keep_uploading, args=(i,)) for i in range(3)]
    for thread in uploaders:
        thread.start()
    postgres, objects = part(faulty, "postgres"), part(faulty, "objects")
    try:
        wait_for(lambda: sum(a.status == 201 for a in answers) >= 10, 30, "uploads flowing")
        # Every uploader is made to be mid-ingest when the database goes: its images checked and being
        # written to a store that hangs, its row not yet written. Then the store resumes.
        with frozen(objects):
            time.sleep(1)
            stopping_at = time.monotonic()
            postgres.stop()  # fast shutdown: the API's open connections are cut
        thawed_at = time.monotonic()
        time.sleep(1)
        bring_back(faulty, postgres)
        back = len(answers)
        wait_for(lambda: sum(a.status == 201 for a in answers[back:]) >= 10, 30, "uploads flowing again")
    finally:
        stop.set()
        for thread in uploaders:
            thread.join(30)

    statuses = {a.status for a in answers}
    assert statuses <= {201, 503}, f"answers other than stored or retry-later: {statuses}"
    failed = [a for a in answers if a.status == 503]
    assert all(a.retry_after and int(a.retry_after) > 0 for a in failed)
    cut = [a for a in answers if a.sent < stopping_at and a.answered > thawed_at]
    assert [a.status for a in cut] == [503] * len(uploaders), "each uploader was cut off mid-ingest"
    rows = rows_of(faulty, party.contract_id)
    objects_stored = objects_by_capture(faulty, party.contract_id)
    for answer in answers:
        if answer.status == 201:
            row = rows[answer.capture_id]
            assert objects_stored[answer.capture_id] == keys_of(row)
            assert faulty.object_sha256(row.image_keys[0]) == row.sha256[0]
    left_rows = {a.capture_id for a in failed if a.capture_id in rows}
    assert left_rows == set(), f"uploads answered 503 that left a row: {left_rows}"
    # Objects of an upload whose commit could not be confirmed are kept on purpose (removing them could
    # strip a row that did land of its images); the retention sweep's orphan pass removes them.
    sweep = RetentionActivities(faulty.database_url, faulty.store)
    ActivityEnvironment().run(
        sweep.sweep_orphan_objects, OrphanPage(modified_before=datetime.now(UTC) + timedelta(seconds=1))
    )
    orphans = set(objects_by_capture(faulty, party.contract_id)) - set(rows_of(faulty, party.contract_id))
    assert orphans == set(), f"objects without a row after the sweep: {orphans}"

    with faulty.client(party.provider_token) as http:
        retries = [upload(http, party, a.capture_id, a.image).status_code for a in failed]
    assert retries == [201] * len(failed)
    rows = assert_rows_and_objects_match(faulty, party.contract_id)
    assert set(rows) == {a.capture_id for a in answers}
    print(f"uploads: {len(answers)}, answered 503 during the restart: {len(failed)}")


# --- Temporal and the worker ---------------------------------------------------------------------------


def api_healthy(running: RunningStack) -> bool:
    return httpx.get(f"{running.api_url}/health", timeout=5).status_code == 200


def charge_of(running: RunningStack, contract_id: str) -> LedgerTransfer:
    with session_scope(running.database_url) as session:
        found = [
            t
            for t in ledger.transfers_for(session=session, contract_id=uuid.UUID(contract_id))
            if t.kind == "charge"
        ]
    assert len(found) == 1, found
    return found[0]


async def until_only_the_deadline_is_pending(handle: WorkflowHandle, seconds: float = 20) -> None:
    """The week waits on its review timer alone (the submission's notice sent): a kill now lands in the
    wait, not in an activity (which would be retried only after its start-to-close timeout)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not (await handle.describe()).raw_description.pending_activities:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id} still runs an activity")


async def test_a_week_in_review_is_auto_approved_on_time_across_a_temporal_restart(
    faulty: RunningStack,
) -> None:
    w = make_week(faulty.database_url, past_week())
    w.slots(day=1, hour=9, count=3)
    w.fund(10_000)
    handle = await start_week(faulty, w, deadline_in=12)
    view = await until_status(handle, "submitted")
    server = part(faulty, "temporal")
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(bring_back, faulty, server)
    assert datetime.now(UTC) < view.review_deadline, "the restart outlasted the review window"
    # The API's Temporal client finds the new server by itself, as the worker's does (below).
    await asyncio.to_thread(wait_for, lambda: api_healthy(faulty), 30, "the API reaching Temporal again")

    fresh = (await temporal(faulty)).get_workflow_handle(handle.id, result_type=TimesheetView)
    final = await asyncio.wait_for(fresh.result(), timeout=60)
    assert final.status == "settled" and final.charged_cents == 3600
    assert any("review deadline passed" in line for line in final.history), final.history
    assert charges(faulty, w) == {"hold": 1, "charge": 1, "hold_release": 1, "release": 1}
    charged_at = charge_of(faulty, w.contract_id).created_at
    assert view.review_deadline <= charged_at <= view.review_deadline + ON_TIME, (
        charged_at,
        view.review_deadline,
    )
    ledger_invariants(faulty.database_url)


async def test_a_worker_killed_in_the_review_window_is_replaced_and_the_week_charged_once(
    faulty: RunningStack,
) -> None:
    w = make_week(faulty.database_url, past_week())
    w.slots(day=2, hour=10, count=4)
    w.fund(10_000)
    handle = await start_week(faulty, w, deadline_in=4)
    view = await until_status(handle, "submitted")
    await until_only_the_deadline_is_pending(handle)
    worker = part(faulty, "worker")
    await asyncio.to_thread(worker.kill)
    # The deadline passes with no worker at all; a new one starts afterwards.
    await asyncio.sleep((view.review_deadline - datetime.now(UTC)).total_seconds() + 1)
    await asyncio.to_thread(bring_back, faulty, worker)
    back_at = datetime.now(UTC)

    final = await asyncio.wait_for(handle.result(), timeout=60)
    assert final.status == "settled" and final.charged_cents == 4800
    assert any("review deadline passed" in line for line in final.history), final.history
    assert charges(faulty, w) == {"hold": 1, "charge": 1, "hold_release": 1, "release": 1}
    charged_at = charge_of(faulty, w.contract_id).created_at
    # The timer fired while no worker ran: its task went to the dead worker's sticky queue first and
    # reaches the new worker when the sticky schedule-to-start timeout ends.
    assert view.review_deadline < charged_at <= back_at + STICKY_TIMEOUT + ON_TIME, (charged_at, back_at)
    ledger_invariants(faulty.database_url)


# --- the API -------------------------------------------------------------------------------------------


@pytest.mark.display
def test_the_api_restarted_while_the_agent_uploads_stores_every_capture_exactly_once(
    agent: AgentUnderTest,
) -> None:
    agent.start("api restarts")
    api = part(agent.stack, "api")
    for _ in range(3):
        before = agent.queued() | {r["capture_id"] for r in agent.on_server()}
        # Just after a capture is queued its upload starts: the API stops while it is on its way.
        wait_for(lambda: bool(agent.queued() - before), 30, "a new capture queued")  # noqa: B023
        api.stop()
        time.sleep(1.5)  # a slot or so with nobody answering
        bring_back(agent.stack, api)
    wait_for(lambda: not agent.queued(), 30, "the backlog delivered")
    output = agent.stop()
    wait_for(lambda: not agent.queued(), 10, "an empty queue")

    assert len(assert_delivered_exactly_once(agent, output)) >= 3
