"""The command line as a provider uses it: clear one-line errors, a tracker steered from other terminals."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from agent.cli import main
from agent.config import AgentPaths, load_settings
from agent.queue import CaptureQueue, QueuedMeta
from domain.calendar import week_label
from tests.agent.conftest import Provider
from tests.agent.displays import WaylandSession, XDisplay
from tests.agent.fake_server import FakeWorkproof, free_port
from tests.agent.processes import run_agent, start_agent


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def stop_tracker(paths: AgentPaths, tracker: subprocess.Popen[str]) -> tuple[str, str]:
    assert run_agent(paths, "stop").returncode == 0
    out, err = tracker.communicate(timeout=20)
    assert tracker.returncode == 0, err
    return out, err


# -- errors that name the fix ----------------------------------------------------------------------------


def test_commands_before_login_say_how_to_log_in(
    agent_home: AgentPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["contracts"], ["start", "abc"], ["sync"]):
        code, _, err = cli(capsys, *command)
        assert code == 3
        assert err.strip() == (
            "workproof-agent: not logged in: run `workproof-agent login SERVER_URL` with your provider token"
        )


def test_login_verifies_the_token_and_stores_it_readable_by_the_owner_only(
    fake_server: FakeWorkproof, agent_home: AgentPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    _, token = fake_server.add_user("provider", name="Pat")
    code, out, _ = cli(capsys, "login", fake_server.url + "/", "--token", token)
    assert code == 0 and "as Pat" in out

    credentials = agent_home.credentials_file
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(agent_home.config.stat().st_mode) == 0o700
    assert json.loads(credentials.read_text())["server"] == fake_server.url
    assert json.loads(credentials.read_text())["token"] == token


def test_a_wrong_token_is_refused_at_login_and_nothing_is_stored(
    fake_server: FakeWorkproof, agent_home: AgentPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "login", fake_server.url, "--token", "not-a-token")
    assert code == 3
    assert "the server refused this token (invalid or expired token)" in err
    assert not agent_home.credentials_file.exists()


def test_a_client_token_is_not_a_providers(
    fake_server: FakeWorkproof, agent_home: AgentPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    _, token = fake_server.add_user("client")
    code, _, err = cli(capsys, "login", fake_server.url, "--token", token)
    assert code == 2 and "belongs to a client account: log in with your provider token" in err


def test_an_unreachable_server_is_named_with_the_fix(
    agent_home: AgentPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    code, _, err = cli(capsys, "login", dead, "--token", "t")
    assert code == 5
    assert f"server {dead} unreachable" in err and "check your connection" in err


def test_a_revoked_token_asks_to_log_in_again(provider: Provider, capsys: pytest.CaptureFixture[str]) -> None:
    provider.server.state.users.clear()
    code, _, err = cli(capsys, "contracts")
    assert code == 6
    assert err.strip() == (
        "workproof-agent: the server refused (401): invalid or expired token: "
        "log in again with `workproof-agent login SERVER_URL`"
    )


def test_steering_commands_say_when_no_tracker_runs(
    provider: Provider, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["memo", "x"], ["pause"], ["resume"], ["stop"]):
        code, _, err = cli(capsys, *command)
        assert code == 4
        assert "tracker not running: start it with `workproof-agent start CONTRACT`" in err


def test_start_refuses_contracts_that_cannot_be_tracked(
    provider: Provider, capsys: pytest.CaptureFixture[str]
) -> None:
    offered = provider.server.add_contract(provider.user_id, status="offered")
    code, _, err = cli(capsys, "start", offered)
    assert code == 2 and "only offered: accept it on the web first" in err
    code, _, err = cli(capsys, "start", "ffffffff")
    assert code == 2 and "no contract 'ffffffff' on your account" in err


def test_a_memo_over_2000_characters_is_refused(
    provider: Provider, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "start", provider.contract_id, "--memo", "x" * 2001)
    assert code == 2 and "the limit is 2000" in err


def test_a_memo_the_server_would_refuse_is_refused_when_it_is_set(
    provider: Provider, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not hours later, when every capture carrying it comes back 422."""
    code, _, err = cli(capsys, "start", provider.contract_id, "--memo", "total \u202e0001\u202c USD")
    assert code == 2 and "bidirectional override U+202E" in err
    code, _, err = cli(capsys, "memo", "ding\x07")
    assert code == 2 and "control character U+0007" in err


