"""A record the audit table refuses is set aside alone: the other requests' records it was
batched with are written, and the database is not called unreachable (issue 12, finding 2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url, select
from sqlalchemy.orm import Session, sessionmaker
from test_spool import records

from serving import repository
from serving.audit_writer import AuditWriter, LocalStore
from serving.records import ScoreRecord
from serving.spool import REJECTED_FOLDER, AuditSpool

pytest_plugins = ["database_fixtures"]

Records = list[dict]


def refused_record(database_url: str) -> dict:
    """A record the table refuses: on PostgreSQL a denial id longer than its VARCHAR(128);
    SQLite does not enforce lengths, so there a denial id that is missing (NOT NULL)."""
    record = records(1, batch=99)[0]
    postgres = make_url(database_url).get_backend_name() == "postgresql"
    record["denial_id"] = "X" * 205 if postgres else None
    return record


@dataclass
class BuiltJob:
    """Records already built, handed over as a request's job is."""

    request_id: str
    built: Records
    caller: str = "worklist"

    @property
    def results(self) -> Records:
        return self.built

    @property
    def payload(self) -> Records:
        return [{"denial_id": record["denial_id"]} for record in self.built]

    def records(self) -> Iterator[Records]:
        yield self.built


def stored_denials(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(ScoreRecord.denial_id)))


def rejected_records(spool: AuditSpool) -> Records:
    folder = spool.folder / REJECTED_FOLDER
    return [
        json.loads(line)
        for path in sorted(folder.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_a_refused_record_does_not_take_other_requests_records_with_it(
    database_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    spool = AuditSpool(tmp_path / "spool")
    reported: list[int] = []
    store = LocalStore(repository.audit_writer(sessions), spool.append, spool.set_aside)
    good = [BuiltJob(f"req-{n}", records(9, batch=n)) for n in range(3)]
    bad = BuiltJob("req-bad", [*records(3, batch=3), refused_record(database_url)])
    writer = AuditWriter(store, reported.append)
    writer.start()
    try:
        writer.submit(good[0], bad, good[1], good[2])
        assert writer.flush(timeout=30)
    finally:
        writer.close()
    accepted = [record for job in good for record in job.built] + bad.built[:3]
    expected = sorted(record["denial_id"] for record in accepted)
    assert stored_denials(sessions) == expected  # 30 written: every good record
    assert spool.pending() == 0 and reported == []  # nothing waits for a database "away"
    refused = rejected_records(spool)
    assert [r["record_id"] for r in refused] == [bad.built[-1]["record_id"]]
    reasons = {p.name.split(".")[-2] for p in (spool.folder / REJECTED_FOLDER).glob("*.jsonl")}
    assert reasons <= {"DataError", "IntegrityError"} and reasons


def test_the_drain_writes_a_files_good_records_and_sets_aside_the_refused_one(
    database_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    spool = AuditSpool(tmp_path / "spool")
    good = records(5, batch=1)
    spool.append([*good[:2], refused_record(database_url), *good[2:]])
    spool.append(records(4, batch=2))
    assert spool.drain(repository.audit_writer(sessions)) == 9
    assert spool.pending() == 0
    assert len(stored_denials(sessions)) == 9
    assert len(rejected_records(spool)) == 1
