"""Database fixtures for the serving tests, on SQLite and on PostgreSQL.

Loaded by the test modules with ``pytest_plugins = ["database_fixtures"]`` rather than kept in
a ``conftest.py``: a second ``conftest`` module would shadow ``tests/conftest.py`` for the
``from conftest import ...`` lines of other test folders.

PostgreSQL is the server at ``TEST_POSTGRES_URL`` (CI runs one on 127.0.0.1:5432). Each test
gets a schema of its own, dropped afterwards, so runs never see each other's rows. Without a
reachable server the PostgreSQL cases are skipped locally, and fail in CI (``CI`` set).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from serving.database import make_engine, session_factory, upgrade_database

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgresql")


@cache
def postgres_problem() -> str | None:
    """Why the test PostgreSQL server cannot be used, or None when it can."""
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()
    return None


def require_postgres() -> None:
    """Skip when PostgreSQL is unreachable on a workstation; fail in CI, where it must run."""
    problem = postgres_problem()
    if problem is None:
        return
    message = f"PostgreSQL at {POSTGRES_URL} is unreachable: {problem}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set, so the PostgreSQL tests must run)")
    pytest.skip(message)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'records.db').as_posix()}"
        return
    require_postgres()
    yield from postgres_schema()


def postgres_schema() -> Iterator[str]:
    """A URL whose connections work in a new schema; the schema is dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.connect() as connection:
            # A connection a test forgot to close must fail the teardown, not hang it.
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A database migrated to the head revision."""
    upgrade_database(empty_database_url)
    return empty_database_url


@pytest.fixture
def backend(database_url: str) -> str:
    """``sqlite`` or ``postgresql``: which database this case runs on."""
    return make_url(database_url).get_backend_name()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the migrated database, disposed after the test."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """The session factory the service would use."""
    return session_factory(engine)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One session, closed after the test."""
    with sessions() as session:
        yield session


def create_keys(database_url: str, prefix: str) -> dict[str, str]:
    """One new API key per role, named ``{prefix}-{role}``; returns the keys by role."""
    from serving import repository

    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            return {
                role: repository.create_api_key(session, role, f"{prefix}-{role}")[0]
                for role in ("scorer", "reviewer", "admin")
            }
    finally:
        engine.dispose()


def auth(key: str) -> dict[str, str]:
    """The header that carries an API key."""
    return {"Authorization": f"Bearer {key}"}


def feedback_count(database_url: str, denial_id: str) -> int:
    """How many feedback rows the database holds for a denial."""
    from sqlalchemy import func, select

    from serving.records import Feedback

    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            count = select(func.count()).where(Feedback.denial_id == denial_id)
            return session.scalar(count.select_from(Feedback)) or 0
    finally:
        engine.dispose()
