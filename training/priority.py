"""The priority score: expected net dollars per hour of work, raised by the chance of losing
them by waiting.

One formula for training evaluation, batch scoring, the API and the daily plan:

    expected_recovered_dollars = recovery_probability * expected_recovered_share * denied_amount
    expected_net_dollars = expected_recovered_dollars - cost_to_work
    urgency = chance the value is lost by waiting (see :func:`waiting_loss_chance`)
    priority_score = expected_net_dollars / effort_hours * (1 + URGENCY_WEIGHT * urgency)
                     (a loss, expected_net_dollars <= 0, is never weighted by urgency)

Teams have hours, not a count of denials: ranking by dollars per effort hour puts in front of a
team the most money its hours can bring back (on the main job's history it captured more at 20%
of hours than largest-amount-first and than expected dollars alone; README, "Priority").

**Urgency is about the future only.** A queue reaches a denial put back in its backlog some time
within its backlog horizon (``backlog_horizon_days``, per owner queue in the governed mapping);
taking that time as uniform over the horizon, a deadline ``d`` days away is missed with chance
``1 - d / horizon`` (0 beyond the horizon, 1 on the day). What the deadline already did is the
recovery model's to price: it sees days to the appeal and filing deadlines as features, so a
passed or near deadline lowers ``recovery_probability`` and the expected dollars. Urgency no
longer down-weights a passed deadline (it did, 0.2x, on top of the model: the same fact twice).

**Past every deadline.** When both the appeal window and timely filing have closed, the denial
cannot be worked: it leaves the workable list for write-off review (``WRITE_OFF_REVIEW``, its own
action path and owner queue), whose work recovers nothing and costs the review, so it ranks below
every denial that can still be worked. A denial whose governing deadline passed while the other
is open is still workable by the other route (a corrected claim after the appeal window closed),
and that other deadline is the one urgency counts.

Scores keep what a later read needs to recompute all of this for another day without the model
(:func:`priority_on`): the governing and last deadlines, the expected net dollars, the effort
hours and the backlog horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Where a denial past every deadline goes: an action path and owner queue of their own.
from features.mapping import WRITE_OFF_REVIEW

# Cost and effort of working a denial, by action path. Cost: ~$25 per claim for practices
# (MGMA), $43.84 (2022) and $57.23 (2023) per claim (Premier), $118 for hospitals (Change
# Healthcare 2017); clinical documentation appeals sit at the top. Hours are assumptions.
WORK_COST = {
    "eligibility_correction": (25.0, 0.3),
    "corrected_claim_resubmission": (25.0, 0.3),
    "coding_review": (44.0, 0.6),
    "authorization_evidence": (57.0, 0.8),
    "payer_escalation": (57.0, 1.0),
    "documentation_review": (118.0, 1.5),
    "write_off_approval": (10.0, 0.1),
    "patient_billing": (10.0, 0.1),
    WRITE_OFF_REVIEW: (10.0, 0.1),
}
# Which deadline governs the work: a corrected claim must be refiled within timely filing;
# an appeal must be lodged within the appeal window.
REFILE_PATHS = frozenset(
    {"eligibility_correction", "corrected_claim_resubmission", "coding_review"}
)
# How much a sure loss by waiting raises a denial: at most 1.5 times one with no deadline in
# its queue's horizon, as the previous multiplicative urgency did. A history cannot price
# urgency (its outcomes happened whatever the order), so the weight is a policy: the README
# reports dollars captured with it and without it.
URGENCY_WEIGHT = 0.5


@dataclass(frozen=True)
class PriorityParts:
    """Every part of the priority score, so a worklist can show why a denial ranks where it
    does and a later read can recompute it for its own day (:func:`priority_on`)."""

    expected_recovered_dollars: np.ndarray
    cost_to_work: np.ndarray
    effort_hours: np.ndarray
    expected_net_dollars: np.ndarray
    deadline: np.ndarray  # datetime64[D]: the governing deadline of the action path
    deadline_rule: np.ndarray
    last_deadline: np.ndarray  # datetime64[D]: the later of filing and appeal; past it, none
    backlog_horizon_days: np.ndarray
    counted_from: np.ndarray  # datetime64[D]: the as-of date days and urgency count from
    days_to_deadline: np.ndarray  # to the governing deadline, negative once passed
    urgency: np.ndarray
    workable: np.ndarray  # False: past every deadline, for write-off review
    priority_score: np.ndarray

    def as_frame(self, index: pd.Index) -> pd.DataFrame:
        return pd.DataFrame(self.__dict__, index=index)


@dataclass(frozen=True)
class PriorityOn:
    """Priority counted on one day from stored parts: what changes as days pass."""

    days_to_deadline: np.ndarray
    urgency: np.ndarray
    workable: np.ndarray
    priority_score: np.ndarray


def waiting_loss_chance(days_to_deadline: np.ndarray, horizon_days: np.ndarray) -> np.ndarray:
    """The chance a denial left in its queue's backlog is reached after its deadline: the
    queue reaches it uniformly within ``horizon_days``, so ``1 - days / horizon`` inside the
    horizon, 0 beyond it, 1 on the day (a passed deadline is not urgent: see the module)."""
    days = np.asarray(days_to_deadline, dtype=float)
    horizon = np.asarray(horizon_days, dtype=float)
    chance = np.clip(1.0 - days / horizon, 0.0, 1.0)
    return np.where(days < 0, 0.0, chance)


def priority_on(
    *,
    expected_net_dollars: np.ndarray,
    effort_hours: np.ndarray,
    deadline: np.ndarray,
    last_deadline: np.ndarray,
    backlog_horizon_days: np.ndarray,
    today: np.ndarray | np.datetime64,
) -> PriorityOn:
    """Days to the governing deadline, urgency, workability and priority on ``today`` (one
    date, or one per denial): a pure function of stored parts, the one scoring uses with the
    denial's as-of date and a live read uses with today's."""
    today_days = np.asarray(today, dtype="datetime64[D]")
    deadline = np.asarray(deadline, dtype="datetime64[D]")
    last_deadline = np.asarray(last_deadline, dtype="datetime64[D]")
    days_left = (deadline - today_days).astype(float)
    days_to_last = (last_deadline - today_days).astype(float)
    workable = days_to_last >= 0
    # The governing deadline while it is open, else the other route's (the last deadline).
    working_days = np.where(days_left >= 0, days_left, days_to_last)
    urgency = np.where(workable, waiting_loss_chance(working_days, backlog_horizon_days), 0.0)
    net = np.asarray(expected_net_dollars, dtype=float)
    per_hour = net / np.asarray(effort_hours, dtype=float)
    weighted = np.where(net > 0, per_hour * (1.0 + URGENCY_WEIGHT * urgency), per_hour)
    review_cost, review_hours = WORK_COST[WRITE_OFF_REVIEW]
    score = np.where(workable, weighted, -review_cost / review_hours)
    return PriorityOn(days_left, np.round(urgency, 4), workable, np.round(score, 4))


def governing_deadline(
    action_path: np.ndarray, deadlines: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """The deadline (and its rule name) that governs each denial's action path."""
    refile = np.isin(action_path, list(REFILE_PATHS))
    dates = np.where(
        refile,
        deadlines["filing_deadline"].to_numpy("datetime64[D]"),
        deadlines["appeal_deadline"].to_numpy("datetime64[D]"),
    )
    rules = np.where(refile, deadlines["filing_rule"], deadlines["appeal_rule"])
    return dates, rules


