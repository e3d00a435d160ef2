"""The audit spool: records made while the database is away are written when it is back,
none lost and none doubled."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from serving.database import make_engine, session_factory
from serving.repository import audit_record, audit_writer, count_scores, record_scores
from serving.spool import AuditSpool

pytest_plugins = ["database_fixtures"]


def records(count: int, batch: int = 0) -> list[dict]:
    return [
        audit_record(
            request_id=f"req-{batch}",
            denial={"denial_id": f"D-{batch}-{i}", "denied_amount": 10.0 + i},
            caller="worklist",
            model_version="3",
            mapping_version="m",
            outputs={"root_cause": {"category": "coding"}},
            explanation={"root_cause": {"reasons": []}},
            scored_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        )
        for i in range(count)
    ]


# ---------------------------------------------------------------------------- spool alone


def test_appended_records_are_pending_until_drained(tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path / "spool")
    assert spool.pending() == 0
    spool.append(records(3, batch=1))
    spool.append(records(2, batch=2))
    assert spool.pending() == 5
    seen: list[dict] = []
    assert spool.drain(lambda batch: seen.extend(batch) or len(batch)) == 5
    assert spool.pending() == 0
    assert [r["request_id"] for r in seen] == ["req-1"] * 3 + ["req-2"] * 2


def test_a_file_stays_until_its_write_succeeds(tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path)
    spool.append(records(3, batch=1))
    spool.append(records(4, batch=2))
    calls = 0

    def write_once_then_fail(batch: list[dict]) -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise OperationalError("INSERT", {}, Exception("database went away"))
        return len(batch)

    with pytest.raises(OperationalError):
        spool.drain(write_once_then_fail)
    assert spool.pending() == 4
    assert spool.drain(len) == 4


def test_an_unreadable_file_is_set_aside_not_lost(tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path)
    spool.append(records(2))
    (tmp_path / "0-1-broken.jsonl").write_text('{"record_id": "x", "tru')
    assert spool.drain(len) == 2
    assert spool.pending() == 0
    assert (tmp_path / "rejected" / "0-1-broken.jsonl").exists()


def test_a_file_of_malformed_records_is_set_aside_and_later_files_drain(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    spool = AuditSpool(tmp_path)
    spool.append([{"record_id": "r-1", "request_id": "req"}])  # valid JSON, fields missing
    spool.append(records(3, batch=2))
    assert spool.drain(audit_writer(sessions)) == 3
    assert spool.pending() == 0
    assert len(list((tmp_path / "rejected").glob("*.jsonl"))) == 1
    with sessions() as session:
        assert count_scores(session) == 3


def test_only_complete_files_are_visible(tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path)
    written = spool.append(records(2))
    assert spool.files() == [written]
    assert list(tmp_path.glob(".*partial")) == []


# ---------------------------------------------------------------------------- with a database


@contextmanager
def database_away(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions that fail the way an outage does: PostgreSQL stopped (nothing listens on the
    port), or the SQLite file locked by another writer."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        engine = make_engine(url.set(port=1))
        yield session_factory(engine)
        engine.dispose()
        return
    blocker = sqlite3.connect(str(url.database))
    blocker.execute("BEGIN EXCLUSIVE")
    engine = make_engine(url, sqlite_busy_timeout_s=0.1)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()
        blocker.rollback()
        blocker.close()


def test_records_made_during_an_outage_are_all_written_later(
    database_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    spool = AuditSpool(tmp_path / "spool")
    made = [records(20, batch=b) for b in range(5)]
    with database_away(database_url) as unreachable:
        write_now = audit_writer(unreachable)
        for batch in made:
            with pytest.raises(OperationalError):
                write_now(batch)
            spool.append(batch)
    assert spool.pending() == 100

    assert spool.drain(audit_writer(sessions)) == 100
    assert spool.pending() == 0
    with sessions() as session:
        assert count_scores(session) == 100


def test_replaying_the_spool_twice_writes_each_record_once(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    spool = AuditSpool(tmp_path / "spool")
    for batch in range(3):
        spool.append(records(10, batch=batch))
    copies = tmp_path / "copies"
    shutil.copytree(spool.folder, copies)
    with sessions() as session:
        record_scores(session, records(1, batch=9))  # written directly meanwhile

    assert spool.drain(audit_writer(sessions)) == 30
    # A crash after the commit but before the files were removed: the same files again.
    shutil.copytree(copies, spool.folder, dirs_exist_ok=True)
    assert spool.pending() == 30
    assert spool.drain(audit_writer(sessions)) == 0
    assert spool.pending() == 0
    with sessions() as session:
        assert count_scores(session) == 31
