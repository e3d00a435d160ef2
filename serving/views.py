"""What each page shows, built from the records as plain data for the templates.

Nothing here touches HTTP: :mod:`serving.pages` reads the request, opens a session and hands
the records to these functions. Dates are compared with ``today`` as the caller gives it, so
"days to deadline" is counted from the day the page is read, not the day the denial was scored.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from sqlalchemy.orm import Session

from features.adjustments import split_adjustment
from features.codes import CodeKind, CodeReference, load_labels
from features.contract import RESOLUTIONS, ROOT_CAUSES
from features.labels import plain_label
from features.procedures import FAMILIES
from serving import charts, live, repository, worklist_records
from serving import monitoring as monitoring_records
from serving.reasons import stored_in_points
from serving.records import Feedback, ScoreRecord
from serving.schemas import ISO_DATE
from serving.svg import explanation_waterfall_svg
from serving.worklist_records import (
    AGE_ORDER,
    SORTS,
    STATUS_FILTERS,
    UNASSIGNED,
    WINDOW_ORDER,
    WorklistEntry,
    WorklistFilters,
)
from training.label_queue import choose, scored_pool

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MAX_DUE_WITHIN_DAYS = 3650
MAX_FILTER_CHARACTERS = 200
TASK_TITLES = {
    "root_cause": "Root cause",
    "recovery": "Recovery",
    "preventable": "Preventable",
}


def inline_svg(svg: str) -> Markup:
    """A chart to put in a page as it is. Only for SVG drawn by :mod:`serving.charts` or
    :mod:`serving.svg` (matplotlib), which escape every text they write, so data shown in a
    chart cannot become markup."""
    return Markup(svg)


# ---------------------------------------------------------------------------- worklist


SORT_NAMES = tuple(SORTS)
# A column sorts largest, latest or most first when clicked, except names and deadlines.
ASCENDING_FIRST = frozenset({"deadline", "root_cause", "payer", "denial_id", "owner_queue"})
ASSIGN_ACTIONS = ("assign", "unassign", "in_progress", "open")
# The workable filter in the query string: "true" only denials that can still be worked,
# "false" only those past every deadline (write-off review), none (the default) both.
WORKABLE_FILTERS: dict[str, bool | None] = {"": None, "true": True, "false": False}
WORKABLE_CHOICES_BY_VALUE = {True: "true", False: "false"}


@dataclass(frozen=True)
class WorklistQuery:
    """The worklist a reviewer asked for: filters, order, page and page size, and what was
    ignored."""

    filters: WorklistFilters
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    sort: str = "priority"
    descending: bool = True
    problems: tuple[str, ...] = ()

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def params(self, **changes: object) -> dict[str, object]:
        """The query string's values for this query with ``changes``, defaults left out."""
        filters = self.filters
        params = {
            "q": filters.search,
            "status": filters.status if filters.status != "unresolved" else None,
            "assignee": filters.assignee,
            "owner_queue": filters.owner_queue,
            "payer_id": filters.payer_id,
            "carc": filters.primary_code,
            "procedure_family": filters.procedure_family,
            "denied_from": filters.denied_from.isoformat() if filters.denied_from else None,
            "root_cause": filters.root_cause,
            "action_path": filters.action_path,
            "due_within": filters.due_within_days,
            "workable": WORKABLE_CHOICES_BY_VALUE.get(filters.workable),
            "sort": self.sort if self.sort != "priority" else None,
            "order": None if self.descending == (self.sort not in ASCENDING_FIRST) else self.order,
            "size": self.size if self.size != DEFAULT_PAGE_SIZE else None,
            "page": self.page if self.page != 1 else None,
        } | changes
        return {name: value for name, value in params.items() if value not in (None, "")}

    @property
    def order(self) -> str:
        return "desc" if self.descending else "asc"

    def url(self, path: str = "/ui/worklist", **changes: object) -> str:
        """The worklist's address for this query with ``changes`` (e.g. another page)."""
        kept = self.params(**changes)
        return path + (f"?{urlencode(kept)}" if kept else "")

    def sort_url(self, sort: str) -> str:
        """The address sorting by ``sort``: the other way round when it already sorts by it."""
        first_way = sort not in ASCENDING_FIRST
        descending = not self.descending if sort == self.sort else first_way
        order = None if descending == first_way else ("desc" if descending else "asc")
        return self.url(sort=None if sort == "priority" else sort, order=order, page=None)


