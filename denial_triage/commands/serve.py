"""Service commands: run the API, and score a file offline with the same code path."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from denial_triage.settings import get_settings
from features.contract import (
    COLUMNS,
    ContractFileError,
    DenialWriter,
    RowError,
    load_denials,
    read_raw,
    validate,
)
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
    dask: str = typer.Option(
        None, help="Spread the backlog over a Dask cluster by partition: an address, or 'local'."
    ),
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
        typer.echo("error: --skip-invalid needs --rejects FILE, and runs without --dask", err=True)
        raise typer.Exit(1)
    settings = get_settings()
    configure_tracking(settings.data_dir)
    try:
        model = _champion(ModelStore(settings.data_dir / "model-cache"))
        if dask:
            rows, skipped = _score_on_dask(model.triage, data, out, explain, dask), 0
        else:
            rows, skipped = _score_here(model.triage, data, out, explain, rejects)
    except (ModelUnavailable, ModelRejected, ContractFileError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"scored {rows:,} denials with model version {model.version} into {out}")
    if skipped:
        typer.echo(f"skipped {skipped:,} rows that break the contract: see {rejects}", err=True)
        raise typer.Exit(2)


def score_partition(model: object, frame: object, explain: bool) -> object:
    """One partition's flat scores: the function every worker runs (same as the API's)."""
    return flatten_results(score_denials(model, frame, explain=explain))


def _score_here(
    model: object, data: Path, out: Path, explain: bool, rejects: Path | None = None
) -> tuple[int, int]:
    """Score the file's rows; with ``rejects``, those breaking the contract are written there
    with their errors and the others scored. Returns rows scored and rows skipped."""
    raw = read_raw(data)
    result = validate(raw)
    table_wide = any(e.row is None for e in result.errors)
    if not result.ok and (rejects is None or table_wide):
        shown = "; ".join(str(e) for e in result.errors[:20])
        raise ValueError(f"{data}: {len(result.bad_rows):,} rows break the contract: {shown}")
    frame = result.valid_rows()
    if rejects is not None:
        write_rejects(raw, result.errors, rejects)
    with _progress() as progress, DenialWriter(out) as writer:
        task = progress.add_task("scoring", total=len(frame))
        for start in range(0, len(frame), BATCH_ROWS):
            chunk = frame.iloc[start : start + BATCH_ROWS]
            writer.write(score_partition(model, chunk, explain))
            progress.advance(task, len(chunk))
    return len(frame), len(result.bad_rows)


def write_rejects(raw: pd.DataFrame, errors: list[RowError], path: Path) -> None:
    """The rows that break the contract, as read (the contract's columns only: nothing else
    the file carries, such as a patient's name, is copied), each with its 1-based ``row`` and
    its ``errors`` ("column: reason; ..."). Written, empty, even when no row was skipped, so a
    pipeline never reads a stale file."""
    by_row: dict[int, list[str]] = {}
    for error in errors:
        by_row.setdefault(int(error.row or 0), []).append(f"{error.column}: {error.reason}")
    contract = [c.name for c in COLUMNS if c.name in raw.columns]
    rows = sorted(by_row)
    bad = raw.iloc[[row - 1 for row in rows]][contract].astype("string")
    bad.insert(0, "row", rows)
    bad["errors"] = ["; ".join(by_row[row]) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        bad.to_parquet(path, index=False)
    elif path.suffix.lower() == ".csv":
        bad.to_csv(path, index=False)
    else:
        raise ContractFileError(f"{path}: unknown extension; use .parquet or .csv")


def _score_on_dask(model: object, data: Path, out: Path, explain: bool, address: str) -> int:
    """Each partition is scored on the worker that holds it; results are written in order."""
    from training.distributed import dask_client, read_partitioned

    with dask_client(address) as client:
        partitions = client.compute(read_partitioned(data).to_delayed())
        shared = client.scatter(model, broadcast=True)
        futures = [client.submit(score_partition, shared, part, explain) for part in partitions]
        rows = 0
        with _progress() as progress, DenialWriter(out) as writer:
            task = progress.add_task("scoring on the cluster", total=len(futures))
            for future in futures:
                scored = future.result()
                writer.write(scored)
                rows += len(scored)
                progress.advance(task)
    return rows


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
            typer.echo(
                f"error: {host}:{port} is already in use ({exc.strerror}): stop the service "
                "listening there, or choose another port with DENIAL_TRIAGE_PORT",
                err=True,
            )
            raise typer.Exit(1) from exc


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
