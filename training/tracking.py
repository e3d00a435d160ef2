"""MLflow tracking, the model registry and promotion by alias.

Every training run logs its parameters, metrics, data digest and row counts, git commit,
mapping version, figures and evaluation JSON, and registers one pyfunc model version under
``denial-triage``. Promotion moves the ``champion`` alias only when the specs' gates pass and the
candidate beats the current champion on the same test rows by more than their noise (a paired
bootstrap interval); otherwise the candidate becomes ``challenger`` and the reason is recorded
on the version.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, get_model_info, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import Array

from denial_triage.settings import Settings
from features.contract import COLUMNS, Kind, Role, to_csv_frame
from training.evaluate import PROMOTION_METRIC, Evaluation, paired_differences
from training.intervals import Interval
from training.pyfunc import ARTIFACT_KEY, TriagePyfunc, serializable_scores
from training.specs import ModelSpec
from training.triage_model import TriageModel

MODEL_NAME = "denial-triage"
_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}  # no model or no alias
CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_EXPERIMENT = "denial-triage"
# The run's copy of the models as fitted before their test months (see load_measured_model).
EVALUATION_FIT = "evaluation_fit"
EVALUATION_FIT_FILE = "triage_model.joblib"
RUNTIME_PACKAGES = ("lightgbm", "scikit-learn", "pandas", "numpy", "pyarrow", "joblib", "pyyaml")


_uris_we_set: set[str] = set()


def configure_tracking(data_dir: Path) -> str:
    """Point MLflow at the ``mlflow_tracking_uri`` setting, else a SQLite database in the data
    directory.

    The setting is read afresh (not the process-wide cached settings): MLflow writes the URI it
    is given back into ``MLFLOW_TRACKING_URI``, so a value this function set earlier in the
    process is not mistaken for the user's choice.
    """
    user_uri = Settings().mlflow_tracking_uri
    if user_uri in _uris_we_set:
        user_uri = None
    uri = user_uri or f"sqlite:///{(data_dir / 'mlflow.db').resolve()}"
    data_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if not user_uri:
        _uris_we_set.add(uri)
    return uri


def experiment_id(name: str, artifact_root: Path) -> str:
    """The experiment's id, creating it with artifacts under the data directory."""
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = (artifact_root / name).resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def file_digest(path: Path) -> str:
    """SHA-256 of a data file (of every file, in order, for a folder)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def git_commit() -> str:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return completed.stdout.strip()


# ---------------------------------------------------------------------------- logging


@dataclass(frozen=True)
class TrainingRecord:
    run_id: str
    model_version: str
    model_uri: str


def log_training_run(
    model: TriageModel,
    evaluation: Evaluation,
    *,
    experiment: str,
    artifact_root: Path,
    params: dict[str, Any],
    tags: dict[str, str],
    figures: list[Path],
    input_example: pd.DataFrame,
    evaluation_fit: TriageModel | None = None,
) -> TrainingRecord:
    """Log one training run and register its model as a new version of ``denial-triage``;
    ``evaluation_fit``, when the registered model was refitted after evaluation, is kept beside
    it for :func:`load_measured_model`."""
    with mlflow.start_run(experiment_id=experiment_id(experiment, artifact_root)) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(evaluation.flat_metrics())
        mlflow.set_tags(tags)
        mlflow.log_dict(evaluation.report, "evaluation.json")
        for figure in figures:
            mlflow.log_artifact(str(figure), artifact_path="figures")
        if evaluation_fit is not None:
            _log_evaluation_fit(evaluation_fit)
        info = _log_pyfunc(model, input_example)
    version = str(info.registered_model_version)
    client = MlflowClient()
    for name, value in tags.items():  # the version carries its window and provenance too
        client.set_model_version_tag(MODEL_NAME, version, name, value)
    return TrainingRecord(run.info.run_id, version, f"models:/{MODEL_NAME}/{version}")


def _log_evaluation_fit(model: TriageModel) -> None:
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / EVALUATION_FIT_FILE
        joblib.dump(model, bundle)
        mlflow.log_artifact(str(bundle), artifact_path=EVALUATION_FIT)


def _log_pyfunc(model: TriageModel, input_example: pd.DataFrame) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "triage_model.joblib"
        joblib.dump(model, bundle)
        example = example_payload(input_example)
        output = serializable_scores(model.score(input_example))
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=TriagePyfunc(),
            artifacts={ARTIFACT_KEY: str(bundle)},
            signature=model_signature(output),
            input_example=example,
            registered_model_name=MODEL_NAME,
            pip_requirements=[f"{name}=={package_version(name)}" for name in RUNTIME_PACKAGES],
        )


def example_payload(frame: pd.DataFrame) -> pd.DataFrame:
    """Contract rows as a JSON client sends them: ISO dates, lists, no pandas NA."""
    scoring = [c.name for c in COLUMNS if c.role is not Role.LABEL and c.name in frame]
    payload = to_csv_frame(frame[scoring])
    for column in COLUMNS:
        if column.kind is Kind.STRING_LIST and column.name in frame:
            payload[column.name] = [list(items) for items in frame[column.name]]
    return payload.astype(object).where(payload.notna(), None)


_MLFLOW_TYPES = {
    Kind.STRING: DataType.string,
    Kind.DATE: DataType.string,
    Kind.DECIMAL: DataType.double,
    Kind.INTEGER: DataType.long,
    Kind.BOOLEAN: DataType.boolean,
}


def model_signature(output: pd.DataFrame) -> ModelSignature:
    """Input schema from the data contract (optional fields optional), output inferred."""
    inputs = Schema(
        [
            ColSpec(
                Array(DataType.string) if c.kind is Kind.STRING_LIST else _MLFLOW_TYPES[c.kind],
                c.name,
                required=c.role is Role.REQUIRED,
            )
            for c in COLUMNS
            if c.role is not Role.LABEL
        ]
    )
    params = ParamSchema(
        [ParamSpec("explain", DataType.boolean, False), ParamSpec("top", DataType.long, 5)]
    )
    return ModelSignature(inputs=inputs, outputs=infer_signature(output).inputs, params=params)


# ---------------------------------------------------------------------------- registry


def load_triage_model(uri: str) -> TriageModel:
    """The :class:`TriageModel` inside a registered pyfunc (``models:/denial-triage@champion``)."""
    return mlflow.pyfunc.load_model(uri).unwrap_python_model().triage


def load_measured_model(uri: str) -> TriageModel:
    """The model ``evaluate`` and ``promote`` measure for a registered one: its evaluation fit
    when the version was refitted on every matured row after evaluation, else the registered
    model itself.

    A refitted model learned from its test months too, so nothing matured lies beyond its
    window until months pass; the evaluation fit is the same specs and code fitted before those
    months, so measuring it is fair, and at worst modest for the model that serves.
    """
    # The model's MLmodel file names its run; only the model measured is then loaded.
    run_id = get_model_info(uri).run_id
    if run_id and MlflowClient().list_artifacts(run_id, EVALUATION_FIT):
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"{EVALUATION_FIT}/{EVALUATION_FIT_FILE}"
        )
        return joblib.load(path)
    return load_triage_model(uri)


def alias_version(alias: str) -> str | None:
    """The version an alias points to, or None when no version carries it."""
    try:
        return str(MlflowClient().get_model_version_by_alias(MODEL_NAME, alias).version)
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND:
            return None
        raise  # the registry is unreachable or broken: not the same as "no champion"


def latest_version() -> str | None:
    versions = MlflowClient().search_model_versions(f"name='{MODEL_NAME}'")
    newest = max((int(v.version) for v in versions), default=None)
    return None if newest is None else str(newest)


@dataclass(frozen=True)
class PromotionDecision:
    version: str
    alias: str
    reasons: list[str]
    candidate_metric: float
    champion_version: str | None
    champion_metric: float | None


QUALITY_METRICS = ("root_cause.macro_f1", "recovery.roc_auc", "preventable.roc_auc")
PROMOTION_SEED = 14  # the bootstrap's resamples, fixed so a decision can be reproduced


def comparison_failures(differences: dict[str, Interval], version: str) -> list[str]:
    """Why a candidate does not beat the champion on the same rows (empty when it does).

    ``differences`` holds candidate minus champion with its 95% paired bootstrap interval. It
    beats it only when the interval on recovered dollars at 20% capacity lies above zero (a
    gain within noise is no gain) and no quality metric's interval lies entirely below zero.
    """
    failures = [
        f"{name} is significantly worse than champion version {version}'s on the same rows: "
        f"difference {differences[name].describe()} (95% paired bootstrap)"
        for name in QUALITY_METRICS
        if name in differences and differences[name].below_zero
    ]
    gain = differences.get(PROMOTION_METRIC)
    if gain is None:
        failures.append("recovered dollars at 20% capacity could not be compared on the same rows")
    elif not gain.above_zero:
        verdict = "fewer" if gain.below_zero else "no significant gain"
        failures.append(
            f"recovered dollars at 20% capacity: {verdict} over champion version {version} on "
            f"the same rows (difference {_dollars(gain)}, 95% paired bootstrap)"
        )
    return failures


def _dollars(interval: Interval) -> str:
    return f"${interval.estimate:+,.0f} [${interval.low:+,.0f}, ${interval.high:+,.0f}]"


def promote(
    version: str,
    specs: dict[str, ModelSpec],
    evaluate: Callable[[dict[str, TriageModel]], list[Evaluation]],
) -> PromotionDecision:
    """Champion if the gates pass and it beats the champion on the same rows, newer than both
    models' training windows, by more than the noise of those rows; else challenger."""
    models = {f"version {version}": load_measured_model(f"models:/{MODEL_NAME}/{version}")}
    champion = alias_version(CHAMPION)
    if champion is not None and champion != version:
        models[f"champion version {champion}"] = load_measured_model(
            f"models:/{MODEL_NAME}@{CHAMPION}"
        )
    candidate, *others = evaluate(models)
    measured = candidate.flat_metrics()
    failures = candidate.gate_failures(specs)
    differences: dict[str, Interval] = {}
    if not failures and others:
        differences = paired_differences(
            candidate, others[0], (PROMOTION_METRIC, *QUALITY_METRICS), seed=PROMOTION_SEED
        )
        failures += comparison_failures(differences, str(champion))
    alias = CHALLENGER if failures else CHAMPION
    champion_metric = others[0].flat_metrics()[PROMOTION_METRIC] if others else None
    reasons = failures or [_win_reason(champion, measured[PROMOTION_METRIC], differences)]
    _set_alias(version, alias, reasons)
    return PromotionDecision(
        version, alias, reasons, measured[PROMOTION_METRIC], champion, champion_metric
    )


def _win_reason(champion: str | None, candidate: float, differences: dict[str, Interval]) -> str:
    if champion is None or PROMOTION_METRIC not in differences:
        return f"all gates pass and there was no champion (${candidate:,.0f} at 20% capacity)"
    return (
        f"all gates pass and it beats champion version {champion} on the same rows: recovered "
        f"dollars at 20% capacity {_dollars(differences[PROMOTION_METRIC])} (95% paired "
        "bootstrap), no quality metric significantly worse"
    )


def _set_alias(version: str, alias: str, reasons: list[str]) -> None:
    client = MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, alias, version)
    client.set_model_version_tag(
        MODEL_NAME, version, "promotion", f"{alias}: " + " | ".join(reasons)
    )
