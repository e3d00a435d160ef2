"""The reviewers' and leaders' pages through the app, without a browser: sign-in, sessions,
every page's content, filters and paging, and feedback stored once."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import numpy as np
import pytest
from database_fixtures import auth, create_keys
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from denial_triage.settings import Settings
from features.contract import ROOT_CAUSES
from features.mapping import ACTION_PATHS, load_mapping
from serving import pages
from serving.app import create_app
from serving.database import make_engine, session_factory
from serving.records import Feedback, PageSession, ScoreRecord
from serving.repository import audit_record, hash_key, record_scores, revoke_api_key

if TYPE_CHECKING:
    from page_fixtures import PagesRegistry

pytest_plugins = ["page_fixtures"]

PAGES = ("/ui/worklist", "/ui/to-label", "/ui/dashboard", "/ui/model")
SESSION_ID = pages.SESSION_ID


@dataclass(frozen=True)
class Site:
    client: TestClient
    keys: dict[str, str]
    settings: Settings
    denials: list[dict]


@pytest.fixture(scope="module")
def site(
    pages_registry: PagesRegistry,
    page_denials: list[dict],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    """The app over the shared registry, a database of its own, and scored recent denials."""
    database = tmp_path_factory.mktemp("pages-db") / "records.db"
    settings = Settings(
        data_dir=pages_registry.data_dir,
        database_url=f"sqlite:///{database}",
        model_poll_seconds=3600,
    )
    denials = page_denials
    with TestClient(create_app(settings)) as client:
        keys = create_keys(settings.resolved_database_url, "pages")
        response = client.post("/v1/score", json={"denials": denials}, headers=auth(keys["scorer"]))
        assert response.status_code == 200, response.text
        client.app.state.service.flush_audit()  # pages do not wait for a scorer's records
        yield Site(client, keys, settings, denials)


@pytest.fixture
def reviewer(site: Site) -> Iterator[TestClient]:
    """The site's client signed in with the reviewer key; signed out afterwards."""
    sign_in(site.client, site.keys["reviewer"])
    yield site.client
    site.client.cookies.clear()


def sign_in(client: TestClient, key: str, wanted: str = "") -> object:
    """Sign in as a browser does: the form first, then its post with the form's token."""
    form = {"api_key": key, "next": wanted, "csrf": csrf_of(client.get("/ui/login").text)}
    return client.post("/ui/login", data=form, follow_redirects=False)


def cookie_document(client: TestClient) -> dict:
    """What the signed session cookie carries (its first part is base64 JSON)."""
    value = client.cookies[pages.SESSION_COOKIE]
    return json.loads(base64.b64decode(value.split(".")[0] + "=="))


def stored(site: Site, model, **where) -> list:
    engine = make_engine(site.settings.resolved_database_url)
    try:
        with session_factory(engine)() as session:
            query = select(model).filter_by(**where)
            return list(session.scalars(query))
    finally:
        engine.dispose()


def worklist_ids(html: str) -> list[str]:
    return re.findall(r'<a href="/ui/denials/([^"]+)">', html)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


# ---------------------------------------------------------------------------- signing in


@pytest.mark.parametrize("path", [*PAGES, "/ui/denials/D-1", "/ui/model/1/figures/calibration.png"])
def test_pages_redirect_to_sign_in_without_a_session(site: Site, path: str) -> None:
    site.client.cookies.clear()
    response = site.client.get(path, follow_redirects=False)
    assert response.status_code == 303
    wanted = "" if path == pages.HOME else "?" + urlencode({"next": path})
    assert response.headers["location"] == f"/ui/login{wanted}"


def test_sign_in_refuses_scorer_and_bad_keys(site: Site) -> None:
    site.client.cookies.clear()
    scorer = sign_in(site.client, site.keys["scorer"])
    assert scorer.status_code == 403 and "cannot open these pages" in scorer.text
    assert sign_in(site.client, "dt_00000000_nonsense").status_code == 401
    assert sign_in(site.client, "").status_code == 401
    assert SESSION_ID not in cookie_document(site.client)  # no session was opened
    assert site.client.get("/ui/worklist", follow_redirects=False).status_code == 303


