"""Live time and today's plan: stored priorities recounted on a given day, and per queue the
open workable denials in priority order while their hours fit."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from serving.live import priorities_on, priority_on_day
from serving.plan import daily_plan
from serving.repository import audit_record, open_latest_scores, record_scores, save_feedback
from training.priority import URGENCY_WEIGHT

pytest_plugins = ["database_fixtures"]

SCORED_ON = dt.date(2026, 3, 1)


def priority(
    net: float,
    hours: float,
    *,
    deadline_in: int = 200,
    last_in: int | None = None,
    horizon: int = 30,
) -> dict[str, Any]:
    """A stored priority part, as scoring writes it, counted on SCORED_ON."""
    deadline = SCORED_ON + dt.timedelta(days=deadline_in)
    last = SCORED_ON + dt.timedelta(days=deadline_in if last_in is None else last_in)
    return {
        "score": net / hours,
        "expected_recovered_dollars": net + 25.0,
        "cost_to_work": 25.0,
        "effort_hours": hours,
        "expected_net_dollars": net,
        "urgency": 0.0,
        "deadline": deadline.isoformat(),
        "deadline_rule": "commercial.appeal",
        "last_deadline": last.isoformat(),
        "backlog_horizon_days": horizon,
        "workable": True,
        "counted_from": SCORED_ON.isoformat(),
        "days_to_deadline": deadline_in,
    }


def record(denial_id: str, part: dict[str, Any], queue: str = "coding") -> dict[str, Any]:
    return audit_record(
        request_id="r",
        denial={"denial_id": denial_id, "payer_id": "P1", "denied_amount": 500.0},
        caller="worklist",
        model_version="1",
        mapping_version="m",
        outputs={
            "priority": part,
            "routing": {"owner_queue": queue, "action_path": "coding_review"},
        },
        explanation={},
        scored_at=dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC),
    )


class Stored:
    """A score record as the repository returns it (attributes, not keys)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.denial_id = document["denial_id"]
        self.outputs = document["outputs"]
        self.facts = document["facts"]


# ---------------------------------------------------------------------------- live time


def test_two_days_give_two_counts_of_days_urgency_and_priority() -> None:
    stored = priority(300.0, 0.6, deadline_in=40)
    scored_day = priority_on_day(stored, SCORED_ON)
    assert scored_day["days_to_deadline"] == 40 and scored_day["urgency"] == 0.0
    assert scored_day["score"] == 500.0 and scored_day["counted_from"] == "2026-03-01"
    later = priority_on_day(stored, SCORED_ON + dt.timedelta(days=25))
    assert later["days_to_deadline"] == 15 and later["urgency"] == 0.5
    assert later["score"] == 500.0 * (1 + URGENCY_WEIGHT * 0.5)
    assert later["counted_from"] == "2026-03-26"
    # The stored parts themselves are untouched: a read recounts, it does not rewrite.
    assert stored["days_to_deadline"] == 40


def test_a_denial_read_past_every_deadline_is_no_longer_workable() -> None:
    stored = priority(300.0, 0.6, deadline_in=10, last_in=30)
    between = priority_on_day(stored, SCORED_ON + dt.timedelta(days=20))
    assert between["workable"] and between["days_to_deadline"] == -10
    assert between["urgency"] == round(1 - 10 / 30, 4)  # counted to the other, last deadline
    past = priority_on_day(stored, SCORED_ON + dt.timedelta(days=31))
    assert not past["workable"] and past["urgency"] == 0.0 and past["score"] < 0


def test_records_scored_before_the_per_hour_priority_are_recounted_too() -> None:
    old = {
        "score": 123.0,
        "expected_recovered_dollars": 125.0,
        "cost_to_work": 25.0,
        "effort_hours": 0.5,
        "urgency": 1.1,
        "deadline": "2026-04-01",
        "deadline_rule": "x",
        "days_to_deadline": 31,
    }
    (counted,) = priorities_on([old], dt.date(2026, 3, 1))
    assert counted["score"] == 200.0 and counted["workable"] and counted["urgency"] == 0.0


# ---------------------------------------------------------------------------- the plan


