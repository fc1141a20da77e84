"""Pictures where people would rather look than read, drawn on the server as SVG (no chart library, no
script: the pages' CSP is ``script-src 'self'``). A chart is stacked columns: each series has a fill
*pattern* as well as a colour (solid, hatched, dotted), every column carries its total as text, the SVG
has a ``<title>`` and ``<desc>``, and the template puts the same figures in a table next to it.

Pure: figures in, geometry out (``templates/charts.html`` draws it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

COLUMN_UNITS = 56  # SVG units per column: labels such as "16 Nov" at 13 units fit


@dataclass(frozen=True)
class Series:
    key: str  # css class and pattern id suffix: solid | hatch | dots
    name: str


@dataclass
class Segment:
    series: Series
    value: int
    y: float = 0.0
    height: float = 0.0


@dataclass
class Column:
    label: str
    values: list[int]
    total_text: str = ""
    x: float = 0.0
    segments: list[Segment] = field(default_factory=list)


@dataclass
class Chart:
    id: str
    title: str
    desc: str
    series: list[Series]
    columns: list[Column]
    unit: str  # the table's column heading unit, "hours" or the currency
    width: int = 640
    height: int = 200
    top: int = 22  # room for the totals above the columns
    bottom: int = 34  # room for the labels under them
    left: int = 8
    bar_width: float = 0.0
    ticks: list[tuple[float, str]] = field(default_factory=list)
    fmt: Callable[[int], str] = str

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom

    @property
    def baseline(self) -> int:
        return self.height - self.bottom

    @property
    def wide(self) -> bool:
        """Too many columns to read on a phone at its width: the page lets it scroll sideways instead."""
        return len(self.columns) > 8

    @property
    def empty(self) -> bool:
        return not any(sum(c.values) for c in self.columns)


def _nice_max(value: int) -> int:
    """A round top for the scale: 1, 2 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def stacked(
    chart_id: str, title: str, desc: str, series: Sequence[Series], labels: Sequence[str],
    values: Sequence[Sequence[int]], fmt: Callable[[int], str], unit: str, *, scale_step: int = 1,
) -> Chart:  # fmt: skip
    """Columns of stacked ``values`` (one list per label, one value per series), scaled to the tallest."""
    count = max(len(labels), 1)
    chart = Chart(id=chart_id, title=title, desc=desc, series=list(series), columns=[], unit=unit, fmt=fmt,
                  width=max(COLUMN_UNITS * count, 360))  # fmt: skip
    slot = (chart.width - chart.left * 2) / count
    chart.bar_width = max(min(slot * 0.62, 56), 4)
    top = _nice_max(max((sum(v) for v in values), default=0) // scale_step + 1) * scale_step
    for index, (label, row) in enumerate(zip(labels, values, strict=True)):
        column = Column(label=label, values=list(row), total_text=fmt(sum(row)))
        column.x = chart.left + slot * index + (slot - chart.bar_width) / 2
        y = float(chart.baseline)
        for part, value in zip(series, row, strict=True):
            height = chart.plot_height * value / top if top else 0
            y -= height
            column.segments.append(Segment(series=part, value=value, y=round(y, 2), height=round(height, 2)))
        chart.columns.append(column)
    chart.ticks = [(round(chart.baseline - chart.plot_height * f, 2), fmt(int(top * f))) for f in (0.5, 1.0)]
    return chart


def hours(minutes: int) -> str:
    """``7.5 h``: minutes as hours with at most one decimal, for labels."""
    text = f"{minutes / 60:.1f}".removesuffix(".0")
    return f"{text} h"


WORK_SERIES = (
    Series("solid", "guaranteed"),
    Series("hatch", "billable, not guaranteed"),
    Series("dots", "manual"),
)
PAID_SERIES = (Series("solid", "paid by the client"), Series("hatch", "paid by the guarantee fund"))
