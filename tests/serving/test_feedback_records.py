"""Feedback: stored once per idempotency key, even under concurrent retries, and turned into
contract labels for retraining."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from features.contract import LABEL_COLUMNS, validate
from serving.records import Feedback
from serving.repository import (
    FeedbackConflict,
    audit_record,
    feedback_frame,
    record_scores,
    save_feedback,
)

pytest_plugins = ["database_fixtures"]

BODY = {
    "denial_id": "D-1",
    "confirmed_root_cause": False,
    "corrected_root_cause": "authorization_referral",
    "resolution": "overturned_on_appeal",
    "recovered_amount": 1480.0,
    "resolved_date": "2026-10-20",
    "reviewer_note": "retro-auth obtained",
}


def feedback_rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Feedback)) or 0


def test_same_key_and_body_twice_is_one_row(session: Session) -> None:
    first, created = save_feedback(session, "fb-1", BODY, "desk")
    again, created_again = save_feedback(session, "fb-1", dict(reversed(BODY.items())), "desk")
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert feedback_rows(session) == 1
    assert again.resolved_date == dt.date(2026, 10, 20)
    assert again.recovered_amount == pytest.approx(1480.0)


def test_same_key_with_another_body_is_a_conflict(session: Session) -> None:
    save_feedback(session, "fb-1", BODY, "desk")
    with pytest.raises(FeedbackConflict, match="fb-1"):
        save_feedback(session, "fb-1", {**BODY, "recovered_amount": 1.0}, "desk")
    assert feedback_rows(session) == 1


def test_one_callers_key_never_collides_with_anothers(session: Session) -> None:
    """Keys were unique across callers: the second desk got the first one's row back (same
    body) or a 409 (another body) for feedback it never sent."""
    mine, created = save_feedback(session, "fb-1", BODY, "desk")
    theirs, theirs_created = save_feedback(session, "fb-1", BODY, "billing-office")
    other_body, _ = save_feedback(session, "fb-2", BODY, "desk")
    noted, _ = save_feedback(session, "fb-2", {**BODY, "reviewer_note": "x"}, "billing-office")
    assert (created, theirs_created) == (True, True)
    assert len({mine.id, theirs.id, other_body.id, noted.id}) == 4
    assert (theirs.caller, noted.reviewer_note) == ("billing-office", "x")
    assert save_feedback(session, "fb-1", BODY, "billing-office") == (theirs, False)
    assert feedback_rows(session) == 4


def test_unknown_fields_are_refused_not_dropped(session: Session) -> None:
    with pytest.raises(ValueError, match="patient_name"):
        save_feedback(session, "fb-1", {**BODY, "patient_name": "Jane Doe"}, "desk")


def test_concurrent_duplicates_store_one_row(sessions: sessionmaker[Session]) -> None:
    writers = 8
    start = threading.Barrier(writers)
    created: list[bool] = []
    failures: list[BaseException] = []

    def retry() -> None:
        start.wait()
        try:
            with sessions() as session:
                created.append(save_feedback(session, "fb-race", BODY, "desk")[1])
        except Exception as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=retry) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert sorted(created) == [False] * (writers - 1) + [True]
    with sessions() as session:
        assert feedback_rows(session) == 1


def scored(session: Session, denial_id: str, category: str, day: int) -> None:
    record = audit_record(
        request_id="r",
        denial={"denial_id": denial_id},
        caller="worklist",
        model_version="3",
        mapping_version="m",
        outputs={"root_cause": {"category": category, "probabilities": {category: 0.9}}},
        explanation={},
        scored_at=dt.datetime(2026, 3, day, tzinfo=dt.UTC),
    )
    record_scores(session, [record])


def test_feedback_becomes_contract_labels(session: Session) -> None:
    scored(session, "D-2", "coding", day=1)
    scored(session, "D-2", "duplicate", day=20)  # scored again after the review
    save_feedback(session, "a", BODY, "desk")
    save_feedback(session, "b", {"denial_id": "D-2", "confirmed_root_cause": True}, "desk")
    session.get(Feedback, 2).received_at = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    session.commit()
    outcome = {"denial_id": "D-2", "resolution": "written_off", "recovered_amount": 0}
    save_feedback(session, "c", outcome, "desk")
    save_feedback(session, "d", {"denial_id": "D-2", "reviewer_note": "no change"}, "desk")

    labels = feedback_frame(session).set_index("denial_id")
    assert set(labels.columns) <= set(LABEL_COLUMNS)
    assert labels.loc["D-1", "root_cause"] == "authorization_referral"
    assert labels.loc["D-1", "resolved_date"] == dt.datetime(2026, 10, 20)
    # Confirmed: the category the reviewer saw (day 1), not the later rescore.
    assert labels.loc["D-2", "root_cause"] == "coding"
    assert labels.loc["D-2", "resolution"] == "written_off"
    assert labels.loc["D-2", "recovered_amount"] == 0.0


def test_labels_pass_the_data_contract_types(session: Session) -> None:
    save_feedback(session, "a", BODY, "desk")
    labels = feedback_frame(session)
    result = validate(labels)
    label_errors = [e for e in result.errors if e.column in LABEL_COLUMNS]
    assert label_errors == []


def test_no_feedback_gives_an_empty_frame_with_the_columns(session: Session) -> None:
    labels = feedback_frame(session)
    assert labels.empty
    assert list(labels.columns) == [
        "denial_id",
        "root_cause",
        "resolution",
        "recovered_amount",
        "resolved_date",
    ]
