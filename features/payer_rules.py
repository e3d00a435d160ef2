"""Payer deadline rules: timely filing and appeal windows, traceable to the rule that set them.

Defaults come by payer type from ``features/reference/payer_rules.yaml``; a site file of the
same shape overrides them per payer type or per payer id. Every deadline the project computes
names its rule (``payer:87726.timely_filing`` or ``commercial.appeal``) so a reviewer can see
why a denial is urgent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from features.contract import PAYER_TYPES

DEADLINE_KINDS = ("timely_filing", "appeal")
SECTIONS = ("version", "defaults", "payers")
SHIPPED_RULES = "features/reference/payer_rules.yaml"


@dataclass(frozen=True)
class DeadlineRule:
    """One named rule: a number of days from a start date, and where the number comes from."""

    name: str
    days: int
    source: str


class PayerRulesError(ValueError):
    """The rules file is malformed; the message names the file and the rule."""


@dataclass(frozen=True)
class PayerRules:
    """Deadline rules by payer type, with per-payer overrides."""

    version: str
    by_payer_type: dict[str, dict[str, DeadlineRule]]
    by_payer: dict[str, dict[str, DeadlineRule]]

    def rule(self, kind: str, payer_id: str, payer_type: str) -> DeadlineRule:
        """The rule of ``kind`` for a payer: its own override first, then its payer type's."""
        own = self.by_payer.get(payer_id, {})
        if kind in own:
            return own[kind]
        return self.by_payer_type.get(payer_type, self.by_payer_type["other"])[kind]

    def filing_deadline(
        self, payer_id: str, payer_type: str, service_date: dt.date
    ) -> tuple[dt.date, DeadlineRule]:
        """Last day to file (or refile a corrected claim), counted from the date of service."""
        rule = self.rule("timely_filing", payer_id, payer_type)
        return service_date + dt.timedelta(days=rule.days), rule

    def appeal_deadline(
        self, payer_id: str, payer_type: str, denial_date: dt.date
    ) -> tuple[dt.date, DeadlineRule]:
        """Last day to appeal, counted from the date of the denying remittance."""
        rule = self.rule("appeal", payer_id, payer_type)
        return denial_date + dt.timedelta(days=rule.days), rule

    def deadline_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Filing and appeal deadlines with their rule names for every row of a contract frame."""
        out = {}
        for kind, start in (("timely_filing", "service_date"), ("appeal", "denial_date")):
            rules = self._rules_for_rows(kind, frame)
            days = np.fromiter((r.days for r in rules), dtype="int64", count=len(rules))
            prefix = "filing" if kind == "timely_filing" else "appeal"
            start_dates = pd.to_datetime(frame[start]).to_numpy()
            out[f"{prefix}_deadline"] = start_dates + days.astype("timedelta64[D]")
            out[f"{prefix}_rule"] = [r.name for r in rules]
        return pd.DataFrame(out, index=frame.index)

    def _rules_for_rows(self, kind: str, frame: pd.DataFrame) -> list[DeadlineRule]:
        cache: dict[tuple[str, str], DeadlineRule] = {}
        rules = []
        for payer_id, payer_type in zip(frame["payer_id"], frame["payer_type"], strict=True):
            key = (payer_id, payer_type)
            if key not in cache:
                cache[key] = self.rule(kind, payer_id, payer_type)
            rules.append(cache[key])
        return rules


def load_payer_rules(overrides: Path | None = None) -> PayerRules:
    """The shipped defaults, with a site override file layered on top when given."""
    shipped = resources.files("features.reference").joinpath("payer_rules.yaml").read_text()
    documents = [(SHIPPED_RULES, _read_document(shipped, SHIPPED_RULES))]
    if overrides is not None:
        if not overrides.exists():
            raise PayerRulesError(f"{overrides}: payer rules override file does not exist")
        documents.append((str(overrides), _read_document(overrides.read_text(), str(overrides))))
    by_type: dict[str, dict[str, DeadlineRule]] = {}
    by_payer: dict[str, dict[str, DeadlineRule]] = {}
    for source, document in documents:
        _merge(by_type, _parse_section(document.get("defaults"), source, "payer_type"))
        _merge(by_payer, _parse_section(document.get("payers"), source, "payer"))
    _require_complete_defaults(by_type)
    version = "+".join(str(doc.get("version", "unversioned")) for _, doc in documents)
    return PayerRules(version, by_type, by_payer)


def _read_document(text: str, source: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PayerRulesError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise PayerRulesError(f"{source}: must be a mapping of {', '.join(SECTIONS)}")
    # A misspelt section would otherwise drop every override in it without a word.
    for name in document:
        if name not in SECTIONS:
            raise PayerRulesError(f"{source}: unknown section {name!r}; use {', '.join(SECTIONS)}")
    return document


def _merge(
    target: dict[str, dict[str, DeadlineRule]], update: dict[str, dict[str, DeadlineRule]]
) -> None:
    for owner, rules in update.items():
        target.setdefault(owner, {}).update(rules)


def _parse_section(section: Any, source: str, scope: str) -> dict[str, dict[str, DeadlineRule]]:
    if not section:
        return {}
    if not isinstance(section, dict):
        raise PayerRulesError(f"{source}: the {scope} section must be a mapping")
    parsed = {}
    for owner, rules in section.items():
        owner = str(owner)
        if scope == "payer_type" and owner not in PAYER_TYPES:
            raise PayerRulesError(f"{source}: unknown payer type {owner!r}")
        prefix = owner if scope == "payer_type" else f"payer:{owner}"
        if not isinstance(rules or {}, dict):
            kinds = ", ".join(DEADLINE_KINDS)
            raise PayerRulesError(f"{source}: {prefix}: must map rule kinds ({kinds}) to rules")
        parsed[owner] = {
            kind: _parse_rule(value, source, f"{prefix}.{kind}")
            for kind, value in (rules or {}).items()
        }
    return parsed


def _parse_rule(value: Any, source: str, name: str) -> DeadlineRule:
    kind = name.rsplit(".", 1)[1]
    if kind not in DEADLINE_KINDS:
        raise PayerRulesError(f"{source}: {name}: unknown rule; use {', '.join(DEADLINE_KINDS)}")
    days = value.get("days") if isinstance(value, dict) else None
    if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
        raise PayerRulesError(f"{source}: {name}: needs a positive whole number of 'days'")
    if not str(value.get("source") or "").strip():
        raise PayerRulesError(f"{source}: {name}: needs a 'source' saying where the days come from")
    return DeadlineRule(name=name, days=days, source=str(value["source"]))


def _require_complete_defaults(by_type: dict[str, dict[str, DeadlineRule]]) -> None:
    for payer_type in PAYER_TYPES:
        missing = [k for k in DEADLINE_KINDS if k not in by_type.get(payer_type, {})]
        if missing:
            raise PayerRulesError(f"no default {', '.join(missing)} rule for {payer_type}")
