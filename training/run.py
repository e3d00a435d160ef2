"""The training job: load, split by time, fit, evaluate, log and register.

``denial-triage train`` is a thin shell over :func:`train`; the steps report progress through a
callback so the command can show them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from features.contract import LABEL_COLUMNS, load_denials
from training.drift import REFERENCE_ROWS, build_reference
from training.evaluate import Evaluation, evaluate_model, write_figures
from training.feedback import apply_feedback
from training.fit import (
    DEFAULT_MATURITY_DAYS,
    DEFAULT_TEST_MONTHS,
    LabelCount,
    TimeSplit,
    fit_triage_model,
    label_counts,
    require_recovery_labels,
    time_split,
    with_searched_root_cause,
    with_set_aside,
)
from training.specs import ModelSpec, load_specs
from training.tracking import (
    EVALUATION_FIT,
    TrainingRecord,
    configure_tracking,
    file_digest,
    git_commit,
    log_training_run,
)
from training.triage_model import TriageModel
from training.windows import DEFAULT_MIN_EVALUATION_ROWS, TrainingWindow, rows_beyond

Progress = Callable[[str], None]
# Baselines (code lookup, logistic regression) learn from a sample when training is distributed,
# so no more than this many rows ever reach the client.
BASELINE_SAMPLE_ROWS = 300_000


class TrainingDataError(ValueError):
    """The history cannot be trained on; the message says why and what to do."""


@dataclass(frozen=True)
class TrainingOptions:
    data: Path
    data_dir: Path
    experiment: str = "denial-triage"
    seed: int = 7
    test_months: int = DEFAULT_TEST_MONTHS
    maturity_days: int = DEFAULT_MATURITY_DAYS
    dask: str | None = None  # scheduler address, or "local" for a LocalCluster
    # After the test months have measured the fitted models, fit them again on every matured
    # row (training and test months) and register that: the newest matured months are the
    # ones most like the denials it will score. Not with --dask (see ``_refit``).
    refit: bool = True
    # Choose the root cause's hyperparameters on a validation slice of the training months
    # first (training.search); the refit reuses the choice.
    search: bool = False
    # The service's feedback labels (training.feedback.LABELS by denial_id), laid over the
    # history's; the command reads them from the service's records.
    feedback: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    @property
    def refits(self) -> bool:
        """Whether the registered model is the refit (never on Dask, see ``_refit``)."""
        return self.refit and not self.dask


@dataclass(frozen=True)
class TrainingResult:
    record: TrainingRecord
    evaluation: Evaluation
    cutoff: pd.Timestamp
    labels: dict[str, LabelCount]  # per model: training rows with its label, fitted or not


@dataclass(frozen=True)
class _Fitted:
    model: TriageModel
    baseline_rows: pd.DataFrame  # training rows the baselines learn from
    test_rows: pd.DataFrame
    train_rows: int
    cutoff: pd.Timestamp
    window: TrainingWindow
    labels: dict[str, LabelCount]


def load_history(path: Path) -> pd.DataFrame:
    """A contract-valid history with every label column (empty where the file has none), or
    a :class:`TrainingDataError` naming the problem."""
    result = load_denials(path)
    if not result.ok:
        shown = "\n".join(f"  {e}" for e in result.errors[:20])
        raise TrainingDataError(
            f"{path}: {len(result.bad_rows):,} rows break the data contract "
            f"(run `denial-triage validate {path}` for all of them):\n{shown}"
        )
    return with_label_columns(result.frame)


def with_label_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The history with every label column, empty where the file has none: labels may be
    missing (each model learns from the rows that carry its own)."""
    missing = {name: _EMPTY_LABELS[name] for name in LABEL_COLUMNS if name not in frame}
    if not missing:
        return frame
    return frame.assign(
        **{
            name: pd.Series(pd.NA, index=frame.index, dtype=dtype)
            for name, dtype in missing.items()
        }
    )


_EMPTY_LABELS = {
    "root_cause": "object",
    "preventable": "boolean",
    "resolution": "object",
    "recovered_amount": "Float64",
    "resolved_date": "datetime64[s]",
}


def split_history(
    frame: pd.DataFrame, options: TrainingOptions
) -> tuple[pd.DataFrame, pd.DataFrame, TimeSplit]:
    split = time_split(frame, options.test_months, options.maturity_days)
    train = frame.iloc[split.train].reset_index(drop=True)
    test = frame.iloc[split.test].reset_index(drop=True)
    return train, test, split


