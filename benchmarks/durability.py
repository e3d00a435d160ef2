"""Benchmark what durability costs, and what reviewers wait for while scorers are busy.

One command, against the served service on loopback (``denial-triage serve``), each figure as
the median of repeated runs with their spread:

1. the audit journal on and off: one-denial scores (p50/p99 at concurrency 1 and 8) and
   1,000-denial requests (denials per second, the clock stopped once the last denial's audit
   record can be read back);
2. reviewers under scorer load (journal on): two clients send 1,000-denial requests in a loop
   while a reviewer reads ``GET /v1/denials/{id}`` of denials scored before the load began;
   the reviewer's p50/p99/max, and the same reads with the service idle;
3. with ``--audit-worker`` instead: the audit writer's worker process against its thread
   (``DENIAL_TRIAGE_AUDIT_WORKER_PROCESS``), two services side by side, each with its own
   database, measured in turn round after round: one-denial p50/p99, 1,000-denial requests
   per second with the clock stopped once the last audit record is in the database, and the
   serving process's memory.

``--source DIR`` runs the service from another checkout (for example the main branch before
a change), so a before and after come from the same machine and the same model.

    .venv/bin/python benchmarks/durability.py                 # trains a small champion first
    .venv/bin/python benchmarks/durability.py --data-dir DIR  # reuse a trained data directory
    .venv/bin/python benchmarks/durability.py --audit-worker --repeats 5  # process vs thread
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import serving_latency as bench
from harness import clean_env, create_keys, wait_for_audit_rows

HERE = Path(__file__).resolve().parent
REVIEWER_SECONDS = 30.0  # how long the reviewer reads while the scorers keep the service busy
SCORERS = 2
BATCH = 1_000
# The audit writer's modes (DENIAL_TRIAGE_AUDIT_WORKER_PROCESS), and each round's load.
WORKER_MODES = {"process": True, "thread": False}
WORKER_SINGLE_REQUESTS = 400
WORKER_BATCH_REQUESTS = 4


def service(data_dir: Path, log: Path, source: Path | None, **settings: str) -> Any:
    """The service on a free port with ``settings`` (``audit_journal="false"`` is
    ``DENIAL_TRIAGE_AUDIT_JOURNAL=false``), from this checkout or ``source``."""
    env = clean_env()
    env.update(
        DENIAL_TRIAGE_DATA_DIR=str(data_dir),
        DENIAL_TRIAGE_MODEL_POLL_SECONDS="3600",
        **{f"DENIAL_TRIAGE_{name.upper()}": value for name, value in settings.items()},
    )
    # -P: the working directory is not put first on sys.path, so PYTHONPATH's checkout wins
    # over this environment's editable install.
    command = [sys.executable, "-P", "-m", "denial_triage", "serve", "--port", "{port}"]
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")])
    return bench.started(command, env, "/readyz", log)


# ---------------------------------------------------------------------------- journal cost


def journal_cost(server: Any, key: str, payloads: list[dict], repeats: int) -> dict[str, Any]:
    target = bench.service_target(server, key)
    flush = lambda denial_id: bench.read_back(server, key, denial_id)  # noqa: E731
    return {
        "single_c1": bench.latency_runs(target, payloads, 400, 1, repeats),
        "single_c8": bench.latency_runs(target, payloads, 800, 8, repeats),
        "batch": bench.batch_runs(target, payloads, BATCH, 4, repeats, flush),
    }


# ---------------------------------------------------------------------------- reviewers


def reviewer_latencies(server: Any, key: str, denial_ids: list[str], seconds: float) -> list[float]:
    """Read scored denials one after another for ``seconds``; each read's latency."""
    connection = http.client.HTTPConnection(*server.host, timeout=120)
    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        denial_id = denial_ids[len(latencies) % len(denial_ids)]
        began = time.perf_counter()
        connection.request("GET", f"/v1/denials/{denial_id}", headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - began)
        if response.status != 200:
            raise SystemExit(f"reviewer read of {denial_id}: HTTP {response.status}")
    connection.close()
    return latencies


def scorer_loop(server: Any, key: str, payloads: list[dict], stop: threading.Event) -> None:
    """Send 1,000-denial requests back to back until ``stop`` is set."""
    target = bench.service_target(server, key)
    round_ = 0
    while not stop.is_set():
        batch = bench.batches(payloads, BATCH, 1)[0]
        batch = [
            {**d, "denial_id": f"{d['denial_id']}-{threading.get_ident()}-{round_}"} for d in batch
        ]
        bench.send(target, target.bodies([batch]), 1)
        round_ += 1


