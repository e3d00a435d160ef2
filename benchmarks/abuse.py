"""Abusive requests against the running service: what the worst bodies cost, and what two
abusive senders do to everyone else.

One command. In a temporary directory it trains a small champion, creates keys and starts
``denial-triage serve`` as shipped on a free loopback port (the harness of ``load.py``). Then:

1. **Idle**: p50 and p99 of ``GET /healthz`` and of a one-denial score, one client probing
   both in turn every 20 ms, as it does under abuse (so the ratio is the senders' alone).
2. **Worst bodies**, one at a time: the wall time of the answer and the service's peak
   resident memory above its level before (sampled every 5 ms), for
   - 100,000 empty denials (the review's 300 KB body: 9.7 s and 1.6 GB before),
   - 10 MiB of empty denials (3.5 million; it aborted the process before),
   - the densest body the value bound lets through (every denial 255 values of junk),
   - ``max_batch`` denials, each breaking every rule it can (the largest problem list),
   - 10 MiB without a key (parsed before the key check, before).
3. **Under abuse**: two senders post an abusive body in a loop (10 MiB without a key; the
   review's 100,000 empty denials with a scorer key; and, reported without a target, the
   densest body the limits let through) while one client measures ``/healthz`` and one-denial
   scores. Each sender is a process of its own. By default the service is pinned to one core
   and the probe and senders to the others, as senders on other hosts would be
   (``--shared-cores`` leaves them together).

Targets (issue 12): every worst body under 200 ms and 100 MB; ``/healthz`` and a one-denial
score within 2x their idle p50 while two abusive senders run. Prints markdown tables and exits
1 when a target is missed.

    .venv/bin/python benchmarks/abuse.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
MAX_BATCH = 1_000  # the shipped default of DENIAL_TRIAGE_MAX_BATCH_DENIALS
VALUES_PER_DENIAL = 256  # serving.limits.VALUES_PER_DENIAL, restated: this is a client
TEN_MIB = 10 * 1024 * 1024
TARGET_MS, TARGET_MIB, TARGET_RATIO = 200.0, 100.0, 2.0


def _harness() -> Any:
    """``benchmarks/load.py``: the service's preparation, start-up and calls."""
    spec = importlib.util.spec_from_file_location("load_harness", HERE / "load.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- bodies


def empty_denials(count: int) -> bytes:
    return b'{"denials":[' + b",".join([b"{}"] * count) + b"]}"


def densest_within_the_bound(max_batch: int) -> bytes:
    """The most JSON values the bound admits, every denial a junk list."""
    junk = b'{"x":[' + b",".join([b"0"] * (VALUES_PER_DENIAL - 4)) + b"]}"
    return b'{"denials":[' + b",".join([junk] * max_batch) + b"]}"


def every_rule_broken(max_batch: int) -> bytes:
    wrong = {
        "denial_id": 1,
        "claim_id": [],
        "payer_id": {},
        "payer_type": "x",
        "claim_type": "x",
        "service_date": "x",
        "denial_date": "x",
        "billed_amount": "x",
        "denied_amount": -1,
        "carc_codes": ["x"] * 99,
    }
    return json.dumps({"denials": [wrong] * max_batch}).encode()


def ten_mib_without_a_key() -> bytes:
    return empty_denials(TEN_MIB // 3 - 10)  # within the body limit: refused for the key alone


# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Target:
    port: int
    keys: dict[str, str]

    def post(self, path: str, body: bytes, key: str | None) -> tuple[int, int, float]:
        """Status, answer size and milliseconds of one request on a new connection."""
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return self._send("POST", path, body, headers)

    def get(self, path: str) -> tuple[int, int, float]:
        return self._send("GET", path, None, {})

    def _send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, int, float]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            size = len(response.read())
            return response.status, size, (time.perf_counter() - started) * 1000
        except (ConnectionError, http.client.HTTPException):
            # The service may answer 401/413 and close before the whole body was sent.
            return 0, 0, (time.perf_counter() - started) * 1000
        finally:
            connection.close()


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(share * len(values)))]


# ---------------------------------------------------------------------------- memory


