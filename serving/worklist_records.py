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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
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
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from features.mapping import DEFAULT_BACKLOG_HORIZON_DAYS
from features.procedures import procedure_family
from serving import live
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
        **priority_parts(),
        "payer_type": _fact("payer_type").as_string(),
        "procedure_code": _fact("procedure_code").as_string(),
    }


def priority_parts() -> dict[str, ColumnElement[Any]]:
    """The stored parts :func:`serving.live.priority_sql` recounts the priority from, older
    records' missing parts filled in as :func:`serving.live.priorities_on` fills them."""
    governing = func.substr(_output("priority", "deadline").as_string(), 1, 10)
    return {
        "expected_net_dollars": func.coalesce(
            _output("priority", "expected_net_dollars").as_float(),
            _output("priority", "expected_recovered_dollars").as_float()
            - _output("priority", "cost_to_work").as_float(),
        ),
        "effort_hours": _output("priority", "effort_hours").as_float(),
        "last_deadline": func.coalesce(
            func.substr(_output("priority", "last_deadline").as_string(), 1, 10), governing
        ),
        "backlog_horizon_days": func.coalesce(
            _output("priority", "backlog_horizon_days").as_integer(), DEFAULT_BACKLOG_HORIZON_DAYS
        ),
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


def note_outcome(
    session: Session,
    denial_id: str,
    resolution: str,
    caller: str,
    recovered_amount: float | None = None,
    resolved_date: dt.date | None = None,
) -> None:
    """Keep a denial's latest recorded resolution beside its status, so the worklist reads
    whether it is resolved without ranking its feedback, and mark its latest score resolved
    or not for the dashboard's open totals. Called as the feedback is stored, in the same
    commit; does not commit. An ended outcome without a resolved date is dated the day it is
    recorded: the day the site learned it, which is when a payer alert can know it.

    An upsert, so two outcomes of one denial stored at once cannot collide on its row; and
    without flushing the pending feedback, whose duplicate key the caller handles at commit.
    """
    table = DenialStatus.__table__
    insert = _insert(session)(table)
    now = utc_now()
    if resolution == "open":
        resolved_date = None
    elif resolved_date is None:
        resolved_date = now.date()
    outcome = {
        "resolution": resolution,
        "recovered_amount": recovered_amount,
        "resolved_date": resolved_date,
    }
    statement = insert.values(
        denial_id=denial_id, status="open", **outcome, updated_at=now, updated_by=caller
    ).on_conflict_do_update(
        index_elements=[table.c.denial_id],
        set_={**outcome, "updated_at": now, "updated_by": caller},
    )
    latest = LatestScore.__table__
    resolves = update(latest).where(latest.c.denial_id == denial_id)
    with session.no_autoflush:
        session.execute(statement)
        session.execute(resolves.values(resolved=resolution != "open"))


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
    # True: only denials that can still be worked today; False: only those past every
    # deadline, for write-off review; None: both, the workable first.
    workable: bool | None = None
    primary_code: str | None = None  # the primary adjustment, e.g. CO-197 (payer alerts link it)
    procedure_family: str | None = None  # as features.procedures names it, e.g. "surgery"
    denied_from: dt.date | None = None  # denials dated on or after this day
    # The recorded procedure codes of ``procedure_family``, read by :func:`with_family_codes`:
    # the family is a Python rule over the code, so the database is asked for its codes.
    family_codes: tuple[str, ...] | None = None


# Resolved: the latest recorded outcome ends the denial (anything but "open").
is_resolved = and_(DenialStatus.resolution.is_not(None), DenialStatus.resolution != "open")
# A denial's status as the worklist shows it (see the module's docstring).
status_column = case((is_resolved, "resolved"), else_=func.coalesce(DenialStatus.status, "open"))


def _stored(column: ColumnElement[Any]) -> Callable[[dt.date], tuple[ColumnElement[Any], ...]]:
    return lambda today: (column,)


def _by_live_priority(today: dt.date) -> tuple[ColumnElement[Any], ...]:
    """Workable denials before those past every deadline, then the priority counted today."""
    return live.workable_sql(today), live.priority_sql(today)


# What the worklist sorts by: the column's name in the query string -> its expressions on the
# day the list is read (only the priority changes with the day).
SORTS: dict[str, Callable[[dt.date], tuple[ColumnElement[Any], ...]]] = {
    "priority": _by_live_priority,
    "expected_dollars": _stored(LatestScore.expected_dollars),
    "denied_amount": _stored(LatestScore.denied_amount),
    "deadline": _stored(LatestScore.deadline),
    "recovery": _stored(LatestScore.recovery_probability),
    "root_cause": _stored(LatestScore.root_cause),
    "payer": _stored(func.coalesce(LatestScore.payer_name, LatestScore.payer_id)),
    "denial_id": _stored(LatestScore.denial_id),
    "owner_queue": _stored(LatestScore.owner_queue),
    "assignee": _stored(DenialStatus.assignee),
    "status": _stored(status_column),
}


@dataclass(frozen=True)
class WorklistEntry:
    """One denial on the worklist: its latest score's columns, status and assignee; priority,
    days to deadline and workability counted on the day the list is read."""

    denial_id: str
    priority: float | None
    workable: bool
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


def _resolved(*, from_index: bool) -> ColumnElement[bool]:
    """Whether the latest score is resolved. A count reads it from the dashboard's index led
    by ``resolved``; a sorted list reads most of every row anyway, and through that index
    SQLite would fetch each row on its own (without statistics it takes "resolved = false" to
    be selective), so the list compares a value the index cannot answer and scans the table."""
    if from_index:
        return LatestScore.resolved
    return func.coalesce(LatestScore.resolved, False)


def _conditions(
    filters: WorklistFilters, today: dt.date, *, counting: bool = False
) -> list[ColumnElement[bool]]:
    equal_to = {
        LatestScore.owner_queue: filters.owner_queue,
        LatestScore.payer_id: filters.payer_id,
        LatestScore.root_cause: filters.root_cause,
        LatestScore.action_path: filters.action_path,
        LatestScore.primary_code: filters.primary_code,
    }
    conditions = [column == value for column, value in equal_to.items() if value]
    if filters.procedure_family:
        conditions.append(_in_family(filters))
    if filters.denied_from is not None:
        conditions.append(LatestScore.denial_date >= filters.denied_from.isoformat())
    if filters.due_within_days is not None:
        last_day = today + dt.timedelta(days=filters.due_within_days)
        conditions.append(LatestScore.deadline.between(today.isoformat(), last_day.isoformat()))
    # Resolved or not is kept on the latest score too (note_outcome), so the default list
    # and its count need not look up every denial's status.
    if filters.status == "unresolved":
        conditions.append(_resolved(from_index=counting).is_(False))
    elif filters.status == "resolved":
        conditions.append(_resolved(from_index=counting).is_(True))
    elif filters.status != "any":
        conditions.append(status_column == filters.status)
    if filters.assignee == UNASSIGNED:
        conditions.append(DenialStatus.assignee.is_(None))
    elif filters.assignee:
        conditions.append(DenialStatus.assignee == filters.assignee)
    if filters.search:
        conditions.append(_search(filters))
    if filters.workable is not None:
        workable = live.workable_sql(today)
        conditions.append(workable if filters.workable else ~workable)
    return conditions


def with_family_codes(session: Session, filters: WorklistFilters) -> WorklistFilters:
    """``filters`` with the recorded procedure codes of its family (a few hundred at most
    sites), read from the index on the codes; unchanged when no family is chosen."""
    if not filters.procedure_family:
        return filters
    recorded = select(LatestScore.procedure_code).where(LatestScore.procedure_code.is_not(None))
    codes = session.scalars(recorded.distinct())
    chosen = tuple(code for code in codes if procedure_family(code) == filters.procedure_family)
    return replace(filters, family_codes=chosen)


def _in_family(filters: WorklistFilters) -> ColumnElement[bool]:
    """The denials whose procedure falls in the chosen family; a denial without a procedure
    code is in the family "unknown", as features.procedures reads it."""
    if filters.family_codes is None:
        raise ValueError("the family's codes were not read: call with_family_codes first")
    in_family = LatestScore.procedure_code.in_(filters.family_codes)
    if filters.procedure_family == procedure_family(None):
        return or_(in_family, LatestScore.procedure_code.is_(None))
    return in_family


def _search(filters: WorklistFilters) -> ColumnElement[bool]:
    """The denial with this id, or the denials of the claim with this id (both on indexes)."""
    found = LatestScore.denial_id == filters.search
    if filters.search_claim_key:
        found = or_(found, LatestScore.claim_key == filters.search_claim_key)
    return found


def _joined(query: Select[Any]) -> Select[Any]:
    return query.outerjoin(DenialStatus, DenialStatus.denial_id == LatestScore.denial_id)


def _only_by_resolution(filters: WorklistFilters) -> bool:
    """Whether nothing but resolved or not narrows the list (the default list): its count is
    then answered by the index led by ``resolved`` alone. With any other filter, that index
    would make SQLite fetch every open denial's row one by one to check it."""
    others = replace(filters, status="any", search_claim_key=None)
    return filters.status in ("unresolved", "resolved") and others == WorklistFilters(status="any")


def _needs_status(filters: WorklistFilters, sort: str = "priority") -> bool:
    """Whether choosing or ordering the denials reads their status rows."""
    by_status = filters.status not in ("unresolved", "resolved", "any")
    return by_status or filters.assignee is not None or sort in ("status", "assignee")


def _chosen(
    columns: Sequence[ColumnElement[Any]],
    filters: WorklistFilters,
    sort: str,
    today: dt.date,
    *,
    counting: bool = False,
) -> Select[Any]:
    """``columns`` of the denials the filters choose, joined to their status when needed."""
    query = select(*columns).select_from(LatestScore)
    if _needs_status(filters, sort):
        query = _joined(query)
    return query.where(*_conditions(filters, today, counting=counting))


def _ranked(
    filters: WorklistFilters, sort: str, descending: bool, today: dt.date
) -> tuple[Select[Any], list[str]]:
    """The chosen denials' ids and sort keys in order: sorted narrow, so the database never
    carries whole rows through the sort; and the keys' labels, to keep the order outside."""
    keys = [key.label(f"sort_key_{i}") for i, key in enumerate(SORTS[sort](today))]
    query = _chosen([LatestScore.denial_id, *keys], filters, sort, today)
    ordered = [key.desc() if descending else key.asc() for key in keys]
    query = query.order_by(*(key.nulls_last() for key in ordered), LatestScore.denial_id)
    return query, [key.name for key in keys]


def _rows_in_order(ranked: Any, labels: list[str], descending: bool, today: dt.date) -> Select[Any]:
    """The worklist's rows for the ranked ids, in their order: latest score, its priority
    and workability counted ``today``, status and assignee."""
    keys = [ranked.c[label] for label in labels]
    ordered = [key.desc() if descending else key.asc() for key in keys]
    query = select(
        LatestScore,
        live.priority_sql(today).label("live_priority"),
        live.workable_sql(today).label("workable"),
        status_column,
        DenialStatus.assignee,
    ).join(ranked, ranked.c.denial_id == LatestScore.denial_id)
    order = [*(key.nulls_last() for key in ordered), LatestScore.denial_id]
    return _joined(query).order_by(*order)


def _review_reasons(session: Session, score_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each score's review reasons, a list inside its audit record's JSON, so read from there
    for the rows shown only, never for every row sorted."""
    reasons = ScoreRecord.outputs["review_reasons"]
    query = select(ScoreRecord.id, reasons).where(ScoreRecord.id.in_(score_ids))
    return {score_id: listed or [] for score_id, listed in session.execute(query)}


def _entries(session: Session, rows: Sequence[Any], today: dt.date) -> list[WorklistEntry]:
    reasons = _review_reasons(session, [row[0].score_id for row in rows])
    return [_entry(*row, reasons.get(row[0].score_id), today) for row in rows]


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
    filters = with_family_codes(session, filters)
    counting = _only_by_resolution(filters)
    total = session.scalar(_chosen([func.count()], filters, "priority", today, counting=counting))
    ranked, labels = _ranked(filters, sort, descending, today)
    page = ranked.offset(offset).limit(limit).subquery("page")
    rows = session.execute(_rows_in_order(page, labels, descending, today)).all()
    return _entries(session, rows, today), total or 0


def worklist_export(
    session: Session,
    filters: WorklistFilters,
    *,
    today: dt.date,
    sort: str = "priority",
    descending: bool = True,
) -> Iterator[WorklistEntry]:
    """Every denial of the filtered worklist in its order, streamed from one query."""
    filters = with_family_codes(session, filters)
    ranked, labels = _ranked(filters, sort, descending, today)
    query = _rows_in_order(ranked.subquery("chosen"), labels, descending, today)
    for rows in session.execute(query.execution_options(yield_per=CHUNK)).partitions():
        yield from _entries(session, rows, today)


def worklist_entry(session: Session, denial_id: str, today: dt.date) -> WorklistEntry | None:
    """One scored denial as the worklist shows it, whatever its status; None if never scored."""
    chosen = select(LatestScore.denial_id).where(LatestScore.denial_id == denial_id)
    rows = session.execute(_rows_in_order(chosen.subquery("one"), [], True, today)).all()
    return _entries(session, rows, today)[0] if rows else None


def _entry(
    latest: LatestScore,
    priority: float | None,
    workable: bool | None,
    status: str,
    assignee: str | None,
    review_reasons: Sequence[str] | None,
    today: dt.date,
) -> WorklistEntry:
    deadline = _date(latest.deadline)
    return WorklistEntry(
        denial_id=latest.denial_id,
        priority=priority,
        workable=workable is not False,
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
# serving.records.DASHBOARD_INDEXES), in index order, without sorting or reading the table,
# summing only the measures asked for. Buckets that depend on today (age, deadline window) are
# grouped by the raw date and bucketed here, so their indexes serve every day. Open totals
# read the open denials' part of an index led by ``resolved``.

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


def _measure_columns() -> dict[str, ColumnElement[Any]]:
    review = case((LatestScore.requires_review.is_(True), 1), else_=0)
    return {
        "denials": func.count(),
        "denied_dollars": func.coalesce(func.sum(LatestScore.denied_amount), 0.0),
        "expected_dollars": func.coalesce(func.sum(LatestScore.expected_dollars), 0.0),
        "preventable": func.coalesce(func.sum(LatestScore.preventable_probability), 0.0),
        "needs_review": func.coalesce(func.sum(review), 0),
    }


def latest_totals(
    session: Session,
    by: Sequence[str],
    *,
    today: dt.date,
    open_only: bool = False,
    measures: Sequence[str] = MEASURES,
) -> list[dict[str, Any]]:
    """Latest scores grouped ``by`` dimensions (see :data:`DIMENSION_COLUMNS`), with the
    ``measures`` of each group (denials, denied dollars, expected recovered dollars, summed
    preventable probability, review flags), ordered by the groups' keys. ``open_only`` leaves
    out the resolved denials."""
    columns = [column for name in by for column in DIMENSION_COLUMNS[name]]
    chosen = _measure_columns()
    query = select(*columns, *(chosen[name] for name in measures)).select_from(LatestScore)
    if open_only:
        query = query.where(LatestScore.resolved.is_(False))
    if columns:
        query = query.group_by(*columns)
    rows = [tuple(row) for row in session.execute(query)]
    totals = _summed_by(rows, by, today, len(measures))
    found = [
        {**dict(zip(by, key, strict=True)), **dict(zip(measures, sums, strict=True))}
        for key, sums in totals.items()
        if sums[0] > 0 or not by
    ]
    return sorted(found, key=lambda row: tuple(str(row[name]) for name in by))


def _summed_by(
    rows: list[tuple[Any, ...]], by: Sequence[str], today: dt.date, measures: int
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
        sums = totals.setdefault(tuple(values), [0] * measures)
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
