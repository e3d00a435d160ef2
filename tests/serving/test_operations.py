"""Operations of the service: 835 upload, hot reload under load, cached and refused models,
and batch scoring through the same code path."""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

import joblib
import mlflow
import pandas as pd
import pytest
from conftest import ChampionRegistry, load_module
from database_fixtures import auth, create_keys
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from denial_triage.cli import app as cli
from denial_triage.settings import Settings, get_settings
from serving.app import create_app
from training.pyfunc import ARTIFACT_KEY, TriagePyfunc
from training.tracking import CHAMPION, MODEL_NAME, configure_tracking, example_payload

FIXTURES = Path(__file__).resolve().parents[1] / "ingest" / "remit_fixtures.py"


def remit_fixtures():
    return load_module(FIXTURES, "remit_fixtures")


@pytest.fixture(scope="module")
def registry(
    champion_data_dir: Path, champion_registry: ChampionRegistry, champion_history: pd.DataFrame
) -> tuple[Path, Path, pd.DataFrame]:
    """Two registered versions (1 champion), and denials to score. Version 2 registers the
    champion's model again (as the page tests' challenger does): what these tests swap, cache
    and refuse are registry versions, and training a second model only cost time."""
    configure_tracking(champion_data_dir)
    client = MlflowClient()
    first = client.get_model_version(MODEL_NAME, "1")
    second = client.create_model_version(MODEL_NAME, first.source, run_id=first.run_id)
    assert str(second.version) == "2"
    denials = champion_history.tail(200).reset_index(drop=True)
    return champion_data_dir, champion_registry.history, denials


def keys_for(settings: Settings) -> dict[str, str]:
    return create_keys(settings.resolved_database_url, f"ops-{id(settings)}")


def denials_json(frame: pd.DataFrame) -> list[dict]:
    return json.loads(example_payload(frame).to_json(orient="records"))


def set_champion(data_dir: Path, version: str) -> None:
    configure_tracking(data_dir)  # MLflow's registry URI is process-wide: name ours each time
    MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION, version)


