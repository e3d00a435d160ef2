"""Honest evaluation: calibration, classification and worklist-ranking metrics.

Every function is pure: arrays in, numbers or small frames out, nothing written. Probability
metrics come from scikit-learn where it has them; what it lacks (expected calibration error,
reliability table, dollars captured at team capacity) is written here once, so training,
evaluation and the report cannot disagree on a definition.

Ranking metrics answer the question a denial team asks: if we can only work the top share of
the worklist, how many recovered dollars does each ordering put in front of us? Every ordering
is compared with the oracle, which ranks by the dollars each denial actually recovered and so
is the most any ordering could capture at that capacity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

ArrayLike = npt.ArrayLike
DEFAULT_SHARES = (0.1, 0.2, 0.3)
ORACLE = "oracle"
BASELINE_NAMES = ("oldest_first", "largest_amount_first", "nearest_deadline_first")
_DEADLINE_COLUMNS = ("appeal_deadline", "filing_deadline")

# ---------------------------------------------------------------------------- input checks


def _binary_labels(y_true: ArrayLike) -> np.ndarray:
    labels = np.asarray(y_true)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("y_true must be a non-empty one-dimensional array of 0/1 outcomes")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("y_true must hold only 0/1 (or False/True) outcomes")
    return labels.astype(np.int64)


def _probabilities(probability: ArrayLike, rows: int) -> np.ndarray:
    values = np.asarray(probability, dtype=np.float64)
    if values.shape != (rows,):
        raise ValueError(f"probability has shape {values.shape}; expected ({rows},) like y_true")
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise ValueError("probability must be finite and within [0, 1] on every row")
    return values


def _dollars(recovered_dollars: ArrayLike) -> np.ndarray:
    values = np.asarray(recovered_dollars, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("recovered_dollars must be a non-empty one-dimensional array")
    if np.isnan(values).any():
        # Open denials carry no outcome (data contract); counting them as $0 would be a lie.
        raise ValueError("recovered_dollars has missing values; leave open denials out first")
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("recovered_dollars must be finite and >= 0 on every row")
    return values


def _priorities(priority: ArrayLike, rows: int) -> np.ndarray:
    values = np.asarray(priority, dtype=np.float64)
    if values.shape != (rows,):
        raise ValueError(f"priority has shape {values.shape}; expected ({rows},) like the dollars")
    if np.isnan(values).any():
        raise ValueError(f"priority is missing on {int(np.isnan(values).sum())} rows; score all")
    return values


def _checked_shares(shares: Sequence[float]) -> tuple[float, ...]:
    if not shares or any(not 0 < share <= 1 for share in shares):
        raise ValueError(f"shares must be fractions of the worklist in (0, 1]; got {shares}")
    return tuple(float(share) for share in shares)


# ---------------------------------------------------------------------------- calibration


def bin_index(probability: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin of each probability: [lower, upper), with 1.0 in the last bin."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1; got {bins}")
    inner_edges = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    return np.searchsorted(inner_edges, probability, side="right")


def reliability_table(y_true: ArrayLike, probability: ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability against observed rate in equal-width probability bins.

    One row per bin, empty bins included (count 0, means NaN) so tables of different models
    line up bin for bin. Columns: bin, lower, upper, count, mean_predicted, observed_rate.
    """
    labels = _binary_labels(y_true)
    predicted = _probabilities(probability, labels.size)
    index = bin_index(predicted, bins)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.bincount(index, weights=predicted, minlength=bins) / count
        observed_rate = np.bincount(index, weights=labels, minlength=bins) / count
    edges = np.linspace(0.0, 1.0, bins + 1)
    return pd.DataFrame(
        {
            "bin": np.arange(bins),
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count,
            "mean_predicted": mean_predicted,
            "observed_rate": observed_rate,
        }
    )