def test_sign_in_needs_the_token_of_a_form_this_site_served(site: Site) -> None:
    """Login CSRF: another site's form could otherwise sign a browser in under its own key."""
    site.client.cookies.clear()
    forged = {"api_key": site.keys["reviewer"], "next": ""}
    refused = site.client.post("/ui/login", data=forged, follow_redirects=False)
    assert refused.status_code == 403 and "stale or was not sent from these pages" in refused.text
    site.client.get("/ui/login")  # a real form's cookie, but another token in the post
    wrong = site.client.post("/ui/login", data={**forged, "csrf": "guessed"})
    assert wrong.status_code == 403
    assert site.client.get("/ui/worklist", follow_redirects=False).status_code == 303
    assert sign_in(site.client, site.keys["reviewer"]).status_code == 303
    site.client.cookies.clear()


def test_sign_in_sets_a_guarded_cookie_and_returns_to_the_page_asked_for(site: Site) -> None:
    response = sign_in(site.client, site.keys["admin"], wanted="/ui/dashboard")
    assert response.status_code == 303 and response.headers["location"] == "/ui/dashboard"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/ui" in cookie
    site.client.cookies.clear()


def test_the_cookie_holds_only_the_session_id_and_the_database_only_its_hash(site: Site) -> None:
    site.client.cookies.clear()
    sign_in(site.client, site.keys["admin"])
    document = cookie_document(site.client)
    assert list(document) == [SESSION_ID]  # the sign-in token is spent
    session_id = document[SESSION_ID]
    assert hash_key(site.keys["admin"]) not in json.dumps(document)  # once the cookie's value
    assert site.keys["admin"] not in json.dumps(document)
    rows = stored(site, PageSession, session_hash=hash_key(session_id))
    assert len(rows) == 1 and rows[0].ended_at is None
    assert not stored(site, PageSession, session_hash=session_id)
    site.client.cookies.clear()


@pytest.mark.parametrize("wanted", ["https://elsewhere.example/", "//elsewhere.example", "/v1/x"])
def test_sign_in_never_sends_the_browser_elsewhere(site: Site, wanted: str) -> None:
    response = sign_in(site.client, site.keys["reviewer"], wanted=wanted)
    assert response.headers["location"] == "/ui/worklist"
    site.client.cookies.clear()


def test_a_revoked_key_loses_its_session_at_the_next_page(site: Site) -> None:
    from database_fixtures import create_keys as new_keys

    keys = new_keys(site.settings.resolved_database_url, "revoked")
    sign_in(site.client, keys["reviewer"])
    assert site.client.get("/ui/worklist").status_code == 200
    engine = make_engine(site.settings.resolved_database_url)
    with session_factory(engine)() as session:
        revoke_api_key(session, "revoked-reviewer")
    engine.dispose()
    assert site.client.get("/ui/worklist", follow_redirects=False).status_code == 303
    site.client.cookies.clear()


