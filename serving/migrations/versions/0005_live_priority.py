"""The worklist orders by the priority counted on the day it is read, in the database.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

A score's priority changes with the day (urgency grows as a deadline nears; past every deadline
a denial goes to write-off review), so the worklist cannot sort by the score frozen at scoring
time. ``latest_scores`` gains the stored parts the priority is recounted from
(``serving.live.priority_sql``): expected net dollars, effort hours, the last deadline and the
owner queue's backlog horizon, filled from each row's audit record. Records scored before the
per-hour priority get what ``serving.live.priorities_on`` assumes for them: expected dollars
less the cost to work, the governing deadline as the last one, a 30-day horizon; records with
no effort hours keep them empty and the worklist falls back to their stored score.
Downgrading drops the four columns and the index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# The mapping's default backlog horizon when this revision was written
# (features.mapping.DEFAULT_BACKLOG_HORIZON_DAYS): a migration keeps its own revision's value.
DEFAULT_BACKLOG_HORIZON_DAYS = 30
NEW_COLUMNS = {
    "expected_net_dollars": sa.Float(),
    "effort_hours": sa.Float(),
    "last_deadline": sa.String(10),
    "backlog_horizon_days": sa.Integer(),
}

SCORE_RECORDS = sa.table(
    "score_records", sa.column("id", ROW_ID), sa.column("outputs", JSON_DOCUMENT)
)
LATEST_SCORES = sa.table(
    "latest_scores",
    sa.column("score_id", ROW_ID),
    *(sa.column(name, kind) for name, kind in NEW_COLUMNS.items()),
)


def upgrade() -> None:
    """Add the priority's parts to ``latest_scores`` and fill them from the audit log."""
    with op.batch_alter_table("latest_scores") as batch:
        for name, kind in NEW_COLUMNS.items():
            batch.add_column(sa.Column(name, kind, nullable=True))
    # Past it nothing can be worked: the worklist's "workable" filter reads this index.
    op.create_index("ix_latest_scores_last_deadline", "latest_scores", ["last_deadline"])
    record = SCORE_RECORDS.c
    of_this_row = record.id == LATEST_SCORES.c.score_id
    op.execute(
        LATEST_SCORES.update().values(
            {
                name: sa.select(value).where(of_this_row).scalar_subquery()
                for name, value in priority_parts(record.outputs).items()
            }
        )
    )


def downgrade() -> None:
    """Drop the four columns and their index."""
    op.drop_index("ix_latest_scores_last_deadline", table_name="latest_scores")
    with op.batch_alter_table("latest_scores") as batch:
        for name in NEW_COLUMNS:
            batch.drop_column(name)


def priority_parts(outputs: sa.ColumnElement) -> dict[str, sa.ColumnElement]:
    """Each new column as an expression over a score's outputs, older shapes filled in."""

    def part(name: str) -> sa.ColumnElement:
        return outputs[("priority", name)]

    governing = sa.func.substr(part("deadline").as_string(), 1, 10)
    return {
        "expected_net_dollars": sa.func.coalesce(
            part("expected_net_dollars").as_float(),
            part("expected_recovered_dollars").as_float() - part("cost_to_work").as_float(),
        ),
        "effort_hours": part("effort_hours").as_float(),
        "last_deadline": sa.func.coalesce(
            sa.func.substr(part("last_deadline").as_string(), 1, 10), governing
        ),
        "backlog_horizon_days": sa.func.coalesce(
            part("backlog_horizon_days").as_integer(), DEFAULT_BACKLOG_HORIZON_DAYS
        ),
    }
