"""The database goes away during scoring, end to end over HTTP (issue 8).

The whole service runs (TestClient over ``create_app``, audit records written behind the
request by its worker process) and the database really goes away: PostgreSQL is reached
through a TCP forwarder that this test closes, cutting every open connection, and reopens;
SQLite is locked by another connection holding ``BEGIN EXCLUSIVE``. Scores must still be
answered, their audit records must wait in the durable spool, and once the database is back
the service's own poll loop must write them: a count of the audit rows proves that none were
lost and none doubled.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pytest
from conftest import ChampionRegistry, free_port
from database_fixtures import POSTGRES_URL, auth, create_keys, postgres_schema, require_postgres
from fastapi.testclient import TestClient
from sqlalchemy import func, make_url, select
from sqlalchemy.exc import DataError, InterfaceError, OperationalError

from denial_triage.settings import Settings
from serving import state as service_state
from serving.app import _poll_champion, create_app
from serving.database import make_engine, session_factory
from serving.records import ScoreRecord
from serving.spool import AuditSpool
from training.tracking import example_payload

pytest_plugins = ["database_fixtures"]

# Requests of mixed sizes: single denials as a worklist sends them, and 100-denial batches.
BEFORE = (1, 100, 7)
DURING = tuple(100 if n % 3 == 0 else 1 for n in range(30))  # 30 requests, 1,020 denials
AFTER = (1, 100)
POLL_SECONDS = 0.3  # the champion poll loop, which also drains the spool
SETTLE_SECONDS = 45.0  # longest wait for the spool to fill or empty before the test fails


# ---------------------------------------------------------------------------- the outages


class Outage(Protocol):
    """A database the test can take away from the service and give back."""

    @property
    def service_url(self) -> str:
        """What the service is configured with."""

    @property
    def direct_url(self) -> str:
        """What the test counts rows through, whatever the outage."""

    def begin(self) -> None: ...

    def end(self) -> None: ...


class DatabaseProxy:
    """A TCP forwarder on a free loopback port in front of the real PostgreSQL server.

    Closing it is an outage as the service meets one: connections are refused, and every
    open connection (the service's pool, the audit worker's) is cut mid-stream. Reopening
    listens on the same port again, so the service's URL stays valid.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._links: set[socket.socket] = set()
        self._lock = threading.Lock()

    def open(self) -> None:
        # create_server sets SO_REUSEADDR: the port is free again at once after a close.
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            _hang_up(link)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed: the outage has begun
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._links.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with suppress(OSError):
            while chunk := source.recv(65536):
                target.sendall(chunk)
        # One side ended (or was cut): end the other, so neither end waits on a dead link.
        for end in (source, target):
            _hang_up(end)
            with self._lock:
                self._links.discard(end)


def _hang_up(end: socket.socket) -> None:
    with suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    end.close()


@dataclass
class PostgresStopped:
    """PostgreSQL gone: the forwarder between the service and the server is closed."""

    direct_url: str
    proxy: DatabaseProxy

    @property
    def service_url(self) -> str:
        url = make_url(self.direct_url).set(host="127.0.0.1", port=self.proxy.port)
        return url.render_as_string(hide_password=False)

    def begin(self) -> None:
        self.proxy.close()

    def end(self) -> None:
        self.proxy.open()


@dataclass
class SqliteLocked:
    """SQLite gone for writers: another connection holds the file's write lock."""

    path: Path
    _blocker: sqlite3.Connection | None = None

    @property
    def service_url(self) -> str:
        return f"sqlite:///{self.path.as_posix()}"

    @property
    def direct_url(self) -> str:
        return self.service_url

    def begin(self) -> None:
        self._blocker = sqlite3.connect(self.path, isolation_level=None)
        self._blocker.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        if self._blocker is not None:
            self._blocker.rollback()
            self._blocker.close()
            self._blocker = None


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def registry(
    champion_registry: ChampionRegistry, champion_history: pd.DataFrame
) -> tuple[Path, list[dict[str, Any]]]:
    """A registry with a small champion, and denials to score (as a worklist sends them).
    Each case serves its own copy (``data_dir``); the session's registry is never served."""
    denials = json.loads(example_payload(champion_history.tail(100)).to_json(orient="records"))
    return champion_registry.data_dir, denials


