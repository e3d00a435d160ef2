"""The challenger in shadow: it scores a share of the denials the champion answers, off the
request path, and its scores are stored apart (``shadow_scores``) beside the champion's answer.

A denial is sampled by a hash of its id (:func:`sampled`), so the same denials are compared
every time they are scored. The request hands the sampled rows over to
:class:`ShadowScorer` and answers at once: the hand-over never waits. One batch is with the
challenger at a time, and the worker gives each at least :data:`SHADOW_BATCH_SECONDS`; the
requests answered meanwhile wait for the next, together (one scoring call, one transaction),
at most :data:`SHADOW_CAPACITY` denials of them: past that a request's denials are dropped and
counted (``denial_triage_shadow_denials_total{outcome="dropped"}``), never queued behind.

The challenger runs in a worker process of its own (:class:`ChallengerWorker`), as the audit
records are built: scoring in a thread of the service would hold the interpreter lock the
requests need, and a request waiting for it waits up to the interpreter's switch interval
(5 ms), several times the 1 ms the shadow may add. The worker runs in the idle scheduling
class (:func:`run_when_idle`), so a request thread woken on its core preempts it. Shadow
scores are a measurement, not a record anyone is owed: unlike audit records, a batch the
database cannot take is counted as failed, not spooled.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from features.contract import clean_records, validate
from serving import metrics, repository
from serving.audit_writer import _exit_with_parent
from serving.logs import logger
from serving.scoring import ScoredBatch, score_denials
from training.triage_model import TriageModel

SHADOW_CAPACITY = 1_000  # denials waiting for the challenger; past it a request's are dropped
SHADOW_NICENESS = 19  # where the idle scheduling class is not available
# The least time the worker gives a batch: under steady traffic the requests of a quarter
# second go to the challenger as one batch (one scoring call, one transaction) instead of one
# small batch after another keeping a core and the disk busy.
SHADOW_BATCH_SECONDS = 0.25
HASH_RANGE = 2**64


def sampled(denial_id: str, share: float) -> bool:
    """Whether the challenger scores this denial: a fixed hash of its id below ``share`` of
    the hash range, so a denial sampled once is sampled every time it is scored."""
    if share <= 0:
        return False
    digest = hashlib.blake2b(denial_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * HASH_RANGE


@dataclass(frozen=True)
class ShadowJob:
    """The sampled denials of one answered request, as the challenger's worker receives them."""

    request_id: str
    champion_version: str
    denials: list[dict[str, Any]]  # validated rows, as received
    champion: list[dict[str, Any]]  # the champion's answer to each, in the table's columns


def champion_answer(result: Mapping[str, Any]) -> dict[str, Any]:
    """What the comparison needs of the champion's result for one denial."""
    return {
        "champion_root_cause": result["root_cause"]["category"],
        "champion_recovery_probability": result["recovery"]["probability"],
        "champion_priority": result["priority"]["score"],
    }


def shadow_job(
    response: ScoredBatch, payload: Sequence[Mapping[str, Any]], share: float
) -> ShadowJob | None:
    """The request's sampled denials with the champion's answers; None when none is sampled."""
    picked = [
        position
        for position, denial in enumerate(payload)
        if sampled(str(denial["denial_id"]), share)
    ]
    if not picked:
        return None
    return ShadowJob(
        request_id=response.request_id,
        champion_version=response.model_version,
        denials=[dict(payload[position]) for position in picked],
        champion=[champion_answer(response.results[position]) for position in picked],
    )


def challenger_figures(result: Mapping[str, Any]) -> dict[str, Any]:
    """The challenger's result for one denial, in the table's columns."""
    return {
        "root_cause": result["root_cause"]["category"],
        "root_cause_probability": result["root_cause"]["probability"],
        "recovery_probability": result["recovery"]["probability"],
        "preventable_probability": result["preventable"]["probability"],
        "priority": result["priority"]["score"],
        "owner_queue": result["routing"]["owner_queue"],
        "requires_review": result["requires_human_review"],
    }


