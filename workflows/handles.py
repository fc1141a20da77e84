"""What callers outside a workflow need to address one: its id, and the wire names of its updates
(derived from the methods, so a renamed update is a type error, never a silently different string)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow


def update_name(method: Any) -> str:
    """The name on the wire of an update method such as ``TimesheetWorkflow.approve``."""
    name, _ = workflow._UpdateDefinition.get_name_and_result_type(method)
    return name
