"""The data contract: every rule rejects a bad row by number, column and reason; nothing is
dropped; CSV and Parquet round-trip; the scoring JSON Schema agrees with the contract."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from features.contract import (
    COLUMNS,
    LABEL_COLUMNS,
    REQUIRED_COLUMNS,
    SCORING_COLUMNS,
    ContractFileError,
    Kind,
    Role,
    RowError,
    ValidationResult,
    clean_records,
    load_denials,
    scoring_json_schema,
    validate,
    write_denials,
)

CONTRACT_DOC = Path(__file__).resolve().parents[2] / ".." / "shared" / "docs" / "data-contract.md"

# One denial as a worklist export would carry it: every contract column, plus a site column.
GOOD_ROW: dict[str, str] = {
    "denial_id": "D1",
    "claim_id": "CLM-0001",
    "payer_id": "87726",
    "payer_type": "commercial",
    "claim_type": "professional",
    "service_date": "2026-01-05",
    "denial_date": "2026-02-01",
    "billed_amount": "250.00",
    "denied_amount": "180.50",
    "carc_codes": "CO-197|CO-16",
    "rarc_codes": "N54|M127",
    "paid_amount": "0",
    "submission_date": "2026-01-10",
    "provider_npi": "1234567893",
    "specialty": "orthopedics",
    "facility_id": "MAIN",
    "place_of_service": "11",
    "procedure_code": "29881",
    "modifiers": "RT|59",
    "diagnosis_codes": "M23.221|M25.561",
    "units": "1",
    "prior_auth_on_file": "false",
    "eligibility_verified": "true",
    "submission_attempt": "1",
    "as_of_date": "2026-02-10",
    "root_cause": "authorization_referral",
    "preventable": "true",
    "resolution": "open",
    "recovered_amount": "0",
    "resolved_date": "",
    "site_worklist": "ortho-west",
}


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def denial(denial_id: str, **changes: str) -> dict[str, str]:
    return {**GOOD_ROW, "denial_id": denial_id, **changes}


def load_rows(tmp_path: Path, rows: list[dict[str, str]]) -> ValidationResult:
    return load_denials(write_csv(tmp_path / "denials.csv", rows))


# ---------------------------------------------------------------------------- row rules

ENUM_REASON = "must be one of"
BAD_ROWS = [
    # (case, changes to a good row, column, reason the row is rejected for)
    ("unknown payer_type", {"payer_type": "blue_cross"}, "payer_type", ENUM_REASON),
    ("payer_type in capitals", {"payer_type": "Medicare"}, "payer_type", ENUM_REASON),
    ("unknown claim_type", {"claim_type": "dental"}, "claim_type", ENUM_REASON),
    ("empty payer_id", {"payer_id": ""}, "payer_id", "required value is empty"),
    ("blank claim_id", {"claim_id": "   "}, "claim_id", "required value is empty"),
    ("empty denial_date", {"denial_date": ""}, "denial_date", "required value is empty"),
    ("empty billed_amount", {"billed_amount": ""}, "billed_amount", "required value is empty"),
    ("service after denial", {"service_date": "2026-02-02"}, "service_date", "after denial_date"),
    ("negative billed", {"billed_amount": "-1"}, "billed_amount", "must be >= 0"),
    ("zero denied", {"denied_amount": "0"}, "denied_amount", "must be >= 0.01"),
    ("negative denied", {"denied_amount": "-5"}, "denied_amount", "must be >= 0.01"),
    ("denied over billed", {"denied_amount": "250.01"}, "denied_amount", "exceeds billed_amount"),
    ("carc bad group", {"carc_codes": "XX-16"}, "carc_codes", "'XX-16' must match"),
    ("carc no dash", {"carc_codes": "CO-197|CO16"}, "carc_codes", "'CO16' must match"),
    ("carc lower case", {"carc_codes": "co-16"}, "carc_codes", "'co-16' must match"),
    ("empty carc list", {"carc_codes": ""}, "carc_codes", "needs at least one code"),
    ("carc list of blanks", {"carc_codes": " | "}, "carc_codes", "needs at least one code"),
    ("bad rarc", {"rarc_codes": "N54|X12"}, "rarc_codes", "'X12' must match"),
    ("npi 9 digits", {"provider_npi": "123456789"}, "provider_npi", "must match"),
    ("npi 11 digits", {"provider_npi": "12345678901"}, "provider_npi", "must match"),
    # pragma: allowlist nextline secret (a made-up value, not a credential)
    ("npi letters", {"provider_npi": "12345ABCDE"}, "provider_npi", "must match"),
    ("denial id too long", {"denial_id": "D" * 129}, "denial_id", "longer than 128 characters"),
    ("specialty too long", {"specialty": "s" * 129}, "specialty", "longer than 128 characters"),
    ("too many codes", {"carc_codes": "|".join(["CO-16"] * 100)}, "carc_codes", "more than 99"),
    ("code too long", {"modifiers": "25|" + "9" * 17}, "modifiers", "longer than 16 characters"),
    # A member id typed into a code list is never echoed, only its length.
    ("id in a code list", {"rarc_codes": "1EG4TE5MK72"}, "rarc_codes", "a 11-character value"),
    ("sub-cent denied", {"denied_amount": "0.004"}, "denied_amount", "must be >= 0.01"),
    ("negative units", {"units": "-1"}, "units", "must be >= 0"),
    ("fractional units", {"units": "1.5"}, "units", "not a valid integer"),
    ("submission attempt 0", {"submission_attempt": "0"}, "submission_attempt", "must be >= 1"),
    ("impossible date", {"service_date": "2026-02-30"}, "service_date", "not a valid date"),
    ("non-ISO date", {"denial_date": "02/01/2026"}, "denial_date", "not a valid date"),
    ("unparseable decimal", {"billed_amount": "lots"}, "billed_amount", "not a valid decimal"),
    ("thousands separator", {"paid_amount": "1,000.00"}, "paid_amount", "not a valid decimal"),
    ("negative paid", {"paid_amount": "-0.01"}, "paid_amount", "must be >= 0"),
    ("unparseable integer", {"units": "two"}, "units", "not a valid integer"),
    ("units past int64", {"units": "1540160509608253945020416"}, "units", "not a valid integer"),
    ("units past the count bound", {"units": "3000000000"}, "units", "must be <= 2,147,483,647"),
    ("amount near float max", {"billed_amount": "1.7e308"}, "billed_amount", "must be <="),
    ("infinite amount", {"paid_amount": "inf"}, "paid_amount", "must be <="),
    ("amount past NUMERIC(14,2)", {"billed_amount": "1e12"}, "billed_amount", "must be <="),
    ("unparseable boolean", {"prior_auth_on_file": "maybe"}, "prior_auth_on_file", "boolean"),
    ("duplicate denial_id", {"denial_id": "D1"}, "denial_id", "duplicate of an earlier row"),
    ("recovered over denied", {"recovered_amount": "180.51"}, "recovered_amount", "exceeds"),
    ("negative recovered", {"recovered_amount": "-1"}, "recovered_amount", "must be >= 0"),
    (
        "resolved while open",
        {"resolution": "open", "resolved_date": "2026-03-01"},
        "resolved_date",
        "must be empty while open",
    ),
    (
        "resolved before denial",
        {"resolution": "written_off", "resolved_date": "2026-01-31"},
        "resolved_date",
        "before denial_date",
    ),
    ("unknown root_cause", {"root_cause": "bad_luck"}, "root_cause", ENUM_REASON),
    ("unknown resolution", {"resolution": "pending"}, "resolution", ENUM_REASON),
    ("unparseable preventable", {"preventable": "sometimes"}, "preventable", "boolean"),
]


@pytest.mark.parametrize(
    ("changes", "column", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_ROWS],
)
def test_bad_row_is_reported_by_row_column_and_reason(
    tmp_path: Path, changes: dict[str, str], column: str, reason: str
) -> None:
    rows = [denial("D1"), {**denial("D2"), **changes}, denial("D3")]
    result = load_rows(tmp_path, rows)
    located = [e for e in result.errors if (e.row, e.column) == (2, column)]
    assert located, f"no error at row 2, column {column}: {result.errors}"
    assert any(reason in e.reason for e in located), located
    assert result.bad_rows == {2}
    assert str(located[0]).startswith(f"row 2, column {column}: ")


def test_a_good_row_breaks_no_rule(tmp_path: Path) -> None:
    result = load_rows(tmp_path, [denial("D1"), denial("D2")])
    assert result.ok, result.errors
    assert result.errors == []


def test_a_row_breaking_several_rules_reports_each(tmp_path: Path) -> None:
    bad = denial("D2", payer_type="blue_cross", units="1.5", carc_codes="XX-16")
    result = load_rows(tmp_path, [denial("D1"), bad])
    assert [(e.row, e.column) for e in result.errors] == [
        (2, "carc_codes"),
        (2, "payer_type"),
        (2, "units"),
    ]


def test_duplicate_keeps_the_first_and_flags_every_later_copy(tmp_path: Path) -> None:
    result = load_rows(tmp_path, [denial("D1"), denial("D2"), denial("D1"), denial("D1")])
    duplicates = [e.row for e in result.errors if e.column == "denial_id"]
    assert duplicates == [3, 4]


def test_closed_denial_with_resolution_date_and_recovery_is_valid(tmp_path: Path) -> None:
    closed = denial(
        "D2",
        resolution="overturned_on_appeal",
        resolved_date="2026-04-15",
        recovered_amount="180.50",
    )
    assert load_rows(tmp_path, [closed]).ok


# ---------------------------------------------------------------------------- table rules


@pytest.mark.parametrize("missing", REQUIRED_COLUMNS)
def test_missing_required_column_is_a_table_error(tmp_path: Path, missing: str) -> None:
    rows = [{k: v for k, v in denial(f"D{i}").items() if k != missing} for i in (1, 2)]
    result = load_rows(tmp_path, rows)
    assert result.errors == [RowError(None, missing, "required column is missing")]
    assert str(result.errors[0]) == f"table, column {missing}: required column is missing"
    assert len(result.frame) == 2
    assert result.valid_rows().empty


def test_optional_and_label_columns_may_be_absent(tmp_path: Path) -> None:
    rows = [{name: denial(f"D{i}")[name] for name in REQUIRED_COLUMNS} for i in (1, 2)]
    result = load_rows(tmp_path, rows)
    assert result.ok, result.errors
    assert list(result.frame.columns) == list(REQUIRED_COLUMNS)


def test_good_rows_are_all_kept_and_no_row_is_dropped(tmp_path: Path) -> None:
    rows = [
        denial("D1"),
        denial("D2", denied_amount="0"),
        denial("D3"),
        denial("D4"),
        denial("D5", carc_codes="CO16", units="-2"),
        denial("D6"),
    ]
    result = load_rows(tmp_path, rows)
    assert result.bad_rows == {2, 5}
    assert list(result.frame["denial_id"]) == ["D1", "D2", "D3", "D4", "D5", "D6"]
    valid = result.valid_rows()
    assert list(valid["denial_id"]) == ["D1", "D3", "D4", "D6"]
    assert list(valid.index) == [0, 1, 2, 3]
    assert valid["carc_codes"].iloc[0] == ["CO-197", "CO-16"]


def test_validate_counts_rows_from_one_whatever_the_frame_index() -> None:
    raw = pd.DataFrame([denial("D1"), denial("D2", claim_type="dental")], index=[40, 7])
    result = validate(raw)
    assert [(e.row, e.column) for e in result.errors] == [(2, "claim_type")]
    assert list(result.frame.index) == [0, 1]


def test_extra_columns_are_kept(tmp_path: Path) -> None:
    result = load_rows(tmp_path, [denial("D1"), denial("D2", site_worklist="ortho-east")])
    assert result.ok
    assert list(result.frame["site_worklist"]) == ["ortho-west", "ortho-east"]


# ---------------------------------------------------------------------------- types


def test_values_are_coerced_to_contract_types(tmp_path: Path) -> None:
    row = load_rows(tmp_path, [denial("D1", eligibility_verified="", units="")]).frame.iloc[0]
    assert row["service_date"] == pd.Timestamp("2026-01-05")
    assert row["denied_amount"] == pytest.approx(180.50)
    assert row["carc_codes"] == ["CO-197", "CO-16"]
    assert row["modifiers"] == ["RT", "59"]
    assert bool(row["prior_auth_on_file"]) is False
    assert pd.isna(row["eligibility_verified"])
    assert pd.isna(row["units"])
    assert row["submission_attempt"] == 1


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("Yes", True), ("Y", True), ("1", True), ("FALSE", False), ("n", False)],
)
def test_boolean_spellings(tmp_path: Path, text: str, value: bool) -> None:
    result = load_rows(tmp_path, [denial("D1", prior_auth_on_file=text)])
    assert result.ok
    assert bool(result.frame["prior_auth_on_file"].iloc[0]) is value


def frame_with_gaps() -> pd.DataFrame:
    """A validated contract frame with lists, dates, booleans and integers, some missing."""
    rows = [
        denial("D1"),
        denial("D2", rarc_codes="", modifiers="", prior_auth_on_file="", units=""),
        denial(
            "D3",
            carc_codes="PR-96",
            eligibility_verified="",
            submission_attempt="",
            submission_date="",
            resolution="billed_to_patient",
            resolved_date="2026-03-01",
            recovered_amount="180.50",
        ),
    ]
    result = validate(pd.DataFrame(rows))
    assert result.ok, result.errors
    return result.frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_then_load_round_trips(tmp_path: Path, suffix: str) -> None:
    frame = frame_with_gaps()
    path = write_denials(frame, tmp_path / f"denials{suffix}")
    loaded = load_denials(path)
    assert loaded.ok, loaded.errors
    pd.testing.assert_frame_equal(loaded.frame, frame, check_dtype=True)
    assert loaded.frame["rarc_codes"].iloc[1] == []
    assert pd.isna(loaded.frame["prior_auth_on_file"].iloc[1])
    assert pd.isna(loaded.frame["units"].iloc[1])
    assert pd.isna(loaded.frame["submission_date"].iloc[2])


def test_csv_lists_are_pipe_separated(tmp_path: Path) -> None:
    path = write_denials(frame_with_gaps(), tmp_path / "denials.csv")
    with path.open(encoding="utf-8") as handle:
        first = next(csv.DictReader(handle))
    assert first["carc_codes"] == "CO-197|CO-16"
    assert first["diagnosis_codes"] == "M23.221|M25.561"
    assert first["service_date"] == "2026-01-05"


def test_csv_and_parquet_load_to_equal_frames(tmp_path: Path) -> None:
    frame = frame_with_gaps()
    from_csv = load_denials(write_denials(frame, tmp_path / "d.csv")).frame
    from_parquet = load_denials(write_denials(frame, tmp_path / "d.parquet")).frame
    pd.testing.assert_frame_equal(from_csv, from_parquet)


def test_empty_required_value_in_parquet_is_reported(tmp_path: Path) -> None:
    frame = frame_with_gaps()
    frame.loc[1, "billed_amount"] = float("nan")
    loaded = load_denials(write_denials(frame, tmp_path / "d.parquet"))
    assert loaded.errors == [RowError(2, "billed_amount", "required value is empty")]


def test_missing_file_and_unknown_extension_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ContractFileError, match=r"nope\.csv: no such file"):
        load_denials(tmp_path / "nope.csv")
    sheet = tmp_path / "denials.xlsx"
    sheet.write_text("not a table")
    with pytest.raises(ContractFileError, match=r"denials\.xlsx: unknown extension '\.xlsx'"):
        load_denials(sheet)
    with pytest.raises(ContractFileError, match="unknown extension"):
        write_denials(frame_with_gaps(), tmp_path / "out.json")


def test_corrupt_parquet_is_a_file_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(ContractFileError, match=r"broken\.parquet: cannot be read as parquet"):
        load_denials(broken)


# ---------------------------------------------------------------------------- JSON Schema

GOOD_DENIAL: dict[str, Any] = {
    "denial_id": "D1",
    "claim_id": "CLM-0001",
    "payer_id": "87726",
    "payer_type": "commercial",
    "claim_type": "professional",
    "service_date": "2026-01-05",
    "denial_date": "2026-02-01",
    "billed_amount": 250.0,
    "denied_amount": 180.5,
    "carc_codes": ["CO-197", "CO-16"],
    "rarc_codes": ["N54", "M127"],
    "paid_amount": 0,
    "submission_date": "2026-01-10",
    "provider_npi": "1234567893",
    "specialty": "orthopedics",
    "facility_id": "MAIN",
    "place_of_service": "11",
    "procedure_code": "29881",
    "modifiers": ["RT", "59"],
    "diagnosis_codes": ["M23.221"],
    "units": 1,
    "prior_auth_on_file": False,
    "eligibility_verified": True,
    "submission_attempt": 1,
    "as_of_date": "2026-02-10",
}


@pytest.fixture(scope="module")
def schema_validator() -> Draft202012Validator:
    schema = scoring_json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_schema_covers_every_scoring_column_and_no_label() -> None:
    schema = scoring_json_schema()
    assert set(schema["properties"]) == set(SCORING_COLUMNS)
    assert schema["required"] == list(REQUIRED_COLUMNS)
    assert not set(LABEL_COLUMNS) & set(schema["properties"])
    assert set(GOOD_DENIAL) == set(SCORING_COLUMNS)


def test_schema_accepts_a_good_denial(schema_validator: Draft202012Validator) -> None:
    assert list(schema_validator.iter_errors(GOOD_DENIAL)) == []


def test_schema_accepts_required_fields_only_and_null_optionals(
    schema_validator: Draft202012Validator,
) -> None:
    required_only = {name: GOOD_DENIAL[name] for name in REQUIRED_COLUMNS}
    assert schema_validator.is_valid(required_only)
    optional_nulls = {name: None for name in SCORING_COLUMNS if name not in REQUIRED_COLUMNS}
    assert list(schema_validator.iter_errors({**required_only, **optional_nulls})) == []
    assert schema_validator.is_valid({**GOOD_DENIAL, "site_worklist": "ortho-west"})


@pytest.mark.parametrize("missing", REQUIRED_COLUMNS)
def test_schema_rejects_a_missing_required_field(
    schema_validator: Draft202012Validator, missing: str
) -> None:
    body = {k: v for k, v in GOOD_DENIAL.items() if k != missing}
    assert [e.validator for e in schema_validator.iter_errors(body)] == ["required"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("denial_id", ""),
        ("payer_type", "blue_cross"),
        ("claim_type", "dental"),
        ("service_date", "2026-02-30"),
        ("denial_date", "02/01/2026"),
        ("billed_amount", -1),
        ("billed_amount", "250.00"),
        ("denied_amount", 0),
        ("carc_codes", []),
        ("carc_codes", ["CO16"]),
        ("carc_codes", ["XX-16"]),
        ("carc_codes", "CO-16"),
        ("rarc_codes", ["X12"]),
        ("provider_npi", "123456789"),
        ("units", 1.5),
        ("units", -1),
        ("submission_attempt", 0),
        ("prior_auth_on_file", "yes"),
        ("as_of_date", "soon"),
    ],
)
def test_schema_rejects_a_bad_field(
    schema_validator: Draft202012Validator, field: str, value: object
) -> None:
    errors = list(schema_validator.iter_errors({**GOOD_DENIAL, field: value}))
    assert errors
    assert {tuple(e.absolute_path)[:1] for e in errors} == {(field,)}


DOC_KINDS = {
    "string": Kind.STRING,
    "date": Kind.DATE,
    "decimal": Kind.DECIMAL,
    "integer": Kind.INTEGER,
    "boolean": Kind.BOOLEAN,
    "list of string": Kind.STRING_LIST,
}
DOC_ROLES = {"Required": Role.REQUIRED, "Optional": Role.OPTIONAL, "Outcome": Role.LABEL}


def documented_columns(text: str) -> dict[str, tuple[Kind, Role]]:
    columns: dict[str, tuple[Kind, Role]] = {}
    role = None
    for line in text.splitlines():
        if line.startswith("## "):
            role = DOC_ROLES.get(line[3:].split()[0])
        row = re.match(r"\| (\w+) \| ([a-z ]+) \|", line)
        if row and role is not None and row[1] != "column":
            columns[row[1]] = (DOC_KINDS[row[2]], role)
    return columns


@pytest.mark.skipif(not CONTRACT_DOC.is_file(), reason="../shared/docs is not checked out")
def test_columns_match_the_contract_document() -> None:
    documented = documented_columns(CONTRACT_DOC.read_text(encoding="utf-8"))
    declared = {c.name: (c.kind, c.role) for c in COLUMNS}
    assert declared == documented


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_an_empty_table_is_written_with_the_contract_columns(tmp_path: Path, suffix: str) -> None:
    from features.contract import COLUMNS, DenialWriter

    path = tmp_path / f"empty{suffix}"
    with DenialWriter(path):
        pass
    result = load_denials(path)
    assert result.ok and len(result.frame) == 0
    assert list(result.frame.columns) == [column.name for column in COLUMNS]


# ---------------------------------------------------------------------------- clean_records


def _contract_json(history: pd.DataFrame, rows: int) -> list[dict[str, Any]]:
    """History rows as a worklist system sends them for scoring (JSON types, no labels)."""
    from training.tracking import example_payload

    sample = history.sample(rows, random_state=4).reset_index(drop=True)
    return json.loads(example_payload(sample).to_json(orient="records"))


def _python(value: Any) -> Any:
    """A validated frame's value as clean_records gives it."""
    if isinstance(value, list | np.ndarray):
        return list(value)
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value.item() if isinstance(value, np.generic) else value


