"""Rolling backtest: refit on expanding time windows and score each next window.

One test split says how a model did on four months; a backtest says how the method does month
after month. The matured part of the history (denials older than ``maturity_days`` before its
newest denial, so their outcomes are known) ends in ``folds`` test windows of ``fold_months``
months each. Fold i fits the triage model, with the project's own fit code and specs, on every
matured denial before its test window, and measures it on that window beside the baselines.
Every headline figure is reported per fold and as a mean over folds with a 95% bootstrap
interval that resamples the test rows within each fold. Time comes from the denial dates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from training import intervals
from training.evaluate import HEADLINE_METRICS, Evaluation, evaluate_model, headline_arrays
from training.fit import DEFAULT_MATURITY_DAYS, fit_triage_model
from training.specs import ModelSpec
from training.windows import DEFAULT_MIN_EVALUATION_ROWS

DEFAULT_FOLDS = 3
DEFAULT_FOLD_MONTHS = 2
BACKTEST_EXPERIMENT = "denial-triage-backtest"
Progress = Callable[[str], None]


class BacktestError(ValueError):
    """The history cannot be backtested as asked; the message says why and what to change."""


@dataclass(frozen=True)
class FoldWindow:
    """The denial dates one fold learns from and is measured on."""

    index: int
    train_first: pd.Timestamp
    train_last: pd.Timestamp
    test_first: pd.Timestamp
    test_last: pd.Timestamp
    train_rows: int
    test_rows: int

    def params(self) -> dict[str, str | int]:
        return {
            "fold": self.index,
            "train_first_denial": str(self.train_first.date()),
            "train_last_denial": str(self.train_last.date()),
            "test_first_denial": str(self.test_first.date()),
            "test_last_denial": str(self.test_last.date()),
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
        }


@dataclass
class FoldResult:
    window: FoldWindow
    figures: dict[str, intervals.Interval]  # headline figure with its interval on this fold
    resampled: dict[str, np.ndarray] = field(repr=False)  # what the mean's interval pools


@dataclass
class BacktestResult:
    folds: list[FoldResult]
    summary: dict[str, intervals.Interval]  # mean over folds with its interval
    matured_by: pd.Timestamp
    run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "matured_by": str(self.matured_by.date()),
            "run_id": self.run_id,
            "summary": {name: i.as_dict() for name, i in self.summary.items()},
            "folds": [
                {
                    **fold.window.params(),
                    "figures": {name: i.as_dict() for name, i in fold.figures.items()},
                }
                for fold in self.folds
            ],
        }


# ---------------------------------------------------------------------------- windows


def fold_windows(
    history: pd.DataFrame,
    folds: int,
    fold_months: int,
    maturity_days: int = DEFAULT_MATURITY_DAYS,
    min_rows: int = DEFAULT_MIN_EVALUATION_ROWS,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], pd.Timestamp]:
    """Per fold, boolean masks of its training and test rows, and the matured-by date.

    The test windows are the last ``folds * fold_months`` months up to the matured-by date (the
    month holding it counts, as in :func:`training.fit.time_split`); each fold trains on every
    matured denial before its own test window, so training windows expand fold by fold.
    """
    if folds < 1 or fold_months < 1:
        raise BacktestError(f"folds and fold months must be at least 1; got {folds}, {fold_months}")
    dates = pd.to_datetime(history["denial_date"])
    matured_by = dates.max() - pd.Timedelta(days=maturity_days)
    first_test_month = matured_by.to_period("M") - (folds * fold_months - 1)
    masks = []
    for index in range(folds):
        start = (first_test_month + index * fold_months).start_time
        end = (first_test_month + (index + 1) * fold_months).start_time
        train = (dates < start).to_numpy()
        test = ((dates >= start) & (dates < end) & (dates <= matured_by)).to_numpy()
        _require_rows(index, start, train, test, min_rows, dates)
        masks.append((train, test))
    return masks, matured_by


def _require_rows(
    index: int,
    start: pd.Timestamp,
    train: np.ndarray,
    test: np.ndarray,
    min_rows: int,
    dates: pd.Series,
) -> None:
    if int(test.sum()) < min_rows or int(train.sum()) < min_rows:
        raise BacktestError(
            f"fold {index + 1} (test from {start.date()}) has {int(train.sum()):,} training and "
            f"{int(test.sum()):,} matured test denials; each needs at least {min_rows:,}. The "
            f"history runs from {dates.min().date()} to {dates.max().date()}: use fewer folds, "
            "longer folds, a smaller --maturity-days or a longer history"
        )


# ---------------------------------------------------------------------------- the backtest


def run_backtest(
    history: pd.DataFrame,
    specs: dict[str, ModelSpec],
    *,
    folds: int = DEFAULT_FOLDS,
    fold_months: int = DEFAULT_FOLD_MONTHS,
    maturity_days: int = DEFAULT_MATURITY_DAYS,
    seed: int = 7,
    resamples: int = intervals.RESAMPLES,
    min_rows: int = DEFAULT_MIN_EVALUATION_ROWS,
    progress: Progress = lambda _: None,
) -> BacktestResult:
    """Fit and measure every fold, then pool the folds' figures into means with intervals."""
    masks, matured_by = fold_windows(history, folds, fold_months, maturity_days, min_rows)
    results = []
    for index, (train_mask, test_mask) in enumerate(masks):
        train = history[train_mask].reset_index(drop=True)
        test = history[test_mask].reset_index(drop=True)
        window = _window(index + 1, train, test)
        progress(
            f"fold {index + 1}/{folds}: fitting on {len(train):,} denials to "
            f"{window.train_last.date()}, measuring {len(test):,} from {window.test_first.date()}"
        )
        model = fit_triage_model(train, specs, seed=seed)
        evaluation = evaluate_model(model, train, test, seed=seed)
        results.append(_measure_fold(window, evaluation, seed + 1000 * index, resamples))
    return BacktestResult(results, _summary(results), matured_by)


