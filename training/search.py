"""Hyperparameters chosen on a validation slice inside the training months (``train --search``).

The specs' hyperparameters were chosen on development histories. A site's own history may want
other ones, and choosing them on the months that are reported would flatter the report, so the
search learns on the older training rows and scores on the newest ``VALIDATION_SHARE`` of them
(the slice the binary models' early stopping and calibration use), and the test months never
see it. Every point of a small grid (``sklearn.model_selection.ParameterGrid``) competes with
the spec's own point; the lowest validation log loss wins, so the spec stays when it is best.

Only the root cause is searched: on histories never used in development
(``benchmarks/hyperparameter_search.py``, seeds 9401-9402, 40,000 denials) the search raised
root-cause macro-F1 on one seed by 0.010 [0.004, 0.016] and kept the spec on the other, while
for recovery neither gain was significant (+0.0007, +0.0033 ROC AUC). It costs thirteen fits
of the root-cause model, so it is off by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import log_loss
from sklearn.model_selection import ParameterGrid

from features.contract import ROOT_CAUSES
from training.specs import ModelSpec

VALIDATION_SHARE = 0.15
GRID: dict[str, list[int]] = {
    "num_leaves": [7, 15, 31],
    "min_child_samples": [20, 80],
    "n_estimators": [100, 250],
}
# The model's metadata (and so the evaluation report): the search in words, and the chosen
# point as JSON for a refit to reuse.
SEARCH_KEY = "search.root_cause"
SEARCH_POINT_KEY = "search.root_cause_point"


@dataclass(frozen=True)
class SearchResult:
    """The point chosen on the validation slice, and how every point scored there."""

    spec: ModelSpec  # the spec with the chosen point
    chosen: dict[str, int]
    losses: dict[tuple[tuple[str, int], ...], float]
    spec_rank: int  # 1 + the points strictly better than the spec's own on validation

    def describe(self) -> str:
        point = ", ".join(f"{name} {value}" for name, value in self.chosen.items())
        return f"{point} (the spec's own point ranked {self.spec_rank} of {len(self.losses)})"


def with_point(spec: ModelSpec, point: dict[str, int]) -> ModelSpec:
    """The spec with ``point``'s hyperparameters in place of its own."""
    return spec.model_copy(update={"hyperparameters": {**spec.hyperparameters, **point}})


def choose(
    spec: ModelSpec, fit: Callable[[ModelSpec], Any], loss: Callable[[Any], float]
) -> SearchResult:
    """Fit every grid point and the spec's own (``fit`` learns on the older rows) and keep the
    one with the lowest ``loss`` on the validation slice."""
    own = {name: int(spec.hyperparameters[name]) for name in GRID}
    points = [*ParameterGrid(GRID), own]
    losses = {_key(point): loss(fit(with_point(spec, point))) for point in points}
    best = min(losses, key=losses.__getitem__)
    rank = 1 + sorted(losses.values()).index(losses[_key(own)])
    return SearchResult(with_point(spec, dict(best)), dict(best), losses, rank)


def _key(point: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((name, int(value)) for name, value in point.items()))


def root_cause_loss(model: Any, matrix: np.ndarray, codes: np.ndarray) -> float:
    """Multiclass log loss over every contract category (a class the learning rows lacked
    counts as probability 0, clipped)."""
    full = np.zeros((len(matrix), len(ROOT_CAUSES)))
    full[:, model.classes_] = model.predict_proba(matrix)
    return float(log_loss(codes, np.clip(full, 1e-9, 1.0), labels=np.arange(len(ROOT_CAUSES))))


def search_root_cause(
    fit_model: Callable[[ModelSpec, np.ndarray, np.ndarray], Any],
    spec: ModelSpec,
    matrix: np.ndarray,
    codes: np.ndarray,
    validation: np.ndarray,
) -> SearchResult:
    """The root-cause spec chosen on the ``validation`` rows (the newest slice) of the labelled
    training rows that ``matrix`` and ``codes`` hold, learning on the others."""
    return choose(
        spec,
        lambda candidate: fit_model(candidate, matrix[~validation], codes[~validation]),
        lambda model: root_cause_loss(model, matrix[validation], codes[validation]),
    )
