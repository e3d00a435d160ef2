"""The ``denial-triage`` console command: thin sub-commands over plain functions."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="denial-triage",
    help="Triage medical billing denials: root cause, recovery likelihood, preventability.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
