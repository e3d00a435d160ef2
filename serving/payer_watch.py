"""Payer behaviour alerts over the service's records: what the reviewers' page, the
``monitor payers`` command and the Prometheus gauges read.

The scored denials' facts (payer, codes, procedure, denial date: no patient data is kept) and
their recorded outcomes go to :func:`training.payer_alerts.detect_payer_alerts`. Only the
denials a test needs are read: those from a baseline window before ``since`` on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace

import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from serving import metrics
from serving.records import DenialStatus, LatestScore, ScoreRecord
from serving.worklist_records import batched
from training.payer_alerts import (
    AlertSettings,
    PayerAlert,
    affected_by,
    denial_cells,
    detect_payer_alerts,
    top_remarks,
)

logger = logging.getLogger(__name__)
OPEN_ALERT_DAYS = 30  # an alert raised within the data's last 30 days is open
GAUGE_REFRESH_SECONDS = 300.0  # a scrape every 15 s must not rerun every payer's test
REMARK_CHUNK = 2000  # denial ids per statement when reading an alert's remark codes


def scored_denials(session: Session, since: dt.date, settings: AlertSettings) -> pd.DataFrame:
    """Each scored denial dated from a baseline window before ``since`` on: payer (and its
    name where a remittance gave one), primary code, procedure, denial date and latest
    recorded outcome, read from the narrow latest-score rows. The audit records' JSON is not
    parsed for every denial: that took 85% of a first view (1.6 of 2.0 s at 50,000 denials);
    the remark codes an alert shows are read afterwards, for its own denials only."""
    earliest = since - dt.timedelta(days=settings.baseline_days + settings.guard_days)
    query = (
        select(
            LatestScore.denial_id,
            LatestScore.payer_id,
            LatestScore.payer_name,
            LatestScore.primary_code,
            LatestScore.procedure_code,
            LatestScore.denial_date,
            DenialStatus.resolution,
            DenialStatus.resolved_date,
        )
        .outerjoin(DenialStatus, DenialStatus.denial_id == LatestScore.denial_id)
        .where(LatestScore.denial_date >= earliest.isoformat())
    )
    # Plain rows by column: the ORM's result rows cost more to build a frame of than the read.
    rows = session.connection().execute(query).fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    frame = pd.DataFrame(dict(zip(COLUMNS, columns, strict=True)))
    frame = frame.dropna(subset=["payer_id", "primary_code", "denial_date"])
    # The detector reads the contract's code lists; only the primary code places a denial.
    frame["carc_codes"] = [[code] for code in frame.pop("primary_code")]
    return frame.reset_index(drop=True)


COLUMNS = (
    "denial_id",
    "payer_id",
    "payer_name",
    "primary_code",
    "procedure_code",
    "denial_date",
    "resolution",
    "resolved_date",
)


def with_remark_codes(
    session: Session, alert: PayerAlert, denials: pd.DataFrame, cells: pd.DataFrame
) -> PayerAlert:
    """``alert`` with the most frequent remark codes among the denials it counts as affected
    (``cells``: :func:`training.payer_alerts.denial_cells` of ``denials``), read from their
    audit records."""
    affected = denials.loc[affected_by(alert, cells), "denial_id"].tolist()
    remarks = ScoreRecord.facts["rarc_codes"]
    read = select(remarks).join(LatestScore, LatestScore.score_id == ScoreRecord.id)
    listed = [
        codes
        for chunk in batched(affected, REMARK_CHUNK)
        for codes in session.scalars(read.where(LatestScore.denial_id.in_(chunk)))
    ]
    return replace(alert, remark_codes=top_remarks(listed))


def payer_names(denials: pd.DataFrame) -> dict[str, str]:
    """Each payer's name as its remittances gave it, where any did."""
    if "payer_name" not in denials:
        return {}
    named = denials.dropna(subset=["payer_name"])
    return dict(zip(named["payer_id"].astype(str), named["payer_name"].astype(str), strict=True))


def alerts_from_records(
    session: Session, since: dt.date, settings: AlertSettings | None = None
) -> list[PayerAlert]:
    """The payer behaviour alerts raised on or after ``since`` over the scored denials."""
    settings = settings or AlertSettings()
    denials = scored_denials(session, since, settings)
    alerts = detect_payer_alerts(denials, since, settings, payer_names(denials))
    if not alerts:
        return []
    cells = denial_cells(denials)
    return [with_remark_codes(session, alert, denials, cells) for alert in alerts]


def open_alerts(session: Session, settings: AlertSettings | None = None) -> list[PayerAlert]:
    """Alerts raised within the last :data:`OPEN_ALERT_DAYS` of the records' denial dates
    (the data's days, not the clock's: a site that scores last month's remittances today
    still sees last month's changes)."""
    latest = session.scalar(
        select(LatestScore.denial_date).order_by(LatestScore.denial_date.desc()).limit(1)
    )
    if not latest:
        return []
    since = dt.date.fromisoformat(latest) - dt.timedelta(days=OPEN_ALERT_DAYS - 1)
    return alerts_from_records(session, since, settings)


def set_gauges(alerts: Sequence[PayerAlert]) -> None:
    """The open alerts' count and the denials they affect, for Prometheus."""
    metrics.PAYER_ALERTS_OPEN.set(len(alerts))
    metrics.PAYER_ALERT_DENIALS.set(sum(alert.denials_affected for alert in alerts))


class GaugeRefresh:
    """Recounts the payer alert gauges when a scrape finds them older than
    :data:`GAUGE_REFRESH_SECONDS` (the page recounts them too, whenever it is read)."""

    def __init__(
        self,
        every_seconds: float = GAUGE_REFRESH_SECONDS,
        alerts: Callable[[Session], Sequence[PayerAlert]] | None = None,
    ) -> None:
        self.every_seconds = every_seconds
        self.counted_at: float | None = None
        # The service passes the page's kept alerts (serving.page_cache): nothing new, no rerun.
        self.alerts = alerts or open_alerts

    def refresh(self, session: Callable[[], AbstractContextManager[Session]]) -> None:
        now = time.monotonic()
        if self.counted_at is not None and now - self.counted_at < self.every_seconds:
            return
        try:
            with session() as open_session:
                alerts = self.alerts(open_session)
        except SQLAlchemyError:
            # The database being away must not take /metrics down: the last counts stand.
            logger.warning("payer alert gauges not recounted: the database is unavailable")
            return
        set_gauges(alerts)
        self.counted_at = now
