"""Payer behaviour alerts against the changes the generator injected, beside a plain rule.

For each seed a history is generated with ``--payer-changes`` and its truth (the same call as
``denial-triage generate --rows R --seed S --payer-changes N --with-truth``), the detector
(:mod:`training.payer_alerts`) runs over every day that has a full baseline, and its alerts are
matched to the injected changes:

- an injected change is **found within 14 days** when an alert on its payer x CARC x procedure
  family is raised on one of the 14 days from its onset on (recall, with a Wilson 95% interval
  over the changes of all seeds; the delay is alarm date minus onset);
  found within 28 days is counted the same way, to show how late the others come;
- an alert is **false** when no injected change in its cell began on or before its alarm date;
  false alerts are counted per month monitored and per 40 payers.

The **plain rule** runs on the same counts: a cell alerts when its last 7 days hold at least
twice its mean week over the 12 weeks before them and at least 16 denials (the smallest
minimum that keeps it under one false alert a month on seeds 1-5; at 3 it raised 60 a month),
then waits 12 weeks, until its trailing weeks hold the change.

With ``--overturn-changes K`` (default 4) each history also carries K changes in outcomes
(a cell's recovered share falls to a half to a quarter of its level for the outcomes decided
from the onset on, ``generate --overturn-changes``), matched the same way to the overturn
test's alerts, counted on the days outcomes were recorded: found within 14 days (the target's)
and within 91 days (the test's window: outcomes are fewer than denials), beside a plain rule on
the same outcomes (the last 28 days' recovered share at most half that of the 12 weeks before,
with 16+ outcomes). Volume changes and the volume figures are the same with or without them.

Beside the methods, a **reference a detector can hardly beat** (``--reference-budgets``): a test
told each change's onset and which cells the generator changes, that tests only those cells and
reads only each change's first 14 days, against the year before (:func:`known_onset_tests`), at
the false alerts a month per 40 payers given. Its false alerts are counted on the same
histories, so its null is the data's own (payer drift and seasons included). Where it finds
fewer than 90% within 14 days, a detector, which must also find the onset among the days and
watch every cell, cannot be expected to meet the target on these histories at that rate.

Develop and tune on seeds 11-20 (``--per-change`` prints each change's cell, size and delays
and each false alert), report once on seeds never used (701-705; 101-105 reported an earlier
version, tuned on 1-5):

    python benchmarks/payer_alerts.py --seeds 701 702 703 704 705 --out /tmp/payer-alerts
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from training.payer_alerts import (
    OVERTURN,
    VOLUME,
    Alarm,
    AlertSettings,
    DailyCounts,
    binomial_alarms,
    cusum_alarms,
    daily_counts,
    daily_outcomes,
    denial_cells,
    first_test_day,
    in_the_cell,
    outcome_days,
    overturn_design,
)
from training.synthetic import generate_history
from training.synthetic_changes import (
    MIN_MONTHLY_DENIALS,
    PayerChange,
    default_changes_truth_path,
    read_changes_truth,
)

WITHIN_DAYS = 14
OVERTURN_WITHIN_DAYS = 91  # the overturn test's window
PAYERS_PER_UNIT = 40
# The rule's minimum is the smallest that keeps it under one false alert a month on seeds 1-5.
RULE_RATIO, RULE_WEEKS, RULE_MIN_DENIALS = 2.0, 12, 16
# The plain rule on outcomes: the last 28 days' recovered share at most half the 12 weeks'
# before, with as many outcomes as the volume rule's denials.
OUTCOME_RULE_DAYS = 28


@dataclass(frozen=True)
class SeedResult:
    """One seed's matches for one method."""

    changes: int
    found_in_time: int
    delays: list[int]
    false_alerts: int
    months: float
    payers: int


