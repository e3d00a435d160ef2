"""Every name a reviewer reads has a plain label, from the one table."""

from __future__ import annotations

import pytest

from features.contract import PAYER_TYPES, RESOLUTIONS, ROOT_CAUSES
from features.labels import deadline_rule_label, in_plain_words, label_table, plain_label
from features.mapping import ACTION_PATHS, load_mapping
from features.payer_rules import load_payer_rules


def test_every_declared_name_has_a_label() -> None:
    mapping = load_mapping()
    declared = {
        "root_cause": set(ROOT_CAUSES),
        "action_path": set(ACTION_PATHS),
        "owner_queue": set(mapping.owner_queues),
        "prevention_owner": {p.prevention_owner for p in mapping.root_causes.values()},
        "resolution": set(RESOLUTIONS),
        "payer_type": set(PAYER_TYPES),
    }
    table = label_table()
    for kind, names in declared.items():
        missing = names - set(table[kind])
        assert not missing, f"{kind} without a label in features/reference/labels.yaml: {missing}"
        assert all("_" not in table[kind][name] for name in names)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("commercial.timely_filing", "Commercial payers' timely filing limit"),
        ("medicare_advantage.appeal", "Medicare Advantage payers' appeal window"),
        ("payer:87726.timely_filing", "payer 87726's timely filing limit"),
        (None, "—"),
    ],
)
def test_deadline_rules_read_as_words(rule: str | None, expected: str) -> None:
    assert deadline_rule_label(rule) == expected


def test_every_shipped_deadline_rule_reads_without_identifiers() -> None:
    rules = load_payer_rules()
    for payer_type in PAYER_TYPES:
        for kind in ("timely_filing", "appeal"):
            name = rules.rule(kind, "NO-SUCH-PAYER", payer_type).name
            assert "_" not in deadline_rule_label(name), name


def test_free_text_quotes_labels_not_identifiers() -> None:
    rule = (
        "triage: model says authorization_referral at 41% (under 50%), "
        "codes say missing_invalid_claim_data"
    )
    assert in_plain_words(rule) == (
        "triage: model says authorization or referral at 41% (under 50%), "
        "codes say missing or invalid claim data"
    )
    assert in_plain_words("coding decisions need judgement") == "coding decisions need judgement"


def test_an_unknown_name_still_reads_as_words() -> None:
    assert plain_label("owner_queue", "north_billing") == "north billing"
    assert plain_label("owner_queue", None) == "—"