def test_an_uploaded_835_is_ingested_scored_and_audited(registry, tmp_path: Path) -> None:
    data_dir, _, _ = registry
    settings = Settings(data_dir=data_dir, model_poll_seconds=3600)
    remittance = remit_fixtures().full_remittance(tmp_path).read_bytes()
    with TestClient(create_app(settings)) as client:
        keys = keys_for(settings)
        response = client.post(
            "/v1/ingest/835",
            files={"file": ("remit.835", remittance)},
            headers=auth(keys["scorer"]),
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert len(results) >= 2  # the denied claim and the refused line
        stored = client.get(
            f"/v1/denials/{results[0]['denial_id']}", headers=auth(keys["reviewer"])
        )
        assert stored.status_code == 200
        # The worklist names the payer as the remittance's N1*PR does.
        client.app.state.service.flush_audit()
        listed = client.get(
            "/v1/worklist", params={"q": results[0]["denial_id"]}, headers=auth(keys["reviewer"])
        )
        (item,) = listed.json()["items"]
        assert (item["payer_id"], item["payer_name"]) == ("77001", "ACME HEALTH PLAN")
        # A file cut in half keeps the claims before the cut (the cut one is quarantined);
        # only input that is not X12 is refused.
        cut = remittance[: len(remittance) // 2]
        read = client.post(
            "/v1/ingest/835", files={"file": ("cut.835", cut)}, headers=auth(keys["scorer"])
        )
        assert read.status_code == 200, read.text
        bad = client.post(
            "/v1/ingest/835",
            files={"file": ("notes.835", b"remittance notes, not X12")},
            headers=auth(keys["scorer"]),
        )
        assert bad.status_code == 422
        assert "notes.835, segment 1: not an X12 file" in bad.json()["detail"]


def test_hot_reload_swaps_models_without_failing_requests(registry) -> None:
    data_dir, _, denials = registry
    settings = Settings(data_dir=data_dir, model_poll_seconds=3600)
    set_champion(data_dir, "1")
    with TestClient(create_app(settings)) as client:
        keys = keys_for(settings)
        body = {"denials": denials_json(denials.head(5))}
        versions: list[str] = []
        failures: list[int] = []
        stop = threading.Event()

        def worklist() -> None:
            while not stop.is_set():
                response = client.post("/v1/score", json=body, headers=auth(keys["scorer"]))
                if response.status_code == 200:
                    versions.append(response.json()["model_version"])
                else:
                    failures.append(response.status_code)

        threads = [threading.Thread(target=worklist) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            set_champion(data_dir, "2")
            reloaded = client.post("/v1/admin/reload", headers=auth(keys["admin"]))
            assert reloaded.status_code == 200 and reloaded.json()["model_version"] == "2"
            after = client.post("/v1/score", json=body, headers=auth(keys["scorer"])).json()
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert failures == []
        assert after["model_version"] == "2"
        assert "1" in versions
    set_champion(data_dir, "1")


def test_the_cached_champion_serves_when_the_registry_is_unreachable(registry, monkeypatch) -> None:
    data_dir, _, denials = registry
    settings = Settings(data_dir=data_dir, model_poll_seconds=3600)
    with TestClient(create_app(settings)):
        pass  # a first start caches the champion
    # A registry server that is down: nothing listens on port 9, and MLflow does not retry.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    try:
        with TestClient(create_app(settings)) as client:
            ready = client.get("/readyz").json()
            assert ready["ready"] and ready["model_source"] == "cache"
            assert ready["model_version"] == "1" and "unreachable" in ready["problem"]
            keys = keys_for(settings)
            body = {"denials": denials_json(denials.head(2))}
            scored = client.post("/v1/score", json=body, headers=auth(keys["scorer"]))
            assert scored.status_code == 200 and scored.json()["model_version"] == "1"
    finally:
        monkeypatch.delenv("MLFLOW_TRACKING_URI")
        configure_tracking(data_dir)  # back to this module's registry for the next tests


def test_a_broken_model_promoted_to_champion_is_refused(registry) -> None:
    data_dir, _, _ = registry
    settings = Settings(data_dir=data_dir, model_poll_seconds=3600)
    set_champion(data_dir, "1")
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "triage_model.joblib"
        joblib.dump({"not": "a model"}, bundle)
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=TriagePyfunc(),
                artifacts={ARTIFACT_KEY: str(bundle)},
                registered_model_name=MODEL_NAME,
                pip_requirements=["pandas"],
            )
    with TestClient(create_app(settings)) as client:
        keys = keys_for(settings)
        set_champion(data_dir, str(info.registered_model_version))
        status = client.post("/v1/admin/reload", headers=auth(keys["admin"])).json()
        assert status["model_version"] == "1"
        assert "refused" in status["problem"] and "not a TriageModel" in status["problem"]
        assert client.get("/readyz").json()["ready"]
    set_champion(data_dir, "1")


def test_batch_scoring_gives_the_api_answers(registry, tmp_path: Path, monkeypatch) -> None:
    data_dir, _, denials = registry
    set_champion(data_dir, "1")
    source = tmp_path / "backlog.parquet"
    from features.contract import write_denials

    write_denials(denials.head(30), source)
    monkeypatch.setenv("DENIAL_TRIAGE_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            cli, ["score", "--data", str(source), "--out", str(tmp_path / "scores.parquet")]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    batch = pd.read_parquet(tmp_path / "scores.parquet")
    settings = Settings(data_dir=data_dir, model_poll_seconds=3600)
    with TestClient(create_app(settings)) as client:
        keys = keys_for(settings)
        api = client.post(
            "/v1/score",
            json={"denials": denials_json(denials.head(30))},
            headers=auth(keys["scorer"]),
        ).json()
    assert list(batch["denial_id"]) == [r["denial_id"] for r in api["results"]]
    assert list(batch["recovery.probability"]) == [
        r["recovery"]["probability"] for r in api["results"]
    ]
    assert list(batch["priority.score"]) == [r["priority"]["score"] for r in api["results"]]


def test_batch_scoring_skips_broken_rows_into_a_rejects_file(
    registry, tmp_path: Path, monkeypatch
) -> None:
    data_dir, _, denials = registry
    set_champion(data_dir, "1")
    from features.contract import write_denials

    source = tmp_path / "backlog.csv"
    write_denials(denials.head(6), source)
    backlog = pd.read_csv(source, dtype=str, keep_default_na=False)
    backlog["patient_name"] = "Jane Example"  # beyond the contract: never copied to rejects
    backlog.loc[2, "denied_amount"] = "twelve dollars"
    backlog.loc[4, "service_date"] = "2031-01-01"
    backlog.to_csv(source, index=False)
    out, rejects = tmp_path / "scores.csv", tmp_path / "rejects.csv"
    monkeypatch.setenv("DENIAL_TRIAGE_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    try:
        command = ["score", "--data", str(source), "--out", str(out)]
        refused = CliRunner().invoke(cli, command)
        skipped = CliRunner().invoke(cli, [*command, "--skip-invalid", "--rejects", str(rejects)])
        unnamed = CliRunner().invoke(cli, [*command, "--skip-invalid"])
    finally:
        get_settings.cache_clear()
    assert refused.exit_code == 1 and "2 rows break the contract" in refused.output
    assert skipped.exit_code == 2, skipped.output
    assert unnamed.exit_code == 1 and "--rejects" in unnamed.output
    scored = pd.read_csv(out)
    expected = [backlog.loc[i, "denial_id"] for i in (0, 1, 3, 5)]
    assert list(scored["denial_id"]) == expected
    rejected = pd.read_csv(rejects, dtype=str)
    assert list(rejected["row"]) == ["3", "5"]
    assert list(rejected["denial_id"]) == [backlog.loc[2, "denial_id"], backlog.loc[4, "denial_id"]]
    assert rejected.loc[0, "denied_amount"] == "twelve dollars"  # as read, to be fixed
    assert rejected.loc[0, "errors"].startswith("denied_amount: ")
    assert rejected.loc[1, "errors"].startswith("service_date: ")
    assert "patient_name" not in rejected.columns


@pytest.mark.slow  # starts a Dask cluster
def test_batch_scoring_on_a_dask_cluster_matches_local_scoring(registry, tmp_path: Path) -> None:
    from features.contract import write_denials
    from serving.batch import score_file, score_file_on_dask
    from serving.scoring import ModelStore

    data_dir, _, denials = registry
    folder = tmp_path / "backlog"
    folder.mkdir()
    for number, part in enumerate((denials.iloc[:60], denials.iloc[60:120])):
        write_denials(part, folder / f"part-{number}.parquet")
    set_champion(data_dir, "1")
    model = ModelStore(data_dir / "model-cache").load_version("1").triage
    local_rows, _ = score_file(model, folder / "part-0.parquet", tmp_path / "local.parquet", False)
    cluster_rows = score_file_on_dask(model, folder, tmp_path / "cluster.parquet", False, "local")
    local = pd.read_parquet(tmp_path / "local.parquet")
    cluster = pd.read_parquet(tmp_path / "cluster.parquet")
    assert (local_rows, cluster_rows) == (60, 120)
    pd.testing.assert_frame_equal(cluster.head(60), local)
