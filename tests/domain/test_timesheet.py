"""Timesheet arithmetic: the worked examples of tests/data/timesheets.json, then one table case per rule."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from domain.calendar import NaiveDatetimeError, parse_week
from domain.errors import InvalidInput
from domain.timesheet import (
    CaptureFact,
    ContractTerms,
    ManualFact,
    Timesheet,
    WorkViewInterval,
    check_manual_entry,
    compute_timesheet,
    has_memo,
)

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "timesheets.json"
FIGURES = (
    "documented_minutes",
    "tracked_minutes",
    "manual_minutes",
    "billable_minutes",
    "guaranteed_minutes",
    "amount_cents",
    "guaranteed_cents",
)
ENTRY_FIELDS = (
    "kind",
    "start",
    "minutes",
    "billable_minutes",
    "guaranteed_minutes",
    "not_guaranteed_because",
)
WEEK = datetime(2026, 11, 23, tzinfo=UTC)  # Monday of 2026-W48, the week of most cases below
IST = timezone(timedelta(hours=5, minutes=30))
PST = timezone(timedelta(hours=-8))


def at(text: str) -> datetime:
    """An ISO time; without an offset it is read as UTC (only in these tables, never in the domain)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def entry_rows(sheet: Timesheet) -> list[dict[str, Any]]:
    return [
        {
            "kind": e.kind,
            "start": e.start,
            "minutes": e.minutes,
            "billable_minutes": e.billable_minutes,
            "guaranteed_minutes": e.guaranteed_minutes,
            "not_guaranteed_because": list(e.not_guaranteed_because),
        }
        for e in sheet.entries
    ]


def assert_consistent(sheet: Timesheet) -> None:
    """What must hold for every timesheet, whatever its input."""
    assert sheet.billable_minutes == sum(e.billable_minutes for e in sheet.entries)
    assert sheet.guaranteed_minutes == sum(e.guaranteed_minutes for e in sheet.entries)
    assert sheet.billable_minutes <= sheet.weekly_limit_hours * 60
    assert sheet.guaranteed_minutes <= sheet.billable_minutes
    assert sheet.entries == sorted(sheet.entries, key=lambda e: e.start)
    assert len({e.entry_id for e in sheet.entries}) == len(sheet.entries)
    for entry in sheet.entries:
        assert entry.start.tzinfo is not None and entry.start.utcoffset() == timedelta(0)
        assert sheet.week_start <= entry.start < sheet.week_start + timedelta(days=7)
        assert 0 <= entry.guaranteed_minutes <= entry.billable_minutes <= entry.minutes
        if entry.guaranteed_minutes == entry.minutes:
            assert entry.not_guaranteed_because == []
        if entry.kind != "slot":
            assert entry.guaranteed_minutes == 0


# --- (1) the worked examples (tests/data/timesheets.json) -----------------------------------------------------------


def load_scenarios() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(SCENARIOS.read_text(encoding="utf-8"))["cases"]
    return cases


def scenario_inputs(
    case: dict[str, Any],
) -> tuple[ContractTerms, datetime, list[CaptureFact], list[ManualFact]]:
    contract = case["contract"]
    terms = ContractTerms(
        contract_id=f"scenario-{case['name']}",
        rate_cents=contract["rate_cents"],
        weekly_limit_hours=contract["weekly_limit_hours"],
        manual_allowed=contract["manual_allowed"],
        work_view=[
            WorkViewInterval(start=at(start), end=at(end) if end else None)
            for start, end in contract["work_view"]
        ],
    )
    captures = [
        CaptureFact(
            capture_id=f"shot-{i}",
            captured_at=at(item["captured_at"]),
            memo=item.get("memo", ""),
            deleted=item.get("deleted", False),
        )
        for i, item in enumerate(case.get("captures", []))
    ]
    captures += [
        CaptureFact(
            capture_id=f"tracked-{i}", captured_at=at(item["at"]), memo=item.get("memo", ""), has_image=False
        )
        for i, item in enumerate(case.get("tracked", []))
    ]
    manual = [
        ManualFact(
            entry_id=f"manual-{i}", start=at(item["start"]), end=at(item["end"]), memo=item.get("memo", "")
        )
        for i, item in enumerate(case.get("manual", []))
    ]
    return terms, parse_week(case["week_start"]), captures, manual


