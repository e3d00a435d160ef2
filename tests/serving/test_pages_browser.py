"""The pages in a real browser: Debian's headless Chromium driven by Playwright against the
service running under uvicorn, at a desktop (1280 px) and a phone (390 px) width.

Screenshots go to ``test-artifacts/screenshots/``. The tests skip only on a workstation without
``/usr/bin/chromium`` (or without Playwright); with ``CI`` set they must run.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from database_fixtures import auth, create_keys, feedback_count

from denial_triage.settings import Settings
from features.labels import plain_label
from serving.app import create_app

pytestmark = pytest.mark.slow  # headless Chromium

if TYPE_CHECKING:
    from page_fixtures import PagesRegistry

pytest_plugins = ["page_fixtures"]

CHROMIUM = Path("/usr/bin/chromium")
# Root in CI needs --no-sandbox; the rest keeps Chromium off the network and quiet.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _require_browser() -> Any:
    """Playwright's sync API, or a skip on a workstation that lacks the browser or package."""
    if not os.environ.get("CI") and not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium); CI runs these tests")
    if os.environ.get("CI"):
        from playwright import sync_api
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
    return sync_api


@dataclass(frozen=True)
class LiveSite:
    url: str
    keys: dict[str, str]
    database_url: str
    denials: list[dict]


@pytest.fixture(scope="module")
def live_site(
    pages_registry: PagesRegistry,
    page_denials: list[dict],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveSite]:
    """The service under uvicorn on a free localhost port, with the denials scored."""
    _require_browser()
    database = tmp_path_factory.mktemp("browser-db") / "records.db"
    settings = Settings(
        data_dir=pages_registry.data_dir,
        database_url=f"sqlite:///{database}",
        model_poll_seconds=3600,
    )
    with _serving(settings) as server:
        url = server.url
        keys = create_keys(settings.resolved_database_url, "browser")
        response = httpx.post(
            f"{url}/v1/score",
            json={"denials": page_denials},
            headers=auth(keys["scorer"]),
            timeout=60,
        )
        assert response.status_code == 200, response.text
        server.flush_audit()  # pages do not wait for a scorer's records
        yield LiveSite(url, keys, settings.resolved_database_url, page_denials)


class _serving:
    """Run the app under uvicorn in a thread, on a socket bound here (so no port race)."""

    def __init__(self, settings: Settings) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> _serving:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start; see its log above")
            time.sleep(0.05)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def flush_audit(self) -> None:
        """Wait until every score answered so far is in the database."""
        self.server.config.app.state.service.flush_audit()

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


@pytest.fixture(scope="module")
def browser(live_site: LiveSite) -> Iterator[Any]:
    sync_api = _require_browser()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def signed_in_page(browser: Any, site: LiveSite, viewport: dict[str, int]) -> Any:
    """A new browser context at ``viewport``, signed in through the form with a reviewer key."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(f"{site.url}/ui/worklist")
    assert page.url.startswith(f"{site.url}/ui/login")
    page.fill("#api_key", site.keys["reviewer"])
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{site.url}/ui/worklist")
    return page


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def fits_the_width(page: Any) -> bool:
    """No horizontal scrolling of the page itself (tables may scroll inside their box)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def feedback_rows(site: LiveSite, denial_id: str) -> int:
    return feedback_count(site.database_url, denial_id)


