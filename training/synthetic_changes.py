"""Payer behaviour changes injected into a synthetic history, with their truth.

A payer that starts denying a procedure family with one code far more often (a new edit, a new
prior-authorization list) shows up in the remittances as a step in that cell's denial volume
from one day on. ``generate --payer-changes N`` injects N such steps, each in a distinct
payer x primary CARC x procedure family cell (the family as :func:`features.procedures.
procedure_family` reads the procedure code, so the truth names what any detector can see):
from the onset date every denial of the cell gains Poisson(multiplier - 1) copies, dated
within two weeks of it. The copies are new denials (new ids and claim ids), so the history
grows by the extra denials.

``generate --overturn-changes N`` injects N changes of another kind, each in a cell of its own:
from the onset the payer upholds more of the cell's denials, so each outcome decided on or after
it (resolved then, or still open at the history's end) that would have been recovered is lost
with probability ``1 - 1 / multiplier``: the recovered share falls to ``1 / multiplier`` of its
level. Keyed by the day outcomes are decided, not by denial date: a payer changes how it
decides appeals and corrections from a day on, whatever the denial's age. Nothing else of the
history changes; the truth's recovery probability and eventual outcome follow.

Only cells busy enough are chosen (:data:`MIN_MONTHLY_DENIALS`, about a denial a working
day): a payer tripling a code it sends twice a month is not a change a team can act on within
two weeks, and no test can tell it from chance then. Two weeks of a cell with fewer than one
denial a working day hold under 10 denials, while a doubling must stand out among thousands of
cells at about one false alert a month (measured: on cells of 6 to 12 denials a month the
detector finds under a third of the changes within 14 days, whatever its threshold). Onsets
leave a year of history before them (a baseline) and :data:`MIN_DAYS_AFTER` days after (to be
found in).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.procedures import procedure_families
from training.payer_alerts import OVERTURN, RECOVERED, VOLUME, in_the_cell

MIN_MONTHLY_DENIALS = 20.0  # the cell's mean denials per 30 days over the history
MULTIPLIER_RANGE = (2.0, 4.0)  # "at twice to four times its usual rate"
MIN_DAYS_BEFORE = 365  # a year of baseline before each onset
MIN_DAYS_AFTER = 45  # each change has its 14-day window and more inside the history
# Copies fall within two weeks of the denial they copy: spread so, a new edit's denials arrive
# about as a Poisson flow does, not in clumps of one claim's copies on one day.
DATE_JITTER_DAYS = 14
DATE_COLUMNS = ("service_date", "submission_date", "denial_date", "as_of_date", "resolved_date")
TRUTH_FIELDS = ("payer_id", "carc", "procedure_family", "onset_date", "multiplier", "kind")


@dataclass(frozen=True)
class PayerChange:
    """One injected step from ``onset_date``: of :data:`VOLUME`, the cell's denial volume times
    ``multiplier``; of :data:`OVERTURN`, its recovered share divided by ``multiplier``."""

    payer_id: str
    carc: str  # the primary adjustment, group code included, e.g. CO-197
    procedure_family: str
    onset_date: dt.date
    multiplier: float
    kind: str = VOLUME

    @property
    def cell(self) -> tuple[str, str, str]:
        return (self.payer_id, self.carc, self.procedure_family)


def denial_cells(history: pd.DataFrame) -> pd.DataFrame:
    """Payer, primary CARC and procedure family of each denial (the cells changes live in)."""
    return pd.DataFrame(
        {
            "payer_id": history["payer_id"].astype(str).to_numpy(),
            "carc": [codes[0] if len(codes) else "" for codes in history["carc_codes"]],
            "procedure_family": procedure_families(history["procedure_code"]),
        },
        index=history.index,
    )


def choose_changes(
    sample: pd.DataFrame,
    count: int,
    rng: np.random.Generator,
    *,
    start: dt.date,
    end: dt.date,
    scale: float = 1.0,
    kind: str = VOLUME,
    taken: Collection[tuple[str, str, str]] = (),
) -> list[PayerChange]:
    """``count`` changes of ``kind`` in distinct cells busy enough in ``sample`` (a share
    ``1 / scale`` of the history) and not ``taken`` by other changes, onsets drawn uniformly
    where a baseline and a detection window fit."""
    if count <= 0:
        return []
    first_onset = start + dt.timedelta(days=MIN_DAYS_BEFORE)
    last_onset = end - dt.timedelta(days=MIN_DAYS_AFTER)
    if last_onset <= first_onset:
        raise ValueError(
            f"the history spans {start} to {end}: too short for payer changes, which need "
            f"{MIN_DAYS_BEFORE} days before and {MIN_DAYS_AFTER} days after each onset"
        )
    monthly = _monthly_volume(sample, start, end) * scale
    busy, taken = monthly[monthly >= MIN_MONTHLY_DENIALS].index, set(taken)
    eligible = [cell for cell in busy if cell not in taken]
    if len(eligible) < count:
        raise ValueError(
            f"only {len(eligible)} payer x code x procedure family cells see "
            f"{MIN_MONTHLY_DENIALS:g}+ denials a month; ask for fewer payer changes or more rows"
        )
    picks = rng.choice(len(eligible), size=count, replace=False)
    span = (last_onset - first_onset).days
    return [
        PayerChange(
            payer_id=eligible[pick][0],
            carc=eligible[pick][1],
            procedure_family=eligible[pick][2],
            onset_date=first_onset + dt.timedelta(days=int(rng.integers(0, span + 1))),
            multiplier=round(float(rng.uniform(*MULTIPLIER_RANGE)), 1),
            kind=kind,
        )
        for pick in picks
    ]


def _monthly_volume(sample: pd.DataFrame, start: dt.date, end: dt.date) -> pd.Series:
    """Mean denials per 30 days of each cell over the covered period."""
    cells = denial_cells(sample)
    months = ((end - start).days + 1) / 30.0
    counts = cells.groupby(["payer_id", "carc", "procedure_family"]).size()
    return counts[[carc != "" for _, carc, _ in counts.index]] / months


def inject_changes(
    chunk: pd.DataFrame,
    changes: list[PayerChange],
    rng: np.random.Generator,
    *,
    first_id: int,
    end: dt.date,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Copies of the chunk's denials in changed cells after their onsets, numbered from
    ``first_id``, and the position in the chunk each copies (the caller appends them and
    their truth; the chunk itself is left as it is)."""
    changes = [change for change in changes if change.kind == VOLUME]
    if not changes:
        return chunk.iloc[0:0], np.zeros(0, dtype=int)
    cells = denial_cells(chunk)
    denial_day = pd.to_datetime(chunk["denial_date"]).dt.date
    extra_copies = np.zeros(len(chunk), dtype=int)
    for change in changes:
        in_cell = (in_the_cell(cells, *change.cell) & (denial_day >= change.onset_date)).to_numpy()
        extra_copies[in_cell] = rng.poisson(change.multiplier - 1.0, in_cell.sum())
    sources = np.repeat(np.arange(len(chunk)), extra_copies)
    copies = chunk.iloc[sources].reset_index(drop=True)
    onsets = _onset_of_each(cells.iloc[sources], changes)
    return _as_new_denials(copies, onsets, rng, first_id=first_id, end=end), sources


