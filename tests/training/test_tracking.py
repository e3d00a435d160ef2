"""MLflow tracking, the registry and promotion by alias, through the real training job."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import small_specs, train_small_registry
from mlflow.tracking import MlflowClient

from training import run as training_run
from training.evaluate import PROMOTION_METRIC, Evaluation, paired_differences
from training.intervals import Interval
from training.run import TrainingOptions, evaluation_on, train
from training.specs import load_specs
from training.tracking import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    PROMOTION_SEED,
    alias_version,
    comparison_failures,
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
    assert run.data.tags["mapping_version"].startswith("2026.12.1#")
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


def test_a_candidate_wins_only_on_a_significant_gain_and_no_significant_loss() -> None:
    gain = Interval(12_000.0, 3_000.0, 21_000.0)
    quality = {
        "root_cause.macro_f1": Interval(-0.004, -0.012, 0.003),  # lower, but within noise
        "recovery.roc_auc": Interval(0.001, -0.004, 0.006),
        "preventable.roc_auc": Interval(0.0, -0.003, 0.003),
    }
    assert comparison_failures({PROMOTION_METRIC: gain, **quality}, "1") == []
    noise = Interval(4_000.0, -5_000.0, 13_000.0)
    (failure,) = comparison_failures({PROMOTION_METRIC: noise, **quality}, "1")
    assert failure == (
        "recovered dollars at 20% capacity: no significant gain over champion version 1 on the "
        "same rows (difference $+4,000 [$-5,000, $+13,000], 95% paired bootstrap)"
    )
    fewer = Interval(-9_000.0, -15_000.0, -2_000.0)
    assert "fewer over champion version 1" in comparison_failures({PROMOTION_METRIC: fewer}, "1")[0]
    worse = {**quality, "recovery.roc_auc": Interval(-0.02, -0.03, -0.01)}
    (failure,) = comparison_failures({PROMOTION_METRIC: gain, **worse}, "1")
    assert failure == (
        "recovery.roc_auc is significantly worse than champion version 1's on the same rows: "
        "difference -0.0200 [-0.0300, -0.0100] (95% paired bootstrap)"
    )


def _ranked(priority: np.ndarray, recovered: np.ndarray) -> Evaluation:
    """An evaluation holding the per-row arrays the promotion compares (a real one holds more)."""
    truth = (recovered > 0).astype(np.int64)
    probability = 1 / (1 + np.exp(-(priority - priority.mean()) / priority.std()))
    samples = {
        "prioritization": {"recovered": recovered, "priority_score": priority},
        "recovery": {"truth": truth, "probability": probability},
    }
    return Evaluation({}, pd.DataFrame(), {}, samples)


def test_promotion_refuses_a_gain_within_the_noise_of_the_rows() -> None:
    rng = np.random.default_rng(5)
    rows = 4_000
    recovered = np.where(rng.random(rows) < 0.5, rng.exponential(400, rows), 0.0)
    champion_priority = recovered + rng.normal(0, 300, rows)
    champion = _ranked(champion_priority, recovered)
    # A retrained model: the champion's ranking with a little noise of its own.
    nudge = np.random.default_rng(3).normal(0, 40, rows)  # a seed whose nudge gains dollars
    retrained = _ranked(champion_priority + nudge, recovered)
    within = paired_differences(retrained, champion, (PROMOTION_METRIC,), seed=PROMOTION_SEED)
    assert within[PROMOTION_METRIC].estimate > 0  # more dollars, which once sufficed
    (failure,) = comparison_failures(within, "1")
    assert failure.startswith("recovered dollars at 20% capacity: no significant gain over")
    assert "(difference $+603 [$-3,809, $+4,995], 95% paired bootstrap)" in failure
    # A model ranking much closer to the dollars each denial recovered wins.
    sharper = _ranked(recovered + rng.normal(0, 100, rows), recovered)
    names = (PROMOTION_METRIC, "recovery.roc_auc")
    beyond = paired_differences(sharper, champion, names, seed=PROMOTION_SEED)
    assert beyond[PROMOTION_METRIC].above_zero and beyond["recovery.roc_auc"].above_zero
    assert comparison_failures(beyond, "1") == []


def test_evaluations_on_different_rows_are_not_compared() -> None:
    recovered = np.linspace(0, 500, 100)
    one, other = _ranked(recovered + 1, recovered), _ranked(recovered + 1, recovered[::-1].copy())
    with pytest.raises(ValueError, match="not measured on the same rows"):
        paired_differences(one, other, (PROMOTION_METRIC,))


@pytest.mark.slow
def test_a_retrained_model_within_noise_stays_challenger(
    workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    options, first = workspace
    promote(first.record.model_version, small_specs(80), evaluation_on(options.data, options))
    monkeypatch.setattr(training_run, "load_specs", lambda: small_specs(80))
    retrained = train(replace(options, seed=options.seed + 1))  # other subsamples, same method
    decision = promote(
        retrained.record.model_version, small_specs(80), evaluation_on(options.data, options)
    )
    assert decision.alias == CHALLENGER and alias_version(CHAMPION) == "1"
    assert any("no significant gain over champion version 1" in r for r in decision.reasons), (
        decision.reasons
    )


def test_a_history_breaking_the_contract_is_refused_with_its_rows(tmp_path: Path) -> None:
    bad = pd.DataFrame({"denial_id": ["a", "a"], "claim_id": ["c", "d"]})
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(training_run.TrainingDataError, match="break the data contract"):
        training_run.load_history(path)
