"""Page sessions kept server-side; feedback idempotency keys scoped to their caller.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

``page_sessions`` holds the reviewers' signed-in sessions (the hash of the cookie's random id,
the key, a CSRF token, and when each was opened, expires and was ended), so a session can be
ended at sign-out and when its key is revoked. Feedback stays unique on its idempotency key
within one caller: the old key-wide constraint let one caller's key refuse another's feedback.
Existing feedback rows are kept as they are (keys unique overall are unique per caller too).
Downgrading fails while two callers hold the same idempotency key, rather than drop one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``page_sessions``; make feedback unique on (caller, idempotency_key)."""
    create_page_sessions()
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint("uq_feedback_idempotency_key", type_="unique")
        batch.create_unique_constraint(
            "uq_feedback_caller_idempotency_key", ["caller", "idempotency_key"]
        )


def downgrade() -> None:
    """Drop ``page_sessions``; make feedback unique on its idempotency key alone again."""
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint("uq_feedback_caller_idempotency_key", type_="unique")
        batch.create_unique_constraint("uq_feedback_idempotency_key", ["idempotency_key"])
    op.drop_table("page_sessions")


def create_page_sessions() -> None:
    op.create_table(
        "page_sessions",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name="fk_page_sessions_key_id_api_keys"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_page_sessions"),
        sa.UniqueConstraint("session_hash", name="uq_page_sessions_session_hash"),
    )
    op.create_index("ix_page_sessions_key_id", "page_sessions", ["key_id"])
    op.create_index("ix_page_sessions_expires_at", "page_sessions", ["expires_at"])
