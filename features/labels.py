"""Plain labels for the names a reviewer reads, from one table (``reference/labels.yaml``).

Root causes, action paths, owner queues and the rest are identifiers in the mapping, the
payer rules and the records (``missing_invalid_claim_data``); pages, reasons and charts show
their labels instead ("Missing or invalid claim data"). Deadline rules are named
``commercial.timely_filing`` or ``payer:87726.appeal`` and read as "commercial payers' timely
filing limit" or "payer 87726's appeal window".
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import yaml

LABELS_FILE = "labels.yaml"
KINDS = (
    "root_cause",
    "action_path",
    "owner_queue",
    "prevention_owner",
    "resolution",
    "payer_type",
    "deadline_kind",
    "procedure_family",
)


@lru_cache(maxsize=1)
def label_table() -> dict[str, dict[str, str]]:
    """Every kind's labels, read once from the shipped file."""
    text = resources.files("features.reference").joinpath(LABELS_FILE).read_text("utf-8")
    table = yaml.safe_load(text)
    return {kind: dict(table.get(kind) or {}) for kind in KINDS}


def plain_label(kind: str, name: object) -> str:
    """The label of ``name`` (an identifier of ``kind``); an unknown name as words, so a site's
    own queue still reads ("north_billing" -> "north billing"), and None as a dash."""
    if name is None:
        return "—"
    return label_table()[kind].get(str(name)) or str(name).replace("_", " ")


def deadline_rule_label(rule: object) -> str:
    """``commercial.timely_filing`` -> "commercial payers' timely filing limit";
    ``payer:87726.appeal`` -> "payer 87726's appeal window"."""
    if not rule:
        return "—"
    owner, _, kind = str(rule).rpartition(".")
    what = plain_label("deadline_kind", kind)
    if owner.startswith("payer:"):
        return f"payer {owner.removeprefix('payer:')}'s {what}"
    return f"{plain_label('payer_type', owner)} payers' {what}"


@lru_cache(maxsize=1)
def _identifiers() -> re.Pattern[str]:
    """Every labelled identifier with an underscore (the ones a sentence cannot hold as they
    are), longest first so ``medicare_advantage`` wins over a shorter overlap."""
    names = {
        name
        for kind, labels in label_table().items()
        if kind not in ("deadline_kind", "payer_type")  # payer types are proper nouns
        for name in labels
        if "_" in name
    }
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\b")


def in_plain_words(text: str) -> str:
    """Free text the service writes (a routing rule, a review reason) with every identifier it
    quotes replaced by its label, in lower case to sit inside a sentence."""
    table = label_table()

    def label(match: re.Match[str]) -> str:
        name = match.group(0)
        found = next(labels[name] for labels in table.values() if name in labels)
        return found[0].lower() + found[1:]

    return _identifiers().sub(label, text)
