"""The trained triage model: the fitted feature pipeline, the three models, and their explanations.

One object answers every question a score needs: root cause, recovery, preventability, routing
from the governed mapping, deadlines from the payer rules, the priority score and the reasons
for human review. :meth:`TriageModel.assess` is the one implementation: the API and batch
scoring call it directly, evaluation through :meth:`TriageModel.score`, whether the rows come
as a contract frame or as rows the contract coerced without pandas.

Explanations are exact TreeSHAP contributions from LightGBM (``pred_contrib``), which equal
``shap.TreeExplainer`` values (a test checks it) at a fraction of the cost. Binary models are
calibrated by Platt scaling on their raw margin, a linear map, so the contributions scaled by
the same slope still add up exactly to the calibrated log-odds.

A reviewer sees why the model chose its top root cause, so only that class is explained.
LightGBM grows one tree per class and round, and a class's raw score is the sum of its own
trees alone, so the root-cause model is split into one booster per class: explaining the top
class costs a tenth of ``pred_contrib`` on the whole model, with identical contributions.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.contract import ROOT_CAUSES
from features.mapping import WRITE_OFF_REVIEW, Route, RoutingDecision
from features.pipeline import (
    CATEGORICAL_FEATURES,
    DenialColumns,
    DenialFeatures,
    mapping_routes,
    payer_deadlines,
)
from training.priority import priority_parts

DEFAULT_ROUTING_CONFIDENCE = 0.5  # models/root_cause.yaml's routing_confidence when unset
DEFAULT_REVIEW_CONFIDENCE = 0.8  # models/root_cause.yaml's review_confidence when unset
HIGH_DOLLARS = 10_000.0  # denied amounts above this are reviewed before acting
# Review reasons of a model trained without enough root_cause or preventable labels.
NO_ROOT_CAUSE_MODEL = (
    "no root-cause model (too few root_cause labels): the cause is the code mapping's; confirm it"
)
NO_PREVENTABLE_MODEL = "no preventable model (too few preventable labels): not scored"
# Every reason a score asks for human review, by code: the API's enum of review reasons and
# what each means. A score's ``review_reason_codes`` name them in ``review_reasons``' order.
REVIEW_REASONS = {
    "no_root_cause_model": "no root-cause model: the cause is the code mapping's",
    "no_preventable_model": "no preventable model: preventability is not scored",
    "triage": "the model is unsure and disagrees with the codes: a person routes it",
    "judgement_category": "the root cause's decisions need clinical or compliance judgement, "
    "and the model is unsure of it",
    "high_dollars": f"more than ${HIGH_DOLLARS:,.0f} denied, and the model is unsure of its cause",
    "unseen_codes": "codes never seen in training",
    # Raised by scores before mapping 2026.12.1 only: a denial past every deadline now routes to
    # write-off review. Kept so those stored scores still read against the schema.
    "deadline_passed": "the governing deadline has passed",
}


@dataclass(frozen=True)
class PlattCalibration:
    """p = sigmoid(slope * margin + intercept), fitted on the newest training months."""

    slope: float
    intercept: float

    def logit(self, margin: np.ndarray) -> np.ndarray:
        return self.slope * margin + self.intercept

    def probability(self, margin: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(margin)))


@dataclass
class Explanation:
    """One model's explanation of one denial: base value plus contributions equal the output."""

    model: str
    output: float  # log-odds of the explained probability
    base_value: float
    contributions: list[dict[str, Any]]  # top features: feature, value, contribution
    rest: float  # sum of every contribution not listed, so the parts add up exactly


_CLASS_BOOSTERS = "_root_cause_class_boosters"  # instance cache, never pickled
PARALLEL_ROWS = 200  # smaller batches predict on one thread: requests run side by side instead


def prediction_threads(rows: int, busy_cores: int = 0) -> int:
    """LightGBM threads for a batch: one for a few rows; for a large batch, every core not
    kept busy by other work (the service's audit worker)."""
    return 1 if rows < PARALLEL_ROWS else max(1, (os.cpu_count() or 1) - busy_cores)


