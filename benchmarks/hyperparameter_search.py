"""Does a hyperparameter search on a validation slice pay, against the specs as written?

Issue 14: hyperparameters are to be chosen on a validation slice inside the training window,
never on the months that are reported, "with a kept library where it pays". For each seed, a
history is split as ``train`` splits it; the newest 15% of the training months are the
validation slice. Every point of ``training.search``'s grid and the spec's own point are
fitted on the rest of the training months and scored on that slice (root cause by multiclass
log loss, recovery by binary log loss); the best point and the spec's own
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
from training.search import VALIDATION_SHARE, choose, root_cause_loss
from training.specs import ModelSpec, load_specs


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
        if self.name == "root_cause":
            return root_cause_loss(model, matrix, target)
        return float(log_loss(target, model.predict_proba(matrix)[:, 1]))

    def predictions(self, model, matrix: np.ndarray) -> np.ndarray:
        if self.name == "root_cause":
            return model.classes_[model.predict_proba(matrix).argmax(axis=1)]
        return model.predict_proba(matrix)[:, 1]


TASKS = (
    Task("root_cause", "macro-F1", intervals.macro_f1(len(ROOT_CAUSES))),
    Task("recovery", "recovery ROC AUC", intervals.roc_auc),
)


def search(task: Task, split: Split, matrix: np.ndarray, fitter: ModelFitter, spec: ModelSpec):
    """``training.search.choose`` on the newest slice of the task's training rows."""
    rows, target = task.rows(split, True), task.target(split, True)
    validation = newest_share(split.train[rows], VALIDATION_SHARE)
    learn, held = matrix[rows][~validation], matrix[rows][validation]
    return choose(
        spec,
        lambda candidate: task.fit(fitter, candidate, learn, target[~validation]),
        lambda model: task.loss(model, held, target[validation]),
    )


def measure(task: Task, split: Split, seed: int) -> dict[str, object]:
    features = DenialFeatures().fit(split.train)
    matrix, test_matrix = features.transform(split.train), features.transform(split.test)
    fitter = ModelFitter(seed, 2, features.categorical_indices)
    spec = load_specs()[task.name]
    started = time.perf_counter()
    result = search(task, split, matrix, fitter, spec)
    searched_seconds = time.perf_counter() - started
    rows, target = task.rows(split, True), task.target(split, True)
    test_rows, truth = task.rows(split, False), task.target(split, False)
    chosen = {}
    for name, chosen_spec in (("spec", spec), ("searched", result.spec)):
        model = task.fit(fitter, chosen_spec, matrix[rows], target)
        chosen[name] = task.predictions(model, test_matrix[test_rows])
    difference = intervals.paired_difference(
        task.statistic, [truth], [chosen["searched"]], [chosen["spec"]], seed=seed
    )
    return {
        "seed": split.seed,
        "metric": task.metric,
        "test rows": int(test_rows.sum()),
        "spec": float(task.statistic(truth, chosen["spec"])),
        "searched": float(task.statistic(truth, chosen["searched"])),
        "searched - spec [95% CI]": difference.describe(),
        "chosen": result.describe(),
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