def worklist_query(params: Mapping[str, str]) -> WorklistQuery:
    """Read the worklist's query string; a value that makes no sense is dropped and named."""
    problems: list[str] = []
    filters = WorklistFilters(
        owner_queue=_text(params, "owner_queue", problems),
        payer_id=_text(params, "payer_id", problems),
        root_cause=_choice(params, "root_cause", ROOT_CAUSES, None, problems),
        action_path=_text(params, "action_path", problems),
        due_within_days=_number(params, "due_within", 0, MAX_DUE_WITHIN_DAYS, problems),
        status=_choice(params, "status", STATUS_FILTERS, "unresolved", problems),
        assignee=_text(params, "assignee", problems),
        search=_text(params, "q", problems),
        workable=WORKABLE_FILTERS[
            _choice(params, "workable", tuple(WORKABLE_FILTERS), "", problems)
        ],
        primary_code=_text(params, "carc", problems),
        procedure_family=_choice(params, "procedure_family", FAMILIES, None, problems),
        denied_from=_date_param(params, "denied_from", problems),
    )
    sort = _choice(params, "sort", SORT_NAMES, "priority", problems)
    default_order = "asc" if sort in ASCENDING_FIRST else "desc"
    order = _choice(params, "order", ("asc", "desc"), default_order, problems)
    size = _number(params, "size", PAGE_SIZES[0], PAGE_SIZES[-1], problems)
    page = _number(params, "page", 1, 10**9, problems) or 1
    return WorklistQuery(
        filters, page, size or DEFAULT_PAGE_SIZE, sort, order == "desc", tuple(problems)
    )


def _choice(
    params: Mapping[str, str],
    name: str,
    choices: Sequence[str],
    default: str | None,
    problems: list[str],
) -> Any:
    value = _text(params, name, problems)
    if value is None:
        return default
    if value not in choices:
        problems.append(f"unknown {name.replace('_', ' ')} {value!r} ignored")
        return default
    return value


def _text(params: Mapping[str, str], name: str, problems: list[str]) -> str | None:
    value = params.get(name, "").strip()[:MAX_FILTER_CHARACTERS]
    if "\x00" in value:  # no name or code holds one, and PostgreSQL text cannot
        problems.append(f"{name} holds a NUL character; ignored")
        return None
    return value or None


def _date_param(params: Mapping[str, str], name: str, problems: list[str]) -> dt.date | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    # Only YYYY-MM-DD, as a date input sends it (fromisoformat also reads "20260101").
    if ISO_DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:  # a day the calendar lacks, e.g. 2026-02-30
            pass
    problems.append(f"{name} must be a date as YYYY-MM-DD; ignored")
    return None


def _number(
    params: Mapping[str, str], name: str, low: int, high: int, problems: list[str]
) -> int | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        problems.append(f"{name} must be a whole number from {low} to {high}; ignored")
        return None
    return int(text)


@dataclass(frozen=True)
class WorklistRow:
    """One denial on the worklist, as its latest score describes it."""

    denial_id: str
    priority: float
    denied_amount: float | None
    payer_id: str | None
    root_cause: str
    root_cause_probability: float
    recovery_probability: float
    expected_dollars: float
    deadline: dt.date
    days_to_deadline: int
    requires_review: bool
    review_reasons: tuple[str, ...]
    owner_queue: str
    action_path: str


def worklist_row(record: ScoreRecord, today: dt.date) -> WorklistRow:
    """A worklist row from a score record; days to deadline are counted from ``today``."""
    outputs, facts = record.outputs, record.facts or {}
    deadline = dt.date.fromisoformat(outputs["priority"]["deadline"])
    return WorklistRow(
        denial_id=record.denial_id,
        priority=outputs["priority"]["score"],
        denied_amount=facts.get("denied_amount"),
        payer_id=facts.get("payer_id"),
        root_cause=outputs["root_cause"]["category"],
        root_cause_probability=outputs["root_cause"]["probability"],
        recovery_probability=outputs["recovery"]["probability"],
        expected_dollars=outputs["recovery"]["expected_recovered_dollars"],
        deadline=deadline,
        days_to_deadline=(deadline - today).days,
        requires_review=outputs["requires_human_review"],
        review_reasons=tuple(outputs["review_reasons"]),
        owner_queue=outputs["routing"]["owner_queue"],
        action_path=outputs["routing"]["action_path"],
    )


def searched(filters: WorklistFilters) -> WorklistFilters:
    """The filters with the claim key of the searched text, so a claim id finds its denials."""
    if not filters.search:
        return filters
    return replace(filters, search_claim_key=repository.claim_key(filters.search))