def last_deadline(deadlines: pd.DataFrame) -> np.ndarray:
    """The later of the filing and appeal deadlines: once it passes, nothing can be worked."""
    return np.maximum(
        deadlines["filing_deadline"].to_numpy("datetime64[D]"),
        deadlines["appeal_deadline"].to_numpy("datetime64[D]"),
    )


def work_cost(action_path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cost in dollars and effort in hours of working each denial's action path."""
    return tuple(  # type: ignore[return-value]
        np.array([WORK_COST[path][i] for path in action_path], dtype=float) for i in (0, 1)
    )


def priority_parts(
    *,
    recovery_probability: np.ndarray,
    expected_recovered_share: np.ndarray,
    denied_amount: np.ndarray,
    action_path: np.ndarray,
    deadlines: pd.DataFrame,
    backlog_horizon_days: np.ndarray,
    as_of: np.ndarray,
) -> PriorityParts:
    """The priority score and its parts of each denial, counted on its as-of date; a denial
    past every deadline is priced as write-off review (its own path's cost and hours)."""
    expected = np.round(recovery_probability * expected_recovered_share * denied_amount, 2)
    deadline, rule = governing_deadline(action_path, deadlines)
    final = last_deadline(deadlines)
    open_to_work = final >= np.asarray(as_of, dtype="datetime64[D]")
    cost, hours = work_cost(np.where(open_to_work, action_path, WRITE_OFF_REVIEW))
    net = np.round(expected - cost, 2)
    horizon = np.asarray(backlog_horizon_days, dtype=float)
    counted = priority_on(
        expected_net_dollars=net,
        effort_hours=hours,
        deadline=deadline,
        last_deadline=final,
        backlog_horizon_days=horizon,
        today=as_of,
    )
    return PriorityParts(
        expected_recovered_dollars=expected,
        cost_to_work=cost,
        effort_hours=hours,
        expected_net_dollars=net,
        deadline=deadline,
        deadline_rule=rule,
        last_deadline=final,
        backlog_horizon_days=horizon,
        counted_from=np.asarray(as_of, dtype="datetime64[D]"),
        days_to_deadline=counted.days_to_deadline,
        urgency=counted.urgency,
        workable=counted.workable,
        priority_score=counted.priority_score,
    )
