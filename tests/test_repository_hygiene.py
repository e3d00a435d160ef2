"""Nothing secret and no data in the repository: a secret scan over every file git would
commit, and the ignore rules that keep generated data, databases and ``.env`` out."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings

ROOT = Path(__file__).resolve().parents[1]


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def committable() -> list[str]:
    """Files git tracks, and new files it would add (ignored ones excluded)."""
    if shutil.which("git") is None or git("rev-parse", "--is-inside-work-tree").returncode:
        pytest.skip("not a git checkout")
    listed = git("ls-files", "--cached", "--others", "--exclude-standard").stdout.splitlines()
    return [name for name in listed if (ROOT / name).is_file()]


def test_no_file_git_would_commit_holds_a_secret(committable: list[str]) -> None:
    # detect-secrets' default plugins (keys of clouds, tokens, private keys, high-entropy
    # strings, passwords in URLs and assignments). A made-up value in a test is marked on its
    # line with "pragma: allowlist secret", so every exception is visible in review.
    found = SecretsCollection(root=str(ROOT))
    with default_settings():
        for name in committable:
            found.scan_file(name)
    report = {name: [s["type"] for s in items] for name, items in found.json().items()}
    assert report == {}
    assert len(committable) > 100  # the scan saw the repository, not an empty list


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "data/history/history.parquet",
        "data/mlflow.db",
        "data/denial-triage.db",
        "data/session-secret",
        "data/audit-spool/0001.jsonl",
        "data/model-cache/model.joblib",
        "mlruns/0/meta.yaml",
        "backlog.parquet",
        "records.sqlite",
    ],
)
def test_generated_data_and_secrets_are_ignored(committable: list[str], path: str) -> None:
    assert git("check-ignore", "--no-index", "-q", path).returncode == 0, path
