"""What counts as a denial, and how an adjudicated claim becomes contract rows.

The rules (docs/ingestion.md explains the why):

1. Reversals never produce denials: CLP02 = 22, a claim with a negative charge (a reversal
   sent under another status) and a void (CLP09 = 8) are skipped.
2. A **denied claim** (one row for the claim): CLP02 = 4; or nothing was paid (CLP04 = 0)
   and the refusal came from denial adjustments, at claim level or on every billed line.
3. Otherwise **denied service lines** (one row per line): a line whose denial adjustments
   add up to more than zero. Claim-level denial adjustments on a claim that was partly paid
   give one more row at claim level.

A denial adjustment is any CAS adjustment that :func:`features.adjustments.is_denial_adjustment`
does not classify as routine arithmetic of a paid claim (PR-1/2/3 cost sharing, CO-45-style
contractual reductions, OA-23 prior payer, ...); the 4010-only CR group corrects an earlier
adjudication and never counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from features.adjustments import is_denial_adjustment
from features.contract import GROUP_CODES
from ingest.claim_loop import claim_row_id, read_amount
from ingest.model import location_id
from ingest.remit835 import Adjustment, Claim, FindingLog, Quarantined, ServiceLine

# CLP06 claim filing indicator -> contract payer_type. Medicaid managed care has no code of
# its own (plans send MC or HM), so it is never inferred here.
PAYER_TYPES: dict[str, str] = {
    "MA": "medicare",  # Medicare Part A
    "MB": "medicare",  # Medicare Part B
    "16": "medicare_advantage",  # HMO Medicare Risk
    "MC": "medicaid",
    "12": "commercial",  # PPO
    "13": "commercial",  # POS
    "14": "commercial",  # EPO
    "15": "commercial",  # indemnity
    "17": "commercial",  # dental maintenance organisation
    "BL": "commercial",  # Blue Cross / Blue Shield
    "CI": "commercial",  # commercial insurance company
    "HM": "commercial",  # HMO
    "FI": "commercial",  # Federal Employees Program, run by commercial carriers
    "WC": "workers_comp",
}
REVERSAL_STATUS = "22"
DENIED_STATUS = "4"
VOID_FREQUENCY = "8"
REPLACEMENT_FREQUENCY = "7"
_COUNTED_GROUPS = frozenset(("CO", "PR", "OA", "PI"))
_KNOWN_GROUPS = frozenset(GROUP_CODES)
_CARC_CODE = re.compile(r"[A-Z]?\d{1,3}")
# The contract columns a remittance can fill, in the order rows are written.
CONTRACT_ROW_COLUMNS = (
    "denial_id",
    "claim_id",
    "payer_id",
    "payer_type",
    "claim_type",
    "service_date",
    "denial_date",
    "billed_amount",
    "denied_amount",
    "carc_codes",
    "rarc_codes",
    "paid_amount",
    "submission_date",
    "provider_npi",
    "place_of_service",
    "procedure_code",
    "modifiers",
    "units",
    "as_of_date",
)


@dataclass(frozen=True)
class Judgement:
    """Why a claim gives the rows it gives; used by tests and the docs' examples."""

    level: str  # "claim", "line" or "none"
    reason: str


def payer_type(filing_indicator: str) -> str:
    """Contract payer type for a CLP06 claim filing indicator; ``other`` when not mapped."""
    return PAYER_TYPES.get(filing_indicator.strip().upper(), "other")


def claim_type(claim: Claim) -> str:
    """``institutional`` when the remittance shows institutional adjudication (MIA inpatient
    data, a DRG in CLP11, Medicare Part A, revenue codes on lines, TS3/TS2 provider summary);
    otherwise ``professional``. CLP08 alone cannot tell: ``11`` is both the office place of
    service and the inpatient hospital bill type."""
    return "institutional" if claim.institutional_evidence else "professional"


def is_denial(adjustment: Adjustment) -> bool:
    """True when an adjustment refuses payment rather than doing a paid claim's arithmetic."""
    return is_denial_code(adjustment.group, adjustment.code)


