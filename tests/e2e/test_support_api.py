"""Support's API on the real stack: the dispute queue, search through Temporal visibility, a contract's
timeline in plain words, and raw workflow histories that load and replay.

The helpers here (a contract whose past week is submitted for review, with real images) are shared with
``test_web.py``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.calendar import slot_start, week_label, week_start
from domain.messages import TIMESHEET_SHAPE, DeadlinePolicy, TimesheetInput, TimesheetView
from store import security
from store.db import session_scope
from store.images import check_image, thumbnail
from store.models import AuditLog, Capture, Contract, ManualEntry, User, WorkViewInterval
from store.users import create_user
from tests.badinput.images import screenshot
from tests.harness import RunningStack
from workflows.attributes import CLIENT_ID, CONTRACT_ID, PROVIDER_ID, TIMESHEET_STATUS, WEEK_START
from workflows.client import connect
from workflows.contract import ContractWorkflow
from workflows.timesheet import TimesheetWorkflow, timesheet_workflow_id

pytestmark = pytest.mark.e2e

RATE = 6000  # 60.00 an hour: a 12-minute slot is 12.00


# --- shared helpers ------------------------------------------------------------------------------------


def screen_image(text: str, size: tuple[int, int] = (800, 450)) -> bytes:
    """A screen-like WebP with ``text`` (the memo, say) written in its title bar."""
    return screenshot(text, size=size)


@dataclass
class Party:
    """A contract between a fresh client and provider (Work View on since a month ago)."""

    stack: RunningStack
    contract_id: str
    client_id: str
    client_token: str
    provider_id: str
    provider_token: str
    captures: list[str] = field(default_factory=list)

    def capture(self, at: datetime, memo: str, *, kind: str = "screenshot", monitors: int = 1,
                keys: int | None = 120, mouse: int | None = 45) -> str:  # fmt: skip
        """A capture row written straight to the database, with real images in the object store (a
        past week's captures can no longer be uploaded through the API)."""
        capture_id = uuid.uuid4()
        week = week_start(at)
        image_keys: list[str] = []
        thumb_key = None
        sizes: list[tuple[int, int]] = []
        if kind == "screenshot":
            base = f"{self.contract_id}/{week_label(week)}/{capture_id}/test"
            for monitor in range(monitors):
                data = screen_image(f"{memo} · monitor {monitor + 1}")
                key = f"{base}-m{monitor}.webp"
                self.stack.store.put(key, data, "image/webp")
                image_keys.append(key)
                sizes.append((800, 450))
                if monitor == 0:
                    thumb_key = f"{base}-thumb.webp"
                    checked = check_image(data, index=0, max_bytes=8 << 20, max_pixels=40_000_000)
                    self.stack.store.put(thumb_key, thumbnail(checked), "image/webp")
        with session_scope(self.stack.database_url) as session:
            session.add(
                Capture(
                    capture_id=capture_id, contract_id=uuid.UUID(self.contract_id), kind=kind, captured_at=at,
                    slot_start=slot_start(at), week_start=week, memo=memo, monitor_count=len(image_keys),
                    image_keys=image_keys, thumbnail_key=thumb_key, sha256=["0" * 64] * len(image_keys),
                    widths=[w for w, _ in sizes], heights=[h for _, h in sizes], keyboard_events=keys,
                    mouse_events=mouse,
                )
            )  # fmt: skip
        self.captures.append(str(capture_id))
        return str(capture_id)

    def manual(self, start: datetime, minutes: int, memo: str) -> str:
        with session_scope(self.stack.database_url) as session:
            row = ManualEntry(
                contract_id=uuid.UUID(self.contract_id), week_start=week_start(start), start=start,
                end=start + timedelta(minutes=minutes), memo=memo,
            )  # fmt: skip
            session.add(row)
            session.flush()
            return str(row.id)

    def set_timezone(self, user_id: str, timezone: str) -> None:
        from store.models import User

        with session_scope(self.stack.database_url) as session:
            user = session.get(User, uuid.UUID(user_id))
            assert user is not None
            user.timezone = timezone


async def temporal(stack: RunningStack) -> Client:
    return await connect(stack.stack.temporal_address)


def grant_credit(stack: RunningStack, client_id: str, cents: int) -> None:
    with session_scope(stack.database_url) as session:
        admin = create_user(
            session=session, email=f"admin-{uuid.uuid4().hex[:8]}@test.workproof.dev", role="admin"
        )
        security.set_credit_line(
            session=session, client_id=uuid.UUID(client_id), currency="USD", limit_cents=cents, reason="test",
            granted_by=admin.id,
        )  # fmt: skip


async def make_party(
    stack: RunningStack, client: Client, *, title: str = "Invoice export", funds: int = 5000_00
) -> Party:
    """A contract accepted through the API (its workflow running), backdated a month in the database so
    earlier captures fall inside it with Work View on."""
    client_id, client_token = stack.create_user("client")
    provider_id, provider_token = stack.create_user("provider")
    contract_id = stack.create_contract(
        client_token, provider_id, rate_cents=RATE, title=title, manual_allowed=True
    )
    if funds:
        stack.fund(client_id, funds)
    # The contract workflow records Work View and then opens this week's timesheet; wait for that, so
    # the backdated interval below is not replaced by the workflow's first record.
    this_week = timesheet_workflow_id(contract_id, week_start(datetime.now(UTC)))
    await eventually(lambda: client.get_workflow_handle(this_week).describe())
    month_ago = slot_start(datetime.now(UTC) - timedelta(days=30))
    with session_scope(stack.database_url) as session:
        contract = session.get(Contract, uuid.UUID(contract_id))
        assert contract is not None
        contract.accepted_at = month_ago
        for interval in session.exec(
            select(WorkViewInterval).where(WorkViewInterval.contract_id == contract.id)
        ):
            interval.start = month_ago
            session.add(interval)
    return Party(stack, contract_id, client_id, client_token, provider_id, provider_token)


async def eventually(probe: Any, within: float = 20.0) -> Any:
    """Await ``probe()`` until it returns something truthy without raising."""
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
        except Exception as error:
            last = error
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {within}s: {last!r}")


def past_week(weeks_back: int = 2) -> datetime:
    """A week whose edit cutoff has certainly passed (its captures are frozen at once)."""
    return week_start(datetime.now(UTC)) - timedelta(days=7 * weeks_back)


async def start_timesheet(
    party: Party, client: Client, week: datetime, policy: DeadlinePolicy
) -> WorkflowHandle[Any, TimesheetView]:
    """The week's timesheet workflow on the stack, as the contract workflow starts it (its search
    attributes included), with ``policy``'s deadlines."""
    return await client.start_workflow(
        TimesheetWorkflow.run,
        TimesheetInput(
            contract_id=party.contract_id, client_id=party.client_id, provider_id=party.provider_id,
            week_start=week, rate_cents=RATE, currency="USD", weekly_limit_hours=40, policy=policy,
            shape=TIMESHEET_SHAPE,
        ),
        id=timesheet_workflow_id(party.contract_id, week),
        task_queue=party.stack.settings.temporal_task_queue,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(CONTRACT_ID, party.contract_id), SearchAttributePair(PROVIDER_ID, party.provider_id),
            SearchAttributePair(CLIENT_ID, party.client_id), SearchAttributePair(WEEK_START, week),
            SearchAttributePair(TIMESHEET_STATUS, "open"),
        ]),
    )  # fmt: skip


