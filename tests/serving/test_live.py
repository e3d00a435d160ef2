"""The priority counted in SQL equals the one counted in Python, on SQLite and PostgreSQL, on
days before, inside and past a denial's deadlines; the worklist orders by it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.live import priority_on_day, priority_sql, workable_sql
from serving.records import LatestScore
from serving.repository import audit_record, record_scores
from serving.worklist_records import WorklistFilters, worklist_page

pytest_plugins = ["database_fixtures"]

SCORED_ON = dt.date(2026, 3, 1)
# Scoring day; inside every backlog horizon; the governing deadlines passed while the last
# ones are open; past every deadline.
READ_ON = [SCORED_ON + dt.timedelta(days=days) for days in (0, 18, 45, 400)]


def part(net: float, hours: float, deadline_in: int, last_in: int, horizon: int) -> dict[str, Any]:
    """A stored priority part, as scoring writes it."""
    return {
        "score": round(net / hours, 4),
        "expected_recovered_dollars": net + 44.0,
        "cost_to_work": 44.0,
        "effort_hours": hours,
        "expected_net_dollars": net,
        "urgency": 0.0,
        "deadline": (SCORED_ON + dt.timedelta(days=deadline_in)).isoformat(),
        "deadline_rule": "commercial.appeal",
        "last_deadline": (SCORED_ON + dt.timedelta(days=last_in)).isoformat(),
        "backlog_horizon_days": horizon,
        "workable": True,
        "counted_from": SCORED_ON.isoformat(),
        "days_to_deadline": deadline_in,
    }


PARTS = {
    "D-near": part(312.5, 0.6, deadline_in=25, last_in=25, horizon=30),
    "D-far": part(1_480.0, 1.5, deadline_in=200, last_in=300, horizon=45),
    "D-refile-after-appeal": part(90.0, 0.3, deadline_in=30, last_in=60, horizon=14),
    "D-loss": part(-19.0, 0.8, deadline_in=20, last_in=90, horizon=30),
    # Scored before the per-hour priority: no net dollars, last deadline or horizon stored.
    "D-old": {
        "score": 7.0,
        "expected_recovered_dollars": 125.0,
        "cost_to_work": 25.0,
        "effort_hours": 0.5,
        "deadline": (SCORED_ON + dt.timedelta(days=50)).isoformat(),
        "deadline_rule": "x",
        "days_to_deadline": 50,
    },
}


def record(denial_id: str, priority: dict[str, Any]) -> dict[str, Any]:
    return audit_record(
        request_id="r",
        denial={"denial_id": denial_id, "payer_id": "P1", "denied_amount": 500.0},
        caller="worklist",
        model_version="1",
        mapping_version="m",
        outputs={
            "priority": priority,
            "routing": {"owner_queue": "coding", "action_path": "coding_review"},
        },
        explanation={},
        scored_at=dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC),
    )


@pytest.mark.parametrize("day", READ_ON, ids=str)
def test_the_sql_priority_equals_the_python_one(session: Session, day: dt.date) -> None:
    record_scores(session, [record(denial_id, stored) for denial_id, stored in PARTS.items()])
    query = select(LatestScore.denial_id, priority_sql(day), workable_sql(day))
    counted_in_sql = {
        denial_id: (score, bool(ok)) for denial_id, score, ok in session.execute(query)
    }
    for denial_id, stored in PARTS.items():
        expected = priority_on_day(stored, day)
        score, workable = counted_in_sql[denial_id]
        assert score == pytest.approx(expected["score"], abs=1e-4), (denial_id, day)
        assert workable == expected["workable"], (denial_id, day)


def test_the_cases_compared_cover_urgency_a_passed_deadline_and_write_off() -> None:
    """The comparison above is only worth what its days and denials exercise."""
    counted = {
        (denial_id, day): priority_on_day(stored, day)
        for denial_id, stored in PARTS.items()
        for day in READ_ON
    }
    assert any(0 < c["urgency"] < 1 for c in counted.values())
    assert counted["D-refile-after-appeal", READ_ON[2]]["days_to_deadline"] < 0
    assert counted["D-refile-after-appeal", READ_ON[2]]["workable"]
    assert not counted["D-far", READ_ON[3]]["workable"]


def test_the_worklist_orders_by_todays_priority_and_puts_write_offs_last(
    session: Session,
) -> None:
    record_scores(session, [record(denial_id, stored) for denial_id, stored in PARTS.items()])
    day = READ_ON[2]
    rows, _ = worklist_page(session, WorklistFilters(), today=day, limit=10)
    expected = sorted(
        PARTS,
        key=lambda d: (
            not priority_on_day(PARTS[d], day)["workable"],
            -priority_on_day(PARTS[d], day)["score"],
        ),
    )
    assert [row.denial_id for row in rows] == expected
    assert rows[-1].denial_id == "D-near" and rows[-1].workable is False  # its one deadline
    assert rows[0].priority == pytest.approx(priority_on_day(PARTS[expected[0]], day)["score"])
    workable, total = worklist_page(session, WorklistFilters(workable=True), today=day)
    assert total == 4 and "D-near" not in {row.denial_id for row in workable}
    write_offs, total = worklist_page(session, WorklistFilters(workable=False), today=day)
    assert total == 1 and [row.denial_id for row in write_offs] == ["D-near"]
