"""Load test: a steady mix of worklist and reviewer requests on loopback, bounded in time.

One command. In a temporary directory it trains a small champion on a generated history with
the shipped specs, creates one API key per role, and starts ``denial-triage serve`` as shipped
(one uvicorn process, SQLite records, audit worker process) on a free 127.0.0.1 port. Then
locust, headless and in a process of its own (its gevent monkey-patching stays out of this
one), holds a steady request rate for a fixed time: every simulated client sends one request
per interval on its own schedule (:func:`paced`), the clients spread over the interval, so the
rate does not depend on how fast the service answers. The mix, each request with the key of
the role that sends it:

- ``POST /v1/score`` with one denial and five reasons per model (scorer key), most requests;
- ``POST /v1/score`` with 50 denials (scorer key);
- ``GET /v1/denials/{id}``, a reviewer reading a denial scored earlier in the run;
- ``POST /v1/feedback``, a reviewer confirming a root cause (a new idempotency key each time).

Meanwhile this process samples the resident memory (RSS) of the service and of it with its
children (the audit worker) every second. Afterwards it checks in the database that every
denial the service answered has its audit record.

Prints markdown tables, writes JSON, and exits 1 when a request failed (non-2xx, connection
failure or an answer short of its denials), an audit record is missing, or memory was not
flat: RSS of the service with its children growing by :data:`FLAT_SLOPE_MIB_PER_MINUTE` or
more after the warm-up (least squares over the samples), or ending more than
:data:`FLAT_END_CHANGE` away from its value after the warm-up.

    .venv/bin/python benchmarks/load.py                  # 40 requests/s for 60 s
    .venv/bin/python benchmarks/load.py --rate 150 --json data/benchmarks/load-150.json
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from harness import clean_env, create_keys, denial_payloads, free_port, wait_ready

# Request kinds and their shares of the mix, by the name locust reports them under.
SCORE_ONE = "score 1 denial"
SCORE_BATCH = "score 50 denials"
READ_DENIAL = "read denial"
FEEDBACK = "feedback"
MIX = {SCORE_ONE: 75, SCORE_BATCH: 5, READ_DENIAL: 12, FEEDBACK: 8}
BATCH_DENIALS = 50
REQUESTS_PER_USER_PER_SECOND = 2.0  # each simulated worklist client's pace
PAYLOAD_DENIALS = 500  # distinct denials the requests draw from

# Memory is flat when both hold (RSS of the service with its children, after the warm-up).
# After the warm-up, RSS moves in steps of 1-5 MiB when a burst of audit records sets a new
# high-water mark (least-squares slopes of 0.6-3.8 MiB/min over 40 s at 40-80 requests/s,
# 0.5 MiB/min over the last 5 minutes of a 10-minute run). 10 MiB/min keeps a step from
# failing the run yet catches a leak of about 6 KB a request at 30 requests/s: keeping one
# single-denial answer (about 10 KB) or one audit job per request would fail it.
FLAT_SLOPE_MIB_PER_MINUTE = 10.0
FLAT_END_CHANGE = 0.05

RequestRecord = tuple[str, float, float, str | None]  # kind, start (epoch s), ms, error

SPEC_VARIABLE = "LOAD_TEST_SPEC"  # set only in the locust process: where its spec is
SERVICE_START_SECONDS = 180
SAMPLE_EVERY_SECONDS = 1.0


@dataclass(frozen=True)
class LoadPlan:
    """How much load, for how long."""

    rate: float = 40.0  # requests per second, every kind together
    seconds: int = 60
    users: int | None = None  # simulated clients; default one per 2 requests/s, at least 4
    # Measured: RSS climbs for the first 15-20 s of load (a step of about 5 MiB at 13-18 s at
    # 40 requests/s, as threads, allocator arenas and SQLite caches come into use), then creeps
    # by well under 1 MiB a minute (10-minute run). Memory is judged after this warm-up.
    warm_up_seconds: float = 20.0
    history_rows: int = 20_000

    @property
    def user_count(self) -> int:
        return self.users or max(4, round(self.rate / REQUESTS_PER_USER_PER_SECOND))

    @property
    def per_user_rate(self) -> float:
        return self.rate / self.user_count


@dataclass(frozen=True)
class Deployment:
    """A data directory with a champion, the history its denials come from, a key per role."""

    data_dir: Path
    history: Path
    keys: dict[str, str]

    @property
    def database_url(self) -> str:
        return records_url(self.data_dir)


def records_url(data_dir: Path) -> str:
    """The service's records database in a data directory, as the service finds it."""
    return f"sqlite:///{(data_dir / 'denial-triage.db').as_posix()}"


