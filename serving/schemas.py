"""Request and response schemas of the scoring API, split by role.

The request model of one denial is built from the data contract's column declaration, so the
API, the files and the models cannot drift apart; cross-field rules are then checked by the very
same :func:`features.contract.validate` every file goes through.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictBool,
    StrictFloat,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from denial_triage.settings import get_settings
from features.contract import (
    AMOUNT_MAXIMUM,
    COLUMNS,
    RESOLUTIONS,
    ROOT_CAUSES,
    TEXT_MAXIMUM,
    Column,
    Kind,
    Role,
)
from features.mapping import ACTION_PATHS, CodeMapping, load_mapping
from training.feedback import NOTHING_RECOVERED
from training.triage_model import REVIEW_REASONS

# PostgreSQL text and JSON cannot hold the NUL character: text that carries one is refused
# here, with a 422 naming the field, instead of failing where it is stored (a 5xx, or an audit
# record that can never be written).
NO_NUL = r"^[^\x00]*$"
# A required text must hold more than spaces: surrounding spaces are stripped before the
# contract's "required value is empty" rule, so the schema says so too.
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"


def _iso_date_only(value: object) -> object:
    """A date must come as ISO text (or a date): lax pydantic would read a number as Unix time,
    which the schema (a string of format date) does not admit."""
    if isinstance(value, str | dt.date):
        return value
    raise ValueError("a date is written as text, YYYY-MM-DD")


# A date as JSON Schema's format "date" writes it (RFC 3339 full-date).
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_text(value: object) -> object:
    """A date in a query string: only YYYY-MM-DD, which the schema's format "date" admits.
    Lax pydantic would read "0" as Unix time and "20260101" as a date."""
    if isinstance(value, dt.date) or (isinstance(value, str) and ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("a date is written as YYYY-MM-DD")


def _whole_number_only(value: object) -> object:
    """JSON Schema's integer is any number without a fraction (2.0 is one); text and booleans
    are not numbers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("a whole number is written as a JSON number without a fraction")


# Strict scalars: the schema says number, integer, boolean, and "12" or 0 for those are a
# client's mistake to report, not to guess at.
# A validator comes after the bounds in ``Annotated``: placed before them, the schema would
# carry the bounds as unknown keywords (``ge``) instead of ``minimum``.
_VALIDATORS: dict[Kind, tuple[Any, ...]] = {
    Kind.DATE: (BeforeValidator(_iso_date_only),),
    Kind.INTEGER: (BeforeValidator(_whole_number_only),),
}
IsoDate = Annotated[dt.date, *_VALIDATORS[Kind.DATE]]
QueryDate = Annotated[dt.date, BeforeValidator(_iso_date_text)]
_PYTHON_TYPES: dict[Kind, Any] = {
    Kind.STRING: str,
    Kind.DATE: dt.date,
    Kind.DECIMAL: StrictFloat,
    Kind.INTEGER: int,
    Kind.BOOLEAN: StrictBool,
}


def _pattern(column: Column) -> str:
    if column.pattern:
        return f"^{column.pattern}$"
    return NOT_BLANK if column.role is Role.REQUIRED and column.kind is Kind.STRING else NO_NUL


def _list_type(column: Column) -> Any:
    """A list column's items carry the contract's pattern and length, as files are checked."""
    return list[Annotated[str, Field(pattern=_pattern(column), max_length=column.max_length)]]


def _field(column: Column) -> tuple[Any, Any]:
    """A pydantic field for one contract column, with its single-column rules and bounds."""
    is_list = column.kind is Kind.STRING_LIST
    kind: Any = _list_type(column) if is_list else _PYTHON_TYPES[column.kind]
    if column.allowed:
        kind = Literal[column.allowed]  # type: ignore[valid-type]
    constraints: dict[str, Any] = {}
    if column.minimum is not None:
        constraints["gt" if column.exclusive_minimum else "ge"] = column.minimum
    if column.maximum is not None:  # the contract's bound, refused here with a 422
        constraints["le"] = column.maximum
    if column.kind is Kind.STRING and not column.allowed:
        constraints["pattern"] = _pattern(column)
        constraints["max_length"] = column.max_length
    if column.kind is Kind.STRING_LIST:
        # The first bad code of a list is enough to name it; 99 bad codes cost 99 errors.
        constraints |= {"max_length": column.max_items, "fail_fast": True}
    if column.role is Role.REQUIRED and column.kind in (Kind.STRING, Kind.STRING_LIST):
        constraints["min_length"] = 1
    # The rules bind the value itself, inside the optional union, where pydantic can state
    # every one of them in the schema (a bound outside a union with a validator is lost).
    bound = Annotated[(kind, Field(**constraints), *_VALIDATORS.get(column.kind, ()))]
    described = Field(description=column.description)
    if column.role is Role.REQUIRED:
        return Annotated[bound, described], ...
    return Annotated[bound | None, described], None


