"""Audit records written behind the request: all of them, once, database or spool."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest
from conftest import TEST_INPUT_HASH_KEY
from sqlalchemy.exc import OperationalError

from features.contract import clean_records
from serving import repository
from serving.audit_writer import (
    RECORDS_PER_TRANSACTION,
    AuditJob,
    AuditWriter,
    LocalStore,
    ProcessStore,
)
from serving.database import make_engine, session_factory, upgrade_database
from serving.schemas import ScoreResponse
from serving.scoring import TASKS, score_denials
from serving.spool import AuditSpool
from training.tracking import example_payload
from training.triage_model import TriageModel

Records = list[dict]


@dataclass
class FakeJob:
    """A request's records without a model: only what the stores ask of a job."""

    request_id: str
    count: int
    broken: bool = False
    caller: str = "worklist"

    @property
    def results(self) -> list[None]:
        return [None] * self.count

    @property
    def payload(self) -> list[dict]:
        return [{"denial_id": f"{self.request_id}-D{i}"} for i in range(self.count)]

    def records(self) -> Iterator[Records]:
        if self.broken:
            raise ValueError("a defect while building records")
        chunk = [{"record_id": f"{self.request_id}-{i}"} for i in range(self.count)]
        for start in range(0, self.count, RECORDS_PER_TRANSACTION):
            yield chunk[start : start + RECORDS_PER_TRANSACTION]


