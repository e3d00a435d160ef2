"""SHAP contributions in words a reviewer reads.

The model explains itself in feature names, encoded values and log-odds; a reviewer needs
"prior authorization on file: no lowers the chance of recovering money by 12.3 points". This
module turns each listed contribution into a label, a readable value (identifiers by their plain
label, amounts to the cent), a direction, a push on the displayed probability in percentage
points (:func:`probability_points`: they add up to the headline) and a sentence. The raw SHAP
values are kept beside them, unchanged, so they still add up to the model's output.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from features.codes import CodeKind, load_labels
from features.labels import plain_label
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
    "root_cause": "raw class score of the predicted root cause (log-odds space)",
    "recovery": "log-odds that working the denial recovers money",
    "preventable": "log-odds that the denial was preventable",
}
# What each model's probability is the chance of, as a reason's sentence names it.
_TARGETS = {
    "root_cause": "the chance of this root cause",
    "recovery": "the chance of recovering money",
    "preventable": "the chance it was preventable",
}
# Categorical features whose values are identifiers with a plain label.
_LABELLED = {
    "mapped_root_cause": "root_cause",
    "mapped_action_path": "action_path",
    "payer_type": "payer_type",
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
    if feature in _LABELLED and value not in {"missing", "other (rare or unseen)"}:
        return plain_label(_LABELLED[feature], value)
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


def plain_reasons(
    task: str,
    explanation: Explanation,
    headline_log_odds: float | None = None,
    exact_values: dict[str, str] | None = None,
) -> dict[str, object]:
    """One model's explanation with every contribution put in words and in percentage points.

    The raw SHAP values (``base_value``, ``contribution``, ``rest``, ``output``) are kept as the
    model gives them. ``headline_log_odds`` is the log-odds of the probability the reader sees
    (:func:`class_log_odds` for the root cause; by default the output itself, as for the
    calibrated binary models); ``exact_values`` replaces a feature's value text with the
    denial's own (the dollar amounts, which the encoded logarithm gives only to a dollar or so).
    """
    headline = explanation.output if headline_log_odds is None else headline_log_odds
    steps = [float(item["contribution"]) for item in explanation.contributions]
    points = probability_points(
        explanation.base_value, steps, explanation.rest, explanation.output, headline
    )
    reasons = []
    for item, push in zip(explanation.contributions, points.reasons, strict=True):
        feature, contribution = item["feature"], float(item["contribution"])
        label = feature_label(feature)
        value = (exact_values or {}).get(feature) or readable_value(feature, str(item["value"]))
        reasons.append(
            {
                "feature": feature,
                "label": label,
                "value": value,
                "direction": "raises" if contribution > 0 else "lowers",
                "contribution": contribution,
                "probability_points": push,
                "text": reason_text(task, label, value, push),
            }
        )
    return {
        "output": explanation.output,
        "output_meaning": OUTPUT_MEANINGS[task],
        "base_value": explanation.base_value,
        "reasons": reasons,
        "rest": explanation.rest,
        "probability": points.probability,
        "base_probability": points.base_probability,
        "rest_probability_points": points.rest,
    }


def reason_text(task: str, label: str, value: str, points: float) -> str:
    """``prior authorization on file: no lowers the chance of recovering money by 12.3 points``."""
    direction = "raises" if points > 0 else "lowers"
    return f"{label}: {value} {direction} {_TARGETS[task]} by {abs(points):.1f} points"


@dataclass(frozen=True)
class ProbabilityPoints:
    """An explanation in the reader's units: the probability before any reason (``base``),
    each listed reason's push and the rest's, in percentage points, and the headline."""

    base_probability: float
    reasons: list[float]
    rest: float
    probability: float


def probability_points(
    base_value: float, contributions: list[float], rest: float, output: float, headline: float
) -> ProbabilityPoints:
    """Each contribution's push on the displayed probability, in percentage points, exactly.

    SHAP values add up in log-odds, where a probability is not linear, so a contribution has
    no push of its own on the probability. The pushes are measured along the SHAP path in
    log-odds space instead: starting at the base value, each listed contribution is added in
    the order listed (largest first), then the rest, and a reason's push is the change of the
    probability (the logistic of the running log-odds) across its step. The pushes telescope,
    so they add up to the headline probability less the base probability exactly.

    ``headline`` is the log-odds of the displayed probability; ``output``, the log-odds the
    contributions add up to. They differ for the root cause: its SHAP values explain the class's
    raw score, and its probability is the softmax over every class's score. Holding the other
    classes at their scores, the class's log-odds against them is its raw score less the
    log-sum-exp of theirs, so the path is the raw path shifted by ``headline - output`` and ends
    at the displayed probability. For the calibrated binary models the shift is zero.
    """
    shift = headline - output
    running = base_value + shift
    before = _logistic(running)
    base_probability, pushes = before, []
    for step in [*contributions, rest]:
        running += step
        after = _logistic(running)
        pushes.append(100 * (after - before))
        before = after
    return ProbabilityPoints(base_probability, pushes[:-1], pushes[-1], before)


def class_log_odds(probabilities: dict[str, float], category: str) -> float:
    """The log-odds of one class's softmax probability against all the others: log p minus
    the log of the others' sum (not of 1 - p, which loses every digit when p is near 1)."""
    others = sum(p for name, p in probabilities.items() if name != category)
    tiny = sys.float_info.min  # a class the softmax gives everything still has finite log-odds
    return math.log(max(probabilities[category], tiny)) - math.log(max(others, tiny))


def _logistic(log_odds: float) -> float:
    if log_odds >= 0:
        return 1 / (1 + math.exp(-log_odds))
    odds = math.exp(log_odds)
    return odds / (1 + odds)


def exact_amounts(billed: float, denied: float) -> dict[str, str]:
    """The denial's own amounts as the dollar features' values, to the cent."""
    return {"log_billed_amount": _cents(billed), "log_denied_amount": _cents(denied)}


def _cents(amount: float) -> str:
    return "missing" if math.isnan(amount) else f"${amount:,.2f}"


def stored_in_points(
    task: str, explanation: Mapping[str, Any], score: Mapping[str, Any]
) -> dict[str, Any]:
    """A recorded explanation as a reviewer reads it, whenever it was recorded: scores from
    before explanations spoke percentage points get their points here, from their own raw SHAP
    values and probabilities, by the same path (:func:`probability_points`). ``score`` is the
    record's output of the model (``outputs[task]``)."""
    reasons = explanation["reasons"]
    headline = (
        class_log_odds(score["probabilities"], score["category"])
        if task == "root_cause" and score.get("probabilities")
        else None
    )
    points = probability_points(
        float(explanation["base_value"]),
        [float(reason["contribution"]) for reason in reasons],
        float(explanation["rest"]),
        float(explanation["output"]),
        float(explanation["output"]) if headline is None else headline,
    )
    worded = []
    for reason, push in zip(reasons, points.reasons, strict=True):
        value = str(reason["value"])
        if reason["feature"] in _LABELLED:
            value = plain_label(_LABELLED[reason["feature"]], value)
        worded.append(
            {**reason, "value": value, "probability_points": push}
            | {"text": reason_text(task, reason["label"], value, push)}
        )
    return {
        **explanation,
        "reasons": worded,
        "probability": points.probability,
        "base_probability": points.base_probability,
        "rest_probability_points": points.rest,
    }
