"""The web pages on the real stack, in real Chromium: the client's Work View (slots, memos, amounts,
lightbox, approve), the provider's week (delete a capture, add manual time), the support console
(queue, resolve, timeline); and, over plain HTTP, sign-in, sessions, CSRF, the login rate limit, the
security headers, and that nobody opens another party's week.

Each test signs in from its own client address (X-Forwarded-For, trusted from 127.0.0.1 as behind a
proxy), so the per-address login limit of one test never throttles another."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Response, async_playwright, expect
from starlette.responses import Response as StarletteResponse

from api.web.security import set_session_cookie
from domain.calendar import week_label, week_start
from tests.e2e.test_support_api import (
    Party,
    eventually,
    make_party,
    past_week,
    screen_image,
    slot_id,
    status_of,
    submit_week,
    temporal,
)
from tests.harness import RunningStack, stack_settings

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


_addresses = iter(f"198.51.100.{n}" for n in range(1, 255))


def own_address() -> str:
    return next(_addresses)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


class Console:
    """Browser console errors (a CSP violation shows up here) and failed loads."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("response", self.on_response)

    def on_console(self, message: ConsoleMessage) -> None:
        # "Failed to load resource" repeats a status on_response has already judged
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def on_response(self, response: Response) -> None:
        # a page answering 4xx is the test's business; an image, style or script failing is not
        if response.status >= 400 and response.request.resource_type != "document":
            self.errors.append(f"{response.status} {response.url}")


async def sign_in(
    browser: Browser, stack: RunningStack, token: str, screenshot: Path | None = None
) -> tuple[Page, Console]:
    context = await browser.new_context(
        base_url=stack.api_url, viewport={"width": 1440, "height": 900},
        extra_http_headers={"X-Forwarded-For": own_address()},
    )  # fmt: skip
    page = await context.new_page()
    console = Console(page)
    await page.goto("/login")
    if screenshot is not None:
        await page.screenshot(path=screenshot, full_page=True)
    # an API user's secondary path (people sign in with a password: tests/e2e/test_accounts_web.py)
    await page.click("details summary")
    await page.fill("#token", token)
    await page.click("#token-form button[type=submit]")
    totp = stack.totp_of_token(token)
    if totp is not None:  # staff: the second factor
        await page.wait_for_url(re.compile(r"/login/second-factor"))
        await page.fill("#code", totp.now())
        await page.click("form[action='/login/second-factor'] button[type=submit]")
    await page.wait_for_url(re.compile(r"/(contracts|support|admin/users)$"))
    return page, console


async def images_loaded(page: Page, selector: str) -> int:
    """How many images under ``selector`` decoded (the signed links worked)."""
    await page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(i => i.complete)", arg=selector, timeout=10_000
    )
    return int(
        await page.evaluate(
            "s => [...document.querySelectorAll(s)].filter(i => i.naturalWidth > 0).length", selector
        )
    )


