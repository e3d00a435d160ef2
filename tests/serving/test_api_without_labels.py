"""Over HTTP, a champion trained without root_cause or preventable labels: routing from the
governed mapping, null probabilities, and every denial sent to a person."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import small_specs
from database_fixtures import auth, create_keys
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from denial_triage.settings import Settings
from serving.app import create_app
from serving.schemas import ScoreResponse
from training import run as training_run
from training.synthetic import generate_history
from training.tracking import CHAMPION, MODEL_NAME, configure_tracking, example_payload
from training.triage_model import NO_PREVENTABLE_MODEL, NO_ROOT_CAUSE_MODEL

UNLABELLED = ["root_cause", "preventable"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A registry whose champion learned from a history with no root_cause or preventable."""
    folder = tmp_path_factory.mktemp("unlabelled")
    generated = generate_history(8_000, 23, folder / "generated.parquet")
    data = folder / "history.parquet"
    pd.read_parquet(generated).drop(columns=UNLABELLED).to_parquet(data)
    options = training_run.TrainingOptions(data=data, data_dir=folder / "data", test_months=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setattr(training_run, "load_specs", lambda: small_specs(30))
        result = training_run.train(options)
    configure_tracking(options.data_dir)
    MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION, result.record.model_version)
    denials = training_run.load_history(data).tail(20).drop(columns=UNLABELLED)
    return options.data_dir, denials.reset_index(drop=True)


@pytest.fixture(scope="module")
def service(trained: tuple[Path, pd.DataFrame]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(data_dir=trained[0], model_poll_seconds=3600)
    with TestClient(create_app(settings)) as client:
        yield client, create_keys(settings.resolved_database_url, f"unlabelled-{id(settings)}")


def test_scores_route_by_the_mapping_and_ask_for_review(service, trained) -> None:
    client, keys = service
    denials = json.loads(example_payload(trained[1]).to_json(orient="records"))
    response = client.post("/v1/score", json={"denials": denials}, headers=auth(keys["scorer"]))
    assert response.status_code == 200, response.text
    body = ScoreResponse.model_validate(response.json())
    for result in body.results:
        assert result.root_cause.category == result.root_cause.mapped_by_codes
        assert result.root_cause.probability is None and result.root_cause.probabilities == {}
        assert result.preventable.probability is None
        assert 0 <= result.recovery.probability <= 1
        assert result.requires_human_review
        assert {NO_ROOT_CAUSE_MODEL, NO_PREVENTABLE_MODEL} <= set(result.review_reasons)
    first = denials[0]["denial_id"]
    stored = client.get(f"/v1/denials/{first}", headers=auth(keys["reviewer"]))
    assert stored.status_code == 200, stored.text
    assert stored.json()["score"]["root_cause"]["probability"] is None
    assert stored.json()["score"]["review_reasons"] == body.results[0].review_reasons
