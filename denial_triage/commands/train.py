"""Model commands: train, evaluate, promote and backtest."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from mlflow.exceptions import MlflowException
from rich.console import Console

from denial_triage.commands.failure import fail
from denial_triage.settings import get_settings
from training.backtest import (
    BACKTEST_EXPERIMENT,
    DEFAULT_FOLD_MONTHS,
    DEFAULT_FOLDS,
    backtest_params,
    format_table,
    log_backtest,
    run_backtest,
)
from training.fit import DEFAULT_MATURITY_DAYS, DEFAULT_TEST_MONTHS
from training.run import (
    TrainingDataError,
    TrainingOptions,
    TrainingResult,
    evaluation_on,
    load_history,
)
from training.run import train as run_training
from training.specs import load_specs
from training.tracking import (
    CHAMPION,
    EVALUATION_FIT,
    MODEL_NAME,
    PromotionDecision,
    alias_version,
    configure_tracking,
    experiment_id,
    file_digest,
    latest_version,
    load_measured_model,
)
from training.tracking import (
    promote as promote_version,
)
from training.windows import DEFAULT_MIN_EVALUATION_ROWS

if TYPE_CHECKING:
    import pandas as pd

console = Console(stderr=True)
DATA_HELP = "Labelled contract history (.parquet or .csv)."
MATURITY_HELP = "Newest days of the history left out: their outcomes are still arriving."
MIN_ROWS_HELP = "Refuse when fewer matured rows than this lie beyond the models' training windows."
# Options several commands take.
History = Annotated[Path, typer.Option(exists=True, help=DATA_HELP)]
MaturityDays = Annotated[int, typer.Option(min=0, help=MATURITY_HELP)]
MinRows = Annotated[int, typer.Option(min=1, help=MIN_ROWS_HELP)]


def _options(
    data: Path,
    experiment: str,
    seed: int,
    test_months: int = DEFAULT_TEST_MONTHS,
    maturity_days: int = DEFAULT_MATURITY_DAYS,
    dask: str | None = None,
) -> TrainingOptions:
    return TrainingOptions(
        data=data,
        data_dir=get_settings().data_dir,
        experiment=experiment,
        seed=seed,
        test_months=test_months,
        maturity_days=maturity_days,
        dask=dask,
    )


def train(
    data: History,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "denial-triage",
    seed: Annotated[int, typer.Option(help="Random seed for the models.")] = 7,
    test_months: Annotated[
        int, typer.Option(min=1, help="Newest matured months held out.")
    ] = DEFAULT_TEST_MONTHS,
    maturity_days: Annotated[
        int, typer.Option(min=0, help="Newest days left out: their outcomes are still arriving.")
    ] = DEFAULT_MATURITY_DAYS,
    dask: Annotated[
        str | None,
        typer.Option(
            help="Train on a Dask cluster: a scheduler address, or 'local' for a LocalCluster."
        ),
    ] = None,
    include_feedback: Annotated[
        bool,
        typer.Option(
            help="Lay the service's reviewer feedback and outcomes over the history's labels."
        ),
    ] = False,
    refit: Annotated[
        bool,
        typer.Option(
            help="After evaluation, fit again on every matured denial (test months included) "
            "and register that; --no-refit registers the evaluated fit (quicker)."
        ),
    ] = True,
    search: Annotated[
        bool,
        typer.Option(
            help="Choose the root cause's hyperparameters on the newest slice of the training "
            "months first (13 fits; the test months never see it)."
        ),
    ] = False,
) -> None:
    """Fit the three models, evaluate them against baselines, log to MLflow and register."""
    options = _options(data, experiment, seed, test_months, maturity_days, dask)
    options = replace(options, refit=refit, search=search)
    if dask and search:
        fail("--search is not supported with --dask yet")
    if include_feedback:
        if dask:
            fail("--include-feedback is not supported with --dask yet")
        options = replace(options, feedback=service_feedback(get_settings().resolved_database_url))
    train_and_report(options)
    typer.echo(f"next: denial-triage promote --data {data}")


def service_feedback(database_url: str) -> pd.DataFrame:
    """The service's feedback as contract labels, one row per denial."""
    from serving.database import make_engine, session_factory
    from serving.repository import feedback_frame

    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            return feedback_frame(session)
    finally:
        engine.dispose()


