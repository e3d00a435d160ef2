"""The denial data contract: the one table every part of the project speaks.

Column names, types, allowed values and rules are declared once in :data:`COLUMNS`; loading,
coercion, validation, writing and the JSON Schema of the scoring fields are all derived from
that declaration, so the generator, ingestion, training and the API cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PAYER_TYPES = (
    "medicare",
    "medicare_advantage",
    "medicaid",
    "medicaid_managed_care",
    "commercial",
    "workers_comp",
    "other",
)
CLAIM_TYPES = ("professional", "institutional")
GROUP_CODES = ("CO", "PR", "OA", "PI", "CR")
ROOT_CAUSES = (
    "eligibility_registration",
    "coordination_of_benefits",
    "authorization_referral",
    "coding",
    "medical_necessity_documentation",
    "missing_invalid_claim_data",
    "timely_filing",
    "duplicate",
    "non_covered_service",
    "payer_error_pricing",
)
RESOLUTIONS = (
    "overturned_on_appeal",
    "paid_after_correction",
    "written_off",
    "billed_to_patient",
    "open",
)
LIST_SEPARATOR = "|"
CARC_PATTERN = r"(?:CO|PR|OA|PI|CR)-[A-Z]?\d{1,3}"
RARC_PATTERN = r"(?:MA|M|N)\d{1,4}"


class Kind(StrEnum):
    STRING = "string"
    DATE = "date"
    DECIMAL = "decimal"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    STRING_LIST = "list of string"


# Upper bounds far past any real claim. Amounts are stored as NUMERIC(14, 2) (PostgreSQL refuses
# more) and rounded to cents here, which overflows to infinity near 1.8e306; counts (units,
# submission attempts) pass through float64 into Int64, which breaks past int64.
AMOUNT_MAXIMUM = 999_999_999_999.99
COUNT_MAXIMUM = 2**31 - 1
_MAXIMUM = {Kind.DECIMAL: AMOUNT_MAXIMUM, Kind.INTEGER: COUNT_MAXIMUM}
# Every string is bounded here, once: the API's schema, file validation and the service's
# tables (``VARCHAR(TEXT_MAXIMUM)`` for denial ids) all read these, so a value the database
# would refuse is refused at the edge with the field's name, never after a score is answered.
TEXT_MAXIMUM = 128  # ids and names: X12 ids are at most 80 characters (CLP01 38, REF02 50)
CODE_MAXIMUM = 16  # one code of a list (CARC, RARC, modifier, ICD-10-CM)
LIST_MAXIMUM = 99  # codes of one list: X12 repeats an adjustment or remark loop at most 99 times


class Role(StrEnum):
    REQUIRED = "required"  # needed for scoring and training
    OPTIONAL = "optional"  # used when present
    LABEL = "label"  # outcome labels of history


@dataclass(frozen=True)
class Column:
    """One contract column and its single-column rules."""

    name: str
    kind: Kind
    role: Role
    description: str
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None  # whole-value pattern for strings, per item for lists
    minimum: float | None = None
    exclusive_minimum: bool = False

    @property
    def maximum(self) -> float | None:
        """The largest value a number column accepts (none for other kinds)."""
        return _MAXIMUM.get(self.kind)

    @property
    def max_length(self) -> int | None:
        """The longest text a string column accepts, or one item of a list column."""
        return {Kind.STRING: TEXT_MAXIMUM, Kind.STRING_LIST: CODE_MAXIMUM}.get(self.kind)

    @property
    def max_items(self) -> int | None:
        """How many items a list column accepts (none for other kinds)."""
        return LIST_MAXIMUM if self.kind is Kind.STRING_LIST else None


def _col(name: str, kind: Kind, role: Role, description: str, **rules: object) -> Column:
    return Column(name, kind, role, description, **rules)  # type: ignore[arg-type]


R, OPT, L = Role.REQUIRED, Role.OPTIONAL, Role.LABEL
COLUMNS: tuple[Column, ...] = (
    _col("denial_id", Kind.STRING, R, "Unique id of the denial in the table."),
    _col("claim_id", Kind.STRING, R, "The provider's claim id (835 CLP01)."),
    _col("payer_id", Kind.STRING, R, "Payer identifier."),
    _col("payer_type", Kind.STRING, R, "Kind of payer.", allowed=PAYER_TYPES),
    _col("claim_type", Kind.STRING, R, "Professional or institutional.", allowed=CLAIM_TYPES),
    _col("service_date", Kind.DATE, R, "Date of service; on or before denial_date."),
    _col("denial_date", Kind.DATE, R, "Date of the remittance that denied it."),
    _col("billed_amount", Kind.DECIMAL, R, "Billed amount.", minimum=0),
    _col(
        "denied_amount",
        Kind.DECIMAL,
        R,
        "Denied amount; at least a cent, at most billed_amount.",
        minimum=0.01,
    ),
    _col(
        "carc_codes",
        Kind.STRING_LIST,
        R,
        "Adjustments as GROUP-CODE, primary (largest amount) first.",
        pattern=CARC_PATTERN,
    ),
    _col("rarc_codes", Kind.STRING_LIST, OPT, "Remark codes.", pattern=RARC_PATTERN),
    _col("paid_amount", Kind.DECIMAL, OPT, "Paid on the claim or line.", minimum=0),
    _col("submission_date", Kind.DATE, OPT, "Claim submitted to the payer."),
    _col("provider_npi", Kind.STRING, OPT, "Rendering or billing NPI.", pattern=r"\d{10}"),
    _col("specialty", Kind.STRING, OPT, "Provider specialty."),
    _col("facility_id", Kind.STRING, OPT, "Site or location."),
    _col("place_of_service", Kind.STRING, OPT, "Two-digit place of service or bill type."),
    _col("procedure_code", Kind.STRING, OPT, "CPT/HCPCS or revenue code."),
    _col("modifiers", Kind.STRING_LIST, OPT, "Procedure modifiers."),
    _col("diagnosis_codes", Kind.STRING_LIST, OPT, "ICD-10-CM codes, primary first."),
    _col("units", Kind.INTEGER, OPT, "Units of service.", minimum=0),
    _col("prior_auth_on_file", Kind.BOOLEAN, OPT, "An authorization number was on the claim."),
    _col("eligibility_verified", Kind.BOOLEAN, OPT, "Eligibility was checked before service."),
    _col("submission_attempt", Kind.INTEGER, OPT, "1 for the first submission.", minimum=1),
    _col(
        "as_of_date",
        Kind.DATE,
        OPT,
        "Day the denial is looked at, for aging and deadlines; default denial_date in a history, "
        "today for live scoring only.",
    ),
    _col("root_cause", Kind.STRING, L, "True root-cause category.", allowed=ROOT_CAUSES),
    _col("preventable", Kind.BOOLEAN, L, "A front-end or billing step could have avoided it."),
    _col("resolution", Kind.STRING, L, "How the denial ended.", allowed=RESOLUTIONS),
    _col(
        "recovered_amount",
        Kind.DECIMAL,
        L,
        "Recovered; at most denied_amount, 0 when nothing recovered.",
        minimum=0,
    ),
    _col("resolved_date", Kind.DATE, L, "When the resolution happened; empty while open."),
)
COLUMN_BY_NAME = {column.name: column for column in COLUMNS}
REQUIRED_COLUMNS = tuple(c.name for c in COLUMNS if c.role is Role.REQUIRED)
SCORING_COLUMNS = tuple(c.name for c in COLUMNS if c.role is not Role.LABEL)
LABEL_COLUMNS = tuple(c.name for c in COLUMNS if c.role is Role.LABEL)
LIST_COLUMNS = tuple(c.name for c in COLUMNS if c.kind is Kind.STRING_LIST)
# What the synthetic generator knows of each denial (``generate --with-truth``): the cause
# before label noise, the probabilities the labels were drawn with, and whether the denial
# recovers money in the end, also when the history ends before its outcome arrives (an open
# denial's outcome, which a real history cannot know). Outside the contract, for benchmarks
# only: they would leak the labels, so a contract file holding them is refused.
TRUTH_COLUMNS = (
    "true_root_cause",
    "true_recovery_probability",
    "true_preventable_probability",
    "true_recovered",
)
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True)
class RowError:
    """One rule a row breaks. ``row`` is the 1-based data row (the CSV header is not counted);
    ``None`` means the whole table (a missing required column)."""

    row: int | None
    column: str
    reason: str

    def __str__(self) -> str:
        where = "table" if self.row is None else f"row {self.row}"
        return f"{where}, column {self.column}: {self.reason}"


@dataclass
class ValidationResult:
    """Every row as loaded and coerced, with every rule it breaks. Nothing is dropped here."""

    frame: pd.DataFrame
    errors: list[RowError]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def bad_rows(self) -> set[int]:
        """1-based numbers of rows with at least one error."""
        return {e.row for e in self.errors if e.row is not None}

    def valid_rows(self) -> pd.DataFrame:
        """The rows that break no rule; callers decide what to do with the others."""
        if any(e.row is None for e in self.errors):
            return self.frame.iloc[0:0]
        keep = np.ones(len(self.frame), dtype=bool)
        keep[[row - 1 for row in self.bad_rows]] = False
        return self.frame[keep].reset_index(drop=True)


# ---------------------------------------------------------------------------- reading


class ContractFileError(ValueError):
    """The file cannot be read as a table at all (missing, unknown extension, corrupt)."""


def read_raw(path: Path) -> pd.DataFrame:
    """Read a Parquet or CSV file (chosen by extension) without interpreting values."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise ContractFileError(f"{path}: no such file")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path).reset_index(drop=True)
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as exc:
        raise ContractFileError(f"{path}: cannot be read as {suffix[1:]}: {exc}") from exc
    raise ContractFileError(f"{path}: unknown extension {suffix!r}; use .parquet or .csv")


