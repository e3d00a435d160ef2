"""The dashboard's charts as inline SVG, written as text.

matplotlib drew these five charts in about a second whatever the number of denials behind
them (layout, text measuring, the SVG backend), several times the dashboard's queries. A bar
chart is a few dozen rectangles and labels, so they are written here directly: the whole
dashboard draws its charts in a few milliseconds, on every view, with nothing kept between
views. :mod:`serving.svg` still draws the explanation waterfalls with matplotlib.

Each function takes totals as :mod:`serving.worklist_records` sums them and returns one
``<svg>`` element, or an empty string when there is nothing to draw, so the page shows its
table alone. Every text is escaped here (payer names come from remittances) and drawn at least
:data:`serving.svg.PHONE_TEXT_PX` pixels tall once the chart fills a 390 px phone.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from features.labels import plain_label
from serving.svg import PHONE_CHART_PX, PHONE_TEXT_PX

MONTHS_SHOWN = 12
SERIES_SHOWN = 6
OTHER = "other"
OTHER_COLOR = "#b3b6b7"
# matplotlib's first colours, as the charts had before; "other" is grey whatever its size.
SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
BAR_COLOR = "#2471a3"
GRID_COLOR = "#d5d8dc"
TEXT_COLOR = "#1c2833"
CHART_WIDTH = 360  # user units; the page scales the chart to its card
TEXT_SIZE = math.ceil(PHONE_TEXT_PX * CHART_WIDTH / PHONE_CHART_PX)
CHARACTER_WIDTH = 0.6 * TEXT_SIZE  # a wide average sans-serif character, for layout only
LINE = TEXT_SIZE + 6
PANEL_HEIGHT = 130
PANEL_TITLE = LINE + 6  # the measure's name, clear of the top value on the axis below it
MONTH_LABEL_DEPTH = 50  # the rotated YYYY-MM labels under the last panel
MEASURE_NAMES = {"denials": "denials", "denied_dollars": "denied dollars"}
# Series of these dimensions are identifiers with a plain label (features/labels.py); a
# code family is named like a root cause.
LABEL_KINDS = {
    "root_cause": "root_cause",
    "code_family": "root_cause",
    "prevention_owner": "prevention_owner",
    "owner_queue": "owner_queue",
    "action_path": "action_path",
}


def series_label(column: str, name: object) -> str:
    """What a reader sees for a series: its plain label, "unknown" for none."""
    if name is None or name == "":
        return "unknown"
    if name == OTHER:
        return OTHER
    kind = LABEL_KINDS.get(column)
    return plain_label(kind, name) if kind else str(name)


# ---------------------------------------------------------------------------- monthly volume


def every_month(newest: str, count: int = MONTHS_SHOWN) -> list[str]:
    """The ``count`` months ending with ``newest`` (``YYYY-MM``), none left out."""
    year, month = (int(part) for part in newest[:7].split("-"))
    index = year * 12 + month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def largest_series(
    rows: Sequence[Mapping[str, Any]], column: str, shown: int = SERIES_SHOWN
) -> list[Any]:
    """The ``shown`` values of ``column`` with the most denials, largest first (ties by name)."""
    volume: dict[Any, float] = {}
    for row in rows:
        volume[row[column]] = volume.get(row[column], 0) + (row["denials"] or 0)
    ranked = sorted(volume, key=lambda name: (-volume[name], str(name)))
    return ranked[:shown]


def monthly_volume_svg(
    totals: Sequence[Mapping[str, Any]], column: str, element_id: str, title: str
) -> str:
    """Stacked monthly denial counts by ``column`` over the :data:`MONTHS_SHOWN` months ending
    with the newest, every month on the axis (a month without denials drawn empty), the
    largest categories drawn and the rest merged as other; below, the same in denied dollars
    when the totals carry them; the legend under both, largest first and other last."""
    months_found = [row["month"] for row in totals if row.get("month")]
    if not months_found:
        return ""
    months = every_month(max(months_found))
    shown = [row for row in totals if row.get("month") in months]
    kept = largest_series(shown, column)
    series = _stacked_series(shown, column, kept)
    measures = ["denials"] + (
        ["denied_dollars"] if any("denied_dollars" in r for r in totals) else []
    )
    values = {m: _monthly_values(shown, column, kept, series, months, m) for m in measures}
    parts: list[str] = []
    top = 0.0
    for position, measure in enumerate(measures):
        last = position == len(measures) - 1
        parts += _stacked_panel(values[measure], series, months, measure, column, top, last)
        top += PANEL_TITLE + PANEL_HEIGHT + (MONTH_LABEL_DEPTH if last else LINE)
    legend = [(series_label(column, name), _series_color(name, i)) for i, name in enumerate(series)]
    parts += _legend(legend, top + 6)
    return _svg(element_id, title, top + 6 + LINE * len(legend), parts)


def _stacked_series(rows: Sequence[Mapping[str, Any]], column: str, kept: list[Any]) -> list[Any]:
    """The series drawn, bottom to top: the kept ones, then other when something was merged."""
    merged = any(row[column] not in kept for row in rows)
    return [*kept, *([OTHER] if merged else [])]


def _monthly_values(
    rows: Sequence[Mapping[str, Any]],
    column: str,
    kept: list[Any],
    series: list[Any],
    months: list[str],
    measure: str,
) -> dict[Any, list[float]]:
    """Per series drawn, ``measure`` summed per month (0 where a month has none)."""
    values = {name: [0.0] * len(months) for name in series}
    position = {month: i for i, month in enumerate(months)}
    for row in rows:
        name = row[column] if row[column] in kept else OTHER
        values[name][position[row["month"]]] += float(row.get(measure) or 0)
    return values


def _series_color(name: object, position: int) -> str:
    return OTHER_COLOR if name == OTHER else SERIES_COLORS[position % len(SERIES_COLORS)]


def _stacked_panel(
    values: dict[Any, list[float]],
    series: list[Any],
    months: list[str],
    measure: str,
    column: str,
    top: float,
    month_labels: bool,
) -> list[str]:
    """One panel: its measure's name, a value axis and a stacked bar per month."""
    stacks = [sum(values[name][i] for name in series) for i in range(len(months))]
    ticks = nice_ticks(max(stacks, default=0.0))
    written = _axis_dollars if measure == "denied_dollars" else _count
    left = max(CHARACTER_WIDTH * len(written(tick)) for tick in ticks) + 8
    plot_top, plot_width = top + PANEL_TITLE, CHART_WIDTH - left - 4
    scale = PANEL_HEIGHT / ticks[-1]
    parts = [_text(0, top + TEXT_SIZE, MEASURE_NAMES.get(measure, measure))]
    parts += _value_axis(ticks, written, left, plot_top, plot_width, scale)
    slot = plot_width / len(months)
    base = plot_top + PANEL_HEIGHT
    for i, month in enumerate(months):
        x, height_so_far = left + i * slot + slot * 0.15, 0.0
        for position, name in enumerate(series):
            value = values[name][i]
            if value <= 0:
                continue
            height = value * scale
            tip = f"{month} · {series_label(column, name)}: {written(value)}"
            color = _series_color(name, position)
            parts.append(_rect(x, base - height_so_far - height, slot * 0.7, height, color, tip))
            height_so_far += height
        if month_labels:
            parts.append(_month_label(left + (i + 0.5) * slot, base + 6, month))
    return parts


