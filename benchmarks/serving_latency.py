"""Benchmark scoring: the service against its floor, ``mlflow models serve`` and a naive baseline.

One command. It trains a champion with the shipped specs on a generated history (or reuses a
data directory that holds one), then measures, each figure as the median of repeated runs with
their spread (min-max), and every ratio from the same run:

1. floor: the LightGBM models' own ``predict`` and ``pred_contrib`` on encoded features,
   in-process: *stock* (``pred_contrib`` of the whole root-cause model, every class) and
   *design* (only the top class's trees, as the service explains);
2. the service, one denial with full reasons over HTTP on loopback, at concurrency 1 and 8;
3. the service, 1,000-denial requests: denials per second, counted until the last audit record
   is written (read back from the audit log);
4. the peer: the same registered pyfunc under ``mlflow models serve --env-manager local``;
5. a naive baseline: pandas preprocessing and a ``shap.TreeExplainer`` built per request;
6. training scale and 7. ingestion speed, quoted from ``train_scale.py`` / ``ingest_835.py``
   JSON when given (``--train-scale-json``, ``--ingest-json``), else from the README;
8. cost growth: latency and throughput for requests of 1 to 10,000 denials;
9. the challenger in shadow: one denial at concurrency 1 with no challenger, with a
   challenger scoring every denial in shadow (``shadow_share`` 1.0) and with one at the
   default share (0.1), in interleaved rounds of the same run: the p50 and p99 each adds,
   round by round and pooled (target: under 1 ms at p99), the service's CPU per request, and
   how many it scored and dropped;

and the resident memory of the serving process with the champion loaded. Load stays on
127.0.0.1, bounded in requests and time. Prints a markdown table and writes JSON.

    .venv/bin/python benchmarks/serving_latency.py                 # full run, about 12 minutes
    .venv/bin/python benchmarks/serving_latency.py --quick         # smaller run, about 5 minutes
    .venv/bin/python benchmarks/serving_latency.py --data-dir DIR  # reuse a trained data directory
    .venv/bin/python benchmarks/serving_latency.py --quick --shadow-only  # 9. alone
    .venv/bin/python benchmarks/serving_latency.py --shadow-only --data-dir DIR \
        --shadow-rounds 8 --shadow-requests 2000  # 9. alone, longer
    .venv/bin/python benchmarks/serving_latency.py --shadow-only --data-dir DIR \
        --shadow-cpu 1  # 9. with each service and its workers on one core
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
from harness import clean_env, create_keys, denial_payloads, free_port, wait_ready

MAX_DENIALS = 10_000
PROCESS_START_SECONDS = 180


@dataclass(frozen=True)
class Plan:
    """How much load each measurement sends; ``--quick`` shrinks it."""

    history_rows: int = 200_000
    repeats: int = 3
    single_requests: int = 1_000
    concurrent_requests: int = 1_600
    batch_requests: int = 8
    peer_single_requests: int = 200
    peer_batch_requests: int = 3
    naive_single_requests: int = 15
    naive_batch_requests: int = 1
    growth: dict[int, int] = field(
        default_factory=lambda: {1: 400, 10: 200, 100: 40, 1_000: 6, 10_000: 2}
    )
    shadow_requests: int = 2_000  # a p99 is the 20th slowest request of each round
    shadow_rounds: int = 6  # each case measured once a round, the cases in turn
    shadow_cpu: int | None = None  # the core the shadow cases' services are kept on, if any


QUICK = Plan(
    history_rows=60_000,
    repeats=2,
    single_requests=300,
    concurrent_requests=400,
    batch_requests=3,
    peer_single_requests=60,
    peer_batch_requests=2,
    naive_single_requests=5,
    naive_batch_requests=1,
    growth={1: 100, 10: 50, 100: 10, 1_000: 3, 10_000: 1},
    shadow_requests=1_000,
    shadow_rounds=4,
)


# ---------------------------------------------------------------------------- statistics


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median of repeated runs and their spread."""
    array = np.asarray(values, dtype=float)
    return {"median": float(np.median(array)), "min": float(array.min()), "max": float(array.max())}


