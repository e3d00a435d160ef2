"""Training on a Dask cluster: partitioned Parquet in, the same :class:`TriageModel` out.

:func:`fit_triage_model_dask` follows :func:`training.fit.fit_triage_model` step for step (the
same feature pipeline, targets, row subsets, calibration holdout and Platt scaling) with the rows
kept on the workers, and returns local LightGBM models, so a model trained either way is scored,
explained, registered and served by the same code.

LightGBM distributed-learning notes followed here (``lightgbm.dask`` and LightGBM's Distributed
Learning Guide):

* No early stopping. ``lightgbm.dask`` does not support it: each worker would stop at its own
  round while the others wait on the network. Every model trains for its spec's fixed
  ``n_estimators``, exactly as single-machine training does.
* Every worker needs data, and of every class. ``lightgbm.dask`` concatenates the parts each
  worker holds into one local dataset and fits a local estimator on it: a worker holding no
  part sits training out, one holding only empty parts fails (an estimator needs rows), and
  each worker's classifier encodes labels from its own rows. Each model
  trains on its own rows (all labelled rows, resolved rows before the holdout, recovered rows),
  so for each model the selected rows are spread until every worker holds an equal share,
  moving only the rows above a worker's share (:func:`spread_plan`). ``Client.rebalance`` is
  not used: it leaves small data where it is and knows nothing of per-model row subsets. A
  worker left without some class raises :class:`DistributedTrainingError` instead of training
  a model whose classes mean different things on different workers.
* Features and targets of a row are built together, on the worker that holds the row, so
  LightGBM always finds a part's matrix and labels on one machine.
* Feature pipeline: each partition's :class:`~features.pipeline.FeatureStatistics` is collected
  on its worker and the parts are merged with ``+`` on the cluster; only the merged statistics
  reach the client, never the rows.
* Calibration: the holdout is the newest ``calibration_share`` of a model's rows by denial date,
  by :func:`training.fit.newest_share`'s rule, computed exactly from per-date row counts gathered
  from the workers (:func:`newest_share_start`; no approximate distributed quantile). The model
  trained on the older rows scores the holdout rows where they live; only margins and targets
  come back to the client, where Platt scaling is fitted as in single-machine training.
* Dask converts object columns to Arrow strings by default, which would turn the contract's
  list columns (codes) into text; :func:`read_partitioned` switches that off for its frame.

* No work stealing. ``lightgbm.dask`` opens a socket on each worker and reads its port with a
  task that must run on that worker; a scheduler that moves tasks between workers can send it
  elsewhere, where it waits for good (:data:`WORK_STEALING`). ``--dask local`` starts its
  scheduler without stealing; a remote scheduler that steals is used with a warning.

Workers must run the same version of this package (and see the Parquet path, e.g. on a shared
file system). The Distributed Learning Guide recommends at least two threads per worker so
LightGBM's network and training work do not block each other; ``--dask local`` uses one thread
per worker to fit on a two-core machine.
"""

from __future__ import annotations

import functools
import operator
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as da
import dask.dataframe as dd
import lightgbm as lgb
import numpy as np
import pandas as pd
from distributed import Client, Future, LocalCluster, wait

from features.contract import (
    ROOT_CAUSES,
    ContractFileError,
    RowError,
    ValidationResult,
    load_denials,
)
from features.pipeline import DenialFeatures, FeatureStatistics
from training.fit import (
    DEFAULT_MATURITY_DAYS,
    DEFAULT_TEST_MONTHS,
    LabelCount,
    label_counts,
    platt_calibration,
    preventable_target,
    recovered_share,
    recovered_target,
    resolved_rows,
    root_cause_codes,
    routing_confidence,
    time_split,
)
from training.specs import ModelSpec
from training.triage_model import PlattCalibration, TriageModel

LOCAL = "local"
MAX_REPORTED_PROBLEMS = 20


class ClusterUnreachableError(ValueError):
    """The Dask scheduler at the given address cannot be reached."""


class PartitionedContractError(ValueError):
    """Files of a partitioned history break the data contract."""


class DistributedTrainingError(ValueError):
    """The training rows cannot be laid out on the cluster the way LightGBM needs."""


# ---------------------------------------------------------------------------- cluster


