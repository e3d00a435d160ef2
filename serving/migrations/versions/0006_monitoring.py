"""What model monitoring reads by key: each denial's payer type beside its latest score, and
its latest outcome's recovered dollars beside its resolution.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

Calibration, ROC AUC, root-cause accuracy and recovered dollars are watched per month and per
payer type (``serving/monitoring.py``). The payer type sits in each audit record's facts and the
recovered dollars in the denial's latest outcome among its feedback; reading them there means a
JSON document per denial and ranking every denial's feedback on each read. ``latest_scores``
gains ``payer_type`` and ``denial_status`` ``recovered_amount``, both kept on write from now on
and filled on upgrade from the audit records and the feedback already there, and a covering
index of what monitoring reads of ``latest_scores``. Downgrading drops the two columns and
the index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
TEXT = 128  # ids and names, as in the audit log
AMOUNT = sa.Numeric(14, 2, asdecimal=False)

# The tables as this revision reads them (not serving.records: a migration keeps describing
# its own revision after the models move on).
SCORE_RECORDS = sa.table(
    "score_records", sa.column("id", ROW_ID), sa.column("facts", JSON_DOCUMENT)
)
LATEST_SCORES = sa.table(
    "latest_scores", sa.column("score_id", ROW_ID), sa.column("payer_type", sa.String)
)
FEEDBACK = sa.table(
    "feedback",
    sa.column("id", ROW_ID),
    sa.column("denial_id", sa.String),
    sa.column("received_at", TIMESTAMP),
    sa.column("resolution", sa.String),
    sa.column("recovered_amount", AMOUNT),
)
DENIAL_STATUS = sa.table(
    "denial_status", sa.column("denial_id", sa.String), sa.column("recovered_amount", AMOUNT)
)


def upgrade() -> None:
    """Add the two columns and fill them from the audit records and the feedback."""
    with op.batch_alter_table("latest_scores") as batch:
        batch.add_column(sa.Column("payer_type", sa.String(TEXT), nullable=True))
    with op.batch_alter_table("denial_status") as batch:
        batch.add_column(sa.Column("recovered_amount", AMOUNT, nullable=True))
    payer_type = (
        sa.select(SCORE_RECORDS.c.facts["payer_type"].as_string())
        .where(SCORE_RECORDS.c.id == LATEST_SCORES.c.score_id)
        .scalar_subquery()
    )
    op.execute(LATEST_SCORES.update().values(payer_type=payer_type))
    op.execute(DENIAL_STATUS.update().values(recovered_amount=latest_recovered_amount()))
    # Covering: monitoring's scans read this narrow index, never the table.
    op.create_index("ix_latest_scores_monitoring", "latest_scores", list(MONITORING_COLUMNS))


def downgrade() -> None:
    """Drop the two columns and the index."""
    op.drop_index("ix_latest_scores_monitoring", "latest_scores")
    with op.batch_alter_table("denial_status") as batch:
        batch.drop_column("recovered_amount")
    with op.batch_alter_table("latest_scores") as batch:
        batch.drop_column("payer_type")


MONITORING_COLUMNS = (
    "denial_month",
    "payer_type",
    "recovery_probability",
    "priority",
    "root_cause",
    "denial_date",
    "denial_id",
)


def latest_recovered_amount() -> sa.ScalarSelect:
    """The recovered dollars of the denial's latest feedback that records a resolution (the
    outcome ``denial_status.resolution`` already holds)."""
    feedback = FEEDBACK.c
    return (
        sa.select(feedback.recovered_amount)
        .where(feedback.denial_id == DENIAL_STATUS.c.denial_id, feedback.resolution.is_not(None))
        .order_by(feedback.received_at.desc(), feedback.id.desc())
        .limit(1)
        .scalar_subquery()
    )
