"""A worklist people can work: each denial's latest score kept on write, status and assignment,
and the audit of who changed them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

``latest_scores`` holds one row per denial, the columns the worklist and dashboard filter, sort
and sum by copied out of its newest audit record; upgrading fills it from the audit log already
there. ``denial_status`` holds who works a denial, whether work started and its latest recorded
resolution (filled from the feedback already there); ``worklist_events`` every change with the
acting key's name and id. Downgrading drops the three tables: statuses
and assignments are lost, the audit log of scores is untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
TEXT = 128  # ids and names, as in the audit log

# The audit log as this revision reads it (not serving.records: a migration keeps describing
# its own revision after the models move on).
SCORE_RECORDS = sa.table(
    "score_records",
    sa.column("id", ROW_ID),
    sa.column("denial_id", sa.String),
    sa.column("scored_at", TIMESTAMP),
    sa.column("outputs", JSON_DOCUMENT),
    sa.column("facts", JSON_DOCUMENT),
)


def upgrade() -> None:
    """Create the three tables; fill ``latest_scores`` from the audit log and each denial's
    latest resolution from its feedback."""
    create_latest_scores()
    create_denial_status()
    create_worklist_events()
    op.execute(
        sa.table("latest_scores", *(sa.column(name) for name in latest_values()))
        .insert()
        .from_select(list(latest_values()), newest_records())
    )
    status = sa.table("denial_status", *(sa.column(name) for name in STATUS_FROM_OUTCOMES))
    op.execute(status.insert().from_select(list(STATUS_FROM_OUTCOMES), latest_outcomes()))


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_table("worklist_events")
    op.drop_table("denial_status")
    op.drop_table("latest_scores")


def create_latest_scores() -> None:
    op.create_table(
        "latest_scores",
        sa.Column("denial_id", sa.String(TEXT), nullable=False),
        sa.Column("score_id", ROW_ID, nullable=False),
        sa.Column("scored_at", TIMESTAMP, nullable=False),
        sa.Column("claim_key", sa.String(64), nullable=True),
        sa.Column("payer_id", sa.String(TEXT), nullable=True),
        sa.Column("payer_name", sa.String(TEXT), nullable=True),
        sa.Column("denial_date", sa.String(10), nullable=True),
        sa.Column("denial_month", sa.String(7), nullable=True),
        sa.Column("primary_code", sa.String(16), nullable=True),
        sa.Column("denied_amount", sa.Float(), nullable=True),
        sa.Column("root_cause", sa.String(64), nullable=True),
        sa.Column("root_cause_probability", sa.Float(), nullable=True),
        sa.Column("recovery_probability", sa.Float(), nullable=True),
        sa.Column("expected_dollars", sa.Float(), nullable=True),
        sa.Column("preventable_probability", sa.Float(), nullable=True),
        sa.Column("prevention_owner", sa.String(64), nullable=True),
        sa.Column("priority", sa.Float(), nullable=True),
        sa.Column("deadline", sa.String(10), nullable=True),
        sa.Column("deadline_rule", sa.String(100), nullable=True),
        sa.Column("owner_queue", sa.String(64), nullable=True),
        sa.Column("action_path", sa.String(64), nullable=True),
        sa.Column("requires_review", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["score_id"], ["score_records.id"], name="fk_latest_scores_score_id_score_records"
        ),
        sa.PrimaryKeyConstraint("denial_id", name="pk_latest_scores"),
    )
    op.create_index("ix_latest_scores_claim_key", "latest_scores", ["claim_key"])
    op.create_index("ix_latest_scores_priority", "latest_scores", ["priority"])
    op.create_index("ix_latest_scores_deadline", "latest_scores", ["deadline"])
    measures = ["denied_amount", "expected_dollars", "preventable_probability", "requires_review"]
    for name, columns in {
        "cause": ["denial_month", "root_cause"],
        "payer": ["denial_month", "payer_id", "payer_name"],
        "code": ["denial_month", "primary_code"],
        "prevention": ["prevention_owner"],
        "age": ["denial_date"],
        "deadline": ["deadline_rule", "deadline"],
    }.items():
        # Covering indexes: each of the dashboard's totals reads one, in order.
        op.create_index(f"ix_latest_scores_totals_by_{name}", "latest_scores", columns + measures)


def create_denial_status() -> None:
    op.create_table(
        "denial_status",
        sa.Column("denial_id", sa.String(TEXT), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(100), nullable=True),
        sa.Column("resolution", sa.String(32), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.CheckConstraint("status IN ('open', 'in_progress')", name="ck_denial_status_status"),
        sa.PrimaryKeyConstraint("denial_id", name="pk_denial_status"),
    )
    op.create_index("ix_denial_status_assignee", "denial_status", ["assignee"])


def create_worklist_events() -> None:
    op.create_table(
        "worklist_events",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("denial_id", sa.String(TEXT), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("actor_key_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("assignee", sa.String(100), nullable=True),
        sa.CheckConstraint(
            "action IN ('assign', 'unassign', 'status')", name="ck_worklist_events_action"
        ),
        sa.ForeignKeyConstraint(
            ["actor_key_id"], ["api_keys.id"], name="fk_worklist_events_actor_key_id_api_keys"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_worklist_events"),
    )
    op.create_index("ix_worklist_events_denial_id", "worklist_events", ["denial_id"])


def latest_values() -> dict[str, sa.ColumnElement]:
    """Each ``latest_scores`` column as an expression over the audit record it copies."""
    record = SCORE_RECORDS.c
    denial_date = record.facts["denial_date"].as_string()
    month_from = sa.func.coalesce(denial_date, sa.cast(record.scored_at, sa.String))

    def output(*path: str) -> sa.ColumnElement:
        return record.outputs[path]

    return {
        "denial_id": record.denial_id,
        "score_id": record.id,
        "scored_at": record.scored_at,
        "claim_key": record.facts["claim_key"].as_string(),
        "payer_id": record.facts["payer_id"].as_string(),
        "payer_name": record.facts["payer_name"].as_string(),
        "denial_date": sa.func.substr(denial_date, 1, 10),
        "denial_month": sa.func.substr(month_from, 1, 7),
        "primary_code": record.facts[("carc_codes", 0)].as_string(),
        "denied_amount": record.facts["denied_amount"].as_float(),
        "root_cause": output("root_cause", "category").as_string(),
        "root_cause_probability": output("root_cause", "probability").as_float(),
        "recovery_probability": output("recovery", "probability").as_float(),
        "expected_dollars": output("recovery", "expected_recovered_dollars").as_float(),
        "preventable_probability": output("preventable", "probability").as_float(),
        "prevention_owner": output("preventable", "prevention_owner").as_string(),
        "priority": output("priority", "score").as_float(),
        "deadline": sa.func.substr(output("priority", "deadline").as_string(), 1, 10),
        "deadline_rule": output("priority", "deadline_rule").as_string(),
        "owner_queue": output("routing", "owner_queue").as_string(),
        "action_path": output("routing", "action_path").as_string(),
        "requires_review": record.outputs["requires_human_review"].as_boolean(),
    }


FEEDBACK = sa.table(
    "feedback",
    sa.column("id", ROW_ID),
    sa.column("denial_id", sa.String),
    sa.column("received_at", TIMESTAMP),
    sa.column("caller", sa.String),
    sa.column("resolution", sa.String),
)
STATUS_FROM_OUTCOMES = ("denial_id", "status", "resolution", "updated_at", "updated_by")


def latest_outcomes() -> sa.Select:
    """Per denial, its latest feedback that records a resolution, as a status row."""
    feedback = FEEDBACK.c
    rank = sa.func.row_number().over(
        partition_by=feedback.denial_id,
        order_by=(feedback.received_at.desc(), feedback.id.desc()),
    )
    ranked = (
        sa.select(
            feedback.denial_id,
            sa.literal("open").label("status"),
            feedback.resolution,
            feedback.received_at.label("updated_at"),
            feedback.caller.label("updated_by"),
            rank.label("rank"),
        )
        .where(feedback.resolution.is_not(None))
        .subquery()
    )
    return sa.select(*(ranked.c[name] for name in STATUS_FROM_OUTCOMES)).where(ranked.c.rank == 1)


def newest_records() -> sa.Select:
    """Each denial's newest audit record (the later id breaks a tie in time)."""
    record, newer = SCORE_RECORDS.c, SCORE_RECORDS.alias("newer").c
    later = sa.or_(
        newer.scored_at > record.scored_at,
        sa.and_(newer.scored_at == record.scored_at, newer.id > record.id),
    )
    newest = ~sa.exists().where(newer.denial_id == record.denial_id, later)
    return sa.select(*latest_values().values()).where(newest)
