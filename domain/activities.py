"""The activities the workflows ask for, declared once: the name on the wire, the input type and the
result type. Workflows call them through these declarations (``workflows/calls.py``), the activity
implementations register under ``spec.name`` (``activities/``), and a test checks each implementation's
signature against its declaration (``tests/workflows/test_activity_specs.py``): a rename or a changed
type is caught by mypy or that test, never at run time in a worker.

The names are part of every recorded history: they never change (docs/design.md, "Versioning")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from domain.messages import (
    ChargeInput,
    ChargeResult,
    CollectInput,
    Collection,
    ContractRecord,
    FreezeInput,
    Notify,
    PayoutInput,
    ReleaseInput,
    SecureInput,
    Security,
    SnapshotResult,
    StatusRecord,
    TransferResult,
    WorkViewRecord,
)
from domain.retention import BatchResult, DeletedBatch, OrphanPage, SettledBatch

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True)
class ActivitySpec(Generic[In, Out]):
    """One activity: ``name`` on the wire, ``input`` its one argument, ``result`` what it returns
    (``None`` for an activity that returns nothing)."""

    name: str
    input: type[In]
    result: type[Out] | None


# --- the timesheet workflow ----------------------------------------------------------------------------
FREEZE_TIMESHEET = ActivitySpec("freeze_timesheet", FreezeInput, SnapshotResult)
RECORD_TIMESHEET_STATUS: ActivitySpec[StatusRecord, None] = ActivitySpec(
    "record_timesheet_status", StatusRecord, None
)
CHARGE_CLIENT = ActivitySpec("charge_client", ChargeInput, ChargeResult)
GUARANTEE_PAYOUT = ActivitySpec("guarantee_payout", PayoutInput, TransferResult)
RELEASE_FUNDS = ActivitySpec("release_funds", ReleaseInput, TransferResult)
NOTIFY = ActivitySpec("notify", Notify, int)
SECURE_WEEK = ActivitySpec("secure_week", SecureInput, Security)  # shape 3
COLLECT_WEEK = ActivitySpec("collect_week", CollectInput, Collection)  # shape 3

# --- the contract workflow ------------------------------------------------------------------------------
RECORD_WORK_VIEW: ActivitySpec[WorkViewRecord, None] = ActivitySpec("record_work_view", WorkViewRecord, None)
RECORD_CONTRACT: ActivitySpec[ContractRecord, None] = ActivitySpec("record_contract", ContractRecord, None)

# --- image retention ------------------------------------------------------------------------------------
PURGE_SETTLED_IMAGES = ActivitySpec("purge_settled_images", SettledBatch, BatchResult)
PURGE_DELETED_CAPTURES = ActivitySpec("purge_deleted_captures", DeletedBatch, BatchResult)
SWEEP_ORPHAN_OBJECTS = ActivitySpec("sweep_orphan_objects", OrphanPage, BatchResult)

ALL: tuple[ActivitySpec[Any, Any], ...] = (
    FREEZE_TIMESHEET,
    RECORD_TIMESHEET_STATUS,
    CHARGE_CLIENT,
    GUARANTEE_PAYOUT,
    RELEASE_FUNDS,
    NOTIFY,
    SECURE_WEEK,
    COLLECT_WEEK,
    RECORD_WORK_VIEW,
    RECORD_CONTRACT,
    PURGE_SETTLED_IMAGES,
    PURGE_DELETED_CAPTURES,
    SWEEP_ORPHAN_OBJECTS,
)