def percentiles(latencies: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 of one run, in milliseconds."""
    ms = np.asarray(latencies) * 1000
    return {f"p{q}": float(np.percentile(ms, q)) for q in (50, 95, 99)}


def repeated(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each statistic of one run, summarised over the repeated runs."""
    return {name: summary([run[name] for run in runs]) for name in runs[0]}


# ---------------------------------------------------------------------------- data and model


def prepare(args: argparse.Namespace, plan: Plan, work: Path) -> tuple[Path, Path]:
    """A data directory with a champion, and the history whose newest denials are sent."""
    if args.data_dir:
        history = args.history or args.data_dir / "history" / "history.parquet"
        return args.data_dir, history
    from training.run import TrainingOptions, evaluation_on, train
    from training.specs import load_specs
    from training.synthetic import generate_history
    from training.tracking import promote

    data_dir = work / "data"
    history = generate_history(plan.history_rows, 7, data_dir / "history" / "history.parquet")
    options = TrainingOptions(data=history, data_dir=data_dir)
    started = time.perf_counter()
    trained = train(options, progress=lambda step: print(f"  {step}", flush=True))
    decision = promote(trained.record.model_version, load_specs(), evaluation_on(history, options))
    if decision.alias != "champion":
        raise SystemExit(f"the trained model was not promoted: {decision.reasons}")
    print(f"  trained and promoted in {time.perf_counter() - started:.0f} s", flush=True)
    return data_dir, history


def batches(payloads: list[dict[str, Any]], size: int, count: int) -> list[list[dict]]:
    """``count`` batches of ``size`` denials cycling through the payloads, ids made unique."""
    out = []
    for b in range(count):
        batch = [payloads[(b * size + i) % len(payloads)] for i in range(size)]
        out.append([{**d, "denial_id": f"bench-{size}-{b}-{i}"} for i, d in enumerate(batch)])
    return out


# ---------------------------------------------------------------------------- processes


@dataclass
class Server:
    """A server process on loopback: its base address and its process."""

    port: int
    process: subprocess.Popen

    @property
    def host(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server process and its children (worker processes)."""
        main = psutil.Process(self.process.pid)
        times = [p.cpu_times() for p in (main, *main.children(recursive=True))]
        return sum(t.user + t.system for t in times)

    def rss_mb(self) -> dict[str, float]:
        """Resident and peak resident memory (MiB) of the server process, and of it with its
        children (the service's audit worker; ``mlflow models serve``'s uvicorn)."""
        main = psutil.Process(self.process.pid)
        tree = [main, *main.children(recursive=True)]
        return {
            "rss_mb": main.memory_info().rss / 2**20,
            "peak_rss_mb": _peak_rss_kb(main.pid) / 1024,
            "tree_rss_mb": sum(p.memory_info().rss for p in tree) / 2**20,
            "tree_peak_rss_mb": sum(_peak_rss_kb(p.pid) for p in tree) / 1024,
        }


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str], ready: str, log: Path) -> Iterator[Server]:
    """Start a server, wait until ``ready`` answers 200, and stop it afterwards."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    with log.open("w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        server = Server(port, process)
        try:
            wait_ready(process, port, ready, log, PROCESS_START_SECONDS, log.name)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def service_process(
    data_dir: Path, log: Path, shadow_share: float = 0.0, cpu: int | None = None
) -> contextlib.AbstractContextManager[Server]:
    """``denial-triage serve`` on a free port, with room for 10,000-denial requests; a
    challenger, if registered, scores ``shadow_share`` of the denials in shadow. With ``cpu``
    the service and its worker processes are kept on that one core (``taskset``)."""
    env = clean_env()
    env.update(
        DENIAL_TRIAGE_DATA_DIR=str(data_dir),
        DENIAL_TRIAGE_MAX_BATCH_DENIALS=str(MAX_DENIALS),
        DENIAL_TRIAGE_MAX_BODY_BYTES=str(256 * 2**20),
        DENIAL_TRIAGE_MODEL_POLL_SECONDS="3600",
        DENIAL_TRIAGE_SHADOW_SHARE=str(shadow_share),
    )
    command = [sys.executable, "-m", "denial_triage", "serve", "--port", "{port}"]
    pinned = ["taskset", "--cpu-list", str(cpu)] if cpu is not None else []
    return started([*pinned, *command], env, "/readyz", log)


def peer_process(data_dir: Path, log: Path) -> contextlib.AbstractContextManager[Server]:
    """``mlflow models serve`` of the same champion, in this environment, one worker."""
    env = clean_env()
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{(data_dir / 'mlflow.db').as_posix()}"
    # It starts ``uvicorn`` by name: this environment's scripts come first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow), "models", "serve", "-m", "models:/denial-triage@champion",
        "--env-manager", "local", "-h", "127.0.0.1", "-p", "{port}", "-t", "600",
    ]  # fmt: skip
    return started(command, env, "/ping", log)


def benchmark_key(data_dir: Path) -> str:
    """An admin key (it scores and reads the audit log) in the service's database."""
    url = f"sqlite:///{(data_dir / 'denial-triage.db').as_posix()}"
    return create_keys(url, ["admin"], "benchmark")["admin"]


# ---------------------------------------------------------------------------- HTTP load


@dataclass(frozen=True)
class Target:
    """Where requests go and how they are wrapped."""

    host: tuple[str, int]
    path: str
    headers: dict[str, str]
    wrap: Callable[[list[dict]], dict]

    def bodies(self, denial_batches: list[list[dict]]) -> list[bytes]:
        return [json.dumps(self.wrap(batch)).encode() for batch in denial_batches]


def service_target(server: Server, key: str) -> Target:
    return Target(
        server.host,
        "/v1/score",
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        lambda batch: {"denials": batch, "explain": True, "top_reasons": 5},
    )


def peer_target(server: Server) -> Target:
    return Target(
        server.host,
        "/invocations",
        {"Content-Type": "application/json"},
        lambda batch: {"dataframe_records": batch, "params": {"explain": True}},
    )


def send(target: Target, bodies: list[bytes], concurrency: int) -> tuple[list[float], float]:
    """POST every body once, ``concurrency`` at a time on keep-alive connections; returns
    each request's latency and the wall time of them all (seconds)."""
    work: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    latencies: list[float] = []
    failures: list[str] = []

    def client() -> None:
        connection = http.client.HTTPConnection(*target.host, timeout=600)
        while not failures:
            try:
                body = work.get_nowait()
            except queue.Empty:
                break
            began = time.perf_counter()
            connection.request("POST", target.path, body, target.headers)
            response = connection.getresponse()
            answer = response.read()
            latencies.append(time.perf_counter() - began)
            if response.status != 200:
                failures.append(f"HTTP {response.status}: {answer[:500]!r}")
        connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{target.path} failed: {failures[0]}")
    return latencies, time.perf_counter() - began


def read_back(server: Server, key: str, denial_id: str) -> None:
    """Read one scored denial from the audit log, again until it is there: a read waits for
    its denial's record a bounded time (2 s), and the audit writer may be further behind."""
    deadline = time.monotonic() + PROCESS_START_SECONDS
    connection = http.client.HTTPConnection(*server.host, timeout=600)
    while True:
        connection.request(
            "GET", f"/v1/denials/{denial_id}", headers={"Authorization": f"Bearer {key}"}
        )
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            return
        if response.status != 404 or time.monotonic() > deadline:
            raise SystemExit(f"the audit log does not hold {denial_id}: HTTP {response.status}")


def latency_runs(
    target: Target, payloads: list[dict], requests: int, concurrency: int, repeats: int
) -> dict[str, Any]:
    """Single-denial requests: percentiles and requests per second, per repeat."""
    bodies = target.bodies(batches(payloads, 1, requests))
    send(target, bodies[: min(50, requests)], concurrency)  # warm up
    runs = []
    for _ in range(repeats):
        latencies, wall = send(target, bodies, concurrency)
        runs.append({**percentiles(latencies), "per_second": len(bodies) / wall})
    return repeated(runs)


def batch_runs(
    target: Target,
    payloads: list[dict],
    size: int,
    requests: int,
    repeats: int,
    flush: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Requests of ``size`` denials one after another: latency and denials per second, the
    clock stopped only once ``flush`` (a read of the audit log) returns."""
    denial_batches = batches(payloads, size, requests)
    bodies = target.bodies(denial_batches)
    send(target, bodies[:1], 1)  # warm up
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        latencies, _ = send(target, bodies, 1)
        if flush is not None:
            flush(denial_batches[-1][-1]["denial_id"])
        wall = time.perf_counter() - began
        runs.append(
            {
                "latency_ms": float(np.median(latencies) * 1000),
                "per_denial_ms": float(np.median(latencies) * 1000 / size),
                "denials_per_second": size * len(bodies) / wall,
            }
        )
    return repeated(runs)


# ---------------------------------------------------------------------------- in-process


def load_champion(data_dir: Path) -> Any:
    from training.tracking import configure_tracking, load_triage_model

    configure_tracking(data_dir)
    return load_triage_model("models:/denial-triage@champion")


def floor(model: Any, payloads: list[dict], size: int, repeats: int) -> dict[str, Any]:
    """The models' own work on already encoded features, in-process, per denial (ms)."""
    from features.contract import clean_records
    from features.pipeline import DenialColumns
    from training.triage_model import prediction_threads

    rows = clean_records(batches(payloads, size, 1)[0])
    matrix = model.features.encode(DenialColumns.from_records(rows))
    threads = prediction_threads(size)
    runs = []
    for _ in range(repeats + 1):  # the first run warms up and is dropped
        runs.append(
            {
                "stock_ms": _timed(lambda: _stock_floor(model, matrix, threads)) / size * 1000,
                "design_ms": _timed(lambda: _design_floor(model, matrix, threads)) / size * 1000,
            }
        )
    return repeated(runs[1:])


def _predictions(model: Any, matrix: np.ndarray, threads: int) -> np.ndarray:
    """The four models' predictions; returns the root-cause probabilities."""
    model.recovery_share_model.booster_.predict(matrix, num_threads=threads)
    for binary in (model.recovery_model, model.preventable_model):
        binary.booster_.predict(matrix, raw_score=True, num_threads=threads)
    return model.root_cause_model.booster_.predict(matrix, num_threads=threads)


def _stock_floor(model: Any, matrix: np.ndarray, threads: int) -> None:
    """Predictions plus each explained model's own ``pred_contrib`` (root cause: every class)."""
    _predictions(model, matrix, threads)
    for explained in (model.root_cause_model, model.recovery_model, model.preventable_model):
        explained.booster_.predict(matrix, pred_contrib=True, num_threads=threads)


def _design_floor(model: Any, matrix: np.ndarray, threads: int) -> None:
    """Predictions plus contributions of the top root cause only and of the binary models."""
    probabilities = _predictions(model, matrix, threads)
    model._root_cause_contributions(matrix, probabilities.argmax(axis=1), threads)
    for binary in (model.recovery_model, model.preventable_model):
        binary.booster_.predict(matrix, pred_contrib=True, num_threads=threads)


def _timed(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def naive_scoring(model: Any, denials: list[dict]) -> list[dict[str, Any]]:
    """What a quick implementation does: pandas all the way, a new ``shap.TreeExplainer`` per
    request and model, every root-cause class explained, then the top reasons picked."""
    import shap

    from features.contract import validate

    frame = validate(pd.DataFrame(denials)).frame
    matrix = model.features.transform(frame)
    scores = model.score(frame)
    top_class = scores["root_cause"].map(model.root_cause_classes.index).to_numpy()
    explained = {}
    for task, estimator in (
        ("root_cause", model.root_cause_model),
        ("recovery", model.recovery_model),
        ("preventable", model.preventable_model),
    ):
        values = np.asarray(shap.TreeExplainer(estimator.booster_).shap_values(matrix))
        if values.ndim == 3:  # (rows, features, classes): the reviewer's class only
            values = values[np.arange(len(matrix)), :, top_class]
        explained[task] = values
    names = model.features.feature_names_
    return [
        {
            "denial_id": denial_id,
            **{
                task: [names[i] for i in np.argsort(-np.abs(values[row]))[:5]]
                for task, values in explained.items()
            },
        }
        for row, denial_id in enumerate(frame["denial_id"])
    ]


def naive_runs(model: Any, payloads: list[dict], size: int, requests: int, repeats: int) -> dict:
    denial_batches = batches(payloads, size, requests)
    naive_scoring(model, denial_batches[0])  # warm up
    runs = []
    for _ in range(repeats):
        latencies = [_timed(lambda b=b: naive_scoring(model, b)) for b in denial_batches]
        runs.append(
            {
                **percentiles(latencies),
                "denials_per_second": size * len(latencies) / sum(latencies),
            }
        )
    return repeated(runs)


# ---------------------------------------------------------------------------- quoted figures


README_TRAINING = [  # README, "Training and evaluation": benchmarks/train_scale.py, one run
    {"rows": 100_000, "seconds": 0.8 * 60, "peak_mb": 0.69 * 1024},
    {"rows": 300_000, "seconds": 1.0 * 60, "peak_mb": 1.38 * 1024},
    {"rows": 1_000_000, "seconds": 4.7 * 60, "peak_mb": 3.72 * 1024},
]
README_INGEST = {"ingest_mib_per_s": 26.0, "peak_rss_mb": 231.0, "vs_pyx12_cpu": 3.8}


def training_scale(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {"source": "README (benchmarks/train_scale.py)", "runs": README_TRAINING}
    return {"source": str(path), "runs": json.loads(path.read_text())}


def ingestion(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {"source": "README (benchmarks/ingest_835.py, 1 GiB)", **README_INGEST}
    return {"source": str(path), **json.loads(path.read_text())}


# ---------------------------------------------------------------------------- the run


def run(args: argparse.Namespace, plan: Plan, work: Path) -> dict[str, Any]:
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # the benchmark's own registry, never the user's
    print("preparing the champion", flush=True)
    data_dir, history = prepare(args, plan, work)
    payloads = denial_payloads(history, 2_000)
    model = load_champion(data_dir)
    results: dict[str, Any] = {"machine": machine(), "plan": asdict(plan)}
    print("floor", flush=True)
    results["floor"] = {
        "batch_1000": floor(model, payloads, 1_000, plan.repeats),
        "single": floor(model, payloads, 1, plan.repeats * 20),
    }
    print("service", flush=True)
    results["service"] = measure_service(data_dir, payloads, plan, work)
    print("mlflow models serve", flush=True)
    results["peer"] = measure_peer(data_dir, payloads, plan, work)
    print("naive baseline", flush=True)
    results["naive"] = {
        "single": naive_runs(model, payloads, 1, plan.naive_single_requests, plan.repeats),
        "batch_1000": naive_runs(model, payloads, 1_000, plan.naive_batch_requests, plan.repeats),
    }
    print("challenger in shadow", flush=True)
    results["shadow"] = measure_shadow(data_dir, payloads, plan, work)
    results["training"] = training_scale(args.train_scale_json)
    results["ingestion"] = ingestion(args.ingest_json)
    results["ratios"] = ratios(results)
    return results


def measure_service(data_dir: Path, payloads: list[dict], plan: Plan, work: Path) -> dict:
    key = benchmark_key(data_dir)
    with service_process(data_dir, work / "service.log") as server:
        target = service_target(server, key)
        loaded = server.rss_mb()

        def flush(denial_id: str) -> None:
            read_back(server, key, denial_id)

        single = {
            f"c{c}": latency_runs(target, payloads, requests, c, plan.repeats)
            for c, requests in ((1, plan.single_requests), (8, plan.concurrent_requests))
        }
        batch = batch_runs(target, payloads, 1_000, plan.batch_requests, plan.repeats, flush)
        after_batch = server.rss_mb()  # the largest requests the default limit admits
        growth = {
            str(size): batch_runs(target, payloads, size, requests, plan.repeats, flush)
            for size, requests in plan.growth.items()
        }
        return {
            "memory_loaded": loaded,
            "single": single,
            "batch_1000": batch,
            "memory_after_batch_1000": after_batch,
            "growth": growth,
            "memory_after": server.rss_mb(),
        }


SHADOW_CASES = (("without", 0.0), ("with", 1.0), ("default", 0.1))


def measure_shadow(data_dir: Path, payloads: list[dict], plan: Plan, work: Path) -> dict:
    """One denial at concurrency 1 with no challenger, with one scoring every denial in
    shadow, and with one at the default share: three services side by side, measured in
    turn, round after round, so the drift of a shared machine falls on every case alike. The
    challenger is the champion's model registered again (the same work); the service without
    one started before its alias was set, and the alias is removed afterwards.

    Besides each round's percentiles: the percentiles of every round's requests pooled (a
    p99 of 100+ slow requests), what the shadow added in each round against the case without
    it (its median and spread), and the service's CPU per request, its worker processes
    included (what the challenger costs the machine)."""
    key = benchmark_key(data_dir)
    set_challenger(data_dir, present=False)
    bodies: list[bytes] = []
    runs: dict[str, list[dict[str, float]]] = {case: [] for case, _ in SHADOW_CASES}
    pooled: dict[str, list[float]] = {case: [] for case, _ in SHADOW_CASES}
    counts = {}
    with contextlib.ExitStack() as stack:
        targets = {}
        for case, share in SHADOW_CASES:
            if case == "with":
                set_challenger(data_dir, present=True)
            log = work / f"service-shadow-{case}.log"
            server = stack.enter_context(service_process(data_dir, log, share, plan.shadow_cpu))
            targets[case] = (server, service_target(server, key))
        for _, target in targets.values():
            bodies = target.bodies(batches(payloads, 1, plan.shadow_requests))
            send(target, bodies[:50], 1)  # warm up
        for round_number in range(plan.shadow_rounds):
            for case, (server, target) in targets.items():
                cpu_before = server.cpu_seconds()
                latencies, wall = send(target, bodies, 1)
                time.sleep(2)  # the challenger's last batch, before the next case is measured
                cpu_ms = (server.cpu_seconds() - cpu_before) * 1000 / len(bodies)
                runs[case].append(
                    {**percentiles(latencies), "per_second": len(bodies) / wall, "cpu_ms": cpu_ms}
                )
                pooled[case] += latencies
                print(f"  round {round_number + 1} {case}: {_round_line(runs[case][-1])}")
        counts = {case: shadow_counts(server, key) for case, (server, _) in targets.items()}
    set_challenger(data_dir, present=False)
    return {
        "handover_us": handover_cost(plan.shadow_requests * 5),
        "challenger_cpu_ms": challenger_cost(data_dir, payloads),
        **{
            case: {
                "single": repeated(runs[case]),
                "pooled": percentiles(pooled[case]),
                "added": added_by_shadow(runs[case], runs["without"]),
                "shadow": counts[case],
            }
            for case in runs
        },
    }


def added_by_shadow(
    runs: list[dict[str, float]], without: list[dict[str, float]]
) -> dict[str, dict[str, float]]:
    """What a case added to the case without a challenger, round by round (same round,
    back to back), summarised over the rounds."""
    return {
        name: summary([run[name] - base[name] for run, base in zip(runs, without, strict=True)])
        for name in ("p50", "p99", "cpu_ms")
    }


def _round_line(run: dict[str, float]) -> str:
    return f"p50 {run['p50']:.2f} ms, p99 {run['p99']:.2f} ms, CPU {run['cpu_ms']:.2f} ms a request"


CHALLENGER_BATCHES = (1, 8, 32)  # denials a batch: a request's, and what pacing gathers


def challenger_cost(data_dir: Path, payloads: list[dict]) -> dict[str, float]:
    """The challenger's worker CPU per denial (ms), in-process, by batch size: what gathering
    the requests of a quarter second into one batch saves (the database write left out)."""
    from serving.repository import use_input_hash_key
    from serving.shadow import ChallengerWorker, ShadowJob

    use_input_hash_key(b"benchmark key")  # the shadow records keep a keyed input hash
    worker = ChallengerWorker(load_champion(data_dir), "2", len)
    cost = {}
    for size in CHALLENGER_BATCHES:
        denials = batches(payloads, 1, size)
        jobs = [ShadowJob(f"r{n}", "1", batch, [{}]) for n, batch in enumerate(denials)]
        worker.score(jobs)  # warm up
        calls = max(5, 200 // size)
        began = time.process_time()
        for _ in range(calls):
            worker.score(jobs)
        cost[str(size)] = (time.process_time() - began) * 1000 / (calls * size)
    return cost


def handover_cost(requests: int) -> dict[str, float]:
    """What the shadow adds on the request path itself, in-process (microseconds): sampling a
    one-denial answer and handing it over, the challenger's own work elsewhere."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    from serving.scoring import ScoredBatch
    from serving.shadow import ShadowScorer

    result = {
        "root_cause": {"category": "coding"},
        "recovery": {"probability": 0.5},
        "priority": {"score": 10.0},
    }
    scorer = ShadowScorer("2", 1.0, ThreadPoolExecutor(1), lambda jobs: 0, capacity=10**9)
    timings = []
    for n in range(requests):
        answer = ScoredBatch(f"r{n}", "1", "m", pd.Timestamp.now("UTC"), [result])
        began = time.perf_counter()
        scorer.offer(answer, [{"denial_id": f"D-{n}"}])
        timings.append(time.perf_counter() - began)
    scorer.close()
    micro = np.asarray(timings) * 1e6
    return {f"p{q}": float(np.percentile(micro, q)) for q in (50, 99)}


def set_challenger(data_dir: Path, present: bool) -> None:
    """Register the champion's model again as challenger, or remove the challenger alias."""
    from mlflow.tracking import MlflowClient

    from training.tracking import CHALLENGER, CHAMPION, MODEL_NAME, configure_tracking

    configure_tracking(data_dir)
    client = MlflowClient()
    if not present:
        with contextlib.suppress(Exception):  # no alias to remove
            client.delete_registered_model_alias(MODEL_NAME, CHALLENGER)
        return
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    again = client.create_model_version(MODEL_NAME, champion.source, run_id=champion.run_id)
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, again.version)


def shadow_counts(server: Server, key: str) -> dict[str, float]:
    """The service's shadow counters by outcome (scored, dropped, failed), from /metrics."""
    connection = http.client.HTTPConnection(*server.host, timeout=60)
    connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {key}"})
    text = connection.getresponse().read().decode()
    pattern = r'denial_triage_shadow_denials_total\{outcome="(\w+)"\} ([0-9.e+]+)'
    return {outcome: float(value) for outcome, value in re.findall(pattern, text)}


def measure_peer(data_dir: Path, payloads: list[dict], plan: Plan, work: Path) -> dict:
    with peer_process(data_dir, work / "mlflow-serve.log") as server:
        target = peer_target(server)
        return {
            "single": {
                f"c{c}": latency_runs(target, payloads, plan.peer_single_requests, c, plan.repeats)
                for c in (1, 8)
            },
            "batch_1000": batch_runs(
                target, payloads, 1_000, plan.peer_batch_requests, plan.repeats
            ),
            "memory_after": server.rss_mb(),
        }


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """Same-run ratios, each from medians."""
    service, peer, naive = results["service"], results["peer"], results["naive"]
    floor_batch = results["floor"]["batch_1000"]
    per_denial = service["batch_1000"]["per_denial_ms"]["median"]
    batch_rate = service["batch_1000"]["denials_per_second"]["median"]
    single_rate = {c: service["single"][c]["per_second"]["median"] for c in ("c1", "c8")}
    return {
        "service_per_denial_vs_stock_floor": per_denial / floor_batch["stock_ms"]["median"],
        "service_per_denial_vs_design_floor": per_denial / floor_batch["design_ms"]["median"],
        "service_vs_peer_single_c1": single_rate["c1"]
        / peer["single"]["c1"]["per_second"]["median"],
        "service_vs_peer_single_c8": single_rate["c8"]
        / peer["single"]["c8"]["per_second"]["median"],
        "service_vs_peer_batch": batch_rate / peer["batch_1000"]["denials_per_second"]["median"],
        "service_vs_naive_single": single_rate["c1"]
        / naive["single"]["denials_per_second"]["median"],
        "service_vs_naive_batch": batch_rate / naive["batch_1000"]["denials_per_second"]["median"],
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "processor": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


# ---------------------------------------------------------------------------- report


def _m(stat: dict[str, float], digits: int = 1) -> str:
    """Median with the spread of repeated runs."""
    return f"{stat['median']:,.{digits}f} ({stat['min']:,.{digits}f}-{stat['max']:,.{digits}f})"


def table(results: dict[str, Any]) -> str:
    service, peer, naive = results["service"], results["peer"], results["naive"]
    floor_batch, floor_single = results["floor"]["batch_1000"], results["floor"]["single"]
    ratio = results["ratios"]
    lines = [
        "| what | figure (median of repeats, min-max) | target | ratio in the same run |",
        "|---|---|---|---|",
        f"| floor, 1,000 denials, stock `pred_contrib` | {_m(floor_batch['stock_ms'], 3)} "
        "ms a denial | | |",
        f"| floor, 1,000 denials, top class only (this design) "
        f"| {_m(floor_batch['design_ms'], 3)} ms a denial | | |",
        f"| floor, one denial, top class only | {_m(floor_single['design_ms'], 2)} ms | | |",
    ]
    for c, label in (("c1", "concurrency 1"), ("c8", "concurrency 8")):
        s = service["single"][c]
        lines.append(
            f"| service, one denial with reasons, {label} | p50 {_m(s['p50'])} / p95 "
            f"{_m(s['p95'])} / p99 {_m(s['p99'])} ms; {_m(s['per_second'], 0)} requests/s "
            f"| {'p99 <= 25 ms' if c == 'c1' else ''} "
            f"| {ratio[f'service_vs_peer_single_{c}']:.1f}x mlflow serve |"
        )
    b = service["batch_1000"]
    lines += [
        f"| service, 1,000-denial requests with reasons | {_m(b['denials_per_second'], 0)} "
        f"denials/s; {_m(b['latency_ms'], 0)} ms a request | >= 1,000 denials/s "
        f"| {ratio['service_vs_peer_batch']:.1f}x mlflow serve, "
        f"{ratio['service_vs_naive_batch']:.1f}x naive |",
        f"| service time per denial in a 1,000 batch | {_m(b['per_denial_ms'], 3)} ms "
        f"| <= 1.5x floor | {ratio['service_per_denial_vs_stock_floor']:.2f}x stock floor, "
        f"{ratio['service_per_denial_vs_design_floor']:.2f}x top-class floor |",
    ]
    for c in ("c1", "c8"):
        p = peer["single"][c]
        lines.append(
            f"| mlflow models serve, one denial, concurrency {c[1:]} | p50 {_m(p['p50'])} / p99 "
            f"{_m(p['p99'])} ms; {_m(p['per_second'], 1)} requests/s | | |"
        )
    pb = peer["batch_1000"]
    n1, nb = naive["single"], naive["batch_1000"]
    lines += [
        f"| mlflow models serve, 1,000-denial requests | {_m(pb['denials_per_second'], 0)} "
        f"denials/s; {_m(pb['latency_ms'], 0)} ms a request | | |",
        f"| naive baseline (in-process), one denial | p50 {_m(n1['p50'])} ms | "
        f"| service {ratio['service_vs_naive_single']:.0f}x its throughput |",
        f"| naive baseline (in-process), 1,000 denials | {_m(nb['denials_per_second'], 0)} "
        "denials/s | | |",
        "| serving process memory (RSS): champion loaded; peak after 1,000-denial requests; "
        f"peak after 10,000-denial requests | {service['memory_loaded']['rss_mb']:,.0f}; "
        f"{service['memory_after_batch_1000']['peak_rss_mb']:,.0f}; "
        f"{service['memory_after']['peak_rss_mb']:,.0f} MiB (audit worker: "
        f"{_worker_mb(service):,.0f} MiB more) | < 1 GB "
        f"| mlflow serve peak {peer['memory_after']['tree_peak_rss_mb']:,.0f} MiB |",
    ]
    return "\n".join(
        [
            *lines,
            "",
            growth_table(service["growth"]),
            "",
            shadow_table(results["shadow"]),
            "",
            quoted_tables(results),
        ]
    )


SHADOW_LABELS = {"default": "share 0.1 (the default)", "with": "share 1.0"}


def shadow_table(shadow: dict[str, Any]) -> str:
    """Single-denial latency without and with the challenger in shadow, and what it added:
    round by round against the case without it (median of rounds, min-max), and pooled."""
    without = shadow["without"]
    lines = [
        "| one denial, concurrency 1 | p50 ms | p99 ms | p99 ms, rounds pooled "
        "| service CPU ms a request | shadow scored / dropped |",
        "|---|---|---|---|---|---|",
        f"| no challenger | {_m(without['single']['p50'], 2)} | {_m(without['single']['p99'], 2)} "
        f"| {without['pooled']['p99']:.2f} | {_m(without['single']['cpu_ms'], 2)} | |",
    ]
    measured = [_measured_row(shadow[case], label) for case, label in SHADOW_LABELS.items()]
    added = [_added_row(shadow[case], without, label) for case, label in SHADOW_LABELS.items()]
    lines += measured + added
    handover = shadow["handover_us"]
    lines.append(
        f"| the hand-over on the request path alone (in-process) | {handover['p50'] / 1000:.3f} "
        f"| {handover['p99'] / 1000:.3f} | | | |"
    )
    cost = shadow.get("challenger_cpu_ms", {})
    per_batch = "; ".join(f"{cost[size]:.2f} in batches of {size}" for size in cost)
    return "\n".join([*lines, "", f"Challenger's CPU ms a denial, in-process: {per_batch}."])


def _measured_row(case: dict[str, Any], label: str) -> str:
    single, counts = case["single"], case["shadow"]
    return (
        f"| challenger in shadow, {label} | {_m(single['p50'], 2)} | {_m(single['p99'], 2)} "
        f"| {case['pooled']['p99']:.2f} | {_m(single['cpu_ms'], 2)} "
        f"| {counts.get('scored', 0):,.0f} / {counts.get('dropped', 0):,.0f} |"
    )


def _added_row(case: dict[str, Any], without: dict[str, Any], label: str) -> str:
    """What the case added to the case without a challenger: round by round, and pooled."""
    added, pooled_p99 = case["added"], case["pooled"]["p99"] - without["pooled"]["p99"]
    return (
        f"| added at {label}, round by round (target p99 < 1 ms) | {_d(added['p50'])} "
        f"| {_d(added['p99'])} | {pooled_p99:+.2f} | {_d(added['cpu_ms'])} | |"
    )


def _d(stat: dict[str, float]) -> str:
    """A signed difference: median of rounds with its spread."""
    return f"{stat['median']:+.2f} ({stat['min']:+.2f} to {stat['max']:+.2f})"


def run_shadow_only(args: argparse.Namespace, plan: Plan, work: Path) -> dict[str, Any]:
    """Only the challenger-in-shadow comparison (9.), on a trained or reused champion."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    print("preparing the champion", flush=True)
    data_dir, history = prepare(args, plan, work)
    payloads = denial_payloads(history, 2_000)
    results: dict[str, Any] = {"machine": machine(), "plan": asdict(plan)}
    print("challenger in shadow", flush=True)
    results["shadow"] = measure_shadow(data_dir, payloads, plan, work)
    return results


def _worker_mb(service: dict[str, Any]) -> float:
    memory = service["memory_after"]
    return memory["tree_peak_rss_mb"] - memory["peak_rss_mb"]


def growth_table(growth: dict[str, Any]) -> str:
    lines = [
        "| denials a request | latency ms | ms a denial | denials/s |",
        "|---:|---|---|---|",
    ]
    for size, run in growth.items():
        lines.append(
            f"| {int(size):,} | {_m(run['latency_ms'])} | {_m(run['per_denial_ms'], 3)} "
            f"| {_m(run['denials_per_second'], 0)} |"
        )
    return "\n".join(lines)


def quoted_tables(results: dict[str, Any]) -> str:
    training, ingest = results["training"], results["ingestion"]
    lines = [
        f"Training scale ({training['source']}):",
        "",
        "| rows | minutes | peak memory (GB) |",
        "|---:|---:|---:|",
    ]
    lines += [
        f"| {r['rows']:,} | {r['seconds'] / 60:.1f} | {r['peak_mb'] / 1024:.2f} |"
        for r in training["runs"]
    ]
    lines += [
        "",
        f"Ingestion ({ingest['source']}): {ingest['ingest_mib_per_s']:.0f} MiB/s end to end, "
        f"peak {ingest['peak_rss_mb']:.0f} MiB, {ingest['vs_pyx12_cpu']:.1f}x pyx12's tokenizer "
        "(CPU time).",
    ]
    return "\n".join(lines)


def shadow_plan(plan: Plan, args: argparse.Namespace) -> Plan:
    """The plan with the shadow comparison's rounds and requests as given on the command line."""
    return replace(
        plan,
        shadow_rounds=args.shadow_rounds or plan.shadow_rounds,
        shadow_requests=args.shadow_requests or plan.shadow_requests,
        shadow_cpu=args.shadow_cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--data-dir", type=Path, help="reuse this data directory's champion")
    parser.add_argument("--history", type=Path, help="history to send (with --data-dir)")
    parser.add_argument("--json", type=Path, default=Path("data/benchmarks/serving.json"))
    parser.add_argument("--train-scale-json", type=Path, help="output of train_scale.py --json")
    parser.add_argument("--ingest-json", type=Path, help="ingestion figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the trained data directory")
    parser.add_argument(
        "--shadow-only", action="store_true", help="only the challenger-in-shadow comparison"
    )
    parser.add_argument("--shadow-rounds", type=int, help="rounds of the shadow comparison")
    parser.add_argument("--shadow-requests", type=int, help="requests a case sends a round")
    parser.add_argument(
        "--shadow-cpu",
        type=int,
        help="keep the shadow cases' services on this core: the challenger's worker then "
        "competes with the request thread for it, the worst case of a busy machine",
    )
    args = parser.parse_args()
    plan = shadow_plan(QUICK if args.quick else Plan(), args)
    work = Path(tempfile.mkdtemp(prefix="denial-triage-bench-"))
    began = time.perf_counter()
    try:
        results = (run_shadow_only if args.shadow_only else run)(args, plan, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["minutes"] = (time.perf_counter() - began) / 60
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print()
    print(shadow_table(results["shadow"]) if args.shadow_only else table(results))
    print(f"\n{results['minutes']:.1f} minutes; figures in {args.json}")


if __name__ == "__main__":
    main()
