"""The heavy pages' results kept between views: a repeat view with nothing new is not
recomputed and shows the same figures; a new score, outcome or shadow score is seen at the
next view; the cache stays within its bound, keeps no failure, and computes a key once for
views that arrive together."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session
from test_payer_watch import FIRST_DAY, ONSET, record_denials, site, stepped_denials

from serving import metrics, page_cache, payer_watch
from serving.database import make_engine
from serving.page_cache import ResultCache
from serving.repository import record_shadow_scores, save_feedback
from training.payer_alerts import PayerAlert

pytest_plugins = ["database_fixtures"]
__all__ = ["site"]  # the payers page's service, a fixture of test_payer_watch


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Replace ``owner.name`` by a wrapper that appends to the returned list on each call."""
    calls: list[int] = []
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


# ---------------------------------------------------------------------------- the cache


def test_a_kept_result_is_returned_without_computing_again() -> None:
    cache, calls = ResultCache(entries=4), []
    compute = lambda: calls.append(1) or ["figures"]  # noqa: E731
    first, second = cache.get("key", compute), cache.get("key", compute)
    assert first is second and calls == [1] and cache.computed == 1


def test_the_least_recently_used_result_goes_past_the_bound() -> None:
    cache = ResultCache(entries=2)
    cache.get("a", lambda: 1)
    cache.get("b", lambda: 2)
    cache.get("a", lambda: 1)  # a is now the most recently used
    cache.get("c", lambda: 3)  # b goes
    assert cache.get("a", lambda: -1) == 1 and cache.get("b", lambda: -2) == -2


def test_a_failure_is_not_kept() -> None:
    cache = ResultCache(entries=2)

    def fails() -> int:
        raise RuntimeError("database away")

    with pytest.raises(RuntimeError):
        cache.get("key", fails)
    assert cache.get("key", lambda: 7) == 7


def test_views_arriving_together_wait_for_one_computation() -> None:
    cache, calls = ResultCache(entries=2), []
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        return "alerts"

    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(cache.get("key", slow)))
    first.start()
    started.wait(5)
    others = [
        threading.Thread(target=lambda: results.append(cache.get("key", slow))) for _ in range(3)
    ]
    for thread in others:
        thread.start()
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert results == ["alerts"] * 4 and calls == [1]


# ---------------------------------------------------------------------------- payer alerts


def surgery_denials(count: int, day: dt.date) -> list[dict]:
    """More CO-197 surgery denials of the stepped payer, on one day after the step."""
    template = next(d for d in stepped_denials() if d["carc_codes"] == ["CO-197"])
    return [{**template, "denial_id": f"NEW-{n}", "denial_date": day} for n in range(count)]


