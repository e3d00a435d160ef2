"""How fast the labelling queue teaches the models, against random picks and all labels.

Simulated reviewers on generated histories: the training months' root_cause and preventable
labels are hidden, a small random set is revealed to start, then rounds of the label queue
reveal the labels of the denials it picks, up to each budget point (a share of the training
denials). Random picks of the same sizes (grown from the same starting set) and the fully
labelled training months are the comparisons. Every arm's models are fitted the way ``train``
fits them (the specs' hyperparameters, the project's feature pipeline) and measured on the
later, held-out months: root-cause macro-F1 and preventable ROC AUC.

With ``--told``, two references no queue can follow, since they are told every hidden cause:
``told-even`` picks so the revealed causes are as even as the months allow, ``told-err`` picks
(in the queue's rounds) the denials the interim root-cause model gets wrong, evened over their
causes. They ask whether any choice of denials could lift macro-F1 at a budget: where even they
do no better than random picks, the label count limits it, not the queue.

Develop on some generator seeds and report on others; the table gives the mean over seeds
with a 95% interval (Student t across seeds), and the paired differences the issue's target
speaks of.

    python benchmarks/label_efficiency.py --seeds 201 202 203 --rows 30000 --out /tmp/label-eff
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import f1_score, roc_auc_score

from features.contract import ROOT_CAUSES
from features.mapping import load_mapping
from features.pipeline import DenialFeatures
from training.fit import (
    ModelFitter,
    fit_root_cause,
    labelled_rows,
    outcome_evidence,
    preventable_target,
    root_cause_codes,
    small_sample_spec,
)
from training.label_queue import label_queue, queue_positions
from training.run import TrainingOptions, load_history, split_history
from training.specs import ModelSpec, load_specs
from training.synthetic import generate_history

POINTS = (0.01, 0.02, 0.05, 0.10)
START_SHARE = 0.0025  # random labels a site starts from (its first reviews)
ROUNDS_PER_POINT = 2  # queue rounds between budget points: the models are refitted each round
LABELS = ("root_cause", "preventable")


@dataclass(frozen=True)
class Split:
    """One generated history's training and test months, with their feature matrices."""

    train: pd.DataFrame
    test: pd.DataFrame
    train_matrix: np.ndarray
    test_matrix: np.ndarray
    train_evidence: np.ndarray  # what the training rows' outcomes say (the teacher reads it)


@dataclass(frozen=True)
class Measured:
    seed: int
    arm: str  # queue, random or all
    share: float  # of training denials labelled
    labels: int
    macro_f1: float
    preventable_auc: float
    inverted: bool = False  # the preventable Platt slope came out negative (scores flipped)


def load_split(rows: int, seed: int, folder: Path) -> Split:
    path = generate_history(rows, seed, folder / f"history-{seed}.parquet")
    train, test, _ = split_history(load_history(path), TrainingOptions(path, folder))
    features = DenialFeatures().fit(train)
    return Split(
        train, test, features.transform(train), features.transform(test), outcome_evidence(train)
    )


def measure(
    split: Split, revealed: np.ndarray, specs: dict[str, ModelSpec], seed: int
) -> tuple[float, float, bool]:
    """Root-cause macro-F1 and preventable ROC AUC on the test months of models fitted, as
    ``train`` fits them, on the revealed training rows."""
    fitter = ModelFitter(seed, 2, DenialFeatures().categorical_indices)
    rows = split.train.iloc[revealed]
    # As ``train`` fits them: root cause on every training row, self-trained on the unrevealed
    # ones (training.fit.fit_root_cause), leaves scaled to the label count.
    hidden_causes = hidden(split.train, revealed)["root_cause"]
    root = fit_root_cause(
        fitter, specs["root_cause"], split.train_matrix, hidden_causes, split.train_evidence
    )
    specs = {task: small_sample_spec(spec, len(revealed)) for task, spec in specs.items()}
    predicted = root.classes_[root.predict_proba(split.test_matrix).argmax(axis=1)]
    truth = root_cause_codes(split.test["root_cause"])
    macro_f1 = f1_score(truth, predicted, average="macro", labels=np.arange(10), zero_division=0)
    prevent, calibration = fitter.calibrated_binary(
        specs["preventable"], split.train_matrix[revealed], rows, preventable_target
    )
    margin = prevent.predict(split.test_matrix, raw_score=True)
    auc = roc_auc_score(preventable_target(split.test), calibration.probability(margin))
    return float(macro_f1), float(auc), calibration.slope <= 0


def mapping_macro_f1(split: Split) -> float:
    """What a site gets with no root-cause model: the governed mapping's cause."""
    mapped = load_mapping().route_frame(split.test)["mapped_root_cause"]
    truth = root_cause_codes(split.test["root_cause"])
    predicted = root_cause_codes(mapped)
    return float(f1_score(truth, predicted, average="macro", labels=np.arange(10), zero_division=0))