def train_and_report(options: TrainingOptions) -> TrainingResult:
    """Train, register and print what was fitted (and why not), the evaluation and the gates;
    exit 1 when the history cannot be trained on."""
    try:
        with console.status("training") as status:
            result = run_training(options, progress=lambda step: status.update(step))
    except (TrainingDataError, ValueError) as exc:
        fail(str(exc), exc)
    report = result.evaluation.report
    typer.echo(f"registered {result.record.model_uri} (run {result.record.run_id})")
    typer.echo("labels:\n  " + "\n  ".join(c.message() for c in result.labels.values()))
    typer.echo(_summary(report))
    failures = result.evaluation.gate_failures(load_specs())
    typer.echo("gates: all pass" if not failures else "gates failing:\n  " + "\n  ".join(failures))
    return result


def evaluate(
    data: History,
    model: Annotated[
        str, typer.Option(help="Model URI to evaluate.")
    ] = f"models:/{MODEL_NAME}@{CHAMPION}",
    maturity_days: MaturityDays = DEFAULT_MATURITY_DAYS,
    min_rows: MinRows = DEFAULT_MIN_EVALUATION_ROWS,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full evaluation as JSON.")
    ] = False,
) -> None:
    """Evaluate a registered model beside the baselines, on the matured denials of a history
    that are newer than its training window (never on rows it learned from)."""
    configure_tracking(get_settings().data_dir)
    options = _options(data, "", 7, maturity_days=maturity_days)
    try:
        (evaluation,) = evaluation_on(data, options, min_rows)({model: load_measured_model(model)})
    except (TrainingDataError, ValueError, MlflowException, OSError) as exc:
        fail(str(exc), exc)
    if as_json:
        typer.echo(json.dumps(evaluation.report, indent=2))
        return
    typer.echo(_measured_rows(evaluation.report))
    typer.echo(_summary(evaluation.report))


def promote(
    data: Annotated[
        Path,
        typer.Option(
            exists=True, help="History whose rows newer than both models' windows measure them."
        ),
    ],
    version: Annotated[
        str | None, typer.Option(help="Model version to promote [default: the newest].")
    ] = None,
    maturity_days: MaturityDays = DEFAULT_MATURITY_DAYS,
    min_rows: MinRows = DEFAULT_MIN_EVALUATION_ROWS,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Also report the version against the champion on the live denials it scored "
            "in shadow as challenger, with the outcomes recorded since (the decision itself "
            "stays the offline one).",
        ),
    ] = False,
) -> None:
    """Make a version champion if its gates pass and it beats the champion on rows neither
    learned from, else challenger."""
    options = _options(data, "", 7, maturity_days=maturity_days)
    decision = promote_and_report(options, version, min_rows)
    if live:
        report_live(decision.version, get_settings().resolved_database_url)


def report_live(version: str, database_url: str) -> None:
    """Print the live comparison of ``version``'s shadow scores from the service's records."""
    from sqlalchemy.exc import SQLAlchemyError

    from serving.database import display_url, make_engine, session_factory
    from serving.live_comparison import live_comparison

    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            comparison = live_comparison(session, version)
    except SQLAlchemyError as exc:
        typer.echo(
            f"live: the service's records at {display_url(database_url)} cannot be read "
            f"({type(exc).__name__}); is the service's database migrated?"
        )
        return
    finally:
        engine.dispose()
    if comparison is None:
        typer.echo(
            f"live: version {version} has no shadow scores yet; serve it as challenger "
            "(`shadow_share` above 0) to compare it on live denials"
        )
        return
    typer.echo("\n".join(comparison.lines()))


def promote_and_report(
    options: TrainingOptions,
    version: str | None = None,
    min_rows: int = DEFAULT_MIN_EVALUATION_ROWS,
) -> PromotionDecision:
    """Promote ``version`` (the newest when None), measured on the rows of ``options.data``
    newer than its and the champion's training windows, and print the decision; exit 1 when
    there is nothing to promote or it cannot be measured."""
    configure_tracking(options.data_dir)
    candidate = version or latest_version()
    if candidate is None:
        fail(f"no {MODEL_NAME} model is registered; run `denial-triage train` first")
    try:
        evaluate = evaluation_on(options.data, options, min_rows)
        decision = promote_version(candidate, load_specs(), evaluate)
    except (TrainingDataError, ValueError, MlflowException) as exc:
        fail(str(exc), exc)
    typer.echo(f"version {decision.version} is now {decision.alias}")
    for reason in decision.reasons:
        typer.echo(f"  {reason}")
    typer.echo(f"champion: version {alias_version(CHAMPION)}")
    return decision


def _measured_rows(report: dict) -> str:
    rows = report["rows"]
    measured = (
        f"measured on {rows['test']:,} matured denials after {rows['measured_after']} "
        f"(its training window's end) up to {rows['matured_by']}"
    )
    if report.get("model", {}).get("fit") == EVALUATION_FIT:
        measured += (
            "; the version was refitted on its test months too, so its evaluation fit "
            "(the same specs, fitted before them) is what is measured"
        )
    return measured


