"""Training on a two-worker Dask cluster matches single-machine training on the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dask.dataframe as dd
import hypothesis.strategies as st
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from hypothesis import given, settings
from sklearn.metrics import roc_auc_score

from features.contract import load_denials, write_denials
from training.distributed import (
    ClusterUnreachableError,
    DistributedTrainingError,
    PartitionedContractError,
    dask_client,
    dask_label_counts,
    dask_time_split,
    fit_triage_model_dask,
    newest_share_start,
    read_partitioned,
    spread_plan,
    steals_work,
)
from training.fit import (
    TimeSplit,
    fit_triage_model,
    label_counts,
    newest_share,
    preventable_target,
    recovered_target,
    resolved_rows,
    time_split,
)
from training.specs import ModelSpec, load_specs
from training.synthetic import generate_history
from training.triage_model import TriageModel

pytestmark = pytest.mark.slow  # a Dask cluster fitting every model

ROWS = 20_000
SEED = 23
FILES = 4
ROUNDS = 40  # enough to separate the models from chance, few enough for a quick test
TOLERANCE = 0.03


@pytest.fixture(scope="module")
def history_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated history as Parquet files in denial-date order, as a monthly export would be:
    the test months and calibration holdouts sit in the last files, so rows must be spread."""
    folder = tmp_path_factory.mktemp("partitioned")
    raw = pd.read_parquet(generate_history(ROWS, SEED, folder.parent / "source.parquet"))
    raw = raw.sort_values("denial_date", kind="stable")
    for i, rows in enumerate(np.array_split(np.arange(len(raw)), FILES)):
        write_denials(raw.iloc[rows], folder / f"part-{i}.parquet")
    return folder


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with dask_client("local") as client:
        yield client


@pytest.fixture(scope="module")
def quick_specs() -> dict[str, ModelSpec]:
    """The shipped specs with fewer boosting rounds."""
    specs = {}
    for task, spec in load_specs().items():
        update = {"hyperparameters": {**spec.hyperparameters, "n_estimators": ROUNDS}}
        if spec.share_hyperparameters:
            update["share_hyperparameters"] = {**spec.share_hyperparameters, "n_estimators": ROUNDS}
        specs[task] = spec.model_copy(update=update)
    return specs


@pytest.fixture(scope="module")
def history(history_folder: Path) -> pd.DataFrame:
    """The same files loaded with pandas, for single-machine training."""
    frames = [load_denials(file).frame for file in sorted(history_folder.glob("*.parquet"))]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def split(history: pd.DataFrame) -> TimeSplit:
    return time_split(history)


@pytest.fixture(scope="module")
def dask_split(
    history_folder: Path, client: Client
) -> tuple[dd.DataFrame, dd.DataFrame, pd.Timestamp]:
    return dask_time_split(read_partitioned(history_folder))


@pytest.fixture(scope="module")
def dask_model(
    dask_split: tuple[dd.DataFrame, dd.DataFrame, pd.Timestamp],
    client: Client,
    quick_specs: dict[str, ModelSpec],
) -> TriageModel:
    return fit_triage_model_dask(dask_split[0], quick_specs, client)


@pytest.fixture(scope="module")
def single_model(
    history: pd.DataFrame, split: TimeSplit, quick_specs: dict[str, ModelSpec]
) -> TriageModel:
    return fit_triage_model(history.iloc[split.train], quick_specs)


@pytest.fixture(scope="module")
def test_rows(history: pd.DataFrame, split: TimeSplit) -> pd.DataFrame:
    return history.iloc[split.test]


def _quality(model: TriageModel, rows: pd.DataFrame) -> dict[str, float]:
    scores = model.score(rows)
    resolved = resolved_rows(rows)
    recovery = scores["recovery_probability"].to_numpy()
    return {
        "root_cause_accuracy": float(np.mean(scores["root_cause"] == rows["root_cause"])),
        "recovery_roc_auc": roc_auc_score(recovered_target(rows)[resolved], recovery[resolved]),
        "preventable_roc_auc": roc_auc_score(
            preventable_target(rows), scores["preventable_probability"]
        ),
    }


