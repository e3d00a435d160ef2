"""The challenger in shadow: deterministic sampling, a hand-over that never waits, the live
comparison on hand-made rows, and through the service (SQLite and PostgreSQL) the champion's
answer returned while the challenger's scores of the sampled denials land in their table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import BrokenExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from database_fixtures import auth, create_keys
from fastapi.testclient import TestClient
from sqlalchemy import select

from denial_triage.commands.train import report_live
from denial_triage.settings import Settings
from serving import metrics
from serving.app import create_app
from serving.database import make_engine, session_factory
from serving.live_comparison import compare
from serving.records import ShadowScore
from serving.scoring import ScoredBatch
from serving.shadow import ChallengerWorker, ShadowScorer, sampled, shadow_job

if TYPE_CHECKING:
    from page_fixtures import PagesRegistry

pytest_plugins = ["database_fixtures", "page_fixtures"]

SHARE = 0.5
DENIALS_SENT = 40


def shadow_count(outcome: str) -> float:
    return metrics.SHADOW_DENIALS.labels(outcome)._value.get()


# ---------------------------------------------------------------------------- sampling


def test_sampling_is_fixed_per_denial_and_near_its_share() -> None:
    ids = [f"D-{n}" for n in range(20_000)]
    picked = [denial_id for denial_id in ids if sampled(denial_id, 0.1)]
    assert 0.09 < len(picked) / len(ids) < 0.11
    assert picked == [denial_id for denial_id in ids if sampled(denial_id, 0.1)]
    # A larger share keeps every denial a smaller one picked: the compared set only grows.
    assert set(picked) <= {denial_id for denial_id in ids if sampled(denial_id, 0.3)}
    assert not any(sampled(denial_id, 0.0) for denial_id in ids[:1000])
    assert all(sampled(denial_id, 1.0) for denial_id in ids[:1000])


# ---------------------------------------------------------------------------- the hand-over


def answered(denial_id: str) -> tuple[ScoredBatch, list[dict]]:
    """A one-denial answer of the champion (version 1), with the payload it answered."""
    result = {
        "denial_id": denial_id,
        "root_cause": {"category": "coding"},
        "recovery": {"probability": 0.4},
        "priority": {"score": 12.0},
    }
    response = ScoredBatch(f"req-{denial_id}", "1", "m", pd.Timestamp.now("UTC"), [result])
    return response, [{"denial_id": denial_id}]


def test_a_full_queue_drops_denials_without_waiting_and_the_rest_go_together() -> None:
    release = threading.Event()
    batches = []

    def slow_challenger(jobs) -> int:
        batches.append([job.denials[0]["denial_id"] for job in jobs])
        release.wait(10)
        return len(jobs)

    scorer = ShadowScorer("2", 1.0, ThreadPoolExecutor(1), slow_challenger, capacity=2)
    dropped, scored = shadow_count("dropped"), shadow_count("scored")
    began = time.perf_counter()
    handed = [scorer.offer(*answered(f"D-{n}")) for n in range(5)]
    took = time.perf_counter() - began
    # D-0 goes to the challenger at once, D-1 and D-2 wait for it, D-3 and D-4 find no room.
    assert handed == [1, 1, 1, 0, 0]
    assert took < 0.05  # nothing waited for the challenger, which is still busy
    assert shadow_count("dropped") - dropped == 2
    release.set()
    assert scorer.flush(10)
    assert batches == [["D-0"], ["D-1", "D-2"]]  # those that waited went as one batch
    assert shadow_count("scored") - scored == 3
    scorer.close()


def test_the_challenger_gets_the_champions_answer_beside_each_denial() -> None:
    jobs = []
    scorer = ShadowScorer("2", 1.0, ThreadPoolExecutor(1), lambda batch: jobs.extend(batch) or 0)
    scorer.offer(*answered("C-1"))
    assert scorer.flush(10)
    assert jobs[0].request_id == "req-C-1" and jobs[0].champion_version == "1"
    assert jobs[0].champion == [
        {
            "champion_root_cause": "coding",
            "champion_recovery_probability": 0.4,
            "champion_priority": 12.0,
        }
    ]
    scorer.close()


def test_a_failing_challenger_is_counted_and_frees_its_slot() -> None:
    def broken(job) -> int:
        raise RuntimeError("database away")

    scorer = ShadowScorer("2", 1.0, ThreadPoolExecutor(1), broken, capacity=1)
    failed = shadow_count("failed")
    for n in range(3):
        assert scorer.offer(*answered(f"F-{n}")) == 1
        assert scorer.flush(10)
    assert shadow_count("failed") - failed == 3
    assert not scorer.broken  # the database failing is no reason for a new worker
    scorer.close()


def test_a_dead_worker_marks_the_scorer_for_a_new_one() -> None:
    def died(job) -> int:
        raise BrokenExecutor("the challenger's worker died")

    scorer = ShadowScorer("2", 1.0, ThreadPoolExecutor(1), died)
    assert scorer.offer(*answered("B-1")) == 1
    assert scorer.flush(10)
    assert scorer.broken
    scorer.close()


class CountingWorker(ChallengerWorker):
    """The worker with the scoring left out: what is left is its pacing."""

    def _score(self, jobs) -> int:
        return len(jobs)


def test_the_worker_gives_a_batch_its_least_time_so_the_next_waits_and_grows() -> None:
    worker = CountingWorker(triage=None, version="2", write=len, batch_seconds=0.2)
    began = time.monotonic()
    assert worker.score([shadow_job(*answered("P-1"), 1.0)]) == 1
    assert time.monotonic() - began >= 0.2


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's idle scheduling class")
def test_the_worker_runs_in_the_idle_class_so_a_request_takes_its_core_at_once() -> None:
    code = "import os; from serving.shadow import run_when_idle; run_when_idle(); "
    code += "print(os.sched_getscheduler(0) == os.SCHED_IDLE)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# ---------------------------------------------------------------------------- comparison


def hand_made_pairs() -> pd.DataFrame:
    """Four denials, D-1 scored twice (its newest pair counts); champion version 1."""
    rows = [
        # denial, challenger cause, recovery, priority, champion cause, recovery, priority
        ("D-1", "coding", 0.9, 1.0, "coding", 0.1, 9.0),  # superseded below
        ("D-1", "coding", 0.8, 40.0, "coding", 0.6, 30.0),
        ("D-2", "eligibility", 0.2, 10.0, "coding", 0.7, 20.0),
        ("D-3", "coding", 0.7, 30.0, "coding", 0.3, 10.0),
        ("D-4", "authorization", 0.1, 20.0, "authorization", 0.2, 40.0),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "denial_id",
            "root_cause",
            "recovery_probability",
            "priority",
            "champion_root_cause",
            "champion_recovery_probability",
            "champion_priority",
        ],
    )
    frame["scored_at"] = pd.date_range("2026-12-01", periods=len(frame), freq="h", tz="UTC")
    frame["champion_version"] = "1"
    return frame


def hand_made_labels() -> pd.DataFrame:
    """D-1 and D-3 recovered money, D-2 was written off, D-4 is open; D-1 and D-2 reviewed."""
    return pd.DataFrame(
        {
            "denial_id": ["D-1", "D-2", "D-3", "D-4"],
            "root_cause": ["coding", "eligibility", None, None],
            "resolution": ["overturned_on_appeal", "written_off", "paid_after_correction", None],
            "recovered_amount": [500.0, 0.0, 120.0, None],
        }
    )


def test_the_comparison_counts_each_denial_once_and_measures_both_models() -> None:
    live = compare(hand_made_pairs(), hand_made_labels(), "2")
    assert live.denials == 4 and live.champion_versions == ("1",)
    assert live.root_cause_agreement == pytest.approx(3 / 4)  # D-2 differs
    assert live.challenger_mean_recovery == pytest.approx((0.8 + 0.2 + 0.7 + 0.1) / 4)
    assert live.champion_mean_recovery == pytest.approx((0.6 + 0.7 + 0.3 + 0.2) / 4)
    # Challenger priority ranks D-1 > D-3 > D-4 > D-2, the champion's D-4 > D-1 > D-2 > D-3.
    ranks_challenger, ranks_champion = [4, 1, 3, 2], [3, 2, 1, 4]
    expected = pd.Series(ranks_challenger).corr(pd.Series(ranks_champion))
    assert live.priority_rank_correlation == pytest.approx(expected)
    # Resolved: D-1 and D-3 recovered, D-2 not. The challenger ranks them perfectly; the
    # champion puts D-2 (0.7) above both recovered denials (0.6, 0.3).
    assert live.challenger.resolved == live.champion.resolved == 3
    assert live.challenger.recovery_roc_auc == pytest.approx(1.0)
    assert live.champion.recovery_roc_auc == pytest.approx(0.0)
    assert live.challenger.recovery_brier == pytest.approx(((0.8 - 1) ** 2 + 0.2**2 + 0.3**2) / 3)
    assert live.champion.recovery_brier == pytest.approx(((0.6 - 1) ** 2 + 0.7**2 + 0.7**2) / 3)
    # Reviewed: D-1 coding (both right), D-2 eligibility (only the challenger right).
    assert live.challenger.reviewed == 2
    assert live.challenger.root_cause_accuracy == pytest.approx(1.0)
    assert live.champion.root_cause_accuracy == pytest.approx(0.5)


def test_without_outcomes_the_outcome_figures_are_empty() -> None:
    labels = hand_made_labels().iloc[0:0]
    live = compare(hand_made_pairs(), labels, "2")
    assert live.champion.resolved == 0 and live.champion.recovery_roc_auc is None
    assert live.challenger.root_cause_accuracy is None
    assert "on 4 denials" in live.lines()[0]


# ---------------------------------------------------------------------------- the service


def shadow_rows(database_url: str) -> list[ShadowScore]:
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            return list(session.scalars(select(ShadowScore).order_by(ShadowScore.denial_id)))
    finally:
        engine.dispose()


def serve(registry: PagesRegistry, database_url: str, share: float) -> TestClient:
    settings = Settings(
        data_dir=registry.data_dir,
        database_url=database_url,
        model_poll_seconds=3600,
        shadow_share=share,
    )
    return TestClient(create_app(settings))


def sign_in(client: TestClient, key: str) -> None:
    form_page = client.get("/ui/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form_page).group(1)
    client.post("/ui/login", data={"api_key": key, "next": "", "csrf": token})


@pytest.mark.slow  # 5-6 s a database; the fast tier keeps the sampling and the idle-class tests
def test_the_challenger_scores_the_sampled_denials_apart_and_the_page_compares(
    pages_registry: PagesRegistry,
    page_denials: list[dict],
    empty_database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    denials = page_denials[:DENIALS_SENT]
    with serve(pages_registry, empty_database_url, SHARE) as client:
        keys = create_keys(empty_database_url, "shadow")
        state = client.app.state.service
        assert state.shadow is not None and state.shadow.version == "2"
        response = client.post("/v1/score", json={"denials": denials}, headers=auth(keys["scorer"]))
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["model_version"] == "1"  # the champion answers
        state.flush_shadow()
        rows = shadow_rows(empty_database_url)
        expected = sorted(d["denial_id"] for d in denials if sampled(d["denial_id"], SHARE))
        assert 0 < len(expected) < len(denials)
        assert [row.denial_id for row in rows] == expected
        by_id = {result["denial_id"]: result for result in answer["results"]}
        for row in rows:
            champion = by_id[row.denial_id]
            assert (row.model_version, row.champion_version) == ("2", "1")
            assert row.request_id == answer["request_id"] and len(row.input_hash) == 64
            assert row.champion_recovery_probability == champion["recovery"]["probability"]
            # The challenger is the champion's model registered again: the same answers.
            assert row.recovery_probability == pytest.approx(champion["recovery"]["probability"])
            assert row.root_cause == champion["root_cause"]["category"]
            assert row.priority == pytest.approx(champion["priority"]["score"], rel=1e-6)
        recovered, written_off = expected[:2]
        for denial_id, resolution, amount in (
            (recovered, "overturned_on_appeal", 1.0),
            (written_off, "written_off", 0.0),
        ):
            feedback = {
                "idempotency_key": f"shadow-{denial_id}",
                "denial_id": denial_id,
                "resolution": resolution,
                "recovered_amount": amount,
            }
            sent = client.post("/v1/feedback", json=feedback, headers=auth(keys["reviewer"]))
            assert sent.status_code in (200, 201), sent.text
        sign_in(client, keys["reviewer"])
        page = client.get("/ui/model").text
    live = page.split('id="live-heading"')[1]
    assert f"scored {len(expected)} denials in shadow" in live
    assert "<dt>Root cause agreement</dt><dd>100%</dd>" in live
    assert re.search(r"<td>champion</td><td class=\"number\">2</td>", live)
    assert re.search(r"<td>challenger</td><td class=\"number\">2</td>", live)
    report_live("2", empty_database_url)
    printed = capsys.readouterr().out
    assert f"challenger version 2 in shadow beside champion version 1 on {len(expected)}" in printed
    assert "root cause agreement 100.0%" in printed and "on 2 resolved" in printed


def test_share_zero_loads_no_challenger_and_writes_no_shadow_score(
    pages_registry: PagesRegistry, page_denials: list[dict], tmp_path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'records.db'}"
    with serve(pages_registry, database_url, 0.0) as client:
        keys = create_keys(database_url, "no-shadow")
        assert client.app.state.service.shadow is None
        body = {"denials": page_denials[:DENIALS_SENT]}
        response = client.post("/v1/score", json=body, headers=auth(keys["scorer"]))
        assert response.status_code == 200, response.text
    assert shadow_rows(database_url) == []
