"""The ingest and link-outcomes commands, and pyx12 validation behind --validate."""

from __future__ import annotations

from pathlib import Path

import pytest
from remit_fixtures import denied_claim, full_remittance, header, paid_claim, patient, write, x12
from typer.testing import CliRunner

from denial_triage.commands.ingest import app
from features.contract import load_denials
from ingest.validate import pyx12_available, validate_file

runner = CliRunner()
needs_pyx12 = pytest.mark.skipif(not pyx12_available(), reason="pyx12 is not installed")


@pytest.fixture
def remit(tmp_path: Path) -> Path:
    """A remittance showing each kind of claim (see ``full_remittance``)."""
    return full_remittance(tmp_path)


def _good_and_bad(tmp_path: Path) -> Path:
    folder = tmp_path / "remits"
    folder.mkdir()
    write(folder, "good.835", x12([*header(), *denied_claim()]))
    bad = x12([*header(), *paid_claim()]).replace("SE*20*", "SE*19*")
    write(folder, "bad-count.835", bad)
    write(folder, "letter.835", "Dear provider, your remittance is attached.")
    return folder


def test_ingest_reads_files_with_findings_and_fails_on_one_that_is_not_x12(
    tmp_path: Path,
) -> None:
    out = tmp_path / "denials.parquet"
    result = runner.invoke(app, ["ingest", str(_good_and_bad(tmp_path)), "--out", str(out)])
    assert result.exit_code == 1
    assert "letter.835, segment 1: not an X12 file" in result.output
    assert "bad-count.835, segment 22: envelope: SE01 says 19 but there are 20" in result.output
    assert "ok " in result.output and "wrote 1 denial rows" in result.output
    assert load_denials(out).ok


def test_strict_fails_a_file_with_findings(tmp_path: Path) -> None:
    folder = _good_and_bad(tmp_path)
    (folder / "letter.835").unlink()
    args = ["ingest", str(folder), "--out", str(tmp_path / "d.csv")]
    assert runner.invoke(app, args).exit_code == 0
    strict = runner.invoke(app, [*args, "--strict"])
    assert strict.exit_code == 1
    assert "FAILED" in strict.output and "strict: envelope: SE01 says 19" in strict.output


def test_tolerate_counts_is_a_deprecated_no_op(tmp_path: Path) -> None:
    folder = _good_and_bad(tmp_path)
    (folder / "letter.835").unlink()
    args = ["ingest", str(folder), "--out", str(tmp_path / "d.csv"), "--tolerate-counts"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "--tolerate-counts is deprecated" in result.output
    assert "SE01 says 19" in result.output  # reported as before


def test_quarantined_claims_are_written_where_asked(tmp_path: Path) -> None:
    body = [*header(), *denied_claim(), *paid_claim()]
    text = x12(body).replace("CAS*CO*197*250.00", "CAS*CO*197*25O.00")
    path = write(tmp_path, "r.835", text)
    held = tmp_path / "held.csv"
    args = ["ingest", str(path), "--out", str(tmp_path / "d.csv"), "--quarantine", str(held)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 claims (1 denied, 0 reversals, 1 quarantined), 0 rows" in result.output
    assert f"1 quarantined (written to {held})" in result.output
    assert "segment 23, claim D" in result.output and "PCN1001" not in result.output
    assert "PCN1001" in held.read_text()  # the contract's claim_id column, in the file


def test_a_wrong_quarantine_extension_is_an_error_before_anything_is_written(
    tmp_path: Path,
) -> None:
    out = write(tmp_path, "d.csv", "kept")
    args = ["ingest", str(tmp_path), "--out", str(out), "--quarantine", str(tmp_path / "q.txt")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "unknown extension" in result.output
    assert out.read_text() == "kept"


def test_a_wrong_output_extension_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(tmp_path), "--out", str(tmp_path / "d.xlsx")])
    assert result.exit_code == 1 and "unknown extension" in result.output


def test_link_outcomes_takes_several_remittance_paths(tmp_path: Path) -> None:
    first = write(tmp_path, "first.835", x12([*header(), *denied_claim()]))
    denials, history = tmp_path / "d.parquet", tmp_path / "h.parquet"
    assert runner.invoke(app, ["ingest", str(first), "--out", str(denials)]).exit_code == 0
    payment = [
        "CLP*PCN1001*1*250.00*200.00*0*12*ICN7001*11*1",
        *patient(),
        "DTM*232*20240901",
    ]
    later = write(tmp_path, "later.835", x12([*header(trace="T2", date="20241201"), *payment]))
    empty = write(tmp_path, "empty.835", x12([*header(trace="T3", date="20241202")]))
    args = ["link-outcomes", "--denials", str(denials), "--out", str(history)]
    result = runner.invoke(app, [*args, "--remits", str(empty), str(later)])
    assert result.exit_code == 0, result.output
    assert "1 of 1 denials recovered (200.00)" in result.output
    frame = load_denials(history).frame
    assert frame["resolution"].tolist() == ["overturned_on_appeal"]


def test_link_outcomes_refuses_a_table_that_breaks_the_contract(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.csv", "denial_id\nx\n")
    args = ["link-outcomes", "--denials", str(bad), "--remits", str(tmp_path)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "h.parquet")])
    assert result.exit_code == 1 and "contract errors" in result.output


@needs_pyx12
def test_validate_accepts_a_tr3_valid_file(remit: Path) -> None:
    assert validate_file(remit) == []


@needs_pyx12
def test_validate_names_segments_and_never_quotes_values(tmp_path: Path) -> None:
    long_name = "SECRETNAME" * 8  # longer than NM103 allows
    body = [*header(), *denied_claim()]
    body[body.index(next(s for s in body if s.startswith("NM1*QC")))] = (
        f"NM1*QC*1*{long_name}*JANE****MI*W1"
    )
    findings = validate_file(write(tmp_path, "r.835", x12(body)))
    assert findings and all(finding.segment_number for finding in findings)
    assert not any("SECRETNAME" in str(finding) for finding in findings)


@needs_pyx12
def test_validate_flag_keeps_an_invalid_file_out(tmp_path: Path) -> None:
    body = [*header(), *denied_claim()]
    body.remove("N3*1 PAYER WAY")  # required payer address
    path = write(tmp_path, "r.835", x12(body))
    out = tmp_path / "d.parquet"
    result = runner.invoke(app, ["ingest", str(path), "--out", str(out), "--validate"])
    assert result.exit_code == 1
    assert "TR3 validation failed" in result.output and "TR3 N3" in result.output
    assert load_denials(out).frame.empty


def test_validate_without_pyx12_stops_before_touching_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import denial_triage.commands.ingest as command

    monkeypatch.setattr(command, "pyx12_available", lambda: False)
    out = write(tmp_path, "d.csv", "kept")
    result = runner.invoke(app, ["ingest", str(tmp_path), "--out", str(out), "--validate"])
    assert result.exit_code == 1 and "pip install" in result.output
    assert out.read_text() == "kept"
