"""The labelling queue: which unlabelled denials a reviewer should label next.

A site's history carries codes and outcomes but few root-cause and preventable labels, which
come only from reviewers. Labels teach the models most when they are spent on a mix of:

* denials the current models are unsure of (a small margin between the two likeliest root
  causes, a preventable probability near one half, a model that disagrees with the governed
  code mapping), spread over the predicted root causes so rare causes get labels too. While
  labels are few, the root-cause doubt is the self-training teacher's, which also reads how
  each resolved denial ended (``training.fit.root_cause_teacher``): a label is spent where
  neither the features nor the outcome settle the cause;
* strata of payer x primary adjustment code that hold few labels or none, so every payer's use
  of a code is seen at least once;
* a small random share, which keeps the labelled sample close to the site's real mix.

With too few labels to fit a model (a cold start), picks come from the spread and the random
share alone. The same :func:`choose` ranks the queue of ``denial-triage label-queue`` (interim
models fitted here on the history) and the reviewer pages' "to label" view (the champion's
stored probabilities). Everything is seeded; no wall clock is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.contract import LIST_SEPARATOR, ROOT_CAUSES
from features.mapping import load_mapping
from features.pipeline import DenialFeatures
from training.fit import (
    ModelFitter,
    fit_root_cause,
    labelled_rows,
    outcome_evidence,
    preventable_target,
    root_cause_teacher,
    self_trains,
    small_sample_spec,
)
from training.specs import load_specs

# Fewer root-cause labels than this (or a single cause among them) is a cold start: no interim
# model is fitted, and picks come from spread over strata and the random share.
COLD_START_LABELS = 50
RANDOM_SHARE = 0.10  # of the budget, picked uniformly among the unlabelled
SPREAD_SHARE = 0.30  # of the budget once a model exists; the rest goes to uncertainty
# A stratum's claim on the next spread pick is its size over (1 + labels it holds) squared,
# which gives strata labels in proportion to the square root of their size: small strata get
# their first labels far sooner than under random picks, and large ones still get more.
SPREAD_POWER = 2.0
# How much each kind of uncertainty counts in an uncertain pick. Preventable weighs most: picks
# driven by root-cause doubt alone left the preventable model worse than random picks did
# (benchmarks/label_efficiency.py on development seeds 101-102), at no gain in macro-F1.
ROOT_CAUSE_WEIGHT = 0.35
PREVENTABLE_WEIGHT = 0.50
DISAGREEMENT_WEIGHT = 0.15
QUEUE_COLUMNS = ("denial_id", "claim_id", "payer_id", "carc_codes", "rarc_codes", "rank", "reason")


class LabelQueueError(ValueError):
    """The queue cannot be built; the message says why."""


@dataclass(frozen=True)
class Pool:
    """What selection knows of each unlabelled denial (one row per candidate).

    ``root_cause`` holds the current model's probability of each of ``ROOT_CAUSES`` (a row of
    NaN where no model scored it); ``preventable`` the probability it was preventable (NaN
    likewise). The label counters describe the denials already labelled.
    """

    strata: np.ndarray  # "payer x primary adjustment" of each candidate
    mapped: np.ndarray  # the governed mapping's root cause of each candidate
    root_cause: np.ndarray | None = None
    preventable: np.ndarray | None = None
    labelled_strata: Counter[str] | None = None
    labelled_causes: Counter[str] | None = None

    def __len__(self) -> int:
        return len(self.strata)

    @property
    def has_root_cause_model(self) -> bool:
        return self.root_cause is not None and bool(np.isfinite(self.root_cause).any())


@dataclass(frozen=True)
class Pick:
    """One candidate chosen: its position in the pool and why, in a reviewer's words."""

    position: int
    reason: str


# ---------------------------------------------------------------------------- strata


def stratum(payer_id: object, carc_codes: Sequence[str]) -> str:
    """A denial's stratum: its payer and its primary adjustment (group and code)."""
    primary = carc_codes[0] if len(carc_codes) else "no adjustment"
    return f"{payer_id} x {primary}"


def strata_of(frame: pd.DataFrame) -> np.ndarray:
    return np.array(
        [stratum(p, c) for p, c in zip(frame["payer_id"], frame["carc_codes"], strict=True)],
        dtype=object,
    )


# ---------------------------------------------------------------------------- uncertainty


