"""An uploaded 835, through the same ingestion code as ``denial-triage ingest``.

The rules are the command's: a defect inside one claim quarantines that claim only, envelope
defects are findings, and neither fails the upload; the answer scores every denial that could
be read. Only a file that is not an 835 at all is refused (422, naming the segment). The
response keeps its schema: quarantined claims and findings are logged as counts (no claim id,
no file name, since either can carry PHI), so operators can see that a payer's files are
damaged without the upload failing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePath

import pandas as pd

from features.contract import load_denials
from ingest.batch import FileOutcome, ingest
from serving.errors import ServiceError
from serving.logs import logger


def remittance_denials(content: bytes, filename: str) -> pd.DataFrame:
    """The contract rows of one uploaded remittance; 422 naming the segment if it is not an
    835 at all."""
    name = PurePath(filename).name or "upload.835"  # never a path from the client
    with tempfile.TemporaryDirectory(prefix="upload-835-") as folder:
        source = Path(folder) / name
        source.write_bytes(content)
        report = ingest([source], Path(folder) / "denials.parquet")
        (outcome,) = report.files
        if outcome.error is not None:
            error = outcome.error
            where = f", segment {error.segment_number}" if error.segment_number else ""
            raise ServiceError(422, f"{name}{where}: {error.message}")
        _log_defects(outcome)
        return load_denials(report.output).frame


def _log_defects(outcome: FileOutcome) -> None:
    """Counts of what the upload's defects cost, when it had any."""
    findings = len(outcome.findings) + outcome.suppressed_findings
    if not findings or outcome.stats is None:
        return
    logger.warning(
        "remittance read with findings",
        extra={
            "findings": findings,
            "claims": outcome.stats.claims,
            "claims_quarantined": outcome.stats.quarantined,
            "denial_rows": outcome.rows_written,
        },
    )
