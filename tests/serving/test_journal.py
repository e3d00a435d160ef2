"""The audit journal: a job is on disk before its answer, replayed once after a hard kill,
and forgotten (its segment removed) once its records are stored."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker
from test_audit_writer import scored_job

from serving import journal as journal_module
from serving import repository
from serving.audit_writer import AuditJob, AuditWriter, LocalStore
from serving.journal import SUFFIX, AuditJournal, decode, encode
from serving.spool import AuditSpool
from training.triage_model import TriageModel

pytest_plugins = ["database_fixtures"]


@pytest.fixture(scope="module")
def denials(split_history: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return split_history[1].head(60).reset_index(drop=True)


@pytest.fixture(scope="module")
def jobs(triage_model: TriageModel, denials: pd.DataFrame) -> list[AuditJob]:
    return [
        scored_job(triage_model, denials.iloc[start : start + 10], f"req-{start}")
        for start in range(0, 60, 10)
    ]


def built(job: AuditJob) -> list[dict]:
    return [record for chunk in job.records() for record in chunk]


def segments(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{SUFFIX}"))


def test_a_job_read_back_from_its_frame_builds_the_same_records(jobs: list[AuditJob]) -> None:
    frame = encode(jobs[0])
    again = decode(frame[journal_module.FRAME.size :])
    assert again == jobs[0]
    assert built(again) == built(jobs[0])  # same record ids, outputs and hashes


def test_recorded_jobs_are_on_disk_private_and_removed_once_done(
    jobs: list[AuditJob], tmp_path: Path
) -> None:
    journal = AuditJournal(tmp_path / "journal")
    journal.record(jobs[:2])
    journal.record(jobs[2:3])
    [segment] = segments(journal.folder)
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    assert segment.stat().st_size == sum(len(encode(job)) for job in jobs[:3])
    journal.done(jobs[:3])
    journal.close()  # everything in it is stored: nothing is left to replay
    assert segments(journal.folder) == []


def test_a_segment_whose_jobs_are_all_stored_is_removed_once_large(
    jobs: list[AuditJob], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "RETIRE_BYTES", len(encode(jobs[0])) * 2)
    journal = AuditJournal(tmp_path)
    journal.record(jobs[:3])
    journal.done(jobs[:2])
    assert len(segments(tmp_path)) == 1  # one job still waits
    journal.done(jobs[2:3])
    assert segments(tmp_path) == []
    journal.record(jobs[3:4])  # the next request opens a new segment
    assert len(segments(tmp_path)) == 1


def test_a_full_segment_is_followed_by_a_new_one_and_removed_once_stored(
    jobs: list[AuditJob], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "MAX_SEGMENT_BYTES", len(encode(jobs[0])))
    journal = AuditJournal(tmp_path)
    journal.record(jobs[:1])
    journal.record(jobs[1:2])  # the first segment is full: a second one starts
    _full, second = segments(tmp_path)
    journal.done(jobs[:1])
    assert segments(tmp_path) == [second]  # the full one went once its job was stored


def test_requests_waiting_at_once_share_an_fsync(
    jobs: list[AuditJob], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def slow_fsync(descriptor: int) -> None:
        synced.append(descriptor)
        threading.Event().wait(0.05)  # a disk's flush: others append meanwhile
        real_fsync(descriptor)

    monkeypatch.setattr(journal_module.os, "fsync", slow_fsync)
    journal = AuditJournal(tmp_path)
    threads = [threading.Thread(target=journal.record, args=([jobs[n % 6]],)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= len(synced) < 24 / 2  # one fsync served many requests (and the new folder)
    assert segments(tmp_path)[0].stat().st_size == sum(len(encode(jobs[n % 6])) for n in range(24))


def left_behind(folder: Path, target: Path) -> Path:
    """Copies of a live journal's segments, as a killed process leaves them: unlocked."""
    target.mkdir()
    for segment in segments(folder):
        shutil.copy(segment, target / segment.name)
    return target


def dead_process_journal(jobs: list[AuditJob], tmp_path: Path) -> Path:
    live = AuditJournal(tmp_path / "live")
    live.record(jobs)
    return left_behind(live.folder, tmp_path / "left")


def stored_record_ids(sessions: sessionmaker[Session]) -> list[str]:
    from sqlalchemy import select

    from serving.records import ScoreRecord

    with sessions() as session:
        return list(session.scalars(select(ScoreRecord.record_id)))


def test_replay_stores_what_a_killed_process_left_once(
    jobs: list[AuditJob], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = dead_process_journal(jobs, tmp_path)
    spool = AuditSpool(tmp_path / "spool")
    store = LocalStore(repository.audit_writer(sessions), spool.append, spool.set_aside)
    store.store(jobs[:2])  # written before the kill, not yet forgotten by the journal
    assert AuditJournal(folder).replay(store.store) == 6
    ids = stored_record_ids(sessions)
    assert len(ids) == len(set(ids)) == 60  # none lost, none doubled
    assert segments(folder) == []
    assert AuditJournal(folder).replay(store.store) == 0


def test_replay_leaves_a_live_process_segments_alone(jobs: list[AuditJob], tmp_path: Path) -> None:
    live = AuditJournal(tmp_path)
    live.record(jobs[:1])
    replayed: list[AuditJob] = []
    assert AuditJournal(tmp_path).replay(replayed.extend) == 0
    assert replayed == [] and len(segments(tmp_path)) == 1


def test_a_torn_last_entry_ends_the_replay_of_its_segment(
    jobs: list[AuditJob], tmp_path: Path
) -> None:
    folder = dead_process_journal(jobs[:2], tmp_path)
    [segment] = segments(folder)
    with segment.open("ab") as handle:
        handle.write(encode(jobs[2])[:-7])  # power lost mid-append: never answered
    replayed: list[AuditJob] = []
    assert AuditJournal(folder).replay(replayed.extend) == 2
    assert replayed == jobs[:2]


def test_the_writer_journals_before_it_returns_and_forgets_once_stored(
    jobs: list[AuditJob], tmp_path: Path
) -> None:
    gate = threading.Event()
    stored: list[AuditJob] = []

    class Held:
        def store(self, batch: list[AuditJob]) -> int:
            gate.wait(10)
            stored.extend(batch)
            return 0

        def close(self) -> None:
            pass

    journal = AuditJournal(tmp_path)
    writer = AuditWriter(Held(), journal=journal)
    writer.start()
    try:
        writer.submit(*jobs[:2])
        replayed: list[AuditJob] = []
        left = left_behind(tmp_path, tmp_path / "copied")
        AuditJournal(left).replay(replayed.extend)
        assert replayed == jobs[:2]  # on disk when submit returned, before any store
    finally:
        gate.set()
        writer.close()
    assert stored == jobs[:2]
    assert segments(tmp_path) == []
