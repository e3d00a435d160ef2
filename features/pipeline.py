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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from features.adjustments import split_adjustment
from features.mapping import CodeMapping, Route, load_mapping
from features.payer_rules import DeadlineRule, PayerRules, load_payer_rules
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


def live_scoring_date() -> dt.date:
    """Today by the wall clock: the as-of date of live scoring only.

    A denial scored now (the service, ``denial-triage score`` of a backlog, the pyfunc) without
    an ``as_of_date`` is looked at today. Histories (training, evaluation) never read the
    clock: their rows fall back to their own denial date, so a model trained on the same file
    is the same model whatever day it is trained.
    """
    return dt.date.today()


def reference_dates(frame: pd.DataFrame, today: dt.date | None = None) -> pd.Series:
    """The as-of date of each row: its ``as_of_date``, else ``today`` when scoring live
    (see :func:`live_scoring_date`), else its ``denial_date`` (a history's rows)."""
    fill = (
        pd.Series(pd.Timestamp(today), index=frame.index)
        if today is not None
        else pd.to_datetime(frame["denial_date"])
    )
    if "as_of_date" not in frame:
        return fill.astype("datetime64[s]")
    return pd.to_datetime(frame["as_of_date"]).fillna(fill).astype("datetime64[s]")


TEXT_COLUMNS = ("denial_id", "payer_id", "payer_type", "claim_type")
OPTIONAL_TEXT_COLUMNS = ("specialty", "procedure_code", "place_of_service", "facility_id")
LIST_COLUMNS = ("carc_codes", "rarc_codes", "modifiers", "diagnosis_codes")
NUMBER_COLUMNS = (
    "billed_amount",
    "denied_amount",
    "paid_amount",
    "units",
    "submission_attempt",
    "eligibility_verified",
    "prior_auth_on_file",
)
DATE_COLUMNS = ("service_date", "denial_date", "submission_date")
_NAT = np.datetime64("NaT", "s")


@dataclass(frozen=True)
class DenialColumns:
    """Validated contract rows as plain columns: what features and scores are computed from.

    Built from a contract frame (training, files, batch scoring) or from rows the contract has
    already coerced (:func:`features.contract.clean_records`, the service's requests), so both
    run the very same feature and scoring code. The second way skips pandas, whose fixed cost
    per operation is milliseconds for a request of a few denials. Missing values are None in
    text, NaN in numbers (flags as 1.0/0.0) and NaT in dates (``datetime64[s]``).
    """

    rows: int
    text: dict[str, np.ndarray]  # object arrays: the required text, then the optional text
    lists: dict[str, list[Sequence[str]]]
    numbers: dict[str, np.ndarray]  # float64
    dates: dict[str, np.ndarray]  # datetime64[s]
    as_of: np.ndarray  # datetime64[s]: as_of_date, else today (live) or denial_date (history)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, today: dt.date | None = None) -> DenialColumns:
        """Columns of a validated contract frame (absent optional columns count as missing);
        ``today``: the live scoring date for rows without ``as_of_date`` (None: a history)."""
        text = {name: frame[name].to_numpy() for name in TEXT_COLUMNS}
        text["payer_id"] = frame["payer_id"].astype(str).to_numpy()
        text.update({name: _optional_text(frame, name) for name in OPTIONAL_TEXT_COLUMNS})
        lists = {name: _lists(frame, name) for name in LIST_COLUMNS}
        lists["carc_codes"] = list(frame["carc_codes"])
        return cls(
            rows=len(frame),
            text=text,
            lists=lists,
            numbers={name: _optional_number(frame, name) for name in NUMBER_COLUMNS},
            dates={name: _optional_dates(frame, name) for name in DATE_COLUMNS},
            as_of=reference_dates(frame, today).to_numpy(),
        )

    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], today: dt.date | None = None
    ) -> DenialColumns:
        """Columns of rows already coerced by the contract (dates as ``datetime.date``,
        missing values as None), without pandas; ``today`` as in :meth:`from_frame`."""
        dates = {name: _date_array([r.get(name) for r in records]) for name in DATE_COLUMNS}
        fill = dates["denial_date"] if today is None else np.datetime64(today, "s")
        as_of = _date_array([r.get("as_of_date") for r in records])
        return cls(
            rows=len(records),
            text={
                **{name: _object_array([r[name] for r in records]) for name in TEXT_COLUMNS},
                "payer_id": _object_array([str(r["payer_id"]) for r in records]),
                **{
                    name: _object_array([r.get(name) for r in records])
                    for name in OPTIONAL_TEXT_COLUMNS
                },
            },
            lists={name: [r.get(name) or () for r in records] for name in LIST_COLUMNS},
            numbers={
                name: np.array([_number(r.get(name)) for r in records], dtype=float)
                for name in NUMBER_COLUMNS
            },
            dates=dates,
            as_of=np.where(np.isnat(as_of), fill, as_of),
        )


