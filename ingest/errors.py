"""The one error the remittance parser raises, and the findings it reports without stopping.

Messages name the file, the segment number (1-based position in the file, ISA = 1, as
editors and pyx12 count) and what is wrong. What they may quote is decided by the element's
meaning: values from positions that hold names, member ids, addresses or the patient control
number (NM1, N3/N4, REF, CLP01, CLP07) are never quoted; values from amount, date, count and
code positions are quoted only through :func:`shown_number` and :func:`shown_code`, which
describe (length and kinds of characters) any value that does not have the shape its position
calls for, since a shifted file can put a name or a member id anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# A sign, then digits with the punctuation of amounts, no letter: ``-12.50``, ``20240901``.
# Dashes, slashes or blanks inside would let a phone number or an SSN (555-1212) through.
_NUMBER_SHAPED = re.compile(r"[-+]?[.,\d]{0,19}")
# A code: at most two letters, then digits (CO, 16, A7, N14, MA130, M51); no word can hide here.
_CODE_SHAPED = re.compile(r"[A-Z]{0,2}\d{0,4}")
_VERSION_SHAPED = re.compile(r"\d{6}(X\d{3}A?\d?)?")
# More digits than any amount or date: a member id, a social security number, an account.
_MAX_NUMBER_DIGITS = 8


def shown_number(value: str, max_digits: int = _MAX_NUMBER_DIGITS) -> str:
    """A value from an amount, count, date or control-number position, as a message may quote
    it: as is when it has the shape of a number (a sign, then digits, points and commas, no
    more than ``max_digits`` digits), else only described (see :func:`described`)."""
    digits = sum(char.isdigit() for char in value)
    if value.isascii() and _NUMBER_SHAPED.fullmatch(value) and digits <= max_digits:
        return repr(value)
    return described(value)


def shown_code(value: str) -> str:
    """A value from a code position (a group, a CARC, a remark code, a qualifier): as is when
    it has a code's shape (two letters at most, then digits), else described."""
    return repr(value) if _code_shaped(value) else described(value)


def _code_shaped(value: str) -> bool:
    return 0 < len(value) <= 6 and bool(_CODE_SHAPED.fullmatch(value))


def shown_label(group: str, code: str) -> str:
    """An adjustment's ``GROUP-CODE`` label, quoted when both parts have a code's shape."""
    if _code_shaped(group) and _code_shaped(code):
        return repr(f"{group}-{code}")
    return f"group {shown_code(group)}, code {shown_code(code)}"


def shown_version(value: str) -> str:
    """A GS08 version identifier (``005010X221A1``) as is; anything else described."""
    return repr(value) if _VERSION_SHAPED.fullmatch(value) else described(value)


def described(value: str) -> str:
    """What a value looks like without the value: its length and which kinds of characters it
    holds. A shifted or garbled file can put a name or a member id anywhere, and messages
    reach logs and HTTP answers; this still tells a biller what sits where a number belongs."""
    if not value.strip():
        return "a blank value"
    kinds = [
        name
        for name, present in (
            ("letters", any(char.isalpha() for char in value)),
            ("digits", any(char.isdigit() for char in value)),
            ("other characters", any(not char.isalnum() for char in value)),
        )
        if present
    ]
    return f"a value of {len(value)} characters, {' and '.join(kinds)} (not shown)"


def stray_text(text: str) -> str:
    """The finding for text between segments that is no segment (a fragment left after a
    terminator, an end-of-file mark): described, never quoted, since it can be anything."""
    return f"text that is not an X12 segment ({described(text)}); ignored"


class RemittanceError(Exception):
    """A remittance file cannot be read as an 835: truncated, bad envelope, missing claim
    elements, or not X12 at all. The only exception the parser raises.

    ``segment_number`` is the 1-based segment position in the file, or ``None`` when the
    problem is the file as a whole (unreadable, empty).
    """

    def __init__(self, file: Path | str, segment_number: int | None, message: str) -> None:
        self.file = Path(file)
        self.segment_number = segment_number
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f", segment {self.segment_number}" if self.segment_number is not None else ""
        return f"{self.file}{where}: {self.message}"

    def __reduce__(self) -> tuple[type[RemittanceError], tuple[Path, int | None, str]]:
        # Exceptions pickle their ``args``; this one is built from three fields instead.
        return (type(self), (self.file, self.segment_number, self.message))


class ClaimDefect(Exception):
    """One claim (loop 2100) cannot be read: a required CLP, CAS or SVC element missing or
    malformed, or its loop out of order. The parser quarantines that claim and reads on."""

    def __init__(self, segment_number: int, message: str) -> None:
        self.segment_number = segment_number
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Finding:
    """Something worth telling the user that does not stop the file: an envelope defect, a
    quarantined claim, a code that does not fit the contract, a denial that cannot become a
    contract row. ``claim`` names the claim concerned by its row id (never by CLP01)."""

    file: Path
    segment_number: int | None
    message: str
    claim: str | None = None

    def __str__(self) -> str:
        where = f", segment {self.segment_number}" if self.segment_number is not None else ""
        claim = f", claim {self.claim}" if self.claim else ""
        return f"{self.file}{where}{claim}: {self.message}"
