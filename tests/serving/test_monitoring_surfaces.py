"""``denial-triage monitor models`` and ``/ui/monitoring`` over a served champion, denials it
scored and the outcomes recorded for them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from database_fixtures import auth, create_keys
from fastapi.testclient import TestClient
from page_fixtures import PagesRegistry
from test_pages import sign_in
from typer.testing import CliRunner

from denial_triage.cli import app
from denial_triage.settings import Settings, get_settings
from serving.app import create_app
from serving.database import make_engine, session_factory
from serving.repository import save_feedback
from training.tracking import configure_tracking

pytest_plugins = ["page_fixtures"]

runner = CliRunner()


@dataclass(frozen=True)
class Watched:
    client: TestClient
    keys: dict[str, str]
    settings: Settings
    resolved: int
    recovered: int


@pytest.fixture(scope="module")
def watched(
    pages_registry: PagesRegistry,
    page_denials: list[dict],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Watched]:
    """The champion serving a database of its own: the page denials scored, and an outcome
    recorded for every one (a third of them recovered $50)."""
    database = tmp_path_factory.mktemp("monitoring-db") / "records.db"
    settings = Settings(
        data_dir=pages_registry.data_dir,
        database_url=f"sqlite:///{database}",
        model_poll_seconds=3600,
    )
    with TestClient(create_app(settings)) as client:
        keys = create_keys(settings.resolved_database_url, "monitor")
        response = client.post(
            "/v1/score", json={"denials": page_denials}, headers=auth(keys["scorer"])
        )
        assert response.status_code == 200, response.text
        client.app.state.service.flush_audit()
        recovered = _record_outcomes(settings.resolved_database_url, page_denials)
        yield Watched(client, keys, settings, len(page_denials), recovered)


def _record_outcomes(url: str, denials: list[dict]) -> int:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            for number, denial in enumerate(denials):
                recovered = number % 3 == 0
                outcome = {
                    "denial_id": denial["denial_id"],
                    "resolution": "overturned_on_appeal" if recovered else "written_off",
                    "recovered_amount": 50.0 if recovered else 0.0,
                }
                save_feedback(session, f"outcome-{number}", outcome, "link-outcomes")
    finally:
        engine.dispose()
    return len(range(0, len(denials), 3))


@pytest.fixture
def cli_settings(
    watched: Watched, pages_registry: PagesRegistry, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The command's environment: the champion's data directory and the served database."""
    monkeypatch.setenv("DENIAL_TRIAGE_DATA_DIR", str(pages_registry.data_dir))
    monkeypatch.setenv("DATABASE_URL", watched.settings.resolved_database_url)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    configure_tracking(pages_registry.data_dir)  # the pages read the registry this points at


def test_monitor_models_json_has_the_outcomes_training_figures_and_drift(
    cli_settings, page_denials: list[dict]
) -> None:
    result = runner.invoke(app, ["monitor", "models", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    months = [s for s in document["segments"] if s["payer_type"] == "all"]
    assert sum(s["resolved"] for s in months) == 240
    assert sum(s["recovered"] for s in months) == 80
    assert sum(s["recovered_dollars"] for s in months) == pytest.approx(80 * 50.0)
    by_type = [s for s in document["segments"] if s["payer_type"] != "all"]
    assert sum(s["resolved"] for s in by_type) == 240
    training = document["training"]
    assert training["version"] == "1" and 0.5 < training["roc_auc"] <= 1.0
    assert len(training["reliability"]) == 10
    drift = document["drift"]
    # Recent: the 90 days (the default) up to the newest denial date, not up to today.
    days = sorted(dt.date.fromisoformat(d["denial_date"][:10]) for d in page_denials)
    recent = [day for day in days if day > days[-1] - dt.timedelta(days=90)]
    assert drift["recent_rows"] == len(recent) < 100
    assert (drift["recent_from"], drift["recent_to"]) == (
        str(days[-1] - dt.timedelta(days=89)),
        str(days[-1]),
    )
    # Too few for PSI to mean anything: no drift is measured, so none is reported.
    assert drift["note"] == f"only {len(recent)} recent denials; drift is measured from 100"
    assert drift["items"] == []
    every = runner.invoke(app, ["monitor", "models", "--json", "--since", "2000-01-01"])
    drift = json.loads(every.stdout)["drift"]
    assert drift["note"] is None and drift["recent_rows"] == len(days)
    names = {item["name"] for item in drift["items"]}
    assert {"payer_type", "log_denied_amount", "recovery_probability"} <= names
    # Under the 200 outcomes a segment needs, no calibration or AUC reason can be raised.
    assert {r["metric"] for r in document["reasons"]} <= {"psi"}
    assert document["retrain"] == bool(document["reasons"])


def test_monitor_models_prints_the_table_and_the_recommendation(cli_settings) -> None:
    result = runner.invoke(app, ["monitor", "models", "--since", "2000-01-01"])
    assert result.exit_code == 0, result.output
    assert "Champion version 1, trained on denials of" in result.output
    assert "payer type" in result.output and "ROC AUC" in result.output
    assert "Drift of 240 denials" in result.output
    assert "Recommendation: " in result.output


def test_monitor_models_without_a_database_fails_clearly(
    cli_settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'never-migrated.db'}")
    get_settings.cache_clear()
    result = runner.invoke(app, ["monitor", "models"])
    assert result.exit_code == 1
    assert "denial-triage db upgrade" in result.output


def test_monitor_models_without_a_champion_fails_clearly(
    cli_settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DENIAL_TRIAGE_DATA_DIR", str(tmp_path / "empty"))
    get_settings.cache_clear()
    result = runner.invoke(app, ["monitor", "models"])
    assert result.exit_code == 1
    assert "is champion: train and promote one first" in result.output


def test_the_monitoring_page_shows_figures_chart_drift_and_recommendation(
    watched: Watched,
) -> None:
    client = watched.client
    sign_in(client, watched.keys["reviewer"])
    try:
        page = client.get("/ui/monitoring", params={"since": "2000-01-01"})
        filtered = client.get("/ui/monitoring", params={"since": "not-a-day"})
    finally:
        client.cookies.clear()
    assert page.status_code == 200
    html = page.text
    assert 'href="/ui/monitoring" aria-current="page"' in html
    assert '<svg id="reliability"' in html and "training (test months)" in html
    assert "Recommendation" in html and "version 1" in html
    assert "240 denials of" in html and "Payer type" in html
    assert "PSI" in html and "training and recent shares" in html
    assert filtered.status_code == 200 and "is not a date (YYYY-MM-DD)" in filtered.text


def test_the_monitoring_page_needs_a_reviewer_session(watched: Watched) -> None:
    response = watched.client.get("/ui/monitoring", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/ui/login")
