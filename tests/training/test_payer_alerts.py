"""The payer behaviour detector on small synthetic series: a step is found near its onset with
its size, a steady history raises no more chance alerts than the design allows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.payer_alerts import (
    OVERTURN,
    VOLUME,
    Alarm,
    AlertSettings,
    DailyCounts,
    cusum_alarms,
    daily_counts,
    daily_outcomes,
    denial_cells,
    detect_payer_alerts,
    first_test_day,
)
from training.synthetic_changes import PayerChange

FIRST_DAY = dt.date(2025, 1, 1)
# Cells of one payer: (primary CARC, a procedure code of the family), usual denials a day.
CELLS = (("CO-16", "99213", 6.0), ("CO-197", "27447", 0.7), ("CO-50", "72148", 0.4))


def denial_series(
    seed: int,
    *,
    days: int,
    payers: int = 1,
    step: tuple[int, float] | None = None,
    recovered_share: tuple[float, float] = (0.5, 0.5),
) -> pd.DataFrame:
    """Poisson denials per day in each payer's cells; with ``step`` (day, multiplier) the
    first payer's CO-197 surgery cell steps up, and its recovered share moves from the
    first to the second of ``recovered_share`` on that day."""
    rng = np.random.default_rng(seed)
    frames = []
    for payer in range(payers):
        for carc, procedure, per_day in CELLS:
            rate = np.full(days, per_day)
            stepped = step is not None and payer == 0 and carc == "CO-197"
            if stepped:
                rate[step[0] :] *= step[1]
            day = np.repeat(np.arange(days), rng.poisson(rate))
            after = day >= step[0] if stepped else np.zeros(len(day), bool)
            share = np.where(after, recovered_share[1], recovered_share[0])
            recovered = rng.random(len(day)) < share
            frames.append(
                pd.DataFrame(
                    {
                        "payer_id": f"P{payer:02d}",
                        "carc_codes": [[carc]] * len(day),
                        "rarc_codes": [["N54"]] * len(day),
                        "procedure_code": procedure,
                        "denial_date": pd.Timestamp(FIRST_DAY) + pd.to_timedelta(day, unit="D"),
                        "resolution": np.where(recovered, "overturned_on_appeal", "written_off"),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def test_cells_are_payer_primary_code_and_procedure_family() -> None:
    denials = denial_series(1, days=3)
    cells = denial_cells(denials)
    assert set(zip(cells["carc"], cells["procedure_family"], strict=True)) == {
        ("CO-16", "evaluation_management"),
        ("CO-197", "surgery"),
        ("CO-50", "radiology"),
    }


def test_daily_counts_hold_each_cell_beside_its_payers_flow() -> None:
    denials = denial_series(2, days=40, payers=2)
    counts = daily_counts(denial_cells(denials))
    assert counts.counts.sum() == len(denials)
    first_payer = (counts.cells["payer_id"] == "P00").to_numpy()
    first_dates = denials.loc[denials["payer_id"] == "P00", "denial_date"]
    expected_flow = np.bincount((first_dates - pd.Timestamp(FIRST_DAY)).dt.days, minlength=40)
    assert (counts.payer_flow[first_payer] == expected_flow).all()
    assert (counts.counts[first_payer].sum(axis=0) == expected_flow).all()


def test_a_step_is_found_within_two_weeks_with_its_onset_and_size() -> None:
    onset = 440
    denials = denial_series(3, days=500, step=(onset, 3.0), recovered_share=(0.6, 0.1))
    alerts = detect_payer_alerts(denials, since=FIRST_DAY)
    # The recovered share falls on the same day: the overturn test raises its own alert.
    assert sorted((a.payer_id, a.carc, a.procedure_family, a.kind) for a in alerts) == [
        ("P00", "CO-197", "surgery", VOLUME),
        ("P00", "CO-197", "surgery", OVERTURN),
    ]
    alert = next(a for a in alerts if a.kind == VOLUME)
    onset_date = FIRST_DAY + dt.timedelta(days=onset)
    assert abs((alert.start_date - onset_date).days) <= 7
    assert 0 <= (alert.alarm_date - onset_date).days <= 14
    assert 1.8 <= alert.ratio <= 5.0  # a threefold step, measured over the few days to alarm
    assert alert.monthly_before == pytest.approx(0.7 * 30, rel=0.25)
    since_start = denial_cells(denials)["denial_date"] >= pd.Timestamp(alert.start_date)
    in_cell = denials["carc_codes"].str[0] == "CO-197"
    assert alert.denials_affected == int((since_start & in_cell).sum())
    assert alert.recovered_before == pytest.approx(0.6, abs=0.1)
    assert alert.recovered_after == pytest.approx(0.1, abs=0.1)
    assert alert.remark_codes == ("N54",)
    assert alert.worklist_link == (
        "/ui/worklist?payer_id=P00&carc=CO-197&procedure_family=surgery"
        f"&denied_from={alert.start_date.isoformat()}&status=any"
    )


def test_alerts_raised_before_since_are_left_out() -> None:
    denials = denial_series(3, days=500, step=(440, 3.0))
    assert detect_payer_alerts(denials, since=FIRST_DAY + dt.timedelta(days=470)) == []


def test_one_change_raises_one_alert_while_its_baseline_catches_up() -> None:
    denials = denial_series(4, days=900, step=(420, 4.0))
    alerts = detect_payer_alerts(denials, since=FIRST_DAY)
    stepped = [a for a in alerts if a.carc == "CO-197" and a.payer_id == "P00"]
    assert len(stepped) == 1


def test_a_steady_quarter_raises_no_more_chance_alerts_than_the_design_allows() -> None:
    """40 steady payers, alerts over the last 3 months: the target allows one false alert a
    month per 40 payers; more than 3 here would break it."""
    days = AlertSettings().baseline_days + AlertSettings().guard_days + 90
    denials = denial_series(5, days=days, payers=40)
    since = FIRST_DAY + dt.timedelta(days=days - 90)
    alerts = detect_payer_alerts(denials, since=since)
    assert len(alerts) <= 3


def test_no_test_runs_before_the_shortest_baseline() -> None:
    settings = AlertSettings()
    days = first_test_day(settings)
    short = denial_series(6, days=days, step=(days - 20, 6.0))
    assert cusum_alarms(daily_counts(denial_cells(short)), settings) == []
    longer = denial_series(6, days=days + 20, step=(days - 20, 6.0))
    assert [a.cell for a in cusum_alarms(daily_counts(denial_cells(longer)), settings)] == [1]


def test_a_drop_in_the_recovered_share_raises_an_overturn_alert_near_its_onset() -> None:
    """The surgery cell's volume stays as it was; only its recovered share falls, 60% to 20%."""
    onset = 440
    denials = denial_series(9, days=500, step=(onset, 1.0), recovered_share=(0.6, 0.2))
    alerts = detect_payer_alerts(denials, since=FIRST_DAY)
    assert [(a.payer_id, a.carc, a.procedure_family, a.kind) for a in alerts] == [
        ("P00", "CO-197", "surgery", OVERTURN)
    ]
    onset_date = FIRST_DAY + dt.timedelta(days=onset)
    # A denial a day of which 60% were won gives about 0.15 nats a day when the share falls:
    # some six weeks to the threshold.
    assert abs((alerts[0].start_date - onset_date).days) <= 14
    assert 0 <= (alerts[0].alarm_date - onset_date).days <= 60
    assert alerts[0].recovered_before == pytest.approx(0.6, abs=0.05)
    assert alerts[0].recovered_after == pytest.approx(0.2, abs=0.1)


