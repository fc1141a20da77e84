"""The Uploader against an HTTP server: delivered once, retried when it makes sense, set aside when not."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from agent.api import UploadImage, WorkproofClient
from agent.config import load_credentials
from agent.queue import CaptureQueue, QueuedCapture, QueuedMeta
from agent.uploader import Backoff, Outcome, Uploader, UploaderState
from tests.agent.conftest import Provider


def queue_capture(
    provider: Provider, images: list[bytes] | None = None, memo: str = "checkout page"
) -> QueuedCapture:
    queue = CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30)
    images = [b"RIFF-monitor-1", b"RIFF-monitor-2"] if images is None else images
    meta = QueuedMeta(
        str(uuid.uuid4()),
        provider.contract_id,
        datetime.now(UTC),
        memo,
        "screenshot" if images else "tracked",
        keyboard_events=5,
        mouse_events=9,
    )
    return queue.put(meta, images, [(1, 1)] * len(images))


def uploader_for(provider: Provider, backoff: Backoff | None = None) -> Uploader:
    queue = CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30)
    return Uploader(
        queue,
        lambda: load_credentials(provider.paths),
        provider.paths.uploader_state_file,
        backoff=backoff or Backoff(0.05, 0.2),
    )


def test_a_delivered_capture_is_on_the_server_byte_for_byte_and_leaves_the_queue(provider: Provider) -> None:
    item = queue_capture(provider)
    report = uploader_for(provider).drain()

    assert (report.delivered, report.remaining, report.stopped_by) == (1, 0, None)
    (stored,) = provider.server.captures_of(provider.contract_id)
    assert stored["capture_id"] == item.capture_id
    assert stored["_images"] == [b"RIFF-monitor-1", b"RIFF-monitor-2"]
    assert stored["memo"] == "checkout page"
    assert (stored["keyboard_events"], stored["mouse_events"]) == (5, 9)
    assert CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30).pending() == []
    state = UploaderState.load(provider.paths.uploader_state_file)
    assert state.last_capture_id == item.capture_id and state.last_upload_at is not None


def test_a_tracked_capture_goes_up_as_multipart_without_images(provider: Provider) -> None:
    provider.server.state.contracts[provider.contract_id]["work_view_on"] = False
    item = queue_capture(provider, images=[])
    assert uploader_for(provider).drain().delivered == 1
    (stored,) = provider.server.captures_of(provider.contract_id)
    assert (stored["capture_id"], stored["kind"], stored["monitor_count"]) == (item.capture_id, "tracked", 0)


def test_an_upload_repeated_after_a_crash_is_stored_once(provider: Provider) -> None:
    item = queue_capture(provider)
    # The first attempt reached the server, then the agent died before removing the file.
    with WorkproofClient(provider.server.url, provider.token) as client:
        images = [UploadImage(c, hashlib.sha256(c).hexdigest()) for c in item.read_images()]
        status, _ = client.upload_capture(provider.contract_id, item.meta.api_meta(), images)
    assert status == 201

    report = uploader_for(provider).drain()
    assert report.delivered == 1
    assert provider.server.state.attempts == [item.capture_id, item.capture_id]
    assert len(provider.server.captures_of(provider.contract_id)) == 1


def test_503_keeps_the_capture_and_honours_retry_after(provider: Provider) -> None:
    queue_capture(provider)
    provider.server.state.unavailable = 1
    provider.server.state.retry_after = 7
    uploader = uploader_for(provider)
    report = uploader.drain()

    assert report.stopped_by is Outcome.RETRY and report.retry_after == 7.0
    assert report.remaining == 1
    assert uploader.backoff.next_delay(report.retry_after) >= 7.0
    assert uploader.drain().delivered == 1


def test_an_unreachable_server_keeps_everything_queued_until_it_is_back(provider: Provider) -> None:
    first, second = queue_capture(provider), queue_capture(provider)
    provider.server.stop()
    uploader = uploader_for(provider)
    report = uploader.drain()
    assert report.stopped_by is Outcome.RETRY and report.remaining == 2
    assert "unreachable" in report.messages[0]
    assert "unreachable" in (UploaderState.load(provider.paths.uploader_state_file).last_error or "")

    provider.server.start()
    assert uploader.drain().delivered == 2
    stored = [c["capture_id"] for c in provider.server.captures_of(provider.contract_id)]
    assert stored == [first.capture_id, second.capture_id]


def test_a_422_moves_the_capture_to_rejected_with_the_servers_message(provider: Provider) -> None:
    bad, good = queue_capture(provider), queue_capture(provider)
    provider.server.state.reject[bad.capture_id] = (422, "captured_at is 3 hours in the future")
    report = uploader_for(provider).drain()

    assert (report.delivered, report.rejected) == (1, 1)
    queue = CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30)
    (rejected,) = queue.rejected()
    assert (rejected.capture_id, rejected.status) == (bad.capture_id, 422)
    assert rejected.message == "captured_at is 3 hours in the future"
    assert [c["capture_id"] for c in provider.server.captures_of(provider.contract_id)] == [good.capture_id]


def test_the_same_id_with_other_bytes_is_rejected_not_retried(provider: Provider) -> None:
    item = queue_capture(provider)
    with WorkproofClient(provider.server.url, provider.token) as client:
        client.upload_capture(provider.contract_id, item.meta.api_meta(), [UploadImage(b"other", "")])
    report = uploader_for(provider).drain()
    assert report.rejected == 1
    (rejected,) = CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30).rejected()
    assert rejected.status == 409 and "other images" in rejected.message


def test_a_revoked_token_keeps_the_capture_and_asks_for_login(provider: Provider) -> None:
    queue_capture(provider)
    provider.server.state.users.clear()
    report = uploader_for(provider).drain()
    assert report.stopped_by is Outcome.UNAUTHORIZED and report.remaining == 1
    assert "workproof-agent login" in report.messages[0]
    assert CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30).rejected() == []


def test_a_screenshot_refused_because_work_view_was_off_is_kept_as_tracked_time(provider: Provider) -> None:
    item = queue_capture(provider)
    provider.server.state.contracts[provider.contract_id]["work_view_on"] = False
    report = uploader_for(provider).drain()

    assert (report.delivered, report.rejected) == (1, 0)
    (stored,) = provider.server.captures_of(provider.contract_id)
    assert (stored["capture_id"], stored["kind"], stored["_images"]) == (item.capture_id, "tracked", [])
    assert stored["memo"] == "checkout page"
    queue = CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30)
    assert queue.pending() == [] and queue.rejected() == []


def test_the_agent_decides_on_the_refusals_code_not_its_wording(provider: Provider) -> None:
    """A reworded (here: translated) Work View refusal still turns the screenshot into tracked time, and a
    refusal whose message happens to mention Work View but whose code is another is set aside."""
    provider.server.state.work_view_off_detail = "Bildschirmfotos waren um {captured_at} nicht vereinbart"
    reworded = queue_capture(provider)
    provider.server.state.contracts[provider.contract_id]["work_view_on"] = False
    assert uploader_for(provider).drain().delivered == 1
    (stored,) = provider.server.captures_of(provider.contract_id)
    assert (stored["capture_id"], stored["kind"], stored["_images"]) == (reworded.capture_id, "tracked", [])

    provider.server.state.contracts[provider.contract_id]["work_view_on"] = True
    misleading = queue_capture(provider)
    provider.server.state.reject[misleading.capture_id] = (
        409, "Work View was off, or so this message says", "capture_conflict",
    )  # fmt: skip
    report = uploader_for(provider).drain()
    assert (report.delivered, report.rejected) == (0, 1)
    (rejected,) = CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30).rejected()
    assert rejected.capture_id == misleading.capture_id and rejected.status == 409


def test_a_retryable_code_is_retried_whatever_its_status(provider: Provider) -> None:
    """``rate_limited`` is a wait, not a refusal: the capture stays queued."""
    item = queue_capture(provider)
    provider.server.state.reject[item.capture_id] = (429, "slow down", "rate_limited")
    report = uploader_for(provider).drain()
    assert report.stopped_by is Outcome.RETRY and report.remaining == 1
    assert CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30).rejected() == []


def test_the_background_uploader_retries_through_an_outage(provider: Provider) -> None:
    item = queue_capture(provider)
    provider.server.state.unavailable = 2
    provider.server.state.retry_after = 0
    uploader = uploader_for(provider, Backoff(0.05, 0.1))
    stop = threading.Event()
    thread = threading.Thread(target=uploader.run, args=(stop, 0.1), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not provider.server.captures_of(provider.contract_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert provider.server.state.attempts == [item.capture_id] * 3
    assert [c["capture_id"] for c in provider.server.captures_of(provider.contract_id)] == [item.capture_id]


def test_a_sync_cuts_the_backoff_short(provider: Provider, tmp_path: Path) -> None:
    queue_capture(provider)
    provider.server.state.unavailable = 1
    provider.server.state.retry_after = 0
    uploader = uploader_for(provider, Backoff(30.0, 60.0))  # a long wait after the first failure
    uploader.backoff.failures = 3
    stop = threading.Event()
    thread = threading.Thread(target=uploader.run, args=(stop, 60.0), daemon=True)
    thread.start()
    while not provider.server.state.attempts:
        time.sleep(0.02)
    time.sleep(0.1)
    uploader.wake(reset_backoff=True)
    deadline = time.monotonic() + 5
    while not provider.server.captures_of(provider.contract_id) and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(timeout=5)
    assert len(provider.server.captures_of(provider.contract_id)) == 1
