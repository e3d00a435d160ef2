"""Live time: a stored score's days to deadline, urgency and priority, counted on a given day.

A score is stored with the day it was counted from (its as-of date). Read back later, its
``days_to_deadline`` and urgency are stale; these functions recount them from the stored parts
(deadlines, expected net dollars, effort hours, the queue's backlog horizon) with
:func:`training.priority.priority_on`, the formula scoring used, for the ``today`` the caller
passes. Live reads (``GET /v1/denials/{id}``, the plan, the worklist pages) pass today's date
(:func:`today`) and say so in ``counted_from``; nothing here reads the clock by itself.

The worklist sorts thousands of denials by that priority, so it is also written as SQL over
``latest_scores`` (:func:`priority_sql`, :func:`workable_sql`): the database orders and pages
the list without a row reaching Python first. A test holds the two equal on both databases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Float, Integer, case, cast, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from features.mapping import DEFAULT_BACKLOG_HORIZON_DAYS, WRITE_OFF_REVIEW
from features.pipeline import live_scoring_date
from serving.records import LatestScore
from training.priority import URGENCY_WEIGHT, WORK_COST, priority_on


def today() -> dt.date:
    """The date every live read counts from (the API, the reviewer pages, ``plan`` and
    ``monitor``): today by the machine's local clock, so a reviewer's page and a worklist
    system's answer never differ by a day around midnight."""
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


# ---------------------------------------------------------------------------- in SQL


class DaysUntil(FunctionElement[int]):
    """Days from ``day`` (ISO text) to an ISO date column, negative once passed; SQLite and
    PostgreSQL count days between dates differently."""

    type = Integer()
    inherit_cache = True
    name = "days_until"


@compiles(DaysUntil, "sqlite")
def _days_until_sqlite(element: DaysUntil, compiler: SQLCompiler, **kw: Any) -> str:
    date, day = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(julianday({date}) - julianday({day}) AS INTEGER)"


@compiles(DaysUntil, "postgresql")
def _days_until_postgresql(element: DaysUntil, compiler: SQLCompiler, **kw: Any) -> str:
    date, day = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(CAST({date} AS DATE) - CAST({day} AS DATE))"


class Greatest(FunctionElement[float]):
    """The larger of two numbers: ``max`` in SQLite, ``GREATEST`` in PostgreSQL (each
    argument written once, so an expensive one is counted once per row)."""

    type = Float()
    inherit_cache = True
    name = "greatest"


@compiles(Greatest, "sqlite")
def _greatest_sqlite(element: Greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(Greatest, "postgresql")
def _greatest_postgresql(element: Greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"GREATEST({compiler.process(element.clauses, **kw)})"


def workable_sql(day: dt.date) -> ColumnElement[bool]:
    """True while a denial's last deadline is on or after ``day`` (ISO dates compare as text);
    a denial with no deadline stored counts as workable, since nothing says it is not."""
    return or_(LatestScore.last_deadline.is_(None), LatestScore.last_deadline >= day.isoformat())


def priority_sql(day: dt.date) -> ColumnElement[float]:
    """:func:`priority_on_day` of each ``latest_scores`` row on ``day``, as one SQL expression:
    expected net dollars per effort hour, raised by the chance of losing them by waiting,
    and the write-off review's cost per hour past every deadline. Rows scored before the
    per-hour priority (no effort hours or deadline stored) keep the score they were given.

    Dates are compared as ISO text; only the days to the deadline that counts are counted
    as days, once per row, since that is the costly part of sorting a whole worklist."""
    on_day = literal(day.isoformat())
    # The governing deadline while it is open, else the other route's (the last deadline).
    counting_to = case(
        (LatestScore.deadline >= on_day, LatestScore.deadline), else_=LatestScore.last_deadline
    )
    days_left = cast(DaysUntil(counting_to, on_day), Float)
    urgency = Greatest(1.0 - days_left / LatestScore.backlog_horizon_days, 0.0)
    per_hour = LatestScore.expected_net_dollars / LatestScore.effort_hours
    weighted = case(
        (LatestScore.expected_net_dollars > 0, per_hour * (1.0 + URGENCY_WEIGHT * urgency)),
        else_=per_hour,
    )
    review_cost, review_hours = WORK_COST[WRITE_OFF_REVIEW]
    unknown = or_(LatestScore.effort_hours.is_(None), LatestScore.last_deadline.is_(None))
    return case(
        (unknown, LatestScore.priority),
        (LatestScore.last_deadline >= on_day, weighted),
        else_=-review_cost / review_hours,
    )
