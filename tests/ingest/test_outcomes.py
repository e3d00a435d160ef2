"""Linking later payments to earlier denials."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from remit_fixtures import (
    denied_claim,
    header,
    partially_paid_claim,
    patient,
    write,
    x12,
)

from features.contract import load_denials, write_denials
from ingest.batch import ingest
from ingest.outcomes import DenialsTableError, link_outcomes


def _payment(claim_id: str, paid: str, frequency: str = "1", **line: str) -> list[str]:
    """A later claim paying ``claim_id`` on one line (99214, 2024-09-01 unless told)."""
    procedure = line.get("procedure", "99214")
    return [
        f"CLP*{claim_id}*1*250.00*{paid}*0*12*ICN8{claim_id[-3:]}*11*{frequency}",
        *patient(),
        "DTM*232*20240901",
        f"SVC*HC:{procedure}*250.00*{paid}**1",
        f"DTM*472*{line.get('date', '20240901')}",
        "CAS*CO*45*10.00",
    ]


def _later(tmp_path: Path, name: str, *claims: list[str], trace: str = "EFT0500") -> Path:
    body = [*header(trace=trace, date="20241120")] + [s for claim in claims for s in claim]
    return write(tmp_path, name, x12(body))


def _history(tmp_path: Path, *later: Path, denials: list[list[str]] | None = None) -> pd.DataFrame:
    """Ingest the denials (a denied claim unless told), link ``later``, load the history."""
    claims = denials or [denied_claim()]
    body = [*header(), *(segment for claim in claims for segment in claim)]
    first = write(tmp_path, "first.835", x12(body))
    ingest([first], tmp_path / "denials.parquet")
    link_outcomes(tmp_path / "denials.parquet", list(later), tmp_path / "history.parquet")
    loaded = load_denials(tmp_path / "history.parquet")
    assert loaded.ok, loaded.errors
    return loaded.frame.set_index("claim_id")


def test_a_later_payment_recovers_a_denied_claim(tmp_path: Path) -> None:
    paid = _later(tmp_path, "later.835", _payment("PCN1001", "180.00"))
    row = _history(tmp_path, paid).loc["PCN1001"]
    assert row["recovered_amount"] == 180 and row["resolution"] == "overturned_on_appeal"
    assert row["resolved_date"] == pd.Timestamp("2024-11-20")


def test_a_replacement_claim_is_paid_after_correction(tmp_path: Path) -> None:
    paid = _later(tmp_path, "later.835", _payment("PCN1001", "250.00", frequency="7"))
    row = _history(tmp_path, paid).loc["PCN1001"]
    assert (row["recovered_amount"], row["resolution"]) == (250, "paid_after_correction")


def test_no_later_payment_leaves_the_denial_open(tmp_path: Path) -> None:
    other = _later(tmp_path, "later.835", _payment("PCN9999", "100.00"))
    row = _history(tmp_path, other).loc["PCN1001"]
    assert (row["recovered_amount"], row["resolution"]) == (0, "open")
    assert pd.isna(row["resolved_date"])


def test_the_denying_remittance_itself_is_not_a_payment(tmp_path: Path) -> None:
    history = _history(
        tmp_path,
        tmp_path / "first.835",
        denials=[partially_paid_claim()],  # its own lines are partly paid
    )
    # Both refused lines are there (an empty history would pass the checks below), and
    # neither counts the denying remittance's own payments as a recovery.
    assert list(history["line_number"]) == [2, 3]
    assert list(history["resolution"]) == ["open", "open"]
    assert list(history["recovered_amount"]) == [0, 0]
    assert history["resolved_date"].isna().all()


def test_line_denials_recover_from_the_same_procedure_and_date(tmp_path: Path) -> None:
    bundled = _payment("PCN2001", "100.00", procedure="93000", date="20240902")
    other_code = _payment("PCN2001", "70.00", procedure="99999", date="20240903")
    paid = _later(tmp_path, "later.835", bundled, other_code)
    history = _history(tmp_path, paid, denials=[partially_paid_claim()]).set_index("line_number")
    assert history.loc[2, "recovered_amount"] == 100  # 93000 on 2024-09-02
    assert history.loc[3, "recovered_amount"] == 0  # 97110 was never paid later


def test_payer_claim_number_links_a_resubmission_under_a_new_claim_id(tmp_path: Path) -> None:
    payment = _payment("NEWPCN001", "90.00")
    payment[0] = payment[0].replace("ICN8001", "ICN9001")  # the payer's original claim number
    row = _history(tmp_path, _later(tmp_path, "later.835", payment)).loc["PCN1001"]
    assert row["recovered_amount"] == 90


def test_recovery_is_capped_and_a_repeated_remittance_counts_once(tmp_path: Path) -> None:
    first = _later(tmp_path, "pay1.835", _payment("PCN1001", "150.00"))
    again = write(tmp_path, "pay1-copy.835", first.read_text())
    second = _later(tmp_path, "pay2.835", _payment("PCN1001", "150.00"), trace="EFT0600")
    row = _history(tmp_path, first, again, second).loc["PCN1001"]
    assert row["recovered_amount"] == 250  # 150 + 150, at most the 250 denied


def test_a_payment_from_another_payer_does_not_count(tmp_path: Path) -> None:
    body = [*header(payer="OTHER", payer_id="99999", date="20241120"), *_payment("PCN1001", "9")]
    row = _history(tmp_path, write(tmp_path, "o.835", x12(body))).loc["PCN1001"]
    assert row["resolution"] == "open"


def test_a_bad_remittance_is_reported_and_linking_goes_on(tmp_path: Path) -> None:
    paid = _later(tmp_path, "later.835", _payment("PCN1001", "180.00"))
    broken = write(tmp_path, "broken.835", "ISA*garbage")
    first = write(tmp_path, "first.835", x12([*header(), *denied_claim()]))
    ingest([first], tmp_path / "denials.parquet")
    report = link_outcomes(tmp_path / "denials.parquet", [broken, paid], tmp_path / "h.parquet")
    assert [outcome.path.name for outcome in report.failed] == ["broken.835"]
    assert report.recovered == 1


def test_a_table_that_breaks_the_contract_is_refused(tmp_path: Path) -> None:
    write_denials(pd.DataFrame({"denial_id": ["a"]}), tmp_path / "bad.parquet")
    with pytest.raises(DenialsTableError, match="contract errors"):
        link_outcomes(tmp_path / "bad.parquet", [], tmp_path / "h.parquet")


def test_linking_keeps_the_as_of_date_ingest_set(tmp_path: Path) -> None:
    paid = _later(tmp_path, "later.835", _payment("PCN1001", "180.00"))
    row = _history(tmp_path, paid).loc["PCN1001"]
    # The denying remittance's date (DTM*405), not the later payment's, nor today.
    assert row["as_of_date"] == row["denial_date"] == pd.Timestamp("2024-10-14")


@pytest.mark.parametrize("given", [None, "2024-10-30"])
def test_a_missing_as_of_date_becomes_the_remittance_date_never_today(
    tmp_path: Path, given: str | None
) -> None:
    first = write(tmp_path, "first.835", x12([*header(), *denied_claim()]))
    ingest([first], tmp_path / "denials.parquet")
    frame = load_denials(tmp_path / "denials.parquet").frame
    if given is None:
        frame = frame.drop(columns="as_of_date")  # a table from before ingest set it
    else:
        frame["as_of_date"] = pd.Timestamp(given)
    write_denials(frame, tmp_path / "denials.parquet")
    link_outcomes(tmp_path / "denials.parquet", [], tmp_path / "h.parquet")
    linked = load_denials(tmp_path / "h.parquet").frame
    assert linked["as_of_date"].tolist() == [pd.Timestamp(given or "2024-10-14")]


def _linked_after(
    tmp_path: Path, later_payer: str, unpaid_after_days: int | None
) -> tuple[pd.Series, int]:
    """PCN1001 denied on 2024-10-14 by payer 77001 and never paid; a remittance of
    ``later_payer`` dated 2025-05-01 pays another claim. The denial's row and how many
    denials were written off."""
    first = write(tmp_path, "first.835", x12([*header(), *denied_claim()]))
    later = write(
        tmp_path,
        "later.835",
        x12(
            [
                *header(payer_id=later_payer, trace="EFT0600", date="20250501"),
                *_payment("PCN2002", "90.00"),
            ]
        ),
    )
    ingest([first], tmp_path / "denials.parquet")
    report = link_outcomes(
        tmp_path / "denials.parquet",
        [first, later],
        tmp_path / "history.parquet",
        unpaid_after_days=unpaid_after_days,
    )
    loaded = load_denials(tmp_path / "history.parquet")
    assert loaded.ok, loaded.errors
    return loaded.frame.set_index("claim_id").loc["PCN1001"], report.written_off


def test_a_denial_unpaid_past_the_span_its_payer_was_read_for_is_written_off(
    tmp_path: Path,
) -> None:
    row, written_off = _linked_after(tmp_path, "77001", unpaid_after_days=180)
    assert written_off == 1
    assert row["resolution"] == "written_off" and row["recovered_amount"] == 0
    # Resolved when the span ran out (2024-10-14 + 180 days), not when the link ran.
    assert row["resolved_date"] == pd.Timestamp("2025-04-12")


@pytest.mark.parametrize(
    ("later_payer", "days"),
    [("77001", 365), ("77001", None), ("88002", 180)],
    ids=["span-not-yet-passed", "no-span-given", "only-another-payer-read-that-far"],
)
def test_a_denial_stays_open_until_its_own_payer_shows_the_span_passed(
    tmp_path: Path, later_payer: str, days: int | None
) -> None:
    row, written_off = _linked_after(tmp_path, later_payer, unpaid_after_days=days)
    assert written_off == 0
    assert row["resolution"] == "open" and pd.isna(row["resolved_date"])