@dataclass(frozen=True)
class ModelOutputs:
    """What the four LightGBM models say about a batch, predicted once."""

    root_probabilities: np.ndarray | None  # rows x classes, in ``root_cause_classes`` order
    recovery_margin: np.ndarray
    recovered_share: np.ndarray  # unclipped
    preventable_margin: np.ndarray | None  # None: no preventable model

    @property
    def top_class(self) -> np.ndarray:
        assert self.root_probabilities is not None, "no root-cause model"
        return self.root_probabilities.argmax(axis=1)


@dataclass
class Assessment:
    """Scores of a batch as columns (in :meth:`TriageModel.score` order), and explanations."""

    scores: dict[str, Any]
    explanations: list[dict[str, Explanation]] | None


@dataclass
class TriageModel:
    """Everything needed to score and explain denials, fitted together.

    The root-cause and preventable models are None when training had too few of their labels:
    the root cause is then the governed mapping's (every score asks for review), and the
    preventable probability is missing (NaN here, null in the API).
    """

    features: DenialFeatures
    root_cause_model: lgb.LGBMClassifier | None
    recovery_model: lgb.LGBMClassifier
    recovery_calibration: PlattCalibration
    recovery_share_model: lgb.LGBMRegressor
    preventable_model: lgb.LGBMClassifier | None
    preventable_calibration: PlattCalibration | None
    metadata: dict[str, Any] = field(default_factory=dict)
    # The root-cause spec's routing_confidence (a class default, so models pickled before it
    # existed read it too).
    routing_confidence: float = DEFAULT_ROUTING_CONFIDENCE
    review_confidence: float = DEFAULT_REVIEW_CONFIDENCE
    # The training rows' feature and score distributions (training/drift.py), which drift
    # monitoring compares recent denials with; None on models trained before it existed.
    drift_reference: dict[str, Any] | None = None

    @property
    def root_cause_classes(self) -> list[str]:
        if self.root_cause_model is None:
            return []
        return [ROOT_CAUSES[i] for i in self.root_cause_model.classes_]

    @property
    def fitted_tasks(self) -> tuple[str, ...]:
        """The models this object holds, among root_cause, recovery and preventable."""
        models = {
            "root_cause": self.root_cause_model,
            "recovery": self.recovery_model,
            "preventable": self.preventable_model,
        }
        return tuple(task for task, model in models.items() if model is not None)

    @property
    def mapping_version(self) -> str:
        return self.features.mapping_.stamp

    def __getstate__(self) -> dict[str, Any]:
        # The per-class boosters are derived from the model: never stored, rebuilt on use.
        state = dict(self.__dict__)
        state.pop(_CLASS_BOOSTERS, None)
        return state

    # ------------------------------------------------------------------ scoring

    def score(self, frame: pd.DataFrame, today: dt.date | None = None) -> pd.DataFrame:
        """Scores, routing, deadlines, priority and review reasons for validated contract rows.

        ``today``: the live scoring date of rows without ``as_of_date``; None scores them as a
        history, as of their denial date (see :func:`features.pipeline.live_scoring_date`).
        """
        scores = self.assess(DenialColumns.from_frame(frame, today)).scores
        return pd.DataFrame(scores, index=frame.index)

    def explain(
        self, frame: pd.DataFrame, top: int = 5, today: dt.date | None = None
    ) -> list[dict[str, Explanation]]:
        """Per denial, per model: the top SHAP contributions in the model's log-odds space
        (``today`` as in :meth:`score`)."""
        assessment = self.assess(DenialColumns.from_frame(frame, today), explain=True, top=top)
        return assessment.explanations or []

    def assess(
        self,
        columns: DenialColumns,
        *,
        explain: bool = False,
        top: int = 5,
        threads: int | None = None,
    ) -> Assessment:
        """Scores and, when asked, explanations of a batch, encoded and predicted once
        (``threads``: LightGBM's, by default :func:`prediction_threads`)."""
        matrix = self.features.encode(columns)
        threads = threads or prediction_threads(columns.rows)
        outputs = self.predict_outputs(matrix, threads)
        scores = self._score_columns(columns, outputs)
        explanations = self._explanations(matrix, outputs, top, threads) if explain else None
        return Assessment(scores, explanations)

    def predict_outputs(self, matrix: np.ndarray, threads: int = 1) -> ModelOutputs:
        """The four models' predictions (boosters called directly: the scikit-learn wrappers
        re-check their input on every call, which costs more than a one-row prediction)."""
        return ModelOutputs(
            root_probabilities=_predict(self.root_cause_model, matrix, threads),
            recovery_margin=_predict(self.recovery_model, matrix, threads, raw_score=True),
            recovered_share=_predict(self.recovery_share_model, matrix, threads),
            preventable_margin=_predict(self.preventable_model, matrix, threads, raw_score=True),
        )

    def _preventable_probability(self, outputs: ModelOutputs) -> np.ndarray:
        if outputs.preventable_margin is None or self.preventable_calibration is None:
            return np.full(len(outputs.recovery_margin), np.nan)
        return self.preventable_calibration.probability(outputs.preventable_margin)

    def _score_columns(self, columns: DenialColumns, outputs: ModelOutputs) -> dict[str, Any]:
        recovery = self.recovery_calibration.probability(outputs.recovery_margin)
        share = np.clip(outputs.recovered_share, 0.0, 1.0)
        by_codes = mapping_routes(self.features.mapping_, columns)
        mapped = [route.root_cause for route in by_codes]
        root = self._root_cause_scores(outputs.root_probabilities, mapped)
        decisions = self._routing(root, by_codes)
        routes = [decision.route for decision in decisions]
        mapping = self.features.mapping_
        parts = priority_parts(
            recovery_probability=recovery,
            expected_recovered_share=share,
            denied_amount=columns.numbers["denied_amount"],
            action_path=np.array([route.action_path for route in routes], dtype=object),
            deadlines=payer_deadlines(self.features.payer_rules_, columns).as_frame(),
            backlog_horizon_days=np.array([mapping.backlog_horizon(r.owner_queue) for r in routes]),
            as_of=columns.as_of,
        )
        routes = [
            route if workable else _write_off_review(route, last)
            for route, workable, last in zip(
                routes, parts.workable, parts.last_deadline, strict=True
            )
        ]
        scores = {
            **root,
            "recovery_probability": recovery,
            "expected_recovered_share": share,
            "preventable_probability": self._preventable_probability(outputs),
            "mapped_root_cause": mapped,
            "action_path": [route.action_path for route in routes],
            "owner_queue": [route.owner_queue for route in routes],
            "mapping_rule": [route.rule for route in routes],
            "routing_basis": [decision.basis for decision in decisions],
            "mapped_action_path": [route.action_path for route in by_codes],
            "mapped_owner_queue": [route.owner_queue for route in by_codes],
            **parts.__dict__,
        }
        policies = self.features.mapping_.root_causes
        scores["prevention_owner"] = [policies[c].prevention_owner for c in scores["root_cause"]]
        scores["unseen_codes"] = self.features.unseen_codes_of(columns)
        coded = self._review_reasons(columns, scores)
        scores["review_reasons"] = [[text for _, text in row] for row in coded]
        scores["review_reason_codes"] = [[code for code, _ in row] for row in coded]
        scores["requires_human_review"] = np.array([bool(r) for r in scores["review_reasons"]])
        return scores

    def _routing(self, root: dict[str, Any], by_codes: list[Route]) -> list[RoutingDecision]:
        """Each denial's route to the owner queue its root-cause probabilities favour, the
        codes' route refining a cause they agree with
        (``features.mapping.CodeMapping.route_by_probabilities``)."""
        mapping, confidence = self.features.mapping_, self.routing_confidence
        classes = [c for c in self.root_cause_classes if f"p_{c}" in root]
        columns = [np.asarray(root[f"p_{c}"], dtype=float) for c in classes]
        return [
            mapping.route_by_probabilities(
                dict(zip(classes, (float(column[i]) for column in columns), strict=True)),
                route,
                confidence,
            )
            for i, route in enumerate(by_codes)
        ]

    def _root_cause_scores(
        self, probabilities: np.ndarray | None, mapped: list[str]
    ) -> dict[str, Any]:
        """The model's top cause and class probabilities; without a root-cause model, the
        mapping's cause with no probability."""
        if probabilities is None:
            return {
                "root_cause": np.array(mapped),
                "root_cause_probability": np.full(len(mapped), np.nan),
            }
        classes = self.root_cause_classes
        return {
            "root_cause": np.array(classes)[probabilities.argmax(axis=1)],
            "root_cause_probability": probabilities.max(axis=1),
            **{f"p_{c}": probabilities[:, i] for i, c in enumerate(classes)},
        }

    def _review_reasons(
        self, columns: DenialColumns, scores: dict[str, Any]
    ) -> list[list[tuple[str, str]]]:
        """Why a person must look before the denial is worked. A denial no owner queue is
        likely enough for is routed to triage, which says so; otherwise the model's
        probabilities route it and codes that agree confirm the route, so neither a
        disagreement nor a low probability alone is a reason (they flagged 39% and 22% of
        denials before routing followed the model). A clinical or compliance category, or a
        high amount, is flagged only while the model is unsure of its cause (below
        ``review_confidence``): a sure model's cause already routes the denial to the queue
        whose staff have that judgement. A denial past every deadline is routed to write-off
        review, a person's decision, so a passed deadline is no flag of its own (and a stored
        "passed N days ago" would be stale by the next day)."""
        policies = self.features.mapping_.root_causes
        missing = self._missing_model_reasons()
        reasons: list[list[tuple[str, str]]] = []
        rows = zip(
            scores["root_cause"],
            scores["routing_basis"],
            scores["mapping_rule"],
            columns.numbers["denied_amount"],
            scores["unseen_codes"],
            scores["root_cause_probability"],
            strict=True,
        )
        for cause, basis, rule, amount, unseen, probability in rows:
            row = list(missing)
            unsure = not probability >= self.review_confidence  # NaN: no model, unsure
            if basis == "triage":
                row.append(("triage", f"routed to {rule}"))
            if policies[cause].human_review and unsure:
                judgement = f"{cause} decisions need clinical or compliance judgement"
                row.append(("judgement_category", judgement))
            if amount > HIGH_DOLLARS and unsure:
                row.append(("high_dollars", f"high dollars: ${amount:,.2f} denied"))
            if unseen:
                row.append(("unseen_codes", f"codes never seen in training: {', '.join(unseen)}"))
            reasons.append(row)
        return reasons

    def _missing_model_reasons(self) -> list[tuple[str, str]]:
        """Review reasons every row carries when a model could not be trained."""
        fitted = self.fitted_tasks
        return [
            (f"no_{task}_model", reason)
            for task, reason in (
                ("root_cause", NO_ROOT_CAUSE_MODEL),
                ("preventable", NO_PREVENTABLE_MODEL),
            )
            if task not in fitted
        ]

    # ------------------------------------------------------------------ explanations

    def _explanations(
        self, matrix: np.ndarray, outputs: ModelOutputs, top: int, threads: int
    ) -> list[dict[str, Explanation]]:
        contributions = {}
        if self.root_cause_model is not None:
            contributions["root_cause"] = self._root_cause_contributions(
                matrix, outputs.top_class, threads
            )
        contributions["recovery"] = self._calibrated_contributions(
            self.recovery_model, self.recovery_calibration, matrix, threads
        )
        if self.preventable_model is not None and self.preventable_calibration is not None:
            contributions["preventable"] = self._calibrated_contributions(
                self.preventable_model, self.preventable_calibration, matrix, threads
            )
        per_task = {
            task: self._explanations_of(task, c, matrix, top) for task, c in contributions.items()
        }
        return [
            {task: explained[i] for task, explained in per_task.items()} for i in range(len(matrix))
        ]

    def _root_cause_contributions(
        self, matrix: np.ndarray, top_class: np.ndarray, threads: int
    ) -> np.ndarray:
        """Contributions to the top class's raw score (what a reviewer sees), each row
        explained by its top class's own trees only."""
        boosters = self._class_boosters()
        contributions = np.empty((len(matrix), matrix.shape[1] + 1))
        for k in np.unique(top_class):
            rows = np.flatnonzero(top_class == k)
            contributions[rows] = boosters[k].predict(
                matrix[rows], pred_contrib=True, num_threads=threads
            )
        return contributions

    def _class_boosters(self) -> list[lgb.Booster]:
        """One booster per root-cause class, split from the model once and kept."""
        boosters = self.__dict__.get(_CLASS_BOOSTERS)
        if boosters is None:
            assert self.root_cause_model is not None, "no root-cause model to split"
            boosters = split_by_class(self.root_cause_model.booster_)
            self.__dict__[_CLASS_BOOSTERS] = boosters  # a racing twin builds the same
        return boosters

    @staticmethod
    def _calibrated_contributions(
        model: lgb.LGBMClassifier, calibration: PlattCalibration, matrix: np.ndarray, threads: int
    ) -> np.ndarray:
        raw = model.booster_.predict(matrix, pred_contrib=True, num_threads=threads)
        contributions = np.asarray(raw) * calibration.slope
        contributions[:, -1] += calibration.intercept  # the base value absorbs the intercept
        return contributions

    def _explanations_of(
        self, model: str, contributions: np.ndarray, matrix: np.ndarray, top: int
    ) -> list[Explanation]:
        """One model's explanation of every row: its ``top`` largest contributions, the rest
        summed, so base + listed + rest = output. Sorted for all rows at once."""
        features = contributions[:, :-1]
        order = np.argsort(-np.abs(features), axis=1, kind="stable")[:, :top]
        names = self.features.feature_names_
        explanations = []
        for row, columns in enumerate(order.tolist()):
            values = features[row]
            listed = [
                {
                    "feature": names[i],
                    "value": self._value_text(i, matrix[row, i]),
                    "contribution": float(values[i]),
                }
                for i in columns
                if values[i] != 0.0
            ]
            rest = float(values.sum() - sum(item["contribution"] for item in listed))
            output = float(contributions[row].sum())
            explanations.append(
                Explanation(model, output, float(contributions[row, -1]), listed, rest)
            )
        return explanations

    def _value_text(self, index: int, value: np.floating) -> str:
        """A feature value as a reviewer reads it: category names, not integer codes."""
        if index < len(CATEGORICAL_FEATURES):
            return _category_text(value, self.features.vocabularies_[CATEGORICAL_FEATURES[index]])
        return _number_text(value)


