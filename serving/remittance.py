"""An uploaded 835, through the same ingestion code as ``denial-triage ingest``."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePath

import pandas as pd

from features.contract import load_denials
from ingest.batch import ingest
from serving.errors import ServiceError


def remittance_denials(content: bytes, filename: str) -> pd.DataFrame:
    """The contract rows of one uploaded remittance; 422 naming the segment if it is malformed."""
    name = PurePath(filename).name or "upload.835"  # never a path from the client
    with tempfile.TemporaryDirectory(prefix="upload-835-") as folder:
        source = Path(folder) / name
        source.write_bytes(content)
        report = ingest([source], Path(folder) / "denials.parquet")
        if report.failed:
            error = report.failed[0].error
            where = f", segment {error.segment_number}" if error and error.segment_number else ""
            raise ServiceError(422, f"{name}{where}: {error.message if error else 'unreadable'}")
        return load_denials(report.output).frame