async def submit_week(
    party: Party, client: Client, week: datetime, *, review_days_ahead: float = 2, security_s: int = 3600
) -> WorkflowHandle[Any, TimesheetView]:
    """Start the week's timesheet workflow on the stack (edit cutoff passed, review deadline ahead) and
    wait until it is submitted to the client."""
    now = datetime.now(UTC)
    review_after_week = (now + timedelta(days=review_days_ahead)) - (week + timedelta(days=7))
    policy = DeadlinePolicy(
        review_deadline_after_week_s=int(review_after_week.total_seconds()),
        response_window_s=3 * 86400,
        security_period_s=security_s,
    )
    handle = await start_timesheet(party, client, week, policy)

    async def submitted() -> bool:
        view = await handle.query(TimesheetWorkflow.view)
        return view.status == "submitted"

    await eventually(submitted)
    return handle


async def status_of(handle: WorkflowHandle[Any, TimesheetView]) -> str:
    return (await handle.query(TimesheetWorkflow.view)).status


def slot_id(at: datetime) -> str:
    return f"slot-{slot_start(at):%Y%m%dT%H%MZ}"


# --- tests ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def support(stack: RunningStack) -> tuple[str, str]:
    return stack.create_user("support")


async def test_search_finds_timesheets_by_contract_status_and_week(
    stack: RunningStack, support: tuple[str, str]
) -> None:
    client = await temporal(stack)
    party = await make_party(stack, client)
    week = past_week()
    party.capture(week + timedelta(days=1, hours=9, minutes=3), "Schema migration")
    await submit_week(party, client, week)
    submitted_id = timesheet_workflow_id(party.contract_id, week)
    this_week_id = timesheet_workflow_id(party.contract_id, week_start(datetime.now(UTC)))

    with stack.client(support[1]) as http:

        async def found(**params: str) -> set[str]:
            response = http.get("/v1/support/timesheets", params={"contract_id": party.contract_id, **params})
            assert response.status_code == 200, response.text
            return {item["workflow_id"] for item in response.json()["items"]}

        assert await eventually(lambda: found(status="submitted")) == {submitted_id}
        assert this_week_id in await found(status="open")
        assert submitted_id not in await found(status="open")
        assert await found(week=week_label(week)) == {submitted_id}
        assert await found(week=week_label(week), status="approved") == set()
        by_provider = http.get(
            "/v1/support/timesheets", params={"provider_id": party.provider_id, "limit": 1}
        )
        body = by_provider.json()
        assert body["total"] == 2 and len(body["items"]) == 1 and body["next_page_token"]
        second = http.get(
            "/v1/support/timesheets",
            params={"provider_id": party.provider_id, "limit": 1, "page_token": body["next_page_token"]},
        ).json()
        assert {body["items"][0]["workflow_id"], second["items"][0]["workflow_id"]} == {
            submitted_id,
            this_week_id,
        }

        # only validated values reach the query: anything else is refused before Temporal sees it
        assert http.get("/v1/support/timesheets", params={"status": "submitted' OR 1=1"}).status_code == 422
        assert (
            http.get("/v1/support/timesheets", params={"contract_id": "x' OR WorkflowId != ''"}).status_code
            == 422
        )
        # any day of the week finds it (a Wednesday, a Sunday), and so does its ISO name
        assert await found(week=(week + timedelta(days=2)).date().isoformat()) == {submitted_id}
        assert await found(week=(week + timedelta(days=6)).date().isoformat()) == {submitted_id}
        assert await found(week=f"{week:%G-W%V}") == {submitted_id}
        refused = http.get("/v1/support/timesheets", params={"week": "2026-13-01"})
        assert refused.status_code == 422 and refused.json()["code"] == "week_invalid"
    with stack.client(party.client_token) as http:
        assert http.get("/v1/support/timesheets").status_code == 403
        assert http.get("/v1/support/disputes").status_code == 403


