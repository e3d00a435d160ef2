"""The one error the remittance parser raises, and the findings it reports without stopping.

Messages name the file, the segment number (1-based position in the file, ISA = 1, as
editors and pyx12 count) and what is wrong. They never quote patient or member segments
(NM1*QC, NM1*IL): a message may name a segment id or an element position, and quotes an
element's value only through :func:`shown`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# A run of three letters or more: a word, possibly a name. Values without one (amounts, counts,
# control numbers, code-shaped values like MA130 or CO-16) are safe to quote.
_WORD = re.compile(r"[^\W\d_]{3,}")


def shown(value: str, limit: int = 20) -> str:
    """An element's value as a message may quote it: as is when it holds no word, else only
    its length. A garbled or shifted file can put any text, a patient's name included, where
    an amount or a code belongs, and messages reach logs and HTTP answers."""
    if _WORD.search(value) or len(value) > limit:
        return f"a {len(value)}-character value (not shown)"
    return repr(value)


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


@dataclass(frozen=True)
class Finding:
    """Something worth telling the user that does not stop the file: a code that does not fit
    the contract, a denial that cannot become a contract row, a count mismatch when told to
    tolerate it."""

    file: Path
    segment_number: int | None
    message: str

    def __str__(self) -> str:
        where = f", segment {self.segment_number}" if self.segment_number is not None else ""
        return f"{self.file}{where}: {self.message}"
