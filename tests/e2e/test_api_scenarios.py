"""Every worked example of tests/data/timesheets.json, reproduced through the API.

Each case gets its own client, provider and contract. The week of the scenarios lies outside what an
upload through the API may touch today (the edit cutoff), so the data goes in through the same store
functions the API calls, with the clock each of them takes set to a moment inside the right week's edit
window: the offer and its acceptance, Work View intervals as the scenario states them, captures with
real WebP images in the stack's object store, deletions, tracked slots and manual time. Then both
parties read the week over HTTP, and every figure and every entry must be the scenario's.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from domain.calendar import as_utc, slot_start, week_end, week_start
from domain.errors import Conflict
from domain.wire import CaptureMeta
from store import captures as capture_store
from store import contracts as contract_store
from store.db import session_scope
from store.models import Capture, User, WorkViewInterval
from tests.badinput.images import screenshot
from tests.harness import RunningStack

pytestmark = pytest.mark.e2e

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "timesheets.json"
CASES: list[dict[str, Any]] = json.loads(SCENARIOS.read_text())["cases"]
FIGURES = (
    "documented_minutes", "tracked_minutes", "manual_minutes", "billable_minutes", "guaranteed_minutes",
    "amount_cents", "guaranteed_cents",
)  # fmt: skip
ENTRY_FIELDS = ("kind", "minutes", "billable_minutes", "guaranteed_minutes", "not_guaranteed_because")


def at(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


def inside_edit_window(moment: datetime) -> datetime:
    """Monday 06:00 UTC after ``moment``'s week: after everything of that week happened, before its
    edit cutoff (Monday 12:00 UTC)."""
    return week_end(moment) + timedelta(hours=6)


def work_view_was_on(case: dict[str, Any], moment: datetime) -> bool:
    return any(
        at(start) <= moment and (end is None or moment < at(end))
        for start, end in case["contract"]["work_view"]
    )


def limits(stack: RunningStack) -> capture_store.IngestLimits:
    s = stack.settings
    return capture_store.IngestLimits(
        max_image_bytes=s.max_image_bytes, max_image_pixels=s.max_image_pixels, max_monitors=s.max_monitors,
        max_capture_pixels=s.max_capture_pixels,
        max_memo_chars=s.max_memo_chars, max_clock_skew=timedelta(seconds=s.max_clock_skew_seconds),
        policy=s.policy,
    )  # fmt: skip


def user(session: Session, user_id: str) -> User:
    found = session.get(User, uuid.UUID(user_id))
    assert found is not None
    return found


def build_case(stack: RunningStack, case: dict[str, Any], client_id: str, provider_id: str) -> str:
    """The scenario's contract and week, written by the store functions the API uses; returns its id."""
    terms = case["contract"]
    first_on = min(at(start) for start, _ in terms["work_view"])
    with session_scope(stack.database_url) as session:
        contract = contract_store.create_offer(
            session=session, client=user(session, client_id), provider_id=uuid.UUID(provider_id),
            title=case["name"], rate_cents=terms["rate_cents"], currency="USD",
            weekly_limit_hours=terms["weekly_limit_hours"], manual_allowed=terms["manual_allowed"], work_view=False,
        )  # fmt: skip
        contract_store.accept(
            session=session, provider=user(session, provider_id), contract=contract, now=first_on
        )
        for start, end in terms["work_view"]:
            session.add(
                WorkViewInterval(contract_id=contract.id, start=at(start), end=at(end) if end else None)
            )
        contract_id = contract.id

    with session_scope(stack.database_url) as session:
        provider = user(session, provider_id)
        for index, capture in enumerate(case["captures"]):
            moment = at(capture["captured_at"])
            meta = CaptureMeta(
                capture_id=uuid.uuid4(), captured_at=moment, memo=capture["memo"], kind="screenshot"
            )
            image = screenshot(f"{case['name']} #{index}")
            now = inside_edit_window(moment)
            if not work_view_was_on(case, moment):
                # Refused at ingest, as the rule says; kept as a stray row anyway, to show the arithmetic
                # ignores a screenshot dated while Work View was off even if one is in the database.
                with pytest.raises(Conflict, match="Work View was off"):
                    capture_store.ingest_capture(
                        session=session, store=stack.store, user=provider, contract_id=contract_id, meta=meta,
                        images=[image], limits=limits(stack), now=now,
                    )  # fmt: skip
                write_stray_screenshot(session, contract_id, meta)
                continue
            row, created = capture_store.ingest_capture(
                session=session, store=stack.store, user=provider, contract_id=contract_id, meta=meta,
                images=[image], limits=limits(stack), now=now,
            )  # fmt: skip
            assert created and row.thumbnail_key is not None
            stored = [*row.image_keys, row.thumbnail_key]
            assert all(stack.store.exists(key) for key in stored)  # the image and its thumbnail
            if capture.get("deleted"):
                capture_store.delete_capture(
                    session=session, store=stack.store, user=provider, capture_id=meta.capture_id,
                    policy=stack.settings.policy, now=now,
                )  # fmt: skip
                assert not any(stack.store.exists(key) for key in stored)
        for tracked in case.get("tracked", []):
            moment = at(tracked["at"])
            meta = CaptureMeta(
                capture_id=uuid.uuid4(), captured_at=moment, memo=tracked["memo"], kind="tracked"
            )
            _, created = capture_store.ingest_capture(
                session=session, store=stack.store, user=provider, contract_id=contract_id, meta=meta, images=[],
                limits=limits(stack), now=inside_edit_window(moment),
            )  # fmt: skip
            assert created
        for manual in case["manual"]:
            capture_store.add_manual(
                session=session, user=provider, contract_id=contract_id, start=at(manual["start"]),
                end=at(manual["end"]), memo=manual["memo"], policy=stack.settings.policy,
                now=inside_edit_window(at(manual["start"])),
            )  # fmt: skip
    return str(contract_id)