def test_an_overturn_alert_is_raised_as_the_outcomes_arrive_not_on_past_denial_dates() -> None:
    """Outcomes come 20 to 90 days after their denials; from day 440 the payer upholds its
    surgery denials: outcomes recorded from then on are won 20% of the time instead of 60%.
    Replayed week by week with only the outcomes recorded by each day, the alert is among the
    last 30 days' alerts when first raised, and starts on the day the outcomes changed."""
    onset = 440
    rng = np.random.default_rng(21)
    denials = denial_series(21, days=560, recovered_share=(0.6, 0.6))
    lag = rng.integers(20, 91, len(denials))
    denials["resolved_date"] = denials["denial_date"] + pd.to_timedelta(lag, unit="D")
    decided_after = denials["resolved_date"] >= pd.Timestamp(FIRST_DAY + dt.timedelta(onset))
    surgery = denials["procedure_code"] == "27447"
    upheld = decided_after & surgery & (rng.random(len(denials)) < 2 / 3)
    denials.loc[upheld, "resolution"] = "written_off"
    raised = []
    for day in range(onset - 28, 560, 7):
        today = pd.Timestamp(FIRST_DAY + dt.timedelta(day))
        known = denials[denials["denial_date"] <= today].copy()
        known.loc[known["resolved_date"] > today, ["resolution", "resolved_date"]] = ["open", None]
        since = (today - pd.Timedelta(days=29)).date()
        raised += [
            (today.date(), a) for a in detect_payer_alerts(known, since) if a.kind == OVERTURN
        ]
    assert raised, "the change was never among the open alerts"
    first_seen, alert = raised[0]
    onset_date = FIRST_DAY + dt.timedelta(days=onset)
    assert (alert.payer_id, alert.carc, alert.procedure_family) == ("P00", "CO-197", "surgery")
    assert first_seen - dt.timedelta(days=29) <= alert.alarm_date <= first_seen
    assert 0 <= (first_seen - onset_date).days <= 70
    assert abs((alert.start_date - onset_date).days) <= 14
    assert alert.recovered_before == pytest.approx(0.6, abs=0.06)
    assert alert.recovered_after == pytest.approx(0.2, abs=0.12)


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_a_steady_recovered_share_raises_no_overturn_alert(seed: int) -> None:
    denials = denial_series(seed, days=500, recovered_share=(0.6, 0.6))
    assert detect_payer_alerts(denials, since=FIRST_DAY) == []


