"""``denial-triage keys`` and ``denial-triage db``: keys shown once, never listed, clear
errors when the database is not there."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import make_url, text
from typer.testing import CliRunner

from denial_triage.commands import db, keys
from denial_triage.commands.serve import refuse_a_taken_port
from denial_triage.settings import get_settings
from serving.database import head_revision, make_engine, session_factory
from serving.records import ApiKey
from serving.repository import authenticate, open_page_session, signed_in_key

pytest_plugins = ["database_fixtures"]

runner = CliRunner()
cli = typer.Typer()
cli.add_typer(keys.app, name="keys")
cli.add_typer(db.app, name="db")


@pytest.fixture(autouse=True)
def clean_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings from the environment set here only, data under tmp_path."""
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.delenv("DENIAL_TRIAGE_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DENIAL_TRIAGE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()


def stored_key(url: str, key: str) -> ApiKey | None:
    engine = make_engine(url)
    with session_factory(engine)() as session:
        row = authenticate(session, key)
    engine.dispose()
    return row


def test_upgrade_then_keys_on_the_default_sqlite(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"revision {head_revision()}" in result.output
    assert (tmp_path / "data" / "denial-triage.db").exists()
    assert runner.invoke(cli, ["keys", "create", "--role", "scorer", "--name", "wl"]).exit_code == 0


def test_key_is_printed_once_and_never_listed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_database(monkeypatch, database_url)
    created = runner.invoke(cli, ["keys", "create", "--role", "reviewer", "--name", "desk"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert "cannot be shown again" in created.stderr
    row = stored_key(database_url, key)
    assert row is not None and row.role == "reviewer"

    listed = runner.invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0
    assert "desk" in listed.output and "reviewer" in listed.output
    assert key.rsplit("_", 1)[-1] not in listed.output
    assert row.key_hash not in listed.output

    page_session = signed_in_page(database_url, row)
    revoked = runner.invoke(cli, ["keys", "revoke", "desk"])
    assert revoked.exit_code == 0, revoked.output
    assert stored_key(database_url, key) is None
    assert "its page sessions are ended" in revoked.output
    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        assert signed_in_key(session, page_session) is None
    engine.dispose()


def signed_in_page(url: str, key: ApiKey) -> str:
    """A page session the key opened, as signing in on the pages does; returns its id."""
    engine = make_engine(url)
    with session_factory(engine)() as session:
        session_id = open_page_session(session, key, dt.timedelta(hours=8))
        assert signed_in_key(session, session_id) is not None
    engine.dispose()
    return session_id


def test_unknown_role_names_the_choices() -> None:
    result = runner.invoke(cli, ["keys", "create", "--role", "root", "--name", "x"])
    assert result.exit_code != 0
    assert "scorer" in result.output and "admin" in result.output


def test_revoking_an_unknown_key_fails_clearly(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_database(monkeypatch, database_url)
    result = runner.invoke(cli, ["keys", "revoke", "nobody"])
    assert result.exit_code == 1
    assert "no active key named 'nobody'" in result.stderr


def test_unreachable_database_fails_clearly_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pragma: allowlist nextline secret (a made-up value, not a credential)
    use_database(monkeypatch, "postgresql://ops:s3cret@127.0.0.1:1/records")
    for command in (["db", "upgrade"], ["keys", "list"]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 1
        assert "cannot use the database at postgresql+psycopg://ops:***@127.0.0.1:1" in (
            result.stderr
        )
        assert "s3cret" not in result.output


def test_keys_on_an_unmigrated_database_say_to_upgrade(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_database(monkeypatch, empty_database_url)
    result = runner.invoke(cli, ["keys", "list"])
    assert result.exit_code == 1
    assert "denial-triage db upgrade" in result.stderr


def test_upgrade_reports_the_configured_database(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_database(monkeypatch, empty_database_url)
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    backend = make_url(empty_database_url).get_backend_name()
    assert backend in result.output


def test_upgrade_refuses_a_database_from_a_newer_release(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    engine.dispose()
    use_database(monkeypatch, database_url)
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "f00d" in result.stderr


def test_the_main_job_refuses_a_port_another_service_holds() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(typer.Exit) as refused:
            refuse_a_taken_port("127.0.0.1", port)
    assert refused.value.exit_code == 1
    refuse_a_taken_port("127.0.0.1", port)  # free again: no error
