"""The reviewers' pages' queries on the records, on SQLite and PostgreSQL: the latest score
per denial, filters, ranking, paging, counts and the dashboard's totals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from serving.repository import (
    audit_record,
    feedback_for_denial,
    latest_scores,
    outcome_totals,
    record_scores,
    root_cause_reviews,
    save_feedback,
)
from serving.worklist_records import (
    WorklistFilters,
    latest_totals,
    worklist_choices,
    worklist_page,
)

pytest_plugins = ["database_fixtures"]

TODAY = dt.date(2026, 6, 15)


def outputs(priority: float, deadline: dt.date, **changes: Any) -> dict[str, Any]:
    """A score's stored outputs, shaped as the service writes them."""
    document = {
        "root_cause": {"category": "coding", "probability": 0.7},
        "recovery": {"probability": 0.6, "expected_recovered_dollars": 50.0},
        "preventable": {"probability": 0.5, "prevention_owner": "coding_team"},
        "priority": {"score": priority, "deadline": deadline.isoformat(), "deadline_rule": "x"},
        "routing": {"owner_queue": "coding", "action_path": "correct_and_resubmit"},
        "requires_human_review": False,
    }
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            document[section] = {**document[section], key: value}
        else:
            document[section] = value
    return document


def scored(
    denial_id: str,
    priority: float,
    *,
    deadline: dt.date = TODAY + dt.timedelta(days=60),
    payer: str = "P1",
    amount: float = 100.0,
    denial_date: dt.date = TODAY - dt.timedelta(days=10),
    hour: int = 9,
    **changes: Any,
) -> dict[str, Any]:
    denial = {
        "denial_id": denial_id,
        "claim_id": "C-SECRET",
        "payer_id": payer,
        "denied_amount": amount,
        "carc_codes": ["CO-197", "CO-16"],
        "denial_date": denial_date,
        "diagnosis_codes": ["F32.9"],
    }
    return audit_record(
        request_id="r",
        denial=denial,
        caller="worklist",
        model_version="1",
        mapping_version="m",
        outputs=outputs(priority, deadline, **changes),
        explanation={},
        scored_at=dt.datetime(2026, 6, 1, hour, tzinfo=dt.UTC),
    )


def page_ids(session: Session, filters: WorklistFilters | None = None, **paging) -> list:
    rows, _ = worklist_page(
        session,
        filters or WorklistFilters(),
        today=TODAY,
        offset=paging.get("offset", 0),
        limit=paging.get("limit", 50),
    )
    return [row.denial_id for row in rows]


def test_records_keep_routing_facts_but_nothing_identifying() -> None:
    facts = scored("D-1", 1.0)["facts"]
    assert facts["payer_id"] == "P1" and facts["carc_codes"] == ["CO-197", "CO-16"]
    assert facts["denial_date"] == (TODAY - dt.timedelta(days=10)).isoformat()
    assert "claim_id" not in facts and "diagnosis_codes" not in facts


