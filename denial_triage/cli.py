"""The ``denial-triage`` console command: thin sub-commands over plain functions."""

from __future__ import annotations

from pathlib import Path

import typer

from denial_triage.commands import (
    codes,
    data,
    db,
    ingest,
    keys,
    label_queue,
    mapping,
    plan,
    serve,
    train,
)
from denial_triage.commands.remits import quickstart_from_remits
from denial_triage.settings import get_settings
from training.run import TrainingOptions

app = typer.Typer(
    name="denial-triage",
    help="Triage medical billing denials: root cause, recovery likelihood, preventability.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(data.generate)
app.command()(data.validate)
app.command()(data.profile)
app.command()(data.schema)
app.command()(ingest.ingest)
app.command("link-outcomes")(ingest.link_outcomes)
app.command()(train.train)
app.command()(train.evaluate)
app.command()(train.promote)
app.command()(train.backtest)
app.command("label-queue")(label_queue.label_queue_command)
app.command()(plan.plan)
app.add_typer(codes.app, name="codes", help="CARC and RARC reference: labels and official lists.")
app.add_typer(mapping.app, name="mapping")
app.command()(serve.serve)
app.command()(serve.score)
app.add_typer(keys.app, name="keys", help="API keys of the service: create, list, revoke.")
app.add_typer(db.app, name="db", help="The service's records database.")


@app.command()
def quickstart(
    rows: int = typer.Option(200_000, min=1, help="Denials to generate (without --remits)."),
    seed: int = typer.Option(7, help="Random seed."),
    remits: Path = typer.Option(
        None,
        "--remits",
        help="Start from your own 835 files in this folder instead of generated data: ingest, "
        "link outcomes, train what their labels allow, promote, serve.",
    ),
    start_service: bool = typer.Option(
        True, "--serve/--no-serve", help="End by starting the service and scoring a sample."
    ),
) -> None:
    """The main job: generate (or read your 835s), train, evaluate, promote, then serve."""
    if remits is not None:
        quickstart_from_remits(remits, seed=seed, start_service=start_service)
        return
    path = data.write_history(rows, seed, data.default_history_path())
    data.profile(path=path)
    options = TrainingOptions(data=path, data_dir=get_settings().data_dir, seed=seed)
    train.train_and_report(options)
    train.promote_and_report(options)
    if start_service:
        serve.serve_with_sample(path)
