"""SHAP contributions in words a reviewer reads.

The model explains itself in feature names and encoded values; a reviewer needs "prior
authorization on file: no lowers the recovery odds". This module turns each listed contribution
into a label, a readable value, a direction and a sentence, without changing any number, so the
reasons still add up to the score.
"""

from __future__ import annotations

import math
from functools import lru_cache

from features.codes import CodeKind, load_labels
from features.pipeline import CATEGORICAL_FEATURES
from training.triage_model import Explanation

FEATURE_LABELS = {
    "primary_adjustment": "primary adjustment code",
    "primary_group": "primary group code",
    "primary_remark": "first remark code",
    "payer_id": "payer",
    "payer_type": "payer type",
    "claim_type": "claim type",
    "specialty": "specialty",
    "procedure_family": "procedure family",
    "procedure_code": "procedure code",
    "place_of_service": "place of service",
    "facility_id": "facility",
    "primary_diagnosis_chapter": "primary diagnosis chapter",
    "mapped_root_cause": "root cause the code mapping gives",
    "mapped_action_path": "action path the code mapping gives",
    "log_billed_amount": "billed amount",
    "log_denied_amount": "denied amount",
    "denied_share_of_billed": "share of the billed amount denied",
    "paid_share_of_billed": "share of the billed amount paid",
    "units": "units of service",
    "submission_attempt": "submission attempt",
    "adjustment_count": "number of adjustments",
    "remark_count": "number of remark codes",
    "modifier_count": "number of modifiers",
    "diagnosis_count": "number of diagnoses",
    "eligibility_verified": "eligibility verified before service",
    "prior_auth_on_file": "prior authorization on file",
    "denial_month": "month of the denial",
    "days_service_to_denial": "days from service to denial",
    "days_service_to_submission": "days from service to submission",
    "days_submission_to_denial": "days from submission to denial",
    "days_since_service": "days since service",
    "days_since_denial": "days since the denial",
    "days_to_appeal_deadline": "days left to appeal",
    "days_to_filing_deadline": "days left to refile",
    "filing_slack_at_denial": "days left to refile when denied",
    "payer_recovery_rate": "this payer's past recovery rate",
    "payer_adjustment_recovery_rate": "past recovery rate for this payer and code",
    "payer_adjustment_history": "past denials of this payer and code",
    "unseen_code_count": "codes never seen in training",
}
OUTPUT_MEANINGS = {
    "root_cause": "log-odds score of the predicted root cause",
    "recovery": "log-odds that working the denial recovers money",
    "preventable": "log-odds that the denial was preventable",
}
_TARGETS = {
    "root_cause": "the predicted root cause",
    "recovery": "the recovery odds",
    "preventable": "the preventable odds",
}
_FLAGS = {"eligibility_verified", "prior_auth_on_file"}
_DOLLARS = {"log_billed_amount", "log_denied_amount"}
_SHARES = {
    "denied_share_of_billed",
    "paid_share_of_billed",
    "payer_recovery_rate",
    "payer_adjustment_recovery_rate",
}


@lru_cache(maxsize=4096)
def feature_label(feature: str) -> str:
    """A reviewer's name for a model feature, with the project's code label when it is one."""
    if feature in FEATURE_LABELS:
        return FEATURE_LABELS[feature]
    kind, _, code = feature.partition("_")
    if kind == "adjustment":
        label = load_labels(CodeKind.CARC).get(code.partition("-")[2])
        return f"adjustment {code}" + (f" ({label.label})" if label else "")
    if kind == "remark":
        label = load_labels(CodeKind.RARC).get(code)
        return f"remark {code}" + (f" ({label.label})" if label else "")
    if kind == "modifier":
        return f"modifier {code}"
    return feature.replace("_", " ")


def readable_value(feature: str, value: str) -> str:
    """The encoded value as a person reads it: yes/no, dollars, percent, present/absent."""
    # A category is a name even when it looks like a number (procedure code 0110, POS 11).
    if value in {"missing", "other (rare or unseen)"} or feature in CATEGORICAL_FEATURES:
        return value
    if feature.startswith(("adjustment_", "remark_", "modifier_")):
        return "present" if value == "1" else "absent"
    number = float(value)
    if feature in _FLAGS:
        return "yes" if number == 1 else "no"
    if feature in _DOLLARS:
        return f"${math.expm1(number):,.2f}"
    if feature in _SHARES:
        return f"{number:.0%}"
    if feature == "payer_adjustment_history":
        return f"{math.expm1(number):,.0f}"
    return f"{number:g}"


def plain_reasons(task: str, explanation: Explanation) -> dict[str, object]:
    """One model's explanation with every contribution put in words."""
    reasons = []
    for item in explanation.contributions:
        feature, contribution = item["feature"], float(item["contribution"])
        label, value = feature_label(feature), readable_value(feature, str(item["value"]))
        direction = "raises" if contribution > 0 else "lowers"
        reasons.append(
            {
                "feature": feature,
                "label": label,
                "value": value,
                "direction": direction,
                "contribution": contribution,
                "text": f"{label}: {value} {direction} {_TARGETS[task]} ({contribution:+.2f})",
            }
        )
    return {
        "output": explanation.output,
        "output_meaning": OUTPUT_MEANINGS[task],
        "base_value": explanation.base_value,
        "reasons": reasons,
        "rest": explanation.rest,
    }