def worklist(session: Session, query: WorklistQuery, today: dt.date) -> dict[str, Any]:
    """Everything the worklist page shows for one query; days to deadline count from
    ``today``, the one date the page states."""
    rows, total = worklist_records.worklist_page(
        session,
        searched(query.filters),
        today=today,
        sort=query.sort,
        descending=query.descending,
        offset=query.offset,
        limit=query.size,
    )
    pages = max(1, -(-total // query.size))
    return {
        "today": today,
        "query": query,
        "rows": rows,
        "total": total,
        "first_shown": query.offset + 1 if rows else 0,
        "last_shown": query.offset + len(rows),
        "pages": pages,
        "previous_url": query.url(page=query.page - 1) if query.page > 1 else None,
        "next_url": query.url(page=query.page + 1) if query.page < pages else None,
        "export_url": query.url("/ui/worklist.csv", page=None, size=None),
        "choices": {
            **worklist_records.worklist_choices(session),
            "root_cause": list(ROOT_CAUSES),
            "procedure_family": list(FAMILIES),
        },
        "statuses": STATUS_FILTERS,
        "sorts": SORT_NAMES,
        "unassigned": UNASSIGNED,
        "page_sizes": PAGE_SIZES,
    }


# What the CSV export holds: nothing that names a patient or a member, and no claim id (the
# records keep only its keyed hash).
EXPORT_COLUMNS = (
    "denial_id",
    "status",
    "assignee",
    "priority",
    "workable",
    "expected_dollars",
    "denied_amount",
    "payer_id",
    "payer_name",
    "root_cause",
    "root_cause_probability",
    "recovery_probability",
    "deadline",
    "days_to_deadline",
    "owner_queue",
    "action_path",
    "requires_review",
    "review_reasons",
)


def export_lines(session: Session, query: WorklistQuery, today: dt.date) -> Iterator[str]:
    """The filtered worklist as CSV lines, header first, in the page's order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*EXPORT_COLUMNS, "as_of"])
    entries = worklist_records.worklist_export(
        session, searched(query.filters), today=today, sort=query.sort, descending=query.descending
    )
    for entry in entries:
        writer.writerow([*_export_values(entry), today.isoformat()])
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _export_values(entry: WorklistEntry) -> list[Any]:
    values = asdict(entry)
    values["review_reasons"] = "; ".join(entry.review_reasons)
    return [_csv_safe(values[name]) for name in EXPORT_COLUMNS]


def _csv_safe(value: Any) -> Any:
    """A cell a spreadsheet shows as text: no leading ``=``, ``+``, ``-`` or ``@`` of text from
    a remittance turns into a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


# ---------------------------------------------------------------------------- to label

TO_LABEL_SEED = 7  # the view's random share is seeded, so a reload shows the same queue


@dataclass(frozen=True)
class ToLabelRow:
    """One scored denial a reviewer should label next, and why."""

    rank: int
    denial_id: str
    payer_id: str | None
    carc_codes: tuple[str, ...]
    root_cause: str
    root_cause_probability: float | None
    preventable_probability: float | None
    reason: str


def to_label_row(rank: int, record: ScoreRecord, reason: str) -> ToLabelRow:
    outputs, facts = record.outputs, record.facts or {}
    return ToLabelRow(
        rank=rank,
        denial_id=record.denial_id,
        payer_id=facts.get("payer_id"),
        carc_codes=tuple(facts.get("carc_codes") or ()),
        root_cause=outputs["root_cause"]["category"],
        root_cause_probability=outputs["root_cause"].get("probability"),
        preventable_probability=outputs.get("preventable", {}).get("probability"),
        reason=reason,
    )


def to_label(session: Session, size: int) -> dict[str, Any]:
    """The scored denials with no root-cause feedback whose labels would teach the models
    most, ranked by the label queue's selection over the champion's stored scores."""
    reviewed = repository.feedback_frame(session).dropna(subset=["root_cause"])
    causes = dict(zip(reviewed["denial_id"], reviewed["root_cause"], strict=True))
    records = repository.latest_scores(session)
    open_records = [r for r in records if r.denial_id not in causes]
    labelled = [r for r in records if r.denial_id in causes]
    pool = scored_pool(
        [r.outputs for r in open_records],
        [r.facts for r in open_records],
        [r.facts for r in labelled],
        [causes[r.denial_id] for r in labelled],
    )
    picks = choose(pool, min(size, len(pool)), TO_LABEL_SEED) if open_records else []
    return {
        "rows": [
            to_label_row(rank, open_records[pick.position], pick.reason)
            for rank, pick in enumerate(picks, start=1)
        ],
        "unlabelled": len(open_records),
        "labelled": len(labelled),
        "size": size,
        "page_sizes": PAGE_SIZES,
    }


def to_label_size(params: Mapping[str, str]) -> tuple[int, list[str]]:
    """How many denials the "to label" view shows, and any problem with the asked size."""
    problems: list[str] = []
    size = _number(params, "size", PAGE_SIZES[0], PAGE_SIZES[-1], problems)
    return size or DEFAULT_PAGE_SIZE, problems


# ---------------------------------------------------------------------------- denial review


@dataclass(frozen=True)
class CodeLine:
    """One adjustment or remark code of a denial, in words."""

    code: str
    kind: str
    label: str | None
    family: str | None
    group: str | None
    official: str | None
    is_denial: bool | None
    notes: tuple[str, ...]


def code_lines(facts: Mapping[str, Any], reference: CodeReference) -> list[CodeLine]:
    """The denial's CARCs then RARCs with the project's labels and any imported official text."""
    codes = [*facts.get("carc_codes", []), *facts.get("rarc_codes", [])]
    lines = []
    for code in codes:
        described = reference.describe(code)
        lines.append(
            CodeLine(
                code=code,
                kind=str(described.kind or "unknown").upper(),
                label=described.label.label if described.label else None,
                family=described.label.family if described.label else None,
                group=described.group.name if described.group else None,
                official=described.official,
                is_denial=described.is_denial,
                notes=described.notes,
            )
        )
    return lines


@dataclass(frozen=True)
class ModelSection:
    """One model's answer with its explanation: the chart, the reasons and the arithmetic."""

    task: str
    title: str
    chart: Markup
    reasons: tuple[str, ...]
    explanation: Mapping[str, Any] | None
    figures: dict[str, Any] = field(default_factory=dict)


def model_sections(
    outputs: Mapping[str, Any], explanations: Mapping[str, Any] | None
) -> list[ModelSection]:
    """The three models' sections of the review page, each with its waterfall chart."""
    sections = []
    for task, title in TASK_TITLES.items():
        explanation = (explanations or {}).get(task)
        chart = Markup("")
        if explanation:
            explanation = stored_in_points(task, explanation, outputs[task])
            svg = explanation_waterfall_svg(
                explanation, f"waterfall-{task}", f"{title}: reasons in percentage points"
            )
            chart = inline_svg(svg)
        reasons = tuple(r["text"] for r in explanation["reasons"]) if explanation else ()
        sections.append(
            ModelSection(task, title, chart, reasons, explanation, _task_figures(task, outputs))
        )
    return sections


def _task_figures(task: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
    score = outputs[task]
    if task == "root_cause":
        ranked = sorted(score["probabilities"].items(), key=lambda item: -item[1])
        return {
            "predicted": score["category"],
            "probability": score["probability"],
            "runners_up": ranked[1:3],
            "mapped_by_codes": score["mapped_by_codes"],
        }
    if task == "recovery":
        return {
            "probability": score["probability"],
            "expected_share": score["expected_recovered_share"],
            "expected_dollars": score["expected_recovered_dollars"],
        }
    return {"probability": score["probability"], "prevention_owner": score["prevention_owner"]}


def feedback_entry(row: Feedback) -> dict[str, Any]:
    """A recorded feedback as the review page lists it."""
    if row.corrected_root_cause:
        verdict = f"corrected to {plain_label('root_cause', row.corrected_root_cause)}"
    elif row.confirmed_root_cause:
        verdict = "root cause confirmed"
    else:
        verdict = "no root-cause verdict"
    return {
        "received_at": row.received_at,
        "caller": row.caller,
        "verdict": verdict,
        "resolution": row.resolution,
        "recovered_amount": row.recovered_amount,
        "resolved_date": row.resolved_date,
        "note": row.reviewer_note,
    }


def denial_review(
    record: ScoreRecord, feedback: Sequence[Feedback], reference: CodeReference, today: dt.date
) -> dict[str, Any]:
    """Everything the review page shows about a denial's latest score."""
    outputs, facts = record.outputs, record.facts or {}
    return {
        "record": record,
        "row": worklist_row(record, today),
        "facts": facts,
        "codes": code_lines(facts, reference),
        "sections": model_sections(outputs, record.explanation),
        # Counted on the page's day, as the worklist row is (one date per page).
        "priority": live.priority_on_day(outputs["priority"], today),
        "routing": outputs["routing"],
        "preventable": outputs["preventable"],
        "unseen_codes": outputs.get("unseen_codes", []),
        "feedback": [feedback_entry(row) for row in feedback],
        "root_causes": ROOT_CAUSES,
        "resolutions": RESOLUTIONS,
    }


# ---------------------------------------------------------------------------- dashboard


def code_family(adjustment: str | None) -> str:
    """The usual root cause of a primary adjustment code, per the project's labels."""
    if not adjustment:
        return "unknown"
    label = load_labels(CodeKind.CARC).get(split_adjustment(adjustment)[1])
    return label.family if label and label.family else "unlabelled code"


def deadline_kind(rule: str | None) -> str:
    """``payer:87726.timely_filing`` -> ``filing``; ``commercial.appeal`` -> ``appeal``."""
    if rule and rule.endswith(".appeal"):
        return "appeal"
    if rule and rule.endswith(".timely_filing"):
        return "filing"
    return "other"


def _summed(totals: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """Totals re-added by one key (none as "unknown"), largest volume first."""
    sums: dict[Any, dict[str, Any]] = {}
    for row in totals:
        key = "unknown" if row[by] is None else row[by]
        measures = [name for name in worklist_records.MEASURES if name in row]
        added = sums.setdefault(key, {by: key, **dict.fromkeys(measures, 0)})
        for name in measures:
            added[name] += row[name] or 0
    return sorted(sums.values(), key=lambda row: (-row["denials"], str(row[by])))


def _deadline_table(totals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open denials by kind of governing deadline (appeal or filing) and window, every window
    of each kind shown, empty ones as zero."""
    measures = ("denials", "denied_dollars", "expected_dollars")
    sums: dict[tuple[str, str], dict[str, float]] = {}
    for row in totals:
        key = (deadline_kind(row["deadline_rule"]), row["deadline_window"])
        added = sums.setdefault(key, dict.fromkeys(measures, 0))
        for name in measures:
            added[name] += row[name] or 0
    found_windows = {window for _, window in sums}
    windows = [w for w in WINDOW_ORDER if w != "unknown" or w in found_windows]
    return [
        {
            "kind": kind,
            "deadline_window": window,
            **sums.get((kind, window), dict.fromkeys(measures, 0)),
        }
        for kind in sorted({kind for kind, _ in sums})
        for window in windows
    ]


def _every_bucket(totals: list[dict[str, Any]], key: str, order: Sequence[str]) -> list[dict]:
    """Totals by bucket in ``order``, a bucket no denial falls in shown as zero ("unknown"
    only when some denial is in it)."""
    found = {row[key]: row for row in totals}
    empty = {"denials": 0, "denied_dollars": 0.0, "expected_dollars": 0.0}
    return [
        found.get(name, {key: name, **empty})
        for name in order
        if name != "unknown" or name in found
    ]


def _upcoming(windows: list[dict[str, Any]], *names: str) -> dict[str, float]:
    chosen = [row for row in windows if row["deadline_window"] in names]
    return {
        "denials": sum(row["denials"] for row in chosen),
        "denied_dollars": sum(row["denied_dollars"] for row in chosen),
    }


def _added(rows: list[dict[str, Any]], measures: Sequence[str]) -> dict[str, float]:
    """The ``measures`` of ``rows`` added up."""
    return {name: sum(row[name] for row in rows) for name in measures}


# What the dashboard shows of each total: a volume's table has no use for review flags, and
# every measure left out is a sum fewer over every denial.
SHOWN = ("denials", "denied_dollars", "expected_dollars")


def dashboard(session: Session, today: dt.date) -> dict[str, Any]:
    """The leaders' dashboard: volumes, dollars, aging, deadlines, prevention and outcomes.

    Five scans of covering indexes: causes with their prevention owners (which also give the
    prevention totals and the overall ones), payers, codes, and the open denials' ages and
    deadlines (whose ages also give the open totals)."""
    totals = worklist_records.latest_totals
    by_cause = totals(
        session,
        ["month", "root_cause", "prevention_owner"],
        today=today,
        measures=(*SHOWN, "preventable"),
    )
    by_payer = totals(session, ["month", "payer"], today=today, measures=SHOWN)
    by_code = [
        {**row, "code_family": code_family(row["primary_code"])}
        for row in totals(session, ["month", "primary_code"], today=today, measures=SHOWN)
    ]
    by_age = totals(session, ["age"], today=today, open_only=True, measures=SHOWN)
    windows = totals(
        session, ["deadline_rule", "deadline_window"], today=today, open_only=True, measures=SHOWN
    )
    aging = _every_bucket(by_age, "age", AGE_ORDER)
    prevention = _summed(by_cause, "prevention_owner")
    return {
        "today": today,
        "overall": _added(by_cause, SHOWN),
        "open": _added(by_age, SHOWN),
        "due_7": _upcoming(windows, "within 7 days"),
        "due_30": _upcoming(windows, "within 7 days", "in 8-30 days"),
        "passed": _upcoming(windows, "passed"),
        "volume": {
            "root_cause": _volume(by_cause, "root_cause", "Denials by root cause and month"),
            "payer": _volume(by_payer, "payer", "Denials by payer and month"),
            "code_family": _volume(by_code, "code_family", "Denials by code family and month"),
        },
        "aging": aging,
        "aging_chart": _bars(
            aging, "age", "denied_dollars", "aging", "Open denied dollars by age", None
        ),
        "deadlines": _deadline_table(windows),
        "prevention": prevention,
        "prevention_chart": _bars(
            prevention,
            "prevention_owner",
            "preventable",
            "prevention",
            "Expected preventable",
            "prevention_owner",
        ),
        "outcomes": repository.outcome_totals(session),
        "reviews": repository.root_cause_reviews(session),
    }


def _volume(rows: list[dict[str, Any]], key: str, title: str) -> dict[str, Any]:
    element_id = f"volume-{key.replace('_', '-')}"
    return {
        "title": title,
        "key": key,
        "chart": inline_svg(charts.monthly_volume_svg(rows, key, element_id, title)),
        "table": _summed(rows, key),
    }


def _bars(
    rows: list[dict[str, Any]], key: str, value: str, name: str, title: str, kind: str | None
) -> Markup:
    """A bar per row, labelled in plain words (``kind`` of :func:`plain_label`, or as is)."""
    labels = [plain_label(kind, row[key]) if kind else str(row[key]) for row in rows]
    values = [float(row[value] or 0) for row in rows]
    unit = "dollars" if value.endswith("dollars") else "denials"
    return inline_svg(charts.bars_svg(labels, values, f"bars-{name}", title, unit))


# ---------------------------------------------------------------------------- monitoring

MONTHS_CHARTED = 3  # the newest matured months' reliability curves drawn beside training's


def monitoring_since(params: Mapping[str, str]) -> tuple[dt.date | None, list[str]]:
    """The page's ``since`` filter (YYYY-MM-DD), or a problem to show."""
    text = (params.get("since") or "").strip()
    if not text:
        return None, []
    try:
        return dt.date.fromisoformat(text), []
    except ValueError:
        return None, [f"since: {text[:20]!r} is not a date (YYYY-MM-DD)"]


def monitoring(
    session: Session,
    champion: monitoring_records.Champion | None,
    settings: Any,
    since: dt.date | None,
) -> dict[str, Any]:
    """The monitoring page: figures per month and payer type beside training's, the
    reliability chart, drift and the recommendation."""
    result = monitoring_records.monitor_models(
        session,
        report=None if champion is None else champion.report,
        version=None if champion is None else champion.version,
        reference=None if champion is None else champion.reference,
        thresholds=monitoring_records.Thresholds.from_settings(settings),
        since=since,
        recent_days=settings.monitoring_recent_days,
        drift_rows=settings.monitoring_drift_rows,
    )
    return {"result": result, "chart": inline_svg(reliability_chart(result))}


def reliability_chart(result: monitoring_records.ModelMonitoring) -> str:
    """Training's reliability curve and the newest matured months' over every payer type (a
    maturing month's curve shows its quick outcomes, not the model)."""
    curves: dict[str, list[dict[str, Any]]] = {}
    if result.training is not None and result.training.reliability:
        curves["training (test months)"] = [asdict(b) for b in result.training.reliability]
    months = [
        s
        for s in result.segments
        if s.payer_type == monitoring_records.ALL_PAYER_TYPES and not s.maturing
    ]
    for segment in months[:MONTHS_CHARTED]:
        curves[segment.month] = [asdict(b) for b in segment.reliability]
    return charts.reliability_svg(curves, "reliability", "Recovery calibration: reliability")