def _validated_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """What validate() makes of the records, as plain rows; None when it finds an error."""
    result = validate(pd.DataFrame(records))
    if not result.ok:
        return None
    empty = {c.name: [] if c.kind is Kind.STRING_LIST else None for c in COLUMNS}
    return [
        {name: _python(row[name]) if name in row else empty[name] for name in SCORING_COLUMNS}
        for row in result.frame.to_dict(orient="records")
    ]


def test_clean_records_coerce_exactly_as_validate(history: pd.DataFrame) -> None:
    records = _contract_json(history, 3000)
    rows = clean_records(records)
    assert rows is not None  # the service's plainly typed rows take the fast path
    assert rows == _validated_rows(records)


MUTATIONS: list[tuple[str, Any]] = [
    ("billed_amount", -1.0),
    ("denied_amount", 0),
    ("denied_amount", 10**9),
    ("billed_amount", "100"),
    ("billed_amount", 1480.005),
    ("paid_amount", 2.675),
    ("paid_amount", float("inf")),
    ("units", 1.5),
    ("units", 2.001),
    ("units", True),
    ("submission_attempt", 0),
    ("payer_type", "bogus"),
    ("payer_type", "  commercial "),
    ("payer_id", 123),
    ("claim_type", None),
    ("carc_codes", ["XX-1"]),
    ("carc_codes", []),
    ("carc_codes", [" CO-16 ", ""]),
    ("carc_codes", "CO-16|CO-97"),
    ("rarc_codes", ["N54", "bad"]),
    ("rarc_codes", None),
    ("modifiers", ["25", None]),
    ("service_date", "2030-01-01"),
    ("service_date", "2026-13-01"),
    ("denial_date", " 2026-02-03 "),
    ("denial_date", "2026-02-03T10:00:00"),
    ("submission_date", dt.date(2026, 1, 1)),
    ("as_of_date", "1850-01-01"),
    ("as_of_date", None),
    ("specialty", "   "),
    ("specialty", "radiología"),
    ("specialty", "tab\there"),
    ("provider_npi", "123"),
    ("provider_npi", "1234567890"),
    ("prior_auth_on_file", "yes"),
    ("prior_auth_on_file", None),
    ("eligibility_verified", 1),
    ("denial_id", ""),
    ("resolution", "open"),
]


