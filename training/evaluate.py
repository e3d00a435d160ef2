"""Honest evaluation on the newest months, side by side with the obvious alternatives.

Root cause is compared with the governed code mapping, the best code-set lookup and a logistic
regression; recovery and preventability are measured for discrimination and calibration; and
the priority score is measured the way the business sees it: dollars recovered when a team
works in its order until 10/20/30% of the hours every denial would take are spent (teams have
hours), and when it works the top 10/20/30% of denials, against largest-amount-first,
expected-dollars-only (the recovery model's expected dollars, without cost, hours or urgency),
oldest-first, nearest-deadline-first and the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from features.contract import ROOT_CAUSES
from features.pipeline import reference_dates
from training import intervals, metrics, plots
from training.baselines import CodeSetLookup
from training.fit import labelled_rows, preventable_target, recovered_target, resolved_rows
from training.specs import ModelSpec
from training.triage_model import TriageModel

PRIORITY = "priority_score"
LOGISTIC_BASELINE_ROWS = 200_000  # enough for a stable linear baseline; keeps 1M-row runs fast
PROMOTION_METRIC = "prioritization.rankings.priority_score.top_20pct.dollars_captured"
PROMOTION_SHARE = 0.2  # the capacity PROMOTION_METRIC is measured at
# Rankings the priority must beat at PROMOTION_SHARE of the hours (models/recovery.yaml gates).
EXPECTED_DOLLARS_ONLY = "expected_dollars_only"
GATED_BASELINES = ("largest_amount_first", EXPECTED_DOLLARS_ONLY)
ROOT_CAUSE_CODES = {cause: code for code, cause in enumerate(ROOT_CAUSES)}


@dataclass
class Evaluation:
    """Everything measured on one test set; ``report`` is what ``evaluate --json`` prints."""

    report: dict[str, Any]
    scores: pd.DataFrame
    curves: dict[str, pd.DataFrame]
    # Per section, the per-row arrays its headline figures are computed from (root-cause
    # classes as codes), on the rows the report measures: what bootstrap intervals resample.
    samples: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def flat_metrics(self) -> dict[str, float]:
        """Numeric leaves as ``section.metric`` names, for MLflow (which refuses ``%``)."""
        return {name.replace("%", "pct"): value for name, value in _flatten(self.report)}

    def task_metrics(self, task: str) -> dict[str, float]:
        """The metrics a task's gates name (``roc_auc``, ``macro_f1``...)."""
        return {k: v for k, v in self.report[task].items() if isinstance(v, int | float)}

    def gate_failures(self, specs: dict[str, ModelSpec]) -> list[str]:
        """Gates failed by the models evaluated; a model left out of training (too few labels)
        has no gates: its scores fall back to the mapping and ask for review."""
        return [
            failure
            for task, spec in specs.items()
            if task in self.report
            for failure in spec.gate_failures(self.task_metrics(task))
        ]


@dataclass(frozen=True)
class Headline:
    """How one headline figure is computed from an evaluation's per-row arrays: the section's
    columns, those every scorer shares (the truth) first and the scorer's own last."""

    section: str
    statistic: intervals.Statistic
    shared: tuple[str, ...]
    scorer: str


_F1 = intervals.macro_f1(len(ROOT_CAUSES))
_ECE = intervals.expected_calibration_error()
_LABEL = metrics.capacity_label(PROMOTION_SHARE).replace("%", "pct")


def _root(statistic: intervals.Statistic, scorer: str) -> Headline:
    return Headline("root_cause", statistic, ("truth",), scorer)


def _ranking(statistic: intervals.Statistic, ranking: str) -> Headline:
    return Headline("prioritization", statistic, ("recovered",), ranking)


def _ranking_in_hours(statistic: intervals.Statistic, ranking: str) -> Headline:
    return Headline("prioritization", statistic, ("recovered", "hours"), ranking)