def expected_calibration_error(y_true: ArrayLike, probability: ArrayLike, bins: int = 10) -> float:
    """Gap between predicted and observed rates, averaged over equal-width bins by bin size.

    0 means that, bin by bin, denials given probability p were recovered at rate p.
    """
    table = reliability_table(y_true, probability, bins)
    filled = table[table["count"] > 0]
    gaps = (filled["mean_predicted"] - filled["observed_rate"]).abs()
    return float((gaps * filled["count"]).sum() / filled["count"].sum())


def binary_summary(y_true: ArrayLike, probability: ArrayLike) -> dict[str, float]:
    """Discrimination and calibration of a probability of a yes/no outcome.

    roc_auc is NaN when only one outcome occurs (a small segment), since no ranking can be
    judged there; the other figures stay defined.
    """
    labels = _binary_labels(y_true)
    predicted = _probabilities(probability, labels.size)
    both_outcomes = np.unique(labels).size == 2
    return {
        "roc_auc": float(roc_auc_score(labels, predicted)) if both_outcomes else math.nan,
        "brier": float(brier_score_loss(labels, predicted)),
        "ece": expected_calibration_error(labels, predicted),
        "log_loss": float(log_loss(labels, predicted, labels=[0, 1])),
        "rows": float(labels.size),
        "positive_rate": float(labels.mean()),
    }


# ---------------------------------------------------------------------------- classification


def multiclass_summary(
    y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[str]
) -> dict[str, object]:
    """Accuracy, macro F1, per-class figures and the confusion matrix, JSON-ready.

    ``labels`` fixes the class order of the matrix and which classes the macro average covers;
    a class that never occurs and is never predicted scores F1 0 rather than being skipped,
    so a model cannot look better by never meeting a rare root cause.
    """
    truth, predicted, order = np.asarray(y_true), np.asarray(y_pred), list(labels)
    if truth.shape != predicted.shape or truth.size == 0:
        raise ValueError("y_true and y_pred must be non-empty and of the same length")
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=order, zero_division=0
    )
    per_class = {
        str(label): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(order)
    }
    matrix = confusion_matrix(truth, predicted, labels=order)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(
            f1_score(truth, predicted, labels=order, average="macro", zero_division=0)
        ),
        "per_class": per_class,
        "labels": [str(label) for label in order],
        "confusion_matrix": matrix.tolist(),  # rows: true label, columns: predicted label
    }


# ---------------------------------------------------------------------------- prioritization


def capacity_label(share: float) -> str:
    """The key a capacity share is reported under, e.g. ``top_10%`` or ``top_12.5%``."""
    return f"top_{share * 100:g}%"


def rows_worked(share: float, rows: int) -> int:
    """Rows a team works at a capacity share: the ceiling, so any capacity works one row."""
    # Rounding first stops float noise in computed shares adding a row: a share of 0.1 * 3
    # over 10 rows is 3.0000000000000004 rows, which must be 3, not 4.
    return min(rows, math.ceil(round(share * rows, 9)))


def work_order(priority: ArrayLike) -> np.ndarray:
    """Row positions in the order a team would work them: highest priority first.

    Equal priorities keep their original order (stable sort), so the result is deterministic.
    """
    values = np.asarray(priority, dtype=np.float64)
    return np.argsort(-values, kind="stable")


def _cumulative_dollars(priority: ArrayLike, recovered_dollars: ArrayLike) -> np.ndarray:
    """Dollars captured after working 0, 1, ..., n rows in priority order."""
    dollars = _dollars(recovered_dollars)
    ordered = dollars[work_order(_priorities(priority, dollars.size))]
    return np.concatenate([[0.0], np.cumsum(ordered)])


def capacity_capture(
    priority: ArrayLike,
    recovered_dollars: ArrayLike,
    shares: Sequence[float] = DEFAULT_SHARES,
) -> dict[str, float]:
    """Actual recovered dollars in the top ``share`` of rows by priority, per share."""
    cumulative = _cumulative_dollars(priority, recovered_dollars)
    rows = cumulative.size - 1
    return {
        capacity_label(share): float(cumulative[rows_worked(share, rows)])
        for share in _checked_shares(shares)
    }


