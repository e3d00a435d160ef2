"""Each denial's procedure code beside its latest score, for the worklist's procedure filters.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

A payer alert names a payer, a primary code and a procedure family; its worklist link narrowed
only to the payer and code, so it listed the payer's denials of that code on every procedure,
more than the alert counts. ``latest_scores`` gains ``procedure_code``, kept on write from now
on and filled on upgrade from the audit records' facts, with an index: the worklist reads a
family's codes from it (the family itself is a Python rule, ``features.procedures``, so it is
not copied into SQL). Downgrading drops the column and its index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TEXT = 128  # ids and codes as the contract bounds them

# The tables as this revision reads them (not serving.records: a migration keeps describing
# its own revision after the models move on).
SCORE_RECORDS = sa.table(
    "score_records", sa.column("id", ROW_ID), sa.column("facts", JSON_DOCUMENT)
)
LATEST_SCORES = sa.table(
    "latest_scores", sa.column("score_id", ROW_ID), sa.column("procedure_code", sa.String)
)
INDEX = "ix_latest_scores_procedure_code"


def upgrade() -> None:
    """Add the column and its index, and fill it from the audit records' facts."""
    with op.batch_alter_table("latest_scores") as batch:
        batch.add_column(sa.Column("procedure_code", sa.String(TEXT), nullable=True))
    procedure_code = (
        sa.select(SCORE_RECORDS.c.facts["procedure_code"].as_string())
        .where(SCORE_RECORDS.c.id == LATEST_SCORES.c.score_id)
        .scalar_subquery()
    )
    op.execute(LATEST_SCORES.update().values(procedure_code=procedure_code))
    op.create_index(INDEX, "latest_scores", ["procedure_code"])


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index(INDEX, "latest_scores")
    with op.batch_alter_table("latest_scores") as batch:
        batch.drop_column("procedure_code")