SCENARIO_CASES = load_scenarios()


def test_the_scenarios_file_has_cases() -> None:
    assert len(SCENARIO_CASES) >= 6


@pytest.mark.parametrize("case", SCENARIO_CASES, ids=[c["name"] for c in SCENARIO_CASES])
def test_scenario(case: dict[str, Any]) -> None:
    terms, week, captures, manual = scenario_inputs(case)
    sheet = compute_timesheet(terms, week, captures, manual)
    expect = case["expect"]

    assert sheet.week_start == week
    assert {name: getattr(sheet, name) for name in FIGURES} == {name: expect[name] for name in FIGURES}
    expected_entries = [{key: entry[key] for key in ENTRY_FIELDS} for entry in expect["entries"]]
    for entry in expected_entries:
        entry["start"] = at(entry["start"])
    assert entry_rows(sheet) == expected_entries
    assert_consistent(sheet)


@pytest.mark.parametrize("case", SCENARIO_CASES, ids=[c["name"] for c in SCENARIO_CASES])
def test_scenario_does_not_depend_on_input_order(case: dict[str, Any]) -> None:
    terms, week, captures, manual = scenario_inputs(case)
    forward = compute_timesheet(terms, week, captures, manual)
    backward = compute_timesheet(terms, week, captures[::-1], manual[::-1])
    assert backward == forward
    assert backward.content_hash() == forward.content_hash()


# --- (2) one table case per rule --------------------------------------------------------------------


def shot(when: str, memo: str = "Writing the export", *, cid: str = "", deleted: bool = False) -> CaptureFact:
    return CaptureFact(capture_id=cid or f"shot-{when}", captured_at=at(when), memo=memo, deleted=deleted)


def track(when: str, memo: str = "Refactoring", *, cid: str = "", deleted: bool = False) -> CaptureFact:
    return CaptureFact(
        capture_id=cid or f"tracked-{when}", captured_at=at(when), memo=memo, has_image=False, deleted=deleted
    )


def manual(
    start: str, end: str, memo: str = "Call with the client", *, eid: str = "", deleted: bool = False
) -> ManualFact:
    return ManualFact(entry_id=eid or f"m-{start}", start=at(start), end=at(end), memo=memo, deleted=deleted)


def terms(
    *,
    rate: int = 6000,
    limit: int = 40,
    manual_allowed: bool = True,
    work_view: list[tuple[str, str | None]] | None = None,
) -> ContractTerms:
    intervals = [("2026-11-01T00:00", None)] if work_view is None else work_view
    return ContractTerms(
        contract_id="c-1",
        rate_cents=rate,
        weekly_limit_hours=limit,
        manual_allowed=manual_allowed,
        work_view=[WorkViewInterval(start=at(s), end=at(e) if e else None) for s, e in intervals],
    )


Row = tuple[str, str, int, int, int, list[str]]  # kind, start, minutes, billable, guaranteed, reasons


@dataclass
class Case:
    name: str
    terms: ContractTerms
    captures: list[CaptureFact] = field(default_factory=list)
    manual: list[ManualFact] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)  # only the figures that matter to the rule
    entries: list[Row] = field(default_factory=list)
    memos: list[str] | None = None
    capture_ids: list[list[str]] | None = None
    week: datetime = WEEK


def slot(start: str, guaranteed: int = 12, reasons: list[str] | None = None, billable: int = 12) -> Row:
    return ("slot", start, 12, billable, guaranteed, reasons or [])


