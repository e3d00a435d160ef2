"""The ``denial-triage`` console command: thin sub-commands over plain functions."""

from __future__ import annotations

import typer

from denial_triage.commands import codes, data, db, ingest, keys, mapping, serve, train
from training.fit import DEFAULT_MATURITY_DAYS, DEFAULT_TEST_MONTHS
from training.windows import DEFAULT_MIN_EVALUATION_ROWS

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
app.add_typer(codes.app, name="codes", help="CARC and RARC reference: labels and official lists.")
app.add_typer(mapping.app, name="mapping")
app.command()(serve.serve)
app.command()(serve.score)
app.add_typer(keys.app, name="keys", help="API keys of the service: create, list, revoke.")
app.add_typer(db.app, name="db", help="The service's records database.")


@app.command()
def quickstart(
    rows: int = typer.Option(200_000, min=1, help="Denials to generate."),
    seed: int = typer.Option(7, help="Random seed."),
    start_service: bool = typer.Option(
        True, "--serve/--no-serve", help="End by starting the service and scoring a sample."
    ),
) -> None:
    """The main job on embedded defaults: generate, train, evaluate, promote, then serve."""
    path = data.default_history_path()
    data.generate(rows=rows, seed=seed, out=path)
    data.profile(path=path)
    train.train(
        data=path,
        experiment="denial-triage",
        seed=seed,
        test_months=DEFAULT_TEST_MONTHS,
        maturity_days=DEFAULT_MATURITY_DAYS,
        dask=None,
        include_feedback=False,
    )
    train.promote(
        data=path,
        version=None,
        maturity_days=DEFAULT_MATURITY_DAYS,
        min_rows=DEFAULT_MIN_EVALUATION_ROWS,
    )
    if start_service:
        serve.serve_with_sample(path)
