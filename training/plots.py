"""Evaluation figures: confusion matrix, reliability diagram, recovery at team capacity.

Each function takes data and a path, writes one PNG and returns the path. Figures are built
as ``matplotlib.figure.Figure`` objects on an Agg canvas rather than through ``pyplot``: that
selects the headless Agg renderer for these figures only, at call time, without switching the
process-wide backend (a notebook keeps its own) and without registering figures in pyplot's
global list, so nothing is left open after saving. Sizes are fixed (no tight bounding box) so
a PNG is always ``size * DPI`` pixels.

The service's pages draw the same way on an SVG canvas and inline the result
(:func:`figure_svg`), e.g. the waterfall of one denial's SHAP explanation.
"""

from __future__ import annotations

import html
import io
import math
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

DPI = 100
LINE_FIGURE_SIZE = (8.0, 5.5)  # inches
CAPACITY_MARKS = (0.1, 0.2, 0.3)
RAISES_COLOR, LOWERS_COLOR, REST_COLOR = "#c0392b", "#2471a3", "#909497"
WATERFALL_LABEL_CHARACTERS = 50  # a label fits one line of the chart's width on a phone
WATERFALL_WIDTH = 4.5  # inches: legible scaled down to a phone, not too big on a desktop
# Charts fill their card: on a phone 390 px wide, the page and card paddings leave 337 px
# (serving/static/site.css). Text drawn smaller than 11 px there is not read.
PHONE_CHART_PX = 337
PHONE_TEXT_PX = 11
# The SVG writer reads its text mode from the process-wide rcParams, so renders that set it
# take turns; pages render in worker threads.
_SVG_LOCK = threading.Lock()


def _new_figure(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)  # attaches the Agg renderer to this figure only
    return figure


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    figure.clear()  # release artists now; the figure is not held by pyplot
    return path


def _readable(label: str) -> str:
    """Root causes and ranking names as words: ``timely_filing`` -> ``timely filing``."""
    return str(label).replace("_", " ")


def confusion_figure_size(label_count: int) -> tuple[float, float]:
    """Inches for a confusion matrix: grows with the classes so cells and names stay legible."""
    side = max(5.0, 2.5 + 0.75 * label_count)
    return (side + 1.5, side)


def plot_confusion_matrix(
    matrix: npt.ArrayLike,
    labels: Sequence[str],
    path: Path,
    subject: str = "root cause",
) -> Path:
    """Counts of true (rows) against predicted (columns) classes, shaded by share of each row.

    Shading by row share (recall) keeps rare root causes visible beside common ones.
    """
    counts = np.asarray(matrix, dtype=np.int64)
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix has shape {counts.shape}; expected one row and column per label")
    row_share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = _new_figure(confusion_figure_size(len(labels)))
    axes = figure.add_subplot()
    image = axes.imshow(row_share, cmap="Blues", vmin=0.0, vmax=1.0)
    _annotate_counts(axes, counts, row_share)
    names = [_readable(label) for label in labels]
    axes.set_xticks(range(len(labels)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), names)
    axes.set_xlabel(f"Predicted {subject}")
    axes.set_ylabel(f"True {subject}")
    axes.set_title(f"{subject.capitalize()}: true vs. predicted (shade = share of true class)")
    figure.colorbar(image, ax=axes, label="Share of true class", format=PercentFormatter(1.0))
    return _save(figure, path)


def _annotate_counts(axes: Axes, counts: np.ndarray, row_share: np.ndarray) -> None:
    for (row, column), count in np.ndenumerate(counts):
        # White text on dark cells so the count stays readable.
        color = "white" if row_share[row, column] > 0.5 else "black"
        axes.text(column, row, f"{count:,}", ha="center", va="center", color=color, fontsize=8)