def history_for(
    seed: int, rows: int, changes: int, folder: Path, overturns: int = 0
) -> tuple[Path, Path]:
    """The seed's history and its changes' truth, generated once into ``folder``."""
    history = folder / f"seed{seed}-{rows}-{changes}-{overturns}.parquet"
    truth = default_changes_truth_path(history)
    if not (history.exists() and truth.exists()):
        generate_history(
            rows,
            seed,
            history,
            payer_changes=changes,
            changes_out=truth,
            overturn_changes=overturns,
        )
    return history, truth


def plain_rule_alarms(counts: DailyCounts, settings: AlertSettings) -> list[Alarm]:
    """x2 over the trailing mean week, at least 16 denials; onset taken as the week's start."""
    cumulative = np.concatenate(
        [np.zeros((len(counts.counts), 1)), np.cumsum(counts.counts, axis=1)], axis=1
    )
    alarms: list[Alarm] = []
    quiet_until = np.zeros(len(counts.counts), dtype=int)
    first = first_test_day(settings)
    for day in range(first, counts.counts.shape[1]):
        week = cumulative[:, day + 1] - cumulative[:, day - 6]
        trailing = (cumulative[:, day - 6] - cumulative[:, day - 6 - 7 * RULE_WEEKS]) / RULE_WEEKS
        firing = (week >= RULE_RATIO * trailing) & (week >= RULE_MIN_DENIALS) & (quiet_until <= day)
        for cell in np.flatnonzero(firing):
            alarms.append(Alarm(cell=int(cell), alarm_day=day, start_day=day - 6))
            quiet_until[cell] = day + 7 * RULE_WEEKS  # until its trailing weeks hold the change
    return alarms


def plain_outcome_rule_alarms(
    lost: np.ndarray, ended: np.ndarray, settings: AlertSettings
) -> list[Alarm]:
    """The last 28 days' recovered share at most half the 12 weeks' before, 16+ outcomes."""
    zero = np.zeros((len(lost), 1))
    lost_sum = np.concatenate([zero, np.cumsum(lost, axis=1)], axis=1)
    ended_sum = np.concatenate([zero, np.cumsum(ended, axis=1)], axis=1)
    alarms: list[Alarm] = []
    quiet_until = np.zeros(len(lost), dtype=int)
    span, before = OUTCOME_RULE_DAYS, 7 * RULE_WEEKS
    for day in range(max(first_test_day(settings), span + before), lost.shape[1]):
        recent = slice(day + 1 - span, day + 1)
        trials = ended_sum[:, recent.stop] - ended_sum[:, recent.start]
        won = trials - (lost_sum[:, recent.stop] - lost_sum[:, recent.start])
        old_trials = ended_sum[:, recent.start] - ended_sum[:, recent.start - before]
        old_won = old_trials - (lost_sum[:, recent.start] - lost_sum[:, recent.start - before])
        share = won / np.maximum(trials, 1)
        old_share = old_won / np.maximum(old_trials, 1)
        firing = (
            (trials >= RULE_MIN_DENIALS)
            & (old_trials >= RULE_MIN_DENIALS)
            & (share * RULE_RATIO <= old_share)
            & (old_share > 0)
            & (quiet_until <= day)
        )
        for cell in np.flatnonzero(firing):
            alarms.append(Alarm(cell=int(cell), alarm_day=day, start_day=recent.start))
            quiet_until[cell] = day + before
    return alarms


Cell = tuple[str, str, str]  # payer, primary CARC, procedure family


# After a known-onset test's alarm its cell rests 12 weeks (six blocks), as the detector rests
# a cell after an alert: one drifting cell counts as one false alert, not one per block.
KNOWN_ONSET_REST_BLOCKS = 6


