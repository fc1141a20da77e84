"""Image retention: ``RetentionWorkflow``, started once a day by the Temporal Schedule ``retention-daily``.

Three sweeps, in order, each a loop of bounded, idempotent activity batches (activities/retention.py):
screenshots of weeks settled more than ``retention_days`` ago lose their images (rows, hashes and memos
stay); captures the provider deleted lose any objects left behind; objects no live capture names, older
than a day, are removed. Every removal is in the audit log.

Hazards:
- The cutoffs are computed once, from ``workflow.now()`` at the start of a sweep, and carried through
  continue-as-new: a long sweep never moves its own goalposts, and replay sees the same values.
- ``retention_days`` comes in the input (the schedule's action carries the deployment's setting), never
  from the environment: the workflow stays deterministic.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

with workflow.unsafe.imports_passed_through():
    from domain.activities import (
        PURGE_DELETED_CAPTURES,
        PURGE_SETTLED_IMAGES,
        SWEEP_ORPHAN_OBJECTS,
        ActivitySpec,
    )
    from domain.retention import (
        BatchResult,
        DeletedBatch,
        OrphanPage,
        RetentionInput,
        RetentionReport,
        RetentionSweep,
        SettledBatch,
    )
    from workflows.calls import call

Batch = TypeVar("Batch", SettledBatch, DeletedBatch, OrphanPage)

SCHEDULE_ID = "retention-daily"
WORKFLOW_ID = "retention"  # the schedule appends the time of each run
RUN_AT_UTC = (3, 17)  # 03:17 UTC: away from the Monday-midnight freezes and the Saturday charges

__all__ = ["RetentionInput", "RetentionReport", "RetentionWorkflow", "ensure_retention_schedule"]


@workflow.defn
class RetentionWorkflow:
    @workflow.run
    async def run(self, request: RetentionInput) -> RetentionReport:
        now = workflow.now()
        sweep = request.sweep or RetentionSweep(
            report=RetentionReport(
                settled_before=now - timedelta(days=request.retention_days),
                orphans_before=now - timedelta(seconds=request.orphan_grace_s),
            )
        )
        report = sweep.report
        batches = 0
        while sweep.phase != "done":
            if batches >= request.batches_per_run or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(request.model_copy(update={"sweep": sweep}))
            batches += 1
            report.batches += 1
            if sweep.phase == "settled":
                limit = request.batch_size
                result = await self._batch(
                    PURGE_SETTLED_IMAGES,
                    SettledBatch(settled_before=report.settled_before, limit=limit),
                    request,
                )
                report.captures_purged += result.captures
                if result.seen < limit:
                    sweep.phase = "deleted"
            elif sweep.phase == "deleted":
                limit = request.batch_size
                result = await self._batch(PURGE_DELETED_CAPTURES, DeletedBatch(limit=limit), request)
                report.deleted_captures_cleaned += result.captures
                if result.seen < limit:
                    sweep.phase = "orphans"
            else:
                limit = request.orphan_page_size
                page = OrphanPage(
                    modified_before=report.orphans_before, start_after=sweep.orphan_cursor, limit=limit
                )
                result = await self._batch(SWEEP_ORPHAN_OBJECTS, page, request)
                report.orphan_captures += result.captures
                sweep.orphan_cursor = result.next_start_after
                if result.seen < limit:
                    sweep.phase = "done"
            report.objects_removed += result.objects
        return report

    async def _batch(
        self, spec: ActivitySpec[Batch, BatchResult], batch: Batch, request: RetentionInput
    ) -> BatchResult:
        return await call(
            spec,
            batch,
            start_to_close=timedelta(seconds=request.activity_timeout_s),
            heartbeat=timedelta(seconds=60),
        )


# --- the schedule (client side: used by `workproof migrate`, never inside a workflow) ---------------------


def retention_schedule(*, retention_days: int, task_queue: str) -> Schedule:
    hour, minute = RUN_AT_UTC
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionWorkflow.run,
            RetentionInput(retention_days=retention_days),
            id=WORKFLOW_ID,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(hour)], minute=[ScheduleRange(minute)])]
        ),
        # A sweep still running at the next day's start is left to finish; a day missed while the
        # cluster was down is made up once, within a day.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_retention_schedule(client: Client, *, retention_days: int, task_queue: str) -> str:
    """Create ``retention-daily``, or bring an existing one to this deployment's settings (keeping its
    paused/unpaused state, which an operator may have set). Returns "created" or "updated"."""
    schedule = retention_schedule(retention_days=retention_days, task_queue=task_queue)
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    def keep_state(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule.state = current.description.schedule.state
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(SCHEDULE_ID).update(keep_state)
    return "updated"
