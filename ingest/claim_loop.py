"""Reading one claim loop of an 835: the CLP segment (2100) and the segments after it,
service lines (2110) included, into a :class:`~ingest.model.Claim`.

Only NM1*82 (rendering provider) is looked at among the NM1 segments: patient and insured
names and member ids (NM1*QC, NM1*IL) are never read, so they cannot leak into a row, a log
line or an error message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from features.contract import CARC_PATTERN, RARC_PATTERN
from ingest.errors import ClaimDefect, shown_code, shown_label, shown_number, stray_text
from ingest.model import Adjustment, Claim, FindingLog, Remittance, ServiceLine, location_id
from ingest.x12 import Separators, is_delimiter

Screen = Callable[[str, str], bool]
"""Decides from one adjustment's group and CARC whether its claim is worth reading in full."""

SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}")
_CARC = re.compile(CARC_PATTERN)
_RARC = re.compile(RARC_PATTERN)
# Element positions that carry remark codes: MOA03-07 and MIA05, MIA20-23 (MIA24 is an amount).
_MOA_REMARKS = (3, 4, 5, 6, 7)
_MIA_REMARKS = (5, 20, 21, 22, 23)
_LINE_DATES = frozenset(("472", "150", "151"))
_CLAIM_DATES = frozenset(("232", "233", "050"))
_PAD = [""] * 20  # appended to short segments so that element positions can be indexed directly
_MAX_UNITS = 1e9  # beyond any real count of units; keeps the contract's integer column in range
# Segments of a claim loop that carry nothing denial triage uses.
_IGNORED = frozenset(("REF", "AMT", "QTY", "PER", "N1", "N3", "N4", "K3", "RDM"))