@dataclass(frozen=True)
class KnownOnsetTests:
    """The known-onset test's statistics (:func:`block_statistic`) on one or more seeds."""

    null: list[np.ndarray]  # per busy cell, in day order: its 14-day blocks without a change
    changes: np.ndarray  # per injected change: its first 14 days from the onset
    payer_months: float  # months monitored x payers / 40, summed over the seeds

    def __add__(self, other: KnownOnsetTests) -> KnownOnsetTests:
        return KnownOnsetTests(
            self.null + other.null,
            np.concatenate([self.changes, other.changes]),
            self.payer_months + other.payer_months,
        )

    def false_alerts(self, threshold: float) -> int:
        """Blocks without a change over ``threshold``, each resting its cell for a while."""
        alerts = 0
        for blocks in self.null:
            block = 0
            while block < len(blocks):
                if blocks[block] > threshold:
                    alerts += 1
                    block += KNOWN_ONSET_REST_BLOCKS
                block += 1
        return alerts

    def threshold_for(self, budget: float) -> float:
        """The lowest threshold (to 0.01) with at most ``budget`` false alerts a month per 40
        payers, by bisection (false alerts fall as the threshold rises), from the highest
        statistic without a change, where there are none."""
        low, high = (
            0.0,
            max((float(blocks.max()) for blocks in self.null if len(blocks)), default=0.0),
        )
        while high - low > 0.01:
            middle = (low + high) / 2
            if self.false_alerts(middle) <= budget * self.payer_months:
                high = middle
            else:
                low = middle
        return high


def block_statistic(events: np.ndarray, trials: np.ndarray, start: int) -> float:
    """The evidence that a cell's share of its payer's denials rose in the 14 days from
    ``start``: minus the log of the chance of at least that many of those days' denials at the
    share of the year before (the binomial tail: the most powerful test of a rise of any size,
    so knowing the multiplier would not help)."""
    year = slice(max(start - 365, 0), start)
    base_trials = trials[year].sum()
    if base_trials == 0:
        return 0.0
    share = min(max(events[year].sum(), 1) / base_trials, 1 - 1e-9)
    days = slice(start, start + WITHIN_DAYS)
    return float(-stats.binom.logsf(events[days].sum() - 1, trials[days].sum(), share))


def known_onset_tests(
    counts: DailyCounts, changes: list[PayerChange], settings: AlertSettings
) -> KnownOnsetTests:
    """A reference a detector can hardly beat: a test told each change's onset, so it reads the
    14 days from it against the year before, and told which cells the generator changes (those
    with 20+ denials a month), so it tests only those, in 14-day blocks. Its false alerts are
    read on the same histories, in the busy cells' blocks without a change: the null is the
    data's own, payer drift and seasons included, not a Poisson model of them."""
    days = counts.counts.shape[1]
    first = first_test_day(settings)
    monthly = counts.counts.sum(axis=1) * 30.0 / days
    onset_of = {
        cell_row(counts, change.cell): counts.day_of(change.onset_date) for change in changes
    }
    null = []
    for row in np.flatnonzero(monthly >= MIN_MONTHLY_DENIALS):
        last = onset_of.get(int(row), days)  # a changed cell's blocks end before its onset
        events, trials = counts.counts[row], counts.payer_flow[row]
        starts = range(first, last - WITHIN_DAYS + 1, WITHIN_DAYS)
        null.append(np.array([block_statistic(events, trials, start) for start in starts]))
    found = [
        block_statistic(counts.counts[row], counts.payer_flow[row], onset)
        for row, onset in onset_of.items()
    ]
    payers = counts.cells["payer_id"].nunique()
    months = (days - first) / 30.0
    return KnownOnsetTests(null, np.array(found), months * payers / PAYERS_PER_UNIT)


def cell_row(counts: DailyCounts, cell: Cell) -> int:
    """The row of ``counts`` that holds a payer x CARC x procedure family cell."""
    return int(np.flatnonzero(in_the_cell(counts.cells, *cell))[0])


def onsets_by_cell(changes: list[PayerChange]) -> dict[Cell, dt.date]:
    return {change.cell: change.onset_date for change in changes}


def cell_key(counts: DailyCounts, cell: int) -> Cell:
    row = counts.cells.iloc[cell]
    return (row.payer_id, row.carc, row.procedure_family)


