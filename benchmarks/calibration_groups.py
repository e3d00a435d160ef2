"""Recovery calibration by group: one Platt scaling, or one per payer type or per payer?

Issue 14 asks whether calibrating the recovery probability per payer type (or with the payer
as a calibration group) helps, and to keep it only where validation shows it does. Each variant
is fitted on the out-of-fold margins ``train`` fits its Platt scaling on (the recovery spec's
time folds inside the training months, ``ModelFitter.out_of_fold``) and applied to the margins
of the model refitted on every training row, as ``train`` does; it is measured on the test
months ``train`` holds out:

- **one Platt scaling**: what ``train`` fits (``training.fit.platt_calibration``);
- **payer type offsets**: a logistic regression of the outcome on the margin and the payer type;
- **payer type offsets and slopes**: the same with a slope per payer type;
- **payer offsets**: the margin and the payer, L2-regularised (42 payers, few rows each).

Per variant: Brier score and ECE with the paired bootstrap 95% interval of variant minus one
Platt scaling on the same rows, and the payers whose mean probability sits more than 5 points
from their recovered rate (the issue's measure), beside that count for the generator's true
probabilities (what chance alone gives on that many rows). Develop on some seeds, report on
others:

    python benchmarks/calibration_groups.py --seeds 9201 9202 9203 --rows 40000 --out /tmp/cal
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from harness import generated_history_options, records_table
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from features.pipeline import DenialFeatures
from training import intervals
from training.fit import (
    ModelFitter,
    platt_calibration,
    recovered_target,
    resolved_rows,
    time_folds,
)
from training.run import TrainingOptions, load_history, split_history
from training.specs import load_specs
from training.synthetic import default_truth_path, generate_history

OFF_BY = 0.05  # a payer is miscalibrated when its mean probability is this far from its rate
METRICS: dict[str, intervals.Statistic] = {
    "Brier": intervals.brier,
    "ECE": intervals.expected_calibration_error(),
}


@dataclass(frozen=True)
class Margins:
    """Raw recovery margins no model learned from (validation) and of the test months, with
    each row's payer and payer type and outcome."""

    validation: pd.DataFrame  # margin, payer_id, payer_type, recovered
    test: pd.DataFrame  # the same, plus true_probability


Calibrator = Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]


def margins(seed: int, rows: int, folder: Path) -> Margins:
    """The recovery model's validation and test margins on one generated history, fitted the
    way ``train`` fits it (spec, early stopping and time folds)."""
    path = folder / f"history-{seed}.parquet"
    truth_path = default_truth_path(path)
    if not (path.exists() and truth_path.exists()):
        generate_history(rows, seed, path, truth_out=truth_path)
    train, test, _ = split_history(load_history(path), TrainingOptions(path, folder))
    train = train[resolved_rows(train)].reset_index(drop=True)
    test = test[resolved_rows(test)].reset_index(drop=True)
    features = DenialFeatures().fit(train)
    matrix, target = features.transform(train), recovered_target(train)
    spec = load_specs()["recovery"]
    fitter = ModelFitter(seed, 2, features.categorical_indices)
    folds = time_folds(train, spec.calibration_share, spec.calibration_folds)
    spec = fitter.early_stopped(spec, matrix, target, folds[-1])
    validation_margin, positions = fitter.out_of_fold(spec, matrix, target, folds)
    final = fitter.binary(spec, matrix, target)
    truth = pd.read_parquet(truth_path).set_index("denial_id")["true_recovery_probability"]
    return Margins(
        _described(train.iloc[positions], validation_margin),
        _described(test, final.predict(features.transform(test), raw_score=True)).assign(
            true_probability=truth.loc[test["denial_id"]].to_numpy(float)
        ),
    )


def _described(frame: pd.DataFrame, margin: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "margin": margin,
            "payer_id": frame["payer_id"].to_numpy(),
            "payer_type": frame["payer_type"].to_numpy(),
            "recovered": recovered_target(frame).astype(float),
        }
    )


def one_platt(validation: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    calibration = platt_calibration(validation["margin"].to_numpy(), validation["recovered"])
    return calibration.probability(test["margin"].to_numpy())


def by_group(group: str, *, slopes: bool, strength: float) -> Calibrator:
    """A logistic regression of the outcome on the margin and one-hot ``group`` (with a slope
    per group when ``slopes``), L2 strength ``strength`` (sklearn's C)."""

    def calibrate(validation: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        encoder.fit(validation[[group]])

        def design(frame: pd.DataFrame) -> np.ndarray:
            groups = encoder.transform(frame[[group]])
            margin = frame[["margin"]].to_numpy()
            parts = [margin, groups, groups * margin] if slopes else [margin, groups]
            return np.hstack(parts)

        model = LogisticRegression(C=strength, max_iter=2000)
        model.fit(design(validation), validation["recovered"])
        return model.predict_proba(design(test))[:, 1]

    return calibrate


VARIANTS: dict[str, Calibrator] = {
    "one Platt scaling": one_platt,
    "payer type offsets": by_group("payer_type", slopes=False, strength=1e6),
    "payer type offsets and slopes": by_group("payer_type", slopes=True, strength=1e6),
    "payer offsets": by_group("payer_id", slopes=False, strength=1.0),
}


def payers_off(test: pd.DataFrame, probability: np.ndarray) -> int:
    """Payers whose mean probability is more than ``OFF_BY`` from their recovered rate."""
    frame = pd.DataFrame({"payer": test["payer_id"], "p": probability, "y": test["recovered"]})
    means = frame.groupby("payer")[["p", "y"]].mean()
    return int(((means["p"] - means["y"]).abs() > OFF_BY).sum())


def measure(seed: int, found: Margins) -> list[dict[str, object]]:
    """Every variant's figures on the test months, against one Platt scaling."""
    test, outcome = found.test, found.test["recovered"].to_numpy()
    probabilities = {name: fit(found.validation, test) for name, fit in VARIANTS.items()}
    reference = probabilities["one Platt scaling"]
    rows = []
    for name, probability in probabilities.items():
        row: dict[str, object] = {"seed": seed, "variant": name, "test rows": len(test)}
        for metric, statistic in METRICS.items():
            row[metric] = float(statistic(outcome, probability))
            difference = intervals.paired_difference(
                statistic, [outcome], [probability], [reference], seed=seed
            )
            row[f"{metric} - one Platt"] = difference.describe()
        row["payers off by > 5 points"] = payers_off(test, probability)
        row["same for the truth"] = payers_off(test, test["true_probability"].to_numpy())
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    options = generated_history_options(__doc__.split("\n")[0], argv)
    rows = []
    for seed in options.seeds:
        rows += measure(seed, margins(seed, options.rows, options.out))
        print(f"seed {seed} measured", file=sys.stderr, flush=True)
    print(records_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
