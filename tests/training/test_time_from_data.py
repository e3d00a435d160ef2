"""Time comes from the data: a history trains and explains the same whatever day it is."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pandas as pd
import pytest
import time_machine
from conftest import small_specs

from features.pipeline import live_scoring_date
from serving.reasons import plain_reasons
from training.fit import fit_triage_model
from training.triage_model import TriageModel

pytestmark = pytest.mark.slow  # trains the same history twice under frozen clocks

DEADLINE_FEATURES = ("days_to_appeal_deadline", "days_to_filing_deadline")


@pytest.fixture(scope="module")
def undated(split_history: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small history and its test months without ``as_of_date``, as ingest used to write."""
    train, test = split_history
    sample = train.sample(4_000, random_state=8).reset_index(drop=True)
    return sample.drop(columns="as_of_date"), test.head(300).drop(columns="as_of_date")


def fit_on(day: dt.date, history: pd.DataFrame) -> TriageModel:
    with time_machine.travel(dt.datetime.combine(day, dt.time(12)), tick=False):
        assert live_scoring_date() == day  # the clock really is moved
        return fit_triage_model(history, small_specs(20), seed=3)


def model_dumps(model: TriageModel) -> list[str]:
    boosters = [model.root_cause_model, model.recovery_model, model.recovery_share_model]
    boosters.append(model.preventable_model)
    return [b.booster_.model_to_string() for b in boosters if b is not None]


def test_training_the_same_file_on_two_days_gives_the_same_model(
    undated: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    history, test = undated
    first = fit_on(dt.date(2026, 3, 2), history)
    second = fit_on(dt.date(2029, 11, 20), history)
    assert model_dumps(first) == model_dumps(second)
    assert first.recovery_calibration == second.recovery_calibration
    assert pickle.dumps(first.features) == pickle.dumps(second.features)
    with time_machine.travel(dt.datetime(2030, 1, 1), tick=False):
        pd.testing.assert_frame_equal(first.score(test), second.score(test), check_exact=True)


def test_no_reason_cites_a_deadline_counted_from_the_day_of_training(
    undated: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """A history without as_of_date is seen on its denial dates: every deadline a reason
    cites is counted from the row's own denial date (a refiling deadline may have passed by
    then, a real fact of the row), never from the day training ran."""
    history, test = undated
    model = fit_on(dt.date(2031, 6, 1), history)
    deadlines = model.features.payer_rules_.deadline_frame(test)
    denial = pd.to_datetime(test["denial_date"])
    own_days = {
        "days_to_appeal_deadline": (deadlines["appeal_deadline"] - denial).dt.days.to_numpy(),
        "days_to_filing_deadline": (deadlines["filing_deadline"] - denial).dt.days.to_numpy(),
    }
    cited = [
        (reason["feature"], row, float(reason["value"]))
        for row, explained in enumerate(model.explain(test, top=8))
        for task, explanation in explained.items()
        for reason in plain_reasons(task, explanation)["reasons"]
        if reason["feature"] in DEADLINE_FEATURES
    ]
    assert cited  # deadlines do explain scores; what they cite is the point
    assert all(days == own_days[feature][row] for feature, row, days in cited)
    assert all(days >= 0 for feature, _, days in cited if feature == "days_to_appeal_deadline")
    scores = model.score(test)
    governing = (pd.to_datetime(scores["deadline"]) - denial).dt.days.to_numpy(float)
    np.testing.assert_array_equal(scores["days_to_deadline"].to_numpy(), governing)


def test_live_scoring_counts_deadlines_from_the_day_given(
    undated: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Only live scoring reads a date from outside the row: the day it is scored."""
    history, test = undated
    model = fit_on(dt.date(2031, 6, 1), history)
    rows = test.head(20)
    as_history = model.score(rows)
    later = model.score(rows, today=dt.date(2040, 1, 1))
    deadlines = pd.to_datetime(later["deadline"])
    expected = (deadlines - pd.Timestamp("2040-01-01")).dt.days.to_numpy(float)
    np.testing.assert_array_equal(later["days_to_deadline"].to_numpy(), expected)
    assert (later["days_to_deadline"] < as_history["days_to_deadline"]).all()
