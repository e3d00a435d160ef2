"""Link later payments back to earlier denials: recovery labels from the remittances a team
already has.

A denial is recovered when a later 835 from the same payer pays the same claim: same claim id
(CLP01), or same payer claim number (CLP07). A claim-level denial counts the later claim
payment (CLP04); a line-level denial counts later payments of the same procedure code on the
same service date (modifiers may differ: adding the right modifier is a common correction).

* ``recovered_amount``: the later payments, at most the denied amount;
* ``resolved_date``: the remittance date on which the payments reached that amount;
* ``resolution``: ``paid_after_correction`` when a paying claim was a replacement claim
  (CLP09 = 7), otherwise ``overturned_on_appeal`` (an 835 does not say whether an appeal
  was filed or the payer reprocessed on its own; both end in a payment on the original claim).

"Later" means a remittance dated after the denial, or on the same day under another trace
number. Denials nothing paid keep the labels they had, or become ``open`` with nothing
recovered. A paying remittance read twice counts once.

An 835 never says that a denial will not be paid, so from remittances alone every unpaid
denial stays ``open`` and the recovery model sees only recoveries. With ``unpaid_after_days``,
a denial still unpaid that many days after its denial date, when the remittances read from
its payer reach past that day, is ``written_off`` with nothing recovered, resolved on that
day: by then those remittances would have shown a recovery (training leaves the same span out
as immature). A payer whose remittances stop early leaves its denials open.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.contract import load_denials, validate, write_denials
from ingest.batch import FileOutcome, find_remittances
from ingest.denials import REPLACEMENT_FREQUENCY, is_reversal, iso_date
from ingest.errors import RemittanceError
from ingest.remit835 import Claim, RemittanceParser


class DenialsTableError(ValueError):
    """The denials table cannot be linked: it breaks the data contract."""


@dataclass(frozen=True)
class Payment:
    """One later payment towards a denial."""

    amount: float
    date: str  # ISO date of the paying remittance
    correction: bool  # paid on a replacement claim (CLP09 = 7)


@dataclass
class LinkReport:
    """The outcome of one link-outcomes run."""

    output: Path
    denials: int = 0
    recovered: int = 0
    recovered_amount: float = 0.0
    written_off: int = 0  # unpaid past ``unpaid_after_days``
    # Per payer id, the newest remittance date read (ISO): the data's today for its denials.
    paid_through: dict[str, str] = field(default_factory=dict)
    files: list[FileOutcome] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[FileOutcome]:
        return [outcome for outcome in self.files if not outcome.ok]


@dataclass(frozen=True)
class _Denial:
    """What matching needs to know about one denial row."""

    position: int
    level: str
    denial_date: str
    trace: str | None
    procedure_code: str | None
    service_date: str


class _DenialIndex:
    """Denials by (payer, claim id) and (payer, payer claim number)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.by_claim: dict[tuple[str, str], list[_Denial]] = defaultdict(list)
        self.by_payer_claim: dict[tuple[str, str], list[_Denial]] = defaultdict(list)
        for position, row in enumerate(frame.itertuples(index=False)):
            denial = _Denial(
                position=position,
                level=str(getattr(row, "denial_level", None) or "claim"),
                denial_date=row.denial_date.date().isoformat(),
                trace=_text(getattr(row, "remittance_trace", None)),
                procedure_code=_text(getattr(row, "procedure_code", None)),
                service_date=row.service_date.date().isoformat(),
            )
            self.by_claim[row.payer_id, row.claim_id].append(denial)
            payer_claim = _text(getattr(row, "payer_claim_number", None))
            if payer_claim:
                self.by_payer_claim[row.payer_id, payer_claim].append(denial)

    def matches(self, claim: Claim) -> list[_Denial]:
        payer = claim.remittance.payer_id
        found = {d.position: d for d in self.by_claim.get((payer, claim.claim_id), [])}
        if claim.payer_claim_number:
            for denial in self.by_payer_claim.get((payer, claim.payer_claim_number), []):
                found.setdefault(denial.position, denial)
        return list(found.values())


