"""The HTTP service end to end, with a real model trained on small generated data."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from conftest import ChampionRegistry, copy_registry
from database_fixtures import auth, create_keys, postgres_schema, require_postgres
from fastapi.testclient import TestClient
from sqlalchemy import make_url, select

from denial_triage.settings import Settings
from features.contract import ROOT_CAUSES
from features.mapping import ACTION_PATHS, load_mapping
from serving.app import create_app
from serving.audit_writer import ProcessStore
from serving.database import make_engine, session_factory
from serving.records import ScoreRecord
from serving.repository import AUDIT_FIELDS
from serving.schemas import ScoreResponse
from training.tracking import example_payload
from training.triage_model import REVIEW_REASONS

ROLES = ("scorer", "reviewer", "admin")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema (skipped on a workstation without PostgreSQL, never in CI)."""
    require_postgres()
    yield from postgres_schema()


@pytest.fixture(scope="module")
def trained(champion_data_dir: Path, champion_history: pd.DataFrame) -> tuple[Path, pd.DataFrame]:
    """A data directory holding an MLflow registry with a champion, and denials to score."""
    return champion_data_dir, champion_history.tail(300).reset_index(drop=True)


@pytest.fixture(scope="module")
def service(trained: tuple[Path, pd.DataFrame]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    data_dir, _ = trained
    settings = Settings(data_dir=data_dir, model_poll_seconds=3600, max_batch_denials=100)
    with TestClient(create_app(settings)) as client:
        yield client, _keys(settings)


def _keys(settings: Settings) -> dict[str, str]:
    return create_keys(settings.resolved_database_url, f"test-{id(settings)}")


def payload(denials: pd.DataFrame) -> list[dict]:
    return json.loads(example_payload(denials).to_json(orient="records"))


def score(client: TestClient, key: str, denials: list[dict], **options) -> dict:
    response = client.post("/v1/score", json={"denials": denials, **options}, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def test_score_answers_every_part_for_each_denial(service, trained) -> None:
    client, keys = service
    denials = payload(trained[1].head(20))
    body = score(client, keys["scorer"], denials)
    assert body["model_version"] == "1"
    assert body["mapping_version"].startswith("2026.12.1#")
    assert len(body["request_id"]) >= 16
    assert [r["denial_id"] for r in body["results"]] == [d["denial_id"] for d in denials]
    for result in body["results"]:
        assert math.isclose(sum(result["root_cause"]["probabilities"].values()), 1.0, rel_tol=1e-6)
        assert 0 <= result["recovery"]["probability"] <= 1
        assert 0 <= result["preventable"]["probability"] <= 1
        assert result["routing"]["owner_queue"] and result["routing"]["action_path"]
        assert result["priority"]["deadline_rule"].endswith((".appeal", ".timely_filing"))
        assert result["requires_human_review"] == bool(result["review_reasons"])


@pytest.mark.parametrize("task", ["root_cause", "recovery", "preventable"])
def test_reasons_add_up_to_the_score_over_http(service, trained, task: str) -> None:
    client, keys = service
    body = score(client, keys["scorer"], payload(trained[1].head(10)), top_reasons=4)
    for result in body["results"]:
        explanation = result[task]["explanation"]
        total = explanation["base_value"] + explanation["rest"]
        total += sum(reason["contribution"] for reason in explanation["reasons"])
        assert total == pytest.approx(explanation["output"], abs=1e-6)
        assert len(explanation["reasons"]) <= 4
        assert all(
            r["text"] and r["direction"] in {"raises", "lowers"} for r in explanation["reasons"]
        )
        if task != "root_cause":
            p = result[task]["probability"]
            assert explanation["output"] == pytest.approx(math.log(p / (1 - p)), abs=1e-6)


@pytest.mark.parametrize("options", [{}, {"explain": False}, {"top_reasons": 1}])
def test_answers_are_exactly_what_the_declared_response_model_gives(
    service, trained, options: dict
) -> None:
    # The answer is encoded without the pydantic model (it is the hot path): it must still be
    # a valid ScoreResponse, field for field, and nothing more.
    client, keys = service
    response = client.post(
        "/v1/score",
        json={"denials": payload(trained[1].head(50)), **options},
        headers=auth(keys["scorer"]),
    )
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert ScoreResponse.model_validate_json(response.content).model_dump(mode="json") == body
    explained = [result["recovery"]["explanation"] for result in body["results"]]
    assert all(e is None for e in explained) == (options.get("explain") is False)


def test_the_latest_score_is_read_back_from_the_audit_log(service, trained) -> None:
    client, keys = service
    denial = payload(trained[1].iloc[[40]])
    scored = score(client, keys["scorer"], denial)
    response = client.get(f"/v1/denials/{denial[0]['denial_id']}", headers=auth(keys["reviewer"]))
    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["request_id"] == scored["request_id"]
    assert stored["model_version"] == "1" and len(stored["input_hash"]) == 64
    assert stored["score"]["recovery"] == scored["results"][0]["recovery"]
    missing = client.get("/v1/denials/never-scored", headers=auth(keys["reviewer"]))
    assert missing.status_code == 404


def test_a_read_counts_days_to_deadline_from_today_not_from_scoring(service, trained) -> None:
    client, keys = service
    denial = payload(trained[1].iloc[[41]])
    scored = score(client, keys["scorer"], denial)["results"][0]["priority"]
    stored = client.get(f"/v1/denials/{denial[0]['denial_id']}", headers=auth(keys["reviewer"]))
    read = stored.json()["score"]["priority"]
    today = dt.date.today()
    assert scored["counted_from"] == denial[0]["as_of_date"][:10] != today.isoformat()
    assert read["counted_from"] == today.isoformat()
    deadline = dt.date.fromisoformat(read["deadline"])
    assert read["days_to_deadline"] == (deadline - today).days < scored["days_to_deadline"]
    assert read["deadline"] == scored["deadline"] and read["effort_hours"] == scored["effort_hours"]


def test_the_plan_lists_open_workable_denials_within_each_queues_hours(service, trained) -> None:
    client, keys = service
    denials = payload(trained[1].iloc[60:120])
    results = score(client, keys["scorer"], denials)["results"]
    client.app.state.service.flush_audit()  # the plan reads the stored scores, as pages do
    day = min(d["as_of_date"][:10] for d in denials)
    reviewer = auth(keys["reviewer"])
    response = client.get("/v1/worklist/plan", params={"hours": 3, "date": day}, headers=reviewer)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["counted_from"] == day and plan["hours_per_queue"] == 3
    for queue in plan["queues"]:
        assert queue["hours_planned"] <= 3
        scores = [d["priority_score"] for d in queue["denials"]]
        assert scores == sorted(scores, reverse=True)
        assert all(d["expected_net_dollars"] > 0 for d in queue["denials"])
    # With hours for everything, every open denial worth the work is planned.
    everything = {"hours": 700, "date": day}
    whole = client.get("/v1/worklist/plan", params=everything, headers=reviewer).json()
    ours = {r["denial_id"] for r in results}
    planned = [d for q in whole["queues"] for d in q["denials"] if d["denial_id"] in ours]
    assert len(planned) > 10
    # An outcome closes a denial: it leaves the plan.
    closed = planned[0]["denial_id"]
    feedback = {
        "idempotency_key": f"plan-{closed}",
        "denial_id": closed,
        "resolution": "written_off",
        "recovered_amount": 0.0,
    }
    assert client.post("/v1/feedback", json=feedback, headers=reviewer).status_code == 201
    again = client.get("/v1/worklist/plan", params=everything, headers=reviewer)
    assert closed not in {d["denial_id"] for q in again.json()["queues"] for d in q["denials"]}
    # Years later every deadline has passed: nothing to plan, all gone to write-off review.
    years_later = {"hours": 3, "date": "2035-01-01"}
    late = client.get("/v1/worklist/plan", params=years_later, headers=reviewer)
    assert all(not q["denials"] for q in late.json()["queues"])
    assert late.json()["past_every_deadline"] >= len(ours) - 1
    typo = {"hours": 3, "queue": "codign"}
    unknown = client.get("/v1/worklist/plan", params=typo, headers=reviewer)
    assert unknown.status_code == 422 and "codign" in unknown.text
    assert client.get("/v1/worklist/plan", params={"hours": 0}, headers=reviewer).status_code == 422


def test_feedback_is_idempotent_on_its_key(service, trained) -> None:
    client, keys = service
    denial = trained[1].iloc[5]
    score(client, keys["scorer"], payload(trained[1].iloc[[5]]))  # feedback is on scores only
    body = {
        "idempotency_key": "test-feedback-1",
        "denial_id": denial["denial_id"],
        "corrected_root_cause": "coding",
        "resolution": "paid_after_correction",
        "recovered_amount": float(denial["denied_amount"]),
        "resolved_date": "2026-10-01",
    }
    first = client.post("/v1/feedback", json=body, headers=auth(keys["reviewer"]))
    again = client.post("/v1/feedback", json=body, headers=auth(keys["reviewer"]))
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"] and again.json()["created"] is False
    changed = client.post(
        "/v1/feedback", json={**body, "recovered_amount": 1.0}, headers=auth(keys["reviewer"])
    )
    assert changed.status_code == 409


def test_contract_violations_name_the_denial_and_field(service, trained) -> None:
    client, keys = service
    denials = payload(trained[1].head(3))
    denials[1]["denied_amount"] = denials[1]["billed_amount"] * 2
    denials[2]["service_date"] = "2031-01-01"
    response = client.post("/v1/score", json={"denials": denials}, headers=auth(keys["scorer"]))
    assert response.status_code == 422
    locations = {(d["loc"][2], d["loc"][3]) for d in response.json()["detail"]}
    assert locations == {(1, "denied_amount"), (2, "service_date")}
    typed = client.post(
        "/v1/score",
        json={"denials": [{**denials[0], "payer_type": "martian"}]},
        headers=auth(keys["scorer"]),
    )
    assert typed.status_code == 422
    assert typed.json()["detail"][0]["loc"][-1] == "payer_type"


def test_skip_scores_the_good_denials_and_names_each_bad_one(service, trained) -> None:
    client, keys = service
    denials = payload(trained[1].iloc[60:65])
    for number, denial in enumerate(denials):  # ids no other test of the module scores
        denial["denial_id"] = f"SKIP-{number}"
    denials[1]["payer_type"] = "martian"  # breaks the schema
    denials[3]["denied_amount"] = denials[3]["billed_amount"] * 2  # breaks a contract rule
    body = score(client, keys["scorer"], denials, on_error="skip")
    good = [denials[i]["denial_id"] for i in (0, 2, 4)]
    assert [result["denial_id"] for result in body["results"]] == good
    assert [(r["index"], [e["loc"] for e in r["errors"]]) for r in body["rejected"]] == [
        (1, [["payer_type"]]),
        (3, [["denied_amount"]]),
    ]
    assert all(r["error_count"] == 1 and r["errors"][0]["msg"] for r in body["rejected"])
    assert "martian" not in json.dumps(body["rejected"])  # the values sent are not echoed
    # The scored denials are audited like any score; the skipped ones were never scored.
    reviewer = auth(keys["reviewer"])
    for denial_id in good:
        stored = client.get(f"/v1/denials/{denial_id}", headers=reviewer)
        assert stored.json()["request_id"] == body["request_id"]
    for index in (1, 3):
        assert (
            client.get(f"/v1/denials/{denials[index]['denial_id']}", headers=reviewer).status_code
            == 404
        )
    # The default is unchanged: one bad denial refuses the batch.
    refused = client.post("/v1/score", json={"denials": denials}, headers=auth(keys["scorer"]))
    assert refused.status_code == 422


def test_skip_with_every_denial_broken_answers_none_scored(service, trained) -> None:
    client, keys = service
    denials = [{**d, "claim_type": "spaceship"} for d in payload(trained[1].iloc[70:72])]
    body = score(client, keys["scorer"], denials, on_error="skip")
    assert body["results"] == []
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    unknown = client.post(
        "/v1/score",
        json={"denials": denials, "on_error": "ignore"},
        headers=auth(keys["scorer"]),
    )
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "on_error"]


def test_openapi_lists_the_values_of_categories_paths_queues_and_review_reasons(service) -> None:
    client, keys = service
    schemas = client.get("/v1/openapi.json", headers=auth(keys["scorer"])).json()["components"][
        "schemas"
    ]
    mapping = load_mapping()
    routing = schemas["Routing"]["properties"]
    assert routing["action_path"]["enum"] == list(ACTION_PATHS)
    assert routing["owner_queue"]["enum"] == list(mapping.owner_queues)
    assert "triage" in routing["owner_queue"]["enum"]
    assert schemas["RootCauseScore"]["properties"]["category"]["enum"] == list(ROOT_CAUSES)
    codes = schemas["DenialScore"]["properties"]["review_reason_codes"]["anyOf"][0]
    assert codes["items"]["enum"] == list(REVIEW_REASONS)
    owners = schemas["PreventableScore"]["properties"]["prevention_owner"]["enum"]
    assert set(owners) == {p.prevention_owner for p in mapping.root_causes.values()}
    recovery = schemas["RecoveryScore"]["properties"]
    assert "0-1" in recovery["probability"]["description"]
    assert "dollars" in recovery["expected_recovered_dollars"]["description"]
    assert schemas["ScoreRequest"]["properties"]["on_error"]["enum"] == ["reject", "skip"]


def test_every_review_reason_carries_its_code(service, trained) -> None:
    client, keys = service
    body = score(client, keys["scorer"], payload(trained[1].head(60)))
    flagged = [r for r in body["results"] if r["review_reasons"]]
    assert flagged
    for result in body["results"]:
        assert len(result["review_reason_codes"]) == len(result["review_reasons"])
        assert set(result["review_reason_codes"]) <= set(REVIEW_REASONS)


def test_codes_never_seen_in_training_are_scored_and_flagged(service, trained) -> None:
    client, keys = service
    denial = payload(trained[1].head(1))[0]
    body = score(client, keys["scorer"], [{**denial, "carc_codes": ["CO-999"]}])
    assert body["results"][0]["unseen_codes"] == ["CO-999"]
    assert body["results"][0]["requires_human_review"]


def test_batch_and_body_limits(service, trained) -> None:
    client, keys = service
    denial = payload(trained[1].head(1))[0]
    batch = [{**denial, "denial_id": f"limit-{i}"} for i in range(101)]
    assert (
        client.post("/v1/score", json={"denials": batch}, headers=auth(keys["scorer"])).status_code
        == 413
    )
    huge = b'{"denials": [' + b" " * (11 * 1024 * 1024) + b"]}"
    response = client.post(
        "/v1/score",
        content=huge,
        headers={**auth(keys["scorer"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/v1/score", {"scorer", "admin"}),
        ("post", "/v1/ingest/835", {"scorer", "admin"}),
        ("get", "/v1/denials/x", {"reviewer", "admin"}),
        ("get", "/v1/worklist/plan?hours=2", {"reviewer", "admin"}),
        ("post", "/v1/feedback", {"reviewer", "admin"}),
        ("post", "/v1/admin/reload", {"admin"}),
        ("get", "/metrics", {"admin"}),
    ],
)
def test_every_endpoint_checks_key_and_role(
    service, method: str, path: str, allowed: set[str]
) -> None:
    client, keys = service
    call = getattr(client, method)
    assert call(path).status_code == 401
    assert call(path, headers=auth("dt_not_a_key")).status_code == 401
    for role in ROLES:
        status = call(path, headers=auth(keys[role])).status_code
        assert (status != 403) == (role in allowed), (role, status)
        assert status != 401


def test_health_and_readiness_need_no_key(service) -> None:
    client, _ = service
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] and ready.json()["model_version"] == "1"
    assert ready.json()["model_source"] == "registry"


def test_metrics_count_scored_denials(service, trained) -> None:
    client, keys = service
    score(client, keys["scorer"], payload(trained[1].head(2)))
    text = client.get("/metrics", headers=auth(keys["admin"])).text
    assert "denial_triage_denials_scored_total" in text
    assert 'denial_triage_requests_total{route="/v1/score",status="200"}' in text


def test_no_patient_identifier_reaches_the_logs(
    service, trained, capfd: pytest.CaptureFixture[str]
) -> None:
    client, keys = service
    denial = payload(trained[1].head(1))[0]
    secret = "PATIENT-NAME-DOE-JANE"  # pragma: allowlist secret
    score(client, keys["scorer"], [{**denial, "patient_name": secret, "member_id": "MEMBER-12345"}])
    client.post(
        "/v1/score",
        json={"denials": [{**denial, "payer_type": secret}]},
        headers=auth(keys["scorer"]),
    )
    captured = capfd.readouterr()
    assert secret not in captured.out + captured.err
    assert "MEMBER-12345" not in captured.out + captured.err


def test_openapi_documents_the_versioned_routes(service) -> None:
    client, keys = service
    assert client.get("/v1/openapi.json").status_code == 401
    spec = client.get("/v1/openapi.json", headers=auth(keys["scorer"])).json()
    assert {"/v1/score", "/v1/feedback", "/v1/denials/{denial_id}", "/v1/ingest/835"} <= set(
        spec["paths"]
    )
    example = spec["components"]["schemas"]["ScoreRequest"]["examples"][0]
    assert example["denials"][0]["carc_codes"] == ["CO-197"]


def test_the_service_uses_postgresql_when_told(
    champion_registry: ChampionRegistry, trained, tmp_path: Path, postgres_url: str
) -> None:
    data_dir = copy_registry(champion_registry, tmp_path)  # a folder no other test serves from
    denials = payload(trained[1].head(3))
    for i, denial in enumerate(denials):
        denial["denial_id"] = f"postgresql-{i}"
    settings = Settings(data_dir=data_dir, database_url=postgres_url, model_poll_seconds=3600)
    with TestClient(create_app(settings)) as client:
        keys = _keys(settings)
        body = score(client, keys["scorer"], denials)
        read = client.get(
            f"/v1/denials/{body['results'][0]['denial_id']}", headers=auth(keys["reviewer"])
        )
        assert read.status_code == 200
    # The records are in PostgreSQL's schema, and no SQLite database was made beside the
    # registry: a service that ignored the URL would read its own scores back just as well.
    assert make_url(settings.resolved_database_url).get_backend_name() == "postgresql"
    engine = make_engine(postgres_url)
    try:
        with session_factory(engine)() as session:
            stored = session.scalars(select(ScoreRecord.denial_id)).all()
    finally:
        engine.dispose()
    assert sorted(stored) == [denial["denial_id"] for denial in denials]
    assert not (data_dir / "denial-triage.db").exists()


def test_every_denial_scored_concurrently_is_read_back(service, trained) -> None:
    """Audit records are written behind the response, yet every one is there to read."""
    client, keys = service
    denials = payload(trained[1].iloc[100:160])
    for i, denial in enumerate(denials):
        denial["denial_id"] = f"concurrent-{i}"
    batches = [denials[i : i + 6] for i in range(0, len(denials), 6)]
    with ThreadPoolExecutor(4) as pool:
        answered = list(pool.map(lambda batch: score(client, keys["scorer"], batch), batches))
    reviewer = auth(keys["reviewer"])
    for body, batch in zip(answered, batches, strict=True):
        for denial in batch:
            stored = client.get(f"/v1/denials/{denial['denial_id']}", headers=reviewer)
            assert stored.status_code == 200, stored.text
            assert stored.json()["request_id"] == body["request_id"]


@pytest.mark.parametrize(
    ("write_behind", "worker_process"), [(False, False), (True, False)], ids=["inline", "thread"]
)
def test_every_audit_mode_records_each_score(
    trained, tmp_path: Path, write_behind: bool, worker_process: bool
) -> None:
    """The switches off the default path (records written before the answer, or from a thread
    of the service) record every score too; the default is covered by the tests above."""
    data_dir, denials = trained
    settings = _audit_settings(
        data_dir,
        f"sqlite:///{(tmp_path / 'records.db').as_posix()}",
        audit_write_behind=write_behind,
        audit_worker_process=worker_process,
    )
    with TestClient(create_app(settings)) as client:
        keys = _keys(settings)
        body = score(client, keys["scorer"], payload(denials.iloc[200:210]))
        for result in body["results"]:
            stored = client.get(
                f"/v1/denials/{result['denial_id']}", headers=auth(keys["reviewer"])
            )
            assert stored.status_code == 200, stored.text
            assert stored.json()["request_id"] == body["request_id"]


# What a record holds apart from what is new per request (its ids and time of scoring).
STORED_COLUMNS = [
    name
    for name in (*AUDIT_FIELDS, "facts")
    if name not in ("record_id", "request_id", "scored_at")
]


def test_the_thread_stores_the_records_the_worker_process_stores(trained, tmp_path: Path) -> None:
    """The audit writer's two modes (DENIAL_TRIAGE_AUDIT_WORKER_PROCESS) store the same
    records, value for value, for the same requests: they may be compared on speed alone."""
    data_dir, denials = trained
    requests = [payload(denials.iloc[210:240]), payload(denials.iloc[240:241])]
    stored = {}
    for worker_process in (True, False):
        url = f"sqlite:///{(tmp_path / f'records-{worker_process}.db').as_posix()}"
        settings = _audit_settings(data_dir, url, audit_worker_process=worker_process)
        with TestClient(create_app(settings)) as client:
            service = client.app.state.service
            assert isinstance(service.audit_writer.store, ProcessStore) == worker_process
            key = create_keys(url, "same-caller")["scorer"]
            for denials_sent in requests:
                score(client, key, denials_sent)
            service.flush_audit()
        stored[worker_process] = _stored_records(url)
    assert len(stored[True]) == 31
    assert stored[False] == stored[True]


def _audit_settings(data_dir: Path, database_url: str, **audit: bool) -> Settings:
    """The service on its own records database, with the audit writer's switches given."""
    return Settings(data_dir=data_dir, database_url=database_url, model_poll_seconds=3600, **audit)


def _stored_records(url: str) -> list[tuple]:
    columns = [getattr(ScoreRecord, name) for name in STORED_COLUMNS]
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(select(*columns).order_by(ScoreRecord.id))
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()
