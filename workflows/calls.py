"""Calling an activity from a workflow through its declaration (``domain.activities``): the argument and
the result are typed, and no activity name is written anywhere but in its declaration."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar, cast

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.activities import ActivitySpec

In = TypeVar("In")
Out = TypeVar("Out")

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)


async def call(
    spec: ActivitySpec[In, Out],
    arg: In,
    *,
    start_to_close: timedelta,
    retry: RetryPolicy = RETRY,
    heartbeat: timedelta | None = None,
) -> Out:
    """Run the activity ``spec`` with ``arg``; the same command (name, input, options) as a direct
    ``workflow.execute_activity`` with that name, so recorded histories replay unchanged."""
    result = await workflow.execute_activity(
        spec.name,
        arg,
        result_type=spec.result,
        start_to_close_timeout=start_to_close,
        heartbeat_timeout=heartbeat,
        retry_policy=retry,
    )
    return cast(Out, result)