def hidden(train: pd.DataFrame, revealed: np.ndarray) -> pd.DataFrame:
    """The training months as a site would hold them: labels only on the revealed rows."""
    frame = train.copy()
    keep = np.zeros(len(frame), dtype=bool)
    keep[revealed] = True
    for name in LABELS:
        frame[name] = frame[name].where(keep)
    return frame


def grown_in_rounds(
    start: np.ndarray, targets: list[int], pick: Callable[[np.ndarray, int], list[int]]
) -> list[np.ndarray]:
    """The revealed rows at each target count, grown from ``start`` in rounds: ``pick`` is
    given what is revealed and how many more to take (models are refitted each round)."""
    revealed = list(start)
    grown = []
    for target in targets:
        previous = len(revealed)
        for round_ in range(ROUNDS_PER_POINT):
            wanted = previous + (target - previous) * (round_ + 1) // ROUNDS_PER_POINT
            if wanted > len(revealed):
                revealed += pick(np.array(revealed), wanted - len(revealed))
        grown.append(np.array(revealed))
    return grown


def queue_arm(split: Split, start: np.ndarray, targets: list[int], seed: int) -> list[np.ndarray]:
    """The revealed rows at each target count, grown by rounds of the label queue."""

    def pick(revealed: np.ndarray, count: int) -> list[int]:
        frame = hidden(split.train, revealed)
        queue = label_queue(frame, count, seed=seed, matrix=split.train_matrix)
        return queue_positions(frame, queue).tolist()

    return grown_in_rounds(start, targets, pick)


def random_arm(
    split: Split, start: np.ndarray, targets: list[int], rng: np.random.Generator
) -> list[np.ndarray]:
    """Nested random samples: the starting set, then uniform picks up to each target."""
    rest = rng.permutation(np.setdiff1d(np.arange(len(split.train)), start))
    return [np.concatenate([start, rest[: target - len(start)]]) for target in targets]


def told_balanced_arm(
    split: Split, start: np.ndarray, targets: list[int], rng: np.random.Generator
) -> list[np.ndarray]:
    """A reference no queue can follow, told every hidden cause: picks that make the revealed
    causes as even as the training months allow (random within a cause), so rare causes get
    as many labels as common ones."""
    causes = root_cause_codes(split.train["root_cause"])
    revealed, grown = list(start), []
    for target in targets:
        revealed += balanced_picks(causes, np.array(revealed), target - len(revealed), rng)
        grown.append(np.array(revealed))
    return grown


