"""``denial-triage db``: the service's database (SQLite by default, PostgreSQL via DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import pandas as pd
import typer
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from denial_triage.commands.failure import fail
from denial_triage.settings import get_settings
from serving import outcomes
from serving.database import (
    SchemaNotCurrent,
    display_url,
    make_engine,
    require_current_schema,
    session_factory,
    upgrade_database,
)

app = typer.Typer(
    help="The service's database: schema migrations, outcomes from link-outcomes. Set "
    "DATABASE_URL for PostgreSQL.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Keep ``upgrade`` a sub-command even while it is the only one."""


@app.command()
def upgrade() -> None:
    """Migrate the configured database to this version's schema; safe to run again."""
    url = get_settings().resolved_database_url
    try:
        revision = upgrade_database(url)
    except SQLAlchemyError as exc:
        fail_unreachable(url, exc)
    except CommandError as exc:  # e.g. the database was migrated by a newer release
        fail(f"cannot upgrade the database at {display_url(url)}: {exc}", exc)
    typer.echo(f"Database {display_url(url)} is at revision {revision}, the current one.")


@app.command("record-outcomes")
def record_outcomes(
    history: Annotated[
        Path, typer.Argument(help="A history from link-outcomes (.parquet or .csv).")
    ],
) -> None:
    """Record the ended denials' outcomes of a history as feedback, so the worklist takes
    them off the open list; only denials the service scored, each outcome once."""
    try:
        frame = read_history(history)
    except (OSError, ValueError) as exc:
        fail(f"{history}: {exc}", exc)
    with open_session() as session:
        try:
            report = outcomes.record_outcomes(session, frame)
        except ValueError as exc:
            fail(f"{history}: {exc}", exc)
    if report.problems:
        shown = "\n".join(f"  {problem}" for problem in report.problems[:20])
        fail(f"{history}: nothing recorded; bad outcomes:\n{shown}")
    typer.echo(
        f"{report.recorded:,} outcomes recorded, {report.already_recorded:,} already recorded; "
        f"skipped {report.not_scored:,} of denials the service never scored."
    )


def read_history(path: Path) -> pd.DataFrame:
    """The history's outcome columns, as link-outcomes wrote them."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"denial_id": str}, parse_dates=["resolved_date"])
    raise ValueError("expected a .parquet or .csv history")


@contextmanager
def open_session() -> Iterator[Session]:
    """A session on the configured database, which must be reachable and migrated.

    Database errors become a one-line message and exit status 1 instead of a traceback.
    """
    url = get_settings().resolved_database_url
    engine = make_engine(url)
    try:
        require_current_schema(engine)
        with session_factory(engine)() as session:
            yield session
    except SchemaNotCurrent as exc:
        fail(f"{exc}.", exc)
    except SQLAlchemyError as exc:
        fail_unreachable(url, exc)
    finally:
        engine.dispose()


def fail_unreachable(url: str, exc: SQLAlchemyError) -> NoReturn:
    """Say which database failed and why, then exit with status 1."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    fail(
        f"cannot use the database at {display_url(url)}: {reason}\n"
        "Check DATABASE_URL (or DENIAL_TRIAGE_DATABASE_URL) and that the database is running.",
        exc,
    )