# ---------------------------------------------------------------------------- preparation


def prepare(work: Path, rows: int) -> Deployment:
    """Generate a history, train and promote a champion with the shipped specs, create keys."""
    from training.run import TrainingOptions, evaluation_on, train
    from training.specs import load_specs
    from training.synthetic import generate_history
    from training.tracking import promote

    data_dir = work / "data"
    with _own_registry():
        history = generate_history(rows, 7, work / "history.parquet")
        options = TrainingOptions(data=history, data_dir=data_dir)
        trained = train(options)
        version = trained.record.model_version
        decision = promote(version, load_specs(), evaluation_on(history, options))
    if decision.alias != "champion":
        raise SystemExit(f"the trained model was not promoted: {decision.reasons}")
    return Deployment(data_dir, history, service_keys(records_url(data_dir)))


@contextlib.contextmanager
def _own_registry() -> Iterator[None]:
    """Train into the temporary data directory's registry, never the user's MLflow."""
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def service_keys(database_url: str) -> dict[str, str]:
    """One new API key per role, by role."""
    return create_keys(database_url, ("scorer", "reviewer", "admin"), "load")


# ---------------------------------------------------------------------------- the service


@dataclass
class Service:
    """``denial-triage serve`` on a loopback port."""

    process: subprocess.Popen
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def usage(self) -> tuple[float, float, float, float]:
        """Resident memory (MiB) and CPU time so far (s) of the service process, and of it
        with its children (the audit worker)."""
        main = psutil.Process(self.process.pid)
        rss, cpu = _rss_and_cpu(main)
        tree_rss, tree_cpu = rss, cpu
        for child in main.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):  # a worker may be replaced
                child_rss, child_cpu = _rss_and_cpu(child)
                tree_rss, tree_cpu = tree_rss + child_rss, tree_cpu + child_cpu
        return rss, tree_rss, cpu, tree_cpu


def _rss_and_cpu(process: psutil.Process) -> tuple[float, float]:
    with process.oneshot():
        times = process.cpu_times()
        return process.memory_info().rss / 2**20, times.user + times.system


@contextlib.contextmanager
def running_service(
    deployment: Deployment, work: Path, settings: dict[str, str] | None = None
) -> Iterator[Service]:
    """The service as shipped (or with ``settings``, environment variables), stopped with
    SIGTERM (a graceful shutdown) afterwards."""
    port = free_port()
    env = clean_env()
    env["DENIAL_TRIAGE_DATA_DIR"] = str(deployment.data_dir)
    env.update(settings or {})
    command = [sys.executable, "-m", "denial_triage", "serve", "--port", str(port)]
    log = work / "service.log"
    with log.open("w") as output:
        # cwd is the work folder so that no stray .env file configures the service.
        process = subprocess.Popen(
            command, env=env, cwd=work, stdout=output, stderr=subprocess.STDOUT
        )
        service = Service(process, port)
        try:
            wait_ready(process, port, "/readyz", log, SERVICE_START_SECONDS, "the service")
            yield service
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def call(
    service: Service, method: str, path: str, key: str | None = None, body: Any = None
) -> tuple[int, Any]:
    """One request from this process: status and decoded JSON (or text) answer."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(service.base + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def prime(service: Service, keys: dict[str, str], denials: list[dict], run_id: str) -> list[str]:
    """A few requests of every kind before the load, so that the first measured ones do not
    pay for first calls; returns the denial ids they scored, for reviewers to read."""
    scored = []
    for size in (BATCH_DENIALS, 1, 1, 1):
        batch = [
            {**denials[i], "denial_id": f"{run_id}-prime-{len(scored) + i}"} for i in range(size)
        ]
        status, answer = call(service, "POST", "/v1/score", keys["scorer"], {"denials": batch})
        if status != 200:
            raise SystemExit(f"priming the service failed: HTTP {status}")
        scored += [result["denial_id"] for result in answer["results"]]
    reviewer = keys["reviewer"]
    if call(service, "GET", f"/v1/denials/{scored[0]}", reviewer)[0] != 200:
        raise SystemExit("priming the service failed: a scored denial could not be read")
    feedback = {
        "idempotency_key": f"{run_id}-prime",
        "denial_id": scored[0],
        "confirmed_root_cause": True,
    }
    if call(service, "POST", "/v1/feedback", reviewer, feedback)[0] != 201:
        raise SystemExit("priming the service failed: feedback was refused")
    return scored


# ---------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class UsageSample:
    at: float  # epoch seconds, the clock locust's request start times use
    service_mib: float
    with_children_mib: float
    service_cpu_s: float  # CPU time used since the service started
    with_children_cpu_s: float
    machine_busy_s: float  # CPU time every process of the machine has used since boot


class UsageSampler:
    """Samples the service's RSS and CPU time every second on a thread, while the load runs."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.samples: list[UsageSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def __enter__(self) -> UsageSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                at, machine = time.time(), _machine_busy_seconds()
                self.samples.append(UsageSample(at, *self.service.usage(), machine))
            self._stop.wait(SAMPLE_EVERY_SECONDS)


