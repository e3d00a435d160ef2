"""The console command end to end: validate, schema, generate and the mapping check."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from denial_triage.cli import app
from denial_triage.commands import mapping as mapping_command
from denial_triage.commands import train as train_commands
from denial_triage.settings import get_settings
from features.contract import REQUIRED_COLUMNS
from features.mapping import check_mapping
from training.label_queue import QUEUE_COLUMNS

TODAY = dt.date(2026, 12, 10)
GOOD_ROW = {
    "denial_id": "D1",
    "claim_id": "CLM-0001",
    "payer_id": "87726",
    "payer_type": "commercial",
    "claim_type": "professional",
    "service_date": "2026-01-05",
    "denial_date": "2026-02-01",
    "billed_amount": "250.00",
    "denied_amount": "180.50",
    "carc_codes": "CO-197|CO-16",
    "rarc_codes": "N54",
}

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings from a clean environment, with data under tmp_path and a fixed review date."""
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in ("MAPPING_OVERRIDES", "PAYER_RULES_OVERRIDES", "MAPPING_MAX_REVIEW_AGE_DAYS"):
        monkeypatch.delenv(f"DENIAL_TRIAGE_{name}", raising=False)
    monkeypatch.setenv("DENIAL_TRIAGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(mapping_command, "check_mapping", partial(check_mapping, today=TODAY))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------------------- validate


def test_validate_accepts_a_good_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "good.csv", [GOOD_ROW, {**GOOD_ROW, "denial_id": "D2"}])
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: 2 rows, 2 valid, 0 with errors (0 errors)" in result.output


def test_validate_reports_each_bad_row_and_exits_1(tmp_path: Path) -> None:
    rows = [
        GOOD_ROW,
        {**GOOD_ROW, "denial_id": "D2", "carc_codes": "CO16"},
        {**GOOD_ROW, "denial_id": "D3", "denied_amount": "300"},
    ]
    path = write_csv(tmp_path / "bad.csv", rows)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}: row 2, column carc_codes: 'CO16' must match" in result.output
    assert f"{path}: row 3, column denied_amount: exceeds billed_amount" in result.output
    assert f"{path}: 3 rows, 1 valid, 2 with errors (2 errors)" in result.output


def test_validate_reports_a_missing_column_for_the_table(tmp_path: Path) -> None:
    row = {k: v for k, v in GOOD_ROW.items() if k != "carc_codes"}
    result = runner.invoke(app, ["validate", str(write_csv(tmp_path / "bad.csv", [row]))])
    assert result.exit_code == 1
    assert "table, column carc_codes: required column is missing" in result.output


def test_validate_caps_the_listed_errors(tmp_path: Path) -> None:
    rows = [{**GOOD_ROW, "denial_id": f"D{i}", "claim_type": "dental"} for i in range(5)]
    path = write_csv(tmp_path / "bad.csv", rows)
    result = runner.invoke(app, ["validate", str(path), "--max-errors", "2"])
    assert result.exit_code == 1
    assert result.output.count("column claim_type") == 2
    assert "... 3 more errors not shown" in result.output


def test_validate_missing_file_exits_1_with_a_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert "nope.csv: no such file" in result.output


def test_validate_unknown_extension_exits_1_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "denials.xlsx"
    path.write_text("x")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "unknown extension '.xlsx'; use .parquet or .csv" in result.output


# ---------------------------------------------------------------------------- schema, generate


def test_schema_prints_json_of_the_scoring_fields() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["required"] == list(REQUIRED_COLUMNS)
    assert "root_cause" not in schema["properties"]


