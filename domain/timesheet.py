"""Timesheet arithmetic: a week's captures, tracked slots and manual time to billable and guaranteed time.

The rules (docs/design.md, "Domain rules"):
- a *documented slot* has a screenshot captured inside it while Work View was on; it bills 12 minutes;
  two captures in one slot count once, with a memo if either has one;
- a *tracked slot* (Work View off, no image) bills 12 minutes and is never guaranteed;
- *manual time* bills its whole minutes and is never guaranteed;
- billable time is capped at the weekly limit in time order, to the minute;
- a documented slot is guaranteed when it has a memo and lies within the limit.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from domain.calendar import SLOT, WEEK, as_utc, slot_start, week_start
from domain.errors import InvalidInput
from domain.money import amount_for_minutes

EntryKind = Literal["slot", "tracked", "manual"]
NotGuaranteedReason = Literal[
    "manual_time",  # manual entries are never guaranteed
    "work_view_off",  # tracked while Work View was off: no screenshot to document it
    "no_screenshot",  # tracked without an image while Work View was on (capture failed)
    "no_memo",  # screenshot without a memo (blank or whitespace is no memo)
    "over_weekly_limit",  # past the contract's weekly limit: neither billed nor guaranteed
]
SLOT_MINUTES = 12
MIN_WEEKLY_LIMIT_HOURS, MAX_WEEKLY_LIMIT_HOURS = 1, 168  # a week has 168 hours


class WorkViewInterval(BaseModel):
    """Work View was on from ``start`` (inclusive) until ``end`` (exclusive; None = still on)."""

    start: datetime
    end: datetime | None = None

    def covers(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


class ContractTerms(BaseModel):
    """What the arithmetic needs to know of a contract."""

    contract_id: str = ""
    rate_cents: int = Field(ge=0)
    currency: str = "USD"
    weekly_limit_hours: int = Field(ge=MIN_WEEKLY_LIMIT_HOURS, le=MAX_WEEKLY_LIMIT_HOURS)
    manual_allowed: bool = False
    work_view: list[WorkViewInterval] = Field(default_factory=list)

    def work_view_on(self, at: datetime) -> bool:
        at = as_utc(at)
        return any(interval.covers(at) for interval in self.work_view)


class CaptureFact(BaseModel):
    """One capture the agent sent: a screenshot (``has_image``) or a tracked slot without one."""

    capture_id: str
    captured_at: datetime
    memo: str = ""
    has_image: bool = True
    deleted: bool = False


class ManualFact(BaseModel):
    """A manual time entry, whole minutes from ``start`` to ``end``."""

    entry_id: str
    start: datetime
    end: datetime
    memo: str = ""
    deleted: bool = False


class TimesheetEntry(BaseModel):
    entry_id: str
    kind: EntryKind
    start: datetime
    minutes: int
    billable_minutes: int
    guaranteed_minutes: int
    not_guaranteed_because: list[NotGuaranteedReason] = Field(default_factory=list)
    memo: str = ""
    capture_ids: list[str] = Field(default_factory=list)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)


class Timesheet(BaseModel):
    contract_id: str = ""
    week_start: datetime
    currency: str
    rate_cents: int
    weekly_limit_hours: int
    documented_minutes: int
    tracked_minutes: int
    manual_minutes: int
    billable_minutes: int
    guaranteed_minutes: int
    amount_cents: int
    guaranteed_cents: int
    entries: list[TimesheetEntry]

    def entry(self, entry_id: str) -> TimesheetEntry | None:
        return next((e for e in self.entries if e.entry_id == entry_id), None)

    def content_hash(self) -> str:
        """sha256 of the canonical JSON form: the snapshot's identity."""
        body = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


def has_memo(memo: str | None) -> bool:
    return bool(memo and memo.strip())


def check_weekly_limit(hours: object) -> int:
    """A contract's weekly limit: a whole number of hours a week can hold."""
    if isinstance(hours, bool) or not isinstance(hours, int):
        raise InvalidInput("weekly_limit_hours must be a whole number of hours", "weekly_limit_invalid")
    if not MIN_WEEKLY_LIMIT_HOURS <= hours <= MAX_WEEKLY_LIMIT_HOURS:
        raise InvalidInput(
            f"weekly_limit_hours must be from {MIN_WEEKLY_LIMIT_HOURS} to {MAX_WEEKLY_LIMIT_HOURS}",
            "weekly_limit_invalid",
        )
    return hours


def slot_entry_id(kind: str, start: datetime) -> str:
    return f"{kind}-{as_utc(start):%Y%m%dT%H%MZ}"