def _machine_busy_seconds() -> float:
    """CPU time spent on anything but idling, all cores together: the other engineers' work on
    a shared machine shows here."""
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


# ---------------------------------------------------------------------------- locust


@dataclass(frozen=True)
class LocustRun:
    requests: list[RequestRecord]
    answered: list[str]  # denial ids the service scored, as the answers said
    summary: dict[str, int]  # locust's own totals, a cross-check
    exit_code: int
    cpu_warnings: int  # locust's warnings that its own process was short of CPU
    cores: float  # CPU time of the locust process over its wall time


def run_locust(
    service: Service,
    plan: LoadPlan,
    keys: dict[str, str],
    denials: list[dict],
    seed_ids: list[str],
    run_id: str,
    work: Path,
) -> LocustRun:
    """Locust, headless, in its own process, for ``plan.seconds``; this file is its locustfile."""
    spec_path = work / "locust-spec.json"
    records_path = work / "locust-records.json"
    spec = {
        "keys": keys,
        "denials": denials,
        "per_user_rate": plan.per_user_rate,
        "mix": MIX,
        "run_id": run_id,
        "seed_ids": seed_ids,
        "records": str(records_path),
    }
    spec_path.touch(mode=0o600)  # it holds API keys
    spec_path.write_text(json.dumps(spec))
    command = [
        sys.executable, "-m", "locust", "-f", str(Path(__file__).resolve()), "--headless",
        "--host", service.base, "-u", str(plan.user_count), "-r", str(plan.user_count),
        "--run-time", f"{plan.seconds}s", "--stop-timeout", "10", "--only-summary",
        "--csv", str(work / "locust"), "--loglevel", "WARNING",
    ]  # fmt: skip
    log = work / "locust.log"
    began, used_before = time.perf_counter(), _children_cpu_seconds()
    with log.open("w") as output:
        finished = subprocess.run(
            command,
            env={**os.environ, SPEC_VARIABLE: str(spec_path)},
            cwd=work,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=plan.seconds + 120,
            check=False,
        )
    cores = (_children_cpu_seconds() - used_before) / (time.perf_counter() - began)
    if not records_path.exists():
        raise SystemExit(f"locust recorded nothing:\n{log.read_text()[-3000:]}")
    records = json.loads(records_path.read_text())
    return LocustRun(
        requests=[tuple(r) for r in records["requests"]],
        answered=records["answered"],
        summary=records["locust_count"],
        exit_code=finished.returncode,
        cpu_warnings=log.read_text().count("CPU usage"),
        cores=cores,
    )


