"""Live time: a stored score's days to deadline, urgency and priority, counted on a given day.

A score is stored with the day it was counted from (its as-of date). Read back later, its
``days_to_deadline`` and urgency are stale; these functions recount them from the stored parts
(deadlines, expected net dollars, effort hours, the queue's backlog horizon) with
:func:`training.priority.priority_on`, the formula scoring used, for the ``today`` the caller
passes. Live reads (``GET /v1/denials/{id}``, the plan, the worklist pages) pass today's date
(:func:`today`) and say so in ``counted_from``; nothing here reads the clock by itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from features.mapping import DEFAULT_BACKLOG_HORIZON_DAYS
from features.pipeline import live_scoring_date
from training.priority import priority_on


def today() -> dt.date:
    """The date a live read counts from: today by the wall clock."""
    return live_scoring_date()


def priorities_on(stored: Sequence[Mapping[str, Any]], day: dt.date) -> list[dict[str, Any]]:
    """Each stored ``priority`` part recounted on ``day``: the same parts with
    ``days_to_deadline``, ``urgency``, ``workable``, ``score`` and ``counted_from`` replaced.

    Records scored before the per-hour priority lack some parts: their expected net dollars
    are the expected dollars minus the cost, their last deadline the governing one, their
    horizon the mapping's default.
    """
    if not stored:
        return []
    counted = priority_on(
        expected_net_dollars=np.array([_expected_net(p) for p in stored], dtype=float),
        effort_hours=np.array([p["effort_hours"] for p in stored], dtype=float),
        deadline=np.array([p["deadline"] for p in stored], dtype="datetime64[D]"),
        last_deadline=np.array(
            [p.get("last_deadline") or p["deadline"] for p in stored], dtype="datetime64[D]"
        ),
        backlog_horizon_days=np.array(
            [p.get("backlog_horizon_days") or DEFAULT_BACKLOG_HORIZON_DAYS for p in stored]
        ),
        today=np.datetime64(day, "D"),
    )
    return [
        {
            **part,
            "days_to_deadline": int(counted.days_to_deadline[i]),
            "urgency": float(counted.urgency[i]),
            "workable": bool(counted.workable[i]),
            "score": float(counted.priority_score[i]),
            "counted_from": day.isoformat(),
        }
        for i, part in enumerate(stored)
    ]


def priority_on_day(stored: Mapping[str, Any], day: dt.date) -> dict[str, Any]:
    """One stored ``priority`` part recounted on ``day`` (see :func:`priorities_on`)."""
    return priorities_on([stored], day)[0]


def _expected_net(part: Mapping[str, Any]) -> float:
    net = part.get("expected_net_dollars")
    if net is None:
        return float(part["expected_recovered_dollars"]) - float(part["cost_to_work"])
    return float(net)
