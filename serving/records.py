"""What the service keeps: API keys, the reviewers' page sessions, the audit log of scores,
and reviewer feedback.

No patient names or member ids are stored anywhere: a score is kept as the hash of its input
denial, the denial's non-identifying routing facts (payer, codes, amounts, denial date) and what
the service answered, and callers are recorded by key name, never by key.
The Alembic migrations in ``serving/migrations`` create these tables; a test proves the two
agree.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from features.contract import TEXT_MAXIMUM

# Deterministic constraint names: later migrations (and SQLite batch mode) refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# JSONB on PostgreSQL so the audit log can be queried inside outputs and explanations.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")
# The audit log grows with every score; SQLite only auto-increments a plain INTEGER key.
RowId = BigInteger().with_variant(Integer(), "sqlite")


class Role(StrEnum):
    """What an API key may do."""

    SCORER = "scorer"  # worklist systems: score, ingest
    REVIEWER = "reviewer"  # read scores and explanations, send feedback
    ADMIN = "admin"  # keys, model reload


# The roles that read scores, send feedback and see the reviewers' pages.
REVIEWER_ROLES = (Role.REVIEWER, Role.ADMIN)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive timestamp {value.isoformat()}: give it a timezone")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utc_now() -> dt.datetime:
    """The current time, timezone-aware."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base sharing one metadata with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ApiKey(Base):
    """A caller's key. Only a hash is kept; the key itself is shown once, at creation."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "role IN ('scorer', 'reviewer', 'admin')",
            name="role",
        ),
        # Names identify keys in the audit log and in `keys revoke`; a revoked key's name
        # can be reused for its replacement.
        Index(
            "uq_api_keys_active_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    # The random id after ``dt_``: finds the candidate row without scanning every hash.
    key_prefix: Mapped[str] = mapped_column(String(16), index=True)
    # SHA-256 hex of the whole key. A fast hash is right here (no bcrypt/argon2): keys carry
    # 256 random bits, so there is nothing to brute-force the way there is with passwords.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    @property
    def active(self) -> bool:
        """True until the key is revoked."""
        return self.revoked_at is None


class PageSession(Base):
    """A signed-in session of the reviewers' pages, kept here so it can be ended anywhere.

    The browser's cookie holds the random session id; only its SHA-256 is stored, so a copy of
    the database opens no session. Nothing in the cookie is derived from the key.
    """

    __tablename__ = "page_sessions"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    # Forms that change something must echo it: a page of another site cannot read it.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    # Set at sign-out and when the key is revoked; an ended session never opens again.
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class ScoreRecord(Base):
    """The audit log: one row per scored denial, enough to account for and replay the score."""

    __tablename__ = "score_records"
    __table_args__ = (Index("ix_score_records_denial_id_scored_at", "denial_id", "scored_at"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    # Assigned when the score is made, so a record replayed from the spool is written once.
    record_id: Mapped[str] = mapped_column(String(36), unique=True)
    request_id: Mapped[str] = mapped_column(String(64))
    denial_id: Mapped[str] = mapped_column(String(TEXT_MAXIMUM))
    scored_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    caller: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(64))
    mapping_version: Mapped[str] = mapped_column(String(64))
    input_hash: Mapped[str] = mapped_column(String(64))
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    # What the worklist shows and filters on (payer, codes, amounts, denial date); None on
    # records written before revision 0002.
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class Feedback(Base):
    """A reviewer's correction or a later outcome for one denial, idempotent on a client key."""

    __tablename__ = "feedback"
    # Each caller's idempotency keys are its own: one caller's key never collides with another's.
    __table_args__ = (UniqueConstraint("caller", "idempotency_key"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    denial_id: Mapped[str] = mapped_column(String(TEXT_MAXIMUM), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    caller: Mapped[str] = mapped_column(String(100))
    confirmed_root_cause: Mapped[bool | None]
    corrected_root_cause: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(String(32))
    recovered_amount: Mapped[float | None] = mapped_column(Numeric(14, 2, asdecimal=False))
    resolved_date: Mapped[dt.date | None] = mapped_column(Date)
    reviewer_note: Mapped[str | None] = mapped_column(Text)
    # Hash of the canonical body: the same key sent again with a different body is a conflict.
    request_hash: Mapped[str] = mapped_column(String(64))


# Where a denial stands on the worklist. "resolved" is never stored: an outcome recorded through
# feedback (anything but "open") resolves a denial, so the two can never disagree.
WORKED_STATUSES = ("open", "in_progress")
# The dashboard's covering indexes: per total, the columns it groups by (led by "resolved"
# where it counts open denials only, so the scan seeks them) and then the measures it sums.
DASHBOARD_INDEXES: dict[str, tuple[str, ...]] = {
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
    "open_deadline": (
        "resolved",
        "deadline_rule",
        "deadline",
        "denied_amount",
        "expected_dollars",
    ),
}

# What model monitoring reads of each latest score; its covering index ends with these.
MONITORING_COLUMNS = (
    "denial_month",
    "payer_type",
    "recovery_probability",
    "priority",
    "root_cause",
    "denial_date",
    "denial_id",
)


class LatestScore(Base):
    """Each denial's latest score, one row per denial, kept on write beside the audit log.

    The columns the worklist and dashboard filter, sort and sum by, copied out of the score's
    JSON once when it is written, so a page reads a narrow indexed table instead of finding
    the newest record per denial and parsing every document on each read. ``claim_key`` is
    the keyed hash of the claim id (as the input hash is keyed): a claim can be searched for
    without its id being stored. Dates are ISO text, as in the documents they come from.
    """

    __tablename__ = "latest_scores"
    # Covering indexes of the dashboard's totals: each GROUP BY reads one index in order,
    # never the table and never a sort, and sums only what the dashboard shows.
    __table_args__ = (
        *(
            Index(f"ix_latest_scores_totals_by_{name}", *columns)
            for name, columns in DASHBOARD_INDEXES.items()
        ),
        # The worklist's filter choices: each list of values read from a small index.
        Index("ix_latest_scores_payers", "payer_id", "payer_name"),
        # Model monitoring's scans (serving/monitoring.py) read this narrow index, never the
        # table: about half the time of the table at 100,000 denials on SQLite.
        Index("ix_latest_scores_monitoring", *MONITORING_COLUMNS),
    )

    denial_id: Mapped[str] = mapped_column(String(TEXT_MAXIMUM), primary_key=True)
    score_id: Mapped[int] = mapped_column(ForeignKey("score_records.id"))
    scored_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    claim_key: Mapped[str | None] = mapped_column(String(64), index=True)
    payer_id: Mapped[str | None] = mapped_column(String(TEXT_MAXIMUM))
    payer_name: Mapped[str | None] = mapped_column(String(TEXT_MAXIMUM))
    denial_date: Mapped[str | None] = mapped_column(String(10))
    denial_month: Mapped[str | None] = mapped_column(String(7))
    primary_code: Mapped[str | None] = mapped_column(String(16))
    denied_amount: Mapped[float | None] = mapped_column(Float)
    root_cause: Mapped[str | None] = mapped_column(String(64))
    root_cause_probability: Mapped[float | None] = mapped_column(Float)
    recovery_probability: Mapped[float | None] = mapped_column(Float)
    expected_dollars: Mapped[float | None] = mapped_column(Float)
    preventable_probability: Mapped[float | None] = mapped_column(Float)
    prevention_owner: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[float | None] = mapped_column(Float, index=True)
    deadline: Mapped[str | None] = mapped_column(String(10), index=True)
    deadline_rule: Mapped[str | None] = mapped_column(String(100))
    owner_queue: Mapped[str | None] = mapped_column(String(64), index=True)
    action_path: Mapped[str | None] = mapped_column(String(64), index=True)
    requires_review: Mapped[bool | None] = mapped_column(Boolean)
    # The parts the priority is recounted from on the day the worklist is read
    # (serving.live.priority_sql); none of them changes with the day.
    expected_net_dollars: Mapped[float | None] = mapped_column(Float)
    effort_hours: Mapped[float | None] = mapped_column(Float)
    last_deadline: Mapped[str | None] = mapped_column(String(10))
    backlog_horizon_days: Mapped[int | None] = mapped_column(Integer)
    # A copy of "the latest recorded outcome resolves the denial" (DenialStatus.resolution),
    # written in the same commit, so the dashboard's open totals read one index.
    resolved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Added by revision 0006: model monitoring reads calibration and accuracy per payer type.
    payer_type: Mapped[str | None] = mapped_column(String(TEXT_MAXIMUM))
    # Added by revision 0008: payer alerts link the worklist narrowed to their procedure
    # family, which the worklist reads from the distinct codes (serving.worklist_records).
    procedure_code: Mapped[str | None] = mapped_column(String(TEXT_MAXIMUM), index=True)


class DenialStatus(Base):
    """Who works a denial, whether work has started and its latest recorded resolution;
    absent means open and unassigned."""

    __tablename__ = "denial_status"
    __table_args__ = (CheckConstraint("status IN ('open', 'in_progress')", name="status"),)

    denial_id: Mapped[str] = mapped_column(String(TEXT_MAXIMUM), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee: Mapped[str | None] = mapped_column(String(100), index=True)
    # The latest resolution recorded through feedback; anything but "open" resolves the denial.
    resolution: Mapped[str | None] = mapped_column(String(32))
    # The same outcome's recovered dollars (revision 0006): model monitoring joins the two
    # tables by their keys instead of ranking every denial's feedback on each read.
    recovered_amount: Mapped[float | None] = mapped_column(Numeric(14, 2, asdecimal=False))
    # The day that outcome became known (revision 0009): its resolved date, else the day the
    # service recorded it. Payer alerts count outcomes on it (training.payer_alerts).
    resolved_date: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_by: Mapped[str] = mapped_column(String(100))


class WorklistEvent(Base):
    """The audit of worklist changes: who (key name and id) set which status or assignee when."""

    __tablename__ = "worklist_events"
    __table_args__ = (CheckConstraint("action IN ('assign', 'unassign', 'status')", name="action"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    denial_id: Mapped[str] = mapped_column(String(TEXT_MAXIMUM), index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    actor: Mapped[str] = mapped_column(String(100))
    # The acting key's row id: names are reused once a key is revoked, ids never are.
    actor_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(100))


class ShadowScore(Base):
    """The challenger's score of a denial sampled in shadow, beside the champion's answer to the
    same request: the pair is what the model page and ``promote --live`` compare. Like the
    audit log it keeps ids and the keyed input hash only, never the denial itself."""

    __tablename__ = "shadow_scores"
    __table_args__ = (
        Index("ix_shadow_scores_model_version_denial_id", "model_version", "denial_id"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64))
    denial_id: Mapped[str] = mapped_column(String(TEXT_MAXIMUM), index=True)
    scored_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    input_hash: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))  # the challenger's
    champion_version: Mapped[str] = mapped_column(String(64))
    root_cause: Mapped[str | None] = mapped_column(String(64))
    root_cause_probability: Mapped[float | None] = mapped_column(Float)
    recovery_probability: Mapped[float | None] = mapped_column(Float)
    preventable_probability: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[float | None] = mapped_column(Float)
    owner_queue: Mapped[str | None] = mapped_column(String(64))
    requires_review: Mapped[bool | None] = mapped_column(Boolean)
    # The champion's answer to the same request, copied when it was answered: comparing the two
    # reads this one table, without a join to the audit log's documents.
    champion_root_cause: Mapped[str | None] = mapped_column(String(64))
    champion_recovery_probability: Mapped[float | None] = mapped_column(Float)
    champion_priority: Mapped[float | None] = mapped_column(Float)