def write_stray_screenshot(session: Session, contract_id: uuid.UUID, meta: CaptureMeta) -> None:
    session.add(
        Capture(
            capture_id=meta.capture_id, contract_id=contract_id, kind="screenshot", captured_at=meta.captured_at,
            slot_start=slot_start(meta.captured_at), week_start=week_start(meta.captured_at), memo=meta.memo,
            monitor_count=1, image_keys=[f"{contract_id}/stray/{meta.capture_id}.webp"], sha256=["0" * 64],
            widths=[320], heights=[200],
        )
    )  # fmt: skip
    session.commit()


def shown(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as the scenario file states one."""
    return {"start": at(entry["start"]), **{name: entry[name] for name in ENTRY_FIELDS}}


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_the_api_shows_the_scenarios_timesheet_to_both_parties(
    stack: RunningStack, case: dict[str, Any]
) -> None:
    client_id, client_token = stack.create_user("client")
    provider_id, provider_token = stack.create_user("provider")
    contract_id = build_case(stack, case, client_id, provider_id)
    expect = case["expect"]

    for token in (client_token, provider_token):
        with stack.client(token) as http:
            response = http.get(f"/v1/contracts/{contract_id}/timesheets/{case['week_start']}")
        assert response.status_code == 200, response.text
        sheet = response.json()
        assert at(sheet["week_start"]) == at(case["week_start"] + "T00:00:00+00:00")
        assert sheet["rate_cents"] == case["contract"]["rate_cents"]
        assert sheet["weekly_limit_hours"] == case["contract"]["weekly_limit_hours"]
        assert {name: sheet[name] for name in FIGURES} == {name: expect[name] for name in FIGURES}
        assert [shown(entry) for entry in sheet["entries"]] == [shown(entry) for entry in expect["entries"]]
        assert not sheet["frozen"]


def test_the_scenario_file_covers_every_kind_of_entry() -> None:
    """Guards against an emptied or renamed scenario file turning the test above into nothing."""
    assert len(CASES) >= 6
    assert {entry["kind"] for case in CASES for entry in case["expect"]["entries"]} == {
        "slot",
        "tracked",
        "manual",
    }
    assert any(capture.get("deleted") for case in CASES for capture in case["captures"])


def test_the_list_of_weeks_includes_the_running_week_live(stack: RunningStack) -> None:
    """A client watching this week asks the list and sees it, open, with what it holds so far."""
    _, client_token = stack.create_user("client")
    provider_id, provider_token = stack.create_user("provider")
    contract_id = stack.create_contract(client_token, provider_id)
    meta = {"capture_id": str(uuid.uuid4()), "captured_at": datetime.now(UTC).isoformat(), "memo": "Now",
            "kind": "screenshot"}  # fmt: skip
    with stack.client(provider_token) as http:
        uploaded = http.post(
            f"/v1/contracts/{contract_id}/captures",
            files=[("meta", (None, json.dumps(meta).encode(), None)),
                   ("images", ("m.webp", screenshot("now"), "image/webp"))],
        )  # fmt: skip
        assert uploaded.status_code == 201, uploaded.text
    with stack.client(client_token) as http:
        weeks = http.get(f"/v1/contracts/{contract_id}/timesheets").json()
    this_week = week_start(datetime.now(UTC))
    assert weeks[0]["week_start"][:10] == f"{this_week:%Y-%m-%d}"
    assert weeks[0]["status"] == "open" and weeks[0]["billable_minutes"] == 12
