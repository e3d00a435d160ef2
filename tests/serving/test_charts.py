"""The dashboard's charts: the newest months, the largest series, other last, nothing to draw
drawn as nothing."""

from __future__ import annotations

import re

import pandas as pd

from serving.charts import OTHER, bars_svg, monthly_volume_svg, top_series


def totals(months: int, payers: int) -> list[dict]:
    return [
        {"month": f"2026-{month:02d}", "payer_id": f"P{payer}", "denials": payer + 1}
        for month in range(1, months + 1)
        for payer in range(payers)
    ]


def texts(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_all_but_the_largest_series_are_merged_as_other() -> None:
    frame = pd.DataFrame(totals(months=2, payers=9))
    series = top_series(frame, "payer_id", shown=3)
    assert set(series) == {"P8", "P7", "P6", OTHER}


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
