"""Shared fixtures: one generated history per test session, validated once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.contract import load_denials
from training.synthetic import generate_history

HISTORY_ROWS = 60_000
HISTORY_SEED = 11


@pytest.fixture(scope="session")
def history_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated history on disk, large enough for stable rates."""
    path = tmp_path_factory.mktemp("history") / "history.parquet"
    return generate_history(HISTORY_ROWS, HISTORY_SEED, path)


@pytest.fixture(scope="session")
def history(history_path: Path) -> pd.DataFrame:
    """The generated history loaded through the contract (coerced types)."""
    result = load_denials(history_path)
    assert result.ok, result.errors[:5]
    return result.frame


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository; tests that need it skip when it is absent."""
    path = Path(__file__).resolve().parents[1].parent / "shared"
    if not path.is_dir():
        pytest.skip("../shared is not present")
    return path