def compute_timesheet(
    terms: ContractTerms,
    week: datetime,
    captures: list[CaptureFact],
    manual: list[ManualFact],
    *,
    slot_length: timedelta = SLOT,
) -> Timesheet:
    """The week's timesheet; pure and deterministic (safe inside a workflow)."""
    start = week_start(week)
    end = start + WEEK
    slot_minutes = int(slot_length.total_seconds() // 60) or 1

    documented: dict[datetime, list[CaptureFact]] = {}
    tracked: dict[datetime, list[CaptureFact]] = {}
    for capture in sorted(captures, key=lambda c: (as_utc(c.captured_at), c.capture_id)):
        at = as_utc(capture.captured_at)
        if capture.deleted or not (start <= at < end):
            continue
        slot = slot_start(at, slot_length)
        if capture.has_image:
            if terms.work_view_on(at):  # a screenshot dated while Work View was off is ignored
                documented.setdefault(slot, []).append(capture)
        else:
            tracked.setdefault(slot, []).append(capture)

    entries: list[TimesheetEntry] = []
    for slot, group in documented.items():
        memo = next((c.memo for c in group if has_memo(c.memo)), "")
        entries.append(
            TimesheetEntry(
                entry_id=slot_entry_id("slot", slot),
                kind="slot",
                start=slot,
                minutes=slot_minutes,
                billable_minutes=0,
                guaranteed_minutes=0,
                not_guaranteed_because=[] if has_memo(memo) else ["no_memo"],
                memo=memo,
                capture_ids=[c.capture_id for c in group],
            )
        )
    for slot, group in tracked.items():
        if slot in documented:  # the screenshot documents the slot; the tracked record adds nothing
            continue
        memo = next((c.memo for c in group if has_memo(c.memo)), "")
        on = terms.work_view_on(as_utc(group[0].captured_at))
        entries.append(
            TimesheetEntry(
                entry_id=slot_entry_id("tracked", slot),
                kind="tracked",
                start=slot,
                minutes=slot_minutes,
                billable_minutes=0,
                guaranteed_minutes=0,
                not_guaranteed_because=["no_screenshot" if on else "work_view_off"],
                memo=memo,
                capture_ids=[c.capture_id for c in group],
            )
        )
    if terms.manual_allowed:
        for item in manual:
            m_start, m_end = as_utc(item.start), as_utc(item.end)
            if item.deleted or not (start <= m_start < end):
                continue
            entries.append(
                TimesheetEntry(
                    entry_id=f"manual-{item.entry_id}",
                    kind="manual",
                    start=m_start,
                    minutes=int((m_end - m_start).total_seconds() // 60),
                    billable_minutes=0,
                    guaranteed_minutes=0,
                    not_guaranteed_because=["manual_time"],
                    memo=item.memo,
                )
            )

    # The weekly limit is applied in time order: the earliest work is billed first.
    entries.sort(key=lambda e: (e.start, e.kind != "slot", e.entry_id))
    remaining = terms.weekly_limit_hours * 60
    for entry in entries:
        entry.billable_minutes = min(entry.minutes, remaining)
        remaining -= entry.billable_minutes
        if entry.billable_minutes < entry.minutes:
            entry.not_guaranteed_because.append("over_weekly_limit")
        if entry.kind == "slot" and "no_memo" not in entry.not_guaranteed_because:
            entry.guaranteed_minutes = entry.billable_minutes

    def total(kind: str) -> int:
        return sum(e.minutes for e in entries if e.kind == kind)

    billable = sum(e.billable_minutes for e in entries)
    guaranteed = sum(e.guaranteed_minutes for e in entries)
    return Timesheet(
        contract_id=terms.contract_id,
        week_start=start,
        currency=terms.currency,
        rate_cents=terms.rate_cents,
        weekly_limit_hours=terms.weekly_limit_hours,
        documented_minutes=total("slot"),
        tracked_minutes=total("tracked"),
        manual_minutes=total("manual"),
        billable_minutes=billable,
        guaranteed_minutes=guaranteed,
        amount_cents=amount_for_minutes(billable, terms.rate_cents),
        guaranteed_cents=amount_for_minutes(guaranteed, terms.rate_cents),
        entries=entries,
    )


def check_manual_entry(
    terms: ContractTerms, start: datetime, end: datetime, documented_slots: list[datetime]
) -> tuple[datetime, datetime]:
    """Validate a new manual entry; returns it in UTC or raises :class:`InvalidInput` saying what to fix."""
    if not terms.manual_allowed:
        raise InvalidInput(
            "this contract does not allow manual time; ask the client to allow it", "manual_not_allowed"
        )
    start, end = as_utc(start, what="start"), as_utc(end, what="end")
    if start.second or start.microsecond or end.second or end.microsecond:
        raise InvalidInput(
            "manual time is in whole minutes: start and end must have zero seconds", "time_invalid"
        )
    if end <= start:
        raise InvalidInput("manual time must end after it starts", "time_invalid")
    if week_start(start) != week_start(end - timedelta(microseconds=1)):
        raise InvalidInput(
            "manual time may not cross a week boundary (Monday 00:00 UTC): split it in two", "time_invalid"
        )
    for slot in documented_slots:
        if start < slot + SLOT and slot < end:
            raise InvalidInput(
                f"manual time overlaps the documented slot at {slot:%Y-%m-%d %H:%M} UTC: "
                "shorten it so it does not cover screenshot time",
                "manual_overlap",
            )
    return start, end