def reviewers(server: Any, key: str, payloads: list[dict]) -> dict[str, Any]:
    """The reviewer's latency idle, then while ``SCORERS`` clients keep scoring."""
    target = bench.service_target(server, key)
    scored = bench.batches(payloads, 1, 200)
    bench.send(target, target.bodies(scored), 4)
    denial_ids = [batch[0]["denial_id"] for batch in scored]
    bench.read_back(server, key, denial_ids[-1])
    idle = reviewer_latencies(server, key, denial_ids, 5.0)
    stop = threading.Event()
    scorers = [
        threading.Thread(target=scorer_loop, args=(server, key, payloads, stop))
        for _ in range(SCORERS)
    ]
    for scorer in scorers:
        scorer.start()
    time.sleep(3.0)  # the scorers' first requests are in flight
    try:
        loaded = reviewer_latencies(server, key, denial_ids, REVIEWER_SECONDS)
    finally:
        stop.set()
        for scorer in scorers:
            scorer.join()
    return {"idle": _latency(idle), "under_load": _latency(loaded)}


def _latency(latencies: list[float]) -> dict[str, float]:
    return {
        **bench.percentiles(latencies),
        "max": float(np.max(latencies) * 1000),
        "reads": float(len(latencies)),
    }


# ---------------------------------------------------------------------------- audit worker


@dataclass
class Side:
    """One service of the comparison, its own database, and how many denials it was sent."""

    server: Any
    key: str
    database_url: str
    sent: int = 0

    def send(self, bodies: list[bytes], denials: int) -> list[float]:
        target = bench.service_target(self.server, self.key)
        latencies, _ = bench.send(target, bodies, 1)
        self.sent += denials
        return latencies

    def stored(self) -> None:
        """Wait until every denial sent so far has its audit record in the database."""
        wait_for_audit_rows(self.database_url, self.sent)


def worker_side(
    stack: contextlib.ExitStack, data_dir: Path, work: Path, mode: str, source: Path | None
) -> Side:
    """The service in one audit writer mode, with a database and spool of its own."""
    url = f"sqlite:///{(work / f'audit-{mode}.db').as_posix()}"
    key = create_keys(url, ["admin"], f"audit-{mode}")["admin"]
    settings = {
        "database_url": url,
        "audit_spool_dir": str(work / f"spool-{mode}"),
        "audit_worker_process": str(WORKER_MODES[mode]).lower(),
    }
    log = work / f"service-{mode}.log"
    return Side(stack.enter_context(service(data_dir, log, source, **settings)), key, url)


def worker_round(side: Side, singles: list[bytes], batches: list[bytes]) -> dict[str, float]:
    """One-denial latencies, then 1,000-denial requests until their records are stored."""
    side.stored()  # what earlier rounds sent is in: this round's clock counts its own work
    latencies = side.send(singles, len(singles))
    side.stored()
    began = time.perf_counter()
    side.send(batches, BATCH * len(batches))
    side.stored()
    wall = time.perf_counter() - began
    return {**bench.percentiles(latencies), "denials_per_second": BATCH * len(batches) / wall}


def worker_modes(
    data_dir: Path, work: Path, payloads: list[dict], repeats: int, source: Path | None
) -> dict[str, Any]:
    """Both modes side by side, measured in turn round after round, so the drift of a shared
    machine falls on both alike; ratios are thread over process, paired by round."""
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in WORKER_MODES}
    with contextlib.ExitStack() as stack:
        sides = {mode: worker_side(stack, data_dir, work, mode, source) for mode in WORKER_MODES}
        target = bench.service_target(sides["process"].server, "")  # bodies alike for both
        singles = target.bodies(bench.batches(payloads, 1, WORKER_SINGLE_REQUESTS))
        batches = target.bodies(bench.batches(payloads, BATCH, WORKER_BATCH_REQUESTS))
        for side in sides.values():
            worker_round(side, singles[:50], batches[:1])  # warm up
        for round_ in range(repeats):
            # Each mode goes first every other round: neither always follows the other.
            for mode in sorted(sides, reverse=bool(round_ % 2)):
                runs[mode].append(worker_round(sides[mode], singles, batches))
        memory = {mode: side.server.rss_mb() for mode, side in sides.items()}
    paired = [
        {name: thread[name] / process[name] for name in thread}
        for thread, process in zip(runs["thread"], runs["process"], strict=True)
    ]
    return {
        **{mode: {**bench.repeated(runs[mode]), "memory": memory[mode]} for mode in runs},
        "thread_over_process": bench.repeated(paired),
    }


