"""The service's database: engines, sessions and schema migrations.

SQLite (a file under the data directory) is the default; PostgreSQL is used when
``DATABASE_URL`` names it, and several service replicas may share it. Migrations are Alembic
revisions shipped inside the package and run programmatically, so no ``alembic.ini`` is needed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from serving.repository import json_text

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 5.0
DATA_FILE_MODE = 0o600  # the SQLite file and, following it, its -wal, -shm and -journal
# Replicas wait this long for another one's migration before giving up.
MIGRATION_LOCK_TIMEOUT_S = 120.0
POSTGRES_CONNECT_TIMEOUT_S = 5
# Any fixed 64-bit number works; it only has to be the same in every replica.
MIGRATION_LOCK_ID = 0x64656E69616C  # "denial"


class SchemaNotCurrent(RuntimeError):
    """The database is reachable but not migrated to the revision this code needs."""


def database_url(url: str | URL) -> URL:
    """A parsed URL with the driver this project installs (psycopg 3) for PostgreSQL.

    ``postgres://`` and bare ``postgresql://`` (as platforms write ``DATABASE_URL``) would
    otherwise select psycopg2, which is not a dependency.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def display_url(url: str | URL) -> str:
    """The URL safe to print: the password masked."""
    return database_url(url).render_as_string(hide_password=True)


def make_engine(url: str | URL, sqlite_busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S) -> Engine:
    """An engine for the records database, tuned for the backend it points at.

    Its errors never quote the statement's parameters: they hold denial facts and notes, and
    an error may reach a log."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, sqlite_busy_timeout_s)
    # pre_ping replaces connections a database restart killed instead of failing a request.
    connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    return create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args=connect_args,
        hide_parameters=True,
        json_serializer=json_text,
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after the commit that saved them."""
    return sessionmaker(engine, expire_on_commit=False)


def _sqlite_engine(url: URL, busy_timeout_s: float) -> Engine:
    on_disk = bool(url.database) and url.database != ":memory:"
    if on_disk:
        _create_private_file(Path(str(url.database)))
    engine = create_engine(
        url,
        connect_args={"timeout": busy_timeout_s},
        hide_parameters=True,
        json_serializer=json_text,  # orjson, one pass (serving.repository.json_text)
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # The busy timeout makes concurrent writers queue instead of failing at once.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if on_disk:
            _use_wal(cursor, busy_timeout_s)
        cursor.close()

    return engine


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only (0600) unless it exists.

    SQLite would create it with the umask's mode (0644 as a rule), and gives its -wal, -shm and
    -journal files the database file's mode, so creating it first keeps them all private: the
    audit log and the page sessions are nobody else's to read.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DATA_FILE_MODE)
    except FileExistsError:
        return  # another process made it first, with this same mode; or it is older: kept
    os.close(descriptor)


def _use_wal(cursor: Any, timeout_s: float) -> None:
    """Put the file in WAL mode, so readers (GET /v1/denials) never wait for audit writes.

    The mode is stored in the file, so only the first connection ever switches it; switching
    needs the file to itself, and SQLite reports "locked" at once instead of waiting, so a
    process starting beside another retries until the busy timeout.
    """
    deadline = time.monotonic() + timeout_s
    while cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _migration_engine(url: str | URL) -> Engine:
    """An engine whose transactions hold the database's write lock from their first statement.

    On SQLite the driver would run DDL outside any transaction; taking over BEGIN makes each
    migration run atomic, and ``BEGIN IMMEDIATE`` makes a second process wait its turn.
    """
    engine = make_engine(url, sqlite_busy_timeout_s=MIGRATION_LOCK_TIMEOUT_S)
    if engine.dialect.name != "sqlite":
        return engine

    @event.listens_for(engine, "connect")
    def _driver_leaves_transactions_to_us(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configuration pointing at the shipped migrations, optionally on a connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


@contextmanager
def migration_connection(url: str | URL) -> Iterator[Connection]:
    """One transaction holding the migration lock, so concurrent starts migrate once.

    PostgreSQL: a transaction-level advisory lock, released by the commit. SQLite: the write
    lock taken by ``BEGIN IMMEDIATE``. A replica that waited then finds the schema current.
    """
    engine = _migration_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                wait = f"SET LOCAL lock_timeout = '{int(MIGRATION_LOCK_TIMEOUT_S)}s'"
                connection.execute(text(wait))
                lock = text("SELECT pg_advisory_xact_lock(:id)")
                connection.execute(lock, {"id": MIGRATION_LOCK_ID})
            yield connection
    finally:
        engine.dispose()


def upgrade_database(url: str | URL, revision: str = "head") -> str | None:
    """Migrate the database to ``revision`` (the newest by default); returns the revision reached.

    Idempotent, and safe when several replicas start at once.
    """
    with migration_connection(url) as connection:
        command.upgrade(alembic_config(connection), revision)
        return current_revision(connection)


def downgrade_database(url: str | URL, revision: str) -> str | None:
    """Migrate the database down to ``revision`` (``base`` empties it); returns the one reached."""
    with migration_connection(url) as connection:
        command.downgrade(alembic_config(connection), revision)
        return current_revision(connection)


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def require_current_schema(engine: Engine) -> None:
    """Raise :class:`SchemaNotCurrent` unless the database is at the code's head revision."""
    with engine.connect() as connection:
        current = current_revision(connection)
    head = head_revision()
    if current == head:
        return
    where = f"the database at {display_url(engine.url)} is at revision {current or 'none'}"
    if current is not None and current not in known_revisions():
        # A newer release migrated it (a rolling deploy); downgrading would lose its data.
        raise SchemaNotCurrent(f"{where}, newer than this code knows (up to {head}): upgrade it")
    raise SchemaNotCurrent(f"{where}, this code needs {head}: run `denial-triage db upgrade`")


def known_revisions() -> set[str]:
    """Every revision shipped with this code."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return {script.revision for script in scripts.walk_revisions()}