def test_the_plan_works_each_queue_in_priority_order_within_its_hours() -> None:
    records = [
        Stored(record("C-1", priority(100.0, 0.6))),  # 166.67 $/h
        Stored(record("C-2", priority(900.0, 1.5))),  # 600 $/h
        Stored(record("C-3", priority(200.0, 0.6))),  # 333.33 $/h
        Stored(record("C-4", priority(-20.0, 0.6))),  # costs more than it returns
        Stored(record("B-1", priority(50.0, 0.3), queue="billing")),
        Stored(record("B-2", priority(90.0, 0.3), queue="billing")),
    ]
    plan = daily_plan(records, hours=2.2, day=SCORED_ON)
    by_queue = {q.owner_queue: q for q in plan.queues}
    assert sorted(by_queue) == ["billing", "coding"]
    coding = by_queue["coding"]
    # 1.5 h + 0.6 h fit in 2.2 h; the third (0.6 h more) does not.
    assert [d.denial_id for d in coding.denials] == ["C-2", "C-3"]
    assert coding.hours_planned == 2.1 and coding.expected_net_dollars == 1100.0
    assert coding.open_workable == 4 and coding.not_worth_the_work == 1
    assert [d.denial_id for d in by_queue["billing"].denials] == ["B-2", "B-1"]
    one_queue = daily_plan(records, hours=1.0, day=SCORED_ON, queues=["billing"])
    assert [q.owner_queue for q in one_queue.queues] == ["billing"]
    assert one_queue.queues[0].hours_planned == 0.6


def test_the_plan_leaves_out_denials_past_every_deadline() -> None:
    records = [
        Stored(record("late", priority(5_000.0, 0.3, deadline_in=5, last_in=10))),
        Stored(record("open", priority(100.0, 0.3, deadline_in=90))),
    ]
    today = daily_plan(records, hours=8, day=SCORED_ON)
    assert [d.denial_id for d in today.queues[0].denials] == ["late", "open"]
    assert today.past_every_deadline == 0
    later = daily_plan(records, hours=8, day=SCORED_ON + dt.timedelta(days=11))
    assert [d.denial_id for d in later.queues[0].denials] == ["open"]
    assert later.past_every_deadline == 1 and later.counted_from == SCORED_ON + dt.timedelta(11)
    assert later.queues[0].denials[0].days_to_deadline == 79


def test_the_plan_refuses_no_hours() -> None:
    with pytest.raises(ValueError, match="hours must be above 0"):
        daily_plan([], hours=0, day=SCORED_ON)


def test_resolved_denials_are_not_open_for_the_plan(session: Session) -> None:
    record_scores(
        session,
        [
            record("D-1", priority(100.0, 0.6)),
            record("D-2", priority(100.0, 0.6)),
            record("D-3", priority(100.0, 0.6), queue="billing"),
        ],
    )
    resolved = {"denial_id": "D-1", "resolution": "written_off", "recovered_amount": 0.0}
    save_feedback(session, "k-1", resolved, "reviewer")
    save_feedback(session, "k-2", {"denial_id": "D-2", "resolution": "open"}, "reviewer")
    session.commit()
    assert [r.denial_id for r in open_latest_scores(session)] == ["D-2", "D-3"]
    assert [r.denial_id for r in open_latest_scores(session, ["billing"])] == ["D-3"]
    plan = daily_plan(open_latest_scores(session), hours=4, day=SCORED_ON)
    assert {d.denial_id for q in plan.queues for d in q.denials} == {"D-2", "D-3"}


def test_the_plan_command_prints_each_queues_plan_and_refuses_unknown_queues(
    session: Session, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from denial_triage.cli import app
    from denial_triage.settings import get_settings

    record_scores(
        session,
        [
            record("D-1", priority(300.0, 0.6)),
            record("D-2", priority(100.0, 0.6)),
            record("D-3", priority(5_000.0, 0.3, deadline_in=5, last_in=5)),
        ],
    )
    session.commit()
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    later = runner.invoke(
        app, ["plan", "--hours", "1", "--queue", "coding", "--date", "2026-03-11"]
    )
    assert later.exit_code == 0, later.output
    assert "Plan for 2026-03-11 (the date given), 1 hours a queue" in later.output
    assert "1 open denials past every deadline go to write-off review" in later.output
    assert "coding: 1 of 2 open workable denials in 0.6 of 1 hours, $300.00 expected net" in (
        later.output
    )
    assert "D-1" in later.output and "D-2" not in later.output and "D-3" not in later.output
    typo = runner.invoke(app, ["plan", "--hours", "1", "--queue", "codign"])
    assert typo.exit_code == 1 and "'codign' is not an owner queue" in typo.output
    get_settings.cache_clear()