class Database:
    """A stand-in database that can go away, and remembers every record it committed."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.transactions: list[int] = []
        self.down = False

    def write(self, records: Records) -> int:
        if self.down:
            raise OperationalError("INSERT", {}, Exception("database is away"))
        time.sleep(0.002)  # a commit takes a moment, so requests queue up behind it
        self.rows.extend(records)
        self.transactions.append(len(records))
        return len(records)


@pytest.fixture
def database() -> Database:
    return Database()


@pytest.fixture
def spilled() -> Records:
    return []


@pytest.fixture
def local(database: Database, spilled: Records) -> LocalStore:
    return LocalStore(database.write, spilled.extend, spilled.extend)


def ids(rows: Records) -> list[str]:
    return [row["record_id"] for row in rows]


# ---------------------------------------------------------------------------- stores


def test_small_requests_share_a_transaction_and_a_large_one_is_split(local, database) -> None:
    local.store([FakeJob("a", 3), FakeJob("b", 4)])
    local.store([FakeJob("big", 2_500)])
    assert database.transactions == [7, 1_000, 1_000, 500]
    assert len(set(ids(database.rows))) == 2_507


def test_what_the_database_refuses_is_spooled_and_counted(local, database, spilled) -> None:
    database.down = True
    assert local.store([FakeJob("away", 3)]) == 3
    assert ids(spilled) == ["away-0", "away-1", "away-2"] and database.rows == []


def test_a_request_whose_records_cannot_be_built_leaves_the_others(local, database) -> None:
    local.store([FakeJob("bad", 2, broken=True), FakeJob("good", 2)])
    assert ids(database.rows) == ["good-0", "good-1"]


# ---------------------------------------------------------------------------- the writer


@pytest.fixture
def writer(local: LocalStore):
    reported: list[int] = []
    audit = AuditWriter(local, reported.append)
    audit.reported = reported  # type: ignore[attr-defined]
    audit.start()
    yield audit
    audit.close()


def test_flush_returns_once_every_request_handed_over_is_written(writer, database) -> None:
    for request in range(20):
        writer.submit(FakeJob(f"r{request}", 5))
    assert writer.flush(timeout=10)
    assert len(set(ids(database.rows))) == 100


def test_requests_from_many_threads_are_written_once_in_shared_batches(writer, database) -> None:
    def worklist(name: str) -> None:
        for request in range(25):
            writer.submit(FakeJob(f"{name}-{request}", 4))

    threads = [threading.Thread(target=worklist, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert writer.flush(timeout=10)
    assert len(database.rows) == len(set(ids(database.rows))) == 8 * 25 * 4
    assert len(database.transactions) < 8 * 25  # requests that waited together shared one


def test_each_store_call_carries_about_one_transaction(database: Database) -> None:
    calls: list[int] = []

    class Counting(LocalStore):
        def store(self, jobs: list) -> int:
            calls.append(sum(job.count for job in jobs))
            time.sleep(0.02)  # a slow database: requests queue up meanwhile
            return super().store(jobs)

    writer = AuditWriter(Counting(database.write, lambda records: None, lambda refused: None))
    writer.start()
    for request in range(30):
        writer.submit(FakeJob(f"r{request}", 400))
    writer.close()
    assert sum(calls) == 12_000
    assert max(calls) == 1_200  # queued requests shared calls, up to about 1,000 denials


def test_spooled_records_are_reported(writer, database, spilled) -> None:
    database.down = True
    writer.submit(FakeJob("away", 3))
    assert writer.flush(timeout=10)
    assert len(spilled) == 3 and writer.reported == [3]


def test_close_writes_what_waits_and_later_requests_are_written_at_once(local, database) -> None:
    writer = AuditWriter(local)
    writer.start()
    for request in range(10):
        writer.submit(FakeJob(f"r{request}", 3))
    writer.close()
    assert len(database.rows) == 30
    writer.submit(FakeJob("late", 1))  # no thread any more: written synchronously
    assert ids(database.rows)[-1] == "late-0"
    assert writer.flush(timeout=1)


# ---------------------------------------------------------------------------- audit jobs


def scored_job(model: TriageModel, denials: pd.DataFrame, request_id: str) -> AuditJob:
    payload = json.loads(example_payload(denials).to_json(orient="records"))
    return AuditJob(
        request_id=request_id,
        model_version="7",
        mapping_version="m#1",
        scored_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        caller="worklist",
        results=score_denials(model, clean_records(payload)),
        payload=payload,
    )


@pytest.fixture(scope="module")
def denials(split_history: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return split_history[1].head(40).reset_index(drop=True)


def test_audit_records_hold_what_the_response_says(
    triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    job = scored_job(triage_model, denials, "req-1")
    response = ScoreResponse(
        request_id=job.request_id,
        model_version=job.model_version,
        mapping_version=job.mapping_version,
        scored_at=job.scored_at,
        results=job.results,
    )
    records = [record for chunk in job.records() for record in chunk]
    assert len(records) == len(denials)
    for record, scored, denial in zip(records, response.results, job.payload, strict=True):
        dumped = scored.model_dump(mode="json")
        explanation = {task: dumped[task].pop("explanation") for task in TASKS}
        # Equal documents with equal key order: the database stores the same JSON text.
        assert json.dumps(record["outputs"]) == json.dumps(dumped)
        assert json.dumps(record["explanation"]) == json.dumps(explanation)
        assert record["denial_id"] == denial["denial_id"] and record["caller"] == "worklist"


def test_a_large_request_is_handed_over_in_parts_with_distinct_record_ids(
    triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    job = scored_job(triage_model, denials.head(25), "req-1")
    parts = job.parts(10)
    assert [len(part.results) for part in parts] == [10, 10, 5]
    assert [d["denial_id"] for part in parts for d in part.payload] == [
        d["denial_id"] for d in job.payload
    ]
    record_ids = [r["record_id"] for part in parts for chunk in part.records() for r in chunk]
    assert len(set(record_ids)) == 25


def test_record_ids_are_fixed_by_request_and_position(
    triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    job = scored_job(triage_model, denials.head(3), "req-1")
    again = [r["record_id"] for chunk in job.records() for r in chunk]
    assert again == [r["record_id"] for chunk in job.records() for r in chunk]
    other = scored_job(triage_model, denials.head(3), "req-1")  # same request id, new job
    assert not set(again) & {r["record_id"] for chunk in other.records() for r in chunk}


# ---------------------------------------------------------------------------- the worker


@pytest.fixture
def records_database(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    upgrade_database(url)
    yield url


def stored(url: str) -> int:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return repository.count_scores(session)
    finally:
        engine.dispose()


def test_a_worker_process_writes_and_a_dead_one_is_replaced_without_duplicates(
    triage_model: TriageModel,
    denials: pd.DataFrame,
    records_database: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spool = AuditSpool(tmp_path / "spool")
    engine = make_engine(records_database)
    local = LocalStore(
        repository.audit_writer(session_factory(engine)), spool.append, spool.set_aside
    )
    store = ProcessStore(records_database, spool.folder, local, TEST_INPUT_HASH_KEY)
    try:
        first = scored_job(triage_model, denials.head(10), "req-1")
        assert store.store([first]) == 0
        assert stored(records_database) == 10
        for child in psutil.Process().children():
            if "spawn_main" in " ".join(child.cmdline()):  # the worker, not the tracker
                child.kill()
        second = scored_job(triage_model, denials.iloc[10:25], "req-2")
        assert store.store([first, second]) == 0  # written by the service
        assert "the audit worker died" in caplog.text
        assert stored(records_database) == 25  # the first request's records once, not twice
        assert store.store([scored_job(triage_model, denials.iloc[25:30], "req-3")]) == 0
        assert stored(records_database) == 30
    finally:
        store.close()
        engine.dispose()


def test_the_worker_spools_what_the_database_refuses(
    triage_model: TriageModel, denials: pd.DataFrame, tmp_path: Path
) -> None:
    away = f"sqlite:///{tmp_path / 'no-such-folder' / 'records.db'}"  # cannot be opened
    spool = AuditSpool(tmp_path / "spool")
    store = ProcessStore(
        away,
        spool.folder,
        LocalStore(lambda _: 0, spool.append, spool.set_aside),
        TEST_INPUT_HASH_KEY,
    )
    try:
        assert store.store([scored_job(triage_model, denials.head(4), "req-1")]) == 4
        assert spool.pending() == 4
    finally:
        store.close()
