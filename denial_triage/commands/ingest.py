"""Remittance commands: ingest 835 files into contract denials, link later payments to them.

Thin commands over :func:`ingest.batch.ingest` and :func:`ingest.outcomes.link_outcomes`.
Defects cost only the claim they sit in: such a claim is quarantined (``--quarantine``) and
every other claim is read; envelope defects are findings. Exit status: 0 when every file was
read (findings and quarantined claims allowed); 1 when a file failed (not an 835 at all, or,
with ``--strict``, any finding: it is reported with its segment number, and everything from
the good files is still written), or when the output or the denials table cannot be used;
2 for usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from denial_triage.commands.failure import fail
from features.contract import ContractFileError
from ingest.batch import FileOutcome, IngestReport, Validator
from ingest.batch import ingest as ingest_files
from ingest.outcomes import DenialsTableError, LinkReport
from ingest.outcomes import link_outcomes as link_files
from ingest.validate import INSTALL_PYX12, ValidatorUnavailable, pyx12_available, validate_file

TOLERATE_COUNTS_HELP = (
    "--tolerate-counts is deprecated and does nothing: wrong SE/GE/IEA counts are always "
    "findings now (use --strict to fail on them)."
)

app = typer.Typer(
    help="835 remittances: ingest denials, link outcomes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


SHOW_FINDINGS = 10  # findings printed per file
# Options both commands take.
TolerateCounts = Annotated[
    bool, typer.Option("--tolerate-counts", hidden=True, help=TOLERATE_COUNTS_HELP)
]
ShowFindings = Annotated[int, typer.Option("--show", min=0, help="Findings printed per file.")]


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="835 files, or folders of them (recursive).")],
    out: Annotated[Path, typer.Option("--out", help="Output contract table, .parquet or .csv.")],
    validate: Annotated[
        bool,
        typer.Option(
            "--validate",
            help="Run full TR3 validation with pyx12 first (slow); a file "
            "that fails it is not ingested.",
        ),
    ] = False,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            "--quarantine",
            help="Write claims that cannot be read whole here (.parquet or .csv), with the reason.",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Any finding fails its file (certifying a trading partner)."),
    ] = False,
    tolerate_counts: TolerateCounts = False,
    show: ShowFindings = SHOW_FINDINGS,
) -> None:
    """Read 835 remittances and write one contract row per denial."""
    _warn_tolerate_counts(tolerate_counts)
    if validate and not pyx12_available():  # say so before the output is touched
        fail(f"{ValidatorUnavailable.__doc__} {INSTALL_PYX12}")
    report = read_remittances(
        paths,
        out,
        validator=validate_file if validate else None,
        quarantine=quarantine,
        strict=strict,
        show=show,
    )
    if report.failed:
        raise typer.Exit(1)


def read_remittances(
    paths: list[Path],
    out: Path,
    *,
    validator: Validator | None = None,
    quarantine: Path | None = None,
    strict: bool = False,
    show: int = SHOW_FINDINGS,
) -> IngestReport:
    """Ingest ``paths`` into ``out``, printing each file as it is read and a summary; exit 1
    when the output cannot be written. Failed files are in the report (the caller decides)."""
    try:
        report = ingest_files(
            paths,
            out,
            validator=validator,
            quarantine=quarantine,
            strict=strict,
            progress=lambda outcome: _print_outcome(outcome, show),
        )
    except (ContractFileError, ValidatorUnavailable) as exc:
        fail(str(exc), exc)
    typer.echo(_ingest_summary(report, quarantine))
    return report


def link_outcomes(
    denials: Annotated[Path, typer.Option("--denials", help="Denials table from ingest.")],
    remits: Annotated[
        list[Path],
        typer.Option("--remits", help="Later 835 files or folders (list them after --remits)."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output history, .parquet or .csv.")],
    more_remits: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="MORE_REMITS",
            help="More 835 files or folders: every path after the first of --remits "
            "(--remits A B C reads all three).",
        ),
    ] = None,
    unpaid_after: Annotated[
        int | None,
        typer.Option(
            "--unpaid-after",
            min=1,
            help="Write off denials still unpaid this many days after their denial date, when the "
            "remittances read reach past that day (an 835 never says a denial will not be paid; "
            "train's --maturity-days is the span to use). Without it they stay open.",
        ),
    ] = None,
    tolerate_counts: TolerateCounts = False,
    show: ShowFindings = SHOW_FINDINGS,
) -> None:
    """Give earlier denials recovered_amount, resolution and resolved_date from later 835s."""
    _warn_tolerate_counts(tolerate_counts)
    report = link_remittances(
        denials, [*remits, *(more_remits or [])], out, unpaid_after_days=unpaid_after, show=show
    )
    if report.failed:
        raise typer.Exit(1)


def link_remittances(
    denials: Path,
    remits: list[Path],
    out: Path,
    *,
    unpaid_after_days: int | None = None,
    show: int = SHOW_FINDINGS,
) -> LinkReport:
    """Link ``remits``' later payments to ``denials`` into ``out``, printing each file and a
    summary; exit 1 when the tables cannot be used. Failed files are in the report."""
    try:
        report = link_files(
            denials,
            remits,
            out,
            unpaid_after_days=unpaid_after_days,
            progress=lambda outcome: _print_outcome(outcome, show),
        )
    except (ContractFileError, DenialsTableError) as exc:
        fail(str(exc), exc)
    typer.echo(_link_summary(report, unpaid_after_days))
    return report


app.command("ingest")(ingest)
app.command("link-outcomes")(link_outcomes)


def _warn_tolerate_counts(given: bool) -> None:
    if given:
        typer.echo(f"note: {TOLERATE_COUNTS_HELP}", err=True)


def _print_outcome(outcome: FileOutcome, show: int) -> None:
    """One line per file as it is read, then its first findings."""
    if outcome.error is not None:
        typer.echo(f"FAILED {outcome.error}", err=True)
    elif outcome.stats is not None:
        stats = outcome.stats
        duplicates = f", {outcome.duplicates} duplicates skipped" if outcome.duplicates else ""
        held = f", {stats.quarantined} quarantined" if stats.quarantined else ""
        typer.echo(
            f"ok {outcome.path}: {stats.claims} claims ({stats.denied_claims} denied, "
            f"{stats.reversals} reversals{held}), {outcome.rows_written} rows{duplicates}",
            err=True,
        )
    for finding in outcome.findings[:show]:
        typer.echo(f"  finding: {finding}", err=True)
    hidden = len(outcome.findings) - min(show, len(outcome.findings))
    hidden += outcome.suppressed_findings
    if hidden:
        typer.echo(f"  ... {hidden} more findings in {outcome.path}", err=True)


def _ingest_summary(report: IngestReport, quarantine: Path | None) -> str:
    skipped = f"; skipped {len(report.skipped)} non-remittance files" if report.skipped else ""
    held = report.total("quarantined")
    where = f" (written to {quarantine})" if quarantine is not None else " (see findings)"
    return (
        f"read {len(report.files)} files ({len(report.failed)} failed{skipped}): "
        f"{report.total('claims'):,} claims, {report.total('denied_claims'):,} denied "
        f"(CLP02 = 4), {report.total('reversals'):,} reversals, {held:,} quarantined"
        f"{where if held else ''}; wrote {report.rows_written:,} denial rows to {report.output}"
    )


def _link_summary(report: LinkReport, unpaid_after_days: int | None) -> str:
    written_off = (
        f", {report.written_off:,} written off (unpaid {unpaid_after_days} days after denial; "
        f"remittances read through {max(report.paid_through.values(), default='no date')})"
        if unpaid_after_days is not None
        else ""
    )
    return (
        f"read {len(report.files)} remittance files ({len(report.failed)} failed): "
        f"{report.recovered:,} of {report.denials:,} denials recovered "
        f"({report.recovered_amount:,.2f}){written_off}; wrote {report.output}"
    )
