"""Binary models: time folds, out-of-fold Platt scaling, refit on every row, early stopping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.fit import ModelFitter, newest_share, time_folds
from training.metrics import expected_calibration_error
from training.specs import load_specs

ROWS = 6_000


def dated_rows(rows: int = ROWS, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows over 600 days, two features, and a target drawn from a known logistic model."""
    rng = np.random.default_rng(seed)
    days = np.sort(rng.integers(0, 600, rows))
    frame = pd.DataFrame({"denial_date": pd.Timestamp("2025-01-01") + pd.to_timedelta(days, "D")})
    matrix = rng.normal(size=(rows, 2)).astype(np.float32)
    probability = 1 / (1 + np.exp(-(1.2 * matrix[:, 0] - 0.8 * matrix[:, 1])))
    return frame, matrix, rng.random(rows) < probability


@pytest.mark.parametrize("folds", [1, 2, 3])
def test_each_fold_learns_from_older_rows_and_predicts_its_own_newer_slice(folds: int) -> None:
    frame, _, _ = dated_rows()
    dates = frame["denial_date"]
    result = time_folds(frame, 0.15, folds)
    assert len(result) == folds
    slices = np.vstack([holdout for _, holdout in result])
    assert slices.sum(axis=0).max() == 1  # no row in two slices
    assert slices.sum() == pytest.approx(ROWS * 0.15 * folds, rel=0.05)
    for learn, holdout in result:
        assert dates[learn].max() < dates[holdout].min()
        assert (learn | holdout).sum() == learn.sum() + holdout.sum()
    assert np.array_equal(result[-1][1], newest_share(frame, 0.15))
    starts = [dates[holdout].min() for _, holdout in result]
    assert starts == sorted(starts)


def test_the_kept_model_is_refitted_on_every_row_and_calibrated_out_of_fold() -> None:
    frame, matrix, target = dated_rows()
    spec = load_specs()["recovery"].model_copy(update={"calibration_folds": 2})
    fitter = ModelFitter(seed=7, n_jobs=1, categorical=[])
    model, calibration = fitter.calibrated_binary(
        spec, matrix, frame, lambda rows: target[rows.index]
    )
    everything = fitter.binary(spec, matrix, target)
    assert np.array_equal(
        model.predict(matrix, raw_score=True), everything.predict(matrix, raw_score=True)
    )
    # Fresh rows from the same world: the calibrated probabilities match their outcomes.
    _, fresh, outcome = dated_rows(seed=4)
    probability = calibration.probability(model.predict(fresh, raw_score=True))
    assert expected_calibration_error(outcome, probability) < 0.03
    assert 0.5 < calibration.slope < 1.5


def test_out_of_fold_margins_come_from_models_that_never_saw_their_slice() -> None:
    frame, matrix, target = dated_rows()
    spec = load_specs()["recovery"]
    fitter = ModelFitter(seed=7, n_jobs=1, categorical=[])
    folds = time_folds(frame, 0.15, 2)
    margins, rows = fitter.out_of_fold(spec, matrix, target, folds)
    expected_rows = np.concatenate([np.flatnonzero(holdout) for _, holdout in folds])
    assert np.array_equal(rows, expected_rows)
    older, newest = folds[-1]
    on_older = fitter.binary(spec, matrix[older], target[older])
    newest_margins = margins[-int(newest.sum()) :]
    assert np.allclose(newest_margins, on_older.predict(matrix[newest], raw_score=True))
    # A model fitted on every row scores the same slice more confidently than out of fold.
    in_sample = fitter.binary(spec, matrix, target).predict(matrix[newest], raw_score=True)
    outcome = target[newest]
    assert np.mean(in_sample * (2 * outcome - 1)) > np.mean(newest_margins * (2 * outcome - 1))


def test_early_stopping_keeps_few_rounds_on_noise_and_more_on_signal() -> None:
    frame, matrix, target = dated_rows()
    noise = np.random.default_rng(9).random(ROWS) < 0.5
    spec = load_specs()["preventable"]
    assert spec.early_stopping_rounds is not None
    spec = spec.model_copy(
        update={"hyperparameters": {**spec.hyperparameters, "n_estimators": 300}}
    )
    fitter = ModelFitter(seed=7, n_jobs=1, categorical=[])
    newest = time_folds(frame, 0.15, 1)[-1]
    on_signal = fitter.early_stopped(spec, matrix, target, newest)
    on_noise = fitter.early_stopped(spec, matrix, noise, newest)
    assert on_noise.hyperparameters["n_estimators"] < 30
    assert on_signal.hyperparameters["n_estimators"] > on_noise.hyperparameters["n_estimators"]
    assert on_signal.hyperparameters["n_estimators"] <= 300
    unstopped = spec.model_copy(update={"early_stopping_rounds": None})
    assert fitter.early_stopped(unstopped, matrix, noise, newest) == unstopped