# Named as in ``Evaluation.flat_metrics`` so a figure and its interval are found by one name.
HEADLINE_METRICS: dict[str, Headline] = {
    "root_cause.accuracy": _root(intervals.accuracy, "model"),
    "root_cause.macro_f1": _root(_F1, "model"),
    **{
        f"root_cause.baselines.{baseline}.{name}": _root(statistic, baseline)
        for baseline in ("logistic_regression", "best_code_lookup")
        for name, statistic in (("accuracy", intervals.accuracy), ("macro_f1", _F1))
    },
    **{
        f"{task}.{name}": Headline(task, statistic, ("truth",), "probability")
        for task in ("recovery", "preventable")
        for name, statistic in (
            ("roc_auc", intervals.roc_auc),
            ("brier", intervals.brier),
            ("expected_calibration_error", _ECE),
        )
    },
    **{
        f"prioritization.rankings.{ranking}.{_LABEL}.share_of_oracle": _ranking(
            intervals.share_of_oracle(PROMOTION_SHARE), ranking
        )
        for ranking in (PRIORITY, "largest_amount_first")
    },
    **{
        f"prioritization.by_hours.rankings.{ranking}.{_LABEL}.share_of_oracle": _ranking_in_hours(
            intervals.share_of_oracle_in_hours(PROMOTION_SHARE), ranking
        )
        for ranking in (PRIORITY, *GATED_BASELINES)
    },
    PROMOTION_METRIC: _ranking(intervals.dollars_captured(PROMOTION_SHARE), PRIORITY),
}


def headline_arrays(
    evaluation: Evaluation, name: str
) -> tuple[list[np.ndarray], np.ndarray] | None:
    """The shared arrays and the scorer's array a headline figure is computed from, or None
    when the evaluation did not measure it (a model not fitted, fewer than two rows)."""
    headline = HEADLINE_METRICS[name]
    sample = evaluation.samples.get(headline.section)
    if sample is None or len(sample[headline.scorer]) < 2:
        return None
    return [sample[column] for column in headline.shared], sample[headline.scorer]


def paired_differences(
    candidate: Evaluation,
    incumbent: Evaluation,
    names: tuple[str, ...],
    *,
    seed: int = 7,
    resamples: int = intervals.RESAMPLES,
) -> dict[str, intervals.Interval]:
    """Per headline figure both measured, candidate minus incumbent on the same rows with its
    paired bootstrap interval."""
    differences = {}
    for offset, name in enumerate(names):
        ours, theirs = headline_arrays(candidate, name), headline_arrays(incumbent, name)
        if ours is None or theirs is None:
            continue
        (shared, mine), (other_shared, other) = ours, theirs
        if any(not np.array_equal(a, b) for a, b in zip(shared, other_shared, strict=True)):
            raise ValueError(f"{name}: the two evaluations were not measured on the same rows")
        differences[name] = intervals.paired_difference(
            HEADLINE_METRICS[name].statistic,
            shared,
            [mine],
            [other],
            resamples=resamples,
            seed=seed + offset,
        )
    return differences


def evaluate_model(
    model: TriageModel, train: pd.DataFrame, test: pd.DataFrame, *, seed: int = 7
) -> Evaluation:
    """Score the test months and measure every fitted model and its baselines on them, each
    on the test rows that carry its label (a model trained without enough labels is left out
    of the report)."""
    scores = model.score(test)
    samples: dict[str, dict[str, np.ndarray]] = {}
    priority_report, curves = _prioritization(model, test, scores, samples)
    report = {
        "rows": {
            "train": len(train),
            "test": len(test),
            "test_resolved": int(resolved_rows(test).sum()),
            **{
                f"test_labelled_{task}": int(labelled_rows(test, task).sum())
                for task in model.fitted_tasks
            },
        },
        **_model_sections(model, train, test, scores, seed, samples),
        "prioritization": priority_report,
        "model": {
            "mapping_version": model.mapping_version,
            **{k: v for k, v in model.metadata.items() if isinstance(v, str | int | float)},
        },
    }
    _baseline_gains(report)
    return Evaluation(report, scores, curves, samples)


def _model_sections(
    model: TriageModel,
    train: pd.DataFrame,
    test: pd.DataFrame,
    scores: pd.DataFrame,
    seed: int,
    samples: dict[str, dict[str, np.ndarray]],
) -> dict[str, Any]:
    """One report section per fitted model, each measured on the test rows with its label."""
    sections: dict[str, Any] = {}
    if model.root_cause_model is not None:
        sections["root_cause"] = _root_cause(train, test, scores, seed, samples)
        sections["routing"] = _routing(model, test, scores)
    sections["recovery"] = _binary(
        recovered_target(test), scores["recovery_probability"], resolved_rows(test)
    )
    samples["recovery"] = _binary_sample(
        recovered_target(test), scores["recovery_probability"], resolved_rows(test)
    )
    if model.preventable_model is not None:
        sections["preventable"] = _binary(
            preventable_target(test),
            scores["preventable_probability"],
            labelled_rows(test, "preventable"),
        )
        samples["preventable"] = _binary_sample(
            preventable_target(test),
            scores["preventable_probability"],
            labelled_rows(test, "preventable"),
        )
    return sections


