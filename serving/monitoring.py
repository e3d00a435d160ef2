"""Watching the champion on the outcomes that come back: calibration, discrimination, root-cause
accuracy, recovered dollars and drift, per month and payer type, beside its training figures.

Everything reads the records the service already keeps: each denial's latest score
(``latest_scores``), the latest outcome recorded for it (feedback, from reviewers or from
``link-outcomes``) and the latest review of its root cause. Each figure is one aggregate SQL
statement, never a read of every denial: recovery probabilities are grouped to the thousandth,
which gives the reliability curve and ECE exactly and ROC AUC with ties inside a thousandth
counted half (off by at most a few ten-thousandths). Drift reads one bounded sample of recent
denials (:func:`recent_denials`).

Months are the denials' own (``denial_month``), never the day this runs; "recent" for drift
is the ``recent_days`` before the newest denial date in the records, unless a start is given.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Integer, Select, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session

from denial_triage.settings import Settings
from features.labels import plain_label
from serving.records import DenialStatus, Feedback, LatestScore, ScoreRecord
from training import drift

ALL_PAYER_TYPES = "all"
UNKNOWN_PAYER_TYPE = "unknown"
RELIABILITY_BINS = 10  # as training's reliability table and ECE (training/metrics.py)
PER_MILLE = 1000  # recovery probabilities are grouped to the thousandth in SQL
TOP_SHARE = 0.1  # the top decile of priority
TOP_DRIFTING = 5
PRIORITY_RANKING = "priority_score"


SETTINGS_PREFIX = "monitoring_"


def _setting_default(name: str) -> Any:
    """The ``monitoring_<name>`` setting's default: the settings are the one source of it."""
    return Settings.model_fields[f"{SETTINGS_PREFIX}{name}"].default


@dataclass(frozen=True)
class Thresholds:
    """When a figure on recent outcomes asks for retraining (the ``monitoring_*`` settings of
    the same names, whose defaults these are)."""

    max_ece: float = _setting_default("max_ece")
    min_auc: float = _setting_default("min_auc")
    min_root_cause_accuracy: float = _setting_default("min_root_cause_accuracy")
    max_psi: float = _setting_default("max_psi")
    min_outcomes: int = _setting_default("min_outcomes")
    maturity_days: int = _setting_default("maturity_days")

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(**{f.name: getattr(settings, SETTINGS_PREFIX + f.name) for f in fields(cls)})


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width bin of the recovery probability against what happened."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None


@dataclass
class Segment:
    """One month and payer type (``all`` for every payer type of the month)."""

    month: str
    payer_type: str
    resolved: int = 0
    recovered: int = 0
    # Its denials are not all past the maturity span yet: its resolved ones lean towards the
    # quick outcomes, so its calibration and AUC are shown but not judged.
    maturing: bool = False
    ece: float | None = None
    roc_auc: float | None = None
    reliability: list[ReliabilityBin] = field(default_factory=list)
    reviewed: int = 0
    reviewed_right: int = 0
    recovered_dollars: float = 0.0
    top_decile_dollars: float = 0.0

    @property
    def root_cause_accuracy(self) -> float | None:
        """Share of the reviewed denials whose scored root cause the reviewer kept."""
        return self.reviewed_right / self.reviewed if self.reviewed else None

    @property
    def top_decile_share(self) -> float | None:
        """Share of the recovered dollars that came from the top tenth of denials by priority."""
        return self.top_decile_dollars / self.recovered_dollars if self.recovered_dollars else None


@dataclass(frozen=True)
class TrainingFigures:
    """The champion's figures on its test months, from its training run's evaluation."""

    version: str | None
    roc_auc: float | None
    ece: float | None
    root_cause_accuracy: float | None
    top_decile_share: float | None
    reliability: list[ReliabilityBin]
    window: dict[str, str]


