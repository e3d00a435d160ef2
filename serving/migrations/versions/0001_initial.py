"""Initial records: API keys, the audit log of scores, reviewer feedback.

Revision ID: 0001
Revises:
Create Date: 2026-05-01

Types are written out here rather than imported from ``serving.records``: a migration must
keep describing the schema of its own revision after the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the three tables and their indexes."""
    create_api_keys()
    create_score_records()
    create_feedback()


def downgrade() -> None:
    """Drop everything this revision created."""
    op.drop_table("feedback")
    op.drop_table("score_records")
    op.drop_table("api_keys")


def create_api_keys() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("role IN ('scorer', 'reviewer', 'admin')", name="ck_api_keys_role"),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_key_prefix", "api_keys", ["key_prefix"])
    op.create_index(
        "uq_api_keys_active_name",
        "api_keys",
        ["name"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )


def create_score_records() -> None:
    op.create_table(
        "score_records",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("record_id", sa.String(36), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("denial_id", sa.String(128), nullable=False),
        sa.Column("scored_at", TIMESTAMP, nullable=False),
        sa.Column("caller", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("mapping_version", sa.String(64), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("outputs", JSON_DOCUMENT, nullable=False),
        sa.Column("explanation", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_score_records"),
        sa.UniqueConstraint("record_id", name="uq_score_records_record_id"),
    )
    op.create_index("ix_score_records_scored_at", "score_records", ["scored_at"])
    op.create_index(
        "ix_score_records_denial_id_scored_at", "score_records", ["denial_id", "scored_at"]
    )


def create_feedback() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("denial_id", sa.String(128), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("caller", sa.String(100), nullable=False),
        sa.Column("confirmed_root_cause", sa.Boolean(), nullable=True),
        sa.Column("corrected_root_cause", sa.String(64), nullable=True),
        sa.Column("resolution", sa.String(32), nullable=True),
        sa.Column("recovered_amount", sa.Numeric(14, 2), nullable=True),
        sa.Column("resolved_date", sa.Date(), nullable=True),
        sa.Column("reviewer_note", sa.Text(), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("idempotency_key", name="uq_feedback_idempotency_key"),
    )
    op.create_index("ix_feedback_denial_id", "feedback", ["denial_id"])
