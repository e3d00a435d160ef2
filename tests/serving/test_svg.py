"""Inline SVG charts: one element per chart, escaped, ids kept apart, settings left alone."""

from __future__ import annotations

import re

import matplotlib
import matplotlib.pyplot as plt

from serving.svg import explanation_waterfall_svg

EXPLANATION = {
    "output": 0.9,
    "output_meaning": "log-odds that working the denial recovers money",
    "base_value": 0.2,
    "reasons": [
        {"label": "prior authorization on file", "value": "no", "contribution": -0.6},
        {"label": "denied amount", "value": "$1,480.00 <b>&</b> $2", "contribution": 0.8},
        {"label": "payer", "value": "COM003", "contribution": 0.6},
    ],
    "rest": -0.1,
}


def test_waterfall_svg_is_an_inline_element_naming_every_reason() -> None:
    svg = explanation_waterfall_svg(EXPLANATION, "wf-recovery", "Recovery: SHAP")
    assert svg.startswith('<svg id="wf-recovery" role="img" aria-label="Recovery: SHAP" ')
    assert "<?xml" not in svg and "<metadata>" not in svg
    assert "<title>Recovery: SHAP</title>" in svg
    for text in ("prior authorization on file: no", "payer: COM003", "all other features"):
        assert text in svg
    assert "base +0.20 (dotted) to score +0.90" in svg


def test_waterfall_svg_escapes_what_the_records_hold() -> None:
    svg = explanation_waterfall_svg(EXPLANATION, "wf")
    assert "<b>" not in svg
    assert "denied amount: $1,480.00 &lt;b&gt;&amp;&lt;/b&gt; $2" in svg  # dollars, not mathtext


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