def link_outcomes(
    denials: Path | str,
    remits: Iterable[Path | str],
    out: Path | str,
    *,
    unpaid_after_days: int | None = None,
    progress: Callable[[FileOutcome], None] | None = None,
) -> LinkReport:
    """Write ``denials`` with recovery labels from the later payments found in ``remits``;
    with ``unpaid_after_days``, denials unpaid that long are written off (module docstring)."""
    frame = _load(Path(denials))
    index = _DenialIndex(frame)
    payments: dict[int, dict[tuple[str, ...], Payment]] = defaultdict(dict)
    files, skipped = find_remittances(remits)
    report = LinkReport(Path(out), denials=len(frame), skipped=skipped)
    for path in files:
        outcome, newest = _scan_file(path, index, payments)
        report.files.append(outcome)
        for payer, date in newest.items():
            report.paid_through[payer] = max(date, report.paid_through.get(payer, date))
        if progress is not None:
            progress(outcome)
    labelled = apply_payments(frame, {k: list(v.values()) for k, v in payments.items()})
    if unpaid_after_days is not None:
        labelled, report.written_off = write_off_unpaid(
            labelled, report.paid_through, unpaid_after_days
        )
    labelled["as_of_date"] = remittance_as_of_date(labelled)
    result = validate(labelled)
    if not result.ok:  # a bug, not bad input: the labels are derived from valid rows
        raise DenialsTableError(f"linked table breaks the contract: {result.errors[0]}")
    write_denials(result.frame, out)
    recovered = labelled["recovered_amount"] > 0
    report.recovered = int(recovered.sum())
    report.recovered_amount = float(labelled.loc[recovered, "recovered_amount"].sum())
    return report


def _load(path: Path) -> pd.DataFrame:
    result = load_denials(path)
    if not result.ok:
        shown = "; ".join(str(error) for error in result.errors[:5])
        raise DenialsTableError(
            f"{path}: {len(result.errors)} contract errors, e.g. {shown}; "
            "fix the table (denial-triage validate) before linking outcomes"
        )
    return result.frame


def _scan_file(
    path: Path,
    index: _DenialIndex,
    payments: dict[int, dict[tuple[str, ...], Payment]],
) -> tuple[FileOutcome, dict[str, str]]:
    """Record the payments one remittance file makes towards known denials, and return the
    file's newest remittance date per payer id (none when it failed). Claims that cannot be
    read whole are reported (findings) and pay nothing."""
    parser = RemittanceParser(path)
    outcome = FileOutcome(path)
    found: list[tuple[int, tuple[str, ...], Payment]] = []
    newest: dict[str, str] = {}
    try:
        for claim in parser.claims():
            date = iso_date(claim.remittance.remittance_date)
            payer = claim.remittance.payer_id
            if date is not None and payer:
                newest[payer] = max(date, newest.get(payer, date))
            found.extend(_claim_payments(claim, index))
        outcome.stats = parser.stats
    except RemittanceError as error:
        outcome.error = error
        newest.clear()
    else:  # a file counts only once it has read to the end, as in ingest
        for position, key, payment in found:
            payments[position][key] = payment
    outcome.findings = parser.findings.items
    outcome.suppressed_findings = parser.findings.suppressed
    return outcome, newest


def _claim_payments(
    claim: Claim, index: _DenialIndex
) -> list[tuple[int, tuple[str, ...], Payment]]:
    if claim.status in ("4", "22") or is_reversal(claim) or claim.paid <= 0:
        return []
    date = iso_date(claim.remittance.remittance_date)
    if date is None:
        return []
    remittance = claim.remittance
    # Identifies the paying claim, so that the same remittance read twice pays once.
    key = (remittance.payer_id, remittance.trace, date, remittance.transaction_control)
    key += (str(claim.ordinal), claim.claim_id)
    correction = claim.frequency == REPLACEMENT_FREQUENCY
    paid = []
    for denial in index.matches(claim):
        if not _is_later(denial, date, remittance.trace):
            continue
        amount = claim.paid if denial.level != "line" else _line_payment(claim, denial)
        if amount > 0:
            paid.append((denial.position, key, Payment(amount, date, correction)))
    return paid