def test_settings_are_shown_changed_and_checked(
    agent_home: AgentPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "settings", "blur", "on")[0] == 0
    assert cli(capsys, "settings", "queue_limit_bytes", "4GiB")[0] == 0
    settings = load_settings(agent_home)
    assert settings.blur and settings.queue_limit_bytes == 4 * 2**30
    code, _, err = cli(capsys, "settings", "blur", "maybe")
    assert code == 2 and "blur takes on or off" in err
    code, _, err = cli(capsys, "settings", "colour", "red")
    assert code == 2 and "unknown setting 'colour'" in err


# -- the tracker, steered from another terminal -----------------------------------------------------------


def test_memo_pause_resume_and_stop_reach_the_running_tracker(provider: Provider) -> None:
    provider.server.state.contracts[provider.contract_id]["work_view_on"] = False
    paths, server = provider.paths, provider.server
    tracker = start_agent(
        paths, provider.contract_id[:8], "--memo", "first task", WORKPROOF_AGENT_SLOT_SECONDS="0.5"
    )
    try:
        wait_for(lambda: len(server.captures_of(provider.contract_id)) >= 2)
        assert stat.S_IMODE(paths.control_socket.stat().st_mode) == 0o600
        assert stat.S_IMODE(paths.control_socket.parent.stat().st_mode) == 0o700
        again = run_agent(paths, "start", provider.contract_id)
        assert again.returncode == 4 and "already running" in again.stderr

        assert run_agent(paths, "memo", "second task").returncode == 0
        assert run_agent(paths, "pause").returncode == 0
        paused_at = datetime.now(UTC)
        status = json.loads(run_agent(paths, "status", "--json").stdout)
        assert status["tracker"]["state"] == "paused" and status["tracker"]["memo"] == "second task"
        time.sleep(1.6)
        resumed_at = datetime.now(UTC)
        assert run_agent(paths, "resume").returncode == 0
        count = len(server.captures_of(provider.contract_id))
        wait_for(lambda: len(server.captures_of(provider.contract_id)) >= count + 2)
    finally:
        out, _ = stop_tracker(paths, tracker)

    captures = server.captures_of(provider.contract_id)
    assert all(c["kind"] == "tracked" and c["monitor_count"] == 0 for c in captures)
    times = [datetime.fromisoformat(c["captured_at"]) for c in captures]
    assert not [t for t in times if paused_at < t < resumed_at]
    memos = [c["memo"] for c in captures]
    assert memos[0] == "first task" and memos[-1] == "second task"
    assert memos == sorted(memos, key=lambda m: m == "second task")  # never back to the old memo
    assert "stopped:" in out


def test_status_reports_this_weeks_time_the_queue_and_the_last_upload(
    provider: Provider, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30)
    for _ in range(2):
        meta = QueuedMeta(str(uuid.uuid4()), provider.contract_id, datetime.now(UTC), "memo", "screenshot")
        queue.put(meta, [b"webp"], [(1, 1)])
    code, out, _ = cli(capsys, "sync")
    assert code == 0 and "uploaded 2, 0 still queued" in out

    code, out, _ = cli(capsys, "status")
    assert code == 0
    assert "tracker: not running" in out
    assert f"this week ({week_label(datetime.now(UTC))}) on Checkout redesign: 0:12 h documented" in out
    assert "queue: 0 capture(s) waiting" in out
    assert "last upload: never" not in out


def test_rejected_and_late_captures_are_shown_never_dropped(
    provider: Provider, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30)
    rejected = QueuedMeta(str(uuid.uuid4()), provider.contract_id, datetime.now(UTC), "m", "screenshot")
    queue.put(rejected, [b"webp"], [(1, 1)])
    provider.server.state.reject[rejected.capture_id] = (422, "image is not a WebP picture")
    code, _, err = cli(capsys, "sync")
    assert code == 0 and "image is not a WebP picture" in err

    late = QueuedMeta(
        str(uuid.uuid4()), provider.contract_id, datetime.now(UTC) - timedelta(days=15), "m", "tracked"
    )
    queue.put(late, [], [])
    provider.server.stop()  # offline: the late capture stays queued
    code, out, err = cli(capsys, "status")
    assert code == 0
    assert "rejected by the server (1)" in out
    assert f"{rejected.capture_id}  422  image is not a WebP picture" in out
    assert "queue: 1 capture(s) waiting" in out
    assert f"capture {late.capture_id} missed its week's edit cutoff" in err
    assert "this week's time unknown" in out and "unreachable" in out