# ---------------------------------------------------------------------------- parity


def test_time_split_keeps_the_same_rows(
    dask_split: tuple[dd.DataFrame, dd.DataFrame, pd.Timestamp],
    split: TimeSplit,
    history: pd.DataFrame,
) -> None:
    train, test, cutoff = dask_split
    assert cutoff == split.cutoff
    assert len(train) == len(split.train)
    assert set(test["denial_id"].compute()) == set(history["denial_id"].iloc[split.test])


def test_label_counts_of_partitions_add_up_to_those_of_the_whole(
    dask_split: tuple[dd.DataFrame, dd.DataFrame, pd.Timestamp],
    split: TimeSplit,
    history: pd.DataFrame,
    quick_specs: dict[str, ModelSpec],
) -> None:
    counted = dask_label_counts(dask_split[0], quick_specs)
    assert counted == label_counts(history.iloc[split.train], quick_specs)
    assert counted["recovery"].labelled < len(split.train)  # open denials carry no label
    assert counted["root_cause"].labelled == len(split.train)


def test_feature_pipeline_is_fitted_identically(
    dask_model: TriageModel, single_model: TriageModel, test_rows: pd.DataFrame
) -> None:
    """Merged per-partition statistics fit the very pipeline the whole frame fits."""
    distributed = dask_model.features.transform(test_rows)
    single = single_model.features.transform(test_rows)
    assert np.array_equal(distributed, single, equal_nan=True)


def test_metrics_match_single_machine_training(
    dask_model: TriageModel, single_model: TriageModel, test_rows: pd.DataFrame
) -> None:
    distributed, single = _quality(dask_model, test_rows), _quality(single_model, test_rows)
    for metric, value in single.items():
        assert abs(distributed[metric] - value) <= TOLERANCE, (metric, distributed, single)
    # Ten classes, the largest about a quarter of rows; 0.5 is chance for the AUCs.
    assert min(distributed["root_cause_accuracy"], single["root_cause_accuracy"]) > 0.5
    for metric in ("recovery_roc_auc", "preventable_roc_auc"):
        assert min(distributed[metric], single[metric]) > 0.65, metric


def test_models_are_local_and_explain_like_single_machine(
    dask_model: TriageModel, single_model: TriageModel, test_rows: pd.DataFrame
) -> None:
    assert type(dask_model.root_cause_model) is lgb.LGBMClassifier
    assert type(dask_model.recovery_model) is lgb.LGBMClassifier
    assert type(dask_model.recovery_share_model) is lgb.LGBMRegressor
    assert dask_model.root_cause_classes == single_model.root_cause_classes
    explanation = dask_model.explain(test_rows.head(2))[0]["recovery"]
    parts = explanation.base_value + sum(c["contribution"] for c in explanation.contributions)
    assert parts + explanation.rest == pytest.approx(explanation.output, abs=1e-6)


# ---------------------------------------------------------------------------- reading


def test_partitioned_read_matches_loading_with_pandas(
    history_folder: Path, history: pd.DataFrame, client: Client
) -> None:
    folder = read_partitioned(history_folder)
    assert folder.npartitions == FILES
    pd.testing.assert_frame_equal(folder.compute().reset_index(drop=True), history)
    single = history_folder / "part-2.parquet"
    pd.testing.assert_frame_equal(read_partitioned(single).compute(), load_denials(single).frame)


def test_contract_error_names_partition_row_and_column(
    history_folder: Path, tmp_path: Path
) -> None:
    raw = pd.read_parquet(history_folder / "part-0.parquet").head(40)
    write_denials(raw.iloc[:20], tmp_path / "part-0.parquet")
    broken = raw.iloc[20:].reset_index(drop=True)
    broken.loc[2, "denied_amount"] = -5.0
    write_denials(broken, tmp_path / "part-1.parquet")
    with pytest.raises(PartitionedContractError) as raised:
        read_partitioned(tmp_path)
    message = str(raised.value)
    assert "partition 1 (part-1.parquet), row 3, column denied_amount: must be >= 0.01" in message
    assert "no row is dropped" in message