def _window(index: int, train: pd.DataFrame, test: pd.DataFrame) -> FoldWindow:
    train_dates, test_dates = (pd.to_datetime(f["denial_date"]) for f in (train, test))
    return FoldWindow(
        index,
        train_dates.min(),
        train_dates.max(),
        test_dates.min(),
        test_dates.max(),
        len(train),
        len(test),
    )


def _measure_fold(
    window: FoldWindow, evaluation: Evaluation, seed: int, resamples: int
) -> FoldResult:
    """Every headline figure the fold measured, with its resampled values."""
    figures, resampled = {}, {}
    for offset, (name, headline) in enumerate(HEADLINE_METRICS.items()):
        arrays = headline_arrays(evaluation, name)
        if arrays is None:
            continue  # that model was not fitted or not measured on this fold
        shared, scorer = arrays
        columns = [*shared, scorer]
        estimate = float(headline.statistic(*columns, axis=-1))
        distribution = intervals.resampled(
            headline.statistic, columns, resamples=resamples, seed=seed + offset
        )
        figures[name] = intervals.percentile_interval(estimate, distribution)
        resampled[name] = distribution
    return FoldResult(window, figures, resampled)


def _summary(results: list[FoldResult]) -> dict[str, intervals.Interval]:
    """The mean over the folds that measured a figure (all of them, when every fold's model
    was fitted)."""
    summary = {}
    for name in HEADLINE_METRICS:
        measured = [fold for fold in results if name in fold.figures]
        if measured:
            summary[name] = intervals.mean_interval(
                [fold.figures[name].estimate for fold in measured],
                [fold.resampled[name] for fold in measured],
            )
    return summary


# ---------------------------------------------------------------------------- MLflow


