"""The 835 reader: claims, lines and header as the remittance states them; envelope errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from remit_fixtures import (
    MEMBER_ID,
    PATIENT_NAME,
    denied_claim,
    full_remittance,
    header,
    paid_claim,
    partially_paid_claim,
    write,
    x12,
)

from ingest.denials import could_be_denial
from ingest.remit835 import Claim, RemittanceError, RemittanceParser


@pytest.fixture
def remit(tmp_path: Path) -> Path:
    """A remittance showing each kind of claim (see ``full_remittance``)."""
    return full_remittance(tmp_path)


def _claims(path: Path, **options: object) -> tuple[list[Claim], RemittanceParser]:
    parser = RemittanceParser(path, **options)  # type: ignore[arg-type]
    return list(parser.claims()), parser


def test_a_denied_claim_is_read_with_its_line(remit: Path) -> None:
    claims, _ = _claims(remit)
    claim = claims[0]
    assert (claim.claim_id, claim.status, claim.billed, claim.paid) == ("PCN1001", "4", 250, 0)
    assert (claim.filing_indicator, claim.payer_claim_number, claim.facility_code) == (
        "12",
        "ICN9001",
        "11",
    )
    assert claim.rendering_npi == "1234567893"
    assert (claim.start, claim.received, claim.remarks) == ("20240901", "20240910", ["MA130"])
    line = claim.lines[0]
    assert (line.qualifier, line.procedure_code, line.modifiers) == ("HC", "99214", ["25"])
    assert (line.charge, line.paid, line.units, line.start) == (250, 0, 1, "20240901")
    assert [a.label for a in line.adjustments] == ["CO-197"] and line.remarks == ["N54"]


def test_header_gives_payer_trace_and_dates(remit: Path) -> None:
    claims, _ = _claims(remit)
    remittance = claims[0].remittance
    assert remittance.payer_name == "ACME HEALTH PLAN"
    assert remittance.payer_id == "77001"  # REF*2U
    assert (remittance.trace, remittance.remittance_date) == ("EFT0001", "20241014")
    assert remittance.payee_npi == "1999999984"
    assert remittance.version == "005010X221A1"


def test_statistics_count_what_the_file_holds(remit: Path) -> None:
    claims, parser = _claims(remit)
    stats = parser.stats
    assert len(claims) == stats.claims == 5
    assert (stats.denied_claims, stats.reversals, stats.provider_adjustments) == (1, 1, 1)
    assert stats.service_lines == 5
    assert stats.segments == len(remit.read_text().strip().splitlines())


def test_units_prefer_the_billed_count(tmp_path: Path) -> None:
    path = write(tmp_path, "r.835", x12([*header(), *partially_paid_claim()]))
    claims, _ = _claims(path)
    assert [line.units for line in claims[0].lines] == [1, 1, 3]  # SVC07 over SVC05


def test_the_screen_skips_claims_that_cannot_be_denials(remit: Path) -> None:
    everything, _ = _claims(remit)
    parser = RemittanceParser(remit)
    screened = list(parser.claims(screen=could_be_denial))
    # The paid claim, the correction (CO-45 only) are skipped; the reversal carries CO-16.
    assert [c.claim_id for c in screened] == ["PCN1001", "PCN2001", "PCN4001"]
    assert parser.stats.claims == len(everything)
    assert parser.stats.service_lines == sum(len(claim.lines) for claim in everything)


def test_patient_segments_are_never_read(remit: Path) -> None:
    claims, parser = _claims(remit)
    seen = repr(claims) + repr(parser.findings.items)
    assert PATIENT_NAME not in seen and MEMBER_ID not in seen


def test_a_4010_file_reads_the_same_way(tmp_path: Path) -> None:
    body = [*header(), *denied_claim(), *paid_claim(), "CAS*CR*16*0"]  # 4010 correction group
    path = write(tmp_path, "old.835", x12(body, version="004010X091A1"))
    claims, parser = _claims(path)
    assert [c.claim_id for c in claims] == ["PCN1001", "PCN3001"]
    assert claims[0].remittance.version == "004010X091A1"
    assert "CR-16" in [a.label for line in claims[1].lines for a in line.adjustments]
    assert not parser.findings.items


def test_masked_codes_are_findings_not_crashes(tmp_path: Path) -> None:
    claim = [
        *paid_claim(),
        "CAS*PR*XXX*10.00",
        "CAS*PR*9999*5.00",
        "CAS*grp*reason*amount",
        "LQ*HE*code1",
        "LQ*HE*X7",
    ]
    path = write(tmp_path, "masked.835", x12([*header(), *claim]))
    claims, parser = _claims(path)
    assert [a.label for a in claims[0].lines[0].adjustments] == ["PR-1", "CO-45"]
    messages = " ".join(finding.message for finding in parser.findings.items)
    # Values holding a word could be anything, a name included: only their shape is shown.
    assert "CAS02 group a value of 3 characters, letters (not shown), code a value" in messages
    assert "CAS02 group 'PR', code a value of 3 characters, letters (not shown)" in messages
    assert "remark code a value of 5 characters, letters and digits (not shown)" in messages
    # Code- and number-shaped values are quoted, which is what a biller needs to fix them.
    assert "'PR-9999' does not fit" in messages
    assert "'X7' does not fit" in messages


def _malformed(body: list[str]) -> str:
    return x12([*header(), *body])


@pytest.mark.parametrize(
    ("text", "segment", "message"),
    [
        (_malformed(paid_claim())[:-40], 21, "ends inside the transaction opened at segment 3"),
        (_malformed(paid_claim()).replace("SE*20*", "SE*19*"), 22, "SE01 says 19 but there are 20"),
        (_malformed(paid_claim()).replace("GE*1*", "GE*2*"), 23, "GE01 says 2 but there are 1"),
        (_malformed(paid_claim()).replace("IEA*1*000000001", "IEA*1*7"), 24, "IEA02"),
        (_malformed(paid_claim()).replace("SE*20*0001", "SE*20*0002"), 22, "SE02"),
        (
            _malformed(paid_claim()).replace("*200.00*120.00*40.00*15", "**120.00*40.00*15"),
            14,
            "quarantined: CLP03",
        ),
        (_malformed(paid_claim()).replace("PCN3001*1*", "PCN3001**"), 14, "quarantined: CLP02"),
        (
            _malformed(paid_claim()).replace("*120.00*40.00*15", "*abc*40.00*15"),
            14,
            "CLP04 .claim payment. a value of 3 characters, letters .not shown. is not an amount",
        ),
        (
            _malformed(paid_claim()).replace("*120.00*40.00*15", "*1.2.0*40.00*15"),
            14,
            "CLP04 .claim payment. '1.2.0' is not an amount",
        ),
        (_malformed(paid_claim()).replace("LX*1", "lx*1"), 13, "not an X12 segment"),
        (_malformed(paid_claim()).replace("GS*HP", "XX*HP"), 2, "outside a transaction"),
        (_malformed(paid_claim()).replace("SE*20*0001~\n", ""), 22, "GE before the transaction"),
        (_malformed(paid_claim()) + "CLP*X*1*1*1~", 25, "outside a transaction"),
    ],
)
def test_defects_are_findings_naming_file_segment_and_problem(
    tmp_path: Path, text: str, segment: int, message: str
) -> None:
    path = write(tmp_path, "bad.835", text)
    _, parser = _claims(path)
    found = [f for f in parser.findings.items if re.search(message, f.message)]
    assert found, parser.findings.items
    assert found[0].file == path and found[0].segment_number == segment


def test_a_transaction_other_than_835_fails_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.835", _malformed(paid_claim()).replace("ST*835*", "ST*837*"))
    with pytest.raises(RemittanceError, match="only 835") as caught:
        _claims(path)
    assert caught.value.file == path and caught.value.segment_number == 3


def test_tolerate_counts_is_accepted_and_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "r.835", _malformed(paid_claim()).replace("SE*20*", "SE*19*"))
    for options in ({}, {"tolerate_counts": True}):
        claims, parser = _claims(path, **options)
        assert len(claims) == 1
        assert [f.segment_number for f in parser.findings.items] == [22]
        assert "SE01 says 19" in parser.findings.items[0].message


def test_a_service_line_without_amounts_is_kept_and_reported(tmp_path: Path) -> None:
    body = [*header(), *paid_claim()]
    body[body.index("SVC*HC:99213*200.00*120.00**1")] = "SVC*HC:99213*****1"
    claims, parser = _claims(write(tmp_path, "r.835", x12(body)))
    assert claims[0].lines[0].charge == 0
    assert any("SVC02 (line charge) is missing" in f.message for f in parser.findings.items)