def test_only_ended_outcomes_count_in_the_overturn_test() -> None:
    denials = denial_series(13, days=3)
    denials["resolution"] = ["open", "written_off", "paid_after_correction", None] * (
        len(denials) // 4
    ) + ["billed_to_patient"] * (len(denials) % 4)
    counts = daily_counts(denial_cells(denials))
    lost, ended = daily_outcomes(counts, denials["resolution"])
    resolution = denials["resolution"]
    assert (
        ended.sum()
        == resolution.isin(["written_off", "paid_after_correction", "billed_to_patient"]).sum()
    )
    assert lost.sum() == resolution.isin(["written_off", "billed_to_patient"]).sum()
    assert (lost <= ended).all()


def test_an_empty_history_has_no_alerts() -> None:
    assert detect_payer_alerts(denial_series(7, days=0), since=FIRST_DAY) == []


# ---------------------------------------------------------------------------- the benchmark


@pytest.fixture(scope="module")
def benchmark():
    from conftest import load_module

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "payer_alerts.py"
    return load_module(path, "payer_alerts_benchmark")


def test_the_benchmark_interval_is_wilsons(benchmark) -> None:
    low, high = benchmark.wilson(33, 40)
    assert (round(low, 3), round(high, 3)) == (0.680, 0.913)


