"""The worklist over HTTP: ``GET /v1/worklist``, assignment and status routes with their roles
and refusals, an outcome recorded through ``POST /v1/feedback`` resolving a denial, and the
pages' bulk form and CSV export (signed in, with the session's CSRF token)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from database_fixtures import auth, create_keys
from fastapi.testclient import TestClient
from sqlalchemy import select

from denial_triage.settings import Settings
from serving import live
from serving.app import create_app
from serving.database import make_engine, session_factory
from serving.records import WorklistEvent
from serving.repository import audit_record, record_scores

pytest_plugins = ["database_fixtures"]

TODAY = live.today()  # the service's day


@dataclass(frozen=True)
class Desk:
    client: TestClient
    keys: dict[str, str]
    database_url: str

    def get(self, path: str, role: str = "reviewer", **params: Any) -> Any:
        return self.client.get(path, params=params, headers=auth(self.keys[role]))

    def post(self, path: str, body: dict[str, Any], role: str = "reviewer") -> Any:
        return self.client.post(path, json=body, headers=auth(self.keys[role]))


def scored(
    denial_id: str, priority: float, claim_id: str, deadline_days: int, **facts: Any
) -> dict[str, Any]:
    deadline = TODAY + dt.timedelta(days=deadline_days)
    return audit_record(
        request_id="r",
        denial={
            "denial_id": denial_id,
            "claim_id": claim_id,
            "payer_id": "87726",
            "denied_amount": 300.0,
            "denial_date": TODAY - dt.timedelta(days=20),
            **facts,
        },
        caller="worklist",
        model_version="3",
        mapping_version="m",
        outputs={
            "root_cause": {"category": "coding", "probability": 0.9},
            "recovery": {"probability": 0.5, "expected_recovered_dollars": priority},
            "priority": {"score": priority, "deadline": deadline.isoformat()},
            "routing": {"owner_queue": "coding", "action_path": "correct_and_resubmit"},
            "requires_human_review": False,
            "review_reasons": [],
        },
        explanation={},
        scored_at=dt.datetime(2026, 9, 1, tzinfo=dt.UTC),
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worklist-api")


@pytest.fixture
def desk(database_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    """The service (no model needed: the worklist reads the records) with three denials. Its
    day is held at the day the denials were dated from: a run that crosses midnight failed
    when the service's day moved on and the expected days to deadline did not."""
    monkeypatch.setattr(live, "today", lambda: TODAY)
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        model_poll_seconds=3600,
        audit_worker_process=False,
    )
    with TestClient(create_app(settings)) as client:
        # Scored once the service started: claim ids are keyed with the site's key it set.
        engine = make_engine(database_url)
        with session_factory(engine)() as session:
            record_scores(
                session,
                [
                    scored("D-1", 30.0, "C-1", 40, carc_codes=["CO-197"], procedure_code="27447"),
                    scored("D-2", 20.0, "C-2", -5, carc_codes=["CO-197"], procedure_code="71046"),
                ],
            )
            recent = {"denial_date": TODAY - dt.timedelta(days=5), "procedure_code": "27130"}
            record_scores(session, [scored("D-3", 10.0, "C-2", 3, carc_codes=["CO-16"], **recent)])
        engine.dispose()
        yield Desk(client, create_keys(database_url, "desk"), database_url)


def listed(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["denial_id"] for item in response.json()["items"]]


def test_the_worklist_is_read_sorted_and_searched_with_live_days(desk: Desk) -> None:
    page = desk.get("/v1/worklist")
    assert page.json()["as_of"] == TODAY.isoformat() and page.json()["total"] == 3
    # D-2 scored above D-3, but its only deadline passed 5 days ago: write-off review, last.
    assert listed(page) == ["D-1", "D-3", "D-2"]
    days = {item["denial_id"]: item["days_to_deadline"] for item in page.json()["items"]}
    assert days == {"D-1": 40, "D-2": -5, "D-3": 3}  # counted today, from the stored deadline
    workable = {item["denial_id"]: item["workable"] for item in page.json()["items"]}
    assert workable == {"D-1": True, "D-2": False, "D-3": True}
    assert listed(desk.get("/v1/worklist", workable="false")) == ["D-2"]
    assert listed(desk.get("/v1/worklist", workable="true")) == ["D-1", "D-3"]
    assert listed(desk.get("/v1/worklist", sort="deadline", order="asc")) == ["D-2", "D-3", "D-1"]
    assert listed(desk.get("/v1/worklist", q="C-2")) == ["D-3", "D-2"]  # a claim's denials
    assert listed(desk.get("/v1/worklist", q="D-3")) == ["D-3"]
    # What a payer alert narrows to: its code, its procedure family, from its start.
    assert listed(desk.get("/v1/worklist", carc="CO-197")) == ["D-1", "D-2"]
    assert listed(desk.get("/v1/worklist", procedure_family="surgery")) == ["D-1", "D-3"]
    recent = (TODAY - dt.timedelta(days=10)).isoformat()
    assert listed(desk.get("/v1/worklist", denied_from=recent)) == ["D-3"]
    assert desk.get("/v1/worklist", procedure_family="knees").status_code == 422
    assert desk.get("/v1/worklist", role="scorer").status_code == 403
    assert desk.get("/v1/worklist", sort="claim_id").status_code == 422


