"""Every route but the health checks and the sign-in page needs a key, checked over the whole
route table, so a route added later cannot slip through unprotected."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from denial_triage.settings import Settings
from serving.app import create_app

OPEN = {"/healthz", "/readyz", "/ui/login"}
OPEN_REDIRECTS = {"/ui", "/ui/"}  # they only send a visitor to the sign-in page


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("routes"), model_poll_seconds=3600)
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def all_routes(routes: list) -> list[APIRoute]:
    """Every API route, including those of routers the app includes (this FastAPI keeps an
    included router as one entry that holds its original router)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif getattr(route, "original_router", None) is not None:
            found += all_routes(route.original_router.routes)
    return found


def protected_calls(client: TestClient) -> list[tuple[str, str]]:
    calls = []
    for route in all_routes(client.app.routes):
        if route.path in OPEN | OPEN_REDIRECTS:
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        calls += [(method, path) for method in sorted(route.methods - {"HEAD", "OPTIONS"})]
    return calls


def test_the_route_table_is_what_these_tests_expect(client: TestClient) -> None:
    calls = protected_calls(client)
    assert ("POST", "/v1/score") in calls and ("GET", "/ui/worklist") in calls
    assert ("GET", "/v1/openapi.json") in calls
    assert len(calls) >= 12


def test_no_protected_route_answers_without_a_key(client: TestClient) -> None:
    for method, path in protected_calls(client):
        for headers in ({}, {"Authorization": "Bearer dt_00000000_not-a-key"}):
            response = client.request(method, path, headers=headers)
            if path.startswith("/ui"):
                assert response.status_code in {302, 303, 307, 401, 403}, (
                    method,
                    path,
                    response.status_code,
                )
                if response.is_redirect:
                    assert response.headers["location"].split("?")[0].endswith("/ui/login"), path
            else:
                assert response.status_code == 401, (method, path, response.status_code)


def test_open_routes_hold_no_records(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert set(ready) >= {"ready", "model_version", "problem"}
    assert not ready["ready"]  # no model in this empty data directory: 503, and it says why


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"])
def test_framework_documentation_routes_are_not_served(client: TestClient, path: str) -> None:
    # FastAPI's defaults would hand the whole API map to anyone; the schema needs a key.
    assert client.get(path).status_code == 404
