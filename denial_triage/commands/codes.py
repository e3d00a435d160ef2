"""``denial-triage codes``: import the official CARC/RARC lists and look codes up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from denial_triage.commands.failure import fail
from denial_triage.settings import get_settings
from features.codes import (
    CodeDescription,
    CodeKind,
    CodeListError,
    CodeReference,
    ImportSummary,
    import_code_list,
)

app = typer.Typer(
    help="CARC/RARC codes: the project's labels, plus official texts you import.",
    no_args_is_help=True,
)
MAX_LISTED_MISSING = 30


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A code,description CSV of the official list.")],
    kind: Annotated[
        CodeKind | None,
        typer.Option(
            "--kind",
            case_sensitive=False,
            help="carc or rarc; detected from the codes if left out.",
        ),
    ] = None,
) -> None:
    """Import an official CARC or RARC list into the local data directory."""
    try:
        summary = import_code_list(file, get_settings().codes_dir, kind)
    except CodeListError as exc:
        fail(f"{exc}\nNothing was imported.", exc)
    typer.echo(format_summary(summary))


@app.command("show")
def show_command(
    codes: Annotated[list[str], typer.Argument(help="Codes such as CO-197, 197, N54.")],
) -> None:
    """Show the label, group code meaning, denial status and official text of codes."""
    reference = CodeReference(get_settings().codes_dir)
    descriptions = [reference.describe(code) for code in codes]
    typer.echo("\n\n".join(format_description(d) for d in descriptions))
    # A malformed code is a usage error scripts should notice; an unlabelled real code is not.
    if any(d.kind is None for d in descriptions):
        raise typer.Exit(1)


def format_summary(summary: ImportSummary) -> str:
    """Plain-text report of an import."""
    name = summary.kind.upper()
    lines = [
        f"Imported {summary.count} {name} codes into {summary.path}.",
        f"Covers {summary.covered} of the project's {summary.labelled} labelled {name}s.",
    ]
    if summary.missing_labelled:
        missing = summary.missing_labelled
        listed = ", ".join(missing[:MAX_LISTED_MISSING])
        more = (
            f" and {len(missing) - MAX_LISTED_MISSING} more"
            if len(missing) > MAX_LISTED_MISSING
            else ""
        )
        lines.append(f"Labelled {name}s missing from the official list: {listed}{more}.")
    return "\n".join(lines)


def format_description(description: CodeDescription) -> str:
    """Plain-text description of one code."""
    if description.kind is None:
        return "\n".join([description.query, *(f"  note:     {n}" for n in description.notes)])
    label = description.label
    lines = [
        f"{description.query}  ({description.kind.upper()} {description.code})",
        f"  label:    {label.label if label else '(no project label)'}",
    ]
    if label is not None and label.family is not None:
        lines.append(f"  family:   {label.family}")
    if description.kind is CodeKind.CARC:
        lines.extend(_adjustment_lines(description))
    official = description.official or "(not imported; run `denial-triage codes import FILE`)"
    lines.append(f"  official: {official}")
    lines.extend(f"  note:     {note}" for note in description.notes)
    return "\n".join(lines)


def _adjustment_lines(description: CodeDescription) -> list[str]:
    group = description.group
    if group is None:
        return ["  denial:   depends on the group code (ask for e.g. CO-197)"]
    denial = "yes" if description.is_denial else "no, routine adjustment of a paid claim"
    return [f"  group:    {group.code} {group.name}: {group.meaning}", f"  denial:   {denial}"]
