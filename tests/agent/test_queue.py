"""The on-disk queue: a capture is either wholly there or not at all, across crashes and restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.durable import write_atomically
from agent.errors import QueueFull
from agent.queue import CaptureQueue, DamagedCapture, QueuedMeta
from tests.agent.processes import REPO


def meta(captured_at: datetime | None = None, memo: str = "checkout page") -> QueuedMeta:
    return QueuedMeta(
        capture_id=str(uuid.uuid4()),
        contract_id="contract-1",
        captured_at=captured_at or datetime.now(UTC),
        memo=memo,
        kind="screenshot",
        keyboard_events=12,
        mouse_events=30,
    )


def new_queue(tmp_path: Path, limit: int = 2**30) -> CaptureQueue:
    return CaptureQueue(tmp_path / "queue", limit_bytes=limit)


def test_a_queued_capture_reads_back_exactly_as_written(tmp_path: Path) -> None:
    queue = new_queue(tmp_path)
    original = meta()
    queue.put(original, [b"first monitor", b"second monitor"], [(1920, 1080), (1280, 1024)])

    (item,) = new_queue(tmp_path).pending()  # as a restarted agent sees it
    assert item.meta == original
    assert item.read_images() == [b"first monitor", b"second monitor"]
    assert [(i.width, i.height) for i in item.images] == [(1920, 1080), (1280, 1024)]


def test_pending_captures_come_oldest_first(tmp_path: Path) -> None:
    queue = new_queue(tmp_path)
    now = datetime.now(UTC)
    later, earlier = meta(now), meta(now - timedelta(minutes=12))
    queue.put(later, [b"b"], [(1, 1)])
    queue.put(earlier, [b"a"], [(1, 1)])
    assert [item.capture_id for item in queue.pending()] == [earlier.capture_id, later.capture_id]


def test_a_half_written_temp_file_is_ignored_and_cleared_after_a_restart(tmp_path: Path) -> None:
    queue = new_queue(tmp_path)
    kept = meta()
    queue.put(kept, [b"complete"], [(1, 1)])
    # What a crash in the middle of write_atomically leaves behind.
    leftover = queue.temp_folder / f"20261123T091200000000Z_{uuid.uuid4()}.capture.4242.partial"
    leftover.write_bytes(b'WPQ1\x00\x00\x01\x00{"meta": {"capt')

    restarted = new_queue(tmp_path)
    assert [item.capture_id for item in restarted.pending()] == [kept.capture_id]
    restarted.discard_leftovers()
    assert not list(restarted.temp_folder.iterdir())


def test_a_file_damaged_on_disk_is_set_aside_with_the_reason_never_sent(tmp_path: Path) -> None:
    queue = new_queue(tmp_path)
    item = queue.put(meta(), [b"x" * 1000], [(10, 10)])
    with item.path.open("r+b") as damaged:
        damaged.seek(-10, os.SEEK_END)
        damaged.write(b"0123456789")
    with pytest.raises(DamagedCapture, match="sha256"):
        item.read_images()

    truncated = queue.put(meta(), [b"y" * 1000], [(10, 10)])
    with truncated.path.open("r+b") as cut:
        cut.truncate(500)
    assert [i.capture_id for i in queue.pending()] == [item.capture_id]
    (rejected,) = queue.rejected()
    assert rejected.capture_id == truncated.capture_id and "size" in rejected.message


def test_the_queue_refuses_a_capture_beyond_its_disk_limit_and_warns_near_it(tmp_path: Path) -> None:
    queue = new_queue(tmp_path, limit=10_000)
    queue.put(meta(), [b"x" * 8800], [(1, 1)])
    assert queue.usage().near_limit
    with pytest.raises(QueueFull, match="queue_limit_bytes"):
        queue.put(meta(), [b"x" * 2000], [(1, 1)])
    assert len(queue.pending()) == 1


def test_a_capture_past_its_weeks_edit_cutoff_is_reported_as_late(tmp_path: Path) -> None:
    queue = new_queue(tmp_path)
    old = meta(datetime.now(UTC) - timedelta(days=15))
    fresh = meta()
    queue.put(old, [b"a"], [(1, 1)])
    queue.put(fresh, [b"b"], [(1, 1)])
    assert queue.usage().late == [old.capture_id]


def test_a_week_whose_cutoff_is_hours_away_is_flagged_at_risk(tmp_path: Path) -> None:
    queue = new_queue(tmp_path)
    sunday_night = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
    queue.put(meta(sunday_night), [b"a"], [(1, 1)])
    queue.put(meta(sunday_night + timedelta(minutes=30)), [b"b"], [(1, 1)])
    cutoff = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # Monday noon after the week
    assert queue.usage(now=cutoff - timedelta(hours=3)).at_risk == {"2026-11-23": (2, cutoff)}
    assert queue.usage(now=cutoff - timedelta(hours=30)).at_risk == {}


def test_rejected_captures_keep_the_servers_message_and_can_be_queued_again(tmp_path: Path) -> None:
    queue = new_queue(tmp_path)
    item = queue.put(meta(), [b"a"], [(1, 1)])
    queue.reject(item, 422, "captured_at is outside the contract")
    assert queue.pending() == []
    (rejected,) = queue.rejected()
    assert (rejected.status, rejected.message) == (422, "captured_at is outside the contract")
    assert rejected.meta == item.meta

    assert queue.requeue_rejected() == 1
    assert [i.capture_id for i in queue.pending()] == [item.capture_id]
    assert queue.rejected() == []


def test_discarding_a_capture_removes_it_for_good(tmp_path: Path) -> None:
    queue = new_queue(tmp_path)
    item = queue.put(meta(), [b"a"], [(1, 1)])
    assert queue.discard(item.capture_id)
    assert new_queue(tmp_path).pending() == []
    assert not queue.discard(item.capture_id)


def test_an_interrupted_atomic_write_leaves_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "credentials.json"
    write_atomically(target, b"old")
    with pytest.raises(TypeError):
        write_atomically(target, [b"new ", "not bytes"])  # type: ignore[list-item]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["credentials.json"]


WRITER = textwrap.dedent(
    """
    import sys, uuid
    from datetime import UTC, datetime
    from pathlib import Path
    from agent.queue import QueuedMeta, CaptureQueue

    queue = CaptureQueue(Path(sys.argv[1]), limit_bytes=2**34)
    image = bytes(range(256)) * 4096  # 1 MiB, so a kill often lands mid-write
    while True:
        meta = QueuedMeta(str(uuid.uuid4()), "contract-1", datetime.now(UTC), "memo", "screenshot")
        queue.put(meta, [image, image[::-1]], [(1, 1), (1, 1)])
        print(meta.capture_id, flush=True)
    """
)


def test_a_writer_killed_with_sigkill_leaves_only_complete_captures(tmp_path: Path) -> None:
    folder = tmp_path / "queue"
    acknowledged: list[str] = []
    for kill_after in (0.15, 0.25, 0.4):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        time.sleep(kill_after)
        writer.send_signal(signal.SIGKILL)
        out, _ = writer.communicate(timeout=10)
        acknowledged += out.split()

    queue = CaptureQueue(folder, limit_bytes=2**34)
    queue.discard_leftovers()
    items = queue.pending()
    stored = {item.capture_id for item in items}
    assert acknowledged, "the writer never finished a capture"
    # Every capture the writer was told is stored survived; at most one more per kill (stored, not yet
    # acknowledged); and every file is whole.
    assert set(acknowledged) <= stored
    assert len(stored) - len(acknowledged) <= 3
    for item in items:
        assert [len(content) for content in item.read_images()] == [2**20, 2**20]
    assert queue.rejected() == []
    assert not list(queue.temp_folder.iterdir())


def test_the_queue_file_header_is_json_with_the_upload_metadata(tmp_path: Path) -> None:
    queue = new_queue(tmp_path)
    item = queue.put(meta(memo="ünïcode memo"), [b"img"], [(2, 2)])
    raw = item.path.read_bytes()
    assert raw.startswith(b"WPQ1")
    length = int.from_bytes(raw[4:8], "big")
    header = json.loads(raw[8 : 8 + length])
    assert header["meta"]["memo"] == "ünïcode memo"
    assert datetime.fromisoformat(header["meta"]["captured_at"]).utcoffset() == timedelta(
        0
    )  # UTC, with its offset
    assert raw[8 + length :] == b"img"


def test_local_thumbnails_older_than_five_weeks_are_pruned(tmp_path: Path) -> None:
    from agent.tracker import prune_thumbnails

    old, recent = tmp_path / "old-1.webp", tmp_path / "recent-1.webp"
    old.write_bytes(b"x")
    recent.write_bytes(b"y")
    forty_days_ago = time.time() - 40 * 86400
    os.utime(old, (forty_days_ago, forty_days_ago))
    assert prune_thumbnails(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["recent-1.webp"]