def test_review_a_denial_from_the_worklist_at_desktop_width(browser, live_site) -> None:
    page = signed_in_page(browser, live_site, DESKTOP)
    assert page.locator("table.worklist tbody tr").count() == 50
    screenshot(page, "worklist-1280")

    cause = page.locator("table.worklist td[data-label='Root cause']").first.inner_text()
    cause = cause.rsplit(" ", 1)[0].replace(" ", "_")
    page.select_option("select[name=root_cause]", cause)
    page.click("button:has-text('Apply')")
    page.wait_for_url(re.compile(rf".*root_cause={cause}.*"))
    causes = page.locator("table.worklist td[data-label='Root cause']").all_inner_texts()
    assert causes and all(text.startswith(cause.replace("_", " ")) for text in causes)

    page.locator("table.worklist tbody tr").first.locator("a").click()
    page.wait_for_url(re.compile(r".*/ui/denials/.+"))
    denial_id = page.url.rsplit("/", 1)[1]
    for task in ("root_cause", "recovery", "preventable"):
        assert page.locator(f"#explanation-{task} svg").first.is_visible()
    screenshot(page, "denial-1280")

    page.check("input[name=verdict][value=correct]")
    correction = "duplicate" if cause != "duplicate" else "coding"
    page.select_option("select[name=corrected_root_cause]", correction)
    page.select_option("select[name=resolution]", "open")
    page.fill("textarea[name=reviewer_note]", "checked in the browser test")
    form = {name: page.input_value(f"input[name={name}]") for name in ("csrf", "idempotency_key")}
    page.click("button:has-text('Record feedback')")
    page.wait_for_url(re.compile(r".*recorded=new.*"))
    assert page.locator(".notice").inner_text() == "Feedback recorded."
    recorded = page.locator("ul.recorded").inner_text()
    assert f"corrected to {plain_label('root_cause', correction)}" in recorded
    assert "checked in the browser test" in recorded
    screenshot(page, "denial-feedback-1280")

    # The same form sent again (a double submit) is recognised by its idempotency key.
    again = page.request.post(
        f"{live_site.url}/ui/denials/{denial_id}/feedback",
        form={
            **form,
            "verdict": "correct",
            "corrected_root_cause": correction,
            "resolution": "open",
            "reviewer_note": "checked in the browser test",
        },
    )
    assert again.ok and "already recorded" in again.text()
    assert feedback_rows(live_site, denial_id) == 1
    page.context.close()


def test_dashboard_and_model_pages_at_desktop_width(browser, live_site) -> None:
    page = signed_in_page(browser, live_site, DESKTOP)
    page.click("nav >> text=Dashboard")
    page.wait_for_url(f"{live_site.url}/ui/dashboard")
    assert page.locator("section.tiles .tile").count() == 6
    assert page.locator("figure.chart svg").count() >= 5
    screenshot(page, "dashboard-1280")
    page.click("nav >> text=Model")
    page.wait_for_url(f"{live_site.url}/ui/model")
    images = page.locator("figure.chart img")
    assert images.count() == 2
    for index in range(images.count()):
        assert images.nth(index).evaluate("image => image.naturalWidth") > 0
    screenshot(page, "model-1280")
    page.context.close()


def test_every_page_fits_a_phone(browser, live_site) -> None:
    page = signed_in_page(browser, live_site, PHONE)
    denial_id = live_site.denials[0]["denial_id"]
    for name, path in (
        ("worklist", "/ui/worklist"),
        ("denial", f"/ui/denials/{denial_id}"),
        ("dashboard", "/ui/dashboard"),
        ("payers", "/ui/payers"),
        ("model", "/ui/model"),
    ):
        page.goto(f"{live_site.url}{path}")
        assert fits_the_width(page), f"{path} scrolls sideways at 390 px"
        screenshot(page, f"{name}-390")
    page.goto(f"{live_site.url}/ui/denials/{denial_id}")
    assert page.locator("#explanation-recovery svg").first.is_visible()
    page.context.close()


def test_monitoring_page_at_desktop_and_phone_widths(browser, live_site) -> None:
    for viewport, width in ((DESKTOP, 1280), (PHONE, 390)):
        page = signed_in_page(browser, live_site, viewport)
        page.click("nav >> text=Monitoring")
        page.wait_for_url(f"{live_site.url}/ui/monitoring")
        page.goto(f"{live_site.url}/ui/monitoring?since=2000-01-01")  # every scored denial
        assert page.locator("#reliability").is_visible()  # training's curve, as no outcomes
        assert page.locator("#recommendation-heading").is_visible()
        assert page.get_by_text(f"{len(live_site.denials)} denials of").is_visible()
        assert fits_the_width(page), f"/ui/monitoring scrolls sideways at {width} px"
        screenshot(page, f"monitoring-{width}")
        page.context.close()


def test_signing_out_closes_the_pages(browser, live_site) -> None:
    page = signed_in_page(browser, live_site, PHONE)
    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{live_site.url}/ui/login")
    screenshot(page, "login-390")
    page.goto(f"{live_site.url}/ui/dashboard")
    assert page.url.startswith(f"{live_site.url}/ui/login")
    page.context.close()


def dollars(texts: list[str]) -> list[float]:
    return [float(text.replace("$", "").replace(",", "")) for text in texts]


