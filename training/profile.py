"""A profile of a denial history: mix, rates and how far a code lookup gets.

Used to check that a history (generated or real) looks like the industry figures in
``../shared/docs/domain.md`` before anyone trains on it, and printed by ``denial-triage profile``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from features.mapping import CodeMapping
from training.baselines import CodeSetLookup, governed_lookup


@dataclass(frozen=True)
class HistoryProfile:
    rows: int
    first_denial: str
    last_denial: str
    months_covered: int
    payers: int
    payer_types: int
    specialties: int
    procedure_codes: int
    root_cause_mix: dict[str, float]
    preventable_share: float
    open_share: float
    recovered_share_of_resolved: float
    recovered_dollar_share_of_resolved: float
    best_code_lookup_accuracy: float
    governed_mapping_accuracy: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def profile_history(frame: pd.DataFrame, mapping: CodeMapping) -> HistoryProfile:
    """Profile a validated, labelled contract frame."""
    dates = pd.to_datetime(frame["denial_date"])
    resolved = frame[frame["resolution"] != "open"]
    recovered = resolved["recovered_amount"].fillna(0.0)
    labels = frame["root_cause"].to_numpy(dtype=object)
    best = CodeSetLookup().fit(frame).predict(frame)
    return HistoryProfile(
        rows=len(frame),
        first_denial=str(dates.min().date()),
        last_denial=str(dates.max().date()),
        months_covered=int(dates.dt.to_period("M").nunique()),
        payers=int(frame["payer_id"].nunique()),
        payer_types=int(frame["payer_type"].nunique()),
        specialties=int(frame["specialty"].nunique()) if "specialty" in frame else 0,
        procedure_codes=int(frame["procedure_code"].nunique()) if "procedure_code" in frame else 0,
        root_cause_mix=_shares(frame["root_cause"]),
        preventable_share=_rate(frame["preventable"].astype("boolean").mean()),
        open_share=_rate((frame["resolution"] == "open").mean()),
        recovered_share_of_resolved=_rate((recovered > 0).mean()),
        recovered_dollar_share_of_resolved=_rate(
            recovered.sum() / max(resolved["denied_amount"].sum(), 1e-9)
        ),
        best_code_lookup_accuracy=_rate(np.mean(best == labels)),
        governed_mapping_accuracy=_rate(np.mean(governed_lookup(frame, mapping) == labels)),
    )


def _shares(values: pd.Series) -> dict[str, float]:
    return {str(k): round(float(v), 4) for k, v in values.value_counts(normalize=True).items()}


def _rate(value: float) -> float:
    return round(float(value), 4)