def load_denials(path: Path | str) -> ValidationResult:
    """Load a contract file, coerce every column to its type and check every rule."""
    return validate(read_raw(Path(path)))


def validate(raw: pd.DataFrame) -> ValidationResult:
    """Coerce a frame of contract columns and report every broken rule, row by row."""
    frame = raw.reset_index(drop=True).copy()
    errors = [
        RowError(None, name, "required column is missing")
        for name in REQUIRED_COLUMNS
        if name not in frame.columns
    ]
    errors.extend(
        RowError(None, name, "the generator's truth, for benchmarks only: remove the column")
        for name in TRUTH_COLUMNS
        if name in frame.columns
    )
    for column in COLUMNS:
        if column.name in frame.columns:
            frame[column.name] = _coerce_column(frame[column.name], column, errors)
    if not any(e.row is None for e in errors):
        errors.extend(_cross_column_errors(frame))
    errors.sort(key=lambda e: (e.row or 0, e.column))
    return ValidationResult(frame, errors)


class _NeedsFullCheck(Exception):
    """A value the fast path does not vouch for: :func:`validate` must decide."""


def clean_records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """The contract's coercion of ``records`` when every one is clean and plainly typed.

    Gives exactly the values ``validate(pd.DataFrame(records)).frame`` holds (dates as
    ``datetime.date``, missing values as None, one key per scoring column), without pandas,
    whose fixed cost per operation is tens of milliseconds for a request of a few denials.
    Returns None when any record breaks a rule, or holds a value this path does not handle
    (text that is not printable ASCII, a number as text, a date with a time, a label column):
    :func:`validate` then decides, and reports every error.
    """
    try:
        rows = [_clean_record(record) for record in records]
        for name in _DECIMAL_COLUMNS:
            _round_column(rows, name)
        for row in rows:
            _check_clean_row(row)
    except _NeedsFullCheck:
        return None
    ids = [row["denial_id"] for row in rows]
    return rows if len(set(ids)) == len(ids) else None