def _baseline_gains(report: dict[str, Any]) -> None:
    """What the models add over what a team has without them, as figures gates can bound:
    root cause over the logistic regression and the best code lookup, the priority over
    largest-amount-first and expected-dollars-only within 20% of the hours, and over
    largest-amount-first at 20% of denials (kept with recovery, the model it rests on)."""
    root = report.get("root_cause", {})
    if "baselines" in root:
        for baseline in ("logistic_regression", "best_code_lookup"):
            for name in ("accuracy", "macro_f1"):
                root[f"{name}_gain_over_{baseline}"] = (
                    root[name] - root["baselines"][baseline][name]
                )
    label = metrics.capacity_label(PROMOTION_SHARE)
    rankings = report["prioritization"]["rankings"]
    report["recovery"]["priority_top_20pct_gain_over_largest_amount_first"] = (
        rankings[PRIORITY][label]["share_of_oracle"]
        - rankings["largest_amount_first"][label]["share_of_oracle"]
    )
    in_hours = report["prioritization"]["by_hours"]["rankings"]
    for baseline in GATED_BASELINES:
        report["recovery"][f"priority_top_20pct_hours_gain_over_{baseline}"] = (
            in_hours[PRIORITY][label]["share_of_oracle"]
            - in_hours[baseline][label]["share_of_oracle"]
        )


# ---------------------------------------------------------------------------- root cause


def _root_cause(
    train: pd.DataFrame,
    test: pd.DataFrame,
    scores: pd.DataFrame,
    seed: int,
    samples: dict[str, dict[str, np.ndarray]],
) -> dict[str, Any]:
    """The model and its baselines on the test rows with a root_cause label, the baselines
    learning from the training rows with one."""
    labelled = labelled_rows(test, "root_cause")
    train = train[labelled_rows(train, "root_cause")]
    test, scores = test[labelled], scores[labelled]
    if test.empty:
        return {"rows": 0}  # gates then read "not measured": nothing to promote on
    truth = test["root_cause"].to_numpy(dtype=object)
    labels = list(ROOT_CAUSES)
    model = metrics.multiclass_summary(truth, scores["root_cause"].to_numpy(dtype=object), labels)
    lookup = CodeSetLookup().fit(train).predict(test)
    baselines = {
        "governed_mapping": scores["mapped_root_cause"].to_numpy(dtype=object),
        "best_code_lookup": lookup,
        "logistic_regression": _logistic_baseline(train, test, seed),
    }
    summaries = {
        name: metrics.multiclass_summary(truth, pred, labels) for name, pred in baselines.items()
    }
    predicted = {"model": scores["root_cause"].to_numpy(dtype=object), **baselines}
    samples["root_cause"] = {
        name: _root_cause_codes(values) for name, values in {"truth": truth, **predicted}.items()
    }
    return {
        "rows": len(test),
        "accuracy": model["accuracy"],
        "macro_f1": model["macro_f1"],
        "accuracy_gain_over_best_code_lookup": model["accuracy"]
        - summaries["best_code_lookup"]["accuracy"],
        "per_class": model["per_class"],
        "confusion_matrix": model["confusion_matrix"],
        "labels": labels,
        "baselines": {
            name: {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"]}
            for name, s in summaries.items()
        },
    }


def _routing(model: TriageModel, test: pd.DataFrame, scores: pd.DataFrame) -> dict[str, Any]:
    """Owner queue and action path against the route of the true root cause, routing by the
    model (a denial sent to triage counts as wrong) and by the code mapping alone, on the test
    rows with a root_cause label. The true cause's route is the codes' where the codes give
    that cause (they refine it), else the cause's own route in the mapping."""
    labelled = labelled_rows(test, "root_cause")
    if not labelled.any():
        return {"rows": 0}
    truth, scores = test.loc[labelled, "root_cause"].to_numpy(dtype=object), scores[labelled]
    policies = model.features.mapping_.root_causes
    codes_agree = truth == scores["mapped_root_cause"].to_numpy(dtype=object)
    right = {
        part: np.where(
            codes_agree,
            scores[f"mapped_{part}"].to_numpy(dtype=object),
            [getattr(policies[cause].route, part) for cause in truth],
        )
        for part in ("owner_queue", "action_path")
    }
    triage = (scores["routing_basis"] == "triage").to_numpy()
    report: dict[str, Any] = {"rows": int(labelled.sum()), "triage_share": float(triage.mean())}
    for name, prefix in (("model", ""), ("mapping", "mapped_")):
        for part, expected in right.items():
            routed = scores[f"{prefix}{part}"].to_numpy(dtype=object)
            report[f"{name}_{part}_accuracy"] = float((routed == expected).mean())
    return report


def _root_cause_codes(causes: np.ndarray) -> np.ndarray:
    """Root causes as contract codes (-1 for anything outside the contract's list)."""
    return np.array([ROOT_CAUSE_CODES.get(c, -1) for c in causes], dtype=np.int64)


def _logistic_baseline(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> np.ndarray:
    """Multinomial logistic regression on the codes and fields a linear model can use."""
    sample = train.sample(min(len(train), LOGISTIC_BASELINE_ROWS), random_state=seed)
    pipeline = make_pipeline(
        ColumnTransformer(
            [
                (
                    "categories",
                    OneHotEncoder(handle_unknown="ignore", min_frequency=20),
                    _LINEAR_CATEGORIES,
                ),
                ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), _LINEAR_NUMBERS),
            ]
        ),
        LogisticRegression(max_iter=300),
    )
    pipeline.fit(_linear_frame(sample), sample["root_cause"])
    return pipeline.predict(_linear_frame(test)).astype(object)


