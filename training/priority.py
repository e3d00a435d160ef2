"""The priority score: expected net recovery, weighted by deadline urgency.

One formula for training evaluation, batch scoring and the API:

    expected_recovered_dollars = recovery_probability * expected_recovered_share * denied_amount
    net = expected_recovered_dollars - cost_to_work
    priority_score = net * urgency when net > 0, else net

where ``cost_to_work`` prices the effort of the denial's action path (``effort_hours`` is
reported beside it). A worklist sorted by ``priority_score`` works first what brings back the
most money net of the work, sooner when its deadline is close, and last what costs more to work
than it can return (urgency never makes a losing denial look better or worse). Team capacity
is counted in denials worked, so effort enters as cost rather than as a divisor: dividing by
hours would rank a $40 correction above a $4,000 appeal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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
}
# Which deadline governs the work: a corrected claim must be refiled within timely filing;
# an appeal must be lodged within the appeal window.
REFILE_PATHS = frozenset(
    {"eligibility_correction", "corrected_claim_resubmission", "coding_review"}
)
URGENCY_BOOST = 0.5  # a denial due today weighs 1.5 times one with no deadline pressure
URGENCY_SCALE_DAYS = 30.0
PASSED_DEADLINE_URGENCY = 0.2  # still workable only by exception (proof of timely filing)


@dataclass(frozen=True)
class PriorityParts:
    """Every part of the priority score, so a worklist can show why a denial ranks where it does."""

    expected_recovered_dollars: np.ndarray
    cost_to_work: np.ndarray
    effort_hours: np.ndarray
    deadline: np.ndarray  # datetime64[D]
    deadline_rule: np.ndarray
    days_to_deadline: np.ndarray
    urgency: np.ndarray
    priority_score: np.ndarray

    def as_frame(self, index: pd.Index) -> pd.DataFrame:
        return pd.DataFrame(self.__dict__, index=index)


def deadline_urgency(days_to_deadline: np.ndarray) -> np.ndarray:
    """1 with no pressure, up to 1 + URGENCY_BOOST on the last day, low once passed."""
    days = np.asarray(days_to_deadline, dtype=float)
    pressure = 1.0 + URGENCY_BOOST * np.exp(-np.clip(days, 0.0, None) / URGENCY_SCALE_DAYS)
    return np.where(days < 0, PASSED_DEADLINE_URGENCY, pressure)


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


def priority_parts(
    *,
    recovery_probability: np.ndarray,
    expected_recovered_share: np.ndarray,
    denied_amount: np.ndarray,
    action_path: np.ndarray,
    deadlines: pd.DataFrame,
    as_of: np.ndarray,
) -> PriorityParts:
    """Compute the priority score and its parts for each denial."""
    expected = recovery_probability * expected_recovered_share * denied_amount
    cost, hours = (
        np.array([WORK_COST[path][i] for path in action_path], dtype=float) for i in (0, 1)
    )
    deadline, rule = governing_deadline(action_path, deadlines)
    days_left = (deadline - np.asarray(as_of, dtype="datetime64[D]")).astype(float)
    urgency = deadline_urgency(days_left)
    return PriorityParts(
        expected_recovered_dollars=np.round(expected, 2),
        cost_to_work=cost,
        effort_hours=hours,
        deadline=deadline,
        deadline_rule=rule,
        days_to_deadline=days_left,
        urgency=urgency,
        priority_score=np.round(
            np.where(expected > cost, (expected - cost) * urgency, expected - cost), 4
        ),
    )