def shadow_records(
    job: ShadowJob, results: Sequence[Mapping[str, Any]], version: str
) -> list[dict[str, Any]]:
    """The rows of ``shadow_scores`` for a job the challenger (``version``) scored: ids, the
    keyed input hash (as the audit log keeps it) and figures, never the denial itself."""
    scored_at = repository.utc_now()
    return [
        {
            "request_id": job.request_id,
            "denial_id": str(denial["denial_id"]),
            "scored_at": scored_at,
            "input_hash": repository.input_hash(denial),
            "model_version": version,
            "champion_version": job.champion_version,
            **challenger_figures(result),
            **champion,
        }
        for denial, result, champion in zip(job.denials, results, job.champion, strict=True)
    ]


# ---------------------------------------------------------------------------- the worker


@dataclass(frozen=True)
class ChallengerWorker:
    """Scores jobs with the challenger and stores them; lives in the worker process."""

    triage: TriageModel
    version: str
    write: Callable[[list[dict[str, Any]]], int]
    batch_seconds: float = 0.0  # the least time a batch takes, the rest spent asleep

    def score(self, jobs: Sequence[ShadowJob]) -> int:
        """Score the jobs' denials together and store them; then wait out the rest of
        ``batch_seconds``, so the service sends the next batch no sooner: the jobs answered
        meanwhile wait there and go together."""
        began = time.monotonic()
        stored = self._score(jobs)
        time.sleep(max(0.0, self.batch_seconds - (time.monotonic() - began)))
        return stored

    def _score(self, jobs: Sequence[ShadowJob]) -> int:
        """Score the jobs' denials together, without explanations (the comparison reads none),
        and store them in one transaction; returns how many shadow scores were stored."""
        payload = [denial for job in jobs for denial in job.denials]
        rows = clean_records(payload)
        denials = rows if rows is not None else validate(pd.DataFrame(payload)).frame
        # One LightGBM thread: the worker must leave the service's cores to the requests.
        results = score_denials(self.triage, denials, explain=False, threads=1)
        records, start = [], 0
        for job in jobs:
            end = start + len(job.denials)
            records += shadow_records(job, results[start:end], self.version)
            start = end
        return self.write(records)


_WORKER: ChallengerWorker | None = None


def _open_worker(model_file: str, version: str, database_url: str, input_hash_key: str) -> None:
    """In the worker process: the challenger from the service's model cache (already checked
    by the canary there), an engine of its own and the site's key for input hashes."""
    from serving.database import make_engine, session_factory

    global _WORKER
    _exit_with_parent()
    run_when_idle()
    repository.use_input_hash_key(input_hash_key)
    sessions = session_factory(make_engine(database_url))
    write = repository.shadow_writer(sessions)
    _WORKER = ChallengerWorker(joblib.load(model_file), version, write, SHADOW_BATCH_SECONDS)