def test_schema_writes_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "denial.schema.json"
    result = runner.invoke(app, ["schema", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["title"] == "Denial"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_generated_history_validates(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / "tmp" / f"x{suffix}"
    generated = runner.invoke(app, ["generate", "--rows", "500", "--seed", "3", "--out", str(out)])
    assert generated.exit_code == 0, generated.output
    assert "wrote 500 denials" in generated.output
    validated = runner.invoke(app, ["validate", str(out)])
    assert validated.exit_code == 0, validated.output
    assert "500 rows, 500 valid, 0 with errors" in validated.output


def test_generate_with_truth_writes_it_beside_the_history(tmp_path: Path) -> None:
    out = tmp_path / "history.csv"
    args = ["generate", "--rows", "300", "--seed", "3", "--out", str(out), "--with-truth"]
    generated = runner.invoke(app, args)
    assert generated.exit_code == 0, generated.output
    truth = pd.read_parquet(tmp_path / "history.truth.parquet")
    assert truth["denial_id"].tolist() == pd.read_csv(out)["denial_id"].tolist()
    assert truth["true_recovery_probability"].between(0, 1).all()
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0  # the history stays clean


# ---------------------------------------------------------------------------- mapping


def test_mapping_check_passes_for_the_shipped_mapping() -> None:
    result = runner.invoke(app, ["mapping", "check"])
    assert result.exit_code == 0, result.output
    assert "mapping 2026.12.1#" in result.output
    assert "no problems" in result.output


def test_mapping_check_fails_on_a_defective_override(tmp_path: Path) -> None:
    override = tmp_path / "site_mapping.yaml"
    override.write_text(
        'version: "site-1"\nentries:\n'
        '  - {carc: "16", rarc: N54, root_cause: bad_luck, action_path: coding_review,'
        " owner_queue: coding, owner: coder, reviewed_on: 2026-11-20}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["mapping", "check", "--overrides", str(override)])
    assert result.exit_code == 1
    assert f"{override}: entry 1 (line 3): unknown root cause 'bad_luck'" in result.output
    assert "1 problem(s) found" in result.output


def test_mapping_check_reads_the_override_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override = tmp_path / "site_mapping.yaml"
    override.write_text('version: "site-1"\nentries: [{carc: "16"}]\n', encoding="utf-8")
    monkeypatch.setenv("DENIAL_TRIAGE_MAPPING_OVERRIDES", str(override))
    get_settings.cache_clear()
    result = runner.invoke(app, ["mapping", "check"])
    assert result.exit_code == 1
    assert f"{override}: entry 1 (line 2): missing root_cause" in result.output


def test_mapping_check_flags_stale_reviews_with_a_tighter_limit() -> None:
    result = runner.invoke(app, ["mapping", "check", "--max-age-days", "19"])
    assert result.exit_code == 1
    assert "review is stale: last reviewed 2026-11-20 (20 days ago, limit 19)" in result.output


# ---------------------------------------------------------------------------- quickstart


@pytest.mark.slow
def test_quickstart_on_generated_data_trains_and_promotes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # Enough rows that 500 lie beyond the training window for promotion to measure.
    result = runner.invoke(app, ["quickstart", "--rows", "6000", "--seed", "3", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "wrote 6,000 denials" in result.output
    assert (tmp_path / "data" / "history" / "history.parquet").is_file()
    assert "registered models:/denial-triage/1" in result.output
    assert re.search(r"version 1 is now (champion|challenger)", result.output)


# ---------------------------------------------------------------------------- label-queue


def partly_labelled_history(tmp_path: Path, rows: int = 3_000) -> Path:
    """A generated history keeping root-cause and preventable labels on one row in twenty."""
    import pandas as pd

    full = tmp_path / "full.parquet"
    runner.invoke(app, ["generate", "--rows", str(rows), "--seed", "5", "--out", str(full)])
    frame = pd.read_parquet(full)
    unlabelled = frame.index % 20 != 0
    frame["root_cause"] = frame["root_cause"].where(~unlabelled)
    frame["preventable"] = frame["preventable"].astype("boolean").where(~unlabelled)
    frame.to_parquet(tmp_path / "partial.parquet")
    return tmp_path / "partial.parquet"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_label_queue_writes_the_ranked_unlabelled_denials(tmp_path: Path, suffix: str) -> None:
    import pandas as pd

    history = partly_labelled_history(tmp_path)
    out = tmp_path / "queue" / f"to-label{suffix}"
    args = ["label-queue", "--data", str(history), "--budget", "40", "--out", str(out)]
    result = runner.invoke(app, [*args, "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "wrote 40 denials to label" in result.output
    queue = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(queue.columns) == list(QUEUE_COLUMNS)  # their content: test_label_queue.py
    assert queue["rank"].tolist() == list(range(1, 41)) and queue["reason"].str.len().min() > 5
    labelled = set(pd.read_parquet(history).dropna(subset=["root_cause"])["denial_id"])
    assert not set(queue["denial_id"]) & labelled


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--data": "missing.parquet"}, "missing.parquet: no such file"),
        ({"--budget": "0"}, "--budget must be at least 1"),
        ({"--out": "queue.xlsx"}, "unknown extension '.xlsx'"),
    ],
)
def test_label_queue_refuses_bad_requests(tmp_path: Path, change: dict, message: str) -> None:
    history = write_csv(tmp_path / "h.csv", [GOOD_ROW])
    options = {"--data": str(history), "--budget": "5", "--out": str(tmp_path / "q.csv")}
    options |= {k: str(tmp_path / v) if k != "--budget" else v for k, v in change.items()}
    result = runner.invoke(app, ["label-queue", *[x for kv in options.items() for x in kv]])
    assert result.exit_code == 1 and message in result.output


def test_label_queue_refuses_a_history_without_unlabelled_denials(tmp_path: Path) -> None:
    history = write_csv(tmp_path / "h.csv", [GOOD_ROW | {"root_cause": "coding"}])
    args = ["label-queue", "--data", str(history), "--budget", "5", "--out", "q.csv"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "nothing to queue" in result.output


def test_label_queue_names_the_rows_that_break_the_contract(tmp_path: Path) -> None:
    history = write_csv(tmp_path / "h.csv", [GOOD_ROW | {"denied_amount": "lots"}])
    args = ["label-queue", "--data", str(history), "--budget", "5", "--out", "q.csv"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "row 1, column denied_amount" in result.output


def test_every_listed_command_runs_its_own_help_and_is_listed_with_its_docstring() -> None:
    import typer

    from denial_triage.cli import COMMANDS, load_command

    listed = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert list(listed) == list(COMMANDS)
    for name, (_, _, group_help) in COMMANDS.items():
        real = load_command(name)
        assert listed[name].help == (group_help or real.help), name
        own = runner.invoke(app, [name, "--help"])
        assert own.exit_code == 0 and "Usage: denial-triage " + name in own.output, name


def test_help_imports_none_of_the_models_libraries() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from typer.testing import CliRunner; from denial_triage.cli import app; "
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0; "
        "print(sorted(m for m in ('pandas', 'sklearn', 'mlflow', 'lightgbm', 'sqlalchemy', "
        "'features', 'training', 'serving') if m in sys.modules))"
    )
    command = [sys.executable, "-c", probe]
    shown = subprocess.run(command, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"


def test_the_recovery_line_says_how_many_test_denials_it_leaves_open() -> None:
    recovery = {"roc_auc": 0.745, "brier": 0.204, "expected_calibration_error": 0.02, "rows": 18825}
    report = {"rows": {"test": 21_179, "test_resolved": 18_825}, "recovery": recovery}
    line = train_commands._binary_line("recovery", recovery) + train_commands._still_open(report)
    assert line == (
        "recovery     ROC AUC 0.745  Brier 0.204  ECE 0.020  on 18,825 rows (resolved; 2,354 "
        "still open left out: the slowest to resolve, where write-offs gather)"
    )
    every_one_resolved = {**report, "rows": {"test": 18_825, "test_resolved": 18_825}}
    assert train_commands._still_open(every_one_resolved) == ""
