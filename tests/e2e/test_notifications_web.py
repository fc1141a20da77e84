"""A week followed by its notifications, in real Chromium, with every mail read from the real SMTP
server: submitted (client and provider), review closing (client), auto-approved, charged and released
(provider). Each mail links to the week; each inbox item is clicked through to the week's page; the
bell counts what is unread; "Mark all read" clears it. The workflows run on the stack with a short
policy (review deadline a minute away, the reminder 40 s before it)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from temporalio.client import Client, WorkflowHandle

from domain.calendar import week_label
from domain.messages import DeadlinePolicy, TimesheetView
from store.db import session_scope
from store.models import User
from tests.e2e.accounts_helpers import PASSWORD, own_address
from tests.e2e.test_support_api import Party, eventually, make_party, past_week, start_timesheet, temporal
from tests.e2e.test_web import CHROMIUM_ARGS
from tests.harness import RunningStack
from workflows.timesheet import TimesheetWorkflow

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


async def signed_in_page(browser: Browser, stack: RunningStack, email: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(
        base_url=stack.api_url, extra_http_headers={"X-Forwarded-For": own_address()}
    )
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("#password-form button[type=submit]")
    await expect(page.locator("#bell")).to_be_visible()
    return context, page


def email_of(stack: RunningStack, user_id: str) -> str:
    with session_scope(stack.database_url) as session:
        user = session.get(User, uuid.UUID(user_id))
        assert user is not None
        return user.email


async def start_week(party: Party, client: Client, week: datetime) -> WorkflowHandle[Any, TimesheetView]:
    """The week's timesheet workflow with a short policy: submitted at once, the review deadline 70 s
    away, the reminder 40 s before it, funds released 2 s after the charge."""
    review_at = datetime.now(UTC) + timedelta(seconds=70)
    policy = DeadlinePolicy(
        review_deadline_after_week_s=int((review_at - (week + timedelta(days=7))).total_seconds()),
        response_window_s=3 * 86400, security_period_s=2, review_reminder_s=40,
    )  # fmt: skip
    return await start_timesheet(party, client, week, policy)


async def click_through(page: Page, title: str, week_path: str) -> None:
    """Open the inbox, click the unread item titled ``title``: the week's page opens, the item is read."""
    await page.goto("/inbox")
    item = page.locator("#inbox li.item", has_text=title)
    await expect(item).to_have_class("item unread")
    await item.locator("a.open").click()
    await page.wait_for_url(f"**{week_path}")
    await page.goto("/inbox")
    await expect(page.locator("#inbox li.item", has_text=title)).to_have_class("item read")


async def test_a_week_from_submitted_to_review_closing_to_auto_approval_in_mail_and_inbox(
    stack: RunningStack, browser: Browser
) -> None:
    client = await temporal(stack)
    party = await make_party(stack, client, title="Notified week")
    for user_id in (party.client_id, party.provider_id):
        stack.set_password(user_id, PASSWORD)
    client_email, provider_email = email_of(stack, party.client_id), email_of(stack, party.provider_id)
    week = past_week()
    party.manual(week + timedelta(hours=10), 60, "Invoice export")
    wk = week_label(week)
    week_path = f"/contracts/{party.contract_id}/week/{wk}"
    handle = await start_week(party, client, week)

    # submitted: both parties are mailed, with what to do, by when (their zone and UTC) and the link
    submitted = f"Timesheet for the week of {wk} submitted"
    mail = stack.wait_mail(client_email, submitted, timeout=60)
    assert week_path in mail.text and "The review closes" in mail.text and "UTC" in mail.text
    assert (
        "approve it or dispute entries" in mail.text
        and f'href="{stack.settings.base_url}{week_path}"' in mail.html
    )
    stack.wait_mail(provider_email, submitted, timeout=60)

    client_context, page = await signed_in_page(browser, stack, client_email)
    await expect(page.locator("#bell-count")).not_to_have_text("0")
    await click_through(page, submitted, week_path)

    # the reminder before the deadline: mailed to the client, clicked through from the inbox
    closing = f"Review of the week of {wk} closes soon"
    reminder = stack.wait_mail(client_email, closing, timeout=90)
    assert week_path in reminder.text and "The review closes" in reminder.text
    await click_through(page, closing, week_path)
    assert stack.mails(provider_email) and not [
        m for m in stack.mails(provider_email) if closing in m.subject
    ]

    # silence approves the week at the deadline; the provider hears the funds are released
    async def released() -> bool:
        return (await handle.query(TimesheetWorkflow.view)).status == "settled"

    await eventually(released, within=150)
    released_title = f"Funds for the week of {wk} are released"
    stack.wait_mail(provider_email, released_title, timeout=60)
    provider_context, provider_page = await signed_in_page(browser, stack, provider_email)
    await expect(provider_page.locator("#bell-count")).to_have_text(
        "3"
    )  # offer received, submitted, released
    await click_through(provider_page, released_title, week_path)
    await expect(provider_page.locator("h1")).to_be_visible()
    await provider_page.click("#read-all button")
    await expect(provider_page.locator("#bell-count")).to_be_hidden()
    await expect(provider_page.locator("#inbox li.unread")).to_have_count(0)

    # every mail of this week came once, by Message-ID
    for email in (client_email, provider_email):
        ids = [m.message_id for m in stack.mails(email)]
        assert len(ids) == len(set(ids))
    await client_context.close()
    await provider_context.close()
