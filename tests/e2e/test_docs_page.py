"""``/docs`` is served from this server's own copy of Swagger UI, under the pages' Content-Security-Policy:
in Chromium it renders the API's operations with no request leaving the machine and no CSP violation."""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Request, async_playwright

from tests.e2e.test_web import CHROMIUM_ARGS
from tests.harness import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_the_api_docs_render_from_local_assets_under_the_csp(stack: RunningStack) -> None:
    own = urlsplit(stack.api_url).netloc
    foreign: list[str] = []
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = await browser.new_page()

        def on_request(request: Request) -> None:
            if urlsplit(request.url).netloc not in (own, ""):
                foreign.append(request.url)

        page.on("request", on_request)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        response = await page.goto(f"{stack.api_url}/docs")
        assert response is not None and response.status == 200
        assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
        await page.get_by_text(
            "/v1/contracts/{contract_id}/timesheets/{week}/approve", exact=True
        ).first.wait_for(timeout=15_000)
        await browser.close()
    assert foreign == []
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
