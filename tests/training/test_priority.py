"""The priority score: expected net dollars per effort hour, raised by the chance of losing
them by waiting; past every deadline, write-off review."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.mapping import WRITE_OFF_REVIEW
from training.priority import (
    URGENCY_WEIGHT,
    WORK_COST,
    priority_on,
    priority_parts,
    waiting_loss_chance,
)

AS_OF = np.datetime64("2026-01-01")


def parts(
    appeal_days: list[int],
    *,
    probability: float | list[float] = 0.6,
    amount: float | list[float] = 1_000.0,
    path: str | list[str] = "authorization_evidence",
    filing_days: int | list[int] = 400,
    horizon: int = 30,
):
    n = len(appeal_days)
    filing = filing_days if isinstance(filing_days, list) else [filing_days] * n
    deadlines = pd.DataFrame(
        {
            "appeal_deadline": [AS_OF + np.timedelta64(d, "D") for d in appeal_days],
            "appeal_rule": "commercial.appeal",
            "filing_deadline": [AS_OF + np.timedelta64(d, "D") for d in filing],
            "filing_rule": "commercial.timely_filing",
        }
    )
    return priority_parts(
        recovery_probability=np.broadcast_to(np.asarray(probability, dtype=float), (n,)),
        expected_recovered_share=np.full(n, 0.9),
        denied_amount=np.broadcast_to(np.asarray(amount, dtype=float), (n,)),
        action_path=np.array(path if isinstance(path, list) else [path] * n, dtype=object),
        deadlines=deadlines,
        backlog_horizon_days=np.full(n, horizon),
        as_of=np.array([AS_OF] * n),
    )


def test_priority_is_expected_net_dollars_per_effort_hour() -> None:
    result = parts([10_000], filing_days=10_000)
    cost, hours = WORK_COST["authorization_evidence"]
    assert result.expected_recovered_dollars[0] == 540.0  # 0.6 x 0.9 x $1,000
    assert result.expected_net_dollars[0] == 540.0 - cost
    assert result.effort_hours[0] == hours
    assert result.urgency[0] == 0.0  # no deadline within the horizon
    assert result.priority_score[0] == round((540.0 - cost) / hours, 4)


def test_a_quick_correction_outranks_a_slow_appeal_worth_more_in_all() -> None:
    # $600 expected either way: the correction takes 0.3 h, the documentation appeal 1.5 h.
    result = parts(
        [10_000, 10_000],
        probability=[1 / 0.9 * 0.6, 1 / 0.9 * 0.6],
        path=["corrected_claim_resubmission", "documentation_review"],
        filing_days=10_000,
    )
    net = result.expected_net_dollars
    assert net[1] < net[0] and result.priority_score[0] > 3 * result.priority_score[1]
    # ... while a team counting denials, not hours, would have seen them close together.
    assert net[0] / net[1] < 1.25


def test_urgency_is_the_chance_of_missing_the_deadline_inside_the_horizon_only() -> None:
    result = parts([90, 31, 30, 15, 3, 0], filing_days=10)  # appeal path: appeal deadline
    assert list(result.days_to_deadline) == [90, 31, 30, 15, 3, 0]
    assert list(result.urgency) == [0.0, 0.0, 0.0, 0.5, 0.9, 1.0]
    base = result.expected_net_dollars[0] / result.effort_hours[0]
    assert result.priority_score[0] == round(base, 4)
    assert result.priority_score[-1] == round(base * (1 + URGENCY_WEIGHT), 4)
    assert np.all(np.diff(result.priority_score) >= 0)


def test_a_longer_backlog_makes_the_same_deadline_urgent() -> None:
    assert parts([40], horizon=30).urgency[0] == 0.0
    assert parts([40], horizon=60).urgency[0] == round(1 - 40 / 60, 4)


def test_losses_are_not_weighted_by_urgency() -> None:
    losing = parts([3, 60], probability=0.01, amount=100.0)
    assert np.all(losing.expected_net_dollars < 0)
    assert losing.priority_score[0] == losing.priority_score[1]


def test_a_passed_governing_deadline_is_not_penalised_again_by_urgency() -> None:
    # Appeal window closed 5 days ago, timely filing open for 20 more: still workable by a
    # corrected claim, urgent by that deadline; the model's probability prices the lateness.
    result = parts([-5], filing_days=20)
    assert result.workable[0] and result.days_to_deadline[0] == -5
    assert result.urgency[0] == round(1 - 20 / 30, 4)
    assert result.priority_score[0] > result.expected_net_dollars[0] / result.effort_hours[0]


def test_denials_past_every_deadline_go_to_write_off_review_below_any_workable_one() -> None:
    result = parts(
        [-5, 20, 200],
        probability=[0.9, 0.01, 0.6],
        amount=[50_000.0, 10.0, 500.0],
        filing_days=[-1, 400, 400],
    )
    assert list(result.workable) == [False, True, True]
    review_cost, review_hours = WORK_COST[WRITE_OFF_REVIEW]
    assert result.cost_to_work[0] == review_cost and result.effort_hours[0] == review_hours
    assert result.urgency[0] == 0.0
    assert result.priority_score[0] == -review_cost / review_hours
    assert result.priority_score[0] < result.priority_score[1] < 0 < result.priority_score[2]
    assert result.last_deadline[0] == AS_OF + np.timedelta64(-1, "D")


def test_corrections_follow_the_filing_deadline_appeals_the_appeal_window() -> None:
    correction = parts([10], path="corrected_claim_resubmission")
    appeal = parts([10], path="documentation_review")
    assert correction.days_to_deadline[0] == 400
    assert correction.deadline_rule[0] == "commercial.timely_filing"
    assert appeal.days_to_deadline[0] == 10 and appeal.deadline_rule[0] == "commercial.appeal"


def test_priority_on_another_day_recounts_days_urgency_and_workability() -> None:
    scored = parts([45], filing_days=50)
    later = {"today": AS_OF + np.timedelta64(30, "D")}
    stored = {
        "expected_net_dollars": scored.expected_net_dollars,
        "effort_hours": scored.effort_hours,
        "deadline": scored.deadline,
        "last_deadline": scored.last_deadline,
        "backlog_horizon_days": scored.backlog_horizon_days,
    }
    same_day = priority_on(**stored, today=AS_OF)
    assert same_day.priority_score[0] == scored.priority_score[0]
    month_later = priority_on(**stored, **later)
    assert month_later.days_to_deadline[0] == 15 and month_later.urgency[0] == 0.5
    assert month_later.priority_score[0] > scored.priority_score[0]
    gone = priority_on(**stored, today=AS_OF + np.timedelta64(51, "D"))
    assert not gone.workable[0] and gone.priority_score[0] < 0


def test_waiting_loss_chance_is_linear_inside_the_horizon() -> None:
    chance = waiting_loss_chance(np.array([-3.0, 0.0, 10.0, 20.0, 45.0]), np.full(5, 20.0))
    assert list(chance) == [0.0, 1.0, 0.5, 0.0, 0.0]