# lightgbm.dask (4.x) opens a socket on each worker and reads its port with a second task
# that must run where the socket is: moved to another worker (work stealing does that when a
# worker is busy), it waits on a socket that cannot be sent, and training hangs for good (seen
# in this project's tests; reproduced by pinning that task to the other worker). A scheduler
# that does not steal keeps each task on the worker holding its input.
WORK_STEALING = "distributed.scheduler.work-stealing"


@contextmanager
def dask_client(address: str, *, timeout: float = 10.0) -> Iterator[Client]:
    """A client of the scheduler at ``address``; ``"local"`` starts a two-worker cluster on this
    machine (its scheduler does not steal work, see :data:`WORK_STEALING`) and stops it
    afterwards. A remote scheduler that steals work is used with a warning."""
    if address == LOCAL:
        # The scheduler reads the setting when it starts; later clusters keep their own.
        with dask.config.set({WORK_STEALING: False}):
            cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            )
        with cluster, Client(cluster) as client:
            yield client
        return
    with _connect(address, timeout) as client:
        if steals_work(client):
            warnings.warn(
                f"the Dask scheduler at {address} steals work, which can hang LightGBM's "
                "network setup; start it with DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING=False",
                RuntimeWarning,
                stacklevel=3,
            )
        yield client


def steals_work(client: Client) -> bool:
    """Whether the client's scheduler moves tasks between workers (its stealing extension)."""
    return bool(
        client.run_on_scheduler(lambda dask_scheduler: "stealing" in dask_scheduler.extensions)
    )


def _connect(address: str, timeout: float) -> Client:
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterUnreachableError(
            f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s ({exc}); "
            f"check the address and that a scheduler runs there, or use --dask {LOCAL}"
        ) from exc


# ---------------------------------------------------------------------------- reading


def read_partitioned(path: Path | str) -> dd.DataFrame:
    """A Parquet file, or a folder of them, as a Dask frame of validated contract rows.

    One partition per file, loaded and coerced by :func:`features.contract.load_denials` on a
    worker of the current Dask client and kept in cluster memory, since training reads the rows
    several times. Every row that breaks the contract is reported (partition, file, row,
    column), as are denial ids repeated across files; no row is dropped. Files are read one by
    one rather than by ``dd.read_parquet``, which may split or merge files into partitions, so
    each error names the file and its row.
    """
    files = parquet_files(Path(path))
    loaded = dask.persist(*[dask.delayed(load_denials)(file) for file in files])
    reports, meta = dask.compute(
        [dask.delayed(_file_report)(result) for result in loaded],
        dask.delayed(_empty_frame)(loaded[0]),
    )
    _raise_for_problems(Path(path), _file_problems(files, reports))
    # Off, or Dask would turn the list columns (codes) into their text.
    with dask.config.set({"dataframe.convert-string": False}):
        history = dd.from_delayed([result.frame for result in loaded], meta=meta)
    _raise_for_problems(Path(path), _repeated_ids(history))
    return history


def parquet_files(path: Path) -> list[Path]:
    """The file itself, or every ``.parquet`` file under the folder in name order."""
    if not path.exists():
        raise ContractFileError(f"{path}: no such file or folder")
    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    if not files:
        raise ContractFileError(f"{path}: no .parquet files in this folder")
    return files


def _file_report(result: ValidationResult) -> tuple[list[RowError], tuple[str, ...]]:
    return result.errors, tuple(result.frame.columns)


def _empty_frame(result: ValidationResult) -> pd.DataFrame:
    return result.frame.iloc[:0]


def _file_problems(
    files: Sequence[Path], reports: Sequence[tuple[list[RowError], tuple[str, ...]]]
) -> list[str]:
    problems = [
        f"partition {i} ({file.name}), {error}"
        for i, (file, (errors, _)) in enumerate(zip(files, reports, strict=True))
        for error in errors
    ]
    first_columns = set(reports[0][1])
    for i, (file, (_, columns)) in enumerate(zip(files, reports, strict=True)):
        if set(columns) != first_columns:
            differing = ", ".join(sorted(first_columns ^ set(columns)))
            problems.append(
                f"partition {i} ({file.name}): columns {differing} are not in every file; "
                f"give every file the same columns"
            )
    return problems