def train(options: TrainingOptions, progress: Progress = lambda _: None) -> TrainingResult:
    """Run the whole job and return what was registered and measured."""
    specs = load_specs()
    fitted = (
        _fit_on_dask(options, specs, progress)
        if options.dask
        else _fit_here(options, specs, progress)
    )
    evaluated = fitted.model
    evaluated.metadata.update(_metadata(options, fitted))
    progress(f"evaluating on {len(fitted.test_rows):,} denials from {fitted.cutoff.date()}")
    evaluation = evaluate_model(
        evaluated, fitted.baseline_rows, fitted.test_rows, seed=options.seed
    )
    evaluation.report["rows"]["train"] = fitted.train_rows
    evaluation.report["labels"] = label_report(fitted.labels)
    registered, rows, window = evaluated, fitted.baseline_rows, fitted.window
    if options.refits:
        registered, rows, window = _refit(options, specs, fitted, progress)
    progress("keeping the training rows' distributions for drift monitoring")
    registered.drift_reference = training_reference(registered, rows, window, options.seed)
    progress("logging to MLflow and registering the model")
    evaluation_fit = evaluated if registered is not evaluated else None
    record = _log(registered, evaluation, fitted.test_rows, options, specs, evaluation_fit)
    return TrainingResult(record, evaluation, fitted.cutoff, fitted.labels)


def _refit(
    options: TrainingOptions, specs: dict[str, ModelSpec], fitted: _Fitted, progress: Progress
) -> tuple[TriageModel, pd.DataFrame, TrainingWindow]:
    """The models fitted again, with the same specs and seed, on every matured row: the
    training and the test months. ``evaluate`` and ``promote`` measure the evaluation fit in
    its stead (``training.tracking.load_measured_model``): the same procedure on fewer months,
    so its figures are fair and, if anything, modest for the refit. Training on a Dask
    cluster keeps only a sample of the training rows here, so it registers the evaluation fit.
    """
    rows = pd.concat([fitted.baseline_rows, fitted.test_rows], ignore_index=True)
    progress(f"refitting on all {len(rows):,} matured denials (training and test months)")
    selected = with_searched_root_cause(specs, fitted.model.metadata)
    model = fit_triage_model(rows, selected, seed=options.seed)
    window = TrainingWindow.of(rows, fitted.window.matured_by, str(fitted.window.data_digest))
    fitted.model.metadata["fit"] = EVALUATION_FIT  # kept beside the registered model
    # The evaluated fit's provenance and search choice carry over; whether a model was set
    # aside, and what its self-training read, are the refit's own (it learned other rows).
    carried = {
        k: v
        for k, v in fitted.model.metadata.items()
        if not k.startswith(("set_aside.", "self_training."))
    }
    model.metadata.update(
        {
            **carried,
            "fit": "every matured row",
            **window.metadata(),
            **{
                f"evaluation_fit.{k[len('window.') :]}": v
                for k, v in fitted.window.metadata().items()
            },
            "train_rows": len(rows),
        }
    )
    return model, rows, window


def training_reference(
    model: TriageModel, rows: pd.DataFrame, window: TrainingWindow, seed: int
) -> dict[str, object]:
    """The drift reference of (a sample of) the training rows, scored by the fitted model as
    the service will score recent denials."""
    if len(rows) > REFERENCE_ROWS:
        rows = rows.sample(REFERENCE_ROWS, random_state=seed)
    return build_reference(rows, model.score(rows), window.metadata())


def label_report(labels: dict[str, LabelCount]) -> dict[str, dict[str, int]]:
    """Per model, its labelled training rows, the spec's minimum and whether it was fitted
    (1/0, so MLflow logs each as a metric)."""
    return {
        task: {"train": c.labelled, "min_labels": c.required, "fitted": int(c.fitted)}
        for task, c in labels.items()
    }


def _fit_here(options: TrainingOptions, specs: dict[str, ModelSpec], progress: Progress) -> _Fitted:
    progress(f"loading {options.data}")
    frame = load_history(options.data)
    if options.feedback is not None:
        frame, changed = apply_feedback(frame, options.feedback)
        progress(f"feedback changed the labels of {changed:,} denials")
    train_rows, test_rows, split = split_history(frame, options)
    labels = label_counts(train_rows, specs)
    progress(f"fitting on {len(train_rows):,} denials before {split.cutoff.date()}")
    model = fit_triage_model(train_rows, specs, seed=options.seed, search=options.search)
    labels = with_set_aside(labels, model)
    window = TrainingWindow.of(train_rows, split.matured_by, file_digest(options.data))
    return _Fitted(model, train_rows, test_rows, len(train_rows), split.cutoff, window, labels)


def _fit_on_dask(
    options: TrainingOptions, specs: dict[str, ModelSpec], progress: Progress
) -> _Fitted:
    """Train on a Dask cluster; only the test months and a baseline sample reach this process."""
    from training.distributed import (
        dask_client,
        dask_label_counts,
        dask_time_split,
        fit_triage_model_dask,
        read_partitioned,
    )

    with dask_client(str(options.dask)) as client:
        progress(f"loading {options.data} on the cluster at {options.dask}")
        history = read_partitioned(options.data)
        train_rows, test_rows, cutoff = dask_time_split(
            history, options.test_months, options.maturity_days
        )
        count = int(train_rows.shape[0].compute())
        labels = require_recovery_labels(dask_label_counts(train_rows, specs))
        _refuse_partial_labels(options.data, labels, count)
        progress(f"fitting on {count:,} denials before {cutoff.date()} with lightgbm.dask")
        model = fit_triage_model_dask(train_rows, specs, client, seed=options.seed)
        fraction = min(1.0, BASELINE_SAMPLE_ROWS / max(count, 1))
        baseline = train_rows.sample(frac=fraction, random_state=options.seed).compute()
        test = test_rows.compute()
        dates = train_rows["denial_date"]
        first, last = (
            pd.Timestamp(d) for d in client.compute([dates.min(), dates.max()], sync=True)
        )
    window = TrainingWindow(first, last, None, count, file_digest(options.data))
    return _Fitted(
        model,
        baseline.reset_index(drop=True),
        test.reset_index(drop=True),
        count,
        cutoff,
        window,
        labels,
    )


