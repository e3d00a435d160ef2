"""The one feature pipeline: contract rows in, a numeric matrix out.

:class:`DenialFeatures` is a scikit-learn transformer. Training fits it; the fitted object ships
inside the registered model, so serving runs the very same code and never re-implements a step.
It holds the governed mapping and payer rules it was fitted with, the vocabularies it learned,
and the outcome history behind the payer-behaviour statistics.

Payer-behaviour statistics (how often denials from a payer, and from a payer with a given
primary adjustment, were recovered) use only outcomes resolved strictly before the denial date
of the row they describe. A row's own outcome can never reach its features, because it is
resolved on or after its own denial date, and no outcome from the future of a row can either.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from features.adjustments import split_adjustment
from features.mapping import CodeMapping, load_mapping
from features.payer_rules import PayerRules, load_payer_rules
from features.procedures import procedure_family

CATEGORICAL_FEATURES = (
    "primary_adjustment",
    "primary_group",
    "primary_remark",
    "payer_id",
    "payer_type",
    "claim_type",
    "specialty",
    "procedure_family",
    "procedure_code",
    "place_of_service",
    "facility_id",
    "primary_diagnosis_chapter",
    "mapped_root_cause",
    "mapped_action_path",
)
NUMERIC_FEATURES = (
    "log_billed_amount",
    "log_denied_amount",
    "denied_share_of_billed",
    "paid_share_of_billed",
    "units",
    "submission_attempt",
    "adjustment_count",
    "remark_count",
    "modifier_count",
    "diagnosis_count",
    "eligibility_verified",
    "prior_auth_on_file",
    "denial_month",
    "days_service_to_denial",
    "days_service_to_submission",
    "days_submission_to_denial",
    "days_since_service",
    "days_since_denial",
    "days_to_appeal_deadline",
    "days_to_filing_deadline",
    "filing_slack_at_denial",
    "payer_recovery_rate",
    "payer_adjustment_recovery_rate",
    "payer_adjustment_history",
    "unseen_code_count",
)
NO_REMARK = "none"


def reference_dates(frame: pd.DataFrame, today: dt.date | None = None) -> pd.Series:
    """The scoring date of each row: its ``as_of_date``, else today."""
    fill = pd.Timestamp(today or dt.date.today())
    if "as_of_date" not in frame:
        return pd.Series(fill, index=frame.index, dtype="datetime64[s]")
    return pd.to_datetime(frame["as_of_date"]).fillna(fill).astype("datetime64[s]")


# Days since the epoch stay far below this, so key * _KEY_SPAN + day orders by key, then day.
_KEY_SPAN = 1_000_000


@dataclass(frozen=True)
class OutcomeHistory:
    """Resolved outcomes ordered by (key, resolved day), with running sums for as-of counts."""

    positions: np.ndarray  # key id * _KEY_SPAN + resolved day, ascending
    recovered_cumsum: np.ndarray  # running count of recoveries, length events + 1
    key_index: dict[str, int]

    @classmethod
    def build(cls, keys: Sequence[str], days: np.ndarray, recovered: np.ndarray) -> OutcomeHistory:
        key_index = {key: i for i, key in enumerate(sorted(set(keys)))}
        key_ids = np.fromiter((key_index[k] for k in keys), dtype=np.int64, count=len(keys))
        positions = key_ids * _KEY_SPAN + days.astype(np.int64)
        order = np.argsort(positions, kind="stable")
        cumsum = np.concatenate([[0], np.cumsum(recovered[order].astype(np.int64))])
        return cls(positions[order], cumsum, key_index)

    def counts_before(self, keys: Iterable[str], days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query: how many outcomes of its key resolved strictly before its day, and how
        many of those recovered money."""
        key_ids = np.array([self.key_index.get(k, -1) for k in keys], dtype=np.int64)
        known = key_ids >= 0
        first = np.searchsorted(self.positions, key_ids * _KEY_SPAN, side="left")
        before = np.searchsorted(self.positions, key_ids * _KEY_SPAN + days, side="left")
        count = np.where(known, before - first, 0)
        recovered = self.recovered_cumsum[before] - self.recovered_cumsum[first]
        return count, np.where(known, recovered, 0)


