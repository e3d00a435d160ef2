"""The worklist's records on SQLite and PostgreSQL: the latest score kept on write, sorting in
the database, search by denial or claim id, status and assignment with their audit, outcomes
resolving denials, and the CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving import views
from serving.records import DenialStatus, LatestScore, WorklistEvent, utc_now
from serving.repository import (
    audit_record,
    claim_key,
    create_api_key,
    record_scores,
    revoke_api_key,
    save_feedback,
)
from serving.worklist_records import (
    UNASSIGNED,
    DenialNotScored,
    WorklistFilters,
    WorklistProblem,
    assign,
    latest_totals,
    set_status,
    worklist_entry,
    worklist_export,
    worklist_page,
)

pytest_plugins = ["database_fixtures"]

TODAY = dt.date(2026, 6, 15)


def scored(
    denial_id: str,
    *,
    priority: float = 10.0,
    expected: float = 50.0,
    deadline: dt.date = TODAY + dt.timedelta(days=60),
    hour: int = 9,
    claim_id: str = "C-1",
    payer_name: str | None = None,
    **facts: Any,
) -> dict[str, Any]:
    denial = {
        "denial_id": denial_id,
        "claim_id": claim_id,
        "payer_id": "87726",
        "denied_amount": 100.0,
        "carc_codes": ["CO-197"],
        "denial_date": TODAY - dt.timedelta(days=10),
        **({"payer_name": payer_name} if payer_name else {}),
        **facts,
    }
    outputs = {
        "root_cause": {"category": "authorization_referral", "probability": 0.8},
        "recovery": {"probability": 0.5, "expected_recovered_dollars": expected},
        "preventable": {"probability": 0.4, "prevention_owner": "front_desk"},
        "priority": {"score": priority, "deadline": deadline.isoformat(), "deadline_rule": "x"},
        "routing": {"owner_queue": "authorization", "action_path": "appeal"},
        "requires_human_review": True,
        "review_reasons": ["triage: the model is unsure"],
    }
    return audit_record(
        request_id="r",
        denial=denial,
        caller="worklist",
        model_version="1",
        mapping_version="m",
        outputs=outputs,
        explanation={},
        scored_at=dt.datetime(2026, 6, 1, hour, tzinfo=dt.UTC),
    )


def ids(session: Session, filters: WorklistFilters | None = None, **order: Any) -> list:
    rows, _ = worklist_page(session, filters or WorklistFilters(), today=TODAY, **order)
    return [row.denial_id for row in rows]


def outcome(session: Session, denial_id: str, resolution: str, key: str) -> None:
    save_feedback(session, key, {"denial_id": denial_id, "resolution": resolution}, "desk")


@pytest.fixture
def reviewer(session: Session) -> str:
    create_api_key(session, "reviewer", "ana")
    create_api_key(session, "admin", "lead")
    return "ana"


def test_the_latest_score_is_kept_on_write_and_an_older_one_never_replaces_it(
    session: Session,
) -> None:
    record_scores(session, [scored("D-1", priority=5.0, hour=11, payer_name="ACME HEALTH")])
    record_scores(session, [scored("D-1", priority=9.0, hour=9), scored("D-2", hour=10)])
    latest = {row.denial_id: row for row in session.scalars(select(LatestScore))}
    assert set(latest) == {"D-1", "D-2"}
    assert latest["D-1"].priority == 5.0 and latest["D-1"].payer_name == "ACME HEALTH"
    assert latest["D-1"].deadline == (TODAY + dt.timedelta(days=60)).isoformat()
    assert latest["D-1"].denial_month == "2026-06" and latest["D-1"].primary_code == "CO-197"
    record_scores(session, [scored("D-1", priority=1.0, hour=12)])
    session.expire_all()
    assert session.get(LatestScore, "D-1").priority == 1.0


def test_the_worklist_sorts_in_the_database_either_way(session: Session) -> None:
    record_scores(
        session,
        [
            scored("D-1", priority=3.0, expected=10.0, deadline=TODAY + dt.timedelta(days=5)),
            scored("D-2", priority=2.0, expected=90.0, deadline=TODAY - dt.timedelta(days=3)),
            scored("D-3", priority=1.0, expected=40.0, deadline=TODAY + dt.timedelta(days=40)),
        ],
    )
    # D-2 scored above D-3, but its only deadline passed since: write-off review, last.
    assert ids(session) == ["D-1", "D-3", "D-2"]
    assert ids(session, descending=False) == ["D-2", "D-3", "D-1"]
    assert ids(session, sort="expected_dollars") == ["D-2", "D-3", "D-1"]
    assert ids(session, sort="expected_dollars", descending=False) == ["D-1", "D-3", "D-2"]
    assert ids(session, sort="deadline", descending=False) == ["D-2", "D-1", "D-3"]
    rows, total = worklist_page(session, WorklistFilters(), today=TODAY, offset=2, limit=1)
    assert total == 3 and [row.denial_id for row in rows] == ["D-2"]
    assert rows[0].days_to_deadline == -3  # counted from the day read, not the day scored
    assert rows[0].workable is False
    assert rows[0].review_reasons == ("triage: the model is unsure",)


def test_search_finds_a_denial_id_or_a_claim_id_never_stored(session: Session) -> None:
    record_scores(
        session,
        [
            scored("D-10", claim_id="CLM-77"),
            scored("D-11", claim_id="CLM-78"),
            scored("X_1", claim_id="CLM-79"),
        ],
    )
    assert ids(session, WorklistFilters(search="D-11")) == ["D-11"]
    assert ids(session, WorklistFilters(search="D-1")) == []  # ids match whole
    by_claim = WorklistFilters(search="CLM-78", search_claim_key=claim_key("CLM-78"))
    assert ids(session, by_claim) == ["D-11"]
    stored = session.scalars(select(LatestScore.claim_key)).all()
    assert all(key and "CLM" not in key for key in stored)


def test_the_worklist_narrows_to_a_code_a_procedure_family_and_a_first_denial_date(
    session: Session,
) -> None:
    day = TODAY - dt.timedelta(days=30)
    record_scores(
        session,
        [
            scored("knee", procedure_code="27447", denial_date=day),  # surgery
            scored("hip", procedure_code="27130", denial_date=day + dt.timedelta(days=5)),
            scored("older", procedure_code="27447", denial_date=day - dt.timedelta(days=1)),
            scored("xray", procedure_code="71046", denial_date=day),  # radiology
            scored("other code", procedure_code="27447", carc_codes=["CO-16"], denial_date=day),
            scored("no code", denial_date=day),
        ],
    )
    surgery = WorklistFilters(primary_code="CO-197", procedure_family="surgery")
    assert sorted(ids(session, surgery)) == ["hip", "knee", "older"]
    since = WorklistFilters(
        primary_code="CO-197", procedure_family="surgery", denied_from=day, status="any"
    )
    assert sorted(ids(session, since)) == ["hip", "knee"]
    assert worklist_page(session, since, today=TODAY)[1] == 2
    assert ids(session, WorklistFilters(procedure_family="radiology")) == ["xray"]
    # A denial without a procedure code is in the family "unknown", as features.procedures says.
    assert ids(session, WorklistFilters(procedure_family="unknown")) == ["no code"]
    assert ids(session, WorklistFilters(procedure_family="hcpcs_drugs")) == []
    exported = worklist_export(session, since, today=TODAY)
    assert sorted(entry.denial_id for entry in exported) == ["hip", "knee"]


def test_assignment_and_status_are_audited_under_the_actors_key(
    session: Session, reviewer: str
) -> None:
    record_scores(session, [scored("D-1"), scored("D-2"), scored("D-3")])
    assert assign(session, ["D-1", "D-2"], reviewer, "lead") == ["D-1", "D-2"]
    set_status(session, ["D-2"], "in_progress", reviewer)
    assert ids(session, WorklistFilters(assignee=reviewer)) == ["D-1", "D-2"]
    assert ids(session, WorklistFilters(assignee=UNASSIGNED)) == ["D-3"]
    assert ids(session, WorklistFilters(status="in_progress")) == ["D-2"]
    assert ids(session, WorklistFilters(status="open")) == ["D-1", "D-3"]
    assign(session, ["D-1"], None, "lead")
    assert worklist_entry(session, "D-1", TODAY).assignee is None
    events = session.scalars(select(WorklistEvent).order_by(WorklistEvent.id)).all()
    assert [(e.denial_id, e.action, e.actor) for e in events] == [
        ("D-1", "assign", "lead"),
        ("D-2", "assign", "lead"),
        ("D-2", "status", "ana"),
        ("D-1", "unassign", "lead"),
    ]
    assert events[0].actor_key_id is not None and events[0].actor_key_id != events[2].actor_key_id


def test_changes_that_cannot_be_made_are_refused_by_name(session: Session, reviewer: str) -> None:
    record_scores(session, [scored("D-1")])
    with pytest.raises(DenialNotScored, match="'D-404'"):
        assign(session, ["D-1", "D-404"], reviewer, "lead")
    with pytest.raises(WorklistProblem, match="'nobody'"):
        assign(session, ["D-1"], "nobody", "lead")
    revoke_api_key(session, reviewer)
    with pytest.raises(WorklistProblem, match="not the name of an active reviewer"):
        assign(session, ["D-1"], reviewer, "lead")
    with pytest.raises(WorklistProblem, match="record an outcome"):
        set_status(session, ["D-1"], "resolved", "lead")
    assert session.scalars(select(WorklistEvent)).all() == []


def test_a_recorded_outcome_takes_a_denial_off_the_open_list(
    session: Session, reviewer: str
) -> None:
    record_scores(session, [scored("D-1"), scored("D-2")])
    set_status(session, ["D-1"], "in_progress", reviewer)
    outcome(session, "D-1", "paid_after_correction", "fb-1")
    assert ids(session) == ["D-2"]
    assert ids(session, WorklistFilters(status="resolved")) == ["D-1"]
    assert worklist_entry(session, "D-1", TODAY).status == "resolved"
    assert latest_totals(session, [], today=TODAY, open_only=True)[0]["denials"] == 1
    outcome(session, "D-1", "open", "fb-2")  # reopened: its last word is "open" again
    assert ids(session) == ["D-1", "D-2"]
    assert worklist_entry(session, "D-1", TODAY).status == "in_progress"


def test_an_outcome_is_dated_by_its_resolved_date_else_the_day_it_was_recorded(
    session: Session,
) -> None:
    record_scores(session, [scored("D-1"), scored("D-2")])
    dated = {"denial_id": "D-1", "resolution": "written_off", "resolved_date": "2026-06-03"}
    save_feedback(session, "fb-1", dated, "desk")
    outcome(session, "D-2", "overturned_on_appeal", "fb-2")
    kept = {row.denial_id: row.resolved_date for row in session.scalars(select(DenialStatus))}
    assert kept == {"D-1": dt.date(2026, 6, 3), "D-2": utc_now().date()}
    outcome(session, "D-1", "open", "fb-3")  # reopened: no outcome known, so no date
    session.expire_all()
    assert session.get(DenialStatus, "D-1").resolved_date is None


def test_the_export_holds_every_filtered_denial_and_no_claim_id(session: Session) -> None:
    record_scores(session, [scored(f"D-{n:03d}", priority=float(n)) for n in range(60)])
    query = views.worklist_query({"sort": "denial_id", "owner_queue": "authorization"})
    text = "".join(views.export_lines(session, query, TODAY))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["denial_id"] for row in rows] == [f"D-{n:03d}" for n in range(60)]
    assert rows[0]["days_to_deadline"] == "60" and rows[0]["as_of"] == TODAY.isoformat()
    assert rows[0]["status"] == "open" and rows[0]["review_reasons"].startswith("triage")
    assert "C-1" not in text and "claim" not in text.splitlines()[0]


def test_dashboard_totals_bucket_by_today_and_leave_resolved_denials_out_when_open(
    session: Session,
) -> None:
    record_scores(
        session,
        [
            scored("D-1", expected=10.0, deadline=TODAY - dt.timedelta(days=1)),
            scored("D-2", expected=20.0, deadline=TODAY + dt.timedelta(days=7)),
            scored("D-3", expected=30.0, deadline=TODAY + dt.timedelta(days=8), payer_name="ACME"),
            scored("D-4", expected=40.0, deadline=TODAY + dt.timedelta(days=31)),
        ],
    )
    outcome(session, "D-2", "written_off", "fb-1")
    windows = latest_totals(session, ["deadline_window"], today=TODAY)
    assert {row["deadline_window"]: row["denials"] for row in windows} == {
        "passed": 1,
        "within 7 days": 1,
        "in 8-30 days": 1,
        "later": 1,
    }
    open_windows = latest_totals(session, ["deadline_window"], today=TODAY, open_only=True)
    assert "within 7 days" not in {row["deadline_window"] for row in open_windows}
    (overall,) = latest_totals(session, [], today=TODAY, open_only=True)
    assert (overall["denials"], overall["expected_dollars"]) == (3, 80.0)
    assert overall["denied_dollars"] == 300.0 and overall["needs_review"] == 3
    (age,) = latest_totals(session, ["age"], today=TODAY)
    assert (age["age"], age["denials"]) == ("0-30 days", 4)  # denied 10 days before today
    payers = latest_totals(session, ["month", "payer"], today=TODAY)
    assert {(row["payer"], row["denials"]) for row in payers} == {("87726", 3), ("ACME", 1)}


def test_the_export_keeps_a_remittances_text_from_becoming_a_formula(session: Session) -> None:
    record_scores(session, [scored("D-1", payer_name='=HYPERLINK("http://x")')])
    text = "".join(views.export_lines(session, views.worklist_query({}), TODAY))
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["payer_name"] == '\'=HYPERLINK("http://x")'
