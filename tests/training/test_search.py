"""Hyperparameters chosen on a validation slice of the training months (train --search)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.fit import fit_triage_model, newest_share, with_searched_root_cause
from training.search import (
    GRID,
    SEARCH_KEY,
    SEARCH_POINT_KEY,
    VALIDATION_SHARE,
    choose,
    search_root_cause,
    with_point,
)
from training.specs import ModelSpec, load_specs


def root_cause_spec() -> ModelSpec:
    return load_specs()["root_cause"]


def test_the_point_with_the_lowest_validation_loss_wins_and_the_spec_is_ranked() -> None:
    spec = root_cause_spec()  # its own point: 7 leaves, 40 rows a leaf, 100 rounds
    wanted = {"num_leaves": 31, "min_child_samples": 20, "n_estimators": 250}

    def loss(fitted: ModelSpec) -> float:  # the "model" is the spec itself here
        return float(sum(fitted.hyperparameters[k] != v for k, v in wanted.items()))

    result = choose(spec, lambda candidate: candidate, loss)
    assert result.chosen == wanted
    assert result.spec.hyperparameters["num_leaves"] == 31
    assert result.spec.hyperparameters["learning_rate"] == spec.hyperparameters["learning_rate"]
    assert len(result.losses) == 13  # twelve grid points and the spec's own
    # Ten grid points share something with the wanted point; the spec's own, like two grid
    # points, shares nothing: its rank counts the points strictly better, plus one.
    assert result.spec_rank == 11
    assert "num_leaves 31" in result.describe() and "ranked 11 of 13" in result.describe()


def test_the_spec_stays_when_no_grid_point_does_better() -> None:
    spec = root_cause_spec()
    own = {name: spec.hyperparameters[name] for name in GRID}
    result = choose(
        spec,
        lambda candidate: candidate,
        lambda f: float(f.hyperparameters != spec.hyperparameters),
    )
    assert result.chosen == own and result.spec_rank == 1
    assert result.spec.hyperparameters == spec.hyperparameters


def test_the_search_learns_on_older_rows_and_scores_the_newest_slice(history) -> None:
    rows = history.sort_values("denial_date").tail(4_000).reset_index(drop=True)
    validation = newest_share(rows, VALIDATION_SHARE)
    seen: list[int] = []

    def fit_model(spec: ModelSpec, matrix: np.ndarray, codes: np.ndarray) -> object:
        seen.append(len(matrix))
        return _Constant(codes)

    matrix = np.zeros((len(rows), 2))
    codes = np.arange(len(rows)) % 10
    result = search_root_cause(fit_model, root_cause_spec(), matrix, codes, validation)
    assert set(seen) == {int((~validation).sum())}  # every fit learned only the older rows
    assert 0.12 < validation.mean() < 0.2
    assert len(result.losses) == 13


class _Constant:
    """A model that always gives each class its share of the learning rows."""

    def __init__(self, codes: np.ndarray) -> None:
        self.classes_ = np.unique(codes)
        self.share = np.bincount(codes, minlength=10)[self.classes_] / len(codes)

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.tile(self.share, (len(matrix), 1))


@pytest.mark.slow  # thirteen root-cause fits and a triage model
def test_a_searched_model_records_its_choice_and_a_refit_reuses_it(split_history) -> None:
    train = split_history[0].sample(4_000, random_state=5)
    specs = {
        task: with_point(spec, {"n_estimators": 30}) if task != "root_cause" else spec
        for task, spec in load_specs().items()
    }
    model = fit_triage_model(train, specs, seed=5, search=True)
    chosen = json.loads(str(model.metadata[SEARCH_POINT_KEY]))
    assert set(chosen) == set(GRID)
    assert "ranked" in str(model.metadata[SEARCH_KEY])
    fitted = model.root_cause_model.get_params()
    assert fitted["num_leaves"] == chosen["num_leaves"]
    assert fitted["n_estimators"] == chosen["n_estimators"]
    reused = with_searched_root_cause(specs, model.metadata)
    assert {k: reused["root_cause"].hyperparameters[k] for k in GRID} == chosen
    assert with_searched_root_cause(specs, {}) is specs


def test_without_search_the_specs_are_fitted_as_written(split_history) -> None:
    train = split_history[0].sample(4_000, random_state=6)
    model = fit_triage_model(train, load_specs(), seed=6)
    assert SEARCH_KEY not in model.metadata and SEARCH_POINT_KEY not in model.metadata
    spec = load_specs()["root_cause"].hyperparameters
    assert model.root_cause_model.get_params()["num_leaves"] == spec["num_leaves"]


def test_train_refuses_search_on_dask_before_any_work(history_path) -> None:
    from typer.testing import CliRunner

    from denial_triage.cli import app

    result = CliRunner().invoke(
        app, ["train", "--data", str(history_path), "--dask", "local", "--search"]
    )
    assert result.exit_code == 1
    assert "--search is not supported with --dask" in result.output
