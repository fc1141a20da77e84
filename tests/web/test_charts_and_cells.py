"""The pure parts of the money pages and exports: chart geometry and spreadsheet-safe cells."""

from __future__ import annotations

import csv
import io

import pytest

from api.services.exports import _csv, safe_cell
from api.web.charts import PAID_SERIES, WORK_SERIES, hours, stacked
from api.web.render import TEMPLATES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+49 30 1234", "'+49 30 1234"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Fixed the = sign", "Fixed the = sign"),
        ("", ""),
        ("日本語のメモ 🚀", "日本語のメモ 🚀"),
    ],
)
def test_a_cell_a_spreadsheet_would_evaluate_gets_an_apostrophe(text: str, expected: str) -> None:
    assert safe_cell(text) == expected


def test_csv_reads_back_with_quotes_commas_and_newlines() -> None:
    rows = [["a,b", 'say "hi"', "two\nlines", 1200]]
    text = _csv(["x", "y", "z", "cents"], rows)
    assert list(csv.reader(io.StringIO(text))) == [
        ["x", "y", "z", "cents"],
        ["a,b", 'say "hi"', "two\nlines", "1200"],
    ]


def test_stacked_columns_scale_to_the_tallest_and_stack_in_series_order() -> None:
    chart = stacked(
        "c", "Hours", "desc", WORK_SERIES, ["Mon", "Tue", "Wed"], [[60, 30, 0], [0, 0, 0], [120, 0, 60]],
        hours, "hours", scale_step=60,
    )  # fmt: skip
    mon, tue, wed = chart.columns
    assert [c.total_text for c in chart.columns] == ["1.5 h", "0 h", "3 h"]
    assert all(s.height == 0 for s in tue.segments)
    # stacked upwards from the baseline, in series order
    assert wed.segments[0].y + wed.segments[0].height == pytest.approx(chart.baseline)
    assert wed.segments[2].y + wed.segments[2].height == pytest.approx(wed.segments[0].y)
    tallest = sum(s.height for s in wed.segments)
    assert tallest <= chart.plot_height and sum(s.height for s in mon.segments) == pytest.approx(tallest / 2)
    assert not chart.wide and chart.width >= 360


def test_the_svg_has_a_title_a_description_patterns_and_a_table() -> None:
    chart = stacked("spend", "Spend <per> week", "d & e", PAID_SERIES, [f"W{i}" for i in range(12)],
                    [[100 * i, 50] for i in range(12)], str, "USD")  # fmt: skip
    assert chart.wide
    html = TEMPLATES.from_string('{% from "charts.html" import chart %}{{ chart(c) }}').render(c=chart)
    assert '<title id="spend-title">Spend &lt;per&gt; week</title>' in html
    assert '<desc id="spend-desc">d &amp; e</desc>' in html
    assert 'fill="url(#spend-hatch)"' in html and "<pattern" in html
    assert html.count("<tr>") == 13  # a header and one row per column
    assert "style=" not in html and "<script" not in html  # the pages' CSP allows neither


def test_pdf_text_keeps_latin_1_and_writes_the_euro_sign_out() -> None:
    from api.services.exports import _latin

    assert _latin("Zoë Müller") == "Zoë Müller"
    assert _latin("Łukasz Dvořák") == "Lukasz Dvorák"  # á is Latin-1; ř loses its mark
    assert _latin("€25.50") == "EUR 25.50"
    assert _latin("李 🚀") == "? ?"


def test_hours_per_day_follow_the_viewers_days() -> None:
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from api.services.statements import WorkSplit, split_by_day
    from domain.timesheet import Timesheet, TimesheetEntry

    monday = datetime(2026, 11, 16, tzinfo=UTC)

    def entry(day: int, hour: int, kind: str, minutes: int, guaranteed: int) -> TimesheetEntry:
        start = monday.replace(day=16 + day, hour=hour)
        return TimesheetEntry(entry_id=f"{kind}-{day}-{hour}", kind=kind, start=start, minutes=minutes,  # type: ignore[arg-type]
                              billable_minutes=minutes, guaranteed_minutes=guaranteed)  # fmt: skip

    sheet = Timesheet(
        week_start=monday, currency="USD", rate_cents=6000, weekly_limit_hours=40, documented_minutes=24,
        tracked_minutes=12, manual_minutes=30, billable_minutes=66, guaranteed_minutes=12, amount_cents=6600,
        guaranteed_cents=1200,
        entries=[entry(0, 2, "slot", 12, 12), entry(0, 9, "slot", 12, 0), entry(0, 9, "tracked", 12, 0),
                 entry(6, 23, "manual", 30, 0)],
    )  # fmt: skip
    utc = split_by_day(sheet)
    assert [d for d, _ in utc] == [date(2026, 11, 16 + i) for i in range(7)]
    assert utc[0][1] == WorkSplit(guaranteed=12, other=24, manual=0) and utc[6][1] == WorkSplit(manual=30)
    new_york = split_by_day(sheet, ZoneInfo("America/New_York"))  # the UTC week: Sun 19:00 to Sun 19:00
    assert [d for d, _ in new_york] == [date(2026, 11, 15 + i) for i in range(8)]
    assert new_york[0][1].guaranteed == 12  # 02:00 UTC Monday is Sunday evening in New York
    assert new_york[1][1].other == 24 and new_york[7][1].manual == 30