def test_worklist_shows_each_denials_latest_score_by_priority(session: Session) -> None:
    record_scores(
        session,
        [
            scored("D-1", 5.0, hour=9),
            scored("D-1", 1.0, hour=11, routing__owner_queue="billing"),
            scored("D-2", 3.0),
            scored("D-3", 3.0),
        ],
    )
    rows, total = worklist_page(session, WorklistFilters(), today=TODAY, offset=0, limit=10)
    assert total == 3
    assert [row.denial_id for row in rows] == ["D-2", "D-3", "D-1"]  # ties by denial id
    assert rows[2].owner_queue == "billing"
    assert rows[0].denied_amount == 100.0
    assert [record.denial_id for record in latest_scores(session)] == ["D-1", "D-2", "D-3"]
    assert latest_scores(session)[0].outputs["priority"]["score"] == 1.0


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (WorklistFilters(owner_queue="billing"), ["D-2"]),
        (WorklistFilters(payer_id="P2"), ["D-3"]),
        (WorklistFilters(root_cause="duplicate"), ["D-4"]),
        (WorklistFilters(action_path="appeal"), ["D-5"]),
        (WorklistFilters(due_within_days=7), ["D-6", "D-7"]),
        (WorklistFilters(due_within_days=0), ["D-6"]),
        (WorklistFilters(owner_queue="billing", payer_id="P2"), []),
    ],
)
def test_each_filter_narrows_the_worklist(
    session: Session, filters: WorklistFilters, expected: list[str]
) -> None:
    day = dt.timedelta(days=1)
    record_scores(
        session,
        [
            scored("D-1", 9.0, deadline=TODAY - day),  # passed: not due any more
            scored("D-2", 8.0, routing__owner_queue="billing"),
            scored("D-3", 7.0, payer="P2"),
            scored("D-4", 6.0, root_cause__category="duplicate"),
            scored("D-5", 5.0, routing__action_path="appeal"),
            scored("D-6", 4.0, deadline=TODAY),
            scored("D-7", 3.0, deadline=TODAY + 7 * day),
            scored("D-8", 2.0, deadline=TODAY + 8 * day),
        ],
    )
    assert page_ids(session, filters) == expected
    assert worklist_page(session, filters, today=TODAY, offset=0, limit=1)[1] == len(expected)


def test_pages_cover_thousands_of_denials_once_in_rank_order(session: Session) -> None:
    count = 2_500
    record_scores(session, [scored(f"D-{i:05d}", float(i % 997)) for i in range(count)])
    seen = []
    for offset in range(0, count, 400):
        seen += page_ids(session, offset=offset, limit=400)
    assert len(seen) == len(set(seen)) == count
    expected = sorted(range(count), key=lambda i: (-(i % 997), f"D-{i:05d}"))
    assert seen == [f"D-{i:05d}" for i in expected]


def test_filter_choices_come_from_the_log(session: Session) -> None:
    record_scores(
        session, [scored("D-1", 1.0, payer="P9"), scored("D-2", 1.0, routing__owner_queue="a")]
    )
    choices = worklist_choices(session)
    assert choices["payer_id"] == [("P1", None), ("P9", None)]
    assert choices["owner_queue"] == ["a", "coding"]
    assert choices["action_path"] == ["correct_and_resubmit"]


def test_records_without_facts_are_listed_and_counted_by_scoring_month(session: Session) -> None:
    old = {**scored("D-old", 1.0), "facts": None}
    record_scores(session, [old, scored("D-new", 2.0, denial_date=dt.date(2026, 5, 30))])
    assert page_ids(session) == ["D-new", "D-old"]
    totals = latest_totals(session, ["month", "age"], today=TODAY)
    assert [(t["month"], t["age"], t["denials"]) for t in totals] == [
        ("2026-05", "0-30 days", 1),
        ("2026-06", "unknown", 1),
    ]


def test_dashboard_totals_group_the_latest_scores(session: Session) -> None:
    day = dt.timedelta(days=1)
    record_scores(
        session,
        [
            scored("D-1", 1.0, amount=100.0, hour=8),
            scored("D-1", 1.0, amount=150.0, hour=9, requires_human_review=True),
            scored("D-2", 1.0, amount=50.0, deadline=TODAY + 3 * day, payer="P2"),
            scored("D-3", 1.0, amount=20.0, deadline=TODAY - day, denial_date=TODAY - 200 * day),
        ],
    )
    by_window = {
        t["deadline_window"]: t for t in latest_totals(session, ["deadline_window"], today=TODAY)
    }
    assert {k: v["denials"] for k, v in by_window.items()} == {
        "later": 1,
        "passed": 1,
        "within 7 days": 1,
    }
    assert by_window["later"]["denied_dollars"] == pytest.approx(150.0)
    assert by_window["later"]["needs_review"] == 1
    ages = {t["age"]: t["denials"] for t in latest_totals(session, ["age"], today=TODAY)}
    assert ages == {"0-30 days": 2, "over 120 days": 1}
    (overall,) = latest_totals(session, [], today=TODAY)
    assert overall["denials"] == 3 and overall["denied_dollars"] == pytest.approx(220.0)
    assert overall["expected_dollars"] == pytest.approx(150.0)
    assert overall["preventable"] == pytest.approx(1.5)
    codes = latest_totals(session, ["primary_code", "prevention_owner"], today=TODAY)
    assert [(t["primary_code"], t["prevention_owner"]) for t in codes] == [
        ("CO-197", "coding_team")
    ]


