"""Audit records written behind the request: all of them, once, database or spool."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from serving import repository
from serving.audit_writer import AuditWriter
from serving.database import make_engine, session_factory, upgrade_database
from serving.spool import AuditSpool

Records = list[dict]


def records(request: str, count: int) -> list[Records]:
    """One request's records, as the service builds them: in chunks."""
    chunk = [{"record_id": f"{request}-{i}", "denial_id": f"D-{i}"} for i in range(count)]
    return [chunk[:2], chunk[2:]]


class Database:
    """A stand-in database that can go away, and remembers every record it committed."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.batches = 0
        self.down = False

    def write(self, batch: Records) -> int:
        if self.down:
            raise OperationalError("INSERT", {}, Exception("database is away"))
        time.sleep(0.002)  # a commit takes a moment, so requests queue up behind it
        self.rows.extend(batch)
        self.batches += 1
        return len(batch)


@pytest.fixture
def database() -> Database:
    return Database()


@pytest.fixture
def spilled() -> Records:
    return []


@pytest.fixture
def writer(database: Database, spilled: Records):
    audit = AuditWriter(database.write, spilled.extend)
    audit.start()
    yield audit
    audit.close()


def test_flush_returns_once_every_submitted_record_is_written(writer, database) -> None:
    for request in range(20):
        writer.submit(lambda request=request: records(f"r{request}", 5))
    assert writer.flush(timeout=10)
    assert len(database.rows) == 100
    assert len({row["record_id"] for row in database.rows}) == 100


def test_requests_from_many_threads_are_written_once_in_shared_batches(writer, database) -> None:
    def worklist(name: str) -> None:
        for request in range(25):
            writer.submit(lambda request=request: records(f"{name}-{request}", 4))

    threads = [threading.Thread(target=worklist, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert writer.flush(timeout=10)
    ids = [row["record_id"] for row in database.rows]
    assert len(ids) == len(set(ids)) == 8 * 25 * 4
    assert database.batches < 8 * 25  # requests that waited together shared a commit


def test_a_large_request_is_written_in_parts(writer, database) -> None:
    writer.submit(
        lambda: [
            [{"record_id": f"big-{i}"} for i in range(j, j + 500)] for j in range(0, 2_500, 500)
        ]
    )
    assert writer.flush(timeout=10)
    assert len(database.rows) == 2_500 and database.batches == 3  # 1,000 + 1,000 + 500


def test_records_the_database_refuses_go_to_the_spool(writer, database, spilled) -> None:
    database.down = True
    writer.submit(lambda: records("away", 3))
    assert writer.flush(timeout=10)
    assert [r["record_id"] for r in spilled] == ["away-0", "away-1", "away-2"]
    database.down = False
    writer.submit(lambda: records("back", 2))
    assert writer.flush(timeout=10)
    assert [r["record_id"] for r in database.rows] == ["back-0", "back-1"]


def test_a_request_whose_records_cannot_be_built_does_not_stop_the_writer(writer, database) -> None:
    def broken() -> list[Records]:
        raise ValueError("a defect while building records")

    writer.submit(broken)
    writer.submit(lambda: records("after", 2))
    assert writer.flush(timeout=10)
    assert [r["record_id"] for r in database.rows] == ["after-0", "after-1"]


def test_close_writes_what_waits_and_later_records_are_written_at_once(
    database: Database, spilled: Records
) -> None:
    writer = AuditWriter(database.write, spilled.extend)
    writer.start()
    for request in range(10):
        writer.submit(lambda request=request: records(f"r{request}", 3))
    writer.close()
    assert len(database.rows) == 30
    writer.submit(lambda: records("late", 1))  # no thread any more: written synchronously
    assert database.rows[-1]["record_id"] == "late-0"
    assert writer.flush(timeout=1)


def test_records_reach_a_real_database_and_the_spool_when_it_is_away(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    spool = AuditSpool(tmp_path / "spool")
    audit = AuditWriter(repository.audit_writer(session_factory(engine)), spool.append)
    audit.start()
    try:
        audit.submit(lambda: [[audited("D-1"), audited("D-2")]])
        assert audit.flush(timeout=10)
        with session_factory(engine)() as session:
            assert repository.count_scores(session) == 2
        broken = AuditWriter(lambda batch: _raise_operational(), spool.append)
        broken.submit(lambda: [[audited("D-3")]])  # not started: written (here, spooled) at once
        assert spool.pending() == 1
    finally:
        audit.close()
        engine.dispose()


def audited(denial_id: str) -> dict:
    return repository.audit_record(
        request_id="req-1",
        denial={"denial_id": denial_id},
        caller="worklist",
        model_version="1",
        mapping_version="m#1",
        outputs={"root_cause": {"category": "coding"}},
        explanation={"root_cause": None},
    )


def _raise_operational() -> int:
    raise OperationalError("INSERT", {}, Exception("database is away"))
