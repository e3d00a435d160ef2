"""Fitting the triage model: time-based splits, three LightGBM models, Platt calibration.

The newest months are held out for testing; within the training months, the newest share is
held out again to calibrate the binary models, so no probability is calibrated on rows its
model learned from.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from features.contract import ROOT_CAUSES
from features.pipeline import DenialFeatures
from training.specs import ModelSpec
from training.triage_model import PlattCalibration, TriageModel

DEFAULT_TEST_MONTHS = 4


DEFAULT_MATURITY_DAYS = 180


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


def recovered_target(frame: pd.DataFrame) -> np.ndarray:
    return (frame["recovered_amount"].fillna(0.0) > 0).to_numpy()


def resolved_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows that carry a recovery label: every resolution but ``open``."""
    return (frame["resolution"] != "open").to_numpy()


def root_cause_codes(labels: pd.Series) -> np.ndarray:
    """Contract category indices, so class probabilities line up with ``ROOT_CAUSES``."""
    return labels.map({cause: i for i, cause in enumerate(ROOT_CAUSES)}).to_numpy()


def preventable_target(frame: pd.DataFrame) -> np.ndarray:
    """The preventable label as booleans."""
    return frame["preventable"].astype(bool).to_numpy()


def recovered_share(frame: pd.DataFrame) -> np.ndarray:
    """Share of the denied amount recovered, clipped to [0, 1]."""
    share = (frame["recovered_amount"] / frame["denied_amount"]).to_numpy()
    return np.clip(share, 0.0, 1.0)


def platt_calibration(margin: np.ndarray, target: np.ndarray) -> PlattCalibration:
    """Platt scaling of a binary model's raw margin, fitted on rows it did not learn from."""
    platt = LogisticRegression(C=1e6).fit(np.reshape(margin, (-1, 1)), target)
    return PlattCalibration(float(platt.coef_[0, 0]), float(platt.intercept_[0]))


def fit_triage_model(
    frame: pd.DataFrame, specs: dict[str, ModelSpec], *, seed: int = 7, n_jobs: int = 2
) -> TriageModel:
    """Fit the feature pipeline and all three models on a labelled training frame."""
    features = DenialFeatures().fit(frame)
    matrix = features.transform(frame)
    categorical = features.categorical_indices
    fit = _Fitter(seed, n_jobs, categorical)
    resolved = resolved_rows(frame)
    recovery, recovery_calibration = fit.calibrated_binary(
        specs["recovery"], matrix[resolved], recovered_target(frame)[resolved], frame[resolved]
    )
    preventable, preventable_calibration = fit.calibrated_binary(
        specs["preventable"], matrix, preventable_target(frame), frame
    )
    return TriageModel(
        features=features,
        root_cause_model=fit.root_cause(specs["root_cause"], matrix, frame["root_cause"]),
        recovery_model=recovery,
        recovery_calibration=recovery_calibration,
        recovery_share_model=fit.recovered_share(specs["recovery"], matrix, frame),
        preventable_model=preventable,
        preventable_calibration=preventable_calibration,
    )


@dataclass(frozen=True)
class _Fitter:
    seed: int
    n_jobs: int
    categorical: list[int]

    def _common(self) -> dict[str, object]:
        return {"random_state": self.seed, "n_jobs": self.n_jobs, "verbose": -1}

    def root_cause(
        self, spec: ModelSpec, matrix: np.ndarray, labels: pd.Series
    ) -> lgb.LGBMClassifier:
        model = lgb.LGBMClassifier(objective="multiclass", **spec.hyperparameters, **self._common())
        return model.fit(matrix, root_cause_codes(labels), categorical_feature=self.categorical)

    def calibrated_binary(
        self, spec: ModelSpec, matrix: np.ndarray, target: np.ndarray, frame: pd.DataFrame
    ) -> tuple[lgb.LGBMClassifier, PlattCalibration]:
        holdout = newest_share(frame, spec.calibration_share)
        model = lgb.LGBMClassifier(objective="binary", **spec.hyperparameters, **self._common())
        model.fit(matrix[~holdout], target[~holdout], categorical_feature=self.categorical)
        margin = model.predict(matrix[holdout], raw_score=True)
        return model, platt_calibration(margin, target[holdout])

    def recovered_share(
        self, spec: ModelSpec, matrix: np.ndarray, frame: pd.DataFrame
    ) -> lgb.LGBMRegressor:
        """Share of the denied amount recovered, learned on recovered denials only."""
        recovered = recovered_target(frame) & resolved_rows(frame)
        params = spec.share_hyperparameters or {}
        model = lgb.LGBMRegressor(objective="cross_entropy", **params, **self._common())
        share = recovered_share(frame)[recovered]
        return model.fit(matrix[recovered], share, categorical_feature=self.categorical)