@dataclass(frozen=True)
class OneOf:
    """A response field's enum in the OpenAPI schema, read from its one source (the governed
    mapping, the data contract) when the schema is built, not written here a second time.

    Only the schema carries it: a stored score of an older mapping still reads back, and an
    answer is built by the scoring code from the same sources."""

    values: Callable[[], Sequence[str]]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["enum"] = list(self.values())
        return schema


@lru_cache(maxsize=1)
def _mapping_in_use() -> CodeMapping:
    """The shipped mapping with the site's overrides, as the service routes by it."""
    return load_mapping(get_settings().mapping_overrides)


def _owner_queues() -> Sequence[str]:
    return _mapping_in_use().owner_queues


def _prevention_owners() -> Sequence[str]:
    policies = _mapping_in_use().root_causes.values()
    return sorted({policy.prevention_owner for policy in policies})


RootCause = Annotated[str, OneOf(lambda: ROOT_CAUSES)]
ActionPath = Annotated[str, OneOf(lambda: ACTION_PATHS)]
OwnerQueue = Annotated[str, OneOf(_owner_queues)]
PreventionOwner = Annotated[str, OneOf(_prevention_owners)]
ReviewReasonCode = Annotated[str, OneOf(lambda: tuple(REVIEW_REASONS))]


DenialIn = create_model(  # type: ignore[call-overload]
    "DenialIn",
    __config__=ConfigDict(extra="ignore", str_strip_whitespace=True),
    __doc__="One denial to score: the data contract's scoring fields.",
    **{c.name: _field(c) for c in COLUMNS if c.role is not Role.LABEL},
)

EXAMPLE_DENIAL = {
    "denial_id": "D-2026-000123",
    "claim_id": "C0004412093",
    "payer_id": "COM003",
    "payer_type": "commercial",
    "claim_type": "professional",
    "service_date": "2026-08-03",
    "denial_date": "2026-09-02",
    "billed_amount": 1480.0,
    "denied_amount": 1480.0,
    "carc_codes": ["CO-197"],
    "rarc_codes": ["N54"],
    "specialty": "radiology",
    "procedure_code": "72148",
    "place_of_service": "22",
    "prior_auth_on_file": False,
    "eligibility_verified": True,
    "submission_attempt": 1,
    "as_of_date": "2026-09-05",
}


class ScoreOptions(BaseModel):
    """A score request's envelope: its denials unchecked, so each can be checked on its own."""

    denials: list[Any] = Field(min_length=1)
    explain: StrictBool = Field(True, description="Include SHAP reasons for each model.")
    top_reasons: Annotated[int, Field(ge=1, le=20), *_VALIDATORS[Kind.INTEGER]] = Field(
        5, description="Reasons listed per model."
    )
    on_error: Literal["reject", "skip"] = Field(
        "reject",
        description='What a denial that breaks the schema or the data contract does: "reject" '
        '(the default) refuses the whole batch with 422 naming every field; "skip" scores the '
        "other denials and lists the broken ones in ``rejected`` with their index and errors.",
    )


def _score_request_schema(schema: dict[str, Any]) -> None:
    """A request that skips broken denials admits any item in its list (each broken one is
    answered in ``rejected``), so only a rejecting request's items must be denials: the
    schema states it with if/else, or it would call 200 answers to such lists wrong."""
    items = schema["properties"]["denials"].pop("items")
    schema["if"] = {"properties": {"on_error": {"const": "skip"}}, "required": ["on_error"]}
    schema["else"] = {"properties": {"denials": {"items": items}}}
    schema["examples"] = [{"denials": [EXAMPLE_DENIAL]}]


class ScoreRequest(ScoreOptions):
    """1 to N denials to score; N is the service's configured batch limit."""

    model_config = ConfigDict(json_schema_extra=_score_request_schema)
    denials: list[DenialIn] = Field(min_length=1)  # type: ignore[valid-type]