def _repeated_ids(history: dd.DataFrame) -> list[str]:
    """Ids repeated across files (``validate`` catches repeats within one)."""
    if history.npartitions == 1:
        return []
    # The task shuffle: the P2P shuffle logs warnings on every run of this small check.
    with dask.config.set({"dataframe.shuffle.method": "tasks"}):
        counts = history["denial_id"].value_counts(split_out=True)
        repeated = counts[counts > 1].head(MAX_REPORTED_PROBLEMS, npartitions=-1)
    return [
        f"denial_id {denial_id!r} appears in {count} rows across files; ids must be unique"
        for denial_id, count in repeated.items()
    ]


def _raise_for_problems(path: Path, problems: list[str]) -> None:
    if not problems:
        return
    shown = "\n  ".join(problems[:MAX_REPORTED_PROBLEMS])
    more = len(problems) - MAX_REPORTED_PROBLEMS
    tail = f"\n  ... and {more} more" if more > 0 else ""
    raise PartitionedContractError(
        f"{path}: {len(problems)} contract problem(s); fix them and run again "
        f"(no row is dropped):\n  {shown}{tail}"
    )


def dask_time_split(
    history: dd.DataFrame,
    test_months: int = DEFAULT_TEST_MONTHS,
    maturity_days: int = DEFAULT_MATURITY_DAYS,
) -> tuple[dd.DataFrame, dd.DataFrame, pd.Timestamp]:
    """Training rows, test rows and the first test day, by :func:`training.fit.time_split`.

    The rule decides by denial date alone, so it is applied to one row per distinct date (a
    few hundred dates, whatever the row count) and the rows follow their date.
    """
    dates = history["denial_date"]
    # A tree reduction: distinct dates are few, so no shuffle is needed.
    distinct = np.sort(dates.unique(split_out=1).compute().to_numpy())
    split = time_split(pd.DataFrame({"denial_date": distinct}), test_months, maturity_days)
    return (
        history[dates.isin(distinct[split.train])],
        history[dates.isin(distinct[split.test])],
        split.cutoff,
    )


def dask_label_counts(rows: dd.DataFrame, specs: dict[str, ModelSpec]) -> dict[str, LabelCount]:
    """:func:`training.fit.label_counts` of a Dask frame, counted per partition and summed."""
    parts = dask.compute(*[dask.delayed(label_counts)(part, specs) for part in rows.to_delayed()])
    return {task: functools.reduce(operator.add, (part[task] for part in parts)) for task in specs}


# ---------------------------------------------------------------------------- row layout

Slice = tuple[int, int, int]  # block index, first and past-the-last selected row
Labelled = tuple[np.ndarray, np.ndarray]  # feature matrix and target of some rows


@dataclass(frozen=True)
class _Block:
    """One partition's feature matrix and every target, built and kept on its worker."""

    matrix: np.ndarray
    denial_date: np.ndarray
    resolved: np.ndarray
    recovered: np.ndarray
    root_cause: np.ndarray
    preventable: np.ndarray
    recovered_share: np.ndarray


def _block(frame: pd.DataFrame, features: DenialFeatures) -> _Block:
    return _Block(
        matrix=features.transform(frame),
        denial_date=pd.to_datetime(frame["denial_date"]).to_numpy(),
        resolved=resolved_rows(frame),
        recovered=recovered_target(frame),
        root_cause=root_cause_codes(frame["root_cause"]),
        preventable=preventable_target(frame),
        recovered_share=recovered_share(frame),
    )


@dataclass(frozen=True)
class _Rows:
    """Which rows of a block a model uses and what it learns; applied where the block lives."""

    target: Literal["root_cause", "recovered", "preventable", "recovered_share"]
    subset: Literal["all", "resolved", "recovered"] = "all"
    newest_from: np.datetime64 | None = None  # start of the calibration holdout, if any
    holdout: bool = False  # with newest_from: the holdout rows, else the rows before it

    def mask(self, block: _Block) -> np.ndarray:
        keep = np.ones(len(block.matrix), dtype=bool)
        if self.subset != "all":
            keep &= block.resolved
        if self.subset == "recovered":
            keep &= block.recovered
        if self.newest_from is not None:
            keep &= (block.denial_date >= self.newest_from) == self.holdout
        return keep

    def take(self, block: _Block, start: int = 0, stop: int | None = None) -> Labelled:
        """Matrix and target of the selected rows ``start:stop``."""
        chosen = np.flatnonzero(self.mask(block))[start:stop]
        return block.matrix[chosen], getattr(block, self.target)[chosen]