WORKER_COLUMNS = (
    "audit writer",
    "1 denial p50 / p99 ms (c=1)",
    "1,000-denial requests, denials/s (audit in the database)",
    "serving RSS, peak MiB",
    "with its children, peak MiB",
)


def worker_table(results: dict[str, Any]) -> str:
    m = bench._m
    rows = []
    for mode in WORKER_MODES:
        run, memory = results[mode], results[mode]["memory"]
        latency = f"{m(run['p50'], 2)} / {m(run['p99'], 2)}"
        throughput = m(run["denials_per_second"], 0)
        peaks = (f"{memory['peak_rss_mb']:,.0f}", f"{memory['tree_peak_rss_mb']:,.0f}")
        rows.append([mode, latency, throughput, *peaks])
    ratio = results["thread_over_process"]
    latency = f"{m(ratio['p50'], 2)} / {m(ratio['p99'], 2)}"
    rows.append(["thread / process (paired by round)", latency, m(ratio["denials_per_second"], 2)])
    return markdown_table(WORKER_COLUMNS, rows)


def markdown_table(columns: tuple[str, ...], rows: list[list[str]]) -> str:
    """A markdown table; a short row leaves its last cells empty."""
    lines = [f"| {' | '.join(columns)} |", f"|{'---|' * len(columns)}"]
    for row in rows:
        cells = [*row, *[""] * (len(columns) - len(row))]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- report


def journal_table(results: dict[str, Any]) -> str:
    m = bench._m
    rows = [
        "| audit journal | 1 denial p50 / p99 ms (c=1) | p50 / p99 ms (c=8) | "
        "1,000-denial requests, denials/s |",
        "|---|---|---|---|",
    ]
    for name in ("on", "off"):
        run = results[name]
        rows.append(
            f"| {name} | {m(run['single_c1']['p50'], 2)} / {m(run['single_c1']['p99'], 2)} | "
            f"{m(run['single_c8']['p50'], 2)} / {m(run['single_c8']['p99'], 2)} | "
            f"{m(run['batch']['denials_per_second'], 0)} |"
        )
    return "\n".join(rows)


def reviewer_table(results: dict[str, Any]) -> str:
    rows = [
        "| reviewer `GET /v1/denials/{id}` | reads | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for name, run in results.items():
        rows.append(
            f"| {name.replace('_', ' ')} | {run['reads']:.0f} | {run['p50']:.1f} | "
            f"{run['p99']:.1f} | {run['max']:.1f} |"
        )
    return "\n".join(rows)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every measurement, on a champion trained in ``work`` or the one in ``--data-dir``."""
    data_dir, history = bench.prepare(args, bench.QUICK, work)
    payloads = bench.denial_payloads(history, 2_000)
    if args.audit_worker:
        return {"audit_worker": worker_modes(data_dir, work, payloads, args.repeats, args.source)}
    key = bench.benchmark_key(data_dir)
    results: dict[str, Any] = {}
    if not args.skip_journal:
        for journal in (True, False):
            log = work / "service.log"
            with service(data_dir, log, args.source, audit_journal=str(journal).lower()) as server:
                results["on" if journal else "off"] = journal_cost(
                    server, key, payloads, args.repeats
                )
    with service(data_dir, work / "service.log", args.source) as server:
        results["reviewers"] = reviewers(server, key, payloads)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="reuse this data directory's champion")
    parser.add_argument("--history", type=Path, help="history to send (with --data-dir)")
    parser.add_argument("--source", type=Path, help="run the service from this checkout")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-journal", action="store_true", help="reviewers only")
    parser.add_argument(
        "--audit-worker", action="store_true", help="only the worker process against the thread"
    )
    parser.add_argument("--json", type=Path, default=Path("data/benchmarks/durability.json"))
    parser.add_argument("--keep", action="store_true", help="keep the trained data directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="durability-"))
    try:
        results = run(args, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    if args.audit_worker:
        print(worker_table(results["audit_worker"]))
        return
    if not args.skip_journal:
        print(journal_table(results), end="\n\n")
    print(reviewer_table(results["reviewers"]))


if __name__ == "__main__":
    main()
