"""Benchmark model monitoring at scale: calibration, AUC, root-cause accuracy, top-decile dollars
and drift over N scored denials with outcomes.

Fills a fresh SQLite database with N score records through the service's own write path
(``record_scores``, which keeps the latest-score table on write), shaped as the service writes
them: 5 payer types, 40 payers, 14 months of denial dates. 60% of the denials get an outcome
(recovered as often as their recovery probability says) and 5% a root-cause review, written in
bulk as ``save_feedback`` writes them (a feedback row and the denial's status) because one
commit per outcome would make the fill, not the reads, the benchmark. Then times each query
of ``serving/monitoring.py`` and the whole ``monitor_models`` as the median of repeated runs
with the spread (min-max).

    nice .venv/bin/python benchmarks/model_monitoring.py                      # 100,000 denials
    nice .venv/bin/python benchmarks/model_monitoring.py --denials 1000000 --repeats 3
    nice .venv/bin/python benchmarks/model_monitoring.py --keep records.db --since 2026-09-01
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from harness import synthetic_audit_record, synthetic_score_batches
from sqlalchemy import insert

from features.contract import ROOT_CAUSES
from serving import monitoring, pages, views
from serving.database import make_engine, session_factory, upgrade_database
from serving.records import DenialStatus, Feedback, utc_now
from serving.repository import record_scores, use_input_hash_key
from training import drift

NEWEST_DENIAL = dt.date(2026, 11, 30)
PAYER_TYPES = ("commercial", "medicare", "medicaid", "medicare_advantage", "workers_comp")
RESOLVED_SHARE = 0.6
REVIEWED_SHARE = 0.05


def denial_facts(random: np.random.Generator, number: int) -> dict[str, Any]:
    """A denial's facts as a worklist system sends them (no patient, claim id hashed)."""
    amount = float(round(random.lognormal(5.5, 1.0), 2))
    return {
        "denial_id": f"D-{number:07d}",
        "claim_id": f"C-{number:07d}",
        "payer_id": f"P{random.integers(0, 40):03d}",
        "payer_type": str(random.choice(PAYER_TYPES)),
        "claim_type": str(random.choice(("professional", "institutional"))),
        "procedure_code": str(random.choice(("99213", "97110", "J1100", "0450", "80053"))),
        "billed_amount": round(amount * 1.6, 2),
        "denied_amount": amount,
        "carc_codes": [f"CO-{random.choice((16, 18, 50, 97, 197, 29, 4, 22))}"],
        "rarc_codes": [str(random.choice(("N54", "M15", "N290")))],
        "denial_date": NEWEST_DENIAL - dt.timedelta(days=int(random.integers(0, 420))),
    }


def _record(random: np.random.Generator, number: int) -> dict[str, Any]:
    denial = denial_facts(random, number)
    recovery = float(random.uniform(0.05, 0.95))
    amount = denial["denied_amount"]
    outputs = {
        "root_cause": {"category": str(random.choice(ROOT_CAUSES)), "probability": 0.7},
        "recovery": {"probability": recovery, "expected_recovered_dollars": recovery * amount},
        "preventable": {"probability": float(random.uniform()), "prevention_owner": "front_desk"},
        "priority": {"score": recovery * amount, "deadline": "2027-01-01"},
        "routing": {"owner_queue": "billing", "action_path": "appeal"},
        "requires_human_review": False,
    }
    return synthetic_audit_record(number, denial, outputs)


def score_records(count: int, seed: int) -> Iterator[list[dict[str, Any]]]:
    """``count`` audit records in batches, as the service writes them."""
    return synthetic_score_batches(count, seed, _record)


def feedback_rows(records: list[dict[str, Any]], random: np.random.Generator) -> list[dict]:
    """Outcomes (recovered at the scored probability) and reviews of a batch's denials."""
    rows, now = [], utc_now()
    for record in records:
        denial_id = record["denial_id"]
        if random.uniform() < RESOLVED_SHARE:
            recovered = random.uniform() < record["outputs"]["recovery"]["probability"]
            amount = record["facts"]["denied_amount"] * 0.8 if recovered else 0.0
            resolution = "overturned_on_appeal" if recovered else "written_off"
            rows.append(_feedback(denial_id, now, resolution=resolution, recovered_amount=amount))
        if random.uniform() < REVIEWED_SHARE:
            corrected = str(random.choice(ROOT_CAUSES)) if random.uniform() < 0.3 else None
            review = {"corrected_root_cause": corrected, "confirmed_root_cause": not corrected}
            rows.append(_feedback(denial_id, now, **review))
    return rows


def _feedback(denial_id: str, at: dt.datetime, **fields: Any) -> dict[str, Any]:
    key = f"{denial_id}:{'outcome' if 'resolution' in fields else 'review'}"
    return {
        "idempotency_key": key,
        "denial_id": denial_id,
        "received_at": at,
        "caller": "benchmark",
        "request_hash": "0" * 64,
        "confirmed_root_cause": None,
        "corrected_root_cause": None,
        "resolution": None,
        "recovered_amount": None,
        **fields,
    }


