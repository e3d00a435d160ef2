"""Payer behaviour alerts: a payer starts denying a procedure family with one code far more often.

Method. Denials are counted per day in cells of payer x primary CARC (remark codes pooled: a
payer's RARCs vary from one remittance to the next for the same edit) x procedure family
(:func:`features.procedures.procedure_family`). Each cell's daily count ``x`` is read against
the payer's whole daily denial flow ``n`` as a binomial share: the flow absorbs what moves every
code of the payer at once (volume growth, holidays, a batch of remittances arriving on one day),
so only a change in what the payer denies *for* stands out. Where a site's claim flow per payer
is not known this denial flow is the denominator; it is the one the records always have.

The test is a one-sided window-limited binomial CUSUM (Page 1954; the window limit as in Lai
1995), one per cell:

    S_t = max over onsets t - w < j <= t of  sum_{i=j..t} [x_i log(p1/p0) + (n_i - x_i)
          log((1 - p1)/(1 - p0))]

with ``p0`` the cell's share over a trailing baseline window that ends ``guard_days`` before the
day (so a change does not leak into its own baseline while it is being detected) and ``p1`` the
share at ``design_ratio`` times the odds of ``p0``. Given the payer's flow, a cell's count is
binomial with exactly those odds when the cell's own volume is multiplied (the rest of the payer
unchanged), so this is the likelihood ratio of the change the issue describes, exact at counts
of 0, 1 or 2 where a normal approximation (z-scores, control charts) fails. The sum adds
evidence day by day: a cell with a denial a day alarms within two weeks on a tripling, a busy
one within days on a doubling, at one threshold in nats; by Wald's bound a run in an unchanged
cell reaches ``h`` with probability at most e^-h, so the threshold sets the in-control run
length. The change's start is the onset within the window that maximizes the likelihood ratio
with the share the days since it show (the binomial GLR change point): the design's ``p1``
decides when to alarm, but would place the start of a weak change weeks early. The window
``w`` (``window_days``, 14: the target's two weeks) caps the evidence one alarm may use: a step
climbs within days, while a slow drift of a share (seasons, a growing service line) would
otherwise creep to the threshold over months and be reported as a change it is not; it replaces
an earlier cap that reset the whole run after 21 days (the best onset in the window keeps the
evidence of the last days when older days are dropped). After an alarm the cell's baseline
starts at the change's start: the cell is quiet for the guard and ``relearn_days`` of the new
level, then measured against it, so one change raises one alert and a second change (or a false
alarm's cell) is watched again within three months.

The overturn test is the same test on outcomes: per cell and day an outcome was recorded
(its ``resolved_date``), the ended denials (overturned, paid after correction, written off,
billed to the patient: open ones say nothing yet) are the trials and the lost ones (not
recovered) the events, the alternative doubling the odds of a loss (halving the recovery odds).
Outcomes are counted on the day they became known, not on their denial's date: outcomes arrive
weeks to months after the denial, so a test by denial date found its changes on days long
past, never among the alerts of the last 30 days, and moved them as later outcomes arrived
(replayed month by month on generator seed 11 with only the outcomes resolved by each day:
none of 2-6 overturn alarms was ever open). An outcome without a resolved date counts on its
denial's date. Outcomes are fewer than denials, so its window is a quarter
(``overturn_window_days``): a cell of a denial a day whose recovered share falls from 60% to
20% gives about 0.15 nats a day. Its alerts have kind :data:`OVERTURN`, their start the day the
payer's outcomes changed; the volume test's :data:`VOLUME`. Each alert gives the recovered share
of the cell's outcomes before and after the start (by the day recorded for an overturn alert,
by denial date for a volume one).

Settings (:class:`AlertSettings`) were chosen on generator seeds 11-20 only: a threshold of 5.5
nats, a doubling of the odds (the smallest multiplier the generator injects), a 14-day window, a
year's baseline (90 days to start). Every setting tried there (thresholds 4 to 6, odds ratios
1.5 to 2, windows 10 to 21, a floor on small cells) found 64 to 66 of the 80 injected changes
within 14 days: the misses are multipliers near 2 on cells of 20 to 40 denials a month, where
two weeks hold about 10 to 20 extra denials over a baseline of as many, which chance gives too
often among the thousands of cells tested. The held-out figures are in the README.

Time comes from the data: days are denial dates and resolved dates, never the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import numpy as np
import pandas as pd

from features.procedures import procedure_families

RECOVERED = ("overturned_on_appeal", "paid_after_correction")
ENDED = (*RECOVERED, "written_off", "billed_to_patient")
DAYS_PER_MONTH = 30.0
AFTER_DAYS = 56  # the new level is measured over at most 8 weeks from a change's start


@dataclass(frozen=True)
class AlertSettings:
    """The detector's choices (tuned on generator seeds 11-20, see benchmarks/payer_alerts.py)."""

    design_ratio: float = 2.0  # the smallest multiplier the generator injects
    threshold: float = 5.5  # decision interval h of the volume test, in nats
    window_days: int = 14  # the longest run of days one alarm may sum (the target's 14 days)
    baseline_days: int = 365  # a year, so a season's mix is in every baseline
    min_baseline_days: int = 90  # the test starts once the data hold this much baseline
    guard_days: int = 28
    min_baseline_denials: float = 1.0  # floor on the baseline count: a quiet cell is not zero
    min_baseline_trials: int = 20  # a share measured on fewer is a guess: no test then
    relearn_days: int = 56  # after an alarm, days of the new level that make the baseline
    # The overturn test: the odds that an ended denial is lost (not recovered) doubling, i.e.
    # the recovery odds halving, read from the outcomes recorded so far.
    overturn_design_ratio: float = 2.0
    # 8 nats: with the volume test's false alerts, under one a month per 40 payers on seeds
    # 11-20 (0.38 + 0.49); at 6 and 7 nats 0.94 and 0.61 alone, for a week or two less delay.
    overturn_threshold: float = 8.0
    # Outcomes are few (only ended denials count) and come weeks after the denial: a window of
    # a quarter lets a cell of a denial a day gather the evidence a fall of its recovered
    # share gives (about 0.1-0.2 nats a day), and still drops a drift of years.
    overturn_window_days: int = 91


