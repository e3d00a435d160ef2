"""835 remittance semantics: segments in, adjudicated claims out.

:class:`RemittanceParser` walks one file's segments (tokenized by :mod:`ingest.x12`), checks
its envelopes, reads each transaction's header (payer, trace, dates) and yields each claim
(loop 2100 with its service lines) as soon as the claim is complete.

Speed: segments of an open claim are only collected until the claim closes, then read in one
go by :class:`~ingest.claim_loop.ClaimReader`. A caller that wants denials only passes a
``screen``; claims that cannot be denials (no CLP02 = 4 and no adjustment the screen flags)
are then counted and skipped after splitting just their CAS segments, which is what most of
a remittance is.

Ingestion never loses a good claim for a bad one. A defect inside one claim (a required CLP,
CAS or SVC element missing or malformed, its loop out of order, an unreadable segment in it)
quarantines that claim only: it is handed to ``on_quarantine`` and reported as a finding
naming the segment and the claim's row id. Envelope defects (counts, control numbers,
trailers missing, text between or after segments) are findings too. :class:`RemittanceError`,
the only exception the parser raises, is kept for a file that is not an 835 at all: not X12,
empty, no transaction, a transaction other than 835.

005010X221A1 is the reference; 004010X091A1 files read the same way (the segments used here
did not change between versions, apart from the 4010-only CR group code).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from ingest.claim_loop import SEGMENT_ID, ClaimReader, Screen
from ingest.errors import (
    ClaimDefect,
    Finding,
    RemittanceError,
    shown_code,
    shown_version,
    stray_text,
)
from ingest.model import (
    Adjustment,
    Claim,
    FindingLog,
    ParseStats,
    Quarantined,
    Remittance,
    ServiceLine,
)
from ingest.x12 import DEFAULT_CHUNK_SIZE, Envelope, SegmentReader

__all__ = [
    "Adjustment",
    "Claim",
    "Finding",
    "FindingLog",
    "ParseStats",
    "Quarantined",
    "Remittance",
    "RemittanceError",
    "RemittanceParser",
    "Screen",
    "ServiceLine",
]

SUPPORTED_VERSIONS = ("005010X221A1", "005010X221", "004010X091A1", "004010X091")
_ENVELOPE_IDS = ("ISA", "GS", "ST", "GE", "IEA")
# Segments that end an open claim loop; everything else after a CLP belongs to the claim.
_CLAIM_CLOSERS = ("CLP", "LX", "SE", "PLB", *_ENVELOPE_IDS)
_IGNORED_IN_HEADER = frozenset(("N3", "N4", "N2", "PER", "CUR", "RDM", "AMT", "QTY", "NM1"))

Handler = Callable[[int, list[str]], "Claim | None"]
QuarantineSink = Callable[[Quarantined], None]


class RemittanceParser:
    """Reads one 835 file and yields its claims in file order.

    Claims that cannot be read whole go to ``on_quarantine`` (and are counted and reported).
    ``tolerate_counts`` is accepted for compatibility and does nothing: count mismatches are
    always findings now. Statistics and findings are complete once :meth:`claims` is
    exhausted.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        on_quarantine: QuarantineSink | None = None,
        tolerate_counts: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        finding_limit: int = 200,
    ) -> None:
        del tolerate_counts  # deprecated no-op, see the class docstring
        self.path = Path(path)
        self.on_quarantine = on_quarantine
        self.chunk_size = chunk_size
        self.stats = ParseStats()
        self.findings = FindingLog(self.path, finding_limit)
        self._element = ""
        self._closers: frozenset[str] = frozenset()
        self._screen: Screen | None = None
        self._reader: SegmentReader | None = None
        self._envelope: Envelope | None = None
        self._claim_reader: ClaimReader | None = None
        self._remittance: Remittance | None = None
        self._claim: _OpenClaim | None = None
        self._claim_segments: list[str] | None = None
        self._party = ""  # N1 entity of the header loop being read (PR, PE)
        self._lx_institutional = False
        self._version = ""
        self._group_date = ""
        self._ordinal = 0
        self._outside = self._envelope_handlers()
        self._inside = self._transaction_handlers()
        self._handlers = self._outside

    # ------------------------------------------------------------------ driving

    def claims(self, screen: Screen | None = None) -> Iterator[Claim]:
        """Every claim of the file, each yielded as soon as its loop closes; with ``screen``,
        only the claims that could be denials (see the module docstring)."""
        self._screen = screen
        reader = self._reader = SegmentReader(self.path, self.chunk_size)
        number = 0
        collected, closers = self._claim_segments, self._closers
        for batch in reader.batches():
            if self._envelope is None:
                self._start(reader)
                closers = self._closers
            first = number + 1
            # The hot loop: inside a claim, a segment is a slice, a set lookup and an append.
            for number, text in enumerate(batch, first):
                if collected is not None and text[:3] not in closers:
                    collected.append(text)
                    continue
                done = self._segment(number, text)
                collected, closers = self._claim_segments, self._closers
                if done is not None:
                    yield done
        self.stats.segments = number
        if self._envelope is None:
            raise self._error(number, "the file holds no segments")
        for note in sorted(reader.layout_notes):
            self.findings.add(None, note)
        self._envelope.finish(number)
        if self._claim is not None:
            # The transaction never closed: whatever the claim held after the last segment
            # read may be missing.
            self._claim = self._claim._replace(
                defect=ClaimDefect(number, "the file ends inside this claim: it may be incomplete")
            )
            self._close_claim()

    def _start(self, reader: SegmentReader) -> None:
        assert reader.separators is not None
        self._set_separators(reader.separators.element)
        self._claim_reader = ClaimReader(self.path, self.findings, reader.separators.component)
        self._envelope = Envelope(
            self.path, self.findings.add, bare_transactions=reader.separators.component is None
        )
        if reader.separators.component is None:
            self.findings.add(1, "no ISA envelope: separators taken from the ST segment")

    def _set_separators(self, element: str) -> None:
        self._element = element
        # Two-letter ids are matched with the separator after them, as the hot loop slices 3
        # characters; alone too, for a segment without elements.
        two_letter = [name + element for name in _CLAIM_CLOSERS if len(name) == 2]
        self._closers = frozenset([*_CLAIM_CLOSERS, *two_letter])

    def _segment(self, number: int, text: str) -> Claim | None:
        elements = text.split(self._element)
        handler = self._handlers.get(elements[0])
        if handler is None:
            handler, elements = self._unknown_segment(number, text, elements)
        return handler(number, elements)

    def _unknown_segment(
        self, number: int, text: str, elements: list[str]
    ) -> tuple[Handler, list[str]]:
        if text.startswith("ISA"):
            # A later interchange declaring another element separator.
            self._switch_separators(text, number)
            return self._handlers["ISA"], text.split(self._element)
        if not SEGMENT_ID.fullmatch(elements[0]):
            return self._stray_text, elements
        if self._handlers is self._outside:
            return self._outside_transaction, elements
        return _ignore, elements

    def _switch_separators(self, isa: str, number: int) -> None:
        assert self._reader is not None and self._claim_reader is not None
        separators = self._reader.switch_interchange(isa, number)
        self._set_separators(separators.element)
        self._claim_reader.component = separators.component

    def _error(self, number: int, message: str) -> RemittanceError:
        return RemittanceError(self.path, number, message)

    # ------------------------------------------------------------------ envelopes

    def _envelope_handlers(self) -> dict[str, Handler]:
        return {"ISA": self._isa, "GS": self._gs, "ST": self._st, "GE": self._ge, "IEA": self._iea}

    def _outside_transaction(self, number: int, elements: list[str]) -> None:
        self.findings.add(
            number, f"envelope: {elements[0]} segment outside a transaction (ST to SE); ignored"
        )

    def _stray_text(self, number: int, elements: list[str]) -> None:
        """Text between segments that is no segment: a fragment left after a terminator, an
        end-of-file mark, a line of a report pasted in."""
        message = stray_text(self._element.join(elements))
        if self._after_last_interchange():
            message = f"after the last interchange: {message}"
        self.findings.add(number, message)

    def _after_last_interchange(self) -> bool:
        envelope = self._envelope
        return (
            envelope is not None
            and envelope.interchange is None
            and self._handlers is self._outside
        )

    def _isa(self, number: int, elements: list[str]) -> None:
        assert self._envelope is not None
        self._switch_separators(self._element.join(elements), number)
        self._envelope.open_interchange(number, elements)

    def _gs(self, number: int, elements: list[str]) -> None:
        assert self._envelope is not None
        self._envelope.open_group(number, elements)
        self._group_date = _element(elements, 4)
        self._version = _element(elements, 8).strip()
        if self._version not in SUPPORTED_VERSIONS:
            self.findings.add(
                number,
                f"GS08 version {shown_version(self._version)} is not 005010X221A1; read as 5010",
            )

    def _ge(self, number: int, elements: list[str]) -> None:
        assert self._envelope is not None
        self._envelope.close_group(number, elements)

    def _iea(self, number: int, elements: list[str]) -> None:
        assert self._envelope is not None
        self._envelope.close_interchange(number, elements)

    def _st(self, number: int, elements: list[str]) -> None:
        assert self._envelope is not None
        self._envelope.open_transaction(number, elements)
        if _element(elements, 1).strip() != "835":
            raise self._error(
                number,
                f"ST01 is {shown_code(_element(elements, 1))}: only 835 remittances are read",
            )
        self._remittance = Remittance(
            source=self.path,
            transaction_control=_element(elements, 2),
            version=self._version,
            group_date=self._group_date,
        )
        self._party = ""
        self._ordinal = 0
        self._lx_institutional = False
        self._handlers = self._inside
        self.stats.transactions += 1

    def _se(self, number: int, elements: list[str]) -> Claim | None:
        assert self._envelope is not None
        done = self._close_claim()
        self._envelope.close_transaction(number, elements)
        self._handlers = self._outside
        self._remittance = None
        return done

    def _envelope_inside(self, number: int, elements: list[str]) -> Claim | None:
        """ISA, GS, ST, GE or IEA between ST and SE: the SE is missing. The transaction is
        closed here (a finding) and the segment read as the envelope it opens or closes."""
        assert self._envelope is not None
        done = self._close_claim()
        self._envelope.abandon_transaction(number, elements[0])
        self._handlers = self._outside
        self._remittance = None
        self._outside[elements[0]](number, elements)
        return done

    # ------------------------------------------------------------------ 835 header

    def _transaction_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = dict.fromkeys(_IGNORED_IN_HEADER, _ignore)
        handlers.update(
            dict.fromkeys(_ENVELOPE_IDS, self._envelope_inside),
            SE=self._se,
            BPR=self._bpr,
            TRN=self._trn,
            DTM=self._dtm,
            N1=self._n1,
            REF=self._ref,
            LX=self._lx,
            TS3=self._ts,
            TS2=self._ts,
            CLP=self._clp,
            PLB=self._plb,
            CAS=self._outside_claim,
            SVC=self._outside_claim,
        )
        return handlers

    def _bpr(self, number: int, elements: list[str]) -> None:
        assert self._remittance is not None
        self._remittance.payment_date = _element(elements, 16).strip()

    def _trn(self, number: int, elements: list[str]) -> None:
        assert self._remittance is not None
        self._remittance.trace = _element(elements, 2).strip()
        self._remittance.originator = _element(elements, 3).strip()

    def _dtm(self, number: int, elements: list[str]) -> None:
        if _element(elements, 1) == "405":
            assert self._remittance is not None
            self._remittance.production_date = _element(elements, 2).strip()

    def _n1(self, number: int, elements: list[str]) -> None:
        assert self._remittance is not None
        self._party = entity = _element(elements, 1)
        if entity == "PR":
            self._remittance.payer_name = _element(elements, 2).strip()
            if _element(elements, 3) == "XV":
                self._remittance.payer_plan_id = _element(elements, 4).strip()
        elif entity == "PE" and _element(elements, 3) == "XX":
            self._remittance.payee_npi = _element(elements, 4).strip()

    def _ref(self, number: int, elements: list[str]) -> None:
        if self._party == "PR" and _element(elements, 1) == "2U":
            assert self._remittance is not None
            self._remittance.payer_reference_id = _element(elements, 2).strip()

    def _lx(self, number: int, elements: list[str]) -> Claim | None:
        done = self._close_claim()
        self._party = ""
        self._lx_institutional = False
        return done

    def _ts(self, number: int, elements: list[str]) -> None:
        # Provider summary segments are sent for institutional providers.
        self._lx_institutional = True

    def _plb(self, number: int, elements: list[str]) -> Claim | None:
        self.stats.provider_adjustments += 1
        return self._close_claim()

    def _outside_claim(self, number: int, elements: list[str]) -> None:
        what = "SVC (service line) before any CLP claim" if elements[0] == "SVC" else elements[0]
        self.findings.add(number, f"{what} outside a claim: loops out of order; ignored")

    # ------------------------------------------------------------------ claims

    def _clp(self, number: int, elements: list[str]) -> Claim | None:
        done = self._close_claim()
        assert self._remittance is not None and self._claim_reader is not None
        try:
            status, defect = self._claim_reader.check(number, elements), None
        except ClaimDefect as error:
            status, defect = _element(elements, 2).strip(), error
        self._ordinal += 1
        # The Claim object is built when the claim closes, and only if it is worth reading.
        self._claim = _OpenClaim(
            number, elements, self._ordinal, self._lx_institutional, status, defect
        )
        self._claim_segments = []
        self.stats.claims += 1
        if status == "4":
            self.stats.denied_claims += 1
        elif status == "22":
            self.stats.reversals += 1
        return done

    def _close_claim(self) -> Claim | None:
        opened, segments = self._claim, self._claim_segments
        if opened is None or segments is None:
            return None
        self._claim = self._claim_segments = None
        if opened.defect is not None:
            self._quarantine(opened, opened.defect)
            return None
        if self._screen is not None and not self._worth_reading(opened, segments):
            return None
        try:
            return self._read_claim(opened, segments)
        except ClaimDefect as defect:
            self._quarantine(opened, defect)
            return None

    def _worth_reading(self, opened: _OpenClaim, segments: list[str]) -> bool:
        assert self._claim_reader is not None and self._screen is not None
        assert self._reader is not None and self._reader.separators is not None
        separators = self._reader.separators
        worth, lines = self._claim_reader.worth_reading(
            opened.status, segments, separators, self._screen
        )
        if not worth:
            self.stats.service_lines += lines
        return worth

    def _read_claim(self, opened: _OpenClaim, segments: list[str]) -> Claim:
        reader = self._claim_reader
        assert reader is not None and self._remittance is not None
        claim = reader.open(
            self._remittance, opened.ordinal, opened.number, opened.elements, opened.institutional
        )
        reader.read(claim, segments, self._element)
        self.stats.service_lines += len(claim.lines)
        return claim

    def _quarantine(self, opened: _OpenClaim, defect: ClaimDefect) -> None:
        assert self._remittance is not None
        quarantined = Quarantined(
            self._remittance,
            opened.ordinal,
            opened.number,
            list(opened.elements),
            defect.segment_number,
            defect.message,
        )
        self.stats.quarantined += 1
        self.findings.add(
            defect.segment_number,
            f"claim at segment {opened.number} quarantined: {defect.message}",
            claim=quarantined.row_id,
        )
        if self.on_quarantine is not None:
            self.on_quarantine(quarantined)


class _OpenClaim(NamedTuple):
    """A claim whose CLP has been read and checked, waiting for the rest of its loop."""

    number: int
    elements: list[str]
    ordinal: int
    institutional: bool
    status: str
    defect: ClaimDefect | None = None  # a CLP element missing or malformed


def _ignore(number: int, elements: list[str]) -> None:
    """Segments that carry nothing denial triage uses."""


def _element(elements: list[str], position: int) -> str:
    """Element ``position`` (1-based, as X12 numbers them) or ``""`` when absent."""
    return elements[position] if position < len(elements) else ""
