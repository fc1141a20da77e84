"""The support timeline's decoder reads every recorded history (every shape that ever ran) strictly: a
message shape it cannot decode fails here, instead of quietly dropping detail from the timeline support
relies on in a dispute."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from api.services.history import Facts, History, TimelineBuilder
from store.models import Contract
from tests.workflows.conftest import HISTORIES

FILES = sorted(HISTORIES.glob("**/*.json"))
SAYS = {  # a history of this name must produce an event of each kind
    "timesheet-approved-early": {"approve", "frozen"},
    "timesheet-auto-approved": {"status_auto_approved"},
    "timesheet-dispute-accepted": {"dispute", "respond"},
    "timesheet-dispute-resolved-for-client": {"dispute", "resolve"},
    "timesheet-dispute-resolved-for-provider": {"dispute", "resolve"},
    "timesheet-dispute-unanswered": {"dispute", "status_in_support"},
    "timesheet-deadline-extended": {"extend"},
    "timesheet-guarantee-payout": {"charge_failed"},
    "contract-first-week-continued-as-new": {"accept"},
}

SAYS_NOW = {  # the current shape (top-level files) also says what secured the week
    "timesheet-guarantee-payout": {"secured"},
    "timesheet-payout-reviewed": {"secured", "status_payout_review", "payout_decision"},
    "timesheet-nothing-secured": {"secured", "status_unpaid"},
}


def facts() -> Facts:
    contract = Contract(
        id=uuid.uuid4(), client_id=uuid.uuid4(), provider_id=uuid.uuid4(), title="Recorded", rate_cents=2500,
        currency="USD", weekly_limit_hours=40,
    )  # fmt: skip
    return Facts(contract, {}, [], [])


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(HISTORIES)) for f in FILES])
async def test_every_recorded_history_decodes_in_full(path) -> None:  # type: ignore[no-untyped-def]
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    started = history.events[0].workflow_execution_started_event_attributes
    run = History(path.stem, "run", started.workflow_type.name, list(history.events))
    builder = TimelineBuilder(facts(), pydantic_data_converter, strict=True)
    await builder.read(run)  # raises on any payload it cannot decode
    kinds = {event.kind for event in builder.events}
    assert not {"update_failed", "update"} & kinds, kinds  # every accepted update has its own words
    expected = SAYS.get(path.stem, set()) | (
        SAYS_NOW.get(path.stem, set()) if path.parent == HISTORIES else set()
    )
    assert expected <= kinds, (path.stem, kinds)