class ClaimReader:
    """Builds the claims of one file. Keeps what is learnt along the way: which codes fit the
    contract, and the component separator of a file without an ISA header."""

    def __init__(self, path: Path, findings: FindingLog, component: str | None) -> None:
        self.path = path
        self.findings = findings
        self.component = component
        self._code_fits: dict[tuple[str, str], bool] = {}
        self._remark_fits: dict[str, bool] = {}
        self._screened: dict[str, bool] = {}  # "CO*45" -> whether the screen flags it
        self._cas_patterns: dict[str, re.Pattern[str]] = {}
        self._claim: Claim | None = None
        self._line: ServiceLine | None = None
        self._handlers: dict[str, Callable[[int, list[str]], None]] = {
            "CAS": self._cas,
            "NM1": self._nm1,
            "MIA": self._mia,
            "MOA": self._moa,
            "SVC": self._svc,
            "DTM": self._dtm,
            "LQ": self._lq,
        }

    # ------------------------------------------------------------------ the claim

    def check(self, number: int, elements: list[str]) -> str:
        """Check a CLP segment's required elements (CLP01-04); returns CLP02, the status.
        Raises :class:`ClaimDefect` when one is missing or malformed."""
        padded = elements + _PAD if len(elements) < 5 else elements
        if not padded[1].strip():
            raise ClaimDefect(number, "CLP01 (claim id) is missing")
        status = padded[2].strip()
        if not status:
            raise ClaimDefect(number, "CLP02 (claim status) is missing")
        self._required_amount(number, padded[3], "CLP03 (total claim charge)")
        self._required_amount(number, padded[4], "CLP04 (claim payment)")
        return status

    def open(
        self,
        remittance: Remittance,
        ordinal: int,
        number: int,
        elements: list[str],
        institutional: bool,
    ) -> Claim:
        """A claim from its CLP segment, once :meth:`check` has passed it."""
        padded = elements + _PAD if len(elements) < 12 else elements
        filing = padded[6].strip()
        return Claim(
            remittance=remittance,
            segment_number=number,
            ordinal=ordinal,
            claim_id=padded[1].strip(),
            status=padded[2].strip(),
            # The amounts that check() accepted, read the same way (it strips any whitespace).
            billed=self._required_amount(number, padded[3], "CLP03 (total claim charge)"),
            paid=self._required_amount(number, padded[4], "CLP04 (claim payment)"),
            patient_responsibility=read_amount(padded[5]),
            filing_indicator=filing,
            payer_claim_number=padded[7].strip(),
            facility_code=padded[8].strip(),
            frequency=padded[9].strip(),
            # A DRG (CLP11) or Medicare Part A filing means institutional adjudication.
            institutional_evidence=institutional or bool(padded[11].strip()) or filing == "MA",
        )

    def worth_reading(
        self, status: str, segments: list[str], separators: Separators, screen: Screen
    ) -> tuple[bool, int]:
        """Whether a claim could be a denial (CLP02 = 4, or an adjustment ``screen`` flags),
        and, when it could not, how many service lines it has. Works on the claim's text with
        one regular-expression pass, so most claims are judged without splitting a segment."""
        if status == "4":
            return True, 0
        terminator, element = separators.segment, separators.element
        text = terminator + terminator.join(segments)
        for adjustment in self._adjustments(separators).findall(text):
            if adjustment.count(element) == 2:  # one triplet, the usual case
                key = adjustment.rpartition(element)[0]  # "CO*45"
                flagged = self._screened.get(key)
                if flagged is None:
                    group, _, code = key.partition(element)
                    flagged = self._screened[key] = bool(code) and screen(group, code)
            else:
                elements = adjustment.split(element)
                flagged = any(code and screen(elements[0], code) for code in elements[1:19:3])
            if flagged:
                return True, 0
        return False, text.count(f"{terminator}SVC{element}")

    def _adjustments(self, separators: Separators) -> re.Pattern[str]:
        """Finds the text after ``CAS*`` of every CAS segment in a claim's text."""
        terminator, element = re.escape(separators.segment), re.escape(separators.element)
        key = separators.segment + separators.element
        pattern = self._cas_patterns.get(key)
        if pattern is None:
            pattern = re.compile(f"{terminator}CAS{element}([^{terminator}]*)")
            self._cas_patterns[key] = pattern
        return pattern

    def read(self, claim: Claim, segments: list[str], element: str) -> Claim:
        """Fill a claim from the segments that follow its CLP (numbered from CLP + 1).
        Raises :class:`ClaimDefect` when the loop cannot be read whole."""
        self._claim, self._line = claim, None
        handlers = self._handlers
        try:
            for number, text in enumerate(segments, claim.segment_number + 1):
                elements = text.split(element)
                handler = handlers.get(elements[0])
                if handler is not None:
                    handler(number, elements)
                elif elements[0] not in _IGNORED and not SEGMENT_ID.fullmatch(elements[0]):
                    # A fragment between the claim's segments; the segments themselves are
                    # whole, so the claim is read.
                    self.findings.add(number, stray_text(text), claim=claim_row_id(claim))
        finally:
            self._claim = self._line = None
        return claim

    def _claim_level(self, number: int, elements: list[str]) -> Claim:
        """The open claim, for a segment that belongs to loop 2100 itself: after a service
        line it is out of order, and which line or claim it describes cannot be told."""
        if self._line is not None:
            raise ClaimDefect(
                number,
                f"{elements[0]} (claim level, loop 2100) after the service line at segment "
                f"{self._line.segment_number}: the claim's loops are out of order",
            )
        assert self._claim is not None
        return self._claim

    # ------------------------------------------------------------------ adjustments, remarks

    def _cas(self, number: int, elements: list[str]) -> None:
        """A CAS segment: adjustments of the current line, else of the claim."""
        target = self._line if self._line is not None else self._claim
        assert target is not None
        group = elements[1].strip() if len(elements) > 1 else ""
        padded = elements + _PAD if len(elements) < 20 else elements
        for position in range(2, min(len(elements), 20), 3):
            code = padded[position].strip()
            if code:
                self._add_adjustment(number, position, group, code, padded[position + 1], target)

    def _add_adjustment(
        self,
        number: int,
        position: int,
        group: str,
        code: str,
        amount_text: str,
        target: Claim | ServiceLine,
    ) -> None:
        label = f"CAS{position:02d} {shown_label(group, code)}"
        amount = read_amount(amount_text)
        if not self._fits(group, code):
            # Masked or invented codes (sample files): the adjustment cannot be a contract
            # reason code whatever its amount, so the claim is read without it.
            self.findings.add(
                number,
                f"{label} does not fit GROUP-CODE ({CARC_PATTERN}); left out of carc_codes and "
                "of the denial decision",
            )
        elif amount is None:
            what = (
                f"{shown_number(amount_text)} is not an amount"
                if amount_text.strip()
                else "is missing"
            )
            raise ClaimDefect(number, f"{label}: CAS{position + 1:02d} (amount) {what}")
        else:
            target.adjustments.append(Adjustment(group, code, amount, number))

    def _fits(self, group: str, code: str) -> bool:
        fits = self._code_fits.get((group, code))
        if fits is None:
            label = f"{group}-{code}"
            fits = self._code_fits[group, code] = bool(_CARC.fullmatch(label))
        return fits

    def _mia(self, number: int, elements: list[str]) -> None:
        claim = self._claim_level(number, elements)
        claim.institutional_evidence = True  # inpatient adjudication
        self._add_remarks(number, elements, _MIA_REMARKS, claim.remarks)

    def _moa(self, number: int, elements: list[str]) -> None:
        claim = self._claim_level(number, elements)
        self._add_remarks(number, elements, _MOA_REMARKS, claim.remarks)

    def _lq(self, number: int, elements: list[str]) -> None:
        if self._line is not None and len(elements) > 2 and elements[1] == "HE":
            code = elements[2].strip()
            if code:
                self._add_remark(number, code, self._line.remarks)

    def _add_remarks(
        self, number: int, elements: list[str], positions: tuple[int, ...], remarks: list[str]
    ) -> None:
        for position in positions:
            if position >= len(elements):
                break
            code = elements[position].strip()
            if code:
                self._add_remark(number, code, remarks)

    def _add_remark(self, number: int, code: str, remarks: list[str]) -> None:
        fits = self._remark_fits.get(code)
        if fits is None:
            fits = self._remark_fits[code] = bool(_RARC.fullmatch(code))
        if fits:
            remarks.append(code)
        else:
            self.findings.add(
                number,
                f"remark code {shown_code(code)} does not fit {RARC_PATTERN}; "
                "left out of rarc_codes",
            )

    # ------------------------------------------------------------------ provider, dates, lines

    def _nm1(self, number: int, elements: list[str]) -> None:
        # Only the rendering provider is read; patient and insured names never are.
        if len(elements) > 9 and elements[1] == "82" and elements[8] == "XX":
            assert self._claim is not None
            self._claim.rendering_npi = elements[9].strip()

    def _dtm(self, number: int, elements: list[str]) -> None:
        if len(elements) < 3:
            return
        qualifier, date = elements[1], elements[2]
        line, claim = self._line, self._claim
        assert claim is not None
        if line is not None and qualifier in _LINE_DATES:
            if qualifier != "151":
                line.start = date
            if qualifier != "150":
                line.end = date
        elif qualifier in _CLAIM_DATES:
            claim = self._claim_level(number, elements)
            if qualifier == "232":
                claim.start = date
            elif qualifier == "233":
                claim.end = date
            else:
                claim.received = date

    def _svc(self, number: int, elements: list[str]) -> None:
        claim = self._claim
        assert claim is not None
        padded = elements + _PAD if len(elements) < 8 else elements
        composite = padded[1].strip()
        if not composite:
            raise ClaimDefect(number, "SVC01 (procedure) is missing")
        qualifier, procedure, modifiers = self._procedure(composite)
        revenue_code = padded[4].strip()
        if qualifier == "NU" or revenue_code:
            claim.institutional_evidence = True  # revenue codes are billed by facilities
        self._line = ServiceLine(
            number=len(claim.lines) + 1,
            segment_number=number,
            qualifier=qualifier,
            procedure_code=procedure,
            modifiers=modifiers,
            charge=self._line_amount(number, padded[2], "SVC02 (line charge)"),
            paid=self._line_amount(number, padded[3], "SVC03 (line payment)"),
            revenue_code=revenue_code,
            # SVC07 is the billed units when the payer paid other units; SVC05 defaults to 1.
            units=_units(padded[7].strip() or padded[5].strip() or "1"),
        )
        claim.lines.append(self._line)

    def _procedure(self, composite: str) -> tuple[str, str, list[str]]:
        """SVC01 ``HC:99213:25`` -> ``("HC", "99213", ["25"])``."""
        component = self.component
        if component is None and len(composite) > 2 and is_delimiter(composite[2]):
            # A file without ISA: the qualifier is two characters, so the next one delimits.
            component = self.component = composite[2]
        parts = composite.split(component) if component else [composite]
        procedure = parts[1].strip() if len(parts) > 1 else ""
        modifiers = [modifier.strip() for modifier in parts[2:6] if modifier.strip()]
        return parts[0].strip(), procedure, modifiers

    # ------------------------------------------------------------------ amounts

    def _line_amount(self, number: int, text: str, name: str) -> float:
        """A line amount. A line without one is kept (it still counts as a line) and read as 0,
        which keeps it from ever becoming a denial row; one that holds something other than a
        number makes the claim unreadable."""
        if not text.strip():
            self.findings.add(number, f"{name} is missing; read as 0")
            return 0.0
        return self._required_amount(number, text, name)

    def _required_amount(self, number: int, text: str, name: str) -> float:
        amount = read_amount(text)
        if amount is None:
            what = "is missing" if not text.strip() else f"{shown_number(text)} is not an amount"
            raise ClaimDefect(number, f"{name} {what}")
        return amount


def read_amount(text: str) -> float | None:
    """An X12 decimal (R type) as a float; ``None`` when empty, not a number or not finite."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _units(text: str) -> int | None:
    """Units of service as a whole number, ``None`` when absent, fractional or negative."""
    value = read_amount(text)
    if value is None or not 0 <= value <= _MAX_UNITS or value != int(value):
        return None
    return int(value)


def claim_row_id(claim: Claim) -> str:
    """The id of a claim's claim-level row, which names it in findings (never CLP01)."""
    return location_id(claim.remittance, claim.ordinal, claim.claim_id, 0)
