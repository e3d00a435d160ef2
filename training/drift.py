"""Population stability: a compact reference of the training rows, and how far recent denials
moved from it.

The reference is fitted once, at training time, from the training rows and their scores, and
travels with the model (:attr:`training.triage_model.TriageModel.drift_reference`): per numeric
value its decile edges and the training share in each bin, per categorical value its most common
categories and their shares, and the same for every score. A few kilobytes, no rows, nothing
that identifies a patient.

Only the features the service can rebuild from what it keeps of a scored denial are watched
(the denial facts of :data:`serving.repository.DENIAL_FACTS`: payer, claim type, specialty,
procedure, codes, amounts); service dates, diagnoses and modifiers are not kept, so their
features cannot be compared with recent denials.

PSI = sum over bins of (recent share - training share) * ln(recent share / training share),
with empty bins floored at :data:`SHARE_FLOOR` so an empty bin weighs as a rare one, not as
infinity. Under 0.1 is read as stable, 0.1-0.25 as moving, above 0.25 as shifted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.procedures import procedure_family

DECILES = np.linspace(0.1, 0.9, 9)
TOP_CATEGORIES = 12
OTHER = "other"
MISSING = "missing"
NO_REMARK = "none"
SHARE_FLOOR = 1e-4
REFERENCE_ROWS = 20_000  # training rows scored for the reference: deciles steady to ~0.01
REFERENCE_VERSION = 1
# Model features rebuilt from the denial facts; the names are the feature pipeline's.
CATEGORICAL = (
    "payer_type",
    "claim_type",
    "specialty",
    "procedure_family",
    "primary_adjustment",
    "primary_remark",
    "payer_id",
)
NUMERIC = ("log_billed_amount", "log_denied_amount", "adjustment_count", "remark_count")
# Each score as the model's score frame names it, and as the service's latest_scores does.
SCORES = {
    "recovery_probability": "recovery_probability",
    "root_cause_probability": "root_cause_probability",
    "preventable_probability": "preventable_probability",
    "expected_recovered_dollars": "expected_dollars",
    "priority_score": "priority",
}


def feature_values(denials: pd.DataFrame) -> dict[str, np.ndarray]:
    """The watched features of contract rows (or of stored denial facts, which carry the same
    columns): categorical ones as text, numeric ones as floats (NaN where unknown)."""
    carc = [_codes(value) for value in _column(denials, "carc_codes")]
    rarc = [_codes(value) for value in _column(denials, "rarc_codes")]
    return {
        "payer_type": _text(_column(denials, "payer_type")),
        "claim_type": _text(_column(denials, "claim_type")),
        "specialty": _text(_column(denials, "specialty")),
        "procedure_family": _procedure_families(_column(denials, "procedure_code")),
        "primary_adjustment": _text([codes[0] if codes else None for codes in carc]),
        "primary_remark": _text([codes[0] if codes else NO_REMARK for codes in rarc]),
        "payer_id": _text(_column(denials, "payer_id")),
        "log_billed_amount": np.log1p(_numbers(_column(denials, "billed_amount"))),
        "log_denied_amount": np.log1p(_numbers(_column(denials, "denied_amount"))),
        "adjustment_count": np.array([len(codes) for codes in carc], dtype=float),
        "remark_count": np.array([len(codes) for codes in rarc], dtype=float),
    }


def build_reference(
    denials: pd.DataFrame, scores: pd.DataFrame, window: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The drift reference of training rows ``denials`` and their ``scores`` (the model's score
    frame of the same rows), JSON-ready."""
    values = feature_values(denials)
    features = {name: numeric_reference(values[name]) for name in NUMERIC} | {
        name: categorical_reference(values[name]) for name in CATEGORICAL
    }
    score_references = {
        name: numeric_reference(_numbers(scores[name]))
        for name in SCORES
        if name in scores and np.isfinite(_numbers(scores[name])).any()
    }
    return {
        "version": REFERENCE_VERSION,
        "rows": len(denials),
        "window": dict(window or {}),
        "features": features,
        "scores": score_references,
    }


