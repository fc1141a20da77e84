"""The tracker's window, against a real tracker process on Xvfb (1-second slots) and the fake server.

Over plain HTTP: nobody without the secret gets anything (403, no detail), a foreign Host or Origin
is refused, the port listens on loopback only, and `workproof-agent ui` finds the window or says how to
start the tracker. In Chromium (headless, Debian's): the memo set in the page reaches the next capture
the server receives, pause and resume work, the last capture's thumbnail shows and its delete button
removes it on the server, the Work View-off notice shows, offers link to the server's page, and the page
fits a 375 px wide screen without a console error (a CSP violation would be one).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from agent.config import AgentPaths
from tests.agent.conftest import Provider
from tests.agent.displays import XDisplay, xvfb
from tests.agent.processes import run_agent, start_agent

pytestmark = [pytest.mark.display]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip


def wait_for(condition: Callable[[], bool], seconds: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def small_display() -> Iterator[XDisplay]:
    # Small, so that a capture every second stays cheap on a shared machine.
    with xvfb(640, 480) as display:
        yield display


@dataclass
class RunningTracker:
    provider: Provider
    process: subprocess.Popen[str]
    url: str

    @property
    def paths(self) -> AgentPaths:
        return self.provider.paths

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def captures(self) -> list[dict[str, object]]:
        return self.provider.server.captures_of(self.provider.contract_id)

    def status(self) -> dict[str, object]:
        done = run_agent(self.paths, "status", "--json")
        assert done.returncode == 0, done.stderr
        tracker: dict[str, object] = json.loads(done.stdout)["tracker"]
        return tracker


@pytest.fixture
def start_tracker(provider: Provider, small_display: XDisplay) -> Iterator[Callable[..., RunningTracker]]:
    started: list[subprocess.Popen[str]] = []

    def start(*, work_view: bool = True, memo: str = "first task") -> RunningTracker:
        provider.server.state.contracts[provider.contract_id]["work_view_on"] = work_view
        process = start_agent(
            provider.paths, provider.contract_id, "--memo", memo,
            WORKPROOF_AGENT_SLOT_SECONDS="1", DISPLAY=small_display.name,
        )  # fmt: skip
        started.append(process)
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "tracking" in first and "workproof-agent ui" in first, first
        done = run_agent(provider.paths, "ui", "--print")
        assert done.returncode == 0, done.stderr
        return RunningTracker(provider, process, done.stdout.strip())

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                run_agent(provider.paths, "stop")
                try:
                    process.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate(timeout=5)


# -- over plain HTTP -----------------------------------------------------------------------------------


def test_without_the_secret_or_from_a_foreign_host_nothing_is_shown(
    start_tracker: Callable[..., RunningTracker],
) -> None:
    tracker = start_tracker()
    url = tracker.url
    match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/([A-Za-z0-9_-]{43})/", url)
    assert match, url
    port, secret = match.groups()
    base = f"http://127.0.0.1:{port}"

    with httpx.Client() as http:
        assert http.get(url).status_code == 200
        assert http.get(url + "state").json()["memo"] == "first task"
        for refused in (
            f"{base}/",
            f"{base}/state",
            f"{base}/window.js",
            f"{base}/{secret[:-1]}/",
            f"{base}/{secret[:-1]}x/state",
            f"{base}/{secret}x/",
            f"{base}/?secret={secret}",
        ):
            answer = http.get(refused)
            assert (answer.status_code, answer.content) == (403, b""), refused
            assert answer.headers["cache-control"] == "no-store"

        # DNS rebinding: a page of evil.example that resolves to 127.0.0.1 sends its own host name.
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{int(port) + 1}"):
            answer = http.get(url, headers={"Host": host})
            assert (answer.status_code, answer.content) == (403, b""), host
        assert http.get(url, headers={"Host": f"localhost:{port}"}).status_code == 200

        page = http.get(url)
        assert page.headers["cache-control"] == "no-store"
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "same-origin"

        # Another site open in the provider's browser may POST here: the secret stops it, and so does
        # the Origin check even if the secret were known.
        for origin in ({"Origin": "http://evil.example"}, {}, {"Origin": "null"}):
            answer = http.post(url + "memo", data={"memo": "evil"}, headers=origin)
            assert (answer.status_code, answer.content) == (403, b""), origin
        answer = http.post(f"{base}/nope/pause", headers={"Origin": tracker.origin})
        assert answer.status_code == 403
        answer = http.post(url + "pause", headers={"Origin": tracker.origin, "Host": f"evil.example:{port}"})
        assert answer.status_code == 403
        assert tracker.status()["memo"] == "first task"
        assert tracker.status()["state"] == "tracking"

        # The thumbnails folder is the only one served, and only by capture id.
        for path in ("thumb/../../config/credentials.json", "thumb/..%2F..%2Fconfig%2Fcredentials.json"):
            assert http.get(url + path).status_code in (403, 404), path

        answer = http.post(url + "memo", data={"memo": "from a script"}, headers={"Origin": tracker.origin})
        assert answer.status_code == 303 and answer.headers["location"] == f"/{secret}/?done=memo"
        assert tracker.status()["memo"] == "from a script"

    listening = [
        c for c in psutil.Process(tracker.process.pid).net_connections(kind="inet") if c.status == "LISTEN"
    ]
    assert [c.laddr.ip for c in listening] == ["127.0.0.1"], listening
    # The secret lives in the tracker's memory, not in a file another process could read later.
    for path in tracker.paths.config.parent.rglob("*"):
        if path.is_file() and not path.name.endswith((".capture", ".webp")):
            assert secret.encode() not in path.read_bytes(), path


def test_ui_opens_the_window_or_says_how_to_start_the_tracker(
    start_tracker: Callable[..., RunningTracker], provider: Provider, tmp_path: Path
) -> None:
    before = run_agent(provider.paths, "ui")
    assert before.returncode == 4
    assert "start it with `workproof-agent start CONTRACT`" in before.stderr
    assert "`workproof-agent ui` again" in before.stderr

    tracker = start_tracker()
    # `webbrowser` honours $BROWSER: a stand-in browser that writes down the address it is given.
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.py"
    browser.write_text(f"import sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n")
    done = run_agent(provider.paths, "ui", BROWSER=f"{sys.executable} {browser} %s")
    assert done.returncode == 0, done.stderr
    assert "opened the tracker's window in your browser" in done.stdout
    wait_for(opened.exists, 10, "the stand-in browser")
    assert opened.read_text() == tracker.url
    assert tracker.url not in done.stdout  # the secret is not left in the terminal's scrollback


# -- in Chromium -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def open_window(browser: Browser, url: str, width: int = 1024) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda dialog: dialog.accept())
    # A page answering 4xx is the test's business; a script, style, image or poll failing is not.
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    page.goto(url)
    return page, errors


@pytest.mark.browser
def test_the_window_sets_the_memo_and_pauses_and_resumes_the_tracker(
    start_tracker: Callable[..., RunningTracker], browser: Browser
) -> None:
    tracker = start_tracker()
    page, errors = open_window(browser, tracker.url, width=375)
    expect(page.locator("#state")).to_have_text("Tracking")
    expect(page.locator("#contract-title")).to_have_text("Checkout redesign")
    expect(page.locator("#contract-id")).to_have_text(tracker.provider.contract_id)
    expect(page.get_by_label(re.compile("^Memo"))).to_have_value("first task")
    # The last capture appears by itself (the page polls), with its thumbnail.
    expect(page.locator("#last-at")).to_be_visible(timeout=10_000)
    thumbnail = page.locator("#last img").first
    expect(thumbnail).to_be_visible()
    page.wait_for_function("() => document.querySelector('#last img').naturalWidth > 0")
    expect(page.locator("#queue")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#blur")).to_have_text("off")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    # The memo, typed and saved from the keyboard, reaches the next capture the server receives.
    memo = page.get_by_label(re.compile("^Memo"))
    memo.fill("checkout: address form\nand its tests")
    page.get_by_role("button", name="Save memo").press("Enter")
    expect(page.locator("#done")).to_have_text("Memo saved: it applies from the next capture.")
    set_at = datetime.now(UTC)
    wait_for(
        lambda: any(datetime.fromisoformat(str(c["captured_at"])) > set_at for c in tracker.captures()),
        what="a capture after the memo changed",
    )
    after = [c for c in tracker.captures() if datetime.fromisoformat(str(c["captured_at"])) > set_at]
    assert {c["memo"] for c in after} == {"checkout: address form\nand its tests"}

    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#state")).to_have_text("Paused")
    expect(page.locator("#done")).to_have_text("Paused: no capture until you resume.")
    paused_at = datetime.now(UTC)
    assert tracker.status()["state"] == "paused"
    time.sleep(2.5)
    resumed_at = datetime.now(UTC)
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#state")).to_have_text("Tracking")
    wait_for(
        lambda: any(datetime.fromisoformat(str(c["captured_at"])) > resumed_at for c in tracker.captures()),
        what="a capture after resuming",
    )
    times = [datetime.fromisoformat(str(c["captured_at"])) for c in tracker.captures()]
    assert not [t for t in times if paused_at < t < resumed_at]

    # Paused from elsewhere (the command line): the page follows within a poll.
    assert run_agent(tracker.paths, "pause").returncode == 0
    expect(page.locator("#state")).to_have_text("Paused", timeout=10_000)
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    assert errors == []


@pytest.mark.browser
def test_a_memo_the_server_would_refuse_is_refused_in_the_window(
    start_tracker: Callable[..., RunningTracker], browser: Browser
) -> None:
    tracker = start_tracker()
    page, errors = open_window(browser, tracker.url)
    page.get_by_label(re.compile("^Memo")).fill("total \u202e0001\u202c USD")
    page.get_by_role("button", name="Save memo").click()
    expect(page.get_by_role("alert").filter(has_text="bidirectional override U+202E")).to_be_visible()
    assert tracker.status()["memo"] == "first task"
    assert errors == []


@pytest.mark.browser
def test_deleting_the_last_capture_in_the_window_deletes_it_on_the_server(
    start_tracker: Callable[..., RunningTracker], browser: Browser
) -> None:
    tracker = start_tracker()
    wait_for(lambda: len(tracker.captures()) >= 2, what="two captures on the server")
    assert run_agent(tracker.paths, "pause").returncode == 0
    # Paused, the last capture stays the last one; wait until it is uploaded.
    wait_for(lambda: tracker.status()["last_capture_id"] is not None, what="a last capture")
    last = str(tracker.status()["last_capture_id"])
    wait_for(lambda: last in {c["capture_id"] for c in tracker.captures()}, what="the last capture uploaded")
    thumbnails = tracker.paths.thumbnails_folder
    assert list(thumbnails.glob(f"{last}-*.webp"))

    page, errors = open_window(browser, tracker.url)
    expect(page.locator("#state")).to_have_text("Paused")
    expect(page.locator("#delete-form input[name=capture_id]")).to_have_value(last)
    page.get_by_role("button", name="Delete this capture").click()  # the confirm dialog is accepted
    expect(page.locator("#done")).to_have_text(
        f"deleted capture {last}: its slot no longer counts in this week's timesheet"
    )
    assert last not in {c["capture_id"] for c in tracker.captures()}
    assert len(tracker.captures()) >= 1  # only that one
    assert not list(thumbnails.glob(f"{last}-*.webp"))
    expect(page.locator("#last img")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete this capture")).to_have_count(0)
    assert errors == []


@pytest.mark.browser
def test_with_work_view_off_the_window_says_the_time_is_not_guaranteed_and_lists_offers(
    start_tracker: Callable[..., RunningTracker], browser: Browser, provider: Provider
) -> None:
    offered = provider.server.add_contract(provider.user_id, status="offered", title="Mobile app")
    tracker = start_tracker(work_view=False)
    page, errors = open_window(browser, tracker.url)
    notice = page.locator("#notices")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Work View is off")
    expect(notice).to_contain_text("not guaranteed")
    expect(page.locator("#last-kind")).to_have_text("tracked time, no screenshot", timeout=10_000)
    expect(page.locator("#last img")).to_have_count(0)

    link = page.get_by_role("link", name="Mobile app")
    expect(link).to_be_visible(timeout=10_000)
    assert link.get_attribute("href") == f"{provider.server.url}/contracts/{offered}"
    assert "noreferrer" in (link.get_attribute("rel") or "")
    expect(page.get_by_role("link", name="Checkout redesign")).to_have_count(0)  # active, not offered

    status = run_agent(tracker.paths, "status")
    assert "Work View: off (tracked time, no screenshots): this time is not guaranteed" in status.stdout
    assert errors == []


@pytest.mark.browser
def test_the_page_says_so_when_the_tracker_stops(
    start_tracker: Callable[..., RunningTracker], browser: Browser
) -> None:
    tracker = start_tracker()
    page, errors = open_window(browser, tracker.url)
    expect(page.locator("#state")).to_have_text("Tracking")
    assert run_agent(tracker.paths, "stop").returncode == 0
    tracker.process.communicate(timeout=20)
    expect(page.locator("#state")).to_have_text("Stopped", timeout=10_000)
    expect(page.locator("#stopped-note")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_be_hidden()
    # The failed poll is the only error a stopped tracker causes.
    assert all("state" in e or "ERR_CONNECTION_REFUSED" in e for e in errors), errors


def test_the_runtime_folder_stays_private(start_tracker: Callable[..., RunningTracker]) -> None:
    tracker = start_tracker()
    assert stat.S_IMODE(tracker.paths.runtime.stat().st_mode) == 0o700
    assert set(os.listdir(tracker.paths.runtime)) <= {"control.sock"}  # no address or secret in a file
