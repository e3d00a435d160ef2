"""Outcomes linked from later remittances, recorded in the service (``denial-triage db
record-outcomes``): ended denials resolved on the worklist, each outcome once, bad rows named."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import typer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from denial_triage.commands import db
from denial_triage.settings import get_settings
from serving.database import make_engine, session_factory
from serving.outcomes import CALLER, record_outcomes
from serving.repository import audit_record, feedback_for_denial, record_scores
from serving.worklist_records import WorklistFilters, worklist_page

pytest_plugins = ["database_fixtures"]

TODAY = dt.date(2026, 6, 15)
cli = typer.Typer()
cli.add_typer(db.app, name="db")


def scored(denial_id: str) -> dict:
    return audit_record(
        request_id="r",
        denial={"denial_id": denial_id, "denied_amount": 400.0, "denial_date": "2026-05-01"},
        caller="worklist",
        model_version="1",
        mapping_version="m",
        outputs={"priority": {"score": 1.0, "deadline": "2026-09-01"}},
        explanation={},
        scored_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
    )


def history(**changes: object) -> pd.DataFrame:
    """A history as link-outcomes writes it: D-1 paid, D-2 still open, D-3 never scored."""
    frame = pd.DataFrame(
        {
            "denial_id": ["D-1", "D-2", "D-3"],
            "resolution": ["paid_after_correction", "open", "written_off"],
            "recovered_amount": [350.0, None, 0.0],
            "resolved_date": pd.to_datetime(["2026-06-10", None, "2026-06-11"]),
            "claim_id": ["C-1", "C-2", "C-3"],
        }
    )
    for column, values in changes.items():
        frame[column] = values
    return frame


def open_ids(session: Session) -> list[str]:
    rows, _ = worklist_page(session, WorklistFilters(), today=TODAY)
    return [row.denial_id for row in rows]


def test_ended_outcomes_resolve_scored_denials_once(session: Session) -> None:
    record_scores(session, [scored("D-1"), scored("D-2")])
    report = record_outcomes(session, history())
    assert (report.recorded, report.already_recorded, report.not_scored) == (1, 0, 1)
    assert open_ids(session) == ["D-2"]
    (stored,) = feedback_for_denial(session, "D-1")
    assert (stored.caller, stored.resolution, stored.recovered_amount) == (
        CALLER,
        "paid_after_correction",
        350.0,
    )
    assert stored.resolved_date == dt.date(2026, 6, 10)
    again = record_outcomes(session, history())
    assert (again.recorded, again.already_recorded) == (0, 1)


def test_a_bad_outcome_is_named_and_nothing_is_recorded(session: Session) -> None:
    record_scores(session, [scored("D-1"), scored("D-3")])
    report = record_outcomes(session, history(recovered_amount=[350.0, None, 12.0]))
    assert report.recorded == 0
    assert len(report.problems) == 1 and report.problems[0].startswith("row 3, recovered_amount")
    assert open_ids(session) == ["D-1", "D-3"]


@pytest.fixture
def configured(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DENIAL_TRIAGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_the_command_records_a_history_file_and_fails_on_a_bad_one(
    configured: str, tmp_path: Path
) -> None:
    engine = make_engine(configured)
    with session_factory(engine)() as session:
        record_scores(session, [scored("D-1")])
    path = tmp_path / "history.parquet"
    history().to_parquet(path)
    result = CliRunner().invoke(cli, ["db", "record-outcomes", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 outcomes recorded, 0 already recorded; skipped 1 of denials" in result.output
    bad = tmp_path / "bad.csv"
    history(resolution=["paid_after_correction", "open", "won"]).to_csv(bad, index=False)
    result = CliRunner().invoke(cli, ["db", "record-outcomes", str(bad)])
    assert result.exit_code == 1 and "row 3, resolution" in result.output
    with session_factory(engine)() as session:
        assert open_ids(session) == []
    engine.dispose()
