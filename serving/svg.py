"""Inline SVG charts for the service's pages (and notebooks): matplotlib figures drawn on
their own SVG canvas, as an ``<svg>`` element to put inside HTML.

Here rather than beside the evaluation PNGs (:mod:`training.plots`): these draw what the service
answers (an explanation, the dashboard's totals), so pages import them within ``serving`` and a
notebook imports them like any other consumer, with no layer reaching up or sideways. Figures
are ``matplotlib.figure.Figure`` objects on their own canvas, never registered with ``pyplot``,
so nothing is left open and the process-wide backend is untouched.
"""

from __future__ import annotations

import html
import io
import math
import re
import threading
from collections.abc import Mapping
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

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