VOLUME = "denials_up"  # the cell's share of its payer's denials stepped up
OVERTURN = "recovery_down"  # the cell's recovered share of ended denials stepped down
CHANGE_LABELS = {VOLUME: "denials up", OVERTURN: "recovered share down"}


@dataclass(frozen=True)
class Alarm:
    """Where and when a test crossed its threshold (day numbers from the first denial date)."""

    cell: int
    alarm_day: int
    start_day: int
    kind: str = VOLUME


@dataclass(frozen=True)
class PayerAlert:
    """One payer behaviour change, as a reviewer reads it."""

    payer_id: str
    payer_name: str | None
    carc: str
    remark_codes: tuple[str, ...]  # the most frequent RARCs among the new denials
    procedure_family: str
    start_date: dt.date
    alarm_date: dt.date
    monthly_before: float  # denials per 30 days in the baseline window
    monthly_after: float  # denials per 30 days from the start, over up to 8 weeks of data
    share_before: float  # of the payer's denials
    share_after: float
    ratio: float  # share after / share before
    denials_affected: int  # the cell's denials from the start on
    recovered_before: float | None  # recovered share of ended denials, when any ended
    recovered_after: float | None
    kind: str = VOLUME  # which test raised it: VOLUME or OVERTURN

    @property
    def change(self) -> str:
        """What changed, in plain words."""
        return CHANGE_LABELS[self.kind]

    @property
    def worklist_link(self) -> str:
        """The worklist narrowed to the alert's cell from its start: the denials it counts as
        affected, resolved or not."""
        cell = {"payer_id": self.payer_id, "carc": self.carc}
        cell |= {"procedure_family": self.procedure_family}
        since = {"denied_from": self.start_date.isoformat(), "status": "any"}
        return f"/ui/worklist?{urlencode(cell | since)}"


@dataclass(frozen=True)
class DailyCounts:
    """Each cell's denials per day, beside its payer's denials per day."""

    cells: pd.DataFrame  # payer_id, carc, procedure_family; row i is cell i
    first_day: dt.date
    counts: np.ndarray  # cells x days
    payer_flow: np.ndarray  # cells x days: the cell's payer's denials that day
    denial_cell: np.ndarray  # per denial (row order of the cells given): its cell, -1 if left out
    denial_day: np.ndarray  # per denial: its day number

    def date_of(self, day: int) -> dt.date:
        return self.first_day + dt.timedelta(days=int(day))

    def day_of(self, date: dt.date) -> int:
        return (date - self.first_day).days


