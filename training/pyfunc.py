"""The MLflow pyfunc flavour of the triage model.

The registered model is one pyfunc holding a joblib bundle of :class:`TriageModel`: the fitted
feature pipeline, the three LightGBM models with their calibration, and the mapping and payer
rules they were fitted with. ``predict`` takes contract rows and returns one row of scores per
denial; with ``params={"explain": True}`` it adds each model's SHAP explanation as JSON.
Serving unwraps the same object (``unwrap_python_model().triage``) to score and explain
without a second implementation.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import joblib
import mlflow.pyfunc
import pandas as pd

from features.contract import validate
from features.pipeline import live_scoring_date
from training.triage_model import TriageModel

ARTIFACT_KEY = "triage_model"
LIST_OUTPUTS = ("unseen_codes", "review_reasons", "review_reason_codes")


class ContractViolation(ValueError):
    """Rows sent for scoring break the data contract; the message lists every error."""


class TriagePyfunc(mlflow.pyfunc.PythonModel):
    """Loads the bundled :class:`TriageModel` and scores contract rows."""

    triage: TriageModel

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.triage = joblib.load(context.artifacts[ARTIFACT_KEY])

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        frame = checked_frame(model_input)
        today = live_scoring_date()  # the pyfunc scores live: rows without as_of_date are seen now
        scores = self.triage.score(frame, today)
        output = serializable_scores(scores)
        output.insert(0, "denial_id", frame["denial_id"].to_numpy())
        if (params or {}).get("explain"):
            top = int((params or {}).get("top", 5))
            explanations = self.triage.explain(frame, top=top, today=today)
            output["explanation"] = [
                json.dumps({task: asdict(e) for task, e in row.items()}) for row in explanations
            ]
        return output


def checked_frame(model_input: pd.DataFrame) -> pd.DataFrame:
    """Coerce rows through the contract; refuse them all if any breaks it."""
    result = validate(model_input)
    if not result.ok:
        raise ContractViolation("; ".join(str(e) for e in result.errors[:50]))
    return result.frame


def serializable_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Scores as plain columns: lists joined with ``; ``, dates as ISO text."""
    output = scores.copy()
    for name in LIST_OUTPUTS:
        output[name] = ["; ".join(items) for items in output[name]]
    output["deadline"] = pd.to_datetime(output["deadline"]).dt.strftime("%Y-%m-%d")
    return output.reset_index(drop=True)
