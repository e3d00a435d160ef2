"""The feature pipeline: shape, vocabularies, unseen codes, and no label or future leakage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from features.contract import REQUIRED_COLUMNS, clean_records, validate
from features.pipeline import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    DenialColumns,
    DenialFeatures,
    reference_dates,
)
from features.procedures import procedure_families, procedure_family
from training.tracking import example_payload

PAYER_STATISTICS = [
    "payer_recovery_rate",
    "payer_adjustment_recovery_rate",
    "payer_adjustment_history",
]


@pytest.fixture(scope="module")
def sample(history: pd.DataFrame) -> pd.DataFrame:
    return history.sample(12_000, random_state=1).sort_values("denial_date").reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(sample: pd.DataFrame) -> DenialFeatures:
    return DenialFeatures().fit(sample)


def columns(features: DenialFeatures, matrix: np.ndarray, names: list[str]) -> np.ndarray:
    index = [list(features.feature_names_).index(name) for name in names]
    return matrix[:, index]


@pytest.mark.parametrize(
    ("code", "family"),
    [
        ("99214", "evaluation_management"),
        ("27447", "surgery"),
        ("70553", "radiology"),
        ("80053", "pathology_laboratory"),
        ("93306", "medicine"),
        ("00790", "anesthesia"),
        ("J9299", "hcpcs_drugs"),
        ("E0601", "hcpcs_durable_equipment"),
        ("A0427", "hcpcs_transport_supplies"),
        ("0450", "revenue_emergency_clinic"),
        ("0120", "revenue_room_and_board"),
        ("", "unknown"),
        ("XYZ", "unknown"),
    ],
)
def test_procedure_families_follow_the_published_code_ranges(code: str, family: str) -> None:
    assert procedure_family(code) == family


def test_a_columns_families_are_each_codes_family_missing_codes_unknown() -> None:
    codes = pd.Series(["27447", None, "J9299", "27447", "", np.nan, "0450", "99213"])
    assert procedure_families(codes).tolist() == [
        "surgery",
        "unknown",
        "hcpcs_drugs",
        "surgery",
        "unknown",
        "unknown",
        "revenue_emergency_clinic",
        "evaluation_management",
    ]


def test_matrix_has_one_named_column_per_feature(
    fitted: DenialFeatures, sample: pd.DataFrame
) -> None:
    matrix = fitted.transform(sample)
    names = list(fitted.get_feature_names_out())
    assert matrix.shape == (len(sample), len(names))
    assert matrix.dtype == np.float32
    assert names[: len(CATEGORICAL_FEATURES)] == list(CATEGORICAL_FEATURES)
    assert set(NUMERIC_FEATURES) <= set(names)
    assert any(name.startswith("adjustment_CO-") for name in names)
    assert any(name.startswith("remark_N") for name in names)


def test_amounts_and_dates_are_computed_from_the_row(
    fitted: DenialFeatures, sample: pd.DataFrame
) -> None:
    row = sample.iloc[[0]]
    values = dict(zip(fitted.feature_names_, fitted.transform(row)[0], strict=True))
    assert values["log_denied_amount"] == pytest.approx(
        np.log1p(row["denied_amount"].iloc[0]), rel=1e-6
    )
    days = (row["as_of_date"].iloc[0] - row["denial_date"].iloc[0]).days
    assert values["days_since_denial"] == days
    assert values["denial_month"] == row["denial_date"].iloc[0].month


def test_a_history_row_without_as_of_date_is_seen_on_its_denial_date(
    fitted: DenialFeatures, sample: pd.DataFrame
) -> None:
    """Aging and deadlines of a history come from its own dates, never from the clock."""
    rows = sample.head(300).copy()
    rows.loc[::2, "as_of_date"] = pd.NaT
    expected = rows["as_of_date"].fillna(rows["denial_date"]).to_numpy("datetime64[s]")
    np.testing.assert_array_equal(DenialColumns.from_frame(rows).as_of, expected)
    from_rows = DenialColumns.from_records(_service_rows(rows))
    np.testing.assert_array_equal(from_rows.as_of, expected)
    values = pd.DataFrame(fitted.transform(rows.drop(columns="as_of_date")))
    values.columns = fitted.feature_names_
    assert (values["days_since_denial"] == 0).all()
    service_days = (rows["denial_date"] - rows["service_date"]).dt.days.to_numpy()
    np.testing.assert_array_equal(values["days_since_service"], service_days)


def test_live_scoring_fills_a_missing_as_of_date_with_the_day_given(
    sample: pd.DataFrame,
) -> None:
    rows = sample.head(50).copy()
    rows.loc[::2, "as_of_date"] = pd.NaT
    today = pd.Timestamp("2031-05-17")
    expected = rows["as_of_date"].fillna(today).to_numpy("datetime64[s]")
    np.testing.assert_array_equal(reference_dates(rows, today.date()).to_numpy(), expected)
    from_rows = DenialColumns.from_records(_service_rows(rows), today.date())
    np.testing.assert_array_equal(from_rows.as_of, expected)


def test_unseen_codes_are_scored_in_the_other_bucket_and_counted(
    fitted: DenialFeatures, sample: pd.DataFrame
) -> None:
    row = sample.iloc[[0]].copy()
    row["carc_codes"] = [["CO-777", "CO-45"]]
    row["rarc_codes"] = [["N9999"]]
    matrix = fitted.transform(row)
    values = dict(zip(fitted.feature_names_, matrix[0], strict=True))
    assert values["primary_adjustment"] == len(fitted.vocabularies_["primary_adjustment"])
    assert values["unseen_code_count"] == 2
    assert fitted.unseen_codes(row) == [["CO-777", "N9999"]]


def test_fitting_by_parts_equals_fitting_at_once(
    fitted: DenialFeatures, sample: pd.DataFrame
) -> None:
    features = DenialFeatures()
    parts = [sample.iloc[:5_000], sample.iloc[5_000:9_000], sample.iloc[9_000:]]
    statistics = features.collect_statistics(parts[0])
    for part in parts[1:]:
        statistics = statistics + features.collect_statistics(part)
    by_parts = features.fit_statistics(statistics).transform(sample)
    np.testing.assert_array_equal(by_parts, fitted.transform(sample))


def test_clone_gives_an_unfitted_copy_with_the_same_parameters(fitted: DenialFeatures) -> None:
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "vocabularies_")


def test_payer_statistics_ignore_outcomes_resolved_on_or_after_the_denial(
    sample: pd.DataFrame,
) -> None:
    """Scrambling every outcome resolved from a date on leaves earlier denials' features alone."""
    cut = sample["denial_date"].quantile(0.6)
    scrambled = sample.copy()
    later = (scrambled["resolved_date"] >= cut).to_numpy()
    rng = np.random.default_rng(0)
    scrambled.loc[later, "recovered_amount"] = np.where(
        rng.random(later.sum()) < 0.5, 0.0, scrambled.loc[later, "denied_amount"]
    )
    earlier = sample[sample["denial_date"] <= cut]
    original = DenialFeatures().fit(sample)
    other = DenialFeatures().fit(scrambled)
    np.testing.assert_array_equal(
        columns(original, original.transform(earlier), PAYER_STATISTICS),
        columns(other, other.transform(earlier), PAYER_STATISTICS),
    )
    # and the scrambling does change later denials, so the test can fail
    later_rows = sample[sample["denial_date"] > sample["resolved_date"].quantile(0.9)]
    assert not np.array_equal(
        columns(original, original.transform(later_rows), PAYER_STATISTICS),
        columns(other, other.transform(later_rows), PAYER_STATISTICS),
    )


