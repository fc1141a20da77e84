"""The calendar of a contract: weeks, 12-minute slots, and the deadlines that hang off a week.

Every function takes timezone-aware datetimes with any UTC offset and answers in UTC. A naive datetime is
refused: it cannot be told apart from a local time, and a wrong guess moves money between weeks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel

from domain.errors import InvalidInput

SLOT = timedelta(minutes=12)
SLOTS_PER_HOUR = 5
WEEK = timedelta(days=7)
_EPOCH = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday 00:00 UTC: weeks and slots align to it
FIRST_WEEK = date(1970, 1, 5)
LAST_WEEK = date(9998, 12, 28)  # its deadlines (two weeks on) still fit in a datetime


class NaiveDatetimeError(InvalidInput):
    """A datetime without a UTC offset reached a rule that needs one."""


class DeadlinePolicy(BaseModel):
    """The deployment's deadlines, in seconds after the end of the week (next Monday 00:00 UTC), and the
    Monday-herd spread. The one policy type: the API's rules, the pages and the workflows (which carry it
    in their input, so they stay deterministic) read the same values. Seconds, because this shape is in
    every recorded workflow history."""

    edit_cutoff_after_week_s: int = 12 * 3600  # Monday 12:00 UTC
    review_deadline_after_week_s: int = 5 * 86400  # Saturday 00:00 UTC (end of Friday)
    response_window_s: int = 3 * 86400
    security_period_s: int = 5 * 86400
    # A guarantee payout above this many cents waits for support (0 = none waits), for at most
    # ``payout_review_s``; support's silence pays it (the guarantee is a promise).
    guarantee_review_cents: int = 0
    payout_review_s: int = 5 * 86400
    # Monday herd: the freeze and the charge of each contract-week are spread over this many seconds
    # after their moment (by a hash of the contract id). No deadline a user sees moves.
    spread_s: int = 0
    # The client's "review closes soon" reminder goes this long before the review deadline (absent in
    # older payloads, which read the 24 hours they always used).
    review_reminder_s: int = 24 * 3600

    @property
    def edit_cutoff_after_week(self) -> timedelta:
        return timedelta(seconds=self.edit_cutoff_after_week_s)

    @property
    def review_deadline_after_week(self) -> timedelta:
        return timedelta(seconds=self.review_deadline_after_week_s)

    @property
    def response_window(self) -> timedelta:
        return timedelta(seconds=self.response_window_s)

    @property
    def security_period(self) -> timedelta:
        return timedelta(seconds=self.security_period_s)


DEFAULT_POLICY = DeadlinePolicy()


def as_utc(at: datetime, *, what: str = "time") -> datetime:
    """``at`` in UTC; a naive datetime raises :class:`NaiveDatetimeError`."""
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise NaiveDatetimeError(
            f"{what} {at.isoformat()} has no UTC offset: send it with one, e.g. 2026-11-23T09:00:00+00:00"
        )
    return at.astimezone(UTC)


def week_start(at: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week that contains ``at``."""
    at = as_utc(at)
    monday = at.date() - timedelta(days=at.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def week_end(at: datetime) -> datetime:
    """The next Monday 00:00 UTC after the start of ``at``'s week (exclusive end)."""
    return week_start(at) + WEEK


def slot_start(at: datetime, slot_length: timedelta = SLOT) -> datetime:
    """Start of the slot containing ``at``; slots of 12 minutes fall on :00, :12, :24, :36 and :48."""
    at = as_utc(at)
    if slot_length <= timedelta(0):
        raise InvalidInput("slot length must be positive")
    index = (at - _EPOCH) // slot_length
    return _EPOCH + index * slot_length


def slot_end(at: datetime, slot_length: timedelta = SLOT) -> datetime:
    return slot_start(at, slot_length) + slot_length


def edit_cutoff(at: datetime, policy: DeadlinePolicy = DEFAULT_POLICY) -> datetime:
    """Until when captures and manual time of ``at``'s week may still be added or deleted."""
    return week_end(at) + policy.edit_cutoff_after_week


def review_deadline(at: datetime, policy: DeadlinePolicy = DEFAULT_POLICY) -> datetime:
    """When the review window of ``at``'s week closes and silence becomes approval."""
    return week_end(at) + policy.review_deadline_after_week


def week_label(start: datetime) -> str:
    """``YYYY-MM-DD`` of a week's Monday: the form used in ids, object keys and URLs."""
    return week_start(start).strftime("%Y-%m-%d")


def parse_week(value: str | date | datetime, *, any_day: bool = False) -> datetime:
    """A week from ``YYYY-MM-DD`` (a Monday; with ``any_day``, any day of it), an ISO week ``2026-W48``, a
    date or a datetime."""
    if isinstance(value, datetime):
        return week_start(value)
    if isinstance(value, date):
        day = value
    else:
        text = value.strip()
        try:
            if "W" in text.upper():
                year, _, week = text.upper().partition("-W")
                day = date.fromisocalendar(int(year), int(week), 1)
            else:
                day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                f"week {value!r} is not a date: use the Monday as YYYY-MM-DD (e.g. 2026-11-23) or 2026-W48",
                "week_invalid",
            ) from None
    if not (FIRST_WEEK <= day <= LAST_WEEK):
        raise InvalidInput(
            f"week {day.isoformat()} is out of range: weeks from {FIRST_WEEK} to {LAST_WEEK}", "week_invalid"
        )
    if any_day:
        day -= timedelta(days=day.weekday())
    if day.weekday() != 0:
        monday = day - timedelta(days=day.weekday())
        raise InvalidInput(
            f"week {day.isoformat()} is not a Monday: weeks start on Monday, e.g. {monday}", "week_invalid"
        )
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def iso_week_name(start: datetime) -> str:
    """``2026-W48``: the ISO year and week number (the ISO year can differ from the calendar year)."""
    year, week, _ = week_start(start).isocalendar()
    return f"{year}-W{week:02d}"


def slots_between(start: datetime, end: datetime, slot_length: timedelta = SLOT) -> list[datetime]:
    """Starts of every slot that begins in [start, end)."""
    first = slot_start(start, slot_length)
    if first < as_utc(start):
        first += slot_length
    out = []
    at = first
    end = as_utc(end)
    while at < end:
        out.append(at)
        at += slot_length
    return out
