"""The audit journal: an answered score is on disk before its answer leaves.

The audit writer stores records a moment after the request is answered; a hard kill (SIGKILL,
power loss) in that moment used to lose them. So before a score request answers, its audit
job (the header, the denials as received and the results, serialized with orjson) is appended
to a journal segment and fsynced. Requests waiting at the same moment share one fsync (group
commit): the first of them syncs for all, the others wait for it.

Once the writer has committed (or spooled) a job, the journal forgets it, and a segment whose
jobs are all done is removed. What a killed process left behind is replayed at the next start
(:meth:`AuditJournal.replay`): record ids are fixed by job id and position, and writes are
``ON CONFLICT DO NOTHING``, so a job written before the kill and replayed after it is stored
once. A live process holds an exclusive ``flock`` on its segments, so replicas sharing a data
directory never replay each other's live journal; the kernel drops the lock with the process.

A segment is frames of ``length, crc32, orjson bytes``; a torn tail (power lost in the middle of
an append that was never answered) ends the replay of that segment. Files are created 0600.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from serving.audit_writer import AuditJob
from serving.spool import PRIVATE_FILE, PRIVATE_FOLDER, fsync_folder

logger = logging.getLogger(__name__)

SUFFIX = ".journal"
FRAME = struct.Struct("<II")  # payload length, crc32 of the payload
# A segment whose jobs are all written is removed once it reaches this size; a smaller one is
# kept for the next requests, so light traffic does not create a file per request.
RETIRE_BYTES = 1 << 20
# Past this size a new segment is started even while the current one has jobs waiting: under
# steady load the old one is removed once its jobs are stored, and a restart replays no more.
MAX_SEGMENT_BYTES = 16 << 20
ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclass(eq=False)
class _Segment:
    path: Path
    descriptor: int
    size: int = 0
    waiting: int = 0  # jobs appended here and not yet written or spooled


@dataclass
class _GroupCommit:
    """Which appends are on disk: numbered in order, fsynced by whichever waiter leads."""

    appended: int = 0
    synced: int = 0
    syncing: bool = False
    dirty: set[int] = field(default_factory=set)  # descriptors written since the last fsync


class AuditJournal:
    """Segments of audit jobs under ``folder``, appended and fsynced before each answer."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._commit = _GroupCommit()
        self._changed = threading.Condition()
        self._current: _Segment | None = None
        self._segment_of: dict[str, _Segment] = {}

    def record(self, jobs: Sequence[AuditJob]) -> None:
        """Append ``jobs`` and return once they are on disk (fsynced, possibly by another
        request's call that synced for everyone waiting)."""
        frames = b"".join(encode(job) for job in jobs)  # outside the lock: the costly part
        with self._changed:
            segment = self._writable()
            _write_all(segment.descriptor, frames)
            segment.size += len(frames)
            segment.waiting += len(jobs)
            self._segment_of.update((job.job_id, segment) for job in jobs)
            self._commit.dirty.add(segment.descriptor)
            self._commit.appended += 1
            mine = self._commit.appended
        self._synced(mine)

    def done(self, jobs: Sequence[AuditJob]) -> None:
        """Forget jobs whose records are written or spooled; remove segments left empty."""
        with self._changed:
            for job in jobs:
                segment = self._segment_of.pop(job.job_id, None)
                if segment is not None:
                    segment.waiting -= 1
                    self._retire_if_done(segment)

    def close(self) -> None:
        """Remove the current segment if every job in it is done; else keep it for replay."""
        with self._changed:
            if self._current is not None and self._current.waiting == 0:
                self._retire(self._current)

    def replay(self, store: Callable[[list[AuditJob]], object]) -> int:
        """Hand the jobs that a process which ended without writing them left in the journal
        to ``store`` (which writes or spools them), then remove their segments. Segments a live
        process holds are left alone. Returns how many jobs were replayed."""
        replayed = 0
        for path in sorted(self.folder.glob(f"*{SUFFIX}")) if self.folder.is_dir() else []:
            with _claimed(path) as descriptor:
                if descriptor is None:
                    continue  # a live process's segment
                jobs = list(_read_jobs(descriptor, path))
                if jobs:
                    store(jobs)
                path.unlink()
                replayed += len(jobs)
        if replayed:
            logger.warning("audit journal replayed: %d requests from a previous run", replayed)
        return replayed

    # ------------------------------------------------------------------ inside the lock

    def _writable(self) -> _Segment:
        if self._current is None or self._current.size >= MAX_SEGMENT_BYTES:
            self._current = self._open_segment()
        return self._current

    def _open_segment(self) -> _Segment:
        self.folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex}{SUFFIX}"
        path = self.folder / name
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        descriptor = os.open(path, flags, PRIVATE_FILE)
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # ours while we live: no replica replays it
        fsync_folder(self.folder)  # the new name itself survives a power loss
        return _Segment(path, descriptor)

    def _retire_if_done(self, segment: _Segment) -> None:
        if segment.waiting > 0:
            return
        if segment is not self._current or segment.size >= RETIRE_BYTES:
            self._retire(segment)

    def _retire(self, segment: _Segment) -> None:
        if segment is self._current:
            self._current = None
        self._commit.dirty.discard(segment.descriptor)
        with suppress(FileNotFoundError):
            segment.path.unlink()
        os.close(segment.descriptor)

    # ------------------------------------------------------------------ group commit

    def _synced(self, mine: int) -> None:
        """Return once append number ``mine`` is on disk; lead an fsync when none runs."""
        commit = self._commit
        while True:
            with self._changed:
                self._changed.wait_for(lambda: commit.synced >= mine or not commit.syncing)
                if commit.synced >= mine:
                    return
                commit.syncing = True
                target, descriptors = commit.appended, list(commit.dirty)
                commit.dirty.clear()
            self._lead_sync(target, descriptors)

    def _lead_sync(self, target: int, descriptors: list[int]) -> None:
        """fsync for every append up to ``target``, outside the lock so appends go on."""
        synced = False
        try:
            for descriptor in descriptors:
                os.fsync(descriptor)
            synced = True
        finally:
            with self._changed:
                self._commit.syncing = False
                if synced:
                    self._commit.synced = max(self._commit.synced, target)
                else:  # the next leader tries these descriptors again
                    self._commit.dirty.update(descriptors)
                self._changed.notify_all()


# ---------------------------------------------------------------------------- frames


def encode(job: AuditJob) -> bytes:
    """One job as a journal frame."""
    payload = orjson.dumps(
        {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}, option=ORJSON_OPTIONS
    )
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def decode(payload: bytes) -> AuditJob:
    """A job back from a frame's payload."""
    fields = orjson.loads(payload)
    fields["scored_at"] = dt.datetime.fromisoformat(fields["scored_at"])
    return AuditJob(**fields)


def _read_jobs(descriptor: int, path: Path) -> Iterator[AuditJob]:
    with os.fdopen(os.dup(descriptor), "rb") as handle:
        content = handle.read()
    offset = 0
    while offset + FRAME.size <= len(content):
        length, checksum = FRAME.unpack_from(content, offset)
        payload = content[offset + FRAME.size : offset + FRAME.size + length]
        if len(payload) < length or zlib.crc32(payload) != checksum:
            # An append torn by a power loss: never synced, so never answered.
            logger.warning("audit journal %s ends in a torn entry at byte %d", path.name, offset)
            return
        yield decode(payload)
        offset += FRAME.size + length


@contextmanager
def _claimed(path: Path) -> Iterator[int | None]:
    """The segment opened and locked, or None when a live process holds it."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # replayed and removed by another replica just now
        yield None
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield descriptor
    finally:
        os.close(descriptor)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]
