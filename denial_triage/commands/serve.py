"""Service commands: run the API, and score a file offline with the same code path."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from denial_triage.settings import get_settings
from features.contract import ContractFileError, DenialWriter, load_denials
from serving.scoring import (
    ModelRejected,
    ModelStore,
    ModelUnavailable,
    flatten_results,
    score_denials,
)
from training.tracking import configure_tracking

BATCH_ROWS = 5_000


def serve(
    host: str = typer.Option(None, help="Interface to bind [default: settings]."),
    port: int = typer.Option(None, help="Port [default: settings]."),
) -> None:
    """Start the triage service (uvicorn) with the champion model."""
    import uvicorn

    from serving.app import create_app

    settings = get_settings()
    configure_tracking(settings.data_dir)
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )


def score(
    data: Path = typer.Option(..., exists=True, help="Contract file to score (.parquet or .csv)."),
    out: Path = typer.Option(..., help="Scores, .parquet or .csv."),
    explain: bool = typer.Option(True, help="Include SHAP reasons (as JSON columns)."),
) -> None:
    """Score a contract file with the champion, through the same code as the API."""
    settings = get_settings()
    configure_tracking(settings.data_dir)
    try:
        model = _champion(ModelStore(settings.data_dir / "model-cache"))
        result = load_denials(data)
    except (ModelUnavailable, ModelRejected, ContractFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not result.ok:
        for error in result.errors[:20]:
            typer.echo(f"{data}: {error}", err=True)
        typer.echo(
            f"{data}: {len(result.bad_rows):,} rows break the contract; nothing scored", err=True
        )
        raise typer.Exit(1)
    frame = result.frame
    with _progress() as progress, DenialWriter(out) as writer:
        task = progress.add_task("scoring", total=len(frame))
        for start in range(0, len(frame), BATCH_ROWS):
            chunk = frame.iloc[start : start + BATCH_ROWS]
            writer.write(flatten_results(score_denials(model.triage, chunk, explain=explain)))
            progress.advance(task, len(chunk))
    typer.echo(f"scored {len(frame):,} denials with model version {model.version} into {out}")


def _champion(store: ModelStore):
    try:
        version = store.champion_version()
    except Exception:  # registry unreachable: fall back to the cached champion
        return store.load_cached()
    return store.load_version(version) if version else store.load_cached()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )
