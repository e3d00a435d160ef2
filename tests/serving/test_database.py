"""Migrations on SQLite and PostgreSQL: up and down, in step with the models, concurrent
starts, and existing data kept through every upgrade."""

from __future__ import annotations

import datetime as dt
import stat
import threading
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, inspect, select, text
from sqlalchemy.exc import IntegrityError

from serving.database import (
    SchemaNotCurrent,
    alembic_config,
    database_url,
    downgrade_database,
    head_revision,
    make_engine,
    require_current_schema,
    session_factory,
    upgrade_database,
)
from serving.records import Base
from serving.repository import (
    FeedbackConflict,
    authenticate,
    feedback_frame,
    hash_key,
    latest_score,
    save_feedback,
)

pytest_plugins = ["database_fixtures"]

TABLES = {
    "api_keys",
    "page_sessions",
    "score_records",
    "feedback",
    "latest_scores",
    "denial_status",
    "worklist_events",
    "shadow_scores",
}


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def revisions_oldest_first() -> list[str]:
    scripts = ScriptDirectory.from_config(alembic_config())
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


# ---------------------------------------------------------------------------- up and down


def test_migrates_from_empty_to_head_and_back(empty_database_url: str) -> None:
    assert upgrade_database(empty_database_url) == head_revision()
    assert table_names(empty_database_url) == TABLES
    assert downgrade_database(empty_database_url, "base") is None
    assert table_names(empty_database_url) == set()
    assert upgrade_database(empty_database_url) == head_revision()


def test_every_revision_steps_up_and_down(empty_database_url: str) -> None:
    for revision in revisions_oldest_first():
        assert upgrade_database(empty_database_url, "+1") == revision
    for revision in [*reversed(revisions_oldest_first()[:-1]), None]:
        assert downgrade_database(empty_database_url, "-1") == revision


def test_upgrade_twice_changes_nothing(database_url: str) -> None:
    assert upgrade_database(database_url) == head_revision()
    assert table_names(database_url) == TABLES


def test_models_match_the_migrations(engine: Engine) -> None:
    """Autogenerate finds nothing to do: the models and the migrated schema agree."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_replicas_starting_together_migrate_once(empty_database_url: str) -> None:
    replicas = 4
    start = threading.Barrier(replicas)
    reached: list[str | None] = []
    failures: list[BaseException] = []

    def start_replica() -> None:
        start.wait()
        try:
            reached.append(upgrade_database(empty_database_url))
        except Exception as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=start_replica) for _ in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert reached == [head_revision()] * replicas
    engine = make_engine(empty_database_url)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    engine.dispose()


def test_unmigrated_database_is_named_with_the_fix(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    with pytest.raises(SchemaNotCurrent, match="denial-triage db upgrade"):
        require_current_schema(engine)
    engine.dispose()


def test_current_schema_passes_the_check(engine: Engine) -> None:
    require_current_schema(engine)


def test_platform_postgres_urls_use_the_installed_driver() -> None:
    assert database_url("postgres://u:p@db/x").drivername == "postgresql+psycopg"
    assert database_url("postgresql://u:p@db/x").drivername == "postgresql+psycopg"
    assert database_url("sqlite:///x.db").drivername == "sqlite"


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}", sqlite_busy_timeout_s=2.5)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500
    engine.dispose()


def test_a_new_sqlite_database_and_its_journals_are_private(tmp_path: Any) -> None:
    """They were created 0644: anyone on the machine could read the audit log and sessions."""
    path = tmp_path / "data" / "records.db"
    upgrade_database(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:  # holding it open keeps the -wal and -shm files
        connection.execute(text("SELECT count(*) FROM api_keys"))
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    engine.dispose()
    assert {"records.db", "records.db-wal", "records.db-shm"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


def test_an_existing_database_file_is_opened_as_it_is(tmp_path: Any) -> None:
    path = tmp_path / "records.db"
    upgrade_database(f"sqlite:///{path}")
    path.chmod(0o640)  # an operator's choice, e.g. a group of readers for backups
    upgrade_database(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# ---------------------------------------------------------------------------- data kept

OLD_KEY = "dt_0a1b2c3d_" + "k" * 43
SCORED_AT = dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC)
# Rows as each revision stored them: inserted at that revision, then the database is upgraded
# to head and every value must still be there. A revision that changes a table adds an entry
# with rows in its own shape; the older entries stay, so each upgrade path keeps being tested.
ROWS_AT_REVISION: dict[str, dict[str, list[dict[str, Any]]]] = {
    "0001": {
        "api_keys": [
            {
                "id": 7,
                "name": "worklist",
                "role": "scorer",
                "key_prefix": "0a1b2c3d",
                "key_hash": hash_key(OLD_KEY),
                "created_at": SCORED_AT,
                "revoked_at": None,
            }
        ],
        "score_records": [
            {
                "id": 1,
                "record_id": "6f1c3a52-9d1e-4c59-8a57-3f0c2d6b1e01",
                "request_id": "req-1",
                "denial_id": "D-1",
                "scored_at": SCORED_AT,
                "caller": "worklist",
                "model_version": "3",
                "mapping_version": "2026.1",
                "input_hash": "ab" * 32,
                "outputs": {"root_cause": {"category": "coding", "probability": 0.8}},
                "explanation": {"root_cause": {"base_value": -1.2, "reasons": []}},
            }
        ],
        "feedback": [
            {
                "id": 1,
                "idempotency_key": "fb-1",
                "denial_id": "D-1",
                "received_at": SCORED_AT + dt.timedelta(days=3),
                "caller": "reviewer-1",
                "confirmed_root_cause": True,
                "corrected_root_cause": None,
                "resolution": "overturned_on_appeal",
                "recovered_amount": 120.5,
                "resolved_date": dt.date(2026, 4, 1),
                "reviewer_note": "appealed with records",
                "request_hash": "cd" * 32,
            }
        ],
    },
    "0002": {
        "score_records": [
            {
                "id": 2,
                "record_id": "6f1c3a52-9d1e-4c59-8a57-3f0c2d6b1e02",
                "request_id": "req-2",
                "denial_id": "D-2",
                "scored_at": SCORED_AT,
                "caller": "worklist",
                "model_version": "3",
                "mapping_version": "2026.1",
                "input_hash": "ef" * 32,
                "outputs": {"root_cause": {"category": "duplicate", "probability": 0.9}},
                "explanation": {"root_cause": {"base_value": -0.4, "reasons": []}},
                "facts": {"payer_id": "87726", "denied_amount": 80.0, "carc_codes": ["CO-18"]},
            }
        ],
    },
    "0003": {
        "api_keys": [
            {
                "id": 8,
                "name": "desk",
                "role": "reviewer",
                "key_prefix": "1a2b3c4d",
                "key_hash": "12" * 32,
                "created_at": SCORED_AT,
                "revoked_at": None,
            }
        ],
        "page_sessions": [
            {
                "id": 1,
                "session_hash": "34" * 32,
                "key_id": 8,
                "csrf_token": "t" * 43,
                "created_at": SCORED_AT,
                "expires_at": SCORED_AT + dt.timedelta(hours=8),
                "ended_at": SCORED_AT + dt.timedelta(hours=1),
            }
        ],
        "feedback": [
            {
                "id": 2 + offset,
                "idempotency_key": "shared-key",  # one key, two callers: allowed from 0003
                "denial_id": "D-2",
                "received_at": SCORED_AT + dt.timedelta(days=1),
                "caller": caller,
                "confirmed_root_cause": True,
                "corrected_root_cause": None,
                "resolution": None,
                "recovered_amount": None,
                "resolved_date": None,
                "reviewer_note": None,
                "request_hash": "ef" * 32,
            }
            for offset, caller in enumerate(("desk", "worklist"))
        ],
    },
}


def insert_rows(url: str, rows_by_table: dict[str, list[dict[str, Any]]]) -> None:
    """Insert through the tables as the database has them now, not through today's models."""
    engine = make_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.begin() as connection:
        for table, rows in rows_by_table.items():
            connection.execute(metadata.tables[table].insert(), rows)
    engine.dispose()


def stored_rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = make_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        rows = connection.execute(select(metadata.tables[table])).mappings().all()
    engine.dispose()
    return [dict(row) for row in rows]


def same_value(stored: Any, inserted: Any) -> bool:
    """Equal, allowing SQLite's timezone-less timestamps and exact decimals."""
    if isinstance(inserted, dt.datetime) and stored.tzinfo is None:
        stored = stored.replace(tzinfo=dt.UTC)
    if isinstance(inserted, float):
        return float(stored) == pytest.approx(inserted)
    return stored == inserted


@pytest.mark.parametrize("revision", sorted(ROWS_AT_REVISION))
def test_upgrade_keeps_existing_rows(empty_database_url: str, revision: str) -> None:
    rows_by_table = ROWS_AT_REVISION[revision]
    upgrade_database(empty_database_url, revision)
    insert_rows(empty_database_url, rows_by_table)
    assert upgrade_database(empty_database_url) == head_revision()
    for table, rows in rows_by_table.items():
        stored = {row["id"]: row for row in stored_rows(empty_database_url, table)}
        for row in rows:
            kept = stored[row["id"]]
            lost = [c for c, v in row.items() if not same_value(kept[c], v)]
            assert lost == [], f"{table} row {row['id']} changed {lost} upgrading from {revision}"


def test_upgraded_rows_are_read_by_todays_code(empty_database_url: str) -> None:
    upgrade_database(empty_database_url, revisions_oldest_first()[0])
    insert_rows(empty_database_url, ROWS_AT_REVISION["0001"])
    upgrade_database(empty_database_url)
    engine = make_engine(empty_database_url)
    with session_factory(engine)() as session:
        assert authenticate(session, OLD_KEY).name == "worklist"
        assert latest_score(session, "D-1").outputs["root_cause"]["category"] == "coding"
        labels = feedback_frame(session)
        with pytest.raises(FeedbackConflict):  # "fb-1" is still reviewer-1's
            save_feedback(session, "fb-1", {"denial_id": "D-1", "reviewer_note": "x"}, "reviewer-1")
    engine.dispose()
    assert labels.to_dict("records")[0]["root_cause"] == "coding"


def test_upgraded_feedback_keys_are_unique_per_caller(empty_database_url: str) -> None:
    upgrade_database(empty_database_url, "0002")
    insert_rows(empty_database_url, ROWS_AT_REVISION["0001"])
    upgrade_database(empty_database_url)
    kept = ROWS_AT_REVISION["0001"]["feedback"][0]
    insert_rows(empty_database_url, {"feedback": [{**kept, "id": 50, "caller": "reviewer-2"}]})
    with pytest.raises(IntegrityError, match=r"caller_idempotency_key|caller, feedback\.idemp"):
        insert_rows(empty_database_url, {"feedback": [{**kept, "id": 51}]})


def test_a_database_from_a_newer_release_is_not_mistaken_for_an_old_one(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    with pytest.raises(SchemaNotCurrent, match="newer than this code"):
        require_current_schema(engine)


def test_upgrading_to_0004_fills_the_latest_scores_from_the_audit_log(
    empty_database_url: str,
) -> None:
    upgrade_database(empty_database_url, "0003")
    older, newer = (
        {
            **ROWS_AT_REVISION["0002"]["score_records"][0],
            "id": 10 + step,
            "record_id": f"6f1c3a52-9d1e-4c59-8a57-3f0c2d6b1e1{step}",
            "denial_id": "D-9",
            "scored_at": SCORED_AT + dt.timedelta(days=step),
            "outputs": {
                "root_cause": {"category": category, "probability": 0.6},
                "priority": {"score": 40.0 + step, "deadline": "2026-05-01"},
                "routing": {"owner_queue": "billing", "action_path": "appeal"},
                "requires_human_review": True,
            },
            "facts": {"payer_id": "87726", "denial_date": "2026-03-01", "carc_codes": ["CO-50"]},
        }
        for step, category in ((0, "coding"), (1, "medical_necessity_documentation"))
    )
    insert_rows(empty_database_url, {"score_records": [newer, older]})
    insert_rows(empty_database_url, ROWS_AT_REVISION["0001"])  # D-1, scored before facts
    upgrade_database(empty_database_url)
    latest = {row["denial_id"]: row for row in stored_rows(empty_database_url, "latest_scores")}
    assert set(latest) == {"D-1", "D-9"}
    assert latest["D-9"]["score_id"] == 11
    assert latest["D-9"]["root_cause"] == "medical_necessity_documentation"
    assert latest["D-9"]["priority"] == pytest.approx(41.0)
    assert (latest["D-9"]["deadline"], latest["D-9"]["denial_month"]) == ("2026-05-01", "2026-03")
    assert (latest["D-9"]["primary_code"], latest["D-9"]["payer_id"]) == ("CO-50", "87726")
    assert latest["D-9"]["requires_review"] in (True, 1)
    # A record with no facts and no priority keeps its scoring month and empty columns.
    assert latest["D-1"]["denial_month"] == "2026-03" and latest["D-1"]["priority"] is None
    # D-1's outcome, recorded before the upgrade, resolves it on the worklist.
    (status,) = stored_rows(empty_database_url, "denial_status")
    assert (status["denial_id"], status["resolution"]) == ("D-1", "overturned_on_appeal")
    assert (status["status"], status["updated_by"]) == ("open", "reviewer-1")


def test_upgrading_to_0005_fills_the_priority_parts_and_resolved(empty_database_url: str) -> None:
    upgrade_database(empty_database_url, "0003")
    scored = ROWS_AT_REVISION["0002"]["score_records"][0]
    parts = {
        "score": 150.0,
        "expected_recovered_dollars": 134.0,
        "cost_to_work": 44.0,
        "effort_hours": 0.6,
        "expected_net_dollars": 90.0,
        "deadline": "2026-05-01",
        "last_deadline": "2026-08-30",
        "backlog_horizon_days": 14,
    }
    old_parts = {"score": 7.0, "expected_recovered_dollars": 125.0, "cost_to_work": 25.0}
    rows = [
        {
            **scored,
            "id": 20 + step,
            "record_id": f"6f1c3a52-9d1e-4c59-8a57-3f0c2d6b1e2{step}",
            "denial_id": denial_id,
            "outputs": {"priority": {**priority, "deadline": "2026-05-01"}},
        }
        for step, (denial_id, priority) in enumerate((("D-new", parts), ("D-old", old_parts)))
    ]
    insert_rows(empty_database_url, {"score_records": rows})
    outcome = {**ROWS_AT_REVISION["0001"]["feedback"][0], "denial_id": "D-new"}
    insert_rows(empty_database_url, {"feedback": [outcome]})
    upgrade_database(empty_database_url)
    latest = {row["denial_id"]: row for row in stored_rows(empty_database_url, "latest_scores")}
    new, old = latest["D-new"], latest["D-old"]
    assert (new["expected_net_dollars"], new["effort_hours"]) == (90.0, 0.6)
    assert (new["last_deadline"], new["backlog_horizon_days"]) == ("2026-08-30", 14)
    assert new["resolved"] in (True, 1)  # its outcome was recorded before the upgrade
    # An older score: net dollars from its parts, its deadline as the last, the default horizon.
    assert old["expected_net_dollars"] == pytest.approx(100.0) and old["effort_hours"] is None
    assert (old["last_deadline"], old["backlog_horizon_days"]) == ("2026-05-01", 30)
    assert old["resolved"] in (False, 0)


def test_upgrading_to_0006_fills_payer_types_and_recovered_dollars(
    empty_database_url: str,
) -> None:
    upgrade_database(empty_database_url, "0005")
    scored = {
        **ROWS_AT_REVISION["0002"]["score_records"][0],
        "id": 20,
        "record_id": "6f1c3a52-9d1e-4c59-8a57-3f0c2d6b1e20",
        "denial_id": "D-1",
        "outputs": {"recovery": {"probability": 0.4}},
        "facts": {"payer_type": "medicare", "denial_date": "2026-03-01"},
    }
    insert_rows(empty_database_url, {"score_records": [scored]})
    insert_rows(
        empty_database_url,
        {"latest_scores": [{"denial_id": "D-1", "score_id": 20, "scored_at": SCORED_AT}]},
    )
    outcome = ROWS_AT_REVISION["0001"]["feedback"][0]  # D-1 overturned, $120.50
    later_note = {**outcome, "id": 9, "idempotency_key": "fb-9", "resolution": None}
    later_note |= {"recovered_amount": None, "received_at": SCORED_AT + dt.timedelta(days=9)}
    insert_rows(empty_database_url, {"feedback": [outcome, later_note]})
    status = {"denial_id": "D-1", "status": "open", "resolution": "overturned_on_appeal"}
    status |= {"updated_at": SCORED_AT, "updated_by": "reviewer-1"}
    insert_rows(empty_database_url, {"denial_status": [status]})
    upgrade_database(empty_database_url)
    (latest,) = stored_rows(empty_database_url, "latest_scores")
    assert latest["payer_type"] == "medicare"
    # The latest feedback *with a resolution* gives the dollars; a later note does not erase it.
    (kept,) = stored_rows(empty_database_url, "denial_status")
    assert kept["recovered_amount"] == pytest.approx(120.5)


def test_upgrading_to_0008_fills_the_procedure_codes(empty_database_url: str) -> None:
    upgrade_database(empty_database_url, "0007")
    scored = {
        **ROWS_AT_REVISION["0002"]["score_records"][0],
        "id": 30,
        "record_id": "6f1c3a52-9d1e-4c59-8a57-3f0c2d6b1e30",
        "facts": {"procedure_code": "27447", "denial_date": "2026-03-01"},
    }
    without = {**scored, "id": 31, "record_id": "6f1c3a52-9d1e-4c59-8a57-3f0c2d6b1e31"}
    without |= {"denial_id": "D-3", "facts": {"denial_date": "2026-03-02"}}
    insert_rows(empty_database_url, {"score_records": [scored, without]})
    latest = [
        {"denial_id": "D-2", "score_id": 30, "scored_at": SCORED_AT},
        {"denial_id": "D-3", "score_id": 31, "scored_at": SCORED_AT},
    ]
    insert_rows(empty_database_url, {"latest_scores": latest})
    upgrade_database(empty_database_url)
    stored = {row["denial_id"]: row for row in stored_rows(empty_database_url, "latest_scores")}
    assert stored["D-2"]["procedure_code"] == "27447"
    assert stored["D-3"]["procedure_code"] is None


def test_upgrading_to_0009_dates_each_ended_outcome(empty_database_url: str) -> None:
    upgrade_database(empty_database_url, "0008")
    dated = ROWS_AT_REVISION["0001"]["feedback"][0]  # D-1 overturned, resolved 2026-04-01
    undated = {**dated, "id": 11, "idempotency_key": "fb-11", "denial_id": "D-2"}
    undated |= {"resolved_date": None, "received_at": SCORED_AT + dt.timedelta(days=5)}
    insert_rows(empty_database_url, {"feedback": [dated, undated]})
    statuses = [
        {"denial_id": denial, "status": "open", "resolution": resolution}
        | {"updated_at": SCORED_AT, "updated_by": "reviewer-1"}
        for denial, resolution in (("D-1", "overturned_on_appeal"), ("D-2", "written_off"))
    ]
    still_open = {**statuses[0], "denial_id": "D-3", "resolution": None}
    insert_rows(empty_database_url, {"denial_status": [*statuses, still_open]})
    upgrade_database(empty_database_url)
    stored = {row["denial_id"]: row for row in stored_rows(empty_database_url, "denial_status")}
    assert stored["D-1"]["resolved_date"] == dt.date(2026, 4, 1)
    assert stored["D-2"]["resolved_date"] == (SCORED_AT + dt.timedelta(days=5)).date()
    assert stored["D-3"]["resolved_date"] is None
