"""Training windows: the denials a model learned from, so that no evaluation measures it on them.

A registered model records its window (first and last denial date of its training rows, the
date its outcomes had matured by, the row count and the data's digest) in its metadata and as
MLflow tags. ``evaluate`` and ``promote`` then measure only matured rows newer than every
compared model's window: a model trained on more months can never be scored on the months it
learned, whatever split options are given (it once won promotion that way, in sample).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

DEFAULT_MIN_EVALUATION_ROWS = 500
# Models registered before windows were recorded kept only the first day of their test months.
_LEGACY_TEST_FROM = "test_from"
_FIELDS = ("first_denial", "last_denial", "matured_by")


class EvaluationWindowError(ValueError):
    """Too few rows lie beyond the compared models' windows, or a model records no window."""


@dataclass(frozen=True)
class TrainingWindow:
    """The denials one model learned from."""

    first_denial: pd.Timestamp | None  # None only for models registered before windows
    last_denial: pd.Timestamp
    matured_by: pd.Timestamp | None  # outcomes after this were not yet known to it
    rows: int | None
    data_digest: str | None

    @classmethod
    def of(
        cls, train_rows: pd.DataFrame, matured_by: pd.Timestamp | None, data_digest: str
    ) -> TrainingWindow:
        dates = pd.to_datetime(train_rows["denial_date"])
        return cls(dates.min(), dates.max(), matured_by, len(train_rows), data_digest)

    @classmethod
    def of_model(cls, metadata: dict[str, object], name: str) -> TrainingWindow:
        """The window a model's metadata records, or the one its test months imply."""
        if "window.last_denial" in metadata:
            dates = {f: _date(metadata.get(f"window.{f}")) for f in _FIELDS}
            rows = metadata.get("window.rows")
            return cls(
                dates["first_denial"],
                dates["last_denial"],
                dates["matured_by"],
                None if rows is None else int(str(rows)),
                str(metadata.get("data_digest") or "") or None,
            )
        if _LEGACY_TEST_FROM in metadata:
            # Trained on the denials before its first test day.
            last = pd.Timestamp(str(metadata[_LEGACY_TEST_FROM])) - pd.Timedelta(days=1)
            return cls(None, last, None, None, None)
        raise EvaluationWindowError(
            f"{name} records no training window: it cannot be evaluated without risking its own "
            "training rows; train it again with this version of denial-triage"
        )

    def metadata(self) -> dict[str, str | int]:
        """The window as model metadata and MLflow tags (``window.*``)."""
        recorded: dict[str, str | int] = {
            f"window.{f}": str(getattr(self, f).date())
            for f in _FIELDS
            if getattr(self, f) is not None
        }
        if self.rows is not None:
            recorded["window.rows"] = self.rows
        return recorded

    def describe(self) -> str:
        start = "" if self.first_denial is None else f"{self.first_denial.date()} to "
        return f"{start}{self.last_denial.date()}"


@dataclass(frozen=True)
class HeldOutRows:
    """Matured rows newer than every compared window, and the older rows baselines learn from."""

    baseline: pd.DataFrame
    measured: pd.DataFrame
    after: pd.Timestamp  # the newest window's last denial
    matured_by: pd.Timestamp


def rows_beyond(
    history: pd.DataFrame,
    windows: Sequence[tuple[str, TrainingWindow]],
    maturity_days: int,
    min_rows: int = DEFAULT_MIN_EVALUATION_ROWS,
) -> HeldOutRows:
    """The rows of ``history`` no compared model learned from, whose outcomes have matured.

    Refused (:class:`EvaluationWindowError`) when fewer than ``min_rows`` remain: a comparison
    on a handful of rows decides nothing, and one on training rows flatters.
    """
    dates = pd.to_datetime(history["denial_date"])
    after = max(window.last_denial for _, window in windows)
    matured_by = dates.max() - pd.Timedelta(days=maturity_days)
    measured = (dates > after) & (dates <= matured_by)
    count = int(measured.sum())
    if count < min_rows:
        learned = "; ".join(f"{name} learned from {w.describe()}" for name, w in windows)
        raise EvaluationWindowError(
            f"only {count:,} matured denials of this history are newer than every compared "
            f"model's training window ({learned}); at least {min_rows:,} are needed. Its "
            f"denials run to {dates.max().date()} and those after {matured_by.date()} are left "
            f"out as not yet matured ({maturity_days} days): evaluate on a newer history"
        )
    return HeldOutRows(
        history[(dates <= after).to_numpy()].reset_index(drop=True),
        history[measured.to_numpy()].reset_index(drop=True),
        after,
        matured_by,
    )


def _date(value: object) -> pd.Timestamp | None:
    return None if value in (None, "") else pd.Timestamp(str(value))
