"""The week as pages show it: hours as rows of five 12-minute slots, each with its captures (signed
image links), memo, activity counts, and whether its time is guaranteed or why not.

Pure: it takes the computed timesheet (``domain``'s one implementation) and the capture rows, and
changes nothing. Hours are the UTC hours slots align to; times are shown in the viewer's timezone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.calendar import SLOT, slot_start
from domain.money import format_money
from domain.timesheet import Timesheet, TimesheetEntry
from store.models import Capture

REASON_WORDS = {
    "manual_time": "manual time is never guaranteed",
    "work_view_off": "Work View was off: no screenshot",
    "no_screenshot": "no screenshot was taken",
    "no_memo": "no memo",
    "over_weekly_limit": "over the weekly limit",
}
MINUTES = (0, 12, 24, 36, 48)

Signer = Callable[[Capture, str], str]


def zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


class Clock:
    """Formats instants for one viewer: local wall time, with the UTC instant for a title attribute."""

    def __init__(self, tz: tzinfo, now: datetime | None = None) -> None:
        self.tz = tz
        self.now = now or datetime.now(UTC)

    @property
    def name(self) -> str:
        return str(getattr(self.tz, "key", "UTC"))

    def local(self, at: datetime | None, fmt: str = "%a %d %b %H:%M") -> str:
        return at.astimezone(self.tz).strftime(fmt) if at else ""

    def utc(self, at: datetime | None) -> str:
        return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else ""

    def left(self, until: datetime | None) -> str:
        """``2 days 4 hours left`` / ``closed``."""
        if until is None:
            return ""
        seconds = int((until - self.now).total_seconds())
        if seconds <= 0:
            return "closed"
        days, rest = divmod(seconds, 86400)
        hours, rest = divmod(rest, 3600)
        minutes = rest // 60
        if days:
            return f"{days} day{'s' * (days != 1)} {hours} hour{'s' * (hours != 1)} left"
        if hours:
            return f"{hours} hour{'s' * (hours != 1)} {minutes} min left"
        return f"{max(minutes, 1)} min left"

    def input_value(self, at: datetime) -> str:
        """For a ``datetime-local`` input, in the viewer's timezone."""
        return at.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M")


