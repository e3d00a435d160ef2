"""Findings of the adversarial review of the running service, each reproduced over HTTP:
limits checked before work, strings bounded by the contract, ids the service can trust, and
answers that never echo what a caller sent."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from database_fixtures import auth, create_keys
from fastapi.testclient import TestClient

from denial_triage.settings import Settings
from features.contract import TEXT_MAXIMUM
from serving.app import create_app
from serving.auth import KeyGate
from serving.errors import MAX_PROBLEMS_SHOWN, ServiceError
from serving.limits import VALUES_PER_DENIAL, read_score_body, value_bound
from serving.logs import configure_logging
from serving.refusals import RefusalThrottle
from training.tracking import example_payload

MAX_BATCH = 100


@pytest.fixture(scope="module")
def trained(champion_data_dir: Path, champion_history: pd.DataFrame) -> tuple[Path, pd.DataFrame]:
    return champion_data_dir, champion_history.tail(50).reset_index(drop=True)


@pytest.fixture(scope="module")
def service(trained: tuple[Path, pd.DataFrame]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    data_dir, _ = trained
    settings = Settings(data_dir=data_dir, model_poll_seconds=3600, max_batch_denials=MAX_BATCH)
    with TestClient(create_app(settings)) as client:
        yield client, create_keys(settings.resolved_database_url, "hardening")


@pytest.fixture(scope="module")
def denial(trained: tuple[Path, pd.DataFrame]) -> dict:
    return json.loads(example_payload(trained[1].head(1)).to_json(orient="records"))[0]


def post_score(client: TestClient, key: str | None, body: bytes, **headers: str):
    headers = {"Content-Type": "application/json", **headers, **(auth(key) if key else {})}
    return client.post("/v1/score", content=body, headers=headers)


# ---------------------------------------------------------------------------- limits before work


def test_a_flood_of_empty_denials_is_refused_before_parsing(service) -> None:
    """100,000 empty denials (300 KB) took 9.7 s, 1.6 GB and answered a 69 MB 422."""
    client, keys = service
    body = b'{"denials":[' + b",".join([b"{}"] * 100_000) + b"]}"
    started = time.perf_counter()
    response = post_score(client, keys["scorer"], body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 413
    assert "JSON values" in response.json()["detail"]
    assert len(response.content) < 1_000
    assert elapsed < 2.0  # generous for a loaded CI machine; the benchmark measures it


def test_a_body_with_too_many_values_is_refused_before_the_rest_arrives() -> None:
    """10 MiB of empty denials is dropped once its values pass the bound, not received whole."""
    chunk = b",".join([b"{}"] * 21_000)  # 64 KiB, as a server reads it
    pulled = []

    async def arriving() -> AsyncIterator[bytes]:
        yield b'{"denials":['
        for _ in range(160):  # 10 MiB in all
            pulled.append(chunk)
            yield chunk + b","

    with pytest.raises(ServiceError) as refused:
        asyncio.run(read_score_body(arriving(), max_denials=1_000))
    assert refused.value.status_code == 413
    # Each chunk may hold 42,000 values: the bound (1,000 x 256 + 64) is passed in the 7th.
    assert len(pulled) == 7


def test_a_body_within_the_bound_is_read_whole_across_chunks() -> None:
    body = json.dumps(
        {"denials": [{"denial_id": f"D{i}", "carc_codes": ["CO-16"]} for i in range(40)]}
    )
    pieces = [body[i : i + 100].encode() for i in range(0, len(body), 100)]

    async def arriving() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    assert asyncio.run(read_score_body(arriving(), max_denials=1)) == body.encode()


def test_a_list_longer_than_the_batch_limit_is_refused_before_any_denial_is_validated(
    service,
) -> None:
    client, keys = service
    body = json.dumps({"denials": [{}] * (MAX_BATCH + 1)}).encode()
    response = post_score(client, keys["scorer"], body)
    assert response.status_code == 413
    assert response.json()["detail"] == f"{MAX_BATCH + 1} denials in one request; the limit is 100"


def test_problem_lists_are_capped_with_their_full_count(service) -> None:
    client, keys = service
    response = post_score(client, keys["scorer"], json.dumps({"denials": [{}] * 50}).encode())
    assert response.status_code == 422
    answer = response.json()
    assert len(answer["detail"]) == MAX_PROBLEMS_SHOWN
    # Ten required fields missing in each of 50 denials.
    assert answer["problem_count"] == 500
    assert answer["detail"][0]["loc"][:3] == ["body", "denials", 0]


def test_a_body_that_is_not_json_names_the_position_only(service) -> None:
    client, keys = service
    response = post_score(client, keys["scorer"], b'{"denials": [{"claim_id": "JOHN DOE"')
    assert response.status_code == 422
    assert response.json()["detail"] == [{"loc": ["body", 36], "msg": "not valid JSON"}]
    assert "JOHN" not in response.text


def test_the_value_bound_never_undercounts() -> None:
    document = {"denials": [{"a": [1, 2, {"b": None}], "c": "x,y"}], "explain": True}
    values = 1 + 2 + 1 + 2 + 3 + 1 + 1  # root, 2 members, list, a+c, 3 items, b, explain
    assert value_bound(json.dumps(document).encode()) >= values
    assert value_bound(json.dumps(document).encode()) < VALUES_PER_DENIAL * MAX_BATCH


def test_a_real_batch_at_the_limit_is_scored(service, denial) -> None:
    client, keys = service
    batch = [{**denial, "denial_id": f"limit-{i}"} for i in range(MAX_BATCH)]
    response = post_score(client, keys["scorer"], json.dumps({"denials": batch}).encode())
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == MAX_BATCH


def test_without_a_key_the_body_is_never_read() -> None:
    """Before, a 10 MiB body was parsed before the key was looked at."""
    reads: list[str] = []

    async def inner(scope, receive, send) -> None:
        await receive()
        reads.append("inner app read the body")

    async def receive() -> dict:
        reads.append("body read")
        return {"type": "http.request", "body": b"{}", "more_body": False}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    service = SimpleNamespace(authenticate=lambda key: None)
    app = SimpleNamespace(state=SimpleNamespace(service=service))
    for headers in ([], [(b"authorization", b"Bearer dt_0000000_wrong")]):
        scope = {"type": "http", "method": "POST", "path": "/v1/score", "headers": headers}
        scope |= {"app": app, "state": {"request_id": "r1"}}
        asyncio.run(KeyGate(inner, RefusalThrottle(100, 0.0))(scope, receive, send))
    assert reads == []
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [401, 401]


def test_forms_and_feedback_take_small_bodies_only(service) -> None:
    client, keys = service
    big = b"x" * (65 * 1024)
    headers = {**auth(keys["reviewer"]), "Content-Type": "application/json"}
    assert client.post("/v1/feedback", content=big, headers=headers).status_code == 413
    assert client.post("/ui/login", content=big).status_code == 413


# ---------------------------------------------------------------------------- bounded strings


def test_a_denial_id_longer_than_the_contract_allows_is_refused_before_the_answer(
    service, denial
) -> None:
    """On PostgreSQL a 205-character id was answered 200, then its audit record (and 27 of
    other callers) could never be written."""
    client, keys = service
    long_id = {**denial, "denial_id": "D" * (TEXT_MAXIMUM + 1)}
    response = post_score(client, keys["scorer"], json.dumps({"denials": [long_id]}).encode())
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "denials", 0, "denial_id"]


def test_feedback_for_an_id_longer_than_any_denial_is_a_422_not_a_retry(service) -> None:
    client, keys = service
    body = {"idempotency_key": "long-id", "denial_id": "D" * (TEXT_MAXIMUM + 1)}
    response = client.post("/v1/feedback", json=body, headers=auth(keys["reviewer"]))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "denial_id"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("carc_codes", [""]), ("carc_codes", ["1EG4TE5MK72"]), ("denied_amount", 5e-324)],
)
def test_the_schema_refuses_what_the_contract_refuses(service, denial, field, value) -> None:
    """The schema admitted these, and the contract then refused them."""
    client, keys = service
    spec = client.get("/v1/openapi.json", headers=auth(keys["scorer"])).json()
    schema = spec["components"]["schemas"]["DenialIn"]["properties"]
    response = post_score(
        client, keys["scorer"], json.dumps({"denials": [{**denial, field: value}]}).encode()
    )
    assert response.status_code == 422
    assert "1EG4TE5MK72" not in response.text
    carc_items = schema["carc_codes"]["items"]
    assert carc_items["pattern"].startswith("^(?:CO|PR|OA|PI|CR)")
    assert schema["denied_amount"]["minimum"] == 0.01
    assert spec["components"]["schemas"]["ScoreRequest"]["properties"]["denials"]["maxItems"] == (
        MAX_BATCH
    )


# ---------------------------------------------------------------------------- ids and paths


def test_a_client_request_id_is_kept_apart_from_the_audit_request_id(service, denial) -> None:
    client, keys = service
    body = json.dumps({"denials": [{**denial, "denial_id": "client-id-1"}]}).encode()
    response = post_score(client, keys["scorer"], body, **{"X-Request-ID": "abc-123"})
    assert response.status_code == 200
    answered = response.json()["request_id"]
    assert answered != "abc-123"
    assert response.headers["x-request-id"] == answered
    assert response.headers["x-client-request-id"] == "abc-123"
    stored = client.get("/v1/denials/client-id-1", headers=auth(keys["reviewer"])).json()
    assert stored["request_id"] == answered


def test_a_denial_id_with_a_slash_is_read_back(service, denial) -> None:
    client, keys = service
    body = json.dumps({"denials": [{**denial, "denial_id": "CLM/2026/7"}]}).encode()
    assert post_score(client, keys["scorer"], body).status_code == 200
    read = client.get("/v1/denials/CLM%2F2026%2F7", headers=auth(keys["reviewer"]))
    assert read.status_code == 200, read.text
    assert read.json()["denial_id"] == "CLM/2026/7"


@pytest.mark.parametrize("filename", ["..", "x/..", "r" * 300 + ".835", "a\x00b.835"])
def test_odd_upload_filenames_are_answered_without_a_traceback(
    service, filename: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, keys = service
    with caplog.at_level(logging.ERROR):
        response = client.post(
            "/v1/ingest/835",
            files={"file": (filename, b"not an 835 at all", "application/octet-stream")},
            headers=auth(keys["scorer"]),
        )
    assert response.status_code == 422, response.text
    assert not [r for r in caplog.records if r.exc_info]


def test_trace_is_refused_with_the_allowed_methods(service) -> None:
    client, _ = service
    response = client.request("TRACE", "/v1/score")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


def test_access_logs_never_carry_the_path(service, caplog: pytest.LogCaptureFixture) -> None:
    """uvicorn's access lines quote the raw path, and the path holds the denial id."""
    configure_logging("INFO")
    assert not logging.getLogger("uvicorn.access").isEnabledFor(logging.INFO)
    client, keys = service
    logger = logging.getLogger("denial_triage.service")
    logger.addHandler(caplog.handler)
    try:
        client.get("/v1/denials/D-PRIVATE-42", headers=auth(keys["reviewer"]))
    finally:
        logger.removeHandler(caplog.handler)
    lines = [r for r in caplog.records if r.getMessage() == "request"]
    assert lines and all(r.route == "/v1/denials/{denial_id:path}" for r in lines)
    assert not [r for r in caplog.records if "D-PRIVATE-42" in str(vars(r))]


