"""The scoring path shared by the API and batch scoring: same answers whichever way rows come."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import replace

import pandas as pd
import pytest
import time_machine

from features.contract import clean_records, validate
from serving.schemas import DenialScore
from serving.scoring import TASKS, canary_check, score_denials
from training.tracking import example_payload
from training.triage_model import NO_PREVENTABLE_MODEL, NO_ROOT_CAUSE_MODEL, TriageModel


@pytest.fixture(scope="module")
def denials(split_history: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return split_history[1].sample(2_000, random_state=8).reset_index(drop=True)


def service_rows(frame: pd.DataFrame) -> list[dict]:
    rows = clean_records(json.loads(example_payload(frame).to_json(orient="records")))
    assert rows is not None
    return rows


def test_rows_from_a_request_score_as_the_same_rows_from_a_file(
    triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    from_file = score_denials(triage_model, validate(denials).frame)
    from_request = score_denials(triage_model, service_rows(denials))
    # One scored result per denial, in order, each with every task's explanation: two empty
    # or explanation-less answers would compare equal too.
    assert [result["denial_id"] for result in from_file] == list(denials["denial_id"])
    assert all(result[task]["explanation"] is not None for result in from_file for task in TASKS)
    assert from_request == from_file


@pytest.mark.parametrize("rows", [1, 3, 300])
def test_every_reason_list_adds_up_to_its_score(
    triage_model: TriageModel, denials: pd.DataFrame, rows: int
) -> None:
    for result in score_denials(triage_model, service_rows(denials.head(rows)), top=4):
        for task in TASKS:
            explanation = result[task]["explanation"]
            total = explanation["base_value"] + explanation["rest"]
            total += sum(reason["contribution"] for reason in explanation["reasons"])
            assert math.isclose(total, explanation["output"], rel_tol=0, abs_tol=1e-9)
            assert len(explanation["reasons"]) <= 4
        p = result["recovery"]["probability"]
        assert math.isclose(
            result["recovery"]["explanation"]["output"], math.log(p / (1 - p)), abs_tol=1e-9
        )


@pytest.mark.parametrize("task", TASKS)
def test_reasons_in_points_add_up_to_the_displayed_probability(
    triage_model: TriageModel, denials: pd.DataFrame, task: str
) -> None:
    results = score_denials(triage_model, service_rows(denials.head(300)), top=4)
    gaps = []
    for result in results:
        explanation, displayed = result[task]["explanation"], result[task]["probability"]
        # The points explain the very probability shown: for the root cause, the predicted
        # class's softmax probability, not its raw score.
        assert explanation["probability"] == pytest.approx(displayed, abs=1e-9)
        pushes = [reason["probability_points"] for reason in explanation["reasons"]]
        total = sum(pushes) + explanation["rest_probability_points"]
        gaps.append(total - 100 * (displayed - explanation["base_probability"]))
        for reason, push in zip(explanation["reasons"], pushes, strict=True):
            assert (push > 0) == (reason["contribution"] > 0)  # same direction as its SHAP value
            assert f"{abs(push):.1f} points" in reason["text"]
    assert max(abs(gap) for gap in gaps) < 0.05
    # Real pushes, not zeros: the listed reasons move the probability by points.
    assert (
        max(
            abs(r["probability_points"]) for x in results for r in x[task]["explanation"]["reasons"]
        )
        > 1
    )


def test_reasons_cite_the_denied_and_billed_amounts_to_the_cent(
    triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    rows = service_rows(denials.head(200))
    for row in rows:  # amounts with cents the encoded logarithm would round off
        row["billed_amount"] = round(row["billed_amount"] + 0.37, 2)
        row["denied_amount"] = round(min(row["denied_amount"] + 0.37, row["billed_amount"]), 2)
    cited = [
        (reason["feature"], reason["value"], row)
        for row, result in zip(rows, score_denials(triage_model, rows, top=60), strict=True)
        for task in TASKS
        for reason in result[task]["explanation"]["reasons"]
        if reason["feature"] in {"log_billed_amount", "log_denied_amount"}
    ]
    assert cited
    for feature, value, row in cited:
        amount = row[feature.removeprefix("log_")]
        assert value == f"${amount:,.2f}"


def test_scores_without_explanations_are_the_same_scores(
    triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    rows = service_rows(denials.head(50))
    plain = score_denials(triage_model, rows, explain=False)
    explained = score_denials(triage_model, rows)
    for without, with_reasons in zip(plain, explained, strict=True):
        assert all(without[task]["explanation"] is None for task in TASKS)
        for task in TASKS:
            with_reasons[task] = {**with_reasons[task], "explanation": None}
        assert without == with_reasons


def test_the_canary_passes_a_sound_model(triage_model: TriageModel) -> None:
    canary_check(triage_model)


def test_live_scoring_reads_the_clock_only_for_denials_without_as_of_date(
    triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    rows = denials.head(40).copy()
    rows.loc[::2, "as_of_date"] = pd.NaT
    with time_machine.travel(dt.datetime(2031, 3, 1, 12), tick=False):
        results = score_denials(triage_model, service_rows(rows), explain=False)
    as_of = rows["as_of_date"].fillna(pd.Timestamp("2031-03-01"))
    deadlines = pd.to_datetime([r["priority"]["deadline"] for r in results])
    expected = (deadlines - pd.DatetimeIndex(as_of)).days.tolist()
    assert [r["priority"]["days_to_deadline"] for r in results] == expected


def test_a_model_trained_without_root_cause_or_preventable_labels_serves_from_the_mapping(
    triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    """Routing from the governed mapping, probabilities null, and a person asked to review."""
    recovery_only = replace(
        triage_model, root_cause_model=None, preventable_model=None, preventable_calibration=None
    )
    canary_check(recovery_only)
    results = score_denials(recovery_only, service_rows(denials.head(30)))
    full = score_denials(triage_model, service_rows(denials.head(30)))
    for result, with_models in zip(results, full, strict=True):
        DenialScore.model_validate(result)
        assert result["root_cause"]["category"] == result["root_cause"]["mapped_by_codes"]
        assert result["root_cause"]["probability"] is None
        assert result["root_cause"]["probabilities"] == {}
        assert result["root_cause"]["explanation"] is None
        assert result["preventable"]["probability"] is None
        assert result["preventable"]["explanation"] is None
        assert result["requires_human_review"]
        assert NO_ROOT_CAUSE_MODEL in result["review_reasons"]
        assert NO_PREVENTABLE_MODEL in result["review_reasons"]
        # Routed by the codes alone: what the full model's codes' view says.
        routing = result["routing"]
        assert routing["basis"] == "codes"
        assert routing["by_codes"] == with_models["routing"]["by_codes"]
        assert {k: routing["by_codes"][k] for k in ("action_path", "owner_queue")} == {
            k: routing[k] for k in ("action_path", "owner_queue")
        }
        assert result["recovery"] == with_models["recovery"]
