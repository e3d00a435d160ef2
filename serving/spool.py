"""A durable local spool for audit records the database could not take.

When the database is away, scores are still answered and their audit records are written
here; :meth:`AuditSpool.drain` writes them to the database once it is back. Delivery is at
least once: a file is deleted only after its records were committed, and a record replayed
twice is written once because every audit record carries a unique ``record_id``.

Each :meth:`AuditSpool.append` publishes one new file, complete and flushed to disk before it
becomes visible under its final name, and never touched again. So a drainer never sees a
half-written file, and several processes may share one folder: at worst two of them replay
the same file, which the unique ``record_id`` absorbs.
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

from sqlalchemy.exc import DataError, IntegrityError

from serving.repository import json_safe

logger = logging.getLogger(__name__)
SUFFIX = ".jsonl"
REJECTED_FOLDER = "rejected"
# What a write raises when a file's records themselves are wrong (a missing field, a value the
# table refuses), as against the database being away: such a file would fail at every drain
# and hold back every file after it, so it is set aside instead.
MALFORMED = (LookupError, TypeError, ValueError, DataError, IntegrityError)

Write = Callable[[list[dict[str, Any]]], int]


class AuditSpool:
    """Audit records on local disk, one JSON line each, waiting for the database."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def append(self, records: Sequence[Mapping[str, Any]]) -> Path | None:
        """Durably store ``records``; returns the file written (None when there were none)."""
        if not records:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(json_safe(record)) + "\n" for record in records)
        # Time first so files drain in the order they were spooled; pid and uuid keep
        # processes and threads from ever choosing the same name.
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex}"
        partial = self.folder / f".{name}.partial"
        with partial.open("w", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        final = partial.with_name(name + SUFFIX)
        os.replace(partial, final)
        _fsync_folder(self.folder)
        return final

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
        propagates. A file whose records are malformed is set aside, and the drain goes on.
        """
        written = 0
        for path, records in self._readable():
            try:
                written += write(records)
            except MALFORMED as error:
                self._reject(path, reason=type(error).__name__)
                continue
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


def _read_lines(path: Path) -> list[str]:
    """The file's JSON lines; none when another process has just drained and removed it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if line.strip()]


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable, not only the file's contents."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