def lower_recovery(
    chunk: pd.DataFrame,
    truth: pd.DataFrame,
    changes: list[PayerChange],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The chunk and its truth (rows in the same order) with each :data:`OVERTURN` change
    applied: in its cell, each outcome decided on or after the onset that would have been
    recovered is lost with probability ``1 - 1 / multiplier`` (written off, nothing recovered;
    still open ones lose it in their eventual outcome), and the true probability of recovery
    of every such outcome is divided by the multiplier."""
    changes = [change for change in changes if change.kind == OVERTURN]
    if not changes:
        return chunk, truth
    chunk, truth = chunk.copy(), truth.copy()
    cells = denial_cells(chunk)
    resolved = pd.to_datetime(chunk["resolved_date"])
    for change in changes:
        in_cell = in_the_cell(cells, *change.cell).to_numpy()
        decided_after = (resolved.isna() | (resolved >= pd.Timestamp(change.onset_date))).to_numpy()
        chosen = in_cell & decided_after
        upheld = rng.random(len(chunk)) >= 1.0 / change.multiplier
        lost = chosen & upheld & truth["true_recovered"].to_numpy(dtype=bool)
        truth.loc[chosen, "true_recovery_probability"] /= change.multiplier
        truth.loc[lost, "true_recovered"] = False
        ended = lost & chunk["resolution"].isin(RECOVERED).to_numpy()
        chunk.loc[ended, "resolution"] = "written_off"
        chunk.loc[ended, "recovered_amount"] = 0.0
    return chunk, truth


def _onset_of_each(cells: pd.DataFrame, changes: list[PayerChange]) -> np.ndarray:
    by_cell = {change.cell: change.onset_date for change in changes}
    keys = zip(cells["payer_id"], cells["carc"], cells["procedure_family"], strict=True)
    return np.array([by_cell[key] for key in keys], dtype="datetime64[D]")


def _as_new_denials(
    copies: pd.DataFrame,
    onsets: np.ndarray,
    rng: np.random.Generator,
    *,
    first_id: int,
    end: dt.date,
) -> pd.DataFrame:
    """New ids and claim ids; every date moved by one small shift that keeps the copy after
    its change's onset and its outcome inside the history."""
    shift = rng.integers(-DATE_JITTER_DAYS, DATE_JITTER_DAYS + 1, len(copies))
    denial = pd.to_datetime(copies["denial_date"]).to_numpy().astype("datetime64[D]")
    # A date before the onset is reflected about it: the extra volume is then as even in the
    # first two weeks as later (a step, not a two-week ramp).
    shifted = denial + shift.astype("timedelta64[D]")
    early = shifted < onsets
    reflected = onsets + (onsets - shifted) - np.timedelta64(1, "D")
    shift[early] = (reflected[early] - denial[early]).astype(int)
    # The copy's last date (its outcome's, or its own while open) must stay inside the history.
    resolved = pd.to_datetime(copies["resolved_date"]).to_numpy().astype("datetime64[D]")
    latest = np.where(np.isnat(resolved), denial, np.maximum(resolved, denial))
    outside = latest + shift.astype("timedelta64[D]") > np.datetime64(end)
    shift[outside] = -np.abs(shift[outside])
    shift[denial + shift.astype("timedelta64[D]") < onsets] = 0
    for column in DATE_COLUMNS:
        copies[column] = pd.to_datetime(copies[column]) + pd.to_timedelta(shift, unit="D")
    copies["denial_id"] = [f"D{first_id + i:09d}" for i in range(len(copies))]
    copies["claim_id"] = [f"C{n:010d}" for n in rng.integers(0, 10**10, len(copies))]
    return copies


def write_changes_truth(changes: list[PayerChange], path: Path) -> Path:
    """The injected changes as CSV: payer, code, procedure family, onset date, multiplier."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([asdict(change) for change in changes], columns=list(TRUTH_FIELDS))
    frame.to_csv(path, index=False)
    return path


def read_changes_truth(path: Path) -> list[PayerChange]:
    """The changes :func:`write_changes_truth` wrote."""
    frame = pd.read_csv(path, dtype={"payer_id": str, "carc": str, "procedure_family": str})
    if "kind" not in frame:  # written before overturn changes: volume changes only
        frame["kind"] = VOLUME
    return [
        PayerChange(
            payer_id=row.payer_id,
            carc=row.carc,
            procedure_family=row.procedure_family,
            onset_date=dt.date.fromisoformat(str(row.onset_date)),
            multiplier=float(row.multiplier),
            kind=str(row.kind),
        )
        for row in frame.itertuples()
    ]


def default_changes_truth_path(history: Path) -> Path:
    """Where ``generate --payer-changes N --with-truth`` records the changes: beside it."""
    return history.with_name(f"{history.stem}.payer_changes.csv")
