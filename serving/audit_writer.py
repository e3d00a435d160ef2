"""Audit records written behind the request, in batches, and never dropped.

A score request hands its scored denials over as an :class:`AuditJob` and answers at once;
the writer thread collects the jobs waiting and has them stored, a batch of requests per
transaction (a large request in transactions of 1,000 records). Building and writing the
records cost more than scoring itself (about 0.35 ms a denial, mostly turning documents into
JSON), so by default a worker process does it (:class:`ProcessStore`), on another core and
outside the service's interpreter lock; :class:`LocalStore` does the same work in this
process, and takes over whenever the worker cannot.

Nothing is dropped on the way: a batch the database cannot take (it is away) goes to the
durable spool, as a synchronous write would, and a record the table itself refuses is set
aside alone, its batch's other records written. With a journal
(:class:`serving.journal.AuditJournal`, on by default) a job is on disk before its request is
answered, so a hard kill (SIGKILL, power loss) loses nothing answered: the next start replays
it. Record ids are fixed by job and position before any write, so a batch written again after
a worker died midway, or replayed, is stored once.

:meth:`AuditWriter.flush` waits until everything handed over so far is written or spooled, and
:meth:`AuditWriter.close` flushes before it returns. Reads do not flush: the writer counts the
jobs on the way per caller, and keeps each denial's newest job on the way, so a read waits for
its own caller's records only, a denial answered a moment ago is read from its job, and a
reviewer never queues behind another client's batches.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from serving import repository
from serving.spool import Refusal, write_isolating
from training.specs import TASKS

logger = logging.getLogger(__name__)

Records = list[dict[str, Any]]
MAX_WAITING_REQUESTS = 64  # beyond this, requests wait: memory stays bounded under overload
MAX_REQUESTS_PER_BATCH = 32
RECORDS_PER_TRANSACTION = 1_000  # small requests share one; a large one is written in parts


@dataclass(frozen=True)
class AuditJob:
    """One answered request, as its audit records are built from (picklable, for a worker)."""

    request_id: str
    model_version: str
    mapping_version: str
    scored_at: dt.datetime
    caller: str
    results: list[dict[str, Any]]  # the plain results the response was validated from
    payload: list[dict[str, Any]]  # the denials as received
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def parts(self, size: int = RECORDS_PER_TRANSACTION) -> list[AuditJob]:
        """The job as jobs of at most ``size`` denials, handed over (and to the worker) one
        by one, so a 10,000-denial request is never copied whole on its way."""
        return [
            replace(
                self,
                results=self.results[start : start + size],
                payload=self.payload[start : start + size],
                job_id=uuid.uuid4().hex,
            )
            for start in range(0, len(self.results), size)
        ]

    def records(self) -> Iterator[Records]:
        """The job's audit records, outputs and explanations apart, in transaction chunks."""
        for start in range(0, len(self.results), RECORDS_PER_TRANSACTION):
            end = min(start + RECORDS_PER_TRANSACTION, len(self.results))
            yield [self.record(i) for i in range(start, end)]

    def record(self, position: int) -> dict[str, Any]:
        """The audit record of the denial at ``position``, as it is written."""
        result = self.results[position]
        record = repository.audit_record(
            request_id=self.request_id,
            denial=self.payload[position],
            caller=self.caller,
            model_version=self.model_version,
            mapping_version=self.mapping_version,
            outputs={
                name: {k: v for k, v in value.items() if k != "explanation"}
                if name in TASKS
                else value
                for name, value in result.items()
            },
            explanation={task: result[task]["explanation"] for task in TASKS},
            scored_at=self.scored_at,
        )
        # Fixed by job and position: written again after a worker died, it is stored once.
        record["record_id"] = str(uuid.uuid5(uuid.UUID(self.job_id), str(position)))
        return record


def transactions(jobs: Iterable[AuditJob]) -> Iterator[Records]:
    """The records of ``jobs`` grouped into transactions of about 1,000 records."""
    pending: Records = []
    for job in jobs:
        for chunk in _built(job):
            pending.extend(chunk)
            if len(pending) >= RECORDS_PER_TRANSACTION:
                yield pending
                pending = []
    if pending:
        yield pending


def _built(job: AuditJob) -> Iterator[Records]:
    try:
        yield from job.records()
    except Exception:  # a defect in building, not the database: report it, keep the others
        logger.exception("audit records of request %s could not be built", job.request_id)


