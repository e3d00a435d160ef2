"""Full TR3 validation of a remittance with pyx12, for users who want it (``--validate``).

pyx12 checks every segment against the 005010X221A1 (or 004010X091A1) implementation guide:
required segments and elements, code values, lengths. It is thorough and slow (well under
1 MB/s), which is why ingestion's own reader does the everyday work and this is opt-in.

pyx12 is an optional dependency (the ``x12-validate`` extra). Its messages quote element
values; the findings returned here replace those values with ``<value>`` so that a patient's
name or member id in a bad NM1 segment never reaches a log.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ingest.errors import Finding

_SEGMENT_QUOTE = re.compile(r"Segment (\w{2,3})\S*")
INSTALL_PYX12 = "--validate needs pyx12: pip install 'denial-triage[x12-validate]' (or pyx12)"


class ValidatorUnavailable(RuntimeError):
    """pyx12 is not installed."""


def pyx12_available() -> bool:
    """True when pyx12 can be imported."""
    try:
        import pyx12  # noqa: F401
    except ImportError:
        return False
    return True


def validate_file(path: Path) -> list[Finding]:
    """Every TR3 problem pyx12 finds in one file, as findings naming the segment; an empty
    list when the file is valid."""
    if not pyx12_available():
        raise ValidatorUnavailable(INSTALL_PYX12)
    import pyx12.params
    import pyx12.x12n_document

    report = io.StringIO()
    try:
        with _quiet_pyx12(), path.open(encoding="utf-8-sig", errors="replace", newline="") as src:
            valid = pyx12.x12n_document.x12n_document(
                pyx12.params.params(), src, None, None, fd_json=report
            )
    except Exception as exc:  # pyx12 raises assorted errors on malformed input; all mean invalid
        return [Finding(path, None, f"pyx12 stopped reading the file ({type(exc).__name__})")]
    findings = list(_findings(path, report.getvalue()))
    if not valid and not findings:
        findings.append(
            Finding(path, None, "pyx12 cannot read the file as an X12 interchange (ISA first)")
        )
    return findings


@contextmanager
def _quiet_pyx12() -> Iterator[None]:
    """pyx12 logs every error with its value; keep that out of the user's logs."""
    logger = logging.getLogger("pyx12")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate


def _findings(path: Path, report: str) -> Iterator[Finding]:
    if not report.strip():
        return
    document = json.loads(report)
    for interchange in document.get("interchanges", []):
        yield from _node_findings(path, interchange, "ISA")
        for group in interchange.get("groups", []):
            yield from _node_findings(path, group, "GS")
            for transaction in group.get("transactions", []):
                yield from _node_findings(path, transaction, "ST")
                for segment in transaction.get("segments", []):
                    yield from _segment_findings(path, segment)


def _node_findings(path: Path, node: dict[str, Any], name: str) -> Iterator[Finding]:
    for error in node.get("errors", []):
        yield Finding(path, node.get("cur_line"), f"TR3 {name}: {_scrub(error)}")


def _segment_findings(path: Path, segment: dict[str, Any]) -> Iterator[Finding]:
    number, segment_id = segment.get("cur_line"), segment.get("seg_id", "?")
    for error in segment.get("errors", []):
        yield Finding(path, number, f"TR3 {segment_id}: {_scrub(error)}")
    for element in segment.get("elements", []):
        for error in element.get("errors", []):
            position = element.get("ele_pos")
            where = f"{segment_id}{position:02d}" if isinstance(position, int) else segment_id
            yield Finding(path, number, f"TR3 {where}: {_scrub(error)}")


def _scrub(error: dict[str, Any]) -> str:
    """pyx12's message without the values it quotes."""
    message = str(error.get("err_str", ""))
    value = error.get("err_val")
    if value:
        message = message.replace(str(value), "<value>")
    return _SEGMENT_QUOTE.sub(r"Segment \1", message)