def test_the_benchmark_matches_alerts_to_injected_changes(benchmark) -> None:
    denials = denial_series(8, days=200, payers=2)
    counts = daily_counts(denial_cells(denials))
    change = PayerChange("P00", "CO-197", "surgery", FIRST_DAY + dt.timedelta(days=150), 3.0)
    cell = int(
        counts.cells.index[
            (counts.cells["payer_id"] == "P00") & (counts.cells["carc"] == "CO-197")
        ][0]
    )
    alarms = [
        Alarm(cell=cell, alarm_day=140, start_day=135),  # before the onset: false
        Alarm(cell=cell, alarm_day=160, start_day=150),  # 10 days after: found in time
        Alarm(cell=0, alarm_day=170, start_day=165),  # another cell: false
    ]
    result = benchmark.match(alarms, counts, [change], AlertSettings())
    assert (result.changes, result.found_in_time, result.delays) == (1, 1, [10])
    assert result.false_alerts == 2 and result.payers == 2
    assert result.months == pytest.approx((200 - first_test_day(AlertSettings())) / 30)


def test_the_reference_reads_a_changes_first_two_weeks_against_the_year_before(benchmark) -> None:
    from scipy.stats import binom

    flow = np.full(500, 10)
    denials = np.ones(500, dtype=int)  # a tenth of the payer's denials for a year and more
    denials[400:] = 3  # then three tenths
    statistic = benchmark.block_statistic(denials, flow, 400)
    assert statistic == pytest.approx(-binom.logsf(41, 140, 0.1))  # 42 of 140 at 0.1
    assert statistic > 20
    assert benchmark.block_statistic(denials, flow, 200) == pytest.approx(
        -binom.logsf(13, 140, 0.1)
    )


def test_the_references_false_alerts_rest_a_cell_and_set_its_threshold(benchmark) -> None:
    rest = benchmark.KNOWN_ONSET_REST_BLOCKS
    blocks = np.zeros(rest + 4)
    blocks[[0, 1, rest + 3]] = 5.0  # block 1 falls in block 0's rest
    tests = benchmark.KnownOnsetTests([blocks], np.array([9.0, 3.0]), payer_months=2.0)
    assert tests.false_alerts(4.0) == 2
    both = tests + benchmark.KnownOnsetTests([np.array([6.0])], np.zeros(0), payer_months=2.0)
    assert both.false_alerts(4.0) == 3 and both.payer_months == 4.0
    # One false alert a month per 40 payers over 4 payer-months: 4 allowed, and 3 at any
    # threshold; a quarter a month: one allowed, the cell at 6.0 alone.
    assert both.threshold_for(1.0) == pytest.approx(0.0, abs=0.01)
    assert both.threshold_for(0.25) == pytest.approx(5.0, abs=0.01)


def test_the_reference_tests_busy_cells_before_their_changes_and_each_change_at_its_onset(
    benchmark,
) -> None:
    days, settings = 600, AlertSettings()
    cells = pd.DataFrame(
        {"payer_id": ["P00", "P01", "P01"], "carc": ["CO-197"] * 3, "procedure_family": ["x"] * 3}
    )
    daily = np.ones((3, days), dtype=np.int32)
    daily[1, 400:] = 3
    daily[2] = 0  # a quiet cell: the generator changes none such, so it is not tested
    daily[2, ::40] = 1
    counts = DailyCounts(cells, FIRST_DAY, daily, np.full_like(daily, 10), np.zeros(0), np.zeros(0))
    change = PayerChange("P01", "CO-197", "x", FIRST_DAY + dt.timedelta(days=400), 3.0)
    tests = benchmark.known_onset_tests(counts, [change], settings)
    first = first_test_day(settings)
    assert [len(blocks) for blocks in tests.null] == [
        len(range(first, days - 13, 14)),
        len(range(first, 400 - 13, 14)),  # the changed cell's blocks end before its onset
    ]
    assert tests.changes.tolist() == [
        benchmark.block_statistic(daily[1], counts.payer_flow[1], 400)
    ]
    assert tests.payer_months == pytest.approx((days - first) / 30 * 2 / 40)
