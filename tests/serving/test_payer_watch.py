"""Payer behaviour alerts from the service's records: the page lists them, the gauges count
them, ``monitor payers`` prints them, and the worklist link lists the denials an alert counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd
import pytest
from database_fixtures import create_keys
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from denial_triage.cli import app
from denial_triage.settings import Settings, get_settings
from serving import metrics, payer_watch, views
from serving.app import create_app
from serving.repository import audit_record, record_scores, save_feedback
from serving.worklist_records import WorklistFilters, worklist_page
from training.payer_alerts import OVERTURN

pytest_plugins = ["database_fixtures"]

FIRST_DAY = dt.date(2025, 1, 1)
DAYS, ONSET = 460, 430
OUTPUTS = {
    "root_cause": {"category": "authorization_referral", "probability": 0.7},
    "recovery": {"probability": 0.4, "expected_recovered_dollars": 80.0},
    "preventable": {"probability": 0.6, "prevention_owner": "patient_access"},
    "priority": {"score": 10.0, "deadline": "2026-03-01", "deadline_rule": "x"},
    "routing": {"owner_queue": "utilization_management", "action_path": "authorization_evidence"},
    "requires_human_review": False,
}


def stepped_denials(seed: int = 1) -> list[dict]:
    """One payer's denials: office visits with CO-16 at 4 a day, and surgery with CO-197 at
    half a denial a day until day 430, four times that from then on."""
    rng = np.random.default_rng(seed)
    rows = []
    for carc, procedure, rate in (("CO-16", "99213", 4.0), ("CO-197", "27447", 0.5)):
        per_day = np.full(DAYS, rate)
        if carc == "CO-197":
            per_day[ONSET:] *= 4
        for day in np.repeat(np.arange(DAYS), rng.poisson(per_day)):
            rows.append(
                {
                    "denial_id": f"D-{len(rows):05d}",
                    "claim_id": "C-SECRET",
                    "payer_id": "87726",
                    "payer_name": "Acme Health",
                    "carc_codes": [carc],
                    "rarc_codes": ["N54"],
                    "procedure_code": procedure,
                    "denied_amount": 100.0,
                    "denial_date": FIRST_DAY + dt.timedelta(days=int(day)),
                }
            )
    return rows


def record_denials(session: Session, denials: list[dict]) -> None:
    scored_at = dt.datetime(2026, 4, 10, tzinfo=dt.UTC)
    records = [
        audit_record(
            request_id="r",
            denial=denial,
            caller="worklist",
            model_version="1",
            mapping_version="m",
            outputs=OUTPUTS,
            explanation={},
            scored_at=scored_at,
        )
        for denial in denials
    ]
    record_scores(session, records)
    session.commit()


@pytest.fixture
def recorded(session: Session) -> Session:
    record_denials(session, stepped_denials())
    return session


def test_open_alerts_name_the_payer_code_family_and_start(recorded: Session) -> None:
    alerts = payer_watch.open_alerts(recorded)
    assert [(a.payer_id, a.payer_name, a.carc, a.procedure_family) for a in alerts] == [
        ("87726", "Acme Health", "CO-197", "surgery")
    ]
    onset = FIRST_DAY + dt.timedelta(days=ONSET)
    assert abs((alerts[0].start_date - onset).days) <= 7
    payer_watch.set_gauges(alerts)
    assert metrics.PAYER_ALERTS_OPEN._value.get() == 1
    assert metrics.PAYER_ALERT_DENIALS._value.get() == alerts[0].denials_affected


def test_the_alerts_link_lists_the_denials_it_counts_as_affected(session: Session) -> None:
    """Beside the stepped surgery cell, the payer denies X-rays with the same code, steadily:
    the link lists the cell's denials from the alert's start on, not the payer's whole code."""
    rng = np.random.default_rng(5)
    stepped = stepped_denials()
    xrays = [
        {**stepped[0], "denial_id": f"X-{i:04d}", "carc_codes": ["CO-197"]}
        | {"procedure_code": "71046", "denial_date": FIRST_DAY + dt.timedelta(days=int(day))}
        for i, day in enumerate(np.repeat(np.arange(DAYS), rng.poisson(np.full(DAYS, 1.0))))
    ]
    record_denials(session, stepped + xrays)
    (alert,) = payer_watch.open_alerts(session)
    query = views.worklist_query(dict(parse_qsl(urlsplit(alert.worklist_link).query)))
    assert query.problems == ()
    rows, total = worklist_page(session, query.filters, today=dt.date(2026, 4, 10), limit=500)
    assert total == alert.denials_affected
    assert {row.denial_id for row in rows} == {
        d["denial_id"]
        for d in stepped
        if d["carc_codes"] == ["CO-197"] and d["denial_date"] >= alert.start_date
    }
    payer_and_code = WorklistFilters(payer_id="87726", primary_code="CO-197", status="any")
    everything = worklist_page(session, payer_and_code, today=dt.date(2026, 4, 10))[1]
    assert everything == sum(d["carc_codes"] == ["CO-197"] for d in stepped) + len(xrays)


def test_a_steady_history_has_no_open_alerts(session: Session) -> None:
    steady = [d for d in stepped_denials() if d["carc_codes"] == ["CO-16"]]
    record_denials(session, steady)
    assert payer_watch.open_alerts(session) == []