async def test_a_disputed_week_is_queued_and_its_timeline_tells_the_story_in_words(
    stack: RunningStack, support: tuple[str, str]
) -> None:
    client = await temporal(stack)
    party = await make_party(stack, client, title="Billing rewrite")
    week = past_week()
    monday = week + timedelta(hours=10)
    documented = [
        party.capture(monday + timedelta(minutes=12 * i + 4), f"Refactor invoices {i}") for i in range(3)
    ]
    assert len(documented) == 3
    manual_id = party.manual(monday + timedelta(hours=2), 30, "Call with the client")
    handle = await submit_week(party, client, week)
    wk = week_label(week)

    with stack.client(support[1]) as http:
        extended = http.post(
            f"/v1/contracts/{party.contract_id}/timesheets/{wk}/extend",
            json={"request_id": "extend-review-1", "deadline": "review",
                  "until": (datetime.now(UTC) + timedelta(days=4)).isoformat(), "reason": "client on holiday"},
        )  # fmt: skip
        assert extended.status_code == 200, extended.text
    disputed = [slot_id(monday + timedelta(minutes=4)), f"manual-{manual_id}"]
    with stack.client(party.client_token) as http:
        response = http.post(
            f"/v1/contracts/{party.contract_id}/timesheets/{wk}/dispute",
            json={
                "request_id": "dispute-1-abc",
                "entry_ids": disputed,
                "reason": "I was not told about this call",
            },
        )
        assert response.status_code == 200, response.text
        assert (
            http.post(f"/v1/contracts/{party.contract_id}/work-view", json={"on": False}).status_code == 200
        )
    with stack.client(party.provider_token) as http:
        response = http.post(
            f"/v1/contracts/{party.contract_id}/timesheets/{wk}/respond",
            json={"request_id": "respond-1-abc", "accept": False, "note": "The call was agreed by mail"},
        )
        assert response.status_code == 200, response.text

    with stack.client(support[1]) as http:

        def queued() -> list[dict[str, Any]]:
            body = http.get("/v1/support/disputes", params={"limit": 200}).json()
            return [
                i
                for i in body["items"]
                if i["contract_id"] == party.contract_id and i["status"] == "in_support"
            ]

        item = (await eventually(queued))[0]
        assert item["iso_week"] == f"{week:%G-W%V}" and item["reason"] == "I was not told about this call"
        assert sorted(item["disputed_entries"]) == sorted(disputed) and item["provider_response"] == "contest"

        resolved = http.post(
            f"/v1/contracts/{party.contract_id}/timesheets/{wk}/resolve",
            json={"request_id": "resolve-1-abc", "resolutions": {disputed[0]: "provider", disputed[1]: "client"},
                  "note": "documented slot stands; the call was not documented"},
        )  # fmt: skip
        assert resolved.status_code == 200, resolved.text
        await eventually(lambda: _status_is(handle, "charged"))
        assert not queued()

        timeline = http.get(f"/v1/support/contracts/{party.contract_id}/timeline")
        assert timeline.status_code == 200, timeline.text
        body = timeline.json()
    texts = [f"{e['actor']}: {e['text']}" for e in body["events"]]
    story = "\n".join(texts)
    expected = [
        "(provider): accepted the contract “Billing rewrite” at $60.00/h",
        "(support): extended the review deadline of week",
        "because: “client on holiday”",
        "(client): disputed 2 entries of week",
        "because: “I was not told about this call”",
        "(client): turned Work View off, from",
        "(provider): contested the dispute",
        "“The call was agreed by mail”",
        "(support): resolved the dispute of week",
        "→ owed to the provider",
        "→ refunded to the client",
        "The client was charged $36.00 for week",
    ]
    for words in expected:
        assert words in story, f"{words!r} missing from:\n{story}"
    frozen = next(e for e in body["events"] if e["kind"] == "frozen")
    assert (
        "1 h 06 min billable, $66.00, of which $36.00 guaranteed" in frozen["text"]
    )  # 36 min documented, 30 manual
    assert [e["at"] for e in body["events"]] == sorted(e["at"] for e in body["events"])
    assert {w["workflow_type"] for w in body["workflows"]} == {"ContractWorkflow", "TimesheetWorkflow"}


