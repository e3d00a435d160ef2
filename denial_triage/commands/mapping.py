"""Mapping commands: governance checks and a readable view of the effective code mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from denial_triage.commands.failure import fail
from denial_triage.settings import get_settings
from features.mapping import MappingError, check_mapping, load_mapping

app = typer.Typer(help="The governed CARC/RARC to root-cause mapping.", no_args_is_help=True)


@app.command()
def check(
    overrides: Annotated[
        Path | None,
        typer.Option(help="Site override file [default: DENIAL_TRIAGE_MAPPING_OVERRIDES]."),
    ] = None,
    max_age_days: Annotated[
        int | None,
        typer.Option(min=1, help="Reviews older than this are stale [default: from settings]."),
    ] = None,
) -> None:
    """Reject unknown root causes or action paths, duplicate keys and stale reviews."""
    settings = get_settings()
    problems = check_mapping(
        overrides or settings.mapping_overrides,
        max_review_age_days=max_age_days or settings.mapping_max_review_age_days,
    )
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} problem(s) found")
        raise typer.Exit(1)
    mapping = load_mapping(overrides or settings.mapping_overrides)
    typer.echo(f"mapping {mapping.stamp}: {len(mapping.routes)} entries, no problems")


@app.command()
def show(
    adjustment: Annotated[str, typer.Argument(help="Primary adjustment, e.g. CO-16.")],
    rarc: Annotated[
        list[str] | None, typer.Option("--rarc", help="Remark codes, repeatable.")
    ] = None,
) -> None:
    """Show how the effective mapping routes a denial, and which rule decides it."""
    try:
        mapping = load_mapping(get_settings().mapping_overrides)
    except MappingError as exc:
        fail(str(exc), exc)
    route = mapping.route([adjustment.upper()], [r.upper() for r in rarc or []])
    typer.echo(f"rule:        {route.rule}  (mapping {mapping.stamp})")
    typer.echo(f"root cause:  {route.root_cause}")
    typer.echo(f"action path: {route.action_path}")
    typer.echo(
        f"owner queue: {route.owner_queue}  (owner {route.owner}, reviewed {route.reviewed_on})"
    )