def _children_cpu_seconds() -> float:
    """CPU time of this process's finished children (locust, once it has exited)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def worklist_client(spec: dict[str, Any]) -> type:
    """The simulated client locust runs: paced to a constant rate, the mix by weight."""
    import gevent
    from locust import FastHttpUser, events, task

    denials = spec["denials"]
    run_id = spec["run_id"]
    answered: list[str] = list(spec["seed_ids"])  # every client reads any scored denial
    requests: list[RequestRecord] = []
    numbers = itertools.count()
    scorer = {"Authorization": f"Bearer {spec['keys']['scorer']}"}
    reviewer = {"Authorization": f"Bearer {spec['keys']['reviewer']}"}

    @events.request.add_listener
    def record(
        name: str, response_time: float, exception: Any, start_time: float, **_: Any
    ) -> None:
        # Only kinds, times and status lines: never bodies, which carry claim data.
        error = None if exception is None else str(exception)[:160]
        requests.append((name, start_time, response_time, error))

    @events.quitting.add_listener
    def save(environment: Any, **_: Any) -> None:
        totals = environment.stats.total
        locust_count = {"requests": totals.num_requests, "failures": totals.num_failures}
        scored = answered[len(spec["seed_ids"]) :]  # the run's own, without priming's
        records = {"requests": requests, "answered": scored, "locust_count": locust_count}
        Path(spec["records"]).write_text(json.dumps(records))

    def new_denials(count: int) -> list[dict[str, Any]]:
        return [
            {**random.choice(denials), "denial_id": f"{run_id}-{next(numbers)}"}
            for _ in range(count)
        ]

    interval = 1 / spec["per_user_rate"]

    class WorklistClient(FastHttpUser):
        wait_time = paced(interval)

        def on_start(self) -> None:
            # Each client's schedule starts at a random point of one interval, so that the
            # clients spread their requests over it instead of sending them together.
            self.next_start = time.monotonic() + random.uniform(0, interval)
            gevent.sleep(self.next_start - time.monotonic())

        def score(self, name: str, size: int) -> None:
            batch = new_denials(size)
            body = {"denials": batch, "explain": True, "top_reasons": 5}
            with self.client.post(
                "/v1/score", json=body, headers=scorer, name=name, catch_response=True
            ) as response:
                if _failed(response, 200):
                    return
                results = response.json()["results"]
                if len(results) != size:
                    response.failure(f"{len(results)} results for {size} denials")
                    return
                answered.extend(result["denial_id"] for result in results)
                response.success()

        @task(spec["mix"][SCORE_ONE])
        def score_one(self) -> None:
            self.score(SCORE_ONE, 1)

        @task(spec["mix"][SCORE_BATCH])
        def score_batch(self) -> None:
            self.score(SCORE_BATCH, BATCH_DENIALS)

        @task(spec["mix"][READ_DENIAL])
        def read_denial(self) -> None:
            denial_id = random.choice(answered)
            with self.client.get(
                f"/v1/denials/{denial_id}", headers=reviewer, name=READ_DENIAL, catch_response=True
            ) as response:
                if _failed(response, 200):
                    return
                if response.json()["denial_id"] != denial_id:
                    response.failure("another denial was answered")
                    return
                response.success()

        @task(spec["mix"][FEEDBACK])
        def send_feedback(self) -> None:
            body = {
                "idempotency_key": f"{run_id}-feedback-{next(numbers)}",
                "denial_id": random.choice(answered),
                "confirmed_root_cause": True,
            }
            with self.client.post(
                "/v1/feedback", json=body, headers=reviewer, name=FEEDBACK, catch_response=True
            ) as response:
                if not _failed(response, 201):  # a new idempotency key is a new record
                    response.success()

    return WorklistClient


def paced(interval: float) -> Callable[[Any], float]:
    """A locust wait time: one request every ``interval`` seconds on the client's own schedule.

    Locust's ``constant_throughput`` anchors every client's schedule at its spawn, and locust
    spawns the clients of a second in the same instant, so they send in lockstep: 20 requests
    in the same millisecond every half second, each waiting behind the others (p50 55 ms for a
    5 ms request at 40 requests/s). Here the schedule starts where ``on_start`` put it. A
    request that runs late moves the schedule instead of bursting to catch up.
    """

    def wait_time(user: Any) -> float:
        now = time.monotonic()
        user.next_start = max(user.next_start + interval, now)
        return user.next_start - now

    return wait_time


def _failed(response: Any, expected: int) -> bool:
    """Mark a connection failure or an unexpected status as a failure; True if it was one."""
    error = getattr(response, "error", None)
    if error is not None or response.status_code != expected:
        reason = type(error).__name__ if error is not None else f"HTTP {response.status_code}"
        response.failure(reason)
        return True
    return False


# ---------------------------------------------------------------------------- analysis


def latency_stats(latencies_ms: list[float], errors: int) -> dict[str, float]:
    ms = np.asarray(latencies_ms, dtype=float)
    stats = {"count": len(ms), "errors": errors}
    if len(ms):
        stats.update({f"p{q}": float(np.percentile(ms, q)) for q in (50, 95, 99)})
        stats["max"] = float(ms.max())
    return stats


def by_kind(requests: list[RequestRecord]) -> dict[str, dict]:
    """Latency percentiles and errors per request kind, and of all requests together."""
    kinds = {}
    for name in [*MIX, "all"]:
        picked = [r for r in requests if name in (r[0], "all")]
        kinds[name] = latency_stats([r[2] for r in picked], sum(r[3] is not None for r in picked))
    return kinds


def pacing(requests: list[RequestRecord], window: float = 10.0) -> dict:
    """Requests per second achieved, overall and in each complete 10-second window."""
    starts = np.sort([r[1] for r in requests])
    span = float(starts[-1] - starts[0]) if len(starts) > 1 else 0.0
    windows = [
        float(np.sum((starts >= at) & (starts < at + window)) / window)
        for at in np.arange(starts[0], starts[-1] - window + 1e-9, window)
    ]
    return {
        "first_start": float(starts[0]),
        "last_start": float(starts[-1]),
        "seconds": span,
        "per_second": (len(starts) - 1) / span if span else 0.0,
        "slowest_window": min(windows, default=0.0),
        "fastest_window": max(windows, default=0.0),
    }


def memory(samples: list[UsageSample], first: float, last: float, warm_up: float) -> dict:
    """RSS before the load, after its warm-up and at its end, the slope after the warm-up
    (least squares, MiB a minute), and whether that is flat by the stated definition."""
    before = [s for s in samples if s.at < first] or samples[:1]
    during = [s for s in samples if first <= s.at <= last + SAMPLE_EVERY_SECONDS]
    settled = [s for s in during if s.at >= first + warm_up]
    if len(settled) < 3:
        raise SystemExit("too few memory samples after the warm-up: run longer")
    minutes = np.array([(s.at - first) / 60 for s in settled])
    figures: dict[str, Any] = {"samples": len(during), "settled_samples": len(settled)}
    for part in ("service_mib", "with_children_mib"):
        mib = np.array([getattr(s, part) for s in settled])
        figures[part] = {
            "start": getattr(before[-1], part),
            "after_warm_up": float(mib[0]),
            "end": float(mib[-1]),
            "peak": max(getattr(s, part) for s in during),
            "slope_per_minute": float(np.polyfit(minutes, mib, 1)[0]),
        }
    judged = figures["with_children_mib"]
    change = abs(judged["end"] - judged["after_warm_up"]) / judged["after_warm_up"]
    figures["end_change"] = change
    figures["flat"] = judged["slope_per_minute"] < FLAT_SLOPE_MIB_PER_MINUTE and (
        change <= FLAT_END_CHANGE
    )
    return figures


def cpu(samples: list[UsageSample], first: float, last: float) -> dict[str, float]:
    """Average CPU use during the load, in cores: the service, its audit worker, and the
    whole machine (locust and whatever else runs on it included)."""
    during = [s for s in samples if first <= s.at <= last + SAMPLE_EVERY_SECONDS]
    if len(during) < 2:
        return {}
    start, end = during[0], during[-1]
    seconds = end.at - start.at
    service = (end.service_cpu_s - start.service_cpu_s) / seconds
    tree = (end.with_children_cpu_s - start.with_children_cpu_s) / seconds
    machine = (end.machine_busy_s - start.machine_busy_s) / seconds
    return {
        "service_cores": service,
        "audit_worker_cores": tree - service,
        "machine_cores": machine,
    }


def audit_check(service: Service, deployment: Deployment, answered: set[str], run_id: str) -> dict:
    """Every denial the service answered has its audit record in the database."""
    from sqlalchemy import func, select

    from serving.database import make_engine
    from serving.records import ScoreRecord

    # A reviewer's read waits until every audit record of the requests answered before it is
    # written (or spooled): after it, the database holds all it ever will for this run.
    probe = next(iter(answered))
    status, _ = call(service, "GET", f"/v1/denials/{probe}", deployment.keys["reviewer"])
    ours = ScoreRecord.denial_id.like(f"{run_id}-%")
    engine = make_engine(deployment.database_url)
    try:
        with engine.connect() as connection:
            recorded = set(connection.scalars(select(ScoreRecord.denial_id).where(ours)))
            records = connection.scalar(select(func.count()).where(ours)) or 0
    finally:
        engine.dispose()
    _, readiness = call(service, "GET", "/readyz")
    return {
        "read_status": status,
        "answered": len(answered),
        "records": records,
        "denials_with_records": len(answered & recorded),
        "lost": len(answered - recorded),
        "spooled": readiness.get("audit_records_spooled"),
        "service_counter": _denials_scored(service, deployment.keys["admin"]),
    }


def _denials_scored(service: Service, admin_key: str) -> float | None:
    """The service's own count of denials scored, from ``/metrics``."""
    status, text = call(service, "GET", "/metrics", admin_key)
    for line in str(text).splitlines() if status == 200 else []:
        if line.startswith("denial_triage_denials_scored_total "):
            return float(line.split()[1])
    return None


