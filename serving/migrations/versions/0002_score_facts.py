"""Score records keep the denial's routing facts, for the reviewers' worklist and dashboard.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

A nullable JSON column: records written before this revision have no facts, and the pages
show them without payer, codes or amount rather than guessing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Add ``score_records.facts``."""
    with op.batch_alter_table("score_records") as batch:
        batch.add_column(sa.Column("facts", JSON_DOCUMENT, nullable=True))


def downgrade() -> None:
    """Drop ``score_records.facts``."""
    with op.batch_alter_table("score_records") as batch:
        batch.drop_column("facts")