def _refuse_partial_labels(path: Path, labels: dict[str, LabelCount], rows: int) -> None:
    """Dask training fits root cause and preventable on every training row: it needs them
    all labelled."""
    partial = [
        f"{task} on {c.labelled:,} of {rows:,}"
        for task, c in labels.items()
        if task != "recovery" and c.labelled < rows
    ]
    if partial:
        raise TrainingDataError(
            f"{path}: --dask trains only fully labelled histories, and the training rows "
            f"carry {', '.join(partial)}; train without --dask, which fits each model on "
            "the rows that carry its label"
        )


def _metadata(options: TrainingOptions, fitted: _Fitted) -> dict[str, object]:
    return {
        "data_path": str(options.data),
        "data_digest": str(fitted.window.data_digest),
        **fitted.window.metadata(),
        "train_rows": fitted.train_rows,
        "test_rows": len(fitted.test_rows),
        "test_from": str(fitted.cutoff.date()),
        "seed": options.seed,
        "git_commit": git_commit(),
        "trained_on": f"dask {options.dask}" if options.dask else "one machine",
    }


def _log(
    model: TriageModel,
    evaluation: Evaluation,
    test_rows: pd.DataFrame,
    options: TrainingOptions,
    specs: dict[str, ModelSpec],
    evaluation_fit: TriageModel | None,
) -> TrainingRecord:
    configure_tracking(options.data_dir)
    with tempfile.TemporaryDirectory() as folder:
        figures = write_figures(model, evaluation, test_rows, Path(folder))
        return log_training_run(
            model,
            evaluation,
            experiment=options.experiment,
            artifact_root=options.data_dir / "mlartifacts",
            params=_params(options, specs, model, evaluation.report),
            tags=_tags(model),
            figures=figures,
            input_example=test_rows.head(3),
            evaluation_fit=evaluation_fit,
        )


def _params(
    options: TrainingOptions,
    specs: dict[str, ModelSpec],
    model: TriageModel,
    report: dict[str, Any],
) -> dict[str, object]:
    params: dict[str, object] = {
        "seed": options.seed,
        "test_months": options.test_months,
        "maturity_days": options.maturity_days,
        "train_rows": report["rows"]["train"],  # what the evaluated models learned from
        "test_rows": model.metadata["test_rows"],
        "registered_rows": model.metadata["train_rows"],  # what the registered one learned from
        "refit": options.refits,
        "search": options.search,
        "features": len(model.features.feature_names_),
    }
    for task, counts in report["labels"].items():
        params.update({f"labels.{task}.{k}": v for k, v in counts.items()})
    for task, spec in specs.items():
        params.update({f"{task}.{k}": v for k, v in spec.hyperparameters.items()})
    return params


def _tags(model: TriageModel) -> dict[str, str]:
    return {
        "git_commit": str(model.metadata["git_commit"]),
        "mapping_version": model.mapping_version,
        "payer_rules_version": model.features.payer_rules_.version,
        "data_digest": str(model.metadata["data_digest"]),
        "data_path": str(model.metadata["data_path"]),
        "test_from": str(model.metadata["test_from"]),
        **{
            k: str(v)
            for k, v in model.metadata.items()
            if k.startswith(("window.", "evaluation_fit.", "self_training."))
        },
    }


Evaluator = Callable[[dict[str, TriageModel]], list[Evaluation]]


def evaluation_on(
    data: Path, options: TrainingOptions, min_rows: int = DEFAULT_MIN_EVALUATION_ROWS
) -> Evaluator:
    """An evaluator of named models on the same rows of ``data``: the matured rows newer than
    every one's training window (used by promote and evaluate). Baselines learn from the rows
    up to the newest window's end."""
    history = load_history(data)

    def evaluate(models: dict[str, TriageModel]) -> list[Evaluation]:
        windows = [(name, TrainingWindow.of_model(m.metadata, name)) for name, m in models.items()]
        rows = rows_beyond(history, windows, options.maturity_days, min_rows)
        evaluations = [
            evaluate_model(model, rows.baseline, rows.measured, seed=options.seed)
            for model in models.values()
        ]
        for evaluation in evaluations:
            evaluation.report["rows"].update(
                measured_after=str(rows.after.date()), matured_by=str(rows.matured_by.date())
            )
        return evaluations

    return evaluate
