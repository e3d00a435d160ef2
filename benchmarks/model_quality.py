"""The registered model against a plain LightGBM and the generator's limit, on the same split.

For each generator seed, a history is generated with its truth (``generate --with-truth``) and
split by time the way ``train`` splits it (the newest matured months are the test months). On
the test months three scorers are measured:

- **model**: the registered model, fitted by the project's code (``fit_triage_model``, the
  specs in ``models/``) on the training months;
- **plain**: a LightGBM with default parameters on simple features (adjustment and remark codes
  one-hot, amounts, payer, payer type, place of service, days between the dates), one model per
  task, its probabilities as they come;
- **limit**: the generator's own truth (the true cause before label noise, the probabilities the
  labels were drawn from): what no model of the observed fields can beat.

Recovery is measured twice. As ``train`` measures it, on the resolved test denials; but the
test months' denials that are still open when the history ends are mostly slow write-offs, so
the resolved ones lean towards recovery and even the true probabilities look low there. And on
every test denial against its eventual outcome, which the generator knows (``true_recovered``):
what a recovery probability promises, without that selection.

Each metric is reported with the paired bootstrap 95% interval of model minus plain on the same
rows (:mod:`training.intervals`). Develop on some seeds and report on others:

    python benchmarks/model_quality.py --seeds 9101 9102 9103 --rows 40000 --out /tmp/quality
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.contract import ROOT_CAUSES, TRUTH_COLUMNS
from training import intervals
from training.fit import (
    labelled_rows,
    preventable_target,
    recovered_target,
    root_cause_codes,
)
from training.run import TrainingOptions, load_history, split_history
from training.specs import load_specs
from training.synthetic import default_truth_path, generate_history

EVENTUAL = "eventual recovery"  # every test denial, against the outcome it ends with
METRICS: dict[str, tuple[str, intervals.Statistic]] = {
    # name: (task whose labelled rows it is measured on, per-row statistic)
    "macro-F1": ("root_cause", intervals.macro_f1(len(ROOT_CAUSES))),
    "recovery ROC AUC": ("recovery", intervals.roc_auc),
    "recovery ECE": ("recovery", intervals.expected_calibration_error()),
    "recovery ECE, eventual outcome": (EVENTUAL, intervals.expected_calibration_error()),
    "preventable ROC AUC": ("preventable", intervals.roc_auc),
}
SIMPLE_CATEGORIES = ("payer_id", "payer_type", "place_of_service")


@dataclass(frozen=True)
class Split:
    """One generated history's training and test months, and the truth of the test rows."""

    seed: int
    train: pd.DataFrame
    test: pd.DataFrame
    truth: pd.DataFrame  # aligned with ``test``


@dataclass(frozen=True)
class Predictions:
    """One scorer's view of every test row: root-cause index, recovery and preventable
    probabilities."""

    root_cause: np.ndarray
    recovery: np.ndarray
    preventable: np.ndarray

    def of(self, task: str) -> np.ndarray:
        if task == "root_cause":
            return self.root_cause
        return self.recovery if task in ("recovery", EVENTUAL) else self.preventable


def load_split(rows: int, seed: int, folder: Path) -> Split:
    """The seed's history (generated once into ``folder``) split as ``train`` splits it."""
    path = folder / f"history-{seed}.parquet"
    truth_path = default_truth_path(path)
    if not _generated(path, truth_path, rows):
        generate_history(rows, seed, path, truth_out=truth_path)
    train, test, _ = split_history(load_history(path), TrainingOptions(path, folder))
    truth = pd.read_parquet(truth_path).set_index("denial_id").loc[test["denial_id"]]
    return Split(seed, train, test, truth.reset_index(drop=True))


def _generated(path: Path, truth_path: Path, rows: int) -> bool:
    """Whether ``path`` holds the seed's history already, with every truth column."""
    if not (path.exists() and truth_path.exists()):
        return False
    truth = pd.read_parquet(truth_path)
    return len(truth) == rows and set(TRUTH_COLUMNS) <= set(truth.columns)


# ---------------------------------------------------------------------------- scorers


def registered(split: Split, seed: int = 7) -> Predictions:
    """The project's model, fitted as ``train`` fits it on the training months."""
    from training.fit import fit_triage_model

    model = fit_triage_model(split.train, load_specs(), seed=seed)
    scores = model.score(split.test)
    return Predictions(
        root_cause_codes(scores["root_cause"]),
        scores["recovery_probability"].to_numpy(float),
        scores["preventable_probability"].to_numpy(float),
    )


def plain(split: Split, seed: int = 7) -> Predictions:
    """Default LightGBM per task on :func:`simple_features`."""
    train, test = simple_features(split.train, split.test)
    fitted = {}
    for task, label in _TARGETS.items():
        rows = labelled_rows(split.train, task)
        model = lgb.LGBMClassifier(random_state=seed, n_jobs=2, verbose=-1)
        fitted[task] = model.fit(train[rows], label(split.train[rows]))
    return Predictions(
        fitted["root_cause"].predict(test),
        fitted["recovery"].predict_proba(test)[:, 1],
        fitted["preventable"].predict_proba(test)[:, 1],
    )


