"""Evaluation metrics on values worked out by hand, and against scikit-learn where it has them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, f1_score, roc_auc_score

from features.contract import ROOT_CAUSES
from features.payer_rules import load_payer_rules
from training.metrics import (
    BASELINE_NAMES,
    ORACLE,
    baseline_rankings,
    binary_summary,
    capacity_capture,
    expected_calibration_error,
    multiclass_summary,
    nearest_deadline_scores,
    ranking_report,
    recovery_at_capacity_curve,
    reliability_table,
    rows_worked,
    work_order,
)

# Ten denials: priority and what each actually recovered. Worked by priority the order is
# rows 0 (0.9), 6 (0.8), 3 (0.7), 8 (0.6), ...; the $1,000 denial (row 9) is ranked last.
PRIORITY = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.2, 0.8, 0.4, 0.6, 0.0])
RECOVERED = np.array([100.0, 0.0, 50.0, 0.0, 20.0, 5.0, 200.0, 0.0, 10.0, 1000.0])


@pytest.fixture(scope="module")
def calibrated() -> tuple[np.ndarray, np.ndarray]:
    """Outcomes drawn at exactly the predicted probability."""
    rng = np.random.default_rng(3)
    probability = rng.uniform(0, 1, 200_000)
    return (rng.uniform(0, 1, probability.size) < probability).astype(int), probability


# ---------------------------------------------------------------------------- calibration


def test_ece_of_calibrated_probabilities_is_near_zero(calibrated) -> None:
    outcome, probability = calibrated
    assert expected_calibration_error(outcome, probability) < 0.01


def test_ece_of_constant_overconfident_predictor_is_its_gap() -> None:
    # Says 90% for everyone; 6 of 10 recover: one filled bin, gap |0.9 - 0.6| = 0.3.
    outcome = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    assert expected_calibration_error(outcome, np.full(10, 0.9)) == pytest.approx(0.3)


def test_ece_weights_bins_by_their_size() -> None:
    # Bin [0.2, 0.3): 3 rows, predicted 0.2, observed 0 -> gap 0.2.
    # Bin [0.8, 0.9): 1 row, predicted 0.8, observed 0 -> gap 0.8. Weighted: (3*0.2 + 0.8)/4.
    outcome = np.array([0, 0, 0, 0])
    probability = np.array([0.2, 0.2, 0.2, 0.8])
    assert expected_calibration_error(outcome, probability) == pytest.approx(0.35)


def test_reliability_table_bins_and_edges() -> None:
    outcome = np.array([0, 1, 1, 0, 1])
    probability = np.array([0.0, 0.05, 0.55, 0.95, 1.0])
    table = reliability_table(outcome, probability, bins=10)
    assert list(table.columns) == [
        "bin",
        "lower",
        "upper",
        "count",
        "mean_predicted",
        "observed_rate",
    ]
    assert len(table) == 10 and table["count"].sum() == 5
    first, middle, last = table.iloc[0], table.iloc[5], table.iloc[9]
    assert (first["count"], first["mean_predicted"], first["observed_rate"]) == (2, 0.025, 0.5)
    assert (middle["count"], middle["observed_rate"]) == (1, 1.0)
    # 1.0 belongs to the last bin, not an eleventh one.
    assert last["count"] == 2 and last["mean_predicted"] == pytest.approx(0.975)
    assert table.iloc[3]["count"] == 0 and math.isnan(table.iloc[3]["observed_rate"])


def test_calibration_rejects_values_that_are_not_probabilities() -> None:
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        expected_calibration_error([0, 1], [0.5, 1.2])
    with pytest.raises(ValueError, match="0/1"):
        reliability_table([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="shape"):
        reliability_table([0, 1, 1], [0.5, 0.5])


def test_binary_summary_agrees_with_scikit_learn(calibrated) -> None:
    outcome, probability = calibrated
    summary = binary_summary(outcome, probability)
    assert set(summary) == {"roc_auc", "brier", "ece", "log_loss", "rows", "positive_rate"}
    assert summary["roc_auc"] == pytest.approx(roc_auc_score(outcome, probability))
    assert summary["brier"] == pytest.approx(brier_score_loss(outcome, probability))
    assert summary["rows"] == 200_000 and summary["positive_rate"] == pytest.approx(0.5, abs=0.01)
    assert all(isinstance(value, float) for value in summary.values())


def test_binary_summary_of_a_one_outcome_segment_has_no_auc() -> None:
    summary = binary_summary([1, 1, 1], [0.7, 0.8, 0.9])
    assert math.isnan(summary["roc_auc"])
    assert summary["brier"] == pytest.approx((0.09 + 0.04 + 0.01) / 3)


# ---------------------------------------------------------------------------- classification


def test_multiclass_summary_matches_scikit_learn() -> None:
    rng = np.random.default_rng(5)
    truth = rng.choice(ROOT_CAUSES, 2_000)
    predicted = np.where(rng.uniform(size=truth.size) < 0.6, truth, rng.choice(ROOT_CAUSES, 2_000))
    summary = multiclass_summary(truth, predicted, ROOT_CAUSES)
    assert summary["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert summary["accuracy"] == pytest.approx(np.mean(truth == predicted))
    expected_f1 = f1_score(truth, predicted, labels=list(ROOT_CAUSES), average=None)
    assert [summary["per_class"][c]["f1"] for c in ROOT_CAUSES] == pytest.approx(expected_f1)


def test_multiclass_confusion_matrix_follows_the_given_label_order() -> None:
    truth = ["coding", "coding", "duplicate", "timely_filing"]
    predicted = ["coding", "duplicate", "duplicate", "coding"]
    labels = ["timely_filing", "duplicate", "coding"]
    summary = multiclass_summary(truth, predicted, labels)
    assert summary["labels"] == labels
    # Rows are the true label, columns the prediction, both in the order given.
    assert summary["confusion_matrix"] == [[0, 0, 1], [0, 1, 0], [0, 1, 1]]
    assert summary["per_class"]["coding"]["support"] == 2
    assert summary["per_class"]["timely_filing"]["f1"] == 0.0


# ---------------------------------------------------------------------------- prioritization


def test_capacity_capture_on_a_hand_made_worklist() -> None:
    captured = capacity_capture(PRIORITY, RECOVERED)
    # 1 row: row 0 ($100); 2 rows: + row 6 ($200); 3 rows: + row 3 ($0) - not 4 rows.
    assert captured == {"top_10%": 100.0, "top_20%": 300.0, "top_30%": 300.0}


def test_capacity_rounds_partial_rows_up() -> None:
    assert rows_worked(0.3, 10) == 3
    assert rows_worked(0.1 * 3, 10) == 3  # 0.1 * 3 * 10 is 3.0000000000000004 as a float
    assert rows_worked(0.25, 10) == 3
    assert rows_worked(0.01, 10) == 1
    assert capacity_capture(PRIORITY, RECOVERED, shares=(0.25, 1.0)) == {
        "top_25%": 300.0,
        "top_100%": RECOVERED.sum(),
    }


def test_ties_are_broken_by_worklist_position() -> None:
    dollars = np.array([1.0, 2.0, 3.0, 4.0])
    tied = np.zeros(4)
    assert work_order(tied).tolist() == [0, 1, 2, 3]
    assert capacity_capture(tied, dollars, shares=(0.5,)) == {"top_50%": 3.0}
    assert capacity_capture(tied, dollars[::-1], shares=(0.5,)) == {"top_50%": 7.0}
    # Equal priorities among others keep their relative order too.
    assert work_order([0.5, 0.9, 0.5, 0.9]).tolist() == [1, 3, 0, 2]


def test_capacity_capture_refuses_open_denials_and_missing_scores() -> None:
    with pytest.raises(ValueError, match="open denials"):
        capacity_capture(PRIORITY[:2], [10.0, np.nan])
    with pytest.raises(ValueError, match="missing on 1 rows"):
        capacity_capture([np.nan, 1.0], [10.0, 0.0])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        capacity_capture(PRIORITY, RECOVERED, shares=(0.0,))


def test_ranking_report_puts_the_oracle_on_top() -> None:
    rng = np.random.default_rng(9)
    dollars = np.where(rng.uniform(size=500) < 0.5, rng.gamma(2, 400, 500).round(2), 0.0)
    rankings = {
        "model": dollars + rng.normal(0, 300, 500),
        "random": rng.uniform(size=500),
        "worst": -dollars,
    }
    report = ranking_report(rankings, dollars, shares=(0.1, 0.2, 0.3))
    results = report["rankings"]
    assert list(results) == [ORACLE, "model", "random", "worst"]
    assert report["rows_worked"] == {"top_10%": 50, "top_20%": 100, "top_30%": 150}
    largest_first = np.sort(dollars)[::-1]
    for label, oracle in results[ORACLE].items():
        assert oracle["share_of_oracle"] == 1.0
        top = report["rows_worked"][label]
        assert oracle["dollars_captured"] == pytest.approx(largest_first[:top].sum())
        for name in rankings:
            assert results[name][label]["share_of_oracle"] <= 1.0
            assert results[name][label]["dollars_captured"] <= oracle["dollars_captured"]
    assert (
        results["model"]["top_10%"]["share_of_oracle"]
        > results["random"]["top_10%"]["share_of_oracle"]
    )


def test_ranking_report_dollars_match_capacity_capture() -> None:
    report = ranking_report({"model": PRIORITY}, RECOVERED)
    model = report["rankings"]["model"]
    assert {k: v["dollars_captured"] for k, v in model.items()} == capacity_capture(
        PRIORITY, RECOVERED
    )
    # Oracle's top 3 rows: $1,000 + $200 + $100.
    assert model["top_30%"]["share_of_oracle"] == pytest.approx(300 / 1300)
    assert report["total_recovered_dollars"] == RECOVERED.sum()


def test_ranking_report_with_nothing_recovered_has_no_oracle_share() -> None:
    report = ranking_report({"model": PRIORITY}, np.zeros(10))
    assert math.isnan(report["rankings"]["model"]["top_10%"]["share_of_oracle"])
    with pytest.raises(ValueError, match="oracle"):
        ranking_report({ORACLE: PRIORITY}, RECOVERED)


def test_recovery_curve_runs_from_nothing_to_everything() -> None:
    curve = recovery_at_capacity_curve(PRIORITY, RECOVERED, points=10)
    assert list(curve.columns) == ["share_worked", "dollars_captured", "share_of_total"]
    assert len(curve) == 11
    assert curve["dollars_captured"].iloc[0] == 0 and curve["share_of_total"].iloc[-1] == 1.0
    assert curve["dollars_captured"].is_monotonic_increasing
    at_marks = curve.set_index(curve["share_worked"].round(2))["dollars_captured"]
    captured = capacity_capture(PRIORITY, RECOVERED)
    assert [at_marks[0.1], at_marks[0.2], at_marks[0.3]] == list(captured.values())


# ---------------------------------------------------------------------------- baselines


def _dates(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values)).astype("datetime64[s]"))


def test_nearest_deadline_puts_passed_deadlines_last() -> None:
    as_of = np.datetime64("2024-06-01")
    deadlines = pd.DataFrame(
        {
            "appeal_deadline": _dates(
                "2024-06-11", "2024-05-01", "2024-04-01", "2024-06-01", "2024-05-20"
            ),
            "filing_deadline": _dates(
                "2024-12-01", "2024-06-04", "2024-05-15", "2024-09-01", "2024-03-01"
            ),
        }
    )
    scores = nearest_deadline_scores(deadlines, as_of)
    # Row 3 is due today; row 1's appeal window closed but a corrected claim is due in 3 days;
    # row 0 has 10 days; rows 2 and 4 are out of time and keep their order at the bottom.
    assert work_order(scores).tolist() == [3, 1, 0, 2, 4]
    assert scores[2] == scores[4] < scores[[0, 1, 3]].min()


def test_baseline_rankings_on_payer_rule_deadlines() -> None:
    frame = pd.DataFrame(
        {
            "payer_id": ["P1", "P2", "P3"],
            "payer_type": ["commercial", "medicare", "commercial"],
            "service_date": _dates("2024-01-02", "2023-01-02", "2024-03-01"),
            "denial_date": _dates("2024-02-01", "2023-03-01", "2024-04-01"),
            "denied_amount": [250.0, 90.0, 1200.0],
        }
    )
    deadlines = load_payer_rules().deadline_frame(frame)
    as_of = pd.Series(pd.to_datetime(["2024-05-01"] * 3), index=[7, 8, 9])  # index ignored
    rankings = baseline_rankings(frame, deadlines, as_of)
    assert tuple(rankings) == BASELINE_NAMES
    assert work_order(rankings["oldest_first"]).tolist() == [1, 0, 2]
    assert work_order(rankings["largest_amount_first"]).tolist() == [2, 0, 1]
    # Commercial: row 2 must be refiled within 29 days (filing, 90 days from service); row 0's
    # filing limit has passed but its appeal window has 90 days left. The 2023 Medicare denial
    # is past both its appeal and filing deadlines: worked last.
    assert work_order(rankings["nearest_deadline_first"]).tolist() == [2, 0, 1]
    assert all(scores.shape == (3,) for scores in rankings.values())


# ---------------------------------------------------------------------------- hours capacity


def test_hours_capacity_works_in_order_until_the_hours_run_out() -> None:
    from training.metrics import hours_capacity_capture

    # 10 hours in all: 20% is 2 hours. Largest first works the 1.5 h $600 appeal and stops
    # (the next, 1 h, does not fit); by dollars per hour, three 0.3 h corrections and a 0.5 h.
    dollars = np.array([600.0, 400.0, 300.0, 300.0, 300.0, 250.0, 0.0])
    hours = np.array([1.5, 1.0, 0.3, 0.3, 0.3, 0.5, 6.1])
    largest = hours_capacity_capture(dollars, dollars, hours, shares=(0.2,))
    per_hour = hours_capacity_capture(dollars / hours, dollars, hours, shares=(0.2,))
    assert largest == {"top_20%": 600.0}
    assert per_hour == {"top_20%": 300.0 * 3 + 250.0}  # 0.9 h + 0.5 h; the next does not fit
    with pytest.raises(ValueError, match="effort_hours must be finite and above 0"):
        hours_capacity_capture(dollars, dollars, np.zeros(7))


def test_the_hours_report_ranks_against_the_per_hour_oracle() -> None:
    from training import intervals
    from training.metrics import hours_ranking_report

    dollars = np.array([600.0, 400.0, 300.0, 300.0, 300.0, 250.0, 0.0])
    hours = np.array([1.5, 1.0, 0.3, 0.3, 0.3, 0.5, 6.1])
    report = hours_ranking_report({"largest": dollars}, dollars, hours, shares=(0.2, 0.3))
    assert report["total_hours"] == pytest.approx(10.0)
    assert report["hours_worked"] == {"top_20%": pytest.approx(2.0), "top_30%": pytest.approx(3.0)}
    oracle = report["rankings"]["oracle"]
    assert oracle["top_20%"]["dollars_captured"] == 1150.0
    assert report["rankings"]["largest"]["top_20%"]["share_of_oracle"] == pytest.approx(600 / 1150)
    # The bootstrap statistic counts the same way as the report.
    share = intervals.share_of_oracle_in_hours(0.2)(dollars, hours, dollars)
    assert float(share) == pytest.approx(600 / 1150)