def ranking_report(
    rankings: Mapping[str, ArrayLike],
    recovered_dollars: ArrayLike,
    shares: Sequence[float] = DEFAULT_SHARES,
) -> dict[str, object]:
    """Dollars each ranking captures at each capacity, beside the oracle's.

    ``share_of_oracle`` is NaN when no evaluated denial recovered anything, since no ordering
    can then be better or worse than another.
    """
    if ORACLE in rankings:
        raise ValueError(f"'{ORACLE}' is added by ranking_report; name your ranking differently")
    dollars = _dollars(recovered_dollars)
    checked = _checked_shares(shares)
    captured = {name: capacity_capture(score, dollars, checked) for name, score in rankings.items()}
    oracle = capacity_capture(dollars, dollars, checked)
    return {
        "rows": int(dollars.size),
        "total_recovered_dollars": float(dollars.sum()),
        "rows_worked": {capacity_label(s): rows_worked(s, dollars.size) for s in checked},
        "rankings": {
            name: _against_oracle(result, oracle)
            for name, result in {ORACLE: oracle, **captured}.items()
        },
    }


def _against_oracle(
    captured: dict[str, float], oracle: dict[str, float]
) -> dict[str, dict[str, float]]:
    return {
        label: {
            "dollars_captured": dollars,
            "share_of_oracle": dollars / oracle[label] if oracle[label] > 0 else math.nan,
        }
        for label, dollars in captured.items()
    }


def _effort_hours(effort_hours: ArrayLike, rows: int) -> np.ndarray:
    values = np.asarray(effort_hours, dtype=np.float64)
    if values.shape != (rows,):
        raise ValueError(f"effort_hours has shape {values.shape}; expected ({rows},) rows")
    if not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError("effort_hours must be finite and above 0 on every row")
    return values


def denials_within_hours(ordered_hours: np.ndarray, budget: float) -> int:
    """Denials a team works in order before its hours run out: those whose running total of
    effort fits the budget (float noise in the sum cannot drop the last one that fits)."""
    return int(np.searchsorted(np.cumsum(ordered_hours), budget + 1e-9, side="right"))


def hours_capacity_capture(
    priority: ArrayLike,
    recovered_dollars: ArrayLike,
    effort_hours: ArrayLike,
    shares: Sequence[float] = DEFAULT_SHARES,
) -> dict[str, float]:
    """Actual recovered dollars a team captures working in priority order until ``share`` of
    the hours every denial would take are spent, per share."""
    dollars = _dollars(recovered_dollars)
    hours = _effort_hours(effort_hours, dollars.size)
    order = work_order(_priorities(priority, dollars.size))
    cumulative = np.concatenate([[0.0], np.cumsum(dollars[order])])
    total = float(hours.sum())
    return {
        capacity_label(share): float(cumulative[denials_within_hours(hours[order], share * total)])
        for share in _checked_shares(shares)
    }


def hours_ranking_report(
    rankings: Mapping[str, ArrayLike],
    recovered_dollars: ArrayLike,
    effort_hours: ArrayLike,
    shares: Sequence[float] = DEFAULT_SHARES,
) -> dict[str, object]:
    """Dollars each ranking captures within 10/20/30% of the hours, beside the oracle's: true
    recovered dollars per effort hour, the most a ranking by value per hour could capture."""
    if ORACLE in rankings:
        raise ValueError(f"'{ORACLE}' is added by hours_ranking_report; name yours differently")
    dollars = _dollars(recovered_dollars)
    hours = _effort_hours(effort_hours, dollars.size)
    checked = _checked_shares(shares)
    captured = {
        name: hours_capacity_capture(score, dollars, hours, checked)
        for name, score in rankings.items()
    }
    oracle = hours_capacity_capture(dollars / hours, dollars, hours, checked)
    return {
        "rows": int(dollars.size),
        "total_hours": float(hours.sum()),
        "hours_worked": {capacity_label(s): float(s * hours.sum()) for s in checked},
        "rankings": {
            name: _against_oracle(result, oracle)
            for name, result in {ORACLE: oracle, **captured}.items()
        },
    }