@lru_cache(maxsize=4096)
def is_denial_code(group: str, code: str) -> bool:
    """The same judgement on a group and CARC."""
    return group in _COUNTED_GROUPS and is_denial_adjustment(group, code)


def denial_total(adjustments: Iterable[Adjustment]) -> float:
    """The amount refused by denial adjustments (give-backs, negative amounts, net off)."""
    return sum(adjustment.amount for adjustment in adjustments if is_denial(adjustment))


@lru_cache(maxsize=4096)
def could_be_denial(group: str, code: str) -> bool:
    """The parser's screen: read a claim in full when one of its adjustments is a denial
    adjustment, or does not fit the contract (so that it gets reported)."""
    return (
        is_denial_code(group, code) or group not in _KNOWN_GROUPS or not _CARC_CODE.fullmatch(code)
    )


def is_reversal(claim: Claim) -> bool:
    """A reversal of an earlier adjudication (CLP02 = 22, or a negative charge or payment sent
    under another status), or a void (CLP09 = 8): never a denial."""
    return (
        claim.status == REVERSAL_STATUS
        or claim.billed < 0
        or claim.paid < 0
        or claim.frequency == VOID_FREQUENCY
    )


def judge(claim: Claim) -> Judgement:
    """Decide whether a claim is denied as a whole, line by line, or not at all."""
    line_totals = [denial_total(line.adjustments) for line in claim.lines]
    return _judge(claim, denial_total(claim.adjustments), line_totals)


def _judge(claim: Claim, claim_total: float, line_totals: list[float]) -> Judgement:
    if is_reversal(claim):
        return Judgement("none", "reversal or void")
    if claim.status == DENIED_STATUS:
        return Judgement("claim", "CLP02 = 4")
    if (
        claim.paid == 0
        and claim.billed > 0
        and _refused_everywhere(claim, claim_total, line_totals)
    ):
        return Judgement("claim", "nothing paid, refused by denial adjustments")
    if claim_total > 0 or any(total > 0 for total in line_totals):
        return Judgement("line", "denial adjustments on a partly paid claim")
    return Judgement("none", "no denial adjustment")


def _refused_everywhere(claim: Claim, claim_total: float, line_totals: list[float]) -> bool:
    """Claim-level denial adjustments, or denial adjustments on every line that billed."""
    if claim_total > 0:
        return True
    billed = [
        total for line, total in zip(claim.lines, line_totals, strict=True) if line.charge > 0
    ]
    return bool(billed) and all(total > 0 for total in billed)


def denial_rows(claim: Claim, findings: FindingLog) -> list[dict[str, object]]:
    """The contract rows a claim gives (usually none). Rows that could not meet the contract
    are reported in ``findings`` instead."""
    claim_total = denial_total(claim.adjustments)
    line_totals = [denial_total(line.adjustments) for line in claim.lines]
    judgement = _judge(claim, claim_total, line_totals)
    if judgement.level == "none":
        return []
    if judgement.level == "claim":
        row = _denied_claim_row(claim, findings)
        return [row] if row is not None else []
    rows = [
        _denied_line_row(claim, line, total, findings)
        for line, total in zip(claim.lines, line_totals, strict=True)
        if total > 0
    ]
    if claim_total > 0:
        rows.append(_claim_level_row(claim, claim_total, findings))
    return [row for row in rows if row is not None]


def _denied_claim_row(claim: Claim, findings: FindingLog) -> dict[str, object] | None:
    adjustments = claim.adjustments + [a for line in claim.lines for a in line.adjustments]
    if claim.status == DENIED_STATUS:
        denied = claim.billed - claim.paid
    else:
        denied = denial_total(adjustments)
    primary_line = max(claim.lines, key=lambda line: line.charge, default=None)
    remarks = claim.remarks + [code for line in claim.lines for code in line.remarks]
    start = claim.start or min((line.start for line in claim.lines if line.start), default="")
    end = claim.end or max((line.end for line in claim.lines if line.end), default="")
    return _row(
        claim,
        line=None,
        procedure_line=primary_line,
        billed=claim.billed,
        paid=claim.paid,
        denied=min(denied, claim.billed),
        adjustments=adjustments,
        remarks=remarks,
        dates=(start, end),
        findings=findings,
    )


