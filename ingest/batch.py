"""Ingest many remittance files into one contract table, file by file, in bounded memory.

A file's rows reach the output only once the whole file has parsed (envelope counts are known
only at the end). Rows of a file wait in memory up to ``chunk_rows``, then in pickled chunks
in a temporary folder beside the output, so a file of any size is held in bounded memory.

Defects do not cost good claims: a claim that cannot be read whole is quarantined (written to
the ``quarantine`` table when one is given, with its reason) and every other claim of the file
is read; envelope defects are findings. A file fails only when it is not an 835 at all, or,
with ``strict``, when it has any finding (for those who certify trading partners). A failed
file is reported and skipped; the others are written.

Every chunk passes through :func:`features.contract.validate` before it is written. A row the
contract refuses is reported as a finding with its file and segment and left out; the table
written is always contract-valid. A denial already written (same id: the same remittance
ingested twice) is counted as a duplicate and not written again.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.contract import DenialWriter, validate
from ingest.denials import CONTRACT_ROW_COLUMNS, could_be_denial, denial_rows, quarantine_row
from ingest.errors import Finding, RemittanceError
from ingest.remit835 import FindingLog, ParseStats, Quarantined, RemittanceParser

CHUNK_ROWS = 10_000  # rows of a file held in memory before spilling; bounds peak memory
# Extensions that are clearly not remittances; skipped (and listed) when reading a folder.
NOT_REMITTANCES = frozenset(
    {".csv", ".tsv", ".parquet", ".md", ".json", ".yaml", ".yml", ".html", ".pdf", ".zip"}
    | {".gz", ".py", ".pkl", ".xlsx", ".log"}
)
# Columns written beyond the contract, with the dtype that keeps every chunk's schema equal.
EXTRA_COLUMNS: dict[str, str] = {
    "denial_level": "str",
    "line_number": "Int64",
    "primary_denial_code": "str",
    "carc_amounts": "object",
    "payer_name": "str",
    "payer_claim_number": "str",
    "claim_status": "str",
    "claim_filing_indicator": "str",
    "claim_frequency": "str",
    "service_end_date": "datetime64[s]",
    "remittance_trace": "str",
    "source_file": "str",
    "segment_number": "int64",
}
ROW_COLUMNS = CONTRACT_ROW_COLUMNS + tuple(EXTRA_COLUMNS)
QUARANTINE_COLUMNS = (*ROW_COLUMNS, "quarantine_reason")


@dataclass
class FileOutcome:
    """What became of one input file."""

    path: Path
    stats: ParseStats | None = None
    rows_written: int = 0
    duplicates: int = 0
    error: RemittanceError | None = None
    findings: list[Finding] = field(default_factory=list)
    suppressed_findings: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class IngestReport:
    """The outcome of one ingest run, file by file."""

    output: Path
    files: list[FileOutcome] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[FileOutcome]:
        return [outcome for outcome in self.files if not outcome.ok]

    @property
    def rows_written(self) -> int:
        return sum(outcome.rows_written for outcome in self.files)

    def total(self, statistic: str) -> int:
        """Sum of one :class:`ParseStats` field over the files that parsed."""
        return sum(getattr(o.stats, statistic) for o in self.files if o.stats is not None)


Validator = Callable[[Path], list[Finding]]
Progress = Callable[[FileOutcome], None]


def find_remittances(paths: Iterable[Path | str]) -> tuple[list[Path], list[Path]]:
    """Files to read: each file given, and every file under each folder given (recursively,
    sorted, hidden files left out). Returns ``(files, skipped)``; ``skipped`` are folder files
    whose extension says they are not remittances (a manifest, a README)."""
    files: list[Path] = []
    skipped: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            if any(part.startswith(".") for part in child.relative_to(path).parts):
                continue
            (skipped if child.suffix.lower() in NOT_REMITTANCES else files).append(child)
    return files, skipped


def ingest(
    paths: Iterable[Path | str],
    out: Path | str,
    *,
    validator: Validator | None = None,
    quarantine: Path | str | None = None,
    strict: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> IngestReport:
    """Read remittance files and folders into one contract table at ``out``.

    ``validator`` (e.g. :func:`ingest.validate.validate_file`) runs first on each file; a file
    it finds fault with is reported and not ingested. Claims that cannot be read whole go to
    the ``quarantine`` table (same columns and a ``quarantine_reason``) when it is given.
    ``strict`` fails every file that has a finding.
    """
    files, skipped = find_remittances(paths)
    report = IngestReport(Path(out), skipped=skipped)
    writer, held = DenialWriter(Path(out)), _QuarantineTable(quarantine)  # paths checked
    with ExitStack() as stack:
        stack.enter_context(writer)
        stack.enter_context(held)
        with tempfile.TemporaryDirectory(prefix=".ingest-", dir=Path(out).parent) as spill:
            run = _Run(writer, held, Path(spill), validator, strict, chunk_rows)
            for path in files:
                outcome = run.ingest_file(path)
                report.files.append(outcome)
                if progress is not None:
                    progress(outcome)
        if writer.rows_written == 0:
            writer.write(contract_frame([], FindingLog(Path(out))))  # an empty, typed table
    return report


class _QuarantineTable:
    """The quarantine table, when asked for: contract-shaped rows of the claims that could
    not be read whole, with the reason. Always written, empty when nothing was quarantined,
    so that a run's quarantine never shows an earlier run's claims."""

    def __init__(self, path: Path | str | None) -> None:
        self.writer = DenialWriter(Path(path)) if path is not None else None

    def __enter__(self) -> _QuarantineTable:
        if self.writer is not None:
            self.writer.__enter__()
        return self

    def write(self, claims: list[Quarantined]) -> None:
        if self.writer is not None and claims:
            self.writer.write(quarantine_frame([quarantine_row(claim) for claim in claims]))

    def __exit__(self, *exc_info: object) -> None:
        if self.writer is None:
            return
        if self.writer.rows_written == 0 and exc_info[0] is None:
            self.writer.write(quarantine_frame([]))
        self.writer.__exit__(*exc_info)


@dataclass
class _Run:
    """One ingest run: where rows go, and the ids already written (to skip copies)."""

    writer: DenialWriter
    quarantine: _QuarantineTable
    spill: Path
    validator: Validator | None
    strict: bool
    chunk_rows: int
    committed: set[int] = field(default_factory=set)
    files_read: int = 0

    def ingest_file(self, path: Path) -> FileOutcome:
        """Read one file; its rows (and quarantined claims) are written once all of it has
        read, and, with ``strict``, only when it has no finding."""
        self.files_read += 1
        outcome = FileOutcome(path)
        if self.validator is not None and self._vetoed(outcome):
            return outcome
        quarantined: list[Quarantined] = []
        parser = RemittanceParser(path, on_quarantine=quarantined.append)
        stage = _FileStage(self.spill / f"file{self.files_read}", self.committed, self.chunk_rows)
        try:
            for claim in parser.claims(screen=could_be_denial):
                for row in denial_rows(claim, parser.findings):
                    stage.add(row, parser.findings)
            outcome.stats = parser.stats
            if self.strict:
                _refuse_findings(parser.findings)
            outcome.rows_written = stage.commit(self.writer, parser.findings)
            self.quarantine.write(quarantined)
        except RemittanceError as error:
            outcome.error = error
        finally:
            stage.discard()
        outcome.duplicates = stage.duplicates
        outcome.findings = parser.findings.items
        outcome.suppressed_findings = parser.findings.suppressed
        return outcome

    def _vetoed(self, outcome: FileOutcome) -> bool:
        assert self.validator is not None
        problems = self.validator(outcome.path)
        if problems:
            outcome.findings = problems
            message = f"TR3 validation failed ({len(problems)} issues)"
            outcome.error = RemittanceError(outcome.path, problems[0].segment_number, message)
        return bool(problems)


def _refuse_findings(findings: FindingLog) -> None:
    """``--strict``: a file with any finding fails, named by its first finding."""
    count = len(findings.items) + findings.suppressed
    if count:
        first = findings.items[0]
        more = f" (and {count - 1} more findings)" if count > 1 else ""
        raise RemittanceError(first.file, first.segment_number, f"strict: {first.message}{more}")


class _FileStage:
    """Rows of one file waiting for the file to finish: in memory, then spilled to disk."""

    def __init__(self, spill_prefix: Path, committed: set[int], chunk_rows: int) -> None:
        self.spill_prefix = spill_prefix
        self.committed = committed
        self.chunk_rows = max(1, chunk_rows)
        self.rows: list[dict[str, object]] = []
        self.spilled: list[Path] = []
        self.ids: set[int] = set()
        self.duplicates = 0

    def add(self, row: dict[str, object], findings: FindingLog) -> None:
        key = int(str(row["denial_id"])[1:], 16)
        if key in self.committed or key in self.ids:
            self.duplicates += 1
            return
        self.ids.add(key)
        self.rows.append(row)
        if len(self.rows) >= self.chunk_rows:
            chunk = self.spill_prefix.with_name(f"{self.spill_prefix.name}.{len(self.spilled)}")
            contract_frame(self.rows, findings).to_pickle(chunk)
            self.spilled.append(chunk)
            self.rows.clear()

    def commit(self, writer: DenialWriter, findings: FindingLog) -> int:
        """Write everything staged; returns the number of rows written."""
        written = 0
        for frame in self._frames(findings):
            if len(frame):
                writer.write(frame)
                written += len(frame)
        self.committed |= self.ids
        return written

    def _frames(self, findings: FindingLog) -> Iterator[pd.DataFrame]:
        for chunk in self.spilled:
            yield pd.read_pickle(chunk)  # our own temporary file, written above
        if self.rows:
            yield contract_frame(self.rows, findings)

    def discard(self) -> None:
        for chunk in self.spilled:
            chunk.unlink(missing_ok=True)
        self.spilled.clear()
        self.rows.clear()


def contract_frame(rows: list[dict[str, object]], findings: FindingLog) -> pd.DataFrame:
    """Rows as a typed frame that passes the contract; rows it refuses go to ``findings``."""
    frame = _typed_frame(rows, ROW_COLUMNS)
    result = validate(frame)
    for error in result.errors:
        segment = int(frame["segment_number"].iat[error.row - 1]) if error.row else None
        findings.add(segment, f"denial not written: contract: {error.column}: {error.reason}")
    return result.valid_rows()


def quarantine_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Quarantine rows as a typed frame: the contract's columns, typed as the contract types
    them, but not validated (a quarantined claim lacks what the contract requires)."""
    frame = _typed_frame(rows, QUARANTINE_COLUMNS)
    for column in ("service_date", "denial_date", "submission_date", "as_of_date"):
        frame[column] = pd.to_datetime(frame[column], format="ISO8601").astype("datetime64[s]")
    for column in ("billed_amount", "denied_amount", "paid_amount"):
        frame[column] = frame[column].astype("float64")
    frame["units"] = frame["units"].astype("Int64")
    return frame


def _typed_frame(rows: list[dict[str, object]], columns: tuple[str, ...]) -> pd.DataFrame:
    """Rows as a frame whose extra columns have the dtype every chunk shares."""
    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    for name, dtype in EXTRA_COLUMNS.items():
        if dtype.startswith("datetime"):
            frame[name] = pd.to_datetime(frame[name], format="ISO8601").astype(dtype)
        elif dtype != "object":
            frame[name] = frame[name].astype(dtype)
    return frame
