"""Every setting of the project, in one typed place, read from the environment.

Variables are prefixed ``DENIAL_TRIAGE_`` (for example ``DENIAL_TRIAGE_DATA_DIR``). Nothing is
created or touched at import time: folders are made by the commands that write into them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Days after its denial date by which a denial's outcome is taken as known: the newest denials
# have only their quick outcomes (mostly corrections that paid), so training tests on, and
# monitoring judges, only denials at least this old; ``quickstart --remits`` writes off what is
# still unpaid after as many days (``link-outcomes --unpaid-after``).
OUTCOME_MATURITY_DAYS = 180


class Settings(BaseSettings):
    """Typed settings; every path defaults under one local data directory that git ignores."""

    model_config = SettingsConfigDict(env_prefix="DENIAL_TRIAGE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Local data directory for everything written.")
    mapping_overrides: Path | None = Field(
        None, description="Site override file layered on top of the shipped code mapping."
    )
    payer_rules_overrides: Path | None = Field(
        None, description="Site file of per-payer deadline overrides, layered on the defaults."
    )
    mapping_max_review_age_days: int = Field(
        365, ge=1, description="A mapping entry reviewed longer ago than this is stale."
    )
    database_url: str | None = Field(
        None,
        # DATABASE_URL is what hosting platforms and CI set; the prefixed name wins when both are.
        validation_alias=AliasChoices("DENIAL_TRIAGE_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL of the service's records; SQLite under data_dir when unset.",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        # MLflow's own variable, so a site's MLflow server is named once for both.
        validation_alias=AliasChoices("DENIAL_TRIAGE_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking and registry server; SQLite <data_dir>/mlflow.db when unset.",
    )
    audit_spool_dir: Path | None = Field(
        None,  # <data_dir>/audit-spool, set after validation
        description="Where audit records wait while the database is unreachable; "
        "default <data_dir>/audit-spool.",
    )

    host: str = Field("127.0.0.1", description="Interface the service binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port the service listens on.")
    log_level: str = Field("INFO", description="Log level of the service's JSON logs.")
    max_batch_denials: int = Field(
        1000, ge=1, description="Most denials one score request may hold."
    )
    max_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 beyond)."
    )
    refusals_per_minute: int = Field(
        30,
        ge=1,
        description="Refused requests (401, 413, 422) a sender may have in a minute; past it, "
        "its requests with a body are answered 429 after a pause, until the minute allows again.",
    )
    refused_pause_seconds: float = Field(
        1.0,
        ge=0,
        le=30,
        description="How long the answer to a sender past its refusals waits: a client that "
        "sends again only once answered then sends about one request per pause.",
    )
    model_poll_seconds: float = Field(
        30.0, gt=0, description="How often the service checks whether the champion alias moved."
    )
    audit_write_behind: bool = Field(
        True,
        description="Write audit records behind the request, in batches; false writes them "
        "on the request path before the answer.",
    )
    audit_worker_process: bool = Field(
        True,
        description="Build and write audit records in a worker process, on another core; "
        "false does it from a thread of the service.",
    )
    audit_journal: bool = Field(
        True,
        description="Journal each score's audit job to disk (fsynced, shared by the requests "
        "waiting at once) before the answer, so a hard kill loses nothing answered; false "
        "answers a moment sooner and may lose the last second of records on a kill.",
    )
    shadow_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Share of scored denials the challenger (when a `challenger` alias exists) "
        "also scores in shadow, off the request path, chosen by a hash of the denial id so "
        "the same denials are compared over time; 0 turns shadow scoring off.",
    )
    page_cache_entries: int = Field(
        16,
        ge=1,
        description="Results of the heavy pages (payer alerts, the live comparison of champion "
        "and challenger) kept in memory between views, keyed on the records they were computed "
        "from; the least recently used goes first.",
    )
    shutdown_grace_seconds: int = Field(
        30, ge=1, description="How long in-flight requests may take to finish on SIGTERM."
    )
    session_secret: str | None = Field(
        None,
        min_length=32,
        description="Signs the web pages' session cookie; when unset, one is generated once and "
        "kept in <data_dir>/session-secret, so replicas sharing a data directory agree.",
    )
    audit_hash_key: str | None = Field(
        None,
        min_length=32,
        description="Keys the audit log's input hashes (HMAC-SHA256), so a hash cannot be "
        "confirmed by guessing a denial offline; when unset, one is generated once and kept in "
        "<data_dir>/audit-hash-key. Keep it: an auditor needs it to check a hash.",
    )
    monitoring_max_ece: float = Field(
        0.08,
        gt=0,
        le=1,
        description="Model monitoring recommends retraining when a month and payer type's "
        "recovery ECE on resolved denials is above this.",
    )
    monitoring_min_auc: float = Field(
        0.65,
        ge=0,
        le=1,
        description="Retraining is recommended when a month and payer type's recovery ROC "
        "AUC on resolved denials is below this.",
    )
    monitoring_min_root_cause_accuracy: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Retraining is recommended when a month and payer type's root-cause "
        "accuracy on reviewed denials is below this.",
    )
    monitoring_max_psi: float = Field(
        0.25,
        gt=0,
        description="Retraining is recommended when a feature's or score's population "
        "stability index between the training rows and the recent denials is above this "
        "(0.25: a shifted population).",
    )
    monitoring_min_outcomes: int = Field(
        200,
        ge=1,
        description="Resolved (or reviewed) denials a month and payer type needs before its "
        "calibration, AUC (or root-cause accuracy) is judged.",
    )
    monitoring_maturity_days: int = Field(
        OUTCOME_MATURITY_DAYS,
        ge=0,
        description="A month's recovery calibration and AUC are judged once its last day is this "
        "many days before the newest denial date in the records: a younger month's resolved "
        "denials are its quick outcomes, mostly recoveries, so even a calibrated model looks "
        "low there (training's maturity span).",
    )
    monitoring_recent_days: int = Field(
        90,
        ge=1,
        description="Drift compares the denials of this many days, ending with the newest "
        "denial date in the records, with the training rows.",
    )
    monitoring_drift_rows: int = Field(
        20_000,
        ge=100,
        description="Most recent denials read for drift (the newest first): a bounded read.",
    )

    @property
    def history_dir(self) -> Path:
        """Where generated or linked denial histories are written."""
        return self.data_dir / "history"

    @property
    def codes_dir(self) -> Path:
        """Where official CARC/RARC lists imported by the user are kept."""
        return self.data_dir / "codes"

    @property
    def resolved_database_url(self) -> str:
        """The records database: ``database_url``, or a SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'denial-triage.db').as_posix()}"

    @model_validator(mode="after")
    def _spool_under_data_dir(self) -> Settings:
        # A default that follows data_dir, which is itself configurable.
        if self.audit_spool_dir is None:
            self.audit_spool_dir = self.data_dir / "audit-spool"
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
