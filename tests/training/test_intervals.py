"""Bootstrap intervals: they cover what they estimate, and a paired difference tells a better
scorer from noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from training import intervals, metrics


def _scores(rows: int, separation: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes and scores whose true ROC AUC is Phi(separation / sqrt(2)): positives' scores
    are normal around ``separation``, negatives' around 0, both with unit spread."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, rows)
    return truth, rng.normal(separation * truth, 1.0)


def test_the_interval_covers_the_true_auc_it_estimates() -> None:
    truth, score = _scores(4_000, 1.0, seed=3)
    true_auc = norm.cdf(1.0 / np.sqrt(2))  # 0.760
    interval = intervals.bootstrap_interval(intervals.roc_auc, [truth, score], seed=1)
    assert interval.low < true_auc < interval.high
    assert interval.low < interval.estimate < interval.high
    assert 0.01 < interval.high - interval.low < 0.05  # about 4 standard errors of 0.007


def test_the_interval_is_reproducible_from_its_seed() -> None:
    truth, score = _scores(2_000, 1.0, seed=3)
    first = intervals.bootstrap_interval(intervals.roc_auc, [truth, score], seed=5)
    assert intervals.bootstrap_interval(intervals.roc_auc, [truth, score], seed=5) == first
    assert intervals.bootstrap_interval(intervals.roc_auc, [truth, score], seed=6) != first


def test_a_paired_difference_excludes_zero_for_a_clearly_better_scorer() -> None:
    rng = np.random.default_rng(8)
    truth = rng.integers(0, 2, 3_000)
    signal = rng.normal(truth, 1.0)
    better, worse = signal, signal + rng.normal(0, 1.5, truth.size)  # same signal, more noise
    difference = intervals.paired_difference(intervals.roc_auc, [truth], [better], [worse], seed=2)
    assert difference.above_zero and difference.excludes_zero
    assert difference.estimate == pytest.approx(
        metrics.binary_summary(truth, norm.cdf(better))["roc_auc"]
        - metrics.binary_summary(truth, norm.cdf(worse))["roc_auc"]
    )


def test_a_paired_difference_includes_zero_for_identical_scorers() -> None:
    truth, score = _scores(3_000, 1.0, seed=4)
    difference = intervals.paired_difference(intervals.roc_auc, [truth], [score], [score])
    assert difference.low <= 0 <= difference.high and not difference.excludes_zero


def test_pairing_sees_a_small_gain_that_unpaired_intervals_cannot() -> None:
    """Two scorers sharing most of their noise: their own intervals overlap, yet every paired
    resample finds the second better."""
    rng = np.random.default_rng(9)
    truth = rng.integers(0, 2, 3_000)
    shared = rng.normal(truth, 1.0)
    small_edge = shared + 0.08 * truth
    alone = [
        intervals.bootstrap_interval(intervals.roc_auc, [truth, s]) for s in (shared, small_edge)
    ]
    assert alone[1].low < alone[0].high  # overlapping: no verdict from the separate intervals
    paired = intervals.paired_difference(intervals.roc_auc, [truth], [small_edge], [shared])
    assert paired.above_zero


def test_the_mean_over_folds_pools_each_folds_resamples() -> None:
    folds = [_scores(1_500, separation, seed) for separation, seed in ((0.8, 1), (1.2, 2))]
    estimates = [float(intervals.roc_auc(t, s)) for t, s in folds]
    resampled = [
        intervals.resampled(intervals.roc_auc, [t, s], seed=i) for i, (t, s) in enumerate(folds)
    ]
    pooled = intervals.mean_interval(estimates, resampled)
    assert pooled.estimate == pytest.approx(np.mean(estimates))
    assert pooled.low < pooled.estimate < pooled.high
    # Averaging two folds' independent resamples narrows the spread below either fold's.
    single = [
        intervals.percentile_interval(e, r) for e, r in zip(estimates, resampled, strict=True)
    ]
    assert pooled.high - pooled.low < min(s.high - s.low for s in single)


def test_too_few_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 rows"):
        intervals.resampled(intervals.brier, [np.array([1]), np.array([0.5])])


# ---------------------------------------------------------------------------- same figures


@pytest.fixture(scope="module")
def rows() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(12)
    size = 5_000
    truth = rng.integers(0, 2, size)
    dollars = np.where(rng.random(size) < 0.5, rng.exponential(300, size).round(), 0.0)
    classes = rng.integers(0, 10, size)
    return {
        "truth": truth,
        # rounded so that ties occur, as they do in calibrated scores
        "probability": np.clip(0.3 * truth + 0.7 * rng.random(size), 0, 1).round(2),
        "dollars": dollars,
        "priority": (dollars + rng.normal(0, 200, size)).round(-2),
        "classes": classes,
        "predicted": np.where(rng.random(size) < 0.6, classes, rng.integers(0, 9, size)),
    }


def test_each_statistic_gives_what_the_evaluation_reports(rows) -> None:
    truth, probability = rows["truth"], rows["probability"]
    summary = metrics.binary_summary(truth, probability)
    assert intervals.roc_auc(truth, probability) == pytest.approx(summary["roc_auc"], abs=1e-12)
    assert intervals.brier(truth, probability) == pytest.approx(summary["brier"], abs=1e-12)
    ece = intervals.expected_calibration_error()(truth, probability)
    assert ece == pytest.approx(summary["ece"], abs=1e-12)
    labels = [str(c) for c in range(10)]
    multiclass = metrics.multiclass_summary(
        rows["classes"].astype(str), rows["predicted"].astype(str), labels
    )
    assert intervals.accuracy(rows["classes"], rows["predicted"]) == pytest.approx(
        multiclass["accuracy"]
    )
    assert intervals.macro_f1(10)(rows["classes"], rows["predicted"]) == pytest.approx(
        multiclass["macro_f1"], abs=1e-12
    )
    report = metrics.ranking_report({"priority": rows["priority"]}, rows["dollars"], (0.2,))
    at_20 = report["rankings"]["priority"]["top_20%"]
    captured = intervals.dollars_captured(0.2)(rows["dollars"], rows["priority"])
    assert captured == pytest.approx(at_20["dollars_captured"])
    share = intervals.share_of_oracle(0.2)(rows["dollars"], rows["priority"])
    assert share == pytest.approx(at_20["share_of_oracle"])


def test_statistics_are_vectorised_over_resamples(rows) -> None:
    """Row by row of a (resamples, rows) batch, the same figure as on each resample alone."""
    rng = np.random.default_rng(1)
    picks = rng.integers(0, rows["truth"].size, (4, rows["truth"].size))
    truth, probability = rows["truth"][picks], rows["probability"][picks]
    batched = intervals.roc_auc(truth, probability)
    one_by_one = [
        metrics.binary_summary(t, p)["roc_auc"] for t, p in zip(truth, probability, strict=True)
    ]
    np.testing.assert_allclose(batched, one_by_one)
    share = intervals.share_of_oracle(0.2)
    batched = share(rows["dollars"][picks], rows["priority"][picks])
    alone = [
        share(d, p) for d, p in zip(rows["dollars"][picks], rows["priority"][picks], strict=True)
    ]
    np.testing.assert_allclose(batched, alone)
