"""What the model page says about the champion and the challenger, read from MLflow.

A registered version names its training run; the run holds the data digest, the evaluation
report (``evaluation.json``: metrics beside their baselines) and the figures. A run never
changes once logged, so what is read from it is kept per run; the aliases and the promotion
note are read afresh on every call, since promotion moves them.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from training.tracking import CHALLENGER, CHAMPION, MODEL_NAME, alias_version

FIGURES = {
    "calibration.png": "Calibration of the recovery and preventable probabilities",
    "recovery_at_capacity.png": "Recovered dollars captured at team capacity",
}
RUN_TAGS = (
    "data_digest",
    "test_from",
    "window.first_denial",
    "window.last_denial",
    "window.matured_by",
    "evaluation_fit.first_denial",
    "evaluation_fit.last_denial",
    "mapping_version",
    "payer_rules_version",
    "git_commit",
)


@dataclass(frozen=True)
class RunSummary:
    """What a training run recorded: tags, the evaluation report and which figures it has."""

    run_id: str
    tags: dict[str, str]
    report: dict[str, Any]
    figures: tuple[str, ...]


@dataclass(frozen=True)
class ModelCard:
    """One registered version behind an alias, with its training run."""

    alias: str
    version: str
    registered_at: dt.datetime
    promotion: str | None
    run: RunSummary


def registry_cards() -> dict[str, ModelCard | None]:
    """The champion's and the challenger's cards (None where the alias is not set)."""
    return {alias: _card(alias) for alias in (CHAMPION, CHALLENGER)}


def _card(alias: str) -> ModelCard | None:
    version = alias_version(alias)
    if version is None:
        return None
    registered = MlflowClient().get_model_version(MODEL_NAME, version)
    return ModelCard(
        alias=alias,
        version=version,
        registered_at=dt.datetime.fromtimestamp(registered.creation_timestamp / 1000, dt.UTC),
        promotion=(registered.tags or {}).get("promotion"),
        run=run_summary(mlflow.get_tracking_uri(), registered.run_id),
    )


@lru_cache(maxsize=16)
def run_summary(tracking_uri: str, run_id: str) -> RunSummary:
    """A run's summary; ``tracking_uri`` is part of the cache key, as run ids are per store."""
    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    logged = {artifact.path for artifact in client.list_artifacts(run_id, "figures")}
    return RunSummary(
        run_id=run_id,
        tags={name: run.data.tags[name] for name in RUN_TAGS if name in run.data.tags},
        report=_evaluation_report(client, run_id, run.data.metrics),
        figures=tuple(name for name in FIGURES if f"figures/{name}" in logged),
    )


def _evaluation_report(
    client: MlflowClient, run_id: str, metrics: dict[str, float]
) -> dict[str, Any]:
    """``evaluation.json``, or the report rebuilt from the run's metrics when it is missing."""
    try:
        return json.loads(_artifact_bytes(client, run_id, "evaluation.json"))
    except (MlflowException, OSError, ValueError):
        return _nested(metrics)


def _nested(flat: dict[str, float]) -> dict[str, Any]:
    """``{"a.b": 1}`` as ``{"a": {"b": 1}}`` (MLflow metric names are flattened reports)."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        *sections, leaf = name.split(".")
        node = nested
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    return nested


@lru_cache(maxsize=16)
def run_figure(tracking_uri: str, run_id: str, name: str) -> bytes:
    """The PNG bytes of one of :data:`FIGURES` logged by a run."""
    if name not in FIGURES:
        raise KeyError(name)
    return _artifact_bytes(MlflowClient(tracking_uri), run_id, f"figures/{name}")


def version_figure(version: str, name: str) -> bytes:
    """The PNG bytes of one of :data:`FIGURES` from a registered version's training run."""
    run_id = MlflowClient().get_model_version(MODEL_NAME, version).run_id
    return run_figure(mlflow.get_tracking_uri(), run_id, name)


def _artifact_bytes(client: MlflowClient, run_id: str, path: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return Path(client.download_artifacts(run_id, path, folder)).read_bytes()


def capacity_label(name: str) -> str:
    """``top_10%`` (or ``top_10pct`` from metric names) as ``top 10%``."""
    return name.replace("pct", "%").replace("_", " ")