def match(
    alarms: list[Alarm],
    counts: DailyCounts,
    changes: list[PayerChange],
    settings: AlertSettings,
    within: int = WITHIN_DAYS,
) -> SeedResult:
    """Recall within ``within`` days, delays and false alerts of one method on one seed."""
    onsets = onsets_by_cell(changes)
    first_alarm: dict[Cell, int] = {}
    false_alerts = 0
    for alarm in alarms:
        key = cell_key(counts, alarm.cell)
        onset = onsets.get(key)
        alarm_date = counts.date_of(alarm.alarm_day)
        if onset is None or alarm_date < onset:
            false_alerts += 1
        elif key not in first_alarm:
            first_alarm[key] = (alarm_date - onset).days
    delays = [first_alarm[k] for k in onsets if k in first_alarm]
    monitored = counts.counts.shape[1] - first_test_day(settings)
    return SeedResult(
        changes=len(changes),
        found_in_time=sum(d < within for d in delays),
        delays=[d for d in delays if d < within],
        false_alerts=false_alerts,
        months=monitored / 30.0,
        payers=counts.cells["payer_id"].nunique(),
    )


def first_alarm_delays(
    alarms: list[Alarm], counts: DailyCounts, changes: list[PayerChange]
) -> dict[Cell, int]:
    """Days from each found change's onset to its cell's first alarm on or after it."""
    onsets = onsets_by_cell(changes)
    delays: dict[Cell, int] = {}
    for alarm in sorted(alarms, key=lambda a: a.alarm_day):
        key = cell_key(counts, alarm.cell)
        onset = onsets.get(key)
        if onset is not None and key not in delays and counts.date_of(alarm.alarm_day) >= onset:
            delays[key] = (counts.date_of(alarm.alarm_day) - onset).days
    return delays


def change_lines(
    seed: int, counts: DailyCounts, changes: list[PayerChange], alarms: dict[str, list[Alarm]]
) -> list[str]:
    """Per injected change (development seeds only): the cell's size and share of its payer's
    denials over the year before onset, its multiplier, and each method's delay."""
    delays = {name: first_alarm_delays(found, counts, changes) for name, found in alarms.items()}
    lines = []
    for change in changes:
        key = change.cell
        row = cell_row(counts, key)
        onset = counts.day_of(change.onset_date)
        year = slice(max(onset - 365, 0), onset)
        monthly = counts.counts[row, year].sum() * 30.0 / (year.stop - year.start)
        share = counts.counts[row, year].sum() / max(counts.payer_flow[row, year].sum(), 1)
        found = "  ".join(
            f"{name.split(':')[0][:14]}={delays[name].get(key, '-')}" for name in alarms
        )
        lines.append(
            f"seed {seed} {'/'.join(key)} onset {change.onset_date} x{change.multiplier:.1f} "
            f"{monthly:.0f}/month share {share:.1%}  {found}"
        )
    return lines