def _value_axis(
    ticks: list[float], written: Any, left: float, top: float, width: float, scale: float
) -> Iterator[str]:
    """Grid lines at each tick with its value written left of the plot."""
    for tick in ticks:
        y = top + PANEL_HEIGHT - tick * scale
        yield (
            f'<line x1="{left:.1f}" x2="{left + width:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOR}" stroke-width="1"/>'
        )
        yield _text(left - 4, y + TEXT_SIZE * 0.35, written(tick), anchor="end")


def _month_label(x: float, y: float, month: str) -> str:
    """A month under its bar, turned 45 degrees so twelve fit a phone's width."""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="end" '
        f'transform="rotate(-45 {x:.1f} {y:.1f})">{html.escape(month)}</text>'
    )


def _legend(entries: list[tuple[str, str]], top: float) -> list[str]:
    """One line per series, a colour swatch then its label: one column, so long plain labels
    ("Medical necessity or documentation") fit a phone."""
    parts = []
    for row, (label, color) in enumerate(entries):
        y = top + row * LINE
        parts.append(_rect(0, y + 1, TEXT_SIZE, TEXT_SIZE, color))
        parts.append(_text(TEXT_SIZE + 6, y + TEXT_SIZE, label))
    return parts


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """Round values from 0 to at least ``maximum`` in about ``count`` steps of 1, 2, 2.5 or 5
    times a power of ten (0 and 1 for an empty chart)."""
    if maximum <= 0:
        return [0.0, 1.0]
    rough = maximum / count
    power = 10 ** math.floor(math.log10(rough))
    step = next(power * m for m in (1, 2, 2.5, 5, 10) if power * m >= rough)
    steps = math.ceil(maximum / step - 1e-9)
    return [step * i for i in range(steps + 1)]


# ---------------------------------------------------------------------------- bars


