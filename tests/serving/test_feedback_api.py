"""``POST /v1/feedback`` checked against the denial it is about, on SQLite and PostgreSQL: only
scored denials, outcomes that fit the latest score, idempotency keys per caller, and database
refusals that no retry can fix answered 422 rather than 503 "retry"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from database_fixtures import auth, create_keys, feedback_count
from fastapi.testclient import TestClient
from sqlalchemy import text

from denial_triage.settings import Settings
from serving.app import create_app
from serving.database import make_engine, session_factory
from serving.repository import audit_record, record_scores
from serving.schemas import AFTER_TODAY, BEFORE_THE_DENIAL, OVER_THE_DENIED_AMOUNT

pytest_plugins = ["database_fixtures"]

DENIED_ON = "2026-09-02"


@dataclass(frozen=True)
class Desk:
    client: TestClient
    keys: dict[str, str]
    database_url: str

    def post(self, body: dict[str, Any], role: str = "reviewer") -> Any:
        return self.client.post("/v1/feedback", json=body, headers=auth(self.keys[role]))

    def stored(self, denial_id: str) -> int:
        return feedback_count(self.database_url, denial_id)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory for the module: its model registry is made once (the slow part)."""
    return tmp_path_factory.mktemp("feedback-api")


@pytest.fixture
def desk(database_url: str, data_dir: Path) -> Iterator[Desk]:
    """The service (no model needed: feedback reads the audit log) with D-1 scored twice, its
    latest score denying $200.00 on 2026-09-02, and D-OLD scored before facts were kept."""
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        model_poll_seconds=3600,
        audit_worker_process=False,  # nothing is scored here: no worker process to start
    )
    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        record_scores(session, [scored("D-1", 500.0, day=1), scored("D-1", 200.0, day=2)])
        record_scores(session, [{**scored("D-OLD", 90.0, day=1), "facts": None}])
    engine.dispose()
    with TestClient(create_app(settings)) as client:
        yield Desk(client, create_keys(database_url, "desk"), database_url)


def scored(denial_id: str, denied: float, day: int) -> dict[str, Any]:
    return audit_record(
        request_id=f"r-{day}",
        denial={"denial_id": denial_id, "denied_amount": denied, "denial_date": DENIED_ON},
        caller="worklist",
        model_version="3",
        mapping_version="m",
        outputs={"root_cause": {"category": "coding"}},
        explanation={},
        scored_at=dt.datetime(2026, 9, day, tzinfo=dt.UTC),
    )


def problems(response: Any) -> dict[str, str]:
    return {tuple(d["loc"])[-1]: d["msg"] for d in response.json()["detail"]}


def test_feedback_on_a_denial_never_scored_is_refused_by_name(desk: Desk) -> None:
    response = desk.post({"idempotency_key": "k", "denial_id": "D-404", "reviewer_note": "x"})
    assert response.status_code == 404
    assert "'D-404' has not been scored" in response.json()["detail"]
    assert desk.stored("D-404") == 0


@pytest.mark.parametrize("length", [128, 150])
def test_a_denial_id_the_log_cannot_hold_is_refused_not_retried(desk: Desk, length: int) -> None:
    """On PostgreSQL a 129-200 character id failed the insert and was answered 503 'retry':
    now no score has it (404), or the schema bounds it first (422); never a 5xx."""
    long_id = "D" * length
    response = desk.post({"idempotency_key": "k", "denial_id": long_id, "reviewer_note": "x"})
    assert response.status_code in (404, 422), response.text
    assert desk.stored(long_id) == 0


def test_the_recovered_amount_is_held_to_the_latest_denied_amount(desk: Desk) -> None:
    outcome = {"denial_id": "D-1", "resolution": "overturned_on_appeal"}
    over = desk.post({**outcome, "idempotency_key": "a", "recovered_amount": 300.0})
    assert over.status_code == 422
    assert over.json()["detail"] == [
        {"loc": ["body", "recovered_amount"], "msg": OVER_THE_DENIED_AMOUNT}
    ]
    trillions = desk.post({**outcome, "idempotency_key": "b", "recovered_amount": 999999999999.99})
    assert trillions.status_code == 422
    whole = desk.post({**outcome, "idempotency_key": "c", "recovered_amount": 200.0})
    assert whole.status_code == 201, whole.text
    assert desk.stored("D-1") == 1


def test_an_outcome_dated_after_today_is_refused_by_field(desk: Desk) -> None:
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    outcome = {"denial_id": "D-1", "resolution": "written_off"}
    future = desk.post({**outcome, "idempotency_key": "f", "resolved_date": tomorrow.isoformat()})
    assert problems(future) == {"resolved_date": AFTER_TODAY}
    today = desk.post(
        {**outcome, "idempotency_key": "t", "resolved_date": str(tomorrow - dt.timedelta(days=1))}
    )
    assert today.status_code == 201, today.text


