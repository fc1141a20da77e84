"""The calendar rules: ISO weeks in UTC, 12-minute slots on the hour, and the deadlines after a week."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

import pytest

from domain.calendar import (
    DEFAULT_POLICY,
    DeadlinePolicy,
    NaiveDatetimeError,
    as_utc,
    edit_cutoff,
    iso_week_name,
    parse_week,
    review_deadline,
    slot_start,
    week_end,
    week_start,
)
from domain.errors import InvalidInput

IST = timezone(timedelta(hours=5, minutes=30))
PST = timezone(timedelta(hours=-8))
LINT = timezone(timedelta(hours=14))  # Line Islands: the earliest clocks on Earth
NPT = timezone(timedelta(hours=5, minutes=45))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def ids(cases: Sequence[Sequence[object]]) -> list[str]:
    return [str(case[0]) for case in cases]


# --- as_utc -----------------------------------------------------------------------------------------

AS_UTC = [
    ("UTC stays as it is", utc(2026, 11, 23, 9, 0), utc(2026, 11, 23, 9, 0)),
    ("+05:30 moves back", datetime(2026, 11, 23, 3, 0, tzinfo=IST), utc(2026, 11, 22, 21, 30)),
    ("-08:00 moves forward", datetime(2026, 11, 29, 20, 0, tzinfo=PST), utc(2026, 11, 30, 4, 0)),
    ("+14:00 moves back a day", datetime(2026, 11, 30, 10, 0, tzinfo=LINT), utc(2026, 11, 29, 20, 0)),
    (
        "+05:45 keeps the microseconds",
        datetime(2026, 1, 1, 0, 0, 0, 7, tzinfo=NPT),
        utc(2025, 12, 31, 18, 15, 0, 7),
    ),
]


@pytest.mark.parametrize(("name", "given", "expected"), AS_UTC, ids=ids(AS_UTC))
def test_as_utc_converts_any_offset_to_utc(name: str, given: datetime, expected: datetime) -> None:
    result = as_utc(given)
    assert result == expected
    assert result.tzinfo is UTC
    assert result.utcoffset() == timedelta(0)


NAIVE_CALLS = [
    ("as_utc", lambda at: as_utc(at)),
    ("week_start", week_start),
    ("week_end", week_end),
    ("slot_start", lambda at: slot_start(at)),
    ("edit_cutoff", lambda at: edit_cutoff(at)),
    ("review_deadline", lambda at: review_deadline(at)),
    ("iso_week_name", iso_week_name),
    ("parse_week", parse_week),
]


@pytest.mark.parametrize(("name", "call"), NAIVE_CALLS, ids=ids(NAIVE_CALLS))
def test_a_naive_datetime_is_refused_with_a_message_asking_for_an_offset(name: str, call) -> None:
    with pytest.raises(NaiveDatetimeError) as raised:
        call(datetime(2026, 11, 23, 9, 0))
    assert isinstance(raised.value, InvalidInput)
    assert isinstance(raised.value, ValueError)
    assert raised.value.status_code == 422
    message = str(raised.value)
    assert "no UTC offset" in message
    assert "send it with one" in message
    assert "+00:00" in message  # shows the form to use


def test_the_naive_message_names_what_was_wrong() -> None:
    with pytest.raises(NaiveDatetimeError, match=r"^captured_at 2026-11-23T09:00:00 has no UTC offset"):
        as_utc(datetime(2026, 11, 23, 9, 0), what="captured_at")


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: as good as naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_a_tzinfo_without_an_offset_counts_as_naive() -> None:
    with pytest.raises(NaiveDatetimeError):
        as_utc(datetime(2026, 11, 23, 9, 0, tzinfo=_NoOffset()))


# --- week_start / week_end --------------------------------------------------------------------------

MONDAY = utc(2026, 11, 23)
WEEKS = [
    ("Monday 00:00:00 UTC starts its own week", utc(2026, 11, 23, 0, 0, 0), MONDAY),
    ("Monday 00:00:00.000001 is in the same week", utc(2026, 11, 23, 0, 0, 0, 1), MONDAY),
    ("a Wednesday afternoon", utc(2026, 11, 25, 15, 14), MONDAY),
    ("Sunday 23:59:59.999999 is the last instant of the week", utc(2026, 11, 29, 23, 59, 59, 999999), MONDAY),
    ("the next Monday 00:00 starts the next week", utc(2026, 11, 30), utc(2026, 11, 30)),
    (
        "Sunday 23:59:59.999999 before it is the previous week",
        utc(2026, 11, 22, 23, 59, 59, 999999),
        utc(2026, 11, 16),
    ),
    # Local Monday morning in India is still Sunday evening in UTC: the previous week.
    ("+05:30 local Monday 03:00 is UTC Sunday", datetime(2026, 11, 23, 3, 0, tzinfo=IST), utc(2026, 11, 16)),
    ("+05:30 local Monday 05:30 is UTC Monday 00:00", datetime(2026, 11, 23, 5, 30, tzinfo=IST), MONDAY),
    # Local Sunday evening in California is already Monday in UTC: the next week.
    ("-08:00 local Sunday 20:00 is UTC Monday", datetime(2026, 11, 29, 20, 0, tzinfo=PST), utc(2026, 11, 30)),
    (
        "-08:00 local Sunday 15:59:59.999999 is UTC Sunday",
        datetime(2026, 11, 29, 15, 59, 59, 999999, tzinfo=PST),
        MONDAY,
    ),
    # Local Monday morning at +14:00 is UTC Sunday.
    ("+14:00 local Monday 10:00 is UTC Sunday", datetime(2026, 11, 30, 10, 0, tzinfo=LINT), MONDAY),
    (
        "+14:00 local Monday 14:00 is UTC Monday",
        datetime(2026, 11, 30, 14, 0, tzinfo=LINT),
        utc(2026, 11, 30),
    ),
    # ISO years whose week 1 starts in December of the previous calendar year.
    ("2025-W01 starts Monday 2024-12-30", utc(2025, 1, 1, 12), utc(2024, 12, 30)),
    ("2024-12-31 is in the week of 2024-12-30", utc(2024, 12, 31, 23, 59, 59, 999999), utc(2024, 12, 30)),
    ("2020-W01 starts Monday 2019-12-30", utc(2020, 1, 5, 23, 59), utc(2019, 12, 30)),
    ("2021-01-03 is still in 2020-W53", utc(2021, 1, 3, 12), utc(2020, 12, 28)),
    # 29 February and the week around it.
    ("2024-02-29 is a Thursday", utc(2024, 2, 29, 12), utc(2024, 2, 26)),
    (
        "2024-03-03 Sunday closes the week of 2024-02-26",
        utc(2024, 3, 3, 23, 59, 59, 999999),
        utc(2024, 2, 26),
    ),
    ("2028-02-29 is a Tuesday", utc(2028, 2, 29, 8), utc(2028, 2, 28)),
    (
        "2028-03-05 Sunday closes the week of 2028-02-28",
        utc(2028, 3, 5, 23, 59, 59, 999999),
        utc(2028, 2, 28),
    ),
]


@pytest.mark.parametrize(("name", "at", "monday"), WEEKS, ids=ids(WEEKS))
def test_week_start_is_monday_midnight_utc(name: str, at: datetime, monday: datetime) -> None:
    start = week_start(at)
    assert start == monday
    assert start.tzinfo is UTC
    assert start.weekday() == 0
    assert (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0)
    assert start <= at < start + timedelta(days=7)


@pytest.mark.parametrize(("name", "at", "monday"), WEEKS, ids=ids(WEEKS))
def test_week_end_is_the_next_monday_midnight_utc(name: str, at: datetime, monday: datetime) -> None:
    end = week_end(at)
    assert end == monday + timedelta(days=7)
    assert end.tzinfo is UTC
    assert end.weekday() == 0
    assert at < end


def test_week_end_is_exclusive() -> None:
    last = utc(2026, 11, 29, 23, 59, 59, 999999)
    assert week_end(last) == utc(2026, 11, 30)
    assert week_start(week_end(last)) == week_end(last)  # the end belongs to the next week


def test_a_week_is_seven_days_even_across_a_leap_day() -> None:
    assert week_end(utc(2024, 2, 29)) - week_start(utc(2024, 2, 29)) == timedelta(days=7)
    assert week_end(utc(2024, 2, 29)) == utc(2024, 3, 4)


# --- slot_start -------------------------------------------------------------------------------------

SLOTS = [
    ("the top of the hour is slot :00", utc(2026, 11, 23, 9, 0), utc(2026, 11, 23, 9, 0)),
    (":11:59.999999 is still slot :00", utc(2026, 11, 23, 9, 11, 59, 999999), utc(2026, 11, 23, 9, 0)),
    (":12:00 starts slot :12", utc(2026, 11, 23, 9, 12), utc(2026, 11, 23, 9, 12)),
    (":23:59.999999 is slot :12", utc(2026, 11, 23, 9, 23, 59, 999999), utc(2026, 11, 23, 9, 12)),
    (":24:00 starts slot :24", utc(2026, 11, 23, 9, 24), utc(2026, 11, 23, 9, 24)),
    (":35:59.999999 is slot :24", utc(2026, 11, 23, 9, 35, 59, 999999), utc(2026, 11, 23, 9, 24)),
    (":36:00 starts slot :36", utc(2026, 11, 23, 9, 36), utc(2026, 11, 23, 9, 36)),
    (":47:59.999999 is slot :36", utc(2026, 11, 23, 9, 47, 59, 999999), utc(2026, 11, 23, 9, 36)),
    (":48:00 starts slot :48", utc(2026, 11, 23, 9, 48), utc(2026, 11, 23, 9, 48)),
    (":59:59.999999 is slot :48", utc(2026, 11, 23, 9, 59, 59, 999999), utc(2026, 11, 23, 9, 48)),
    ("the last slot of a week", utc(2026, 11, 29, 23, 59, 59, 999999), utc(2026, 11, 29, 23, 48)),
    ("the first slot of a week", utc(2026, 11, 30, 0, 0), utc(2026, 11, 30, 0, 0)),
    ("leap day", utc(2024, 2, 29, 23, 50), utc(2024, 2, 29, 23, 48)),
    ("before the 1970 epoch", utc(1969, 12, 31, 23, 59), utc(1969, 12, 31, 23, 48)),
    # Slots align to the UTC hour, whatever the offset of the input.
    (
        "+05:30 local 09:35 is UTC 04:05, slot 04:00",
        datetime(2026, 11, 23, 9, 35, tzinfo=IST),
        utc(2026, 11, 23, 4, 0),
    ),
    (
        "+05:45 local 10:00 is UTC 04:15, slot 04:12",
        datetime(2026, 11, 23, 10, 0, tzinfo=NPT),
        utc(2026, 11, 23, 4, 12),
    ),
    (
        "-08:00 local Sunday 16:05 is UTC Monday 00:05",
        datetime(2026, 11, 29, 16, 5, tzinfo=PST),
        utc(2026, 11, 30, 0, 0),
    ),
    (
        "+14:00 local Monday 13:59 is UTC Sunday 23:59",
        datetime(2026, 11, 30, 13, 59, tzinfo=LINT),
        utc(2026, 11, 29, 23, 48),
    ),
]


@pytest.mark.parametrize(("name", "at", "expected"), SLOTS, ids=ids(SLOTS))
def test_slot_start(name: str, at: datetime, expected: datetime) -> None:
    start = slot_start(at)
    assert start == expected
    assert start.tzinfo is UTC
    assert start <= at < start + timedelta(minutes=12)


def test_an_hour_has_exactly_five_slot_starts() -> None:
    starts = {slot_start(utc(2026, 11, 23, 9, 0) + timedelta(seconds=s)) for s in range(0, 3600, 7)}
    assert sorted(starts) == [utc(2026, 11, 23, 9, m) for m in (0, 12, 24, 36, 48)]


@pytest.mark.parametrize("minute", [0, 12, 24, 36, 48])
def test_each_slot_runs_twelve_minutes_from_its_start(minute: int) -> None:
    begin = utc(2026, 11, 23, 9, minute)
    assert slot_start(begin) == begin
    assert slot_start(begin + timedelta(minutes=12) - timedelta(microseconds=1)) == begin


def test_a_custom_slot_length() -> None:
    assert slot_start(utc(2026, 11, 23, 9, 14), timedelta(minutes=10)) == utc(2026, 11, 23, 9, 10)


@pytest.mark.parametrize("length", [timedelta(0), timedelta(minutes=-12)], ids=["zero", "negative"])
def test_a_slot_length_must_be_positive(length: timedelta) -> None:
    with pytest.raises(InvalidInput, match="slot length must be positive"):
        slot_start(utc(2026, 11, 23, 9, 0), length)


# --- deadlines --------------------------------------------------------------------------------------

DEADLINES = [
    ("Monday 00:00 of the week", utc(2026, 11, 23), utc(2026, 11, 30, 12), utc(2026, 12, 5)),
    (
        "Sunday 23:59:59.999999",
        utc(2026, 11, 29, 23, 59, 59, 999999),
        utc(2026, 11, 30, 12),
        utc(2026, 12, 5),
    ),
    ("the next Monday belongs to the next week", utc(2026, 11, 30), utc(2026, 12, 7, 12), utc(2026, 12, 12)),
    (
        "-08:00 Sunday evening is next week in UTC",
        datetime(2026, 11, 29, 20, 0, tzinfo=PST),
        utc(2026, 12, 7, 12),
        utc(2026, 12, 12),
    ),
    (
        "+14:00 Monday morning is last week in UTC",
        datetime(2026, 11, 30, 10, 0, tzinfo=LINT),
        utc(2026, 11, 30, 12),
        utc(2026, 12, 5),
    ),
    ("a week across the new year", utc(2024, 12, 31), utc(2025, 1, 6, 12), utc(2025, 1, 11)),
    ("the week of 2024-02-29", utc(2024, 2, 29), utc(2024, 3, 4, 12), utc(2024, 3, 9)),
    ("the week of 2028-02-29", utc(2028, 2, 29), utc(2028, 3, 6, 12), utc(2028, 3, 11)),
]


@pytest.mark.parametrize(("name", "at", "cutoff", "deadline"), DEADLINES, ids=ids(DEADLINES))
def test_default_deadlines(name: str, at: datetime, cutoff: datetime, deadline: datetime) -> None:
    assert edit_cutoff(at) == cutoff
    assert edit_cutoff(at, DEFAULT_POLICY) == cutoff
    assert (cutoff.weekday(), cutoff.hour, cutoff.minute) == (0, 12, 0)  # next Monday 12:00 UTC
    assert review_deadline(at) == deadline
    assert review_deadline(at, DEFAULT_POLICY) == deadline
    assert (deadline.weekday(), deadline.hour, deadline.minute) == (5, 0, 0)  # Saturday 00:00 UTC
    assert cutoff.tzinfo is UTC and deadline.tzinfo is UTC
    assert week_end(at) < cutoff < deadline


def test_the_default_policy() -> None:
    policy = DeadlinePolicy()
    assert policy == DEFAULT_POLICY
    assert policy.edit_cutoff_after_week == timedelta(hours=12)
    assert policy.review_deadline_after_week == timedelta(days=5)
    assert policy.response_window == timedelta(days=3)
    assert policy.security_period == timedelta(days=5)
    assert policy.spread_s == 0


CUSTOM = DeadlinePolicy(edit_cutoff_after_week_s=36 * 3600, review_deadline_after_week_s=(2 * 24 + 6) * 3600)
CUSTOM_DEADLINES = [
    ("Monday of the week", utc(2026, 11, 23), utc(2026, 12, 1, 12), utc(2026, 12, 2, 6)),
    (
        "last microsecond of the week",
        utc(2026, 11, 29, 23, 59, 59, 999999),
        utc(2026, 12, 1, 12),
        utc(2026, 12, 2, 6),
    ),
    (
        "+05:30 local Monday 03:00 is last week",
        datetime(2026, 11, 30, 3, 0, tzinfo=IST),
        utc(2026, 12, 1, 12),
        utc(2026, 12, 2, 6),
    ),
]


@pytest.mark.parametrize(("name", "at", "cutoff", "deadline"), CUSTOM_DEADLINES, ids=ids(CUSTOM_DEADLINES))
def test_a_custom_policy_moves_the_deadlines(
    name: str, at: datetime, cutoff: datetime, deadline: datetime
) -> None:
    assert edit_cutoff(at, CUSTOM) == cutoff
    assert review_deadline(at, CUSTOM) == deadline


# --- parse_week / iso_week_name ---------------------------------------------------------------------

PARSED = [
    ("a Monday as YYYY-MM-DD", "2026-11-23", utc(2026, 11, 23)),
    ("surrounding spaces are ignored", "  2026-11-23 ", utc(2026, 11, 23)),
    ("an ISO week", "2026-W48", utc(2026, 11, 23)),
    ("an ISO week in lower case", "2026-w48", utc(2026, 11, 23)),
    ("2025-W01 starts in December 2024", "2025-W01", utc(2024, 12, 30)),
    ("2020-W01 starts in December 2019", "2020-W01", utc(2019, 12, 30)),
    ("2020-W53 exists", "2020-W53", utc(2020, 12, 28)),
    ("the Monday of the leap week 2024", "2024-02-26", utc(2024, 2, 26)),
    ("the Monday of the leap week 2028", "2028-02-28", utc(2028, 2, 28)),
    ("a date that is a Monday", date(2026, 11, 23), utc(2026, 11, 23)),
    ("a datetime gives its week", utc(2026, 11, 25, 15, 0), utc(2026, 11, 23)),
    (
        "a datetime with an offset gives its UTC week",
        datetime(2026, 11, 23, 3, 0, tzinfo=IST),
        utc(2026, 11, 16),
    ),
]


@pytest.mark.parametrize(("name", "value", "expected"), PARSED, ids=ids(PARSED))
def test_parse_week(name: str, value: str | date | datetime, expected: datetime) -> None:
    parsed = parse_week(value)
    assert parsed == expected
    assert parsed.tzinfo is UTC


NOT_MONDAYS = [
    ("a Tuesday", "2026-11-24", "2026-11-23"),
    ("a Sunday", "2026-11-29", "2026-11-23"),
    ("29 February 2024 (a Thursday)", "2024-02-29", "2024-02-26"),
    ("29 February 2028 (a Tuesday)", "2028-02-29", "2028-02-28"),
    ("1 January 2025 (week starts in 2024)", "2025-01-01", "2024-12-30"),
    ("a date object", date(2026, 11, 25), "2026-11-23"),
]


@pytest.mark.parametrize(("name", "value", "monday"), NOT_MONDAYS, ids=ids(NOT_MONDAYS))
def test_parse_week_refuses_a_day_that_is_not_a_monday(name: str, value: str | date, monday: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_week(value)
    message = str(raised.value)
    assert "is not a Monday" in message
    assert monday in message  # names the Monday to use instead


GARBAGE = [
    ("words", "next week"),
    ("empty", ""),
    ("day first", "23-11-2026"),
    ("no such day", "2026-02-30"),
    ("no such ISO week", "2026-W54"),
    ("ISO week 53 in a 52-week year", "2025-W53"),
    ("ISO week zero", "2026-W00"),
    ("ISO week without a number", "2026-W"),
    ("ISO week without a dash", "2026W48"),
    ("a datetime string", "2026-11-23T00:00:00+00:00"),
]


@pytest.mark.parametrize(("name", "value"), GARBAGE, ids=ids(GARBAGE))
def test_parse_week_refuses_garbage_naming_the_right_form(name: str, value: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_week(value)
    message = str(raised.value)
    assert "YYYY-MM-DD" in message
    assert "2026-W48" in message
    assert raised.value.status_code == 422


ISO_NAMES = [
    ("a November week", utc(2026, 11, 23), "2026-W48"),
    ("any instant of the week", utc(2026, 11, 29, 23, 59, 59, 999999), "2026-W48"),
    ("2024-12-30 is the Monday of 2025-W01", utc(2024, 12, 30), "2025-W01"),
    ("2024-12-31 is in 2025-W01", utc(2024, 12, 31, 12), "2025-W01"),
    ("2019-12-30 is the Monday of 2020-W01", utc(2019, 12, 30), "2020-W01"),
    ("2021-01-03 is in 2020-W53", utc(2021, 1, 3), "2020-W53"),
    ("2027-01-01 is in 2026-W53", utc(2027, 1, 1), "2026-W53"),
    ("single-digit weeks are zero-padded", utc(2026, 1, 5), "2026-W02"),
    ("2024-02-29", utc(2024, 2, 29), "2024-W09"),
    ("2028-02-29", utc(2028, 2, 29), "2028-W09"),
    ("-08:00 local Sunday evening is next UTC week", datetime(2024, 12, 29, 20, 0, tzinfo=PST), "2025-W01"),
    ("+14:00 local Monday morning is last UTC week", datetime(2024, 12, 30, 10, 0, tzinfo=LINT), "2024-W52"),
]


@pytest.mark.parametrize(("name", "at", "expected"), ISO_NAMES, ids=ids(ISO_NAMES))
def test_iso_week_name(name: str, at: datetime, expected: str) -> None:
    assert iso_week_name(at) == expected


@pytest.mark.parametrize(("name", "at", "expected"), ISO_NAMES, ids=ids(ISO_NAMES))
def test_an_iso_week_name_parses_back_to_its_week(name: str, at: datetime, expected: str) -> None:
    assert parse_week(iso_week_name(at)) == week_start(at)