def test_outcomes_and_reviews_count_each_denials_latest_word(session: Session) -> None:
    record_scores(session, [scored("D-1", 1.0), scored("D-2", 1.0), scored("D-3", 1.0)])
    feedback = [
        ("a", {"denial_id": "D-1", "resolution": "open"}),
        ("b", {"denial_id": "D-1", "resolution": "overturned_on_appeal", "recovered_amount": 80}),
        ("c", {"denial_id": "D-1", "reviewer_note": "called the payer"}),
        ("d", {"denial_id": "D-2", "confirmed_root_cause": True}),
        ("e", {"denial_id": "D-2", "corrected_root_cause": "duplicate", "resolution": "open"}),
        ("f", {"denial_id": "D-3", "confirmed_root_cause": True}),
    ]
    for key, body in feedback:
        save_feedback(session, key, body, "desk")
    outcomes = {row["resolution"]: row for row in outcome_totals(session)}
    assert {k: v["denials"] for k, v in outcomes.items()} == {"open": 1, "overturned_on_appeal": 1}
    assert outcomes["overturned_on_appeal"]["recovered_dollars"] == pytest.approx(80.0)
    assert root_cause_reviews(session) == {"confirmed": 1, "corrected": 1}
    open_totals = latest_totals(session, [], today=TODAY, open_only=True)
    assert open_totals[0]["denials"] == 2  # D-1 was overturned
    assert [f.idempotency_key for f in feedback_for_denial(session, "D-1")] == ["c", "b", "a"]


def test_a_nul_in_a_filter_is_named_and_ignored(session: Session) -> None:
    """On PostgreSQL, a NUL in a page parameter reached the query: 503, and the SQL
    parameters in the logged trace."""
    from serving.views import worklist_query

    record_scores(session, [scored("D-1", 9.0)])
    query = worklist_query({"payer_id": "P1\x00", "owner_queue": "\x00"})
    assert query.filters.payer_id is None and query.filters.owner_queue is None
    assert "payer_id holds a NUL character; ignored" in query.problems
    assert page_ids(session, query.filters) == ["D-1"]


def test_database_errors_never_quote_the_parameters(session: Session) -> None:
    """An error may reach a log: the statement's values (denial facts, notes) must not."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    with pytest.raises(SQLAlchemyError) as raised:
        session.execute(text("SELECT * FROM no_such_table WHERE x = :x"), {"x": "JANE-DOE-77"})
    assert "JANE-DOE-77" not in str(raised.value)


def test_the_procedure_and_date_filters_read_from_the_query_string() -> None:
    from serving.views import worklist_query

    query = worklist_query({"procedure_family": "surgery", "denied_from": "2026-10-02"})
    assert query.filters.procedure_family == "surgery"
    assert query.filters.denied_from == dt.date(2026, 10, 2)
    assert query.problems == ()
    assert query.url() == "/ui/worklist?procedure_family=surgery&denied_from=2026-10-02"
    for day in ("2026-02-30", "20261002", "0", "2026-10-02T00:00"):
        bad = worklist_query({"procedure_family": "knees", "denied_from": day})
        assert bad.filters.procedure_family is None and bad.filters.denied_from is None
        assert bad.problems == (
            "unknown procedure family 'knees' ignored",
            "denied_from must be a date as YYYY-MM-DD; ignored",
        )
