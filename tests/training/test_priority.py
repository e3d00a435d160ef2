"""The priority score: dollars net of work, weighted by deadline urgency."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.priority import PASSED_DEADLINE_URGENCY, WORK_COST, deadline_urgency, priority_parts


def parts(
    days_left: list[int],
    probability: float = 0.6,
    amount: float = 1_000.0,
    path: str = "authorization_evidence",
):
    as_of = np.datetime64("2026-01-01")
    deadlines = pd.DataFrame(
        {
            "appeal_deadline": [as_of + np.timedelta64(d, "D") for d in days_left],
            "appeal_rule": "commercial.appeal",
            "filing_deadline": [as_of + np.timedelta64(400, "D")] * len(days_left),
            "filing_rule": "commercial.timely_filing",
        }
    )
    n = len(days_left)
    return priority_parts(
        recovery_probability=np.full(n, probability),
        expected_recovered_share=np.full(n, 0.9),
        denied_amount=np.full(n, amount),
        action_path=np.array([path] * n),
        deadlines=deadlines,
        as_of=np.array([as_of] * n),
    )


def test_same_denial_with_a_closer_deadline_ranks_higher() -> None:
    result = parts([90, 30, 5, 0])
    assert np.all(np.diff(result.urgency) > 0)
    assert np.all(np.diff(result.priority_score) > 0)
    assert list(result.days_to_deadline) == [90, 30, 5, 0]
    assert set(result.deadline_rule) == {"commercial.appeal"}


def test_priority_is_expected_dollars_net_of_the_cost_to_work() -> None:
    result = parts([10_000])
    cost = WORK_COST["authorization_evidence"][0]
    assert result.expected_recovered_dollars[0] == 540.0
    assert result.cost_to_work[0] == cost
    assert result.priority_score[0] == np.round((540.0 - cost) * result.urgency[0], 4)


def test_a_passed_deadline_drops_urgency_and_losses_are_not_amplified() -> None:
    assert deadline_urgency(np.array([-1.0]))[0] == PASSED_DEADLINE_URGENCY
    losing = parts([3, 60], probability=0.01, amount=100.0)
    assert np.all(losing.priority_score < 0)
    assert losing.priority_score[0] == losing.priority_score[1]  # urgency ignored when losing


def test_corrections_follow_the_filing_deadline_appeals_the_appeal_window() -> None:
    correction = parts([10], path="corrected_claim_resubmission")
    appeal = parts([10], path="documentation_review")
    assert (
        correction.days_to_deadline[0] == 400
        and correction.deadline_rule[0] == "commercial.timely_filing"
    )
    assert appeal.days_to_deadline[0] == 10