def test_ids_repeated_across_files_are_reported(history_folder: Path, tmp_path: Path) -> None:
    raw = pd.read_parquet(history_folder / "part-0.parquet").head(20)
    write_denials(raw, tmp_path / "a.parquet")
    write_denials(raw.iloc[:1], tmp_path / "b.parquet")
    with pytest.raises(PartitionedContractError, match=raw["denial_id"].iloc[0]):
        read_partitioned(tmp_path)


def test_lists_turned_into_text_are_refused(history: pd.DataFrame, client: Client) -> None:
    """Dask's default string conversion would hand the pipeline codes as text."""
    converted = dd.from_pandas(history.head(100), npartitions=2)
    with pytest.raises(DistributedTrainingError, match="read_partitioned"):
        fit_triage_model_dask(converted, load_specs(), client)


def test_the_local_cluster_keeps_each_task_where_its_input_is(client: Client) -> None:
    """lightgbm.dask's port lookup hangs when a task is moved off the worker holding its
    socket (training.distributed.WORK_STEALING): the local scheduler never moves tasks."""
    assert steals_work(client) is False


def test_a_remote_scheduler_that_steals_work_is_used_with_a_warning() -> None:
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        pytest.warns(RuntimeWarning, match="WORK_STEALING=False"),
        dask_client(cluster.scheduler_address) as remote,
    ):
        assert steals_work(remote) is True
        assert sum(remote.nthreads().values()) >= 1


def test_unreachable_scheduler_is_named() -> None:
    with (
        pytest.raises(ClusterUnreachableError, match=r"127\.0\.0\.1:9"),
        dask_client("tcp://127.0.0.1:9", timeout=1),
    ):
        pass
    assert issubclass(ClusterUnreachableError, ValueError)


# ---------------------------------------------------------------------------- layout rules


@settings(max_examples=200, deadline=None)
@given(
    days=st.lists(st.integers(0, 90), min_size=1, max_size=400),
    share=st.floats(0.01, 0.49),
)
def test_newest_share_start_follows_newest_share(days: list[int], share: float) -> None:
    dates = np.datetime64("2025-01-01", "s") + np.array(days) * np.timedelta64(1, "D")
    frame = pd.DataFrame({"denial_date": dates})
    expected = frame["denial_date"][newest_share(frame, share)].min()
    distinct, counts = np.unique(dates, return_counts=True)
    assert newest_share_start(distinct, counts, share) == expected


@given(
    counts=st.lists(st.integers(0, 50), min_size=1, max_size=12),
    homes=st.lists(st.sampled_from("abc"), min_size=12, max_size=12),
    workers=st.sampled_from(["ab", "abc", "abcd"]),
)
def test_spread_plan_shares_rows_equally_and_moves_only_the_excess(
    counts: list[int], homes: list[str], workers: str
) -> None:
    homes = homes[: len(counts)]
    plan = spread_plan(counts, homes, list(workers))
    held = {worker: sum(stop - start for _, start, stop in plan[worker]) for worker in workers}
    total = sum(counts)
    assert max(held.values()) - min(held.values()) <= 1
    assert sum(held.values()) == total
    covered = sorted((i, start, stop) for slices in plan.values() for i, start, stop in slices)
    for i, count in enumerate(counts):
        rows = [r for block, start, stop in covered if block == i for r in range(start, stop)]
        assert sorted(rows) == list(range(count))  # every selected row exactly once
    local = {
        worker: sum(c for c, h in zip(counts, homes, strict=True) if h == worker)
        for worker in workers
    }
    moved = sum(
        stop - start
        for worker, slices in plan.items()
        for i, start, stop in slices
        if homes[i] != worker
    )
    assert moved == total - sum(min(local[w], held[w]) for w in workers)
