"""The worklist for worklist systems: read it filtered and sorted, assign denials and set their
status (one or many at a time), with reviewer or admin keys, as the pages do.

``days_to_deadline`` is counted when read, from the stored deadline and ``as_of`` (today, UTC),
never frozen at scoring time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from features.contract import CODE_MAXIMUM, TEXT_MAXIMUM
from features.procedures import FAMILIES
from serving import live, repository, worklist_records
from serving.auth import Caller, require_roles
from serving.errors import ServiceError
from serving.schemas import ErrorResponse, QueryDate
from serving.state import ServiceState
from serving.worklist_records import (
    NOT_AN_ASSIGNEE,
    SORTS,
    STATUS_FILTERS,
    STATUSES,
    UNASSIGNED,
    DenialNotScored,
    NotAnAssignee,
    WorklistFilters,
)

REVIEWERS = ("reviewer", "admin")
MAX_LIMIT = 500
MAX_OFFSET = 10**9
# The service's error answers, as every route of the API documents them.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "The body cannot be parsed.",
        401: "No valid API key.",
        403: "The key's role may not do this.",
        413: "Body larger than the service accepts.",
        422: "Where the request breaks the contract, and why.",
        429: "This sender was refused too often in the last minute; see Retry-After.",
    }.items()
}
NO_NUL = r"^[^\x00]*$"

router = APIRouter(prefix="/v1", tags=["worklist"])
ReviewerKey = Annotated[Caller, Depends(require_roles(*REVIEWERS))]


def _state(request: Request) -> ServiceState:
    return request.app.state.service


class WorklistItem(BaseModel):
    """One denial on the worklist. Probabilities are fractions from 0 to 1; amounts dollars."""

    denial_id: str
    status: Literal[STATUSES]  # type: ignore[valid-type]
    assignee: str | None
    priority: float | None = Field(
        description="Expected net dollars per effort hour x (1 + 0.5 x urgency), counted on "
        "as_of; the write-off review's cost per hour (below any workable denial) once past "
        "every deadline."
    )
    workable: bool = Field(
        description="False once past every deadline (as_of after the last one): nothing can "
        "be worked, the denial is for write-off review and sorts after every workable one."
    )
    expected_dollars: float | None
    denied_amount: float | None
    payer_id: str | None
    payer_name: str | None = Field(description="From the 835's N1*PR; null when not given.")
    root_cause: str | None
    root_cause_probability: float | None
    recovery_probability: float | None
    deadline: dt.date | None
    days_to_deadline: int | None = Field(description="From as_of to the deadline; < 0: passed.")
    owner_queue: str | None
    action_path: str | None
    requires_review: bool
    review_reasons: list[str]


class WorklistPage(BaseModel):
    as_of: dt.date
    total: int
    offset: int
    items: list[WorklistItem]


DenialIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=TEXT_MAXIMUM, pattern=NO_NUL)]],
    Field(min_length=1, max_length=MAX_LIMIT, description="Scored denials' ids."),
]


class AssignmentIn(BaseModel):
    """Who works the denials: an active reviewer or admin key's name, or null to unassign."""

    model_config = ConfigDict(extra="forbid")

    denial_ids: DenialIds
    assignee: str | None = Field(max_length=100, pattern=NO_NUL)


class StatusIn(BaseModel):
    """Whether work started. Resolving is done by recording an outcome (``POST /v1/feedback``)."""

    model_config = ConfigDict(extra="forbid")

    denial_ids: DenialIds
    status: Literal["open", "in_progress"]


class WorklistChange(BaseModel):
    denial_id: str
    status: Literal[STATUSES]  # type: ignore[valid-type]
    assignee: str | None


class WorklistChanges(BaseModel):
    changes: list[WorklistChange]


CHANGE_ERRORS = {
    **ERRORS,
    404: {"model": ErrorResponse, "description": "A denial was never scored; nothing changed."},
}