@dataclass(frozen=True)
class Reason:
    """Why retraining is recommended: a metric past its threshold in one segment."""

    metric: str
    month: str
    payer_type: str
    value: float
    threshold: float
    feature: str | None = None  # the feature or score a PSI reason is about

    @property
    def text(self) -> str:
        side = "above" if self.metric in ("ece", "psi") else "below"
        metric = self.metric if self.feature is None else f"{self.metric} of {self.feature}"
        where = self.month
        if self.payer_type != ALL_PAYER_TYPES:
            where += f", {self.payer_type}"
        return f"{metric} {self.value:.3f} {side} the threshold {self.threshold:g} ({where})"


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's or score's training and recent distributions, and their PSI."""

    name: str
    kind: str  # "feature" or "score"
    psi: float
    bins: list[str]
    training_shares: list[float]
    recent_shares: list[float]


# PSI of a sample of n denials from the training population is about (bins - 1) / n by chance
# alone: 0.09 over ten bins at 100 denials, clear of the 0.25 that means a shifted population;
# a handful of denials (the quickstart's one sample) would read as drift of 8 or more.
MIN_DRIFT_ROWS = 100


@dataclass(frozen=True)
class DriftReport:
    """Drift of the recent denials from the champion's training rows."""

    note: str | None  # why nothing was compared ("no reference", "no recent denials"), else None
    recent_from: str | None = None
    recent_to: str | None = None
    recent_rows: int = 0
    items: list[FeatureDrift] = field(default_factory=list)

    def top(self, count: int = TOP_DRIFTING) -> list[FeatureDrift]:
        """The features (not scores) that moved most."""
        return [item for item in self.items if item.kind == "feature"][:count]


