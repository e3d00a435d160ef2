"""Service commands: run the API, and score a file offline with the same code path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from denial_triage.commands.failure import fail
from denial_triage.settings import get_settings
from features.contract import ContractFileError, load_denials
from serving.batch import score_file, score_file_on_dask
from serving.scoring import ModelRejected, ModelStore, ModelUnavailable
from training.tracking import configure_tracking


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind [default: settings].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: settings].")] = None,
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
    data: Annotated[
        Path, typer.Option(exists=True, help="Contract file to score (.parquet or .csv).")
    ],
    out: Annotated[Path, typer.Option(help="Scores, .parquet or .csv.")],
    explain: Annotated[bool, typer.Option(help="Include SHAP reasons (as JSON columns).")] = True,
    dask: Annotated[
        str | None,
        typer.Option(
            help="Spread the backlog over a Dask cluster by partition: an address, or 'local'."
        ),
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Score the rows that keep the contract and write the others to --rejects "
            "(exit 2 when any was skipped) instead of refusing the file (exit 1).",
        ),
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="With --skip-invalid: the skipped rows and their errors (.csv/.parquet)."
        ),
    ] = None,
) -> None:
    """Score a contract file with the champion, through the same code as the API.

    Exit codes: 0 every row scored; 1 failure (no model, unreadable file, or a row breaking
    the contract without --skip-invalid); 2 the valid rows scored and the others written to
    --rejects.
    """
    if skip_invalid and (rejects is None or dask):
        fail("--skip-invalid needs --rejects FILE, and runs without --dask")
    settings = get_settings()
    configure_tracking(settings.data_dir)
    try:
        model = ModelStore(settings.data_dir / "model-cache").champion()
        with _progress() as bar:
            if dask:
                shown = _advance(bar, "scoring on the cluster")
                rows, skipped = score_file_on_dask(model.triage, data, out, explain, dask, shown), 0
            else:
                shown = _advance(bar, "scoring")
                rows, skipped = score_file(model.triage, data, out, explain, shown, rejects)
    except (ModelUnavailable, ModelRejected, ContractFileError, ValueError) as exc:
        fail(str(exc), exc)
    typer.echo(f"scored {rows:,} denials with model version {model.version} into {out}")
    if skipped:
        typer.echo(f"skipped {skipped:,} rows that break the contract: see {rejects}", err=True)
        raise typer.Exit(2)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )


def _advance(bar: Progress, description: str) -> Callable[[int, int], None]:
    """A batch-scoring progress callback drawing one task of ``bar``."""
    task = bar.add_task(description, total=None)
    return lambda done, total: bar.update(task, completed=done, total=total)


def serve_with_sample(sample: Path, rows: int = 5) -> None:
    """Start the service and, once it is ready, score a few denials of ``sample`` over HTTP,
    printing the key it made so the user can go on calling it (the main job's last step)."""
    import threading

    import uvicorn

    from serving.app import create_app

    settings = get_settings()
    refuse_a_taken_port(settings.host, settings.port)
    configure_tracking(settings.data_dir)
    key = _quickstart_key(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host=settings.host, port=settings.port, log_config=None
        )
    )
    base = f"http://{settings.host}:{settings.port}"
    threading.Thread(target=_score_sample, args=(base, key, sample, rows), daemon=True).start()
    server.run()


def refuse_a_taken_port(host: str, port: int) -> None:
    """Exit 1 naming the port when something already listens on it: the sample would
    otherwise be sent to that other service (and refused with a 401 for the new key)."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            fail(
                f"{host}:{port} is already in use ({exc.strerror}): stop the service "
                "listening there, or choose another port with DENIAL_TRIAGE_PORT",
                exc,
            )


def _quickstart_key(settings) -> str:
    from serving import repository
    from serving.database import make_engine, session_factory, upgrade_database

    upgrade_database(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as session:
            name = f"quickstart-{len(repository.list_api_keys(session)) + 1}"
            return repository.create_api_key(session, "admin", name)[0]
    finally:
        engine.dispose()


def _score_sample(base: str, key: str, sample: Path, rows: int) -> None:
    import json
    import time
    import urllib.error
    import urllib.request

    from training.tracking import example_payload

    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as ready:
                if ready.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    denials = json.loads(
        example_payload(load_denials(sample).frame.tail(rows)).to_json(orient="records")
    )
    request = urllib.request.Request(
        f"{base}/v1/score",
        data=json.dumps({"denials": denials}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
        typer.echo(f"\nscored {len(denials)} denials at {base}/v1/score (HTTP {response.status}):")
    for result in body.get("results", []):
        typer.echo(sample_line(result))
    typer.echo(
        f"\nthe service runs at {base}: reviewers' pages at {base}/ui/, the API's schema at "
        f"{base}/v1/openapi.json (send the key below); Ctrl-C stops it."
    )
    typer.echo(f"an admin API key was made for you (shown once): {key}")


def sample_line(result: dict) -> str:
    """One scored denial in a line. A model without a root-cause model answers the governed
    mapping's cause with no probability (trained on remittances alone, for instance)."""
    cause = result["root_cause"]
    certainty = (
        f"{cause['probability']:.0%}" if cause["probability"] is not None else "by the mapping"
    )
    return (
        f"  {result['denial_id']}: {cause['category']} ({certainty}), "
        f"recovery {result['recovery']['probability']:.0%}, "
        f"priority {result['priority']['score']:,.0f}, {result['routing']['owner_queue']} / "
        f"{result['routing']['action_path']}"
    )