@pytest.fixture
def viewed(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> tuple[ResultCache, list[int], tuple[PayerAlert, ...]]:
    """The stepped payer's denials recorded and the payers page viewed once: the cache, the
    detection's calls counted from then on, and the alerts of that view."""
    record_denials(session, stepped_denials())
    calls = counting(monkeypatch, payer_watch, "open_alerts")
    cache = ResultCache(entries=4)
    return cache, calls, page_cache.open_payer_alerts(cache, session)


def test_a_repeat_payers_view_is_kept_until_a_score_or_an_outcome_arrives(
    session: Session, viewed: tuple[ResultCache, list[int], tuple[PayerAlert, ...]]
) -> None:
    cache, calls, first = viewed
    second = page_cache.open_payer_alerts(cache, session)
    assert len(calls) == 1 and second == first
    assert [(a.payer_id, a.carc, a.procedure_family) for a in first] == [
        ("87726", "CO-197", "surgery")
    ]
    assert first[0].recovered_after is None  # no outcome recorded yet

    last_day = FIRST_DAY + dt.timedelta(days=ONSET + 20)
    record_denials(session, surgery_denials(5, last_day))
    scored = page_cache.open_payer_alerts(cache, session)
    assert len(calls) == 2
    assert scored[0].denials_affected == first[0].denials_affected + 5

    body = {"denial_id": "NEW-0", "resolution": "paid_after_correction", "recovered_amount": 90}
    save_feedback(session, "outcome-1", body, "reviewer")
    resolved = page_cache.open_payer_alerts(cache, session)
    assert len(calls) == 3 and resolved[0].recovered_after == pytest.approx(1.0)
    assert page_cache.open_payer_alerts(cache, session) == resolved and len(calls) == 3


def test_the_payers_page_and_the_gauges_share_the_kept_alerts(
    site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, keys = site
    engine = make_engine(f"sqlite:///{tmp_path / 'records.db'}")
    with Session(engine) as session:
        record_denials(session, stepped_denials())
    calls = counting(monkeypatch, payer_watch, "open_alerts")
    login = client.get("/ui/login").text
    csrf = login.split('name="csrf" value="')[1].split('"')[0]
    client.post("/ui/login", data={"api_key": keys["reviewer"], "next": "", "csrf": csrf})
    first = client.get("/ui/payers").text
    assert client.get("/ui/payers").text == first and len(calls) == 1
    assert "1 open payer alerts." in first
    client.get("/metrics", headers={"Authorization": f"Bearer {keys['admin']}"})
    assert len(calls) == 1  # the gauges' recount read the page's alerts
    with Session(engine) as session:
        record_denials(session, surgery_denials(5, FIRST_DAY + dt.timedelta(days=ONSET + 20)))
    engine.dispose()
    assert client.get("/ui/payers").text != first and len(calls) == 2


def test_the_gauges_recount_from_the_kept_alerts(
    session: Session, viewed: tuple[ResultCache, list[int], tuple[PayerAlert, ...]]
) -> None:
    cache, calls, _ = viewed
    kept = partial(page_cache.open_payer_alerts, cache)
    refresh = payer_watch.GaugeRefresh(every_seconds=0, alerts=kept)
    refresh.refresh(lambda: contextlib.nullcontext(session))
    assert len(calls) == 1 and metrics.PAYER_ALERTS_OPEN._value.get() == 1


# ---------------------------------------------------------------------------- live comparison


def shadow_score(number: int, champion: float, challenger: float) -> dict[str, Any]:
    """One shadow score of denial D-<number>: challenger version 2 beside champion 1."""
    return {
        "request_id": f"r{number}",
        "denial_id": f"D-{number}",
        "scored_at": dt.datetime(2026, 12, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=number),
        "input_hash": f"{number:064x}",
        "model_version": "2",
        "champion_version": "1",
        "root_cause": "coding",
        "recovery_probability": challenger,
        "priority": challenger * 100,
        "champion_root_cause": "coding" if number % 2 else "eligibility",
        "champion_recovery_probability": champion,
        "champion_priority": champion * 100,
    }


def test_a_repeat_model_view_is_kept_until_a_shadow_score_or_an_outcome_arrives(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_shadow_scores(session, [shadow_score(n, 0.2 + n / 10, 0.7 - n / 10) for n in range(4)])
    calls = counting(monkeypatch, page_cache, "compare_live")
    cache = ResultCache(entries=4)
    first = page_cache.live_comparison(cache, session, "2")
    assert page_cache.live_comparison(cache, session, "2") == first and len(calls) == 1
    assert first is not None and first.denials == 4
    assert first.root_cause_agreement == pytest.approx(0.5)
    assert first.challenger_mean_recovery == pytest.approx((0.7 + 0.6 + 0.5 + 0.4) / 4)

    record_shadow_scores(session, [shadow_score(4, 0.9, 0.1)])
    shadowed = page_cache.live_comparison(cache, session, "2")
    assert len(calls) == 2 and shadowed is not None and shadowed.denials == 5

    for number, amount in ((0, 100.0), (1, 0.0)):
        body = {"denial_id": f"D-{number}", "resolution": "written_off", "recovered_amount": amount}
        if amount:
            body["resolution"] = "overturned_on_appeal"
        save_feedback(session, f"outcome-{number}", body, "reviewer")
    resolved = page_cache.live_comparison(cache, session, "2")
    assert len(calls) == 3 and resolved is not None
    assert resolved.challenger.resolved == 2 and resolved.challenger.recovery_roc_auc == 1.0
    assert shadowed.challenger.resolved == 0  # the kept result is not changed in place
    # Another challenger version is another key.
    assert page_cache.live_comparison(cache, session, "3") is None and len(calls) == 4
