"""Evaluation figures: confusion matrix, reliability diagram, recovery at team capacity.

Each function takes data and a path, writes one PNG and returns the path. Figures are built
as ``matplotlib.figure.Figure`` objects on an Agg canvas rather than through ``pyplot``: that
selects the headless Agg renderer for these figures only, at call time, without switching the
process-wide backend (a notebook keeps its own) and without registering figures in pyplot's
global list, so nothing is left open after saving. Sizes are fixed (no tight bounding box) so
a PNG is always ``size * DPI`` pixels.

The service's pages draw the same way on an SVG canvas (:mod:`serving.svg`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

DPI = 100
LINE_FIGURE_SIZE = (8.0, 5.5)  # inches
CAPACITY_MARKS = (0.1, 0.2, 0.3)


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
