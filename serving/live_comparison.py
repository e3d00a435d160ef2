"""Champion and challenger compared on the same live denials, from the shadow scores.

Each shadow score holds the challenger's answer beside the champion's answer to the same
request (:class:`serving.records.ShadowScore`). A denial scored several times counts once, by
its newest pair. Where outcomes have arrived (reviewer feedback, ``link-outcomes``), each
model's recovery probability is measured on the resolved denials (ROC AUC, Brier; recovered
means more than $0 recovered, as training labels it) and its root cause on the reviewed ones
(accuracy against the corrected or confirmed category). The model page and
``denial-triage promote --live`` show these figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sqlalchemy.orm import Session

from serving import repository
from training.metrics import binary_summary


@dataclass(frozen=True)
class OutcomeFigures:
    """One model's figures on the compared denials whose outcomes are known."""

    resolved: int  # denials with a final resolution
    recovery_roc_auc: float | None  # None without both outcomes among them
    recovery_brier: float | None
    reviewed: int  # denials whose root cause a reviewer corrected or confirmed
    root_cause_accuracy: float | None


@dataclass(frozen=True)
class LiveComparison:
    """Champion and challenger on the same live denials."""

    challenger_version: str
    champion_versions: tuple[str, ...]  # the champions that answered while it was in shadow
    denials: int
    root_cause_agreement: float | None
    champion_mean_recovery: float | None
    challenger_mean_recovery: float | None
    priority_rank_correlation: float | None  # Spearman's, of the two priority scores
    champion: OutcomeFigures
    challenger: OutcomeFigures

    def lines(self) -> list[str]:
        """The comparison in a few lines of text, for the command line."""
        champions = ", ".join(self.champion_versions)
        return [
            f"live: challenger version {self.challenger_version} in shadow beside champion "
            f"version {champions} on {self.denials:,} denials",
            f"  root cause agreement {_share(self.root_cause_agreement)}; mean recovery "
            f"probability {_number(self.champion_mean_recovery)} (champion) / "
            f"{_number(self.challenger_mean_recovery)} (challenger); priority rank "
            f"correlation {_number(self.priority_rank_correlation)}",
            _outcome_line("champion", self.champion),
            _outcome_line("challenger", self.challenger),
        ]


# The columns of the shadow pairs each model's figures are read from.
CHAMPION_COLUMNS = {
    "root_cause": "champion_root_cause",
    "recovery_probability": "champion_recovery_probability",
    "priority": "champion_priority",
}
CHALLENGER_COLUMNS = {name: name for name in CHAMPION_COLUMNS}


def live_comparison(
    session: Session, challenger_version: str | None = None
) -> LiveComparison | None:
    """The comparison of a challenger version's shadow scores (by default the newest
    version in shadow) with the outcomes recorded so far; None when it has no shadow score."""
    version = challenger_version or repository.latest_shadow_version(session)
    if version is None:
        return None
    pairs = repository.shadow_pairs(session, version)
    if pairs.empty:
        return None
    return compare(pairs, repository.feedback_frame(session), version)


def compare(pairs: pd.DataFrame, labels: pd.DataFrame, challenger_version: str) -> LiveComparison:
    """The comparison of shadow pairs (:data:`serving.repository.SHADOW_PAIR_COLUMNS`, oldest
    first) with labels (``denial_id``, ``root_cause``, ``resolution``, ``recovered_amount``,
    as :func:`serving.repository.feedback_frame` gives them)."""
    newest = pairs.drop_duplicates("denial_id", keep="last").reset_index(drop=True)
    outcomes = labels.rename(columns={"root_cause": "reviewed_root_cause"})
    labelled = newest.merge(outcomes, on="denial_id", how="left")
    return LiveComparison(
        challenger_version=challenger_version,
        champion_versions=tuple(sorted(newest["champion_version"].unique(), key=_version_order)),
        denials=len(newest),
        root_cause_agreement=_mean(newest["root_cause"] == newest["champion_root_cause"]),
        champion_mean_recovery=_mean(newest["champion_recovery_probability"]),
        challenger_mean_recovery=_mean(newest["recovery_probability"]),
        priority_rank_correlation=_finite(
            newest["priority"].corr(newest["champion_priority"], method="spearman")
        ),
        champion=outcome_figures(labelled, CHAMPION_COLUMNS),
        challenger=outcome_figures(labelled, CHALLENGER_COLUMNS),
    )


def outcome_figures(labelled: pd.DataFrame, columns: dict[str, str]) -> OutcomeFigures:
    """One model's figures on the labelled pairs; ``columns`` names its answer's columns."""
    resolution = labelled["resolution"]
    resolved = labelled[resolution.notna() & (resolution != "open")]
    recovered = resolved["recovered_amount"].fillna(0.0).astype(float).to_numpy() > 0
    recovery = (
        binary_summary(recovered, resolved[columns["recovery_probability"]].astype(float))
        if len(resolved)
        else {}
    )
    reviewed = labelled[labelled["reviewed_root_cause"].notna()]
    return OutcomeFigures(
        resolved=len(resolved),
        recovery_roc_auc=_finite(recovery.get("roc_auc")),
        recovery_brier=_finite(recovery.get("brier")),
        reviewed=len(reviewed),
        root_cause_accuracy=_mean(
            reviewed[columns["root_cause"]] == reviewed["reviewed_root_cause"]
        ),
    )


def _mean(values: pd.Series) -> float | None:
    return _finite(values.astype(float).mean()) if len(values) else None


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _version_order(version: str) -> tuple[int, str]:
    return len(version), version  # registry versions are numbers: "9" before "10"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _outcome_line(name: str, figures: OutcomeFigures) -> str:
    return (
        f"  {name}: recovery ROC AUC {_number(figures.recovery_roc_auc)}, Brier "
        f"{_number(figures.recovery_brier)} on {figures.resolved:,} resolved; root cause "
        f"accuracy {_share(figures.root_cause_accuracy)} on {figures.reviewed:,} reviewed"
    )
