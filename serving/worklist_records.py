"""The worklist's records: each denial's latest score kept on write, who works a denial and
whether work on it has started, and the queries of the worklist, its export, its API and the
dashboard.

Every page and route reads :class:`serving.records.LatestScore`, one narrow row per denial
written in the same commit as the audit record it copies, instead of finding each denial's
newest audit record and parsing its JSON on every read. A denial's status is "resolved" when
its latest recorded outcome (feedback with a resolution other than "open") says so, else what a
reviewer set ("open" or "in progress"), else "open".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from serving.records import (
    WORKED_STATUSES,
    ApiKey,
    DenialStatus,
    LatestScore,
    ScoreRecord,
    WorklistEvent,
    utc_now,
)

STATUSES = (*WORKED_STATUSES, "resolved")
# What the status filter offers: one status, every denial not resolved (the default), or all.
STATUS_FILTERS = ("unresolved", *STATUSES, "any")
UNASSIGNED = "unassigned"  # the assignee filter's value for denials nobody works yet
ASSIGNING_ROLES = ("reviewer", "admin")
CHUNK = 2000  # rows per statement when copying new scores or exporting
AGE_BUCKETS = ((30, "0-30 days"), (60, "31-60 days"), (90, "61-90 days"), (120, "91-120 days"))
AGE_ORDER = (*(name for _, name in AGE_BUCKETS), "over 120 days", "unknown")
DEADLINE_WINDOWS = ((7, "within 7 days"), (30, "in 8-30 days"))
WINDOW_ORDER = ("passed", *(name for _, name in DEADLINE_WINDOWS), "later", "unknown")


def batched(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """``items`` in slices of ``size`` (itertools.batched arrives only with Python 3.12)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class WorklistProblem(ValueError):
    """A worklist change that cannot be made (unknown denial, assignee or status)."""


class DenialNotScored(WorklistProblem):
    """A change named a denial that was never scored, so is on no worklist."""


class NotAnAssignee(WorklistProblem):
    """An assignee who is no active reviewer or admin key."""


# Fixed text, so the API fuzzing can tell this refusal (keys are not in any schema) apart.
NOT_AN_ASSIGNEE = "is not the name of an active reviewer or admin key"


# ---------------------------------------------------------------------------- kept on write


def _output(*path: str | int) -> Any:
    return ScoreRecord.outputs[path]


def _fact(*path: str | int) -> Any:
    return ScoreRecord.facts[path]


def latest_values() -> dict[str, ColumnElement[Any]]:
    """Each :class:`LatestScore` column as an expression over the audit record it copies."""
    denial_date = _fact("denial_date").as_string()
    # Records from before revision 0002 have no denial date; their scoring month stands in.
    month_from = func.coalesce(denial_date, cast(ScoreRecord.scored_at, String))
    return {
        "denial_id": ScoreRecord.denial_id,
        "score_id": ScoreRecord.id,
        "scored_at": ScoreRecord.scored_at,
        "claim_key": _fact("claim_key").as_string(),
        "payer_id": _fact("payer_id").as_string(),
        "payer_name": _fact("payer_name").as_string(),
        "denial_date": func.substr(denial_date, 1, 10),  # 835s give "2026-06-05T00:00:00"
        "denial_month": func.substr(month_from, 1, 7),
        "primary_code": _fact("carc_codes", 0).as_string(),
        "denied_amount": _fact("denied_amount").as_float(),
        "root_cause": _output("root_cause", "category").as_string(),
        "root_cause_probability": _output("root_cause", "probability").as_float(),
        "recovery_probability": _output("recovery", "probability").as_float(),
        "expected_dollars": _output("recovery", "expected_recovered_dollars").as_float(),
        "preventable_probability": _output("preventable", "probability").as_float(),
        "prevention_owner": _output("preventable", "prevention_owner").as_string(),
        "priority": _output("priority", "score").as_float(),
        "deadline": func.substr(_output("priority", "deadline").as_string(), 1, 10),
        "deadline_rule": _output("priority", "deadline_rule").as_string(),
        "owner_queue": _output("routing", "owner_queue").as_string(),
        "action_path": _output("routing", "action_path").as_string(),
        "requires_review": _output("requires_human_review").as_boolean(),
    }


