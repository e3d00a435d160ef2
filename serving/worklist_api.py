"""The worklist for worklist systems: read it filtered and sorted, assign denials and set their
status, with reviewer or admin keys, as the pages do.

``days_to_deadline`` is counted when read, from the stored deadline and ``as_of`` (today, UTC),
never frozen at scoring time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from serving import repository, worklist_records
from serving.auth import Caller, require_roles
from serving.errors import ServiceError
from serving.state import ServiceState
from serving.worklist_records import (
    SORTS,
    STATUS_FILTERS,
    STATUSES,
    UNASSIGNED,
    DenialNotScored,
    WorklistFilters,
    WorklistProblem,
)

REVIEWERS = ("reviewer", "admin")
MAX_LIMIT = 500
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
    priority: float | None
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


class AssignmentIn(BaseModel):
    """Who works the denial: an active reviewer or admin key's name, or null to unassign."""

    assignee: str | None = Field(max_length=100)


class StatusIn(BaseModel):
    """Whether work started. Resolving is done by recording an outcome (``POST /v1/feedback``)."""

    status: Literal["open", "in_progress"]


class WorklistChange(BaseModel):
    denial_id: str
    status: str
    assignee: str | None


@router.get("/worklist", response_model=WorklistPage)
async def worklist(
    caller: ReviewerKey,
    request: Request,
    status: Annotated[Literal[STATUS_FILTERS], Query()] = "unresolved",  # type: ignore[valid-type]
    queue: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    assignee: Annotated[
        str | None, Query(max_length=100, pattern=NO_NUL, description=f"or {UNASSIGNED}")
    ] = None,
    payer_id: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="denial or claim id")
    ] = None,
    sort: Annotated[Literal[tuple(SORTS)], Query()] = "priority",  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = "desc",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> WorklistPage:
    """The worklist, filtered and sorted in the database: open or in progress by default."""
    filters = WorklistFilters(
        owner_queue=queue,
        payer_id=payer_id,
        status=status,
        assignee=assignee,
        search=q,
        search_claim_key=repository.claim_key(q) if q else None,
    )
    as_of = dt.datetime.now(dt.UTC).date()

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


@router.post("/denials/{denial_id:path}/assignment", response_model=WorklistChange)
async def assignment(
    denial_id: Annotated[str, Path(pattern=NO_NUL)],
    body: AssignmentIn,
    caller: ReviewerKey,
    request: Request,
) -> WorklistChange:
    """Assign a denial to a reviewer, or unassign it; audited under the caller's key."""

    def apply(session: Session) -> None:
        worklist_records.assign(session, [denial_id], body.assignee, caller.name)

    return await run_in_threadpool(_change, _state(request), denial_id, apply)


@router.post("/denials/{denial_id:path}/status", response_model=WorklistChange)
async def status(
    denial_id: Annotated[str, Path(pattern=NO_NUL)],
    body: StatusIn,
    caller: ReviewerKey,
    request: Request,
) -> WorklistChange:
    """Mark a denial open or in progress; audited under the caller's key."""

    def apply(session: Session) -> None:
        worklist_records.set_status(session, [denial_id], body.status, caller.name)

    return await run_in_threadpool(_change, _state(request), denial_id, apply)


def _change(
    state: ServiceState, denial_id: str, apply: Callable[[Session], None]
) -> WorklistChange:
    """Make a change and answer with where the denial stands now: 404 for a denial never
    scored, 422 for an assignee who is not an active reviewer or admin key."""
    with state.session() as session:
        try:
            apply(session)
        except DenialNotScored as exc:
            raise ServiceError(404, str(exc)) from exc
        except WorklistProblem as exc:
            raise ServiceError(422, str(exc)) from exc
        entry = worklist_records.worklist_entry(session, denial_id, dt.datetime.now(dt.UTC).date())
    return WorklistChange(denial_id=denial_id, status=entry.status, assignee=entry.assignee)
