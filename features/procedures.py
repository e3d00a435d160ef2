"""Procedure families from CPT, HCPCS Level II and revenue codes.

The families follow the published code ranges (CPT sections by number range; HCPCS Level II by
leading letter; UB-04 revenue codes as four digits), so any history, not only the generator's,
gets the same grouping.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# CPT Category I sections by five-digit range (AMA CPT section boundaries).
_CPT_SECTIONS = (
    (0, 1999, "anesthesia"),
    (10004, 69990, "surgery"),
    (70010, 79999, "radiology"),
    (80047, 89398, "pathology_laboratory"),
    (90281, 99199, "medicine"),
    (99202, 99499, "evaluation_management"),
)
# HCPCS Level II by leading letter (CMS HCPCS Level II chapters).
_HCPCS_LETTERS = {
    "A": "hcpcs_transport_supplies",
    "B": "hcpcs_enteral_parenteral",
    "C": "hcpcs_outpatient_pps",
    "E": "hcpcs_durable_equipment",
    "G": "hcpcs_professional_services",
    "H": "hcpcs_behavioral_health",
    "J": "hcpcs_drugs",
    "K": "hcpcs_durable_equipment",
    "L": "hcpcs_orthotics_prosthetics",
    "Q": "hcpcs_temporary",
    "S": "hcpcs_private_payer",
    "T": "hcpcs_state_medicaid",
    "V": "hcpcs_vision_hearing",
}
_REVENUE_GROUPS = {
    "01": "revenue_room_and_board",
    "02": "revenue_room_and_board",
    "03": "revenue_ancillary",
    "04": "revenue_emergency_clinic",
    "05": "revenue_emergency_clinic",
    "06": "revenue_ancillary",
    "07": "revenue_ancillary",
    "09": "revenue_behavioral_therapy",
}

# Every family procedure_family() can return, in the order above.
FAMILIES = tuple(
    dict.fromkeys(
        [
            *(family for *_, family in _CPT_SECTIONS),
            "cpt_category_ii_iii",
            *_HCPCS_LETTERS.values(),
            "hcpcs_other",
            *_REVENUE_GROUPS.values(),
            "revenue_other",
            "unknown",
        ]
    )
)


def procedure_family(code: str | None) -> str:
    """The family of a CPT, HCPCS or revenue code; ``unknown`` when it fits none."""
    if not code:
        return "unknown"
    code = code.strip().upper()
    if re.fullmatch(r"0\d{3}", code):
        return _REVENUE_GROUPS.get(code[:2], "revenue_other")
    if re.fullmatch(r"\d{5}", code):
        # E/M sits inside the medicine range numerically, so it is checked first.
        number = int(code)
        for low, high, family in reversed(_CPT_SECTIONS):
            if low <= number <= high:
                return family
        return "unknown"
    if re.fullmatch(r"\d{4}[FTU]", code):
        return "cpt_category_ii_iii"
    if re.fullmatch(r"[A-Z]\d{4}", code):
        return _HCPCS_LETTERS.get(code[0], "hcpcs_other")
    return "unknown"


def procedure_families(codes: pd.Series) -> np.ndarray:
    """:func:`procedure_family` of each code, read once per distinct code: a history holds a
    few hundred codes over hundreds of thousands of denials (per row it was a quarter of the
    payer alerts' time)."""
    position, distinct = pd.factorize(codes, use_na_sentinel=True)
    families = np.array([procedure_family(code) for code in distinct] + [procedure_family(None)])
    return families[position]  # the sentinel -1 picks the last: a missing code is "unknown"