def test_sort_search_assign_and_export_the_worklist(browser, live_site, tmp_path) -> None:
    page = signed_in_page(browser, live_site, DESKTOP)
    as_of = page.locator("#as-of").inner_text()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", as_of)

    # Sort: a click on a column's header sorts the whole list in the database, then reverses it.
    page.click("th a[data-sort=expected_dollars]")
    page.wait_for_url(re.compile(r".*sort=expected_dollars.*"))
    cells = "table.worklist td[data-label='Expected $']"
    shown = dollars(page.locator(cells).all_inner_texts())
    assert len(shown) == 50 and shown == sorted(shown, reverse=True)
    page.click("th a[data-sort=expected_dollars]")
    page.wait_for_url(re.compile(r".*order=asc.*"))
    ascending = dollars(page.locator(cells).all_inner_texts())
    assert ascending == sorted(ascending) and ascending[0] <= shown[-1]
    screenshot(page, "worklist-sorted-1280")

    # Search: by denial id, and by claim id, which the records keep only as a keyed hash.
    wanted = live_site.denials[7]
    for text in (wanted["denial_id"], wanted["claim_id"]):
        page.goto(f"{live_site.url}/ui/worklist")
        page.fill("input[name=q]", text)
        page.click("button:has-text('Find')")
        page.wait_for_url(re.compile(r".*q=.*"))
        found = page.locator("table.worklist td[data-label='Denial']").all_inner_texts()
        assert found == [wanted["denial_id"]], text

    # Assign: tick two denials, choose the reviewer, one submit.
    page.goto(f"{live_site.url}/ui/worklist")
    chosen = page.locator("table.worklist input[name=denial_id]")
    picked = [chosen.nth(index).get_attribute("value") for index in (0, 1)]
    chosen.nth(0).check()
    chosen.nth(1).check()
    page.select_option("#changes select[name=assignee]", "browser-reviewer")
    page.click("button:has-text('Assign chosen')")
    page.wait_for_url(re.compile(r".*done=assign.*"))
    assert page.locator(".notice").inner_text() == "2 denials assigned."
    page.select_option(".filters select[name=assignee]", "browser-reviewer")
    page.click("button:has-text('Apply')")
    page.wait_for_url(re.compile(r".*assignee=browser-reviewer.*"))
    mine = page.locator("table.worklist td[data-label='Denial']").all_inner_texts()
    assert sorted(mine) == sorted(picked)
    screenshot(page, "worklist-assigned-1280")

    # Export: the filtered list, every row, in the page's order, and no claim ids.
    page.goto(f"{live_site.url}/ui/worklist?sort=denied_amount")
    total = int(re.search(r"of ([\d,]+) denials", page.inner_text("#summary"))[1].replace(",", ""))
    with page.expect_download() as download:
        page.click("#export")
    path = tmp_path / "worklist.csv"
    download.value.save_as(path)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    assert len(lines) == total + 1 and "claim_id" not in header and "as_of" in header
    shown_first = page.locator("table.worklist td[data-label='Denial']").first.inner_text()
    assert lines[1].split(",")[0] == shown_first
    assert not any(denial["claim_id"] in path.read_text() for denial in live_site.denials)
    page.context.close()


def test_an_outcome_takes_a_denial_off_the_open_list(browser, live_site) -> None:
    page = signed_in_page(browser, live_site, DESKTOP)
    denial_id = live_site.denials[11]["denial_id"]
    page.goto(f"{live_site.url}/ui/worklist?q={denial_id}")
    assert page.locator("table.worklist tbody tr").count() == 1
    page.goto(f"{live_site.url}/ui/denials/{denial_id}")
    page.select_option("select[name=resolution]", "written_off")
    page.fill("textarea[name=reviewer_note]", "past every deadline")
    assert page.inner_text("#standing") == "open, not assigned"
    page.click("button:has-text('Record feedback')")
    page.wait_for_url(re.compile(r".*recorded=new.*"))
    assert page.inner_text("#standing") == "resolved, not assigned"
    page.goto(f"{live_site.url}/ui/worklist?q={denial_id}")
    assert "No denials match." in page.inner_text("#summary")
    page.goto(f"{live_site.url}/ui/worklist?q={denial_id}&status=resolved")
    assert page.locator("td[data-label='Status']").all_inner_texts() == ["resolved"]
    page.context.close()
