"""How many denials the champion flags for human review, why, and what other policies would flag.

Scores the denials of a history denied on or after ``--from`` (by default the main job's
denials after its training window) with the registered champion of a data directory, counts
each review reason (and how often it is a denial's only reason), the root-cause model's accuracy
on the clinical and compliance categories the mapping flags, sure and unsure, and the share of
denials flagged under alternative policies, all from the same scores. Prints markdown tables.

    DENIAL_TRIAGE_DATA_DIR=data .venv/bin/denial-triage quickstart --no-serve   # the main job
    nice .venv/bin/python benchmarks/review_flags.py --data-dir data
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from serving.scoring import score_denials
from training import run as training_run
from training.tracking import CHAMPION, MODEL_NAME, configure_tracking, load_measured_model

SURE = 0.8  # the root-cause probability above which the model is called sure here
# Review reasons as the model writes them (free text, no codes), by the words that tell them.
REASON_KINDS = {
    "routed to": "triage: unsure model, codes disagree",
    "clinical or compliance": "clinical or compliance category",
    "high dollars": "high dollars (over $10,000)",
    "never seen": "codes never seen in training",
    "deadline passed": "deadline passed",
    "trained": "a model could not be trained",
}
Reason = tuple[dict[str, Any], str]


def kind(reason: str) -> str:
    return next((name for words, name in REASON_KINDS.items() if words in reason), reason)


def sure(score: dict[str, Any]) -> bool:
    probability = score["root_cause"]["probability"]
    return probability is not None and probability >= SURE


# What each policy keeps of today's reasons: a denial is flagged if any reason is kept.
POLICIES: dict[str, Callable[[dict[str, Any], str], bool]] = {
    "today's policy": lambda score, reason: True,
    "A: no clinical or compliance flag when the model is sure": lambda score, reason: (
        not (kind(reason) == "clinical or compliance category" and sure(score))
    ),
    "B: A, and a passed deadline goes to write-off review instead": lambda score, reason: (
        POLICIES["A: no clinical or compliance flag when the model is sure"](score, reason)
        and kind(reason) != "deadline passed"
    ),
    "C: B, and high dollars flag only an unsure model": lambda score, reason: (
        POLICIES["B: A, and a passed deadline goes to write-off review instead"](score, reason)
        and not (kind(reason) == "high dollars (over $10,000)" and sure(score))
    ),
    "D: no clinical or compliance flag at all, no passed-deadline flag": lambda score, reason: (
        kind(reason) not in ("clinical or compliance category", "deadline passed")
    ),
}


def flagged_share(scores: list[dict[str, Any]], keep: Callable[[dict, str], bool]) -> float:
    flagged = sum(any(keep(s, reason) for reason in s["review_reasons"]) for s in scores)
    return flagged / len(scores)


def reason_table(scores: list[dict[str, Any]]) -> list[tuple[str, float, float]]:
    anywhere, alone = Counter(), Counter()
    for score in scores:
        kinds = {kind(reason) for reason in score["review_reasons"]}
        anywhere.update(kinds)
        if len(kinds) == 1:
            alone.update(kinds)
    total = len(scores)
    return [(name, count / total, alone[name] / total) for name, count in anywhere.most_common()]


def clinical_accuracy(scores: list[dict[str, Any]], labels: pd.Series) -> list[tuple]:
    """The model's accuracy on the denials flagged for their clinical or compliance category,
    sure and unsure."""
    rows = []
    for name, wanted in (("sure", True), ("unsure", False)):
        chosen = [
            (score, label)
            for score, label in zip(scores, labels, strict=True)
            if sure(score) == wanted
            and any(kind(r) == "clinical or compliance category" for r in score["review_reasons"])
            and isinstance(label, str)
        ]
        right = sum(score["root_cause"]["category"] == label for score, label in chosen)
        rows.append((name, len(chosen), right / len(chosen) if chosen else float("nan")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--from", dest="start", default="2025-12-01", help="first denial date")
    parser.add_argument("--sample", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    configure_tracking(args.data_dir)
    # The evaluation fit, not the refit: the refit learned the test months measured here.
    model = load_measured_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    history = training_run.load_history(args.data_dir / "history" / "history.parquet")
    held = history[history["denial_date"] >= pd.Timestamp(args.start)]
    sample = held.sample(n=min(args.sample, len(held)), random_state=args.seed)
    scores = score_denials(model, sample, explain=False)
    print(
        f"{len(scores):,} denials denied from {args.start} ({len(held):,} in the history), "
        f"scored by the champion; sure = root-cause probability >= {SURE}\n"
    )
    print("| review reason | share of denials | as their only reason |\n|---|---:|---:|")
    for name, anywhere, alone in reason_table(scores):
        print(f"| {name} | {anywhere:.1%} | {alone:.1%} |")
    print("\n| clinical or compliance flag | denials | root cause right |\n|---|---:|---:|")
    for name, count, accuracy in clinical_accuracy(scores, sample["root_cause"]):
        print(f"| model {name} | {count:,} | {accuracy:.1%} |")
    print("\n| policy | denials flagged |\n|---|---:|")
    for name, keep in POLICIES.items():
        print(f"| {name} | {flagged_share(scores, keep):.1%} |")


if __name__ == "__main__":
    main()
