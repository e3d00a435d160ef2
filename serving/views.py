"""What each page shows, built from the records as plain data for the templates.

Nothing here touches HTTP: :mod:`serving.pages` reads the request, opens a session and hands
the records to these functions. Dates are compared with ``today`` as the caller gives it, so
"days to deadline" is counted from the day the page is read, not the day the denial was scored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from markupsafe import Markup
from sqlalchemy.orm import Session

from features.adjustments import split_adjustment
from features.codes import CodeKind, CodeReference, load_labels
from features.contract import RESOLUTIONS, ROOT_CAUSES
from serving import charts, repository
from serving.records import Feedback, ScoreRecord
from serving.repository import AGE_BUCKETS, DEADLINE_WINDOWS, WorklistFilters
from serving.svg import explanation_waterfall_svg
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
AGE_ORDER = (*(name for _, name in AGE_BUCKETS), "over 120 days", "unknown")
WINDOW_ORDER = ("passed", *(name for _, name in DEADLINE_WINDOWS), "later", "unknown")


def inline_svg(svg: str) -> Markup:
    """A chart to put in a page as it is. Only for SVG drawn by matplotlib, which escapes
    every text it writes, so data shown in a chart cannot become markup."""
    return Markup(svg)


# ---------------------------------------------------------------------------- worklist


@dataclass(frozen=True)
class WorklistQuery:
    """The worklist a reviewer asked for: filters, page and page size, and what was ignored."""

    filters: WorklistFilters
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    problems: tuple[str, ...] = ()

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def url(self, **changes: object) -> str:
        """The worklist's address for this query with ``changes`` (e.g. another page)."""
        params = {
            "owner_queue": self.filters.owner_queue,
            "payer_id": self.filters.payer_id,
            "root_cause": self.filters.root_cause,
            "action_path": self.filters.action_path,
            "due_within": self.filters.due_within_days,
            "size": self.size if self.size != DEFAULT_PAGE_SIZE else None,
            "page": self.page if self.page != 1 else None,
        } | changes
        kept = {name: value for name, value in params.items() if value not in (None, "")}
        return "/ui/worklist" + (f"?{urlencode(kept)}" if kept else "")


def worklist_query(params: Mapping[str, str]) -> WorklistQuery:
    """Read the worklist's query string; a value that makes no sense is dropped and named."""
    problems: list[str] = []
    root_cause = _text(params, "root_cause", problems)
    if root_cause is not None and root_cause not in ROOT_CAUSES:
        problems.append(f"unknown root cause {root_cause!r} ignored")
        root_cause = None
    filters = WorklistFilters(
        owner_queue=_text(params, "owner_queue", problems),
        payer_id=_text(params, "payer_id", problems),
        root_cause=root_cause,
        action_path=_text(params, "action_path", problems),
        due_within_days=_number(params, "due_within", 0, MAX_DUE_WITHIN_DAYS, problems),
    )
    size = _number(params, "size", PAGE_SIZES[0], PAGE_SIZES[-1], problems)
    page = _number(params, "page", 1, 10**9, problems) or 1
    return WorklistQuery(filters, page, size or DEFAULT_PAGE_SIZE, tuple(problems))


def _text(params: Mapping[str, str], name: str, problems: list[str]) -> str | None:
    value = params.get(name, "").strip()[:MAX_FILTER_CHARACTERS]
    if "\x00" in value:  # no name or code holds one, and PostgreSQL text cannot
        problems.append(f"{name} holds a NUL character; ignored")
        return None
    return value or None


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


