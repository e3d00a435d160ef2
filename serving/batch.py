"""Batch scoring of a contract file, offline, through the same code as the API.

``denial-triage score`` is a thin shell over :func:`score_file` and :func:`score_file_on_dask`;
``progress`` reports rows (or partitions) as they are written, so the command can show a bar.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from features.contract import (
    COLUMNS,
    ContractFileError,
    DenialWriter,
    RowError,
    read_raw,
    validate,
)
from serving.scoring import flatten_results, score_denials
from training.triage_model import TriageModel

BATCH_ROWS = 5_000
# Told the total once (before anything is scored), then how many rows or partitions were written.
Progress = Callable[[int, int], None]


def _no_progress(done: int, total: int) -> None:
    pass


def score_partition(model: TriageModel, frame: pd.DataFrame, explain: bool) -> pd.DataFrame:
    """One partition's flat scores: the function every worker runs (same as the API's)."""
    return flatten_results(score_denials(model, frame, explain=explain))


def score_file(
    model: TriageModel,
    data: Path,
    out: Path,
    explain: bool,
    progress: Progress = _no_progress,
    rejects: Path | None = None,
) -> tuple[int, int]:
    """Score ``data`` here in batches of :data:`BATCH_ROWS` into ``out``: rows scored and rows
    skipped.

    Without ``rejects``, a file breaking the contract raises ValueError naming the file and the
    first bad rows; with it, the rows breaking the contract are written there with their errors
    (:func:`write_rejects`) and the others scored. A table-wide error (a missing column) always
    refuses the file.
    """
    raw = read_raw(data)
    result = validate(raw)
    table_wide = any(e.row is None for e in result.errors)
    if not result.ok and (rejects is None or table_wide):
        shown = "; ".join(str(e) for e in result.errors[:20])
        raise ValueError(f"{data}: {len(result.bad_rows):,} rows break the contract: {shown}")
    frame = result.valid_rows()
    if rejects is not None:
        write_rejects(raw, result.errors, rejects)
    progress(0, len(frame))
    with DenialWriter(out) as writer:
        for start in range(0, len(frame), BATCH_ROWS):
            chunk = frame.iloc[start : start + BATCH_ROWS]
            writer.write(score_partition(model, chunk, explain))
            progress(start + len(chunk), len(frame))
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


def score_file_on_dask(
    model: TriageModel,
    data: Path,
    out: Path,
    explain: bool,
    address: str,
    progress: Progress = _no_progress,
) -> int:
    """Each partition is scored on the worker that holds it; results are written in order."""
    from training.distributed import dask_client, read_partitioned

    with dask_client(address) as client:
        partitions = client.compute(read_partitioned(data).to_delayed())
        shared = client.scatter(model, broadcast=True)
        futures = [client.submit(score_partition, shared, part, explain) for part in partitions]
        rows = 0
        progress(0, len(futures))
        with DenialWriter(out) as writer:
            for done, future in enumerate(futures, start=1):
                scored = future.result()
                writer.write(scored)
                rows += len(scored)
                progress(done, len(futures))
    return rows
