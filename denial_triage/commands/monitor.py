"""``denial-triage monitor``: watch payers and models on the outcomes that come back."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from mlflow.exceptions import MlflowException

from denial_triage.commands.db import open_session
from denial_triage.commands.failure import fail
from denial_triage.settings import get_settings
from serving import monitoring
from training.tracking import configure_tracking

app = typer.Typer(
    help="Watch payers and models: payer behaviour alerts, calibration and drift.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Keep each command a sub-command of ``monitor``."""


@app.command()
def models(
    since: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Only denials dated from this day (YYYY-MM-DD)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every figure as JSON.")] = False,
) -> None:
    """The champion on the outcomes recorded since training, per month and payer type:
    calibration, ROC AUC, root-cause accuracy, dollars in the top decile of priority and
    drift, beside its training figures; says whether to retrain, and why."""
    settings = get_settings()
    configure_tracking(settings.data_dir)
    try:
        champion = monitoring.registry_champion()
    except monitoring.NoChampion as exc:
        fail(str(exc), exc)
    except (MlflowException, OSError) as exc:
        fail(f"cannot read the champion from the model registry: {exc}", exc)
    with open_session() as session:
        result = monitoring.monitor_models(
            session,
            report=champion.report,
            version=champion.version,
            reference=champion.reference,
            thresholds=monitoring.Thresholds.from_settings(settings),
            since=since.date() if since else None,
            recent_days=settings.monitoring_recent_days,
            drift_rows=settings.monitoring_drift_rows,
        )
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
        return
    typer.echo("\n".join(monitoring.summary_lines(result)))