def limit(split: Split) -> Predictions:
    """The generator's truth as a scorer."""
    return Predictions(
        root_cause_codes(split.truth["true_root_cause"]),
        split.truth["true_recovery_probability"].to_numpy(float),
        split.truth["true_preventable_probability"].to_numpy(float),
    )


_TARGETS: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {
    "root_cause": lambda frame: root_cause_codes(frame["root_cause"]),
    "recovery": recovered_target,
    "preventable": preventable_target,
}


def simple_features(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Codes one-hot (the training months' codes), amounts, payer, payer type, place of service
    (categorical) and the days between service, submission, denial and as-of dates."""
    codes = sorted(
        {code for column in ("carc_codes", "rarc_codes") for row in train[column] for code in row}
    )
    return _simple(train, codes, train), _simple(test, codes, train)


def _simple(frame: pd.DataFrame, codes: list[str], train: pd.DataFrame) -> pd.DataFrame:
    carried = [
        set(a) | set(r) for a, r in zip(frame["carc_codes"], frame["rarc_codes"], strict=True)
    ]
    one_hot = pd.DataFrame(
        {f"code_{c}": [c in row for row in carried] for c in codes}, index=frame.index
    ).astype(np.uint8)
    denial = pd.to_datetime(frame["denial_date"])
    columns = pd.DataFrame(
        {
            "billed_amount": frame["billed_amount"].astype(float),
            "denied_amount": frame["denied_amount"].astype(float),
            "days_service_to_denial": (denial - pd.to_datetime(frame["service_date"])).dt.days,
            "days_submission_to_denial": (
                denial - pd.to_datetime(frame["submission_date"])
            ).dt.days,
            "days_denial_to_as_of": (pd.to_datetime(frame["as_of_date"]) - denial).dt.days,
            **{
                name: pd.Categorical(frame[name], categories=sorted(train[name].dropna().unique()))
                for name in SIMPLE_CATEGORIES
            },
        },
        index=frame.index,
    )
    return pd.concat([columns, one_hot], axis=1)


# ---------------------------------------------------------------------------- measuring


def measure(split: Split, scorers: dict[str, Predictions], seed: int) -> list[dict[str, object]]:
    """Per metric: every scorer's figure and model minus plain with its paired interval."""
    rows = []
    for offset, (name, (task, statistic)) in enumerate(METRICS.items()):
        labelled, truth = _measured_outcomes(split, task)
        values = {
            scorer: float(statistic(truth, p.of(task)[labelled], axis=-1))
            for scorer, p in scorers.items()
        }
        difference = intervals.paired_difference(
            statistic,
            [truth],
            [scorers["model"].of(task)[labelled]],
            [scorers["plain"].of(task)[labelled]],
            seed=seed + offset,
        )
        rows.append(
            {
                "seed": split.seed,
                "metric": name,
                "rows": int(labelled.sum()),
                **values,
                "difference": difference,
            }
        )
    return rows


def _measured_outcomes(split: Split, task: str) -> tuple[np.ndarray, np.ndarray]:
    """The test rows a task is measured on and their outcomes: the labelled rows and their
    labels, or for :data:`EVENTUAL` every row and the outcome it ends with."""
    if task == EVENTUAL:
        return np.ones(len(split.test), dtype=bool), split.truth["true_recovered"].to_numpy(bool)
    labelled = labelled_rows(split.test, task)
    return labelled, _TARGETS[task](split.test[labelled])


def format_table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| seed | metric | test rows | model | plain LightGBM | limit (truth) | "
        "model - plain [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        difference = row["difference"]
        assert isinstance(difference, intervals.Interval)
        lines.append(
            f"| {row['seed']} | {row['metric']} | {row['rows']:,} | {row['model']:.4f} | "
            f"{row['plain']:.4f} | {row['limit']:.4f} | {difference.describe()} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="generator seeds")
    parser.add_argument("--rows", type=int, default=40_000, help="denials per history")
    parser.add_argument("--out", type=Path, default=Path("/tmp/model-quality"))
    parser.add_argument("--fit-seed", type=int, default=7, help="the models' random seed")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    for seed in args.seeds:
        split = load_split(args.rows, seed, args.out)
        started = time.perf_counter()
        model = registered(split, args.fit_seed)
        fitted = time.perf_counter() - started
        scorers = {"model": model, "plain": plain(split, args.fit_seed), "limit": limit(split)}
        rows.extend(measure(split, scorers, seed))
        print(
            f"seed {seed}: {len(split.train):,} training and {len(split.test):,} test denials; "
            f"the registered model fitted in {fitted:.1f} s",
            file=sys.stderr,
        )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
