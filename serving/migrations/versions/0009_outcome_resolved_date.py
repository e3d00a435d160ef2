"""The day each denial's latest outcome became known, beside its resolution.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Payer alerts test a cell's outcomes on the day each was recorded (``training.payer_alerts``):
counted on their denials' dates, outcomes that arrive weeks later placed every change in
outcomes on days long past, so none was ever among the open alerts. ``denial_status`` gains
``resolved_date``: the latest outcome's resolved date, else the day the service recorded it;
kept on write from now on (``serving.worklist_records.note_outcome``) and filled on upgrade
from the feedback already there. Downgrading drops the column.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)

# The tables as this revision reads them (not serving.records: a migration keeps describing
# its own revision after the models move on).
FEEDBACK = sa.table(
    "feedback",
    sa.column("id", ROW_ID),
    sa.column("denial_id", sa.String),
    sa.column("received_at", TIMESTAMP),
    sa.column("resolution", sa.String),
    sa.column("resolved_date", sa.Date),
)
DENIAL_STATUS = sa.table(
    "denial_status",
    sa.column("denial_id", sa.String),
    sa.column("resolution", sa.String),
    sa.column("resolved_date", sa.Date),
)


def upgrade() -> None:
    """Add the column and fill it for every ended outcome from its feedback."""
    with op.batch_alter_table("denial_status") as batch:
        batch.add_column(sa.Column("resolved_date", sa.Date, nullable=True))
    ended = sa.and_(DENIAL_STATUS.c.resolution.is_not(None), DENIAL_STATUS.c.resolution != "open")
    op.execute(DENIAL_STATUS.update().where(ended).values(resolved_date=latest_resolved_date()))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("denial_status") as batch:
        batch.drop_column("resolved_date")


def latest_resolved_date() -> sa.ScalarSelect:
    """The resolved date of the denial's latest feedback that records a resolution (the
    outcome ``denial_status.resolution`` holds), else the day that feedback was received."""
    feedback = FEEDBACK.c
    # date() reads a timestamp's day on SQLite (text) and PostgreSQL alike.
    received_day = sa.func.date(feedback.received_at)
    return (
        sa.select(sa.func.coalesce(feedback.resolved_date, received_day))
        .where(feedback.denial_id == DENIAL_STATUS.c.denial_id, feedback.resolution.is_not(None))
        .order_by(feedback.received_at.desc(), feedback.id.desc())
        .limit(1)
        .scalar_subquery()
    )
