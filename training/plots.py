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
WATERFALL_LABEL_CHARACTERS = 60
WATERFALL_WIDTH = 5.0  # inches: legible scaled down to a phone, not too big on a desktop
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