def numeric_reference(values: np.ndarray) -> dict[str, Any]:
    """Decile edges of the known values and the share of rows in each bin, missing last."""
    known = values[np.isfinite(values)]
    edges = np.unique(np.quantile(known, DECILES)) if known.size else np.array([])
    return {"kind": "numeric", "edges": edges.tolist(), "shares": numeric_shares(values, edges)}


def numeric_shares(values: np.ndarray, edges: Sequence[float] | np.ndarray) -> list[float]:
    """Share of ``values`` in each bin cut at ``edges`` (a value equal to an edge goes above
    it), then the share missing."""
    values = np.asarray(values, dtype=float)
    known = np.isfinite(values)
    bins = np.searchsorted(np.asarray(edges, dtype=float), values[known], side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1).astype(float)
    counts = np.append(counts, (~known).sum())
    return (counts / max(values.size, 1)).tolist()


def categorical_reference(values: np.ndarray) -> dict[str, Any]:
    """The most common categories, each with its share, then every other one together."""
    counts = pd.Series(values, dtype=object).fillna(MISSING).value_counts()
    kept = [str(name) for name in counts.index[:TOP_CATEGORIES]]
    return {"kind": "categorical", "categories": kept, "shares": category_shares(values, kept)}


def category_shares(values: np.ndarray, categories: Sequence[str]) -> list[float]:
    """Share of ``values`` in each of ``categories``, then in all the others together."""
    series = pd.Series(values, dtype=object).fillna(MISSING).astype(str)
    known = series.where(series.isin(list(categories)), OTHER)
    counts = known.value_counts().reindex([*categories, OTHER], fill_value=0).to_numpy(float)
    return (counts / max(len(series), 1)).tolist()


def recent_shares(reference: Mapping[str, Any], values: np.ndarray) -> list[float]:
    """``values`` binned as ``reference`` bins its training rows."""
    if reference["kind"] == "numeric":
        return numeric_shares(values, reference["edges"])
    return category_shares(values, reference["categories"])


def bin_labels(reference: Mapping[str, Any]) -> list[str]:
    """Each bin of ``reference`` in words: ``< 4.2``, ``4.2 to 5.1``, ``≥ 7.3``, ``missing``."""
    if reference["kind"] == "categorical":
        return [*reference["categories"], OTHER]
    edges = [_short(edge) for edge in reference["edges"]]
    if not edges:
        return ["all", MISSING]
    middle = [f"{low} to {high}" for low, high in itertools.pairwise(edges)]
    return [f"< {edges[0]}", *middle, f"≥ {edges[-1]}", MISSING]


def population_stability(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI between training shares ``expected`` and recent shares ``actual`` (same bins)."""
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} training bins against {len(actual)} recent ones")
    training = np.maximum(np.asarray(expected, dtype=float), SHARE_FLOOR)
    recent = np.maximum(np.asarray(actual, dtype=float), SHARE_FLOOR)
    return float(np.sum((recent - training) * np.log(recent / training)))


def _procedure_families(codes: list[Any]) -> np.ndarray:
    """Each code's family, worked out once per distinct code (a few hundred in 20,000 rows)."""
    texts = [_optional_text(code) for code in codes]
    families = {code: procedure_family(code) for code in set(texts)}
    return _text([families[code] for code in texts])


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    return frame[name].tolist() if name in frame else [None] * len(frame)


def _codes(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(code) for code in value]


def _optional_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _text(values: Iterable[Any]) -> np.ndarray:
    array = np.array([_optional_text(value) for value in values], dtype=object)
    return array


def _numbers(values: Iterable[Any]) -> np.ndarray:
    return pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(float)


def _short(number: float) -> str:
    return f"{number:.3g}"
