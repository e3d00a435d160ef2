"""``denial-triage keys``: API keys of the triage service. Keys are stored hashed."""

from __future__ import annotations

from typing import Annotated

import typer

from denial_triage.commands.db import open_session
from denial_triage.commands.failure import fail
from serving.records import ApiKey, Role
from serving.repository import (
    KeyNameTaken,
    KeyNotFound,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)

app = typer.Typer(
    help="API keys for the triage service: create, list, revoke.", no_args_is_help=True
)


@app.command("create")
def create_command(
    role: Annotated[
        Role,
        typer.Option(
            case_sensitive=False, help="scorer (score, ingest), reviewer (read, feedback), admin."
        ),
    ],
    name: Annotated[str, typer.Option(help="Who or what uses the key; shown in the audit log.")],
) -> None:
    """Create a key and print it once."""
    with open_session() as session:
        try:
            key, row = create_api_key(session, role.value, name)
        except (KeyNameTaken, ValueError) as exc:
            fail(f"{exc}.", exc)
    typer.echo(key)
    typer.echo(
        f"Key {row.id} '{row.name}' ({row.role}) created. Store it now: it cannot be shown "
        "again, only revoked and replaced.",
        err=True,  # keeps stdout to the key alone, for scripts
    )


@app.command("list")
def list_command() -> None:
    """List keys: id, name, role, public id, created and revoked times (never the keys)."""
    with open_session() as session:
        rows = list_api_keys(session)
    if not rows:
        typer.echo(
            "No keys yet: create one with `denial-triage keys create --role ... --name ...`."
        )
        return
    typer.echo(format_keys(rows))


@app.command("revoke")
def revoke_command(
    name_or_id: Annotated[str, typer.Argument(help="The key's name, or its id from `keys list`.")],
) -> None:
    """Revoke a key; requests with it are refused from now on, and its page sessions end."""
    with open_session() as session:
        try:
            row = revoke_api_key(session, name_or_id)
        except KeyNotFound as exc:
            fail(f"{exc.args[0]}; see `denial-triage keys list`.", exc)
    typer.echo(
        f"Key {row.id} '{row.name}' revoked at {row.revoked_at:%Y-%m-%d %H:%M:%S} UTC; "
        "its page sessions are ended."
    )


def format_keys(rows: list[ApiKey]) -> str:
    """Keys as an aligned plain-text table."""
    header = ("id", "name", "role", "key id", "created (UTC)", "revoked (UTC)")
    table = [header] + [
        (
            str(row.id),
            row.name,
            row.role,
            f"dt_{row.key_prefix}_...",
            f"{row.created_at:%Y-%m-%d %H:%M}",
            f"{row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "-",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    )
