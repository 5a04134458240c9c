"""Walk-forward runs (``studio train G --walk-forward K [--expanding]``): one model per fold, judged on
the out-of-sample dates of all folds together.

The usable dates are cut into K folds by ``studio.data.splits.walk_forward``: each fold's test window
follows the previous fold's, the last one ends at the last usable date, and each fold trains on the
dates before its validation window (a window of fixed length, or all dates from the first with
``expanding``), with the label gap between train, valid and test. Each fold is an ordinary run (its own
normalisation fitted on its own training dates, its own early stopping), written under the walk-forward
run's directory:

    runs/<time>-<graph>-wf<K>/
      config.json          kind "walk_forward", the fold plan (dates of every split of every fold), and
                           the graph, data, training and metric settings the folds share
      graph.json           the graph
      folds/fold-1/ ...    one ordinary run directory per fold (resume and reproduce work on each)
      predictions.parquet  the test predictions of every fold, one after the other (a ``fold`` column)
      daily.csv            the daily figures of those dates (split "test")
      metrics.json         the figures of the concatenated out-of-sample predictions (split "test") and
                           each fold's own (``folds``)
      pnl.png              the out-of-sample long, short and long-short

The out-of-sample figures are computed from the folds' predictions.parquet files as written, so a
walk-forward run resumed after a kill ends with the same records as one that was not interrupted.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.document import Graph
from studio.core.graph_file import dumps_graph, load_graph
from studio.core.owned_dir import ForeignEntry, owned_file, owned_writer, read_json
from studio.data.dataset import CrossSectionData, DataConfig
from studio.data.splits import Splits, walk_forward
from studio.metrics import summarize
from studio.train.config import SourceSpec, TrainConfig
from studio.train.records import RunWriter, check_run_folder, read_run
from studio.train.run_lock import RunInUse, RunLock, held_by
from studio.train.sources import LoadedData, graph_fingerprint, load_source

KIND = "walk_forward"
#: fold statuses whose test predictions count: the fold ran to its end
COMPLETE = ("finished", "early_stopped")


class WalkForwardError(Exception):
    """A walk-forward that cannot be planned or resumed (one line)."""


def is_walk_forward(config: dict) -> bool:
    return config.get("kind") == KIND


def plan_folds(usable: np.ndarray, folds: int, gap: int, expanding: bool = False,
               fold_dates: int | None = None, source: str = "the data") -> list[Splits]:
    """K folds over the usable date indices. Each fold's validation and test windows have
    ``fold_dates`` dates (default: the usable dates / (K + 3), so that the first fold trains on about
    two windows' worth); without ``expanding`` every fold trains on as many dates as the first."""
    n = len(usable)
    if folds < 2:
        raise WalkForwardError(f"--walk-forward: expects at least 2 folds, gets {folds}")
    size = fold_dates if fold_dates is not None else n // (folds + 3)
    if size < 1:
        raise WalkForwardError(f"--fold-dates: expects a count >= 1, gets {size}")
    first_train = n - (folds + 1) * size - 2 * gap
    if first_train < max(2, size):
        raise WalkForwardError(f"{source}: {n} usable dates are too few for {folds} folds of {size} test dates "
                               f"(the first fold would train on {max(first_train, 0)} dates)")
    return walk_forward(usable, folds, valid_dates=size, test_dates=size, gap=gap,
                        train_dates=None if expanding else first_train)


class WalkForward:
    """Trains the folds one after another; ``run()`` yields each fold's records (with ``fold`` and
    ``folds`` added) and ends with a ``done`` record of the whole (``walk_forward``: True)."""

    def __init__(self, graph: Graph, source: SourceSpec | None = None, config: TrainConfig | None = None,
                 data_config: DataConfig | None = None, out_dir: str | Path | None = None, *, folds: int = 4,
                 expanding: bool = False, fold_dates: int | None = None, loaded: LoadedData | None = None,
                 registry=None, cost: float = 0.002, quantile: float = 0.2) -> None:
        from studio.train.engine import Trainer, data_config_for

        Trainer(graph, source, config, data_config, registry=registry)  # the same checks as one run, now
        self.graph = graph.copy()
        self.source = source or SourceSpec()
        self.config = config or TrainConfig()
        self.data_config = data_config_for(self.graph, data_config)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.folds, self.expanding, self.fold_dates = folds, expanding, fold_dates
        self.loaded, self.registry = loaded, registry
        self.cost, self.quantile = cost, quantile
        self.run_dir: Path | None = None
        self.plan: list[Splits] | None = None

    # ---- the plan ------------------------------------------------------------------------------
    def _prepare(self) -> None:
        if self.loaded is None:
            self.loaded = load_source(self.source, self.graph.input)
        if self.plan is None:
            from studio.train.engine import features_file_for

            panel = self.loaded.panel  # which dates have a cross-section (features on disk when large)
            data = CrossSectionData(panel, self.data_config, features_file=features_file_for(panel, self.data_config))
            self.plan = plan_folds(data.usable, self.folds, self.data_config.lag + self.data_config.horizon,
                                   self.expanding, self.fold_dates, self.source.describe())
        self.folds = len(self.plan)

    def _config(self) -> dict:
        import platform

        import torch

        from studio import __version__
        from studio.train.engine import resolved_path

        dates = self.loaded.panel.dates
        plan = []
        for k, splits in enumerate(self.plan, 1):
            plan.append({"fold": k, "dir": f"folds/fold-{k}", **{name: [int(i) for i in idx]
                                                                   for name, idx in splits.items()},
                         "gap": int(splits.gap), "describe": splits.describe(dates)})
        return {
            "kind": KIND,
            "walk_forward": {"folds": self.folds, "expanding": self.expanding,
                             "fold_dates": len(self.plan[0].test), "plan": plan},
            "graph": {"name": self.graph.name, "file": str(self.graph.path) if self.graph.path else self.graph.name,
                      "hash": graph_fingerprint(self.graph)},
            "data": {"source": self.source.to_json(), "resolved_path": resolved_path(self.source),
                     "config": self.data_config.to_json(),
                     "hash": self.loaded.fingerprint(), "panel": self.loaded.panel.describe()},
            "training": self.config.to_json(),
            "seed": self.config.seed,
            "metrics": {"cost": self.cost, "quantile": self.quantile, "min_stocks": self.data_config.min_stocks,
                        "lag": self.data_config.lag, "horizon": self.data_config.horizon},
            "versions": {"studio": __version__, "torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "status": "running",
        }

    # ---- resume -------------------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir: str | Path, registry=None) -> WalkForward:
        from studio.train.engine import _data_config, recorded_source

        run_dir = Path(run_dir)
        try:  # a walk-forward from someone else: nothing in it (its folds' folder, each fold) followed out of it
            check_run_folder(run_dir)
            check_run_folder(run_dir / "folds")
            if (run_dir / "folds").is_dir():
                for fold_dir in sorted((run_dir / "folds").iterdir()):
                    check_run_folder(fold_dir)
        except ForeignEntry as exc:
            raise WalkForwardError(str(exc)) from None
        owner = held_by(run_dir)
        if owner is not None:
            raise WalkForwardError(str(RunInUse(run_dir, owner)))
        try:
            config = read_json(run_dir / "config.json")
            settings = config["walk_forward"]
            graph = load_graph(run_dir / "graph.json")
            plan = [Splits(*(np.asarray(fold[name], dtype=np.int64) for name in ("train", "valid", "test")),
                           gap=int(fold["gap"])) for fold in settings["plan"]]
            job = cls(graph, recorded_source(config),
                      TrainConfig.from_json(config["training"]), _data_config(config["data"]["config"]),
                      run_dir.parent, folds=len(plan), expanding=bool(settings["expanding"]), registry=registry,
                      cost=config["metrics"]["cost"], quantile=config["metrics"]["quantile"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WalkForwardError(f"{run_dir}: cannot resume this walk-forward run ({exc})") from None
        job.plan, job.run_dir = plan, run_dir
        return job

    # ---- the run ------------------------------------------------------------------------------
    def run(self, cancel: threading.Event | None = None, resume: bool = False) -> Iterator[dict[str, Any]]:
        """The folds in turn. The walk-forward's directory is owned by this process while it runs
        (studio.train.run_lock), each fold's by its own run."""
        locks: list[RunLock] = []
        try:
            yield from self._run(cancel, resume, locks)
        finally:
            for lock in locks:
                lock.release()

    def _run(self, cancel: threading.Event | None, resume: bool, locks: list[RunLock]) -> Iterator[dict[str, Any]]:
        from studio.train.engine import Trainer, check_run_dir, take_run_lock

        cancel = cancel or threading.Event()
        if resume:
            locks.append(take_run_lock(self.run_dir, WalkForwardError))
        self._prepare()
        if resume:
            writer = RunWriter(self.run_dir)
            if self.loaded.fingerprint() != read_json(writer.path / "config.json")["data"]["hash"]:
                raise WalkForwardError(f"{writer.path}: cannot resume: the data differ from the run's")
        else:
            writer = RunWriter.create(self.out_dir, f"{self.graph.name}-wf{self.folds}")
            locks.append(take_run_lock(writer.path, WalkForwardError))
            writer.write_text("graph.json", dumps_graph(self.graph))
            self.graph.path = writer.path / "graph.json"
            writer.write_json("config.json", self._config())  # last: a directory with config.json resumes
        self.run_dir = writer.path
        folds_dir = writer.path / "folds"
        status, message = "finished", f"{self.folds} folds"
        for k, splits in enumerate(self.plan, 1):
            fold_dir = folds_dir / f"fold-{k}"
            done = _fold_status(fold_dir)
            if done in COMPLETE:
                continue  # a resumed walk-forward keeps the folds that ran to their end
            if cancel.is_set():
                status, message = "stopped", f"stopped before fold {k} of {self.folds}"
                break
            if done is not None or (fold_dir / "config.json").is_file():  # killed or stopped in this fold
                trainer = Trainer.resume(fold_dir, self.registry)
                trainer.loaded = self.loaded
                fold_resume = True
            else:
                if fold_dir.exists():  # made but killed before its run started: nothing in it to keep
                    check_run_dir(fold_dir, WalkForwardError)
                    for leftover in sorted(fold_dir.rglob("*"), reverse=True):
                        leftover.unlink() if leftover.is_file() else leftover.rmdir()
                    fold_dir.rmdir()
                trainer = Trainer(self.graph, self.source, self.config, self.data_config, out_dir=folds_dir,
                                  registry=self.registry, loaded=self.loaded, cost=self.cost,
                                  quantile=self.quantile, splits=splits, run_name=f"fold-{k}")
                fold_resume = False
            last: dict = {}
            for record in trainer.run(cancel, resume=fold_resume):
                last = record
                yield {**record, "fold": k, "folds": self.folds}
            if last.get("status") not in COMPLETE:
                if last.get("status") == "failed":
                    status, message = "failed", f"fold {k} of {self.folds} failed: {last.get('message', '')}"
                else:
                    status = last.get("status") or "stopped"
                    message = f"stopped in fold {k} of {self.folds}"
                break
        metrics = self._write_results(writer, status, message)
        writer.update_json("config.json", {"status": status, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        yield {"kind": "done", "status": status, "message": message, "best_epoch": None, "metrics": metrics,
               "run_dir": str(writer.path), "walk_forward": True, "folds": self.folds}

    def _write_results(self, writer: RunWriter, status: str, message: str) -> dict:
        """The out-of-sample figures from the complete folds' predictions, as they were written."""
        import pandas as pd

        panel = self.loaded.panel
        symbols = list(panel.symbols)
        frames, score_parts, label_parts, date_parts, fold_figures = [], [], [], [], []
        for k, splits in enumerate(self.plan, 1):
            fold_dir = writer.path / "folds" / f"fold-{k}"
            if _fold_status(fold_dir) not in COMPLETE:
                break
            run = read_run(fold_dir)
            fold_figures.append({"fold": k, "status": run["metrics"]["status"],
                                 "best_epoch": run["metrics"]["best_epoch"],
                                 "test": run["metrics"]["splits"]["test"],
                                 "first": str(panel.dates[splits.test[0]]), "last": str(panel.dates[splits.test[-1]])})
            with owned_file(fold_dir / "predictions.parquet") as fh:
                frame = pd.read_parquet(fh)
            frame = frame[frame["split"] == "test"]
            frame = frame.assign(fold=k)
            frames.append(frame)
            dates = pd.to_datetime(panel.dates[splits.test])
            score_parts.append(frame.pivot(index="date", columns="symbol", values="score")
                               .reindex(index=dates, columns=symbols).to_numpy(dtype=np.float64))
            label_parts.append(frame.pivot(index="date", columns="symbol", values="label")
                               .reindex(index=dates, columns=symbols).to_numpy(dtype=np.float64))
            date_parts.append(np.asarray(splits.test))
        metrics: dict[str, Any] = {"status": status, "message": message, "kind": KIND, "best_epoch": None,
                                   "folds_done": len(fold_figures), "folds": fold_figures,
                                   "quantile": self.quantile, "cost": self.cost,
                                   "min_stocks": self.data_config.min_stocks, "lag": self.data_config.lag,
                                   "horizon": self.data_config.horizon, "splits": {}}
        if frames:
            scores, labels = np.vstack(score_parts), np.vstack(label_parts)
            test_dates = np.concatenate(date_parts)
            summary, daily = summarize(scores, labels, quantile=self.quantile, cost=self.cost,
                                       min_stocks=self.data_config.min_stocks)
            oracle = self.loaded.oracle_ic(test_dates, self.data_config.lag, self.data_config.horizon)
            if oracle is not None:
                summary["oracle_ic"] = oracle
            metrics["splits"]["test"] = summary
            predictions = pd.concat(frames, ignore_index=True)
            predictions["split"] = predictions["split"].astype(str).astype("category")
            with owned_writer(writer.path / "predictions.parquet", binary=True) as fh:
                predictions.to_parquet(fh, index=False)
            rows = [{"date": str(panel.dates[d]), "split": "test",
                     **{key: float(daily[key][i]) for key in ("ic", "rank_ic", "long", "short", "long_short",
                                                               "turnover")}}
                    for i, d in enumerate(test_dates)]
            writer.write_daily(rows)
            writer.write_pnl_chart(rows, f"{self.graph.name}: walk-forward, {len(frames)} folds", summary)
        writer.write_json("metrics.json", metrics)
        return metrics


def _fold_status(fold_dir: Path) -> str | None:
    """The status in a fold's metrics.json, or None when it has none (not run, or killed in its run)."""
    try:
        return read_json(fold_dir / "metrics.json").get("status")
    except (OSError, ValueError, AttributeError):
        return None


def fold_rows(run_dir: Path, split: str = "test") -> list[dict]:
    """Each fold of a walk-forward run as a row: its directory, status and figures of ``split``."""
    rows = []
    for fold_dir in sorted((run_dir / "folds").glob("fold-*"), key=lambda p: int(p.name.split("-")[1])
                           if p.name.split("-")[1].isdigit() else math.inf):
        try:
            run = read_run(fold_dir)
        except (OSError, ValueError):
            continue
        metrics = run["metrics"] or {}
        rows.append({"path": fold_dir, "status": metrics.get("status") or run["status"],
                     "best_epoch": metrics.get("best_epoch"),
                     "figures": (metrics.get("splits") or {}).get(split, {})})
    return rows
