"""A bounded load test on loopback, by the code of ``benchmarks/load.py``.

The service runs as shipped (``denial-triage serve``, one uvicorn process, SQLite records, the
audit worker) while locust holds a steady mix of scoring, reviewer reads and feedback for 60 s.
No request may fail, every answered denial must have its audit record, memory may not grow
grossly, and most of the planned load must have been sent: without the load, the test cannot
pass.

Rates and the benchmark's tight definition of flat memory are figures of the benchmark, run
by hand on a quiet machine (``benchmarks/load.py``), not assertions here: on a shared CI
machine a neighbour's burst sags the rate or moves RSS by a step, and the test would fail for
the machine, not for the service.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from conftest import ChampionRegistry, load_module
from database_fixtures import create_keys

from serving.database import upgrade_database

pytestmark = pytest.mark.slow  # 60 s of load on a real service process

LOAD_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"
RATE = 30.0  # requests per second: moderate, the two cores are shared with other work
SECONDS = 60
LEAK_MIB = 25.0  # RSS growth after the warm-up that only a leak explains (see the test)


load = load_module(LOAD_SCRIPT, "load_benchmark")


@pytest.fixture(scope="module")
def results(
    champion_registry: ChampionRegistry,
    champion_data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """One run: the service started on a small champion, 60 s of load, the checks.

    The champion is the session's small one (``champion_registry``: 30 rounds, not the shipped
    specs), trained once for every serving test; the load, the service and the checks are the
    benchmark's.
    """
    database = load.records_url(champion_data_dir)
    upgrade_database(database)
    keys = create_keys(database, "load")
    deployment = load.Deployment(champion_data_dir, champion_registry.history, keys)
    plan = load.LoadPlan(rate=RATE, seconds=SECONDS)
    return load.run(plan, tmp_path_factory.mktemp("load"), deployment)


def test_the_load_was_sent_for_the_whole_run(results: dict[str, Any]) -> None:
    rate = results["rate"]
    assert rate["seconds"] >= SECONDS - 1.5
    assert results["requests"] >= 0.5 * RATE * SECONDS
    assert all(results["latency_ms"][kind]["count"] > 0 for kind in load.MIX)


def test_no_request_fails(results: dict[str, Any]) -> None:
    assert results["errors"] == 0, results["error_kinds"]
    assert results["locust"]["failures"] == 0
    assert results["locust"]["requests"] == results["requests"]


def test_every_answered_denial_has_its_audit_record(results: dict[str, Any]) -> None:
    audit = results["audit"]
    assert audit["read_status"] == 200
    assert audit["answered"] > results["denials_scored"] > 0  # the run's, and priming's
    assert audit["lost"] == 0
    assert audit["records"] == audit["answered"], "a denial was recorded twice"
    assert audit["service_counter"] == audit["answered"], "the service scored unseen denials"
    assert audit["spooled"] == 0


def test_memory_does_not_grow_with_the_requests(results: dict[str, Any]) -> None:
    """A gross leak only: keeping every 50-denial answer (about 500 KB, 1.5 a second) adds
    some 30 MiB after the warm-up; RSS steps of 1-5 MiB when audit bursts set a new
    high-water mark (11 MiB in all on a busy CI machine) stay below the bound."""
    memory = results["memory"]
    assert memory["samples"] >= SECONDS - 2
    tree = memory["with_children_mib"]
    assert tree["end"] - tree["after_warm_up"] < LEAK_MIB, memory


def test_the_service_shuts_down_cleanly_after_the_load(results: dict[str, Any]) -> None:
    # uvicorn finishes its graceful shutdown, then re-raises the SIGTERM it caught.
    assert results["service_exit_code"] in (0, -signal.SIGTERM)
