"""Evaluation figures: each writes a readable PNG of the promised size and leaves nothing open."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from features.contract import ROOT_CAUSES
from training.metrics import multiclass_summary, recovery_at_capacity_curve, reliability_table
from training.plots import (
    DPI,
    LINE_FIGURE_SIZE,
    PHONE_CHART_PX,
    PHONE_TEXT_PX,
    confusion_figure_size,
    explanation_waterfall_svg,
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


EXPLANATION = {
    "output": 0.9,
    "output_meaning": "log-odds that working the denial recovers money",
    "base_value": 0.2,
    "base_probability": 0.55,
    "probability": 0.711,
    "reasons": [
        {"label": "prior authorization on file", "value": "no", "probability_points": -14.8},
        {"label": "denied amount", "value": "$1,480.00 <b>&</b> $2", "probability_points": 19.1},
        {"label": "payer", "value": "COM003", "probability_points": 12.1},
    ],
    "rest_probability_points": -0.3,
}


def test_waterfall_svg_is_an_inline_element_naming_every_reason_in_points() -> None:
    svg = explanation_waterfall_svg(EXPLANATION, "wf-recovery", "Recovery: reasons")
    assert svg.startswith('<svg id="wf-recovery" role="img" aria-label="Recovery: reasons" ')
    assert "<?xml" not in svg and "<metadata>" not in svg
    assert "<title>Recovery: reasons</title>" in svg
    for text in ("prior authorization on file: no", "payer: COM003", "all other features"):
        assert text in svg
    for text in ("-14.8 pts", "+19.1 pts", "+12.1 pts", "-0.3 pts"):
        assert text in svg
    # The axis runs in percent of the displayed probability, not in log-odds.
    assert "from 55.0% (dotted) to 71.1%" in svg
    assert "log-odds" not in svg


def test_waterfall_svg_escapes_what_the_records_hold() -> None:
    svg = explanation_waterfall_svg(EXPLANATION, "wf")
    assert "<b>" not in svg
    assert "denied amount: $1,480.00 &lt;b&gt;&amp;&lt;/b&gt; $2" in svg  # dollars, not mathtext


def _smallest_text_on_a_phone(svg: str) -> float:
    """The smallest font of an inline SVG, in pixels, once scaled to the phone's chart width."""
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))
    sizes = [float(size) for size in re.findall(r"font[^;\"]*?([\d.]+)px", svg)]
    assert sizes, "the chart writes its text as text"
    return min(sizes) * PHONE_CHART_PX / width


def test_every_chart_text_is_readable_on_a_phone() -> None:
    from serving.charts import bars_svg, monthly_volume_svg

    charts = [
        explanation_waterfall_svg(EXPLANATION, "wf"),
        bars_svg(["over 120 days", "0-30 days"], [1200.5, 300.0], "b", "Aging", "dollars"),
        monthly_volume_svg(
            [
                {"month": "2026-08", "root_cause": "coding", "denials": 12},
                {"month": "2026-09", "root_cause": "duplicate", "denials": 7},
            ],
            "root_cause",
            "v",
            "Volume",
        ),
    ]
    for svg in charts:
        assert _smallest_text_on_a_phone(svg) >= PHONE_TEXT_PX


def test_charts_on_one_page_never_share_an_id_and_leave_settings_alone() -> None:
    before = (matplotlib.rcParams["svg.fonttype"], plt.get_fignums())
    first = explanation_waterfall_svg(EXPLANATION, "chart-a")
    second = explanation_waterfall_svg(EXPLANATION, "chart-b")
    ids = [set(re.findall(r'id="([^"]+)"', svg)) for svg in (first, second)]
    assert ids[0] and not ids[0] & ids[1]
    assert all(name.startswith("chart-a") for name in ids[0])
    references = re.findall(r'(?:href="#|url\(#)([^")]+)', first)
    assert set(references) <= ids[0]
    assert (matplotlib.rcParams["svg.fonttype"], plt.get_fignums()) == before
