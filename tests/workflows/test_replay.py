"""Every shape of workflow that ever ran replays against today's code: a non-deterministic change fails
here, before it reaches a worker. Record new shapes with WORKPROOF_RECORD_HISTORIES=1 (see conftest)."""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.workflows.conftest import HISTORIES
from workflows.client import WORKFLOWS

FILES = sorted(HISTORIES.glob("**/*.json"))  # v1/, v2/, v3/: shapes that ran before, kept forever


def test_there_is_a_history_for_every_path() -> None:
    names = {f.stem for f in FILES if f.parent == HISTORIES}  # the current shapes
    for path in (
        "auto-approved",
        "approved-early",
        "dispute-accepted",
        "dispute-resolved-for-provider",
        "dispute-resolved-for-client",
        "dispute-unanswered",
        "guarantee-payout",
        "no-time",
        "nothing-secured",
        "payout-reviewed",
    ):
        assert f"timesheet-{path}" in names
    assert {"contract-ended-mid-week", "contract-first-week-continued-as-new"} <= names


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(HISTORIES)) for f in FILES])
async def test_history_replays(path) -> None:  # type: ignore[no-untyped-def]
    workflow_id = path.stem
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_new_weeks_ask_no_patch() -> None:
    """Shape 2 weeks (TimesheetInput.shape) decide at start: no patch marker, so no TemporalChangeVersion
    upsert (a visibility write per week on the server)."""
    for path in HISTORIES.glob("timesheet-*.json"):
        events = json.loads(path.read_text())["events"]
        assert not [e for e in events if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"], path.name