def split_by_class(booster: lgb.Booster) -> list[lgb.Booster]:
    """A multiclass booster as one single-output booster per class.

    LightGBM stores tree ``t`` of a multiclass model for class ``t % num_class``; a class's
    raw score is the sum of its trees, so a booster of those trees alone gives the same raw
    score and the same TreeSHAP contributions for that class (a test checks they are equal).
    """
    text = booster.model_to_string()
    per_iteration = booster.num_model_per_iteration()
    header, *trees = _TREE_HEADER.split(text)
    trees[-1], _, _ = trees[-1].partition(_END_OF_TREES)
    for key, value in (("num_class", "1"), ("num_tree_per_iteration", "1")):
        header = re.sub(rf"^{key}=.*$", f"{key}={value}", header, flags=re.M)
    header = re.sub(r"^objective=.*$", "objective=regression", header, flags=re.M)
    header = re.sub(r"^tree_sizes=.*\n", "", header, flags=re.M)  # sizes of the old layout
    return [
        lgb.Booster(
            model_str=header
            + "".join(f"Tree={i}\n{tree}" for i, tree in enumerate(trees[k::per_iteration]))
            + _END_OF_TREES
            + "\n"
        )
        for k in range(per_iteration)
    ]


_TREE_HEADER = re.compile(r"^Tree=\d+\n", re.M)
_END_OF_TREES = "end of trees"


def _write_off_review(route: Route, last_deadline: np.datetime64) -> Route:
    """The route of a denial past every deadline: out of the workable list, to a person who
    approves its write-off (``training.priority``)."""
    return replace(
        route,
        action_path=WRITE_OFF_REVIEW,
        owner_queue=WRITE_OFF_REVIEW,
        rule=f"write-off review: every deadline passed (the last on {last_deadline}); "
        f"was {route.rule}",
    )


def _predict(
    model: lgb.LGBMModel | None, matrix: np.ndarray, threads: int, raw_score: bool = False
) -> np.ndarray | None:
    if model is None:
        return None
    return model.booster_.predict(matrix, raw_score=raw_score, num_threads=threads)


def _category_text(code: float, vocabulary: list[str]) -> str:
    if np.isnan(code):
        return "missing"
    index = int(code)
    return vocabulary[index] if index < len(vocabulary) else "other (rare or unseen)"


def _number_text(value: float) -> str:
    if np.isnan(value):
        return "missing"
    return f"{value:g}"
