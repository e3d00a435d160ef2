"""``denial-triage quickstart``: the main job, on generated data or a site's own 835 files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from denial_triage.commands import data, serve, train
from denial_triage.commands.remits import quickstart_from_remits
from denial_triage.settings import get_settings
from training.run import TrainingOptions


def quickstart(
    rows: Annotated[
        int, typer.Option(min=1, help="Denials to generate (without --remits).")
    ] = data.DEFAULT_ROWS,
    seed: Annotated[int, typer.Option(help="Random seed.")] = data.DEFAULT_SEED,
    remits: Annotated[
        Path | None,
        typer.Option(
            "--remits",
            help="Start from your own 835 files in this folder instead of generated data: "
            "ingest, link outcomes, train what their labels allow, promote, serve.",
        ),
    ] = None,
    start_service: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve", help="End by starting the service and scoring a sample."
        ),
    ] = True,
) -> None:
    """The main job: generate (or read your 835s), train, evaluate, promote, then serve."""
    if remits is not None:
        quickstart_from_remits(remits, seed=seed, start_service=start_service)
        return
    path = data.write_history(rows, seed, data.default_history_path())
    data.profile(path=path)
    # Every other choice is the train and promote commands' own default.
    options = TrainingOptions(data=path, data_dir=get_settings().data_dir, seed=seed)
    train.train_and_report(options)
    train.promote_and_report(options)
    if start_service:
        serve.serve_with_sample(path)