def test_outcomes_recorded_through_feedback_feed_the_overturn_test(session: Session) -> None:
    """Surgery denied with CO-197 at 2 a day throughout, each outcome known 5 to 25 days after
    its denial; from day 430 the payer upholds: outcomes resolved since are won 15% of the
    time, 60% before. The volume is steady, so only the overturn test speaks, and the alert is
    open: raised on the days the outcomes arrived, not on their denials' dates."""
    rng = np.random.default_rng(3)
    denials = [d for d in stepped_denials() if d["carc_codes"] == ["CO-16"]]
    surgery = np.repeat(np.arange(DAYS), rng.poisson(2.0, DAYS))
    for day in surgery:
        denials.append(
            {
                **denials[0],
                "denial_id": f"S-{len(denials):05d}",
                "carc_codes": ["CO-197"],
                "procedure_code": "27447",
                "denial_date": FIRST_DAY + dt.timedelta(days=int(day)),
            }
        )
    record_denials(session, denials)
    resolved = surgery + rng.integers(5, 26, len(surgery))
    for denial, day in zip(denials[-len(surgery) :], resolved, strict=True):
        if day >= DAYS:
            continue  # not known yet on the newest denial's day
        share = 0.15 if day >= ONSET else 0.6
        body = {
            "denial_id": denial["denial_id"],
            "resolution": "overturned_on_appeal" if rng.random() < share else "written_off",
            "resolved_date": FIRST_DAY + dt.timedelta(days=int(day)),
        }
        save_feedback(session, f"outcome-{denial['denial_id']}", body, "reviewer")
    alerts = payer_watch.open_alerts(session)
    assert [(a.carc, a.procedure_family, a.kind) for a in alerts] == [
        ("CO-197", "surgery", OVERTURN)
    ]
    onset = FIRST_DAY + dt.timedelta(days=ONSET)
    assert abs((alerts[0].start_date - onset).days) <= 7, alerts[0].start_date
    assert alerts[0].recovered_before == pytest.approx(0.6, abs=0.05)
    assert alerts[0].recovered_after == pytest.approx(0.15, abs=0.1)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'records.db'}",
        model_poll_seconds=3600,
    )
    with TestClient(create_app(settings)) as client:
        yield client, create_keys(settings.resolved_database_url, "payers")


def test_the_payers_page_lists_an_alert_with_its_worklist_link(site, tmp_path: Path) -> None:
    from sqlalchemy.orm import Session as OrmSession

    from serving.database import make_engine

    client, keys = site
    engine = make_engine(f"sqlite:///{tmp_path / 'records.db'}")
    with OrmSession(engine) as session:
        record_denials(session, stepped_denials())
    engine.dispose()
    login = client.get("/ui/login").text
    csrf = login.split('name="csrf" value="')[1].split('"')[0]
    client.post("/ui/login", data={"api_key": keys["reviewer"], "next": "", "csrf": csrf})
    page = client.get("/ui/payers")
    assert page.status_code == 200
    assert "1 open payer alerts." in page.text
    assert "Acme Health" in page.text and "CO-197" in page.text and "Surgery" in page.text
    assert '<td data-label="Change">Denials up</td>' in page.text
    link = "/ui/worklist?payer_id=87726&amp;carc=CO-197&amp;procedure_family=surgery&amp;"
    assert f'href="{link}denied_from=2026-' in page.text
    assert 'href="/ui/payers" aria-current="page"' in page.text
    assert "C-SECRET" not in page.text
    scrape = client.get("/metrics", headers={"Authorization": f"Bearer {keys['admin']}"})
    assert "denial_triage_payer_alerts_open 1.0" in scrape.text


# ---------------------------------------------------------------------------- the command


def test_monitor_payers_prints_the_alerts_from_the_records(
    recorded: Session, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["monitor", "payers", "--since", "2026-02-01"])
        as_json = CliRunner().invoke(app, ["monitor", "payers", "--since", "2026-02-01", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "1 payer behaviour alerts raised since 2026-02-01" in result.output
    assert "Acme Health (87726): CO-197 with N54 on Surgery: denials up, from" in result.output
    link = "/ui/worklist?payer_id=87726&carc=CO-197&procedure_family=surgery&denied_from=2026-"
    assert f"worklist: {link}" in result.output
    assert as_json.exit_code == 0, as_json.output
    assert '"procedure_family": "surgery"' in as_json.output
    assert '"kind": "denials_up"' in as_json.output


def test_monitor_payers_reads_a_history_file(tmp_path: Path) -> None:
    frame = pd.DataFrame(stepped_denials()).drop(columns=["payer_name"])
    frame["carc_codes"] = frame["carc_codes"].str.join("|")
    frame["rarc_codes"] = frame["rarc_codes"].str.join("|")
    path = tmp_path / "history.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(
        app, ["monitor", "payers", "--data", str(path), "--since", "2026-02-01"]
    )
    assert result.exit_code == 0, result.output
    assert "87726: CO-197 with N54 on Surgery" in result.output
    quiet = CliRunner().invoke(
        app, ["monitor", "payers", "--data", str(path), "--since", "2026-03-30"]
    )
    assert quiet.exit_code == 0 and "no payer behaviour alerts raised since 2026-03-30" in (
        quiet.output
    )


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "missing.parquet", "no such file"),
        ("a,b\n1,2\n", "other.csv", "no column payer_id, carc_codes, procedure_code, denial_date"),
        ("x", "notes.txt", "unknown extension"),
    ],
)
def test_monitor_payers_refuses_bad_input_with_a_clear_message(
    tmp_path: Path, content: str | None, name: str, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(app, ["monitor", "payers", "--data", str(path)])
    assert result.exit_code == 1
    assert message in result.output


def test_monitor_payers_refuses_a_date_that_is_not_a_date() -> None:
    result = CliRunner().invoke(app, ["monitor", "payers", "--since", "last week"])
    assert result.exit_code == 2
    assert "--since" in result.output
