"""The dashboard's charts as inline SVG: matplotlib figures on their own SVG canvases.

Each function takes the totals :mod:`serving.repository` computes and returns one ``<svg>``
element (see :func:`serving.svg.figure_svg`), or an empty string when there is nothing to
draw, so the page shows its table alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator

from serving.svg import figure_svg, phone_text_size, svg_figure

MONTHS_SHOWN = 12
SERIES_SHOWN = 6
OTHER = "other"
OTHER_COLOR = "#b3b6b7"
CHART_WIDTH = 5.0  # inches: legible scaled down to a phone, not too big on a desktop
CHART_TEXT = phone_text_size(CHART_WIDTH)  # 11 px or more on a phone 390 px wide


def readable(name: object) -> str:
    """A category as words (``timely_filing`` -> ``timely filing``), safe from mathtext."""
    return str(name).replace("_", " ").replace("$", r"\$")


def top_series(totals: pd.DataFrame, column: str, shown: int = SERIES_SHOWN) -> pd.Series:
    """``column`` with all but its ``shown`` largest categories (by denials) merged as other."""
    volume = totals.groupby(column, dropna=False)["denials"].sum().sort_values(ascending=False)
    kept = set(volume.index[:shown])
    return totals[column].where(totals[column].isin(kept), OTHER).fillna("unknown")


def monthly_volume_svg(
    totals: Sequence[Mapping[str, Any]], column: str, element_id: str, title: str
) -> str:
    """Stacked monthly denial counts by ``column`` over the :data:`MONTHS_SHOWN` months ending
    with the newest, every month on the axis (a month without denials drawn empty), the
    largest categories drawn and the rest merged as other; below, the same in denied dollars
    when the totals carry them."""
    frame = pd.DataFrame(list(totals))
    if frame.empty or frame["month"].dropna().empty:
        return ""
    months = every_month(frame["month"].dropna().max())
    frame = frame[frame["month"].isin(months)]
    frame = frame.assign(series=top_series(frame, column))
    measures = ["denials", *(["denied_dollars"] if "denied_dollars" in frame else [])]
    figure = svg_figure((CHART_WIDTH, 2.6 * len(measures) + 1.0))
    panels = figure.subplots(len(measures), 1, sharex=True, squeeze=False)[:, 0]
    for axes, measure in zip(panels, measures, strict=True):
        table = frame.pivot_table(
            index="month", columns="series", values=measure, aggfunc="sum", fill_value=0
        ).reindex(months, fill_value=0)
        _stacked(axes, table, label=measure == "denials")
        axes.set_ylabel(measure.replace("_", " "), fontsize=CHART_TEXT)
        if measure == "denied_dollars":
            axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _dollars(value)))
        axes.tick_params(labelsize=CHART_TEXT)
        axes.spines[["top", "right"]].set_visible(False)
    panels[-1].tick_params(axis="x", rotation=45)
    figure.legend(loc="outside lower center", ncols=2, fontsize=CHART_TEXT, frameon=False)
    return figure_svg(figure, element_id, title)


def every_month(newest: str, count: int = MONTHS_SHOWN) -> list[str]:
    """The ``count`` months ending with ``newest`` (``YYYY-MM``), none left out."""
    return [str(month) for month in pd.period_range(end=newest, periods=count, freq="M")]


def _stacked(axes: Any, table: pd.DataFrame, *, label: bool) -> None:
    bottom = np.zeros(len(table))
    for position, series in enumerate(_largest_first(table)):
        color = OTHER_COLOR if series == OTHER else f"C{position}"
        name = readable(series) if label else None
        axes.bar(table.index, table[series], bottom=bottom, label=name, color=color)
        bottom += table[series].to_numpy()


def _largest_first(table: pd.DataFrame) -> list[str]:
    """Series by volume, largest first, with other last whatever its size."""
    ranked = table.sum().sort_values(ascending=False).index
    return [name for name in ranked if name != OTHER] + [name for name in ranked if name == OTHER]


def bars_svg(
    labels: Sequence[str], values: Sequence[float], element_id: str, title: str, unit: str
) -> str:
    """Horizontal bars, one per label, in the order given, each with its value written."""
    if not labels:
        return ""
    dollars = unit == "dollars"
    written = _dollars if dollars else _count
    figure = svg_figure((CHART_WIDTH, 0.32 * len(labels) + 0.9))
    axes = figure.add_subplot()
    rows = range(len(labels))
    axes.barh(rows, values, color="#2471a3", height=0.6)
    for row, value in zip(rows, values, strict=True):
        axes.text(value, row, " " + written(value), va="center", fontsize=CHART_TEXT)
    axes.set_yticks(rows, [readable(label) for label in labels])
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: written(value)))
    axes.xaxis.set_major_locator(MaxNLocator(4))
    axes.set_xlabel(unit, fontsize=CHART_TEXT)
    axes.tick_params(labelsize=CHART_TEXT)
    axes.margins(x=0.2)
    axes.spines[["top", "right"]].set_visible(False)
    return figure_svg(figure, element_id, title)


def _dollars(value: float) -> str:
    return r"\$" + f"{value:,.0f}"  # escaped: a bare $ would start mathtext


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
    figure = svg_figure((CHART_WIDTH, CHART_WIDTH * 0.8))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color=OTHER_COLOR, linestyle="--", label="calibrated")
    for position, (name, bins) in enumerate(drawn.items()):
        predicted = [b["mean_predicted"] for b in bins]
        observed = [b["observed_rate"] for b in bins]
        axes.plot(predicted, observed, marker="o", color=f"C{position}", label=readable(name))
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("predicted recovery probability", fontsize=CHART_TEXT)
    axes.set_ylabel("share recovered", fontsize=CHART_TEXT)
    axes.tick_params(labelsize=CHART_TEXT)
    axes.spines[["top", "right"]].set_visible(False)
    figure.legend(loc="outside lower center", ncols=2, fontsize=CHART_TEXT, frameon=False)
    return figure_svg(figure, element_id, title)
