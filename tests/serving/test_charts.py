"""The dashboard's charts: the newest months, every month, the largest series, other last,
dollars beside counts, plain labels, escaped text, nothing to draw drawn as nothing."""

from __future__ import annotations

import re

import pytest

from serving.charts import OTHER, bars_svg, largest_series, monthly_volume_svg, nice_ticks


def totals(months: int, payers: int) -> list[dict]:
    return [
        {"month": f"2026-{month:02d}", "payer_id": f"P{payer}", "denials": payer + 1}
        for month in range(1, months + 1)
        for payer in range(payers)
    ]


def texts(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_the_largest_series_are_kept_largest_first() -> None:
    assert largest_series(totals(months=2, payers=9), "payer_id", shown=3) == ["P8", "P7", "P6"]


def test_monthly_volume_draws_the_newest_months_with_other_last() -> None:
    svg = monthly_volume_svg(totals(months=12, payers=9), "payer_id", "volume", "Payers")
    assert {"2026-01", "2026-12"} <= set(texts(svg))
    legend = [text for text in texts(svg) if text.startswith("P") or text == OTHER]
    assert legend == ["P8", "P7", "P6", "P5", "P4", "P3", OTHER]
    svg = monthly_volume_svg(
        [*totals(months=12, payers=2), {"month": "2025-12", "payer_id": "P0", "denials": 1}],
        "payer_id",
        "volume",
        "Payers",
    )
    assert "2025-12" not in texts(svg)  # thirteen months: the oldest is left out


def test_bars_write_dollars_and_nothing_is_drawn_without_data() -> None:
    svg = bars_svg(["0-30 days", "over 120 days"], [205_499.0, 12.0], "aging", "Aging", "dollars")
    assert "$205,499" in svg and "over 120 days" in svg
    assert bars_svg([], [], "aging", "Aging", "dollars") == ""
    assert monthly_volume_svg([], "payer_id", "volume", "Payers") == ""


def test_monthly_volume_shows_every_month_and_dollars_beside_counts() -> None:
    rows = [
        {"month": month, "payer_id": "P1", "denials": 3, "denied_dollars": 1250.0}
        for month in ("2026-01", "2026-04")  # February and March had no denials
    ]
    svg = monthly_volume_svg(rows, "payer_id", "volume", "Payers")
    shown = set(texts(svg))
    assert {"2025-05", "2026-02", "2026-03", "2026-04"} <= shown
    assert "denied dollars" in shown and any(text.startswith("$1,") for text in shown)


def test_series_and_bars_read_in_plain_labels_and_escape_remittance_text() -> None:
    rows = [
        {"month": "2026-03", "root_cause": "missing_invalid_claim_data", "denials": 4},
        {"month": "2026-03", "root_cause": None, "denials": 1},
    ]
    shown = texts(monthly_volume_svg(rows, "root_cause", "volume", "Causes"))
    assert "Missing or invalid claim data" in shown and "unknown" in shown
    assert not [text for text in shown if "_" in text]
    hostile = monthly_volume_svg(
        [{"month": "2026-03", "payer": "<script>x</script>", "denials": 2}], "payer", "v", "P"
    )
    assert "<script>" not in hostile and "&lt;script&gt;x&lt;/script&gt;" in hostile
    bars = bars_svg(['Payer "A" & <b>'], [3.0], "b", "Bars", "denials")
    assert "<b>" not in bars and "&lt;b&gt;" in bars


def test_stacked_bars_are_as_tall_as_their_months_totals() -> None:
    rows = [
        {"month": "2026-02", "payer_id": "P1", "denials": 30},
        {"month": "2026-02", "payer_id": "P2", "denials": 10},
        {"month": "2026-03", "payer_id": "P1", "denials": 20},
    ]
    svg = monthly_volume_svg(rows, "payer_id", "volume", "Payers")
    heights = {
        tip: float(height)
        for height, tip in re.findall(r'height="([\d.]+)"[^>]*><title>([^<]+)</title>', svg)
    }
    february = heights["2026-02 · P1: 30"] + heights["2026-02 · P2: 10"]
    assert february == pytest.approx(2 * heights["2026-03 · P1: 20"], abs=0.2)


def test_value_axes_end_on_a_round_number_at_or_above_the_largest_value() -> None:
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(40) == [0, 10, 20, 30, 40]
    ticks = nice_ticks(1_234_567)
    assert ticks[-1] >= 1_234_567 and len(ticks) <= 6 and ticks[1] == 500_000
