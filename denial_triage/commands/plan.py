"""``denial-triage plan``: today's plan per owner queue, from the service's latest scores."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Annotated

import typer

from denial_triage.commands.db import open_session
from denial_triage.commands.failure import fail
from denial_triage.settings import get_settings
from features.mapping import MappingError, load_mapping
from serving import live, repository
from serving.plan import DailyPlan, QueuePlan, daily_plan


def plan(
    hours: Annotated[
        float, typer.Option(min=0.01, help="Hours each planned owner queue has today.")
    ],
    queue: Annotated[
        list[str] | None,
        typer.Option(help="Owner queue to plan (repeat for several); none: every queue."),
    ] = None,
    date: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Plan as of this day (YYYY-MM-DD), not today."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Per owner queue, the open workable denials to work today in priority order while
    their effort hours fit the queue's hours (priority counted on today's date, or --date)."""
    day = date.date() if date else live.today()
    queues = list(queue or [])
    _check_queues(queues)
    with open_session() as session:
        records = repository.open_latest_scores(session, queues)
    result = daily_plan(records, hours=hours, day=day, queues=queues)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(result), default=str, indent=2))
    else:
        typer.echo(_text(result, counted_on_today=date is None))


def _check_queues(queues: list[str]) -> None:
    """Refuse a queue the effective mapping does not declare (a typo would plan nothing)."""
    try:
        known = load_mapping(get_settings().mapping_overrides).owner_queues
    except MappingError as exc:
        fail(f"the mapping cannot be read: {exc}", exc)
    for name in queues:
        if name not in known:
            fail(f"--queue {name!r} is not an owner queue; use one of {', '.join(known)}")


def _text(result: DailyPlan, *, counted_on_today: bool) -> str:
    source = "today" if counted_on_today else "the date given"
    lines = [
        f"Plan for {result.counted_from} ({source}), {result.hours_per_queue:g} hours a queue; "
        f"{result.past_every_deadline:,} open denials past every deadline go to write-off review"
    ]
    for queue_plan in result.queues:
        lines += _queue_text(queue_plan)
    if not result.queues:
        lines.append("no open workable denials in the service's latest scores")
    return "\n".join(lines)


def _queue_text(queue_plan: QueuePlan) -> list[str]:
    lines = [
        "",
        f"{queue_plan.owner_queue}: {len(queue_plan.denials):,} of {queue_plan.open_workable:,} "
        f"open workable denials in {queue_plan.hours_planned:g} of "
        f"{queue_plan.hours_available:g} hours, ${queue_plan.expected_net_dollars:,.2f} expected "
        f"net ({queue_plan.not_worth_the_work:,} cost more to work than they return)",
    ]
    lines += [
        f"  {d.denial_id}  {d.priority_score:>10,.2f} $/h  ${d.expected_net_dollars:>10,.2f} net  "
        f"{d.effort_hours:g} h  {d.action_path}  deadline {d.deadline} ({d.days_to_deadline} days)"
        for d in queue_plan.denials
    ]
    return lines
