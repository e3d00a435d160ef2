"""Feature values put in a reviewer's words."""

from __future__ import annotations

import math

import pytest

from serving.reasons import (
    class_log_odds,
    exact_amounts,
    probability_points,
    readable_value,
    stored_in_points,
)


@pytest.mark.parametrize(
    ("feature", "value", "expected"),
    [
        ("procedure_code", "0110", "0110"),
        ("place_of_service", "11", "11"),
        ("payer_id", "COM003", "COM003"),
        ("prior_auth_on_file", "0", "no"),
        ("log_denied_amount", "0", "$0.00"),
        ("payer_recovery_rate", "0.25", "25%"),
        ("adjustment_CO-16", "1", "present"),
        ("days_to_appeal_deadline", "12", "12"),
        ("specialty", "missing", "missing"),
        ("mapped_root_cause", "missing_invalid_claim_data", "Missing or invalid claim data"),
        ("mapped_action_path", "write_off_approval", "Approve a write-off"),
    ],
)
def test_values_read_as_a_reviewer_reads_them(feature: str, value: str, expected: str) -> None:
    assert readable_value(feature, value) == expected


def _logistic(log_odds: float) -> float:
    return 1 / (1 + math.exp(-log_odds))


def test_points_follow_the_shap_path_and_add_up_to_the_headline() -> None:
    # Base 0.2 log-odds (55.0%), three reasons and a rest ending at +2.0 (88.1%).
    points = probability_points(0.2, [1.5, -0.4, 0.5], 0.2, 2.0, 2.0)
    assert points.base_probability == pytest.approx(_logistic(0.2))
    assert points.probability == pytest.approx(_logistic(2.0))
    # The first reason's push is the probability's change across its own step.
    assert points.reasons[0] == pytest.approx(100 * (_logistic(1.7) - _logistic(0.2)))
    assert points.reasons[1] < 0 < points.reasons[2]
    total = sum(points.reasons) + points.rest
    assert total == pytest.approx(100 * (_logistic(2.0) - _logistic(0.2)), abs=1e-9)


def test_a_class_score_is_explained_in_the_log_odds_of_its_softmax_probability() -> None:
    scores = {"coding": 2.5, "duplicate": 0.5, "timely_filing": -1.0}
    exps = {name: math.exp(score) for name, score in scores.items()}
    probabilities = {name: e / sum(exps.values()) for name, e in exps.items()}
    log_odds = class_log_odds(probabilities, "coding")
    assert log_odds == pytest.approx(2.5 - math.log(math.exp(0.5) + math.exp(-1.0)))
    # The raw path (base -0.3 plus contributions, ending at the raw score 2.5) shifted by the
    # other classes' log-sum-exp ends at the displayed probability.
    points = probability_points(-0.3, [2.0, 0.6], 0.2, 2.5, log_odds)
    assert points.probability == pytest.approx(probabilities["coding"])
    assert 100 * points.base_probability + sum(points.reasons) + points.rest == pytest.approx(
        100 * probabilities["coding"]
    )


def test_a_class_the_softmax_gives_everything_still_has_finite_log_odds() -> None:
    assert math.isfinite(class_log_odds({"coding": 1.0, "duplicate": 0.0}, "coding"))
    assert class_log_odds({"coding": 1 - 1e-12, "duplicate": 1e-12}, "coding") == pytest.approx(
        math.log((1 - 1e-12) / 1e-12)
    )


def test_a_score_recorded_in_log_odds_is_read_in_points_and_plain_words() -> None:
    recorded = {
        "output": 1.1,
        "base_value": -0.5,
        "rest": 0.1,
        "reasons": [
            {
                "feature": "mapped_root_cause",
                "label": "root cause the code mapping gives",
                "value": "missing_invalid_claim_data",
                "direction": "raises",
                "contribution": 1.5,
                "text": "root cause the code mapping gives: ... (+1.50)",
            }
        ],
    }
    score = {"category": "coding", "probabilities": {"coding": 0.6, "duplicate": 0.4}}
    worded = stored_in_points("root_cause", recorded, score)
    assert worded["probability"] == pytest.approx(0.6)
    reason = worded["reasons"][0]
    assert reason["value"] == "Missing or invalid claim data"
    assert "+1.50" not in reason["text"] and reason["text"].endswith(
        f"by {reason['probability_points']:.1f} points"
    )
    total = 100 * worded["base_probability"] + reason["probability_points"]
    assert total + worded["rest_probability_points"] == pytest.approx(60.0)


def test_encoded_amounts_give_way_to_the_denials_own_cents() -> None:
    assert exact_amounts(150_000.37, 56.02) == {
        "log_billed_amount": "$150,000.37",
        "log_denied_amount": "$56.02",
    }
