"""835 fixtures written from the transaction's structure (TR3 005010X221A1 loops), not copied
from any file: a builder for envelopes and a few remittance bodies that each show one thing.

Bodies are written with ``*`` between elements and ``:`` inside composites; :func:`x12`
turns them into a whole interchange with any separators, correct counts and control numbers.
"""

from __future__ import annotations

from pathlib import Path

PATIENT_NAME = "ZZPATIENTLAST"
MEMBER_ID = "MEMBERX0042"


def x12(
    *transactions: list[str],
    element: str = "*",
    component: str = ":",
    terminator: str = "~",
    newline: str = "\n",
    version: str = "005010X221A1",
    control: int = 1,
) -> str:
    """A complete interchange holding one functional group of the given ST bodies (the
    segments between ST and SE)."""
    isa_version, repetition = ("00401", "U") if version.startswith("004") else ("00501", "^")
    if repetition == component:
        repetition = "{"
    isa = (
        f"ISA*00*{'':10}*00*{'':10}*ZZ*{'PAYERSENDER':15}*ZZ*{'PROVIDERRECV':15}*241015*0930"
        f"*{repetition}*{isa_version}*{control:09d}*0*P*{component}"
    ).replace("*", element)
    segments = [isa, f"GS*HP*SENDER*RECEIVER*20241015*0930*{control}*X*{version}"]
    for index, body in enumerate(transactions, start=1):
        segments += [f"ST*835*{index:04d}", *body, f"SE*{len(body) + 2}*{index:04d}"]
    segments += [f"GE*{len(transactions)}*{control}", f"IEA*1*{control:09d}"]
    converted = [segments[0]] + [_convert(s, element, component) for s in segments[1:]]
    return "".join(f"{segment}{terminator}{newline}" for segment in converted)


def _convert(segment: str, element: str, component: str) -> str:
    return segment.replace(":", "\x00").replace("*", element).replace("\x00", component)


def header(
    payer: str = "ACME HEALTH PLAN",
    payer_id: str = "77001",
    trace: str = "EFT0001",
    date: str = "20241014",
) -> list[str]:
    """BPR to the first LX: payer (loop 1000A with REF*2U), payee (1000B) with its NPI."""
    return [
        f"BPR*I*100.00*C*ACH*CCP*01*999999999*DA*123456*1{payer_id}0000**01*888888888*DA*98765"
        f"*{date}",
        f"TRN*1*{trace}*1{payer_id}0000",
        f"DTM*405*{date}",
        f"N1*PR*{payer}",
        "N3*1 PAYER WAY",
        "N4*ANYTOWN*NY*10001",
        f"REF*2U*{payer_id}",
        "PER*BL*PROVIDER SERVICES*TE*8005551212",
        "N1*PE*GOOD HEALTH CLINIC*XX*1999999984",
        "LX*1",
    ]


def patient(number: int = 1) -> list[str]:
    """Patient and insured segments (PHI) as real claims carry them."""
    return [
        f"NM1*QC*1*{PATIENT_NAME}*JANE****MI*{MEMBER_ID}{number}",
        f"NM1*IL*1*{PATIENT_NAME}*JOHN****MI*{MEMBER_ID}{number}",
    ]


def denied_claim(claim_id: str = "PCN1001", payer_claim: str = "ICN9001") -> list[str]:
    """CLP02 = 4: the whole claim refused for missing prior authorization."""
    return [
        f"CLP*{claim_id}*4*250.00*0*0*12*{payer_claim}*11*1",
        *patient(),
        "NM1*82*1*DOCTOR*ANNE****XX*1234567893",
        "MOA***MA130",
        "DTM*232*20240901",
        "DTM*050*20240910",
        "SVC*HC:99214:25*250.00*0**1",
        "DTM*472*20240901",
        "CAS*CO*197*250.00",
        "LQ*HE*N54",
    ]


def partially_paid_claim(claim_id: str = "PCN2001") -> list[str]:
    """Three lines: paid with cost sharing, refused as bundled, partly refused over units."""
    return [
        f"CLP*{claim_id}*1*600.00*210.00*40.00*12*ICN9002*11*1",
        *patient(2),
        "DTM*232*20240902",
        "SVC*HC:99213*200.00*120.00**1",
        "DTM*472*20240902",
        "CAS*CO*45*40.00",
        "CAS*PR*2*40.00",
        "SVC*HC:93000:59*150.00*0**1",
        "DTM*472*20240902",
        "CAS*CO*97*150.00",
        "LQ*HE*M15",
        "SVC*HC:97110*250.00*90.00**2*HC:97110*3",
        "DTM*472*20240903",
        "CAS*CO*151*125.00*1",
        "CAS*CO*45*35.00",
    ]


def paid_claim(claim_id: str = "PCN3001", status: str = "1", paid: str = "120.00") -> list[str]:
    """Paid with a deductible and a fee-schedule reduction only: not a denial."""
    return [
        f"CLP*{claim_id}*{status}*200.00*{paid}*40.00*15*ICN9003*11*1",
        *patient(3),
        "DTM*232*20240903",
        f"SVC*HC:99213*200.00*{paid}**1",
        "DTM*472*20240903",
        "CAS*PR*1*40.00",
        "CAS*CO*45*40.00",
    ]


def reversal_and_correction(claim_id: str = "PCN4001") -> list[str]:
    """The payer takes back an earlier payment (CLP02 = 22, negative amounts, the original
    adjustments negated) and pays the claim again, corrected."""
    return [
        f"CLP*{claim_id}*22*-300.00*-180.00*0*12*ICN9004*11*1",
        "CAS*CO*16*-60.00",
        "CAS*CO*45*-60.00",
        *patient(4),
        "DTM*232*20240815",
        f"CLP*{claim_id}*1*300.00*240.00*0*12*ICN9005*11*1",
        "CAS*CO*45*60.00",
        *patient(4),
        "DTM*232*20240815",
    ]


def provider_adjustment() -> list[str]:
    """PLB: an interest payment and a recoupment at provider level (not claim denials)."""
    return ["PLB*1999999984*20241231*L6:ICN9003*-2.50*WO:ICN8000*75.00"]


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    """Write fixture text byte for byte (no newline translation)."""
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def full_remittance(folder: Path) -> Path:
    """One TR3-valid remittance: a denied claim, a partly paid claim, a paid claim, a reversal
    and its correction, and a PLB."""
    body = [
        *header(),
        *denied_claim(),
        *partially_paid_claim(),
        *paid_claim(),
        *reversal_and_correction(),
        *provider_adjustment(),
    ]
    return write(folder, "remit.835", x12(body))
