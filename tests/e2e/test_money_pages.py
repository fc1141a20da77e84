"""The money pages in real Chromium, at desktop width and at 375 px: a client's statement, a provider's
earnings, the week's hours per day, the admin's top-up and credit-line forms; the pictures are SVG with a
title, a description and a table; no page scrolls sideways at 375 px; no console error (CSP); and, when
npm can install axe-core (``tests/e2e/axe``), no serious or critical accessibility violation.

Screenshots land in the ``artifacts`` folder (money-*.png)."""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from domain.money import format_money
from tests.e2e.test_money_api import settled_week
from tests.e2e.test_support_api import temporal
from tests.e2e.test_web import browser, csrf_of, sign_in, web_session
from tests.harness import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with test_web.py

AXE = Path(__file__).parent / "axe"


@pytest.fixture(scope="module")
def axe_source() -> str | None:
    """axe-core's script, installed from the lockfile on first use; None when npm is not available."""
    script = AXE / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists() and shutil.which("npm"):
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=AXE, check=False, capture_output=True, timeout=300
        )
    if not script.exists():
        warnings.warn(
            "axe-core is not installed (npm missing or offline): accessibility not checked", stacklevel=1
        )
        return None
    return script.read_text()


async def check_page(page: Page, name: str, artifacts: Path, axe: str | None) -> None:
    """Desktop and 375 px screenshots; nothing wider than the phone; axe finds nothing serious."""
    await page.set_viewport_size({"width": 1440, "height": 900})
    await page.screenshot(path=artifacts / f"money-{name}.png", full_page=True)
    await page.set_viewport_size({"width": 375, "height": 800})
    await page.reload()
    await page.screenshot(path=artifacts / f"money-{name}-375.png", full_page=True)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{name} scrolls sideways at 375 px ({width} px)"
    if axe is None:
        return
    for size in ({"width": 375, "height": 800}, {"width": 1440, "height": 900}):
        await page.set_viewport_size(size)
        await page.evaluate(axe)  # evaluated by the test runner, not a page script: the page's CSP stands
        violations = await page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".filter(v => ['serious', 'critical'].includes(v.impact))"
            ".map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join(', ')})`)"
        )
        assert violations == [], f"{name} at {size['width']} px: {violations}"