class Reason(BaseModel):
    """One SHAP contribution in plain language, with its push on the displayed probability."""

    feature: str = Field(description="The model's feature name.")
    label: str = Field(description="The feature in a reviewer's words.")
    value: str = Field(description="This denial's value, as a reviewer reads it.")
    direction: Literal["raises", "lowers"]
    contribution: float = Field(
        description="Raw SHAP value, in the log-odds space of the model's output (see "
        "``output_meaning``)."
    )
    # Absent from scores recorded before explanations spoke percentage points.
    probability_points: float | None = Field(
        None,
        description="This reason's push on the displayed probability, in percentage points "
        "(-100 to 100): the change of the probability across its step of the SHAP path in "
        "log-odds, from the base value, reasons in the order listed, then the rest; the "
        "listed pushes and ``rest_probability_points`` add up to 100 x (probability - "
        "base_probability).",
    )
    text: str


class ModelExplanation(BaseModel):
    """Base value + listed contributions + rest = output, exactly (raw SHAP, log-odds space);
    base probability + every push in points / 100 = the displayed probability, exactly."""

    output: float = Field(
        description="The explained score in log-odds space: for recovery and preventable the "
        "log-odds of the probability; for the root cause the predicted class's raw score, "
        "whose softmax over all classes is the probability."
    )
    output_meaning: str
    base_value: float = Field(description="The model's expected output (raw SHAP base).")
    reasons: list[Reason]
    rest: float = Field(description="Sum of every raw contribution not listed.")
    probability: float | None = Field(
        None, ge=0, le=1, description="The displayed probability the points explain, 0-1."
    )
    base_probability: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The probability at the base value, 0-1 (for the root cause, with the "
        "other classes held at this denial's scores).",
    )
    rest_probability_points: float | None = Field(
        None, description="Push of every feature not listed, in percentage points."
    )


class RootCauseScore(BaseModel):
    category: RootCause
    probability: float | None = Field(
        ge=0,
        le=1,
        description="The model's probability of the category, 0-1; null when the model was "
        "trained without enough root_cause labels and the category is the code mapping's.",
    )
    probabilities: dict[str, float] = Field(
        description="Every class's probability, 0-1, summing to 1; empty without a model.",
        json_schema_extra={"propertyNames": {"enum": list(ROOT_CAUSES)}},
    )
    mapped_by_codes: RootCause = Field(description="What the governed code mapping alone says.")
    explanation: ModelExplanation | None = None


class RecoveryScore(BaseModel):
    probability: float = Field(
        ge=0, le=1, description="Probability, 0-1, that working the denial recovers money."
    )
    expected_recovered_share: float = Field(
        description="Expected share, 0-1, of the denied amount recovered when money is."
    )
    expected_recovered_dollars: float = Field(
        description="Expected recovered dollars (US dollars): probability x share x denied amount."
    )
    explanation: ModelExplanation | None = None


class PreventableScore(BaseModel):
    probability: float | None = Field(
        ge=0,
        le=1,
        description="Probability, 0-1, that the denial was preventable upstream; null when "
        "the model was trained without enough preventable labels.",
    )
    prevention_owner: PreventionOwner = Field(description="The upstream step that owns the fix.")
    explanation: ModelExplanation | None = None


class PriorityParts(BaseModel):
    """The priority (training/priority.py): expected net dollars per effort hour, raised by
    the chance of losing them by waiting. Days to the deadline, urgency, workability and the
    score are counted on ``counted_from``: the denial's as-of date when scored, today's date
    when read back (``GET /v1/denials/{id}``, the plan). Fields added with the per-hour
    priority are null on records scored before it."""

    score: float = Field(
        description="Expected net dollars per effort hour x (1 + 0.5 x urgency); a denial past "
        "every deadline scores the write-off review's cost per hour, below any workable one."
    )
    expected_recovered_dollars: float = Field(description="Dollars.")
    cost_to_work: float = Field(description="Dollars, by action path.")
    effort_hours: float = Field(description="Hours, by action path.")
    expected_net_dollars: float | None = Field(
        None, description="Expected recovered dollars minus the cost to work, in dollars."
    )
    urgency: float = Field(
        description="Fraction 0-1: the chance the value is lost by waiting (the deadline inside "
        "the owner queue's backlog horizon)."
    )
    deadline: dt.date = Field(description="The deadline governing the action path.")
    deadline_rule: str
    last_deadline: dt.date | None = Field(
        None,
        description="The later of timely filing and the appeal window: past it, nothing "
        "can be worked and the denial goes to write-off review.",
    )
    backlog_horizon_days: int | None = Field(
        None, description="Days the owner queue takes to reach a denial in its backlog."
    )
    workable: bool = Field(True, description="False once past every deadline.")
    counted_from: dt.date | None = Field(
        None, description="The date days_to_deadline, urgency and score are counted from."
    )
    days_to_deadline: int = Field(description="Days from counted_from to the deadline.")


