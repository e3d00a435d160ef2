"""What a busy challenger's worker on the same core costs a request, by its scheduling class.

The tail the challenger in shadow adds is not its hand-over (microseconds) but its worker
holding the core a request thread wakes on. This measures that alone, with no model and no
HTTP, so that a 1 ms effect is not lost in the noise of a whole service: a "request" thread
sleeps 5 ms (a request arriving), wakes and burns 1 ms of CPU (answering it), again and again,
on one core; beside it on the same core a worker process spins (a batch being scored) as
normal, 10 nice steps below the requests (what the worker had), at the lowest nice value, or
in the idle class (what it has now, :func:`serving.shadow.run_when_idle`). Each case's
request time (wake-up delay plus the work's wall time) is given as p50 / p99 / p99.9 over the
rounds pooled, and each round's p99 (median, min-max); the cases run in turn, round after
round, so a shared machine's drift falls on each alike.

    nice .venv/bin/python benchmarks/shadow_wakeup.py --cpu 1 --requests 2000 --rounds 4
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

SLEEP_SECONDS, WORK_SECONDS = 0.005, 0.001
# Nice values are relative to this process's own (it may itself run under ``nice``).
CASES = {
    "no worker": None,
    "worker 10 nice steps below (as it was)": "os.nice(10)",
    "worker at the lowest nice value, 19": "os.nice(19)",
    "worker in the idle class (as it is now)": (
        "os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))"
    ),
}


def spinning_worker(cpu: int, policy: str) -> subprocess.Popen:
    """A process on ``cpu`` that spins until stopped, its priority set by ``policy``."""
    code = f"import os\nos.sched_setaffinity(0, {{{cpu}}})\n{policy}\nwhile True: pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def burn(seconds: float) -> None:
    """Use ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def requests(count: int) -> np.ndarray:
    """Milliseconds each request took: from when its sleep should have ended to its work
    done."""
    took = np.empty(count)
    for n in range(count):
        due = time.perf_counter() + SLEEP_SECONDS
        time.sleep(SLEEP_SECONDS)
        burn(WORK_SECONDS)
        took[n] = (time.perf_counter() - due) * 1000
    return took


def measure(cpu: int, policy: str | None, count: int) -> np.ndarray:
    worker = spinning_worker(cpu, policy) if policy is not None else None
    try:
        time.sleep(0.2)  # the worker running
        return requests(count)
    finally:
        if worker is not None:
            worker.kill()
            worker.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=1, help="the core everything runs on")
    parser.add_argument("--requests", type=int, default=2000, help="requests a case a round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    took: dict[str, list[np.ndarray]] = {case: [] for case in CASES}
    for _ in range(args.rounds):
        for case, policy in CASES.items():
            took[case].append(measure(args.cpu, policy, args.requests))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}\n")
    print(
        "| a request beside a spinning worker, one core | p50 ms | p99 ms "
        "| p99 ms of each round, median (min-max) | p99.9 ms |"
    )
    print("|---|---:|---:|---|---:|")
    for case, rounds in took.items():
        p50, p99, p999 = np.percentile(np.concatenate(rounds), [50, 99, 99.9])
        each = [float(np.percentile(ms, 99)) for ms in rounds]
        spread = f"{np.median(each):.2f} ({min(each):.2f}-{max(each):.2f})"
        print(f"| {case} | {p50:.2f} | {p99:.2f} | {spread} | {p999:.2f} |")


if __name__ == "__main__":
    main()
