"""SIGTERM during a batch request: the request in flight finishes, new ones are refused.

The signal is sent once the service has read the whole request (its receive queue, in the
kernel's TCP table, is empty) and before any answer has come back: in flight by what can be
seen, not by a guess of how long sending takes."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import free_port
from database_fixtures import create_keys

from serving.database import upgrade_database
from training.tracking import example_payload

pytestmark = pytest.mark.slow  # a real service process stopped with SIGTERM mid-batch

BATCH = 4_000
TCP_TABLE = Path("/proc/net/tcp")  # IPv4: the service listens on 127.0.0.1


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
def served(champion_data_dir: Path, champion_history: pd.DataFrame):
    database = f"sqlite:///{(champion_data_dir / 'denial-triage.db').as_posix()}"
    upgrade_database(database)
    key = create_keys(database, "shutdown")["scorer"]
    payload = json.loads(example_payload(champion_history.tail(200)).to_json(orient="records"))
    batch = [{**payload[i % len(payload)], "denial_id": f"sigterm-{i}"} for i in range(BATCH)]
    return champion_data_dir, key, json.dumps({"denials": batch}).encode()


def unread_by_service(connection: http.client.HTTPConnection) -> int | None:
    """Bytes of this connection's request the service has not read yet: the receive queue of
    the service's end in the kernel's TCP table. None when the table does not list it."""
    client_port = connection.sock.getsockname()[1]
    for line in TCP_TABLE.read_text().splitlines()[1:]:
        fields = line.split()  # sl, local address, remote address, st, tx_queue:rx_queue, ...
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if (local_port, remote_port) == (connection.port, client_port):
            return int(fields[4].split(":")[1], 16)
    return None


def wait_until_read(connection: http.client.HTTPConnection, seconds: float = 60) -> None:
    """Until the service has read the whole request: it is then the service's to answer."""
    deadline = time.monotonic() + seconds
    while unread_by_service(connection) != 0:
        assert time.monotonic() < deadline, "the service did not read the request"
        time.sleep(0.02)


def answered(connection: http.client.HTTPConnection) -> bool:
    """Whether any of the answer has arrived (without reading it)."""
    return bool(select.select([connection.sock], [], [], 0)[0])


def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_ones(served) -> None:
    if not TCP_TABLE.exists():
        pytest.skip(f"{TCP_TABLE} is how this test sees the request arrive (Linux only)")
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
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        wait_ready(base, process)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        connection.request("POST", "/v1/score", body, headers)  # returns once all is sent
        wait_until_read(connection)
        assert not answered(connection), "the batch was answered before SIGTERM: not in flight"
        process.send_signal(signal.SIGTERM)
        response = connection.getresponse()
        assert response.status == 200
        assert len(json.loads(response.read())["results"]) == BATCH
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            post(f"{base}/v1/score", body, key, timeout=5)
        # uvicorn finishes its graceful shutdown, then re-raises the signal it caught.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        connection.close()
        if process.poll() is None:
            process.kill()
