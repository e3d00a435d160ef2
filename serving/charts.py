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

from serving.svg import figure_svg, svg_figure

MONTHS_SHOWN = 12
SERIES_SHOWN = 6
OTHER = "other"
OTHER_COLOR = "#b3b6b7"
CHART_WIDTH = 5.0  # inches: legible scaled down to a phone, not too big on a desktop


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
    """Stacked monthly denial counts by ``column`` over the newest :data:`MONTHS_SHOWN`
    months, the largest categories drawn and the rest merged as other."""
    frame = pd.DataFrame(list(totals))
    if frame.empty:
        return ""
    months = sorted(frame["month"].dropna().unique())[-MONTHS_SHOWN:]
    frame = frame[frame["month"].isin(months)]
    frame = frame.assign(series=top_series(frame, column))
    table = frame.pivot_table(
        index="month", columns="series", values="denials", aggfunc="sum", fill_value=0
    )
    figure = svg_figure((CHART_WIDTH, 3.6))
    axes = figure.add_subplot()
    bottom = np.zeros(len(table))
    for position, series in enumerate(_largest_first(table)):
        color = OTHER_COLOR if series == OTHER else f"C{position}"
        axes.bar(table.index, table[series], bottom=bottom, label=readable(series), color=color)
        bottom += table[series].to_numpy()
    axes.set_ylabel("denials", fontsize=8)
    axes.tick_params(labelsize=8)
    axes.tick_params(axis="x", rotation=45)
    axes.spines[["top", "right"]].set_visible(False)
    figure.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return figure_svg(figure, element_id, title)


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
        axes.text(value, row, " " + written(value), va="center", fontsize=8)
    axes.set_yticks(rows, [readable(label) for label in labels])
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: written(value)))
    axes.xaxis.set_major_locator(MaxNLocator(4))
    axes.set_xlabel(unit, fontsize=8)
    axes.tick_params(labelsize=8)
    axes.margins(x=0.2)
    axes.spines[["top", "right"]].set_visible(False)
    return figure_svg(figure, element_id, title)


def _dollars(value: float) -> str:
    return r"\$" + f"{value:,.0f}"  # escaped: a bare $ would start mathtext


def _count(value: float) -> str:
    return f"{value:,.0f}"
