"""Fitting the triage model: time-based splits, three LightGBM models, Platt calibration.

The newest months are held out for testing. Within the training months, the binary models are
calibrated on out-of-fold margins over time folds (models fitted on older rows predicting the
newest slices), so no probability is calibrated on rows its model learned from, and the model
kept is then refitted on every training row: the newest months teach it too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from denial_triage.settings import OUTCOME_MATURITY_DAYS
from features.contract import RESOLUTIONS, ROOT_CAUSES
from features.pipeline import DenialFeatures
from training.search import (
    SEARCH_KEY,
    SEARCH_POINT_KEY,
    VALIDATION_SHARE,
    SearchResult,
    search_root_cause,
    with_point,
)
from training.specs import ModelSpec
from training.triage_model import PlattCalibration, TriageModel

DEFAULT_TEST_MONTHS = 4


DEFAULT_MATURITY_DAYS = OUTCOME_MATURITY_DAYS


@dataclass(frozen=True)
class TimeSplit:
    """Positional row indices of the training and test months, and the dates that cut them."""

    train: np.ndarray
    test: np.ndarray
    cutoff: pd.Timestamp  # first day of the test months
    matured_by: pd.Timestamp  # denials after this are too recent for their outcome to be known
    immature_rows: int


def time_split(
    frame: pd.DataFrame,
    test_months: int = DEFAULT_TEST_MONTHS,
    maturity_days: int = DEFAULT_MATURITY_DAYS,
) -> TimeSplit:
    """Train on older denial dates, test on the newest months whose outcomes have matured.

    A denial's outcome takes months to arrive: among the newest denials only the quick ones
    (mostly corrections that paid) are resolved yet, so measuring on them would flatter
    recovery. Denials from the last ``maturity_days`` of the history are therefore left out of
    both training and testing; the test months are the ``test_months`` before them.
    """
    dates = pd.to_datetime(frame["denial_date"])
    matured_by = dates.max() - pd.Timedelta(days=maturity_days)
    cutoff = (matured_by.to_period("M") - (test_months - 1)).start_time
    mature = (dates <= matured_by).to_numpy()
    is_test = mature & (dates >= cutoff).to_numpy()
    is_train = mature & ~is_test
    if not is_test.any() or not is_train.any():
        raise ValueError(
            f"history from {dates.min().date()} to {dates.max().date()} is too short for "
            f"{test_months} test months after leaving out the last {maturity_days} days"
        )
    return TimeSplit(
        np.flatnonzero(is_train), np.flatnonzero(is_test), cutoff, matured_by, int((~mature).sum())
    )


def newest_share(frame: pd.DataFrame, share: float) -> np.ndarray:
    """Boolean mask of the newest ``share`` of rows by denial date (ties stay together)."""
    dates = pd.to_datetime(frame["denial_date"])
    return (dates >= dates.quantile(1.0 - share)).to_numpy()


def time_folds(
    frame: pd.DataFrame, share: float, folds: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding time folds over the newest rows, oldest first: per fold, the mask of the rows
    it learns from (every row before its slice) and of its slice (``share`` of the rows by
    denial date; the last slice is :func:`newest_share`'s)."""
    dates = pd.to_datetime(frame["denial_date"])
    starts = [dates.quantile(1.0 - share * k) for k in range(folds, 0, -1)]
    ends = [*starts[1:], None]
    return [
        (
            (dates < start).to_numpy(),
            ((dates >= start) & (dates < end if end is not None else True)).to_numpy(),
        )
        for start, end in zip(starts, ends, strict=True)
    ]


def recovered_target(frame: pd.DataFrame) -> np.ndarray:
    return (frame["recovered_amount"].fillna(0.0) > 0).to_numpy()