@contextmanager
def web_session(stack: RunningStack, token: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the pages with a session cookie, from its own address."""
    with httpx.Client(base_url=stack.api_url, headers={"X-Forwarded-For": own_address()}, timeout=30) as http:
        form = http.get("/login")
        response = http.post("/login", data={"token": token, "csrf": csrf_of(form.text), "next": "/"})
        assert response.status_code == 303, response.text
        totp = stack.totp_of_token(token)
        if totp is not None:  # staff: the second factor, as a person would answer it
            for step in (0, 30):  # a code is accepted once: a second sign-in in the same step takes the next
                second = http.get(response.headers["location"])
                code = totp.at(time.time() + step)
                answered = http.post(
                    "/login/second-factor", data={"csrf": csrf_of(second.text), "code": code, "next": "/"}
                )
                if answered.status_code == 303:
                    break
            assert answered.status_code == 303, answered.text
        yield http


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match[1]


# --- in the browser ------------------------------------------------------------------------------------


async def test_client_sees_slots_memos_and_amounts_in_the_work_view_and_approves(
    stack: RunningStack, browser: Browser, artifacts: Path
) -> None:
    client = await temporal(stack)
    party = await make_party(stack, client, title="Invoice parser")
    party.set_timezone(party.client_id, "America/New_York")
    week = past_week()
    hour = week + timedelta(hours=14)  # Monday 14:00 UTC = 09:00 in New York (EST)
    for i, minute in enumerate((2, 14, 27, 38, 50)):
        party.capture(hour + timedelta(minutes=minute, seconds=11), "" if i == 2 else f"Parser step {i + 1}")
    party.capture(
        hour + timedelta(hours=1, minutes=1), "Reading the spec", kind="tracked", keys=None, mouse=None
    )
    party.capture(hour + timedelta(hours=1, minutes=25), "Two screens", monitors=2)
    party.manual(hour + timedelta(hours=2), 30, "Planning call")
    handle = await submit_week(party, client, week)
    # 6 documented slots (72 min), 1 tracked slot without a screenshot (12), manual (30): 114 min billable
    # at 60.00/h; guaranteed: the 5 documented slots with a memo (60 min)

    page, console = await sign_in(browser, stack, party.client_token, screenshot=artifacts / "login.png")
    await expect(page.locator("a.contract-link", has_text="Invoice parser")).to_be_visible()
    await page.screenshot(path=artifacts / "contracts.png", full_page=True)
    await page.goto(f"/contracts/{party.contract_id}/week/{week_label(week)}")
    await expect(page.locator("#iso-week")).to_have_text(f"{week:%G-W%V}")
    await expect(page.locator("#billable")).to_have_text("1 h 54 min")
    await expect(page.locator("#amount")).to_have_text("$114.00")
    await expect(page.locator("#guaranteed")).to_have_text("$60.00")
    await expect(page.locator("#time-left")).to_contain_text("left")
    await expect(page.locator("td.slot:not(.empty)")).to_have_count(7)
    await expect(page.locator("td.slot.empty")).to_have_count(3)  # :12, :36, :48 of the second hour
    await expect(page.locator("td.slot.guaranteed")).to_have_count(5)
    for memo in ("Parser step 1", "Parser step 5", "Reading the spec", "Two screens"):
        await expect(page.locator("td.slot .memo", has_text=memo)).to_have_count(1)
    no_memo = page.locator(f"td.slot[data-entry='{slot_id(hour + timedelta(minutes=24))}']")
    await expect(no_memo.locator(".guarantee")).to_have_text("not guaranteed: no memo")
    await expect(page.locator("td.slot .guarantee", has_text="no screenshot was taken")).to_have_count(1)
    manual = page.locator("tr.manual-entry")
    await expect(manual).to_contain_text("Planning call")
    await expect(manual).to_contain_text("manual time is never guaranteed")
    await expect(page.locator("td.slot .activity").first).to_have_text("keys 120 · mouse 45")
    # local time (New York) on the page, the UTC instant on hover
    first = page.locator("time.at").first
    await expect(first).to_have_text("09:02:11")
    await expect(first).to_have_attribute(
        "title", f"{hour + timedelta(minutes=2, seconds=11):%Y-%m-%dT%H:%M:%SZ}"
    )
    assert await images_loaded(page, "a.thumb img") == 6

    await page.locator("a.thumb").first.click()
    await expect(page.locator("#lightbox")).to_be_visible()
    assert await images_loaded(page, "#lightbox-images img") == 1
    await expect(page.locator("#lightbox-caption")).to_contain_text("Parser step 1")
    await page.keyboard.press("Escape")
    await expect(page.locator("#lightbox")).to_be_hidden()
    await page.locator("td.slot", has_text="Two screens").locator("a.thumb").click()
    assert await images_loaded(page, "#lightbox-images img") == 2
    await page.screenshot(path=artifacts / "workview-lightbox.png")
    await page.click("#lightbox-close")
    await page.screenshot(path=artifacts / "workview.png", full_page=True)

    await page.click("#approve")
    await page.wait_for_url(re.compile(r"done=approved"))
    await expect(page.locator(".notice")).to_contain_text("Approved")
    await expect(page.locator("#approve")).to_have_count(0)
    await eventually(lambda: _is(status_of(handle), "charged"))
    await page.reload()
    await expect(page.locator("#status")).to_contain_text("charged")
    await expect(page.locator(".money-moved")).to_contain_text("Charged $114.00")
    await page.screenshot(path=artifacts / "workview-approved.png", full_page=True)
    assert console.errors == []


async def _is(value: object, expected: str) -> bool:
    return await value == expected  # type: ignore[misc]


def open_week_hour(now: datetime) -> datetime:
    """An hour of a week still open for edits, at least an hour before now."""
    this_week = week_start(now)
    if now - this_week >= timedelta(hours=4):
        return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    return this_week - timedelta(hours=14)  # Sunday 10:00 of last week: its cutoff is Monday 12:00


def upload(stack: RunningStack, party: Party, at: datetime, memo: str) -> str:
    capture_id = str(uuid.uuid4())
    meta = {"capture_id": capture_id, "captured_at": at.isoformat(), "memo": memo, "kind": "screenshot",
            "keyboard_events": 300, "mouse_events": 80}  # fmt: skip
    with stack.client(party.provider_token) as http:
        response = http.post(
            f"/v1/contracts/{party.contract_id}/captures",
            data={"meta": json.dumps(meta)},
            files=[("images", ("m0.webp", screen_image(memo), "image/webp"))],
        )
    assert response.status_code == 201, response.text
    return capture_id


async def test_provider_deletes_a_capture_and_its_12_minutes_leave_the_total(
    stack: RunningStack, browser: Browser, artifacts: Path
) -> None:
    client = await temporal(stack)
    party = await make_party(stack, client, title="Data pipeline")
    hour = open_week_hour(datetime.now(UTC))
    week = week_label(hour)
    captures = [
        upload(stack, party, hour + timedelta(minutes=12 * i + 5), f"Pipeline stage {i + 1}")
        for i in range(3)
    ]

    page, console = await sign_in(browser, stack, party.provider_token)
    await page.goto(f"/contracts/{party.contract_id}/week/{week}")
    await expect(page.locator("#billable")).to_have_text("36 min")
    await expect(page.locator("#guaranteed")).to_have_text("$36.00")
    assert await images_loaded(page, "a.thumb img") == 3
    await page.screenshot(path=artifacts / "provider-week.png", full_page=True)

    await page.click(f"button[data-capture='{captures[1]}']")
    await page.wait_for_url(re.compile(r"done=deleted"))
    await expect(page.locator(".notice")).to_contain_text("its 12 minutes are no longer in the week")
    await expect(page.locator("#billable")).to_have_text("24 min")
    await expect(page.locator("#amount")).to_have_text("$24.00")
    await expect(page.locator("td.slot:not(.empty)")).to_have_count(2)
    await expect(page.locator("td.slot .memo", has_text="Pipeline stage 2")).to_have_count(0)

    manual_form = page.locator("#manual-form")
    await manual_form.locator("input[name=start]").fill(f"{hour - timedelta(minutes=60):%Y-%m-%dT%H:%M}")
    await manual_form.locator("input[name=end]").fill(f"{hour - timedelta(minutes=45):%Y-%m-%dT%H:%M}")
    await manual_form.locator("input[name=memo]").fill("Standup")
    await manual_form.locator("button[type=submit]").click()
    await page.wait_for_url(re.compile(r"done=manual"))
    await expect(page.locator("#billable")).to_have_text("39 min")
    await expect(page.locator("#guaranteed")).to_have_text("$24.00")
    await expect(page.locator("tr.manual-entry")).to_contain_text("manual time is never guaranteed")

    # a manual entry over a documented slot is refused with the rule's own message
    await manual_form.locator("input[name=start]").fill(f"{hour:%Y-%m-%dT%H:%M}")
    await manual_form.locator("input[name=end]").fill(f"{hour + timedelta(minutes=20):%Y-%m-%dT%H:%M}")
    await manual_form.locator("button[type=submit]").click()
    await expect(page.locator("#error")).to_contain_text("overlaps the documented slot")
    await expect(page.locator("#billable")).to_have_text("39 min")
    await expect(manual_form.locator("input[name=end]")).to_have_value(
        f"{hour + timedelta(minutes=20):%Y-%m-%dT%H:%M}"
    )
    await page.screenshot(path=artifacts / "provider-week-after-delete.png", full_page=True)

    with stack.client(party.provider_token) as http:
        sheet = http.get(f"/v1/contracts/{party.contract_id}/timesheets/{week}").json()
    assert sheet["billable_minutes"] == 39 and sheet["documented_minutes"] == 24
    assert console.errors == []


async def test_support_resolves_a_dispute_and_the_timeline_shows_it(
    stack: RunningStack, browser: Browser, artifacts: Path
) -> None:
    client = await temporal(stack)
    party = await make_party(stack, client, title="Mobile release")
    support_id, support_token = stack.create_user("support")
    week = past_week()
    hour = week + timedelta(days=2, hours=9)
    for i in range(3):
        party.capture(hour + timedelta(minutes=12 * i + 6), f"Release notes {i + 1}")
    manual_id = party.manual(hour + timedelta(hours=1), 30, "Sync with QA")
    handle = await submit_week(party, client, week)
    wk = week_label(week)

    page, console = await sign_in(browser, stack, party.client_token)
    await page.goto(f"/contracts/{party.contract_id}/week/{wk}")
    await page.check(f"input[name=entry][value='{slot_id(hour + timedelta(minutes=6))}']")
    await page.check(f"input[name=entry][value='manual-{manual_id}']")
    await page.fill("#reason", "QA sync was not agreed")
    await page.click("#dispute")
    await page.wait_for_url(re.compile(r"done=disputed"))
    await expect(page.locator("#dispute-state")).to_contain_text("QA sync was not agreed")
    await page.context.close()

    page, console = await sign_in(browser, stack, party.provider_token)
    await page.goto(f"/contracts/{party.contract_id}/week/{wk}")
    await page.check("#respond-form input[value=contest]")
    await page.fill("#note", "Agreed in the kickoff")
    await page.click("#respond")
    await page.wait_for_url(re.compile(r"done=contested"))
    await page.context.close()
    await eventually(lambda: _is(status_of(handle), "in_support"))

    page, console = await sign_in(browser, stack, support_token)
    await page.goto("/support")
    row = page.locator("tr.queue-item", has=page.locator(f"a[href='/support/contracts/{party.contract_id}']"))
    await eventually(lambda: _reloaded_count(page, row))
    await expect(row).to_contain_text("QA sync was not agreed")
    await page.screenshot(path=artifacts / "support-console.png", full_page=True)
    # search through Temporal visibility, from the console
    await page.fill("input[name=contract_id]", party.contract_id)
    await page.select_option("select[name=status]", "in_support")
    await page.click("form.search button[type=submit]")
    await expect(page.locator("#search-results")).to_contain_text(f"timesheet-{party.contract_id}-{wk}")
    await page.screenshot(path=artifacts / "support-search.png", full_page=True)
    # support sees the week's grid read-only
    await page.goto(f"/contracts/{party.contract_id}/week/{wk}")
    await expect(page.locator("td.slot:not(.empty)")).to_have_count(3)
    await expect(page.locator("#approve")).to_have_count(0)
    await expect(page.locator("button.danger")).to_have_count(0)
    await page.goto("/support")
    await row.locator("a").click()
    await expect(page.locator(f"#resolve-{wk}")).to_be_visible()
    # the form suggests the rules' outcome: the documented slot to the provider, manual time to the client
    await expect(
        page.locator(f"input[name='res:{slot_id(hour + timedelta(minutes=6))}'][value=provider]")
    ).to_be_checked()
    await expect(page.locator(f"input[name='res:manual-{manual_id}'][value=client]")).to_be_checked()
    await page.fill(f"#resolve-{wk} input[name=note]", "slot documented; call not")
    await page.click(f"#resolve-{wk} button[type=submit]")
    await page.wait_for_url(re.compile(r"done=resolved"))
    await expect(page.locator(".notice")).to_contain_text("Resolution recorded")
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("disputed 2 entries")
    await expect(timeline).to_contain_text("contested the dispute")
    await expect(timeline).to_contain_text("resolved the dispute")
    await eventually(lambda: _is(status_of(handle), "charged"))
    await page.reload()
    await expect(timeline).to_contain_text("The client was charged $36.00")
    await expect(page.locator("a", has_text="Temporal Web UI").first).to_have_attribute(
        "href", re.compile(r"^http://127\.0\.0\.1:\d+/namespaces/default/workflows/contract-")
    )
    await page.screenshot(path=artifacts / "support-timeline.png", full_page=True)
    assert console.errors == []
    assert support_id


async def _reloaded_count(page: Page, row: object) -> bool:
    await page.reload()
    return await row.count() == 1  # type: ignore[attr-defined]


# --- over HTTP -----------------------------------------------------------------------------------------


def test_signing_in_sets_a_session_cookie_that_is_http_only_same_site_lax(stack: RunningStack) -> None:
    _, token = stack.create_user("client")
    with httpx.Client(base_url=stack.api_url, headers={"X-Forwarded-For": own_address()}) as http:
        form = http.get("/login")
        response = http.post("/login", data={"token": token, "csrf": csrf_of(form.text), "next": "/"})
    assert response.status_code == 303 and response.headers["location"] == "/contracts"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("wp_session="))
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert "httponly" in flags and flags["samesite"].lower() == "samesite=lax" and flags["path"] == "Path=/"
    assert "secure" not in flags  # served over http here
    assert token not in cookie  # a session of its own, not the API token


def test_the_session_cookie_is_secure_when_the_public_url_is_https(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path, public_url="https://workproof.example.com")
    response = StarletteResponse()
    set_session_cookie(response, "wp_session", "wp_x", settings)
    cookie = response.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_every_page_carries_the_security_headers(stack: RunningStack) -> None:
    client_id, token = stack.create_user("client")
    with httpx.Client(base_url=stack.api_url) as anonymous:
        pages = [anonymous.get("/login"), anonymous.get("/contracts")]
    with web_session(stack, token) as http:
        pages += [
            http.get("/contracts"),
            http.get(f"/contracts/{uuid.uuid4()}/week/2026-11-23"),
            http.get("/static/app.css"),
            http.get("/contracts/not-an-id/week/2026-11-23"),
            http.get(f"/contracts/{uuid.uuid4()}/week/2026-11-25"),
        ]
    for response in pages:
        csp = response.headers["content-security-policy"]
        assert (
            "default-src 'self'" in csp and "img-src 'self' data:" in csp and "frame-ancestors 'none'" in csp
        )
        assert "'unsafe-inline'" not in csp
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (response.url, name)
    assert pages[1].status_code == 303 and pages[1].headers["location"].startswith("/login?next=")
    assert pages[3].status_code == 404 and pages[5].status_code == 404
    assert pages[6].status_code == 422 and "not a Monday" in pages[6].text
    assert client_id


async def test_a_post_without_the_sessions_csrf_token_is_refused(stack: RunningStack) -> None:
    client = await temporal(stack)
    party = await make_party(stack, client)
    week = past_week()
    party.capture(week + timedelta(hours=11, minutes=3), "Work")
    handle = await submit_week(party, client, week)
    url = f"/contracts/{party.contract_id}/week/{week_label(week)}"
    with web_session(stack, party.client_token) as http:
        csrf = csrf_of(http.get(url).text)
        for form in ({}, {"csrf": "forged"}, {"csrf": csrf[:-1]}):
            refused = http.post(f"{url}/approve", data={**form, "request_id": "csrf-test-1"})
            assert refused.status_code == 403, refused.text
            assert "CSRF" in refused.text
        assert await status_of(handle) == "submitted"  # nothing happened
        assert http.post("/logout", data={}).status_code == 403
        accepted = http.post(f"{url}/approve", data={"csrf": csrf, "request_id": "csrf-test-2"})
        assert accepted.status_code == 303
    assert await status_of(handle) in ("approved", "charged")


def test_login_attempts_per_address_are_limited(stack: RunningStack) -> None:
    limit = stack.settings.login_attempts_per_minute
    _, token = stack.create_user("client")
    with httpx.Client(base_url=stack.api_url, headers={"X-Forwarded-For": own_address()}) as http:
        csrf = csrf_of(http.get("/login").text)
        for _ in range(limit):
            response = http.post("/login", data={"token": "wp_wrong", "csrf": csrf})
            assert response.status_code == 401 and "Sign-in failed" in response.text
            csrf = csrf_of(response.text)  # each form carries a fresh token
        throttled = http.post("/login", data={"token": token, "csrf": csrf})
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
        assert "Too many sign-in attempts" in throttled.text
    # another address is not affected
    with web_session(stack, token) as http:
        assert http.get("/contracts").status_code == 200


async def test_a_client_cannot_open_another_clients_work_view(stack: RunningStack) -> None:
    client = await temporal(stack)
    party = await make_party(stack, client)
    week = past_week()
    party.capture(week + timedelta(hours=8, minutes=30), "Secret project")
    party.capture(week + timedelta(hours=8, minutes=42), "<script>alert(1)</script> & <b>bold</b>")
    await submit_week(party, client, week)
    _, stranger_token = stack.create_user("client")
    url = f"/contracts/{party.contract_id}/week/{week_label(week)}"
    with web_session(stack, stranger_token) as http:
        page = http.get(url)
        assert page.status_code == 404 and "Secret project" not in page.text
        listing = http.get("/contracts")
        assert party.contract_id not in listing.text
        csrf = csrf_of(listing.text)
        assert http.post(f"{url}/approve", data={"csrf": csrf}).status_code == 404
        assert http.get("/support").status_code == 404
    with web_session(stack, party.client_token) as http:
        own = http.get(url).text
        assert "Secret project" in own
        # every value is escaped: a memo is text, never markup
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in own
        assert "<script>alert(1)" not in own and "<b>bold" not in own


def test_signing_out_ends_the_session(stack: RunningStack) -> None:
    _, token = stack.create_user("provider")
    with web_session(stack, token) as http:
        page = http.get("/contracts")
        assert page.status_code == 200
        cookie = http.cookies["wp_session"]
        out = http.post("/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
    with httpx.Client(base_url=stack.api_url, cookies={"wp_session": cookie}) as stale:
        again = stale.get("/contracts")
        assert again.status_code == 303 and again.headers["location"].startswith("/login")


async def test_the_support_console_searches_by_title_and_says_when_nothing_matches(
    stack: RunningStack, browser: Browser, artifacts: Path
) -> None:
    client = await temporal(stack)
    title = f"Console search {uuid.uuid4().hex[:6]}"
    party = await make_party(stack, client, title=title)
    week = past_week()
    party.capture(week + timedelta(days=3, hours=10, minutes=3), "Tests")
    await submit_week(party, client, week)
    _, support_token = stack.create_user("support")
    page, console = await sign_in(browser, stack, support_token)
    thursday = f"{week + timedelta(days=3):%Y-%m-%d}"
    for _ in range(50):  # visibility is eventually consistent
        await page.goto(f"/support?searched=1&q={title.split()[-1]}&week={thursday}")
        if await page.locator("#search-results").count():
            break
        await page.wait_for_timeout(200)
    row = page.locator("#search-results tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(title)
    await page.screenshot(path=artifacts / "support-search.png", full_page=True)
    await page.goto(f"/support?searched=1&q=nobody-{uuid.uuid4().hex}")
    await expect(page.locator("#nothing-found")).to_contain_text("No timesheet matches")
    await page.goto("/support?searched=1")
    await expect(page.locator("#nothing-found")).to_contain_text("Type a title, a name or an email")
    assert console.errors == []


async def test_a_client_changes_the_terms_and_ends_the_contract_with_a_reason_the_provider_sees(
    stack: RunningStack, browser: Browser, artifacts: Path
) -> None:
    client = await temporal(stack)
    party = await make_party(stack, client, title="Terms in the browser")
    page, console = await sign_in(browser, stack, party.client_token)
    await page.goto(f"/contracts/{party.contract_id}/week/{week_label(datetime.now(UTC))}")
    await page.click("#terms-link")
    await expect(page.locator("#work-view")).to_have_text("on")
    await page.click("#work-view-form button")
    await expect(page.locator(".notice, [role=status]").first).to_contain_text("Work View turns off")
    await page.fill("#limit-form input[name=hours]", "5")
    await page.click("#limit-form button")
    await expect(page.locator("#next-limit")).to_contain_text("5 h from next Monday")
    await page.click("#end-form button")  # the browser asks for the reason and the confirmation first
    assert await page.locator("#contract-status").inner_text() == "active"
    await page.fill("#end-form input[name=reason]", "The project is finished")
    await page.check("#end-form input[name=confirm]")
    await page.click("#end-form button")
    await expect(page.locator("#ended")).to_contain_text("The project is finished")
    await expect(page.locator("#contract-status")).to_have_text("ended")
    await page.screenshot(path=artifacts / "terms-ended.png", full_page=True)
    assert console.errors == []
    provider_page, _ = await sign_in(browser, stack, party.provider_token)
    await provider_page.goto(f"/contracts/{party.contract_id}/terms")
    await expect(provider_page.locator("#ended")).to_contain_text("The project is finished")
