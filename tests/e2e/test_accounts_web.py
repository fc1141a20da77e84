"""People's accounts in real Chromium, with mail read from the real SMTP server: a client signs up,
confirms the address, invites a provider; the provider accepts from the mailed link; the real agent signs
in by device approval (``workproof-agent login`` as a subprocess, approved in the browser) and a capture
uploaded with its device token appears in the client's Work View. A password reset ends the old
session; a support account enrols a second factor and then needs it to sign in."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from agent.config import AgentPaths, load_credentials
from domain.calendar import week_label
from tests.agent.processes import agent_env
from tests.badinput.images import screenshot
from tests.e2e.accounts_helpers import PASSWORD, link_in, local, new_email, own_address
from tests.e2e.test_web import CHROMIUM_ARGS, Console, images_loaded
from tests.harness import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


async def person(browser: Browser, stack: RunningStack) -> tuple[BrowserContext, Page, Console]:
    context = await browser.new_context(base_url=stack.api_url, viewport={"width": 1280, "height": 900},
                                        extra_http_headers={"X-Forwarded-For": own_address()})  # fmt: skip
    page = await context.new_page()
    return context, page, Console(page)


async def password_sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    await page.goto("/login")
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.click("#password-form button[type=submit]")


async def test_sign_up_invite_accept_agent_device_login_and_the_capture_in_the_work_view(
    stack: RunningStack, browser: Browser, artifacts: Path, tmp_path: Path
) -> None:
    client_email, provider_email = new_email("ana"), new_email("pat")
    # the client signs up and confirms the address from the mail
    _, client, client_console = await person(browser, stack)
    await client.goto("/signup")
    await client.fill("#name", "Ana Client")
    await client.fill("#email", client_email)
    await client.fill("#password", PASSWORD)
    await client.screenshot(path=artifacts / "signup.png", full_page=True)
    await client.click("#signup-form button[type=submit]")
    await expect(client.locator("#check-mail")).to_contain_text(client_email)
    await client.goto(local(link_in(stack.wait_mail(client_email, "Confirm").text, "/verify/")))
    await expect(client.locator("#done")).to_contain_text("is confirmed")
    await password_sign_in(client, client_email)
    await client.wait_for_url(re.compile(r"/contracts$"))

    # ... and invites a provider to an hourly offer
    await client.click("#invite-link")
    await client.fill("#email", provider_email)
    await client.fill("#title", "Invoice export")
    await client.fill("#rate", "45.00")
    await client.fill("#weekly_limit_hours", "30")
    await client.click("#invite-form button[type=submit]")
    await client.wait_for_url(re.compile(r"done=invited"))
    row = client.locator("tr.invitation", has_text=provider_email)
    await expect(row.locator(".state")).to_have_text("pending")
    await client.screenshot(path=artifacts / "invitations.png", full_page=True)

    # the provider reads the offer from the mailed link, creates an account and accepts
    _, provider, provider_console = await person(browser, stack)
    mail = stack.wait_mail(provider_email, "invites you")
    assert "Invoice export" in mail.text and "$45.00" in mail.text
    await provider.goto(local(link_in(mail.text, "/invite/")))
    await expect(provider.locator("#offer-title")).to_have_text("Invoice export")
    await expect(provider.locator("#offer-rate")).to_contain_text("$45.00")
    await provider.fill("#name", "Pat Provider")
    await provider.fill("#password", PASSWORD)
    await provider.screenshot(path=artifacts / "invitation.png", full_page=True)
    await provider.click("#accept")
    await provider.wait_for_url(re.compile(r"/contracts/[0-9a-f-]+/week/"))
    contract_id = provider.url.split("/contracts/")[1].split("/")[0]
    await client.reload()
    await expect(row.locator(".state")).to_have_text("accepted")

    # the real agent signs in by device approval
    paths = AgentPaths(config=tmp_path / "config", data=tmp_path / "data", runtime=tmp_path / "run")
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "login", stack.api_url, env=agent_env(paths),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert agent.stdout is not None
        first = (await asyncio.wait_for(agent.stdout.readline(), 30)).decode()
        link = re.search(r"(https?://\S+/device\?code=([A-Z]{4}-[A-Z]{4}))", first)
        assert link, first
        await provider.goto(local(link[1]))
        await provider.click("#check-device")
        await expect(provider.locator("#device-machine")).not_to_be_empty()
        await provider.screenshot(path=artifacts / "device-approval.png", full_page=True)
        await provider.click("#approve-device")
        await provider.wait_for_url(re.compile(r"/account\?done=approved_device"))
        out, err = await asyncio.wait_for(agent.communicate(), 60)
    finally:
        if agent.returncode is None:
            agent.kill()
    assert agent.returncode == 0, err.decode()
    assert "logged in" in out.decode()
    await provider.reload()
    await expect(provider.locator("tr.token[data-kind=device]")).to_have_count(1)
    token = load_credentials(paths).token

    # a capture uploaded with the device token appears in the client's Work View
    now = datetime.now(UTC)
    meta = {"capture_id": str(uuid.uuid4()), "captured_at": now.isoformat(), "memo": "Parsing invoices"}
    with stack.client(token) as http:
        uploaded = http.post(f"/v1/contracts/{contract_id}/captures", data={"meta": json.dumps(meta)},
                             files=[("images", ("m0.webp", screenshot("device"), "image/webp"))])  # fmt: skip
    assert uploaded.status_code == 201, uploaded.text
    await client.goto(f"/contracts/{contract_id}/week/{week_label(now)}")
    await expect(client.locator("td.slot .memo", has_text="Parsing invoices")).to_have_count(1)
    assert await images_loaded(client, "a.thumb img") == 1
    await client.screenshot(path=artifacts / "workview-from-device.png", full_page=True)
    assert client_console.errors == [] and provider_console.errors == []


async def test_a_password_reset_ends_the_old_session(stack: RunningStack, browser: Browser) -> None:
    email = new_email("reset")
    user_id, _ = stack.create_user("client", email)
    stack.set_password(user_id, PASSWORD)
    _, before, _ = await person(browser, stack)
    await password_sign_in(before, email)
    await before.wait_for_url(re.compile(r"/contracts$"))

    _, forgot, _ = await person(browser, stack)
    await forgot.goto("/login")
    await forgot.click("text=Forgot your password?")
    await forgot.fill("#email", email)
    await forgot.click("#reset-request-form button[type=submit]")
    await expect(forgot.locator("#check-mail")).to_contain_text("If " + email)
    await forgot.goto(local(link_in(stack.wait_mail(email, "new Workproof password").text, "/reset/")))
    await forgot.fill("#password", "a whole new passphrase")
    await forgot.click("#reset-form button[type=submit]")
    await expect(forgot.locator("#done")).to_contain_text("every session of your account has ended")

    await before.reload()
    await before.wait_for_url(re.compile(r"/login\?next="))
    await password_sign_in(before, email, PASSWORD)
    await expect(before.locator("#error")).to_contain_text("email address or password is wrong")
    await password_sign_in(before, email, "a whole new passphrase")
    await before.wait_for_url(re.compile(r"/contracts$"))


async def test_a_support_account_enrols_a_second_factor_and_then_needs_it(
    stack: RunningStack, browser: Browser, artifacts: Path
) -> None:
    _, admin_token = stack.create_user("admin")
    email = new_email("sam")
    with stack.client(admin_token) as http:
        sent = http.post("/v1/invitations", json={"email": email, "role": "support"})
    assert sent.status_code == 201, sent.text
    _, page, console = await person(browser, stack)
    await page.goto(local(link_in(stack.wait_mail(email, "invites you").text, "/invite/")))
    await page.fill("#name", "Sam Support")
    await page.fill("#password", PASSWORD)
    await page.click("#accept")
    # staff cannot use the pages until enrolled
    await page.wait_for_url(re.compile(r"/account/second-factor$"))
    await page.goto("/support")
    await page.wait_for_url(re.compile(r"/account/second-factor$"))
    secret = await page.locator("#totp-secret").inner_text()
    totp = pyotp.TOTP(secret)
    await page.fill("#code", "000000" if totp.now() != "000000" else "111111")
    await page.click("#enrol button[type=submit]")
    await expect(page.locator("#error")).to_contain_text("the code is wrong")
    await page.fill("#code", totp.now())
    await page.click("#enrol button[type=submit]")
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    await page.screenshot(path=artifacts / "second-factor-enrolled.png", full_page=True)
    await page.goto("/support")
    await expect(page).to_have_url(re.compile(r"/support$"))
    await page.click("form.logout button[type=submit]")
    await page.wait_for_url(re.compile(r"/login$"))

    await password_sign_in(page, email)
    await page.wait_for_url(re.compile(r"/login/second-factor"))
    await page.fill("#code", totp.at(time.time() + 30))  # the next step: a used code never works twice
    await page.click("form[action='/login/second-factor'] button[type=submit]")
    await page.wait_for_url(re.compile(r"/support$"))
    assert console.errors == []