def top_two(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the likeliest and second likeliest root cause of each row."""
    order = np.argsort(-np.nan_to_num(probabilities, nan=0.0), axis=1, kind="stable")
    return order[:, 0], order[:, 1]


def root_cause_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """1 minus the margin between the two likeliest causes: 1 for a tie, 0 for a sure model
    (0 too where no model scored the row)."""
    first, second = top_two(probabilities)
    rows = np.arange(len(probabilities))
    margin = probabilities[rows, first] - probabilities[rows, second]
    return np.nan_to_num(1.0 - margin, nan=0.0)


def preventable_uncertainty(probability: np.ndarray) -> np.ndarray:
    """1 at a probability of one half, 0 at 0 or 1 (0 where no model scored the row)."""
    return np.nan_to_num(1.0 - np.abs(2.0 * probability - 1.0), nan=0.0)


def predicted_causes(pool: Pool) -> np.ndarray:
    """The model's likeliest cause of each candidate, or the mapping's where no model is."""
    if not pool.has_root_cause_model:
        return pool.mapped
    assert pool.root_cause is not None
    first, _ = top_two(pool.root_cause)
    scored = np.isfinite(pool.root_cause).all(axis=1)
    return np.where(scored, np.asarray(ROOT_CAUSES, dtype=object)[first], pool.mapped)


def informativeness(pool: Pool) -> np.ndarray:
    """How much a candidate's labels should teach the models, from 0 to 1."""
    score = np.zeros(len(pool))
    if pool.has_root_cause_model:
        assert pool.root_cause is not None
        score += ROOT_CAUSE_WEIGHT * root_cause_uncertainty(pool.root_cause)
        score += DISAGREEMENT_WEIGHT * (predicted_causes(pool) != pool.mapped)
    if pool.preventable is not None:
        score += PREVENTABLE_WEIGHT * preventable_uncertainty(pool.preventable)
    return score


# ---------------------------------------------------------------------------- choosing


def choose(pool: Pool, budget: int, seed: int) -> list[Pick]:
    """The ``budget`` candidates whose labels teach most, best first, each with its reason.

    The budget splits into a random share, spread over strata and (once a root-cause model
    exists) uncertain picks; the three lists are interleaved so every stretch of the queue
    holds some of each.
    """
    if budget < 1:
        raise LabelQueueError(f"the budget must be at least 1 denial; got {budget}")
    budget = min(budget, len(pool))
    rng = np.random.default_rng(seed)
    random_count = round(budget * RANDOM_SHARE)
    spread_count = budget - random_count
    if pool.has_root_cause_model:
        spread_count = round(budget * SPREAD_SHARE)
    taken = np.zeros(len(pool), dtype=bool)
    uncertain = _uncertain_picks(pool, budget - random_count - spread_count, taken)
    spread = _spread_picks(pool, spread_count, taken, rng)
    random = _random_picks(budget - len(uncertain) - len(spread), taken, rng)
    return _interleave([uncertain, spread, random])


def _uncertain_picks(pool: Pool, count: int, taken: np.ndarray) -> list[Pick]:
    """The most informative candidates, each cause's weight shrinking as it gains labels and
    each stratum's as it gains picks, so the uncertain picks do not pile on one corner."""
    if count <= 0:
        return []
    info = informativeness(pool)
    causes = predicted_causes(pool)
    cause_labels = np.array([(pool.labelled_causes or Counter())[c] for c in causes], dtype=float)
    stratum_index, strata = pd.factorize(pool.strata)
    picked_per_stratum = np.zeros(len(strata))
    cause_index, cause_names = pd.factorize(causes)
    picked_per_cause = np.zeros(len(cause_names))
    picks = []
    for _ in range(count):
        weight = 1.0 / np.sqrt(1.0 + cause_labels + picked_per_cause[cause_index])
        weight /= 1.0 + picked_per_stratum[stratum_index]
        value = np.where(taken, -np.inf, info * weight)
        best = int(np.argmax(value))
        taken[best] = True
        picked_per_stratum[stratum_index[best]] += 1
        picked_per_cause[cause_index[best]] += 1
        picks.append(Pick(best, _uncertain_reason(pool, best)))
    return picks


def _spread_picks(
    pool: Pool, count: int, taken: np.ndarray, rng: np.random.Generator
) -> list[Pick]:
    """One pick at a time from the stratum with the greatest claim (see ``SPREAD_POWER``);
    within it, the most informative candidate."""
    if count <= 0:
        return []
    stratum_index, strata = pd.factorize(pool.strata)
    held = np.array([(pool.labelled_strata or Counter())[s] for s in strata], dtype=float)
    size = np.bincount(stratum_index, minlength=len(strata)).astype(float)
    # A random tie-break inside the stratum keeps a cold start from always taking the first row.
    info = informativeness(pool) + rng.random(len(pool)) * 1e-6
    picks = []
    for _ in range(count):
        open_rows = np.bincount(stratum_index[~taken], minlength=len(strata))
        if not open_rows.any():
            break
        need = np.where(open_rows > 0, size / (1.0 + held) ** SPREAD_POWER, -np.inf)
        chosen = int(np.argmax(need))
        rows = np.flatnonzero((stratum_index == chosen) & ~taken)
        best = int(rows[np.argmax(info[rows])])
        taken[best] = True
        picks.append(Pick(best, _spread_reason(strata[chosen], int(held[chosen]))))
        held[chosen] += 1
    return picks


def _random_picks(count: int, taken: np.ndarray, rng: np.random.Generator) -> list[Pick]:
    open_rows = np.flatnonzero(~taken)
    chosen = rng.choice(open_rows, size=min(count, len(open_rows)), replace=False)
    taken[chosen] = True
    reason = "random pick: keeps the labelled sample like the site's real mix"
    return [Pick(int(position), reason) for position in chosen]


def _interleave(lists: list[list[Pick]]) -> list[Pick]:
    """One ranked list: each list's i-th pick placed at fraction (i + 0.5) / len of the queue."""
    keyed = [
        ((i + 0.5) / len(picks), order, pick)
        for order, picks in enumerate(lists)
        for i, pick in enumerate(picks)
    ]
    return [pick for _, _, pick in sorted(keyed, key=lambda item: (item[0], item[1]))]


def _uncertain_reason(pool: Pool, position: int) -> str:
    parts = []
    if pool.has_root_cause_model:
        assert pool.root_cause is not None
        row = pool.root_cause[position : position + 1]
        first, second = (int(i[0]) for i in top_two(row))
        p1, p2 = row[0, first], row[0, second]
        if np.isfinite(p1):
            parts.append(
                f"root cause uncertain: {p1:.0%} {ROOT_CAUSES[first]} vs {p2:.0%} "
                f"{ROOT_CAUSES[second]}"
            )
            if ROOT_CAUSES[first] != pool.mapped[position]:
                parts.append(f"code mapping says {pool.mapped[position]}")
    if pool.preventable is not None and np.isfinite(pool.preventable[position]):
        parts.append(f"preventable {pool.preventable[position]:.0%}")
    return "; ".join(parts) or "model uncertain"


def _spread_reason(name: str, held: int) -> str:
    if held == 0:
        return f"first of payer {name}"
    return f"few labels in payer {name} ({held} so far)"


# ---------------------------------------------------------------------------- stored scores


def scored_pool(
    outputs: Sequence[Mapping[str, Any]],
    facts: Sequence[Mapping[str, Any] | None],
    labelled_facts: Sequence[Mapping[str, Any] | None],
    labelled_causes: Sequence[str],
) -> Pool:
    """The pool of scored denials no reviewer has labelled, from the champion's stored scores
    (``outputs`` as the service answered, ``facts`` as the audit log keeps them), beside the
    facts and root causes of the denials reviewers did label."""
    return Pool(
        strata=np.array([_fact_stratum(f) for f in facts], dtype=object),
        mapped=np.array([o["root_cause"].get("mapped_by_codes") for o in outputs], dtype=object),
        root_cause=np.array([_stored_probabilities(o) for o in outputs]).reshape(
            len(outputs), len(ROOT_CAUSES)
        ),
        preventable=np.array(
            [_number_or_nan(o.get("preventable", {}).get("probability")) for o in outputs]
        ),
        labelled_strata=Counter(_fact_stratum(f) for f in labelled_facts),
        labelled_causes=Counter(labelled_causes),
    )


def _fact_stratum(facts: Mapping[str, Any] | None) -> str:
    facts = facts or {}
    return stratum(facts.get("payer_id", "unknown"), facts.get("carc_codes") or [])


def _stored_probabilities(outputs: Mapping[str, Any]) -> list[float]:
    """The stored class probabilities in ``ROOT_CAUSES`` order; NaN where the champion had no
    root-cause model (its probabilities are then empty)."""
    stored = outputs["root_cause"].get("probabilities") or {}
    if not stored:
        return [np.nan] * len(ROOT_CAUSES)
    return [float(stored.get(cause, 0.0)) for cause in ROOT_CAUSES]


def _number_or_nan(value: object) -> float:
    return float(value) if isinstance(value, int | float) else np.nan


# ---------------------------------------------------------------------------- interim models


@dataclass(frozen=True)
class InterimScores:
    """The interim models' probabilities on the candidates (None where a model was not fitted)."""

    root_cause: np.ndarray | None
    preventable: np.ndarray | None


def interim_scores(
    history: pd.DataFrame, matrix: np.ndarray, candidates: np.ndarray, seed: int
) -> InterimScores:
    """Fit small root-cause and preventable models on the history's labelled rows (the
    project's own fitting, seeded) and score the candidate rows; a model is left out when its
    labels are too few or all alike."""
    specs = load_specs()
    fitter = ModelFitter(seed, 1, DenialFeatures().categorical_indices)
    root = labelled_rows(history, "root_cause")
    root_cause = None
    if _enough(history.loc[root, "root_cause"]):
        labels = history["root_cause"]
        if self_trains(labels):
            # As ``train`` fits it, the teacher's doubt is what a label can remove: a denial it
            # is sure of (its outcome and features agree on a cause) is already learned from.
            wide = np.hstack([matrix, outcome_evidence(history)])
            teacher = root_cause_teacher(fitter, specs["root_cause"], wide, labels)
            root_cause = _class_probabilities(teacher, wide[candidates])
        else:
            model = fit_root_cause(fitter, specs["root_cause"], matrix, labels)
            root_cause = _class_probabilities(model, matrix[candidates])
    prevent = labelled_rows(history, "preventable")
    preventable = None
    if _enough(history.loc[prevent, "preventable"]):
        spec = small_sample_spec(specs["preventable"], int(prevent.sum()))
        model = fitter.binary(spec, matrix[prevent], preventable_target(history[prevent]))
        preventable = model.predict_proba(matrix[candidates])[:, 1]
    return InterimScores(root_cause, preventable)


def _enough(labels: pd.Series) -> bool:
    return len(labels) >= COLD_START_LABELS and labels.astype(str).nunique() >= 2


def _class_probabilities(model: object, matrix: np.ndarray) -> np.ndarray:
    """Probabilities in the order of ``ROOT_CAUSES``, 0 for causes no label showed."""
    seen = model.predict_proba(matrix)  # type: ignore[attr-defined]
    full = np.zeros((len(matrix), len(ROOT_CAUSES)))
    full[:, model.classes_] = seen  # type: ignore[attr-defined]
    return full


# ---------------------------------------------------------------------------- a history's queue


def unlabelled_rows(history: pd.DataFrame) -> np.ndarray:
    """Rows a reviewer has not labelled: no root cause recorded."""
    return ~labelled_rows(history, "root_cause")


def history_pool(
    history: pd.DataFrame, candidates: np.ndarray, scores: InterimScores | None
) -> Pool:
    """The pool of a history's unlabelled rows, with what its labelled rows hold."""
    strata = strata_of(history)
    labelled = labelled_rows(history, "root_cause")
    mapped = load_mapping().route_frame(history[candidates])["mapped_root_cause"].to_numpy()
    return Pool(
        strata=strata[candidates],
        mapped=mapped.astype(object),
        root_cause=scores.root_cause if scores else None,
        preventable=scores.preventable if scores else None,
        labelled_strata=Counter(strata[labelled]),
        labelled_causes=Counter(history.loc[labelled, "root_cause"].astype(str)),
    )


def label_queue(
    history: pd.DataFrame, budget: int, *, seed: int = 7, matrix: np.ndarray | None = None
) -> pd.DataFrame:
    """The ``budget`` unlabelled denials of a history to label next, ranked, with reasons.

    ``history`` is a contract frame (labels may be missing on most rows); ``matrix`` its
    feature matrix when the caller already has one (the benchmark reuses it across rounds).
    """
    if budget < 1:
        raise LabelQueueError(f"the budget must be at least 1 denial; got {budget}")
    candidates = unlabelled_rows(history)
    if not candidates.any():
        raise LabelQueueError(
            f"all {len(history):,} denials already carry a root_cause label: nothing to queue"
        )
    if matrix is None:
        matrix = DenialFeatures().fit(history).transform(history)
    scores = interim_scores(history, matrix, candidates, seed)
    picks = choose(history_pool(history, candidates, scores), budget, seed)
    return queue_frame(history[candidates].reset_index(drop=True), picks)


def queue_frame(candidates: pd.DataFrame, picks: list[Pick]) -> pd.DataFrame:
    """The picked rows as the queue file holds them: ids, payer, codes, rank and reason only
    (no label, and nothing that could identify a patient)."""
    rows = candidates.iloc[[pick.position for pick in picks]]
    return pd.DataFrame(
        {
            "denial_id": rows["denial_id"].to_numpy(),
            "claim_id": rows["claim_id"].to_numpy(),
            "payer_id": rows["payer_id"].to_numpy(),
            "carc_codes": [LIST_SEPARATOR.join(c) for c in rows["carc_codes"]],
            "rarc_codes": [LIST_SEPARATOR.join(c) for c in _remarks(rows)],
            "rank": np.arange(1, len(picks) + 1),
            "reason": [pick.reason for pick in picks],
        },
        columns=list(QUEUE_COLUMNS),
    )


def _remarks(rows: pd.DataFrame) -> Sequence[Sequence[str]]:
    return rows["rarc_codes"] if "rarc_codes" in rows else [[]] * len(rows)


def queue_positions(history: pd.DataFrame, queue: pd.DataFrame) -> np.ndarray:
    """Positional indices in ``history`` of the queue's denials, in queue order."""
    where = pd.Series(np.arange(len(history)), index=history["denial_id"].to_numpy())
    return where.loc[queue["denial_id"].to_numpy()].to_numpy()