def recovery_at_capacity_curve(
    priority: ArrayLike, recovered_dollars: ArrayLike, points: int = 20
) -> pd.DataFrame:
    """Dollars captured as the team works more of the ranked worklist, for plotting.

    ``points`` equal steps from 0 to the whole worklist, plus the origin; the rows worked at
    each step are counted as in :func:`capacity_capture`, so the two never disagree.
    """
    if points < 1:
        raise ValueError(f"points must be at least 1; got {points}")
    cumulative = _cumulative_dollars(priority, recovered_dollars)
    rows, total = cumulative.size - 1, cumulative[-1]
    share_worked = np.linspace(0.0, 1.0, points + 1)
    captured = cumulative[[rows_worked(share, rows) for share in share_worked]]
    return pd.DataFrame(
        {
            "share_worked": share_worked,
            "dollars_captured": captured,
            "share_of_total": captured / total if total > 0 else np.full(captured.size, np.nan),
        }
    )


# ---------------------------------------------------------------------------- baselines


def _days_until(deadline: ArrayLike, as_of: ArrayLike) -> np.ndarray:
    """Whole days from the scoring date to a deadline; NaN where the deadline is unknown."""
    deadline_days = np.asarray(deadline, dtype="datetime64[ns]").astype("datetime64[D]")
    as_of_days = np.asarray(as_of, dtype="datetime64[ns]").astype("datetime64[D]")
    return (deadline_days - as_of_days) / np.timedelta64(1, "D")


def nearest_open_deadline_days(deadlines: pd.DataFrame, as_of: ArrayLike) -> np.ndarray:
    """Days left to the nearer deadline that has not passed; NaN when none is left.

    A deadline falling on the scoring date is still open (0 days left). When the appeal window
    has closed but timely filing has not, a corrected claim can still be sent, so the filing
    deadline counts; only when both have passed is the denial out of time.
    """
    days = np.column_stack(
        [_days_until(deadlines[column].to_numpy(), as_of) for column in _DEADLINE_COLUMNS]
    )
    days[~(days >= 0)] = np.inf  # passed or unknown deadlines cannot be worked to
    nearest = days.min(axis=1)
    nearest[np.isinf(nearest)] = np.nan
    return nearest


def nearest_deadline_scores(deadlines: pd.DataFrame, as_of: ArrayLike) -> np.ndarray:
    """Work-first scores by days left to the nearest open deadline; out-of-time denials last.

    Denials whose appeal and filing deadlines have both passed can no longer be worked, so
    they score below every workable denial (keeping their worklist order among themselves)
    instead of topping the list as "most overdue".
    """
    days_left = nearest_open_deadline_days(deadlines, as_of)
    scores = -days_left
    workable = ~np.isnan(days_left)
    floor = scores[workable].min() - 1.0 if workable.any() else 0.0
    scores[~workable] = floor
    return scores


def baseline_rankings(
    frame: pd.DataFrame, deadlines: pd.DataFrame, as_of: ArrayLike
) -> dict[str, np.ndarray]:
    """Scores (higher = work first) for the orderings teams use without a model.

    ``deadlines`` is ``PayerRules.deadline_frame(frame)``; ``as_of`` is the scoring date of
    each row (or one date for all). See :func:`nearest_deadline_scores` for out-of-time rows.
    """
    if len(deadlines) != len(frame):
        raise ValueError(f"deadlines has {len(deadlines)} rows; the denials have {len(frame)}")
    denial_day = frame["denial_date"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    return {
        # Earlier denial date = older = higher score.
        "oldest_first": -denial_day.astype(np.int64).astype(np.float64),
        "largest_amount_first": frame["denied_amount"].to_numpy(dtype=np.float64),
        "nearest_deadline_first": nearest_deadline_scores(deadlines, as_of),
    }
