"""MLflow tracking, the registry and promotion by alias, through the real training job."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import small_specs, train_small_registry
from mlflow.tracking import MlflowClient

from training import run as training_run
from training.run import TrainingOptions, evaluation_on, train
from training.specs import load_specs
from training.tracking import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    alias_version,
    example_payload,
    load_triage_model,
    promote,
)

pytestmark = pytest.mark.slow  # trains a 30,000-row registry, then a second model into it


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainingOptions, object]:
    options, results = train_small_registry(
        tmp_path_factory.mktemp("mlflow"), rows=30_000, seed=21, rounds=80
    )
    return options, results[0]


def test_training_registers_a_version_with_its_run(workspace) -> None:
    options, result = workspace
    assert result.record.model_version == "1"
    assert mlflow.get_tracking_uri().startswith("sqlite:///")
    assert (options.data_dir / "mlflow.db").exists()
    run = MlflowClient().get_run(result.record.run_id)
    assert run.data.metrics["root_cause.accuracy"] == pytest.approx(
        result.evaluation.report["root_cause"]["accuracy"]
    )
    assert "recovery.roc_auc" in run.data.metrics
    assert "prioritization.rankings.priority_score.top_20pct.share_of_oracle" in run.data.metrics
    assert run.data.tags["mapping_version"].startswith("2026.11.0#")
    assert len(run.data.tags["data_digest"]) == 64
    assert run.data.params["train_rows"] == str(result.evaluation.report["rows"]["train"])
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id)}
    assert {"evaluation.json", "figures"} <= artifacts
    figures = {Path(a.path).name for a in MlflowClient().list_artifacts(run.info.run_id, "figures")}
    assert figures == {
        "confusion_matrix.png",
        "calibration.png",
        "recovery_at_capacity.png",
        "shap_summary_recovery.png",
    }


def test_the_registered_pyfunc_scores_exactly_like_the_model(workspace) -> None:
    options, result = workspace
    frame = training_run.load_history(options.data).tail(25).reset_index(drop=True)
    pyfunc = mlflow.pyfunc.load_model(result.record.model_uri)
    served = pyfunc.predict(example_payload(frame))
    direct = load_triage_model(result.record.model_uri).score(frame)
    for column in (
        "root_cause",
        "recovery_probability",
        "preventable_probability",
        "priority_score",
        "owner_queue",
    ):
        np.testing.assert_array_equal(served[column].to_numpy(), direct[column].to_numpy())
    assert list(served["denial_id"]) == list(frame["denial_id"])


def test_the_pyfunc_explains_on_request_and_the_parts_add_up(workspace) -> None:
    options, result = workspace
    frame = training_run.load_history(options.data).tail(5)
    served = mlflow.pyfunc.load_model(result.record.model_uri).predict(
        example_payload(frame), params={"explain": True, "top": 3}
    )
    for text, probability in zip(
        served["explanation"], served["recovery_probability"], strict=True
    ):
        recovery = json.loads(text)["recovery"]
        total = (
            recovery["base_value"]
            + sum(c["contribution"] for c in recovery["contributions"])
            + recovery["rest"]
        )
        assert total == pytest.approx(np.log(probability / (1 - probability)), abs=1e-6)
        assert len(recovery["contributions"]) <= 3


def test_promotion_makes_a_passing_first_model_champion(workspace) -> None:
    options, result = workspace
    decision = promote(
        result.record.model_version, small_specs(80), evaluation_on(options.data, options)
    )
    assert decision.alias == CHAMPION and alias_version(CHAMPION) == "1"
    tag = MlflowClient().get_model_version(MODEL_NAME, "1").tags["promotion"]
    assert tag.startswith("champion: all gates pass")


def test_a_weaker_model_becomes_challenger_with_the_reason(
    workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    options, first = workspace
    promote(first.record.model_version, small_specs(80), evaluation_on(options.data, options))
    monkeypatch.setattr(training_run, "load_specs", lambda: small_specs(2))
    weak = train(options)
    decision = promote(
        weak.record.model_version, load_specs(), evaluation_on(options.data, options)
    )
    assert decision.alias == CHALLENGER
    assert alias_version(CHAMPION) == "1" and alias_version(CHALLENGER) == weak.record.model_version
    assert any("below the gate" in r or "worse than champion" in r for r in decision.reasons)


def test_comparison_needs_no_regression_and_something_better() -> None:
    from training.evaluate import PROMOTION_METRIC
    from training.tracking import comparison_failures

    champion = {"root_cause.macro_f1": 0.7, "recovery.roc_auc": 0.75, "preventable.roc_auc": 0.76}
    champion[PROMOTION_METRIC] = 1_000_000.0
    assert comparison_failures({**champion, PROMOTION_METRIC: 1_010_000.0}, champion, "1") == []
    worse_quality = {**champion, "recovery.roc_auc": 0.70, PROMOTION_METRIC: 2_000_000.0}
    assert (
        "recovery.roc_auc 0.7000 is worse" in comparison_failures(worse_quality, champion, "1")[0]
    )
    fewer_dollars = {**champion, "root_cause.macro_f1": 0.8, PROMOTION_METRIC: 900_000.0}
    assert "below champion version 1" in comparison_failures(fewer_dollars, champion, "1")[0]
    assert "nothing improves" in comparison_failures(dict(champion), champion, "1")[0]


def test_a_history_breaking_the_contract_is_refused_with_its_rows(tmp_path: Path) -> None:
    bad = pd.DataFrame({"denial_id": ["a", "a"], "claim_id": ["c", "d"]})
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(training_run.TrainingDataError, match="break the data contract"):
        training_run.load_history(path)
