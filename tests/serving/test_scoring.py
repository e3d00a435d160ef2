"""The scoring path shared by the API and batch scoring: same answers whichever way rows come."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from features.contract import clean_records, validate
from serving.scoring import TASKS, canary_check, score_denials
from training.tracking import example_payload
from training.triage_model import TriageModel


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