MUTATED_PAIRS = 80  # batches of three rows with two mutations, drawn at random (seeded)


def _mutated_batches(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Every mutation alone on one row, an untouched batch, a repeated denial_id, and random
    batches of three rows carrying two mutations (rules meeting on one row or across rows)."""
    batches = []
    for number, (name, value) in enumerate(MUTATIONS):
        row = copy.deepcopy(records[number])
        row[name] = value
        batches.append([row])
    batches.append(copy.deepcopy(records[-3:]))
    repeated = copy.deepcopy(records[-5:-3])
    repeated[1]["denial_id"] = repeated[0]["denial_id"]
    batches.append(repeated)
    rng = random.Random(7)
    for _ in range(MUTATED_PAIRS):
        batch = copy.deepcopy(rng.sample(records, 3))
        for name, value in rng.sample(MUTATIONS, 2):
            rng.choice(batch)[name] = value
        batches.append(batch)
    return batches


def test_clean_records_never_accept_what_validate_refuses(history: pd.DataFrame) -> None:
    """Broken or unusual rows: the fast path either agrees with validate() value for value,
    or leaves the decision (and the error report) to it."""
    outcomes = {"fast": 0, "left to validate": 0}
    for batch in _mutated_batches(_contract_json(history, 400)):
        rows = clean_records(batch)
        expected = _validated_rows(batch)
        if rows is not None:
            assert rows == expected, batch
        outcomes["fast" if rows is not None else "left to validate"] += 1
    assert min(outcomes.values()) > 20, outcomes  # both ways were exercised