_LINEAR_CATEGORIES = [
    "primary_adjustment",
    "primary_remark",
    "payer_id",
    "payer_type",
    "specialty",
    "procedure_code",
]
_LINEAR_NUMBERS = [
    "eligibility_verified",
    "prior_auth_on_file",
    "log_denied_amount",
    "submission_attempt",
]


def _linear_frame(frame: pd.DataFrame) -> pd.DataFrame:
    remarks = (
        frame["rarc_codes"]
        if "rarc_codes" in frame
        else pd.Series([[]] * len(frame), index=frame.index)
    )
    return pd.DataFrame(
        {
            "primary_adjustment": [c[0] for c in frame["carc_codes"]],
            "primary_remark": [r[0] if len(r) else "none" for r in remarks],
            "payer_id": frame["payer_id"].astype(str),
            "payer_type": frame["payer_type"].astype(str),
            "specialty": frame.get("specialty", pd.Series("unknown", index=frame.index))
            .fillna("unknown")
            .astype(str),
            "procedure_code": frame.get("procedure_code", pd.Series("unknown", index=frame.index))
            .fillna("unknown")
            .astype(str),
            "eligibility_verified": _optional_float(frame, "eligibility_verified"),
            "prior_auth_on_file": _optional_float(frame, "prior_auth_on_file"),
            "log_denied_amount": np.log1p(frame["denied_amount"].to_numpy(float)),
            "submission_attempt": _optional_float(frame, "submission_attempt"),
        },
        index=frame.index,
    )


def _optional_float(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name].astype("Float64")).to_numpy(float, na_value=np.nan)


# ---------------------------------------------------------------------------- binary tasks


def _binary(truth: np.ndarray, probability: pd.Series, rows: np.ndarray | None) -> dict[str, Any]:
    """Discrimination and calibration; ``rows`` limits to labelled rows (recovery: resolved)."""
    keep = np.ones(len(truth), dtype=bool) if rows is None else rows
    if not keep.any():
        return {"rows": 0}  # gates then read "not measured": nothing to promote on
    summary = metrics.binary_summary(truth[keep], probability.to_numpy()[keep])
    table = metrics.reliability_table(truth[keep], probability.to_numpy()[keep])
    return {
        "roc_auc": summary["roc_auc"],
        "brier": summary["brier"],
        "expected_calibration_error": summary["ece"],
        "log_loss": summary["log_loss"],
        "rows": summary["rows"],
        "positive_rate": summary["positive_rate"],
        "reliability": table.replace({np.nan: None}).to_dict(orient="records"),
    }


