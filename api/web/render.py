"""What every page shares: the templates, rendering, the page route (sign-in redirect, refusals shown as
pages with their status, security headers, ``Server-Timing``), the static files, and the words for
statuses and notices. The pages themselves: ``account.py`` (sign-in), ``signup.py`` (sign-up,
confirmation, password reset), ``profile.py`` (second factor, sessions, devices), ``invitations.py``,
``devices.py``, ``admin.py``, ``devmail.py``, ``contracts.py`` (the contract list
and the week), ``support.py`` (the support console); ``pages.py`` puts them together."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from api.deps import LoginRequired, SetupRequired, Viewer
from api.web.security import secure
from api.web.view import MINUTES, REASON_WORDS, Clock, duration, money, zone
from domain.errors import DomainError
from store.objects import ObjectStoreUnavailable

log = logging.getLogger("workproof.web")

HERE = Path(__file__).parent
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every value is escaped; nothing is marked safe
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.globals.update(money=money, duration=duration, MINUTES=MINUTES)
TEMPLATES.filters["reasons"] = lambda codes: ", ".join(REASON_WORDS.get(c, c) for c in codes)

NOTICES = {
    "approved": "Approved: the client will be charged for the week.",
    "disputed": "Disputed: the provider has been asked to respond.",
    "deleted": "The capture was deleted: its 12 minutes are no longer in the week.",
    "manual": "Manual time added. It is billable but never guaranteed.",
    "manual_deleted": "The manual time entry was deleted.",
    "accepted": "You accepted the dispute: the disputed entries are refunded to the client.",
    "contested": "You contested the dispute: support will decide each entry.",
    "resolved": "Resolution recorded.",
    "extended": "Deadline extended.",
    "payout_decided": "Payout decision recorded.",
    "invited": "Invitation sent: the provider gets an email with a link to read and accept the offer.",
    "offered": "The address is a provider's already: the offer is in their contract list and mailed to them.",
    "withdrawn": "Withdrawn.",
    "resent": "Sent again, with a new link valid 7 more days.",
    "declined": "Declined.",
    "approved_device": "Device approved: the agent on that machine is signed in now.",
    "revoked": "Ended.",
    "saved": "Saved.",
}
STATUS_WORDS = {
    "open": "open: the week is still being tracked",
    "freezing": "being submitted",
    "submitted": "submitted: waiting for the client's review",
    "approved": "approved by the client",
    "auto_approved": "auto-approved (no dispute before the deadline)",
    "disputed": "disputed: waiting for the provider's answer",
    "in_support": "in support: support decides each disputed entry",
    "charged": "charged: held for the security period",
    "payout_review": "a guarantee payout waits for support",
    "paid_by_guarantee": "paid by the guarantee fund",
    "unpaid": "unpaid",
    "settled": "settled",
}
TEMPLATES.globals["STATUS_WORDS"] = STATUS_WORDS


@asynccontextmanager
async def steady_heap(app: Any) -> AsyncIterator[None]:
    """After start-up, move every object alive so far (modules, clients, templates) out of the
    collector's reach: a full collection then scans only what requests made, instead of pausing a page
    for the whole heap (the p95 of a 200-slot Work View otherwise doubles). Runs after the app's own
    start-up (FastAPI nests a router's lifespan inside the app's)."""
    gc.collect()
    gc.freeze()
    yield


class SecureStatic(StaticFiles):
    """The CSS and JS, with the same headers as the pages and a short cache."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        secure(response, cache=True)
        response.headers.setdefault("Cache-Control", "public, max-age=300")
        return response


def render(
    name: str, context: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    context.setdefault("viewer", None)
    context.setdefault("clock", Clock(UTC))
    context.setdefault("notice", None)
    context.setdefault("error", None)
    return HTMLResponse(TEMPLATES.get_template(name).render(context), status_code=status, headers=headers)


class PageRoute(APIRoute):
    """Every page route: a missing session redirects to sign-in; a refused action, a malformed request
    or an unknown id is shown as a page with its status; every answer gets the security headers and
    the server's time (``Server-Timing``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            began = time.perf_counter()
            response: Response
            try:
                response = await handle(request)
            except LoginRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            except SetupRequired as setup:
                response = RedirectResponse(setup.to, status_code=303)
            except DomainError as error:
                response = error_page(error.message, error.status_code)
            except RequestValidationError as error:
                if any(item.get("loc", ("",))[0] == "path" for item in error.errors()):
                    response = error_page("no such page: check the address", 404)
                else:
                    response = error_page(
                        "the form or address was not understood: go back and try again", 422
                    )
            except ObjectStoreUnavailable:
                response = error_page("image storage is unavailable: try again shortly", 503)
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - began) * 1000:.1f}"
            return secure(response)

        return guarded


def error_page(message: str, status: int) -> Response:
    title = {404: "Not found", 403: "Not allowed", 503: "Unavailable"}.get(status, "Not possible")
    return render("error.html", {"title": title, "message": message, "status": status}, status)


def page_router() -> APIRouter:
    """A router for one area of pages: not in the API's schema, every route a :class:`PageRoute`."""
    return APIRouter(include_in_schema=False, route_class=PageRoute)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def clock_for(viewer: Viewer) -> Clock:
    return Clock(zone(viewer.user.timezone))


def base_context(viewer: Viewer, title: str, **more: Any) -> dict[str, Any]:
    return {"viewer": viewer, "clock": clock_for(viewer), "title": title, **more}
