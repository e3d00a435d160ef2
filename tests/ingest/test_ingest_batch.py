"""Ingesting files and folders: all-or-nothing per file, contract-valid output, duplicates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from remit_fixtures import (
    denied_claim,
    header,
    paid_claim,
    partially_paid_claim,
    write,
    x12,
)

from features.contract import load_denials
from ingest.batch import find_remittances, ingest


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "remits"
    folder.mkdir()
    write(folder, "a.835", x12([*header(), *denied_claim(), *partially_paid_claim()]))
    payer_b = header(payer="SECOND PAYER", payer_id="88002", trace="CHK0002")
    write(folder, "b.835", x12([*payer_b, *denied_claim("PCN7001"), *paid_claim()]))
    return folder


def test_a_folder_becomes_one_contract_table(tmp_path: Path) -> None:
    out = tmp_path / "denials.parquet"
    report = ingest([_folder(tmp_path)], out)
    assert not report.failed and report.rows_written == 4
    loaded = load_denials(out)
    assert loaded.ok, loaded.errors
    assert sorted(loaded.frame["payer_id"].unique()) == ["77001", "88002"]
    assert report.total("claims") == 4 and report.total("denied_claims") == 2


def test_a_file_that_is_not_x12_is_reported_and_the_others_written(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    truncated = x12([*header(), *denied_claim("PCN9999")])[:-60]
    write(folder, "broken.835", truncated)
    write(folder, "notes.835", "this is not a remittance")
    out = tmp_path / "denials.parquet"
    report = ingest([folder], out, quarantine=tmp_path / "held.csv")
    failed = {outcome.path.name: str(outcome.error) for outcome in report.failed}
    assert set(failed) == {"notes.835"}
    assert "notes.835, segment 1: not an X12 file" in failed["notes.835"]
    # The truncated file is read: its last claim, cut short, is quarantined, not guessed at.
    broken = next(outcome for outcome in report.files if outcome.path.name == "broken.835")
    assert broken.stats is not None and broken.stats.quarantined == 1
    assert any("truncated" in finding.message for finding in broken.findings)
    frame = load_denials(out).frame
    assert len(frame) == 4 and "PCN9999" not in set(frame["claim_id"])
    assert pd.read_csv(tmp_path / "held.csv")["claim_id"].tolist() == ["PCN9999"]


def test_the_same_remittance_twice_is_written_once(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "copy").mkdir()
    (folder / "copy" / "a-again.835").write_bytes((folder / "a.835").read_bytes())
    report = ingest([folder], tmp_path / "d.parquet")
    assert report.rows_written == 4
    assert sum(outcome.duplicates for outcome in report.files) == 3


def test_spilled_chunks_give_the_same_table(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    whole = ingest([folder], tmp_path / "whole.parquet")
    spilled = ingest([folder], tmp_path / "spilled.parquet", chunk_rows=1)
    assert whole.rows_written == spilled.rows_written
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "spilled.parquet")
    )
    assert not list(tmp_path.glob(".ingest-*"))  # the spill folder is cleaned up


@pytest.mark.parametrize("name", ["d.parquet", "d.csv"])
def test_no_denials_still_writes_a_readable_table(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "paid.835", x12([*header(), *paid_claim()]))
    report = ingest([path], tmp_path / name)
    assert report.rows_written == 0
    if name.endswith(".parquet"):
        assert pd.read_parquet(tmp_path / name).empty
    else:
        assert (tmp_path / name).read_text().startswith("denial_id,")


def test_csv_output_meets_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "d.csv"
    ingest([_folder(tmp_path)], out)
    loaded = load_denials(out)
    assert loaded.ok and len(loaded.frame) == 4


def test_folders_skip_files_that_are_clearly_not_remittances(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "manifest.tsv").write_text("a\tb\n")
    (folder / ".hidden.835").write_text("x")
    files, skipped = find_remittances([folder])
    assert [p.name for p in files] == ["a.835", "b.835"]
    assert [p.name for p in skipped] == ["manifest.tsv"]


def test_a_validator_can_veto_a_file(tmp_path: Path) -> None:
    from ingest.errors import Finding

    def refuse_b(path: Path) -> list[Finding]:
        return [Finding(path, 7, "TR3 N3: missing")] if path.name == "b.835" else []

    report = ingest([_folder(tmp_path)], tmp_path / "d.parquet", validator=refuse_b)
    (failed,) = report.failed
    assert failed.path.name == "b.835" and failed.error is not None
    assert failed.error.segment_number == 7 and report.rows_written == 3


@pytest.mark.parametrize(
    "layout",
    [
        {"element": "|", "component": ">", "terminator": "\n", "newline": ""},
        {"element": "!", "component": "^", "terminator": "'", "newline": "\r\n"},
        {"element": "*", "component": ":", "terminator": "~", "newline": ""},
    ],
)
def test_separators_do_not_change_the_rows(tmp_path: Path, layout: dict[str, str]) -> None:
    body = [*header(), *denied_claim(), *partially_paid_claim()]
    reference = tmp_path / "reference.835"
    reference.write_text(x12(body), newline="")
    odd = write(tmp_path, "odd.835", x12(body, **layout))
    ingest([reference], tmp_path / "a.parquet")
    ingest([odd], tmp_path / "b.parquet")
    expected = pd.read_parquet(tmp_path / "a.parquet").drop(columns="source_file")
    found = pd.read_parquet(tmp_path / "b.parquet").drop(columns="source_file")
    # The denied claim and the two refused lines, composites (modifiers, CAS pairs) split by
    # the odd component separator: two empty or equally wrong readings cannot pass.
    assert list(found["claim_id"]) == ["PCN1001", "PCN2001", "PCN2001"]
    assert list(found["denied_amount"]) == [250.0, 150.0, 125.0]
    carc_codes = [list(codes) for codes in found["carc_codes"]]
    assert carc_codes == [["CO-197"], ["CO-97"], ["CO-151", "CO-45"]]
    assert [list(codes) for codes in found["modifiers"]] == [["25"], ["59"], []]
    pd.testing.assert_frame_equal(expected, found)