async def test_client_and_provider_read_their_money_and_an_admin_records_a_top_up(
    stack: RunningStack, browser: Browser, artifacts: Path, axe_source: str | None
) -> None:
    client = await temporal(stack)
    party, wk = await settled_week(stack, client, funds=5000_00, title="Money pages")

    with stack.client(party.client_token) as api:
        balance = api.get("/v1/balance").json()["balance_cents"]  # this week's hold may or may not be taken
    held = 5000_00 - 90_00 - balance

    page, console = await sign_in(browser, stack, party.client_token)
    await page.click("nav a[href='/money']")
    await expect(page.locator("h1")).to_have_text("Statement")
    await expect(page.locator("#balance")).to_have_text(format_money(balance, "USD"))
    await expect(page.locator("#held")).to_have_text(format_money(held, "USD"))
    await expect(page.locator("#statement tbody tr .running").last).to_have_text(format_money(balance, "USD"))
    await expect(page.locator("#statement tr.kind-charge")).to_have_count(1)
    await expect(page.locator("#weeks a.invoice")).to_have_count(1)
    for chart_id in ("hours-per-week", "money-per-week"):
        svg = page.locator(f"#{chart_id} svg[role=img]")
        await expect(svg.locator("title").first).not_to_be_empty()
        await expect(svg.locator("desc")).not_to_be_empty()
        await expect(page.locator(f"#{chart_id} details table tbody tr")).to_have_count(12)
    await expect(page.locator("#money-per-week text.total")).to_have_text(["$90.00"])
    await expect(page.locator("#hours-per-week text.total")).to_have_text(["1.5 h"])
    invoice = await page.request.get(await page.locator("#weeks a.invoice").get_attribute("href") or "")
    assert invoice.status == 200 and invoice.headers["content-type"] == "application/pdf"
    await check_page(page, "client", artifacts, axe_source)
    assert console.errors == []

    page, console = await sign_in(browser, stack, party.provider_token)
    await page.goto("/money")
    await expect(page.locator("h1")).to_have_text("Earnings")
    await expect(page.locator("#available")).to_have_text("$90.00")
    await expect(page.locator("#in-escrow")).to_have_text("$0.00")
    await expect(page.locator("#per-contract tbody tr")).to_have_count(1)
    await check_page(page, "provider", artifacts, axe_source)
    await page.goto(f"/contracts/{party.contract_id}/week/{wk}")
    await expect(page.locator("#hours-per-day text.total")).to_have_text(["1 h", "0.5 h"])
    await expect(page.locator("#invoice-link")).to_have_count(1)
    await expect(page.locator("#csv-link")).to_have_count(1)
    await check_page(page, "week", artifacts, axe_source)
    assert console.errors == []

    _, admin_token = stack.create_user("admin")
    page, console = await sign_in(browser, stack, admin_token)
    await page.goto("/money")
    await page.wait_for_url(re.compile(r"/admin/money$"))
    row = page.locator(f"#clients tr[data-client='{party.client_id}']")
    await expect(row.locator(".balance")).to_have_text(format_money(balance, "USD"))
    await row.locator("form.top-up input[name=amount]").fill("250.50")
    await row.locator("form.top-up button").click()
    await page.wait_for_url(re.compile(r"done=funded"))
    await expect(row.locator(".balance")).to_have_text(format_money(balance + 250_50, "USD"))
    await row.locator("form.credit-line input[name=limit]").fill("1,000")
    await row.locator("form.credit-line input[name=reason]").fill("known client since 2024")
    await row.locator("form.credit-line button").click()
    await page.wait_for_url(re.compile(r"done=credit"))
    await expect(row.locator(".credit")).to_have_text("$1,000.00")
    await row.locator("form.top-up input[name=amount]").fill("12.345")
    await row.locator("form.top-up button").click()
    await expect(page.locator("#error")).to_contain_text("not an amount")
    await page.goto("/admin/money")
    await check_page(page, "admin", artifacts, axe_source)
    assert console.errors == []

    # the same form sent twice records the top-up once (its request id)
    with web_session(stack, admin_token) as http:
        html = http.get("/admin/money").text
        form = {"csrf": csrf_of(html), "client_id": party.client_id, "currency": "USD", "amount": "10",
                "request_id": "web-same-form-twice"}  # fmt: skip
        assert http.post("/admin/money/funding", data=form).status_code == 303
        assert http.post("/admin/money/funding", data=form).status_code == 303
    with stack.client(party.client_token) as api:
        assert api.get("/v1/balance").json()["balance_cents"] == balance + 250_50 + 10_00
    # a client or provider never reaches the admin page or its forms
    with web_session(stack, party.client_token) as http:
        assert http.get("/admin/money").status_code == 403
        form = {"csrf": csrf_of(http.get("/money").text), "client_id": party.client_id, "amount": "99"}
        assert http.post("/admin/money/funding", data=form).status_code == 403


def test_money_pages_for_people_with_no_money_yet_and_for_roles_without_one(stack: RunningStack) -> None:
    for role, empty in (("client", "Nothing has moved yet."), ("provider", "No submitted weeks yet.")):
        _, token = stack.create_user(role)
        with web_session(stack, token) as http:
            page = http.get("/money")
            assert page.status_code == 200 and empty in page.text
            assert page.text.count("<svg viewBox") == 2 and "$0.00" in page.text
    _, support = stack.create_user("support")
    with web_session(stack, support) as http:
        assert http.get("/money").status_code == 403
        assert http.get("/admin/money").status_code == 403
    _, admin = stack.create_user("admin")
    with web_session(stack, admin) as http:
        assert http.get("/money", follow_redirects=False).headers["location"] == "/admin/money"
        page = http.get("/admin/money")
        assert page.status_code == 200 and "record of money received outside the platform" in page.text


def test_a_client_with_money_in_two_currencies_switches_between_them(stack: RunningStack) -> None:
    client_id, token = stack.create_user("client")
    stack.fund(client_id, 12_34, currency="EUR")
    stack.fund(client_id, 56_78, currency="USD")
    with web_session(stack, token) as http:
        first = http.get("/money").text
        assert 'aria-label="Currency"' in first and 'href="/money?currency=USD"' in first
        assert '<dd id="balance">€12.34</dd>' in first  # the first currency in order
        usd = http.get("/money", params={"currency": "USD"}).text
        assert '<dd id="balance">$56.78</dd>' in usd and "/v1/statement.csv?currency=USD" in usd
        assert http.get("/money", params={"currency": "XYZ"}).status_code == 422