def fill(url: str, denials: int, seed: int) -> tuple[float, int]:
    """Write the scores and their feedback; returns seconds and feedback rows."""
    started, written = time.perf_counter(), 0
    random = np.random.default_rng(seed + 1)
    sessions = session_factory(make_engine(url))
    with sessions() as session:
        for batch in score_records(denials, seed):
            record_scores(session, batch)
            rows = feedback_rows(batch, random)
            session.execute(insert(Feedback), rows)
            session.execute(insert(DenialStatus), _statuses(rows))
            session.commit()
            written += len(rows)
    return time.perf_counter() - started, written


def _statuses(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "denial_id": row["denial_id"],
            "status": "open",
            "resolution": row["resolution"],
            "recovered_amount": row["recovered_amount"],
            "updated_at": row["received_at"],
            "updated_by": "benchmark",
        }
        for row in rows
        if row["resolution"]
    ]


def reference(seed: int) -> dict[str, Any]:
    """A drift reference from 20,000 denials drawn as the records are (no drift expected)."""
    random = np.random.default_rng(seed + 2)
    facts = pd.DataFrame([denial_facts(random, n) for n in range(drift.REFERENCE_ROWS)])
    scores = pd.DataFrame({"recovery_probability": random.uniform(0.05, 0.95, len(facts))})
    return drift.build_reference(facts, scores)


def timed(work: Callable[[], object], repeats: int) -> tuple[float, float, float, float]:
    """Median, min and max wall milliseconds of ``work`` after one warm-up run, and its median
    CPU milliseconds in this process (SQLite runs in it): on a machine shared with other
    jobs the wall time says how long a reader waits, the CPU time what the work costs."""
    work()
    walls, cpus = [], []
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), min(walls), max(walls), statistics.median(cpus)


def measurements(
    url: str, seed: int, since: dt.date | None = None
) -> dict[str, Callable[[], object]]:
    sessions = session_factory(make_engine(url))
    champion = monitoring.Champion("1", {}, reference(seed))
    thresholds = monitoring.Thresholds()

    def query(function: Callable[..., object], *args: Any) -> Callable[[], object]:
        def run() -> object:
            with sessions() as session:
                return function(session, *args, since)

        return run

    def drift_read() -> object:
        with sessions() as session:
            window = monitoring.recent_window(session, since, 90)
            assert window is not None
            facts, scores = monitoring.recent_denials(session, window, 20_000)
        return monitoring.drift_report(champion.reference, facts, scores, window)

    def whole() -> object:
        with sessions() as session:
            return monitoring.monitor_models(
                session,
                report={},
                version="1",
                reference=champion.reference,
                thresholds=thresholds,
                since=since,
            )

    def page() -> str:
        settings = pages.Settings()
        with sessions() as session:
            context = views.monitoring(session, champion, settings, since)
        template = pages.TEMPLATES.env.get_template("monitoring.html")
        viewer = pages.Viewer("benchmark", "reviewer", "csrf-token")
        return template.render(
            {"viewer": viewer, "active": "monitoring", "problem": None, "problems": []}
            | {"since": since, **context}
        )

    return {
        "calibration and ROC AUC (outcome_groups)": query(monitoring.outcome_groups),
        "top-decile dollars (top_decile_dollars)": query(monitoring.top_decile_dollars),
        "root-cause accuracy (root_cause_reviews)": query(monitoring.root_cause_reviews),
        "drift: recent window, 20,000 newest read, PSI": drift_read,
        "monitor_models, everything (the command's work)": whole,
        "the /ui/monitoring page's server work (queries, chart, template)": page,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--denials", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--since",
        type=dt.date.fromisoformat,
        help="Time monitoring from this denial date on (YYYY-MM-DD), as --since does.",
    )
    parser.add_argument(
        "--keep", type=Path, help="Database file to fill and keep; reused when it exists."
    )
    args = parser.parse_args()
    use_input_hash_key(b"benchmark key")
    with tempfile.TemporaryDirectory() as folder:
        path = args.keep or Path(folder) / "records.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            upgrade_database(url)
            seconds, feedback = fill(url, args.denials, args.seed)
            print(
                f"{args.denials:,} scored denials and {feedback:,} feedback rows written in "
                f"{seconds:.0f} s; SQLite\n"
            )
        report(url, args.seed, args.repeats, args.since)


def report(url: str, seed: int, repeats: int, since: dt.date | None) -> None:
    print("| monitoring step | median ms | min-max ms | CPU ms |")
    print("|---|---:|---:|---:|")
    for name, work in measurements(url, seed, since).items():
        median, low, high, cpu = timed(work, repeats)
        print(f"| {name} | {median:.0f} | {low:.0f}-{high:.0f} | {cpu:.0f} |")


if __name__ == "__main__":
    main()