def resolved_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows that carry a recovery label: a resolution, and not ``open``."""
    if "resolution" not in frame:
        return np.zeros(len(frame), dtype=bool)
    resolution = frame["resolution"]
    return (resolution.notna() & (resolution != "open")).to_numpy()


def labelled_rows(frame: pd.DataFrame, task: str) -> np.ndarray:
    """Rows that carry ``task``'s own label: resolved rows for recovery, rows with a
    ``root_cause`` or ``preventable`` value for those models."""
    if task == "recovery":
        return resolved_rows(frame)
    if task not in frame:
        return np.zeros(len(frame), dtype=bool)
    return frame[task].notna().to_numpy()


def root_cause_codes(labels: pd.Series) -> np.ndarray:
    """Contract category indices, so class probabilities line up with ``ROOT_CAUSES``."""
    return labels.map({cause: i for i, cause in enumerate(ROOT_CAUSES)}).to_numpy()


def preventable_target(frame: pd.DataFrame) -> np.ndarray:
    """The preventable label as booleans (rows without one read False: select labelled rows
    with :func:`labelled_rows` first)."""
    return frame["preventable"].fillna(False).astype(bool).to_numpy()


@dataclass(frozen=True)
class LabelCount:
    """How many training rows carry one model's label, and whether that is enough to fit it."""

    task: str
    labelled: int
    values: frozenset[str]  # distinct label values among them
    required: int  # the spec's ``min_labels``
    set_aside: str | None = None  # why a model fitted on enough labels was not kept

    @property
    def enough(self) -> bool:
        return self.labelled >= self.required and len(self.values) >= 2

    @property
    def fitted(self) -> bool:
        return self.enough and self.set_aside is None

    def __add__(self, other: LabelCount) -> LabelCount:
        """The count over two parts of a history (partitions)."""
        return LabelCount(
            self.task, self.labelled + other.labelled, self.values | other.values, self.required
        )

    def message(self) -> str:
        """What training does with this model, in the words the command prints."""
        if self.enough and self.set_aside:
            return f"{self.task}: not fitted: {self.set_aside}"
        if self.enough:
            return f"{self.task}: fitted on {self.labelled:,} labelled rows"
        if self.labelled < self.required:
            why = f"{self.labelled:,} training rows carry its label, fewer than its min_labels"
            why += f" ({self.required:,}, models/{self.task}.yaml)"
        else:
            why = f"its {self.labelled:,} labelled rows all hold the same value"
        return f"{self.task}: not fitted: {why}"


def label_counts(frame: pd.DataFrame, specs: dict[str, ModelSpec]) -> dict[str, LabelCount]:
    """Per model, the training rows that carry its label (what :func:`fit_triage_model` fits)."""
    counts = {}
    for task, spec in specs.items():
        rows = labelled_rows(frame, task)
        values = frozenset(str(v) for v in np.unique(_label_values(frame[rows], task)))
        counts[task] = LabelCount(task, int(rows.sum()), values, spec.min_labels)
    return counts


def _label_values(frame: pd.DataFrame, task: str) -> np.ndarray:
    if task == "recovery":
        return recovered_target(frame)
    return frame[task].astype(str).to_numpy()


class NotEnoughLabels(ValueError):
    """The history lacks the labels the recovery model, which every score needs, learns from."""


def require_recovery_labels(counts: dict[str, LabelCount]) -> dict[str, LabelCount]:
    """The counts, if recovery can be fitted; else :class:`NotEnoughLabels` saying what to add."""
    if not counts["recovery"].enough:
        raise NotEnoughLabels(
            f"{counts['recovery'].message()}; the priority score needs it: add resolutions "
            "and recovered amounts (from remittances or feedback) to the history"
        )
    return counts


def recovered_share(frame: pd.DataFrame) -> np.ndarray:
    """Share of the denied amount recovered, clipped to [0, 1]."""
    share = (frame["recovered_amount"] / frame["denied_amount"]).to_numpy()
    return np.clip(share, 0.0, 1.0)


def platt_calibration(margin: np.ndarray, target: np.ndarray) -> PlattCalibration:
    """Platt scaling of a binary model's raw margin, fitted on rows it did not learn from."""
    platt = LogisticRegression(C=1e6).fit(np.reshape(margin, (-1, 1)), target)
    return PlattCalibration(float(platt.coef_[0, 0]), float(platt.intercept_[0]))


# At small label counts a leaf needs fewer rows than the specs ask (40-50): a root-cause model
# of 1,000 labels has classes of 40 denials, which such leaves cannot separate. One row in this
# many labelled rows, never under 5 nor over the spec's own value (reached at 1,600-2,000).
ROWS_PER_LEAF_SHARE = 40
MIN_ROWS_PER_LEAF = 5


def small_sample_spec(spec: ModelSpec, labels: int) -> ModelSpec:
    """The spec with ``min_child_samples`` scaled to ``labels`` when they are few; with many
    labels, the spec as written."""
    parameters = dict(spec.hyperparameters)
    ceiling = int(parameters.get("min_child_samples", 20))
    scaled = labels // ROWS_PER_LEAF_SHARE
    parameters["min_child_samples"] = int(np.clip(scaled, min(MIN_ROWS_PER_LEAF, ceiling), ceiling))
    return spec.model_copy(update={"hyperparameters": parameters})


