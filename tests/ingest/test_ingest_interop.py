"""Interoperability: every public 835 test file in ../shared/samples/835 reads without
raising and without losing a claim (none quarantined), with the claim, denied-claim, line
and PLB counts its manifest records.

Three of the samples state a wrong SE01 segment count (checked below): a finding, never a
reason to drop the file's claims; ``--strict`` refuses them."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from features.contract import load_denials
from ingest.batch import ingest
from ingest.denials import could_be_denial, denial_rows
from ingest.remit835 import RemittanceParser

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "835"
MANIFEST = SAMPLES / "manifest.tsv"
# What the samples carry: wrong SE01 counts, masked codes (XX, grp_code), a missing ISA
# header, a line without amounts; nothing that costs a claim.
EXPECTED_FINDINGS = (
    "envelope: SE01 says",
    "CAS",
    "remark code",
    "no ISA envelope",
    "SVC02 (line charge) is missing",
    "SVC03 (line payment) is missing",
)


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
    parser = RemittanceParser(SAMPLES / entry["local_file"])
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
    assert stats.quarantined == 0
    if not screened:
        assert payers <= set(entry["payer_N1PR"].split(";"))


@pytest.mark.parametrize("entry", SAMPLE_ROWS, ids=[row["local_file"][:60] for row in SAMPLE_ROWS])
def test_only_wrong_counts_and_masked_data_are_found_in_a_sample(entry: dict[str, str]) -> None:
    parser = RemittanceParser(SAMPLES / entry["local_file"])
    list(parser.claims())
    for finding in parser.findings.items:
        assert finding.segment_number is not None
        assert finding.message.startswith(EXPECTED_FINDINGS), finding


def test_the_sample_folder_ingests_to_a_valid_table(tmp_path: Path) -> None:
    out = tmp_path / "samples.parquet"
    report = ingest([SAMPLES], out, quarantine=tmp_path / "held.parquet")
    assert not report.failed
    assert [path.name for path in report.skipped] == ["manifest.tsv"]
    loaded = load_denials(out)
    assert loaded.ok, loaded.errors
    denied = sum(int(entry["denied_claims_clp02_4"]) for entry in SAMPLE_ROWS)
    assert len(loaded.frame) == denied == 1  # the one CLP02 = 4 claim, nothing else
    assert pd.read_parquet(tmp_path / "held.parquet").empty
    claims = sum(int(entry["n_claims_CLP"]) for entry in SAMPLE_ROWS)
    assert report.total("claims") == claims and report.total("quarantined") == 0


def test_strict_refuses_exactly_the_samples_with_findings(tmp_path: Path) -> None:
    report = ingest([SAMPLES], tmp_path / "strict.parquet", strict=True)
    lenient = ingest([SAMPLES], tmp_path / "lenient.parquet")
    with_findings = {o.path.name for o in lenient.files if o.findings}
    assert {o.path.name for o in report.failed} == with_findings
    assert len(with_findings) >= 3  # the wrong SE01 counts at least


@pytest.fixture(scope="module")
def corruption_benchmark():
    from conftest import load_module

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "ingest_defects.py"
    return load_module(path, "ingest_defects")


@pytest.fixture(scope="module")
def clean_samples(corruption_benchmark) -> list:
    paths = sorted(p for p in SAMPLES.iterdir() if p.name != MANIFEST.name)
    return [corruption_benchmark.load_sample(path) for path in paths]


@pytest.mark.parametrize(
    "defect",
    [
        "SE01 count wrong",
        "IEA02 trimmed (differs from ISA13)",
        "text after the last segment",
        "missing IEA at end of file",
        "line breaks and indentation between segments",
        "claim: CLP03 missing",
        "claim: CAS amount malformed",
        "claim: loop out of order (MOA after a line)",
    ],
)
def test_every_good_claim_survives_each_corruption_of_the_samples(
    corruption_benchmark, clean_samples: list, defect: str, tmp_path: Path
) -> None:
    tally = corruption_benchmark.run_class(defect, clean_samples, tmp_path)
    assert tally.files >= 9 and tally.good_claims >= 18
    assert tally.recovered == tally.good_claims
    assert tally.denials_found == tally.good_denials == 1
    # Each damaged claim is held back, never read as if whole.
    assert tally.quarantined == tally.damaged_claims
