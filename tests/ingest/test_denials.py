"""What counts as a denial, and what its contract row carries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from remit_fixtures import (
    MEMBER_ID,
    PATIENT_NAME,
    denied_claim,
    header,
    paid_claim,
    partially_paid_claim,
    patient,
    reversal_and_correction,
    write,
    x12,
)

from features.contract import validate
from ingest.batch import ROW_COLUMNS
from ingest.denials import (
    claim_type,
    denial_rows,
    judge,
    payer_type,
    ranked_adjustments,
)
from ingest.model import Adjustment, FindingLog
from ingest.remit835 import Claim, RemittanceParser


def _read(tmp_path: Path, *claims: list[str]) -> tuple[list[Claim], FindingLog]:
    body = [*header()] + [segment for claim in claims for segment in claim]
    parser = RemittanceParser(write(tmp_path, "r.835", x12(body)))
    return list(parser.claims()), parser.findings


def _rows(tmp_path: Path, *claims: list[str]) -> list[dict[str, object]]:
    read, findings = _read(tmp_path, *claims)
    return [row for claim in read for row in denial_rows(claim, findings)]


def test_clp02_4_is_one_denied_claim_row(tmp_path: Path) -> None:
    (row,) = _rows(tmp_path, denied_claim())
    assert row["denial_level"] == "claim" and row["claim_status"] == "4"
    assert (row["billed_amount"], row["paid_amount"], row["denied_amount"]) == (250, 0, 250)
    assert row["carc_codes"] == ["CO-197"] and row["rarc_codes"] == ["MA130", "N54"]
    assert (row["procedure_code"], row["modifiers"], row["units"]) == ("99214", ["25"], 1)
    assert (row["service_date"], row["denial_date"]) == ("2024-09-01", "2024-10-14")
    assert (row["payer_id"], row["payer_name"], row["payer_claim_number"]) == (
        "77001",
        "ACME HEALTH PLAN",
        "ICN9001",
    )
    assert (row["provider_npi"], row["place_of_service"]) == ("1234567893", "11")
    assert row["submission_date"] == "2024-09-10"


def test_a_partly_paid_claim_gives_one_row_per_refused_line(tmp_path: Path) -> None:
    rows = _rows(tmp_path, partially_paid_claim())
    assert [(r["line_number"], r["denial_level"]) for r in rows] == [(2, "line"), (3, "line")]
    bundled, over_units = rows
    assert (bundled["procedure_code"], bundled["modifiers"]) == ("93000", ["59"])
    assert (bundled["denied_amount"], bundled["carc_codes"], bundled["rarc_codes"]) == (
        150,
        ["CO-97"],
        ["M15"],
    )
    # Only the refused part of a partly paid line is denied; CO-45 on it is arithmetic.
    assert (over_units["billed_amount"], over_units["paid_amount"]) == (250, 90)
    assert over_units["denied_amount"] == 125
    assert over_units["carc_codes"] == ["CO-151", "CO-45"]
    assert over_units["service_date"] == "2024-09-03"


@pytest.mark.parametrize(
    "adjustments",
    [
        ["CAS*PR*1*40.00", "CAS*CO*45*40.00"],  # deductible and fee schedule
        ["CAS*PR*2*20.00*1*PR*3*20.00", "CAS*CO*253*1.60"],  # coinsurance, copay, sequestration
        ["CAS*OA*23*80.00"],  # the prior payer's share on a secondary claim
        ["CAS*CO*16*-20.00", "CAS*CO*16*20.00"],  # an adjustment and its give-back
    ],
)
def test_cost_sharing_and_contractual_adjustments_are_not_denials(
    tmp_path: Path, adjustments: list[str]
) -> None:
    claim = paid_claim()[:-2] + adjustments
    assert _rows(tmp_path, claim) == []


def test_reversals_and_their_corrections_give_no_false_denials(tmp_path: Path) -> None:
    claims, _ = _read(tmp_path, reversal_and_correction())
    assert [judge(claim).reason for claim in claims] == ["reversal or void", "no denial adjustment"]
    assert _rows(tmp_path, reversal_and_correction()) == []


def test_a_void_is_not_a_denial(tmp_path: Path) -> None:
    void = denied_claim()
    void[0] = void[0].replace("*11*1", "*11*8")
    assert _rows(tmp_path, void) == []


def test_a_claim_refused_in_full_by_adjustments_is_a_denied_claim(tmp_path: Path) -> None:
    refused = [
        "CLP*PCN5001*1*300.00*0*0*MB*ICN9006*11*1",
        *patient(),
        "DTM*232*20240905",
        "SVC*HC:99213*100.00*0**1",
        "DTM*472*20240905",
        "CAS*CO*29*100.00",
        "SVC*HC:99214*200.00*0**1",
        "DTM*472*20240905",
        "CAS*CO*29*200.00",
        "LQ*HE*N211",
    ]
    (row,) = _rows(tmp_path, refused)
    assert (row["denial_level"], row["denied_amount"], row["carc_codes"]) == (
        "claim",
        300,
        ["CO-29"],
    )
    assert row["carc_amounts"] == [300.0] and row["payer_type"] == "medicare"


def test_claim_level_denial_on_a_paid_claim_gives_a_claim_row(tmp_path: Path) -> None:
    claim = paid_claim()
    claim.insert(1, "CAS*CO*B7*30.00")  # provider not certified for this date, at claim level
    (row,) = _rows(tmp_path, claim)
    assert (row["denial_level"], row["denied_amount"], row["carc_codes"]) == (
        "claim",
        30,
        ["CO-B7"],
    )


def test_codes_are_ranked_by_amount_and_merged_across_lines() -> None:
    adjustments = [
        Adjustment("PR", "1", 40, 1),
        Adjustment("CO", "16", 30, 2),
        Adjustment("CO", "197", 50, 3),
        Adjustment("CO", "16", 30, 4),
    ]
    assert ranked_adjustments(adjustments) == (["CO-16", "CO-197", "PR-1"], [60, 50, 40])


def test_primary_denial_code_skips_cost_sharing(tmp_path: Path) -> None:
    claim = [*paid_claim()[:-2], "CAS*PR*1*150.00", "CAS*CO*50*50.00"]
    (row,) = _rows(tmp_path, claim)
    assert row["carc_codes"] == ["PR-1", "CO-50"]  # primary first by amount, as the contract says
    assert row["primary_denial_code"] == "CO-50"


@pytest.mark.parametrize(
    ("indicator", "expected"),
    [
        ("MA", "medicare"),
        ("MB", "medicare"),
        ("16", "medicare_advantage"),
        ("MC", "medicaid"),
        ("HM", "commercial"),
        ("CI", "commercial"),
        ("BL", "commercial"),
        ("12", "commercial"),
        ("WC", "workers_comp"),
        ("VA", "other"),
        ("", "other"),
    ],
)
def test_payer_type_from_claim_filing_indicator(indicator: str, expected: str) -> None:
    assert payer_type(indicator) == expected


def test_institutional_claims_are_recognised(tmp_path: Path) -> None:
    inpatient = denied_claim("PCN6001")
    inpatient.insert(3, "MIA*0***1200.00*N30")
    revenue = denied_claim("PCN6002")
    revenue[revenue.index("SVC*HC:99214:25*250.00*0**1")] = "SVC*NU:0450*250.00*0**1"
    claims, _ = _read(tmp_path, denied_claim(), inpatient, revenue)
    assert [claim_type(c) for c in claims] == ["professional", "institutional", "institutional"]
    rows = [denial_rows(claim, FindingLog(Path("x")))[0] for claim in claims]
    assert rows[1]["place_of_service"] == "111"  # bill type: facility code + frequency
    assert "N30" in rows[1]["rarc_codes"] and rows[2]["procedure_code"] == "0450"


def test_denial_ids_are_stable_unique_and_free_of_phi(tmp_path: Path) -> None:
    claims = [denied_claim(), partially_paid_claim(), denied_claim("PCN1002")]
    first, second = _rows(tmp_path, *claims), _rows(tmp_path, *claims)
    ids = [row["denial_id"] for row in first]
    assert ids == [row["denial_id"] for row in second]
    assert len(set(ids)) == len(ids) == 4
    assert not any(PATIENT_NAME in i or MEMBER_ID in i or "PCN" in i for i in ids)


def test_rows_never_carry_patient_names_or_member_ids(tmp_path: Path) -> None:
    rows = _rows(tmp_path, denied_claim(), partially_paid_claim())
    text = repr(rows)
    assert PATIENT_NAME not in text and MEMBER_ID not in text


def test_rows_meet_the_contract(tmp_path: Path) -> None:
    rows = _rows(tmp_path, denied_claim(), partially_paid_claim(), denied_claim("PCN1002"))
    assert all(tuple(row) == ROW_COLUMNS for row in rows)  # the columns the writer types
    result = validate(pd.DataFrame(rows))
    assert result.ok, result.errors


def test_a_denial_that_cannot_meet_the_contract_is_reported(tmp_path: Path) -> None:
    undated = [s for s in denied_claim() if not s.startswith("DTM")]
    no_reason = [s for s in denied_claim("PCN1003") if not s.startswith("CAS")]
    claims, findings = _read(tmp_path, undated, no_reason)
    assert [row for claim in claims for row in denial_rows(claim, findings)] == []
    messages = [(f.segment_number, f.message) for f in findings.items]
    assert messages[0][0] == 14 and "no valid service date" in messages[0][1]
    assert "no CAS adjustment" in messages[1][1]
