"""Fixtures of the page tests: a copy of the session's small registry with a champion and a
challenger, and recent denials to score, shared by the TestClient and the browser tests.

Loaded with ``pytest_plugins = ["page_fixtures"]`` (see ``database_fixtures`` for why this is
not a ``conftest.py``). The registry is trained once per session (``champion_registry`` in
``tests/conftest.py``) and copied here; each test module scores the denials into a database of
its own.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from conftest import ChampionRegistry, copy_registry
from mlflow.tracking import MlflowClient

from training import run as training_run
from training.tracking import CHALLENGER, CHAMPION, MODEL_NAME, configure_tracking
from training.tracking import example_payload as contract_payload

DENIALS_SCORED = 240
DATE_COLUMNS = ("service_date", "denial_date", "submission_date")


@dataclass(frozen=True)
class PagesRegistry:
    """A data directory whose registry has version 1 as champion and 2 as challenger."""

    data_dir: Path
    history: Path


@pytest.fixture(scope="session")
def pages_registry(
    champion_registry: ChampionRegistry, tmp_path_factory: pytest.TempPathFactory
) -> PagesRegistry:
    data_dir = copy_registry(champion_registry, tmp_path_factory.mktemp("pages"))
    # The challenger is the champion's model registered again, its alias set directly: the
    # promotion gates are not what these tests are about.
    configure_tracking(data_dir)
    client = MlflowClient()
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    challenger = client.create_model_version(MODEL_NAME, champion.source, run_id=champion.run_id)
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, challenger.version)
    client.set_model_version_tag(MODEL_NAME, challenger.version, "promotion", "challenger: test")
    return PagesRegistry(data_dir, champion_registry.history)


@pytest.fixture(scope="session")
def page_denials(pages_registry: PagesRegistry) -> list[dict]:
    """Recent denials to score, as a worklist system would send them."""
    return recent_denials(pages_registry.history)


def recent_denials(history: Path, count: int = DENIALS_SCORED) -> list[dict]:
    """The newest denials of a history as scoring payloads, moved in time so the newest is
    denied today: their deadlines then fall in the next days and months, as on a live desk."""
    frame = training_run.load_history(history).tail(count).reset_index(drop=True)
    today = pd.Timestamp(dt.datetime.now(dt.UTC).date())
    shift = today - frame["denial_date"].max()
    for column in DATE_COLUMNS:
        frame[column] = frame[column] + shift
    frame["as_of_date"] = today
    return json.loads(contract_payload(frame).to_json(orient="records"))
