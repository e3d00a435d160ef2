"""Scoring denials with the champion model: the one code path of the API and batch scoring.

:func:`score_denials` turns validated contract rows into the API's result objects (scores,
priority parts, routing, review reasons and plain-language SHAP reasons). The HTTP service and
``denial-triage score`` both call it, so there is no second implementation.

:class:`ModelStore` resolves ``models:/denial-triage@champion``, keeps the last good model in a
local cache so the service starts when the registry is unreachable, and refuses a model that
fails a canary check (it must score and explain a known denial with finite, additive outputs).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import orjson
import pandas as pd

from features.contract import clean_records, validate
from features.pipeline import DenialColumns, live_scoring_date
from serving.reasons import class_log_odds, exact_amounts, plain_reasons
from serving.schemas import EXAMPLE_DENIAL
from training.specs import TASKS
from training.tracking import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    alias_version,
    load_triage_model,
)
from training.triage_model import Explanation, TriageModel


@dataclass(frozen=True)
class ScoredBatch:
    """A score answer in plain values, exactly the fields of ``schemas.ScoreResponse``.

    The results are built by :func:`score_denials` in the response's shape, so the answer is
    encoded straight to JSON: validating 1,000 results into pydantic models again took about a
    tenth of a 1,000-denial request. Tests check that every answer validates as a
    ``ScoreResponse`` and round-trips unchanged.
    """

    request_id: str
    model_version: str
    mapping_version: str
    scored_at: dt.datetime
    results: list[dict[str, Any]]
    # Denials set aside by ``on_error: "skip"``: index in the request and field errors.
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def json(self) -> bytes:
        document = {
            "request_id": self.request_id,
            "model_version": self.model_version,
            "mapping_version": self.mapping_version,
            "scored_at": self.scored_at,
            "results": self.results,
            "rejected": self.rejected,
        }
        # UTC as "Z", as pydantic writes it; a non-finite float becomes null, as in pydantic.
        return orjson.dumps(document, option=orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY)


# ---------------------------------------------------------------------------- scoring


def score_denials(
    model: TriageModel,
    denials: pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    explain: bool = True,
    top: int = 5,
    threads: int | None = None,
    today: dt.date | None = None,
) -> list[dict[str, Any]]:
    """Result objects (the API's ``DenialScore``) for validated denials, in order.

    ``denials`` is a contract frame (files, batch scoring) or rows already coerced by the
    contract (:func:`features.contract.clean_records`, the service's requests); both are read
    into the same columns and scored by the same code. ``threads``: LightGBM's, by default
    :func:`training.triage_model.prediction_threads`.

    This is live scoring (the service, ``denial-triage score`` of a backlog): a denial without
    ``as_of_date`` is looked at ``today``, by default the wall clock's date
    (:func:`features.pipeline.live_scoring_date`). Histories are scored by
    :meth:`TriageModel.score`, as of their own dates.
    """
    today = today or live_scoring_date()
    columns = (
        DenialColumns.from_frame(denials, today)
        if isinstance(denials, pd.DataFrame)
        else DenialColumns.from_records(denials, today)
    )
    assessment = model.assess(columns, explain=explain, top=top, threads=threads)
    explanations = assessment.explanations or [None] * columns.rows
    amounts = zip(
        columns.numbers["billed_amount"].tolist(),
        columns.numbers["denied_amount"].tolist(),
        strict=True,
    )
    return [
        _result(denial_id, row, _in_words(row, explanation, *amount))
        for denial_id, row, explanation, amount in zip(
            columns.text["denial_id"],
            _score_rows(assessment.scores),
            explanations,
            amounts,
            strict=True,
        )
    ]


def _in_words(
    row: dict[str, Any], explained: dict[str, Explanation] | None, billed: float, denied: float
) -> dict[str, Any]:
    """Each model's explanation put in words and in points of its displayed probability: the
    root cause's is of its class's softmax probability (:func:`serving.reasons.class_log_odds`)."""
    if not explained:
        return {}
    exact = exact_amounts(billed, denied)
    headline = {}
    if "root_cause" in explained:
        headline["root_cause"] = class_log_odds(row["probabilities"], row["root_cause"])
    return {
        task: plain_reasons(task, explanation, headline.get(task), exact)
        for task, explanation in explained.items()
    }


def _score_rows(scores: dict[str, Any]) -> list[dict[str, Any]]:
    """Score columns as one plain dict per row (numpy values as Python values), the class
    probabilities (``p_<class>`` columns) gathered into one ``probabilities`` dict."""
    classes = [name[2:] for name in scores if name.startswith("p_")]
    names = [name for name in scores if not name.startswith("p_")]
    values = [_plain(scores[name]) for name in names]
    rows = list(zip(*values, strict=True))
    probabilities = (
        zip(*(_plain(scores[f"p_{c}"]) for c in classes), strict=True)
        if classes
        else [()] * len(rows)  # no root-cause model: no class probabilities
    )
    return [
        {**dict(zip(names, row, strict=True)), "probabilities": dict(zip(classes, p, strict=True))}
        for row, p in zip(rows, probabilities, strict=True)
    ]


def _plain(column: Any) -> list[Any]:
    if isinstance(column, np.ndarray):
        if np.issubdtype(column.dtype, np.datetime64):
            return np.datetime_as_string(column, unit="D").tolist()
        return column.tolist()
    return list(column)


def _result(denial_id: str, row: dict[str, Any], explained: dict[str, Any]) -> dict[str, Any]:
    reasons = {task: explained.get(task) for task in TASKS}
    return {
        "denial_id": str(denial_id),
        "root_cause": {
            "category": row["root_cause"],
            "probability": _probability(row["root_cause_probability"]),
            "probabilities": row["probabilities"],
            "mapped_by_codes": row["mapped_root_cause"],
            "explanation": reasons["root_cause"],
        },
        "recovery": {
            "probability": float(row["recovery_probability"]),
            "expected_recovered_share": float(row["expected_recovered_share"]),
            "expected_recovered_dollars": float(row["expected_recovered_dollars"]),
            "explanation": reasons["recovery"],
        },
        "preventable": {
            "probability": _probability(row["preventable_probability"]),
            "prevention_owner": row["prevention_owner"],
            "explanation": reasons["preventable"],
        },
        "priority": {
            "score": float(row["priority_score"]),
            "expected_recovered_dollars": float(row["expected_recovered_dollars"]),
            "cost_to_work": float(row["cost_to_work"]),
            "effort_hours": float(row["effort_hours"]),
            "expected_net_dollars": float(row["expected_net_dollars"]),
            "urgency": float(row["urgency"]),
            "deadline": row["deadline"],
            "deadline_rule": row["deadline_rule"],
            "last_deadline": row["last_deadline"],
            "backlog_horizon_days": int(row["backlog_horizon_days"]),
            "workable": bool(row["workable"]),
            "counted_from": row["counted_from"],
            "days_to_deadline": int(row["days_to_deadline"]),
        },
        "routing": {
            "action_path": row["action_path"],
            "owner_queue": row["owner_queue"],
            "mapping_rule": row["mapping_rule"],
            "basis": row["routing_basis"],
            "by_codes": {
                "root_cause": row["mapped_root_cause"],
                "action_path": row["mapped_action_path"],
                "owner_queue": row["mapped_owner_queue"],
            },
        },
        "requires_human_review": bool(row["requires_human_review"]),
        "review_reasons": list(row["review_reasons"]),
        "review_reason_codes": list(row["review_reason_codes"]),
        "unseen_codes": list(row["unseen_codes"]),
    }


def _probability(value: float) -> float | None:
    """A model's probability, or None where the model was not trained (NaN in the scores)."""
    return None if math.isnan(value) else float(value)


def flatten_results(results: list[dict[str, Any]]) -> pd.DataFrame:
    """Results as one flat table (``recovery.probability`` ...) with explanations as JSON."""
    rows = []
    for result in results:
        flat = (
            pd.json_normalize({k: v for k, v in result.items() if k not in TASKS}, sep=".")
            .iloc[0]
            .to_dict()
        )
        for task in TASKS:
            for key, value in result[task].items():
                flat[f"{task}.{key}"] = json.dumps(value) if isinstance(value, dict) else value
        flat["review_reasons"] = "; ".join(result["review_reasons"])
        flat["review_reason_codes"] = "; ".join(result["review_reason_codes"])
        flat["unseen_codes"] = "; ".join(result["unseen_codes"])
        rows.append(flat)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- models


class ModelUnavailable(RuntimeError):
    """No champion could be loaded from the registry or the cache; says how to get one."""


class ModelRejected(RuntimeError):
    """A model failed the canary check and was not put into service."""


@dataclass(frozen=True)
class LoadedModel:
    """A model in service and where it came from."""

    triage: TriageModel
    version: str
    source: str  # "registry" or "cache"
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @cached_property
    def mapping_version(self) -> str:
        # Hashing the whole mapping takes about a millisecond: once per model, not per request.
        return self.triage.mapping_version


class ModelStore:
    """The champion from the registry, with a local cache of the last good one."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir

    def champion_version(self) -> str | None:
        """The version the champion alias points to (raises when the registry is unreachable)."""
        return alias_version(CHAMPION)

    def registered_champion(self) -> tuple[str | None, str | None]:
        """The champion's version, or None and why there is none to load from the registry."""
        try:
            version = self.champion_version()
        except Exception as exc:  # the registry being away must not stop scoring: use the cache
            return None, f"model registry unreachable: {exc}"
        if version is None:
            return None, "no champion model is registered yet"
        return version, None

    def champion(self) -> LoadedModel:
        """The registered champion, else the cached one (the service's order when it starts)."""
        version, _ = self.registered_champion()
        return self.load_version(version) if version else self.load_cached()

    def load_version(self, version: str, current: bool = True) -> LoadedModel:
        """Load, check and cache one registered version; the cache's pointer to the model
        served when the registry is away moves to it only when ``current`` (a champion, not
        the challenger in shadow)."""
        triage = load_triage_model(f"models:/{MODEL_NAME}/{version}")
        loaded = LoadedModel(triage, str(version), "registry")
        canary_check(loaded.triage)
        self._cache(loaded, current)
        return loaded

    def challenger_version(self) -> str | None:
        """The version the challenger alias points to (raises when the registry is away)."""
        return alias_version(CHALLENGER)

    def model_file(self, version: str) -> Path:
        """Where the cache keeps a loaded version's model."""
        return self.cache_dir / version / "triage_model.joblib"

    def load_cached(self) -> LoadedModel:
        """The last good model, for when the registry cannot be reached."""
        pointer = self.cache_dir / "current.json"
        if not pointer.exists():
            raise ModelUnavailable(
                "no champion model is registered and none is cached; train one with "
                "`denial-triage train --data PATH` then `denial-triage promote --data PATH`"
            )
        version = json.loads(pointer.read_text())["version"]
        triage = joblib.load(self.cache_dir / version / "triage_model.joblib")
        canary_check(triage)
        return LoadedModel(triage, version, "cache")

    def _cache(self, loaded: LoadedModel, current: bool = True) -> None:
        folder = self.cache_dir / loaded.version
        staging = self.cache_dir / f".{loaded.version}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        joblib.dump(loaded.triage, staging / "triage_model.joblib")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)  # the cache never holds a half-written model
        if not current:
            return
        pointer = self.cache_dir / "current.json.tmp"
        pointer.write_text(json.dumps({"version": loaded.version}))
        pointer.replace(self.cache_dir / "current.json")


def canary_check(triage: object) -> None:
    """Refuse a model that cannot score and explain a known denial with sound outputs."""
    if not isinstance(triage, TriageModel):
        raise ModelRejected(
            f"the registered object is a {type(triage).__name__}, not a TriageModel"
        )
    # The service's own path (coerced rows, not a frame), which also builds what it caches.
    denials = clean_records([EXAMPLE_DENIAL]) or validate(pd.DataFrame([EXAMPLE_DENIAL])).frame
    try:
        result = score_denials(triage, denials, explain=True, top=3)[0]
    except Exception as exc:  # any failure here means the model must not serve
        raise ModelRejected(f"the model fails to score a known denial: {exc!r}") from exc
    probabilities = list(result["root_cause"]["probabilities"].values())
    if triage.root_cause_model is not None and not math.isclose(
        sum(probabilities), 1.0, rel_tol=1e-6
    ):
        raise ModelRejected("root-cause probabilities do not sum to 1")
    for task in triage.fitted_tasks:
        _check_additive(task, result[task]["explanation"])


def _check_additive(task: str, explanation: dict[str, Any]) -> None:
    parts = explanation["base_value"] + explanation["rest"]
    parts += sum(reason["contribution"] for reason in explanation["reasons"])
    if not np.isfinite(parts) or not math.isclose(parts, explanation["output"], abs_tol=1e-6):
        raise ModelRejected(f"the {task} explanation does not add up to its score")