_DECIMAL_COLUMNS = tuple(
    c.name for c in COLUMNS if c.kind in (Kind.DECIMAL, Kind.INTEGER) and c.role is not Role.LABEL
)
_FAST_MIN_YEAR, _FAST_MAX_YEAR = 1900, 2200  # well inside what pandas' dates represent
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_PATTERNS = {c.name: re.compile(c.pattern, re.ASCII) for c in COLUMNS if c.pattern}


def _clean_record(record: Mapping[str, Any]) -> dict[str, Any]:
    if not _LABELS.isdisjoint(record):
        raise _NeedsFullCheck
    get = record.get
    return {name: coerce(get(name)) for name, coerce in _FAST_COLUMNS}


def _fast_text(value: object) -> str | None:
    if value is None:
        return None
    # Printable ASCII only: pandas and Python then agree on what whitespace and \d mean.
    if not isinstance(value, str) or not (value.isascii() and value.isprintable()):
        raise _NeedsFullCheck
    return value.strip() or None


def _fast_date(value: object) -> dt.date | None:
    text = _fast_text(value) if not isinstance(value, dt.date) else value.isoformat()
    if text is None:
        return None
    if isinstance(value, dt.datetime) or not _ISO_DATE.fullmatch(text):
        raise _NeedsFullCheck
    try:
        date = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise _NeedsFullCheck from exc
    if not _FAST_MIN_YEAR <= date.year <= _FAST_MAX_YEAR:
        raise _NeedsFullCheck
    return date


