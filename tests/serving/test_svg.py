"""Inline SVG charts: one element per chart, escaped, ids kept apart, readable on a phone,
settings left alone."""

from __future__ import annotations

import re

import matplotlib
import matplotlib.pyplot as plt

from serving.svg import PHONE_CHART_PX, PHONE_TEXT_PX, explanation_waterfall_svg

EXPLANATION = {
    "output": 0.9,
    "output_meaning": "log-odds that working the denial recovers money",
    "base_value": 0.2,
    "base_probability": 0.55,
    "probability": 0.711,
    "reasons": [
        {"label": "prior authorization on file", "value": "no", "probability_points": -14.8},
        {"label": "denied amount", "value": "$1,480.00 <b>&</b> $2", "probability_points": 19.1},
        {"label": "payer", "value": "COM003", "probability_points": 12.1},
    ],
    "rest_probability_points": -0.3,
}


def test_waterfall_svg_is_an_inline_element_naming_every_reason_in_points() -> None:
    svg = explanation_waterfall_svg(EXPLANATION, "wf-recovery", "Recovery: reasons")
    assert svg.startswith('<svg id="wf-recovery" role="img" aria-label="Recovery: reasons" ')
    assert "<?xml" not in svg and "<metadata>" not in svg
    assert "<title>Recovery: reasons</title>" in svg
    for text in ("prior authorization on file: no", "payer: COM003", "all other features"):
        assert text in svg
    for text in ("-14.8 pts", "+19.1 pts", "+12.1 pts", "-0.3 pts"):
        assert text in svg
    # The axis runs in percent of the displayed probability, not in log-odds.
    assert "from 55.0% (dotted) to 71.1%" in svg
    assert "log-odds" not in svg


def test_waterfall_svg_escapes_what_the_records_hold() -> None:
    svg = explanation_waterfall_svg(EXPLANATION, "wf")
    assert "<b>" not in svg
    assert "denied amount: $1,480.00 &lt;b&gt;&amp;&lt;/b&gt; $2" in svg  # dollars, not mathtext


def _smallest_text_on_a_phone(svg: str) -> float:
    """The smallest font of an inline SVG, in pixels, once scaled to the phone's chart width."""
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))
    sizes = [float(size) for size in re.findall(r"font[^;\"]*?([\d.]+)px", svg)]
    assert sizes, "the chart writes its text as text"
    return min(sizes) * PHONE_CHART_PX / width


def test_every_chart_text_is_readable_on_a_phone() -> None:
    from serving.charts import bars_svg, monthly_volume_svg

    charts = [
        explanation_waterfall_svg(EXPLANATION, "wf"),
        bars_svg(["over 120 days", "0-30 days"], [1200.5, 300.0], "b", "Aging", "dollars"),
        monthly_volume_svg(
            [
                {"month": "2026-08", "root_cause": "coding", "denials": 12},
                {"month": "2026-09", "root_cause": "duplicate", "denials": 7},
            ],
            "root_cause",
            "v",
            "Volume",
        ),
    ]
    for svg in charts:
        assert _smallest_text_on_a_phone(svg) >= PHONE_TEXT_PX


def test_charts_on_one_page_never_share_an_id_and_leave_settings_alone() -> None:
    before = (matplotlib.rcParams["svg.fonttype"], plt.get_fignums())
    first = explanation_waterfall_svg(EXPLANATION, "chart-a")
    second = explanation_waterfall_svg(EXPLANATION, "chart-b")
    ids = [set(re.findall(r'id="([^"]+)"', svg)) for svg in (first, second)]
    assert ids[0] and not ids[0] & ids[1]
    assert all(name.startswith("chart-a") for name in ids[0])
    references = re.findall(r'(?:href="#|url\(#)([^")]+)', first)
    assert set(references) <= ids[0]
    assert (matplotlib.rcParams["svg.fonttype"], plt.get_fignums()) == before
