"""Code-lookup baselines for root cause: what a team gets without a model.

Two lookups: the governed mapping as written (what the project ships), and the best possible
lookup on the codes alone, which predicts for each distinct set of adjustment and remark codes
the most common root cause seen with it. The second is an upper bound on any code table, so
comparing the model to it shows what the other fields add.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.mapping import CodeMapping


def code_set_keys(frame: pd.DataFrame) -> pd.Series:
    """One text key per row for its full set of adjustment and remark codes, in order."""
    rarcs = frame["rarc_codes"] if "rarc_codes" in frame else pd.Series([[]] * len(frame))
    return pd.Series(
        ["|".join(c) + "/" + "|".join(r) for c, r in zip(frame["carc_codes"], rarcs, strict=True)],
        index=frame.index,
    )


@dataclass
class CodeSetLookup:
    """Majority root cause per code set, learned from labelled history."""

    fallback_: str = ""
    table_: dict[str, str] = field(default_factory=dict)

    def fit(self, frame: pd.DataFrame) -> CodeSetLookup:
        keys = code_set_keys(frame)
        counts = pd.crosstab(keys, frame["root_cause"])
        self.table_ = dict(zip(counts.index, counts.idxmax(axis=1), strict=True))
        self.fallback_ = str(frame["root_cause"].mode().iloc[0])
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        keys = code_set_keys(frame)
        return keys.map(self.table_).fillna(self.fallback_).to_numpy(dtype=object)


def governed_lookup(frame: pd.DataFrame, mapping: CodeMapping) -> np.ndarray:
    """The root cause the governed mapping assigns to each row."""
    return mapping.route_frame(frame)["mapped_root_cause"].to_numpy(dtype=object)