def run_when_idle() -> None:
    """Put this process behind the service in the CPU's queue: on a busy machine the requests
    go first, and the challenger falls behind (its denials dropped, counted) rather than
    slowing them.

    The idle class, not only a high nice value: Linux's scheduler (EEVDF, 6.6 on) lets a
    running task of any nice value finish its slice, about 3 ms, before a request thread woken
    on the same core runs, which is a request's whole margin; a task of the idle class gives
    way at once. Called before the model is loaded, so LightGBM's threads inherit it."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError:  # a container's policy may refuse it: a nice value then
            pass
    os.nice(SHADOW_NICENESS)


def _score_in_worker(jobs: list[ShadowJob]) -> int:
    assert _WORKER is not None, "the challenger's worker was not opened"
    return _WORKER.score(jobs)


def _worker_ready() -> str:
    assert _WORKER is not None, "the challenger's worker was not opened"
    return _WORKER.version


def worker_pool(
    model_file: Path, version: str, database_url: str, input_hash_key: str
) -> ProcessPoolExecutor:
    """One worker process holding the challenger, started now rather than on the first
    sampled request (starting it takes seconds)."""
    pool = ProcessPoolExecutor(
        max_workers=1,
        # A fresh interpreter, not a fork of this threaded one (a fork can copy held locks).
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_open_worker,
        initargs=(str(model_file), version, database_url, input_hash_key),
    )
    pool.submit(_worker_ready)
    return pool


# ---------------------------------------------------------------------------- the hand-over


class ShadowScorer:
    """Hands a request's sampled denials to the challenger's executor without ever waiting.

    One batch of jobs is in the executor at a time; the jobs handed over meanwhile wait here
    and go together when it is done, so a challenger slower than the requests scores bigger
    batches instead of a longer queue. ``work`` runs in the executor and returns how many
    shadow scores it stored.
    """

    def __init__(
        self,
        version: str,
        share: float,
        executor: Executor,
        work: Callable[[list[ShadowJob]], int] = _score_in_worker,
        capacity: int = SHADOW_CAPACITY,
    ) -> None:
        self.version = version
        self.share = share
        self._executor = executor
        self._work = work
        self._capacity = capacity  # denials waiting for the batch in the executor
        self._waiting: list[ShadowJob] = []
        self._waiting_denials = 0
        self._busy = False  # a batch is in the executor
        self._changed = threading.Condition()
        # Set when the worker died: the poll then starts a new one (serving.state).
        self.broken = False

    def offer(self, response: ScoredBatch, payload: Sequence[Mapping[str, Any]]) -> int:
        """Hand over the request's sampled denials; returns how many were handed over (0 when
        none was sampled or they were dropped)."""
        job = shadow_job(response, payload, self.share)
        if job is None:
            return 0
        with self._changed:
            if self._waiting_denials + len(job.denials) > self._capacity:
                metrics.SHADOW_DENIALS.labels("dropped").inc(len(job.denials))
                return 0
            self._waiting.append(job)
            self._waiting_denials += len(job.denials)
            batch = self._next_batch()
        if batch:
            self._submit(batch)
        return len(job.denials)

    def _next_batch(self) -> list[ShadowJob]:
        """The jobs waiting, when none is in the executor (called locked)."""
        if self._busy or not self._waiting:
            return []
        batch, self._waiting, self._waiting_denials = self._waiting, [], 0
        self._busy = True
        return batch

    def _submit(self, batch: list[ShadowJob]) -> None:
        try:
            future = self._executor.submit(self._work, batch)
        except RuntimeError as exc:  # shut down (being replaced, the service stopping) or broken
            self.broken = self.broken or isinstance(exc, BrokenExecutor)
            metrics.SHADOW_DENIALS.labels("dropped").inc(_denials(batch))
            self._finished()
            return
        future.add_done_callback(partial(self._done, _denials(batch)))

    def _done(self, denials: int, future: Future[int]) -> None:
        try:
            metrics.SHADOW_DENIALS.labels("scored").inc(future.result())
        except Exception as exc:  # the worker or the database failed: count it, keep serving
            self.broken = self.broken or isinstance(exc, BrokenExecutor)
            metrics.SHADOW_DENIALS.labels("failed").inc(denials)
            # The type only: a message could quote a denial's values.
            logger.warning(
                "shadow scores not stored",
                extra={"reason": type(exc).__name__, "denials": denials},
            )
        self._finished()

    def _finished(self) -> None:
        """The batch in the executor is done: send the jobs that waited for it."""
        with self._changed:
            self._busy = False
            batch = self._next_batch()
            self._changed.notify_all()
        if batch:
            self._submit(batch)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job handed over so far is stored or failed."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._busy and not self._waiting, timeout)

    def close(self) -> None:
        """Let the batch in the executor finish, then stop the worker (jobs still waiting
        here are not scored: the challenger is being retired)."""
        self._executor.shutdown(wait=True)


def _denials(batch: Sequence[ShadowJob]) -> int:
    return sum(len(job.denials) for job in batch)
