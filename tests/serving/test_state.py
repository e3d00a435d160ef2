"""What the service state records: the audit documents hold exactly what the response says."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from features.contract import clean_records
from serving.schemas import ScoreResponse
from serving.scoring import TASKS, score_denials
from serving.state import AUDIT_CHUNK, _audit_records
from training.tracking import example_payload
from training.triage_model import TriageModel


def test_audit_records_hold_what_the_response_says(
    triage_model: TriageModel, split_history: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    payload = json.loads(example_payload(split_history[1].head(40)).to_json(orient="records"))
    results = score_denials(triage_model, clean_records(payload))
    response = ScoreResponse(
        request_id="req-1",
        model_version="7",
        mapping_version="m#1",
        scored_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        results=results,
    )
    records = [
        record for chunk in _audit_records(response, results, payload, "wl") for record in chunk
    ]
    assert len(records) == len(payload)
    for record, scored, denial in zip(records, response.results, payload, strict=True):
        dumped = scored.model_dump(mode="json")
        explanation = {task: dumped[task].pop("explanation") for task in TASKS}
        # Equal documents with equal key order: the database stores the same JSON text.
        assert json.dumps(record["outputs"]) == json.dumps(dumped)
        assert json.dumps(record["explanation"]) == json.dumps(explanation)
        assert record["denial_id"] == denial["denial_id"] and record["caller"] == "wl"


def test_audit_records_of_a_large_request_come_in_chunks(
    triage_model: TriageModel, split_history: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    payload = json.loads(example_payload(split_history[1].head(3)).to_json(orient="records"))
    results = score_denials(triage_model, clean_records(payload), explain=False)
    count = 2 * AUDIT_CHUNK + 5
    many_results = [{**results[i % 3], "denial_id": f"D-{i}"} for i in range(count)]
    many_payload = [{**payload[i % 3], "denial_id": f"D-{i}"} for i in range(count)]
    response = ScoreResponse(
        request_id="req-2",
        model_version="7",
        mapping_version="m#1",
        scored_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        results=many_results,
    )
    chunks = list(_audit_records(response, many_results, many_payload, "wl"))
    assert [len(chunk) for chunk in chunks] == [AUDIT_CHUNK, AUDIT_CHUNK, 5]
    assert [r["denial_id"] for chunk in chunks for r in chunk] == [f"D-{i}" for i in range(count)]