class Store(Protocol):
    def store(self, jobs: list[AuditJob]) -> int:
        """Write the jobs' records, spooling what the database refuses; returns how many
        records were spooled."""

    def close(self) -> None: ...


@dataclass
class LocalStore:
    """Builds and writes records in this process."""

    write: Callable[[Records], int]  # commits records to the database
    spill: Callable[[Records], None]  # stores records durably when the database is away
    set_aside: Callable[[list[Refusal]], object]  # keeps records the table itself refused

    def store(self, jobs: list[AuditJob]) -> int:
        """Write the jobs' records; returns how many were spooled because the database was
        away (records the table refused are set aside alone, and not counted)."""
        spooled = 0
        for records in transactions(jobs):
            try:
                _, refused = write_isolating(self.write, records)
            except Exception as exc:  # the database is away: keep the records on disk
                if not isinstance(exc, SQLAlchemyError):
                    logger.exception("audit records not written to the database; spooling them")
                self._spill_safely(records)
                spooled += len(records)
                continue
            if refused:
                self.set_aside(refused)
        return spooled

    def _spill_safely(self, records: Records) -> None:
        try:
            self.spill(records)
        except Exception:  # nothing is left to try; say so loudly
            logger.exception("%d audit records lost: the spool could not store them", len(records))

    def close(self) -> None:
        pass


class ProcessStore:
    """Builds and writes records in a worker process; does it here when the worker cannot."""

    MAX_RESTARTS = 3  # a worker that keeps dying is given up: this process does the work

    def __init__(
        self, database_url: str, spool_dir: Path, fallback: LocalStore, input_hash_key: str
    ) -> None:
        self._arguments = (database_url, str(spool_dir), input_hash_key)
        self._fallback = fallback
        self._restarts = 0
        self._pool: ProcessPoolExecutor | None = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # A fresh interpreter, not a fork of this threaded one (a fork can copy held locks).
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_open_worker_store,
            initargs=self._arguments,
        )
        pool.submit(_store_in_worker, [])  # start the worker now, not on the first request
        return pool

    def store(self, jobs: list[AuditJob]) -> int:
        if self._pool is None:
            return self._fallback.store(jobs)
        try:
            return self._pool.submit(_store_in_worker, jobs).result()
        except BrokenProcessPool:
            logger.exception("the audit worker died; this batch is written by the service")
            self._replace_worker()
        except Exception:  # a defect met in the worker: the service retries, ids make it safe
            logger.exception("the audit worker failed; this batch is written by the service")
        return self._fallback.store(jobs)

    def _replace_worker(self) -> None:
        assert self._pool is not None
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._restarts += 1
        self._pool = self._start() if self._restarts <= self.MAX_RESTARTS else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


_WORKER_STORE: LocalStore | None = None


def _open_worker_store(database_url: str, spool_dir: str, input_hash_key: str) -> None:
    """In the worker process: its own engine and spool, and the site's key for input hashes."""
    from serving.database import make_engine, session_factory
    from serving.spool import AuditSpool

    global _WORKER_STORE
    _exit_with_parent()
    repository.use_input_hash_key(input_hash_key)
    sessions = session_factory(make_engine(database_url))
    spool = AuditSpool(Path(spool_dir))
    _WORKER_STORE = LocalStore(repository.audit_writer(sessions), spool.append, spool.set_aside)


