"""The audit log: one record per scored denial, read back latest first, nothing duplicated."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import numpy as np
from conftest import TEST_INPUT_HASH_KEY
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.records import ScoreRecord
from serving.repository import (
    audit_record,
    canonical_hash,
    canonical_json,
    count_scores,
    input_hash,
    latest_score,
    record_scores,
    use_input_hash_key,
)

pytest_plugins = ["database_fixtures"]

DENIAL = {
    "denial_id": "D-1",
    "payer_id": "87726",
    "denial_date": dt.date(2026, 2, 1),
    "denied_amount": 180.5,
    "carc_codes": ["CO-197"],
}


def scored(denial_id: str, at: dt.datetime, category: str = "coding") -> dict:
    return audit_record(
        request_id=f"req-{at:%H%M}",
        denial={**DENIAL, "denial_id": denial_id},
        caller="worklist",
        model_version="3",
        mapping_version="2026.1",
        outputs={"root_cause": {"category": category, "probability": np.float32(0.75)}},
        explanation={"root_cause": {"base_value": -1.0, "reasons": [{"feature": "carc"}]}},
        scored_at=at,
    )


def at(hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, 1, hour, tzinfo=dt.UTC)


def test_latest_score_per_denial(session: Session) -> None:
    records = [scored("D-1", at(9)), scored("D-1", at(11), "duplicate"), scored("D-2", at(10))]
    assert record_scores(session, records) == 3
    latest = latest_score(session, "D-1")
    assert latest is not None
    assert latest.scored_at == at(11)
    assert latest.outputs["root_cause"]["category"] == "duplicate"
    assert latest.explanation["root_cause"]["reasons"] == [{"feature": "carc"}]
    assert (latest.caller, latest.model_version, latest.mapping_version) == (
        "worklist",
        "3",
        "2026.1",
    )
    assert latest_score(session, "D-2").request_id == "req-1000"
    assert latest_score(session, "never-scored") is None


def test_a_record_written_twice_is_stored_once(session: Session) -> None:
    records = [scored("D-1", at(9)), scored("D-2", at(9))]
    assert record_scores(session, records) == 2
    assert record_scores(session, records) == 0
    assert record_scores(session, [*records, scored("D-3", at(9))]) == 1
    assert count_scores(session) == 3


def test_records_from_the_service_with_datetimes_are_accepted(session: Session) -> None:
    record = {**scored("D-1", at(9)), "scored_at": at(9)}
    assert record_scores(session, [record]) == 1
    assert session.scalars(select(ScoreRecord.scored_at)).one() == at(9)


def test_the_input_is_kept_as_a_keyed_hash_and_its_routing_facts(input_hash_key: str) -> None:
    use_input_hash_key(input_hash_key)  # a service started earlier in this process set its own
    record = scored("D-1", at(9))
    keyed = hmac.new(input_hash_key.encode(), canonical_json(DENIAL), hashlib.sha256)
    assert record["input_hash"] == keyed.hexdigest()
    # An unkeyed hash could be confirmed by anyone guessing the denial's fields offline.
    assert record["input_hash"] != canonical_hash(DENIAL)
    # What the reviewers' worklist filters by; the rest of a denial stays inside the hash.
    assert record["facts"] == {
        "payer_id": "87726",
        "denial_date": "2026-02-01",
        "denied_amount": 180.5,
        "carc_codes": ["CO-197"],
    }
    assert set(record) == {
        "record_id",
        "request_id",
        "denial_id",
        "scored_at",
        "caller",
        "model_version",
        "mapping_version",
        "input_hash",
        "outputs",
        "explanation",
        "facts",
    }


def test_input_hash_ignores_field_order_and_sees_any_change_and_any_other_key() -> None:
    reordered = dict(reversed(list(DENIAL.items())))
    assert input_hash(reordered) == input_hash(DENIAL)
    assert input_hash({**DENIAL, "denied_amount": 180.51}) != input_hash(DENIAL)
    mine = input_hash(DENIAL)
    try:
        use_input_hash_key("another-site-key-of-at-least-32-characters")
        assert input_hash(DENIAL) != mine
    finally:
        use_input_hash_key(TEST_INPUT_HASH_KEY)


def test_audit_documents_are_plain_json() -> None:
    record = audit_record(
        request_id="r",
        denial=DENIAL,
        caller="c",
        model_version="1",
        mapping_version="m",
        outputs={"p": np.float64("nan"), "n": np.int64(3), "when": dt.date(2026, 1, 2)},
        explanation={"values": np.array([1.5, 2.5])},
    )
    assert record["outputs"] == {"p": None, "n": 3, "when": "2026-01-02"}
    assert record["explanation"] == {"values": [1.5, 2.5]}
    json.dumps(record, allow_nan=False)


def test_records_built_elsewhere_with_nan_are_stored(session: Session) -> None:
    record = {**scored("D-1", at(9)), "outputs": {"probability": float("nan")}}
    assert record_scores(session, [record]) == 1
    assert latest_score(session, "D-1").outputs == {"probability": None}
