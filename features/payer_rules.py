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
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

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
    for _, document in documents:
        _merge(by_type, _named_rules(document.defaults, "{owner}"))
        _merge(by_payer, _named_rules(document.payers, "payer:{owner}"))
    _require_complete_defaults(by_type)
    version = "+".join(str(doc.version or "unversioned") for _, doc in documents)
    return PayerRules(version, by_type, by_payer)


# ---------------------------------------------------------------------------- the file's shape

DeadlineKind = Literal["timely_filing", "appeal"]
PayerType = Literal[PAYER_TYPES]  # type: ignore[valid-type]
# YAML reads an unquoted payer id such as 87726 as a number; ids are text.
PayerId = Annotated[str, BeforeValidator(str)]


class _RuleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(strict=True, gt=0)  # strict: "90", 30.5 and true are refused
    source: str = Field(pattern=r"\S")  # where the number comes from, not blank


_Rules = dict[DeadlineKind, _RuleEntry] | None


class _RulesFile(BaseModel):
    """A payer rules file (shipped or a site's override): a misspelt section or rule kind is an
    error, since it would otherwise drop every override in it without a word."""

    model_config = ConfigDict(extra="forbid")
    version: str | int | float | None = None
    defaults: dict[PayerType, _Rules] | None = None
    payers: dict[PayerId, _Rules] | None = None


def _read_document(text: str, source: str) -> _RulesFile:
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PayerRulesError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise PayerRulesError(f"{source}: must be a mapping of {', '.join(SECTIONS)}")
    try:
        return _RulesFile.model_validate(document)
    except ValidationError as exc:
        raise PayerRulesError(f"{source}: {_problem(exc.errors()[0])}") from exc


def _problem(error: Any) -> str:
    """One validation error in the file's words: the rule it names and what it needs."""
    section, *where = error["loc"]
    if not where:
        if error["type"] == "extra_forbidden":
            return f"unknown section {section!r}; use {', '.join(SECTIONS)}"
        scope = "payer_type" if section == "defaults" else "payer"
        return f"the {scope} section must be a mapping"
    owner, *rest = where
    prefix = str(owner) if section == "defaults" else f"payer:{owner}"
    if rest == ["[key]"]:
        return f"unknown payer type {owner!r}"
    if not rest:
        return f"{prefix}: must map rule kinds ({', '.join(DEADLINE_KINDS)}) to rules"
    kind, *field = rest
    if field == ["[key]"]:
        return f"{prefix}.{kind}: unknown rule; use {', '.join(DEADLINE_KINDS)}"
    if error["type"] == "extra_forbidden":
        return f"{prefix}.{kind}: unknown field {field[0]!r}; a rule has days and source"
    if field == ["source"]:
        return f"{prefix}.{kind}: needs a 'source' saying where the days come from"
    return f"{prefix}.{kind}: needs a positive whole number of 'days'"


def _named_rules(
    section: dict[str, _Rules] | None, owner_name: str
) -> dict[str, dict[str, DeadlineRule]]:
    named: dict[str, dict[str, DeadlineRule]] = {}
    for owner, rules in (section or {}).items():
        prefix = owner_name.format(owner=owner)
        named[owner] = {
            kind: DeadlineRule(name=f"{prefix}.{kind}", days=entry.days, source=entry.source)
            for kind, entry in (rules or {}).items()
        }
    return named


def _merge(
    target: dict[str, dict[str, DeadlineRule]], update: dict[str, dict[str, DeadlineRule]]
) -> None:
    for owner, rules in update.items():
        target.setdefault(owner, {}).update(rules)


def _require_complete_defaults(by_type: dict[str, dict[str, DeadlineRule]]) -> None:
    for payer_type in PAYER_TYPES:
        missing = [k for k in DEADLINE_KINDS if k not in by_type.get(payer_type, {})]
        if missing:
            raise PayerRulesError(f"no default {', '.join(missing)} rule for {payer_type}")
