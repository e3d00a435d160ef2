"""Payer deadline rules: domain defaults, traceable names, overrides and row-wise deadlines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from features.contract import PAYER_TYPES
from features.payer_rules import (
    DEADLINE_KINDS,
    PayerRules,
    PayerRulesError,
    load_payer_rules,
)

SERVICE = dt.date(2026, 1, 5)
DENIAL = dt.date(2026, 2, 1)


def write_rules(tmp_path: Path, document: dict[str, Any] | str) -> Path:
    path = tmp_path / "site_payer_rules.yaml"
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    path.write_text(text, encoding="utf-8")
    return path


def rule(days: Any, source: Any = "participating agreement 2025, section 4.2") -> dict[str, Any]:
    return {"days": days, "source": source}


@pytest.fixture(scope="module")
def shipped() -> PayerRules:
    return load_payer_rules()


# ---------------------------------------------------------------------------- shipped defaults


@pytest.mark.parametrize(
    ("payer_type", "kind", "days"),
    [
        ("medicare", "timely_filing", 365),  # 42 CFR 424.44: 12 months from service
        ("medicare", "appeal", 120),  # redetermination: 120 days from the notice
        ("medicare_advantage", "appeal", 65),  # plan reconsideration
        ("medicaid", "timely_filing", 365),  # federal maximum of 12 months
        ("commercial", "timely_filing", 90),  # UHC, Cigna, Anthem participating
    ],
)
def test_shipped_defaults_match_the_domain_primer(
    shipped: PayerRules, payer_type: str, kind: str, days: int
) -> None:
    assert shipped.rule(kind, "any-payer", payer_type).days == days


def test_commercial_appeal_window_is_within_the_common_range(shipped: PayerRules) -> None:
    assert 60 <= shipped.rule("appeal", "any-payer", "commercial").days <= 180


def test_medicare_deadlines_count_from_service_and_denial(shipped: PayerRules) -> None:
    filing, filing_rule = shipped.filing_deadline("MCR-J15", "medicare", SERVICE)
    appeal, appeal_rule = shipped.appeal_deadline("MCR-J15", "medicare", DENIAL)
    assert filing == dt.date(2027, 1, 5)
    assert appeal == dt.date(2026, 6, 1)
    assert (filing_rule.name, appeal_rule.name) == ("medicare.timely_filing", "medicare.appeal")
    assert "424.44" in filing_rule.source


@pytest.mark.parametrize("payer_type", PAYER_TYPES)
@pytest.mark.parametrize("kind", DEADLINE_KINDS)
def test_every_default_is_named_and_sourced(
    shipped: PayerRules, payer_type: str, kind: str
) -> None:
    default = shipped.rule(kind, "any-payer", payer_type)
    assert default.name == f"{payer_type}.{kind}"
    assert default.source.strip()
    assert default.days > 0


def test_unknown_payer_type_uses_the_other_default(shipped: PayerRules) -> None:
    assert shipped.rule("appeal", "X", "dental_plan") == shipped.rule("appeal", "X", "other")


def test_shipped_version(shipped: PayerRules) -> None:
    assert shipped.version == "2026.11.0"
    assert shipped.by_payer == {}


# ---------------------------------------------------------------------------- overrides


def test_payer_override_wins_for_that_payer_only(tmp_path: Path, shipped: PayerRules) -> None:
    path = write_rules(
        tmp_path, {"version": "site-1", "payers": {"87726": {"timely_filing": rule(180)}}}
    )
    site = load_payer_rules(path)
    deadline, own = site.filing_deadline("87726", "commercial", SERVICE)
    assert (own.name, own.days, deadline) == ("payer:87726.timely_filing", 180, dt.date(2026, 7, 4))
    assert own.source == "participating agreement 2025, section 4.2"
    assert site.rule("timely_filing", "60054", "commercial").name == "commercial.timely_filing"
    assert site.rule("appeal", "87726", "commercial") == shipped.rule("appeal", "x", "commercial")
    assert site.version == "2026.11.0+site-1"


def test_unquoted_numeric_payer_id_is_matched_as_text(tmp_path: Path) -> None:
    path = write_rules(tmp_path, "payers:\n  87726:\n    appeal: {days: 60, source: contract}\n")
    assert load_payer_rules(path).rule("appeal", "87726", "commercial").name == "payer:87726.appeal"


def test_payer_type_default_can_be_overridden(tmp_path: Path, shipped: PayerRules) -> None:
    path = write_rules(tmp_path, {"defaults": {"commercial": {"appeal": rule(120)}}})
    site = load_payer_rules(path)
    appeal = site.rule("appeal", "60054", "commercial")
    assert (appeal.name, appeal.days) == ("commercial.appeal", 120)
    assert site.rule("timely_filing", "60054", "commercial").days == 90  # the other kind stays
    assert site.rule("appeal", "MCR", "medicare") == shipped.rule("appeal", "MCR", "medicare")
    assert site.version == "2026.11.0+unversioned"


def test_payer_override_beats_a_site_payer_type_default(tmp_path: Path) -> None:
    document = {
        "defaults": {"medicare_advantage": {"appeal": rule(60)}},
        "payers": {"MA-123": {"appeal": rule(30)}},
    }
    site = load_payer_rules(write_rules(tmp_path, document))
    assert site.rule("appeal", "MA-123", "medicare_advantage").days == 30
    assert site.rule("appeal", "MA-999", "medicare_advantage").days == 60


MALFORMED = [
    # (case, override document, text the error must contain)
    ("zero days", {"payers": {"X1": {"appeal": rule(0)}}}, "payer:X1.appeal: needs a positive"),
    ("negative days", {"defaults": {"medicaid": {"timely_filing": rule(-30)}}},
     "medicaid.timely_filing: needs a positive whole number of 'days'"),
    ("fractional days", {"payers": {"X1": {"appeal": rule(30.5)}}}, "payer:X1.appeal: needs"),
    ("days as text", {"payers": {"X1": {"appeal": rule("90")}}}, "payer:X1.appeal: needs"),
    ("days as a boolean", {"payers": {"X1": {"appeal": rule(True)}}}, "payer:X1.appeal: needs"),
    ("missing days", {"payers": {"X1": {"appeal": {"source": "contract"}}}},
     "payer:X1.appeal: needs"),
    ("missing source", {"payers": {"X1": {"appeal": {"days": 60}}}},
     "payer:X1.appeal: needs a 'source'"),
    ("blank source", {"payers": {"X1": {"appeal": rule(60, "  ")}}},
     "payer:X1.appeal: needs a 'source'"),
    ("unknown payer type", {"defaults": {"blue_cross": {"appeal": rule(60)}}},
     "unknown payer type 'blue_cross'"),
    ("unknown rule kind", {"payers": {"X1": {"reconsideration": rule(60)}}},
     "payer:X1.reconsideration: unknown rule; use timely_filing, appeal"),
    ("rule as a bare number", {"defaults": {"medicare": {"appeal": 120}}},
     "medicare.appeal: needs a positive"),
    ("rules as a bare number", {"defaults": {"medicare": 365}}, "medicare: "),
    ("rules as a list", {"payers": {"X1": [rule(60)]}}, "payer:X1: "),
    ("section as a list", {"payers": ["X1"]}, "the payer section must be a mapping"),
    ("misspelt field of a rule", {"payers": {"X1": {"appeal": {**rule(60), "day": 30}}}},
     "payer:X1.appeal: unknown field 'day'; a rule has days and source"),
    ("misspelt section", {"payer": {"X1": {"appeal": rule(60)}}}, "unknown section 'payer'"),
    ("file is a list", "- payers\n", "must be a mapping"),
    ("not YAML", "payers: {X1: [\n", "not valid YAML"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("document", "message"), [pytest.param(*case[1:], id=case[0]) for case in MALFORMED]
)
def test_malformed_override_names_the_file_and_rule(
    tmp_path: Path, document: dict[str, Any] | str, message: str
) -> None:
    path = write_rules(tmp_path, document)
    with pytest.raises(PayerRulesError) as caught:
        load_payer_rules(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_missing_override_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PayerRulesError, match=r"absent\.yaml: payer rules override file does not"):
        load_payer_rules(tmp_path / "absent.yaml")


def test_empty_override_file_changes_nothing(tmp_path: Path, shipped: PayerRules) -> None:
    site = load_payer_rules(write_rules(tmp_path, ""))
    assert site.by_payer_type == shipped.by_payer_type
    assert site.by_payer == {}


# ---------------------------------------------------------------------------- row-wise


def test_deadline_frame_equals_the_scalar_deadlines_row_by_row(tmp_path: Path) -> None:
    path = write_rules(tmp_path, {"payers": {"87726": {"timely_filing": rule(180)}}})
    rules = load_payer_rules(path)
    rows = [
        ("87726", "commercial", "2026-01-05", "2026-02-01"),
        ("60054", "commercial", "2026-01-05", "2026-02-01"),
        ("MCR-J15", "medicare", "2025-12-31", "2026-03-15"),
        ("MA-123", "medicare_advantage", "2024-02-29", "2024-03-01"),
        ("87726", "commercial", "2026-03-01", "2026-03-01"),
        ("WC-9", "workers_comp", "2026-06-30", "2026-08-31"),
    ]
    frame = pd.DataFrame(rows, columns=["payer_id", "payer_type", "service_date", "denial_date"])
    frame["service_date"] = pd.to_datetime(frame["service_date"]).astype("datetime64[s]")
    frame["denial_date"] = pd.to_datetime(frame["denial_date"]).astype("datetime64[s]")
    frame.index = pd.RangeIndex(10, 10 + len(frame))
    deadlines = rules.deadline_frame(frame)
    assert list(deadlines.index) == list(frame.index)
    for (payer_id, payer_type, service, denial), (_, row) in zip(
        rows, deadlines.iterrows(), strict=True
    ):
        filing, filing_rule = rules.filing_deadline(
            payer_id, payer_type, dt.date.fromisoformat(service)
        )
        appeal, appeal_rule = rules.appeal_deadline(
            payer_id, payer_type, dt.date.fromisoformat(denial)
        )
        assert row["filing_deadline"].date() == filing
        assert row["appeal_deadline"].date() == appeal
        assert (row["filing_rule"], row["appeal_rule"]) == (filing_rule.name, appeal_rule.name)
    assert deadlines["filing_rule"].iloc[0] == "payer:87726.timely_filing"
    assert deadlines["filing_rule"].iloc[1] == "commercial.timely_filing"
