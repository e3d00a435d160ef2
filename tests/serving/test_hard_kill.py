"""SIGKILL right after the answers (issue 12, finding 3): no answered score is lost or
doubled, and the audit worker does not outlive the service. A real service process
(``denial-triage serve``) on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pandas as pd
import psutil
import pytest
from conftest import free_port
from database_fixtures import create_keys
from sqlalchemy import select
from test_shutdown import post, wait_ready

from serving.database import make_engine, session_factory, upgrade_database
from serving.records import ScoreRecord
from training.tracking import example_payload

pytest_plugins = ["database_fixtures"]
pytestmark = pytest.mark.slow  # real service processes, killed mid-run

BATCHES = 3
BATCH = 1_000
WORKER_EXIT_SECONDS = 5.0


@pytest.fixture(scope="module")
def trained(champion_data_dir: Path, champion_history: pd.DataFrame) -> tuple[Path, list[dict]]:
    denials = champion_history.tail(200)
    return champion_data_dir, json.loads(example_payload(denials).to_json(orient="records"))


def serve(data_dir: Path, records_url: str, spool: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "DENIAL_TRIAGE_DATA_DIR": str(data_dir),
        "DENIAL_TRIAGE_DATABASE_URL": records_url,
        "DENIAL_TRIAGE_AUDIT_SPOOL_DIR": str(spool),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "denial_triage", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, process)
    return process, base


def score_batches(base: str, key: str, payload: list[dict]) -> list[str]:
    """Send the batches at once; returns the denial ids of every batch answered 200."""
    bodies = [
        [{**payload[i % len(payload)], "denial_id": f"kill-{b}-{i}"} for i in range(BATCH)]
        for b in range(BATCHES)
    ]
    answered: list[str] = []

    def send(denials: list[dict]) -> None:
        status, body = post(f"{base}/v1/score", json.dumps({"denials": denials}).encode(), key)
        if status == 200:
            answered.extend(result["denial_id"] for result in body["results"])

    threads = [threading.Thread(target=send, args=(denials,)) for denials in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answered


def stored_denials(records_url: str) -> Counter[str]:
    engine = make_engine(records_url)
    try:
        with session_factory(engine)() as session:
            return Counter(session.scalars(select(ScoreRecord.denial_id)))
    finally:
        engine.dispose()


def test_sigkill_after_the_answers_loses_no_score_and_leaves_no_worker(
    trained: tuple[Path, list[dict]], empty_database_url: str, tmp_path: Path
) -> None:
    data_dir, payload = trained
    records_url = empty_database_url  # SQLite or PostgreSQL
    upgrade_database(records_url)
    key = create_keys(records_url, "hard-kill")["scorer"]
    spool = tmp_path / "spool"
    process, base = serve(data_dir, records_url, spool)
    try:
        children = psutil.Process(process.pid).children(recursive=True)
        answered = score_batches(base, key, payload)
        process.send_signal(signal.SIGKILL)  # right after the last 200
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert len(answered) == BATCHES * BATCH
    assert children, "the audit worker process was not found"
    _, alive = psutil.wait_procs(children, timeout=WORKER_EXIT_SECONDS)
    assert alive == [], "the audit worker outlived the killed service"

    process, _ = serve(data_dir, records_url, spool)  # ready only after the journal's replay
    try:
        stored = stored_denials(records_url)
        assert sorted(stored) == sorted(answered)  # 0 lost
        assert set(stored.values()) == {1}  # 0 doubled
        assert list((spool / "journal").glob("*.journal")) == []  # replayed, then removed
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