def test_sign_out_needs_the_session_token_and_ends_the_session(reviewer: TestClient) -> None:
    page = reviewer.get("/ui/worklist").text
    assert reviewer.post("/ui/logout", data={"csrf": "forged"}).status_code == 403
    response = reviewer.post("/ui/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert response.status_code == 303
    assert reviewer.get("/ui/worklist", follow_redirects=False).status_code == 303


def test_a_cookie_kept_from_before_sign_out_opens_nothing(site: Site, reviewer) -> None:
    """It opened pages and posted feedback for up to 8 hours after sign-out."""
    denial_id = site.denials[4]["denial_id"]
    page = reviewer.get(f"/ui/denials/{denial_id}").text
    kept = reviewer.cookies[pages.SESSION_COOKIE]
    reviewer.post("/ui/logout", data={"csrf": csrf_of(page)})
    reviewer.cookies.set(pages.SESSION_COOKIE, kept, path="/ui")
    assert reviewer.get("/ui/worklist", follow_redirects=False).status_code == 303
    reviewer.cookies.set(pages.SESSION_COOKIE, kept, path="/ui")
    form = feedback_form(page, verdict="confirm")
    posted = reviewer.post(f"/ui/denials/{denial_id}/feedback", data=form, follow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"].startswith("/ui/login")
    assert stored(site, Feedback, denial_id=denial_id) == []


def test_a_session_ends_when_its_eight_hours_pass(site: Site, reviewer) -> None:
    session_id = cookie_document(reviewer)[SESSION_ID]
    engine = make_engine(site.settings.resolved_database_url)
    with session_factory(engine)() as session:
        row = session.scalars(select(PageSession).filter_by(session_hash=hash_key(session_id)))
        opened = row.one()
        assert opened.expires_at - opened.created_at == dt.timedelta(hours=pages.SESSION_HOURS)
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        session.execute(update(PageSession).filter_by(id=opened.id).values(expires_at=past))
        session.commit()
    engine.dispose()
    assert reviewer.get("/ui/worklist", follow_redirects=False).status_code == 303


def test_the_session_secret_is_generated_once_and_shared(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = pages.session_secret(settings)
    assert pages.session_secret(Settings(data_dir=tmp_path)) == first
    path = tmp_path / "session-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    chosen = "s" * 40
    assert pages.session_secret(Settings(data_dir=tmp_path, session_secret=chosen)) == chosen


# ---------------------------------------------------------------------------- pages


def test_worklist_ranks_scored_denials_with_their_row_details(site: Site, reviewer) -> None:
    response = reviewer.get("/ui/worklist")
    assert response.status_code == 200
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert f"of {len(site.denials)} denials" in response.text
    ids = worklist_ids(response.text)
    assert len(ids) == 50
    records = {r.denial_id: r for r in stored(site, ScoreRecord)}
    priorities = [records[i].outputs["priority"]["score"] for i in ids]
    assert priorities == sorted(priorities, reverse=True)
    assert ">needs review<" in response.text and "$" in response.text


def test_worklist_filters_and_pages(site: Site, reviewer) -> None:
    records = stored(site, ScoreRecord)
    cause = records[0].outputs["root_cause"]["category"]
    expected = {r.denial_id for r in records if r.outputs["root_cause"]["category"] == cause}
    page = reviewer.get("/ui/worklist", params={"root_cause": cause, "size": 200}).text
    assert set(worklist_ids(page)) == expected
    queue = records[0].outputs["routing"]["owner_queue"]
    payer = records[0].facts["payer_id"]
    narrowed = reviewer.get("/ui/worklist", params={"owner_queue": queue, "payer_id": payer})
    assert records[0].denial_id in worklist_ids(narrowed.text)
    second = reviewer.get("/ui/worklist", params={"size": 25, "page": 2}).text
    first_fifty = worklist_ids(reviewer.get("/ui/worklist").text)
    assert worklist_ids(second) == first_fifty[25:50]
    assert "Showing 26\N{EN DASH}50 of" in second and 'rel="prev"' in second


def test_deadline_filter_keeps_denials_due_within_the_days(site: Site, reviewer) -> None:
    page = reviewer.get("/ui/worklist", params={"due_within": 30, "size": 200}).text
    shown = worklist_ids(page)
    assert shown, "the recent denials should have deadlines in the next 30 days"
    days = re.findall(r'data-label="Days to deadline" class="number[^"]*">\s*(\w+)', page)
    assert all(day.isdigit() and int(day) <= 30 for day in days)


def test_worklist_names_and_ignores_nonsense_filters(reviewer) -> None:
    page = reviewer.get("/ui/worklist", params={"due_within": "soon", "root_cause": "x"}).text
    assert "due_within must be a whole number" in page and "unknown root cause" in page


def to_label_rows(html: str) -> list[tuple[str, str]]:
    """(denial id, reason) of each row of the "to label" view, in rank order."""
    return re.findall(
        r'<a href="/ui/denials/([^"#]+)#feedback">.*?class="reason">([^<]*)</td>', html, re.S
    )


def stored_margin(record: ScoreRecord) -> float:
    top = sorted(record.outputs["root_cause"]["probabilities"].values(), reverse=True)
    return top[0] - top[1]


def test_to_label_ranks_unreviewed_denials_with_reasons_and_review_links(
    site: Site, reviewer
) -> None:
    page = reviewer.get("/ui/to-label", params={"size": 25})
    assert page.status_code == 200 and 'aria-current="page">To label<' in page.text
    rows = to_label_rows(page.text)
    assert len(rows) == 25 and len({i for i, _ in rows}) == 25
    records = {r.denial_id: r for r in stored(site, ScoreRecord)}
    reviewed = {f.denial_id for f in stored(site, Feedback) if f.corrected_root_cause}
    assert all(i in records and i not in reviewed for i, _ in rows)
    uncertain = [records[i] for i, why in rows if why.startswith("root cause uncertain")]
    # Uncertain picks sit among the champion's smallest margins between its two likeliest causes.
    median = np.median([stored_margin(r) for r in records.values()])
    assert uncertain and np.median([stored_margin(r) for r in uncertain]) < median / 2
    first_of = [why.split("first of payer ")[1] for _, why in rows if "first of payer" in why]
    assert first_of and len(set(first_of)) == len(first_of)  # spread: each stratum once


def test_a_reviewed_denial_leaves_the_to_label_view(site: Site, reviewer) -> None:
    top, _ = to_label_rows(reviewer.get("/ui/to-label").text)[0]
    review = reviewer.get(f"/ui/denials/{top}").text
    form = feedback_form(review, verdict="correct", corrected_root_cause="coding")
    assert reviewer.post(f"/ui/denials/{top}/feedback", data=form).status_code == 200
    after = reviewer.get("/ui/to-label", params={"size": 200}).text
    assert top not in [i for i, _ in to_label_rows(after)]
    assert "size must be a whole number" in reviewer.get("/ui/to-label?size=all").text


def test_denial_review_shows_codes_models_charts_and_the_form(site: Site, reviewer) -> None:
    denial = site.denials[0]
    page = reviewer.get(f"/ui/denials/{denial['denial_id']}").text
    assert denial["carc_codes"][0] in page
    for task in ("root_cause", "recovery", "preventable"):
        section = page.split(f'id="explanation-{task}"')[1].split("</section>")[0]
        assert "<svg" in section and "<li>" in section
    assert 'name="idempotency_key" value="ui-' in page
    assert "Human review required" in page or "No human review required" in page
    assert reviewer.get("/ui/denials/never-scored").status_code == 404


def test_explanations_read_in_points_of_the_headline_and_plain_labels(site: Site, reviewer) -> None:
    identifiers = [*ROOT_CAUSES, *ACTION_PATHS, *load_mapping().owner_queues]
    for denial in site.denials[:10]:
        page = reviewer.get(f"/ui/denials/{denial['denial_id']}").text
        root = page.split('id="explanation-root_cause"')[1].split("</section>")[0]
        headline = float(re.search(r"</strong>, (\d+)%", root).group(1))
        caption = re.search(r"to this denial's ([\d.]+)%", root)
        assert abs(float(caption.group(1)) - headline) <= 0.5  # the chart ends at the headline
        for task in ("root_cause", "recovery", "preventable"):
            section = page.split(f'id="explanation-{task}"')[1].split("</section>")[0]
            reasons = re.findall(r"<li>([^<]+)</li>", section)
            assert reasons and all(re.search(r" by \d+\.\d points$", r) for r in reasons)
            assert "log-odds" not in section
        # Text a reviewer reads (not the form's option values) quotes no identifier as it is.
        text = re.sub(r"<[^>]+>", " ", page.split('id="feedback"')[0])
        assert not [name for name in identifiers if "_" in name and name in text]
        assert not re.search(r"\b[a-z_]+\.(timely_filing|appeal)\b", text)


def test_dashboard_shows_volumes_dollars_deadlines_prevention_and_outcomes(reviewer) -> None:
    page = reviewer.get("/ui/dashboard").text
    for heading in (
        "Denials by root cause and month",
        "Denials by payer and month",
        "Denials by code family and month",
        "Aging of open denials",
        "Appeal and filing deadlines",
        "Preventable share by upstream owner",
        "Recovery outcomes recorded by reviewers",
    ):
        assert heading in page
    assert "deadlines in the next 7 days" in page and "denied dollars at risk" in page
    assert page.count("<svg") >= 5


def test_model_page_shows_champion_challenger_metrics_and_figures(reviewer) -> None:
    page = reviewer.get("/ui/model").text
    assert "Serving version <strong>1</strong>" in page
    champion, challenger = page.split('id="challenger-heading"')
    assert "<strong>1</strong>" in champion and "<strong>2</strong>" in challenger
    assert "governed mapping" in champion and "priority score" in champion
    assert re.search(r"<code class=\"digest\">[0-9a-f]{64}</code>", champion)
    assert re.search(
        r"<dt>Training window</dt><dd>denials of \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d, "
        r"outcomes known by \d{4}-\d\d-\d\d</dd>\s*<dt>Evaluated fit</dt><dd>the same specs "
        r"fitted on denials of \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d, before the test months;",
        champion,
    )
    figure = reviewer.get("/ui/model/1/figures/calibration.png")
    assert figure.status_code == 200 and figure.content.startswith(b"\x89PNG")
    assert reviewer.get("/ui/model/1/figures/secrets.txt").status_code == 404


def test_pages_of_an_empty_log_say_so(site: Site, tmp_path: Path) -> None:
    settings = site.settings.model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'empty.db'}"}
    )
    with TestClient(create_app(settings)) as client:
        sign_in(client, create_keys(settings.resolved_database_url, "empty")["reviewer"])
        assert "No denials match." in client.get("/ui/worklist").text
        assert "No denials scored yet." in client.get("/ui/to-label").text
        dashboard = client.get("/ui/dashboard")
        assert dashboard.status_code == 200 and "No outcomes recorded yet." in dashboard.text


def test_values_from_the_records_are_escaped(site: Site, reviewer) -> None:
    record = stored(site, ScoreRecord)[0]
    hostile = audit_record(
        request_id="r",
        denial={"denial_id": "D-<b>x</b>", "payer_id": "<script>alert(1)</script>"},
        caller="test",
        model_version="1",
        mapping_version="m",
        outputs={**record.outputs, "denial_id": "D-<b>x</b>"},
        explanation=record.explanation,
    )
    engine = make_engine(site.settings.resolved_database_url)
    with session_factory(engine)() as session:
        record_scores(session, [hostile])
    engine.dispose()
    page = reviewer.get("/ui/worklist", params={"payer_id": "<script>alert(1)</script>"}).text
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page


# ---------------------------------------------------------------------------- feedback


def feedback_form(page: str, **fields: str) -> dict[str, str]:
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    return {"csrf": csrf_of(page), "idempotency_key": key, **fields}


def test_a_correction_submitted_twice_is_stored_once(site: Site, reviewer) -> None:
    denial_id = site.denials[1]["denial_id"]
    page = reviewer.get(f"/ui/denials/{denial_id}").text
    form = feedback_form(
        page,
        verdict="correct",
        corrected_root_cause="duplicate",
        resolution="written_off",
        recovered_amount="0",
        reviewer_note="billed twice <really>",
    )
    url = f"/ui/denials/{denial_id}/feedback"
    first = reviewer.post(url, data=form, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].endswith("recorded=new#feedback")
    again = reviewer.post(url, data=form)
    assert "already recorded" in again.text
    rows = stored(site, Feedback, denial_id=denial_id)
    assert len(rows) == 1
    assert (rows[0].corrected_root_cause, rows[0].confirmed_root_cause) == ("duplicate", False)
    assert rows[0].caller == "pages-reviewer" and rows[0].resolution == "written_off"
    assert (
        "corrected to Duplicate claim" in again.text and "billed twice &lt;really&gt;" in again.text
    )


def test_feedback_form_problems_are_shown_on_the_page(site: Site, reviewer) -> None:
    denial_id = site.denials[2]["denial_id"]
    page = reviewer.get(f"/ui/denials/{denial_id}").text
    url = f"/ui/denials/{denial_id}/feedback"
    missing = reviewer.post(url, data=feedback_form(page, verdict="correct"))
    assert missing.status_code == 422 and "choose the root cause" in missing.text
    reviewer.post(url, data=feedback_form(page, verdict="confirm"))
    reused = reviewer.post(url, data=feedback_form(page, verdict="none", reviewer_note="other"))
    assert reused.status_code == 409 and "already used for different feedback" in reused.text
    forged = reviewer.post(url, data={**feedback_form(page, verdict="confirm"), "csrf": "x"})
    assert forged.status_code == 403
    assert len(stored(site, Feedback, denial_id=denial_id)) == 1


def test_an_outcome_recorded_on_a_page_shows_on_the_dashboard(site: Site, reviewer) -> None:
    denial_id, recovered = site.denials[3]["denial_id"], str(site.denials[3]["denied_amount"])
    page = reviewer.get(f"/ui/denials/{denial_id}").text
    outcome = {"resolution": "overturned_on_appeal", "recovered_amount": f"${recovered}"}
    reviewer.post(f"/ui/denials/{denial_id}/feedback", data=feedback_form(page, **outcome))
    dashboard = reviewer.get("/ui/dashboard").text
    outcomes = dashboard.split('id="outcomes-heading"')[1]
    assert re.search(r"overturned on appeal</td><td class=\"number\">1</td>", outcomes)
    assert f"${float(recovered):,.0f}" in outcomes


@pytest.mark.parametrize(
    ("outcome", "shown"),
    [
        ({"resolution": "overturned_on_appeal", "recovered_amount": "999999999999.99"}, "denied"),
        ({"resolution": "written_off", "recovered_amount": "80"}, "recovers nothing"),
        ({"resolution": "open", "resolved_date": "2026-12-01"}, "while the denial is open"),
        ({"resolution": "paid_after_correction", "recovered_amount": "12abc"}, "not an amount"),
        (
            {"resolution": "overturned_on_appeal", "recovered_amount": "1,200.50"},
            "exceeds the denied",
        ),
        ({"resolution": "written_off", "resolved_date": "2020-01-01"}, "before the denial date"),
    ],
)
def test_an_outcome_that_does_not_fit_the_denial_is_shown_beside_the_form(
    site: Site, reviewer, outcome: dict[str, str], shown: str
) -> None:
    denial_id = site.denials[5]["denial_id"]
    page = reviewer.get(f"/ui/denials/{denial_id}").text
    url = f"/ui/denials/{denial_id}/feedback"
    response = reviewer.post(url, data=feedback_form(page, verdict="confirm", **outcome))
    assert response.status_code == 422
    form = response.text.split('id="feedback"')[1]
    problem = re.search(r'<p class="problem" role="alert">([^<]+)</p>', form).group(1)
    field = "resolved_date" if "resolved_date" in outcome else "recovered_amount"
    assert problem.startswith(f"{field}: ") and shown in problem
    # The message is shown again beside its own field, which is marked invalid.
    beside = re.search(
        rf'name="{field}"[^>]*aria-invalid="true"[^>]*>\s*<span class="problem '
        rf'field-problem" id="problem-{field}">([^<]+)</span>',
        form,
    )
    assert beside and shown in beside.group(1)
    assert f'value="{outcome.get("recovered_amount", "")}"' in form  # what was typed is kept
    assert stored(site, Feedback, denial_id=denial_id) == []


def test_a_denial_id_holding_a_slash_is_reviewed_and_its_feedback_stored(
    site: Site, reviewer
) -> None:
    """Such ids could be scored but never opened: the route took no '/'."""
    denial = {**site.denials[3], "denial_id": "CLM/2026/7-1"}
    scored = site.client.post(
        "/v1/score", json={"denials": [denial]}, headers=auth(site.keys["scorer"])
    )
    assert scored.status_code == 200, scored.text
    site.client.app.state.service.flush_audit()
    worklist = reviewer.get("/ui/worklist", params={"size": 200}).text
    assert "CLM/2026/7-1" in worklist_ids(worklist)
    page = reviewer.get("/ui/denials/CLM/2026/7-1")
    assert page.status_code == 200 and "CLM/2026/7-1" in page.text
    form = feedback_form(page.text, verdict="confirm")
    sent = reviewer.post("/ui/denials/CLM/2026/7-1/feedback", data=form, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"].startswith("/ui/denials/CLM/2026/7-1?recorded=new")
    assert len(stored(site, Feedback, denial_id="CLM/2026/7-1")) == 1
