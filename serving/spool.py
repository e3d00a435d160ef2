"""A durable local spool for audit records the database could not take.

When the database is away, scores are still answered and their audit records are written
here; :meth:`AuditSpool.drain` writes them to the database once it is back. Delivery is at
least once: a file is deleted only after its records were committed, and a record replayed
twice is written once because every audit record carries a unique ``record_id``.

Each :meth:`AuditSpool.append` publishes one new file, complete and flushed to disk before it
becomes visible under its final name, and never touched again. So a drainer never sees a
half-written file, and several processes may share one folder: at worst two of them replay
the same file, which the unique ``record_id`` absorbs.

A record the table itself refuses (a value too long for its column, a field missing) is not an
outage: :func:`write_isolating` retries its transaction in halves until the refused record is
alone, writes every other one, and :meth:`AuditSpool.set_aside` keeps the refused one under
``rejected/`` with the reason, for inspection. Files are created 0600: they hold scores.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from serving.repository import json_safe

logger = logging.getLogger(__name__)
SUFFIX = ".jsonl"
REJECTED_FOLDER = "rejected"
# What a write raises when a file's records themselves are wrong (a missing field, a value the
# table refuses), as against the database being away: such a file would fail at every drain
# and hold back every file after it, so it is set aside instead.
MALFORMED = (LookupError, TypeError, ValueError, DataError, IntegrityError)

Records = list[dict[str, Any]]
Write = Callable[[Records], int]
Refusal = tuple[dict[str, Any], str]  # a record the table refused, and the error's name
PRIVATE_FILE = 0o600  # scores and denial facts: readable by the service's user only
PRIVATE_FOLDER = 0o700


def refused_by_table(error: BaseException) -> bool:
    """Whether a failed write was refused for its records themselves (retrying them in
    smaller groups can find the culprit), as against the database being away."""
    if isinstance(error, MALFORMED):
        return True
    # A StatementError that is not a DBAPIError was raised while binding a value, before
    # the database was asked: a record's value, not the connection.
    return isinstance(error, StatementError) and not isinstance(error, DBAPIError)


def write_isolating(write: Write, records: Records) -> tuple[int, list[Refusal]]:
    """Write ``records``; when the table refuses the group, retry it in halves, so only the
    refused records are left out. Returns what was written and what was refused; an outage
    (any other error) propagates, and the caller keeps the whole group."""
    try:
        return write(records), []
    except Exception as error:
        if not refused_by_table(error):
            raise
        if len(records) == 1:
            return 0, [(records[0], type(error).__name__)]
    half = len(records) // 2
    written_first, refused_first = write_isolating(write, records[:half])
    written_last, refused_last = write_isolating(write, records[half:])
    return written_first + written_last, refused_first + refused_last


class AuditSpool:
    """Audit records on local disk, one JSON line each, waiting for the database."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def append(self, records: Sequence[Mapping[str, Any]]) -> Path | None:
        """Durably store ``records``; returns the file written (None when there were none)."""
        if not records:
            return None
        return _publish(self.folder, _unique_name() + SUFFIX, records)

    def set_aside(self, refused: Sequence[Refusal]) -> list[Path]:
        """Keep records the table refused under ``rejected/``, one file per reason (in its
        name); they are never drained again, and never lost."""
        reasons: dict[str, list[dict[str, Any]]] = {}
        for record, reason in refused:
            reasons.setdefault(reason, []).append(record)
        folder = self.folder / REJECTED_FOLDER
        paths = [
            _publish(folder, f"{_unique_name()}.{reason}{SUFFIX}", records)
            for reason, records in reasons.items()
        ]
        for path in paths:
            # The reason is an exception's name, never its message: a message may quote a record.
            logger.error("audit records the table refused, set aside for inspection: %s", path)
        return paths

    def files(self) -> list[Path]:
        """Spooled files waiting to be written, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"*{SUFFIX}"))

    def pending(self) -> int:
        """How many records wait in the spool."""
        return sum(len(_read_lines(path)) for path in self.files())

    def drain(self, write: Write) -> int:
        """Replay spooled records through ``write``; returns what ``write`` reported written.

        Files are removed one by one after ``write`` returns. If it raises (the database went
        away again), the files not yet written stay for the next drain, and the error
        propagates. Records the table refuses are set aside, the file's others written.
        """
        written = 0
        for path, records in self._readable():
            count, refused = write_isolating(write, records)
            written += count
            if refused:
                self.set_aside(refused)
            with suppress(FileNotFoundError):  # another process drained it too
                path.unlink()
        return written

    def _readable(self) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
        for path in self.files():
            try:
                records = [json.loads(line) for line in _read_lines(path)]
            except (ValueError, UnicodeDecodeError):
                self._reject(path, reason="not JSON lines")
                continue
            if records:
                yield path, records

    def _reject(self, path: Path, reason: str) -> None:
        """Set aside a file that cannot be written, so it neither blocks the drain nor is lost."""
        target = self.folder / REJECTED_FOLDER
        target.mkdir(exist_ok=True)
        with suppress(FileNotFoundError):  # another process set it aside first
            os.replace(path, target / path.name)
        # The reason is an exception's name, never its message: a message may quote a record.
        logger.error(
            "audit spool file set aside for inspection (%s): %s", reason, target / path.name
        )


def _unique_name() -> str:
    # Time first so files drain in the order they were spooled; pid and uuid keep processes
    # and threads from ever choosing the same name.
    return f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex}"


def _publish(folder: Path, name: str, records: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``records`` as JSON lines to ``folder/name``: complete, fsynced and 0600 before
    the name appears, so a reader never sees half a file."""
    folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    lines = "".join(json.dumps(json_safe(record)) + "\n" for record in records)
    partial = folder / f".{name}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(lines)
        handle.flush()
        os.fsync(handle.fileno())
    final = folder / name
    os.replace(partial, final)
    fsync_folder(folder)
    return final


def _read_lines(path: Path) -> list[str]:
    """The file's JSON lines; none when another process has just drained and removed it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if line.strip()]


def fsync_folder(folder: Path) -> None:
    """Make a new name (a rename, a created file) itself durable, not only the file's contents."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
