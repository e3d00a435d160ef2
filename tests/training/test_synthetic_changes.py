"""``generate --payer-changes N --with-truth``: the steps are injected where the truth says,
at about their multipliers, as valid new denials, and the rest of the history is unchanged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from denial_triage.cli import app
from features.contract import load_denials
from training.payer_alerts import OVERTURN, RECOVERED, VOLUME
from training.synthetic import build_world, generate_history
from training.synthetic_changes import (
    MULTIPLIER_RANGE,
    PayerChange,
    choose_changes,
    default_changes_truth_path,
    denial_cells,
    read_changes_truth,
    write_changes_truth,
)

ROWS, SEED, CHANGES, MONTHS = 60_000, 11, 2, 15


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A short history with two injected changes, and the same history without them."""
    folder = tmp_path_factory.mktemp("payer-changes")
    history, plain = folder / "history.parquet", folder / "plain.parquet"
    truth = default_changes_truth_path(history)
    generate_history(ROWS, SEED, history, months=MONTHS, payer_changes=CHANGES, changes_out=truth)
    generate_history(ROWS, SEED, plain, months=MONTHS)
    return history, plain


def test_the_truth_names_each_change_with_its_onset_and_multiplier(changed) -> None:
    history, _ = changed
    truth = pd.read_csv(default_changes_truth_path(history))
    assert list(truth.columns) == [
        "payer_id",
        "carc",
        "procedure_family",
        "onset_date",
        "multiplier",
        "kind",
    ]
    assert (truth["kind"] == VOLUME).all()
    assert len(truth) == CHANGES
    assert truth[["payer_id", "carc", "procedure_family"]].drop_duplicates().shape[0] == CHANGES
    assert truth["multiplier"].between(*MULTIPLIER_RANGE).all()


def test_each_changed_cell_steps_up_at_its_onset_by_about_its_multiplier(changed) -> None:
    history, _ = changed
    denials = pd.read_parquet(history)
    cells = denial_cells(denials)
    dates = pd.to_datetime(denials["denial_date"])
    for change in read_changes_truth(default_changes_truth_path(history)):
        in_cell = (
            (cells["payer_id"] == change.payer_id)
            & (cells["carc"] == change.carc)
            & (cells["procedure_family"] == change.procedure_family)
        )
        onset = pd.Timestamp(change.onset_date)
        before = (in_cell & dates.between(onset - pd.Timedelta(days=120), onset, "left")).sum()
        after = (in_cell & dates.between(onset, onset + pd.Timedelta(days=40), "left")).sum()
        ratio = (after / 40) / (before / 120)
        assert ratio == pytest.approx(change.multiplier, rel=0.4), change


def test_the_extra_denials_are_new_valid_denials_and_the_rest_is_unchanged(changed) -> None:
    history, plain = changed
    result = load_denials(history)
    assert result.ok, result.errors[:5]
    denials, original = result.frame, pd.read_parquet(plain)
    assert denials["denial_id"].is_unique and len(denials) > ROWS
    first = denials.iloc[:ROWS].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, load_denials(plain).frame)
    assert len(original) == ROWS


@pytest.fixture(scope="module")
def overturned(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, list[PayerChange]]:
    """The volume-changed history with two overturn changes added, and without them, each
    with its per-denial truth; and the changes."""
    folder = tmp_path_factory.mktemp("overturn-changes")
    frames = []
    for name, overturns in (("overturned", 2), ("volume-only", 0)):
        history = folder / f"{name}.parquet"
        truth = folder / f"{name}.truth.parquet"
        generate_history(
            ROWS,
            SEED,
            history,
            months=MONTHS,
            payer_changes=CHANGES,
            overturn_changes=overturns,
            truth_out=truth,
            changes_out=default_changes_truth_path(history),
        )
        frames += [pd.read_parquet(history), pd.read_parquet(truth)]
    changes = read_changes_truth(default_changes_truth_path(folder / "overturned.parquet"))
    return (*frames, changes)


def test_overturn_changes_lower_the_recovered_share_from_onset_and_nothing_else(
    overturned,
) -> None:
    changed, changed_truth, plain, plain_truth, changes = overturned
    volume = [c for c in changes if c.kind == VOLUME]
    overturns = [c for c in changes if c.kind == OVERTURN]
    assert len(volume) == CHANGES and len(overturns) == 2
    assert {c.cell for c in overturns}.isdisjoint({c.cell for c in volume})
    assert changed["denial_id"].equals(plain["denial_id"])  # the volume changes as they were
    cells = denial_cells(plain)
    resolved = pd.to_datetime(plain["resolved_date"])
    touched = np.zeros(len(plain), dtype=bool)
    for change in overturns:
        in_cell = (cells[["payer_id", "carc", "procedure_family"]] == list(change.cell)).all(axis=1)
        decided = in_cell & (resolved.isna() | (resolved >= pd.Timestamp(change.onset_date)))
        touched |= decided.to_numpy()
        won = decided & plain_truth["true_recovered"]
        kept = changed_truth.loc[won, "true_recovered"].mean()
        assert kept == pytest.approx(1 / change.multiplier, abs=0.2), change
        ratio = (
            plain_truth.loc[decided, "true_recovery_probability"]
            / changed_truth.loc[decided, "true_recovery_probability"]
        )
        assert np.allclose(ratio, change.multiplier)
        was_won = plain.loc[decided, "resolution"].isin(RECOVERED)
        now_lost = changed.loc[decided, "resolution"] == "written_off"
        assert (now_lost[was_won] == ~changed_truth.loc[decided, "true_recovered"][was_won]).all()
    # Outside the changed cells' decisions since onset, every value is as it was.
    untouched = ~touched
    pd.testing.assert_frame_equal(changed[untouched], plain[untouched])
    pd.testing.assert_frame_equal(changed_truth[untouched], plain_truth[untouched])
    assert (
        changed.loc[touched, "recovered_amount"].fillna(0)
        <= plain.loc[touched, "recovered_amount"].fillna(0)
    ).all()


def test_changes_need_busy_cells_and_room_around_the_onsets() -> None:
    world = build_world(SEED, months=MONTHS)
    sample = pd.DataFrame(
        {
            "payer_id": ["P1"] * 10,
            "carc_codes": [["CO-197"]] * 10,
            "procedure_code": ["27447"] * 10,
        }
    )
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="ask for fewer payer changes or more rows"):
        choose_changes(sample, 1, rng, start=world.start, end=world.end)
    with pytest.raises(ValueError, match="too short for payer changes"):
        choose_changes(sample, 1, rng, start=world.end - dt.timedelta(days=100), end=world.end)


def test_the_truth_reads_back_as_written(tmp_path: Path) -> None:
    changes = [
        PayerChange("MA003", "CO-197", "surgery", dt.date(2026, 3, 2), 2.5),
        PayerChange("MA003", "CO-16", "radiology", dt.date(2026, 4, 2), 3.0, OVERTURN),
    ]
    assert read_changes_truth(write_changes_truth(changes, tmp_path / "t.csv")) == changes


def test_generate_says_why_it_cannot_inject_that_many_changes(tmp_path: Path) -> None:
    out = tmp_path / "gen.parquet"
    result = CliRunner().invoke(
        app, ["generate", "--rows", "500", "--out", str(out), "--payer-changes", "5"]
    )
    assert result.exit_code == 1
    assert "ask for fewer payer changes or more rows" in result.output
