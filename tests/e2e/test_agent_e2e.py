"""The real agent (its own processes, real Xvfb grabs, a short slot) against the real stack.

- captures arrive in the object store byte for byte and the API lists them under their slots with
  the memo;
- the API down for several slots, then back: every capture is delivered exactly once;
- the agent killed with SIGKILL while uploading, then restarted, again and again: nothing is lost and
  nothing is stored twice;
- the tracker's window (over HTTP, as its page does) sets the memo, pauses, deletes a capture on the
  real API, and lists the provider's offers with a link to the server's page.
"""

from __future__ import annotations

import random
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import AgentPaths
from agent.queue import SUFFIX, CaptureQueue
from domain.calendar import slot_start, week_label
from tests.agent.displays import XDisplay, xvfb
from tests.agent.processes import run_agent, start_agent
from tests.harness import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.display]

SLOT_SECONDS = "1"


@pytest.fixture(scope="module")
def display() -> Iterator[XDisplay]:
    with xvfb(1920, 1080) as screen:
        yield screen


class AgentUnderTest:
    """One provider's agent home, logged in to the stack, tracking one contract."""

    def __init__(self, stack: RunningStack, home: Path, display: XDisplay) -> None:
        self.stack = stack
        self.display = display
        self.paths = AgentPaths(config=home / "config", data=home / "data", runtime=home / "run")
        self.provider_id, self.token = stack.create_user("provider")
        _, client_token = stack.create_user("client")
        self.contract_id = stack.create_contract(client_token, self.provider_id, work_view=True)
        login = run_agent(self.paths, "login", stack.api_url, "--token", self.token)
        assert login.returncode == 0, login.stderr
        self.process: subprocess.Popen[str] | None = None

    def start(self, memo: str) -> None:
        self.process = start_agent(
            self.paths, self.contract_id, "--memo", memo, WORKPROOF_AGENT_SLOT_SECONDS=SLOT_SECONDS,
            DISPLAY=self.display.name,
        )  # fmt: skip
        # The tracker announces itself once its control channel listens: from then on `stop` reaches it.
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        first_line = self.process.stdout.readline() if ready else ""
        assert "tracking" in first_line, first_line or self.process.stderr

    def stop(self) -> str:
        assert self.process is not None
        stopped = run_agent(self.paths, "stop")
        assert stopped.returncode == 0, stopped.stderr
        out, err = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, err
        self.process = None
        return out

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.communicate(timeout=10)
        self.process = None

    def queued(self) -> set[str]:
        folder = self.paths.queue_folder / "pending"
        return (
            {path.stem.split("_", 1)[1] for path in folder.glob(f"*{SUFFIX}")} if folder.exists() else set()
        )

    def rejected(self) -> list[str]:
        return [r.message for r in CaptureQueue(self.paths.queue_folder, limit_bytes=2**34).rejected()]

    def on_server(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        weeks = {week_label(now), week_label(now - timedelta(hours=1))}  # a run across Monday 00:00 UTC
        records: list[dict[str, Any]] = []
        with self.stack.client(self.token) as http:
            for week in sorted(weeks):
                response = http.get(f"/v1/contracts/{self.contract_id}/captures", params={"week": week})
                assert response.status_code == 200, response.text
                records += response.json()["items"]
        return records


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def agent(stack: RunningStack, tmp_path: Path, display: XDisplay) -> Iterator[AgentUnderTest]:
    under_test = AgentUnderTest(stack, tmp_path / "agent", display)
    try:
        yield under_test
    finally:
        if under_test.process is not None:
            under_test.kill()


def test_captures_arrive_in_the_object_store_and_are_listed_under_their_slots(agent: AgentUnderTest) -> None:
    agent.start("payment form validation")
    wait_for(lambda: len(agent.on_server()) >= 3, 30, "three captures on the server")
    agent.stop()
    wait_for(lambda: not agent.queued(), 10, "an empty queue")

    records = agent.on_server()
    assert len({r["capture_id"] for r in records}) == len(records) >= 3
    for record in records:
        captured_at = datetime.fromisoformat(record["captured_at"])
        assert datetime.fromisoformat(record["slot_start"]) == slot_start(captured_at)
        assert record["memo"] == "payment form validation"
        assert (record["kind"], record["monitor_count"]) == ("screenshot", 1)
        week = week_label(captured_at)
        keys = agent.stack.list_objects(f"{agent.contract_id}/{week}/{record['capture_id']}/")
        images = sorted(key for key in keys if key.endswith("-m0.webp"))
        assert len(images) == 1, keys
        assert agent.stack.object_sha256(images[0]) == record["sha256"][0]
    assert agent.rejected() == []


def test_captures_taken_while_the_api_is_down_are_delivered_exactly_once(agent: AgentUnderTest) -> None:
    agent.start("offline stretch")
    wait_for(lambda: len(agent.on_server()) >= 1, 30, "a first capture on the server")
    agent.stack.stop_api()
    try:
        wait_for(lambda: len(agent.queued()) >= 4, 30, "four captures queued while the API is down")
        queued_offline = agent.queued()
    finally:
        agent.stack.start_api()
    wait_for(
        lambda: queued_offline <= {r["capture_id"] for r in agent.on_server()}, 30, "the backlog delivered"
    )
    agent.stop()
    wait_for(lambda: not agent.queued(), 10, "an empty queue")

    ids = [r["capture_id"] for r in agent.on_server()]
    assert len(ids) == len(set(ids))
    assert queued_offline <= set(ids)
    assert agent.rejected() == []


def test_an_agent_killed_mid_upload_and_restarted_loses_and_doubles_nothing(agent: AgentUnderTest) -> None:
    seen: set[str] = set()
    stored_but_still_queued = 0
    for round_ in range(4):
        agent.start(f"round {round_}")
        before = agent.queued() | {r["capture_id"] for r in agent.on_server()}
        # Kill just after a new capture is queued: its upload starts at once, so the kill lands while
        # it is being sent, or between "the server stored it" and "the file was removed".
        wait_for(lambda: bool(agent.queued() - before), 30, "a new capture queued")  # noqa: B023
        time.sleep(random.uniform(0.0, 0.15))
        agent.kill()
        queued = agent.queued()
        on_server = {r["capture_id"] for r in agent.on_server()}
        stored_but_still_queued += len(queued & on_server)
        seen |= queued | on_server
    agent.start("final round")
    wait_for(lambda: seen <= {r["capture_id"] for r in agent.on_server()}, 30, "every capture delivered")
    agent.stop()
    wait_for(lambda: not agent.queued(), 10, "an empty queue")

    ids = [r["capture_id"] for r in agent.on_server()]
    assert len(ids) == len(set(ids)), "a capture was stored twice"
    assert seen <= set(ids), f"lost: {seen - set(ids)}"
    assert agent.rejected() == []
    print(f"kills that landed after the server stored the capture: {stored_but_still_queued}")


def test_the_window_steers_the_tracker_and_deletes_on_the_real_server(
    agent: AgentUnderTest, stack: RunningStack
) -> None:
    """Over HTTP, as the window's page does: the memo reaches the next stored capture, pause holds the
    last capture still, delete removes it from the API, and an offer links to the server's page."""
    _, client_token = stack.create_user("client")
    with stack.client(client_token) as http:
        offer = http.post(
            "/v1/contracts",
            json={"provider_id": agent.provider_id, "title": "Offered in the window", "rate_cents": 3000,
                  "currency": "USD", "weekly_limit_hours": 20, "manual_allowed": True, "work_view": True},
        )  # fmt: skip
        assert offer.status_code == 201, offer.text
        offered_id = str(offer.json()["id"])
    agent.start("before the window")
    shown = run_agent(agent.paths, "ui", "--print")
    assert shown.returncode == 0, shown.stderr
    url = shown.stdout.strip()
    origin = url.split("/", 3)[:3]
    headers = {"Origin": "/".join(origin)}
    with httpx.Client() as window:
        posted = window.post(url + "memo", data={"memo": "set in the window"}, headers=headers)
        assert posted.status_code == 303, posted.text
        set_at = datetime.now(UTC)
        wait_for(
            lambda: any(
                r["memo"] == "set in the window" and datetime.fromisoformat(r["captured_at"]) > set_at
                for r in agent.on_server()
            ),
            30,
            "a capture with the window's memo",
        )
        assert window.post(url + "pause", headers=headers).status_code == 303
        state = window.get(url + "state").json()
        assert state["state"] == "paused"
        last = state["last_capture"]["id"]
        wait_for(lambda: last in {r["capture_id"] for r in agent.on_server()}, 30, "the last capture stored")
        deleted = window.post(url + "delete", data={"capture_id": last}, headers=headers)
        assert deleted.status_code == 303, deleted.text
        assert last not in {r["capture_id"] for r in agent.on_server()}
        assert (
            window.get(url + "state").json()["last_capture"]["deleted"].startswith(f"deleted capture {last}")
        )

        wait_for(lambda: bool(window.get(url + "state").json()["offers"]), 10, "the offers from the server")
        offers = window.get(url + "state").json()["offers"]
        assert [(o["id"], o["url"]) for o in offers] == [
            (offered_id, f"{stack.api_url}/contracts/{offered_id}")
        ]
    agent.stop()