def spread_plan(
    counts: Sequence[int], homes: Sequence[str], workers: Sequence[str]
) -> dict[str, list[Slice]]:
    """Which selected rows each worker should hold so that all hold an equal share.

    ``counts[i]`` rows are selected in block ``i``, held by ``homes[i]``. Rows stay where they
    are up to their worker's share; only the rest move, to workers below theirs.
    """
    total, size = sum(counts), len(workers)
    quota = {worker: total // size + (i < total % size) for i, worker in enumerate(workers)}
    held = dict.fromkeys(workers, 0)
    plan: dict[str, list[Slice]] = {worker: [] for worker in workers}
    spare: list[Slice] = []
    for index, (count, home) in enumerate(zip(counts, homes, strict=True)):
        keep = max(0, min(count, quota.get(home, 0) - held.get(home, 0)))
        if keep:
            plan[home].append((index, 0, keep))
            held[home] += keep
        if keep < count:
            spare.append((index, keep, count))
    for worker in workers:
        while held[worker] < quota[worker]:
            index, start, stop = spare.pop()
            take = min(stop - start, quota[worker] - held[worker])
            plan[worker].append((index, start, start + take))
            held[worker] += take
            if start + take < stop:
                spare.append((index, start + take, stop))
    return plan


def newest_share_start(dates: np.ndarray, counts: np.ndarray, share: float) -> np.datetime64:
    """First denial date of the newest ``share`` of rows, from per-date row counts.

    :func:`training.fit.newest_share`'s rule (pandas' linearly interpolated quantile, cast back
    to the date unit, then ``date >= quantile``) computed from counts, so no date column has to
    be collected in one place.
    """
    order = np.argsort(dates)
    dates, ends = dates[order], np.cumsum(counts[order])
    rows = int(ends[-1])
    position = (rows - 1) * np.float64(1.0 - share)
    below = int(np.floor(position))
    lower, upper = dates[np.searchsorted(ends, [below, min(below + 1, rows - 1)], side="right")]
    low, high = int(lower.astype(np.int64)), int(upper.astype(np.int64))
    gamma = position - below
    # numpy's interpolation formula, so the rounding matches newest_share's to the last bit
    value = low + (high - low) * gamma if gamma < 0.5 else high - (high - low) * (1 - gamma)
    threshold = np.array(value).astype(dates.dtype)
    return dates[np.searchsorted(dates, threshold, side="left")]


# ---------------------------------------------------------------------------- worker tasks


def _statistics(frame: pd.DataFrame) -> FeatureStatistics:
    return DenialFeatures().collect_statistics(frame)


def _merged(parts: list[FeatureStatistics]) -> FeatureStatistics:
    return functools.reduce(operator.add, parts)


def _row_count(block: _Block, rows: _Rows) -> int:
    return int(rows.mask(block).sum())


def _rows_slice(block: _Block, rows: _Rows, start: int, stop: int) -> Labelled:
    return rows.take(block, start, stop)


def _stacked(slices: list[Labelled]) -> Labelled:
    return np.concatenate([m for m, _ in slices]), np.concatenate([t for _, t in slices])


def _classes(piece: Labelled) -> np.ndarray:
    return np.unique(piece[1])


def _date_counts(block: _Block, rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
    return np.unique(block.denial_date[rows.mask(block)], return_counts=True)


def _holdout_margins(
    block: _Block, rows: _Rows, model: lgb.LGBMModel
) -> tuple[np.ndarray, np.ndarray]:
    matrix, target = rows.take(block)
    if not len(target):
        return np.empty(0), target
    return model.predict(matrix, raw_score=True), target


# ---------------------------------------------------------------------------- fitting


def fit_triage_model_dask(
    history: dd.DataFrame, specs: dict[str, ModelSpec], client: Client, *, seed: int = 7
) -> TriageModel:
    """:func:`training.fit.fit_triage_model` on a Dask cluster, for a labelled training frame
    from :func:`read_partitioned` (after :func:`dask_time_split`)."""
    fit = _DaskFitter.prepare(history, client, seed)
    recovery, recovery_calibration = fit.calibrated_binary(
        specs["recovery"], _Rows("recovered", "resolved")
    )
    preventable, preventable_calibration = fit.calibrated_binary(
        specs["preventable"], _Rows("preventable")
    )
    root_cause = specs["root_cause"].hyperparameters
    share = specs["recovery"].share_hyperparameters or {}
    return TriageModel(
        features=fit.features,
        root_cause_model=fit.fitted(
            lgb.DaskLGBMClassifier, "multiclass", root_cause, _Rows("root_cause")
        ),
        recovery_model=recovery,
        recovery_calibration=recovery_calibration,
        recovery_share_model=fit.fitted(
            lgb.DaskLGBMRegressor, "cross_entropy", share, _Rows("recovered_share", "recovered")
        ),
        preventable_model=preventable,
        preventable_calibration=preventable_calibration,
        **routing_confidence(specs),
    )


def _check_lists_are_lists(history: dd.DataFrame) -> None:
    if history["carc_codes"].dtype != object:
        raise DistributedTrainingError(
            "list columns arrived as text (Dask's string conversion); load the history with "
            "training.distributed.read_partitioned"
        )


def _enough_partitions(history: dd.DataFrame, workers: int) -> dd.DataFrame:
    """At least one partition per worker, so every worker shares the feature transform."""
    return history.repartition(npartitions=workers) if history.npartitions < workers else history


def _settled(futures: list[Future]) -> list[Future]:
    """Wait for every future, raising the first failure as its original exception."""
    wait(futures)
    for future in futures:
        if future.status == "error":
            future.result()
    return futures


def _homes(client: Client, futures: list[Future]) -> list[str]:
    who_has = client.who_has(futures)
    return [sorted(who_has[future.key])[0] for future in futures]


def _fit_features(client: Client, partitions: list[Future]) -> DenialFeatures:
    """Fit the pipeline from per-partition statistics merged on the cluster."""
    merged = client.submit(_merged, client.map(_statistics, partitions)).result()
    return DenialFeatures().fit_statistics(merged)


@dataclass(frozen=True)
class _Piece:
    """One worker's share of a model's training rows: a future of (matrix, target)."""

    worker: str
    future: Future
    rows: int


@dataclass(frozen=True)
class _DaskFitter:
    """The fitted feature pipeline and every partition's block, held on the workers."""

    client: Client
    blocks: list[Future]
    homes: list[str]
    workers: list[str]
    features: DenialFeatures
    seed: int

    @classmethod
    def prepare(cls, history: dd.DataFrame, client: Client, seed: int) -> _DaskFitter:
        """Fit the feature pipeline and build every block where its partition lives."""
        _check_lists_are_lists(history)
        workers = sorted(client.nthreads())
        if not workers:
            raise DistributedTrainingError("the Dask cluster has no workers")
        partitions = client.compute(_enough_partitions(history, len(workers)).to_delayed())
        features = _fit_features(client, _settled(partitions))
        shared = client.scatter(features, broadcast=True, hash=False)
        # The blocks hold all training needs; the partitions computed here go when this returns.
        blocks = _settled(client.map(_block, partitions, features=shared))
        return cls(client, blocks, _homes(client, blocks), workers, features, seed)

    def fitted(
        self,
        estimator: type[lgb.LGBMModel],
        objective: str,
        hyperparameters: dict[str, Any],
        rows: _Rows,
    ) -> lgb.LGBMModel:
        """A local LightGBM model trained on the cluster on the selected rows."""
        pieces = self._spread(rows)
        if issubclass(estimator, lgb.LGBMClassifier):
            target_dtype = self._check_classes(pieces, rows)
        else:
            target_dtype = np.dtype(np.float64)
        matrix, target = self._dask_arrays(pieces, target_dtype)
        model = estimator(
            client=self.client,
            objective=objective,
            **hyperparameters,
            random_state=self.seed,
            verbose=-1,
        )
        with warnings.catch_warnings():
            # lightgbm.dask sets each worker's threads itself and warns about the estimator's
            # n_jobs default on every fit; there is nothing to act on.
            warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
            model.fit(matrix, target, categorical_feature=self.features.categorical_indices)
        return model.to_local()

    def calibrated_binary(
        self, spec: ModelSpec, rows: _Rows
    ) -> tuple[lgb.LGBMClassifier, PlattCalibration]:
        """Train on rows before the newest ``calibration_share``; Platt-scale on the rest."""
        rows = replace(rows, newest_from=self._newest_from(rows, spec.calibration_share))
        model = self.fitted(lgb.DaskLGBMClassifier, "binary", spec.hyperparameters, rows)
        shared = self.client.scatter(model, broadcast=True, hash=False)
        holdout = replace(rows, holdout=True)
        parts = self.client.gather(
            [self._on_home(i, _holdout_margins, holdout, shared) for i in range(len(self.blocks))]
        )
        margin, target = _stacked(parts)
        return model, platt_calibration(margin, target)

    def _on_home(self, index: int, task: Any, *args: Any) -> Future:
        """Run ``task`` on block ``index`` where the block lives, so the block never moves."""
        return self.client.submit(task, self.blocks[index], *args, workers=[self.homes[index]])

    def _newest_from(self, rows: _Rows, share: float) -> np.datetime64:
        parts = self.client.gather(
            [self._on_home(i, _date_counts, rows) for i in range(len(self.blocks))]
        )
        dates, where = np.unique(np.concatenate([d for d, _ in parts]), return_inverse=True)
        counts = np.bincount(where, weights=np.concatenate([c for _, c in parts]))
        return newest_share_start(dates, counts.astype(np.int64), share)

    def _spread(self, rows: _Rows) -> list[_Piece]:
        """The selected rows laid out in one piece per worker, equal in size."""
        counts = self.client.gather(
            [self._on_home(i, _row_count, rows) for i in range(len(self.blocks))]
        )
        if not sum(counts):
            raise DistributedTrainingError(f"{rows.target}: no training rows")
        plan = spread_plan(counts, self.homes, self.workers)
        return [self._piece(worker, slices, rows) for worker, slices in plan.items() if slices]

    def _piece(self, worker: str, slices: list[Slice], rows: _Rows) -> _Piece:
        # Each slice is cut where its block lives, so only the moved rows cross the network.
        cut = [self._on_home(i, _rows_slice, rows, start, stop) for i, start, stop in slices]
        future = self.client.submit(_stacked, cut, workers=[worker])
        return _Piece(worker, future, sum(stop - start for _, start, stop in slices))

    def _check_classes(self, pieces: list[_Piece], rows: _Rows) -> np.dtype:
        """Each worker's LightGBM encodes labels from its own rows, so each needs every class."""
        seen = self.client.gather([self.client.submit(_classes, p.future) for p in pieces])
        every = functools.reduce(np.union1d, seen)
        for piece, classes in zip(pieces, seen, strict=True):
            missing = np.setdiff1d(every, classes)
            if missing.size:
                raise DistributedTrainingError(
                    f"{rows.target}: worker {piece.worker} holds no training rows of "
                    f"{_class_names(rows, missing)}; train on more history or fewer workers"
                )
        return every.dtype

    def _dask_arrays(
        self, pieces: list[_Piece], target_dtype: np.dtype
    ) -> tuple[da.Array, da.Array]:
        """Dask arrays over the pieces; each chunk stays on the worker that holds it."""
        width = len(self.features.feature_names_)
        matrices = [
            da.from_delayed(_item(p.future, 0), shape=(p.rows, width), dtype=np.float32)
            for p in pieces
        ]
        targets = [
            da.from_delayed(_item(p.future, 1), shape=(p.rows,), dtype=target_dtype) for p in pieces
        ]
        return da.concatenate(matrices), da.concatenate(targets)


def _class_names(rows: _Rows, classes: np.ndarray) -> str:
    if rows.target == "root_cause":  # trained on category indices
        return ", ".join(ROOT_CAUSES[int(code)] for code in classes)
    return ", ".join(str(label) for label in classes)


def _item(future: Future, index: int) -> Any:
    return dask.delayed(operator.getitem)(future, index)