# ---------------------------------------------------------------------------- counting


def denial_cells(denials: pd.DataFrame) -> pd.DataFrame:
    """Payer, primary CARC and procedure family of each denial, and its denial date."""
    return pd.DataFrame(
        {
            "payer_id": denials["payer_id"].astype(str).to_numpy(),
            "carc": [_primary(codes) for codes in denials["carc_codes"]],
            "procedure_family": procedure_families(denials["procedure_code"]),
            "denial_date": pd.to_datetime(denials["denial_date"]).dt.normalize().to_numpy(),
        },
        index=denials.index,
    )


def _primary(codes: object) -> str:
    if codes is None or isinstance(codes, float) or len(codes) == 0:  # type: ignore[arg-type]
        return ""
    return str(codes[0])  # type: ignore[index]


def daily_counts(cells: pd.DataFrame, *, min_denials: int = 1) -> DailyCounts:
    """Counts per cell and day; cells with fewer than ``min_denials`` in all are left out
    (they cannot reach the threshold, and the matrix stays small)."""
    first = cells["denial_date"].min()
    day = (cells["denial_date"] - first).dt.days.to_numpy()
    days = int(day.max()) + 1
    keys = ["payer_id", "carc", "procedure_family"]
    cell_of = cells.groupby(keys, sort=True).ngroup().to_numpy()
    table = cells[keys].drop_duplicates().sort_values(keys).reset_index(drop=True)
    totals = np.bincount(cell_of, minlength=len(table))
    kept = np.flatnonzero((totals >= min_denials) & (table["carc"] != "").to_numpy())
    payers = pd.Categorical(cells["payer_id"])
    flow_by_payer = np.zeros((len(payers.categories), days), dtype=np.int32)
    np.add.at(flow_by_payer, (payers.codes, day), 1)
    renumber = np.full(len(table), -1)
    renumber[kept] = np.arange(len(kept))
    counts = np.zeros((len(kept), days), dtype=np.int32)
    mine = renumber[cell_of] >= 0
    np.add.at(counts, (renumber[cell_of][mine], day[mine]), 1)
    payer_of_cell = payers.categories.get_indexer(table["payer_id"])
    return DailyCounts(
        cells=table.iloc[kept].reset_index(drop=True),
        first_day=pd.Timestamp(first).date(),
        counts=counts,
        payer_flow=flow_by_payer[payer_of_cell[kept]],
        denial_cell=renumber[cell_of],
        denial_day=day,
    )


