"""The defect classes real payers' 835 files carry, as functions that damage segments.

One source for two users: the corruption benchmark (``benchmarks/ingest_defects.py``) damages
the public samples with them to show that ingestion keeps every good claim, and the synthetic
generator (``denial-triage generate --as-835 --defect-share``) sprinkles them over the
remittances it writes, so a pipeline is exercised on files as untidy as real ones.

Segments are plain text without terminators. A damaged segment may hold
:data:`SEGMENT_BREAK` where it must become two segments when the file is rendered.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from features.contract import CARC_PATTERN

SEGMENT_BREAK = "\x00"  # splits one rewritten segment into two when the file is rendered
LAYOUT_BREAK = "\r\n  "  # what the layout class puts after every terminator

# A file defect gets a file's segments and its element separator and returns them damaged,
# or None when it does not apply to that file.
FileDefect = Callable[[list[str], str], "list[str] | None"]
# A segment change gets one segment and the element separator and returns it damaged, or
# None when it cannot damage that segment.
SegmentChange = Callable[[str, str], "str | None"]

_CARC = re.compile(CARC_PATTERN)


def replace_element(segment: str, element: str, position: int, value: str | None) -> str:
    """``segment`` with the element at ``position`` replaced (``None`` removes it)."""
    parts = segment.split(element)
    if position >= len(parts):
        return segment
    if value is None:
        del parts[position]
    else:
        parts[position] = value
    return element.join(parts)


def _envelope(segment_id: str, position: int, change: Callable[[str], str]) -> FileDefect:
    """Change one element of every ``segment_id`` segment."""

    def damage(segments: list[str], element: str) -> list[str] | None:
        prefix = segment_id + element
        if not any(segment.startswith(prefix) for segment in segments):
            return None
        return [
            replace_element(s, element, position, change(s.split(element)[position]))
            if s.startswith(prefix)
            else s
            for s in segments
        ]

    return damage


def _text_after_last_segment(segments: list[str], element: str) -> list[str]:
    return [*segments, "1" + element + "000000001"]


def _missing_iea(segments: list[str], element: str) -> list[str] | None:
    if not segments[-1].startswith("IEA"):
        return None
    return segments[:-1]


def _stray_fragment_in_header(segments: list[str], element: str) -> list[str] | None:
    at = next((i for i, s in enumerate(segments) if s.startswith("BPR")), None)
    if at is None:
        return None
    return [*segments[: at + 1], " 0.00", *segments[at + 1 :]]


def _cas_amount(segment: str, element: str) -> str | None:
    """A CAS whose group and code fit the contract gets a malformed amount (masked sample
    codes are left alone: their adjustments are findings, not defects)."""
    elements = segment.split(element)
    if len(elements) < 4 or not _CARC.fullmatch(f"{elements[1]}-{elements[2]}"):
        return None
    return replace_element(segment, element, 3, "12O.00")


def _moa_after_line(segment: str, element: str) -> str | None:
    """Loop out of order: a claim-level MOA after the claim's first service line."""
    return f"{segment}{SEGMENT_BREAK}MOA{element}{element}{element}MA130"


LAYOUT_DEFECT = "line breaks and indentation between segments"
# Envelope and layout defects: findings, never a lost claim.
ENVELOPE_DEFECTS: dict[str, FileDefect] = {
    "SE01 count wrong": _envelope("SE", 1, lambda count: str(int(count or 0) + 7)),
    "GE01 count wrong": _envelope("GE", 1, lambda count: str(int(count or 0) + 1)),
    "IEA01 count wrong": _envelope("IEA", 1, lambda count: str(int(count or 0) + 1)),
    "IEA02 trimmed (differs from ISA13)": _envelope("IEA", 2, lambda n: n.lstrip("0") or "1"),
    "SE02 differs from ST02": _envelope("SE", 2, lambda number: number + "9"),
    "text after the last segment": _text_after_last_segment,
    "missing IEA at end of file": _missing_iea,
    "stray fragment between segments": _stray_fragment_in_header,
    # The segments stay as they are; rendering puts LAYOUT_BREAK after each terminator.
    LAYOUT_DEFECT: lambda segments, element: segments,
}
# Claim defects: the claim holding one is quarantined, the others are read.
CLAIM_DEFECTS: dict[str, tuple[str, SegmentChange]] = {
    "claim: CLP03 missing": ("CLP", lambda s, e: replace_element(s, e, 3, "")),
    "claim: CLP04 holds an id": ("CLP", lambda s, e: replace_element(s, e, 4, "1EG4TE5MK72")),
    "claim: CAS amount malformed": ("CAS", _cas_amount),
    "claim: SVC01 missing": ("SVC", lambda s, e: replace_element(s, e, 1, "")),
    "claim: SVC02 malformed": ("SVC", lambda s, e: replace_element(s, e, 2, "1.2.3")),
    "claim: loop out of order (MOA after a line)": ("SVC", _moa_after_line),
}


def damage_claim(loop: list[str], element: str, defect: str) -> list[str] | None:
    """A claim loop (its CLP up to the next claim) with the first segment ``defect`` can
    damage rewritten, or ``None`` when the defect does not apply to the claim."""
    segment_id, change = CLAIM_DEFECTS[defect]
    for offset, segment in enumerate(loop):
        changed = change(segment, element) if segment.startswith(segment_id) else None
        if changed is not None:
            return [*loop[:offset], changed, *loop[offset + 1 :]]
    return None


def render(segments: list[str], terminator: str, layout: str = "") -> str:
    """Segments as file text; ``layout`` goes after each terminator (line breaks, indents)."""
    text = "".join(segment + terminator + layout for segment in segments)
    return text.replace(SEGMENT_BREAK, terminator + layout)