def _fast_number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _NeedsFullCheck
    if isinstance(value, int) and abs(value) > 2**53:
        raise _NeedsFullCheck  # beyond exact floats pandas may keep another type
    if not math.isfinite(value):
        raise _NeedsFullCheck
    return float(value)


def _fast_boolean(value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _NeedsFullCheck
    return value


def _fast_list(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise _NeedsFullCheck  # validate() would turn None or a number into a code
    items = [_fast_text(item) for item in value]
    return [item for item in items if item is not None]


_FAST_COERCERS = {
    Kind.STRING: _fast_text,
    Kind.DATE: _fast_date,
    Kind.DECIMAL: _fast_number,
    Kind.INTEGER: _fast_number,
    Kind.BOOLEAN: _fast_boolean,
    Kind.STRING_LIST: _fast_list,
}
_LABELS = frozenset(LABEL_COLUMNS)
_FAST_COLUMNS = tuple((c.name, _FAST_COERCERS[c.kind]) for c in COLUMNS if c.role is not Role.LABEL)
# Columns with a rule a coerced value can break (a required value, allowed values, a pattern,
# a bound or a length); the others hold any value their coercion lets through.
_RULED_COLUMNS = tuple(
    c
    for c in COLUMNS
    if c.role is Role.REQUIRED
    or (
        c.role is not Role.LABEL
        and (
            c.allowed
            or c.pattern
            or c.minimum is not None
            or c.maximum is not None
            or c.max_length is not None
        )
    )
)


def _round_column(rows: list[dict[str, Any]], name: str) -> None:
    """Round to cents as :func:`validate` does (numpy's rounding, not Python's ``round``)."""
    present = [i for i, row in enumerate(rows) if row[name] is not None]
    rounded = np.round(np.array([rows[i][name] for i in present], dtype=float), 2)
    integer = COLUMN_BY_NAME[name].kind is Kind.INTEGER
    for i, value in zip(present, rounded.tolist(), strict=True):
        if integer and not value.is_integer():
            raise _NeedsFullCheck
        rows[i][name] = int(value) if integer else value


def _check_clean_row(row: dict[str, Any]) -> None:
    """Every single-column and cross-column rule of the contract, on one coerced row."""
    for column in _RULED_COLUMNS:
        if not _obeys(column, row[column.name]):
            raise _NeedsFullCheck
    if row["service_date"] > row["denial_date"] or row["denied_amount"] > row["billed_amount"]:
        raise _NeedsFullCheck


def _obeys(column: Column, value: Any) -> bool:
    if column.kind is Kind.STRING_LIST:
        return _list_obeys(column, value)
    if value is None:
        return column.role is not Role.REQUIRED
    if column.max_length is not None and len(value) > column.max_length:
        return False
    if column.allowed is not None and value not in column.allowed:
        return False
    if column.name in _PATTERNS and not _PATTERNS[column.name].fullmatch(value):
        return False
    if column.maximum is not None and value > column.maximum:
        return False
    if column.minimum is None:
        return True
    return value > column.minimum if column.exclusive_minimum else value >= column.minimum


def _list_obeys(column: Column, codes: list[str]) -> bool:
    if len(codes) > LIST_MAXIMUM or any(len(code) > CODE_MAXIMUM for code in codes):
        return False
    pattern = _PATTERNS.get(column.name)
    matches = pattern is None or all(pattern.fullmatch(code) for code in codes)
    return matches and (bool(codes) or column.role is not Role.REQUIRED)


def _coerce_column(values: pd.Series, column: Column, errors: list[RowError]) -> pd.Series:
    coercer = _COERCERS[column.kind]
    coerced, unparseable = coercer(values)
    _report(errors, unparseable, column.name, f"not a valid {column.kind}")
    present = coerced.notna().to_numpy() if column.kind is not Kind.STRING_LIST else None
    if column.role is Role.REQUIRED and present is not None:
        _report(errors, ~present & ~unparseable, column.name, "required value is empty")
    if column.kind is Kind.STRING_LIST:
        _check_list(coerced, column, errors)
    elif column.kind is Kind.STRING:
        _check_string(coerced, column, errors)
    elif column.kind in (Kind.DECIMAL, Kind.INTEGER):
        _check_range(coerced, column, errors)
    return coerced


def _report(errors: list[RowError], mask: np.ndarray, column: str, reason: str) -> None:
    errors.extend(RowError(int(i) + 1, column, reason) for i in np.flatnonzero(mask))


def _as_text(values: pd.Series) -> pd.Series:
    """Values as stripped strings, with blanks as missing."""
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def _coerce_string(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    return _as_text(values).astype(object).where(lambda s: s.notna(), None), _no_errors(values)


def _coerce_date(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_datetime64_any_dtype(values):
        dates = values.dt.tz_localize(None) if values.dt.tz is not None else values
        return dates.dt.normalize().astype("datetime64[s]"), _no_errors(values)
    text = _as_text(values)
    dates = pd.to_datetime(text, errors="coerce", format="ISO8601")
    return dates.dt.normalize().astype("datetime64[s]"), (text.notna() & dates.isna()).to_numpy()


def _coerce_decimal(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    numbers = pd.to_numeric(_as_text(values) if values.dtype == object else values, "coerce")
    numbers = numbers.astype("float64")
    bad = (pd.notna(values) & numbers.isna()).to_numpy() & _not_blank(values)
    return numbers.round(2), bad


def _coerce_integer(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    numbers, bad = _coerce_decimal(values)
    # Past int64 (or infinite) there is no whole number to hold: unparseable, like a fraction.
    unholdable = numbers.notna() & ((numbers != np.floor(numbers)) | (numbers.abs() >= 2.0**63))
    bad = bad | unholdable.to_numpy()
    return numbers.where(~unholdable).astype("Int64"), bad


def _coerce_boolean(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean"), _no_errors(values)
    text = _as_text(values).str.lower()
    parsed = pd.Series(pd.NA, index=values.index, dtype="boolean")
    parsed[text.isin(_TRUE).fillna(False)] = True
    parsed[text.isin(_FALSE).fillna(False)] = False
    return parsed, (text.notna() & parsed.isna()).to_numpy()


def _coerce_list(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    lists = [_to_list(value) for value in values]
    return pd.Series(lists, index=values.index, dtype=object), _no_errors(values)


def _to_list(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return []
    if isinstance(value, str):
        items: Iterable[object] = value.split(LIST_SEPARATOR)
    else:
        items = value  # a Parquet list arrives as an array
    return [text for text in (str(item).strip() for item in items) if text]


def _no_errors(values: pd.Series) -> np.ndarray:
    return np.zeros(len(values), dtype=bool)


def _not_blank(values: pd.Series) -> np.ndarray:
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        return _as_text(values).notna().to_numpy()
    return np.ones(len(values), dtype=bool)


_COERCERS = {
    Kind.STRING: _coerce_string,
    Kind.DATE: _coerce_date,
    Kind.DECIMAL: _coerce_decimal,
    Kind.INTEGER: _coerce_integer,
    Kind.BOOLEAN: _coerce_boolean,
    Kind.STRING_LIST: _coerce_list,
}


# ---------------------------------------------------------------------------- rules


def _check_string(values: pd.Series, column: Column, errors: list[RowError]) -> None:
    present = values.notna()
    too_long = (values.str.len() > TEXT_MAXIMUM).fillna(False).to_numpy(dtype=bool)
    _report(errors, too_long, column.name, f"longer than {TEXT_MAXIMUM} characters")
    if column.allowed is not None:
        bad = present & ~values.isin(column.allowed)
        _report(errors, bad.to_numpy(), column.name, f"must be one of {', '.join(column.allowed)}")
    if column.pattern is not None:
        matches = values[present].astype(str).str.fullmatch(column.pattern)
        bad = present.copy()
        bad[present] = ~matches
        _report(errors, bad.to_numpy(), column.name, f"must match {column.pattern}")


def _check_list(values: pd.Series, column: Column, errors: list[RowError]) -> None:
    counts = values.map(len).to_numpy()
    if column.role is Role.REQUIRED:
        _report(errors, counts == 0, column.name, "needs at least one code")
    _report(errors, counts > LIST_MAXIMUM, column.name, f"more than {LIST_MAXIMUM} codes")
    items = values.explode().dropna()
    long_codes = items[items.astype(str).str.len() > CODE_MAXIMUM].index.unique()
    reason = f"a code longer than {CODE_MAXIMUM} characters"
    errors.extend(RowError(int(position) + 1, column.name, reason) for position in long_codes)
    if column.pattern is None:
        return
    wrong = items[~items.astype(str).str.fullmatch(column.pattern)]
    for position, group in wrong.groupby(level=0, sort=True):
        codes = ", ".join(quoted_code(code) for code in group)
        reason = f"{codes} must match {column.pattern}"
        errors.append(RowError(int(position) + 1, column.name, reason))


def quoted_code(value: object) -> str:
    """A value for a message about codes: quoted when it is short enough to be a code, else
    only its length, since a longer value in a code field may be an identifier (a member id
    typed in the wrong column) that must never be echoed into logs or answers."""
    text = str(value)
    return repr(text) if len(text) <= _QUOTABLE_CODE else f"a {len(text)}-character value"


_QUOTABLE_CODE = 8  # the longest CARC or RARC (CO-A123, MA1234) fits; member ids are longer


def _check_range(values: pd.Series, column: Column, errors: list[RowError]) -> None:
    if column.minimum is not None:
        limit = column.minimum
        if column.exclusive_minimum:
            bad, reason = values <= limit, f"must be > {limit:g}"
        else:
            bad, reason = values < limit, f"must be >= {limit:g}"
        _report(errors, bad.fillna(False).to_numpy(dtype=bool), column.name, reason)
    too_large = (values > column.maximum).fillna(False).to_numpy(dtype=bool)
    _report(errors, too_large, column.name, f"must be <= {column.maximum:,}")


def _cross_column_errors(frame: pd.DataFrame) -> list[RowError]:
    errors: list[RowError] = []
    duplicated = frame["denial_id"].notna() & frame["denial_id"].duplicated(keep="first")
    _report(errors, duplicated.to_numpy(), "denial_id", "duplicate of an earlier row")
    late = frame["service_date"] > frame["denial_date"]
    _report(errors, late.fillna(False).to_numpy(bool), "service_date", "after denial_date")
    over = frame["denied_amount"] > frame["billed_amount"]
    _report(errors, over.fillna(False).to_numpy(bool), "denied_amount", "exceeds billed_amount")
    if "recovered_amount" in frame:
        over = frame["recovered_amount"] > frame["denied_amount"]
        reason = "exceeds denied_amount"
        _report(errors, over.fillna(False).to_numpy(bool), "recovered_amount", reason)
    if "resolved_date" in frame:
        errors.extend(_resolution_errors(frame))
    return errors


def _resolution_errors(frame: pd.DataFrame) -> list[RowError]:
    errors: list[RowError] = []
    resolved = frame["resolved_date"]
    early = resolved < frame["denial_date"]
    _report(errors, early.fillna(False).to_numpy(bool), "resolved_date", "before denial_date")
    if "resolution" in frame:
        dated_open = (frame["resolution"] == "open").fillna(False) & resolved.notna()
        _report(errors, dated_open.to_numpy(bool), "resolved_date", "must be empty while open")
    return errors


# ---------------------------------------------------------------------------- writing


def to_arrow_schema(frame: pd.DataFrame) -> object:
    """The Arrow schema of a contract frame; extra columns keep the type pandas gives them."""
    import pyarrow as pa

    arrow_types = {
        Kind.STRING: pa.string(),
        Kind.DATE: pa.date32(),
        Kind.DECIMAL: pa.float64(),
        Kind.INTEGER: pa.int64(),
        Kind.BOOLEAN: pa.bool_(),
        Kind.STRING_LIST: pa.list_(pa.string()),
    }
    inferred = pa.Schema.from_pandas(frame, preserve_index=False)
    fields = [
        pa.field(name, arrow_types[COLUMN_BY_NAME[name].kind])
        if name in COLUMN_BY_NAME
        else inferred.field(name)
        for name in frame.columns
    ]
    return pa.schema(fields)


def to_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy ready for CSV: lists joined with ``|``, dates as ISO text."""
    out = frame.copy()
    for name in frame.columns:
        column = COLUMN_BY_NAME.get(name)
        if column is None:
            continue
        if column.kind is Kind.STRING_LIST:
            out[name] = [LIST_SEPARATOR.join(items) for items in frame[name]]
        elif column.kind is Kind.DATE:
            out[name] = pd.to_datetime(frame[name]).dt.strftime("%Y-%m-%d")
    return out


def write_denials(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write a contract frame to Parquet or CSV (chosen by extension)."""
    with DenialWriter(Path(path)) as writer:
        writer.write(frame)
    return Path(path)


class DenialWriter:
    """Writes a contract table chunk by chunk, so memory stays bounded for large tables."""

    def __init__(self, path: Path) -> None:
        if path.suffix.lower() not in {".parquet", ".csv"}:
            raise ContractFileError(f"{path}: unknown extension; use .parquet or .csv")
        self.path = path
        self.rows_written = 0
        self._started = False  # something, maybe an empty typed frame, was written
        self._parquet: object | None = None

    def __enter__(self) -> DenialWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        return self

    def write(self, chunk: pd.DataFrame) -> None:
        if self.path.suffix.lower() == ".csv":
            to_csv_frame(chunk).to_csv(self.path, mode="a", header=not self._started, index=False)
        else:
            self._write_parquet(chunk)
        self.rows_written += len(chunk)
        self._started = True

    def _write_parquet(self, chunk: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = to_arrow_schema(chunk)
        table = pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, schema, compression="zstd")
        self._parquet.write_table(table)  # type: ignore[attr-defined]

    def __exit__(self, *exc_info: object) -> None:
        if not self._started and exc_info[0] is None:
            # An empty table still has the contract's columns, so readers can open it.
            self.write(
                pd.DataFrame({column.name: pd.Series([], dtype=object) for column in COLUMNS})
            )
        if self._parquet is not None:
            self._parquet.close()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- JSON Schema


def scoring_json_schema() -> dict[str, object]:
    """JSON Schema (2020-12) of one denial as sent for scoring: required and optional fields."""
    properties = {
        column.name: _json_property(column) for column in COLUMNS if column.role is not Role.LABEL
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Denial",
        "description": (
            "One denial to score. Cross-field rules: service_date <= denial_date, "
            "denied_amount <= billed_amount, denial_id unique within a request."
        ),
        "type": "object",
        "properties": properties,
        "required": list(REQUIRED_COLUMNS),
        "additionalProperties": True,
    }


def _json_property(column: Column) -> dict[str, object]:
    prop: dict[str, object] = {"description": column.description}
    if column.kind is Kind.STRING_LIST:
        item: dict[str, object] = {"type": "string", "maxLength": column.max_length}
        if column.pattern:
            item["pattern"] = f"^{column.pattern}$"
        prop.update(type="array", items=item, maxItems=column.max_items)
        if column.role is Role.REQUIRED:
            prop["minItems"] = 1
        else:
            prop["type"] = ["array", "null"]  # like every optional field, null means absent
        return prop
    json_types = {
        Kind.STRING: "string",
        Kind.DATE: "string",
        Kind.DECIMAL: "number",
        Kind.INTEGER: "integer",
        Kind.BOOLEAN: "boolean",
    }
    prop["type"] = (
        json_types[column.kind]
        if column.role is Role.REQUIRED
        else [
            json_types[column.kind],
            "null",
        ]
    )
    if column.kind is Kind.DATE:
        prop["format"] = "date"
    if column.allowed:
        prop["enum"] = list(column.allowed) + ([] if column.role is Role.REQUIRED else [None])
    if column.pattern:
        prop["pattern"] = f"^{column.pattern}$"
    if column.kind is Kind.STRING and column.role is Role.REQUIRED:
        prop["minLength"] = 1
    if column.kind is Kind.STRING:
        prop["maxLength"] = column.max_length
    if column.minimum is not None:
        key = "exclusiveMinimum" if column.exclusive_minimum else "minimum"
        prop[key] = column.minimum
    if column.maximum is not None:
        prop["maximum"] = column.maximum
    return prop
