"""The challenger's scores in shadow, kept apart from the audit log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

``shadow_scores`` holds one row per denial the challenger scored in shadow: its figures (root
cause, recovery, preventable, priority, queue, review flag) beside the champion's answer to the
same request, the request id, the keyed input hash and both versions; no denial content. A new
table only, so upgrading touches no existing rows; downgrading drops it and the shadow scores
with it (the champion's answers stay in the audit log).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
TEXT = 128  # ids, as in the audit log


def upgrade() -> None:
    """Create ``shadow_scores``."""
    op.create_table(
        "shadow_scores",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("denial_id", sa.String(TEXT), nullable=False),
        sa.Column("scored_at", TIMESTAMP, nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("champion_version", sa.String(64), nullable=False),
        *score_columns(),
        *champion_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_scores")),
    )
    op.create_index(op.f("ix_shadow_scores_denial_id"), "shadow_scores", ["denial_id"])
    op.create_index(
        "ix_shadow_scores_model_version_denial_id",
        "shadow_scores",
        ["model_version", "denial_id"],
    )


def downgrade() -> None:
    """Drop ``shadow_scores``."""
    op.drop_table("shadow_scores")


def score_columns() -> list[sa.Column]:
    """The challenger's figures."""
    return [
        sa.Column("root_cause", sa.String(64), nullable=True),
        sa.Column("root_cause_probability", sa.Float(), nullable=True),
        sa.Column("recovery_probability", sa.Float(), nullable=True),
        sa.Column("preventable_probability", sa.Float(), nullable=True),
        sa.Column("priority", sa.Float(), nullable=True),
        sa.Column("owner_queue", sa.String(64), nullable=True),
        sa.Column("requires_review", sa.Boolean(), nullable=True),
    ]


def champion_columns() -> list[sa.Column]:
    """The champion's answer to the same request, for the comparison."""
    return [
        sa.Column("champion_root_cause", sa.String(64), nullable=True),
        sa.Column("champion_recovery_probability", sa.Float(), nullable=True),
        sa.Column("champion_priority", sa.Float(), nullable=True),
    ]
