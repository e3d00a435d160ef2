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
import re
import threading
from collections.abc import Mapping
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

RAISES_COLOR, LOWERS_COLOR, REST_COLOR = "#c0392b", "#2471a3", "#909497"
WATERFALL_LABEL_CHARACTERS = 60
WATERFALL_WIDTH = 5.0  # inches: legible scaled down to a phone, not too big on a desktop
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
    """One model's SHAP explanation as a waterfall, as an inline ``<svg>``.

    ``explanation`` is the service's: ``base_value``, ``reasons`` (``label``, ``value``,
    ``contribution``), ``rest`` and ``output``, all in log-odds. Each bar starts where the
    previous one ended, from the base value (dotted) to the score (solid), so the chart adds up
    exactly as the numbers do; red raises the score, blue lowers it. Each reason is written
    above its bar rather than beside it, so the bars keep the width on a phone.
    """
    steps = [
        (_truncate(f"{reason['label']}: {reason['value']}"), float(reason["contribution"]))
        for reason in explanation["reasons"]
    ]
    steps.append(("all other features", float(explanation["rest"])))
    figure = svg_figure((WATERFALL_WIDTH, 0.45 * len(steps) + 0.8))
    axes = figure.add_subplot()
    base_value, output = float(explanation["base_value"]), float(explanation["output"])
    _draw_waterfall(axes, base_value, steps)
    axes.axvline(output, color="black", linewidth=1)
    meaning = explanation.get("output_meaning", "score")
    axes.set_xlabel(f"{meaning}\nbase {base_value:+.2f} (dotted) to score {output:+.2f}")
    axes.xaxis.label.set_fontsize(8)
    return figure_svg(figure, element_id, title or "SHAP waterfall")


def _draw_waterfall(axes: Axes, base_value: float, steps: list[tuple[str, float]]) -> None:
    start = base_value
    for row, (label, contribution) in enumerate(steps):
        color = REST_COLOR if row == len(steps) - 1 else _direction_color(contribution)
        axes.barh(row, contribution, left=start, color=color, height=0.36)
        end = start + contribution
        axes.text(max(start, end), row, f" {contribution:+.2f}", va="center", fontsize=9)
        # x in axes coordinates: every label starts at the left edge, just above its bar.
        axes.text(
            0, row - 0.22, label, transform=axes.get_yaxis_transform(), va="bottom", fontsize=10
        )
        start = end
    axes.axvline(base_value, color="grey", linestyle=":", linewidth=1)
    axes.set_yticks([])
    axes.set_ylim(len(steps) - 0.5, -0.85)  # the strongest reason on top, as the page lists
    axes.margins(x=0.12)
    axes.spines[["top", "right", "left"]].set_visible(False)
    axes.tick_params(axis="x", labelsize=8)


def _direction_color(contribution: float) -> str:
    return RAISES_COLOR if contribution > 0 else LOWERS_COLOR


def _truncate(label: str) -> str:
    limit = WATERFALL_LABEL_CHARACTERS
    label = label if len(label) <= limit else label[: limit - 1] + "…"
    return label.replace("$", r"\$")  # dollar amounts, not mathtext
