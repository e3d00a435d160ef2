"""Rolling backtest: expanding training windows, each scored on the next months, logged to
MLflow as a parent run with a child per fold."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import small_specs
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from denial_triage.cli import app
from denial_triage.commands import train as train_commands
from denial_triage.settings import get_settings
from training.backtest import BacktestError, fold_windows
from training.evaluate import HEADLINE_METRICS, PROMOTION_METRIC
from training.synthetic import generate_history

runner = CliRunner()


def _history(first: str, last: str) -> pd.DataFrame:
    return pd.DataFrame({"denial_date": pd.date_range(first, last, freq="D")})


def test_folds_test_consecutive_months_after_expanding_training_windows() -> None:
    history = _history("2024-01-01", "2025-12-31")
    masks, matured_by = fold_windows(
        history, folds=3, fold_months=2, maturity_days=180, min_rows=10
    )
    assert matured_by == pd.Timestamp("2025-07-04")
    dates = history["denial_date"]
    spans = [(dates[test].min(), dates[test].max(), dates[train].max()) for train, test in masks]
    assert spans == [
        (pd.Timestamp("2025-02-01"), pd.Timestamp("2025-03-31"), pd.Timestamp("2025-01-31")),
        (pd.Timestamp("2025-04-01"), pd.Timestamp("2025-05-31"), pd.Timestamp("2025-03-31")),
        # the month holding the matured-by date counts, up to that date
        (pd.Timestamp("2025-06-01"), pd.Timestamp("2025-07-04"), pd.Timestamp("2025-05-31")),
    ]
    for (train, _), (next_train, _) in itertools.pairwise(masks):
        assert (train <= next_train).all() and next_train.sum() > train.sum()
    tests = np.vstack([test for _, test in masks])
    assert tests.sum(axis=0).max() == 1  # no denial is tested twice
    assert all(dates[train].min() == pd.Timestamp("2024-01-01") for train, _ in masks)


def test_a_history_too_short_for_the_folds_is_refused_with_the_counts() -> None:
    history = _history("2025-01-01", "2025-12-31")
    with pytest.raises(BacktestError) as refused:
        fold_windows(history, folds=6, fold_months=1, maturity_days=180, min_rows=40)
    message = str(refused.value)
    assert "fold 1 (test from 2025-02-01) has 31 training and 28 matured test denials" in message
    assert "at least 40" in message


@pytest.fixture
def cli_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DENIAL_TRIAGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(train_commands, "load_specs", lambda: small_specs(30))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_the_command_refuses_more_folds_than_the_history_holds(cli_workspace: Path) -> None:
    data = generate_history(3_000, 5, cli_workspace / "history.parquet")
    result = runner.invoke(app, ["backtest", "--data", str(data), "--folds", "20"])
    assert result.exit_code == 1
    assert "error: fold 1 (test from" in result.output and "use fewer folds" in result.output


@pytest.mark.slow
def test_backtest_logs_a_parent_run_with_a_child_per_fold(cli_workspace: Path) -> None:
    data = generate_history(20_000, 43, cli_workspace / "history.parquet")
    arguments = ["backtest", "--data", str(data), "--folds", "3", "--fold-months", "2"]
    result = runner.invoke(app, [*arguments, "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    folds = report["folds"]
    assert [f["fold"] for f in folds] == [1, 2, 3]
    for fold, following in itertools.pairwise(folds):
        assert fold["train_last_denial"] < fold["test_first_denial"] <= fold["test_last_denial"]
        assert fold["test_last_denial"] < following["test_first_denial"]  # no overlap
        assert following["train_rows"] > fold["train_rows"]  # expanding
        assert following["train_last_denial"] >= fold["test_last_denial"]
    assert folds[-1]["test_last_denial"] <= report["matured_by"]
    # Every headline figure, per fold and as a mean over folds whose interval holds it.
    assert set(report["summary"]) == set(HEADLINE_METRICS)
    for name, mean in report["summary"].items():
        per_fold = [f["figures"][name]["estimate"] for f in folds]
        assert mean["estimate"] == pytest.approx(np.mean(per_fold))
        assert mean["low"] <= mean["high"]
    accuracy = report["summary"]["root_cause.accuracy"]
    assert 0.5 < accuracy["low"] < accuracy["estimate"] < accuracy["high"] < 0.9
    assert report["summary"][PROMOTION_METRIC]["estimate"] > 0

    mlflow.set_tracking_uri(f"sqlite:///{cli_workspace / 'data' / 'mlflow.db'}")
    client = MlflowClient()
    parent = client.get_run(report["run_id"])
    assert parent.data.params["folds"] == "3" and parent.data.params["fold_months"] == "2"
    assert parent.data.metrics["mean.root_cause.accuracy"] == pytest.approx(accuracy["estimate"])
    assert parent.data.metrics["mean.root_cause.accuracy.ci_low"] == pytest.approx(accuracy["low"])
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        order_by=["params.fold ASC"],
    )
    assert len(children) == 3
    for child, fold in zip(children, folds, strict=True):
        assert child.data.params["test_first_denial"] == fold["test_first_denial"]
        assert child.data.params["train_rows"] == str(fold["train_rows"])
        assert child.data.metrics["recovery.roc_auc"] == pytest.approx(
            fold["figures"]["recovery.roc_auc"]["estimate"]
        )
