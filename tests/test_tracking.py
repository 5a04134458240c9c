"""studio train --mlflow: each run logged to MLflow (params, per-epoch and final figures, artifacts),
read back by studio compare --mlflow, and checked against the run directory's own files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import main
from tests.conftest import GRAPHS, ROOT

TINY_TRAIN = ["--synthetic", "stocks=30", "--synthetic", "days=60", "--epochs", "2", "--patience", "0",
              "--threads", "1", "-q"]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{folder / 'store' / 'mlflow.db'}"
    code = main(["train", str(GRAPHS / "default.json"), "--mlflow", uri, "--out", str(folder / "runs"),
                 *TINY_TRAIN])
    assert code == 0
    (run_dir,) = (folder / "runs").iterdir()
    return uri, run_dir


def only_run(uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("studio")
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run


def test_a_tracked_run_has_the_run_directory_figures(tracked):
    uri, run_dir = tracked
    client, run = only_run(uri)
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    params = run.data.params
    assert params["graph.hash"] == config["graph"]["hash"]
    assert params["seed"] == str(config["seed"]) and params["training.epochs"] == "2"
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    assert run.data.tags["studio.run_dir"] == str(run_dir.resolve())
    assert run.data.tags["studio.status"] == "finished"
    for split, figures in metrics["splits"].items():
        for key, value in figures.items():
            if isinstance(value, float):
                assert run.data.metrics[f"{split}.{key}"] == pytest.approx(value, rel=0, abs=0), (split, key)
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    history = client.get_metric_history(run.info.run_id, "epoch.valid.ic")
    assert [(h.step, h.value) for h in history] == [(e["epoch"], e["valid"]["ic"]) for e in epochs]
    assert len(history) == 2
    train_loss = client.get_metric_history(run.info.run_id, "train_loss")
    assert [h.value for h in train_loss] == [e["train_loss"] for e in epochs]
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "graph.json", "metrics.json", "metrics.jsonl", "model.pt"} <= logged
    assert "checkpoint.pt" not in logged
    artifacts = Path(client.download_artifacts(run.info.run_id, "metrics.json"))
    assert json.loads(artifacts.read_text()) == metrics


def test_compare_reads_the_tracked_runs_back(tracked, capsys):
    uri, run_dir = tracked
    assert main(["compare", "--mlflow", uri]) == 0
    out = capsys.readouterr().out
    test = json.loads((run_dir / "metrics.json").read_text())["splits"]["test"]
    assert "test split, from MLflow (1 run)" in out
    row = next(line for line in out.splitlines() if line.startswith(run_dir.name))
    assert "default" in row and "finished" in row and f"{test['ic']:.4f}" in row


def test_a_store_that_cannot_be_opened_is_refused_in_one_line_before_training(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the store's folder would be")
    code = main(["train", str(GRAPHS / "default.json"), "--mlflow", f"sqlite:///{blocker / 'db' / 'x.db'}",
                 "--out", str(tmp_path / "runs"), *TINY_TRAIN])
    err = capsys.readouterr().err
    assert code == 2 and "cannot make the store's folder" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "runs").exists()  # refused before anything trained


def test_tracking_that_fails_mid_run_is_one_line_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    from studio.train.tracking import RunTracker, TrackingError

    def refuse(self, run_dir):
        raise TrackingError("mlflow sqlite:///x.db: database is locked")

    monkeypatch.setattr(RunTracker, "_start", refuse)
    code = main(["train", str(GRAPHS / "default.json"), "--mlflow", f"sqlite:///{tmp_path / 'x.db'}",
                 "--out", str(tmp_path / "runs"), *TINY_TRAIN])
    err = capsys.readouterr().err
    assert code == 1  # the run is whole, the record of it is not: not a silent success
    assert "studio: mlflow sqlite:///x.db: database is locked (not logged; the run goes on)" in err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "finished"


def test_an_unknown_experiment_is_one_line(tmp_path, capsys):
    assert main(["compare", "--mlflow", f"sqlite:///{tmp_path / 'empty.db'}"]) == 2
    assert "no experiment 'studio'" in capsys.readouterr().err


def test_without_mlflow_the_options_say_what_to_install(tmp_path):
    # MLflow is an optional extra: block its import and the command says what to install, in one line
    code = ("import sys; sys.modules['mlflow'] = None\n"
            "from studio.cli import main\n"
            f"sys.exit(main(['train', {str(GRAPHS / 'default.json')!r}, '--mlflow', '--out', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "studio: --mlflow needs MLflow: pip install -e '.[track]'"
    assert not any(tmp_path.iterdir())


def test_a_file_store_works_where_asked_for(tmp_path, capsys):
    store = tmp_path / "mlruns"
    code = main(["train", str(GRAPHS / "default.json"), "--mlflow", store.as_uri(), "--out", str(tmp_path / "runs"),
                 *TINY_TRAIN])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    _, run = only_run(store.as_uri())
    test = json.loads((run_dir / "metrics.json").read_text())["splits"]["test"]
    assert run.data.metrics["test.ic"] == test["ic"] and run.data.metrics["test.sharpe"] == test["sharpe"]
    capsys.readouterr()
    assert main(["compare", "--mlflow", store.as_uri()]) == 0
    assert f"{test['ic']:.4f}" in capsys.readouterr().out


def test_a_walk_forward_is_tracked_as_its_folds_and_its_whole(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(["train", str(GRAPHS / "default.json"), "--walk-forward", "2", "--mlflow", uri,
                 "--out", str(tmp_path / "runs"), "--synthetic", "stocks=30", "--synthetic", "days=100",
                 "--epochs", "1", "--patience", "0", "--threads", "1", "-q"])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("studio").experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {f"{run_dir.name}/fold-1", f"{run_dir.name}/fold-2", run_dir.name}
    whole = by_name[run_dir.name]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert whole.data.metrics["test.ic"] == metrics["splits"]["test"]["ic"]
    assert whole.data.params["kind"] == "walk_forward" and whole.data.params["walk_forward.folds"] == "2"
    assert not any(key.startswith("walk_forward.plan") for key in whole.data.params)
    fold = by_name[f"{run_dir.name}/fold-2"]
    assert fold.data.tags["studio.walk_forward"] == run_dir.name
    fold_metrics = json.loads((run_dir / "folds" / "fold-2" / "metrics.json").read_text())
    assert fold.data.metrics["test.ic"] == fold_metrics["splits"]["test"]["ic"]


def test_a_store_that_fails_every_call_mid_run_is_one_line_and_the_run_finishes(tmp_path, capsys, monkeypatch):
    # the attack: the store accepts the run's start, then every call fails (the database replaced, the
    # server gone), ending the MLflow run included; the training used to die of it (exit 3, run 'running')
    import mlflow
    from mlflow.exceptions import MlflowException

    calls = {"log_metrics": 0, "end_run": 0}

    def failing(name):
        def call(*args, **kwargs):
            calls[name] += 1
            raise MlflowException("(sqlite3.DatabaseError) file is not a database")
        return call

    monkeypatch.setattr(mlflow, "log_metrics", failing("log_metrics"))
    monkeypatch.setattr(mlflow, "end_run", failing("end_run"))
    code = main(["train", str(GRAPHS / "default.json"), "--mlflow", f"sqlite:///{tmp_path / 'store' / 'x.db'}",
                 "--out", str(tmp_path / "runs"), *TINY_TRAIN, "--epochs", "3"])
    err = capsys.readouterr().err
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "file is not a database (not logged; the run goes on)" in lines[0]
    assert calls["log_metrics"] == 1  # tracking is off after the first failure: no call per epoch after it
    (run_dir,) = (tmp_path / "runs").iterdir()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["status"] == "finished"
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 3


def test_an_unreachable_http_store_is_refused_in_seconds_before_training(tmp_path, capsys, monkeypatch):
    # MLflow's own defaults retry a refused connection for about two minutes before the error
    import os
    import socket
    import time

    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    code = main(["train", str(GRAPHS / "default.json"), "--mlflow", f"http://127.0.0.1:{port}",
                 "--out", str(tmp_path / "runs"), *TINY_TRAIN])
    seconds = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2 and seconds < 15, (code, seconds)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"studio: mlflow http://127.0.0.1:{port}: "), err
    assert not (tmp_path / "runs").exists()  # refused before anything trained
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # the probe's settings given back
