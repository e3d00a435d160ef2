"""The synthetic history: deterministic, contract-valid, and shaped like the industry figures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import COLUMNS, PAYER_TYPES, ROOT_CAUSES, TRUTH_COLUMNS, load_denials
from features.mapping import load_mapping
from features.payer_rules import load_payer_rules
from training.baselines import CodeSetLookup
from training.metrics import expected_calibration_error
from training.profile import profile_history
from training.synthetic import CHUNK_ROWS, generate_history


@pytest.fixture(scope="module")
def profile(history: pd.DataFrame):
    return profile_history(history, load_mapping())


def test_same_seed_gives_identical_history(tmp_path: Path) -> None:
    first = generate_history(3_000, 5, tmp_path / "a.parquet")
    second = generate_history(3_000, 5, tmp_path / "b.parquet")
    other = generate_history(3_000, 6, tmp_path / "c.parquet")
    a, b, c = (pd.read_parquet(p) for p in (first, second, other))
    pd.testing.assert_frame_equal(a, b)
    assert not a["root_cause"].equals(c["root_cause"])


def test_denial_ids_run_on_across_chunks(tmp_path: Path) -> None:
    rows = CHUNK_ROWS + 250
    big = pd.read_parquet(generate_history(rows, 3, tmp_path / "big.parquet"))
    assert len(big) == rows and big["denial_id"].is_unique
    assert big["denial_id"].iloc[-1] == f"D{rows - 1:09d}"
    assert big["claim_id"].nunique() > rows * 0.99


def test_csv_output_passes_validation(tmp_path: Path) -> None:
    path = generate_history(2_000, 9, tmp_path / "history.csv")
    result = load_denials(path)
    assert result.ok, result.errors[:5]
    assert len(result.frame) == 2_000
    assert set(result.frame.columns) == {c.name for c in COLUMNS}


def test_history_covers_two_years_dozens_of_payers_and_many_specialties(profile) -> None:
    assert profile.months_covered >= 24
    assert profile.payers >= 36
    assert profile.payer_types == len(PAYER_TYPES)
    assert profile.specialties >= 15
    assert profile.procedure_codes >= 60


def test_root_cause_mix_follows_industry_shares(profile) -> None:
    mix = profile.root_cause_mix
    assert set(mix) == set(ROOT_CAUSES)
    # Change Healthcare 2017/2020: registration/eligibility ~24-27% of denials.
    assert 0.18 <= mix["eligibility_registration"] <= 0.30
    # Change 2017: authorization ~12%, missing/invalid claim data ~15%.
    assert 0.09 <= mix["authorization_referral"] <= 0.20
    assert 0.09 <= mix["missing_invalid_claim_data"] <= 0.20
    assert max(mix.values()) == mix["eligibility_registration"]


def test_outcome_rates_are_in_their_stated_ranges(profile) -> None:
    # Change 2020: 86% potentially avoidable, 34% unequivocally: the share lies between.
    assert 0.55 <= profile.preventable_share <= 0.86
    # Premier: 54.3% (2022) to ~70% (2023) of private-payer denials eventually paid; all payers
    # and causes together, with timely filing and duplicates, sit a little lower.
    assert 0.40 <= profile.recovered_share_of_resolved <= 0.70
    assert 0.03 <= profile.open_share <= 0.20


def test_best_code_lookup_is_clearly_imperfect(profile) -> None:
    assert 0.55 <= profile.best_code_lookup_accuracy <= 0.75
    assert profile.governed_mapping_accuracy <= profile.best_code_lookup_accuracy


def test_other_fields_carry_signal_beyond_the_codes(history: pd.DataFrame) -> None:
    """Within one ambiguous code set, flags and procedure separate the causes."""
    lookup = CodeSetLookup().fit(history)
    wrong = history[lookup.predict(history) != history["root_cause"].to_numpy()]
    eligibility = wrong["root_cause"] == "eligibility_registration"
    verified = wrong["eligibility_verified"].astype("float")
    assert verified[eligibility].mean() < verified[~eligibility].mean() - 0.3


def test_same_cause_is_coded_differently_by_different_payers(history: pd.DataFrame) -> None:
    auth = history[history["root_cause"] == "authorization_referral"]
    primary = auth["carc_codes"].map(lambda codes: codes[0])
    top_code = primary.groupby(auth["payer_id"]).agg(lambda s: s.value_counts().index[0])
    assert top_code.nunique() >= 3
    co16 = history[history["carc_codes"].map(lambda codes: codes[0] == "CO-16")]
    assert co16["root_cause"].nunique() >= 6


def test_timely_filing_denials_were_filed_late(history: pd.DataFrame) -> None:
    rules = load_payer_rules()
    late = history[history["root_cause"] == "timely_filing"].head(2_000)
    deadlines = rules.deadline_frame(late)["filing_deadline"]
    share_late = (late["submission_date"] > deadlines).mean()
    assert share_late > 0.85  # the rest is label noise


def test_recovery_depends_on_cause_and_payer(history: pd.DataFrame) -> None:
    resolved = history[history["resolution"] != "open"]
    recovered = resolved["recovered_amount"] > 0
    by_cause = recovered.groupby(resolved["root_cause"]).mean()
    assert by_cause["missing_invalid_claim_data"] > 0.6
    assert by_cause["timely_filing"] < 0.25
    by_payer = recovered.groupby(resolved["payer_id"]).mean()
    assert by_payer.max() - by_payer.min() > 0.3
    partial = resolved[recovered & (resolved["recovered_amount"] < resolved["denied_amount"])]
    assert len(partial) / recovered.sum() > 0.2


def test_preventability_follows_front_end_flags(history: pd.DataFrame) -> None:
    auth = history[history["root_cause"] == "authorization_referral"]
    on_file = auth["prior_auth_on_file"].astype("boolean")
    rate = auth["preventable"].astype(bool).groupby(on_file).mean()
    assert rate[False] > rate[True] + 0.3


def test_open_denials_are_recent_and_unlabelled(history: pd.DataFrame) -> None:
    still_open = history[history["resolution"] == "open"]
    assert still_open["recovered_amount"].isna().all()
    assert still_open["resolved_date"].isna().all()
    last = history["denial_date"].max()
    assert (last - still_open["denial_date"]).dt.days.median() < 120
    closed = history[history["resolution"] != "open"]
    assert (closed["resolved_date"] >= closed["denial_date"]).all()


def test_no_patient_identifiers_are_generated(history: pd.DataFrame) -> None:
    forbidden = {"patient_name", "member_id", "subscriber_id", "patient_id", "insured_name"}
    assert not forbidden & set(history.columns)
    assert history["provider_npi"].str.fullmatch(r"\d{10}").all()


def test_provider_npis_carry_a_valid_check_digit(history: pd.DataFrame) -> None:
    for npi in history["provider_npi"].drop_duplicates().head(50):
        digits = [int(d) for d in "80840" + npi]
        total = sum(
            (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 1 else d
            for i, d in enumerate(reversed(digits))
        )
        assert total % 10 == 0, npi


def test_denial_dates_end_on_the_chosen_date(history: pd.DataFrame) -> None:
    assert history["denial_date"].max().date() <= dt.date(2026, 9, 30)
    assert history["denial_date"].min().date() >= dt.date(2024, 4, 1)
    assert (history["service_date"] <= history["denial_date"]).all()
    assert np.all(history["as_of_date"] >= history["denial_date"])


# ---------------------------------------------------------------------------- truth (benchmarks)


def test_truth_explains_the_labels_and_leaves_the_history_unchanged(tmp_path: Path) -> None:
    plain = pd.read_parquet(generate_history(20_000, 5, tmp_path / "plain.parquet"))
    path = generate_history(20_000, 5, tmp_path / "h.parquet", truth_out=tmp_path / "t.parquet")
    history, truth = pd.read_parquet(path), pd.read_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(history, plain)  # the truth draws nothing
    assert list(truth.columns) == ["denial_id", *TRUTH_COLUMNS]
    assert truth["denial_id"].equals(history["denial_id"])
    # Labels are drawn from the true probabilities: they agree on average, bin by bin.
    resolved = history["resolution"] != "open"
    recovered = history.loc[resolved, "recovered_amount"] > 0
    true_recovery = truth.loc[resolved, "true_recovery_probability"]
    assert expected_calibration_error(recovered, true_recovery) < 0.03
    # The eventual outcome is the label where the history knows it, and known where it does not.
    assert truth.loc[resolved, "true_recovered"].equals(recovered)
    open_ones = truth.loc[~resolved, "true_recovered"]
    assert len(open_ones) > 100 and 0.2 < open_ones.mean() < 0.8
    preventable = history["preventable"].astype(bool)
    assert expected_calibration_error(preventable, truth["true_preventable_probability"]) < 0.03
    # The noisy root-cause label is the true cause but for its noise.
    agree = (history["root_cause"] == truth["true_root_cause"]).mean()
    assert 0.8 < agree < 1.0


def test_a_contract_file_holding_the_truth_is_refused(tmp_path: Path) -> None:
    path = generate_history(500, 5, tmp_path / "h.parquet", truth_out=tmp_path / "t.parquet")
    leaked = pd.read_parquet(path).merge(pd.read_parquet(tmp_path / "t.parquet"), on="denial_id")
    leaked.to_parquet(tmp_path / "leaked.parquet")
    errors = load_denials(tmp_path / "leaked.parquet").errors
    assert {str(e) for e in errors} == {
        f"table, column {name}: the generator's truth, for benchmarks only: remove the column"
        for name in TRUTH_COLUMNS
    }
