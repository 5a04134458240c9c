"""MLflow tracking of runs (``studio train --mlflow [URI]``): each run becomes an MLflow run with its
settings as params (the graph's hash first), the per-epoch figures as metrics with the epoch as step
(``train_loss``, ``valid_loss``, ``epoch.valid.ic``, ...), the final figures of every split at the best
epoch (``test.ic``, ``valid.sharpe``, ...: what metrics.json says) and the run directory as artifacts (its
checkpoint left out: model.pt holds the weights). ``studio compare --mlflow URI`` reads the same runs
back into the comparison table.

MLflow is the optional ``track`` extra (``pip install -e '.[track]'``) and is imported only here. The
default store is a SQLite database in ``mlruns/`` (MLflow's file store is in maintenance mode); a ``file:``
URI still works where asked for.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from studio.train.run_lock import LOCK_FILE

EXPERIMENT = "studio"
#: the default tracking store: a local database, its artifacts beside it
DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
#: config.json entries logged as params (flattened: training.lr, data.config.days, ...)
_PARAMS = ("kind", "walk_forward", "graph", "training", "data", "metrics", "versions", "seed", "device",
           "threads")
_LEFT_OUT = ("data.panel", "data.splits", "graph.file", "walk_forward.plan", "data.given_splits")
#: MLflow's HTTP settings while the store is probed before training: a server that is down or a host that
#: does not answer is one line within seconds (MLflow's own defaults retry for about two minutes)
PROBE_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
#: ... and during the run, unless the environment sets them: a store that goes away costs the run
#: seconds, once (tracking is then off), not minutes per call
RUN_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


class TrackingError(Exception):
    """MLflow is missing or its store cannot be used (one line)."""


def _mlflow(uri: str):
    try:
        import mlflow
    except ImportError:
        raise TrackingError("--mlflow needs MLflow: pip install -e '.[track]'") from None
    for name in ("mlflow", "alembic"):  # their INFO lines (tables created, migrations) are not the user's news
        logging.getLogger(name).setLevel(logging.WARNING)
    # a retried request logs a warning per try: the failure, if it comes, is said once, by the studio
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # asked for by name: MLflow would refuse it
    if uri.startswith("sqlite:///"):
        try:
            Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingError(f"mlflow {uri}: cannot make the store's folder ({exc.strerror})") from None
    _check_local_store(uri)
    return mlflow


def _check_local_store(uri: str) -> None:
    """Refuse a local store with a symbolic link or a special file planted where MLflow writes: the
    database and its journals, the artifacts folder beside it, or (a file store) the store's folder and
    its experiments' folders. SQLite and MLflow follow links, so ``mlruns/mlflow.db -> ~/victim`` would be
    written through. The store's own path is the user's choice and may be a link."""
    from studio.core.owned_dir import ForeignEntry, check_entry, check_folder

    try:
        if uri.startswith("sqlite:///"):
            database = Path(uri[len("sqlite:///"):])
            for suffix in ("", "-journal", "-wal", "-shm"):
                check_entry(database.with_name(database.name + suffix), "mlflow store")
            check_entry(database.parent / "artifacts", "mlflow store", folder_ok=True)
        elif uri.startswith("file:") or "://" not in uri:
            from urllib.parse import unquote, urlparse

            root = Path(unquote(urlparse(uri).path) if uri.startswith("file:") else uri)
            check_folder(root, "mlflow store")
            if root.is_dir():
                for experiment in sorted(root.iterdir()):
                    check_folder(experiment, "mlflow store")
    except ForeignEntry as exc:
        raise TrackingError(f"mlflow {uri}: {exc}") from None


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "databricks"))


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` set in os.environ (where MLflow reads them at each request), the old ones back after."""
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _one_line(uri: str, exc: Exception) -> TrackingError:
    from studio.core.text import error_line

    return TrackingError(f"mlflow {uri}: {error_line(exc, limit=160)}")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            _flatten(value[key], f"{prefix}.{key}" if prefix else str(key), out)
    elif not any(prefix == gone or prefix.startswith(gone + ".") for gone in _LEFT_OUT):
        out[prefix] = value


def _finite(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}