def _is_later(denial: _Denial, date: str, trace: str) -> bool:
    if date != denial.denial_date:
        return date > denial.denial_date
    return denial.trace is not None and trace != denial.trace


def _line_payment(claim: Claim, denial: _Denial) -> float:
    """Later payments of the denied procedure on the denied service date."""
    total = 0.0
    for line in claim.lines:
        line_date = iso_date(line.start or claim.start)
        if line.procedure_code == denial.procedure_code and line_date == denial.service_date:
            total += max(line.paid, 0.0)
    return total


def apply_payments(frame: pd.DataFrame, payments: dict[int, list[Payment]]) -> pd.DataFrame:
    """``frame`` with recovered_amount, resolution and resolved_date set from ``payments``
    (keyed by row position); rows without payments keep their labels or become open."""
    labelled = frame.copy()
    recovered = _label(labelled, "recovered_amount", 0.0).astype("float64")
    resolution = _label(labelled, "resolution", "open").astype(object)
    resolved = pd.to_datetime(_label(labelled, "resolved_date", None)).astype("datetime64[s]")
    for position, found in payments.items():
        denied = float(labelled["denied_amount"].iat[position])
        amount, date = _recovery(found, denied)
        recovered.iat[position] = amount
        resolved.iat[position] = pd.Timestamp(date)
        correction = any(payment.correction for payment in found)
        resolution.iat[position] = "paid_after_correction" if correction else "overturned_on_appeal"
    labelled["recovered_amount"] = recovered
    labelled["resolution"] = resolution
    labelled["resolved_date"] = resolved
    return labelled


def write_off_unpaid(
    frame: pd.DataFrame, paid_through: dict[str, str], days: int
) -> tuple[pd.DataFrame, int]:
    """``frame`` with its ``open`` denials written off (nothing recovered, resolved ``days``
    after the denial) where their payer's remittances were read through ``days`` after the
    denial or later (``paid_through``: payer id to ISO date); and how many there were."""
    deadline = pd.to_datetime(frame["denial_date"]) + pd.Timedelta(days=days)
    horizon = pd.to_datetime(frame["payer_id"].map(paid_through))
    unpaid = ((frame["resolution"] == "open") & (deadline <= horizon)).to_numpy(bool)
    closed = frame.copy()
    closed.loc[unpaid, "resolution"] = "written_off"
    closed.loc[unpaid, "recovered_amount"] = 0.0
    closed.loc[unpaid, "resolved_date"] = deadline[unpaid].astype("datetime64[s]")
    return closed, int(unpaid.sum())


def remittance_as_of_date(frame: pd.DataFrame) -> pd.Series:
    """Each denial's ``as_of_date`` as ingest set it (the day its remittance was issued), or
    its ``denial_date`` where it is missing; never the day the labels were linked."""
    denial_date = pd.to_datetime(frame["denial_date"]).astype("datetime64[s]")
    if "as_of_date" not in frame:
        return denial_date
    return pd.to_datetime(frame["as_of_date"]).astype("datetime64[s]").fillna(denial_date)


def _label(frame: pd.DataFrame, name: str, default: object) -> pd.Series:
    """An existing label column with gaps filled by ``default``, or a new one."""
    if name not in frame:
        return pd.Series([default] * len(frame), index=frame.index)
    column = frame[name]
    if default is None:
        return column
    return column.astype(object).where(column.notna(), default)


def _recovery(payments: list[Payment], denied: float) -> tuple[float, str]:
    """How much was recovered (at most ``denied``) and the date the total was reached."""
    total = 0.0
    date = ""
    for payment in sorted(payments, key=lambda payment: payment.date):
        total += payment.amount
        date = payment.date
        if total >= denied:
            break
    return round(min(total, denied), 2), date


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None