def plot_reliability(
    tables: Mapping[str, pd.DataFrame], path: Path, outcome: str = "recovery"
) -> Path:
    """Observed rate against mean predicted probability per bin, one line per model.

    ``tables`` come from :func:`training.metrics.reliability_table`; empty bins are skipped.
    Points on the diagonal are perfectly calibrated.
    """
    figure = _new_figure(LINE_FIGURE_SIZE)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for name, table in tables.items():
        filled = table[table["count"] > 0]
        axes.plot(
            filled["mean_predicted"], filled["observed_rate"], marker="o", label=_readable(name)
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.xaxis.set_major_formatter(PercentFormatter(1.0))
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel(f"Predicted {outcome} probability (bin mean)")
    axes.set_ylabel(f"Observed {outcome} rate")
    axes.set_title(f"Calibration of the {outcome} probability")
    axes.legend(loc="upper left")
    return _save(figure, path)


def plot_recovery_at_capacity(curves: Mapping[str, pd.DataFrame], path: Path) -> Path:
    """Share of recovered dollars captured as more of the ranked worklist is worked.

    ``curves`` come from :func:`training.metrics.recovery_at_capacity_curve`, one per ranking
    (the oracle included, if the caller wants the ceiling drawn). Dotted marks at 10, 20 and
    30% show the capacities teams typically have.
    """
    figure = _new_figure(LINE_FIGURE_SIZE)
    axes = figure.add_subplot()
    for share in CAPACITY_MARKS:
        axes.axvline(share, linestyle=":", color="grey", linewidth=1)
    for name, curve in curves.items():
        axes.plot(curve["share_worked"], curve["share_of_total"], label=_readable(name))
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.xaxis.set_major_formatter(PercentFormatter(1.0))
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel("Share of the denial worklist worked, in ranked order")
    axes.set_ylabel("Share of recovered dollars captured")
    axes.set_title("Recovered dollars captured at team capacity")
    axes.legend(loc="lower right")
    return _save(figure, path)


# ---------------------------------------------------------------------------- inline SVG


def svg_figure(size: tuple[float, float]) -> Figure:
    """A figure drawn on its own SVG canvas, for :func:`figure_svg`."""
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasSVG(figure)
    return figure


def figure_svg(figure: Figure, element_id: str, title: str) -> str:
    """The figure as an ``<svg>`` element to put inside an HTML page.

    Text stays text (it scales and can be found on the page), the XML prolog and metadata
    go, and every id is prefixed with ``element_id`` so several charts share one page without
    clashing; ``title`` is the chart's accessible name.
    """
    buffer = io.StringIO()
    with _SVG_LOCK, matplotlib.rc_context({"svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg")
    figure.clear()
    svg = buffer.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg[svg.index("<svg") :], flags=re.S)
    svg = re.sub(r'(id="|href="#|url\(#)', rf"\g<1>{element_id}-", svg)
    svg = svg.replace("*{", f"#{element_id} *{{", 1)  # matplotlib's style, kept to this chart
    label = html.escape(title, quote=True)
    return svg.replace(
        "<svg ", f'<svg id="{element_id}" role="img" aria-label="{label}" ', 1
    ).replace(">", f"><title>{label}</title>", 1)


def explanation_waterfall_svg(
    explanation: Mapping[str, Any], element_id: str = "waterfall", title: str = ""
) -> str:
    """One model's explanation as a waterfall of the displayed probability, as an inline
    ``<svg>``.

    ``explanation`` is the service's: ``base_probability``, ``probability``, ``reasons``
    (``label``, ``value``, ``probability_points``) and ``rest_probability_points``
    (:func:`serving.reasons.probability_points`). Each bar is one reason's push in percentage
    points and starts where the previous one ended, from the base probability (dotted) to the
    displayed probability (solid), so the chart adds up exactly as the numbers do; red raises
    the probability, blue lowers it. Each reason is written above its bar rather than beside
    it, so the bars keep the width on a phone, and every text is at least
    :data:`PHONE_TEXT_PX` pixels tall when the chart fills a phone's width.
    """
    steps = [
        (_truncate(f"{reason['label']}: {reason['value']}"), float(reason["probability_points"]))
        for reason in explanation["reasons"]
    ]
    steps.append(("all other features", float(explanation["rest_probability_points"])))
    figure = svg_figure((WATERFALL_WIDTH, 0.55 * len(steps) + 1.0))
    axes = figure.add_subplot()
    base = 100 * float(explanation["base_probability"])
    headline = 100 * float(explanation["probability"])
    _draw_waterfall(axes, base, steps)
    axes.axvline(headline, color="black", linewidth=1)
    axes.xaxis.set_major_formatter(PercentFormatter(decimals=0))
    axes.set_xlabel(f"from {base:.1f}% (dotted) to {headline:.1f}%", fontsize=WATERFALL_TEXT)
    return figure_svg(figure, element_id, title or "Explanation in percentage points")


def _draw_waterfall(axes: Axes, base: float, steps: list[tuple[str, float]]) -> None:
    start = base
    for row, (label, points) in enumerate(steps):
        color = REST_COLOR if row == len(steps) - 1 else _direction_color(points)
        axes.barh(row, points, left=start, color=color, height=0.36)
        end = start + points
        axes.text(max(start, end), row, f" {points:+.1f} pts", va="center", fontsize=WATERFALL_TEXT)
        # x in axes coordinates: every label starts at the left edge, just above its bar.
        axes.text(
            0,
            row - 0.22,
            label,
            transform=axes.get_yaxis_transform(),
            va="bottom",
            fontsize=WATERFALL_TEXT,
        )
        start = end
    axes.axvline(base, color="grey", linestyle=":", linewidth=1)
    axes.set_yticks([])
    axes.set_ylim(len(steps) - 0.5, -0.9)  # the strongest reason on top, as the page lists
    _room_for_the_points(axes, base, steps)
    axes.spines[["top", "right", "left"]].set_visible(False)
    axes.tick_params(axis="x", labelsize=WATERFALL_TEXT)


def _room_for_the_points(axes: Axes, base: float, steps: list[tuple[str, float]]) -> None:
    """Widen the axis to the right so the points written after the rightmost bar fit."""
    ends = np.cumsum([base] + [points for _, points in steps])
    low, high = float(ends.min()), float(ends.max())
    span = max(high - low, 1.0)
    axes.set_xlim(low - 0.05 * span, high + 0.4 * span)


def phone_text_size(width_inches: float) -> float:
    """The smallest font size (points, the SVG's units) that is :data:`PHONE_TEXT_PX` pixels
    tall once a chart ``width_inches`` wide is scaled to :data:`PHONE_CHART_PX`."""
    units_wide = 72 * width_inches  # an inch is 72 SVG user units (points)
    return math.ceil(2 * PHONE_TEXT_PX * units_wide / PHONE_CHART_PX) / 2


WATERFALL_TEXT = phone_text_size(WATERFALL_WIDTH)


def _direction_color(contribution: float) -> str:
    return RAISES_COLOR if contribution > 0 else LOWERS_COLOR


def _truncate(label: str) -> str:
    limit = WATERFALL_LABEL_CHARACTERS
    label = label if len(label) <= limit else label[: limit - 1] + "…"
    return label.replace("$", r"\$")  # dollar amounts, not mathtext
