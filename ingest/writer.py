"""Write a denial history as the X12 835 remittances (005010X221A1) a payer would have sent.

Each denial appears in its payer's remittance of its denial date; a recovered denial appears
again, on its resolved date, as a paid claim for the recovered amount. Denials written off,
billed to the patient or still open get no later payment: an 835 shows money, not decisions.

Files follow what payers and clearinghouses deliver: one transaction (ST...SE, with its own
BPR payment, TRN trace and DTM*405 production date) per payer per payment date, since each
EFT or check is its own 835; a payer's transactions of one week (Monday to Sunday) batched in
one interchange file, ``<payer>_<monday>.835``, as clearinghouses deliver them.

Each claim carries one service line. A denial with nothing paid is a denied claim (CLP02 =
4); a partly paid one is a processed claim (CLP02 = 1) whose line carries the refusal, so
ingestion reads one row for each. No PHI is written: patients are the placeholder
``PATIENT``/``SYNTHETIC`` with member ids derived from a hash of the claim id.

With ``defect_share`` above 0, that share of denied claims is damaged by one of ingestion's
claim defect classes (ingestion quarantines them) and that share of files by one envelope or
layout defect (findings only), from :mod:`ingest.corruption`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.adjustments import is_denial_adjustment, split_adjustment
from ingest.corruption import (
    CLAIM_DEFECTS,
    ENVELOPE_DEFECTS,
    LAYOUT_BREAK,
    LAYOUT_DEFECT,
    damage_claim,
    render,
)
from ingest.denials import REPLACEMENT_FREQUENCY

ELEMENT, COMPONENT, TERMINATOR = "*", ":", "~"
PAYEE_NPI = "1999999984"  # one made-up billing provider receives every remittance
FACILITY_REVENUE_CODE = "0510"  # clinic: sent in SVC04 so institutional lines read as such
ORIGINAL_FREQUENCY = "1"
RECOVERED = frozenset({"overturned_on_appeal", "paid_after_correction"})
# The CLP06 claim filing indicator written for each payer type. Medicare is sent as Part B
# (MB): Part A (MA) would mark every claim institutional. No code means Medicaid managed
# care; such plans send MC, which reads back as medicaid.
FILING_INDICATORS = {
    "medicare": "MB",
    "medicare_advantage": "16",
    "medicaid": "MC",
    "medicaid_managed_care": "MC",
    "commercial": "CI",
    "workers_comp": "WC",
    "other": "11",
}


@dataclass
class RemittanceReport:
    """What was written. ``damaged_claims`` holds the claim ids (synthetic, no PHI) whose
    denying claim carries a claim defect, so tests can expect them in quarantine."""

    files: int = 0
    transactions: int = 0
    denied_claims: int = 0
    paying_claims: int = 0
    bytes: int = 0
    damaged_claims: set[str] = field(default_factory=set)
    envelope_defects: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Event:
    """One claim in one remittance: a denial, or the later payment of a recovered one."""

    payer_id: str
    date: dt.date
    row: int
    payment: bool


def write_remittances(
    history: pd.DataFrame, folder: Path, *, defect_share: float = 0.0, seed: int = 0
) -> RemittanceReport:
    """Write ``history`` (contract rows, labels optional) as 835 files in ``folder``."""
    if not 0.0 <= defect_share <= 1.0:
        raise ValueError(f"defect share must be between 0 and 1, not {defect_share}")
    folder.mkdir(parents=True, exist_ok=True)
    claims = _ClaimWriter(history)
    report = RemittanceReport()
    rng = np.random.default_rng([seed, 835])
    for control, (name, events) in enumerate(_files(history), start=1):
        segments = _interchange(claims, events, control, rng, defect_share, report)
        segments, layout = _envelope_defect(segments, rng, defect_share, report)
        text = render(segments, TERMINATOR, layout)
        (folder / name).write_text(text, encoding="ascii", newline="")
        report.files += 1
        report.bytes += len(text)
    return report


def _files(history: pd.DataFrame) -> Iterator[tuple[str, list[_Event]]]:
    """Events grouped by payer and week, in file name order."""
    by_file: dict[tuple[str, dt.date], list[_Event]] = defaultdict(list)
    for event in _events(history):
        monday = event.date - dt.timedelta(days=event.date.weekday())
        by_file[(event.payer_id, monday)].append(event)
    for (payer_id, monday), events in sorted(by_file.items()):
        yield f"{payer_id}_{monday:%Y%m%d}.835", sorted(events, key=lambda e: (e.date, e.row))


def _events(history: pd.DataFrame) -> Iterator[_Event]:
    payers = history["payer_id"].astype(str).to_numpy()
    denial_dates = pd.to_datetime(history["denial_date"]).dt.date.to_numpy()
    for row, (payer_id, date) in enumerate(zip(payers, denial_dates, strict=True)):
        yield _Event(payer_id, date, row, payment=False)
    for row in np.flatnonzero(_paid_later(history)):
        date = pd.Timestamp(history["resolved_date"].iat[row]).date()
        yield _Event(payers[row], date, int(row), payment=True)


def _paid_later(history: pd.DataFrame) -> np.ndarray:
    """Rows recovered with money on a known date: those get a later paying claim."""
    if "resolution" not in history:
        return np.zeros(len(history), dtype=bool)
    recovered = history["resolution"].isin(RECOVERED).to_numpy()
    amount = history["recovered_amount"].fillna(0).to_numpy() > 0
    return recovered & amount & history["resolved_date"].notna().to_numpy()


# ---------------------------------------------------------------------------- envelopes


def _interchange(
    claims: _ClaimWriter,
    events: list[_Event],
    control: int,
    rng: np.random.Generator,
    defect_share: float,
    report: RemittanceReport,
) -> list[str]:
    """ISA...IEA for one file: a transaction per payment date."""
    payer_id, date = events[0].payer_id, events[0].date
    segments = [_isa(payer_id, date, control), _gs(payer_id, date, control)]
    by_date: dict[dt.date, list[_Event]] = defaultdict(list)
    for event in events:
        by_date[event.date].append(event)
    for number, (day, day_events) in enumerate(sorted(by_date.items()), start=1):
        loops = [claims.loop(event, rng, defect_share, report) for event in day_events]
        segments += _transaction(payer_id, day, number, loops, claims.paid_total(day_events))
        report.transactions += 1
    return [*segments, f"GE*{len(by_date)}*{control}", f"IEA*1*{control:09d}"]


def _isa(payer_id: str, date: dt.date, control: int) -> str:
    return (
        f"ISA*00*{'':10}*00*{'':10}*ZZ*{payer_id:15}*ZZ*{'SYNTHPROVIDER':15}*{date:%y%m%d}*0800"
        f"*^*00501*{control:09d}*0*P*{COMPONENT}"
    )


def _gs(payer_id: str, date: dt.date, control: int) -> str:
    return f"GS*HP*{payer_id}*SYNTHPROVIDER*{date:%Y%m%d}*0800*{control}*X*005010X221A1"


def _transaction(
    payer_id: str, date: dt.date, number: int, loops: list[list[str]], paid: float
) -> list[str]:
    """ST...SE: payment and trace, payer (1000A) and payee (1000B), one LX of claims."""
    day = f"{date:%Y%m%d}"
    body = [
        f"BPR*I*{paid:.2f}*C*ACH*CCP*01*999999999*DA*123456*1{payer_id}**01*888888888*DA*98765"
        f"*{day}",
        f"TRN*1*{payer_id}{day}{number:02d}*1{payer_id}",
        f"DTM*405*{day}",
        f"N1*PR*SYNTHETIC PAYER {payer_id}*XV*{payer_id}",
        "N3*1 PAYER WAY",
        "N4*ANYTOWN*NY*10001",
        "PER*BL*PROVIDER SERVICES*TE*8005550100",
        f"N1*PE*SYNTHETIC CLINIC*XX*{PAYEE_NPI}",
        "LX*1",
        *(segment for loop in loops for segment in loop),
    ]
    control = f"{number:04d}"
    return [f"ST*835*{control}", *body, f"SE*{len(body) + 2}*{control}"]


def _envelope_defect(
    segments: list[str],
    rng: np.random.Generator,
    defect_share: float,
    report: RemittanceReport,
) -> tuple[list[str], str]:
    """The file's segments, their envelope damaged with that share, and the layout to render
    them with: a line break after each terminator, as most payers send."""
    if defect_share == 0 or rng.random() >= defect_share:
        return segments, "\n"
    names = list(ENVELOPE_DEFECTS)
    name = names[rng.integers(len(names))]
    damaged = ENVELOPE_DEFECTS[name](segments, ELEMENT)
    if damaged is None:
        return segments, "\n"
    report.envelope_defects[name] = report.envelope_defects.get(name, 0) + 1
    return damaged, LAYOUT_BREAK if name == LAYOUT_DEFECT else "\n"


# ---------------------------------------------------------------------------- claims


class _ClaimWriter:
    """Claim loops (CLP to the next claim) for the rows of one history."""

    def __init__(self, history: pd.DataFrame) -> None:
        # Plain records: reading a pandas row per claim would dominate the run time.
        self.rows = history.to_dict("records")
        self.dates = {
            name: pd.to_datetime(history[name]).dt.strftime("%Y%m%d").fillna("").to_numpy()
            for name in ("service_date", "submission_date")
            if name in history
        }

    def paid_total(self, events: list[_Event]) -> float:
        """BPR02: what the transaction pays, claim by claim."""
        return round(sum(self._paid(event) for event in events), 2)

    def _paid(self, event: _Event) -> float:
        row = self.rows[event.row]
        return float(row["recovered_amount"] if event.payment else row["paid_amount"])

    def loop(
        self,
        event: _Event,
        rng: np.random.Generator,
        defect_share: float,
        report: RemittanceReport,
    ) -> list[str]:
        """The claim's segments, damaged with ``defect_share`` when it is a denial."""
        if event.payment:
            report.paying_claims += 1
            return self._payment(event.row)
        report.denied_claims += 1
        loop = self._denial(event.row)
        if defect_share == 0 or rng.random() >= defect_share:
            return loop
        damaged = _damage_some_way(loop, rng)
        if damaged is None:
            return loop
        report.damaged_claims.add(str(self.rows[event.row]["claim_id"]))
        return damaged

    def _denial(self, index: int) -> list[str]:
        row = self.rows[index]
        billed, paid = float(row["billed_amount"]), float(row["paid_amount"])
        codes = list(row["carc_codes"])
        amounts = _adjustment_amounts(codes, billed - paid, line_row=paid > 0)
        status = "1" if paid > 0 else "4"  # a partly paid claim is processed, its line refused
        patient_share = sum(a for c, a in zip(codes, amounts, strict=True) if c.startswith("PR"))
        clp = self._clp(index, status, billed, paid, patient_share, ORIGINAL_FREQUENCY)
        line = self._line(index, billed, paid)
        cas = [
            f"CAS*{_cas(code)}*{amount:.2f}" for code, amount in zip(codes, amounts, strict=True)
        ]
        remarks = [f"LQ*HE*{code}" for code in row["rarc_codes"]]
        return [*clp, *line, *cas, *remarks]

    def _payment(self, index: int) -> list[str]:
        """The later claim paying a recovered denial: it bills what was denied and pays what
        was recovered; the rest is a contractual reduction (CO-45), not a new denial."""
        row = self.rows[index]
        denied, recovered = float(row["denied_amount"]), float(row["recovered_amount"])
        correction = row["resolution"] == "paid_after_correction"
        frequency = REPLACEMENT_FREQUENCY if correction else ORIGINAL_FREQUENCY
        clp = self._clp(index, "1", denied, recovered, 0.0, frequency, paying=True)
        rest = round(denied - recovered, 2)
        cas = [f"CAS*CO*45*{rest:.2f}"] if rest > 0 else []
        return [*clp, *self._line(index, denied, recovered), *cas]

    def _clp(
        self,
        index: int,
        status: str,
        billed: float,
        paid: float,
        patient_share: float,
        frequency: str,
        *,
        paying: bool = False,
    ) -> list[str]:
        """CLP, the placeholder patient, the rendering provider and the received date."""
        row = self.rows[index]
        claim_id = str(row["claim_id"])
        filing = FILING_INDICATORS.get(str(row["payer_type"]), "ZZ")
        place = str(row["place_of_service"] or "")
        facility = place[:2] if row["claim_type"] == "institutional" else place
        segments = [
            f"CLP*{claim_id}*{status}*{billed:.2f}*{paid:.2f}*{patient_share:.2f}*{filing}"
            f"*{_payer_claim_number(claim_id, paying)}*{facility}*{frequency}",
            f"NM1*QC*1*PATIENT*SYNTHETIC****MI*{_member_id(claim_id)}",
        ]
        if pd.notna(row["provider_npi"]):
            segments.append(f"NM1*82*1*PROVIDER*RENDERING****XX*{row['provider_npi']}")
        received = self.dates["submission_date"][index] if "submission_date" in self.dates else ""
        if received:
            segments.append(f"DTM*050*{received}")
        return segments

    def _line(self, index: int, charge: float, paid: float) -> list[str]:
        """SVC with its service date: HCPCS with modifiers, or a revenue code (NU)."""
        row = self.rows[index]
        code = str(row["procedure_code"])
        revenue_code = len(code) == 4 and code.isdigit()
        procedure = ":".join(["NU" if revenue_code else "HC", code, *row["modifiers"]])
        institutional = row["claim_type"] == "institutional" and not revenue_code
        svc04 = FACILITY_REVENUE_CODE if institutional else ""
        units = int(row["units"]) if pd.notna(row["units"]) else 1
        return [
            f"SVC*{procedure}*{charge:.2f}*{paid:.2f}*{svc04}*{units}",
            f"DTM*472*{self.dates['service_date'][index]}",
        ]