# Self-training of a partially labelled root cause (issue 13). With labels on a few percent of
# a history, a model fitted on them alone learns the codes' common causes but little of the
# other features; its confident causes on the unlabelled rows, given as labels of lower weight,
# let a second model learn from every row (on generated 40k histories with 5% random labels,
# macro-F1 0.659 to 0.696 on two development seeds; mapping causes as such labels made it worse,
# 0.617: the model then learns the mapping back).
#
# The history also knows how each resolved denial ended, which no live denial does: appealed
# and overturned, paid after a corrected claim, billed to the patient, written off, how much
# came back and how long it took. Those outcomes say much of the cause (an appeal answers a
# necessity or authorization dispute, a corrected claim a coding or data error), so the model
# that writes the pseudo-labels (the teacher) reads them beside the features, and relabels
# twice, each time taught by its own previous causes; the model kept (the student) reads only
# the features a live denial has. On development seeds 611-613 with random 5% labels,
# macro-F1 0.678 with the features-only teacher, 0.693 with the outcome-aware one
# (``benchmarks/label_efficiency.py``; the held-out figures are in the README).
PARTIAL_LABEL_SHARE = 0.5  # below this share of rows labelled, self-train on the rest
PSEUDO_LABEL_CONFIDENCE = 0.7  # the teacher's probability a pseudo-label needs
PSEUDO_LABEL_WEIGHT = 1.0  # a pseudo-label's weight per unit of that probability
TEACHER_REFITS = 2  # times the teacher is refitted on its own pseudo-labels before the student
SELF_TRAINING_KEY = "self_training.root_cause"  # model metadata and MLflow tag
OUTCOME_EVIDENCE = (*(f"resolution={r}" for r in RESOLUTIONS), "recovered_share", "log_days")


def outcome_evidence(frame: pd.DataFrame) -> np.ndarray:
    """What a history row's outcome says of its cause, one column per ``OUTCOME_EVIDENCE``:
    its resolution (one-hot; a row without one counts as open), the share of the denied amount
    recovered and the log of the days from denial to resolution (NaN while open). Only the
    self-training teacher reads it: a live denial has no outcome yet."""
    rows = len(frame)
    resolution = (
        frame["resolution"].fillna("open").astype(str).to_numpy()
        if "resolution" in frame
        else np.full(rows, "open")
    )
    columns = [(resolution == r).astype(float) for r in RESOLUTIONS]
    share = recovered_share(frame) if "recovered_amount" in frame else np.full(rows, np.nan)
    days = np.full(rows, np.nan)
    if "resolved_date" in frame:
        elapsed = pd.to_datetime(frame["resolved_date"]) - pd.to_datetime(frame["denial_date"])
        days = np.log1p(elapsed.dt.days.to_numpy(dtype=float).clip(0))
    ended = resolved_rows(frame)
    return np.column_stack(
        [*columns, np.where(ended, share, np.nan), np.where(ended, days, np.nan)]
    )


def self_trains(labels: pd.Series) -> bool:
    """Whether a root cause with these labels (missing on unlabelled rows) is self-trained."""
    return bool(labels.notna().mean() < PARTIAL_LABEL_SHARE)


def fit_root_cause(
    fit: ModelFitter,
    spec: ModelSpec,
    matrix: np.ndarray,
    labels: pd.Series,
    evidence: np.ndarray | None = None,
) -> lgb.LGBMClassifier:
    """The root-cause model of a history whose ``labels`` (one per matrix row) may be missing:
    fitted on the labelled rows, then, when they are a small share (:func:`self_trains`),
    refitted with the confident causes a teacher gives the unlabelled rows
    (:func:`root_cause_teacher`, reading ``evidence`` beside ``matrix`` when given: see
    :func:`outcome_evidence`). The model returned reads ``matrix`` alone."""
    labelled = labels.notna().to_numpy()
    reviewed = root_cause_codes(labels[labelled])
    if not self_trains(labels):
        spec = small_sample_spec(spec, len(reviewed))
        return fit.weighted_root_cause(spec, matrix[labelled], reviewed)
    wide = matrix if evidence is None else np.hstack([matrix, evidence])
    teacher = root_cause_teacher(fit, spec, wide, labels)
    return self_trained(fit, spec, teacher, wide, matrix, labelled, reviewed)