@router.get("/worklist", response_model=WorklistPage, responses=ERRORS)
async def worklist(
    caller: ReviewerKey,
    request: Request,
    status: Annotated[Literal[STATUS_FILTERS], Query()] = "unresolved",  # type: ignore[valid-type]
    queue: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    assignee: Annotated[
        str | None, Query(max_length=100, pattern=NO_NUL, description=f"or {UNASSIGNED}")
    ] = None,
    payer_id: Annotated[str | None, Query(max_length=TEXT_MAXIMUM, pattern=NO_NUL)] = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="denial or claim id")
    ] = None,
    carc: Annotated[
        str | None,
        Query(max_length=CODE_MAXIMUM, pattern=NO_NUL, description="primary code, e.g. CO-197"),
    ] = None,
    procedure_family: Annotated[
        Literal[FAMILIES] | None,  # type: ignore[valid-type]
        Query(description="as payer alerts name it, e.g. surgery"),
    ] = None,
    denied_from: Annotated[QueryDate | None, Query(description="denial date on or after")] = None,
    workable: Annotated[
        bool | None,
        Query(
            description="true: only denials a deadline still allows to work; false: only "
            "those past every deadline, for write-off review; unset: both."
        ),
    ] = None,
    sort: Annotated[Literal[tuple(SORTS)], Query()] = "priority",  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = "desc",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> WorklistPage:
    """The worklist, filtered and sorted in the database: open or in progress by default; by
    priority counted today (as_of), denials past every deadline last."""
    filters = WorklistFilters(
        owner_queue=queue,
        payer_id=payer_id,
        status=status,
        assignee=assignee,
        search=q,
        search_claim_key=repository.claim_key(q) if q else None,
        workable=workable,
        primary_code=carc,
        procedure_family=procedure_family,
        denied_from=denied_from,
    )
    as_of = live.today()  # the day the score API and the reviewer pages count from

    def read() -> WorklistPage:
        with _state(request).session() as session:
            entries, total = worklist_records.worklist_page(
                session,
                filters,
                today=as_of,
                sort=sort,
                descending=order == "desc",
                offset=offset,
                limit=limit,
            )
        items = [WorklistItem.model_validate(entry, from_attributes=True) for entry in entries]
        return WorklistPage(as_of=as_of, total=total, offset=offset, items=items)

    return await run_in_threadpool(read)


@router.post("/worklist/assignment", response_model=WorklistChanges, responses=CHANGE_ERRORS)
async def assignment(body: AssignmentIn, caller: ReviewerKey, request: Request) -> WorklistChanges:
    """Assign denials to a reviewer, or unassign them (all or none); audited under the
    caller's key."""

    def apply(session: Session) -> list[str]:
        return worklist_records.assign(session, body.denial_ids, body.assignee, caller.name)

    return await run_in_threadpool(_change, _state(request), apply)


@router.post("/worklist/status", response_model=WorklistChanges, responses=CHANGE_ERRORS)
async def status(body: StatusIn, caller: ReviewerKey, request: Request) -> WorklistChanges:
    """Mark denials open or in progress (all or none); audited under the caller's key."""

    def apply(session: Session) -> list[str]:
        return worklist_records.set_status(session, body.denial_ids, body.status, caller.name)

    return await run_in_threadpool(_change, _state(request), apply)


def _change(state: ServiceState, apply: Callable[[Session], list[str]]) -> WorklistChanges:
    """Make a change and answer with where each denial stands now: 404 when a denial was never
    scored, 422 naming the field for an assignee who is no active reviewer or admin key."""
    with state.session() as session:
        try:
            changed = apply(session)
        except DenialNotScored as exc:
            raise ServiceError(404, str(exc)) from exc
        except NotAnAssignee as exc:
            problem = {"loc": ["body", "assignee"], "msg": NOT_AN_ASSIGNEE}
            raise ServiceError(422, [problem]) from exc
        today = live.today()
        entries = [worklist_records.worklist_entry(session, denial, today) for denial in changed]
    return WorklistChanges(
        changes=[
            WorklistChange(denial_id=e.denial_id, status=e.status, assignee=e.assignee)
            for e in entries
            if e is not None  # every changed denial was scored: the change checked it
        ]
    )