def _newest_of_its_denial() -> ColumnElement[bool]:
    """True for the audit record no later record of the same denial follows."""
    newer = aliased(ScoreRecord)
    later = or_(
        newer.scored_at > ScoreRecord.scored_at,
        and_(newer.scored_at == ScoreRecord.scored_at, newer.id > ScoreRecord.id),
    )
    return ~exists().where(newer.denial_id == ScoreRecord.denial_id, later)


def keep_latest(session: Session, record_ids: Sequence[str]) -> None:
    """Copy newly written audit records into :class:`LatestScore` where they are the newest
    of their denial. Does not commit: :func:`serving.repository.record_scores` does, so a score
    and its worklist row are written together or not at all."""
    table = LatestScore.__table__
    values = latest_values()
    insert = _insert(session)
    for chunk in batched(record_ids, CHUNK):
        newest = select(*values.values()).where(
            ScoreRecord.record_id.in_(chunk), _newest_of_its_denial()
        )
        statement = insert(table).from_select(list(values), newest)
        excluded = statement.excluded
        # Another replica may have written a newer score of the denial meanwhile: it stays.
        newer = or_(
            excluded.scored_at > table.c.scored_at,
            and_(excluded.scored_at == table.c.scored_at, excluded.score_id > table.c.score_id),
        )
        changes = {name: excluded[name] for name in values if name != "denial_id"}
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.denial_id], set_=changes, where=newer
            )
        )


# ---------------------------------------------------------------------------- status


def note_outcome(session: Session, denial_id: str, resolution: str, caller: str) -> None:
    """Keep a denial's latest recorded resolution beside its status, so the worklist reads
    whether it is resolved without ranking its feedback. Called as the feedback is stored, in
    the same commit; does not commit.

    An upsert, so two outcomes of one denial stored at once cannot collide on its row; and
    without flushing the pending feedback, whose duplicate key the caller handles at commit.
    """
    table = DenialStatus.__table__
    insert = _insert(session)(table)
    now = utc_now()
    statement = insert.values(
        denial_id=denial_id, status="open", resolution=resolution, updated_at=now, updated_by=caller
    ).on_conflict_do_update(
        index_elements=[table.c.denial_id],
        set_={"resolution": resolution, "updated_at": now, "updated_by": caller},
    )
    with session.no_autoflush:
        session.execute(statement)


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on SQLite and PostgreSQL alike."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _acting_key_id(session: Session, actor: str) -> int | None:
    """The row id of the active key named ``actor``: the audit keeps it beside the name."""
    return session.scalar(
        select(ApiKey.id).where(ApiKey.name == actor, ApiKey.revoked_at.is_(None))
    )


def assignable_reviewers(session: Session) -> list[str]:
    """Names of the active reviewer and admin keys: who a denial can be assigned to."""
    query = select(ApiKey.name).where(ApiKey.revoked_at.is_(None), ApiKey.role.in_(ASSIGNING_ROLES))
    return list(session.scalars(query.order_by(ApiKey.name)))


def _scored(session: Session, denial_ids: Sequence[str]) -> list[str]:
    """``denial_ids`` in the order given, refused with the unknown ones named if any was never
    scored."""
    wanted = list(dict.fromkeys(denial_ids))
    if not wanted:
        raise WorklistProblem("no denial chosen: tick at least one")
    known: set[str] = set()
    for chunk in batched(wanted, CHUNK):
        query = select(LatestScore.denial_id).where(LatestScore.denial_id.in_(chunk))
        known.update(session.scalars(query))
    unknown = [denial_id for denial_id in wanted if denial_id not in known]
    if unknown:
        shown = ", ".join(repr(denial_id) for denial_id in unknown[:5])
        raise DenialNotScored(f"never scored, so not on the worklist: {shown}")
    return wanted