def false_alarm_lines(
    seed: int, counts: DailyCounts, changes: list[PayerChange], alarms: list[Alarm]
) -> list[str]:
    """The alarms no injected change explains, with the cell's size (development seeds)."""
    onsets = onsets_by_cell(changes)
    lines = []
    for alarm in alarms:
        key = cell_key(counts, alarm.cell)
        onset = onsets.get(key)
        if onset is None or counts.date_of(alarm.alarm_day) < onset:
            monthly = counts.counts[alarm.cell].sum() * 30.0 / counts.counts.shape[1]
            lines.append(
                f"seed {seed} false {'/'.join(key)} alarm {counts.date_of(alarm.alarm_day)} "
                f"start {counts.date_of(alarm.start_day)} {monthly:.1f}/month"
            )
    return lines


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion (sound at small counts and near 0 or 1)."""
    if trials == 0:
        return (math.nan, math.nan)
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = (
        z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials**2)) / (1 + z * z / trials)
    )
    return (centre - half, centre + half)


def summary(results: list[SeedResult]) -> dict[str, float]:
    changes = sum(r.changes for r in results)
    found = sum(r.found_in_time for r in results)
    low, high = wilson(found, changes)
    delays = [d for r in results for d in r.delays]
    payer_months = sum(r.months * r.payers / PAYERS_PER_UNIT for r in results)
    return {
        "changes": changes,
        "found": found,
        "recall": found / changes if changes else math.nan,
        "low": low,
        "high": high,
        "median_delay": float(np.median(delays)) if delays else math.nan,
        "false_alerts": sum(r.false_alerts for r in results),
        "false_per_month": sum(r.false_alerts for r in results) / payer_months,
    }


METHODS: dict[str, Callable[[DailyCounts, AlertSettings], list[Alarm]]] = {
    "window-limited binomial CUSUM (training/payer_alerts.py)": cusum_alarms,
    "plain rule: x2 over the trailing mean week": plain_rule_alarms,
}


OUTCOME_METHODS: dict[str, Callable[[np.ndarray, np.ndarray, AlertSettings], list[Alarm]]] = {
    "window-limited binomial CUSUM on outcomes (training/payer_alerts.py)": (
        lambda lost, ended, settings: binomial_alarms(
            lost, ended, overturn_design(settings), settings
        )
    ),
    "plain rule: 28 days' recovered share at most half the 12 weeks' before": (
        plain_outcome_rule_alarms
    ),
}


def run(
    seeds: list[int],
    rows: int,
    changes: int,
    folder: Path,
    settings: AlertSettings,
    *,
    overturns: int = 0,
    per_change: bool = False,
    reference_budgets: tuple[float, ...] = (),
) -> str:
    per_method: dict[str, list[SeedResult]] = {
        f"{name}, {days} days": [] for name in METHODS for days in VOLUME_WINDOWS
    }
    known_onset = KnownOnsetTests([], np.zeros(0), 0.0)
    per_outcome_method: dict[str, list[SeedResult]] = {
        f"{name}, {days} days": [] for name in OUTCOME_METHODS for days in OUTCOME_WINDOWS
    }
    for seed in seeds:
        history, truth = history_for(seed, rows, changes, folder, overturns)
        denials = pd.read_parquet(
            history,
            columns=[
                "payer_id",
                "carc_codes",
                "procedure_code",
                "denial_date",
                "resolution",
                "resolved_date",
            ],
        )
        counts = daily_counts(denial_cells(denials), min_denials=2)
        injected = read_changes_truth(truth)
        volume = [change for change in injected if change.kind == VOLUME]
        alarms = {name: method(counts, settings) for name, method in METHODS.items()}
        for name, found in alarms.items():
            for days in VOLUME_WINDOWS:
                result = match(found, counts, volume, settings, within=days)
                per_method[f"{name}, {days} days"].append(result)
        if reference_budgets:
            known_onset = known_onset + known_onset_tests(counts, volume, settings)
        if overturns:
            recorded = outcome_days(counts, denials["resolved_date"])
            outcomes = daily_outcomes(counts, denials["resolution"], recorded)
            overturned = [change for change in injected if change.kind == OVERTURN]
            for name, method in OUTCOME_METHODS.items():
                found = method(*outcomes, settings)
                for days in OUTCOME_WINDOWS:
                    result = match(found, counts, overturned, settings, within=days)
                    per_outcome_method[f"{name}, {days} days"].append(result)
            if per_change:
                first = next(iter(OUTCOME_METHODS))
                found = {first: OUTCOME_METHODS[first](*outcomes, settings)}
                for line in change_lines(seed, counts, overturned, found) + false_alarm_lines(
                    seed, counts, overturned, found[first]
                ):
                    print("outcomes:", line, file=sys.stderr)
        if per_change:
            first = next(iter(alarms))
            for line in change_lines(seed, counts, volume, alarms) + false_alarm_lines(
                seed, counts, volume, alarms[first]
            ):
                print(line, file=sys.stderr)
    tables = [table(per_method, seeds, rows, changes)]
    if reference_budgets:
        tables.append(known_onset_table(known_onset, reference_budgets))
    if overturns:
        tables.append(outcome_table(per_outcome_method, overturns))
    return "\n\n".join(tables)


OUTCOME_WINDOWS = (WITHIN_DAYS, OVERTURN_WITHIN_DAYS)
# The target's 14 days, and twice that: how late the changes missed in two weeks are found.
VOLUME_WINDOWS = (WITHIN_DAYS, 2 * WITHIN_DAYS)


def table(
    per_method: dict[str, list[SeedResult]], seeds: list[int], rows: int, changes: int
) -> str:
    lines = [
        f"Seeds {', '.join(map(str, seeds))}: {rows:,} denials and {changes} injected changes "
        f"each (multipliers 2-4, cells with 20+ denials a month).",
        "",
        *method_rows(per_method, "found within"),
    ]
    return "\n".join(lines)


def known_onset_table(tests: KnownOnsetTests, budgets: tuple[float, ...]) -> str:
    lines = [
        "Reference, not a detector: the binomial tail test of each change's first 14 days "
        "against the year before, told the onset and the busy cells (known_onset_tests).",
        "",
        "| false alerts per month per 40 payers | threshold (nats) | found within 14 days | "
        "95% interval |",
        "|---|---|---|---|",
    ]
    for budget in budgets:
        threshold = tests.threshold_for(budget)
        found, changes = int((tests.changes > threshold).sum()), len(tests.changes)
        low, high = wilson(found, changes)
        lines.append(
            f"| {budget:g} (spent {tests.false_alerts(threshold) / tests.payer_months:.2f}) | "
            f"{threshold:.2f} | {found}/{changes} = {found / changes:.1%} | "
            f"[{low:.1%}, {high:.1%}] |"
        )
    return "\n".join(lines)


def outcome_table(per_method: dict[str, list[SeedResult]], overturns: int) -> str:
    lines = [
        f"Changes in outcomes: {overturns} a seed (recovered share divided by 2-4 for the "
        "outcomes decided from the onset on), tested on the days outcomes were recorded.",
        "",
        *method_rows(per_method, "found within"),
    ]
    return "\n".join(lines)


def method_rows(per_method: dict[str, list[SeedResult]], found_heading: str) -> list[str]:
    lines = [
        f"| method | {found_heading} | 95% interval | median delay (days) | false alerts | "
        "false alerts per month per 40 payers |",
        "|---|---|---|---|---|---|",
    ]
    for name, results in per_method.items():
        s = summary(results)
        lines.append(
            f"| {name} | {s['found']}/{s['changes']} = {s['recall']:.1%} | "
            f"[{s['low']:.1%}, {s['high']:.1%}] | {s['median_delay']:.0f} | "
            f"{s['false_alerts']} | {s['false_per_month']:.2f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[701, 702, 703, 704, 705])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--changes", type=int, default=8)
    parser.add_argument("--overturn-changes", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("/tmp/payer-alerts"))
    parser.add_argument("--threshold", type=float, default=AlertSettings().threshold)
    parser.add_argument("--design-ratio", type=float, default=AlertSettings().design_ratio)
    parser.add_argument(
        "--overturn-threshold", type=float, default=AlertSettings().overturn_threshold
    )
    parser.add_argument(
        "--reference-budgets",
        type=float,
        nargs="*",
        default=[0.5, 1.0, 2.0],
        help="false alerts a month per 40 payers at which to run the known-onset reference "
        "(none: skip it)",
    )
    parser.add_argument(
        "--per-change",
        action="store_true",
        help="also print each change's cell, size and delays, and each false alert (stderr); "
        "for development seeds only",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    settings = replace(
        AlertSettings(),
        threshold=args.threshold,
        design_ratio=args.design_ratio,
        overturn_threshold=args.overturn_threshold,
    )
    started = time.perf_counter()
    print(
        run(
            args.seeds,
            args.rows,
            args.changes,
            args.out,
            settings,
            overturns=args.overturn_changes,
            per_change=args.per_change,
            reference_budgets=tuple(args.reference_budgets),
        )
    )
    print(f"\n({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
