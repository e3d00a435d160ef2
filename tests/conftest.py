"""Shared fixtures: one generated history per test session, validated once, and one small
registry with a champion, trained once and copied into each module that serves it."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from features.contract import load_denials
from training.synthetic import generate_history

# The fixture modules of tests/serving are imported by their test modules before pytest loads
# them as plugins (``pytest_plugins``): registered here, their asserts are rewritten anyway.
pytest.register_assert_rewrite("database_fixtures", "page_fixtures")

HISTORY_ROWS = 60_000
HISTORY_SEED = 11
TEST_INPUT_HASH_KEY = "test-site-key-for-input-hashes-0123456789"  # pragma: allowlist secret


@pytest.hookimpl(tryfirst=True)  # marked before ``-m`` selects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The notebooks (run by nbmake) generate, train and explain end to end: slow tier."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def input_hash_key() -> str:
    """Audit records built outside a service (which sets the site's own) use a test key."""
    from serving.repository import use_input_hash_key

    use_input_hash_key(TEST_INPUT_HASH_KEY)
    return TEST_INPUT_HASH_KEY


@pytest.fixture(autouse=True, scope="session")
def refusals_unthrottled() -> Iterator[None]:
    """Tests send refused requests by the dozen on purpose (fuzzing sends thousands); slowing
    refused senders is tested on its own (tests/serving/test_refusals.py), with its own
    settings."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DENIAL_TRIAGE_REFUSALS_PER_MINUTE", "1000000")
        yield


@pytest.fixture(scope="session")
def history_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated history on disk, large enough for stable rates."""
    path = tmp_path_factory.mktemp("history") / "history.parquet"
    return generate_history(HISTORY_ROWS, HISTORY_SEED, path)


@pytest.fixture(scope="session")
def history(history_path: Path) -> pd.DataFrame:
    """The generated history loaded through the contract (coerced types)."""
    result = load_denials(history_path)
    assert result.ok, result.errors[:5]
    return result.frame


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository; tests that need it skip when it is absent."""
    path = Path(__file__).resolve().parents[1].parent / "shared"
    if not path.is_dir():
        pytest.skip("../shared is not present")
    return path


@pytest.fixture(scope="session")
def split_history(history: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The generated history split by time into training and test months."""
    from training.fit import time_split

    split = time_split(history)
    train = history.iloc[split.train].reset_index(drop=True)
    test = history.iloc[split.test].reset_index(drop=True)
    return train, test


@pytest.fixture(scope="session")
def triage_model(split_history: tuple[pd.DataFrame, pd.DataFrame]):
    """The triage model fitted once per session on training months, with the shipped specs."""
    from training.fit import fit_triage_model
    from training.specs import load_specs

    train = split_history[0]
    return fit_triage_model(
        train.sample(min(len(train), 25_000), random_state=3), load_specs(), seed=3
    )


def small_specs(rounds: int = 30):
    """The shipped specs with fewer boosting rounds, for tests that fit several models."""
    from training.specs import load_specs

    specs = load_specs()
    return {
        task: spec.model_copy(
            update={"hyperparameters": {**spec.hyperparameters, "n_estimators": rounds}}
        )
        for task, spec in specs.items()
    }


def train_small_registry(
    folder: Path,
    *,
    rows: int,
    seed: int,
    rounds: int,
    versions: int = 1,
    promote_first: bool = False,
):
    """Generate a history in ``folder`` and train ``versions`` small models into a registry
    under ``folder / "data"``; the first is made champion when asked."""
    from mlflow.tracking import MlflowClient

    from training import run as training_run
    from training.run import TrainingOptions, train
    from training.tracking import CHAMPION, MODEL_NAME

    data = generate_history(rows, seed, folder / "history.parquet")
    options = TrainingOptions(data=data, data_dir=folder / "data", seed=seed % 10)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setattr(training_run, "load_specs", lambda: small_specs(rounds))
        results = [train(options)]
        if promote_first:
            # Set directly: the services' tests need a champion, not the promotion gates
            # (tests/training/test_tracking.py), which a model this small can fail by noise
            # (the priority against largest-amount-first on a few thousand test rows).
            version = results[0].record.model_version
            MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION, version)
        results += [train(options) for _ in range(versions - 1)]
    return options, results


@dataclass(frozen=True)
class ChampionRegistry:
    """A data directory whose MLflow registry holds version 1 as champion, and the history it
    was trained on. Never served in place: services write their database, keys, secrets and
    spool beside the registry, so each module serves a copy (:func:`copy_registry`)."""

    data_dir: Path
    history: Path


@pytest.fixture(scope="session")
def champion_registry(tmp_path_factory: pytest.TempPathFactory) -> ChampionRegistry:
    """The small champion of the serving tests, trained once per session (training is what
    made each serving module slow): 12,000 generated denials, 30 rounds, version 1 made
    champion by :func:`train_small_registry`."""
    options, _ = train_small_registry(
        tmp_path_factory.mktemp("champion"), rows=12_000, seed=53, rounds=30, promote_first=True
    )
    return ChampionRegistry(options.data_dir, options.data)


@pytest.fixture(scope="session")
def champion_history(champion_registry: ChampionRegistry) -> pd.DataFrame:
    """The champion's history as training loaded it; take copies (``tail``, ``head``)."""
    from training import run as training_run

    return training_run.load_history(champion_registry.history)


def copy_registry(registry: ChampionRegistry, folder: Path) -> Path:
    """A data directory of its own under ``folder`` holding the champion's registry: its
    database, spool and secrets start empty, and what a test registers or promotes stays in
    it. Model artifacts are read from the original (MLflow keeps their absolute location)."""
    return Path(shutil.copytree(registry.data_dir, folder / "data"))


@pytest.fixture(scope="module")
def champion_data_dir(
    champion_registry: ChampionRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The module's own copy of the champion's data directory (see :func:`copy_registry`)."""
    return copy_registry(champion_registry, tmp_path_factory.mktemp("served"))


def load_module(path: Path, name: str) -> ModuleType:
    """A script that is not a package module (benchmarks, fuzz drivers, fixtures), by path.

    Its own folder is searched last for its imports, as when the script is run (a benchmark's
    ``harness``), without shadowing any package."""
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
