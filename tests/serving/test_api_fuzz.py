"""Schemathesis over the service's OpenAPI schema, briefly: the CI share of the API fuzzing.

Every operation of the schema (the JSON API under /v1, /metrics, /healthz, /readyz) gets
schemathesis' coverage cases and a few random cases the schema admits and a few it refuses,
each sent with a valid key of the role the operation needs, to a service with a champion
loaded, on SQLite and on PostgreSQL (which refuses some text SQLite stores). No answer may be a
5xx, and every answer must match the schema: a documented status code, its content type and its
body schema. Every score's audit record, written behind the answer, must reach the database.
The driver is ``fuzz/api_schema.py``, which runs the long version by hand; here it runs with a
fixed seed, so CI replays the same cases.

The /ui pages are not in the schema (their router is ``include_in_schema=False``): they are
HTML forms behind a session cookie, with no response schema to check answers against. They
are covered by tests/serving/test_pages*.py, and their sign-in by test_route_security.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import load_module
from database_fixtures import BACKENDS, auth, create_keys, postgres_schema, require_postgres
from fastapi import FastAPI
from fastapi.testclient import TestClient

from denial_triage.settings import Settings
from serving.app import create_app
from serving.database import upgrade_database
from serving.schemas import EXAMPLE_DENIAL

pytestmark = pytest.mark.slow  # schemathesis over every operation, on both databases

DRIVER = Path(__file__).resolve().parents[2] / "fuzz" / "api_schema.py"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
EXAMPLES_PER_MODE = 20  # random cases per operation, valid and invalid each
SEED = 8


api_schema = load_module(DRIVER, "api_schema")


@pytest.fixture(scope="module")
def champion(champion_data_dir: Path) -> Path:
    """A data directory whose registry has a champion (a small one: it need not be good)."""
    return champion_data_dir


@pytest.fixture(scope="module", params=BACKENDS)
def records_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The service's records: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path_factory.mktemp('records') / 'records.db').as_posix()}"
        return
    require_postgres()
    yield from postgres_schema()


@pytest.fixture(scope="module")
def service(
    champion: Path, records_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FastAPI, dict[str, str]]:
    """The service on that registry and database, and one valid key per role."""
    settings = Settings(
        data_dir=champion,
        database_url=records_url,
        audit_spool_dir=tmp_path_factory.mktemp("spool"),
        model_poll_seconds=3600,
        log_level="WARNING",
    )
    upgrade_database(records_url)  # keys are made before the service starts
    return create_app(settings), create_keys(records_url, "fuzz")


@pytest.fixture(scope="module")
def fuzz_run(service: tuple[FastAPI, dict[str, str]]) -> api_schema.FuzzRun:
    app, keys = service
    plan = api_schema.FuzzPlan(max_examples=EXAMPLES_PER_MODE, seed=SEED)
    return api_schema.fuzz_service(app, keys, plan)


@pytest.fixture(scope="module")
def reports(fuzz_run: api_schema.FuzzRun) -> dict[str, api_schema.OperationReport]:
    return {report.label: report for report in fuzz_run.reports}


def schema_operations(app: FastAPI) -> set[str]:
    """Every operation of the app's schema, read from the schema itself, not through the
    driver."""
    return {
        f"{method.upper()} {path}"
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_operation_has_the_role_of_its_key_declared(service) -> None:
    app, _ = service
    assert set(api_schema.OPERATION_ROLES) == schema_operations(app)


def test_every_operation_in_the_schema_was_fuzzed(service, reports) -> None:
    app, _ = service
    assert set(reports) == schema_operations(app)
    assert len(reports) >= 9


def test_every_operation_got_coverage_and_random_cases(reports) -> None:
    empty = {
        label: dict(report.cases)
        for label, report in reports.items()
        if not (report.cases["coverage"] and report.cases["positive"])
    }
    assert not empty, empty


def test_the_fuzzing_reached_scoring_and_feedback(reports) -> None:
    """Cases that all stopped at validation would pass without ever reaching the model or the
    database: some must have been scored and stored."""
    assert reports["POST /v1/score"].statuses[200] > 0
    feedback = reports["POST /v1/feedback"].statuses
    assert feedback[200] + feedback[201] > 0
    assert reports["GET /readyz"].statuses[200] > 0  # a champion was loaded


def test_no_server_error_and_every_answer_matches_the_schema(reports) -> None:
    failing = [report for report in reports.values() if report.failing_cases]
    assert not failing, (
        api_schema.format_table(list(reports.values()))
        + "\n\n"
        + api_schema.format_findings(failing)
    )


def test_every_score_was_audited(fuzz_run) -> None:
    """Audit records are written behind the answers: none may be left unwritten."""
    assert fuzz_run.audit_backlog == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("units", 10**20), ("submission_attempt", 2**63), ("billed_amount", 1.7e308)],
)
def test_numbers_past_what_the_contract_holds_are_refused_by_field(
    service, field: str, value: float
) -> None:
    """Found by fuzzing: a whole number past int64 made the contract check raise (a 5xx), and
    an amount near the float limit was scored as null dollars where the schema says number."""
    app, keys = service
    denial = {**EXAMPLE_DENIAL, "denied_amount": 10.0, field: value}
    with TestClient(app) as client:
        response = client.post(
            "/v1/score", json={"denials": [denial]}, headers=auth(keys["scorer"])
        )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "denials", 0, field]


def test_a_recovered_amount_past_what_the_records_hold_is_refused(service) -> None:
    """Found by fuzzing on PostgreSQL: past NUMERIC(14, 2), feedback was answered 503
    'database unreachable'."""
    app, keys = service
    feedback = {"idempotency_key": "k-2", "denial_id": "D-2", "recovered_amount": 5e16}
    with TestClient(app) as client:
        response = client.post("/v1/feedback", json=feedback, headers=auth(keys["reviewer"]))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "recovered_amount"]


def test_text_with_a_nul_character_is_refused_by_field(service) -> None:
    """Found by fuzzing on PostgreSQL, whose text and JSON cannot hold NUL: feedback carrying
    one was answered 503 'database unreachable', so was a denial id in the path, and a scored
    denial carrying one left an audit record that could never be written."""
    app, keys = service
    denial = {**EXAMPLE_DENIAL, "modifiers": ["2\x005"]}
    feedback = {"idempotency_key": "k-1", "denial_id": "D-1", "reviewer_note": "a\x00b"}
    with TestClient(app) as client:
        scored = client.post("/v1/score", json={"denials": [denial]}, headers=auth(keys["scorer"]))
        noted = client.post("/v1/feedback", json=feedback, headers=auth(keys["reviewer"]))
        read = client.get("/v1/denials/D%00X", headers=auth(keys["reviewer"]))
    assert [scored.status_code, noted.status_code, read.status_code] == [422, 422, 422]
    assert scored.json()["detail"][0]["loc"] == ["body", "denials", 0, "modifiers", 0]
    assert noted.json()["detail"][0]["loc"] == ["body", "reviewer_note"]
    assert read.json()["detail"][0]["loc"] == ["path", "denial_id"]
