"""Training windows: a model is never evaluated or promoted on the denials it learned from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import small_specs
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from denial_triage.cli import app
from denial_triage.settings import get_settings
from training import run as training_run
from training.run import TrainingOptions, evaluation_on, train
from training.synthetic import generate_history
from training.tracking import (
    CHAMPION,
    MODEL_NAME,
    alias_version,
    load_measured_model,
    load_triage_model,
    promote,
)
from training.windows import EvaluationWindowError, TrainingWindow, rows_beyond

runner = CliRunner()


def _history(first: str, last: str) -> pd.DataFrame:
    return pd.DataFrame({"denial_date": pd.date_range(first, last, freq="D")})


def _window(last: str) -> TrainingWindow:
    return TrainingWindow(pd.Timestamp("2024-01-01"), pd.Timestamp(last), None, 100, "d")


def test_rows_beyond_every_window_are_matured_and_newer_than_the_newest_window() -> None:
    history = _history("2024-01-01", "2025-12-31")
    rows = rows_beyond(
        history,
        [("a", _window("2024-12-31")), ("b", _window("2025-03-31"))],
        maturity_days=180,
        min_rows=10,
    )
    assert rows.measured["denial_date"].min() == pd.Timestamp("2025-04-01")
    assert rows.measured["denial_date"].max() == pd.Timestamp("2025-07-04")  # 180 days before
    assert rows.baseline["denial_date"].max() == pd.Timestamp("2025-03-31")
    assert len(rows.measured) == 95


def test_too_few_rows_beyond_the_windows_are_refused_with_the_counts() -> None:
    history = _history("2024-01-01", "2025-12-31")
    with pytest.raises(EvaluationWindowError) as refused:
        rows_beyond(history, [("version 2", _window("2025-06-30"))], 180, min_rows=500)
    message = str(refused.value)
    assert "only 4 matured denials" in message
    assert "version 2 learned from 2024-01-01 to 2025-06-30" in message
    assert "at least 500" in message


def test_a_window_round_trips_through_model_metadata() -> None:
    train_rows = _history("2024-02-01", "2024-11-30")
    window = TrainingWindow.of(train_rows, pd.Timestamp("2025-06-30"), "abc")
    read = TrainingWindow.of_model({**window.metadata(), "data_digest": "abc"}, "m")
    assert read == window
    assert window.metadata() == {
        "window.first_denial": "2024-02-01",
        "window.last_denial": "2024-11-30",
        "window.matured_by": "2025-06-30",
        "window.rows": 304,
    }


def test_a_model_registered_before_windows_is_held_to_its_test_months() -> None:
    window = TrainingWindow.of_model({"test_from": "2025-03-01"}, "version 1")
    assert window.last_denial == pd.Timestamp("2025-02-28")


def test_a_model_recording_no_window_cannot_be_evaluated() -> None:
    with pytest.raises(EvaluationWindowError, match="version 9 records no training window"):
        TrainingWindow.of_model({}, "version 9")


# ---------------------------------------------------------------------------- the review's case


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, TrainingOptions]:
    """Version 1 trained fairly and champion; version 2 trained on months a default split
    tests on (no maturity, one test month), which once won promotion in sample."""
    folder = tmp_path_factory.mktemp("windows")
    data = generate_history(20_000, 41, folder / "history.parquet")
    fair = TrainingOptions(data=data, data_dir=folder / "data", seed=1)
    in_sample = TrainingOptions(
        data=data, data_dir=folder / "data", seed=1, test_months=1, maturity_days=0
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setattr(training_run, "load_specs", lambda: small_specs(40))
        first = train(fair)
        promote(first.record.model_version, small_specs(40), evaluation_on(data, fair))
        train(in_sample)
    return data, folder / "data", in_sample


@pytest.fixture
def cli_settings(two_models, monkeypatch: pytest.MonkeyPatch) -> None:
    _, data_dir, _ = two_models
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DENIAL_TRIAGE_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.slow
def test_every_version_records_its_window_as_tags(two_models, cli_settings) -> None:
    data, _, _ = two_models
    dates = pd.to_datetime(pd.read_parquet(data, columns=["denial_date"])["denial_date"])
    tags = MlflowClient().get_model_version(MODEL_NAME, "2").tags
    # Trained with one test month and no maturity: its evaluation fit learned up to the month
    # before the last; the registered model was then refitted on every row, that month too.
    last_month = dates.max().to_period("M").start_time
    evaluated_to = pd.Timestamp(tags["evaluation_fit.last_denial"])
    assert last_month - pd.Timedelta(days=3) <= evaluated_to < last_month
    assert tags["window.last_denial"] == str(dates.max().date())
    assert tags["window.first_denial"] == tags["evaluation_fit.first_denial"]
    assert tags["window.first_denial"] == str(dates.min().date())
    assert int(tags["window.rows"]) == len(dates)
    assert 15_000 < int(tags["evaluation_fit.rows"]) < len(dates)
    assert len(tags["data_digest"]) == 64


@pytest.mark.slow
def test_a_model_trained_on_the_test_months_can_no_longer_win_promotion(
    two_models, cli_settings
) -> None:
    data, _, _ = two_models
    result = runner.invoke(app, ["promote", "--data", str(data), "--version", "2"])
    assert result.exit_code == 1
    assert "newer than every compared model's training window" in result.output
    assert "version 2 learned from" in result.output
    assert alias_version(CHAMPION) == "1"


@pytest.mark.slow
def test_evaluate_measures_a_model_only_after_its_window(two_models, cli_settings) -> None:
    data, _, _ = two_models
    model = f"models:/{MODEL_NAME}/2"
    refused = runner.invoke(app, ["evaluate", "--data", str(data), "--model", model])
    assert refused.exit_code == 1 and "only 0 matured denials" in refused.output
    # With every outcome taken as known, only the last month lies beyond its window.
    window = TrainingWindow.of_model(load_measured_model(model).metadata, "version 2")
    measured = runner.invoke(
        app, ["evaluate", "--data", str(data), "--model", model, "--maturity-days", "0"]
    )
    assert measured.exit_code == 0, measured.output
    dates = pd.to_datetime(pd.read_parquet(data, columns=["denial_date"])["denial_date"])
    newer = int((dates > window.last_denial).sum())
    assert f"measured on {newer:,} matured denials after {window.last_denial.date()}" in (
        measured.output
    )
    assert "its evaluation fit (the same specs, fitted before them) is what is measured" in (
        measured.output
    )


@pytest.mark.slow
def test_a_refitted_version_serves_the_refit_and_is_measured_by_its_evaluation_fit(
    two_models, cli_settings
) -> None:
    data, _, _ = two_models
    served = load_triage_model(f"models:/{MODEL_NAME}/2")
    measured = load_measured_model(f"models:/{MODEL_NAME}/2")
    assert measured.metadata["fit"] == "evaluation_fit"
    assert served.metadata["fit"] == "every matured row"
    served_window = TrainingWindow.of_model(served.metadata, "served")
    measured_window = TrainingWindow.of_model(measured.metadata, "measured")
    assert measured_window.last_denial < served_window.last_denial
    assert measured_window.rows < served_window.rows
    # The refit learned the last month: its scores there differ from the evaluation fit's.
    history = pd.read_parquet(data)
    newest = history[pd.to_datetime(history["denial_date"]) > measured_window.last_denial]
    newest = newest.head(300)
    served_scores = served.score(newest)["recovery_probability"].to_numpy()
    measured_scores = measured.score(newest)["recovery_probability"].to_numpy()
    assert np.abs(served_scores - measured_scores).mean() > 1e-3


@pytest.mark.slow  # fits a triage model twice
def test_the_refit_keeps_its_own_set_aside_and_carries_the_evaluated_provenance(
    split_history, tmp_path: Path
) -> None:
    from training.fit import fit_triage_model

    train_rows, test_rows = (part.head(3_000) for part in split_history)
    specs = small_specs(20)
    evaluated = fit_triage_model(train_rows, specs, seed=2)
    # As if the evaluated fit had set its preventable model aside; the refit kept its own.
    evaluated.metadata.update({"data_path": "history.parquet", "set_aside.preventable": "slope"})
    window = TrainingWindow.of(train_rows, None, "d" * 64)
    fitted = training_run._Fitted(
        evaluated, train_rows, test_rows, len(train_rows), pd.Timestamp("2025-01-01"), window, {}
    )
    options = TrainingOptions(data=tmp_path / "history.parquet", data_dir=tmp_path, seed=2)
    refit, rows, refit_window = training_run._refit(options, specs, fitted, lambda _: None)
    assert refit.preventable_model is not None
    assert "set_aside.preventable" not in refit.metadata
    assert refit.metadata["data_path"] == "history.parquet"
    assert refit.metadata["train_rows"] == len(rows) == 6_000
    assert refit.metadata["evaluation_fit.rows"] == 3_000
    assert refit_window.rows == 6_000
