"""Heavy page results kept between views: payer alerts and the live comparison.

``/ui/payers`` reruns the payer alert detection over every scored denial of the last year and
more (seconds at 200,000 denials), and ``/ui/model`` compares champion and challenger over
every shadow score (seconds at 100,000). Both are functions of the records alone, so a view
keys its result on what it is computed from (:func:`table_versions`: the newest score,
outcome or shadow score, with the count that catches a row committed late under a lower id,
and the query's own parameters): a repeat view with nothing new answers from memory, and a new
score, outcome or shadow score makes a new key, so the next view recomputes. The tables read
are append-only, which is what makes their newest id and count a faithful version.

The cache is bounded (least recently used out first) and thread-safe; views of one key that
arrive while it is being computed wait for that computation instead of starting their own,
since two pages of seconds each on two cores would slow each other and every request beside
them. Each replica keeps its own: a key read from the shared database is right for every one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from serving import payer_watch
from serving.live_comparison import LiveComparison
from serving.live_comparison import live_comparison as compare_live
from serving.records import Feedback, ScoreRecord, ShadowScore
from training.payer_alerts import PayerAlert

T = TypeVar("T")


@dataclass(frozen=True)
class TableVersion:
    """An append-only table's newest row id and row count: a new row changes one of them."""

    newest_id: int | None
    rows: int


def table_versions(session: Session, *tables: Any) -> tuple[TableVersion, ...]:
    """Each table's newest id (from its primary key) and row count (a scan of an index, a few
    milliseconds at 100,000 rows on SQLite: the count catches a row that PostgreSQL committed
    after a newer one, under a lower id)."""
    versions = []
    for table in tables:
        newest, rows = session.execute(select(func.max(table.id), func.count(table.id))).one()
        versions.append(TableVersion(newest, rows))
    return tuple(versions)


class ResultCache:
    """At most ``entries`` results by key, the least recently used dropped first."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._results: OrderedDict[Hashable, Future[Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0  # results computed (misses): what the tests and the benchmark count

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The result for ``key``: kept, being computed for another view (waited for), or
        computed now by ``compute`` and kept. A failed computation is not kept."""
        with self._lock:
            kept = self._results.get(key)
            if kept is not None:
                self._results.move_to_end(key)
            else:
                pending = self._results[key] = Future()
                self.computed += 1
                self._evict()
        if kept is not None:
            return kept.result()
        return self._compute(key, pending, compute)

    def _compute(self, key: Hashable, pending: Future[Any], compute: Callable[[], T]) -> T:
        try:
            result = compute()
        except BaseException as exc:
            with self._lock:
                if self._results.get(key) is pending:
                    del self._results[key]  # the next view tries again
            pending.set_exception(exc)  # the views waiting for it fail alike
            raise
        pending.set_result(result)
        return result

    def _evict(self) -> None:
        """Drop the least recently used results past the bound (called locked)."""
        while len(self._results) > self.entries:
            self._results.popitem(last=False)


# ---------------------------------------------------------------------------- the pages


def open_payer_alerts(cache: ResultCache, session: Session) -> tuple[PayerAlert, ...]:
    """:func:`serving.payer_watch.open_alerts`, kept until a score or an outcome arrives.

    The key is read before the alerts, in the same session: a row written between the two can
    make a result newer than its key (recomputed at the next view), never older."""
    key = ("payer alerts", *table_versions(session, ScoreRecord, Feedback))
    return cache.get(key, lambda: tuple(payer_watch.open_alerts(session)))


def live_comparison(
    cache: ResultCache, session: Session, challenger_version: str | None
) -> LiveComparison | None:
    """:func:`serving.live_comparison.live_comparison`, kept until a shadow score, a score
    (a confirmed root cause is read from the score it confirmed) or an outcome arrives."""
    tables = table_versions(session, ShadowScore, ScoreRecord, Feedback)
    key = ("live comparison", challenger_version, *tables)
    return cache.get(key, lambda: compare_live(session, challenger_version))