class RunTracker:
    """Follows one run's records and logs them to MLflow as they come.

    The store is probed when the tracker is made (before anything trains; an HTTP store with a short
    timeout and no retries): a store that cannot be used raises TrackingError there. A call that fails
    later raises TrackingError once, ends the MLflow run if it can and turns tracking off: every later
    record is ignored, so the training never waits on, or stops for, a store that went away."""

    def __init__(self, uri: str | None = None, experiment: str = EXPERIMENT) -> None:
        self.uri = uri or DEFAULT_URI
        self.mlflow = _mlflow(self.uri)
        self.experiment = experiment
        self.run = None
        #: the one line of the failure that turned tracking off (None while it works)
        self.failure: str | None = None
        probe = _environment(PROBE_HTTP) if _is_http(self.uri) else contextlib.nullcontext()
        try:  # the store opened now, before anything trains: a bad URI is one line, not a lost run
            with probe:
                self._open()
        except Exception as exc:
            raise _one_line(self.uri, exc) from None
        if _is_http(self.uri):
            for name, value in RUN_HTTP.items():
                os.environ.setdefault(name, value)

    def _open(self) -> None:
        """The experiment, made if the store has none yet (the first request to the store)."""
        self.mlflow.set_tracking_uri(self.uri)
        if self.mlflow.get_experiment_by_name(self.experiment) is None:
            artifacts = None
            if self.uri.startswith("sqlite:///"):  # artifacts beside the database, not in the working folder
                artifacts = (Path(self.uri[len("sqlite:///"):]).parent.resolve() / "artifacts").as_uri()
            self.mlflow.create_experiment(self.experiment, artifact_location=artifacts)

    def _start(self, run_dir: Path) -> None:
        import json

        mlflow = self.mlflow
        try:
            mlflow.set_tracking_uri(self.uri)
            mlflow.set_experiment(self.experiment)
            from studio.core.owned_dir import read_json

            config = read_json(run_dir / "config.json")
            tags = {"studio.run_dir": str(run_dir.resolve()), "studio.graph": config["graph"]["name"]}
            name = run_dir.name
            if run_dir.parent.name == "folds":  # a walk-forward fold: named and tagged with its whole
                name = f"{run_dir.parent.parent.name}/{run_dir.name}"
                tags["studio.walk_forward"] = run_dir.parent.parent.name
            self.run = mlflow.start_run(run_name=name, tags=tags)
            params: dict[str, Any] = {}
            for key in _PARAMS:
                _flatten(config.get(key), key, params)
            mlflow.log_params({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in params.items()})
        except Exception as exc:  # a store that cannot be written: one line, the run itself goes on
            raise _one_line(self.uri, exc) from None

    def __call__(self, record: dict) -> None:
        if self.failure is not None:
            return
        try:
            self._record(record)
        except Exception as exc:  # the store went away mid-run: one line, the run itself goes on
            error = exc if isinstance(exc, TrackingError) else _one_line(self.uri, exc)
            self.failure = str(error)
            self.close()
            raise error from None

    def _record(self, record: dict) -> None:
        from studio.train.run_figures import split_figures

        mlflow = self.mlflow
        if record["kind"] == "start":
            self._start(Path(record["run_dir"]))
        elif record["kind"] == "epoch" and self.run is not None:
            figures = {"train_loss": record.get("train_loss"), "valid_loss": record.get("valid_loss"),
                       **{f"epoch.valid.{k}": v for k, v in (record.get("valid") or {}).items()}}
            mlflow.log_metrics(_finite(figures), step=int(record["epoch"]))
        elif record["kind"] == "done" and (self.run is not None or record.get("walk_forward")):
            run_dir = Path(record["run_dir"])
            if self.run is None:  # the whole of a walk-forward: a run of its own, after its folds'
                self._start(run_dir)
            metrics = record.get("metrics") or {}
            # metrics.json's figures and the baselines' (studio.train.run_figures reads both, as compare does)
            final = {f"{split}.{k}": v for split in (metrics.get("splits") or {})
                     for k, v in split_figures(run_dir, metrics, split).items() if not isinstance(v, str)}
            mlflow.log_metrics(_finite({**final, "best_epoch": metrics.get("best_epoch")}))
            if record.get("walk_forward"):
                mlflow.set_tag("studio.walk_forward", run_dir.name)
            mlflow.set_tag("studio.status", record.get("status", ""))
            for path in sorted(run_dir.iterdir()):  # the run's own files: a link there is never followed
                if not path.is_symlink() and path.is_file() and path.name not in ("checkpoint.pt", LOCK_FILE):
                    mlflow.log_artifact(str(path))
            mlflow.end_run("FINISHED" if record.get("status") != "failed" else "FAILED")
            self.run = None

    def close(self) -> None:
        """End a run left open (the command stopped by an error, or the store failed); never raises: a
        store that cannot take this either has been reported already."""
        if self.run is not None:
            self.run = None
            status = "FAILED" if self.failure is not None else "KILLED"
            with contextlib.suppress(Exception):
                self.mlflow.end_run(status)


def read_runs(uri: str, experiment: str = EXPERIMENT, split: str = "test") -> list[dict]:
    """The runs of an MLflow experiment as rows of the comparison table."""
    _mlflow(uri)  # installed, and the store allowed
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise TrackingError(f"mlflow {uri}: no experiment {experiment!r}")
        runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])
    except TrackingError:
        raise
    except Exception as exc:
        raise _one_line(uri, exc) from None
    rows = []
    for run in runs:
        metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
        rows.append({"run": run.info.run_name or run.info.run_id, "graph": tags.get("studio.graph", ""),
                     "status": tags.get("studio.status", run.info.status.lower()),
                     "seed": params.get("seed"), "graph_hash": params.get("graph.hash"),
                     "run_dir": tags.get("studio.run_dir", ""),
                     **{key.split(".", 1)[1]: value for key, value in metrics.items() if key.startswith(split + ".")}})
    return rows