def duration(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


@dataclass
class Shot:
    """One capture shown in a slot; its times already formatted for the viewer."""

    capture_id: str
    kind: str
    captured_at: datetime
    memo: str
    thumb: str | None
    images: list[str]
    keyboard: int | None
    mouse: int | None
    source: str = "agent"  # "browser": taken by the tracker page, which counts no keys or mouse
    local: str = ""  # 09:02:11 in the viewer's timezone
    utc: str = ""  # 2026-11-09T14:02:11Z
    caption: str = ""


@dataclass
class SlotCell:
    start: datetime
    entry: TimesheetEntry | None
    shots: list[Shot] = field(default_factory=list)
    utc: str = ""

    @property
    def entry_id(self) -> str:
        return self.entry.entry_id if self.entry is not None else ""

    @property
    def guaranteed(self) -> bool:
        return self.entry is not None and self.entry.guaranteed_minutes > 0

    @property
    def billable(self) -> bool:
        return self.entry is not None and self.entry.billable_minutes > 0

    @property
    def reasons(self) -> str:
        if self.entry is None:
            return "not counted: taken while Work View was off"
        return ", ".join(REASON_WORDS.get(r, r) for r in self.entry.not_guaranteed_because)

    @property
    def memo(self) -> str:
        if self.entry is not None and self.entry.memo:
            return self.entry.memo
        return next((s.memo for s in self.shots if s.memo.strip()), "")

    @property
    def browser(self) -> bool:
        """Some capture of the slot came from the browser tracker page."""
        return any(s.source == "browser" for s in self.shots)

    @property
    def activity(self) -> str:
        """``keys 120 · mouse 45``; ``browser`` for the tracker page's captures (a page cannot count keys
        or mouse outside itself); empty when the agent sent no counts."""
        keys = [s.keyboard for s in self.shots if s.keyboard is not None]
        mouse = [s.mouse for s in self.shots if s.mouse is not None]
        if not keys and not mouse:
            return "browser" if self.browser else ""
        return f"keys {sum(keys)} · mouse {sum(mouse)}"


@dataclass
class HourRow:
    start: datetime
    cells: list[SlotCell | None]
    local: str = ""
    utc: str = ""

    @property
    def billable(self) -> str:
        return duration(
            sum(c.entry.billable_minutes for c in self.cells if c is not None and c.entry is not None)
        )


@dataclass
class DayGroup:
    label: str
    rows: list[HourRow]


@dataclass
class WeekGrid:
    days: list[DayGroup]
    manual: list[TimesheetEntry]
    slots: int

    @property
    def empty(self) -> bool:
        return not self.days and not self.manual


def week_grid(
    sheet: Timesheet, captures: list[Capture], sign: Signer | None, clock: Clock, image_base: str = ""
) -> WeekGrid:
    """The grid of the week. ``sign(capture, "thumb")`` makes a signed thumbnail link; full images are
    ``{image_base}/{capture_id}/image/{n}``. Everything a cell shows is formatted here, once: a
    40-hour week is 200 cells."""
    by_slot: dict[datetime, SlotCell] = {}
    manual: list[TimesheetEntry] = []
    for entry in sheet.entries:
        if entry.kind == "manual":
            manual.append(entry)
        else:
            by_slot[slot_start(entry.start)] = SlotCell(start=slot_start(entry.start), entry=entry)
    tz = clock.tz
    for capture in captures:
        if capture.deleted_at is not None:
            continue
        start = slot_start(capture.captured_at)
        cell = by_slot.get(start)
        if cell is None:
            cell = by_slot[start] = SlotCell(start=start, entry=None)
        images_kept = capture.kind == "screenshot" and capture.images_purged_at is None and sign is not None
        at = capture.captured_at
        local = at.astimezone(tz)
        cell.shots.append(
            Shot(
                capture_id=str(capture.capture_id),
                kind=capture.kind,
                captured_at=at,
                memo=capture.memo,
                thumb=sign(capture, "thumb") if images_kept and sign and capture.thumbnail_key else None,
                # full images through the page route, which signs a fresh link when one is opened: a
                # page left open longer than a link lives still opens them
                images=[f"{image_base}/{capture.capture_id}/image/{i}" for i in range(capture.monitor_count)]
                if images_kept
                else [],
                keyboard=capture.keyboard_events,
                mouse=capture.mouse_events,
                source=capture.source,
                local=f"{local:%H:%M:%S}",
                utc=f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
                caption=f"{local:%a %d %b %H:%M:%S} · {capture.memo}",
            )
        )
    hours: dict[datetime, HourRow] = {}
    for start, cell in by_slot.items():
        cell.utc = f"{start:%Y-%m-%dT%H:%M:%SZ}"
        hour = start.replace(minute=0, second=0, microsecond=0)
        row = hours.get(hour)
        if row is None:
            local = hour.astimezone(tz)
            row = hours[hour] = HourRow(
                start=hour,
                cells=[None] * len(MINUTES),
                local=f"{local:%H:%M}",
                utc=f"{hour:%Y-%m-%dT%H:%M:%SZ}",
            )
        row.cells[(start - hour) // SLOT] = cell
    days: list[DayGroup] = []
    for hour in sorted(hours):
        label = clock.local(hour, "%A %d %B")
        if not days or days[-1].label != label:
            days.append(DayGroup(label=label, rows=[]))
        days[-1].rows.append(hours[hour])
    return WeekGrid(days=days, manual=manual, slots=len(by_slot))


def money(cents: int | None, currency: str) -> str:
    return format_money(cents or 0, currency)


def week_days(start: datetime) -> str:
    """``Mon 24 Nov to Sun 30 Nov 2026 (UTC)``: week boundaries are always the UTC week."""
    end = start + timedelta(days=6)
    return f"{start:%a %d %b} to {end:%a %d %b %Y} (UTC)"
