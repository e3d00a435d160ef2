"""Declarative model specs (``models/*.yaml``): label minimum, hyperparameters and gates.

Which rows and target each task learns from is training's (``training.fit``), not a spec's:
a field the code does not read would only claim a choice it does not make.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field

Task = Literal["root_cause", "recovery", "preventable"]
TASKS: tuple[Task, ...] = get_args(Task)  # the one list of the models, in scoring order


class Gate(BaseModel):
    """A bound a metric must respect for the model to be promoted."""

    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None

    def failure(self, metric: str, value: float | None) -> str | None:
        """Why the value fails the gate, or None when it passes."""
        if value is None:
            return f"{metric} was not measured"
        if self.min is not None and value < self.min:
            return f"{metric} {value:.4f} is below the gate {self.min}"
        if self.max is not None and value > self.max:
            return f"{metric} {value:.4f} is above the gate {self.max}"
        return None


class ModelSpec(BaseModel):
    """One task's spec, as written in ``models/<task>.yaml``."""

    model_config = ConfigDict(extra="forbid")
    task: Task
    calibration_share: float = Field(0.15, gt=0, lt=0.5)
    # Time folds whose out-of-fold margins the Platt scaling is fitted on, each predicting a
    # newest slice of calibration_share; folds x share must leave rows for the oldest fold.
    calibration_folds: int = Field(1, ge=1, le=3)
    # Stop adding trees after this many rounds without a better log loss on the newest slice
    # (the validation slice inside the training rows); None: n_estimators as written.
    early_stopping_rounds: int | None = Field(None, ge=1)
    # Fewer training rows carrying this model's label than this and the model is not fitted:
    # a site's history often labels root causes for a few percent of its denials only.
    min_labels: int = Field(..., ge=1)
    # Root cause only: the model's top-class probability from which its cause routes a denial
    # the codes would send elsewhere; below it such a denial goes to the triage queue.
    routing_confidence: float | None = Field(None, gt=0, lt=1)
    # Root cause only: the top-class probability from which the model is sure enough that its
    # clinical or compliance category, or a high denied amount, needs no extra review.
    review_confidence: float | None = Field(None, gt=0, lt=1)
    hyperparameters: dict[str, Any]
    share_hyperparameters: dict[str, Any] | None = None
    gates: dict[str, Gate]

    def gate_failures(self, metrics: dict[str, float]) -> list[str]:
        """Every gate the metrics fail, in the words a reviewer reads."""
        failures = (gate.failure(name, metrics.get(name)) for name, gate in self.gates.items())
        return [f"{self.task}: {failure}" for failure in failures if failure]


def load_specs() -> dict[str, ModelSpec]:
    """The three specs shipped in ``models/``."""
    folder = resources.files("models")
    return {
        task: ModelSpec.model_validate(yaml.safe_load(folder.joinpath(f"{task}.yaml").read_text()))
        for task in TASKS
    }
