"""What the benchmarks share: the payloads a worklist system sends, free loopback ports,
waiting for a started server to answer, an environment without the caller's settings, API
keys in the service's database, synthetic audit records, and timing a piece of work repeated.

Imported by the benchmark scripts by name (their folder leads ``sys.path`` when one runs).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def denial_payloads(history: Path, count: int) -> list[dict[str, Any]]:
    """The newest denials of the history as a worklist system sends them (JSON types)."""
    from training.run import load_history
    from training.tracking import example_payload

    newest = load_history(history).tail(count).reset_index(drop=True)
    return json.loads(example_payload(newest).to_json(orient="records"))


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def clean_env() -> dict[str, str]:
    """This process's environment without MLflow's or the service's settings, so a started
    process reads only what the benchmark gives it."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DENIAL_TRIAGE_"))}


def wait_ready(
    process: subprocess.Popen, port: int, path: str, log: Path, seconds: float, name: str
) -> None:
    """Wait until ``GET path`` on the loopback ``port`` answers 200; exit with the end of
    ``log`` when the process dies first, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited before it was ready:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
            try:
                connection.request("GET", path)
                if connection.getresponse().status == 200:
                    return
            finally:
                connection.close()
        time.sleep(0.3)
    raise SystemExit(f"{name} was not ready within {seconds:.0f} s")


def create_keys(database_url: str, roles: Iterable[str], label: str) -> dict[str, str]:
    """One new API key per role in the service's database (migrated first), by role."""
    from serving.database import make_engine, session_factory, upgrade_database
    from serving.repository import create_api_key

    upgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            return {
                role: create_api_key(session, role, f"{label}-{role}-{time.time_ns()}")[0]
                for role in roles
            }
    finally:
        engine.dispose()


# Audit records written as the service writes them, in batches of one scoring request each.
SCORE_BATCH = 2_000


def synthetic_score_batches(
    count: int, seed: int, record: Callable[[Any, int], dict[str, Any]]
) -> Iterator[list[dict[str, Any]]]:
    """``count`` audit records in batches, ``record(random, number)`` making each one from a
    generator seeded with ``seed``."""
    import numpy as np

    random = np.random.default_rng(seed)
    for start in range(0, count, SCORE_BATCH):
        yield [record(random, number) for number in range(start, min(count, start + SCORE_BATCH))]


def synthetic_audit_record(
    number: int, denial: dict[str, Any], outputs: dict[str, Any]
) -> dict[str, Any]:
    """The audit record of the ``number``-th synthetic score: a request per batch, model 1,
    scored a second apart from 2026-12-01."""
    import datetime as dt

    from serving.repository import audit_record

    return audit_record(
        request_id=f"r-{number // SCORE_BATCH}",
        denial=denial,
        caller="benchmark",
        model_version="1",
        mapping_version="m",
        outputs=outputs,
        explanation={"root_cause": {"reasons": []}},
        scored_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=number),
    )


def wait_for_audit_rows(database_url: str, count: int, seconds: float = 300.0) -> None:
    """Return once the audit log at ``database_url`` holds ``count`` records: the clock of a
    throughput stops when the records are in the database, not when a read finds them (a read
    answers from the audit writer's queue while a record is still on its way)."""
    from serving.database import make_engine, session_factory
    from serving.repository import count_scores

    engine = make_engine(database_url)
    deadline = time.monotonic() + seconds
    try:
        with session_factory(engine)() as session:
            while (stored := count_scores(session)) < count:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{stored} of {count} audit records after {seconds:.0f} s")
                session.rollback()  # a fresh snapshot for the next count
                time.sleep(0.02)
    finally:
        engine.dispose()


def timed(work: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median, min and max milliseconds of ``work`` after one warm-up run."""
    work()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs), min(runs), max(runs)


def records_table(rows: list[dict[str, object]]) -> str:
    """A markdown table of rows that share their keys (the header), floats to 4 decimals."""
    columns = list(rows[0])
    lines = [f"| {' | '.join(columns)} |", f"|{'---|' * len(columns)}"]
    for row in rows:
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def generated_history_options(description: str, argv: list[str] | None) -> argparse.Namespace:
    """``--seeds``, ``--rows`` and ``--out`` (a folder for the generated histories, created)
    of a benchmark that measures on generated histories."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--out", type=Path, required=True, help="folder for generated histories")
    options = parser.parse_args(argv)
    options.out.mkdir(parents=True, exist_ok=True)
    return options