def bars_svg(
    labels: Sequence[str], values: Sequence[float], element_id: str, title: str, unit: str
) -> str:
    """Horizontal bars, one per label, in the order given, each label written above its bar
    and each value at its end."""
    if not labels:
        return ""
    written = _dollars if unit == "dollars" else _count
    longest_value = max(CHARACTER_WIDTH * len(written(value)) for value in values)
    width = CHART_WIDTH - longest_value - 6
    scale = width / max(max(values), 1e-9)
    row_height = LINE + TEXT_SIZE + 8
    parts = []
    for row, (label, value) in enumerate(zip(labels, values, strict=True)):
        top = row * row_height
        length = max(value, 0.0) * scale
        parts.append(_text(0, top + TEXT_SIZE, label))
        parts.append(
            _rect(0, top + LINE, length, TEXT_SIZE, BAR_COLOR, f"{label}: {written(value)}")
        )
        parts.append(_text(length + 4, top + LINE + TEXT_SIZE - 1, written(value)))
    return _svg(element_id, title, row_height * len(labels), parts)


# ---------------------------------------------------------------------------- SVG text


def _svg(element_id: str, title: str, height: float, parts: Sequence[str]) -> str:
    """The chart's ``<svg>`` element: its id, accessible name and text style its own."""
    name, label = html.escape(element_id), html.escape(title)
    style = f"#{name} text{{font:{TEXT_SIZE}px sans-serif;fill:{TEXT_COLOR}}}"
    return (
        f'<svg id="{name}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{CHART_WIDTH}" height="{height:.0f}" viewBox="0 0 {CHART_WIDTH} {height:.1f}">'
        f"<title>{label}</title><style>{style}</style>{''.join(parts)}</svg>"
    )


def _text(x: float, y: float, content: str, anchor: str = "start") -> str:
    anchored = f' text-anchor="{anchor}"' if anchor != "start" else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{anchored}>{html.escape(content)}</text>'


def _rect(x: float, y: float, width: float, height: float, color: str, tip: str = "") -> str:
    """A filled rectangle; ``tip`` is shown on hover (an SVG title)."""
    shape = f'x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{color}"'
    if not tip:
        return f"<rect {shape}/>"
    return f"<rect {shape}><title>{html.escape(tip)}</title></rect>"


def _dollars(value: float) -> str:
    return f"${value:,.0f}"


def _axis_dollars(value: float) -> str:
    """Dollars short enough for a value axis on a phone: $950, $9,500, $12.5k, $2.5M."""
    if abs(value) >= 1_000_000:
        return f"${_short(value / 1_000_000)}M"
    if abs(value) >= 10_000:
        return f"${_short(value / 1_000)}k"
    return _dollars(value)


def _short(number: float) -> str:
    """At most one decimal, none when it is zero: 12.5 -> "12.5", 250.0 -> "250"."""
    return f"{number:,.1f}".removesuffix(".0")


def _count(value: float) -> str:
    return f"{value:,.0f}"


def reliability_svg(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], element_id: str, title: str
) -> str:
    """Observed recovery rate against mean predicted probability, one line per curve (bins
    with no denials left out), over the diagonal a calibrated model would follow."""
    drawn = {
        name: [b for b in bins if b.get("count") and b.get("mean_predicted") is not None]
        for name, bins in curves.items()
    }
    drawn = {name: bins for name, bins in drawn.items() if bins}
    if not drawn:
        return ""
    left, side = 4 * CHARACTER_WIDTH + 4, CHART_WIDTH - 4 * CHARACTER_WIDTH - 8
    top = TEXT_SIZE

    def point(predicted: float, observed: float) -> tuple[float, float]:
        return left + predicted * side, top + (1 - observed) * side

    parts = [_text(left, TEXT_SIZE - 2, "share recovered")]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y = point(tick, tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + side}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOR}"/>'
        )
        parts.append(_text(left - 4, y + TEXT_SIZE / 3, f"{tick:.0%}", "end"))
        parts.append(_text(x, top + side + LINE, f"{tick:.0%}", "middle"))
    (x0, y0), (x1, y1) = point(0, 0), point(1, 1)
    parts.append(
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="{OTHER_COLOR}" '
        'stroke-dasharray="4 3"/>'
    )
    legend = [("calibrated", OTHER_COLOR)]
    for position, (name, bins) in enumerate(drawn.items()):
        color = SERIES_COLORS[position % len(SERIES_COLORS)]
        points = [point(b["mean_predicted"], b["observed_rate"]) for b in bins]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points]
        legend.append((str(name), color))
    axis_bottom = top + side + LINE
    parts.append(
        _text(left + side / 2, axis_bottom + LINE, "predicted recovery probability", "middle")
    )
    parts += _legend(legend, axis_bottom + 2 * LINE)
    return _svg(element_id, title, axis_bottom + (len(legend) + 2) * LINE, parts)
