"""SIGTERM during a batch request: the request in flight finishes, new ones are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import free_port, train_small_registry
from database_fixtures import create_keys

from serving.database import upgrade_database
from training import run as training_run
from training.tracking import example_payload

BATCH = 4_000


def post(url: str, body: bytes, key: str, timeout: float = 120) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, json.loads(response.read())


def wait_ready(base: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the service exited before it was ready"
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise AssertionError("the service did not become ready")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    options, _ = train_small_registry(
        tmp_path_factory.mktemp("shutdown"), rows=12_000, seed=51, rounds=30, promote_first=True
    )
    database = f"sqlite:///{(options.data_dir / 'denial-triage.db').as_posix()}"
    upgrade_database(database)
    key = create_keys(database, "shutdown")["scorer"]
    denials = training_run.load_history(options.data).tail(200)
    payload = json.loads(example_payload(denials).to_json(orient="records"))
    batch = [{**payload[i % len(payload)], "denial_id": f"sigterm-{i}"} for i in range(BATCH)]
    return options.data_dir, key, json.dumps({"denials": batch}).encode()


def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_ones(served) -> None:
    data_dir, key, body = served
    port = free_port()
    env = {
        **os.environ,
        "DENIAL_TRIAGE_DATA_DIR": str(data_dir),
        "DENIAL_TRIAGE_MAX_BATCH_DENIALS": str(BATCH),
        "DENIAL_TRIAGE_MAX_BODY_BYTES": str(len(body) * 2),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "denial_triage", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    outcome: dict[str, object] = {}
    try:
        wait_ready(base, process)

        def batch_request() -> None:
            outcome["status"], outcome["body"] = post(f"{base}/v1/score", body, key)
            outcome["answered_at"] = time.monotonic()

        worker = threading.Thread(target=batch_request)
        worker.start()
        time.sleep(0.5)  # the body is sent and scoring has started
        sent_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        worker.join(timeout=120)
        assert outcome.get("status") == 200
        assert outcome["answered_at"] > sent_at, "the request was not in flight at SIGTERM"
        assert len(outcome["body"]["results"]) == BATCH
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            post(f"{base}/v1/score", body, key, timeout=5)
        # uvicorn finishes its graceful shutdown, then re-raises the signal it caught.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