@dataclass(frozen=True)
class ModelMonitoring:
    """Everything the monitoring command and page show."""

    segments: list[Segment]
    training: TrainingFigures | None
    drift: DriftReport
    reasons: list[Reason]
    thresholds: Thresholds
    matured_by: str | None = None  # months ending by this day are judged on their outcomes

    @property
    def retrain(self) -> bool:
        return bool(self.reasons)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON: every figure, the recommendation and its reasons."""
        document = asdict(self)
        for segment, plain in zip(self.segments, document["segments"], strict=True):
            plain["top_decile_share"] = segment.top_decile_share
            plain["root_cause_accuracy"] = segment.root_cause_accuracy
        document["retrain"] = self.retrain
        document["reasons"] = [{**asdict(r), "text": r.text} for r in self.reasons]
        return _finite(document)


# ---------------------------------------------------------------------------- metrics


def expected_calibration_error(
    counts: Sequence[int], predicted_sums: Sequence[float], positives: Sequence[int]
) -> float | None:
    """ECE from per-bin totals: sum over bins of |predicted - observed| weighted by the bin's
    share of rows, i.e. sum |sum of p - recovered| / rows (as training/metrics.py defines it)."""
    rows = sum(counts)
    if rows == 0:
        return None
    gaps = (abs(p - k) for p, k in zip(predicted_sums, positives, strict=True))
    return float(sum(gaps) / rows)


def grouped_roc_auc(positives: Sequence[int], negatives: Sequence[int]) -> float | None:
    """ROC AUC of scores grouped in ascending groups: the chance that a recovered denial
    outranks a written-off one, a pair inside one group counted half. None without both."""
    total_positive, total_negative = sum(positives), sum(negatives)
    if total_positive == 0 or total_negative == 0:
        return None
    below, concordant = 0, 0.0
    for recovered, lost in zip(positives, negatives, strict=True):
        concordant += recovered * (below + 0.5 * lost)
        below += lost
    return concordant / (total_positive * total_negative)


def reliability_bins(
    counts: Sequence[int], predicted_sums: Sequence[float], positives: Sequence[int]
) -> list[ReliabilityBin]:
    """Equal-width bins with their mean predicted probability and observed recovery rate."""
    width = 1.0 / len(counts)
    return [
        ReliabilityBin(
            lower=round(i * width, 6),
            upper=round((i + 1) * width, 6),
            count=int(n),
            mean_predicted=p / n if n else None,
            observed_rate=k / n if n else None,
        )
        for i, (n, p, k) in enumerate(zip(counts, predicted_sums, positives, strict=True))
    ]


# ---------------------------------------------------------------------------- queries


def _resolved_scores(since: dt.date | None) -> Select[Any]:
    """Each resolved denial's latest score with its latest outcome: two rows joined by their
    key, both kept on write (no ranking of feedback on the read)."""
    query = (
        select(
            LatestScore.denial_month.label("month"),
            func.coalesce(LatestScore.payer_type, UNKNOWN_PAYER_TYPE).label("payer_type"),
            LatestScore.recovery_probability.label("probability"),
            LatestScore.priority.label("priority"),
            func.coalesce(DenialStatus.recovered_amount, 0.0).label("recovered_amount"),
        )
        .join(DenialStatus, DenialStatus.denial_id == LatestScore.denial_id)
        .where(DenialStatus.resolution.is_not(None), DenialStatus.resolution != "open")
    )
    return _since(query, since)


def _since(query: Select[Any], since: dt.date | None) -> Select[Any]:
    return query if since is None else query.where(LatestScore.denial_date >= since.isoformat())


def outcome_groups(session: Session, since: dt.date | None = None) -> list[dict[str, Any]]:
    """Resolved denials per month, payer type and thousandth of recovery probability: how
    many, how many recovered anything, and the sum of their probabilities."""
    dialect = session.get_bind().dialect.name
    resolved = _resolved_scores(since).where(LatestScore.recovery_probability.is_not(None))
    rows = resolved.subquery()
    thousandth = (
        func.floor(rows.c.probability * PER_MILLE)
        if dialect == "postgresql"
        else cast(rows.c.probability * PER_MILLE, Integer)
    ).label("thousandth")
    query = select(
        rows.c.month,
        rows.c.payer_type,
        thousandth,
        func.count().label("denials"),
        func.sum(case((rows.c.recovered_amount > 0, 1), else_=0)).label("recovered"),
        func.sum(rows.c.probability).label("predicted"),
    ).group_by(rows.c.month, rows.c.payer_type, thousandth)
    return [dict(row) for row in session.execute(query).mappings()]


def top_decile_dollars(session: Session, since: dt.date | None = None) -> list[dict[str, Any]]:
    """Per month and payer type, and per month over every payer type: recovered dollars of the
    resolved denials, and of the top tenth of them by priority. One pass: ``ntile(10)`` puts
    the first ceil(n / 10) rows in tile 1, training's capacity rounding; the tile over the
    whole month is summed per payer type here and added up over payer types in Python."""
    rows = _resolved_scores(since).subquery()
    by_priority = rows.c.priority.desc().nulls_last()
    tiles = round(1 / TOP_SHARE)
    ranked = select(
        rows.c.month,
        rows.c.payer_type,
        rows.c.recovered_amount,
        func.ntile(tiles)
        .over(partition_by=[rows.c.month, rows.c.payer_type], order_by=by_priority)
        .label("tile_of_payer_type"),
        func.ntile(tiles).over(partition_by=rows.c.month, order_by=by_priority).label("tile"),
    ).subquery()

    def top(tile: Any) -> Any:
        return func.sum(case((tile == 1, ranked.c.recovered_amount), else_=0.0))

    query = select(
        ranked.c.month,
        ranked.c.payer_type,
        func.sum(ranked.c.recovered_amount).label("recovered_dollars"),
        top(ranked.c.tile_of_payer_type).label("top_dollars"),
        top(ranked.c.tile).label("top_dollars_of_month"),
    ).group_by(ranked.c.month, ranked.c.payer_type)
    found = [dict(row) for row in session.execute(query).mappings()]
    return found + _month_totals(found)


def _month_totals(found: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    months: dict[str, dict[str, Any]] = {}
    for row in found:
        month = months.setdefault(
            row["month"],
            {"month": row["month"], "payer_type": ALL_PAYER_TYPES, "recovered_dollars": 0.0}
            | {"top_dollars": 0.0},
        )
        month["recovered_dollars"] += float(row["recovered_dollars"] or 0.0)
        month["top_dollars"] += float(row["top_dollars_of_month"] or 0.0)
    return list(months.values())


def root_cause_reviews(session: Session, since: dt.date | None = None) -> list[dict[str, Any]]:
    """Per month and payer type: denials whose root cause a reviewer confirmed or corrected
    (their latest word), and how many of them the latest score had right."""
    corrected = Feedback.corrected_root_cause
    rank = func.row_number().over(
        partition_by=Feedback.denial_id, order_by=(Feedback.received_at.desc(), Feedback.id.desc())
    )
    reviews = (
        select(Feedback.denial_id, corrected.label("corrected"), rank.label("rank"))
        .where(or_(corrected.is_not(None), Feedback.confirmed_root_cause.is_(True)))
        .subquery()
    )
    right = or_(reviews.c.corrected.is_(None), reviews.c.corrected == LatestScore.root_cause)
    payer_type = func.coalesce(LatestScore.payer_type, UNKNOWN_PAYER_TYPE).label("payer_type")
    query = (
        select(
            LatestScore.denial_month.label("month"),
            payer_type,
            func.count().label("reviewed"),
            func.sum(case((right, 1), else_=0)).label("right"),
        )
        .join(reviews, and_(reviews.c.denial_id == LatestScore.denial_id, reviews.c.rank == 1))
        .group_by(LatestScore.denial_month, payer_type)
    )
    return [dict(row) for row in session.execute(_since(query, since)).mappings()]


# ---------------------------------------------------------------------------- segments


def segments(
    groups: Iterable[Mapping[str, Any]],
    reviews: Iterable[Mapping[str, Any]] = (),
    dollars: Iterable[Mapping[str, Any]] = (),
) -> list[Segment]:
    """Every month and payer type's figures (and each month's over all payer types), from the
    three queries' rows; months newest first, ``all`` first within a month."""
    found: dict[tuple[str, str], Segment] = {}

    def segment(month: str, payer_type: str) -> Segment:
        return found.setdefault((month, payer_type), Segment(month, payer_type))

    for key, totals in _bin_totals(groups).items():
        _calibrate(segment(*key), totals)
    for row in reviews:
        for key in ((row["month"], row["payer_type"]), (row["month"], ALL_PAYER_TYPES)):
            segment(*key).reviewed += int(row["reviewed"])
            segment(*key).reviewed_right += int(row["right"] or 0)
    for row in dollars:
        worked = segment(row["month"], row["payer_type"])
        worked.recovered_dollars = float(row["recovered_dollars"] or 0.0)
        worked.top_decile_dollars = float(row["top_dollars"] or 0.0)
    return sorted(
        found.values(),
        key=lambda s: (_desc(s.month), s.payer_type != ALL_PAYER_TYPES, s.payer_type),
    )


