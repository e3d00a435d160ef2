"""Audit records written behind the request, in batches, and never dropped.

A score request hands its scored denials over and answers at once; one thread builds their
audit records and writes them, a batch of requests per transaction. Writing one transaction
per request on the request path cost more than scoring (about 0.3 ms a denial in a batch of
1,000, most of it turning the documents into JSON), and a batch shares one commit.

Nothing is dropped on the way: a batch the database refuses goes to the durable spool, as a
synchronous write would; :meth:`AuditWriter.flush` waits until everything handed over so far
is written or spooled, and :meth:`AuditWriter.close` flushes before it returns. The service
flushes before every read of its database, so a caller always reads its own scores. What a
hard kill of the process (SIGKILL, power loss) takes with it is what waited in memory: the
last milliseconds of records; a site that must never lose those turns write-behind off.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)

Records = list[dict[str, Any]]
Build = Callable[[], Iterable[Records]]  # a request's records, built chunk by chunk
MAX_WAITING_REQUESTS = 64  # beyond this, requests wait: memory stays bounded under overload
MAX_REQUESTS_PER_BATCH = 32
RECORDS_PER_TRANSACTION = 1_000  # small requests share one; a large one is written in parts


class AuditWriter:
    """One background thread writing the audit records of scored requests."""

    def __init__(self, write: Callable[[Records], int], spill: Callable[[Records], None]) -> None:
        self._write_records = write  # commits records to the database
        self._spill = spill  # stores records durably when the database refuses them
        self._jobs: queue.Queue[Build | None] = queue.Queue(MAX_WAITING_REQUESTS)
        self._progress = threading.Condition()
        self._submitted = 0
        self._finished = 0
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, build: Build) -> None:
        """Hand over one request's records (built by ``build``, chunk by chunk, on the writer
        thread, so a 10,000-denial request never holds all its records at once)."""
        if not self._thread.is_alive():
            self._handle([build])  # not started, or closed: write here and now
            return
        with self._progress:
            self._submitted += 1
        self._jobs.put(build)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted before this call is written or spooled."""
        with self._progress:
            target = self._submitted
            return self._progress.wait_for(
                lambda: self._finished >= target or not self._thread.is_alive(), timeout
            )

    def close(self) -> None:
        """Write what is waiting, then stop the thread."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def _run(self) -> None:
        while True:
            jobs = [self._jobs.get()]
            while len(jobs) < MAX_REQUESTS_PER_BATCH and jobs[-1] is not None:
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            builds = [job for job in jobs if job is not None]
            self._handle(builds)
            with self._progress:
                self._finished += len(builds)
                self._progress.notify_all()
            if len(builds) < len(jobs):
                return  # close() asked to stop, after the jobs queued before it

    def _handle(self, builds: list[Build]) -> None:
        pending: Records = []
        for chunk in _chunks(builds):
            pending.extend(chunk)
            if len(pending) >= RECORDS_PER_TRANSACTION:
                self._write(pending)
                pending = []
        if pending:
            self._write(pending)

    def _write(self, records: Records) -> None:
        try:
            self._write_records(records)
        except Exception as exc:  # the database is away, or refused the batch: keep it on disk
            if not isinstance(exc, SQLAlchemyError):
                logger.exception("audit batch not written to the database; spooling it")
            self._spill_safely(records)

    def _spill_safely(self, records: Records) -> None:
        try:
            self._spill(records)
        except Exception:  # nothing is left to try; say so loudly
            logger.exception("audit records lost: the spool could not store them")


def _chunks(builds: list[Build]) -> Iterator[Records]:
    for build in builds:
        try:
            yield from build()
        except Exception:  # a defect in building, not in the database: report it, keep going
            logger.exception("audit records could not be built")
