"""``denial-triage monitor``: watch payers and models on the denials and outcomes that come
back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import Annotated

import typer
from mlflow.exceptions import MlflowException

from denial_triage.commands.db import open_session
from denial_triage.commands.failure import fail
from denial_triage.settings import get_settings
from features.contract import ContractFileError, load_denials
from features.labels import plain_label
from serving import live, monitoring, payer_watch
from training.payer_alerts import PayerAlert, detect_payer_alerts
from training.tracking import configure_tracking

app = typer.Typer(
    help="Watch payers and models: payer behaviour alerts, calibration and drift.",
    no_args_is_help=True,
)
DEFAULT_SINCE_DAYS = 30
NEEDED_COLUMNS = ("payer_id", "carc_codes", "procedure_code", "denial_date")


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


@app.command("payers")
def payers(
    since: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Alerts raised on or after this denial date, YYYY-MM-DD (default: 30 days "
            "before today).",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="A history or ingested denials (.parquet or .csv) instead of the service's "
            "database."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the alerts as JSON.")] = False,
) -> None:
    """Payer behaviour alerts: a payer x CARC x procedure family whose denials stepped up
    since DATE, with when it started, the size of the change and the denials affected."""
    day = since.date() if since else live.today() - dt.timedelta(days=DEFAULT_SINCE_DAYS)
    if data is None:
        with open_session() as session:
            alerts = payer_watch.alerts_from_records(session, day)
    else:
        alerts = detect_payer_alerts(_read_denials(data), day)
    if as_json:
        typer.echo(json.dumps([alert_json(alert) for alert in alerts], indent=2))
    else:
        typer.echo(alerts_text(alerts, day))


def _read_denials(path: Path):
    if not path.exists():
        fail(f"{path}: no such file; give a history or ingested denials (.parquet or .csv)")
    try:
        frame = load_denials(path).frame
    except ContractFileError as exc:
        fail(str(exc), exc)
    missing = [name for name in NEEDED_COLUMNS if name not in frame]
    if missing:
        fail(
            f"{path}: no column {', '.join(missing)}; payer alerts need {', '.join(NEEDED_COLUMNS)}"
        )
    frame = frame.dropna(subset=["payer_id", "denial_date"])
    if frame.empty:
        fail(f"{path}: no denial with a payer and a denial date")
    return frame


def alert_json(alert: PayerAlert) -> dict[str, object]:
    """One alert as plain JSON (dates as ISO text, a ratio over a zero baseline as null), its
    worklist link included."""
    fields = dataclasses.asdict(alert)
    fields["ratio"] = alert.ratio if math.isfinite(alert.ratio) else None
    for name in ("start_date", "alarm_date"):
        fields[name] = fields[name].isoformat()
    return {**fields, "worklist_link": alert.worklist_link}


def alerts_text(alerts: list[PayerAlert], since: dt.date) -> str:
    if not alerts:
        return f"no payer behaviour alerts raised since {since}"
    lines = [f"{len(alerts)} payer behaviour alerts raised since {since}:"]
    for alert in alerts:
        lines += ["", *alert_lines(alert)]
    return "\n".join(lines)


def alert_lines(alert: PayerAlert) -> list[str]:
    payer = f"{alert.payer_name} ({alert.payer_id})" if alert.payer_name else alert.payer_id
    family = plain_label("procedure_family", alert.procedure_family)
    remarks = f" with {', '.join(alert.remark_codes)}" if alert.remark_codes else ""
    recovered = ""
    if alert.recovered_before is not None and alert.recovered_after is not None:
        recovered = f"; recovered {alert.recovered_before:.0%} -> {alert.recovered_after:.0%}"
    return [
        f"{payer}: {alert.carc}{remarks} on {family}: {alert.change}"
        f", from {alert.start_date} (alert {alert.alarm_date})",
        f"  {alert.monthly_before:.1f} -> {alert.monthly_after:.1f} denials a month, "
        f"{alert.share_before:.1%} -> {alert.share_after:.1%} of the payer's denials "
        f"(x{alert.ratio:.1f}); {alert.denials_affected:,} denials affected{recovered}",
        f"  worklist: {alert.worklist_link}",
    ]
