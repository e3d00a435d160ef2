"""Issue 13: 835 ingestion never loses a good claim. A defect inside one claim quarantines
that claim only; envelope defects are findings; only input that is not an 835 fails a file;
findings quote codes and amounts, never what could be a name or an id."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from remit_fixtures import (
    MEMBER_ID,
    PATIENT_NAME,
    denied_claim,
    header,
    paid_claim,
    reversal_and_correction,
    write,
    x12,
)

from features.contract import load_denials
from ingest.batch import ingest
from ingest.errors import shown_code, shown_number
from ingest.remit835 import Quarantined, RemittanceError, RemittanceParser
from ingest.x12 import INDENTED, WRAPPED

MEDICARE_ID = "1EG4TE5MK72"  # an MBI-shaped value: the CMS example format
BODY = [
    *header(),
    *denied_claim("PCN1001"),
    *paid_claim("PCN3001"),
    *reversal_and_correction("PCN4001"),
    *denied_claim("PCN5001", "ICN9009"),
]
CLEAN = x12(BODY)
CLAIM_IDS = ["PCN1001", "PCN3001", "PCN4001", "PCN4001", "PCN5001"]


def segment_of(text: str, prefix: str) -> int:
    """1-based number of the first segment of ``text`` starting with ``prefix``."""
    segments = [segment.strip() for segment in text.split("~")]
    return next(i for i, segment in enumerate(segments, 1) if segment.startswith(prefix))


def read(path: Path) -> tuple[list[str], list[Quarantined], RemittanceParser]:
    quarantined: list[Quarantined] = []
    parser = RemittanceParser(path, on_quarantine=quarantined.append)
    claim_ids = [claim.claim_id for claim in parser.claims()]
    return claim_ids, quarantined, parser


def messages(parser: RemittanceParser) -> str:
    return "\n".join(str(finding) for finding in parser.findings.items)


# ------------------------------------------------------------------ envelope defects


def _se01_wrong(text: str) -> str:
    return re.sub(r"SE\*(\d+)\*", lambda m: f"SE*{int(m.group(1)) + 3}*", text)


ENVELOPE_DEFECTS: dict[str, tuple[Callable[[str], str], str, str]] = {
    # name: (corruption, prefix of the segment the finding points at, what it says)
    "SE01 count wrong": (_se01_wrong, "SE*", "SE01 says 56 but there are 53"),
    "GE01 count wrong": (lambda t: t.replace("GE*1*", "GE*2*"), "GE*", "GE01 says 2 but"),
    "IEA02 trimmed": (
        lambda t: t.replace("IEA*1*000000001", "IEA*1*1"),
        "IEA*",
        "IEA02 control number '1' differs from ISA13 '000000001'",
    ),
    "SE02 differs": (
        lambda t: t.replace("SE*53*0001", "SE*46*0002"),
        "SE*",
        "SE02 control number '0002' differs from ST02 '0001'",
    ),
    "missing IEA": (
        lambda t: t.replace("IEA*1*000000001~\n", ""),
        "GE*",
        "ends inside the interchange opened at segment 1 (no IEA)",
    ),
    "fragment after the last terminator": (
        lambda t: t + "1*000000001",
        "1*000000001",
        "after the last interchange: text that is not an X12 segment (a value of 11 "
        "characters, digits and other characters (not shown)); ignored",
    ),
    "fragment between header segments": (
        lambda t: t.replace("LX*1~\n", "LX*1~\n 0.00*~\n"),
        "0.00*",
        "text that is not an X12 segment",
    ),
    "SE missing before GE": (
        lambda t: t.replace("SE*53*0001~\n", ""),
        "GE*",
        "GE before the transaction opened at segment 3 was closed by SE",
    ),
}


def test_the_clean_file_has_53_segments_in_its_transaction() -> None:
    # The corruptions above name counts and control numbers of this file.
    assert "SE*53*0001~" in CLEAN


@pytest.mark.parametrize("name", list(ENVELOPE_DEFECTS))
def test_envelope_defects_are_findings_and_every_claim_is_read(tmp_path: Path, name: str) -> None:
    corrupt, pointed_at, said = ENVELOPE_DEFECTS[name]
    text = corrupt(CLEAN)
    claim_ids, quarantined, parser = read(write(tmp_path, "r.835", text))
    assert claim_ids == CLAIM_IDS and quarantined == []
    finding = next(f for f in parser.findings.items if said in f.message)
    assert finding.segment_number == segment_of(text, pointed_at)


def test_the_old_refusals_no_longer_stop_the_file(tmp_path: Path) -> None:
    """The four defects the issue reports, together in one file: all claims but the one
    without CLP03 are read, and that one is quarantined."""
    text = _se01_wrong(CLEAN).replace("IEA*1*000000001", "IEA*1*1") + "\x1a"
    text = text.replace("CLP*PCN4001*22*-300.00*", "CLP*PCN4001*22**")
    claim_ids, quarantined, _ = read(write(tmp_path, "r.835", text))
    assert claim_ids == ["PCN1001", "PCN3001", "PCN4001", "PCN5001"]
    assert [q.clp[1] for q in quarantined] == ["PCN4001"]
    assert quarantined[0].reason == "CLP03 (total claim charge) is missing"


def test_a_truncated_file_keeps_the_claims_before_the_cut(tmp_path: Path) -> None:
    text = CLEAN[: CLEAN.index("LQ*HE*N54~\nSE*")]  # cut inside the last claim
    claim_ids, quarantined, parser = read(write(tmp_path, "r.835", text))
    assert claim_ids == CLAIM_IDS[:-1]
    assert [q.clp[1] for q in quarantined] == ["PCN5001"]
    assert "the file ends inside this claim" in quarantined[0].reason
    assert "ends inside the transaction opened at segment 3 (no SE)" in messages(parser)


@pytest.mark.parametrize(
    ("layout", "note"),
    [
        (CLEAN.replace("~\n", "~\r\n    "), INDENTED),
        (CLEAN.replace("~\n", "~\n\t"), INDENTED),
        (CLEAN.replace("CLP*PCN3001*1*200.00*", "CLP*PCN3001*1*20\r\n0.00*"), WRAPPED),
        (CLEAN.replace("~\n", "~"), None),
        (CLEAN.replace("~\n", "~\r\n"), None),  # a line break after each terminator: usual
    ],
    ids=["indented", "tab", "wrapped", "one-line", "crlf"],
)
def test_blanks_and_line_breaks_where_x12_has_none_are_findings(
    tmp_path: Path, layout: str, note: str | None
) -> None:
    claim_ids, quarantined, parser = read(write(tmp_path, "r.835", layout))
    assert claim_ids == CLAIM_IDS and quarantined == []
    noted = [f.message for f in parser.findings.items if f.message.startswith("layout:")]
    assert noted == ([note] if note else [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CLEAN.replace("ST*835*", "ST*837*"), "ST01 is '837': only 835 remittances are read"),
        ("ISA*00*" + "x" * 40, "ISA: fewer than 16 elements"),
        ("Dear provider, please find attached", "not an X12 file"),
    ],
)
def test_only_input_that_is_not_an_835_fails_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(RemittanceError, match=message):
        read(write(tmp_path, "r.835", text))


# ------------------------------------------------------------------ claim defects

CLAIM_DEFECTS: dict[str, tuple[str, str, str, str]] = {
    # name: (segment as sent, as corrupted, quarantined claim, reason)
    "reversal without CLP03": (
        "CLP*PCN4001*22*-300.00*",
        "CLP*PCN4001*22**",
        "PCN4001",
        "CLP03 (total claim charge) is missing",
    ),
    "CLP02 missing": ("CLP*PCN3001*1*", "CLP*PCN3001**", "PCN3001", "CLP02 (claim status)"),
    "CLP04 not an amount": (
        "CLP*PCN3001*1*200.00*120.00*",
        "CLP*PCN3001*1*200.00*12O.00*",
        "PCN3001",
        "CLP04 (claim payment) a value of 6 characters, letters and digits and other "
        "characters (not shown) is not an amount",
    ),
    "CAS amount malformed": (
        "CAS*CO*197*250.00~\nLQ*HE*N54~\nCLP*PCN3001",
        "CAS*CO*197*2,50.0.0~\nLQ*HE*N54~\nCLP*PCN3001",
        "PCN1001",
        "CAS02 'CO-197': CAS03 (amount) '2,50.0.0' is not an amount",
    ),
    "SVC01 missing": (
        "SVC*HC:99213*200.00*120.00",
        "SVC**200.00*120.00",
        "PCN3001",
        "SVC01 (procedure) is missing",
    ),
    "SVC03 malformed": (
        "SVC*HC:99213*200.00*120.00",
        "SVC*HC:99213*200.00*-",
        "PCN3001",
        "SVC03 (line payment) '-' is not an amount",
    ),
    "loop out of order": (
        "MOA***MA130~\nDTM*232*20240901~\nDTM*050*20240910~\nSVC*HC:99214:25*250.00*0**1~\n",
        "DTM*232*20240901~\nDTM*050*20240910~\nSVC*HC:99214:25*250.00*0**1~\nMOA***MA130~\n",
        "PCN1001",
        "MOA (claim level, loop 2100) after the service line at segment 20",
    ),
}


@pytest.mark.parametrize("name", list(CLAIM_DEFECTS))
def test_a_claim_defect_quarantines_that_claim_only(tmp_path: Path, name: str) -> None:
    sent, corrupted, claim_id, reason = CLAIM_DEFECTS[name]
    assert sent in CLEAN
    text = CLEAN.replace(sent, corrupted, 1)
    claim_ids, quarantined, parser = read(write(tmp_path, "r.835", text))
    expected = list(CLAIM_IDS)
    expected.remove(claim_id)
    assert claim_ids == expected
    (claim,) = quarantined
    assert claim.clp[1] == claim_id and reason in claim.reason
    assert parser.stats.quarantined == 1 and parser.stats.claims == len(CLAIM_IDS)
    # The finding names file, segment, the claim (by its row id, not CLP01) and the defect.
    finding = next(f for f in parser.findings.items if "quarantined" in f.message)
    assert finding.claim == claim.row_id and claim_id not in str(finding)
    assert finding.segment_number == claim.segment_number
    assert str(finding).startswith(f"{parser.path}, segment {claim.segment_number}, claim D")


def test_the_quarantined_claim_is_found_whether_or_not_claims_are_screened(
    tmp_path: Path,
) -> None:
    from ingest.denials import could_be_denial

    text = CLEAN.replace("SVC*HC:99214:25*250.00*0**1", "SVC*HC:99214:25*250.00*X**1", 1)
    path = write(tmp_path, "r.835", text)
    quarantined: list[Quarantined] = []
    parser = RemittanceParser(path, on_quarantine=quarantined.append)
    screened = [claim.claim_id for claim in parser.claims(could_be_denial)]
    assert screened == ["PCN4001", "PCN5001"]  # the reversal carries CO-16; PCN1001 is held
    assert [q.clp[1] for q in quarantined] == ["PCN1001"]


def test_a_fragment_inside_a_claim_is_a_finding_and_the_claim_is_read(tmp_path: Path) -> None:
    text = CLEAN.replace("DTM*232*20240903~\n", "DTM*232*20240903~\n.~\n", 1)
    claim_ids, quarantined, parser = read(write(tmp_path, "r.835", text))
    assert claim_ids == CLAIM_IDS and quarantined == []
    finding = next(f for f in parser.findings.items if "not an X12 segment" in f.message)
    assert finding.segment_number == segment_of(text, ".") and finding.claim is not None


# ------------------------------------------------------------------ ingest, quarantine table


def test_ingest_writes_good_denials_and_quarantines_the_bad_claim(tmp_path: Path) -> None:
    sent, corrupted, _, _ = CLAIM_DEFECTS["CAS amount malformed"]
    path = write(tmp_path, "r.835", _se01_wrong(CLEAN).replace(sent, corrupted))
    out, held = tmp_path / "denials.parquet", tmp_path / "quarantine.csv"
    report = ingest([path], out, quarantine=held)
    assert not report.failed
    assert load_denials(out).frame["claim_id"].tolist() == ["PCN5001"]
    quarantine = pd.read_csv(held)
    assert quarantine["claim_id"].tolist() == ["PCN1001"]
    row = quarantine.iloc[0]
    assert (row["billed_amount"], row["paid_amount"], row["claim_status"]) == (250.0, 0.0, 4)
    assert row["payer_id"] == 77001 and row["denial_date"] == "2024-10-14"
    assert row["segment_number"] == segment_of(CLEAN, "CLP*PCN1001")
    assert row["quarantine_reason"].startswith(f"segment {segment_of(CLEAN, 'CAS*CO*197')}: ")
    assert "'2,50.0.0' is not an amount" in row["quarantine_reason"]
    assert PATIENT_NAME not in held.read_text() and MEMBER_ID not in held.read_text()


def test_an_empty_quarantine_is_still_written(tmp_path: Path) -> None:
    held = tmp_path / "quarantine.parquet"
    held.write_text("an earlier run's file")
    ingest([write(tmp_path, "r.835", CLEAN)], tmp_path / "d.parquet", quarantine=held)
    frame = pd.read_parquet(held)
    assert frame.empty and "quarantine_reason" in frame.columns


def test_strict_makes_any_finding_fatal(tmp_path: Path) -> None:
    path = write(tmp_path, "r.835", CLEAN.replace("IEA*1*000000001", "IEA*1*1"))
    lenient = ingest([path], tmp_path / "a.parquet")
    assert not lenient.failed and lenient.rows_written == 2
    strict = ingest([path], tmp_path / "b.parquet", strict=True)
    (failed,) = strict.failed
    assert failed.error is not None and "strict: envelope: IEA02" in failed.error.message
    assert strict.rows_written == 0 and load_denials(tmp_path / "b.parquet").frame.empty


def test_every_row_is_as_of_the_day_the_remittance_was_issued(tmp_path: Path) -> None:
    without_production_date = [s for s in header(date="20241020") if not s.startswith("DTM*405")]
    paths = [
        write(tmp_path, "a.835", x12([*header(date="20241014"), *denied_claim()])),
        write(tmp_path, "b.835", x12([*without_production_date, *denied_claim("PCN8001")])),
    ]
    ingest(paths, tmp_path / "d.parquet")
    frame = load_denials(tmp_path / "d.parquet").frame
    as_of = frame.set_index("claim_id")["as_of_date"].dt.strftime("%Y-%m-%d").to_dict()
    assert as_of == {"PCN1001": "2024-10-14", "PCN8001": "2024-10-20"}  # DTM*405, BPR16


# ------------------------------------------------------------------ what findings quote


@pytest.mark.parametrize("value", ["-12.50", "250", "20240901", "1,200.00", "1.2.0", "-"])
def test_number_shaped_values_are_quoted(value: str) -> None:
    assert shown_number(value) == repr(value)


@pytest.mark.parametrize("value", ["CO", "16", "A7", "N14", "MA130", "M51", "837"])
def test_code_shaped_values_are_quoted(value: str) -> None:
    assert shown_code(value) == repr(value)


@pytest.mark.parametrize(
    ("value", "description"),
    [
        (MEDICARE_ID, "a value of 11 characters, letters and digits (not shown)"),
        ("123456789", "a value of 9 characters, digits (not shown)"),  # an SSN's shape
        (PATIENT_NAME, "a value of 13 characters, letters (not shown)"),
        ("amount", "a value of 6 characters, letters (not shown)"),
        ("555-1212", "a value of 8 characters, digits and other characters (not shown)"),
        ("123-45-6789", "a value of 11 characters, digits and other characters (not shown)"),
    ],
)
def test_values_that_could_be_ids_or_names_are_described_not_quoted(
    value: str, description: str
) -> None:
    assert shown_number(value) == description
    assert shown_code(value) == description


@pytest.mark.parametrize("value", ["JOHN", "code1", MEDICARE_ID, "SMITH"])
def test_words_and_ids_are_not_codes(value: str) -> None:
    assert value not in shown_code(value)


def test_an_id_placed_in_an_amount_is_never_echoed(tmp_path: Path) -> None:
    text = CLEAN.replace("CLP*PCN3001*1*200.00*", f"CLP*PCN3001*1*{MEDICARE_ID}*")
    text = text.replace("CAS*CO*197*250.00", f"CAS*CO*197*{MEMBER_ID}", 1)
    text = text.replace("IEA*1*000000001", f"IEA*1*{MEMBER_ID}")
    claim_ids, quarantined, parser = read(write(tmp_path, "r.835", text))
    assert claim_ids == ["PCN4001", "PCN4001", "PCN5001"]
    said = messages(parser) + "".join(q.reason for q in quarantined)
    assert "CLP03 (total claim charge) a value of 11 characters, letters and digits" in said
    assert MEDICARE_ID not in said and MEMBER_ID not in said
    assert "PCN1001" not in said and "PCN3001" not in said  # CLP01 is never quoted
