"""The challenger in shadow: it scores a share of the denials the champion answers, off the
request path, and its scores are stored apart (``shadow_scores``) beside the champion's answer.

A denial is sampled by a hash of its id (:func:`sampled`), so the same denials are compared
every time they are scored. The request hands the sampled rows over to
:class:`ShadowScorer` and answers at once: the hand-over never waits. At most
:data:`SHADOW_CAPACITY` requests wait for the challenger; past that their denials are dropped
and counted (``denial_triage_shadow_denials_total{outcome="dropped"}``), never queued behind.

The challenger runs in a worker process of its own (:class:`ChallengerWorker`), as the audit
records are built: scoring in a thread of the service would hold the interpreter lock the
requests need, and a request waiting for it waits up to the interpreter's switch interval
(5 ms), several times the 1 ms the shadow may add. Shadow scores are a measurement, not a
record anyone is owed: unlike audit records, a batch the database cannot take is counted as
failed, not spooled.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor, wait
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

SHADOW_CAPACITY = 64  # requests waiting for the challenger; past it their denials are dropped
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

    def score(self, job: ShadowJob) -> int:
        """Score a job's denials without explanations (the comparison reads none); returns
        how many shadow scores were stored."""
        rows = clean_records(job.denials)
        denials = rows if rows is not None else validate(pd.DataFrame(job.denials)).frame
        # One LightGBM thread: the worker must leave the service's cores to the requests.
        results = score_denials(self.triage, denials, explain=False, threads=1)
        return self.write(shadow_records(job, results, self.version))


_WORKER: ChallengerWorker | None = None


def _open_worker(model_file: str, version: str, database_url: str, input_hash_key: str) -> None:
    """In the worker process: the challenger from the service's model cache (already checked
    by the canary there), an engine of its own and the site's key for input hashes."""
    from serving.database import make_engine, session_factory

    global _WORKER
    _exit_with_parent()
    repository.use_input_hash_key(input_hash_key)
    sessions = session_factory(make_engine(database_url))
    _WORKER = ChallengerWorker(joblib.load(model_file), version, repository.shadow_writer(sessions))


def _score_in_worker(job: ShadowJob) -> int:
    assert _WORKER is not None, "the challenger's worker was not opened"
    return _WORKER.score(job)


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

    ``work`` runs in the executor and returns how many shadow scores it stored. Slots bound
    the requests on their way; the request that finds none drops its denials.
    """

    def __init__(
        self,
        version: str,
        share: float,
        executor: Executor,
        work: Callable[[ShadowJob], int] = _score_in_worker,
        capacity: int = SHADOW_CAPACITY,
    ) -> None:
        self.version = version
        self.share = share
        self._executor = executor
        self._work = work
        self._slots = threading.BoundedSemaphore(capacity)
        self._pending: set[Future[int]] = set()
        self._lock = threading.Lock()
        # Set when the worker died: the poll then starts a new one (serving.state).
        self.broken = False

    def offer(self, response: ScoredBatch, payload: Sequence[Mapping[str, Any]]) -> int:
        """Hand over the request's sampled denials; returns how many were handed over (0 when
        none was sampled or they were dropped)."""
        job = shadow_job(response, payload, self.share)
        if job is None:
            return 0
        if not self._slots.acquire(blocking=False):
            metrics.SHADOW_DENIALS.labels("dropped").inc(len(job.denials))
            return 0
        try:
            future = self._executor.submit(self._work, job)
        except RuntimeError as exc:  # shut down (being replaced, the service stopping) or broken
            self.broken = self.broken or isinstance(exc, BrokenExecutor)
            self._slots.release()
            metrics.SHADOW_DENIALS.labels("dropped").inc(len(job.denials))
            return 0
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(partial(self._done, len(job.denials)))
        return len(job.denials)

    def _done(self, denials: int, future: Future[int]) -> None:
        self._slots.release()
        with self._lock:
            self._pending.discard(future)
        try:
            stored = future.result()
        except Exception as exc:  # the worker or the database failed: count it, keep serving
            self.broken = self.broken or isinstance(exc, BrokenExecutor)
            metrics.SHADOW_DENIALS.labels("failed").inc(denials)
            # The type only: a message could quote a denial's values.
            logger.warning(
                "shadow scores not stored",
                extra={"reason": type(exc).__name__, "denials": denials},
            )
            return
        metrics.SHADOW_DENIALS.labels("scored").inc(stored)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job handed over so far is stored or failed."""
        with self._lock:
            pending = list(self._pending)
        return not wait(pending, timeout).not_done

    def close(self) -> None:
        """Let the jobs on their way finish, then stop the worker."""
        self._executor.shutdown(wait=True)
