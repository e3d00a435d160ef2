"""How every command fails: one line ``error: ...`` on stderr, then exit status 1."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str, cause: BaseException | None = None) -> NoReturn:
    """Print ``error: message`` on stderr and exit 1, chained to ``cause`` when one is given."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1) from cause
