"""Reviewers do not wait behind scorers (issue 12, finding 5): a read never waits for other
clients' batches; a caller's own read waits for its records (at most ``READ_WAIT_SECONDS``),
and a denial answered a moment ago is read from its job."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_audit_writer import scored_job

from denial_triage.settings import Settings
from serving import repository
from serving import state as service_state
from serving.audit_writer import AuditJob, AuditWriter, LocalStore
from serving.errors import ServiceError
from serving.state import ServiceState
from training.triage_model import TriageModel

PROMPT_SECONDS = 0.5


class HeldStore:
    """An audit store that blocks until released: a database crawling under scorers' load."""

    def __init__(self, local: LocalStore) -> None:
        self.local = local
        self.released = threading.Event()

    def store(self, jobs: list[AuditJob]) -> int:
        self.released.wait(30)
        return self.local.store(jobs)

    def close(self) -> None:
        self.released.set()


def timed(read: Callable[[], Any]) -> tuple[float, Any]:
    """How long ``read`` took, and its result; fails (instead of hanging) past 10 s."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["value"] = read()
        except ServiceError as error:
            outcome["value"] = error
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert "seconds" in outcome, "the read was still waiting after 10 s"
    return outcome["seconds"], outcome["value"]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServiceState]:
    service = ServiceState(Settings(data_dir=tmp_path, audit_worker_process=False))
    service.start()
    yield service
    service.stop()


@pytest.fixture
def held(state: ServiceState) -> Iterator[HeldStore]:
    """The service's audit writer, its store held until the test releases it."""
    assert state.audit_writer is not None and state.local_audit is not None
    state.audit_writer.close()
    store = HeldStore(state.local_audit)
    state.audit_writer = AuditWriter(store, state._spooled)
    state.audit_writer.start()
    yield store
    store.released.set()


@pytest.fixture(scope="module")
def denials(split_history: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return split_history[1].head(30).reset_index(drop=True)


def test_a_reviewer_read_does_not_wait_for_other_clients_pending_records(
    state: ServiceState, held: HeldStore, triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    earlier = scored_job(triage_model, denials.head(3), "req-earlier")
    assert state.local_audit is not None and state.audit_writer is not None
    state.local_audit.store([earlier])
    busy = scored_job(triage_model, denials.iloc[3:30], "req-busy")
    state.audit_writer.submit(busy)  # another client's batch, stuck behind a slow database

    seconds, score = timed(
        lambda: state.latest_score(earlier.payload[0]["denial_id"], dt.date.today())
    )
    assert seconds < PROMPT_SECONDS and score.request_id == "req-earlier"

    def worklist_rows() -> int:
        with state.session() as session:
            return repository.count_scores(session)

    seconds, rows = timed(worklist_rows)  # the pages' and feedback's path
    assert seconds < PROMPT_SECONDS and rows == 3


def test_a_denial_on_its_way_is_read_from_its_job_as_it_will_be_stored(
    state: ServiceState, held: HeldStore, triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    assert state.audit_writer is not None
    busy = scored_job(triage_model, denials.head(4), "req-busy")
    denial_id = busy.payload[2]["denial_id"]
    state.audit_writer.submit(busy)
    assert state.pending_denial(denial_id) and not state.pending_denial("never-scored")

    seconds, pending = timed(lambda: state.latest_score(denial_id, dt.date.today()))
    assert seconds < PROMPT_SECONDS and pending.request_id == "req-busy"
    assert pending.denial_id == denial_id

    held.released.set()
    assert state.audit_writer.flush(timeout=10)
    assert not state.pending_denial(denial_id)
    stored = state.latest_score(denial_id, dt.date.today())  # now from the database
    assert stored.model_dump(exclude={"scored_at"}) == pending.model_dump(exclude={"scored_at"})
    assert stored.scored_at.replace(tzinfo=None) == pending.scored_at.replace(tzinfo=None)


def test_a_callers_own_read_sees_its_own_scores(
    state: ServiceState, held: HeldStore, triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    assert state.audit_writer is not None
    state.audit_writer.submit(scored_job(triage_model, denials.head(5), "req-own"))
    threading.Timer(0.3, held.released.set).start()

    def own_rows() -> int:
        with state.session(caller="worklist") as session:  # scored_job's caller
            return repository.count_scores(session)

    seconds, rows = timed(own_rows)
    assert 0.2 < seconds < service_state.READ_WAIT_SECONDS and rows == 5


def test_feedback_on_a_denial_answered_a_moment_ago_is_checked_and_taken(
    state: ServiceState, held: HeldStore, triage_model: TriageModel, denials: pd.DataFrame
) -> None:
    """The score was answered; its record is still on its way: feedback must not answer 404,
    and is held to that score's denied amount all the same."""
    from serving.auth import Caller
    from serving.schemas import FeedbackIn

    assert state.audit_writer is not None
    busy = scored_job(triage_model, denials.head(2), "req-busy")
    denial = busy.payload[0]
    state.audit_writer.submit(busy)
    reviewer = Caller("reviewer", "reviewer")

    def feedback(key: str, recovered: float) -> Any:
        body = FeedbackIn(
            idempotency_key=key,
            denial_id=denial["denial_id"],
            resolution="paid_after_correction",
            recovered_amount=recovered,
        )
        return state.save_feedback(body, reviewer)

    seconds, too_much = timed(lambda: feedback("k-over", denial["denied_amount"] + 1))
    assert seconds < PROMPT_SECONDS and isinstance(too_much, ServiceError)
    assert too_much.status_code == 422
    seconds, taken = timed(lambda: feedback("k-ok", denial["denied_amount"]))
    assert seconds < PROMPT_SECONDS and taken.created