def assign(
    session: Session, denial_ids: Sequence[str], assignee: str | None, actor: str
) -> list[str]:
    """Assign denials to a reviewer (``None`` unassigns them), audited under the actor's key;
    returns the denials changed. The assignee must be an active reviewer or admin key."""
    if assignee is not None and assignee not in assignable_reviewers(session):
        raise NotAnAssignee(f"assignee {assignee!r} {NOT_AN_ASSIGNEE}")
    denials = _scored(session, denial_ids)
    action = "assign" if assignee is not None else "unassign"
    _write(session, denials, actor, action, assignee=assignee)
    return denials


def set_status(session: Session, denial_ids: Sequence[str], status: str, actor: str) -> list[str]:
    """Mark denials open or in progress, audited under the actor's key. "resolved" is refused:
    an outcome recorded through feedback resolves a denial, with what it brought back."""
    if status not in WORKED_STATUSES:
        raise WorklistProblem(
            f"status {status!r}: choose open or in_progress; record an outcome to resolve a denial"
        )
    denials = _scored(session, denial_ids)
    _write(session, denials, actor, "status", status=status)
    return denials


def _write(
    session: Session,
    denials: list[str],
    actor: str,
    action: str,
    *,
    assignee: str | None = None,
    status: str | None = None,
) -> None:
    """Change the denials' status rows and append one audit event per denial, in one commit."""
    now, key_id = utc_now(), _acting_key_id(session, actor)
    current = {row.denial_id: row for row in _status_rows(session, denials)}
    for denial_id in denials:
        row = current.get(denial_id) or DenialStatus(denial_id=denial_id, status="open")
        if action == "status":
            row.status = status
        else:
            row.assignee = assignee
        row.updated_at, row.updated_by = now, actor
        session.add(row)
        session.add(
            WorklistEvent(
                denial_id=denial_id,
                at=now,
                actor=actor,
                actor_key_id=key_id,
                action=action,
                status=row.status if action == "status" else None,
                assignee=assignee,
            )
        )
    session.commit()


def _status_rows(session: Session, denials: Sequence[str]) -> Iterator[DenialStatus]:
    for chunk in batched(denials, CHUNK):
        yield from session.scalars(select(DenialStatus).where(DenialStatus.denial_id.in_(chunk)))


# ---------------------------------------------------------------------------- the worklist


@dataclass(frozen=True)
class WorklistFilters:
    """What a reviewer narrows the worklist to; ``None`` leaves a field open. ``search`` finds
    a denial by its id, or the denials of a claim by the claim id's keyed hash."""

    owner_queue: str | None = None
    payer_id: str | None = None
    root_cause: str | None = None
    action_path: str | None = None
    due_within_days: int | None = None  # governing deadline from today to today + N days
    status: str = "unresolved"
    assignee: str | None = None  # a key name, or UNASSIGNED
    search: str | None = None
    search_claim_key: str | None = None
    primary_code: str | None = None  # the primary adjustment, e.g. CO-197 (payer alerts link it)


# Resolved: the latest recorded outcome ends the denial (anything but "open").
is_resolved = and_(DenialStatus.resolution.is_not(None), DenialStatus.resolution != "open")
# A denial's status as the worklist shows it (see the module's docstring).
status_column = case((is_resolved, "resolved"), else_=func.coalesce(DenialStatus.status, "open"))
# What the worklist sorts by: the column's name in the query string -> its expression.
SORTS: dict[str, ColumnElement[Any]] = {
    "priority": LatestScore.priority,
    "expected_dollars": LatestScore.expected_dollars,
    "denied_amount": LatestScore.denied_amount,
    "deadline": LatestScore.deadline,
    "recovery": LatestScore.recovery_probability,
    "root_cause": LatestScore.root_cause,
    "payer": func.coalesce(LatestScore.payer_name, LatestScore.payer_id),
    "denial_id": LatestScore.denial_id,
    "owner_queue": LatestScore.owner_queue,
    "assignee": DenialStatus.assignee,
    "status": status_column,
}


