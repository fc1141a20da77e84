"""Messages of the image-retention workflow and its activities (pydantic, carried by the pydantic data
converter; new fields get defaults, so recorded histories still replay)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Reason = Literal["retention", "capture_deleted", "orphan"]


class SettledBatch(BaseModel):
    """One batch of the ``settled`` sweep."""

    settled_before: datetime  # a week whose snapshot settled before this loses its images
    limit: int = 200


class DeletedBatch(BaseModel):
    """One batch of the ``deleted`` sweep."""

    limit: int = 200


class OrphanPage(BaseModel):
    """One page of the bucket listing, in key order, after ``start_after``."""

    modified_before: datetime  # younger objects may belong to an ingest still in flight
    start_after: str = ""
    limit: int = 1000


Phase = Literal["settled", "deleted", "orphans", "done"]


class RetentionReport(BaseModel):
    """What one day's sweep did (summed over its continue-as-new runs)."""

    settled_before: datetime
    orphans_before: datetime
    captures_purged: int = 0  # screenshots of settled weeks whose images were removed
    deleted_captures_cleaned: int = 0  # deleted captures whose left-over objects were removed
    orphan_captures: int = 0  # capture ids whose orphan objects were removed
    objects_removed: int = 0  # delete calls made, over all three sweeps
    batches: int = 0


class RetentionSweep(BaseModel):
    """The sweep in progress, carried across continue-as-new."""

    phase: Phase = "settled"
    orphan_cursor: str = ""
    report: RetentionReport


class RetentionInput(BaseModel):
    """The retention workflow's input; the schedule's action carries the deployment's ``retention_days``."""

    retention_days: int = Field(default=90, ge=1)
    orphan_grace_s: int = Field(default=86400, ge=0)  # an ingest in flight is never this old
    batch_size: int = Field(default=200, ge=1)  # captures per activity
    orphan_page_size: int = Field(default=1000, ge=1)  # listed objects per activity
    batches_per_run: int = Field(default=100, ge=1)  # then continue-as-new, to keep the history small
    activity_timeout_s: int = 600
    sweep: RetentionSweep | None = None


class BatchResult(BaseModel):
    seen: int  # candidates looked at; fewer than the limit means the sweep is done
    captures: int  # captures whose images were removed in this batch (marked or audited now)
    objects: int  # delete calls made (a key already gone counts: the call succeeds)
    next_start_after: str = ""  # orphans: where the next page starts
