"""Secrets of a site: set in the settings, or generated once into the data directory.

A generated secret is written atomically and never replaced (the first replica to start wins;
the others read it), so every replica sharing the data directory agrees on it. Files are 0600.
"""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

MIN_SECRET_CHARACTERS = 32


def site_secret(configured: str | None, path: Path, variable: str) -> str:
    """``configured`` when set, else the secret kept at ``path`` (generated when missing);
    ``variable`` names the setting in the error for a secret too short to trust."""
    if configured:
        return configured
    if not path.exists():
        _write_new_secret(path)
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < MIN_SECRET_CHARACTERS:
        raise ValueError(
            f"{path} holds a secret shorter than {MIN_SECRET_CHARACTERS} characters; "
            f"delete the file to have one generated, or set {variable}"
        )
    return secret


def _write_new_secret(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(48))
    try:
        os.link(staging, path)  # atomic, and never replaces a secret another replica wrote
    except FileExistsError:
        pass
    finally:
        staging.unlink()