def _adjustment_amounts(codes: list[str], refused: float, *, line_row: bool) -> list[float]:
    """Amounts for the CAS codes in their order, largest first, adding up to ``refused``.

    Each code takes two thirds of what is left, the last the rest. On a partly paid claim
    the refused amount is what its denial adjustments add up to, so routine adjustments
    (cost sharing riding along) carry 0.00 there: the history's paid amount leaves nothing
    else to reduce."""
    counted = [c for c in codes if not line_row or is_denial_adjustment(*split_adjustment(c))]
    left = round(refused * 100)
    shares: dict[str, int] = {}
    for position, code in enumerate(counted):
        share = left if position == len(counted) - 1 else left - left // 3
        shares[code], left = share, left - share
    return [shares.get(code, 0) / 100 for code in codes]


def _cas(code: str) -> str:
    group, reason = split_adjustment(code)
    return f"{group}*{reason}"


def _damage_some_way(loop: list[str], rng: np.random.Generator) -> list[str] | None:
    """The loop damaged by one claim defect class, picked at random among those that apply."""
    names = list(CLAIM_DEFECTS)
    for pick in rng.permutation(len(names)):
        damaged = damage_claim(loop, ELEMENT, names[pick])
        if damaged is not None:
            return damaged
    return None


def _member_id(claim_id: str) -> str:
    """A placeholder member id: a hash of the claim id, never anything like a real id."""
    return "ZZ" + hashlib.blake2b(claim_id.encode(), digest_size=5).hexdigest().upper()


def _payer_claim_number(claim_id: str, paying: bool) -> str:
    """CLP07: the payer's own number for this adjudication, a new one for the later payment."""
    digest = hashlib.blake2b(f"{claim_id}:{paying}".encode(), digest_size=6).digest()
    return f"{int.from_bytes(digest, 'big') % 10**13:013d}"