def test_the_audit_keeps_a_hash_keyed_with_the_site_secret(service, trained, denial) -> None:
    """An unsalted SHA-256 of the whole denial could be confirmed by guessing it offline."""
    import hashlib
    import hmac
    import stat

    from serving.repository import canonical_hash, canonical_json
    from serving.schemas import DenialIn

    client, keys = service
    sent = {**denial, "denial_id": "hash-1"}
    assert post_score(client, keys["scorer"], json.dumps({"denials": [sent]}).encode()).is_success
    stored = client.get("/v1/denials/hash-1", headers=auth(keys["reviewer"])).json()
    key_file = trained[0] / "audit-hash-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    as_scored = DenialIn.model_validate(sent).model_dump(mode="json")
    keyed = hmac.new(key_file.read_text().strip().encode(), canonical_json(as_scored), "sha256")
    assert stored["input_hash"] == keyed.hexdigest()
    assert stored["input_hash"] != canonical_hash(as_scored)
    assert hashlib.sha256(canonical_json(as_scored)).hexdigest() == canonical_hash(as_scored)


# ---------------------------------------------------------------------------- refused senders


@pytest.fixture()
def throttled(trained: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch):
    """The service with a small allowance of refusals (the suite's own is unlimited)."""
    monkeypatch.setenv("DENIAL_TRIAGE_REFUSALS_PER_MINUTE", "5")
    settings = Settings(
        data_dir=trained[0], model_poll_seconds=3600, refused_pause_seconds=PAUSE_SECONDS
    )
    with TestClient(create_app(settings)) as client:
        yield client, create_keys(settings.resolved_database_url, f"throttled-{time.time_ns()}")


