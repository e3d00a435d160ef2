"""Data commands: generate a synthetic history, validate a contract file, export the schema."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from denial_triage.commands.failure import fail
from denial_triage.settings import get_settings
from features.contract import (
    LABEL_COLUMNS,
    ContractFileError,
    ValidationResult,
    load_denials,
    scoring_json_schema,
)
from features.mapping import load_mapping
from ingest.writer import write_remittances
from training.profile import profile_history
from training.synthetic import default_truth_path, generate_history
from training.synthetic_changes import default_changes_truth_path

console = Console(stderr=True)
DEFAULT_ROWS = 200_000  # the main job's history: enough for every model and its test months
DEFAULT_SEED = 7


def default_history_path() -> Path:
    """Where the main job writes its generated history."""
    return get_settings().history_dir / "history.parquet"


def generate(
    rows: Annotated[int, typer.Option(min=1, help="Number of denials to generate.")] = DEFAULT_ROWS,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same history.")
    ] = DEFAULT_SEED,
    out: Annotated[
        Path | None,
        typer.Option(help="Output .parquet or .csv [default: DATA_DIR/history/history.parquet]."),
    ] = None,
    as_835: Annotated[
        Path | None,
        typer.Option(
            "--as-835",
            help="Also write the history as X12 835 remittances in this folder: denials on their "
            "denial dates, recoveries as later payments.",
        ),
    ] = None,
    defect_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="With --as-835: share of denied claims and of files damaged by the defects real "
            "payers' files carry (e.g. 0.01).",
        ),
    ] = 0.0,
    with_truth: Annotated[
        bool,
        typer.Option(
            "--with-truth",
            help="Also write the generator's true root cause, recovery and preventable "
            "probabilities per denial_id to OUT's stem + .truth.parquet (benchmarks only).",
        ),
    ] = False,
    payer_changes: Annotated[
        int,
        typer.Option(
            min=0,
            help="Inject this many payer behaviour changes: a payer x CARC x procedure family "
            "whose denials multiply from an onset date (extra denials on top of --rows); with "
            "--with-truth, recorded in OUT's stem + .payer_changes.csv.",
        ),
    ] = 0,
    overturn_changes: Annotated[
        int,
        typer.Option(
            min=0,
            help="Inject this many changes in outcomes: a payer x CARC x procedure family whose "
            "recovered share falls from an onset (the outcomes decided from then on); with "
            "--with-truth, recorded beside the payer changes.",
        ),
    ] = 0,
) -> None:
    """Generate a realistic synthetic denial history that meets the data contract."""
    target = write_history(
        rows,
        seed,
        out or default_history_path(),
        with_truth=with_truth,
        payer_changes=payer_changes,
        overturn_changes=overturn_changes,
    )
    if as_835 is not None:
        _write_835(target, as_835, defect_share, seed)


def write_history(
    rows: int,
    seed: int,
    target: Path,
    *,
    with_truth: bool = False,
    payer_changes: int = 0,
    overturn_changes: int = 0,
) -> Path:
    """Generate ``rows`` denials into ``target``, showing progress and the time taken."""
    started = time.perf_counter()
    truth = default_truth_path(target) if with_truth else None
    any_changes = payer_changes or overturn_changes
    changes = default_changes_truth_path(target) if with_truth and any_changes else None
    with _progress() as progress:
        task = progress.add_task("generating", total=rows)
        try:
            generate_history(
                rows,
                seed,
                target,
                on_chunk=lambda n: progress.advance(task, n),
                truth_out=truth,
                payer_changes=payer_changes,
                changes_out=changes,
                overturn_changes=overturn_changes,
            )
        except ValueError as exc:  # too few busy cells or too short a period for the changes
            fail(f"cannot generate {target}: {exc}", exc)
    seconds = time.perf_counter() - started
    typer.echo(f"wrote {rows:,} denials to {target} in {seconds:.1f} s (seed {seed})")
    if payer_changes:
        typer.echo(f"injected {payer_changes} payer behaviour changes (their denials on top)")
    if overturn_changes:
        typer.echo(f"injected {overturn_changes} changes in outcomes (recovered shares down)")
    if truth is not None:
        typer.echo(f"wrote the generator's truth of each denial to {truth} (benchmarks only)")
    if changes is not None:
        typer.echo(f"wrote the injected payer changes to {changes} (benchmarks only)")
    return target


def _write_835(history: Path, folder: Path, defect_share: float, seed: int) -> None:
    """The generated history as remittances; exit 1 when the folder cannot be written."""
    started = time.perf_counter()
    try:
        # Typed through the contract, so a CSV history's lists and dates read as such.
        rows = load_denials(history).frame
        report = write_remittances(rows, folder, defect_share=defect_share, seed=seed)
    except OSError as exc:
        fail(f"cannot write remittances to {folder}: {exc}", exc)
    seconds = time.perf_counter() - started
    typer.echo(
        f"wrote {report.files:,} 835 files ({report.transactions:,} remittances, "
        f"{report.denied_claims:,} denied and {report.paying_claims:,} paying claims, "
        f"{report.bytes / 2**20:,.1f} MiB) to {folder} in {seconds:.1f} s"
    )
    if defect_share > 0:
        typer.echo(
            f"damaged {len(report.damaged_claims):,} denied claims and "
            f"{sum(report.envelope_defects.values()):,} file envelopes"
        )


def validate(
    path: Annotated[Path, typer.Argument(help="Contract file, .parquet or .csv.")],
    max_errors: Annotated[
        int, typer.Option(min=0, help="Print at most this many errors (0: all).")
    ] = 0,
) -> None:
    """Check every row of a contract file; exit 1 if any row breaks a rule."""
    result = _load_or_exit(path)
    report_validation(path, result, max_errors)
    if not result.ok:
        raise typer.Exit(1)


def report_validation(path: Path, result: ValidationResult, max_errors: int = 0) -> None:
    """Print each error as ``file: row N, column C: reason`` and a one-line summary."""
    shown = result.errors if max_errors == 0 else result.errors[:max_errors]
    for error in shown:
        typer.echo(f"{path}: {error}")
    if len(shown) < len(result.errors):
        typer.echo(f"... {len(result.errors) - len(shown):,} more errors not shown")
    bad = len(result.bad_rows)
    typer.echo(
        f"{path}: {len(result.frame):,} rows, {len(result.frame) - bad:,} valid, "
        f"{bad:,} with errors ({len(result.errors):,} errors)"
    )


def profile(path: Annotated[Path, typer.Argument(help="Labelled contract file.")]) -> None:
    """Profile a labelled history: root-cause mix, rates, and how far a code lookup gets."""
    result = _load_or_exit(path)
    if not result.ok:
        report_validation(path, result, max_errors=20)
        raise typer.Exit(1)
    missing = [name for name in LABEL_COLUMNS if name not in result.frame]
    if missing:
        fail(f"{path} has no label columns {', '.join(missing)}")
    mapping = load_mapping(get_settings().mapping_overrides)
    typer.echo(json.dumps(profile_history(result.frame, mapping).as_dict(), indent=2))


def schema(
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of the fields a denial carries for scoring."""
    text = json.dumps(scoring_json_schema(), indent=2)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n")
        typer.echo(f"wrote {out}")


def _load_or_exit(path: Path) -> ValidationResult:
    try:
        return load_denials(path)
    except ContractFileError as exc:
        fail(str(exc), exc)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