def _denied_line_row(
    claim: Claim, line: ServiceLine, denied: float, findings: FindingLog
) -> dict[str, object] | None:
    return _row(
        claim,
        line=line,
        procedure_line=line,
        billed=line.charge,
        paid=line.paid,
        denied=min(denied, line.charge),
        adjustments=line.adjustments,
        remarks=line.remarks + claim.remarks,
        dates=(line.start or claim.start, line.end or line.start or claim.end),
        findings=findings,
    )


def _claim_level_row(claim: Claim, denied: float, findings: FindingLog) -> dict[str, object] | None:
    return _row(
        claim,
        line=None,
        procedure_line=None,
        billed=claim.billed,
        paid=claim.paid,
        denied=min(denied, claim.billed),
        adjustments=claim.adjustments,
        remarks=claim.remarks,
        dates=(claim.start, claim.end),
        findings=findings,
    )


def _row(
    claim: Claim,
    *,
    line: ServiceLine | None,
    procedure_line: ServiceLine | None,
    billed: float,
    paid: float,
    denied: float,
    adjustments: list[Adjustment],
    remarks: list[str],
    dates: tuple[str, str],
    findings: FindingLog,
) -> dict[str, object] | None:
    segment = line.segment_number if line is not None else claim.segment_number
    remittance = claim.remittance
    service_date = iso_date(dates[0])
    denial_date = iso_date(remittance.remittance_date)
    problem = _row_problem(claim, billed, paid, denied, adjustments, service_date, denial_date)
    if problem is not None:
        findings.add(segment, f"denial not written: {problem}")
        return None
    codes, amounts = ranked_adjustments(adjustments)
    primary = next((code for code in codes if is_denial_code(*code.split("-", 1))), None)
    return {
        "denial_id": denial_id(claim, line),
        "claim_id": claim.claim_id,
        "payer_id": remittance.payer_id,
        "payer_type": payer_type(claim.filing_indicator),
        "claim_type": claim_type(claim),
        "service_date": service_date,
        "denial_date": denial_date,
        "billed_amount": billed,
        "denied_amount": round(denied, 2),
        "carc_codes": codes,
        "rarc_codes": list(dict.fromkeys(remarks)),
        "paid_amount": paid,
        "submission_date": iso_date(claim.received),
        "provider_npi": _npi(claim.rendering_npi) or _npi(remittance.payee_npi),
        "place_of_service": place_of_service(claim),
        "procedure_code": (procedure_line.procedure_code or None) if procedure_line else None,
        "modifiers": list(procedure_line.modifiers) if procedure_line else [],
        "units": procedure_line.units if procedure_line else None,
        # The day the remittance was issued: aging and deadlines count from it, never from
        # the day the file happened to be ingested.
        "as_of_date": denial_date,
        # Extra, non-PHI columns for tracing a row back to its remittance.
        "denial_level": "line" if line is not None else "claim",
        "line_number": line.number if line is not None else None,
        "primary_denial_code": primary,
        "carc_amounts": amounts,
        "payer_name": remittance.payer_name or None,
        "payer_claim_number": claim.payer_claim_number or None,
        "claim_status": claim.status,
        "claim_filing_indicator": claim.filing_indicator or None,
        "claim_frequency": claim.frequency or None,
        "service_end_date": iso_date(dates[1]) or service_date,
        "remittance_trace": remittance.trace or None,
        "source_file": str(remittance.source),
        "segment_number": segment,
    }


