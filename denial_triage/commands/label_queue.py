"""The ``label-queue`` command: which denials reviewers should label next."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from denial_triage.commands.failure import fail
from features.contract import ContractFileError
from training.label_queue import LabelQueueError, label_queue
from training.run import TrainingDataError, load_history

QUEUE_SUFFIXES = (".csv", ".parquet")


def label_queue_command(
    data: Annotated[
        Path,
        typer.Option(
            help="Contract history (.parquet or .csv); labels on some rows, most without."
        ),
    ],
    budget: Annotated[
        int, typer.Option(help="How many denials to queue for labelling (at least 1).")
    ],
    out: Annotated[Path, typer.Option(help="Queue file to write: .csv or .parquet.")],
    seed: Annotated[
        int, typer.Option(help="Random seed: the same history and seed give the same queue.")
    ] = 7,
) -> None:
    """Rank the unlabelled denials whose root-cause and preventable labels teach most."""
    _check_request(data, budget, out)
    try:
        history = load_history(data)
        queue = label_queue(history, budget, seed=seed)
    except (ContractFileError, TrainingDataError, LabelQueueError) as exc:
        fail(str(exc))
    _write(queue, out)
    if len(queue) < budget:
        typer.echo(f"only {len(queue):,} denials of {data} carry no root_cause label: all queued")
    typer.echo(f"wrote {len(queue):,} denials to label to {out}, best first")


def _check_request(data: Path, budget: int, out: Path) -> None:
    """Refuse before any work: a missing history, a budget under 1, an unknown file kind."""
    if not data.is_file():
        fail(f"{data}: no such file")
    if budget < 1:
        fail(f"--budget must be at least 1 denial; got {budget}")
    if out.suffix.lower() not in QUEUE_SUFFIXES:
        fail(f"{out}: unknown extension {out.suffix!r}; use .csv or .parquet")


def _write(queue: pd.DataFrame, out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".csv":
            queue.to_csv(out, index=False)
        else:
            queue.to_parquet(out, index=False)
    except OSError as exc:
        fail(f"cannot write {out}: {exc}")