@dataclass(frozen=True)
class Deadlines:
    """Filing and appeal deadlines of each row, with the payer rule that set each."""

    filing: np.ndarray  # datetime64[s]
    filing_rule: list[str]
    appeal: np.ndarray
    appeal_rule: list[str]

    def as_frame(self) -> pd.DataFrame:
        """The shape :meth:`PayerRules.deadline_frame` returns."""
        return pd.DataFrame(
            {
                "filing_deadline": self.filing,
                "filing_rule": self.filing_rule,
                "appeal_deadline": self.appeal,
                "appeal_rule": self.appeal_rule,
            }
        )


def payer_deadlines(rules: PayerRules, columns: DenialColumns) -> Deadlines:
    """Deadlines by the payer rules: filing counted from service, appeal from the denial."""
    pairs = list(zip(columns.text["payer_id"], columns.text["payer_type"], strict=True))
    filing = _rule_days(rules, "timely_filing", pairs)
    appeal = _rule_days(rules, "appeal", pairs)
    return Deadlines(
        filing=columns.dates["service_date"] + filing[0],
        filing_rule=filing[1],
        appeal=columns.dates["denial_date"] + appeal[0],
        appeal_rule=appeal[1],
    )


def _rule_days(
    rules: PayerRules, kind: str, pairs: list[tuple[str, str]]
) -> tuple[np.ndarray, list[str]]:
    """Per row, the rule's days as ``timedelta64[D]`` and its name (one lookup per payer)."""
    cache: dict[tuple[str, str], DeadlineRule] = {}
    picked = []
    for pair in pairs:
        if pair not in cache:
            cache[pair] = rules.rule(kind, *pair)
        picked.append(cache[pair])
    days = np.fromiter((r.days for r in picked), dtype="int64", count=len(picked))
    return days.astype("timedelta64[D]"), [r.name for r in picked]


