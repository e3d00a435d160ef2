"""The governed code mapping: governance checks, override layering and route specificity."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from features.contract import ROOT_CAUSES
from features.mapping import (
    ACTION_PATHS,
    TRIAGE_QUEUE,
    CodeMapping,
    MappingError,
    MappingProblem,
    check_mapping,
    load_mapping,
)

# Fixed, so the shipped reviews (2026-11-20, 2026-12-05) never go stale here.
TODAY = dt.date(2026, 12, 10)
SHIPPED = "features/reference/mapping.yaml"
FALLBACK_RULE = "fallback (no mapping entry for the primary CARC)"
ENTRY: dict[str, Any] = {
    "carc": "16",
    "rarc": "N54",
    "root_cause": "authorization_referral",
    "action_path": "authorization_evidence",
    "owner_queue": "utilization_management",
    "owner": "site-um-lead",
    "reviewed_on": "2026-11-20",
}


def write_override(tmp_path: Path, entries: list[dict[str, Any]], **top: Any) -> Path:
    document = {"version": "site-1", **top, "entries": entries}
    path = tmp_path / "site_mapping.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def write_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site_mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def entry(**changes: Any) -> dict[str, Any]:
    return {**ENTRY, **changes}


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in ENTRY.items() if k != field}


@pytest.fixture(scope="module")
def shipped() -> CodeMapping:
    return load_mapping()


# ---------------------------------------------------------------------------- shipped file


def test_shipped_mapping_passes_every_check() -> None:
    assert check_mapping(today=TODAY) == []


def test_shipped_mapping_goes_stale_when_not_reviewed_for_years(shipped: CodeMapping) -> None:
    problems = check_mapping(today=dt.date(2030, 1, 1))
    # every entry, the fallback and each root cause's own route
    assert len(problems) == len(shipped.routes) + 1 + len(shipped.root_causes)
    assert {p.source for p in problems} == {SHIPPED}
    assert all("review is stale: last reviewed 2026-1" in p.message for p in problems)
    assert {"fallback", "root_causes.coding"} <= {p.where for p in problems}


@pytest.mark.parametrize(("max_age", "stale"), [(20, False), (19, True)])
def test_review_age_limit_is_configurable(shipped: CodeMapping, max_age: int, stale: bool) -> None:
    problems = check_mapping(today=TODAY, max_review_age_days=max_age)
    # The entries and fallback were reviewed 2026-11-20; the root causes' routes 2026-12-05.
    assert len(problems) == (len(shipped.routes) + 1 if stale else 0)
    assert all(f"(20 days ago, limit {max_age})" in p.message for p in problems)


def test_shipped_mapping_routes_to_every_root_cause_with_known_values(
    shipped: CodeMapping,
) -> None:
    routes = list(shipped.routes.values())
    assert {r.root_cause for r in routes} == set(ROOT_CAUSES)
    assert {r.action_path for r in routes} <= set(ACTION_PATHS)
    assert {r.owner_queue for r in routes} <= set(shipped.owner_queues)
    assert set(shipped.root_causes) == set(ROOT_CAUSES)


def test_shipped_stamp_is_version_and_stable_digest(shipped: CodeMapping) -> None:
    assert shipped.version == "2026.12.1"
    assert shipped.stamp == f"2026.12.1#{shipped.digest}"
    assert len(shipped.digest) == 12
    assert load_mapping().digest == shipped.digest


# ---------------------------------------------------------------------------- governance

DEFECTS = [
    # (case, entry, problem message fragment)
    ("unknown root cause", entry(root_cause="bad_luck"), "unknown root cause 'bad_luck'"),
    ("unknown action path", entry(action_path="pray"), "unknown action path 'pray'"),
    ("unknown owner queue", entry(owner_queue="nobody"), "unknown owner queue 'nobody'"),
    ("missing owner", without("owner"), "missing owner"),
    ("missing reviewed_on", without("reviewed_on"), "missing reviewed_on"),
    (
        "bad reviewed_on",
        entry(reviewed_on="2026-13-01"),
        "reviewed_on '2026-13-01' is not a date (YYYY-MM-DD)",
    ),
    (
        "reviewed_on not a date",
        entry(reviewed_on="last week"),
        "'last week' is not a date (YYYY-MM-DD)",
    ),
    (
        "typo in a field name",
        {**without("root_cause"), "root_casue": "coding"},
        "unknown field 'root_casue'",
    ),
    ("carc with a letter no CARC uses", entry(carc="C16"), "carc 'C16' is not a CARC code"),
    ("RARC in the carc field", entry(carc="N54"), "carc 'N54' is not a CARC code"),
    ("carc with group", entry(carc="CO-16"), "carc 'CO-16' is not a CARC code"),
    ("carc too long", entry(carc="1600"), "carc '1600' is not a CARC code"),
    ("missing carc", without("carc"), "carc '' is not a CARC code"),
    ("bad group code", entry(group="XX"), "unknown group code 'XX'"),
    ("lower-case group code", entry(group="co"), "unknown group code 'co'"),
    ("bad rarc", entry(rarc="X54"), "rarc 'X54' is not a RARC code"),
    ("rarc with a group", entry(rarc="CO-N54"), "rarc 'CO-N54' is not a RARC code"),
]


@pytest.mark.parametrize(
    ("bad_entry", "message"), [pytest.param(*case[1:], id=case[0]) for case in DEFECTS]
)
def test_defect_is_caught_naming_file_and_entry(
    tmp_path: Path, bad_entry: dict[str, Any], message: str
) -> None:
    path = write_override(tmp_path, [entry(carc="197", rarc=None), bad_entry])
    problems = check_mapping(path, today=TODAY)
    assert problems, "defect not caught"
    assert all(p.source == str(path) for p in problems)
    assert all(p.where.startswith("entry 2 (line ") for p in problems), problems
    assert any(message in p.message for p in problems), problems
    assert str(problems[0]).startswith(f"{path}: entry 2 (line ")


@pytest.mark.parametrize(
    ("bad_entry", "message"), [pytest.param(*case[1:], id=case[0]) for case in DEFECTS]
)
def test_load_mapping_refuses_structural_defects(
    tmp_path: Path, bad_entry: dict[str, Any], message: str
) -> None:
    path = write_override(tmp_path, [bad_entry])
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert any(message in p.message for p in caught.value.problems)
    assert f"{path}: entry 1 (line " in str(caught.value)


def test_problem_names_the_line_of_the_entry(tmp_path: Path) -> None:
    text = (
        'version: "site-1"\n'
        "entries:\n"
        '  - {carc: "197", root_cause: authorization_referral,\n'
        "     action_path: authorization_evidence, owner_queue: utilization_management,\n"
        "     owner: um, reviewed_on: 2026-11-20}\n"
        "\n"
        '  - {carc: "96", root_cause: bad_luck, action_path: write_off_approval,\n'
        "     owner_queue: billing, owner: billing-manager, reviewed_on: 2026-11-20}\n"
    )
    problems = check_mapping(write_text(tmp_path, text), today=TODAY)
    assert [(p.where, p.message.split(";")[0]) for p in problems] == [
        ("entry 2 (line 7)", "unknown root cause 'bad_luck'")
    ]


def test_duplicate_key_within_a_file_names_both_entries(tmp_path: Path) -> None:
    path = write_override(tmp_path, [entry(), entry(carc="197", rarc=None), entry(owner="other")])
    problems = check_mapping(path, today=TODAY)
    assert len(problems) == 1
    assert problems[0].where.startswith("entry 3 (line ")
    assert problems[0].message.startswith(
        "duplicate key CARC 16 + RARC N54, first defined at entry 1"
    )


def test_same_carc_with_different_group_or_rarc_is_not_a_duplicate(tmp_path: Path) -> None:
    entries = [entry(), entry(rarc=None), entry(group="PR"), entry(group="PR", rarc=None)]
    assert check_mapping(write_override(tmp_path, entries), today=TODAY) == []


@pytest.mark.parametrize(
    ("reviewed_on", "message"),
    [
        ("2025-12-09", "review is stale: last reviewed 2025-12-09 (366 days ago, limit 365)"),
        ("2026-12-25", "reviewed_on 2026-12-25 is in the future"),
    ],
)
def test_review_dates_are_checked_but_do_not_stop_loading(
    tmp_path: Path, reviewed_on: str, message: str
) -> None:
    path = write_override(tmp_path, [entry(reviewed_on=reviewed_on)])
    assert check_mapping(path, today=TODAY) == [
        MappingProblem(str(path), "entry 1 (line 3)", message)
    ]
    assert load_mapping(path).route(["CO-16"], ["N54"]).owner == "site-um-lead"


def test_a_review_exactly_at_the_age_limit_is_not_stale(tmp_path: Path) -> None:
    path = write_override(tmp_path, [entry(reviewed_on="2025-12-10")])
    assert check_mapping(path, today=TODAY) == []


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("entries: []\n", "file", "the file needs a non-empty 'version'"),
        ('version: ""\nentries: []\n', "file", "the file needs a non-empty 'version'"),
        ('version: "site-1"\n', "file", "'entries' must be a list"),
        ('version: "site-1"\nentry: []\nentries: []\n', "file", "unknown top-level field 'entry'"),
        ('version: "site-1"\nentries: [16]\n', "entry 1 (line 2)", "must be a mapping"),
        ("- just a list\n", "file", "must be a mapping with 'entries'"),
        ("version: [unclosed\n", "file", "not valid YAML"),
    ],
)
def test_file_level_defects(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = write_text(tmp_path, text)
    problems = check_mapping(path, today=TODAY)
    assert any(
        p.source == str(path) and p.where == where and message in p.message for p in problems
    ), problems
    with pytest.raises(MappingError, match=re.escape(str(path))):
        load_mapping(path)


def test_missing_override_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    assert check_mapping(missing, today=TODAY) == [
        MappingProblem(str(missing), "file", "override file does not exist")
    ]
    with pytest.raises(MappingError, match=r"absent\.yaml: file: override file does not exist"):
        load_mapping(missing)


@pytest.mark.parametrize(
    ("reviewed_on", "message"),
    [
        ("2026-13-01", "reviewed_on '2026-13-01' is not a date (YYYY-MM-DD)"),
        ("2026-11-01 10:00:00", "reviewed_on '2026-11-01 10:00:00' is not a date (YYYY-MM-DD)"),
    ],
)
def test_unquoted_bad_review_dates_are_located_not_crashing(
    tmp_path: Path, reviewed_on: str, message: str
) -> None:
    text = (
        'version: "site-1"\nentries:\n'
        '  - {carc: "16", rarc: N54, root_cause: coding, action_path: coding_review,'
        f" owner_queue: coding, owner: coder, reviewed_on: {reviewed_on}}}\n"
    )
    path = write_text(tmp_path, text)
    problems = check_mapping(path, today=TODAY)
    assert [(p.where, p.message) for p in problems] == [("entry 1 (line 3)", message)]
    with pytest.raises(MappingError):
        load_mapping(path)


def test_unquoted_good_review_date_is_accepted(tmp_path: Path) -> None:
    text = (
        'version: "site-1"\nentries:\n'
        "  - {carc: 16, rarc: N54, root_cause: coding, action_path: coding_review,"
        " owner_queue: coding, owner: coder, reviewed_on: 2026-11-20}\n"
    )
    path = write_text(tmp_path, text)
    assert check_mapping(path, today=TODAY) == []
    route = load_mapping(path).route(["CO-16"], ["N54"])
    assert (route.root_cause, route.reviewed_on) == ("coding", dt.date(2026, 11, 20))


# ---------------------------------------------------------------------------- layering

SITE_ENTRIES = [
    entry(carc="96", rarc=None, root_cause="medical_necessity_documentation",
          action_path="documentation_review", owner_queue="clinical_appeals", owner="cdi"),
    entry(carc="P12", rarc=None, root_cause="payer_error_pricing", action_path="payer_escalation",
          owner_queue="site_contracting", owner="site-contracts"),
]  # fmt: skip


def test_override_replaces_by_key_and_adds_new_keys(tmp_path: Path, shipped: CodeMapping) -> None:
    path = write_override(tmp_path, SITE_ENTRIES, owner_queues=["site_contracting"])
    assert check_mapping(path, today=TODAY) == []
    site = load_mapping(path)
    assert len(site.routes) == len(shipped.routes) + 1
    replaced = site.route(["CO-96"])
    assert (replaced.action_path, replaced.owner, replaced.rule) == (
        "documentation_review",
        "cdi",
        "CARC 96",
    )
    assert site.route(["PR-96"]) == shipped.route(["PR-96"])  # the group entry is its own key
    added = site.route(["CO-P12"])
    assert (added.owner_queue, added.rule) == ("site_contracting", "CARC P12")
    assert shipped.route(["CO-P12"]).rule == FALLBACK_RULE
    untouched = [key for key in shipped.routes if key != ("96", None, None)]
    assert all(site.routes[key] == shipped.routes[key] for key in untouched)
    assert "site_contracting" in site.owner_queues


def test_override_changes_version_digest_and_stamp(tmp_path: Path, shipped: CodeMapping) -> None:
    site = load_mapping(write_override(tmp_path, SITE_ENTRIES, owner_queues=["site_contracting"]))
    assert site.version == "2026.12.1+site-1"
    assert site.digest != shipped.digest
    assert site.stamp == f"2026.12.1+site-1#{site.digest}"


def test_override_restating_a_shipped_entry_keeps_the_digest(
    tmp_path: Path, shipped: CodeMapping
) -> None:
    route = shipped.routes[("197", None, None)]
    same = {"carc": "197", "root_cause": route.root_cause, "action_path": route.action_path,
            "owner_queue": route.owner_queue, "owner": route.owner,
            "reviewed_on": route.reviewed_on.isoformat()}  # fmt: skip
    site = load_mapping(write_override(tmp_path, [same]))
    assert site.digest == shipped.digest
    assert site.version != shipped.version


def test_override_fallback_may_use_a_shipped_owner_queue(
    tmp_path: Path, shipped: CodeMapping
) -> None:
    # The site file declares no owner_queues of its own: the shipped ones still apply.
    fallback = {k: v for k, v in ENTRY.items() if k not in ("carc", "rarc")}
    fallback |= {"owner_queue": "billing", "owner": "site-billing"}
    path = write_override(tmp_path, [], fallback=fallback)
    assert check_mapping(path, today=TODAY) == []
    site = load_mapping(path)
    assert site.route(["CO-999"]).owner == "site-billing"
    assert site.route(["CO-999"]).rule == FALLBACK_RULE
    assert site.digest != shipped.digest


def test_override_root_cause_policy_is_applied_and_checked(
    tmp_path: Path, shipped: CodeMapping
) -> None:
    policies = {"coding": {"prevention_owner": "coder_education", "human_review": True}}
    site = load_mapping(write_override(tmp_path, [], root_causes=policies))
    assert site.root_causes["coding"].prevention_owner == "coder_education"
    assert site.root_causes["duplicate"] == shipped.root_causes["duplicate"]
    assert site.digest != shipped.digest
    bad = write_override(tmp_path, [], root_causes={"bad_luck": policies["coding"]})
    problems = check_mapping(bad, today=TODAY)
    assert [(p.where, p.message) for p in problems] == [
        ("root_causes", "unknown root cause 'bad_luck'")
    ]


def test_an_override_may_reroute_a_root_cause_and_is_checked(tmp_path: Path) -> None:
    policies = {"duplicate": {"action_path": "payer_escalation", "owner_queue": "billing"}}
    site = load_mapping(write_override(tmp_path, [], root_causes=policies))
    route = site.root_causes["duplicate"].route
    assert (route.action_path, route.owner_queue, route.owner) == (
        "payer_escalation",
        "billing",
        "billing-manager",  # kept from the shipped policy
    )
    bad = {"duplicate": {"owner_queue": "nobody"}}
    problems = check_mapping(write_override(tmp_path, [], root_causes=bad), today=TODAY)
    assert [(p.where, p.message.split(";")[0]) for p in problems] == [
        ("root_causes.duplicate", "unknown owner queue 'nobody'")
    ]


# ---------------------------------------------------------------------------- routing by cause


def test_codes_refine_the_route_where_they_agree_with_the_model(shipped: CodeMapping) -> None:
    abn = shipped.route(["PR-50"])
    decision = shipped.route_by_probabilities({"non_covered_service": 0.9, "coding": 0.1}, abn, 0.4)
    assert decision.basis == "codes and model agree"
    assert decision.route.action_path == "patient_billing"  # not the cause's write-off


def test_a_sure_model_routes_by_its_cause(shipped: CodeMapping) -> None:
    co16 = shipped.route(["CO-16"])
    decision = shipped.route_by_probabilities(
        {"timely_filing": 0.8, "missing_invalid_claim_data": 0.2}, co16, 0.4
    )
    assert decision.basis == "model"
    assert (decision.route.action_path, decision.route.owner_queue) == (
        "write_off_approval",
        "billing",
    )
    assert decision.route.rule == "root cause timely_filing"
    assert decision.by_codes.action_path == "corrected_claim_resubmission"


def test_causes_sharing_a_queue_outweigh_a_likelier_cause_alone(shipped: CodeMapping) -> None:
    # Authorization is the likeliest cause (36%), but eligibility and coordination of benefits
    # both belong to patient access (34% + 30%): patient access is right 64% of the time.
    co197 = shipped.route(["CO-197"])
    probabilities = {
        "authorization_referral": 0.36,
        "eligibility_registration": 0.34,
        "coordination_of_benefits": 0.30,
    }
    decision = shipped.route_by_probabilities(probabilities, co197, 0.5)
    assert decision.basis == "model"
    assert decision.route.owner_queue == "patient_access"
    assert decision.route.root_cause == "eligibility_registration"  # the queue's likeliest


def test_when_no_queue_is_likely_enough_the_denial_goes_to_triage(shipped: CodeMapping) -> None:
    co16 = shipped.route(["CO-16"])
    probabilities = {
        "authorization_referral": 0.35,
        "missing_invalid_claim_data": 0.25,
        "coding": 0.2,
        "eligibility_registration": 0.2,
    }
    decision = shipped.route_by_probabilities(probabilities, co16, 0.4)
    assert decision.basis == "triage"
    assert decision.route.owner_queue == TRIAGE_QUEUE
    # The codes' path keeps its deadlines and cost until a person decides.
    assert decision.route.action_path == "corrected_claim_resubmission"
    assert decision.route.rule == (
        "triage: model says authorization_referral at 35%, codes say "
        "missing_invalid_claim_data; no queue reaches 40% (likeliest utilization_management "
        "at 35%)"
    )


def test_without_a_root_cause_model_the_codes_route(shipped: CodeMapping) -> None:
    co16 = shipped.route(["CO-16"])
    decision = shipped.route_by_probabilities({}, co16, 0.4)
    assert (decision.basis, decision.route) == ("codes", co16)


# ---------------------------------------------------------------------------- routing

ROUTES = [
    # (case, adjustments, remarks, root cause, action path, rule)
    ("RARC refines CARC 16", ["CO-16"], ["N54"], "authorization_referral",
     "authorization_evidence", "CARC 16 + RARC N54"),
    ("CARC 16 alone", ["CO-16"], [], "missing_invalid_claim_data",
     "corrected_claim_resubmission", "CARC 16"),
    ("unknown RARC falls through", ["CO-16"], ["N999"], "missing_invalid_claim_data",
     "corrected_claim_resubmission", "CARC 16"),
    ("first mapped RARC decides", ["CO-16"], ["N999", "M127", "N54"],
     "medical_necessity_documentation", "documentation_review", "CARC 16 + RARC M127"),
    ("patient responsibility non-covered", ["PR-96"], [], "non_covered_service",
     "patient_billing", "PR-96"),
    ("contractual non-covered", ["CO-96"], [], "non_covered_service",
     "write_off_approval", "CARC 96"),
    ("ABN signed", ["PR-50"], [], "non_covered_service", "patient_billing", "PR-50"),
    ("medical necessity", ["CO-50"], [], "medical_necessity_documentation",
     "documentation_review", "CARC 50"),
    ("Medicare late filing", ["CO-29"], ["N211"], "timely_filing", "write_off_approval",
     "CARC 29 + RARC N211"),
    ("primary adjustment decides", ["CO-197", "PR-96"], [], "authorization_referral",
     "authorization_evidence", "CARC 197"),
    ("unmapped CARC", ["CO-999"], [], "missing_invalid_claim_data", "payer_escalation",
     FALLBACK_RULE),
    ("no adjustment at all", [], ["N54"], "missing_invalid_claim_data", "payer_escalation",
     FALLBACK_RULE),
]  # fmt: skip


@pytest.mark.parametrize(
    ("carcs", "rarcs", "root_cause", "action_path", "rule"),
    [pytest.param(*case[1:], id=case[0]) for case in ROUTES],
)
def test_shipped_routes(
    shipped: CodeMapping,
    carcs: list[str],
    rarcs: list[str],
    root_cause: str,
    action_path: str,
    rule: str,
) -> None:
    route = shipped.route(carcs, rarcs)
    assert (route.root_cause, route.action_path, route.rule) == (root_cause, action_path, rule)


@pytest.fixture
def layered(tmp_path: Path) -> CodeMapping:
    """Shipped 16 and 16+N54, plus a site PR-16+N54 and CO-16: one key per specificity level."""
    entries = [
        entry(group="PR", root_cause="non_covered_service", action_path="patient_billing",
              owner_queue="patient_financial_services"),
        entry(group="CO", rarc=None, root_cause="coding", action_path="coding_review",
              owner_queue="coding"),
    ]  # fmt: skip
    return load_mapping(write_override(tmp_path, entries))


@pytest.mark.parametrize(
    ("carcs", "rarcs", "rule", "action_path"),
    [
        (["PR-16"], ["N54"], "PR-16 + RARC N54", "patient_billing"),  # group+RARC beats RARC
        (["CO-16"], ["N54"], "CARC 16 + RARC N54", "authorization_evidence"),  # RARC beats group
        (["CO-16"], [], "CO-16", "coding_review"),  # group beats CARC alone
        (["OA-16"], [], "CARC 16", "corrected_claim_resubmission"),  # CARC alone
        (["OA-16"], ["N54"], "CARC 16 + RARC N54", "authorization_evidence"),
        (["CO-1600"], ["N54"], FALLBACK_RULE, "payer_escalation"),  # beats nothing
    ],
)
def test_most_specific_entry_wins(
    layered: CodeMapping, carcs: list[str], rarcs: list[str], rule: str, action_path: str
) -> None:
    route = layered.route(carcs, rarcs)
    assert (route.rule, route.action_path) == (rule, action_path)


def test_route_frame_agrees_with_route_row_by_row(shipped: CodeMapping) -> None:
    cases = [(carcs, rarcs) for _, carcs, rarcs, *_ in ROUTES] + [
        (np.array(["CO-16", "CO-197"]), np.array(["N54"])),  # Parquet lists arrive as arrays
        (["CO-16"], ["N54"]),  # repeated: the cache must not mix rows up
    ]
    frame = pd.DataFrame(
        {"carc_codes": [c for c, _ in cases], "rarc_codes": [r for _, r in cases]},
        index=range(100, 100 + len(cases)),
    )
    routed = shipped.route_frame(frame)
    assert list(routed.index) == list(frame.index)
    for (carcs, rarcs), (_, row) in zip(cases, routed.iterrows(), strict=True):
        route = shipped.route(list(carcs), list(rarcs))
        assert row.to_dict() == {
            "mapped_root_cause": route.root_cause,
            "action_path": route.action_path,
            "owner_queue": route.owner_queue,
            "mapping_rule": route.rule,
        }


def test_route_frame_without_remark_column_routes_by_carc(shipped: CodeMapping) -> None:
    frame = pd.DataFrame({"carc_codes": [["CO-16"], ["PR-96"], []]})
    routed = shipped.route_frame(frame)
    assert list(routed["mapping_rule"]) == ["CARC 16", "PR-96", FALLBACK_RULE]


# ---------------------------------------------------------------------------- backlog horizons


def test_each_queue_has_a_backlog_horizon_and_write_off_review_is_a_queue(
    shipped: CodeMapping,
) -> None:
    assert "write_off_review" in shipped.owner_queues and "write_off_review" in ACTION_PATHS
    assert shipped.backlog_horizon("clinical_appeals") == 45
    assert shipped.backlog_horizon("triage") == 7
    assert shipped.backlog_horizon("billing") == 30  # the default


def test_a_site_sets_its_own_horizons_and_they_change_the_stamp(
    tmp_path: Path, shipped: CodeMapping
) -> None:
    path = write_override(tmp_path, [], backlog_horizon_days={"billing": 14})
    site = load_mapping(path)
    assert site.backlog_horizon("billing") == 14
    assert site.backlog_horizon("clinical_appeals") == 45  # the shipped file's still stands
    assert site.digest != shipped.digest


@pytest.mark.parametrize(
    ("horizons", "message"),
    [
        ({"billling": 14}, "unknown owner queue 'billling'"),
        ({"billing": 0}, "billing: 0 is not a whole number of days of at least 1"),
        ({"billing": "two weeks"}, "billing: 'two weeks' is not a whole number of days"),
        ([14], "must map owner queues (or 'default') to days"),
    ],
)
def test_bad_horizons_are_named(tmp_path: Path, horizons: object, message: str) -> None:
    path = write_override(tmp_path, [], backlog_horizon_days=horizons)
    problems = check_mapping(path, today=TODAY)
    assert [p.where for p in problems] == ["backlog_horizon_days"]
    assert message in problems[0].message