def _exit_with_parent() -> None:
    """End this worker when the service that started it dies, even by SIGKILL, which gives
    the pool no chance to stop it: an orphan would hold its memory and a database
    connection for good. What it was writing is in the journal, replayed at the next start."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _store_in_worker(jobs: list[AuditJob]) -> int:
    assert _WORKER_STORE is not None, "the worker store was not opened"
    return _WORKER_STORE.store(jobs)


class Journal(Protocol):
    """Where jobs are kept on disk from before the answer until they are stored."""

    def record(self, jobs: Sequence[AuditJob]) -> None: ...

    def done(self, jobs: Sequence[AuditJob]) -> None: ...

    def close(self) -> None: ...


class AuditWriter:
    """One background thread handing the audit jobs of answered requests to a store.

    It knows which callers and which denials still have records on the way, so a read waits
    for its own caller's only (:meth:`wait_for_caller`), and a denial answered a moment ago is
    read from its job (:meth:`pending_record`) instead of waiting for its write.
    """

    def __init__(
        self,
        store: Store,
        spooled: Callable[[int], None] = lambda _: None,
        journal: Journal | None = None,
    ) -> None:
        self.store = store
        self._spooled = spooled  # told how many records went to the spool
        self._journal = journal
        self._jobs: queue.Queue[AuditJob | None] = queue.Queue(MAX_WAITING_REQUESTS)
        self._progress = threading.Condition()
        self._submitted = 0
        self._finished = 0
        self._waiting_callers: Counter[str] = Counter()  # jobs on the way, per caller
        # Per denial id on the way, its newest job and position (jobs are stored in order).
        self._newest: dict[str, tuple[AuditJob, int]] = {}
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, *jobs: AuditJob) -> None:
        """Hand over answered requests' audit jobs; with a journal, they are on disk when
        this returns, so the answer may leave."""
        if not self._thread.is_alive():
            self._handle(list(jobs))  # not started, or closed: store them here and now
            return
        if self._journal is not None:
            self._journal.record(jobs)
        with self._progress:
            for job in jobs:
                self._submitted += 1
                self._waiting_callers[job.caller] += 1
                self._newest.update(
                    (denial_id, (job, position))
                    for position, denial_id in enumerate(_denial_ids(job))
                )
        for job in jobs:
            self._jobs.put(job)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted before this call is written or spooled."""
        with self._progress:
            target = self._submitted
            return self._progress.wait_for(
                lambda: self._finished >= target or not self._thread.is_alive(), timeout
            )

    def wait_for_caller(self, caller: str, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until no job of ``caller`` is on the way."""
        with self._progress:
            return self._progress.wait_for(
                lambda: not self._waiting_callers[caller] or not self._thread.is_alive(), timeout
            )

    def pending_denial(self, denial_id: str) -> bool:
        """Whether a record of ``denial_id`` was answered and is still on its way to the
        database (in the queue, the journal or being written)."""
        with self._progress:
            return denial_id in self._newest

    def pending_record(self, denial_id: str) -> dict[str, Any] | None:
        """The newest record of ``denial_id`` still on its way, built as it will be written;
        None when none is."""
        with self._progress:
            newest = self._newest.get(denial_id)
        return newest[0].record(newest[1]) if newest else None

    def close(self) -> None:
        """Store what is waiting, then stop the thread and the store."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self.store.close()
        if self._journal is not None:
            self._journal.close()

    def _run(self) -> None:
        while True:
            jobs = self._next_jobs()
            batch = [job for job in jobs if job is not None]
            self._handle(batch)
            with self._progress:
                self._finished += len(batch)
                for job in batch:
                    self._forget(job)
                self._progress.notify_all()
            if len(batch) < len(jobs):
                return  # close() asked to stop, after the jobs queued before it

    def _forget(self, job: AuditJob) -> None:
        """The job is stored: its caller and denials no longer wait for it (called locked)."""
        self._waiting_callers[job.caller] -= 1
        if self._waiting_callers[job.caller] <= 0:
            del self._waiting_callers[job.caller]  # a long run sees many callers
        for denial_id in _denial_ids(job):
            if self._newest.get(denial_id, (None,))[0] is job:
                del self._newest[denial_id]

    def _next_jobs(self) -> list[AuditJob | None]:
        """The next job, with those waiting behind it up to about one transaction's worth."""
        jobs = [self._jobs.get()]
        denials = len(jobs[0].results) if jobs[0] is not None else 0
        while len(jobs) < MAX_REQUESTS_PER_BATCH and denials < RECORDS_PER_TRANSACTION:
            if jobs[-1] is None:
                break
            try:
                jobs.append(self._jobs.get_nowait())
            except queue.Empty:
                break
            denials += len(jobs[-1].results) if jobs[-1] is not None else 0
        return jobs

    def _handle(self, jobs: list[AuditJob]) -> None:
        if not jobs:
            return
        try:
            spooled = self.store.store(jobs)
        except Exception:  # a defect, not the database: report it and keep the thread alive
            # The jobs stay in the journal, if there is one: the next start replays them.
            logger.exception("audit records of %d requests could not be stored", len(jobs))
            return
        if self._journal is not None:
            self._journal.done(jobs)
        if spooled:
            self._spooled(spooled)


def _denial_ids(job: AuditJob) -> list[str]:
    return [str(denial["denial_id"]) for denial in job.payload]