def worklist(session: Session, query: WorklistQuery, today: dt.date) -> dict[str, Any]:
    """Everything the worklist page shows for one query."""
    records, total = repository.worklist_page(
        session, query.filters, today=today, offset=query.offset, limit=query.size
    )
    pages = max(1, -(-total // query.size))
    return {
        "query": query,
        "rows": [worklist_row(record, today) for record in records],
        "total": total,
        "first_shown": query.offset + 1 if records else 0,
        "last_shown": query.offset + len(records),
        "pages": pages,
        "previous_url": query.url(page=query.page - 1) if query.page > 1 else None,
        "next_url": query.url(page=query.page + 1) if query.page < pages else None,
        "choices": {**repository.worklist_choices(session), "root_cause": list(ROOT_CAUSES)},
        "page_sizes": PAGE_SIZES,
    }


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
            svg = explanation_waterfall_svg(explanation, f"waterfall-{task}", f"{title}: SHAP")
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
        verdict = f"corrected to {row.corrected_root_cause}"
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
        "priority": outputs["priority"],
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


def _ordered(totals: list[dict[str, Any]], key: str, order: Sequence[str]) -> list[dict]:
    rank = {name: position for position, name in enumerate(order)}
    return sorted(totals, key=lambda row: rank.get(row[key], len(order)))


def _summed(totals: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """Totals re-added by one key, largest volume first."""
    frame = pd.DataFrame(totals)
    if frame.empty:
        return []
    measures = ["denials", "denied_dollars", "expected_dollars", "preventable", "needs_review"]
    summed = frame.groupby(by, dropna=False)[measures].sum().reset_index()
    summed[by] = summed[by].fillna("unknown")
    return summed.sort_values("denials", ascending=False).to_dict("records")


def _deadline_table(totals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open denials by kind of governing deadline (appeal or filing) and window."""
    rows = [{**row, "kind": deadline_kind(row["deadline_rule"])} for row in totals]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return []
    summed = frame.groupby(["kind", "deadline_window"])[["denials", "denied_dollars"]].sum()
    table = summed.reset_index().to_dict("records")
    return sorted(table, key=lambda r: (r["kind"], WINDOW_ORDER.index(r["deadline_window"])))


def _upcoming(windows: list[dict[str, Any]], *names: str) -> dict[str, float]:
    chosen = [row for row in windows if row["deadline_window"] in names]
    return {
        "denials": sum(row["denials"] for row in chosen),
        "denied_dollars": sum(row["denied_dollars"] for row in chosen),
    }


def dashboard(session: Session, today: dt.date) -> dict[str, Any]:
    """The leaders' dashboard: volumes, dollars, aging, deadlines, prevention and outcomes."""
    totals = repository.latest_totals
    overall = (totals(session, [], today=today) or [{}])[0]
    open_overall = (totals(session, [], today=today, open_only=True) or [{}])[0]
    by_cause = totals(session, ["month", "root_cause"], today=today)
    by_payer = totals(session, ["month", "payer_id"], today=today)
    by_code = [
        {**row, "code_family": code_family(row["primary_code"])}
        for row in totals(session, ["month", "primary_code"], today=today)
    ]
    windows = totals(session, ["deadline_rule", "deadline_window"], today=today, open_only=True)
    aging = _ordered(totals(session, ["age"], today=today, open_only=True), "age", AGE_ORDER)
    prevention = _summed(totals(session, ["prevention_owner"], today=today), "prevention_owner")
    return {
        "today": today,
        "overall": overall,
        "open": open_overall,
        "due_7": _upcoming(windows, "within 7 days"),
        "due_30": _upcoming(windows, "within 7 days", "in 8-30 days"),
        "passed": _upcoming(windows, "passed"),
        "volume": {
            "root_cause": _volume(by_cause, "root_cause", "Denials by root cause and month"),
            "payer": _volume(by_payer, "payer_id", "Denials by payer and month"),
            "code_family": _volume(by_code, "code_family", "Denials by code family and month"),
        },
        "aging": aging,
        "aging_chart": _bars(aging, "age", "denied_dollars", "aging", "Open denied dollars by age"),
        "deadlines": _deadline_table(windows),
        "prevention": prevention,
        "prevention_chart": _bars(
            prevention, "prevention_owner", "preventable", "prevention", "Expected preventable"
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


def _bars(rows: list[dict[str, Any]], key: str, value: str, name: str, title: str) -> Markup:
    labels = [str(row[key]) for row in rows]
    values = [float(row[value] or 0) for row in rows]
    unit = "dollars" if value.endswith("dollars") else "denials"
    return inline_svg(charts.bars_svg(labels, values, f"bars-{name}", title, unit))