async def _status_is(handle: WorkflowHandle[Any, TimesheetView], status: str) -> bool:
    return await status_of(handle) == status


async def test_raw_histories_load_and_replay(stack: RunningStack, support: tuple[str, str]) -> None:
    """A week whose charge fails (no funds), so the guarantee pays: its history and the contract's load
    and replay, and the timeline tells the money in words."""
    client = await temporal(stack)
    party = await make_party(stack, client, funds=0)
    grant_credit(stack, party.client_id, 100_00)  # no funds, but the platform accepted the exposure
    week = past_week()
    party.capture(week + timedelta(days=2, hours=14, minutes=7), "Reports")
    party.capture(week + timedelta(days=2, hours=14, minutes=19), "")  # no memo: billed, not guaranteed
    handle = await submit_week(party, client, week)
    with stack.client(party.client_token) as http:
        approved = http.post(f"/v1/contracts/{party.contract_id}/timesheets/{week_label(week)}/approve",
                             json={"request_id": "approve-raw-1"})  # fmt: skip
        assert approved.status_code == 200, approved.text
    await eventually(lambda: _status_is(handle, "paid_by_guarantee"))

    replayer = Replayer(
        workflows=[ContractWorkflow, TimesheetWorkflow], data_converter=pydantic_data_converter
    )
    with stack.client(support[1]) as http:
        for workflow_id in (timesheet_workflow_id(party.contract_id, week), f"contract-{party.contract_id}"):
            response = http.get(f"/v1/support/workflows/{workflow_id}/history")
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("application/json")
            history = WorkflowHistory.from_json(workflow_id, response.text)
            assert history.events[0].HasField("workflow_execution_started_event_attributes")
            result = await replayer.replay_workflow(history)
            assert result.replay_failure is None
        names = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
                 for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]  # fmt: skip
        assert names == []  # the contract saw no update; the approval is in the timesheet's history

        story = "\n".join(
            e["text"]
            for e in http.get(f"/v1/support/contracts/{party.contract_id}/timeline").json()["events"]
        )
        assert "is secured for $100.00: $0.00 held on the client's balance, $100.00 of credit" in story
        assert "Charging the client beyond the hold for week" in story and "failed" in story
        assert "The guarantee fund paid the provider $12.00 for the guaranteed hours of week" in story
        assert "A receivable of $12.00 was recorded against the client" in story

        assert http.get("/v1/support/workflows/contract-not-a-uuid/history").status_code == 404
        assert http.get("/v1/support/workflows/some-other-workflow/history").status_code == 404
        assert (
            http.get(f"/v1/support/workflows/timesheet-{party.contract_id}-2026-11-25/history").status_code
            == 422
        )
        missing = http.get(f"/v1/support/workflows/contract-{uuid.uuid4()}/history")
        assert missing.status_code == 404

    with session_scope(stack.database_url) as session:
        reads = session.exec(
            select(AuditLog).where(
                AuditLog.actor_id == uuid.UUID(support[0]), AuditLog.action == "support.read"
            )
        ).all()
        subjects = {(r.subject_type, r.subject_id) for r in reads}
    assert ("workflow", f"contract-{party.contract_id}") in subjects
    assert ("workflow", timesheet_workflow_id(party.contract_id, week)) in subjects


