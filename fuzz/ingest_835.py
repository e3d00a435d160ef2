"""Coverage-guided fuzzing of 835 ingestion with atheris (run by hand, not in CI).

    .venv/bin/pip install atheris
    .venv/bin/python fuzz/ingest_835.py -max_total_time=600 -print_final_stats=1

Every input is written to a file and read the way ``denial-triage ingest`` reads it, screened
and unscreened; the only exception allowed out is the documented ``RemittanceError``. Anything
else is a crash that atheris reports with the input that caused it. The corpus is seeded with a
valid remittance built by the test fixtures, so the fuzzer starts from deep inside the format.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from ingest.denials import could_be_denial, denial_rows
    from ingest.remit835 import RemittanceError, RemittanceParser

SCRATCH = Path(tempfile.mkdtemp(prefix="fuzz-835-")) / "input.835"
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "ingest" / "remit_fixtures.py"


def read_like_ingest(path: Path, screened: bool) -> int:
    parser = RemittanceParser(path, chunk_size=64, tolerate_counts=not screened)
    screen = could_be_denial if screened else None
    return sum(len(denial_rows(claim, parser.findings)) for claim in parser.claims(screen))


def one_input(data: bytes) -> None:
    SCRATCH.write_bytes(data)
    for screened in (True, False):
        # The documented error (a malformed file, named with its segment) is the one allowed.
        with contextlib.suppress(RemittanceError):
            read_like_ingest(SCRATCH, screened)


def seed_corpus() -> Path:
    """A corpus folder holding one valid remittance from the test fixtures."""
    spec = importlib.util.spec_from_file_location("remit_fixtures", FIXTURES)
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    corpus = Path(tempfile.mkdtemp(prefix="fuzz-835-corpus-"))
    fixtures.full_remittance(corpus)
    return corpus


if __name__ == "__main__":
    atheris.Setup([*sys.argv, str(seed_corpus())], one_input)
    atheris.Fuzz()
