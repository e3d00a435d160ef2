"""Each denial's payer type beside its latest score, for model monitoring by payer type.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

Calibration, ROC AUC, root-cause accuracy and recovered dollars are watched per month and per
payer type (``serving/monitoring.py``); the payer type sits in each audit record's facts, and
reading it from there means one JSON document per denial on every read. ``latest_scores``
gains the column, filled on upgrade from the facts of the audit record each row copies.
Downgrading drops the column.
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
TEXT = 128  # ids and names, as in the audit log

SCORE_RECORDS = sa.table(
    "score_records", sa.column("id", ROW_ID), sa.column("facts", JSON_DOCUMENT)
)
LATEST_SCORES = sa.table(
    "latest_scores", sa.column("score_id", ROW_ID), sa.column("payer_type", sa.String)
)


def upgrade() -> None:
    """Add ``latest_scores.payer_type`` and fill it from the audit records."""
    with op.batch_alter_table("latest_scores") as batch:
        batch.add_column(sa.Column("payer_type", sa.String(TEXT), nullable=True))
    payer_type = (
        sa.select(SCORE_RECORDS.c.facts["payer_type"].as_string())
        .where(SCORE_RECORDS.c.id == LATEST_SCORES.c.score_id)
        .scalar_subquery()
    )
    op.execute(LATEST_SCORES.update().values(payer_type=payer_type))


def downgrade() -> None:
    """Drop ``latest_scores.payer_type``."""
    with op.batch_alter_table("latest_scores") as batch:
        batch.drop_column("payer_type")