def test_a_score_without_facts_takes_feedback_checked_by_the_body_alone(desk: Desk) -> None:
    body = {"idempotency_key": "a", "denial_id": "D-OLD", "resolution": "paid_after_correction"}
    assert desk.post({**body, "recovered_amount": 50.0}).status_code == 201
    written_off = {**body, "idempotency_key": "b", "resolution": "written_off"}
    assert desk.post({**written_off, "recovered_amount": 50.0}).status_code == 422


@pytest.mark.parametrize(
    ("outcome", "field", "message"),
    [
        ({"resolution": "written_off", "recovered_amount": 50.0}, "recovered_amount", "nothing"),
        ({"resolution": "billed_to_patient", "recovered_amount": 5}, "recovered_amount", "payer"),
        ({"resolution": "open", "recovered_amount": 0}, "recovered_amount", "while the denial"),
        ({"resolution": "open", "resolved_date": "2026-10-01"}, "resolved_date", "while the"),
        ({"recovered_amount": 10.0}, "recovered_amount", "needs the resolution"),
        ({"resolved_date": "2026-10-01"}, "resolved_date", "needs the resolution"),
        ({"resolution": "written_off", "resolved_date": "2026-08-01"}, "resolved_date", "before"),
    ],
)
def test_an_outcome_that_does_not_add_up_is_refused_by_field(
    desk: Desk, outcome: dict[str, Any], field: str, message: str
) -> None:
    response = desk.post({"idempotency_key": "k", "denial_id": "D-1", **outcome})
    assert response.status_code == 422, response.text
    assert list(problems(response)) == [field]
    assert message in problems(response)[field]
    assert desk.stored("D-1") == 0


def test_a_denial_resolved_the_day_it_was_denied_is_stored(desk: Desk) -> None:
    """Scores of 835 files keep the denial date as a timestamp; the day is what counts."""
    stamped = scored("D-835", 120.0, day=3)
    stamped["facts"]["denial_date"] = f"{DENIED_ON}T00:00:00.000"
    engine = make_engine(desk.database_url)
    with session_factory(engine)() as session:
        record_scores(session, [stamped])
    engine.dispose()
    same_day = {"resolution": "written_off", "resolved_date": DENIED_ON}
    assert desk.post({"idempotency_key": "k", "denial_id": "D-835", **same_day}).status_code == 201
    day_before = {**same_day, "resolved_date": "2026-09-01"}
    refused = desk.post({"idempotency_key": "j", "denial_id": "D-835", **day_before})
    assert problems(refused) == {"resolved_date": BEFORE_THE_DENIAL}


@pytest.mark.parametrize(
    "outcome",
    [
        {"resolution": "written_off", "recovered_amount": 0, "resolved_date": "2026-11-01"},
        {"resolution": "billed_to_patient"},
        {"resolution": "open"},
        {"resolution": "paid_after_correction", "recovered_amount": 0.01},
    ],
)
def test_outcomes_that_add_up_are_stored(desk: Desk, outcome: dict[str, Any]) -> None:
    response = desk.post({"idempotency_key": "k", "denial_id": "D-1", **outcome})
    assert response.status_code == 201, response.text
    assert desk.stored("D-1") == 1


def test_idempotency_keys_belong_to_their_caller(desk: Desk) -> None:
    mine = {"idempotency_key": "shared-1", "denial_id": "D-1", "confirmed_root_cause": True}
    theirs = {**mine, "confirmed_root_cause": False, "corrected_root_cause": "duplicate"}
    assert desk.post(mine, role="reviewer").status_code == 201
    other = desk.post(theirs, role="admin")
    assert other.status_code == 201, other.text  # was 409, or 200 with the other's row
    assert other.json()["id"] != desk.post(mine, role="reviewer").json()["id"]
    assert desk.post(theirs, role="reviewer").status_code == 409  # still refused for its owner
    assert desk.stored("D-1") == 2


@pytest.mark.parametrize(
    ("narrowing", "refusal"),
    [
        ("ALTER TABLE feedback ALTER COLUMN reviewer_note TYPE varchar(5)", "DataError"),
        ("ALTER TABLE feedback ADD CONSTRAINT short_note CHECK (length(reviewer_note) < 5)", ""),
    ],
)
def test_a_refusal_no_retry_can_fix_is_422_not_503(
    desk: Desk, backend: str, narrowing: str, refusal: str
) -> None:
    """A value the database will never take (here, a note longer than a narrowed column or a
    check allows) is the request's problem: 503 'retry with the same key' would loop."""
    if backend != "postgresql":
        pytest.skip("SQLite neither bounds text nor adds a CHECK to an existing table")
    engine = make_engine(desk.database_url)
    with engine.begin() as connection:
        connection.execute(text(narrowing))
    engine.dispose()
    response = desk.post({"idempotency_key": "k", "denial_id": "D-1", "reviewer_note": "longer"})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body"] and (refusal or "IntegrityError") in detail["msg"]
    assert "cannot succeed" in detail["msg"]