def daily_outcomes(
    counts: DailyCounts, resolution: pd.Series, recorded_day: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per cell and day recorded (:func:`outcome_days`; the denial's day when not given), the
    denials lost (ended unrecovered) and the denials ended, from the outcomes recorded so far
    (``resolution`` in the cells' row order; open ones count in neither: an outcome not yet
    known says nothing about the payer)."""
    values = resolution.to_numpy()
    ended = pd.Series(values).isin(ENDED).to_numpy() & (counts.denial_cell >= 0)
    lost = ended & ~pd.Series(values).isin(RECOVERED).to_numpy()
    day = counts.denial_day if recorded_day is None else recorded_day
    return _per_cell_day(counts, lost, day), _per_cell_day(counts, ended, day)


def outcome_days(counts: DailyCounts, resolved_date: pd.Series | None) -> np.ndarray:
    """The day each outcome became known: its resolved date, or its denial's date where none
    is recorded; one recorded after the newest denial counts on the last day tested."""
    if resolved_date is None:
        return counts.denial_day
    resolved = pd.to_datetime(pd.Series(resolved_date).reset_index(drop=True)).dt.normalize()
    day = (resolved - pd.Timestamp(counts.first_day)).dt.days  # NaN where none is recorded
    last = counts.counts.shape[1] - 1
    recorded = np.clip(day.fillna(0).to_numpy(dtype=np.int64), 0, last)
    return np.where(day.notna().to_numpy(), recorded, counts.denial_day)


def _per_cell_day(counts: DailyCounts, chosen: np.ndarray, day: np.ndarray) -> np.ndarray:
    table = np.zeros(counts.counts.shape, dtype=np.int32)
    np.add.at(table, (counts.denial_cell[chosen], day[chosen]), 1)
    return table


# ---------------------------------------------------------------------------- the test


def _cumulative(values: np.ndarray) -> np.ndarray:
    """Running sums per cell with a leading zero: the sum of days [a, b) is ``c[b] - c[a]``."""
    return np.concatenate(
        [np.zeros((len(values), 1)), np.cumsum(values, axis=1, dtype=np.float64)], axis=1
    )


@dataclass(frozen=True)
class Design:
    """One test: the odds ratio of the smallest change worth finding, and the threshold."""

    ratio: float
    threshold: float
    window_days: int  # the longest run of days one alarm may sum
    kind: str


@dataclass
class _Walk:
    """Every cell's window-limited CUSUM state while the days are walked: ``events`` of
    ``trials`` per cell and day (a cell's denials of its payer's, or its lost outcomes of its
    ended ones), each day read against the cell's share over a trailing baseline."""

    events: np.ndarray
    trials: np.ndarray
    design: Design
    settings: AlertSettings

    def __post_init__(self) -> None:
        cells, window = len(self.events), self.design.window_days
        self.rows = np.arange(cells)
        self.cumulative_events = _cumulative(self.events)
        self.cumulative_trials = _cumulative(self.trials)
        self.total = np.zeros(cells)  # the log-likelihood ratio summed since the first test day
        # The total at the end of each of the last ``window`` days (a ring, day % window), and
        # the day it was taken: the statistic is today's total less the lowest of them.
        self.past_total = np.zeros((cells, window))
        self.past_day = np.full((cells, window), first_test_day(self.settings) - 1)
        self.quiet_until = np.zeros(cells, dtype=int)
        self.baseline_from = np.zeros(cells, dtype=int)  # after an alarm: its change's start

    def log_ratios(self, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per cell, what an event and a non-event add to the statistic, and whether the cell
        has baseline enough to be tested."""
        settings = self.settings
        end = max(day - settings.guard_days, 0)
        start = np.clip(end - settings.baseline_days, self.baseline_from, end)
        events = self.cumulative_events[:, end] - self.cumulative_events[self.rows, start]
        trials = self.cumulative_trials[:, end] - self.cumulative_trials[self.rows, start]
        share_before = np.maximum(events, settings.min_baseline_denials) / np.maximum(trials, 1)
        share_before = np.clip(share_before, 1e-9, 1 - 1e-9)
        self.share_before = share_before  # kept for the start of an alarm raised today
        # The alternative multiplies the odds: a small share is multiplied by about the ratio,
        # and a code that is already most of the payer's denials cannot double its share.
        odds_after = self.design.ratio * share_before / (1 - share_before)
        share_after = odds_after / (1 + odds_after)
        up = np.log(share_after / share_before)
        down = np.log((1 - share_after) / (1 - share_before))
        return up, down, trials >= settings.min_baseline_trials

    def step(self, day: int) -> list[Alarm]:
        up, down, tested = self.log_ratios(day)
        hits, trials = self.events[:, day], self.trials[:, day]
        self.total = self.total + hits * up + (trials - hits) * down
        # The best onset within the window: the run of the last 1 to ``window`` days with the
        # largest sum. A step climbs within days; evidence older than the window is dropped,
        # so a slow drift of a share (seasons, a growing service line) cannot creep up to the
        # threshold over months, and a change is judged on what two weeks can show.
        lowest = self.past_total.argmin(axis=1)
        statistic = self.total - self.past_total[self.rows, lowest]
        idle = (self.quiet_until > day) | ~tested
        firing = np.flatnonzero((statistic > self.design.threshold) & ~idle)
        alarms = [
            self._alarm(int(cell), day, self._likeliest_start(int(cell), day)) for cell in firing
        ]
        slot = day % self.design.window_days
        self.past_total[:, slot] = self.total
        self.past_day[:, slot] = day
        restart = idle.copy()
        restart[firing] = True
        # An idle or alarmed cell starts afresh: no evidence from before today counts.
        self.past_total[restart] = self.total[restart, None]
        self.past_day[restart] = day
        return alarms

    def _likeliest_start(self, cell: int, day: int) -> int:
        """The onset within the window that best explains the days since it with the share
        they show (the change-point estimate of the binomial GLR). The design's ``p1`` sets
        when to alarm; it would place the start of a change larger or smaller than it weeks
        off, as days of a weak signal wander up to the threshold's sum."""
        onsets = np.arange(int(self.past_day[cell].min()) + 1, day + 1)
        events = self.cumulative_events[cell, day + 1] - self.cumulative_events[cell, onsets]
        trials = self.cumulative_trials[cell, day + 1] - self.cumulative_trials[cell, onsets]
        return int(onsets[np.argmax(_binomial_glr(events, trials, self.share_before[cell]))])

    def _alarm(self, cell: int, day: int, start: int) -> Alarm:
        """Raise the alarm and measure the cell afresh from its change's start: quiet until a
        few weeks of the new level make its baseline, so one change raises one alert."""
        self.baseline_from[cell] = start
        self.quiet_until[cell] = start + self.settings.guard_days + self.settings.relearn_days
        return Alarm(cell=cell, alarm_day=day, start_day=start, kind=self.design.kind)


def _binomial_glr(events: np.ndarray, trials: np.ndarray, share_before: float) -> np.ndarray:
    """Log-likelihood ratio of each run's own share (``events / trials``) against
    ``share_before``; zero where the run's share is not above it (the tests look one way)."""
    share = np.clip(events / np.maximum(trials, 1), 1e-9, 1 - 1e-9)
    ratio = events * np.log(share / share_before) + (trials - events) * np.log(
        (1 - share) / (1 - share_before)
    )
    return np.where(share > share_before, ratio, 0.0)


def first_test_day(settings: AlertSettings) -> int:
    """The first day tested: the guard and a shortest baseline after the first denial (a
    shorter baseline makes the share a guess; the window then grows to its full length)."""
    return settings.guard_days + settings.min_baseline_days


def binomial_alarms(
    events: np.ndarray, trials: np.ndarray, design: Design, settings: AlertSettings
) -> list[Alarm]:
    """Run every cell's window-limited binomial CUSUM over the days (module docstring)."""
    walk = _Walk(events, trials, design, settings)
    alarms: list[Alarm] = []
    for day in range(first_test_day(settings), events.shape[1]):
        alarms.extend(walk.step(day))
    return alarms


def cusum_alarms(counts: DailyCounts, settings: AlertSettings) -> list[Alarm]:
    """The volume test: each cell's denials as a share of its payer's denials."""
    design = Design(settings.design_ratio, settings.threshold, settings.window_days, VOLUME)
    return binomial_alarms(counts.counts, counts.payer_flow, design, settings)


def overturn_alarms(
    counts: DailyCounts,
    resolution: pd.Series,
    settings: AlertSettings,
    recorded_day: np.ndarray | None = None,
) -> list[Alarm]:
    """The overturn test: each cell's lost denials as a share of its ended ones, by the day
    each outcome was recorded (``resolution`` in the cells' row order, ``recorded_day`` from
    :func:`outcome_days`)."""
    lost, ended = daily_outcomes(counts, resolution, recorded_day)
    return binomial_alarms(lost, ended, overturn_design(settings), settings)


def overturn_design(settings: AlertSettings) -> Design:
    """The overturn test: its odds ratio, threshold and window."""
    return Design(
        settings.overturn_design_ratio,
        settings.overturn_threshold,
        settings.overturn_window_days,
        OVERTURN,
    )


# ---------------------------------------------------------------------------- alerts


def detect_payer_alerts(
    denials: pd.DataFrame,
    since: dt.date,
    settings: AlertSettings | None = None,
    payer_names: dict[str, str] | None = None,
) -> list[PayerAlert]:
    """The alerts raised on or after ``since`` over a history of denials (contract columns
    ``payer_id``, ``carc_codes``, ``procedure_code``, ``denial_date``; ``rarc_codes`` and
    ``resolution`` when known), most affected denials first. The whole history is read, so the
    tests have their baselines; only the alarm dates are limited to ``since`` on."""
    settings = settings or AlertSettings()
    if denials.empty:
        return []
    cells = denial_cells(denials)
    counts = daily_counts(cells, min_denials=2)
    found = cusum_alarms(counts, settings)
    recorded = outcome_days(counts, denials.get("resolved_date"))
    if "resolution" in denials:
        found += overturn_alarms(counts, denials["resolution"], settings, recorded)
    alarms = [alarm for alarm in found if counts.date_of(alarm.alarm_day) >= since]
    names = payer_names or {}
    alerts = [
        _describe(alarm, counts, denials, cells, recorded, settings, names) for alarm in alarms
    ]
    return sorted(alerts, key=lambda alert: (-alert.denials_affected, alert.payer_id, alert.carc))


def _describe(
    alarm: Alarm,
    counts: DailyCounts,
    denials: pd.DataFrame,
    cells: pd.DataFrame,
    recorded_day: np.ndarray,
    settings: AlertSettings,
    payer_names: dict[str, str],
) -> PayerAlert:
    cell = counts.cells.iloc[alarm.cell]
    before = slice(
        max(alarm.start_day - settings.guard_days - settings.baseline_days, 0),
        max(alarm.start_day - settings.guard_days, 0),
    )
    # Measured past the alarm where the data go on: a day or two to the alarm is a poor rate.
    days = counts.counts.shape[1]
    after = slice(
        alarm.start_day, max(min(alarm.start_day + AFTER_DAYS, days), alarm.alarm_day + 1)
    )
    row = counts.counts[alarm.cell]
    flow = counts.payer_flow[alarm.cell]
    share_before = row[before].sum() / max(flow[before].sum(), 1)
    share_after = row[after].sum() / max(flow[after].sum(), 1)
    start_date = counts.date_of(alarm.start_day)
    in_cell = in_the_cell(cells, cell.payer_id, cell.carc, cell.procedure_family)
    since_start = in_cell & (cells["denial_date"] >= pd.Timestamp(start_date))
    # Outcomes before and after: by the day recorded for a change in outcomes, by denial date
    # for a change in volume (its new denials' outcomes).
    outcome_day = recorded_day if alarm.kind == OVERTURN else counts.denial_day
    outcome_after = in_cell.to_numpy() & (outcome_day >= alarm.start_day)
    outcome_before = in_cell.to_numpy() & (outcome_day < alarm.start_day)
    return PayerAlert(
        payer_id=str(cell.payer_id),
        payer_name=payer_names.get(str(cell.payer_id)),
        carc=str(cell.carc),
        remark_codes=_top_remarks(denials.loc[since_start]),
        procedure_family=str(cell.procedure_family),
        start_date=start_date,
        alarm_date=counts.date_of(alarm.alarm_day),
        monthly_before=_per_month(row[before].sum(), before.stop - before.start),
        monthly_after=_per_month(row[after].sum(), after.stop - after.start),
        share_before=float(share_before),
        share_after=float(share_after),
        ratio=float(share_after / share_before) if share_before > 0 else float("inf"),
        denials_affected=int(since_start.sum()),
        recovered_before=_recovered_share(denials.loc[outcome_before]),
        recovered_after=_recovered_share(denials.loc[outcome_after]),
        kind=alarm.kind,
    )


def in_the_cell(cells: pd.DataFrame, payer_id: str, carc: str, family: str) -> pd.Series:
    """Which denials (:func:`denial_cells` rows) are of this payer, primary code and family."""
    return (
        (cells["payer_id"] == payer_id)
        & (cells["carc"] == carc)
        & (cells["procedure_family"] == family)
    )


def affected_by(alert: PayerAlert, cells: pd.DataFrame) -> pd.Series:
    """The denials an alert counts as affected: its cell's, dated from its start on."""
    in_cell = in_the_cell(cells, alert.payer_id, alert.carc, alert.procedure_family)
    return in_cell & (cells["denial_date"] >= pd.Timestamp(alert.start_date))


def _per_month(denials: float, days: int) -> float:
    return float(denials) * DAYS_PER_MONTH / max(days, 1)


def _top_remarks(denials: pd.DataFrame) -> tuple[str, ...]:
    return top_remarks(denials["rarc_codes"]) if "rarc_codes" in denials else ()


def top_remarks(rarc_codes: Iterable[Sequence[str] | None], keep: int = 3) -> tuple[str, ...]:
    """The ``keep`` remark codes most frequent among these denials' code lists."""
    seen = pd.Series(
        [code for codes in rarc_codes if codes is not None for code in codes], dtype=object
    )
    return tuple(seen.value_counts().index[:keep]) if len(seen) else ()


def _recovered_share(denials: pd.DataFrame) -> float | None:
    """Recovered share of the denials whose outcome is recorded; None when none ended."""
    if "resolution" not in denials:
        return None
    ended = denials["resolution"].isin(ENDED)
    if not ended.any():
        return None
    return float(denials.loc[ended, "resolution"].isin(RECOVERED).mean())
