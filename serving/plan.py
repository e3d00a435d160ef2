"""Today's plan: per owner queue, the open denials to work in priority order within its hours.

Each owner queue is a team with its own hours today: the plan gives every queue planned the
same ``hours`` (name the queues to plan only some). One total split by queue shares was the
alternative; it hides a decision a lead makes every morning (who is in, on which queue) behind
a formula, so the plan takes the hours as given and says how it used them.

A queue's plan takes its open denials (no final outcome recorded), recounts their priority on
the plan's day from the stored parts (:mod:`serving.live`), and works down the list while the
next denial's effort hours still fit, as evaluation counts dollars within a share of the hours
(``training.metrics.hours_capacity_capture``). Left out: denials past every deadline (write-off
review, not workable) and denials expected to return less than the work costs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.mapping import WRITE_OFF_REVIEW
from serving.live import priorities_on
from training.metrics import denials_within_hours


@dataclass(frozen=True)
class PlannedDenial:
    """One denial in a queue's plan, with what its place rests on."""

    denial_id: str
    action_path: str
    priority_score: float
    expected_net_dollars: float
    effort_hours: float
    denied_amount: float | None
    deadline: str
    days_to_deadline: int
    urgency: float
    payer_id: str | None


@dataclass(frozen=True)
class QueuePlan:
    """One owner queue's plan for the day."""

    owner_queue: str
    hours_available: float
    hours_planned: float
    expected_net_dollars: float
    open_workable: int  # open denials the queue could work today
    not_worth_the_work: int  # workable, but expected to return less than the work costs
    denials: list[PlannedDenial] = field(default_factory=list)


@dataclass(frozen=True)
class DailyPlan:
    """The plan of every queue planned, counted on ``counted_from``."""

    counted_from: dt.date
    hours_per_queue: float
    queues: list[QueuePlan]
    past_every_deadline: int  # open denials gone to write-off review, in no plan


def daily_plan(
    records: Iterable[Any],
    *,
    hours: float,
    day: dt.date,
    queues: Sequence[str] = (),
) -> DailyPlan:
    """The plan for ``day`` from open denials' latest score records (``denial_id``,
    ``outputs`` and ``facts`` as the audit log stores them); ``queues`` empty plans every
    queue that has open workable denials."""
    if not hours > 0:
        raise ValueError(f"hours must be above 0; got {hours}")
    records = list(records)
    counted = priorities_on([r.outputs["priority"] for r in records], day)
    candidates: dict[str, list[PlannedDenial]] = {}
    past_every_deadline = 0
    for record, priority in zip(records, counted, strict=True):
        queue = record.outputs["routing"]["owner_queue"]
        if not priority["workable"] or queue == WRITE_OFF_REVIEW:
            past_every_deadline += 1
            continue
        candidates.setdefault(queue, []).append(_planned(record, priority))
    planned = list(queues) or sorted(candidates)
    return DailyPlan(
        counted_from=day,
        hours_per_queue=hours,
        queues=[_queue_plan(queue, candidates.get(queue, []), hours) for queue in planned],
        past_every_deadline=past_every_deadline,
    )


def _planned(record: Any, priority: dict[str, Any]) -> PlannedDenial:
    facts = record.facts or {}
    return PlannedDenial(
        denial_id=record.denial_id,
        action_path=record.outputs["routing"]["action_path"],
        priority_score=priority["score"],
        expected_net_dollars=_expected_net(priority),
        effort_hours=float(priority["effort_hours"]),
        denied_amount=facts.get("denied_amount"),
        deadline=str(priority["deadline"]),
        days_to_deadline=priority["days_to_deadline"],
        urgency=priority["urgency"],
        payer_id=facts.get("payer_id"),
    )


def _expected_net(priority: dict[str, Any]) -> float:
    net = priority.get("expected_net_dollars")
    if net is None:  # scored before the per-hour priority
        return float(priority["expected_recovered_dollars"]) - float(priority["cost_to_work"])
    return float(net)


def _queue_plan(queue: str, denials: list[PlannedDenial], hours: float) -> QueuePlan:
    worth = sorted(
        (d for d in denials if d.expected_net_dollars > 0),
        key=lambda d: (-d.priority_score, d.denial_id),
    )
    fits = denials_within_hours(_hours_of(worth), hours)
    chosen = worth[:fits]
    return QueuePlan(
        owner_queue=queue,
        hours_available=hours,
        hours_planned=round(sum(d.effort_hours for d in chosen), 2),
        expected_net_dollars=round(sum(d.expected_net_dollars for d in chosen), 2),
        open_workable=len(denials),
        not_worth_the_work=len(denials) - len(worth),
        denials=chosen,
    )


def _hours_of(denials: list[PlannedDenial]) -> np.ndarray:
    return np.array([d.effort_hours for d in denials], dtype=float)
