"""Outcomes linked from later remittances, recorded in the service so they resolve denials.

``denial-triage link-outcomes`` writes a history file; the service learns of those outcomes
only through feedback. :func:`record_outcomes` stores each ended denial's outcome of such a
history as feedback from ``link-outcomes``, once (its idempotency key is the outcome itself),
for the denials the service scored, so the worklist takes them off the open list and
``train --include-feedback`` sees them as it sees a reviewer's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.records import LatestScore
from serving.repository import save_feedback
from serving.schemas import FeedbackIn
from serving.worklist_records import CHUNK, batched

CALLER = "link-outcomes"
OUTCOME_COLUMNS = ("denial_id", "resolution", "recovered_amount", "resolved_date")


@dataclass
class OutcomeReport:
    """What recording a history's outcomes did."""

    recorded: int = 0
    already_recorded: int = 0
    not_scored: int = 0
    problems: list[str] = field(default_factory=list)


def ended(history: pd.DataFrame) -> pd.DataFrame:
    """The rows of a history whose denial ended (a resolution other than "open")."""
    missing = sorted(set(OUTCOME_COLUMNS) - set(history.columns))
    if missing:
        raise ValueError(f"the history has no {', '.join(missing)} column: run link-outcomes")
    rows = history[history["resolution"].notna() & (history["resolution"] != "open")]
    return rows[list(OUTCOME_COLUMNS)]


def outcome_feedback(row: dict[str, Any]) -> FeedbackIn:
    """A history row's outcome as the feedback ``POST /v1/feedback`` would take."""
    amount = row["recovered_amount"]
    day = row["resolved_date"]
    amount = (
        None if amount is None or (isinstance(amount, float) and math.isnan(amount)) else amount
    )
    day = None if day is None or pd.isna(day) else pd.Timestamp(day).date().isoformat()
    key = f"{CALLER}:{row['denial_id']}:{row['resolution']}:{day or ''}"
    return FeedbackIn(
        idempotency_key=key,
        denial_id=str(row["denial_id"]),
        resolution=row["resolution"],
        recovered_amount=None if amount is None else float(amount),
        resolved_date=day,
    )


def record_outcomes(session: Session, history: pd.DataFrame) -> OutcomeReport:
    """Store the ended denials' outcomes of ``history`` as feedback, for scored denials only.

    Every row is checked first, as the API checks feedback; any bad row stops everything, named
    by its row number (from 1, as ``validate`` counts) and field, and nothing is stored.
    """
    report = OutcomeReport()
    rows = ended(history)
    bodies = []
    for number, row in zip(rows.index, rows.to_dict("records"), strict=True):
        try:
            bodies.append(outcome_feedback(row))
        except ValidationError as exc:
            report.problems += [
                f"row {number + 1}, {'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in exc.errors()
            ]
    if report.problems:
        return report
    scored = _scored(session, [body.denial_id for body in bodies])
    for body in bodies:
        if body.denial_id not in scored:
            report.not_scored += 1
            continue
        payload = body.model_dump(mode="json", exclude={"idempotency_key"})
        _, created = save_feedback(session, body.idempotency_key, payload, CALLER)
        report.recorded += created
        report.already_recorded += not created
    return report


def _scored(session: Session, denial_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in batched(denial_ids, CHUNK):
        query = select(LatestScore.denial_id).where(LatestScore.denial_id.in_(chunk))
        found.update(session.scalars(query))
    return found