def root_cause_teacher(
    fit: ModelFitter, spec: ModelSpec, matrix: np.ndarray, labels: pd.Series
) -> lgb.LGBMClassifier:
    """The model that writes a self-trained root cause's pseudo-labels: fitted on the labelled
    rows of ``matrix`` (the features, and the outcome evidence where the history has it), then
    refitted ``TEACHER_REFITS`` times on the labels and its own confident causes."""
    labelled = labels.notna().to_numpy()
    reviewed = root_cause_codes(labels[labelled])
    teacher = fit.weighted_root_cause(
        small_sample_spec(spec, len(reviewed)), matrix[labelled], reviewed
    )
    for _ in range(TEACHER_REFITS):
        teacher = self_trained(fit, spec, teacher, matrix, matrix, labelled, reviewed)
    return teacher


def self_training_note(frame: pd.DataFrame) -> str:
    """What a self-trained root cause learned from, as its model's metadata says it."""
    labelled = int(frame["root_cause"].notna().sum())
    ended = int(resolved_rows(frame).sum())
    return (
        f"{labelled:,} reviewed causes of {len(frame):,} denials; a teacher read the features "
        f"and the outcomes of {ended:,} resolved denials and gave the others its causes where "
        f"it was at least {PSEUDO_LABEL_CONFIDENCE:.0%} sure"
    )


def self_trained(
    fit: ModelFitter,
    spec: ModelSpec,
    teacher: lgb.LGBMClassifier,
    teacher_matrix: np.ndarray,
    matrix: np.ndarray,
    labelled: np.ndarray,
    reviewed: np.ndarray,
) -> lgb.LGBMClassifier:
    """A model of ``matrix`` fitted on the ``reviewed`` causes of the labelled rows (weight 1)
    and the teacher's confident causes, read from ``teacher_matrix``, of the others."""
    codes, weights, confident = pseudo_labels(teacher, teacher_matrix[~labelled])
    if not confident.any():
        return fit.weighted_root_cause(
            small_sample_spec(spec, len(reviewed)), matrix[labelled], reviewed
        )
    student_matrix = np.vstack([matrix[labelled], matrix[~labelled][confident]])
    student_codes = np.concatenate([reviewed, codes[confident]])
    student_weights = np.concatenate([np.ones(len(reviewed)), weights[confident]])
    student_spec = small_sample_spec(spec, len(student_codes))
    return fit.weighted_root_cause(student_spec, student_matrix, student_codes, student_weights)