CASES = [
    Case(
        "deleting a capture removes its 12 minutes",
        terms(rate=6000),
        [shot("2026-11-24T10:03"), shot("2026-11-24T10:15", deleted=True), shot("2026-11-24T10:27")],
        figures={
            "documented_minutes": 24,
            "billable_minutes": 24,
            "amount_cents": 2400,
            "guaranteed_cents": 2400,
        },
        entries=[slot("2026-11-24T10:00"), slot("2026-11-24T10:24")],
    ),
    Case(
        "deleting one of two captures in a slot keeps the slot",
        terms(),
        [shot("2026-11-24T10:03", deleted=True), shot("2026-11-24T10:09", cid="kept")],
        figures={"documented_minutes": 12},
        entries=[slot("2026-11-24T10:00")],
        capture_ids=[["kept"]],
    ),
    Case(
        "deleting the only capture of a slot with a tracked record leaves the tracked slot",
        terms(),
        [shot("2026-11-24T10:03", deleted=True), track("2026-11-24T10:05")],
        figures={"documented_minutes": 0, "tracked_minutes": 12, "guaranteed_minutes": 0},
        entries=[("tracked", "2026-11-24T10:00", 12, 12, 0, ["no_screenshot"])],
    ),
    Case(
        "two captures in one slot count once, with a memo if either has one",
        terms(),
        [shot("2026-11-24T10:01", "", cid="a"), shot("2026-11-24T10:10", "Writing tests", cid="b")],
        figures={"documented_minutes": 12, "billable_minutes": 12, "guaranteed_minutes": 12},
        entries=[slot("2026-11-24T10:00")],
        memos=["Writing tests"],
        capture_ids=[["a", "b"]],
    ),
    Case(
        "two captures in one slot count once, the first memo when both have one",
        terms(),
        [shot("2026-11-24T10:10", "Second", cid="b"), shot("2026-11-24T10:01", "First", cid="a")],
        figures={"documented_minutes": 12, "guaranteed_minutes": 12},
        entries=[slot("2026-11-24T10:00")],
        memos=["First"],
        capture_ids=[["a", "b"]],
    ),
    Case(
        "two captures in one slot without a memo are one slot not guaranteed: no_memo",
        terms(),
        [shot("2026-11-24T10:01", ""), shot("2026-11-24T10:10", " \t\n")],
        figures={"documented_minutes": 12, "billable_minutes": 12, "guaranteed_minutes": 0},
        entries=[slot("2026-11-24T10:00", 0, ["no_memo"])],
        memos=[""],
    ),
    Case(
        "an entry crossing the weekly limit is billed to the minute",
        terms(rate=6000, limit=1),
        manual=[
            manual("2026-11-24T08:00", "2026-11-24T08:30"),
            manual("2026-11-24T09:00", "2026-11-24T09:50"),
        ],
        figures={"manual_minutes": 80, "billable_minutes": 60, "amount_cents": 6000, "guaranteed_minutes": 0},
        entries=[
            ("manual", "2026-11-24T08:00", 30, 30, 0, ["manual_time"]),
            ("manual", "2026-11-24T09:00", 50, 30, 0, ["manual_time", "over_weekly_limit"]),
        ],
    ),
    Case(
        "a documented slot crossing the weekly limit is billed and guaranteed to the minute",
        terms(rate=6000, limit=1),
        [shot("2026-11-24T10:05"), shot("2026-11-24T10:17")],
        [manual("2026-11-24T08:00", "2026-11-24T08:50")],
        figures={
            "billable_minutes": 60,
            "guaranteed_minutes": 10,
            "amount_cents": 6000,
            "guaranteed_cents": 1000,
        },
        entries=[
            ("manual", "2026-11-24T08:00", 50, 50, 0, ["manual_time"]),
            slot("2026-11-24T10:00", 10, ["over_weekly_limit"], billable=10),
            slot("2026-11-24T10:12", 0, ["over_weekly_limit"], billable=0),
        ],
    ),
    Case(
        "the weekly limit goes by time, not by kind: earlier manual time is billed before later slots",
        terms(limit=1),
        [shot(f"2026-11-25T09:{m:02d}") for m in (1, 13, 25, 37, 49)],
        [manual("2026-11-24T08:00", "2026-11-24T08:48")],
        figures={"billable_minutes": 60, "guaranteed_minutes": 12},
        entries=[
            ("manual", "2026-11-24T08:00", 48, 48, 0, ["manual_time"]),
            slot("2026-11-25T09:00"),
            slot("2026-11-25T09:12", 0, ["over_weekly_limit"], billable=0),
            slot("2026-11-25T09:24", 0, ["over_weekly_limit"], billable=0),
            slot("2026-11-25T09:36", 0, ["over_weekly_limit"], billable=0),
            slot("2026-11-25T09:48", 0, ["over_weekly_limit"], billable=0),
        ],
    ),
    Case(
        "a slot without a memo over the limit gives both reasons",
        terms(limit=1),
        [shot(f"2026-11-24T09:{m:02d}") for m in (1, 13, 25, 37, 49)] + [shot("2026-11-24T10:01", "")],
        figures={"documented_minutes": 72, "billable_minutes": 60, "guaranteed_minutes": 60},
        entries=[slot(f"2026-11-24T09:{m:02d}") for m in (0, 12, 24, 36, 48)]
        + [slot("2026-11-24T10:00", 0, ["no_memo", "over_weekly_limit"], billable=0)],
    ),
    Case(
        # check_manual_entry refuses this overlap, but a screenshot uploaded late (before the edit cutoff)
        # can still land on manual time: then the documented slot takes the limit first.
        "when a late screenshot starts with manual time, the documented slot is billed first",
        terms(limit=1),
        [shot("2026-11-24T10:00:30")],
        [manual("2026-11-24T10:00", "2026-11-24T11:00")],
        figures={"billable_minutes": 60, "guaranteed_minutes": 12},
        entries=[
            slot("2026-11-24T10:00"),
            ("manual", "2026-11-24T10:00", 60, 48, 0, ["manual_time", "over_weekly_limit"]),
        ],
    ),
    Case(
        "a screenshot taken while Work View was off is ignored",
        terms(work_view=[("2026-11-01T00:00", "2026-11-24T12:00"), ("2026-11-24T14:00", None)]),
        [
            shot("2026-11-24T11:59:59.999999"),  # last instant on
            shot("2026-11-24T12:00"),  # the first instant off: ignored
            shot("2026-11-24T13:30"),  # off: ignored
            shot("2026-11-24T14:00"),  # on again
        ],
        figures={
            "documented_minutes": 24,
            "tracked_minutes": 0,
            "billable_minutes": 24,
            "guaranteed_minutes": 24,
        },
        entries=[slot("2026-11-24T11:48"), slot("2026-11-24T14:00")],
    ),
    Case(
        "a screenshot before Work View was ever on is ignored",
        terms(work_view=[("2026-11-25T00:00", None)]),
        [shot("2026-11-24T10:00"), shot("2026-11-25T10:00")],
        figures={"documented_minutes": 12},
        entries=[slot("2026-11-25T10:00")],
    ),
    Case(
        "with no Work View at all, screenshots are ignored and tracked slots are work_view_off",
        terms(work_view=[]),
        [shot("2026-11-24T10:00"), track("2026-11-24T10:15")],
        figures={
            "documented_minutes": 0,
            "tracked_minutes": 12,
            "billable_minutes": 12,
            "guaranteed_minutes": 0,
        },
        entries=[("tracked", "2026-11-24T10:12", 12, 12, 0, ["work_view_off"])],
    ),
    Case(
        "a tracked slot with Work View on is not guaranteed: no_screenshot",
        terms(rate=6000),
        captures=[track("2026-11-24T10:05", "Writing the export")],
        figures={
            "tracked_minutes": 12,
            "billable_minutes": 12,
            "guaranteed_minutes": 0,
            "amount_cents": 1200,
        },
        entries=[("tracked", "2026-11-24T10:00", 12, 12, 0, ["no_screenshot"])],
    ),
    Case(
        "a tracked slot with Work View off is billed, not guaranteed: work_view_off",
        terms(work_view=[("2026-11-01T00:00", "2026-11-24T10:00")]),
        captures=[track("2026-11-24T10:05")],
        figures={"tracked_minutes": 12, "billable_minutes": 12, "guaranteed_minutes": 0},
        entries=[("tracked", "2026-11-24T10:00", 12, 12, 0, ["work_view_off"])],
    ),
    Case(
        "a tracked slot in a slot that also has a screenshot adds nothing",
        terms(),
        [shot("2026-11-24T10:03", cid="s"), track("2026-11-24T10:07", cid="t")],
        figures={
            "documented_minutes": 12,
            "tracked_minutes": 0,
            "billable_minutes": 12,
            "guaranteed_minutes": 12,
        },
        entries=[slot("2026-11-24T10:00")],
        capture_ids=[["s"]],
    ),
    Case(
        "two tracked records in one slot count once",
        terms(work_view=[]),
        [track("2026-11-24T10:01", "", cid="t1"), track("2026-11-24T10:11", "Refactoring", cid="t2")],
        figures={"tracked_minutes": 12, "billable_minutes": 12},
        entries=[("tracked", "2026-11-24T10:00", 12, 12, 0, ["work_view_off"])],
        memos=["Refactoring"],
        capture_ids=[["t1", "t2"]],
    ),
    Case(
        "a deleted tracked record is ignored",
        terms(),
        [track("2026-11-24T10:01", deleted=True)],
        figures={"tracked_minutes": 0, "billable_minutes": 0},
    ),
    Case(
        "captures outside the week are ignored",
        terms(),
        [
            shot("2026-11-22T23:59:59.999999"),  # the last instant of the week before
            shot("2026-11-30T00:00"),  # the first instant of the week after
            track("2026-11-22T23:50"),
            track("2026-11-30T00:05"),
            shot("2026-12-25T10:00"),
            shot("2026-11-23T05:20+05:30"),  # Monday in India, still Sunday 23:50 UTC
            shot("2026-11-29T16:05-08:00"),  # Sunday in California, already Monday 00:05 UTC
        ],
        [manual("2026-11-22T22:00", "2026-11-22T23:00"), manual("2026-11-30T08:00", "2026-11-30T09:00")],
        figures=dict.fromkeys(FIGURES, 0),
    ),
    Case(
        "captures at the very edges of the week are in it",
        terms(),
        [shot("2026-11-23T00:00"), shot("2026-11-29T23:59:59.999999"), shot("2026-11-23T05:30+05:30")],
        figures={"documented_minutes": 24, "billable_minutes": 24},
        entries=[slot("2026-11-23T00:00"), slot("2026-11-29T23:48")],
    ),
    Case(
        "captures with any UTC offset fall into UTC slots",
        terms(),
        [shot("2026-11-24T15:40+05:30"), shot("2026-11-24T02:20-08:00")],
        figures={"documented_minutes": 24},
        entries=[slot("2026-11-24T10:00"), slot("2026-11-24T10:12")],
    ),
    Case(
        "manual time is ignored when the contract does not allow it",
        terms(manual_allowed=False),
        [shot("2026-11-24T10:03")],
        [manual("2026-11-24T08:00", "2026-11-24T09:00")],
        figures={"manual_minutes": 0, "documented_minutes": 12, "billable_minutes": 12},
        entries=[slot("2026-11-24T10:00")],
    ),
    Case(
        "deleted manual time is ignored",
        terms(),
        manual=[manual("2026-11-24T08:00", "2026-11-24T09:00", deleted=True)],
        figures={"manual_minutes": 0, "billable_minutes": 0},
    ),
    Case(
        "manual time is never guaranteed: manual_time",
        terms(rate=1999),
        manual=[manual("2026-11-24T08:00", "2026-11-24T10:01")],
        figures={
            "manual_minutes": 121,
            "billable_minutes": 121,
            "guaranteed_minutes": 0,
            "amount_cents": 4031,
        },
        entries=[("manual", "2026-11-24T08:00", 121, 121, 0, ["manual_time"])],
    ),
    Case(
        "the week's amount is rounded once: 84 documented minutes at 19.99",
        terms(rate=1999),
        [shot(f"2026-11-24T10:{m:02d}") for m in (1, 13, 25, 37, 49)]
        + [shot("2026-11-24T11:01"), shot("2026-11-24T11:13")],
        figures={"documented_minutes": 84, "amount_cents": 2799, "guaranteed_cents": 2799},
        entries=[slot(f"2026-11-24T10:{m:02d}") for m in (0, 12, 24, 36, 48)]
        + [slot("2026-11-24T11:00"), slot("2026-11-24T11:12")],
    ),
    Case(
        "the week may be named by any instant in it, with any offset",
        terms(),
        [shot("2026-11-24T10:03")],
        figures={"documented_minutes": 12},
        entries=[slot("2026-11-24T10:00")],
        week=datetime(2026, 11, 29, 15, 0, tzinfo=PST),  # Sunday 23:00 UTC
    ),
    Case(
        "a week with no time at all is zero everywhere",
        terms(),
        figures=dict.fromkeys(FIGURES, 0),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case) -> None:
    sheet = compute_timesheet(case.terms, case.week, case.captures, case.manual)

    assert sheet.week_start == WEEK
    assert sheet.contract_id == case.terms.contract_id
    assert {name: getattr(sheet, name) for name in case.figures} == case.figures
    expected = [
        dict(zip(ENTRY_FIELDS, (kind, at(start), minutes, billable, guaranteed, reasons), strict=True))
        for kind, start, minutes, billable, guaranteed, reasons in case.entries
    ]
    assert entry_rows(sheet) == expected
    if case.memos is not None:
        assert [e.memo for e in sheet.entries] == case.memos
    if case.capture_ids is not None:
        assert [e.capture_ids for e in sheet.entries] == case.capture_ids
    assert_consistent(sheet)


def test_a_week_with_no_time_at_all_has_no_entries_and_keeps_the_terms() -> None:
    sheet = compute_timesheet(terms(rate=2550, limit=20), WEEK, [], [])
    assert sheet.entries == []
    assert (sheet.rate_cents, sheet.weekly_limit_hours, sheet.currency) == (2550, 20, "USD")


def test_deleting_a_capture_takes_exactly_one_slot_off_the_amount() -> None:
    contract = terms(rate=2550)
    captures = [shot(f"2026-11-24T09:{m:02d}") for m in (3, 15, 27, 39, 51)]
    before = compute_timesheet(contract, WEEK, captures, [])
    captures[2] = shot("2026-11-24T09:27", deleted=True)
    after = compute_timesheet(contract, WEEK, captures, [])
    assert before.documented_minutes - after.documented_minutes == 12
    assert (before.amount_cents, after.amount_cents) == (2550, 2040)
    assert before.entry("slot-20261124T0924Z") is not None
    assert after.entry("slot-20261124T0924Z") is None


@pytest.mark.parametrize(
    ("memo", "expected"),
    [("Writing tests", True), ("  x  ", True), ("", False), ("   ", False), ("\t\n", False), (None, False)],
)
def test_blank_or_whitespace_is_no_memo(memo: str | None, expected: bool) -> None:
    assert has_memo(memo) is expected


# --- content_hash -----------------------------------------------------------------------------------


def hash_inputs() -> tuple[ContractTerms, list[CaptureFact], list[ManualFact]]:
    captures = [
        shot("2026-11-24T10:01", "First", cid="a"),
        shot("2026-11-24T10:02", "Second", cid="b"),  # same slot, a different memo
        shot("2026-11-24T10:13", "", cid="c"),
        shot("2026-11-24T10:25", cid="d", deleted=True),
        track("2026-11-24T11:05", cid="e"),
        shot("2026-11-30T00:00", cid="f"),  # next week
    ]
    manual_time = [
        manual("2026-11-25T08:00", "2026-11-25T08:45", eid="m1"),
        manual("2026-11-25T08:00", "2026-11-25T08:10", eid="m0"),  # same start: ordered by id
        manual("2026-11-26T08:00", "2026-11-26T08:30", eid="m2"),
    ]
    return terms(limit=1), captures, manual_time


def test_content_hash_is_a_sha256_hex_digest() -> None:
    contract, captures, manual_time = hash_inputs()
    digest = compute_timesheet(contract, WEEK, captures, manual_time).content_hash()
    assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")


ORDERS = [
    ("reversed", lambda xs: xs[::-1]),
    ("rotated", lambda xs: xs[1:] + xs[:1]),
    (
        "sorted by id, descending",
        lambda xs: sorted(xs, key=lambda x: getattr(x, "capture_id", "") or x.entry_id)[::-1],
    ),
]


@pytest.mark.parametrize(("name", "reorder"), ORDERS, ids=[o[0] for o in ORDERS])
def test_content_hash_is_stable_across_input_order(name: str, reorder: Any) -> None:
    contract, captures, manual_time = hash_inputs()
    original = compute_timesheet(contract, WEEK, captures, manual_time)
    shuffled = compute_timesheet(contract, WEEK, reorder(captures), reorder(manual_time))
    assert shuffled.content_hash() == original.content_hash()
    assert shuffled == original


def test_content_hash_is_stable_across_utc_offsets_of_the_same_instants() -> None:
    contract, captures, manual_time = hash_inputs()
    moved_captures = [c.model_copy(update={"captured_at": c.captured_at.astimezone(IST)}) for c in captures]
    moved_manual = [
        m.model_copy(update={"start": m.start.astimezone(PST), "end": m.end.astimezone(PST)})
        for m in manual_time
    ]
    original = compute_timesheet(contract, WEEK, captures, manual_time)
    moved = compute_timesheet(contract, datetime(2026, 11, 25, tzinfo=IST), moved_captures, moved_manual)
    assert moved.content_hash() == original.content_hash()


def _change_memo(captures: list[CaptureFact], manual_time: list[ManualFact]) -> None:
    captures[2] = captures[2].model_copy(update={"memo": "Now with a memo"})


def _delete_capture(captures: list[CaptureFact], manual_time: list[ManualFact]) -> None:
    captures[0] = captures[0].model_copy(update={"deleted": True})


def _add_capture(captures: list[CaptureFact], manual_time: list[ManualFact]) -> None:
    captures.append(shot("2026-11-27T09:00", cid="g"))


def _lengthen_manual(captures: list[CaptureFact], manual_time: list[ManualFact]) -> None:
    manual_time[2] = manual_time[2].model_copy(update={"end": at("2026-11-26T08:31")})


def _rename_capture(captures: list[CaptureFact], manual_time: list[ManualFact]) -> None:
    captures[4] = captures[4].model_copy(update={"capture_id": "e2"})


CHANGES = [
    ("a memo changes", _change_memo),
    ("a capture is deleted", _delete_capture),
    ("a capture is added", _add_capture),
    ("a manual entry grows by a minute", _lengthen_manual),
    ("a capture id changes", _rename_capture),
]


@pytest.mark.parametrize(("name", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_content_hash_changes_when_an_entry_changes(name: str, change: Any) -> None:
    contract, captures, manual_time = hash_inputs()
    before = compute_timesheet(contract, WEEK, captures, manual_time).content_hash()
    change(captures, manual_time)
    after = compute_timesheet(contract, WEEK, captures, manual_time).content_hash()
    assert after != before


@pytest.mark.parametrize(
    ("name", "update"),
    [
        ("the rate", {"rate_cents": 6001}),
        ("the limit", {"weekly_limit_hours": 2}),
        ("the currency", {"currency": "EUR"}),
    ],
)
def test_content_hash_changes_when_the_terms_change(name: str, update: dict[str, Any]) -> None:
    contract, captures, manual_time = hash_inputs()
    before = compute_timesheet(contract, WEEK, captures, manual_time).content_hash()
    after = compute_timesheet(contract.model_copy(update=update), WEEK, captures, manual_time).content_hash()
    assert after != before


def test_content_hash_ignores_what_the_arithmetic_ignores() -> None:
    contract, captures, manual_time = hash_inputs()
    before = compute_timesheet(contract, WEEK, captures, manual_time).content_hash()
    captures.append(shot("2026-12-01T10:00", cid="next-week"))
    captures.append(shot("2026-11-24T10:30", cid="deleted", deleted=True))
    assert compute_timesheet(contract, WEEK, captures, manual_time).content_hash() == before


# --- check_manual_entry -----------------------------------------------------------------------------

DOCUMENTED = [at("2026-11-24T10:00"), at("2026-11-24T10:12")]

ACCEPTED = [
    (
        "an hour in the morning",
        "2026-11-24T08:00",
        "2026-11-24T09:00",
        "2026-11-24T08:00",
        "2026-11-24T09:00",
    ),
    (
        "ending exactly where a documented slot starts",
        "2026-11-24T09:30",
        "2026-11-24T10:00",
        "2026-11-24T09:30",
        "2026-11-24T10:00",
    ),
    (
        "starting exactly where a documented slot ends",
        "2026-11-24T10:24",
        "2026-11-24T11:00",
        "2026-11-24T10:24",
        "2026-11-24T11:00",
    ),
    ("one minute", "2026-11-24T12:00", "2026-11-24T12:01", "2026-11-24T12:00", "2026-11-24T12:01"),
    ("starting Monday 00:00", "2026-11-23T00:00", "2026-11-23T01:00", "2026-11-23T00:00", "2026-11-23T01:00"),
    (
        "ending exactly at Monday 00:00",
        "2026-11-29T23:00",
        "2026-11-30T00:00",
        "2026-11-29T23:00",
        "2026-11-30T00:00",
    ),
    (
        "with an offset, answered in UTC",
        "2026-11-24T13:30+05:30",
        "2026-11-24T14:00+05:30",
        "2026-11-24T08:00",
        "2026-11-24T08:30",
    ),
    (
        "a +05:45 offset is still whole minutes in UTC",
        "2026-11-24T13:45+05:45",
        "2026-11-24T14:00+05:45",
        "2026-11-24T08:00",
        "2026-11-24T08:15",
    ),
]


@pytest.mark.parametrize(
    ("name", "start", "end", "utc_start", "utc_end"), ACCEPTED, ids=[c[0] for c in ACCEPTED]
)
def test_check_manual_entry_accepts(name: str, start: str, end: str, utc_start: str, utc_end: str) -> None:
    got_start, got_end = check_manual_entry(terms(), at(start), at(end), DOCUMENTED)
    assert (got_start, got_end) == (at(utc_start), at(utc_end))
    assert got_start.utcoffset() == timedelta(0) and got_end.utcoffset() == timedelta(0)


REFUSED = [
    (
        "not allowed by the contract",
        False,
        "2026-11-24T08:00",
        "2026-11-24T09:00",
        "does not allow manual time",
    ),
    ("seconds in the start", True, "2026-11-24T08:00:30", "2026-11-24T09:00", "whole minutes"),
    ("seconds in the end", True, "2026-11-24T08:00", "2026-11-24T09:00:01", "whole minutes"),
    ("microseconds in the end", True, "2026-11-24T08:00", "2026-11-24T08:59:59.999999", "whole minutes"),
    ("end before start", True, "2026-11-24T09:00", "2026-11-24T08:00", "must end after it starts"),
    ("end equal to start", True, "2026-11-24T09:00", "2026-11-24T09:00", "must end after it starts"),
    ("crossing Monday 00:00", True, "2026-11-29T23:00", "2026-11-30T01:00", "Monday 00:00 UTC"),
    (
        "crossing Monday 00:00 UTC from a local Sunday",
        True,
        "2026-11-29T15:00-08:00",
        "2026-11-29T17:00-08:00",
        "split it in two",
    ),
    (
        "overlapping a documented slot by one minute",
        True,
        "2026-11-24T09:00",
        "2026-11-24T10:01",
        "2026-11-24 10:00 UTC",
    ),
    (
        "starting inside a documented slot",
        True,
        "2026-11-24T10:23",
        "2026-11-24T11:00",
        "2026-11-24 10:12 UTC",
    ),
    (
        "inside a documented slot",
        True,
        "2026-11-24T10:02",
        "2026-11-24T10:05",
        "overlaps the documented slot",
    ),
    ("covering documented slots", True, "2026-11-24T09:00", "2026-11-24T12:00", "shorten it"),
]


@pytest.mark.parametrize(("name", "allowed", "start", "end", "says"), REFUSED, ids=[c[0] for c in REFUSED])
def test_check_manual_entry_refuses(name: str, allowed: bool, start: str, end: str, says: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_manual_entry(terms(manual_allowed=allowed), at(start), at(end), DOCUMENTED)
    assert says in str(raised.value)
    assert raised.value.status_code == 422


@pytest.mark.parametrize("which", ["start", "end"])
def test_check_manual_entry_refuses_naive_times_naming_which(which: str) -> None:
    start, end = at("2026-11-24T08:00"), at("2026-11-24T09:00")
    if which == "start":
        start = start.replace(tzinfo=None)
    else:
        end = end.replace(tzinfo=None)
    with pytest.raises(NaiveDatetimeError, match=rf"^{which} .* has no UTC offset"):
        check_manual_entry(terms(), start, end, [])