PAUSE_SECONDS = 0.3


def test_a_sender_refused_too_often_is_answered_429_after_a_pause(throttled, denial) -> None:
    """Two senders posting refused bodies in a loop made the service's core busy and every
    other caller wait (benchmarks/abuse.py); past its allowance a sender is slowed."""
    client, keys = throttled
    body = json.dumps({"denials": [denial]}).encode()
    assert [post_score(client, None, body).status_code for _ in range(5)] == [401] * 5
    started = time.perf_counter()
    slowed = post_score(client, None, body)
    assert slowed.status_code == 429
    assert time.perf_counter() - started >= PAUSE_SECONDS
    assert 1 <= int(slowed.headers["retry-after"]) <= 60
    assert slowed.headers["connection"] == "close"
    # A valid key is never slowed by its address's refusals: the sender is then the key.
    assert post_score(client, keys["scorer"], body).status_code == 200


def test_a_key_whose_bodies_are_refused_is_slowed_and_other_keys_are_not(throttled, denial) -> None:
    client, keys = throttled
    too_many_values = b'{"denials":[' + b",".join([b"{}"] * 100_000) + b"]}"
    broken = json.dumps({"denials": [{**denial, "denied_amount": -1}]}).encode()
    answers = [post_score(client, keys["scorer"], too_many_values).status_code for _ in range(3)]
    answers += [post_score(client, keys["scorer"], broken).status_code for _ in range(2)]
    assert answers == [413, 413, 413, 422, 422]
    good = json.dumps({"denials": [denial]}).encode()
    assert post_score(client, keys["scorer"], good).status_code == 429
    assert post_score(client, keys["admin"], good).status_code == 200
    # A reviewer's read carries no body: never gated, never slowed.
    read = client.get(f"/v1/denials/{denial['denial_id']}", headers=auth(keys["reviewer"]))
    assert read.status_code == 200