# ---------------------------------------------------------------------------- the run


def run(
    plan: LoadPlan,
    work: Path,
    deployment: Deployment | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Prepare (unless given a deployment), serve, load, measure and check; the results."""
    began = time.perf_counter()
    phases: dict[str, float] = {}

    def done(phase: str, next_step: str) -> None:
        phases[phase] = time.perf_counter() - began - sum(phases.values())
        say(f"{phases[phase]:5.1f} s {phase}; {next_step}")

    load_average = os.getloadavg()
    if deployment is None:
        say("training a small champion")
        deployment = prepare(work, plan.history_rows)
    denials = denial_payloads(deployment.history, PAYLOAD_DENIALS)
    run_id = f"load-{time.time_ns():x}"
    done("prepare", "starting the service")
    with running_service(deployment, work) as service:
        seed_ids = prime(service, deployment.keys, denials, run_id)
        done("start", f"{plan.rate:g} requests/s for {plan.seconds} s")
        with UsageSampler(service) as sampler:
            time.sleep(2 * SAMPLE_EVERY_SECONDS)  # samples of the service at rest
            locust = run_locust(service, plan, deployment.keys, denials, seed_ids, run_id, work)
        done("load", "checking the audit log")
        answered = {*seed_ids, *locust.answered}
        audit = audit_check(service, deployment, answered, run_id)
    done("check and stop", "done")
    if not locust.requests:
        raise SystemExit(f"locust sent no request (exit code {locust.exit_code})")
    paced = pacing(locust.requests)
    errors = [r[3] for r in locust.requests if r[3] is not None]
    return {
        "plan": {
            **asdict(plan),
            "users": plan.user_count,
            "per_user_rate": plan.per_user_rate,
            "mix": MIX,
            "batch_denials": BATCH_DENIALS,
        },
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": load_average},
        "requests": len(locust.requests),
        "denials_scored": len(locust.answered),
        "rate": paced,
        "errors": len(errors),
        "error_kinds": {e: errors.count(e) for e in sorted(set(errors))},
        "latency_ms": by_kind(locust.requests),
        "locust": {
            **locust.summary,
            "exit_code": locust.exit_code,
            "cpu_warnings": locust.cpu_warnings,
        },
        "cpu": {
            **cpu(sampler.samples, paced["first_start"], paced["last_start"]),
            "locust_cores": locust.cores,
        },
        "memory": memory(
            sampler.samples, paced["first_start"], paced["last_start"], plan.warm_up_seconds
        ),
        "memory_samples": [asdict(s) for s in sampler.samples],
        "audit": audit,
        "service_exit_code": service.process.returncode,
        "phases_seconds": phases,
    }


def failures(results: dict[str, Any]) -> list[str]:
    """What makes the run fail: errors, lost audit records, memory that is not flat."""
    found = []
    if results["errors"]:
        found.append(f"{results['errors']} requests failed: {results['error_kinds']}")
    if results["audit"]["lost"]:
        found.append(f"{results['audit']['lost']} answered denials have no audit record")
    if not results["memory"]["flat"]:
        found.append("memory was not flat after the warm-up")
    return found


# ---------------------------------------------------------------------------- report


def table(results: dict[str, Any]) -> str:
    plan, rate, audit, used = results["plan"], results["rate"], results["audit"], results["cpu"]
    weights = plan["mix"]
    mix = ", ".join(f"{w / sum(weights.values()):.0%} {name}" for name, w in weights.items() if w)
    lines = [
        "| load | figure |",
        "|---|---|",
        f"| target | {plan['rate']:g} requests/s for {plan['seconds']} s; {mix}; "
        f"{plan['users']} locust users at {plan['per_user_rate']:.2f} requests/s each, "
        "keep-alive connections |",
        f"| requests sent | {results['requests']:,} in {rate['seconds']:.1f} s "
        f"({results['denials_scored']:,} denials scored) |",
        f"| requests/s achieved | {rate['per_second']:.1f} (10 s windows: "
        f"{rate['slowest_window']:.1f}-{rate['fastest_window']:.1f}) |",
        f"| errors (non-2xx, connection failures, short answers) | {results['errors']} "
        f"(locust's own count: {results['locust']['failures']} of "
        f"{results['locust']['requests']:,}) |",
        f"| audit records lost | {audit['lost']} ({audit['records']:,} records in the database "
        f"for {audit['answered']:,} answered denials, priming included; the service counted "
        f"{audit['service_counter'] or 0:,.0f}; spooled: {audit['spooled']}) |",
        f"| machine | {results['machine']['cpus']} CPUs shared by service, audit worker and "
        f"locust; load average at start {results['machine']['load_average_at_start'][0]:.2f}; "
        f"locust CPU warnings: {results['locust']['cpu_warnings']} |",
        f"| CPU during the load (cores) | service {used.get('service_cores', 0):.2f}, audit "
        f"worker {used.get('audit_worker_cores', 0):.2f}, locust {used['locust_cores']:.2f}; "
        f"whole machine {used.get('machine_cores', 0):.2f} of {results['machine']['cpus']} |",
    ]
    return "\n".join([*lines, "", latency_table(results["latency_ms"]), "", memory_table(results)])


def latency_table(kinds: dict[str, dict]) -> str:
    lines = [
        "| request | count | errors | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, stats in kinds.items():
        if stats["count"]:
            lines.append(
                f"| {name} | {stats['count']:,} | {stats['errors']} | {stats['p50']:.1f} "
                f"| {stats['p95']:.1f} | {stats['p99']:.1f} | {stats['max']:.1f} |"
            )
    return "\n".join(lines)


def memory_table(results: dict[str, Any]) -> str:
    figures, warm_up = results["memory"], results["plan"]["warm_up_seconds"]
    service, tree = figures["service_mib"], figures["with_children_mib"]
    rows = [
        ("before the load", "start"),
        (f"after the warm-up ({warm_up:g} s)", "after_warm_up"),
        ("end of the load", "end"),
        ("peak during the load", "peak"),
    ]
    lines = [
        "| memory (RSS) | service | with its children (audit worker, resource tracker) |",
        "|---|---:|---:|",
        *[f"| {label} | {service[k]:,.0f} MiB | {tree[k]:,.0f} MiB |" for label, k in rows],
        f"| slope after the warm-up (least squares over {figures['settled_samples']} samples) "
        f"| {service['slope_per_minute']:+.2f} MiB/min | {tree['slope_per_minute']:+.2f} MiB/min |",
        f"| flat: slope with children < {FLAT_SLOPE_MIB_PER_MINUTE:g} MiB/min and end "
        f"within {FLAT_END_CHANGE:.0%} of after-warm-up | | "
        f"{'yes' if figures['flat'] else '**no**'} (end {figures['end_change']:+.1%}) |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=LoadPlan.rate, help="requests per second")
    parser.add_argument("--seconds", type=int, default=LoadPlan.seconds, help="load duration")
    parser.add_argument("--users", type=int, help="simulated clients [default: rate / 2]")
    parser.add_argument("--json", type=Path, default=Path("data/benchmarks/load.json"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    plan = LoadPlan(rate=args.rate, seconds=args.seconds, users=args.users)
    work = Path(tempfile.mkdtemp(prefix="denial-triage-load-"))
    try:
        results = run(plan, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(table(results))
    problems = failures(results)
    print(f"\nfigures in {args.json}; " + ("; ".join(problems) if problems else "all checks pass"))
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
elif os.environ.get(SPEC_VARIABLE):
    # Locust is importing this file as its locustfile (the variable is set only in the locust
    # process, which runs gevent): it finds the client class among the module's attributes.
    WorklistClient = worklist_client(json.loads(Path(os.environ[SPEC_VARIABLE]).read_text()))