@dataclass(frozen=True)
class FeatureStatistics:
    """Counts and outcome events from part of a history; ``a + b`` merges two parts."""

    categories: dict[str, Counter]
    adjustments: Counter
    remarks: Counter
    modifiers: Counter
    payers: np.ndarray
    adjustments_of_outcomes: np.ndarray
    resolved_days: np.ndarray
    recovered: np.ndarray
    columns: int

    def __add__(self, other: FeatureStatistics) -> FeatureStatistics:
        return FeatureStatistics(
            categories={k: self.categories[k] + other.categories[k] for k in self.categories},
            adjustments=self.adjustments + other.adjustments,
            remarks=self.remarks + other.remarks,
            modifiers=self.modifiers + other.modifiers,
            payers=np.concatenate([self.payers, other.payers]),
            adjustments_of_outcomes=np.concatenate(
                [self.adjustments_of_outcomes, other.adjustments_of_outcomes]
            ),
            resolved_days=np.concatenate([self.resolved_days, other.resolved_days]),
            recovered=np.concatenate([self.recovered, other.recovered]),
            columns=max(self.columns, other.columns),
        )


class DenialFeatures(TransformerMixin, BaseEstimator):
    """Contract frame -> float32 matrix; categorical columns hold integer codes.

    Parameters are fixed at construction; everything learned ends in ``_`` and is set in
    :meth:`fit`. Unknown or rare categories share the last code of their column, so a code
    never seen in training is still scored.
    """

    def __init__(
        self,
        min_category_count: int = 20,
        max_codes: int = 120,
        prior_strength: float = 20.0,
        mapping_overrides: str | None = None,
        payer_rules_overrides: str | None = None,
    ) -> None:
        self.min_category_count = min_category_count
        self.max_codes = max_codes
        self.prior_strength = prior_strength
        self.mapping_overrides = mapping_overrides
        self.payer_rules_overrides = payer_rules_overrides

    # ------------------------------------------------------------------ fit

    def fit(self, frame: pd.DataFrame, y: object = None) -> DenialFeatures:
        """Learn vocabularies and the outcome history from a validated contract frame."""
        return self.fit_statistics(self.collect_statistics(frame))

    def collect_statistics(self, frame: pd.DataFrame) -> FeatureStatistics:
        """What fitting needs from one part of the data; parts merge with ``+``, so a
        partitioned history (Dask) is fitted without collecting its rows in one place."""
        base = self._base_columns(frame)
        resolved = _resolved_mask(frame).to_numpy()
        return FeatureStatistics(
            categories={name: Counter(base[name].dropna()) for name in CATEGORICAL_FEATURES},
            adjustments=Counter(code for codes in frame["carc_codes"] for code in codes),
            remarks=Counter(code for codes in _lists(frame, "rarc_codes") for code in codes),
            modifiers=Counter(code for codes in _lists(frame, "modifiers") for code in codes),
            payers=base.loc[resolved, "payer_id"].astype(str).to_numpy(dtype=object),
            adjustments_of_outcomes=base.loc[resolved, "primary_adjustment"].to_numpy(dtype=object),
            resolved_days=_day_numbers(frame.loc[resolved, "resolved_date"]),
            recovered=(frame.loc[resolved, "recovered_amount"].fillna(0) > 0).to_numpy(),
            columns=len(frame.columns),
        )

    def fit_statistics(self, statistics: FeatureStatistics) -> DenialFeatures:
        """Fit from (merged) statistics: vocabularies, known codes and outcome history."""
        self.mapping_ = load_mapping(_optional_path(self.mapping_overrides))
        self.payer_rules_ = load_payer_rules(_optional_path(self.payer_rules_overrides))
        self.vocabularies_ = {
            name: sorted(str(v) for v, n in counts.items() if n >= self.min_category_count)
            for name, counts in statistics.categories.items()
        }
        self.adjustment_vocabulary_ = _most_common(statistics.adjustments, self.max_codes)
        self.remark_vocabulary_ = _most_common(statistics.remarks, self.max_codes)
        self.modifier_vocabulary_ = _most_common(statistics.modifiers, 30)
        self.known_codes_ = frozenset(statistics.adjustments) | frozenset(statistics.remarks)
        payers = statistics.payers.tolist()
        pairs = [
            f"{p}|{a}" for p, a in zip(payers, statistics.adjustments_of_outcomes, strict=True)
        ]
        days, recovered = statistics.resolved_days, statistics.recovered
        self.overall_history_ = OutcomeHistory.build(["*"] * len(payers), days, recovered)
        self.payer_history_ = OutcomeHistory.build(payers, days, recovered)
        self.payer_adjustment_history_ = OutcomeHistory.build(pairs, days, recovered)
        self.feature_names_ = self._feature_names()
        self.n_features_in_ = statistics.columns
        return self

    # ------------------------------------------------------------------ transform

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The feature matrix for validated contract rows (labels, if present, are ignored)."""
        check_is_fitted(self, "feature_names_")
        base = self._base_columns(frame)
        blocks = [
            self._encode_categoricals(base),
            self._numeric_block(frame, base),
            _multi_hot(frame["carc_codes"], self.adjustment_vocabulary_),
            _multi_hot(_lists(frame, "rarc_codes"), self.remark_vocabulary_),
            _multi_hot(_lists(frame, "modifiers"), self.modifier_vocabulary_),
        ]
        return np.hstack(blocks).astype(np.float32)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_")
        return np.array(self.feature_names_, dtype=object)

    @property
    def categorical_indices(self) -> list[int]:
        """Column positions LightGBM must treat as categorical."""
        return list(range(len(CATEGORICAL_FEATURES)))

    def unseen_codes(self, frame: pd.DataFrame) -> list[list[str]]:
        """Per row, the adjustment and remark codes never seen in training."""
        check_is_fitted(self, "known_codes_")
        return [
            [code for code in codes if code not in self.known_codes_] for codes in _row_codes(frame)
        ]

    def _feature_names(self) -> list[str]:
        return [
            *CATEGORICAL_FEATURES,
            *NUMERIC_FEATURES,
            *(f"adjustment_{code}" for code in self.adjustment_vocabulary_),
            *(f"remark_{code}" for code in self.remark_vocabulary_),
            *(f"modifier_{code}" for code in self.modifier_vocabulary_),
        ]

    # ------------------------------------------------------------------ blocks

    def _base_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Derived text columns shared by fit and transform."""
        mapping: CodeMapping = getattr(self, "mapping_", None) or load_mapping(
            _optional_path(self.mapping_overrides)
        )
        primary = [codes[0] if len(codes) else "" for codes in frame["carc_codes"]]
        remarks = _lists(frame, "rarc_codes")
        routes = mapping.route_frame(frame)
        diagnoses = _lists(frame, "diagnosis_codes")
        return pd.DataFrame(
            {
                "primary_adjustment": primary,
                "primary_group": [split_adjustment(code)[0] for code in primary],
                "primary_remark": [r[0] if len(r) else NO_REMARK for r in remarks],
                "payer_id": frame["payer_id"].astype(str).to_numpy(),
                "payer_type": frame["payer_type"].to_numpy(),
                "claim_type": frame["claim_type"].to_numpy(),
                "specialty": _optional_text(frame, "specialty"),
                "procedure_family": [
                    procedure_family(c) for c in _optional_text(frame, "procedure_code")
                ],
                "procedure_code": _optional_text(frame, "procedure_code"),
                "place_of_service": _optional_text(frame, "place_of_service"),
                "facility_id": _optional_text(frame, "facility_id"),
                "primary_diagnosis_chapter": [d[0][:1] if len(d) else None for d in diagnoses],
                "mapped_root_cause": routes["mapped_root_cause"].to_numpy(),
                "mapped_action_path": routes["action_path"].to_numpy(),
            },
            index=frame.index,
        )

    def _encode_categoricals(self, base: pd.DataFrame) -> np.ndarray:
        columns = []
        for name in CATEGORICAL_FEATURES:
            vocabulary = self.vocabularies_[name]
            lookup = {value: float(i) for i, value in enumerate(vocabulary)}
            other = float(len(vocabulary))
            columns.append(
                [np.nan if v is None else lookup.get(v, other) for v in base[name].to_numpy()]
            )
        return np.array(columns, dtype=np.float64).T.reshape(len(base), len(CATEGORICAL_FEATURES))

    def _numeric_block(self, frame: pd.DataFrame, base: pd.DataFrame) -> np.ndarray:
        as_of = reference_dates(frame)
        columns = {
            **_amount_features(frame),
            **_count_features(frame),
            **_flag_features(frame),
            **self._date_features(frame, as_of),
            **self._payer_behaviour(frame, base),
            "unseen_code_count": np.array([len(u) for u in self.unseen_codes(frame)], float),
        }
        return np.column_stack([columns[name] for name in NUMERIC_FEATURES])

    def _date_features(self, frame: pd.DataFrame, as_of: pd.Series) -> dict[str, np.ndarray]:
        service = pd.to_datetime(frame["service_date"])
        denial = pd.to_datetime(frame["denial_date"])
        submission = (
            pd.to_datetime(frame["submission_date"]) if "submission_date" in frame else None
        )
        rules: PayerRules = self.payer_rules_
        deadlines = rules.deadline_frame(frame)
        filing, appeal = deadlines["filing_deadline"], deadlines["appeal_deadline"]
        return {
            "denial_month": denial.dt.month.to_numpy(float),
            "days_service_to_denial": _days(denial - service),
            "days_service_to_submission": _days(submission - service)
            if submission is not None
            else _nan(frame),
            "days_submission_to_denial": _days(denial - submission)
            if submission is not None
            else _nan(frame),
            "days_since_service": _days(as_of - service),
            "days_since_denial": _days(as_of - denial),
            "days_to_appeal_deadline": _days(appeal - as_of),
            "days_to_filing_deadline": _days(filing - as_of),
            "filing_slack_at_denial": _days(filing - denial),
        }

    def _payer_behaviour(self, frame: pd.DataFrame, base: pd.DataFrame) -> dict[str, np.ndarray]:
        """Shrunken recovery rates from outcomes resolved before each row's denial date."""
        days = _day_numbers(frame["denial_date"])
        m = self.prior_strength
        n_all, r_all = self.overall_history_.counts_before(["*"] * len(frame), days)
        overall = (r_all + 0.5 * m) / (n_all + m)  # an uninformed 50% prior before any history
        n_payer, r_payer = self.payer_history_.counts_before(base["payer_id"], days)
        payer_rate = (r_payer + m * overall) / (n_payer + m)
        pairs = base["payer_id"] + "|" + base["primary_adjustment"]
        n_pair, r_pair = self.payer_adjustment_history_.counts_before(pairs, days)
        pair_rate = (r_pair + m * payer_rate) / (n_pair + m)
        return {
            "payer_recovery_rate": payer_rate,
            "payer_adjustment_recovery_rate": pair_rate,
            "payer_adjustment_history": np.log1p(n_pair.astype(float)),
        }