@contextlib.contextmanager
def peak_rss(pid: int) -> Iterator[dict[str, float]]:
    """The process's peak RSS above its level at the start, in MiB, sampled every 5 ms."""
    process = psutil.Process(pid)
    base = process.memory_info().rss
    seen = {"peak_mib": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rise = (process.memory_info().rss - base) / 2**20
            seen["peak_mib"] = max(seen["peak_mib"], rise)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        done.set()
        sampler.join()


def worst_bodies(target: Target, pid: int) -> list[dict[str, Any]]:
    scorer = target.keys["scorer"]
    cases = [
        ("100,000 empty denials", empty_denials(100_000), scorer),
        ("10 MiB of empty denials", empty_denials(TEN_MIB // 3 - 10), scorer),
        ("densest body within the bound", densest_within_the_bound(MAX_BATCH), scorer),
        (f"{MAX_BATCH:,} denials breaking every rule", every_rule_broken(MAX_BATCH), scorer),
        ("10 MiB without a key", ten_mib_without_a_key(), None),
    ]
    rows = []
    for name, body, key in cases:
        with peak_rss(pid) as memory:
            status, size, ms = target.post("/v1/score", body, key)
        rows.append(
            {
                "body": name,
                "body_kib": len(body) / 1024,
                "status": status,
                "answer_kib": size / 1024,
                "ms": ms,
                "peak_mib": memory["peak_mib"],
            }
        )
    return rows


# ---------------------------------------------------------------------------- under abuse


def _send_in_a_loop(target: Target, body: bytes, key: str | None, stop: Any) -> None:
    while not stop.is_set():
        target.post("/v1/score", body, key)


def probe_while(
    target: Target, probes: dict[str, Callable], seconds: float, abuse: tuple | None = None
) -> dict[str, list[float]]:
    """Latencies of each probe, in turn every 20 ms, while two senders post ``abuse`` in a loop.

    Idle is the same loop without senders: the probe's own pattern (a score, then ``/healthz``
    while the audit worker stores that score) is part of both figures, so their ratio is the
    senders' effect alone.

    Each sender is a process of its own: as threads of this process they would hold the
    interpreter lock the probe needs, and the probe would time the benchmark, not the service.
    """
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    senders = [
        context.Process(target=_send_in_a_loop, args=(target, *abuse, stop), daemon=True)
        for _ in range(2 if abuse else 0)
    ]
    for sender in senders:
        sender.start()
    if senders:
        time.sleep(1.0)  # both senders under way
    measured: dict[str, list[float]] = {name: [] for name in probes}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, probe in probes.items():
            status, _, ms = probe()
            if status == 200:
                measured[name].append(ms)
        time.sleep(0.02)
    stop.set()
    for sender in senders:
        sender.join(timeout=120)
    return measured


def pin_apart(service_pid: int) -> str:
    """The service (and its audit worker) on core 0, this process and its senders on the rest.

    On a shared pair of cores the senders' own work (pushing 10 MiB through loopback in a
    loop) takes CPU from the service, and the probe would measure the attacker's machine, not
    the service. Pinned apart, the figures model senders on other hosts, as they would be.
    """
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        return "not pinned (one core)"
    for process in [psutil.Process(service_pid), *psutil.Process(service_pid).children(True)]:
        process.cpu_affinity(cores[:1])
    os.sched_setaffinity(0, cores[1:])
    return f"service on core {cores[0]}, probe and senders on {cores[1:]}"


SLOWING = {
    # The service as shipped: a sender refused 30 times in a minute is answered 429 after 1 s.
    "as shipped": {},
    # Refusals never slowed: what the limits alone achieve.
    "refusals never slowed": {"DENIAL_TRIAGE_REFUSALS_PER_MINUTE": "1000000"},
}


def run(work: Path, seconds: float, pinned: bool) -> dict[str, Any]:
    load = _harness()
    deployment = load.prepare(work, rows=20_000)
    # The abusers hold a scorer key of their own: a key refused too often is slowed, and the
    # probe's key must not be.
    abusers = load.service_keys(load.records_url(deployment.data_dir))["scorer"]
    denial = load.denial_payloads(deployment.history, 1)[0]
    one_denial = json.dumps({"denials": [denial]}).encode()
    abused = {
        # The review's two cases: held to the 2x target.
        "two senders, no key, 10 MiB": (ten_mib_without_a_key(), None),
        "two senders, scorer key, 100,000 empty denials": (empty_denials(100_000), abusers),
        # The costliest body the limits let through: reported, not a target.
        "two senders, scorer key, densest body (no target)": (
            densest_within_the_bound(MAX_BATCH),
            abusers,
        ),
    }
    results: dict[str, Any] = {"idle": {}, "abused": {}, "service_cores": {}}
    for slowing, settings in SLOWING.items():
        with load.running_service(deployment, work, settings) as service:
            target = Target(service.port, deployment.keys)
            results["placement"] = pin_apart(service.process.pid) if pinned else "shared cores"
            probes = {
                "GET /healthz": lambda target=target: target.get("/healthz"),
                "score 1 denial": lambda target=target: target.post(
                    "/v1/score", one_denial, deployment.keys["scorer"]
                ),
            }
            cpu_before, started = service.usage()[3], time.monotonic()
            results["idle"][slowing] = probe_while(target, probes, seconds)
            results["service_cores"][f"{slowing}: idle"] = (service.usage()[3] - cpu_before) / (
                time.monotonic() - started
            )
            if "bodies" not in results:
                results["bodies"] = worst_bodies(target, service.process.pid)
            for situation, (body, key) in abused.items():
                cpu_before, started = service.usage()[3], time.monotonic()
                measured = probe_while(target, probes, seconds, (body, key))
                results["abused"][f"{slowing}: {situation}"] = measured
                results["service_cores"][f"{slowing}: {situation}"] = (
                    service.usage()[3] - cpu_before
                ) / (time.monotonic() - started)
            if hasattr(os, "sched_setaffinity"):  # the next service starts on every core
                os.sched_setaffinity(0, range(os.cpu_count() or 1))
    return results


# ---------------------------------------------------------------------------- report


def bodies_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| body | size (KiB) | status | answer (KiB) | ms | peak RSS rise (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['body']} | {row['body_kib']:,.0f} | {row['status']} | "
            f"{row['answer_kib']:,.1f} | {row['ms']:,.0f} | {row['peak_mib']:,.1f} |"
        )
    return "\n".join(lines)


def abuse_table(results: dict[str, Any]) -> str:
    lines = [
        "| probe | while | p50 ms | p99 ms | p50 / idle p50 | requests | service cores busy |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for slowing, idle in results["idle"].items():
        for probe, times in idle.items():
            lines.append(
                f"| {probe} | {slowing}: idle | {statistics.median(times):.1f} | "
                f"{percentile(times, 0.99):.1f} | 1.00 | {len(times)} | "
                f"{results['service_cores'][f'{slowing}: idle']:.2f} |"
            )
    for situation, measured in results["abused"].items():
        idle = results["idle"][situation.split(":")[0]]
        for probe, times in measured.items():
            ratio = statistics.median(times) / statistics.median(idle[probe])
            lines.append(
                f"| {probe} | {situation} | {statistics.median(times):.1f} | "
                f"{percentile(times, 0.99):.1f} | {ratio:.2f} | {len(times)} | "
                f"{results['service_cores'][situation]:.2f} |"
            )
    return "\n".join(lines)


def missed_targets(results: dict[str, Any]) -> list[str]:
    missed = [
        f"{row['body']}: {row['ms']:.0f} ms, {row['peak_mib']:.0f} MiB"
        for row in results["bodies"]
        if row["ms"] > TARGET_MS or row["peak_mib"] > TARGET_MIB
    ]
    for situation, measured in results["abused"].items():
        # The target is the service's as shipped; the other mode shows what slowing adds.
        if "no target" in situation or not situation.startswith("as shipped"):
            continue
        idle = results["idle"]["as shipped"]
        for probe, times in measured.items():
            if not times:
                missed.append(f"{probe} never answered while {situation}")
                continue
            ratio = statistics.median(times) / statistics.median(idle[probe])
            if ratio > TARGET_RATIO:
                missed.append(f"{probe} at {ratio:.2f}x its idle p50 while {situation}")
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="each abuse phase")
    parser.add_argument(
        "--shared-cores",
        action="store_true",
        help="leave the senders on the service's cores (an attacker on the same host)",
    )
    parser.add_argument("--json", type=Path, default=Path("data/benchmarks/abuse.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="denial-triage-abuse-"))
    try:
        results = run(work, args.seconds, pinned=not args.shared_cores)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(bodies_table(results["bodies"]), end="\n\n")
    print(abuse_table(results))
    print(f"\nplacement: {results['placement']}")
    missed = missed_targets(results)
    print("\n" + ("targets missed: " + "; ".join(missed) if missed else "every target met"))
    if missed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
