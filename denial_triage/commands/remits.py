"""The main job on a site's own 835 files: ingest, link outcomes, train, promote, serve.

``denial-triage quickstart --remits DIR`` is a thin shell over :func:`quickstart_from_remits`,
which chains the plain functions behind ``ingest``, ``link-outcomes``, ``train`` and
``promote`` with their own defaults. Everything it writes stays under the data directory
(``history/remits/``): the denials read, the quarantined claims, the findings and the linked
history, which is kept when training cannot start so that it can be trained later.

Remittances carry codes and payments, never a root cause or a preventability verdict, so such
a history trains the recovery model only; root cause and preventable come from reviewers
(feedback, then ``train --include-feedback``). An 835 never says that a denial will not be
paid: denials still unpaid once training's maturity span has passed are written off (see
:func:`ingest.outcomes.write_off_unpaid`), else the recovery model would see only recoveries.

When the recovery model cannot be fitted the job stops before training, and does not serve:
every score's priority is the recovery model's expected recovered dollars
(:func:`training.fit.fit_triage_model` requires it), and promotion measures it on test months
that such a history does not have, so there would be nothing measured to serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import typer

from denial_triage.commands import serve
from denial_triage.commands.failure import fail
from denial_triage.commands.ingest import link_remittances, read_remittances
from denial_triage.commands.train import promote_and_report, train_and_report
from denial_triage.settings import get_settings
from ingest.batch import IngestReport
from training.fit import LabelCount, label_counts, recovered_target, resolved_rows
from training.run import TrainingDataError, TrainingOptions, load_history, split_history
from training.specs import ModelSpec, load_specs
from training.tracking import CHAMPION, alias_version, configure_tracking


class NotEnoughHistory(TrainingDataError):
    """The linked history cannot train the recovery model; the message gives its counts."""


@dataclass(frozen=True)
class SiteFiles:
    """What the job writes for a site's remittances, in one folder of the data directory."""

    denials: Path  # ingest's table: one row per denial read
    quarantine: Path  # claims that could not be read whole, with the reason
    findings: Path  # every finding of ingest, one a line, as printed
    history: Path  # the denials with the outcomes later remittances show

    @classmethod
    def under(cls, folder: Path) -> SiteFiles:
        return cls(
            folder / "denials.parquet",
            folder / "quarantine.parquet",
            folder / "findings.txt",
            folder / "history.parquet",
        )


def site_files() -> SiteFiles:
    return SiteFiles.under(get_settings().history_dir / "remits")


def quickstart_from_remits(remits: Path, *, seed: int, start_service: bool) -> None:
    """From the 835 files under ``remits`` alone: ingest, link outcomes, train what the labels
    allow, promote and (``start_service``) serve. Exits 1, naming what is missing, when a file
    cannot be read, when the history cannot train the recovery model (the history is kept) or
    when no champion results."""
    if not remits.is_dir():
        fail(f"{remits}: not a folder of 835 files")
    files = site_files()
    files.history.parent.mkdir(parents=True, exist_ok=True)
    options = TrainingOptions(data=files.history, data_dir=get_settings().data_dir, seed=seed)
    _ingest(remits, files)
    _link(remits, files, options)
    try:
        require_recovery_history(options)
    except NotEnoughHistory as exc:
        typer.echo(f"error: {exc}", err=True)
        typer.echo(f"the history is kept: {files.history}", err=True)
        raise typer.Exit(1) from exc
    train_and_report(options)
    promote_and_report(options)
    configure_tracking(options.data_dir)
    if alias_version(CHAMPION) is None:
        fail(
            "no champion to serve: the model's gates fail on this history (above); "
            f"more remittances make a steadier model. The history is kept: {files.history}"
        )
    if start_service:
        serve.serve_with_sample(files.history)


def _ingest(remits: Path, files: SiteFiles) -> None:
    report = read_remittances([remits], files.denials, quarantine=files.quarantine)
    count = write_findings(report, files.findings)
    typer.echo(f"{count:,} findings written to {files.findings}")
    if report.failed:
        names = ", ".join(str(outcome.path) for outcome in report.failed)
        fail(
            f"{len(report.failed)} files could not be read as 835s ({names}); their "
            "claims would be missing from the history: move them out of the folder, or run "
            "`denial-triage ingest` and `link-outcomes` yourself"
        )


def _link(remits: Path, files: SiteFiles, options: TrainingOptions) -> None:
    # The same files are the later remittances: a payment counts only after its denial.
    report = link_remittances(
        files.denials, [remits], files.history, unpaid_after_days=options.maturity_days
    )
    if report.failed:  # read once already by ingest, so only a file changed meanwhile
        fail(f"{len(report.failed)} files failed while linking outcomes")


def write_findings(report: IngestReport, path: Path) -> int:
    """Every finding of ``report`` (and each failed file's error) to ``path``, one a line, in
    the words ingest prints; returns how many were written. Findings quote no PHI."""
    lines = []
    for outcome in report.files:
        if outcome.error is not None:
            lines.append(f"FAILED {outcome.error}")
        lines.extend(str(finding) for finding in outcome.findings)
        if outcome.suppressed_findings:
            lines.append(f"{outcome.path}: {outcome.suppressed_findings} more findings not kept")
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return len(lines)


def require_recovery_history(options: TrainingOptions) -> dict[str, LabelCount]:
    """Per model, the labels the history at ``options.data`` offers training (``train``
    prints them); :class:`NotEnoughHistory`, with the history's counts and what is needed,
    when the recovery model cannot be fitted."""
    frame = load_history(options.data)
    if frame.empty:
        raise NotEnoughHistory(f"{_outcomes(frame, options)}. {_what_to_do(options)}")
    specs = load_specs()
    try:
        train_rows, _, _ = split_history(frame, options)
    except ValueError as exc:
        raise NotEnoughHistory(_too_few(frame, options, specs, str(exc))) from exc
    counts = label_counts(train_rows, specs)
    if not counts["recovery"].enough:
        raise NotEnoughHistory(_too_few(frame, options, specs, counts["recovery"].message()))
    return counts


def _too_few(
    frame: pd.DataFrame, options: TrainingOptions, specs: dict[str, ModelSpec], why: str
) -> str:
    return (
        f"{_outcomes(frame, options)}. The recovery model, which every score rests on, learns "
        f"from resolved denials older than the {options.test_months} test months and the last "
        f"{options.maturity_days} days, and needs {specs['recovery'].min_labels:,} of them "
        f"(min_labels, models/recovery.yaml), recovered and not; here {why}. "
        f"{_what_to_do(options)}"
    )


def _outcomes(frame: pd.DataFrame, options: TrainingOptions) -> str:
    """The history's size, span and outcomes in one sentence."""
    if frame.empty:
        return f"{options.data} holds no denial"
    dates = pd.to_datetime(frame["denial_date"])
    resolved = resolved_rows(frame)
    recovered = int((resolved & recovered_target(frame)).sum())
    return (
        f"{options.data} holds {len(frame):,} denials dated {dates.min().date()} to "
        f"{dates.max().date()}: {int(resolved.sum()):,} resolved ({recovered:,} recovered, "
        f"{int(resolved.sum()) - recovered:,} not), {int((~resolved).sum()):,} still open"
    )


def _what_to_do(options: TrainingOptions) -> str:
    return (
        "Add more of the site's 835 files (a year or more, with the later payments) and run "
        f"again, or train this history once it has grown: denial-triage train --data "
        f"{options.data}"
    )
