"""Benchmark the live comparison of champion and challenger at scale.

Writes N shadow scores (a challenger in shadow at the default share 0.1 of a million scored
denials is 100,000) and outcomes for a fifth of their denials through the service's own
functions into a fresh SQLite file, then times :func:`serving.live_comparison.live_comparison`,
what the model page and ``promote --live`` run, as the model page asks for it
(:func:`serving.page_cache.live_comparison`): a first view, which computes it, and a repeat
view with nothing new recorded, which reads the kept result; the median of repeated runs with
the spread (min-max).

    nice .venv/bin/python benchmarks/shadow_comparison.py --rows 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
from harness import timed
from sqlalchemy.orm import Session, sessionmaker

from serving.database import make_engine, session_factory, upgrade_database
from serving.live_comparison import LiveComparison
from serving.page_cache import ResultCache, live_comparison
from serving.records import Feedback
from serving.repository import record_shadow_scores

CAUSES = ("coding", "eligibility", "authorization", "timely_filing")
CHUNK = 10_000


def shadow_rows(rows: int, seed: int) -> list[dict]:
    """Shadow scores of ``rows`` denials; the two models agree on most root causes."""
    rng = np.random.default_rng(seed)
    champion = rng.uniform(size=rows)
    challenger = np.clip(champion + rng.normal(0, 0.1, rows), 0, 1)
    causes = rng.integers(0, len(CAUSES), rows)
    moved = np.where(rng.uniform(size=rows) < 0.1, (causes + 1) % len(CAUSES), causes)
    scored_at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    return [
        {
            "request_id": f"r{n}",
            "denial_id": f"D-{n}",
            "scored_at": scored_at + dt.timedelta(seconds=n),
            "input_hash": f"{n:064x}",
            "model_version": "2",
            "champion_version": "1",
            "root_cause": CAUSES[moved[n]],
            "recovery_probability": float(challenger[n]),
            "priority": float(challenger[n] * 100),
            "champion_root_cause": CAUSES[causes[n]],
            "champion_recovery_probability": float(champion[n]),
            "champion_priority": float(champion[n] * 100),
        }
        for n in range(rows)
    ]


def outcomes(rows: int, seed: int) -> list[Feedback]:
    """Outcomes (half recovered) and reviewed causes for every fifth denial."""
    rng = np.random.default_rng(seed + 1)
    feedback = []
    for n in range(0, rows, 5):
        recovered = rng.uniform() < 0.5
        feedback.append(
            Feedback(
                idempotency_key=f"k{n}",
                denial_id=f"D-{n}",
                caller="benchmark",
                corrected_root_cause=CAUSES[n % len(CAUSES)],
                resolution="overturned_on_appeal" if recovered else "written_off",
                recovered_amount=100.0 if recovered else 0.0,
                request_hash=f"{n:064x}",
            )
        )
    return feedback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="shadow-comparison-"))
    url = f"sqlite:///{folder / 'records.db'}"
    upgrade_database(url)
    sessions = session_factory(make_engine(url))
    rows = shadow_rows(args.rows, 3)
    with sessions() as session:
        for start in range(0, len(rows), CHUNK):
            record_shadow_scores(session, rows[start : start + CHUNK])
        session.add_all(outcomes(args.rows, 3))
        session.commit()
    live = compare(sessions, None)
    assert live is not None
    print("\n".join(live.lines()))
    print(f"\n{args.rows:,} shadow scores, {args.rows // 5:,} outcomes, SQLite\n")
    print("| the model page's live comparison | median ms | min-max ms |")
    print("|---|---:|---:|")
    for name, cache in (("first view", None), ("repeat view, nothing new", ResultCache(4))):
        median, low, high = timed(lambda cache=cache: compare(sessions, cache), args.repeats)
        print(f"| {name} | {median:,.0f} | {low:,.0f}-{high:,.0f} |")


def compare(sessions: sessionmaker[Session], cache: ResultCache | None) -> LiveComparison | None:
    """The model page's comparison: a first view (a cache of its own each time) or a repeat."""
    with sessions() as session:
        return live_comparison(cache or ResultCache(1), session, None)


if __name__ == "__main__":
    main()
