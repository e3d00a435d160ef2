"""``denial-triage quickstart --remits DIR``: from 835 files alone to a champion that scores
over HTTP, or, when the files hold too few outcomes (the public samples), a stop after ingest
and link-outcomes that names the history's counts and keeps it."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from database_fixtures import auth, create_keys
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from denial_triage.cli import app
from denial_triage.commands.remits import site_files
from denial_triage.commands.serve import sample_line
from denial_triage.settings import Settings, get_settings
from features.contract import load_denials
from ingest.writer import RemittanceReport, write_remittances
from serving.app import create_app
from serving.schemas import ScoreResponse
from training.fit import labelled_rows
from training.synthetic import generate_history
from training.tracking import CHAMPION, MODEL_NAME, configure_tracking, load_triage_model

runner = CliRunner()
# About 5,000 denials of the three busiest payers over 14 months, in about 190 files: enough
# resolved denials before the 4 test months and the 180 days left out for the recovery model
# to pass its gates (ingest costs about 0.1 s a file, so files are kept few, rows many).
ROWS, MONTHS, PAYERS = 20_000, 14, 3
DEFECT_SHARE = 0.01


@pytest.fixture(autouse=True)
def clean_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings from the environment set here only, everything under tmp_path / data."""
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in ("DENIAL_TRIAGE_DATABASE_URL", "DATABASE_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DENIAL_TRIAGE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def _generated_remits(folder: Path) -> RemittanceReport:
    history = folder / "generated.parquet"
    generate_history(ROWS, 7, history, months=MONTHS)
    frame = load_denials(history).frame
    busiest = frame["payer_id"].value_counts().index[:PAYERS]
    frame = frame[frame["payer_id"].isin(busiest)].reset_index(drop=True)
    return write_remittances(frame, folder / "remits", defect_share=DEFECT_SHARE, seed=5)


@pytest.mark.slow
def test_generated_remittances_end_in_a_recovery_only_champion_that_scores(
    tmp_path: Path, clean_settings: Path
) -> None:
    written = _generated_remits(tmp_path)
    result = runner.invoke(app, ["quickstart", "--remits", str(tmp_path / "remits"), "--no-serve"])
    assert result.exit_code == 0, result.output
    # What an 835 history labels: outcomes (recovery), never root cause or preventability.
    assert re.search(r"recovery: fitted on [\d,]+ labelled rows", result.output)
    assert "root_cause: not fitted: 0 training rows carry its label" in result.output
    assert "preventable: not fitted: 0 training rows carry its label" in result.output
    assert "version 1 is now champion" in result.output

    files = site_files()
    history = load_denials(files.history).frame
    assert labelled_rows(history, "recovery").sum() >= 300
    assert set(history["resolution"]) >= {"written_off", "open"}  # unpaid, and still too new
    quarantined = pd.read_parquet(files.quarantine)
    assert len(quarantined) and set(quarantined["claim_id"]) <= written.damaged_claims
    assert files.findings.read_text().count("\n") > 0

    configure_tracking(clean_settings)
    champion = load_triage_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    assert champion.recovery_model is not None
    assert champion.root_cause_model is None and champion.preventable_model is None
    _scores_over_http(clean_settings, history.tail(5))


def _scores_over_http(data_dir: Path, denials: pd.DataFrame) -> None:
    from training.tracking import example_payload

    settings = Settings(data_dir=data_dir, model_poll_seconds=3600)
    payload = json.loads(example_payload(denials).to_json(orient="records"))
    with TestClient(create_app(settings)) as client:
        keys = create_keys(settings.resolved_database_url, "quickstart-remits")
        response = client.post("/v1/score", json={"denials": payload}, headers=auth(keys["scorer"]))
    assert response.status_code == 200, response.text
    body = ScoreResponse.model_validate(response.json())
    assert [r.denial_id for r in body.results] == list(denials["denial_id"])
    for scored, answered in zip(body.results, response.json()["results"], strict=True):
        assert 0 <= scored.recovery.probability <= 1
        assert scored.root_cause.category == scored.root_cause.mapped_by_codes
        assert scored.requires_human_review
        # The line the quickstart prints for its sample, with no root-cause probability.
        assert f"{scored.root_cause.category} (by the mapping), recovery" in sample_line(answered)


def test_public_samples_are_read_whole_then_stop_naming_the_counts(shared_dir: Path) -> None:
    samples = shared_dir / "samples" / "835"
    with (samples / "manifest.tsv").open(newline="", encoding="utf-8") as handle:
        manifest = list(csv.DictReader(handle, delimiter="\t"))
    claims = sum(int(row["n_claims_CLP"]) for row in manifest)

    result = runner.invoke(app, ["quickstart", "--remits", str(samples), "--no-serve"])
    assert result.exit_code == 1
    assert f"read {len(manifest)} files (0 failed" in result.output
    assert f"{claims:,} claims" in result.output and "0 quarantined" in result.output

    files = site_files()
    history = load_denials(files.history).frame
    stopped = result.output[result.output.index("error: ") :]
    assert f"holds {len(history):,} denials" in stopped
    assert "needs 300 of them (min_labels, models/recovery.yaml)" in stopped
    assert f"denial-triage train --data {files.history}" in stopped
    assert f"the history is kept: {files.history}" in stopped
    assert "registered" not in result.output  # nothing was trained
    findings = files.findings.read_text()
    assert "SE01 says" in findings  # the samples' wrong segment counts, kept as findings


def test_a_folder_that_is_not_there_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["quickstart", "--remits", str(tmp_path / "nope"), "--no-serve"])
    assert result.exit_code == 1
    assert "nope: not a folder of 835 files" in result.output
