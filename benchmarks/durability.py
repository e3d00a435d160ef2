"""Benchmark what durability costs, and what reviewers wait for while scorers are busy.

One command, against the served service on loopback (``denial-triage serve``), each figure as
the median of repeated runs with their spread:

1. the audit journal on and off: one-denial scores (p50/p99 at concurrency 1 and 8) and
   1,000-denial requests (denials per second, the clock stopped once the last denial's audit
   record can be read back);
2. reviewers under scorer load (journal on): two clients send 1,000-denial requests in a loop
   while a reviewer reads ``GET /v1/denials/{id}`` of denials scored before the load began;
   the reviewer's p50/p99/max, and the same reads with the service idle.

``--source DIR`` runs the service from another checkout (for example the main branch before
a change), so a before and after come from the same machine and the same model.

    .venv/bin/python benchmarks/durability.py                 # trains a small champion first
    .venv/bin/python benchmarks/durability.py --data-dir DIR  # reuse a trained data directory
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import serving_latency as bench
from harness import clean_env

HERE = Path(__file__).resolve().parent
REVIEWER_SECONDS = 30.0  # how long the reviewer reads while the scorers keep the service busy
SCORERS = 2
BATCH = 1_000


def service(data_dir: Path, log: Path, journal: bool, source: Path | None) -> Any:
    """The service on a free port, journal on or off, from this checkout or ``source``."""
    env = clean_env()
    env.update(
        DENIAL_TRIAGE_DATA_DIR=str(data_dir),
        DENIAL_TRIAGE_MODEL_POLL_SECONDS="3600",
        DENIAL_TRIAGE_AUDIT_JOURNAL=str(journal).lower(),
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
    key = bench.benchmark_key(data_dir)
    results: dict[str, Any] = {}
    if not args.skip_journal:
        for journal in (True, False):
            with service(data_dir, work / "service.log", journal, args.source) as server:
                results["on" if journal else "off"] = journal_cost(
                    server, key, payloads, args.repeats
                )
    with service(data_dir, work / "service.log", True, args.source) as server:
        results["reviewers"] = reviewers(server, key, payloads)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="reuse this data directory's champion")
    parser.add_argument("--history", type=Path, help="history to send (with --data-dir)")
    parser.add_argument("--source", type=Path, help="run the service from this checkout")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-journal", action="store_true", help="reviewers only")
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
    if not args.skip_journal:
        print(journal_table(results), end="\n\n")
    print(reviewer_table(results["reviewers"]))


if __name__ == "__main__":
    main()
