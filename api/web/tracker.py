"""The browser tracker: ``/contracts/{id}/track``, for a provider whose machine will not run the agent.

The page only renders what the script needs (``static/tracker.js``): the contract, the session's CSRF
token for the API calls it makes with the session cookie, the slot length, the memo limit, the WebP
quality and the image limits. Captures go through the same ingest endpoint as the agent's
(``POST /v1/contracts/{id}/captures``), so the same validation, rules and error codes apply; the page
adds ``source: "browser"`` to the meta. See docs/design.md, "The browser tracker"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import Query
from fastapi.responses import Response

from api.deps import ServicesDep, ViewerDep
from api.services import captures as capture_service
from api.web.render import base_context, page_router, render
from domain.calendar import SLOT, week_label
from domain.errors import Forbidden

router = page_router()

WEBP_QUALITY = 60  # the agent's default (agent/config.py)
SLOT_SECONDS = int(SLOT.total_seconds())


@router.get("/contracts/{contract_id}/track")
async def track(
    contract_id: uuid.UUID, viewer: ViewerDep, services: ServicesDep,
    slot_seconds: int = Query(0, ge=0, le=SLOT_SECONDS),
) -> Response:  # fmt: skip
    """The tracker page. ``slot_seconds`` (tests only) is honoured when the server's
    ``tracker_test_slot_seconds`` setting is above 0; ingest keeps its 12-minute slots regardless."""
    if viewer.user.role != "provider":
        raise Forbidden("only the contract's provider tracks time on it", "role_required")
    now = datetime.now(UTC)
    state = await services.db(
        lambda session: capture_service.tracker_state(session, viewer.user, contract_id, now)
    )
    settings = services.settings
    test_slots = settings.tracker_test_slot_seconds > 0 and slot_seconds > 0
    contract, last = state.contract, state.last
    return render("track.html", base_context(
        viewer, f"Track · {contract.title}", contract=contract, week=week_label(now),
        slot_seconds=slot_seconds if test_slots else SLOT_SECONDS, test_slots=test_slots,
        work_view_on=state.work_view_on, week_slots=state.week_slots,
        max_memo=settings.max_memo_chars, max_pixels=settings.max_image_pixels,
        max_bytes=settings.max_image_bytes, quality=WEBP_QUALITY, last=last,
    ))  # fmt: skip