def test_tracking_offline_then_deleting_before_upload_then_syncing(
    provider: Provider, capsys: pytest.CaptureFixture[str]
) -> None:
    paths, server = provider.paths, provider.server
    server.state.contracts[provider.contract_id]["work_view_on"] = False
    assert cli(capsys, "contracts")[0] == 0  # the contract is now known to this computer
    server.stop()
    tracker = start_agent(
        paths, provider.contract_id, "--memo", "offline work", WORKPROOF_AGENT_SLOT_SECONDS="0.4"
    )
    queue = CaptureQueue(paths.queue_folder, limit_bytes=2**30)
    try:
        wait_for(lambda: len(queue.pending()) >= 3)
    finally:
        _, err = stop_tracker(paths, tracker)
    assert "unreachable" in err and "tracking offline with the last known contract details" in err
    queued = [item.capture_id for item in queue.pending()]

    code, out, err = cli(capsys, "shots", "--json")
    listed = json.loads(out)
    assert {row["capture_id"] for row in listed["captures"]} == set(queued)
    assert {row["where"] for row in listed["captures"]} == {"queued"}
    assert "this computer's captures only" in listed["note"]

    code, out, _ = cli(capsys, "delete", queued[0][:8])
    assert code == 0 and "before upload: it never left this computer" in out

    server.start()
    code, out, _ = cli(capsys, "sync")
    assert code == 0 and f"uploaded {len(queued) - 1}, 0 still queued" in out
    stored = [c["capture_id"] for c in server.captures_of(provider.contract_id)]
    assert stored == queued[1:]


def test_deleting_an_uploaded_capture_and_the_refusal_once_the_week_is_submitted(
    provider: Provider, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = CaptureQueue(provider.paths.queue_folder, limit_bytes=2**30)
    metas = [
        QueuedMeta(str(uuid.uuid4()), provider.contract_id, datetime.now(UTC), "m", "screenshot")
        for _ in range(2)
    ]
    for meta in metas:
        queue.put(meta, [b"webp"], [(1, 1)])
    assert cli(capsys, "sync")[0] == 0

    code, out, _ = cli(capsys, "delete", metas[0].capture_id)
    assert code == 0 and "its slot no longer counts in this week's timesheet" in out
    assert [c["capture_id"] for c in provider.server.captures_of(provider.contract_id)] == [
        metas[1].capture_id
    ]

    provider.server.state.submitted_weeks.add(week_label(datetime.now(UTC)))
    code, _, err = cli(capsys, "delete", metas[1].capture_id)
    assert code == 6
    assert "the server refused (409): the week of" in err and "can no longer be deleted" in err

    code, _, err = cli(capsys, "delete", "abcd1234")
    assert code == 2 and "give its full id" in err


@pytest.mark.display
def test_the_tracker_sends_real_x11_screenshots(provider: Provider, x_display: XDisplay) -> None:
    paths, server = provider.paths, provider.server
    tracker = start_agent(
        paths,
        provider.contract_id,
        "--memo",
        "checkout page",
        WORKPROOF_AGENT_SLOT_SECONDS="0.6",
        DISPLAY=x_display.name,
    )
    try:
        wait_for(lambda: len(server.captures_of(provider.contract_id)) >= 3, seconds=20)
    finally:
        out, _ = stop_tracker(paths, tracker)
    assert "screenshots via mss" in out
    captures = server.captures_of(provider.contract_id)
    for capture in captures:
        (content,) = capture["_images"]
        image = Image.open(io.BytesIO(content))
        assert (image.format, image.size) == ("WEBP", (1920, 1080))
        assert capture["kind"] == "screenshot" and capture["memo"] == "checkout page"
        # Input-activity counts are measured under X11 (zero here: nobody types on Xvfb).
        assert capture["keyboard_events"] is not None
    thumbnails = list(paths.thumbnails_folder.glob("*.webp"))
    assert len(thumbnails) >= 3


@pytest.mark.display
def test_the_tracker_sends_one_image_per_wayland_output(provider: Provider, wayland: WaylandSession) -> None:
    paths, server = provider.paths, provider.server
    tracker = start_agent(paths, provider.contract_id, WORKPROOF_AGENT_SLOT_SECONDS="0.6", **wayland.environ)
    try:
        wait_for(lambda: len(server.captures_of(provider.contract_id)) >= 2, seconds=20)
    finally:
        out, err = stop_tracker(paths, tracker)
    assert "screenshots via grim" in out
    assert "without a memo: this slot is not guaranteed" in err
    for capture in server.captures_of(provider.contract_id):
        sizes = [Image.open(io.BytesIO(content)).size for content in capture["_images"]]
        assert sizes == [(1280, 720), (1024, 768)]
        # Wayland shows no client the global input: the counts are not measured, not zero.
        assert (capture["keyboard_events"], capture["mouse_events"]) == (None, None)