def _desc(month: str | None) -> tuple[int, ...]:
    year, _, number = (month or "0000-00").partition("-")
    return (-int(year or 0), -int(number or 0))


def _bin_totals(groups: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[int, list]]:
    """Per segment (and per month over all payer types), per thousandth: [denials, recovered,
    sum of probabilities]."""
    totals: dict[tuple[str, str], dict[int, list]] = defaultdict(dict)
    for row in groups:
        thousandth = min(int(row["thousandth"]), PER_MILLE - 1)  # a probability of 1.0
        for key in ((row["month"], row["payer_type"]), (row["month"], ALL_PAYER_TYPES)):
            cell = totals[key].setdefault(thousandth, [0, 0, 0.0])
            cell[0] += int(row["denials"])
            cell[1] += int(row["recovered"] or 0)
            cell[2] += float(row["predicted"] or 0.0)
    return totals


def _calibrate(segment: Segment, totals: Mapping[int, list]) -> None:
    ordered = sorted(totals.items())
    segment.resolved = sum(cell[0] for _, cell in ordered)
    segment.recovered = sum(cell[1] for _, cell in ordered)
    segment.roc_auc = grouped_roc_auc(
        [cell[1] for _, cell in ordered], [cell[0] - cell[1] for _, cell in ordered]
    )
    per_bin = PER_MILLE // RELIABILITY_BINS
    counts, positives = [0] * RELIABILITY_BINS, [0] * RELIABILITY_BINS
    predicted = [0.0] * RELIABILITY_BINS
    for thousandth, (denials, recovered, probability_sum) in ordered:
        counts[thousandth // per_bin] += denials
        positives[thousandth // per_bin] += recovered
        predicted[thousandth // per_bin] += probability_sum
    segment.reliability = reliability_bins(counts, predicted, positives)
    segment.ece = expected_calibration_error(counts, predicted, positives)


# ---------------------------------------------------------------------------- training


def training_figures(report: Mapping[str, Any], version: str | None = None) -> TrainingFigures:
    """The champion's test-month figures from its evaluation report (``evaluation.json``)."""
    recovery = report.get("recovery", {}) or {}
    prioritization = report.get("prioritization", {}) or {}
    ranking = (prioritization.get("rankings", {}) or {}).get(PRIORITY_RANKING, {}) or {}
    top = (ranking.get(f"top_{TOP_SHARE * 100:g}%", {}) or {}).get("dollars_captured")
    total = prioritization.get("total_recovered_dollars")
    window = (report.get("model", {}) or {}).items()
    return TrainingFigures(
        version=version,
        roc_auc=_number(recovery.get("roc_auc")),
        ece=_number(recovery.get("expected_calibration_error")),
        root_cause_accuracy=_number((report.get("root_cause", {}) or {}).get("accuracy")),
        top_decile_share=_number(top / total) if top is not None and total else None,
        reliability=[
            ReliabilityBin(
                lower=float(row["lower"]),
                upper=float(row["upper"]),
                count=int(row["count"]),
                mean_predicted=_number(row.get("mean_predicted")),
                observed_rate=_number(row.get("observed_rate")),
            )
            for row in recovery.get("reliability", []) or []
        ],
        window={k: str(v) for k, v in window if str(k).startswith("window.")},
    )


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


# ---------------------------------------------------------------------------- drift


def newest_denial_date(session: Session) -> dt.date | None:
    """The newest denial date in the records: the data's own today."""
    newest = session.scalar(select(func.max(LatestScore.denial_date)))
    return None if newest is None else dt.date.fromisoformat(newest[:10])


def mark_maturing(found: Iterable[Segment], matured_by: dt.date | None) -> None:
    """Mark the segments of months that end after ``matured_by``. Outcomes come back in
    order of speed, write-offs last: on a generated history (seed 11, 100,000 denials) the
    resolved denials of its newest six months recovered 0.03-0.12 more often than the true
    probabilities they were drawn with said, the gap growing as the month's open share rose
    from 20% to 95%; judged, those months would ask a calibrated model to be retrained."""
    for segment in found:
        if segment.month and matured_by is not None:
            month_end = pd.Period(segment.month, freq="M").end_time.date()
            segment.maturing = month_end > matured_by


def recent_window(
    session: Session, since: dt.date | None, recent_days: int
) -> tuple[str, str] | None:
    """The first and last denial dates of the recent window: from ``since``, else the
    ``recent_days`` ending with the newest denial date in the records (the data's time, so a
    replayed or backfilled history is judged in its own months)."""
    return window_ending(newest_denial_date(session), since, recent_days)


def window_ending(
    newest: dt.date | None, since: dt.date | None, recent_days: int
) -> tuple[str, str] | None:
    """:func:`recent_window` once the newest denial date is known."""
    if newest is None:
        return None
    start = since or newest - dt.timedelta(days=recent_days - 1)
    return start.isoformat(), newest.isoformat()


# The denial facts drift reads, each extracted in SQL: decoding every whole JSON document in
# Python took most of the read. Code lists come as their JSON text.
FACTS_READ = (
    "payer_id",
    "payer_type",
    "claim_type",
    "specialty",
    "procedure_code",
    "billed_amount",
    "denied_amount",
    "carc_codes",
    "rarc_codes",
)
FACT_NUMBERS = ("billed_amount", "denied_amount")


def recent_denials(
    session: Session, window: tuple[str, str], limit: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A bounded read of the newest ``limit`` denials of the window: their stored facts, and
    their scores under the names the drift reference uses."""
    facts = {
        name: (
            ScoreRecord.facts[name].as_float()
            if name in FACT_NUMBERS
            else ScoreRecord.facts[name].as_string()
        ).label(name)
        for name in FACTS_READ
    }
    scores = {
        name: getattr(LatestScore, column).label(name) for name, column in drift.SCORES.items()
    }
    query = (
        select(*facts.values(), *scores.values())
        .join(ScoreRecord, ScoreRecord.id == LatestScore.score_id)
        .where(LatestScore.denial_date >= window[0], LatestScore.denial_date <= window[1])
        .order_by(LatestScore.denial_date.desc())
        .limit(limit)
    )
    frame = pd.DataFrame(session.execute(query).all(), columns=[*facts, *scores])
    for name in ("carc_codes", "rarc_codes"):
        frame[name] = [_code_list(text) for text in frame[name]]
    return frame[list(facts)], frame[list(scores)].astype(float)


def _code_list(text: str | None) -> list[str]:
    """A stored code list from its JSON text, ``["CO-197", "N54"]``. Codes hold no quotes or
    commas, and splitting is twenty times cheaper than a JSON decode per row."""
    if not text:
        return []
    return [code.strip().strip('"') for code in text.strip("[] ").split(",") if code.strip()]


def drift_report(
    reference: Mapping[str, Any] | None,
    facts: pd.DataFrame,
    scores: pd.DataFrame,
    window: tuple[str, str] | None,
    min_rows: int = 1,
) -> DriftReport:
    """PSI of each watched feature and score between the training rows and the recent ones,
    largest first. A model trained before references were kept shows "no reference"; fewer
    than ``min_rows`` recent denials show why nothing was compared."""
    if not reference:
        return DriftReport(note="no reference: the champion was trained before drift references")
    if window is None or facts.empty:
        return DriftReport(note="no recent denials to compare")
    if len(facts) < min_rows:
        note = f"only {len(facts)} recent denials; drift is measured from {min_rows}"
        return DriftReport(note, window[0], window[1], len(facts))
    values = drift.feature_values(facts)
    items = [
        _drift_item(name, "feature", bins, values[name])
        for name, bins in reference.get("features", {}).items()
        if name in values
    ] + [
        _drift_item(name, "score", bins, scores[name].to_numpy(float))
        for name, bins in reference.get("scores", {}).items()
        if name in scores
    ]
    items.sort(key=lambda item: item.psi, reverse=True)
    return DriftReport(None, window[0], window[1], len(facts), items)


def _drift_item(name: str, kind: str, reference: Mapping[str, Any], values: Any) -> FeatureDrift:
    recent = drift.recent_shares(reference, np.asarray(values))
    training = list(reference["shares"])
    return FeatureDrift(
        name=name,
        kind=kind,
        psi=drift.population_stability(training, recent),
        bins=drift.bin_labels(reference),
        training_shares=training,
        recent_shares=recent,
    )


# ---------------------------------------------------------------------------- recommendation


def retrain_reasons(
    found: Sequence[Segment], drift_found: DriftReport, thresholds: Thresholds
) -> list[Reason]:
    """Every figure past its threshold: calibration and AUC where a segment's month has matured
    and it has at least ``min_outcomes`` resolved denials, root-cause accuracy where it has as
    many reviews, and PSI of each watched feature and score over the recent window."""
    reasons = []
    for segment in found:
        judged = segment.resolved >= thresholds.min_outcomes and not segment.maturing
        if judged and segment.ece is not None and segment.ece > thresholds.max_ece:
            reasons.append(_reason("ece", segment, segment.ece, thresholds.max_ece))
        if judged and segment.roc_auc is not None and segment.roc_auc < thresholds.min_auc:
            reasons.append(_reason("roc_auc", segment, segment.roc_auc, thresholds.min_auc))
        accuracy, floor = segment.root_cause_accuracy, thresholds.min_root_cause_accuracy
        reviewed_enough = segment.reviewed >= thresholds.min_outcomes
        if reviewed_enough and accuracy is not None and accuracy < floor:
            reasons.append(_reason("root_cause_accuracy", segment, accuracy, floor))
    window = f"{drift_found.recent_from} to {drift_found.recent_to}"
    reasons += [
        Reason("psi", window, ALL_PAYER_TYPES, item.psi, thresholds.max_psi, item.name)
        for item in drift_found.items
        if item.psi > thresholds.max_psi
    ]
    return reasons


def _reason(metric: str, segment: Segment, value: float, threshold: float) -> Reason:
    return Reason(metric, segment.month, segment.payer_type, value, threshold)


def monitor_models(
    session: Session,
    *,
    report: Mapping[str, Any] | None,
    version: str | None,
    reference: Mapping[str, Any] | None,
    thresholds: Thresholds,
    since: dt.date | None = None,
    recent_days: int = 90,
    drift_rows: int = 20_000,
) -> ModelMonitoring:
    """The monitoring of the champion (its evaluation ``report`` and drift ``reference``) on
    the records of ``session``, from ``since`` when given."""
    found = segments(
        outcome_groups(session, since),
        root_cause_reviews(session, since),
        top_decile_dollars(session, since),
    )
    # One read of the data's today serves both: the months judged and the drift window.
    newest = newest_denial_date(session)
    matured_by = None if newest is None else newest - dt.timedelta(days=thresholds.maturity_days)
    mark_maturing(found, matured_by)
    window = window_ending(newest, since, recent_days)
    facts, scores = (
        recent_denials(session, window, drift_rows)
        if window and reference
        else (pd.DataFrame(), pd.DataFrame())
    )
    drift_found = drift_report(reference, facts, scores, window, MIN_DRIFT_ROWS)
    return ModelMonitoring(
        segments=found,
        training=None if report is None else training_figures(report, version),
        drift=drift_found,
        reasons=retrain_reasons(found, drift_found, thresholds),
        thresholds=thresholds,
        matured_by=None if matured_by is None else matured_by.isoformat(),
    )


def _finite(value: Any) -> Any:
    """NaN and infinities as null, so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


# ---------------------------------------------------------------------------- the champion


class NoChampion(LookupError):
    """The registry has no version behind the champion alias."""


@dataclass(frozen=True)
class Champion:
    """What monitoring compares with: the champion's version, its evaluation report and its
    drift reference (None for a model trained before references were kept)."""

    version: str
    report: dict[str, Any]
    reference: dict[str, Any] | None


def registry_champion() -> Champion:
    """The champion as the registry holds it (MLflow tracking must be configured first); loads
    the model once for its drift reference."""
    from serving.model_card import registry_cards
    from training.tracking import CHAMPION, MODEL_NAME, load_triage_model

    card = registry_cards()[CHAMPION]
    if card is None:
        raise NoChampion(
            f"no version of {MODEL_NAME} is champion: train and promote one first "
            "(denial-triage train, then denial-triage promote)"
        )
    model = load_triage_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    return Champion(card.version, card.run.report, getattr(model, "drift_reference", None))


# ---------------------------------------------------------------------------- as text


def summary_lines(result: ModelMonitoring, segments_shown: int = 36) -> list[str]:
    """The monitoring as the command prints it: training figures, a table of segments (newest
    months first), the top drifting features and the recommendation with its reasons."""
    lines = [*_training_lines(result.training), ""]
    lines += _segment_table(result.segments[:segments_shown])
    if len(result.segments) > segments_shown:
        lines.append(f"... {len(result.segments) - segments_shown} older segments: use --json")
    lines += ["", *_drift_lines(result.drift), "", *_recommendation_lines(result)]
    return lines


def _training_lines(training: TrainingFigures | None) -> list[str]:
    if training is None:
        return ["Champion: no training figures."]
    window = training.window
    trained = (
        f", trained on denials of {window['window.first_denial']} to {window['window.last_denial']}"
        if {"window.first_denial", "window.last_denial"} <= set(window)
        else ""
    )
    return [
        f"Champion version {training.version}{trained}.",
        f"Training (its test months): ROC AUC {_fixed(training.roc_auc)}, ECE "
        f"{_fixed(training.ece)}, root-cause accuracy {_fixed(training.root_cause_accuracy)}, "
        f"top decile of priority {_percent(training.top_decile_share)} of recovered dollars.",
    ]


def _segment_table(found: Sequence[Segment]) -> list[str]:
    if not found:
        return ["No resolved or reviewed denials in the records yet."]
    header = (
        f"{'month':<8} {'payer type':<20} {'resolved':>9} {'ECE':>6} {'ROC AUC':>8} "
        f"{'reviewed':>9} {'root cause':>10} {'top decile $':>13}"
    )
    rows = [
        f"{s.month:<8} {plain_label('payer_type', s.payer_type)[:20]:<20} {s.resolved:>9,} "
        f"{_fixed(s.ece):>6} {_fixed(s.roc_auc):>8} {s.reviewed:>9,} "
        f"{_fixed(s.root_cause_accuracy):>10} {_percent(s.top_decile_share):>13}"
        f"{'  maturing' if s.maturing else ''}"
        for s in found
    ]
    notes = (
        [
            "maturing: denials not all past the maturity span yet; their ECE and ROC AUC lean "
            "on the quick outcomes and are not judged"
        ]
        if any(s.maturing for s in found)
        else []
    )
    return [header, *rows, *notes]


def _drift_lines(report: DriftReport) -> list[str]:
    if report.note:
        return [f"Drift: {report.note}."]
    lines = [
        f"Drift of {report.recent_rows:,} denials of {report.recent_from} to {report.recent_to} "
        "from the training rows (PSI; over 0.25 is a shifted population):"
    ]
    for item in [*report.top(), *(i for i in report.items if i.kind == "score")]:
        lines.append(f"  {item.kind:<8} {item.name:<28} {item.psi:>7.3f}")
    return lines


def _recommendation_lines(result: ModelMonitoring) -> list[str]:
    if not result.retrain:
        return ["Recommendation: keep the champion; no figure is past its threshold."]
    return ["Recommendation: retrain.", *(f"  - {reason.text}" for reason in result.reasons)]


def _fixed(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"