@dataclass(frozen=True)
class WorklistEntry:
    """One denial on the worklist: its latest score's columns, status and assignee."""

    denial_id: str
    priority: float | None
    expected_dollars: float | None
    denied_amount: float | None
    payer_id: str | None
    payer_name: str | None
    root_cause: str | None
    root_cause_probability: float | None
    recovery_probability: float | None
    deadline: dt.date | None
    days_to_deadline: int | None
    requires_review: bool
    review_reasons: tuple[str, ...]
    owner_queue: str | None
    action_path: str | None
    status: str
    assignee: str | None


def days_to_deadline(deadline: dt.date | None, today: dt.date) -> int | None:
    """Days from ``today`` to the stored deadline, counted when read (negative once passed)."""
    return None if deadline is None else (deadline - today).days


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _conditions(filters: WorklistFilters, today: dt.date) -> list[ColumnElement[bool]]:
    equal_to = {
        LatestScore.owner_queue: filters.owner_queue,
        LatestScore.payer_id: filters.payer_id,
        LatestScore.root_cause: filters.root_cause,
        LatestScore.action_path: filters.action_path,
        LatestScore.primary_code: filters.primary_code,
    }
    conditions = [column == value for column, value in equal_to.items() if value]
    if filters.due_within_days is not None:
        last_day = today + dt.timedelta(days=filters.due_within_days)
        conditions.append(LatestScore.deadline.between(today.isoformat(), last_day.isoformat()))
    if filters.status == "unresolved":
        conditions.append(or_(DenialStatus.denial_id.is_(None), ~is_resolved))
    elif filters.status != "any":
        conditions.append(status_column == filters.status)
    if filters.assignee == UNASSIGNED:
        conditions.append(DenialStatus.assignee.is_(None))
    elif filters.assignee:
        conditions.append(DenialStatus.assignee == filters.assignee)
    if filters.search:
        conditions.append(_search(filters))
    return conditions


def _search(filters: WorklistFilters) -> ColumnElement[bool]:
    """The denial with this id, or the denials of the claim with this id (both on indexes)."""
    found = LatestScore.denial_id == filters.search
    if filters.search_claim_key:
        found = or_(found, LatestScore.claim_key == filters.search_claim_key)
    return found


def _joined(query: Select[Any]) -> Select[Any]:
    return query.outerjoin(DenialStatus, DenialStatus.denial_id == LatestScore.denial_id)


def _ordered(query: Select[Any], sort: str, descending: bool) -> Select[Any]:
    column = SORTS[sort]
    order = column.desc() if descending else column.asc()
    return query.order_by(order.nulls_last(), LatestScore.denial_id)