# ---------------------------------------------------------------------------- helpers


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _most_common(counts: Counter, limit: int) -> list[str]:
    """The ``limit`` most frequent codes, ties broken by code so the result is deterministic."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return sorted(code for code, _ in ranked[:limit])


def _lists(frame: pd.DataFrame, name: str) -> list[Sequence[str]]:
    if name not in frame:
        return [()] * len(frame)
    return [v if isinstance(v, list | tuple | np.ndarray) else () for v in frame[name]]


def _row_codes(frame: pd.DataFrame) -> list[list[str]]:
    return [
        [*adjustments, *remarks]
        for adjustments, remarks in zip(
            frame["carc_codes"], _lists(frame, "rarc_codes"), strict=True
        )
    ]


def _optional_text(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), None, dtype=object)
    return frame[name].astype(object).where(frame[name].notna(), None).to_numpy()


def _multi_hot(lists: Iterable[Sequence[str]], vocabulary: list[str]) -> np.ndarray:
    index = {code: i for i, code in enumerate(vocabulary)}
    rows = list(lists)
    matrix = np.zeros((len(rows), len(vocabulary)), dtype=np.float32)
    for row, codes in enumerate(rows):
        for code in codes:
            column = index.get(code)
            if column is not None:
                matrix[row, column] = 1.0
    return matrix


def _amount_features(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    billed = frame["billed_amount"].to_numpy(float)
    denied = frame["denied_amount"].to_numpy(float)
    paid = (
        frame["paid_amount"].to_numpy(float)
        if "paid_amount" in frame
        else np.full(len(frame), np.nan)
    )
    safe_billed = np.where(billed > 0, billed, np.nan)
    return {
        "log_billed_amount": np.log1p(billed),
        "log_denied_amount": np.log1p(denied),
        "denied_share_of_billed": denied / safe_billed,
        "paid_share_of_billed": paid / safe_billed,
    }


def _count_features(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        "units": _optional_number(frame, "units"),
        "submission_attempt": _optional_number(frame, "submission_attempt"),
        "adjustment_count": np.array([len(c) for c in frame["carc_codes"]], float),
        "remark_count": np.array([len(c) for c in _lists(frame, "rarc_codes")], float),
        "modifier_count": np.array([len(c) for c in _lists(frame, "modifiers")], float),
        "diagnosis_count": np.array([len(c) for c in _lists(frame, "diagnosis_codes")], float),
    }


def _flag_features(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        name: _optional_number(frame, name)
        for name in ("eligibility_verified", "prior_auth_on_file")
    }


def _optional_number(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name].astype("Float64"), errors="coerce").to_numpy(
        float, na_value=np.nan
    )


def _days(delta: pd.Series) -> np.ndarray:
    return (pd.to_timedelta(delta) / pd.Timedelta(days=1)).to_numpy(float, na_value=np.nan)


def _nan(frame: pd.DataFrame) -> np.ndarray:
    return np.full(len(frame), np.nan)


def _day_numbers(dates: pd.Series) -> np.ndarray:
    """Days since the epoch, as int64."""
    return pd.to_datetime(dates).to_numpy().astype("datetime64[D]").astype(np.int64)


def _resolved_mask(frame: pd.DataFrame) -> pd.Series:
    if not {"resolution", "resolved_date", "recovered_amount"} <= set(frame.columns):
        return pd.Series(False, index=frame.index)
    return (frame["resolution"] != "open") & frame["resolved_date"].notna()
