"""Feedback laid over a history: corrections and outcomes win, the contract still holds."""

from __future__ import annotations

import pandas as pd
import pytest

from training.feedback import apply_feedback


@pytest.fixture
def rows(history: pd.DataFrame) -> pd.DataFrame:
    return history.head(50).reset_index(drop=True)


def labels(**columns: list) -> pd.DataFrame:
    base = {
        "root_cause": [None],
        "resolution": [None],
        "recovered_amount": [None],
        "resolved_date": [None],
    }
    return pd.DataFrame({**base, **columns})


def test_a_corrected_root_cause_and_outcome_replace_the_history_labels(rows: pd.DataFrame) -> None:
    denial = rows.iloc[3]
    feedback = labels(
        denial_id=[denial["denial_id"]],
        root_cause=["payer_error_pricing"],
        resolution=["overturned_on_appeal"],
        recovered_amount=[round(denial["denied_amount"] / 2, 2)],
        resolved_date=[denial["denial_date"] + pd.Timedelta(days=40)],
    )
    merged, changed = apply_feedback(rows, feedback)
    assert changed == 1
    row = merged.iloc[3]
    assert row["root_cause"] == "payer_error_pricing"
    assert row["resolution"] == "overturned_on_appeal"
    assert row["recovered_amount"] == round(denial["denied_amount"] / 2, 2)
    pd.testing.assert_frame_equal(merged.drop(index=3), rows.drop(index=3), check_dtype=False)


def test_a_write_off_without_an_amount_recovers_nothing(rows: pd.DataFrame) -> None:
    denial = rows.iloc[0]
    feedback = labels(
        denial_id=[denial["denial_id"]],
        resolution=["written_off"],
        resolved_date=[denial["denial_date"] + pd.Timedelta(days=90)],
    )
    merged, _ = apply_feedback(rows, feedback)
    assert merged.iloc[0]["recovered_amount"] == 0.0
    assert merged.iloc[0]["root_cause"] == denial["root_cause"]  # no correction given


def test_feedback_that_breaks_the_contract_is_refused(rows: pd.DataFrame) -> None:
    denial = rows.iloc[1]
    feedback = labels(
        denial_id=[denial["denial_id"]],
        resolution=["overturned_on_appeal"],
        recovered_amount=[denial["denied_amount"] * 10],
        resolved_date=[denial["denial_date"] + pd.Timedelta(days=5)],
    )
    with pytest.raises(ValueError, match="recovered_amount"):
        apply_feedback(rows, feedback)


def test_feedback_for_unknown_denials_changes_nothing(rows: pd.DataFrame) -> None:
    merged, changed = apply_feedback(
        rows, labels(denial_id=["not-in-history"], root_cause=["coding"])
    )
    assert changed == 0
    pd.testing.assert_frame_equal(merged, rows, check_dtype=False)