def _rows(conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """The worklist's rows: latest score, status, assignee and the score's review reasons (a
    list inside the audit record's JSON, so read from there, not copied)."""
    reasons = ScoreRecord.outputs["review_reasons"].label("review_reasons")
    query = select(LatestScore, status_column, DenialStatus.assignee, reasons)
    query = _joined(query).join(ScoreRecord, ScoreRecord.id == LatestScore.score_id)
    return query.where(*conditions)


def worklist_page(
    session: Session,
    filters: WorklistFilters,
    *,
    today: dt.date,
    sort: str = "priority",
    descending: bool = True,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[WorklistEntry], int]:
    """One page of the worklist, sorted in the database, and how many denials match in all."""
    conditions = _conditions(filters, today)
    total = session.scalar(
        _joined(select(func.count()).select_from(LatestScore)).where(*conditions)
    )
    query = _ordered(_rows(conditions), sort, descending).offset(offset).limit(limit)
    return [_entry(*row, today) for row in session.execute(query)], total or 0


def worklist_export(
    session: Session,
    filters: WorklistFilters,
    *,
    today: dt.date,
    sort: str = "priority",
    descending: bool = True,
) -> Iterator[WorklistEntry]:
    """Every denial of the filtered worklist in its order, streamed from one query."""
    query = _ordered(_rows(_conditions(filters, today)), sort, descending)
    for row in session.execute(query.execution_options(yield_per=CHUNK)):
        yield _entry(*row, today)


def worklist_entry(session: Session, denial_id: str, today: dt.date) -> WorklistEntry | None:
    """One scored denial as the worklist shows it, whatever its status; None if never scored."""
    row = session.execute(_rows([LatestScore.denial_id == denial_id])).one_or_none()
    return None if row is None else _entry(*row, today)


def _entry(
    latest: LatestScore,
    status: str,
    assignee: str | None,
    review_reasons: Sequence[str] | None,
    today: dt.date,
) -> WorklistEntry:
    deadline = _date(latest.deadline)
    return WorklistEntry(
        denial_id=latest.denial_id,
        priority=latest.priority,
        expected_dollars=latest.expected_dollars,
        denied_amount=latest.denied_amount,
        payer_id=latest.payer_id,
        payer_name=latest.payer_name,
        root_cause=latest.root_cause,
        root_cause_probability=latest.root_cause_probability,
        recovery_probability=latest.recovery_probability,
        deadline=deadline,
        days_to_deadline=days_to_deadline(deadline, today),
        requires_review=bool(latest.requires_review),
        review_reasons=tuple(review_reasons or ()),
        owner_queue=latest.owner_queue,
        action_path=latest.action_path,
        status=status,
        assignee=assignee,
    )


def worklist_choices(session: Session) -> dict[str, list[Any]]:
    """What the worklist's filters offer: queues, payers (id and name), action paths and the
    assignees found in the records, and who can be assigned."""
    distinct = {
        "owner_queue": LatestScore.owner_queue,
        "action_path": LatestScore.action_path,
        "assignee": DenialStatus.assignee,
    }
    choices: dict[str, list[Any]] = {}
    for name, column in distinct.items():
        query = select(column).where(column.is_not(None)).distinct().order_by(column)
        choices[name] = list(session.scalars(query))
    payers = select(LatestScore.payer_id, func.max(LatestScore.payer_name)).where(
        LatestScore.payer_id.is_not(None)
    )
    choices["payer_id"] = [
        (payer_id, name)
        for payer_id, name in session.execute(
            payers.group_by(LatestScore.payer_id).order_by(LatestScore.payer_id)
        )
    ]
    choices["reviewers"] = assignable_reviewers(session)
    return choices


# ---------------------------------------------------------------------------- dashboard
#
# Each total is one GROUP BY that SQLite answers from a covering index of LatestScore (see
# serving.records), in index order, without sorting or reading the table. Buckets that depend
# on today (age, deadline window) are grouped by the raw date and bucketed here, so their
# indexes serve every day. Open totals are all totals less the resolved denials' totals,
# summed from the few resolved rows rather than by joining every denial to its status.

MEASURES = ("denials", "denied_dollars", "expected_dollars", "preventable", "needs_review")
# What the dashboard groups by: the stored columns each dimension is made from.
DIMENSION_COLUMNS: dict[str, tuple[ColumnElement[Any], ...]] = {
    "month": (LatestScore.denial_month,),
    "root_cause": (LatestScore.root_cause,),
    "payer_id": (LatestScore.payer_id,),
    # The remittance's payer name where one was given, else the payer id.
    "payer": (LatestScore.payer_id, LatestScore.payer_name),
    "primary_code": (LatestScore.primary_code,),
    "prevention_owner": (LatestScore.prevention_owner,),
    "owner_queue": (LatestScore.owner_queue,),
    "deadline_rule": (LatestScore.deadline_rule,),
    "age": (LatestScore.denial_date,),
    "deadline_window": (LatestScore.deadline,),
}


def _measures() -> list[ColumnElement[Any]]:
    review = case((LatestScore.requires_review.is_(True), 1), else_=0)
    return [
        func.count().label("denials"),
        func.coalesce(func.sum(LatestScore.denied_amount), 0.0).label("denied_dollars"),
        func.coalesce(func.sum(LatestScore.expected_dollars), 0.0).label("expected_dollars"),
        func.coalesce(func.sum(LatestScore.preventable_probability), 0.0).label("preventable"),
        func.coalesce(func.sum(review), 0).label("needs_review"),
    ]


def _grouped(
    session: Session, columns: Sequence[ColumnElement[Any]], *, resolved_only: bool
) -> list[tuple[Any, ...]]:
    """Rows of (group columns..., measures...) over every latest score, or the resolved ones."""
    query = select(*columns, *_measures()).select_from(LatestScore)
    if resolved_only:
        # IN, not a join: the planner then looks the few resolved denials up by their key
        # instead of probing the status of every denial.
        resolved = select(DenialStatus.denial_id).where(is_resolved)
        query = query.where(LatestScore.denial_id.in_(resolved))
    if columns:
        query = query.group_by(*columns)
    return [tuple(row) for row in session.execute(query)]


def latest_totals(
    session: Session, by: Sequence[str], *, today: dt.date, open_only: bool = False
) -> list[dict[str, Any]]:
    """Latest scores grouped ``by`` dimensions (see :data:`DIMENSION_COLUMNS`), with the
    denials, denied dollars, expected recovered dollars, summed preventable probability and
    review flags of each group, ordered by the groups' keys. ``open_only`` leaves out the
    resolved denials."""
    columns = [column for name in by for column in DIMENSION_COLUMNS[name]]
    totals = _summed_by(_grouped(session, columns, resolved_only=False), by, today)
    if open_only:
        resolved = _summed_by(_grouped(session, columns, resolved_only=True), by, today)
        for key, sums in resolved.items():
            totals[key] = [left - right for left, right in zip(totals[key], sums, strict=True)]
    rows = [
        {**dict(zip(by, key, strict=True)), **dict(zip(MEASURES, sums, strict=True))}
        for key, sums in totals.items()
        if sums[0] > 0 or not by
    ]
    return sorted(rows, key=lambda row: tuple(str(row[name]) for name in by))


def _summed_by(
    rows: list[tuple[Any, ...]], by: Sequence[str], today: dt.date
) -> dict[tuple[Any, ...], list[float]]:
    """Rows of stored columns re-added under each dimension's value (a date's bucket, a
    payer's name)."""
    totals: dict[tuple[Any, ...], list[float]] = {}
    for row in rows:
        values, position = [], 0
        for name in by:
            width = len(DIMENSION_COLUMNS[name])
            values.append(_dimension_value(name, row[position : position + width], today))
            position += width
        sums = totals.setdefault(tuple(values), [0] * len(MEASURES))
        for index, value in enumerate(row[position:]):
            sums[index] += value or 0
    return totals


def _dimension_value(name: str, stored: Sequence[Any], today: dt.date) -> Any:
    if name == "payer":
        payer_id, payer_name = stored
        return payer_name or payer_id
    if name == "age":
        return _bucket(stored[0], today, AGE_BUCKETS, past=True, rest="over 120 days")
    if name == "deadline_window":
        return _bucket(stored[0], today, DEADLINE_WINDOWS, past=False, rest="later")
    return stored[0]


def _bucket(
    date_text: str | None,
    today: dt.date,
    buckets: Sequence[tuple[int, str]],
    *,
    past: bool,
    rest: str,
) -> str:
    """The bucket of an ISO date: by days since it (``past``), else by days until it."""
    if not date_text:
        return "unknown"
    days = (dt.date.fromisoformat(date_text[:10]) - today).days
    if past:
        return next((name for limit, name in buckets if -days <= limit), rest)
    if days < 0:
        return "passed"
    return next((name for limit, name in buckets if days <= limit), rest)
