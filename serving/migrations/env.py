"""Alembic environment for the service's records.

Run programmatically by :func:`serving.database.upgrade_database`, which hands over a
connection already holding the migration lock. A ``sqlalchemy.url`` option is honoured too,
for ``alembic revision --autogenerate`` against a scratch database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from serving.database import make_engine
from serving.records import Base


def run_migrations(connection: Connection) -> None:
    """Run the pending revisions on ``connection``."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters tables by copy-and-move; autogenerate writes batch operations for it.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_from_config() -> None:
    """Migrate on the connection given by the caller, or on one to ``sqlalchemy.url``."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_from_config()