def told_errors_arm(
    split: Split, start: np.ndarray, targets: list[int], seed: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """A reference no queue can follow, told every hidden cause: in the queue's rounds, picks
    among the denials the interim root-cause model (fitted as ``train`` fits it) gets wrong,
    as even over the true causes as they allow."""
    causes = root_cause_codes(split.train["root_cause"])
    specs = load_specs()

    def pick(revealed: np.ndarray, count: int) -> list[int]:
        fitter = ModelFitter(seed, 2, DenialFeatures().categorical_indices)
        labels = hidden(split.train, revealed)["root_cause"]
        model = fit_root_cause(
            fitter, specs["root_cause"], split.train_matrix, labels, split.train_evidence
        )
        predicted = model.classes_[model.predict_proba(split.train_matrix).argmax(axis=1)]
        wrong = np.flatnonzero(predicted != causes)
        return balanced_picks(causes, revealed, count, rng, among=wrong)

    return grown_in_rounds(start, targets, pick)


def balanced_picks(
    causes: np.ndarray,
    revealed: np.ndarray,
    count: int,
    rng: np.random.Generator,
    among: np.ndarray | None = None,
) -> list[int]:
    """``count`` unrevealed rows (of ``among`` when given, topped up from the rest) that
    bring each cause's revealed count as close to even as the rows allow."""
    every = range(len(ROOT_CAUSES))
    held = np.bincount(causes[revealed], minlength=len(ROOT_CAUSES))
    free = np.setdiff1d(np.arange(len(causes)), revealed)
    preferred = free if among is None else np.intersect1d(free, among)
    queues = {c: list(rng.permutation(preferred[causes[preferred] == c])) for c in every}
    rest = {
        c: list(rng.permutation(np.setdiff1d(free[causes[free] == c], preferred))) for c in every
    }
    picks: list[int] = []
    while len(picks) < count:
        open_causes = [c for c in every if queues[c] or rest[c]]
        if not open_causes:
            break
        cause = min(open_causes, key=lambda c: held[c])
        picks.append(int((queues[cause] or rest[cause]).pop()))
        held[cause] += 1
    return picks


def run_seed(
    seed: int, rows: int, points: tuple[float, ...], folder: Path, told: bool = False
) -> list[Measured]:
    started = time.perf_counter()
    split = load_split(rows, seed, folder)
    specs = load_specs()
    rng = np.random.default_rng(seed)
    n = len(split.train)
    start = rng.choice(n, size=max(1, round(START_SHARE * n)), replace=False)
    targets = [round(p * n) for p in points]
    results = []
    arms = {
        "queue": queue_arm(split, start, targets, seed),
        "random": random_arm(split, start, targets, rng),
    }
    if told:
        arms["told-even"] = told_balanced_arm(split, start, targets, np.random.default_rng(seed))
        arms["told-err"] = told_errors_arm(split, start, targets, seed, np.random.default_rng(seed))
    for arm, revealed_sets in arms.items():
        for share, revealed in zip(points, revealed_sets, strict=True):
            results.append(
                Measured(seed, arm, share, len(revealed), *measure(split, revealed, specs, seed))
            )
    every = np.flatnonzero(labelled_rows(split.train, "root_cause"))
    results.append(Measured(seed, "all", 1.0, len(every), *measure(split, every, specs, seed)))
    results.append(Measured(seed, "mapping", 0.0, 0, mapping_macro_f1(split), np.nan))
    seconds = time.perf_counter() - started
    print(f"seed {seed}: {n:,} training and {len(split.test):,} test denials, {seconds:.0f} s")
    return results


def interval(values: pd.Series) -> str:
    """Mean and 95% Student-t half-width across seeds."""
    mean = values.mean()
    if len(values) < 2:
        return f"{mean:.3f}"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"{mean:.3f} ± {half:.3f}"


def table(results: pd.DataFrame) -> str:
    """Mean over seeds with 95% intervals, per arm and budget point, then paired gaps."""
    header = f"{'arm':<8}{'labels':>8}{'mean n':>8}{'macro-F1':>18}{'preventable AUC':>18}"
    lines = [header, "  (* fewer than root_cause min_labels: `train` would route by the mapping)"]
    minimum = load_specs()["root_cause"].min_labels
    for (arm, share), group in results.groupby(["arm", "share"], sort=False):
        labels = {"all": "all", "mapping": "none"}.get(arm, f"{share:.0%}")
        count = group["labels"].mean()
        flag = "*" if 0 < count < minimum else " "
        auc = "" if arm == "mapping" else interval(group["preventable_auc"])
        inverted = f"  ({int(group['inverted'].sum())} inverted)" if group["inverted"].any() else ""
        lines.append(
            f"{arm:<8}{labels:>8}{count:>7.0f}{flag}{interval(group['macro_f1']):>18}"
            f"{auc:>18}{inverted}"
        )
    lines.append("paired gaps per seed (mean ± 95%):")
    everything = results[results["arm"] == "all"].set_index("seed")
    for share in sorted(results.loc[results["arm"] == "queue", "share"].unique()):
        queue = results[(results["arm"] == "queue") & (results["share"] == share)].set_index("seed")
        random = results[(results["arm"] == "random") & (results["share"] == share)].set_index(
            "seed"
        )
        for metric in ("macro_f1", "preventable_auc"):
            over_random = interval(queue[metric] - random[metric])
            below_all = interval(everything[metric] - queue[metric])
            lines.append(
                f"  {share:>4.0%} {metric:<16} queue - random {over_random:<16} "
                f"all - queue {below_all}"
            )
    return "\n".join(lines)


def plot(results: pd.DataFrame, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    metrics = {"macro_f1": "root-cause macro-F1", "preventable_auc": "preventable ROC AUC"}
    for axis, (metric, title) in zip(axes, metrics.items(), strict=True):
        for arm in ("queue", "random"):
            means = results[results["arm"] == arm].groupby("share")[metric].mean()
            axis.plot(means.index * 100, means.to_numpy(), marker="o", label=arm)
        axis.axhline(
            results.loc[results["arm"] == "all", metric].mean(), ls="--", c="k", label="all labels"
        )
        if metric == "macro_f1":  # what the site gets with no root-cause model
            mapping = results.loc[results["arm"] == "mapping", metric].mean()
            axis.axhline(mapping, ls=":", c="grey", label="governed mapping")
        axis.set(xlabel="training denials labelled (%)", title=title)
        axis.legend()
    figure.tight_layout()
    target = out / "label_efficiency.png"
    figure.savefig(target, dpi=120)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[201, 202, 203])
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--points", type=float, nargs="+", default=list(POINTS))
    parser.add_argument("--out", type=Path, required=True, help="Folder for the plot and CSV.")
    parser.add_argument(
        "--told",
        action="store_true",
        help="also run two references told the hidden causes (no queue can follow them): "
        "causes made even, and the interim model's errors made even",
    )
    args = parser.parse_args(argv)
    if args.rows < 5_000 or any(not 0 < p < 1 for p in args.points):
        print("error: --rows must be 5000 or more, --points within (0, 1)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    measured: list[Measured] = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            measured += run_seed(
                seed, args.rows, tuple(sorted(args.points)), Path(folder), told=args.told
            )
    results = pd.DataFrame([vars(m) for m in measured])
    results.to_csv(args.out / "label_efficiency.csv", index=False)
    print(f"generator seeds {args.seeds}, {args.rows:,} rows each")
    print(table(results))
    print(f"plot: {plot(results, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