def _binary_sample(
    truth: np.ndarray, probability: pd.Series, rows: np.ndarray
) -> dict[str, np.ndarray]:
    return {
        "truth": truth[rows].astype(np.int64),
        "probability": probability.to_numpy(dtype=float)[rows],
    }


# ---------------------------------------------------------------------------- prioritization


def _prioritization(
    model: TriageModel,
    test: pd.DataFrame,
    scores: pd.DataFrame,
    samples: dict[str, dict[str, np.ndarray]],
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Dollars captured at team capacity by each ranking, over resolved test denials: within a
    share of the hours (each denial's effort hours, as scored) and within a share of the
    denials. ``net_dollars_per_hour`` is the priority without urgency, to show what urgency
    costs on a history (whose outcomes happened whatever the order)."""
    resolved = resolved_rows(test)
    frame, worked = test[resolved], scores[resolved]
    recovered = frame["recovered_amount"].fillna(0.0).to_numpy(float)
    hours = worked["effort_hours"].to_numpy(float)
    deadlines = model.features.payer_rules_.deadline_frame(frame)
    as_of = reference_dates(frame).to_numpy()
    net_per_hour = worked["expected_net_dollars"].to_numpy(float) / hours
    rankings = {
        PRIORITY: worked[PRIORITY].to_numpy(float),
        "net_dollars_per_hour": np.where(worked["workable"].to_numpy(bool), net_per_hour, -np.inf),
        EXPECTED_DOLLARS_ONLY: worked["expected_recovered_dollars"].to_numpy(float),
        **metrics.baseline_rankings(frame, deadlines, as_of),
    }
    report = metrics.ranking_report(rankings, recovered)
    report["by_hours"] = metrics.hours_ranking_report(rankings, recovered, hours)
    samples["prioritization"] = {"recovered": recovered, "hours": hours, **rankings}
    curves = {
        name: metrics.recovery_at_capacity_curve(score, recovered)
        for name, score in {**rankings, metrics.ORACLE: recovered}.items()
    }
    return report, curves


# ---------------------------------------------------------------------------- figures


def write_figures(
    model: TriageModel, evaluation: Evaluation, test: pd.DataFrame, folder: Path
) -> list[Path]:
    """Confusion matrix, calibration curves, recovery at capacity and a SHAP summary, for
    the models evaluated (no confusion matrix without a measured root-cause model)."""
    folder.mkdir(parents=True, exist_ok=True)
    report = evaluation.report
    reliability = {
        task: pd.DataFrame(report[task]["reliability"])
        for task in ("recovery", "preventable")
        if "reliability" in report.get(task, {})
    }
    figures = [
        plots.plot_reliability(reliability, folder / "calibration.png", outcome="outcome"),
        plots.plot_recovery_at_capacity(evaluation.curves, folder / "recovery_at_capacity.png"),
        shap_summary(model, test, folder / "shap_summary_recovery.png"),
    ]
    root = report.get("root_cause", {})
    if "confusion_matrix" in root:
        matrix = np.array(root["confusion_matrix"])
        path = folder / "confusion_matrix.png"
        figures.insert(0, plots.plot_confusion_matrix(matrix, root["labels"], path))
    return figures


def shap_summary(model: TriageModel, frame: pd.DataFrame, path: Path, rows: int = 2_000) -> Path:
    """SHAP beeswarm of the recovery model on a sample of rows (shap's own summary plot)."""
    import matplotlib.pyplot as plt
    import shap

    sample = frame.sample(min(rows, len(frame)), random_state=0)
    matrix = model.features.transform(sample)
    contributions = np.asarray(model.recovery_model.predict(matrix, pred_contrib=True))[:, :-1]
    # shap draws on pyplot's current figure; the backend is left as the caller has it (a
    # notebook keeps its inline display) and only this figure is closed.
    figure = plt.figure()
    shap.summary_plot(
        contributions * model.recovery_calibration.slope,
        matrix,
        feature_names=list(model.features.feature_names_),
        show=False,
        max_display=15,
        rng=np.random.default_rng(0),  # the dots' jitter, seeded without the global RNG
    )
    figure = plt.gcf()
    figure.suptitle("What moves the recovery probability (log-odds)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _flatten(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    items: list[tuple[str, float]] = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items.extend(_flatten(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
            items.append((name, float(value)))
    return items