class RouteByCodes(BaseModel):
    """Where the governed code mapping alone would send the denial."""

    root_cause: RootCause
    action_path: ActionPath
    owner_queue: OwnerQueue


class Routing(BaseModel):
    """Where the denial goes. ``basis``: "model" (the root-cause model, sure of a cause the
    codes do not give), "codes and model agree", "codes" (no root-cause model) or "triage"
    (the model is unsure and disagrees with the codes: a person decides, both views shown)."""

    action_path: ActionPath
    owner_queue: OwnerQueue = Field(
        description="The team that works it; ``triage`` when a person decides the route."
    )
    mapping_rule: str
    # Absent from records scored before routing followed the model.
    basis: str | None = None
    by_codes: RouteByCodes | None = None


class DenialScore(BaseModel):
    """Everything the service says about one denial."""

    denial_id: str
    root_cause: RootCauseScore
    recovery: RecoveryScore
    preventable: PreventableScore
    priority: PriorityParts
    routing: Routing
    requires_human_review: bool
    review_reasons: list[str] = Field(description="Why a person must look, in words.")
    # Absent from scores recorded before review reasons carried codes.
    review_reason_codes: list[ReviewReasonCode] | None = Field(
        None, description="The review reasons as codes, in the same order."
    )
    unseen_codes: list[str]


class ProblemDetail(BaseModel):
    """Where a request is wrong and why."""

    loc: list[str | int]
    msg: str


class RejectedDenial(BaseModel):
    """A denial of an ``on_error: "skip"`` request set aside unscored."""

    index: int = Field(ge=0, description="Its position in the request's ``denials`` list.")
    errors: list[ProblemDetail] = Field(
        description="Its field errors: ``loc`` within the denial, never the value sent."
    )
    error_count: int = Field(ge=1, description="How many errors in all; the first 20 are listed.")


class ScoreResponse(BaseModel):
    request_id: str
    model_version: str
    mapping_version: str
    scored_at: dt.datetime
    results: list[DenialScore] = Field(description="The scored denials, in request order.")
    rejected: list[RejectedDenial] = Field(
        default_factory=list,
        description='Denials set aside by ``on_error: "skip"``, by index; always empty otherwise.',
    )


class StoredScore(BaseModel):
    """The latest score of a denial, as recorded in the audit log."""

    denial_id: str
    request_id: str
    scored_at: dt.datetime
    model_version: str
    mapping_version: str
    input_hash: str
    score: DenialScore