async def test_support_reads_are_written_to_the_audit_log(
    stack: RunningStack, support: tuple[str, str]
) -> None:
    with stack.client(support[1]) as http:
        assert http.get("/v1/support/disputes").status_code == 200
        assert http.get("/v1/support/timesheets", params={"status": "in_support"}).status_code == 200
    with session_scope(stack.database_url) as session:
        kinds = set(
            session.exec(
                select(AuditLog.subject_type).where(
                    AuditLog.actor_id == uuid.UUID(support[0]), col(AuditLog.action) == "support.read"
                )
            ).all()
        )
    assert {"disputes", "timesheets"} <= kinds


def test_admin_reads_are_written_to_the_audit_log(stack: RunningStack) -> None:
    admin_id, admin_token = stack.create_user("admin")
    client_id, _ = stack.create_user("client")
    with stack.client(admin_token) as http:
        assert http.get("/v1/admin/users", params={"role": "client"}).status_code == 200
        assert http.get(f"/v1/admin/users/{client_id}/tokens").status_code == 200
        assert http.get(f"/v1/admin/clients/{client_id}/credit").status_code == 200
    with session_scope(stack.database_url) as session:
        subjects = {
            row.subject_type
            for row in session.exec(
                select(AuditLog).where(
                    AuditLog.actor_id == uuid.UUID(admin_id), AuditLog.action == "admin.read"
                )
            )
        }
    assert {"users", "tokens", "credit_line"} <= subjects


