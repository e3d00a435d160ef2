"""What a remittance says about a claim, as plain typed objects.

Dates stay as the CCYYMMDD text the file carries (converted when a row is written, so that
claims that never become rows cost nothing); amounts are floats.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ingest.errors import Finding


class Adjustment(NamedTuple):
    """One CAS triplet: group, CARC, amount (negative when it gives back an adjustment)."""

    group: str
    code: str
    amount: float
    segment_number: int

    @property
    def label(self) -> str:
        """The contract spelling, ``GROUP-CODE``."""
        return f"{self.group}-{self.code}"


@dataclass(slots=True)
class Remittance:
    """The header of one 835 transaction (ST to SE): who paid, when, under which trace."""

    source: Path
    transaction_control: str
    version: str = ""
    group_date: str = ""  # GS04
    payment_date: str = ""  # BPR16
    production_date: str = ""  # DTM*405
    trace: str = ""  # TRN02, the check or EFT number
    originator: str = ""  # TRN03, the payer's company id
    payer_name: str = ""
    payer_plan_id: str = ""  # N1*PR N104 when N103 = XV
    payer_reference_id: str = ""  # REF*2U in loop 1000A
    payee_npi: str = ""  # N1*PE N104 when N103 = XX

    @property
    def payer_id(self) -> str:
        """The most specific payer identifier the remittance carries: N1*PR plan id, REF*2U,
        TRN03 company id, else the payer's name."""
        return (
            self.payer_plan_id
            or self.payer_reference_id
            or self.originator
            or (f"name:{self.payer_name.upper()}" if self.payer_name else "")
        )

    @property
    def remittance_date(self) -> str:
        """CCYYMMDD: DTM*405 production date, else BPR16 payment date, else GS04."""
        return self.production_date or self.payment_date or self.group_date


@dataclass(slots=True)
class ServiceLine:
    """One SVC loop (2110)."""

    number: int  # 1-based position within the claim
    segment_number: int
    qualifier: str  # SVC01-1: HC (HCPCS/CPT), NU (revenue code), ...
    procedure_code: str
    modifiers: list[str]
    charge: float
    paid: float
    revenue_code: str
    units: int | None
    start: str = ""
    end: str = ""
    adjustments: list[Adjustment] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Claim:
    """One CLP loop (2100) with its service lines and the transaction header around it."""

    remittance: Remittance
    segment_number: int
    ordinal: int  # 1-based position of the claim within its transaction
    claim_id: str  # CLP01, the provider's patient control number
    status: str  # CLP02
    billed: float  # CLP03
    paid: float  # CLP04
    patient_responsibility: float | None  # CLP05
    filing_indicator: str  # CLP06
    payer_claim_number: str  # CLP07
    facility_code: str  # CLP08
    frequency: str  # CLP09
    institutional_evidence: bool
    rendering_npi: str = ""
    start: str = ""  # DTM*232
    end: str = ""  # DTM*233
    received: str = ""  # DTM*050
    adjustments: list[Adjustment] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    lines: list[ServiceLine] = field(default_factory=list)


@dataclass(frozen=True)
class Quarantined:
    """A claim that could not be read whole: its CLP elements as sent, where the defect is
    and what it is. Every other claim of the file is read."""

    remittance: Remittance
    ordinal: int
    clp_segment_number: int
    clp: list[str]  # the CLP segment's elements, CLP00 = "CLP"
    segment_number: int  # where the defect is
    reason: str

    @property
    def row_id(self) -> str:
        """The id its quarantine row carries, also used to name it in findings."""
        claim_id = self.clp[1].strip() if len(self.clp) > 1 else ""
        return location_id(self.remittance, self.ordinal, claim_id, 0)


def location_id(remittance: Remittance, ordinal: int, claim_id: str, line_number: int) -> str:
    """A deterministic id without PHI: a hash of where a claim or line sits in the remittance
    (payer, trace, production date, transaction, claim position, claim id, line number). The
    same remittance ingested twice gives the same ids, so the copy is recognised."""
    key = "\x1f".join(
        (
            remittance.payer_id,
            remittance.trace,
            remittance.remittance_date,
            remittance.transaction_control,
            str(ordinal),
            claim_id,
            str(line_number),
        )
    )
    return "D" + hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


@dataclass
class ParseStats:
    """What one file held; ``denied_claims`` counts CLP02 = 4 only, as payers report it."""

    segments: int = 0
    transactions: int = 0
    claims: int = 0
    denied_claims: int = 0
    reversals: int = 0
    service_lines: int = 0
    provider_adjustments: int = 0  # PLB segments
    quarantined: int = 0  # claims that could not be read whole (counted in ``claims`` too)


class FindingLog:
    """Findings of one file, capped so that a file full of masked codes cannot exhaust
    memory; ``suppressed`` counts what was left out."""

    def __init__(self, path: Path, limit: int = 200) -> None:
        self.path = path
        self.limit = limit
        self.items: list[Finding] = []
        self.suppressed = 0

    def add(self, segment_number: int | None, message: str, claim: str | None = None) -> None:
        """Record one finding (or just count it once the cap is reached)."""
        if len(self.items) < self.limit:
            self.items.append(Finding(self.path, segment_number, message, claim))
        else:
            self.suppressed += 1
