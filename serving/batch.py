"""Batch scoring of a contract file, offline, through the same code as the API.

``denial-triage score`` is a thin shell over :func:`score_file` and :func:`score_file_on_dask`;
``progress`` reports rows (or partitions) as they are written, so the command can show a bar.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from features.contract import DenialWriter, load_denials
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
    model: TriageModel, data: Path, out: Path, explain: bool, progress: Progress = _no_progress
) -> int:
    """Score ``data`` here in batches of :data:`BATCH_ROWS` into ``out``; the rows scored.

    Raises ValueError naming the file and the first bad rows when it breaks the contract.
    """
    result = load_denials(data)
    if not result.ok:
        shown = "; ".join(str(e) for e in result.errors[:20])
        raise ValueError(f"{data}: {len(result.bad_rows):,} rows break the contract: {shown}")
    frame = result.frame
    progress(0, len(frame))
    with DenialWriter(out) as writer:
        for start in range(0, len(frame), BATCH_ROWS):
            chunk = frame.iloc[start : start + BATCH_ROWS]
            writer.write(score_partition(model, chunk, explain))
            progress(start + len(chunk), len(frame))
    return len(frame)


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
