"""Evaluation figures: each writes a readable PNG of the promised size and leaves nothing open."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from features.contract import ROOT_CAUSES
from training.metrics import multiclass_summary, recovery_at_capacity_curve, reliability_table
from training.plots import (
    DPI,
    LINE_FIGURE_SIZE,
    confusion_figure_size,
    plot_confusion_matrix,
    plot_recovery_at_capacity,
    plot_reliability,
)

RNG_SEED = 21


def _pixels(size: tuple[float, float]) -> tuple[int, int]:
    return round(size[0] * DPI), round(size[1] * DPI)


def _assert_drawn_png(path: Path, size: tuple[float, float]) -> None:
    """A non-empty PNG of ``size`` inches at DPI that is not one flat colour."""
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == _pixels(size)
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 0


@pytest.fixture(scope="module")
def outcomes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    probability = rng.uniform(size=2_000)
    recovered = (rng.uniform(size=2_000) < probability).astype(int)
    dollars = recovered * rng.gamma(2, 300, 2_000)
    return recovered, probability, dollars


def test_confusion_matrix_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED)
    truth = rng.choice(ROOT_CAUSES, 500)
    predicted = np.where(rng.uniform(size=500) < 0.7, truth, rng.choice(ROOT_CAUSES, 500))
    summary = multiclass_summary(truth, predicted, ROOT_CAUSES)
    path = plot_confusion_matrix(
        summary["confusion_matrix"], summary["labels"], tmp_path / "figures" / "confusion.png"
    )
    assert path == tmp_path / "figures" / "confusion.png"  # parent folder created
    _assert_drawn_png(path, confusion_figure_size(len(ROOT_CAUSES)))
    assert plt.imread(path).shape[:2] == _pixels(confusion_figure_size(10))[::-1]


def test_confusion_matrix_needs_one_row_and_column_per_label(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one row and column per label"):
        plot_confusion_matrix([[1, 2], [3, 4]], ["coding"], tmp_path / "bad.png")


def test_reliability_png(tmp_path: Path, outcomes) -> None:
    recovered, probability, _ = outcomes
    tables = {
        "calibrated": reliability_table(recovered, probability),
        "overconfident": reliability_table(recovered, probability**0.5),
    }
    path = plot_reliability(tables, tmp_path / "reliability.png")
    _assert_drawn_png(path, LINE_FIGURE_SIZE)


def test_recovery_at_capacity_png(tmp_path: Path, outcomes) -> None:
    _, probability, dollars = outcomes
    curves = {
        "oracle": recovery_at_capacity_curve(dollars, dollars),
        "recovery_model": recovery_at_capacity_curve(probability, dollars),
        "oldest_first": recovery_at_capacity_curve(np.arange(dollars.size), dollars),
    }
    path = plot_recovery_at_capacity(curves, tmp_path / "capacity.png")
    _assert_drawn_png(path, LINE_FIGURE_SIZE)


def test_plots_leave_no_figure_open_and_keep_the_backend(tmp_path: Path, outcomes) -> None:
    recovered, probability, _ = outcomes
    backend = plt.get_backend()
    before = plt.get_fignums()
    plot_reliability({"model": reliability_table(recovered, probability)}, tmp_path / "r.png")
    plot_confusion_matrix([[3, 1], [0, 4]], ["coding", "duplicate"], tmp_path / "c.png")
    assert plt.get_fignums() == before
    assert plt.get_backend() == backend
