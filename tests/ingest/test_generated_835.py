"""The generator speaks 835: its remittances, ingested and linked, give the history back.

A few hundred generated rows are written as 835s, read with ``ingest`` and labelled with
``link-outcomes``; every field an 835 carries must come back as generated, matched on the
claim id (each generated denial is its own claim with one line; ingestion's denial ids are
hashes of the remittance, not the generator's ids). Not carried by an 835, so not compared:
denial_id, as_of_date (ingestion takes the issue date), specialty, facility_id,
diagnosis_codes, eligibility_verified, prior_auth_on_file, submission_attempt, root_cause,
preventable; medicaid_managed_care reads back as medicaid (no CLP06 code says it), and
written_off and billed_to_patient as open (an 835 does not show a write-off).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from denial_triage.cli import app
from features.contract import load_denials
from ingest.batch import IngestReport, ingest
from ingest.denials import CONTRACT_ROW_COLUMNS
from ingest.outcomes import link_outcomes
from ingest.writer import RECOVERED, RemittanceReport, write_remittances
from training.synthetic import generate_history

# Ingestion validates each file's rows as a table, about 0.15 s a file, so the sample keeps
# the files few: four months and the six busiest payers, about 200 denials in about 80 files.
ROWS, MONTHS, PAYERS = 600, 4, 6
# The contract columns an 835 fills, less the ids (matched on, or hashed by ingestion), the
# issue date as as_of_date, and payer_type (compared on its own: one type does not survive).
CARRIED = tuple(
    name
    for name in CONTRACT_ROW_COLUMNS
    if name not in {"denial_id", "claim_id", "payer_type", "as_of_date"}
)


@dataclass
class RoundTrip:
    remits: Path
    written: RemittanceReport
    ingested: IngestReport
    linked: pd.DataFrame  # one row per claim id
    quarantined: pd.DataFrame


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("history") / "history.parquet"
    generate_history(ROWS, seed=11, out=path, months=MONTHS)
    frame = load_denials(path).frame
    busiest = frame["payer_id"].value_counts().index[:PAYERS]
    return frame[frame["payer_id"].isin(busiest)].reset_index(drop=True)


def _round_trip(history: pd.DataFrame, folder: Path, defect_share: float) -> RoundTrip:
    remits = folder / "remits"
    written = write_remittances(history, remits, defect_share=defect_share, seed=5)
    denials, quarantine = folder / "denials.parquet", folder / "quarantine.parquet"
    ingested = ingest([remits], denials, quarantine=quarantine)
    link_outcomes(denials, [remits], folder / "linked.parquet")
    linked = load_denials(folder / "linked.parquet").frame
    return RoundTrip(remits, written, ingested, linked, pd.read_parquet(quarantine))


@pytest.fixture(scope="module")
def clean(history: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    return _round_trip(history, tmp_path_factory.mktemp("clean"), defect_share=0.0)


@pytest.fixture(scope="module")
def damaged(history: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    return _round_trip(history, tmp_path_factory.mktemp("damaged"), defect_share=0.1)


def _value(value: object) -> object:
    """Comparable form: dates as ISO text, amounts to the cent, lists as lists."""
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[union-attr]
    if isinstance(value, float):
        return None if pd.isna(value) else round(value, 2)
    if hasattr(value, "__len__") and not isinstance(value, str):
        return [str(item) for item in value]  # type: ignore[union-attr]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    return int(value) if hasattr(value, "__int__") and not isinstance(value, str) else value


def _by_claim(frame: pd.DataFrame) -> dict[str, dict[str, object]]:
    return {str(row["claim_id"]): row for row in frame.to_dict("records")}


def _mismatches(
    history: pd.DataFrame, linked: pd.DataFrame, fields: tuple[str, ...], skip: set[str]
) -> list[str]:
    read = _by_claim(linked)
    problems = []
    for claim_id, row in _by_claim(history).items():
        if claim_id in skip:
            continue
        if claim_id not in read:
            problems.append(f"{claim_id}: not read back")
            continue
        for name in fields:
            if _value(row[name]) != _value(read[claim_id][name]):
                problems.append(f"{claim_id} {name}: {row[name]!r} != {read[claim_id][name]!r}")
    return problems


def test_every_field_an_835_carries_comes_back(history: pd.DataFrame, clean: RoundTrip) -> None:
    assert history["claim_id"].is_unique  # matching on claim id needs it
    assert len(clean.linked) == len(history)
    assert _mismatches(history, clean.linked, CARRIED, skip=set()) == []


def test_both_claim_and_line_denials_and_both_claim_types_are_exercised(
    history: pd.DataFrame,
) -> None:
    """The sample must hold partly paid (line) rows and institutional claims, or the field
    comparison above proves less than it says."""
    assert (history["paid_amount"] > 0).sum() >= 5
    assert (history["claim_type"] == "institutional").sum() >= 5
    assert history["modifiers"].map(len).gt(0).sum() >= 5
    assert history["rarc_codes"].map(len).gt(0).sum() >= 5


def test_payer_type_comes_back_but_medicaid_managed_care_reads_as_medicaid(
    history: pd.DataFrame, clean: RoundTrip
) -> None:
    expected = history["payer_type"].replace("medicaid_managed_care", "medicaid")
    read = clean.linked.set_index("claim_id")["payer_type"]
    assert (read.loc[history["claim_id"]].to_numpy() == expected.to_numpy()).all()
    assert set(expected) >= {"medicare", "commercial", "medicaid"}


def _recovered(history: pd.DataFrame) -> pd.DataFrame:
    paid = history["resolution"].isin(RECOVERED) & (history["recovered_amount"] > 0)
    return history[paid]


def _as_835_shows_it(history: pd.DataFrame) -> pd.DataFrame:
    """The outcomes remittances can show: recoveries as generated, every other denial open
    with nothing recovered."""
    expected = history.copy()
    unpaid = ~expected["claim_id"].isin(_recovered(history)["claim_id"])
    expected.loc[unpaid, "resolution"] = "open"
    expected.loc[unpaid, "recovered_amount"] = 0.0
    expected.loc[unpaid, "resolved_date"] = pd.NaT
    return expected


def test_recovered_denials_come_back_to_the_cent_on_their_resolved_date(
    history: pd.DataFrame, clean: RoundTrip
) -> None:
    recovered = _recovered(history)
    assert set(recovered["resolution"]) == RECOVERED  # both kinds in the sample
    outcomes = ("resolution", "recovered_amount", "resolved_date")
    assert _mismatches(recovered, clean.linked, outcomes, skip=set()) == []
    assert clean.written.paying_claims == len(recovered)


def test_denials_nothing_paid_come_back_open_with_nothing_recovered(
    history: pd.DataFrame, clean: RoundTrip
) -> None:
    unpaid = history[~history["claim_id"].isin(_recovered(history)["claim_id"])]
    assert set(unpaid["resolution"]) >= {"written_off", "open"}
    read = clean.linked.set_index("claim_id").loc[unpaid["claim_id"]]
    assert (read["resolution"] == "open").all()
    assert (read["recovered_amount"] == 0).all()
    assert read["resolved_date"].isna().all()


def test_clean_files_have_right_counts_and_control_numbers(clean: RoundTrip) -> None:
    """Wrong SE/GE/IEA counts or control numbers would be findings; a clean run has none,
    and nothing is quarantined."""
    assert clean.ingested.failed == []
    assert [f for outcome in clean.ingested.files for f in outcome.findings] == []
    assert clean.ingested.total("quarantined") == 0
    assert clean.quarantined.empty


def test_one_file_per_payer_week_with_a_transaction_per_payment_date(
    history: pd.DataFrame, tmp_path: Path
) -> None:
    remits = write_remittances(history.head(60), tmp_path)
    text = "".join(path.read_text() for path in sorted(tmp_path.glob("*.835")))
    transactions = re.findall(r"^ST\*835\*\d+~$", text, flags=re.MULTILINE)
    production_dates = re.findall(r"^DTM\*405\*(\d{8})~$", text, flags=re.MULTILINE)
    assert len(transactions) == len(production_dates) == remits.transactions
    for path in tmp_path.glob("*.835"):
        payer, monday = path.stem.split("_")
        assert payer in set(history["payer_id"])
        assert pd.Timestamp(monday).weekday() == 0
        dates = re.findall(r"^DTM\*405\*(\d{8})~$", path.read_text(), flags=re.MULTILINE)
        assert len(dates) == len(set(dates))  # one transaction per payment date
        assert all(0 <= (pd.Timestamp(d) - pd.Timestamp(monday)).days < 7 for d in dates)


def test_no_patient_names_or_member_ids_but_placeholders(clean: RoundTrip) -> None:
    text = "".join(path.read_text() for path in sorted(clean.remits.glob("*.835")))
    patients = re.findall(r"^NM1\*QC\*1\*([^*]*)\*([^*]*)\*\*\*\*MI\*([^~]*)~", text, re.M)
    assert len(patients) == clean.written.denied_claims + clean.written.paying_claims
    assert {(last, first) for last, first, _ in patients} == {("PATIENT", "SYNTHETIC")}
    assert all(re.fullmatch(r"ZZ[0-9A-F]{10}", member) for *_, member in patients)


def test_with_defects_every_undamaged_claim_comes_back_and_damaged_ones_are_quarantined(
    history: pd.DataFrame, damaged: RoundTrip
) -> None:
    broken = damaged.written.damaged_claims
    assert 5 <= len(broken) < len(history) // 4
    assert set(damaged.quarantined["claim_id"]) == broken
    assert not set(damaged.linked["claim_id"]) & broken
    fields = (*CARRIED, "resolution", "recovered_amount", "resolved_date")
    undamaged = _as_835_shows_it(history[~history["claim_id"].isin(broken)])
    assert _mismatches(undamaged, damaged.linked, fields, skip=broken) == []
    assert sum(damaged.written.envelope_defects.values()) >= 3
    assert damaged.ingested.failed == []


def test_generate_as_835_writes_the_folder_and_fails_when_it_cannot(tmp_path: Path) -> None:
    runner = CliRunner()
    out, folder = tmp_path / "history.parquet", tmp_path / "remits"
    arguments = ["generate", "--rows", "80", "--out", str(out), "--as-835", str(folder)]
    result = runner.invoke(app, [*arguments, "--defect-share", "0.05"])
    assert result.exit_code == 0, result.output
    assert "835 files" in result.output and "damaged" in result.output
    assert len(list(folder.glob("*.835"))) > 0
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    arguments[-1] = str(blocked)
    failed = runner.invoke(app, arguments)
    assert failed.exit_code == 1
    assert "cannot write remittances" in failed.output