@pytest.fixture
def data_dir(registry: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> Path:
    """A data directory of the case's own, holding the registry: the default SQLite database
    and the default spool under it start empty."""
    target = tmp_path / "data"
    shutil.copytree(registry[0], target)
    return target


@pytest.fixture(params=["postgresql", "sqlite"])
def outage(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Outage]:
    if request.param == "sqlite":
        locked = SqliteLocked(data_dir / "denial-triage.db")  # the service's default database
        try:
            yield locked
        finally:
            locked.end()
        return
    require_postgres()
    upstream = make_url(POSTGRES_URL)
    proxy = DatabaseProxy((upstream.host or "127.0.0.1", upstream.port or 5432))
    proxy.open()
    try:
        with contextmanager(postgres_schema)() as schema_url:
            yield PostgresStopped(schema_url, proxy)
            proxy.close()  # nothing of the service's may hold the schema while it is dropped
    finally:
        proxy.close()


@pytest.fixture(autouse=True)
def outage_outlasts_key_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every key check meets the outage, as one longer than the key cache's 30 s would."""
    monkeypatch.setattr(service_state, "AUTH_CACHE_SECONDS", 0.0)


# ---------------------------------------------------------------------------- the worklist


@dataclass
class Worklist:
    """Sends score requests and remembers every denial id it was answered for."""

    client: TestClient
    key: str
    denials: list[dict[str, Any]]
    answered: list[str] = field(default_factory=list)

    def score(self, sizes: tuple[int, ...], phase: str) -> int:
        """Score one request per size; every one must be answered. Returns the denials."""
        for number, size in enumerate(sizes):
            # Fresh ids for every denial: a count per id then shows a lost or doubled record.
            batch = [
                {**denial, "denial_id": f"{phase}-{number}-{i}"}
                for i, denial in enumerate(self.denials[:size])
            ]
            response = self.client.post(
                "/v1/score", json={"denials": batch}, headers=auth(self.key)
            )
            assert response.status_code == 200, (phase, number, response.text)
            scored = [result["denial_id"] for result in response.json()["results"]]
            assert scored == [denial["denial_id"] for denial in batch]
            self.answered += scored
        return sum(sizes)


def readiness(client: TestClient) -> dict[str, Any]:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text  # scoring goes on: still ready
    return response.json()


def wait_for(client: TestClient, what: str, condition: Callable[[dict[str, Any]], bool]) -> None:
    """Poll /readyz until ``condition`` holds, as an operator's probe would."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while not condition(ready := readiness(client)):
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {SETTLE_SECONDS:.0f} s; /readyz says {ready}")
        time.sleep(0.1)


def audit_rows(url: str) -> tuple[int, int]:
    """How many audit rows the database holds, and how many denial ids they cover."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            rows = session.scalar(select(func.count()).select_from(ScoreRecord)) or 0
            ids = session.scalar(select(func.count(func.distinct(ScoreRecord.denial_id)))) or 0
            return rows, ids
    finally:
        engine.dispose()


def service_settings(data_dir: Path, outage: Outage, poll_seconds: float) -> Settings:
    # Write-behind and the worker process are the defaults; named so a changed default
    # cannot quietly turn this into a test of another path.
    return Settings(
        data_dir=data_dir,
        database_url=outage.service_url,
        model_poll_seconds=poll_seconds,
        audit_write_behind=True,
        audit_worker_process=True,
    )


def written_before_the_outage(client: TestClient, key: str, last_denial: str) -> None:
    """Every audit record handed over so far is written (reads no longer wait for them all),
    and the last one reads back."""
    client.app.state.service.flush_audit()
    response = client.get(f"/v1/denials/{last_denial}", headers=auth(key))
    assert response.status_code == 200, response.text


def assert_none_lost(url: str, spool_dir: Path, answered: list[str]) -> tuple[int, int]:
    rows, ids = audit_rows(url)
    assert len(set(answered)) == len(answered)
    assert (rows, ids) == (len(answered), len(answered)), "lost or doubled audit records"
    assert AuditSpool(spool_dir).files() == []
    return rows, ids


# ---------------------------------------------------------------------------- the cases


@pytest.mark.slow  # the service end to end through a database cut and brought back
def test_scores_are_answered_and_every_audit_record_is_written_after_the_outage(
    outage: Outage, data_dir: Path, registry: tuple[Path, list[dict[str, Any]]], request
) -> None:
    settings = service_settings(data_dir, outage, POLL_SECONDS)
    with TestClient(create_app(settings)) as client:
        keys = create_keys(outage.direct_url, "outage")
        worklist = Worklist(client, keys["scorer"], registry[1])
        worklist.score(BEFORE, "before")
        written_before_the_outage(client, keys["reviewer"], worklist.answered[-1])
        assert readiness(client)["database_reachable"]

        outage.begin()
        during = worklist.score(DURING, "during")
        wait_for(client, "spooled outage", lambda r: r["audit_records_spooled"] == during)
        ready = readiness(client)
        assert not ready["database_reachable"] and ready["audit_records_spooled"] == during

        outage.end()
        worklist.score(AFTER, "after")
        # The service's own poll loop drains the spool; nothing here asks it to.
        wait_for(client, "drained spool", lambda r: r["audit_records_spooled"] == 0)
        assert readiness(client)["database_reachable"]
    rows, ids = assert_none_lost(outage.direct_url, settings.audit_spool_dir, worklist.answered)
    print(
        f"\n{request.node.callspec.id}: {len(DURING)} requests answered during the outage, "
        f"{during} records spooled and written after recovery, {rows} rows for {ids} "
        f"denials scored, lost: {len(worklist.answered) - ids}, duplicates: {rows - ids}"
    )


@pytest.mark.slow  # two services in turn through a database outage
def test_records_spooled_before_a_restart_are_written_by_the_next_service(
    outage: Outage, data_dir: Path, registry: tuple[Path, list[dict[str, Any]]], request
) -> None:
    # A poll interval longer than the test: only the drain at start can write the spool.
    settings = service_settings(data_dir, outage, poll_seconds=3600)
    with TestClient(create_app(settings)) as client:
        keys = create_keys(outage.direct_url, "restart")
        worklist = Worklist(client, keys["scorer"], registry[1])
        worklist.score(BEFORE, "before")
        written_before_the_outage(client, keys["reviewer"], worklist.answered[-1])
        outage.begin()
        during = worklist.score(DURING[:10], "during")
    # Stopped while the database is away: the records stay in the spool, on disk.
    spooled = AuditSpool(settings.audit_spool_dir).pending()
    assert spooled == during

    outage.end()
    with TestClient(create_app(settings)) as client:
        wait_for(client, "drain at start", lambda r: r["audit_records_spooled"] == 0)
        worklist.client = client
        worklist.score(AFTER, "after")
    rows, ids = assert_none_lost(outage.direct_url, settings.audit_spool_dir, worklist.answered)
    print(
        f"\n{request.node.callspec.id}: {len(DURING[:10])} requests answered before the "
        f"restart, {spooled} records spooled and written by the next service, {rows} rows for "
        f"{ids} denials scored, lost: {len(worklist.answered) - ids}, duplicates: {rows - ids}"
    )


class FlakyService:
    """A service whose spool drain fails unexpectedly once, as a full disk would make it."""

    def __init__(self) -> None:
        self.drains = 0

    def drain_spool(self) -> int:
        self.drains += 1
        if self.drains == 1:
            raise OSError("No space left on device")
        return 0

    def refresh_model(self) -> None:
        pass

    def refresh_challenger(self) -> None:
        pass


def test_the_poll_loop_outlives_a_failed_drain() -> None:
    service = FlakyService()

    async def poll_for_a_while() -> None:
        loop = asyncio.create_task(_poll_champion(service, 0.01))  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        assert not loop.done(), "the poll loop ended: no more reloads, no more drains"
        loop.cancel()

    asyncio.run(poll_for_a_while())
    assert service.drains > 2  # the first drain ran at start, and the loop went on after it


def test_the_audit_switches_are_settings_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().audit_write_behind and Settings().audit_worker_process
    monkeypatch.setenv("DENIAL_TRIAGE_AUDIT_WRITE_BEHIND", "false")
    monkeypatch.setenv("DENIAL_TRIAGE_AUDIT_WORKER_PROCESS", "0")
    settings = Settings()
    assert not settings.audit_write_behind and not settings.audit_worker_process


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (OperationalError("SELECT", {}, Exception("connection refused")), "is unreachable"),
        (InterfaceError("SELECT", {}, Exception("connection closed")), "is unreachable"),
        (DataError("INSERT", {}, Exception("value out of range")), "refused the request"),
    ],
)
def test_callers_are_told_an_outage_from_a_refusal(error: Exception, said: str) -> None:
    # An outage is worth a retry; a refusal is a defect to report with the request id.
    assert service_state._unavailable(error).startswith(said)