async def test_support_searches_by_title_name_or_email_and_any_day_of_a_week(
    stack: RunningStack, support: tuple[str, str]
) -> None:
    """What support has in hand in a dispute is a title, a name or an email and a day, never a UUID."""
    client = await temporal(stack)
    title = f"Ledger reconciliation {uuid.uuid4().hex[:6]}"
    party = await make_party(stack, client, title=title)
    week = past_week()
    party.capture(week + timedelta(days=2, hours=9, minutes=3), "Reconcile")
    await submit_week(party, client, week)
    wednesday = f"{week + timedelta(days=2):%Y-%m-%d}"
    with session_scope(stack.database_url) as session:
        provider = session.get(User, uuid.UUID(party.provider_id))
        assert provider is not None
        provider_email = provider.email

    with stack.client(support[1]) as http:

        async def found(**params: str) -> list[dict[str, Any]]:
            answer = http.get("/v1/support/timesheets", params=params)
            assert answer.status_code == 200, answer.text
            return answer.json()["items"]

        by_title = await eventually(lambda: found(q=title.split()[-1].upper(), week=wednesday))
        assert [item["title"] for item in by_title] == [title]
        assert provider_email in (by_title[0]["provider"] or "")
        assert [i["title"] for i in await found(q=provider_email.split("@")[0], week=wednesday)] == [title]
        assert await found(q="no such contract anywhere " + uuid.uuid4().hex) == []
        assert await found(q="100%_\\") == []  # wildcards are text, not patterns


async def test_the_timeline_shows_deleted_captures_and_manual_time(
    stack: RunningStack, support: tuple[str, str]
) -> None:
    """What a dispute turns on: a slot the provider deleted before submission, manual time added."""
    client = await temporal(stack)
    party = await make_party(stack, client)
    at = datetime.now(UTC) - timedelta(minutes=30)
    with stack.client(party.provider_token) as http:
        capture_id = str(uuid.uuid4())
        meta = {"capture_id": capture_id, "captured_at": at.isoformat(), "memo": "Oops, private tab"}
        uploaded = http.post(
            f"/v1/contracts/{party.contract_id}/captures",
            files=[("meta", (None, json.dumps(meta).encode(), None)),
                   ("images", ("m.webp", screen_image("private"), "image/webp"))],
        )  # fmt: skip
        assert uploaded.status_code == 201, uploaded.text
        assert http.delete(f"/v1/captures/{capture_id}").status_code == 204
        start = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
        manual = http.post(f"/v1/contracts/{party.contract_id}/manual", json={
            "start": start.isoformat(), "end": (start + timedelta(minutes=45)).isoformat(), "memo": "Phone call"})  # fmt: skip
        assert manual.status_code == 201, manual.text
    with stack.client(support[1]) as http:
        events = http.get(f"/v1/support/contracts/{party.contract_id}/timeline").json()["events"]
    kinds = {event["kind"]: event for event in events}
    assert "capture_deleted" in kinds and "Oops, private tab" in kinds["capture_deleted"]["text"]
    assert "manual_added" in kinds and "Phone call" in kinds["manual_added"]["text"]
    assert "45 min" in kinds["manual_added"]["text"] and "never guaranteed" in kinds["manual_added"]["text"]
    assert kinds["capture_deleted"]["actor"].endswith("(provider)")