def log_backtest(result: BacktestResult, params: dict[str, str | int], experiment_id: str) -> str:
    """One parent run (the means and their intervals) with a nested child run per fold."""
    with mlflow.start_run(experiment_id=experiment_id, run_name="backtest") as parent:
        mlflow.log_params(params)
        mlflow.log_metrics(_interval_metrics(result.summary, "mean"))
        for fold in result.folds:
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=f"fold {fold.window.index}", nested=True
            ):
                mlflow.log_params(fold.window.params())
                mlflow.log_metrics(_interval_metrics(fold.figures, None))
        result.run_id = parent.info.run_id
        mlflow.log_dict(result.as_dict(), "backtest.json")
    return parent.info.run_id


def _interval_metrics(
    figures: dict[str, intervals.Interval], prefix: str | None
) -> dict[str, float]:
    """``name`` (or ``mean.name``) and its ``.ci_low``/``.ci_high``, finite values only."""
    logged = {}
    for name, interval in figures.items():
        key = name if prefix is None else f"{prefix}.{name}"
        for suffix, value in (
            ("", interval.estimate),
            (".ci_low", interval.low),
            (".ci_high", interval.high),
        ):
            if math.isfinite(value):
                logged[f"{key}{suffix}"] = value
    return logged


# ---------------------------------------------------------------------------- the table

# The figures the table shows, in the words a reader looks for.
TABLE_ROWS = {
    "root_cause.accuracy": "root cause accuracy",
    "root_cause.baselines.logistic_regression.accuracy": "  logistic regression",
    "root_cause.baselines.best_code_lookup.accuracy": "  best code lookup",
    "root_cause.macro_f1": "root cause macro-F1",
    "root_cause.baselines.logistic_regression.macro_f1": "  logistic regression",
    "root_cause.baselines.best_code_lookup.macro_f1": "  best code lookup",
    "recovery.roc_auc": "recovery ROC AUC",
    "recovery.brier": "recovery Brier",
    "recovery.expected_calibration_error": "recovery ECE",
    "preventable.roc_auc": "preventable ROC AUC",
    "preventable.brier": "preventable Brier",
    "preventable.expected_calibration_error": "preventable ECE",
    "prioritization.rankings.priority_score.top_20pct.share_of_oracle": (
        "priority: share of oracle $ at 20%"
    ),
    "prioritization.rankings.largest_amount_first.top_20pct.share_of_oracle": (
        "  largest amount first"
    ),
    "prioritization.by_hours.rankings.priority_score.top_20pct.share_of_oracle": (
        "priority: share of oracle $ in 20% of hours"
    ),
    "prioritization.by_hours.rankings.largest_amount_first.top_20pct.share_of_oracle": (
        "  largest amount first"
    ),
    "prioritization.by_hours.rankings.expected_dollars_only.top_20pct.share_of_oracle": (
        "  expected dollars only"
    ),
}


def format_table(result: BacktestResult) -> str:
    """A Markdown table: one row per figure, one column per fold, then the mean [95% CI]."""
    header = ["figure"] + [
        f"fold {f.window.index} ({f.window.test_first:%Y-%m}, {f.window.test_rows:,} rows)"
        for f in result.folds
    ]
    header.append("mean [95% CI]")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, label in TABLE_ROWS.items():
        if name not in result.summary:
            continue
        cells = [_cell(f.figures.get(name)) for f in result.folds]
        mean = result.summary[name]
        cells.append(f"{mean.estimate:.3f} [{mean.low:.3f}, {mean.high:.3f}]")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(interval: intervals.Interval | None) -> str:
    return "-" if interval is None else f"{interval.estimate:.3f}"


def backtest_params(
    data: Path, folds: int, fold_months: int, maturity_days: int, seed: int, digest: str
) -> dict[str, str | int]:
    return {
        "data_path": str(data),
        "data_digest": digest,
        "folds": folds,
        "fold_months": fold_months,
        "maturity_days": maturity_days,
        "seed": seed,
    }
