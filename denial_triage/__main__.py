"""``python -m denial_triage`` runs the same command as ``denial-triage``."""

from denial_triage.cli import app

app()