def test_assignment_and_status_over_the_api_are_audited(desk: Desk) -> None:
    body = {"denial_ids": ["D-2", "D-3"], "assignee": "desk-reviewer"}
    answer = desk.post("/v1/worklist/assignment", body, role="admin")
    assert answer.status_code == 200, answer.text
    assert answer.json()["changes"] == [
        {"denial_id": "D-2", "status": "open", "assignee": "desk-reviewer"},
        {"denial_id": "D-3", "status": "open", "assignee": "desk-reviewer"},
    ]
    answer = desk.post("/v1/worklist/status", {"denial_ids": ["D-2"], "status": "in_progress"})
    assert answer.json()["changes"][0]["status"] == "in_progress"
    assert listed(desk.get("/v1/worklist", assignee="desk-reviewer")) == ["D-3", "D-2"]
    assert listed(desk.get("/v1/worklist", status="in_progress")) == ["D-2"]
    assert listed(desk.get("/v1/worklist", assignee="unassigned")) == ["D-1"]
    unassigned = desk.post("/v1/worklist/assignment", {"denial_ids": ["D-3"], "assignee": None})
    assert unassigned.json()["changes"][0]["assignee"] is None
    missing = desk.post(
        "/v1/worklist/assignment", {"denial_ids": ["D-1", "D-404"], "assignee": "desk-reviewer"}
    )
    assert missing.status_code == 404 and "D-404" in missing.text
    stranger = desk.post(
        "/v1/worklist/assignment", {"denial_ids": ["D-1"], "assignee": "desk-scorer"}
    )
    assert stranger.status_code == 422
    assert stranger.json()["detail"][0]["loc"] == ["body", "assignee"]
    resolved = desk.post("/v1/worklist/status", {"denial_ids": ["D-1"], "status": "resolved"})
    assert resolved.status_code == 422
    scorer = desk.post("/v1/worklist/status", {"denial_ids": ["D-1"], "status": "open"}, "scorer")
    assert scorer.status_code == 403
    engine = make_engine(desk.database_url)
    with session_factory(engine)() as session:
        events = session.scalars(select(WorklistEvent).order_by(WorklistEvent.id)).all()
    engine.dispose()
    assert [(e.denial_id, e.action, e.actor) for e in events] == [
        ("D-2", "assign", "desk-admin"),
        ("D-3", "assign", "desk-admin"),
        ("D-2", "status", "desk-reviewer"),
        ("D-3", "unassign", "desk-reviewer"),
    ]
    assert listed(desk.get("/v1/worklist", assignee="unassigned")) == ["D-1", "D-3"]


def test_an_outcome_recorded_as_feedback_resolves_the_denial(desk: Desk) -> None:
    body = {"idempotency_key": "fb-1", "denial_id": "D-1", "resolution": "written_off"}
    assert desk.post("/v1/feedback", body).status_code == 201
    assert listed(desk.get("/v1/worklist")) == ["D-3", "D-2"]
    assert listed(desk.get("/v1/worklist", status="resolved")) == ["D-1"]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def signed_in(desk: Desk) -> str:
    """Sign the client in with the reviewer key; returns the worklist page's HTML."""
    login = desk.client.get("/ui/login").text
    form = {"api_key": desk.keys["reviewer"], "next": "", "csrf": csrf_of(login)}
    desk.client.post("/ui/login", data=form)
    return desk.client.get("/ui/worklist").text


def test_the_pages_bulk_form_needs_its_token_and_the_export_follows_the_filters(
    desk: Desk,
) -> None:
    page = signed_in(desk)
    change = {
        "action": "assign",
        "assignee": "desk-reviewer",
        "denial_id": ["D-1", "D-3"],
        "next": "/ui/worklist?sort=deadline",
    }
    forged = desk.client.post("/ui/worklist/changes", data={**change, "csrf": "forged"})
    assert forged.status_code == 403
    done = desk.client.post(
        "/ui/worklist/changes", data={**change, "csrf": csrf_of(page)}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].startswith(
        "/ui/worklist?sort=deadline&done=assign&changed=2"
    )
    assert "2 denials assigned." in desk.client.get(done.headers["location"]).text
    refused = desk.client.post(
        "/ui/worklist/changes",
        data={**change, "denial_id": ["D-404"], "csrf": csrf_of(page)},
    )
    assert refused.status_code == 422 and "never scored" in refused.text
    export = desk.client.get("/ui/worklist.csv", params={"assignee": "desk-reviewer"})
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(row["denial_id"], row["assignee"]) for row in rows] == [
        ("D-1", "desk-reviewer"),
        ("D-3", "desk-reviewer"),
    ]
    assert "C-1" not in export.text and "C-2" not in export.text
    write_offs = desk.client.get("/ui/worklist", params={"workable": "false"}).text
    assert re.findall(r'name="denial_id" value="([^"]+)"', write_offs) == ["D-2"]
    assert 'class="badge write-off"' in write_offs and "write-off review</span>" in write_offs
    everything = desk.client.get("/ui/worklist").text
    assert everything.count('class="badge write-off"') == 1
