"""Reviewer feedback and later outcomes, laid over a history before training.

``denial-triage train --include-feedback`` reads the service's feedback (corrected or confirmed
root causes, resolutions, recovered amounts) from its records and hands it here as a frame, which
wins over the history's own labels for the same denials, so what reviewers teach the service
reaches the next model. Training never opens the service's database itself: the layers point
down (``serving`` reads its records, ``training`` takes frames).
"""

from __future__ import annotations

import pandas as pd

from features.contract import validate

LABELS = ("root_cause", "resolution", "recovered_amount", "resolved_date")
NOTHING_RECOVERED = frozenset({"written_off", "billed_to_patient"})


def apply_feedback(history: pd.DataFrame, feedback: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The history with feedback labels laid over it, and how many denials they changed."""
    if feedback.empty:
        return history, 0
    labels = feedback.set_index("denial_id")
    merged = history.copy()
    matched = merged["denial_id"].isin(labels.index)
    keys = merged.loc[matched, "denial_id"]
    for column in LABELS:
        given = keys.map(labels[column])
        present = given.notna()
        merged.loc[given.index[present], column] = given[present].to_numpy()
    outcome_without_amount = matched & merged["resolution"].isin(NOTHING_RECOVERED)
    merged.loc[outcome_without_amount & merged["recovered_amount"].isna(), "recovered_amount"] = 0.0
    merged.loc[merged["resolution"] == "open", ["recovered_amount", "resolved_date"]] = None
    result = validate(merged)
    if not result.ok:
        shown = "; ".join(str(e) for e in result.errors[:10])
        raise ValueError(f"feedback makes the history break the contract: {shown}")
    return result.frame, int(matched.sum())
