"""The worklist orders by the priority counted on the day it is read, in the database; the
dashboard reads its open totals from one index each.

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

``latest_scores.resolved`` copies "the latest recorded outcome resolves the denial" from
``denial_status`` (kept in the same commit from now on), and the dashboard's covering indexes
are rebuilt to sum only what it shows, the open totals' indexes led by ``resolved``; the
worklist's filter choices get small indexes of their own.
Downgrading drops the five columns and the new indexes and restores revision 0004's.
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

MEASURES_0004 = ("denied_amount", "expected_dollars", "preventable_probability", "requires_review")
INDEXES_0004 = {
    "cause": ("denial_month", "root_cause", *MEASURES_0004),
    "payer": ("denial_month", "payer_id", "payer_name", *MEASURES_0004),
    "code": ("denial_month", "primary_code", *MEASURES_0004),
    "prevention": ("prevention_owner", *MEASURES_0004),
    "age": ("denial_date", *MEASURES_0004),
    "deadline": ("deadline_rule", "deadline", *MEASURES_0004),
}
# As serving.records.DASHBOARD_INDEXES has them at this revision.
INDEXES = {
    "cause": (
        "denial_month",
        "root_cause",
        "prevention_owner",
        "denied_amount",
        "expected_dollars",
        "preventable_probability",
    ),
    "payer": ("denial_month", "payer_id", "payer_name", "denied_amount", "expected_dollars"),
    "code": ("denial_month", "primary_code", "denied_amount", "expected_dollars"),
    "open_age": ("resolved", "denial_date", "denied_amount", "expected_dollars"),
    "open_deadline": ("resolved", "deadline_rule", "deadline", "denied_amount", "expected_dollars"),
}

# The worklist's filter choices (queues, action paths, payers), each read from a small index
# instead of a scan of every row.
CHOICE_INDEXES = {
    "ix_latest_scores_owner_queue": ("owner_queue",),
    "ix_latest_scores_action_path": ("action_path",),
    "ix_latest_scores_payers": ("payer_id", "payer_name"),
}

SCORE_RECORDS = sa.table(
    "score_records", sa.column("id", ROW_ID), sa.column("outputs", JSON_DOCUMENT)
)
LATEST_SCORES = sa.table(
    "latest_scores",
    sa.column("denial_id", sa.String),
    sa.column("score_id", ROW_ID),
    sa.column("resolved", sa.Boolean),
    *(sa.column(name, kind) for name, kind in NEW_COLUMNS.items()),
)
DENIAL_STATUS = sa.table(
    "denial_status", sa.column("denial_id", sa.String), sa.column("resolution", sa.String)
)


def upgrade() -> None:
    """Add the priority's parts and ``resolved`` to ``latest_scores``, fill them from the
    audit log and the statuses, and rebuild the dashboard's indexes."""
    with op.batch_alter_table("latest_scores") as batch:
        for name, kind in NEW_COLUMNS.items():
            batch.add_column(sa.Column(name, kind, nullable=True))
        batch.add_column(
            sa.Column("resolved", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    fill_priority_parts()
    fill_resolved()
    for name in INDEXES_0004:
        op.drop_index(f"ix_latest_scores_totals_by_{name}", table_name="latest_scores")
    for name, columns in INDEXES.items():
        op.create_index(f"ix_latest_scores_totals_by_{name}", "latest_scores", list(columns))
    for name, columns in CHOICE_INDEXES.items():
        op.create_index(name, "latest_scores", list(columns))


def downgrade() -> None:
    """Restore revision 0004's indexes and drop the five columns."""
    for name in CHOICE_INDEXES:
        op.drop_index(name, table_name="latest_scores")
    for name in INDEXES:
        op.drop_index(f"ix_latest_scores_totals_by_{name}", table_name="latest_scores")
    for name, columns in INDEXES_0004.items():
        op.create_index(f"ix_latest_scores_totals_by_{name}", "latest_scores", list(columns))
    with op.batch_alter_table("latest_scores") as batch:
        for name in [*NEW_COLUMNS, "resolved"]:
            batch.drop_column(name)


def fill_priority_parts() -> None:
    """Each row's priority parts, from the audit record it copies."""
    record = SCORE_RECORDS.c
    of_this_row = record.id == LATEST_SCORES.c.score_id
    parts = priority_parts(record.outputs)
    op.execute(
        LATEST_SCORES.update().values(
            {
                name: sa.select(value).where(of_this_row).scalar_subquery()
                for name, value in parts.items()
            }
        )
    )


def fill_resolved() -> None:
    """Resolved where the denial's latest recorded outcome is anything but "open"."""
    status = DENIAL_STATUS.c
    resolved = sa.exists().where(
        status.denial_id == LATEST_SCORES.c.denial_id,
        status.resolution.is_not(None),
        status.resolution != "open",
    )
    op.execute(LATEST_SCORES.update().where(resolved).values(resolved=True))


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
