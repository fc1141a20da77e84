"""The workers accept a workflow update only when this deployment's API signed it: an update sent
straight to the Temporal frontend — unsigned, or signed with another key, or a signed update whose
arguments were changed — is refused before its validator runs, never reaches the history, and leaves an
audit row saying so."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select
from temporalio.client import Client, WorkflowUpdateFailedError

from domain.messages import Actor, ExtendDeadline
from store.db import session_scope
from store.models import AuditLog
from tests.e2e.test_support_api import make_party, past_week, submit_week
from tests.harness import RunningStack
from workflows.client import connect
from workflows.timesheet import TimesheetWorkflow

pytestmark = pytest.mark.e2e


async def refused(client: Client, workflow_id: str, arg: ExtendDeadline) -> str:
    handle = client.get_workflow_handle(workflow_id)
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(TimesheetWorkflow.extend_deadline, arg, id=f"forged-{uuid.uuid4()}")
    return str(getattr(caught.value.cause, "type", ""))


def audited(stack: RunningStack, workflow_id: str) -> list[dict[str, Any]]:
    with session_scope(stack.database_url) as session:
        rows = session.exec(
            select(AuditLog).where(
                AuditLog.action == "update.refused_unvouched", AuditLog.subject_id == workflow_id
            )
        ).all()
        return [row.detail for row in rows]


async def test_an_update_the_api_did_not_sign_is_refused_and_audited(stack: RunningStack) -> None:
    key = stack.settings.resolved_secret_key()
    signed = await connect(stack.stack.temporal_address, vouch_key=key)
    party = await make_party(stack, signed)
    week = past_week()
    party.capture(week + timedelta(days=1, hours=10, minutes=3), "Reports")
    handle = await submit_week(party, signed, week)
    view = await handle.query(TimesheetWorkflow.view)
    forged = ExtendDeadline(
        actor=Actor(user_id=str(uuid.uuid4()), role="support"), deadline="review",
        until=view.review_deadline.replace(year=view.review_deadline.year + 1), reason="as support",
    )  # fmt: skip

    unsigned = await connect(stack.stack.temporal_address)
    other_key = await connect(
        stack.stack.temporal_address, vouch_key="another-deployment-" + uuid.uuid4().hex
    )
    assert await refused(unsigned, handle.id, forged) == "update_unvouched"
    assert await refused(other_key, handle.id, forged) == "update_unvouched"
    after = await handle.query(TimesheetWorkflow.view)
    assert after.review_deadline == view.review_deadline  # nothing moved
    history = await handle.fetch_history()
    assert not [
        e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]

    async def two_rows() -> list[dict[str, Any]]:
        for _ in range(50):
            rows = audited(stack, handle.id)
            if len(rows) >= 2:
                return rows
            await asyncio.sleep(0.1)
        return audited(stack, handle.id)

    rows = await two_rows()
    assert len(rows) == 2
    assert {row["claimed_actor"]["role"] for row in rows} == {"support"}
    assert {row["update"] for row in rows} == {"extend_deadline"}
    assert any("no signature" in row["reason"] for row in rows) and any(
        "does not match" in row["reason"] for row in rows
    )