def pseudo_labels(
    model: lgb.LGBMClassifier, matrix: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A model's likeliest cause of each row (contract category index), its weight as a label
    and whether it is confident enough to be one."""
    probabilities = model.predict_proba(matrix)
    sure = probabilities.max(axis=1)
    codes = np.asarray(model.classes_)[probabilities.argmax(axis=1)]
    return codes, PSEUDO_LABEL_WEIGHT * sure, sure >= PSEUDO_LABEL_CONFIDENCE


def fit_triage_model(
    frame: pd.DataFrame,
    specs: dict[str, ModelSpec],
    *,
    seed: int = 7,
    n_jobs: int = 2,
    search: bool = False,
) -> TriageModel:
    """Fit the feature pipeline and each model on the training rows that carry its label.

    Root cause and preventable are left out (None) when their labels are fewer than their
    spec's ``min_labels``; recovery, which the priority score rests on, is required. With
    ``search``, the root cause's hyperparameters are chosen on the newest slice of its labelled
    rows first (:mod:`training.search`), and the choice is kept in the model's metadata.
    """
    counts = require_recovery_labels(label_counts(frame, specs))
    features = DenialFeatures().fit(frame)
    matrix = features.transform(frame)
    fit = ModelFitter(seed, n_jobs, features.categorical_indices)
    rows = {task: labelled_rows(frame, task) for task in specs}
    searched = None
    if search and counts["root_cause"].enough:
        searched = searched_root_cause(fit, specs["root_cause"], matrix, frame)
        specs = {**specs, "root_cause": searched.spec}
    recovery, recovery_calibration = fit.calibrated_binary(
        specs["recovery"], matrix[rows["recovery"]], frame[rows["recovery"]], recovered_target
    )
    preventable, preventable_calibration = (
        fit.calibrated_binary(
            small_sample_spec(specs["preventable"], counts["preventable"].labelled),
            matrix[rows["preventable"]],
            frame[rows["preventable"]],
            preventable_target,
        )
        if counts["preventable"].enough
        else (None, None)
    )
    root_cause = (
        fit_root_cause(
            fit, specs["root_cause"], matrix, frame["root_cause"], outcome_evidence(frame)
        )
        if counts["root_cause"].enough
        else None
    )
    if (backwards := ranked_backwards("recovery", recovery_calibration)) is not None:
        raise NotEnoughLabels(f"recovery: not fitted: {backwards}; add resolved denials")
    set_aside = ranked_backwards("preventable", preventable_calibration)
    model = TriageModel(
        features=features,
        root_cause_model=root_cause,
        recovery_model=recovery,
        recovery_calibration=recovery_calibration,
        recovery_share_model=fit.recovered_share(specs["recovery"], matrix, frame),
        preventable_model=None if set_aside else preventable,
        preventable_calibration=None if set_aside else preventable_calibration,
        **routing_confidence(specs),
    )
    if set_aside:
        model.metadata["set_aside.preventable"] = set_aside
    if root_cause is not None and self_trains(frame["root_cause"]):
        model.metadata[SELF_TRAINING_KEY] = self_training_note(frame)
    if searched is not None:
        model.metadata[SEARCH_KEY] = searched.describe()
        model.metadata[SEARCH_POINT_KEY] = json.dumps(searched.chosen, sort_keys=True)
    return model


def searched_root_cause(
    fit: ModelFitter, spec: ModelSpec, matrix: np.ndarray, frame: pd.DataFrame
) -> SearchResult:
    """The root-cause spec chosen on the newest slice of the labelled rows (as many labels as
    the fit will see, so the leaves scale the same way)."""
    labelled = labelled_rows(frame, "root_cause")
    spec = small_sample_spec(spec, int(labelled.sum()))
    return search_root_cause(
        fit.weighted_root_cause,
        spec,
        matrix[labelled],
        root_cause_codes(frame.loc[labelled, "root_cause"]),
        newest_share(frame[labelled], VALIDATION_SHARE),
    )


def with_searched_root_cause(
    specs: dict[str, ModelSpec], metadata: dict[str, object]
) -> dict[str, ModelSpec]:
    """The specs with the root-cause point an earlier search chose (none: as they are), so a
    refit uses the selected settings without searching again."""
    point = metadata.get(SEARCH_POINT_KEY)
    if point is None:
        return specs
    return {**specs, "root_cause": with_point(specs["root_cause"], json.loads(str(point)))}


def ranked_backwards(task: str, calibration: PlattCalibration | None) -> str | None:
    """Why a binary model must not be kept, or None: a calibration slope at or below zero means
    its scores ranked the newest labelled rows no better than chance or backwards (seen with a
    few hundred preventable labels), and calibrating it would serve flipped probabilities and
    explanations that point the wrong way."""
    if calibration is None or calibration.slope > 0:
        return None
    return (
        f"its scores did not rank the newest labelled rows (calibration slope "
        f"{calibration.slope:.2f}): too few or too noisy labels to learn {task} from"
    )


def with_set_aside(labels: dict[str, LabelCount], model: TriageModel) -> dict[str, LabelCount]:
    """The label counts, saying which model training set aside after fitting it."""
    return {
        task: replace(count, set_aside=model.metadata.get(f"set_aside.{task}"))
        for task, count in labels.items()
    }


def routing_confidence(specs: dict[str, ModelSpec]) -> dict[str, float]:
    """The root-cause spec's routing and review thresholds, as TriageModel arguments where it
    sets them."""
    spec = specs["root_cause"]
    thresholds = {
        "routing_confidence": spec.routing_confidence,
        "review_confidence": spec.review_confidence,
    }
    return {name: value for name, value in thresholds.items() if value is not None}


@dataclass(frozen=True)
class ModelFitter:
    """How each model is fitted on a feature matrix: seeded, with the spec's hyperparameters
    (training and the labelling queue's interim models share it)."""

    seed: int
    n_jobs: int
    categorical: list[int]

    def _common(self) -> dict[str, object]:
        return {"random_state": self.seed, "n_jobs": self.n_jobs, "verbose": -1}

    def root_cause(
        self, spec: ModelSpec, matrix: np.ndarray, labels: pd.Series
    ) -> lgb.LGBMClassifier:
        return self.weighted_root_cause(spec, matrix, root_cause_codes(labels))

    def weighted_root_cause(
        self,
        spec: ModelSpec,
        matrix: np.ndarray,
        codes: np.ndarray,
        weights: np.ndarray | None = None,
    ) -> lgb.LGBMClassifier:
        """A root-cause model of contract category indices, each row weighted (1 if none)."""
        model = lgb.LGBMClassifier(objective="multiclass", **spec.hyperparameters, **self._common())
        return model.fit(matrix, codes, sample_weight=weights, categorical_feature=self.categorical)

    def calibrated_binary(
        self,
        spec: ModelSpec,
        matrix: np.ndarray,
        frame: pd.DataFrame,
        label: Callable[[pd.DataFrame], np.ndarray],
    ) -> tuple[lgb.LGBMClassifier, PlattCalibration]:
        """A binary model on every labelled row (``matrix`` and ``frame`` alike), Platt-calibrated
        on margins it did not learn from.

        Each of the spec's ``calibration_folds`` time folds fits on the rows before one of the
        newest slices (``calibration_share`` of the rows each) and predicts that slice; the
        Platt scaling is fitted on those out-of-fold margins together, then the model is refitted
        on all rows, so the newest months teach the model too instead of only calibrating it.
        With ``early_stopping_rounds`` the rounds are chosen on the newest slice (a validation
        slice inside the training rows), and every fold and the refit use them.
        """
        target = label(frame)
        folds = time_folds(frame, spec.calibration_share, spec.calibration_folds)
        spec = self.early_stopped(spec, matrix, target, folds[-1])
        margins, rows = self.out_of_fold(spec, matrix, target, folds)
        calibration = platt_calibration(margins, target[rows])
        return self.binary(spec, matrix, target), calibration

    def out_of_fold(
        self,
        spec: ModelSpec,
        matrix: np.ndarray,
        target: np.ndarray,
        folds: list[tuple[np.ndarray, np.ndarray]],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each fold's model's raw margins on its own slice, oldest slice first, and the row
        positions they belong to: margins no model learned from, for fitting a calibration."""
        margins, rows = [], []
        for learn, holdout in folds:
            model = self.binary(spec, matrix[learn], target[learn])
            margins.append(model.predict(matrix[holdout], raw_score=True))
            rows.append(np.flatnonzero(holdout))
        return np.concatenate(margins), np.concatenate(rows)

    def early_stopped(
        self,
        spec: ModelSpec,
        matrix: np.ndarray,
        target: np.ndarray,
        fold: tuple[np.ndarray, np.ndarray],
    ) -> ModelSpec:
        """The spec with ``n_estimators`` where the validation slice's log loss stopped
        improving (at most the spec's own); the spec as written without early stopping."""
        patience = spec.early_stopping_rounds
        learn, validation = fold
        if patience is None or len(np.unique(target[validation])) < 2:
            return spec
        model = lgb.LGBMClassifier(objective="binary", **spec.hyperparameters, **self._common())
        model.fit(
            matrix[learn],
            target[learn],
            eval_X=(matrix[validation],),
            eval_y=(target[validation],),
            categorical_feature=self.categorical,
            callbacks=[lgb.early_stopping(patience, verbose=False)],
        )
        rounds = max(int(model.best_iteration_ or spec.hyperparameters["n_estimators"]), 1)
        parameters = {**spec.hyperparameters, "n_estimators": rounds}
        return spec.model_copy(update={"hyperparameters": parameters})

    def binary(self, spec: ModelSpec, matrix: np.ndarray, target: np.ndarray) -> lgb.LGBMClassifier:
        """An uncalibrated binary model of ``target`` on every row of ``matrix``."""
        model = lgb.LGBMClassifier(objective="binary", **spec.hyperparameters, **self._common())
        return model.fit(matrix, target, categorical_feature=self.categorical)

    def recovered_share(
        self, spec: ModelSpec, matrix: np.ndarray, frame: pd.DataFrame
    ) -> lgb.LGBMRegressor:
        """Share of the denied amount recovered, learned on recovered denials only."""
        recovered = recovered_target(frame) & resolved_rows(frame)
        params = spec.share_hyperparameters or {}
        model = lgb.LGBMRegressor(objective="cross_entropy", **params, **self._common())
        share = recovered_share(frame)[recovered]
        return model.fit(matrix[recovered], share, categorical_feature=self.categorical)