class FeedbackIn(BaseModel):
    """An outcome or a reviewer's correction for a scored denial."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "idempotency_key": "wl-7781-feedback-1",
                    "denial_id": "D-2026-000123",
                    "confirmed_root_cause": False,
                    "corrected_root_cause": "authorization_referral",
                    "resolution": "overturned_on_appeal",
                    "recovered_amount": 1480.0,
                    "resolved_date": "2026-10-20",
                    "reviewer_note": "retro-auth obtained",
                }
            ]
        },
    )
    idempotency_key: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    denial_id: str = Field(min_length=1, max_length=TEXT_MAXIMUM, pattern=NO_NUL)
    confirmed_root_cause: StrictBool | None = None
    corrected_root_cause: Literal[ROOT_CAUSES] | None = None  # type: ignore[valid-type]
    resolution: Literal[RESOLUTIONS] | None = None  # type: ignore[valid-type]
    recovered_amount: StrictFloat | None = Field(None, ge=0, le=AMOUNT_MAXIMUM)
    resolved_date: IsoDate | None = None
    reviewer_note: str | None = Field(None, max_length=2000, pattern=NO_NUL)

    # The outcome must read as one story (data contract, outcome labels): money is recovered
    # only by a resolution that brings it back from the payer; billed_to_patient, like
    # written_off, recovers nothing from the payer (as training.feedback and the synthetic
    # history read it). An open denial has neither a recovered amount nor a resolved date.
    # Field validators, not a model validator, so each problem names its field.

    @field_validator("recovered_amount")
    @classmethod
    def _recovered_by_the_resolution(cls, amount: float | None, info: ValidationInfo) -> Any:
        if amount is None or "resolution" not in info.data:  # a bad resolution is named alone
            return amount
        resolution = info.data["resolution"]
        if resolution is None:
            _outcome_problem(AMOUNT_WITHOUT_RESOLUTION)
        if resolution == "open":
            _outcome_problem(EMPTY_WHILE_OPEN)
        if amount > 0 and resolution in NOTHING_RECOVERED:
            _outcome_problem(NOTHING_RECOVERED_FROM_THE_PAYER)
        return amount

    @field_validator("resolved_date")
    @classmethod
    def _dated_by_the_resolution(cls, day: dt.date | None, info: ValidationInfo) -> Any:
        if day is None or "resolution" not in info.data:
            return day
        if info.data["resolution"] is None:
            _outcome_problem(DATE_WITHOUT_RESOLUTION)
        if info.data["resolution"] == "open":
            _outcome_problem(EMPTY_WHILE_OPEN)
        return day


# Feedback rules no JSON Schema can state: the outcome against itself (checked above) and
# against the denial's latest score (checked by ``ServiceState.save_feedback``). Fixed texts,
# so the API fuzzing can tell these refusals from a schema-valid body wrongly refused.
AMOUNT_WITHOUT_RESOLUTION = "a recovered amount needs the resolution that brought it back"
DATE_WITHOUT_RESOLUTION = "a resolved date needs the resolution it dates"
EMPTY_WHILE_OPEN = "must be empty while the denial is open"
NOTHING_RECOVERED_FROM_THE_PAYER = (
    "written off or billed to the patient recovers nothing from the payer: give 0 or leave it empty"
)
OVER_THE_DENIED_AMOUNT = "exceeds the denied amount of the denial's latest score"
BEFORE_THE_DENIAL = "is before the denial date of the denial's latest score"
AFTER_TODAY = "is after today (UTC): record an outcome once it has happened"
FEEDBACK_RULES = frozenset(
    {
        AMOUNT_WITHOUT_RESOLUTION,
        DATE_WITHOUT_RESOLUTION,
        EMPTY_WHILE_OPEN,
        NOTHING_RECOVERED_FROM_THE_PAYER,
        OVER_THE_DENIED_AMOUNT,
        BEFORE_THE_DENIAL,
        AFTER_TODAY,
    }
)


def _outcome_problem(message: str) -> None:
    raise PydanticCustomError("feedback_outcome", message)


class FeedbackOut(BaseModel):
    id: int
    denial_id: str
    idempotency_key: str
    created: bool = Field(description="False when this key was already recorded.")
    received_at: dt.datetime


class ErrorResponse(BaseModel):
    detail: str | list[ProblemDetail]
    request_id: str | None = None
    problem_count: int | None = Field(
        None, description="How many problems there were in all; the first 100 are listed."
    )


class PlannedDenialOut(BaseModel):
    """One denial of a queue's plan; priority and days counted on the plan's day."""

    denial_id: str
    action_path: str
    priority_score: float = Field(description="Expected net dollars per effort hour, weighted.")
    expected_net_dollars: float = Field(description="Dollars, net of the cost to work.")
    effort_hours: float = Field(description="Hours.")
    denied_amount: float | None = Field(None, description="Dollars.")
    deadline: dt.date
    days_to_deadline: int
    urgency: float = Field(description="Fraction 0-1: the chance of losing the value by waiting.")
    payer_id: str | None = None


class QueuePlanOut(BaseModel):
    """One owner queue's plan: its open denials in priority order while their hours fit."""

    owner_queue: str
    hours_available: float
    hours_planned: float
    expected_net_dollars: float = Field(description="Dollars, summed over the planned denials.")
    open_workable: int = Field(description="Open denials the queue could work today.")
    not_worth_the_work: int = Field(
        description="Open workable denials expected to return less than the work costs."
    )
    denials: list[PlannedDenialOut]


class PlanOut(BaseModel):
    """Today's plan per owner queue (``GET /v1/worklist/plan``)."""

    counted_from: dt.date = Field(
        description="The day priorities and days to deadline are counted on: today unless "
        "the request gave a date."
    )
    hours_per_queue: float
    past_every_deadline: int = Field(
        description="Open denials past every deadline (write-off review), in no plan."
    )
    queues: list[QueuePlanOut]