def _summary(report: dict) -> str:
    """The evaluation in a few lines: each measured model, then the rankings."""
    ranking = report["prioritization"]["rankings"]
    lines = [
        _root_cause_line(report.get("root_cause")),
        _binary_line("recovery", report["recovery"]) + _still_open(report),
        _binary_line("preventable", report.get("preventable")),
        "share of the oracle's recovered dollars when working the top 10% / 20% / 30%:",
    ]
    lines += _ranking_lines(ranking)
    lines.append("... working until 10% / 20% / 30% of the hours are spent (oracle: per hour):")
    lines += _ranking_lines(report["prioritization"]["by_hours"]["rankings"])
    return "\n".join(lines)


def _ranking_lines(ranking: dict) -> list[str]:
    lines = []
    for name, shares in ranking.items():
        parts = " / ".join(f"{v['share_of_oracle']:.1%}" for v in shares.values())
        lines.append(f"  {name:<24} {parts}")
    return lines


def _root_cause_line(root: dict | None) -> str:
    if root is None:
        return "root cause   not trained: scores take the governed mapping's cause, for review"
    if not root.get("rows"):
        return "root cause   not measured: no test row carries a root_cause label"
    baselines = root["baselines"]
    return (
        f"root cause   accuracy {root['accuracy']:.3f}  macro-F1 {root['macro_f1']:.3f}  "
        f"on {root['rows']:,} labelled rows (best code lookup "
        f"{baselines['best_code_lookup']['accuracy']:.3f}, governed mapping "
        f"{baselines['governed_mapping']['accuracy']:.3f}, "
        f"logistic regression {baselines['logistic_regression']['accuracy']:.3f})"
    )


def _still_open(report: dict) -> str:
    """What the recovery figures leave out: test denials without an outcome yet. They are the
    slowest to resolve, where write-offs gather, so the resolved ones lean towards recovery and
    the ECE reads high even for a calibrated model (README, "Model quality")."""
    rows = report.get("rows", {})
    if report.get("recovery") is None or "test_resolved" not in rows:
        return ""
    still_open = int(rows["test"]) - int(rows["test_resolved"])
    if still_open <= 0:
        return ""
    return (
        f" (resolved; {still_open:,} still open left out: the slowest to resolve, where "
        "write-offs gather)"
    )


def _binary_line(task: str, measured: dict | None) -> str:
    if measured is None:
        return f"{task:<12} not trained: scores carry no {task} probability"
    if not measured.get("rows"):
        return f"{task:<12} not measured: no test row carries its label"
    return (
        f"{task:<12} ROC AUC {measured['roc_auc']:.3f}  Brier {measured['brier']:.3f}  "
        f"ECE {measured['expected_calibration_error']:.3f}  on {int(measured['rows']):,} rows"
    )


def backtest(
    data: History,
    folds: Annotated[int, typer.Option(min=1, help="Test windows, newest last.")] = DEFAULT_FOLDS,
    fold_months: Annotated[
        int, typer.Option(min=1, help="Months per test window.")
    ] = DEFAULT_FOLD_MONTHS,
    maturity_days: MaturityDays = DEFAULT_MATURITY_DAYS,
    seed: Annotated[int, typer.Option(help="Random seed for the models and the bootstrap.")] = 7,
    min_rows: Annotated[
        int, typer.Option(min=2, help="Refuse a fold with fewer test or training rows.")
    ] = DEFAULT_MIN_EVALUATION_ROWS,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = BACKTEST_EXPERIMENT,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
) -> None:
    """Refit on expanding time windows and score each next window: every headline figure per
    fold, and its mean over folds with a 95% bootstrap interval; logged to MLflow as one
    parent run with a child run per fold."""
    settings = get_settings()
    try:
        history = load_history(data)
        with console.status("backtesting") as status:
            result = run_backtest(
                history,
                load_specs(),
                folds=folds,
                fold_months=fold_months,
                maturity_days=maturity_days,
                seed=seed,
                min_rows=min_rows,
                progress=lambda step: status.update(step),
            )
        configure_tracking(settings.data_dir)
        experiment_folder = experiment_id(experiment, settings.data_dir / "mlartifacts")
        params = backtest_params(data, folds, fold_months, maturity_days, seed, file_digest(data))
        run_id = log_backtest(result, params, experiment_folder)
    except (TrainingDataError, ValueError, MlflowException) as exc:
        fail(str(exc), exc)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    typer.echo(
        f"backtest run {run_id} ({folds} folds of {fold_months} months, matured by "
        f"{result.matured_by.date()}):"
    )
    typer.echo(format_table(result))
