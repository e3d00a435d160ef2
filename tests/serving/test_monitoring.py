"""Model monitoring: the metrics on hand-computable totals, the SQL over the records on SQLite
and PostgreSQL, and the retrain recommendation on a calibration shift injected into outcomes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sqlalchemy.orm import Session

from serving import monitoring
from serving.monitoring import Thresholds
from serving.repository import audit_record, record_scores, save_feedback
from training import drift

pytest_plugins = ["database_fixtures"]

# Five recovery probabilities, 100 resolved denials each: 500 in the month, over the minimum.
PROBABILITIES = (0.15, 0.35, 0.55, 0.75, 0.95)
PER_PROBABILITY = 100
MONTH = "2026-03"
# A later denial (no outcome yet) whose date puts March's last day 180 days back: March has
# matured, so its figures are judged (Thresholds().maturity_days is 180).
MARCH_MATURED = dt.date(2026, 9, 27)


# ---------------------------------------------------------------------------- metrics


def test_ece_is_the_row_weighted_gap_between_predicted_and_observed() -> None:
    # Bin 1: two denials predicted 0.2 each, one recovered: |0.4 - 1| = 0.6.
    # Bin 2: two predicted 0.8 each, both recovered: |1.6 - 2| = 0.4. (0.6 + 0.4) / 4 rows.
    ece = monitoring.expected_calibration_error([2, 2], [0.4, 1.6], [1, 2])
    assert ece == pytest.approx(0.25)
    assert monitoring.expected_calibration_error([0, 0], [0.0, 0.0], [0, 0]) is None


def test_grouped_auc_counts_pairs_inside_a_group_as_half() -> None:
    # Groups in ascending score: a written-off denial; one of each; a recovered one.
    auc = monitoring.grouped_roc_auc(positives=[0, 1, 1], negatives=[1, 1, 0])
    assert auc == pytest.approx(3.5 / 4)
    assert auc == pytest.approx(roc_auc_score([0, 1, 0, 1], [0, 1, 1, 2]))
    assert monitoring.grouped_roc_auc([3, 2], [0, 0]) is None  # nothing was written off


def test_psi_of_hand_computed_shares() -> None:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    expected = -0.25 * np.log(0.5) + 0.25 * np.log(1.5)
    assert drift.population_stability([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert drift.population_stability([0.3, 0.7], [0.3, 0.7]) == 0.0
    # An empty recent bin weighs as a rare one, not as infinity.
    assert np.isfinite(drift.population_stability([0.5, 0.5], [0.0, 1.0]))


def test_numeric_shares_put_a_value_on_an_edge_above_it_and_count_missing_last() -> None:
    shares = drift.numeric_shares(np.array([1.0, 2.0, 2.0, 5.0, np.nan]), [2.0, 4.0])
    assert shares == pytest.approx([0.2, 0.4, 0.2, 0.2])


def test_drift_finds_the_feature_that_moved_and_leaves_the_steady_one() -> None:
    rng = np.random.default_rng(3)
    training = _denials(rng, 4000, medicare_share=0.2)
    reference = drift.build_reference(training, _scores(rng, 4000))
    recent = _denials(rng, 2000, medicare_share=0.7)
    report = monitoring.drift_report(reference, recent, _scores(rng, 2000), ("a", "b"))
    top = report.top(1)[0]
    assert top.name == "payer_type" and top.psi > 0.25
    assert top.bins[: len(top.recent_shares)] == top.bins
    steady = {item.name: item.psi for item in report.items}
    assert steady["log_denied_amount"] < 0.02 and steady["recovery_probability"] < 0.02


def test_too_few_recent_denials_measure_no_drift() -> None:
    rng = np.random.default_rng(3)
    reference = drift.build_reference(_denials(rng, 4000, medicare_share=0.2), _scores(rng, 4000))
    recent = _denials(rng, 5, medicare_share=0.2)
    report = monitoring.drift_report(reference, recent, _scores(rng, 5), ("a", "b"), 100)
    assert report.items == []
    assert report.note == "only 5 recent denials; drift is measured from 100"
    thresholds = Thresholds()
    assert monitoring.retrain_reasons([], report, thresholds) == []


def test_a_model_without_a_reference_shows_no_reference() -> None:
    report = monitoring.drift_report(None, pd.DataFrame(), pd.DataFrame(), None)
    assert report.note is not None and report.note.startswith("no reference")
    assert report.items == []


def _denials(rng: np.random.Generator, rows: int, medicare_share: float) -> pd.DataFrame:
    payer_type = np.where(rng.random(rows) < medicare_share, "medicare", "commercial")
    return pd.DataFrame(
        {
            "payer_type": payer_type,
            "claim_type": "professional",
            "procedure_code": rng.choice(["99213", "97110", "J1100"], rows),
            "carc_codes": [["CO-197"] if r < 0.5 else ["CO-16", "N-1"] for r in rng.random(rows)],
            "denied_amount": rng.lognormal(5, 1, rows),
            "billed_amount": rng.lognormal(6, 1, rows),
        }
    )


def _scores(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    return pd.DataFrame({"recovery_probability": rng.uniform(0.1, 0.9, rows)})


# ---------------------------------------------------------------------------- records


def _score_and_resolve(
    session: Session,
    *,
    recovered_share_of_predicted: float,
    payer_type: str = "commercial",
    newest_denial: dt.date | None = MARCH_MATURED,
) -> pd.DataFrame:
    """500 resolved denials of March 2026: at each probability, exactly that share of them
    times ``recovered_share_of_predicted`` recovered $100; the rest written off. And, unless
    None, one denial of ``newest_denial``, scored and still open: the newest in the records."""
    rows = []
    for step, probability in enumerate(PROBABILITIES):
        recovered = round(probability * PER_PROBABILITY * recovered_share_of_predicted)
        for i in range(PER_PROBABILITY):
            denial_id = f"{payer_type}-{step}-{i}"
            priority = probability * 100 + i / 1000  # distinct, in probability order
            rows.append((denial_id, probability, priority, 100.0 if i < recovered else 0.0))
    frame = pd.DataFrame(rows, columns=["denial_id", "probability", "priority", "recovered"])
    record_scores(session, [_record(row, payer_type) for row in frame.itertuples()])
    if newest_denial is not None:
        newest = pd.Series({"denial_id": "newest", "probability": 0.5, "priority": 1.0})
        record_scores(session, [_record(newest, payer_type, newest_denial)])
    for row in frame.itertuples():
        outcome = {
            "denial_id": row.denial_id,
            "resolution": "overturned_on_appeal" if row.recovered else "written_off",
            "recovered_amount": row.recovered,
            "resolved_date": "2026-05-01",
        }
        save_feedback(session, f"outcome-{row.denial_id}", outcome, "link-outcomes")
    return frame


def _record(
    row: Any, payer_type: str, denial_date: dt.date = dt.date(2026, 3, 10)
) -> dict[str, Any]:
    denial = {
        "denial_id": row.denial_id,
        "payer_id": "P1",
        "payer_type": payer_type,
        "denied_amount": 100.0,
        "carc_codes": ["CO-197"],
        "denial_date": denial_date,
    }
    outputs = {
        "root_cause": {"category": "coding", "probability": 0.7},
        "recovery": {"probability": row.probability, "expected_recovered_dollars": 10.0},
        "priority": {"score": row.priority, "deadline": "2026-06-01"},
        "routing": {"owner_queue": "coding", "action_path": "correct_and_resubmit"},
        "requires_human_review": False,
    }
    return audit_record(
        request_id="r",
        denial=denial,
        caller="worklist",
        model_version="1",
        mapping_version="m",
        outputs=outputs,
        explanation={},
        scored_at=dt.datetime(2026, 3, 11, tzinfo=dt.UTC),
    )


def _monitor(session: Session) -> monitoring.ModelMonitoring:
    return monitoring.monitor_models(
        session, report=None, version=None, reference=None, thresholds=Thresholds()
    )


def _segment(result: monitoring.ModelMonitoring, payer_type: str) -> monitoring.Segment:
    (found,) = [s for s in result.segments if (s.month, s.payer_type) == (MONTH, payer_type)]
    return found


def test_steady_outcomes_raise_no_recommendation(session: Session) -> None:
    frame = _score_and_resolve(session, recovered_share_of_predicted=1.0)
    result = _monitor(session)
    commercial = _segment(result, "commercial")
    assert (commercial.resolved, commercial.recovered) == (500, 275)
    assert commercial.ece == pytest.approx(0.0, abs=1e-9)
    truth = frame["recovered"] > 0
    assert commercial.roc_auc == pytest.approx(roc_auc_score(truth, frame["probability"]))
    # The top tenth by priority: the 50 highest-priority denials, all at 0.95, 95 recovered
    # of that probability's 100, the first 95 by position; the top 50 by priority are the last.
    top = frame.nlargest(50, "priority")["recovered"].sum()
    assert commercial.top_decile_dollars == pytest.approx(top)
    assert commercial.top_decile_share == pytest.approx(top / frame["recovered"].sum())
    assert not result.retrain and result.reasons == []
    assert result.drift.note is not None and result.drift.note.startswith("no reference")


def test_a_calibration_shift_in_outcomes_recommends_retraining(session: Session) -> None:
    _score_and_resolve(session, recovered_share_of_predicted=0.4)
    result = _monitor(session)
    commercial = _segment(result, "commercial")
    # At every probability p only 0.4 p recovered: the gap is 0.6 p, averaged over the bins.
    assert commercial.ece == pytest.approx(0.6 * np.mean(PROBABILITIES), abs=0.005)
    assert result.retrain
    ece_reasons = [r for r in result.reasons if r.metric == "ece"]
    assert {(r.month, r.payer_type) for r in ece_reasons} == {
        (MONTH, "commercial"),
        (MONTH, monitoring.ALL_PAYER_TYPES),
    }
    reason = next(r for r in ece_reasons if r.payer_type == "commercial")
    assert reason.threshold == Thresholds().max_ece
    assert reason.text.startswith("ece 0.33") and "(2026-03, commercial)" in reason.text


@pytest.mark.parametrize(
    ("newest_denial", "maturing"),
    [(MARCH_MATURED, False), (MARCH_MATURED - dt.timedelta(days=1), True)],
)
def test_a_month_is_judged_once_its_denials_have_had_the_maturity_span(
    session: Session, newest_denial: dt.date, maturing: bool
) -> None:
    # Outcomes come back quickest for the recoveries: a young month's resolved denials
    # recovered more often than its probabilities say, without the model being off.
    _score_and_resolve(session, recovered_share_of_predicted=0.4, newest_denial=newest_denial)
    result = _monitor(session)
    commercial = _segment(result, "commercial")
    assert commercial.maturing is maturing
    assert commercial.ece == pytest.approx(0.6 * np.mean(PROBABILITIES), abs=0.005)  # shown
    judged = {r.metric for r in result.reasons if r.month == MONTH}
    assert judged == (set() if maturing else {"ece"})
    assert result.matured_by == (newest_denial - dt.timedelta(days=180)).isoformat()
    table = "\n".join(monitoring.summary_lines(result))
    assert ("maturing" in table) is maturing


def test_a_segment_with_too_few_outcomes_is_not_judged(session: Session) -> None:
    _score_and_resolve(session, recovered_share_of_predicted=0.4)
    result = monitoring.monitor_models(
        session, report=None, version=None, reference=None, thresholds=Thresholds(min_outcomes=501)
    )
    assert result.reasons == []


def test_root_cause_accuracy_reads_each_denial_s_latest_review(session: Session) -> None:
    _score_and_resolve(session, recovered_share_of_predicted=1.0)
    reviews = {
        "commercial-0-0": {"confirmed_root_cause": True},
        "commercial-0-1": {"corrected_root_cause": "eligibility_registration"},
        "commercial-0-2": {"corrected_root_cause": "coding"},  # "corrected" to the same cause
        "commercial-0-3": {"corrected_root_cause": "eligibility_registration"},
    }
    for denial_id, review in reviews.items():
        save_feedback(session, f"review-{denial_id}", {"denial_id": denial_id, **review}, "ann")
    # A later confirmation replaces the earlier correction of commercial-0-3.
    later = {"denial_id": "commercial-0-3", "confirmed_root_cause": True}
    save_feedback(session, "review-again", later, "ann")
    commercial = _segment(_monitor(session), "commercial")
    assert commercial.reviewed == 4
    assert commercial.root_cause_accuracy == pytest.approx(3 / 4)


def test_since_leaves_earlier_denials_out(session: Session) -> None:
    _score_and_resolve(session, recovered_share_of_predicted=0.4)
    result = monitoring.monitor_models(
        session,
        report=None,
        version=None,
        reference=None,
        thresholds=Thresholds(),
        since=dt.date(2026, 4, 1),
    )
    assert result.segments == [] and result.reasons == []


def test_training_figures_come_from_the_evaluation_report() -> None:
    report = {
        "recovery": {
            "roc_auc": 0.73,
            "expected_calibration_error": 0.03,
            "reliability": [
                {"lower": 0.0, "upper": 0.1, "count": 5, "mean_predicted": 0.05},
            ],
        },
        "root_cause": {"accuracy": 0.81},
        "prioritization": {
            "total_recovered_dollars": 1000.0,
            "rankings": {"priority_score": {"top_10%": {"dollars_captured": 250.0}}},
        },
        "model": {"window.first_denial": "2025-01-01", "seed": 7},
    }
    figures = monitoring.training_figures(report, "3")
    assert (figures.roc_auc, figures.ece, figures.root_cause_accuracy) == (0.73, 0.03, 0.81)
    assert figures.top_decile_share == pytest.approx(0.25)
    assert figures.reliability[0].observed_rate is None
    assert figures.window == {"window.first_denial": "2025-01-01"}


def test_drift_reads_the_recent_denials_facts_and_scores(session: Session) -> None:
    _score_and_resolve(session, recovered_share_of_predicted=1.0, newest_denial=None)
    window = monitoring.recent_window(session, None, recent_days=30)
    assert window == ("2026-02-09", "2026-03-10")  # 30 days ending with the newest denial
    facts, scores = monitoring.recent_denials(session, window, limit=120)
    assert len(facts) == len(scores) == 120
    assert set(facts["payer_type"]) == {"commercial"}
    assert facts["carc_codes"].tolist() == [["CO-197"]] * 120
    assert facts["denied_amount"].tolist() == [100.0] * 120
    assert set(scores["recovery_probability"]) <= set(PROBABILITIES)
