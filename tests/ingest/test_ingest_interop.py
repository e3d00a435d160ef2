"""Interoperability: every public 835 test file in ../shared/samples/835 reads without
raising, with the claim, denied-claim, line and PLB counts its manifest records.

Three of the samples state a wrong SE01 segment count (checked below); they are read with
``tolerate_counts`` here, and by default ingestion refuses them as the issue asks."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from features.contract import load_denials
from ingest.batch import ingest
from ingest.denials import could_be_denial, denial_rows
from ingest.remit835 import RemittanceError, RemittanceParser

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "835"
MANIFEST = SAMPLES / "manifest.tsv"


def _manifest() -> list[dict[str, str]]:
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


SAMPLE_ROWS = _manifest()
pytestmark = pytest.mark.skipif(not SAMPLE_ROWS, reason="../shared/samples/835 is not present")


@pytest.mark.parametrize("entry", SAMPLE_ROWS, ids=[row["local_file"][:60] for row in SAMPLE_ROWS])
@pytest.mark.parametrize("screened", [False, True], ids=["all-claims", "screened"])
def test_sample_counts_match_the_manifest(entry: dict[str, str], screened: bool) -> None:
    parser = RemittanceParser(SAMPLES / entry["local_file"], tolerate_counts=True)
    payers = set()
    for claim in parser.claims(could_be_denial if screened else None):
        denial_rows(claim, parser.findings)
        payers.add(claim.remittance.payer_name)
    stats = parser.stats
    assert stats.segments == int(entry["n_segments"])
    assert stats.claims == int(entry["n_claims_CLP"])
    assert stats.denied_claims == int(entry["denied_claims_clp02_4"])
    assert stats.service_lines == int(entry["n_service_lines_SVC"])
    assert stats.provider_adjustments == int(entry["n_PLB"])
    if not screened:
        assert payers <= set(entry["payer_N1PR"].split(";"))


@pytest.mark.parametrize("entry", SAMPLE_ROWS, ids=[row["local_file"][:60] for row in SAMPLE_ROWS])
def test_by_default_only_wrong_counts_stop_a_sample(entry: dict[str, str]) -> None:
    parser = RemittanceParser(SAMPLES / entry["local_file"])
    try:
        list(parser.claims())
    except RemittanceError as error:
        assert error.message.startswith("bad envelope count: SE01 says")
        assert error.segment_number is not None


def test_the_sample_folder_ingests_to_a_valid_table(tmp_path: Path) -> None:
    out = tmp_path / "samples.parquet"
    report = ingest([SAMPLES], out, tolerate_counts=True)
    assert not report.failed
    assert [path.name for path in report.skipped] == ["manifest.tsv"]
    loaded = load_denials(out)
    assert loaded.ok, loaded.errors
    denied = sum(int(entry["denied_claims_clp02_4"]) for entry in SAMPLE_ROWS)
    assert len(loaded.frame) == denied == 1  # the one CLP02 = 4 claim, nothing else