def mapping_routes(mapping: CodeMapping, columns: DenialColumns) -> list[Route]:
    """The governed mapping's route of each row (one lookup per code combination)."""
    cache: dict[tuple[str, tuple[str, ...]], Route] = {}
    routes = []
    for carcs, remarks in zip(
        columns.lists["carc_codes"], columns.lists["rarc_codes"], strict=True
    ):
        key = (carcs[0] if len(carcs) else "", tuple(remarks))
        if key not in cache:
            cache[key] = mapping.route(list(carcs[:1]), list(remarks))
        routes.append(cache[key])
    return routes


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
        return self.encode(DenialColumns.from_frame(frame))

    def encode(self, columns: DenialColumns) -> np.ndarray:
        """The feature matrix of rows read into :class:`DenialColumns`, however they came."""
        check_is_fitted(self, "feature_names_")
        base = self._base_values(columns)
        blocks = [
            self._encode_categoricals(base, columns.rows),
            self._numeric_block(columns, base),
            _multi_hot(columns.lists["carc_codes"], self.adjustment_vocabulary_),
            _multi_hot(columns.lists["rarc_codes"], self.remark_vocabulary_),
            _multi_hot(columns.lists["modifiers"], self.modifier_vocabulary_),
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
        return self.unseen_codes_of(DenialColumns.from_frame(frame))

    def unseen_codes_of(self, columns: DenialColumns) -> list[list[str]]:
        """Per row of ``columns``, the adjustment and remark codes never seen in training."""
        check_is_fitted(self, "known_codes_")
        known = self.known_codes_
        return [
            [code for code in (*adjustments, *remarks) if code not in known]
            for adjustments, remarks in zip(
                columns.lists["carc_codes"], columns.lists["rarc_codes"], strict=True
            )
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
        return pd.DataFrame(self._base_values(DenialColumns.from_frame(frame)), index=frame.index)

    def _base_values(self, columns: DenialColumns) -> dict[str, Sequence[object]]:
        """Derived text values per categorical feature: primary codes, families, routes."""
        mapping: CodeMapping = getattr(self, "mapping_", None) or load_mapping(
            _optional_path(self.mapping_overrides)
        )
        primary = [codes[0] if len(codes) else "" for codes in columns.lists["carc_codes"]]
        routes = mapping_routes(mapping, columns)
        text = columns.text
        return {
            "primary_adjustment": primary,
            "primary_group": [split_adjustment(code)[0] for code in primary],
            "primary_remark": [r[0] if len(r) else NO_REMARK for r in columns.lists["rarc_codes"]],
            "payer_id": text["payer_id"],
            "payer_type": text["payer_type"],
            "claim_type": text["claim_type"],
            "specialty": text["specialty"],
            "procedure_family": [procedure_family(c) for c in text["procedure_code"]],
            "procedure_code": text["procedure_code"],
            "place_of_service": text["place_of_service"],
            "facility_id": text["facility_id"],
            "primary_diagnosis_chapter": [
                d[0][:1] if len(d) else None for d in columns.lists["diagnosis_codes"]
            ],
            "mapped_root_cause": [route.root_cause for route in routes],
            "mapped_action_path": [route.action_path for route in routes],
        }

    def _encode_categoricals(self, base: dict[str, Sequence[object]], rows: int) -> np.ndarray:
        columns = []
        for name in CATEGORICAL_FEATURES:
            vocabulary = self.vocabularies_[name]
            lookup = {value: float(i) for i, value in enumerate(vocabulary)}
            other = float(len(vocabulary))
            columns.append([np.nan if v is None else lookup.get(v, other) for v in base[name]])
        return np.array(columns, dtype=np.float64).T.reshape(rows, len(CATEGORICAL_FEATURES))

    def _numeric_block(
        self, columns: DenialColumns, base: dict[str, Sequence[object]]
    ) -> np.ndarray:
        lists = columns.lists
        values = {
            **_amount_features(columns.numbers),
            **{name: columns.numbers[name] for name in _COPIED_NUMBERS},
            **{
                f"{kind}_count": np.array([len(c) for c in lists[name]], float)
                for kind, name in _COUNTED_LISTS
            },
            **self._date_features(columns),
            **self._payer_behaviour(columns, base),
            "unseen_code_count": np.array([len(u) for u in self.unseen_codes_of(columns)], float),
        }
        return np.column_stack([values[name] for name in NUMERIC_FEATURES])

    def _date_features(self, columns: DenialColumns) -> dict[str, np.ndarray]:
        service, denial = columns.dates["service_date"], columns.dates["denial_date"]
        submission, as_of = columns.dates["submission_date"], columns.as_of
        deadlines = payer_deadlines(self.payer_rules_, columns)
        return {
            "denial_month": _months(denial),
            "days_service_to_denial": _days(denial - service),
            "days_service_to_submission": _days(submission - service),
            "days_submission_to_denial": _days(denial - submission),
            "days_since_service": _days(as_of - service),
            "days_since_denial": _days(as_of - denial),
            "days_to_appeal_deadline": _days(deadlines.appeal - as_of),
            "days_to_filing_deadline": _days(deadlines.filing - as_of),
            "filing_slack_at_denial": _days(deadlines.filing - denial),
        }

    def _payer_behaviour(
        self, columns: DenialColumns, base: dict[str, Sequence[object]]
    ) -> dict[str, np.ndarray]:
        """Shrunken recovery rates from outcomes resolved before each row's denial date."""
        days = _day_numbers_of(columns.dates["denial_date"])
        m = self.prior_strength
        n_all, r_all = self.overall_history_.counts_before(["*"] * columns.rows, days)
        overall = (r_all + 0.5 * m) / (n_all + m)  # an uninformed 50% prior before any history
        n_payer, r_payer = self.payer_history_.counts_before(base["payer_id"], days)
        payer_rate = (r_payer + m * overall) / (n_payer + m)
        pairs = [
            f"{p}|{a}" for p, a in zip(base["payer_id"], base["primary_adjustment"], strict=True)
        ]
        n_pair, r_pair = self.payer_adjustment_history_.counts_before(pairs, days)
        pair_rate = (r_pair + m * payer_rate) / (n_pair + m)
        return {
            "payer_recovery_rate": payer_rate,
            "payer_adjustment_recovery_rate": pair_rate,
            "payer_adjustment_history": np.log1p(n_pair.astype(float)),
        }


_COPIED_NUMBERS = ("units", "submission_attempt", "eligibility_verified", "prior_auth_on_file")
_COUNTED_LISTS = (
    ("adjustment", "carc_codes"),
    ("remark", "rarc_codes"),
    ("modifier", "modifiers"),
    ("diagnosis", "diagnosis_codes"),
)


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


def _amount_features(numbers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    billed, denied = numbers["billed_amount"], numbers["denied_amount"]
    safe_billed = np.where(billed > 0, billed, np.nan)
    return {
        "log_billed_amount": np.log1p(billed),
        "log_denied_amount": np.log1p(denied),
        "denied_share_of_billed": denied / safe_billed,
        "paid_share_of_billed": numbers["paid_amount"] / safe_billed,
    }


def _optional_number(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name].astype("Float64"), errors="coerce").to_numpy(
        float, na_value=np.nan
    )


def _optional_dates(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), _NAT)
    return pd.to_datetime(frame[name]).to_numpy().astype("datetime64[s]")


def _object_array(values: list[object]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _number(value: object) -> float:
    return np.nan if value is None else float(value)  # type: ignore[arg-type]


def _date_array(values: list[object]) -> np.ndarray:
    return np.array([_NAT if v is None else v for v in values], dtype="datetime64[s]")


def _months(dates: np.ndarray) -> np.ndarray:
    """Calendar month (1-12) of each date, NaN where missing."""
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return np.where(np.isnat(dates), np.nan, months.astype(float))


def _days(delta: np.ndarray) -> np.ndarray:
    """Time differences in days, NaN where either date is missing."""
    return delta / np.timedelta64(1, "D")


def _day_numbers_of(dates: np.ndarray) -> np.ndarray:
    """Days since the epoch, as int64."""
    return dates.astype("datetime64[D]").astype(np.int64)


def _day_numbers(dates: pd.Series) -> np.ndarray:
    """Days since the epoch, as int64."""
    return _day_numbers_of(pd.to_datetime(dates).to_numpy())


def _resolved_mask(frame: pd.DataFrame) -> pd.Series:
    if not {"resolution", "resolved_date", "recovered_amount"} <= set(frame.columns):
        return pd.Series(False, index=frame.index)
    return (frame["resolution"] != "open") & frame["resolved_date"].notna()
