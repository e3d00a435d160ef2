"""Benchmark the reviewers' pages at scale: dashboard, worklist and payers over N scored denials.

Fills a fresh SQLite database through the service's own write path (``record_scores``, which
keeps the latest-score table on write) with N score records shaped as the service writes them:
10 root causes, 40 payers, 14 months of denial dates, deadlines around today, a share of denials
scored twice and a share with recorded outcomes. The model is not run: what a page costs depends
on the records' number and shape, not on how their probabilities were made. Then times, as the
median of repeated runs with the spread (min-max), the server's work for each page: the queries
and the template, without HTTP. The payers page twice: a first view, which detects the alerts,
and a repeat view with nothing new recorded, which reads the kept ones
(:mod:`serving.page_cache`).

    nice .venv/bin/python benchmarks/worklist_pages.py                  # 100,000 denials
    nice .venv/bin/python benchmarks/worklist_pages.py --denials 20000 --repeats 5
    nice .venv/bin/python benchmarks/worklist_pages.py --denials 200000 --only payers
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from harness import synthetic_audit_record, synthetic_score_batches, timed

from features.contract import ROOT_CAUSES
from features.mapping import WRITE_OFF_REVIEW
from serving import page_cache, pages, payer_watch, views
from serving.database import make_engine, session_factory, upgrade_database
from serving.page_cache import ResultCache
from serving.repository import record_scores, save_feedback, use_input_hash_key
from training.priority import REFILE_PATHS, WORK_COST

TODAY = dt.date(2026, 12, 5)
QUEUES = ("billing", "coding", "authorization", "eligibility", "triage")
PROCEDURES = ("27447", "29881", "71046", "80053", "97110", "99213", "99214", "J1885")
ACTION_PATHS = tuple(path for path in WORK_COST if path != WRITE_OFF_REVIEW)


def score_records(count: int, seed: int) -> Iterator[list[dict[str, Any]]]:
    """``count`` audit records in batches, as the service writes them."""
    return synthetic_score_batches(count, seed, _record)


def _record(random: np.random.Generator, number: int) -> dict[str, Any]:
    denial_date = TODAY - dt.timedelta(days=int(random.integers(0, 420)))
    amount = float(round(random.lognormal(5.5, 1.0), 2))
    recovery = float(random.uniform(0.05, 0.95))
    denial = {
        "denial_id": f"D-{number:07d}",
        "claim_id": f"C-{number:07d}",
        "payer_id": f"P{random.integers(0, 40):03d}",
        "denied_amount": amount,
        "carc_codes": [f"CO-{random.choice((16, 18, 50, 97, 197, 29, 4, 22))}"],
        "rarc_codes": [str(random.choice(("N54", "M127", "N290")))],
        # Surgery, radiology, laboratory, therapy, office visits, a drug: six families.
        "procedure_code": str(random.choice(PROCEDURES)),
        "denial_date": denial_date,
    }
    action_path = str(random.choice(ACTION_PATHS))
    outputs = {
        "root_cause": {"category": str(random.choice(ROOT_CAUSES)), "probability": 0.7},
        "recovery": {"probability": recovery, "expected_recovered_dollars": recovery * amount},
        "preventable": {"probability": float(random.uniform()), "prevention_owner": "front_desk"},
        "priority": _priority(random, denial_date, action_path, recovery * amount),
        "routing": {"owner_queue": str(random.choice(QUEUES)), "action_path": action_path},
        "requires_human_review": bool(random.uniform() < 0.25),
        "review_reasons": [],
    }
    return synthetic_audit_record(number, denial, outputs)


def _priority(
    random: np.random.Generator, denial_date: dt.date, action_path: str, expected: float
) -> dict[str, Any]:
    """The priority's parts as scoring stores them, counted on the denial date: filing and
    appeal windows of 30 to 365 days, so some denials are past every deadline by ``TODAY``."""
    filing, appeal = (
        denial_date + dt.timedelta(days=int(random.integers(30, 365))) for _ in range(2)
    )
    cost, hours = WORK_COST[action_path]
    net = round(expected - cost, 2)
    return {
        "score": round(net / hours, 4),
        "expected_recovered_dollars": round(expected, 2),
        "cost_to_work": cost,
        "effort_hours": hours,
        "expected_net_dollars": net,
        "urgency": 0.0,
        "deadline": filing if action_path in REFILE_PATHS else appeal,
        "deadline_rule": str(random.choice(("commercial.appeal", "medicare.timely_filing"))),
        "last_deadline": max(filing, appeal),
        "backlog_horizon_days": int(random.choice((14, 30, 45))),
        "workable": True,
        "counted_from": denial_date,
        "days_to_deadline": 0,
    }


def fill(url: str, denials: int, seed: int) -> float:
    """Write the records (10% of denials scored twice, 5% with an outcome); returns seconds."""
    started = time.perf_counter()
    sessions = session_factory(make_engine(url))
    with sessions() as session:
        for batch in score_records(denials, seed):
            record_scores(session, batch)
        for batch in score_records(denials // 10, seed + 1):
            record_scores(session, batch)  # rescored: the same ids, later
        for number in range(0, denials, 20):
            body = {"denial_id": f"D-{number:07d}", "resolution": "paid_after_correction"}
            save_feedback(session, f"outcome-{number}", body, "benchmark")
    return time.perf_counter() - started


VIEWER = pages.Viewer("benchmark", "reviewer", "csrf-token")


def rendered(template: str, context: dict[str, Any]) -> str:
    page = pages.TEMPLATES.env.get_template(template)
    return page.render({"viewer": VIEWER, "active": "", **context})


def measurements(url: str) -> dict[str, Callable[[], object]]:
    sessions = session_factory(make_engine(url))

    def dashboard() -> str:
        with sessions() as session:
            return rendered("dashboard.html", views.dashboard(session, TODAY))

    def worklist(**params: str) -> Callable[[], str]:
        def page() -> str:
            with sessions() as session:
                context = views.worklist(session, views.worklist_query(params), TODAY)
            return rendered("worklist.html", {**context, "notice": None})

        return page

    def export() -> int:
        with sessions() as session:
            return sum(len(lines) for lines in views.export_lines(session, query, TODAY))

    def payers(cache: ResultCache | None) -> Callable[[], str]:
        """The payers page; a first view (a cache of its own each time) or a repeat view."""

        def page() -> str:
            with sessions() as session:
                alerts = page_cache.open_payer_alerts(cache or ResultCache(1), session)
            context = {"alerts": alerts, "open_days": payer_watch.OPEN_ALERT_DAYS}
            return rendered("payers.html", context)

        return page

    query = views.worklist_query({"owner_queue": "billing"})
    return {
        "payers, first view (alerts detected)": payers(None),
        "payers, repeat view (nothing new: the kept alerts)": payers(ResultCache(4)),
        "dashboard (every chart drawn)": dashboard,
        "worklist, default (priority counted today)": worklist(),
        "worklist, workable only": worklist(workable="true"),
        "worklist, past every deadline (write-off review)": worklist(workable="false"),
        "worklist, by expected dollars ascending": worklist(sort="expected_dollars", order="asc"),
        "worklist, page 100 by deadline": worklist(sort="deadline", page="100"),
        "worklist, one queue, status in progress": worklist(
            owner_queue="billing", status="in_progress"
        ),
        "worklist, search by denial id": worklist(q="D-0004242"),
        "CSV export of one queue (about 1/5)": export,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--denials", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", help="time only the pages whose name holds this text")
    args = parser.parse_args()
    use_input_hash_key(b"benchmark key")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'records.db'}"
        upgrade_database(url)
        seconds = fill(url, args.denials, args.seed)
        print(
            f"{args.denials:,} denials ({args.denials // 10:,} scored twice) written in "
            f"{seconds:.1f} s through record_scores; SQLite, as of {TODAY}\n"
        )
        print("| page (server work: queries and template) | median ms | min-max ms |")
        print("|---|---:|---:|")
        for name, work in measurements(url).items():
            if args.only and args.only not in name:
                continue
            median, low, high = timed(work, args.repeats)
            print(f"| {name} | {median:.0f} | {low:.0f}-{high:.0f} |")


if __name__ == "__main__":
    main()