def _row_problem(
    claim: Claim,
    billed: float,
    paid: float,
    denied: float,
    adjustments: list[Adjustment],
    service_date: str | None,
    remittance_date: str | None,
) -> str | None:
    """Why a denial cannot become a contract row, or ``None`` when it can."""
    if not adjustments:
        return "no CAS adjustment to give a reason code (carc_codes needs one)"
    if billed <= 0 or round(denied, 2) <= 0:
        return f"nothing billed or refused (billed {billed:g}, refused {denied:g})"
    if paid < 0:
        return f"negative line payment {paid:g} (a take-back), not a denial"
    if remittance_date is None:
        return "no remittance date (DTM*405, BPR16 or GS04)"
    if service_date is None:
        return "no valid service date (DTM*472/150 on the line, DTM*232 on the claim)"
    if service_date > remittance_date:
        return f"service date {service_date} is after the remittance date {remittance_date}"
    if not claim.remittance.payer_id:
        return "no payer identifier (N1*PR, REF*2U or TRN03)"
    return None


def quarantine_row(quarantined: Quarantined) -> dict[str, object]:
    """The contract-shaped row of a claim that could not be read whole: what its CLP and
    transaction header say, blanks where the claim could not be read, and the reason. It
    carries nothing the contract's own rows do not."""
    clp = quarantined.clp + [""] * max(0, 10 - len(quarantined.clp))
    remittance = quarantined.remittance
    remittance_date = iso_date(remittance.remittance_date)
    return {
        "denial_id": quarantined.row_id,
        "claim_id": clp[1].strip() or None,
        "payer_id": remittance.payer_id or None,
        "payer_type": payer_type(clp[6]),
        "denial_date": remittance_date,
        "billed_amount": read_amount(clp[3]),
        "paid_amount": read_amount(clp[4]),
        "provider_npi": _npi(remittance.payee_npi),
        "carc_codes": [],
        "rarc_codes": [],
        "modifiers": [],
        "as_of_date": remittance_date,
        "denial_level": "claim",
        "carc_amounts": [],
        "payer_name": remittance.payer_name or None,
        "payer_claim_number": clp[7].strip() or None,
        "claim_status": clp[2].strip() or None,
        "claim_filing_indicator": clp[6].strip() or None,
        "claim_frequency": clp[9].strip() or None,
        "remittance_trace": remittance.trace or None,
        "source_file": str(remittance.source),
        "segment_number": quarantined.clp_segment_number,
        "quarantine_reason": f"segment {quarantined.segment_number}: {quarantined.reason}",
    }


def ranked_adjustments(adjustments: Iterable[Adjustment]) -> tuple[list[str], list[float]]:
    """``GROUP-CODE`` labels with their summed amounts, largest amount first; a code repeated
    on several lines appears once."""
    totals: dict[str, float] = {}
    for adjustment in adjustments:
        totals[adjustment.label] = totals.get(adjustment.label, 0.0) + adjustment.amount
    ranked = sorted(totals.items(), key=lambda item: -item[1])  # stable: ties keep file order
    return [label for label, _ in ranked], [round(amount, 2) for _, amount in ranked]


def place_of_service(claim: Claim) -> str | None:
    """CLP08 as sent: the place of service of a professional claim; for an institutional claim
    the type of bill, facility code followed by CLP09 frequency (e.g. ``111``)."""
    if not claim.facility_code:
        return None
    if claim.institutional_evidence and claim.frequency:
        return claim.facility_code + claim.frequency
    return claim.facility_code


def denial_id(claim: Claim, line: ServiceLine | None) -> str:
    """A deterministic id without PHI for a claim's or a line's denial (see
    :func:`ingest.model.location_id`)."""
    if line is None:
        return claim_row_id(claim)
    return location_id(claim.remittance, claim.ordinal, claim.claim_id, line.number)


@lru_cache(maxsize=16384)
def iso_date(text: str) -> str | None:
    """CCYYMMDD -> ``CCYY-MM-DD``; ``None`` when empty or not a calendar date."""
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
    except ValueError:
        return None


def _npi(text: str) -> str | None:
    return text if len(text) == 10 and text.isascii() and text.isdigit() else None