def test_a_rows_own_outcome_never_reaches_its_features(sample: pd.DataFrame) -> None:
    resolved = sample[sample["resolution"] != "open"]
    flipped = sample.copy()
    recovered = flipped["recovered_amount"].fillna(0) > 0
    flipped["recovered_amount"] = np.where(
        sample["resolution"] != "open",
        np.where(recovered, 0.0, flipped["denied_amount"]),
        np.nan,
    )
    original = DenialFeatures().fit(sample)
    other = DenialFeatures().fit(flipped)
    # every row's features are computed from outcomes before its own denial date only
    first_day = resolved["resolved_date"].min()
    before_any_outcome = sample[sample["denial_date"] <= first_day]
    assert len(before_any_outcome) > 0
    stats = columns(original, original.transform(before_any_outcome), PAYER_STATISTICS)
    np.testing.assert_array_equal(stats[:, 0], 0.5)  # the uninformed prior, nothing known yet
    np.testing.assert_array_equal(
        stats, columns(other, other.transform(before_any_outcome), PAYER_STATISTICS)
    )


def test_transform_is_deterministic_and_ignores_labels(
    fitted: DenialFeatures, sample: pd.DataFrame
) -> None:
    unlabelled = sample.drop(
        columns=["root_cause", "preventable", "resolution", "recovered_amount", "resolved_date"]
    )
    np.testing.assert_array_equal(fitted.transform(sample), fitted.transform(unlabelled))


def _service_rows(frame: pd.DataFrame) -> list[dict]:
    """Rows as the service reads them: JSON from a worklist system, through the contract."""
    records = json.loads(example_payload(frame).to_json(orient="records"))
    rows = clean_records(records)
    assert rows is not None
    return rows


def test_rows_read_without_pandas_give_the_identical_matrix(
    fitted: DenialFeatures, sample: pd.DataFrame
) -> None:
    """The service's path (coerced rows) against the pandas path, on thousands of rows."""
    frame = sample.head(4_000).copy()
    frame.loc[::3, "as_of_date"] = pd.NaT  # the denial date fills in, on both paths
    from_frame = fitted.transform(validate(frame).frame)
    from_rows = fitted.encode(DenialColumns.from_records(_service_rows(frame)))
    np.testing.assert_array_equal(from_rows, from_frame)  # NaN where NaN, bit for bit


def test_rows_with_required_fields_only_and_unseen_codes_give_the_identical_matrix(
    fitted: DenialFeatures, sample: pd.DataFrame
) -> None:
    frame = sample[list(REQUIRED_COLUMNS)].head(1_000).copy()
    codes = list(frame["carc_codes"])
    codes[::7] = [["CO-777", "PR-3"]] * len(codes[::7])
    frame["carc_codes"] = codes
    from_frame = fitted.transform(validate(frame).frame)
    from_rows = fitted.encode(DenialColumns.from_records(_service_rows(frame)))
    np.testing.assert_array_equal(from_rows, from_frame)


@pytest.mark.parametrize("rows", [1, 2, 37])
def test_a_few_rows_encode_as_they_do_in_a_large_batch(
    fitted: DenialFeatures, sample: pd.DataFrame, rows: int
) -> None:
    records = _service_rows(sample.head(500))
    whole = fitted.encode(DenialColumns.from_records(records))
    part = fitted.encode(DenialColumns.from_records(records[100 : 100 + rows]))
    np.testing.assert_array_equal(part, whole[100 : 100 + rows])
