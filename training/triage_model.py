"""The trained triage model: the fitted feature pipeline, the three models, and their explanations.

One object answers every question a score needs: root cause, recovery, preventability, routing
from the governed mapping, deadlines from the payer rules, the priority score and the reasons
for human review. Batch scoring, evaluation and the API all call :meth:`TriageModel.score`, so
there is no second implementation anywhere.

Explanations are exact TreeSHAP contributions from LightGBM (``pred_contrib``), which equal
``shap.TreeExplainer`` values (a test checks it) at a fraction of the cost. Binary models are
calibrated by Platt scaling on their raw margin, a linear map, so the contributions scaled by
the same slope still add up exactly to the calibrated log-odds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.contract import ROOT_CAUSES
from features.pipeline import CATEGORICAL_FEATURES, DenialFeatures, reference_dates
from training.priority import priority_parts

LOW_CONFIDENCE = 0.5  # top root-cause probability below this needs a person
HIGH_DOLLARS = 10_000.0  # denied amounts above this are reviewed before acting


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


@dataclass
class TriageModel:
    """Everything needed to score and explain denials, fitted together."""

    features: DenialFeatures
    root_cause_model: lgb.LGBMClassifier
    recovery_model: lgb.LGBMClassifier
    recovery_calibration: PlattCalibration
    recovery_share_model: lgb.LGBMRegressor
    preventable_model: lgb.LGBMClassifier
    preventable_calibration: PlattCalibration
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def root_cause_classes(self) -> list[str]:
        return [ROOT_CAUSES[i] for i in self.root_cause_model.classes_]

    @property
    def mapping_version(self) -> str:
        return self.features.mapping_.stamp

    # ------------------------------------------------------------------ scoring

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Scores, routing, deadlines, priority and review reasons for validated contract rows."""
        matrix = self.features.transform(frame)
        root = self._root_cause_scores(matrix).set_axis(frame.index)
        recovery = self.recovery_calibration.probability(self._margin(self.recovery_model, matrix))
        share = np.clip(self.recovery_share_model.predict(matrix), 0.0, 1.0)
        preventable = self.preventable_calibration.probability(
            self._margin(self.preventable_model, matrix)
        )
        routes = self.features.mapping_.route_frame(frame)
        parts = priority_parts(
            recovery_probability=recovery,
            expected_recovered_share=share,
            denied_amount=frame["denied_amount"].to_numpy(float),
            action_path=routes["action_path"].to_numpy(),
            deadlines=self.features.payer_rules_.deadline_frame(frame),
            as_of=reference_dates(frame).to_numpy(),
        )
        scores = pd.concat(
            [
                root,
                pd.DataFrame(
                    {
                        "recovery_probability": recovery,
                        "expected_recovered_share": share,
                        "preventable_probability": preventable,
                    },
                    index=frame.index,
                ),
                routes,
                parts.as_frame(frame.index),
            ],
            axis=1,
        )
        scores["prevention_owner"] = [
            self.features.mapping_.root_causes[c].prevention_owner for c in scores["root_cause"]
        ]
        scores["unseen_codes"] = self.features.unseen_codes(frame)
        scores["review_reasons"] = self._review_reasons(frame, scores)
        scores["requires_human_review"] = scores["review_reasons"].map(bool)
        return scores

    def _root_cause_scores(self, matrix: np.ndarray) -> pd.DataFrame:
        probabilities = self.root_cause_model.predict_proba(matrix)
        classes = self.root_cause_classes
        frame = pd.DataFrame(probabilities, columns=[f"p_{c}" for c in classes])
        top = probabilities.argmax(axis=1)
        frame.insert(0, "root_cause", np.array(classes)[top])
        frame.insert(1, "root_cause_probability", probabilities.max(axis=1))
        return frame

    @staticmethod
    def _margin(model: lgb.LGBMModel, matrix: np.ndarray) -> np.ndarray:
        return model.predict(matrix, raw_score=True)

    def _review_reasons(self, frame: pd.DataFrame, scores: pd.DataFrame) -> list[list[str]]:
        policies = self.features.mapping_.root_causes
        reasons: list[list[str]] = []
        rows = zip(
            scores["root_cause"],
            scores["root_cause_probability"],
            scores["mapped_root_cause"],
            frame["denied_amount"].to_numpy(float),
            scores["unseen_codes"],
            scores["days_to_deadline"],
            strict=True,
        )
        for cause, confidence, mapped, amount, unseen, days_left in rows:
            row = []
            if confidence < LOW_CONFIDENCE:
                row.append(f"low confidence: top root cause at {confidence:.0%}")
            if policies[cause].human_review:
                row.append(f"{cause} decisions need clinical or compliance judgement")
            if cause != mapped:
                row.append(f"model disagrees with the code mapping, which says {mapped}")
            if amount > HIGH_DOLLARS:
                row.append(f"high dollars: ${amount:,.2f} denied")
            if unseen:
                row.append(f"codes never seen in training: {', '.join(unseen)}")
            if days_left < 0:
                row.append(f"deadline passed {-int(days_left)} days ago")
            reasons.append(row)
        return reasons

    # ------------------------------------------------------------------ explanations

    def explain(self, frame: pd.DataFrame, top: int = 5) -> list[dict[str, Explanation]]:
        """Per denial, per model: the top SHAP contributions in the model's log-odds space."""
        matrix = self.features.transform(frame)
        root = self._root_cause_contributions(matrix)
        recovery = self._calibrated_contributions(
            self.recovery_model, self.recovery_calibration, matrix
        )
        preventable = self._calibrated_contributions(
            self.preventable_model, self.preventable_calibration, matrix
        )
        described = self._describe_values(frame, matrix)
        return [
            {
                "root_cause": self._explanation("root_cause", root[i], described[i], top),
                "recovery": self._explanation("recovery", recovery[i], described[i], top),
                "preventable": self._explanation("preventable", preventable[i], described[i], top),
            }
            for i in range(len(frame))
        ]

    def _root_cause_contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Contributions to the top class's raw score (what a reviewer sees)."""
        raw = self.root_cause_model.predict(matrix, pred_contrib=True)
        width = matrix.shape[1] + 1
        per_class = np.asarray(raw).reshape(len(matrix), -1, width)
        top = self.root_cause_model.predict_proba(matrix).argmax(axis=1)
        return per_class[np.arange(len(matrix)), top]

    @staticmethod
    def _calibrated_contributions(
        model: lgb.LGBMClassifier, calibration: PlattCalibration, matrix: np.ndarray
    ) -> np.ndarray:
        contributions = np.asarray(model.predict(matrix, pred_contrib=True)) * calibration.slope
        contributions[:, -1] += calibration.intercept  # the base value absorbs the intercept
        return contributions

    def _explanation(
        self, model: str, contributions: np.ndarray, values: list[str], top: int
    ) -> Explanation:
        features, base = contributions[:-1], float(contributions[-1])
        order = np.argsort(-np.abs(features), kind="stable")[:top]
        names = self.features.feature_names_
        listed = [
            {"feature": names[i], "value": values[i], "contribution": float(features[i])}
            for i in order
            if features[i] != 0.0
        ]
        rest = float(features.sum() - sum(item["contribution"] for item in listed))
        return Explanation(model, float(contributions.sum()), base, listed, rest)

    def _describe_values(self, frame: pd.DataFrame, matrix: np.ndarray) -> list[list[str]]:
        """Feature values as a reviewer reads them: category names, not integer codes."""
        vocabularies = [self.features.vocabularies_[name] for name in CATEGORICAL_FEATURES]
        described = []
        for row in matrix:
            values = [
                _category_text(code, vocab) for code, vocab in zip(row, vocabularies, strict=False)
            ]
            values += [_number_text(v) for v in row[len(vocabularies) :]]
            described.append(values)
        return described


def _category_text(code: float, vocabulary: list[str]) -> str:
    if np.isnan(code):
        return "missing"
    index = int(code)
    return vocabulary[index] if index < len(vocabulary) else "other (rare or unseen)"


def _number_text(value: float) -> str:
    if np.isnan(value):
        return "missing"
    return f"{value:g}"
