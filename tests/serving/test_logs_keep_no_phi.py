"""No patient name, member id or raw 835 text in the logs of a run that ingested remittances
carrying them: the command line (a real process, its whole output) and the service (its JSON
logs at DEBUG), each given a good remittance and one broken right after the patient segments."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import load_module
from database_fixtures import auth, create_keys
from fastapi.testclient import TestClient

from denial_triage.settings import Settings
from serving.app import create_app
from serving.logs import SERVICE_LOGGERS, JsonFormatter

FIXTURES = Path(__file__).resolve().parents[1] / "ingest" / "remit_fixtures.py"
remits = load_module(FIXTURES, "remit_fixtures")

# Raw 835 text: any of these in a log means a segment was written out as it came.
RAW_835 = ("NM1*QC", "NM1*IL", "ISA*00", "CLP*PCN", "SVC*HC")


def garbled_after_the_patient(folder: Path) -> Path:
    """A remittance read with findings: right after the patient's segments, text where an
    amount belongs (the patient's name, the member id), as a shifted file would have it."""
    body = [*remits.header(), *remits.denied_claim()]
    at = next(i for i, segment in enumerate(body) if segment.startswith("NM1*IL")) + 1
    body.insert(at, f"AMT*AU*{remits.PATIENT_NAME}")
    body[body.index("CAS*CO*197*250.00")] = f"CAS*CO*197*{remits.MEMBER_ID}"
    return remits.write(folder, "garbled.835", remits.x12(body))


def broken_at_the_claim(folder: Path) -> Path:
    """A remittance with one claim that cannot be read (the member id where its charge
    belongs, a Medicare id where its payment belongs) beside one that can."""
    body = [*remits.header(), *remits.denied_claim(), *remits.denied_claim("PCN1002")]
    body[body.index("CLP*PCN1001*4*250.00*0*0*12*ICN9001*11*1")] = (
        f"CLP*PCN1001*4*{remits.MEMBER_ID}*{MEDICARE_ID}*0*12*ICN9001*11*1"
    )
    return remits.write(folder, "broken.835", remits.x12(body))


def not_x12(folder: Path) -> Path:
    """Not a remittance at all: a letter naming the patient."""
    return remits.write(folder, "letter.835", f"{remits.PATIENT_NAME} {remits.MEMBER_ID}")


MEDICARE_ID = "1EG4TE5MK72"  # an MBI-shaped value (the CMS example format)
# A quarantined claim does not fail the upload; only input that is not X12 does.
REMITTANCES = {"remit.835": 200, "garbled.835": 200, "broken.835": 200, "letter.835": 422}


def write_remittances(folder: Path) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return [
        remits.full_remittance(folder),
        garbled_after_the_patient(folder),
        broken_at_the_claim(folder),
        not_x12(folder),
    ]


def assert_no_phi(output: str) -> None:
    assert output.strip(), "nothing was logged: the scan would prove nothing"
    assert remits.PATIENT_NAME not in output
    assert remits.MEMBER_ID not in output and MEDICARE_ID not in output
    assert "PCN1001" not in output  # a claim id (patient control number) is never echoed
    assert [raw for raw in RAW_835 if raw in output] == []


def test_the_ingest_command_logs_no_patient_data(tmp_path: Path) -> None:
    folder = tmp_path / "remits"
    write_remittances(folder)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "denial_triage",
            "ingest",
            str(folder),
            "--out",
            str(tmp_path / "denials.parquet"),
        ],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "DENIAL_TRIAGE_LOG_LEVEL": "DEBUG",
            "DENIAL_TRIAGE_DATA_DIR": str(tmp_path),
        },
        timeout=300,
        check=False,
    )
    assert run.returncode == 1  # the letter fails the run; the others are written
    output = run.stdout + run.stderr
    assert "letter.835, segment 1: not an X12 file" in output
    assert "broken.835, segment 14, claim D" in output and "quarantined" in output
    assert "CLP03 (total claim charge) a value of 11 characters, letters and digits" in output
    assert (tmp_path / "denials.parquet").is_file()
    assert_no_phi(output)


@pytest.fixture(scope="module")
def service(champion_data_dir: Path):
    settings = Settings(data_dir=champion_data_dir, model_poll_seconds=3600, log_level="DEBUG")
    with TestClient(create_app(settings)) as client:
        keys = create_keys(settings.resolved_database_url, "phi-logs")
        yield client, keys


@pytest.fixture
def service_logs() -> Iterator[io.StringIO]:
    """Every log record of the service, as its JSON formatter writes it: its own loggers (which
    do not propagate) and the root logger, which the rest of the package logs through."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(name) for name in SERVICE_LOGGERS] + [logging.getLogger()]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield written
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_the_service_logs_no_patient_data(
    service, service_logs: io.StringIO, tmp_path: Path
) -> None:
    client, keys = service
    answers = []
    for remittance in write_remittances(tmp_path / "remits"):
        response = client.post(
            "/v1/ingest/835",
            files={"file": (remittance.name, remittance.read_bytes())},
            headers=auth(keys["scorer"]),
        )
        assert response.status_code == REMITTANCES[remittance.name], response.text
        answers.append(response.text)
    # The broken remittance's readable claim is scored; the other is logged as a count.
    assert len(json.loads(answers[2])["results"]) == 1
    # Answers name the file and segment, and quote nothing of the patient.
    assert "letter.835, segment 1: not an X12 file" in answers[-1]
    assert_no_phi("\n".join(answers))
    logged = service_logs.getvalue()
    assert '"request_id"' in logged and "/v1/ingest/835" in logged  # the request logs are here
    assert '"claims_quarantined": 1' in logged
    assert_no_phi(logged)
