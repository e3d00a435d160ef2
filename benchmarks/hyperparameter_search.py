"""Does a hyperparameter search on a validation slice pay, against the specs as written?

Issue 14: hyperparameters are to be chosen on a validation slice inside the training window,
never on the months that are reported, "with a kept library where it pays". For each seed, a
history is split as ``train`` splits it; the newest 15% of the training months are the
validation slice. Every point of a grid (``sklearn.model_selection.ParameterGrid``) and the
spec's own point are fitted on the rest of the training months and scored on that slice (root
cause by multiclass log loss, recovery by binary log loss); the best point and the spec's own
hyperparameters are then fitted on every training month and measured on the test months
(root-cause macro-F1, recovery ROC AUC), with the paired bootstrap 95% interval of searched
minus spec on the same rows.

    python benchmarks/hyperparameter_search.py --seeds 9401 9402 --rows 40000 --out /tmp/search
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
from harness import generated_history_options, records_table
from model_quality import Split, load_split
from sklearn.metrics import log_loss
from sklearn.model_selection import ParameterGrid

from features.contract import ROOT_CAUSES
from features.pipeline import DenialFeatures
from training import intervals
from training.fit import (
    ModelFitter,
    labelled_rows,
    newest_share,
    recovered_target,
    resolved_rows,
    root_cause_codes,
)
from training.specs import ModelSpec, load_specs

VALIDATION_SHARE = 0.15  # as the binary models' calibration and early stopping slice
GRID = {
    "num_leaves": [7, 15, 31],
    "min_child_samples": [20, 80],
    "n_estimators": [100, 250],
}
CLASSES = np.arange(len(ROOT_CAUSES))


@dataclass(frozen=True)
class Task:
    """One model of the three: its spec, its rows and target, its fit and its figures."""

    name: str
    metric: str
    statistic: intervals.Statistic

    def rows(self, split: Split, train: bool) -> np.ndarray:
        frame = split.train if train else split.test
        if self.name == "root_cause":
            return labelled_rows(frame, "root_cause")
        return resolved_rows(frame)

    def target(self, split: Split, train: bool) -> np.ndarray:
        frame = split.train if train else split.test
        rows = self.rows(split, train)
        if self.name == "root_cause":
            return root_cause_codes(frame.loc[rows, "root_cause"])
        return recovered_target(frame[rows])

    def fit(self, fitter: ModelFitter, spec: ModelSpec, matrix: np.ndarray, target: np.ndarray):
        if self.name == "root_cause":
            return fitter.weighted_root_cause(spec, matrix, target)
        return fitter.binary(spec, matrix, target)

    def loss(self, model, matrix: np.ndarray, target: np.ndarray) -> float:
        probabilities = model.predict_proba(matrix)
        if self.name == "root_cause":
            full = np.zeros((len(matrix), len(CLASSES)))
            full[:, model.classes_] = probabilities
            return float(log_loss(target, np.clip(full, 1e-9, 1.0), labels=CLASSES))
        return float(log_loss(target, probabilities[:, 1]))

    def predictions(self, model, matrix: np.ndarray) -> np.ndarray:
        if self.name == "root_cause":
            return model.classes_[model.predict_proba(matrix).argmax(axis=1)]
        return model.predict_proba(matrix)[:, 1]


TASKS = (
    Task("root_cause", "macro-F1", intervals.macro_f1(len(CLASSES))),
    Task("recovery", "recovery ROC AUC", intervals.roc_auc),
)


def with_parameters(spec: ModelSpec, point: dict[str, int]) -> ModelSpec:
    return spec.model_copy(update={"hyperparameters": {**spec.hyperparameters, **point}})


def search(task: Task, split: Split, matrix: np.ndarray, fitter: ModelFitter, spec: ModelSpec):
    """The grid point with the lowest validation log loss, and every point's loss."""
    rows, target = task.rows(split, True), task.target(split, True)
    validation = newest_share(split.train[rows], VALIDATION_SHARE)
    learn_matrix, learn_target = matrix[rows][~validation], target[~validation]
    losses = {}
    spec_point = {k: spec.hyperparameters[k] for k in GRID}
    points = [*ParameterGrid(GRID), spec_point]  # the spec competes too
    for point in points:
        model = task.fit(fitter, with_parameters(spec, point), learn_matrix, learn_target)
        losses[tuple(sorted(point.items()))] = task.loss(
            model, matrix[rows][validation], target[validation]
        )
    best = min(losses, key=losses.get)
    return dict(best), losses


def measure(task: Task, split: Split, seed: int) -> dict[str, object]:
    features = DenialFeatures().fit(split.train)
    matrix, test_matrix = features.transform(split.train), features.transform(split.test)
    fitter = ModelFitter(seed, 2, features.categorical_indices)
    spec = load_specs()[task.name]
    started = time.perf_counter()
    best, losses = search(task, split, matrix, fitter, spec)
    searched_seconds = time.perf_counter() - started
    rows, target = task.rows(split, True), task.target(split, True)
    test_rows, truth = task.rows(split, False), task.target(split, False)
    chosen = {}
    for name, chosen_spec in (("spec", spec), ("searched", with_parameters(spec, best))):
        model = task.fit(fitter, chosen_spec, matrix[rows], target)
        chosen[name] = task.predictions(model, test_matrix[test_rows])
    difference = intervals.paired_difference(
        task.statistic, [truth], [chosen["searched"]], [chosen["spec"]], seed=seed
    )
    spec_point = tuple(sorted((k, spec.hyperparameters[k]) for k in GRID))
    return {
        "seed": split.seed,
        "metric": task.metric,
        "test rows": int(test_rows.sum()),
        "spec": float(task.statistic(truth, chosen["spec"])),
        "searched": float(task.statistic(truth, chosen["searched"])),
        "searched - spec [95% CI]": difference.describe(),
        "chosen": ", ".join(f"{k} {v}" for k, v in best.items()),
        "spec's validation rank": f"{1 + sorted(losses.values()).index(losses[spec_point])} "
        f"of {len(losses)}",
        "search seconds": round(searched_seconds),
    }


def main(argv: list[str] | None = None) -> int:
    options = generated_history_options(__doc__.split("\n")[0], argv)
    rows = []
    for seed in options.seeds:
        split = load_split(options.rows, seed, options.out)
        for task in TASKS:
            rows.append(measure(task, split, seed))
            print(f"seed {seed} {task.name} measured", file=sys.stderr, flush=True)
    print(records_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
