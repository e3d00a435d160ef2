"""Every setting of the project, in one typed place, read from the environment.

Variables are prefixed ``DENIAL_TRIAGE_`` (for example ``DENIAL_TRIAGE_DATA_DIR``). Nothing is
created or touched at import time: folders are made by the commands that write into them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    @property
    def history_dir(self) -> Path:
        """Where generated or linked denial histories are written."""
        return self.data_dir / "history"

    @property
    def codes_dir(self) -> Path:
        """Where official CARC/RARC lists imported by the user are kept."""
        return self.data_dir / "codes"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
