"""Claim adjustment group codes, and which adjustments are denials at all.

A remittance adjusts nearly every claim; most adjustments are not denials. Patient cost sharing
(PR-1/2/3) and contractual or sequestration reductions on a paid line (CO-45, CO-253, ...) are
the ordinary arithmetic of a paid claim. Treating them as denials floods work queues with noise,
so ingestion and features ask :func:`is_denial_adjustment` before counting one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GroupCode:
    """What a CAS group code says about who bears the adjusted amount."""

    code: str
    name: str
    meaning: str


GROUP_CODES: dict[str, GroupCode] = {
    g.code: g
    for g in (
        GroupCode(
            "CO",
            "contractual obligation",
            "The provider absorbs the amount and may not bill the patient; it stays a "
            "write-off unless appealed or corrected.",
        ),
        GroupCode(
            "PR",
            "patient responsibility",
            "The patient owes the amount (cost sharing, or a service the patient agreed to pay).",
        ),
        GroupCode(
            "OA",
            "other adjustment",
            "Neither the provider's contract nor the patient: often another payer's share.",
        ),
        GroupCode(
            "PI",
            "payer-initiated reduction",
            "The payer reduced payment on its own judgement, without a contract term; "
            "the patient is not billed.",
        ),
        GroupCode(
            "CR",
            "correction or reversal",
            "Corrects or reverses an earlier adjudication (004010 files only).",
        ),
    )
}

# (group, CARC) pairs that are routine arithmetic of a paid claim, never a denial. The CARC
# numbers follow the X12 list: 1/2/3 deductible, coinsurance, copay; 66 blood deductible;
# 45 charge over the fee schedule; 42 charge over the usual and customary; 253 sequestration;
# 131 negotiated discount; 144 incentive; A2 contractual adjustment; 23 prior payer's share;
# 246 a code reported for information only. 42 and A2 are retired but still seen in old files.
NON_DENIAL_ADJUSTMENTS: frozenset[tuple[str, str]] = frozenset(
    [("PR", code) for code in ("1", "2", "3", "66")]
    + [(group, code) for group in ("CO", "PI", "OA") for code in ("45", "253", "131", "144")]
    + [("CO", "42"), ("PI", "42"), ("CO", "A2"), ("OA", "A2"), ("OA", "23"), ("CO", "23")]
    + [(group, "246") for group in ("CO", "OA", "PI")]
)


def split_adjustment(adjustment: str) -> tuple[str, str]:
    """``"CO-197"`` -> ``("CO", "197")``."""
    group, _, carc = adjustment.partition("-")
    return group, carc


def is_denial_adjustment(group: str, carc: str) -> bool:
    """True when an adjustment refuses payment rather than applying routine cost sharing or
    contractual reductions."""
    return (group, carc) not in NON_DENIAL_ADJUSTMENTS
