"""Sweeps: many graphs x settings x seeds, each trial an ordinary run directory.

A spec (JSON or TOML; docs/sweeps.md) names graphs (files or globs, relative to the spec's folder),
seeds (a count or a list), a grid of settings to vary and the shared training and data settings:

    {"name": "gru-width", "graphs": ["../graphs/default.json"], "seeds": 5,
     "grid": {"training.lr": [0.001, 0.002], "gru_1.hidden_size": [16, 32]},
     "training": {"epochs": 10}, "data": {"synthetic": {"stocks": 240}}, "objective": "valid.ic"}

Grid keys: ``training.FIELD`` (TrainConfig), ``data.FIELD`` (DataConfig) or ``NODE_ID.PARAM`` (a
parameter of a node of every graph of the sweep; a graph without that node is an error). A trial is
(graph, grid point, seed). The sweep directory holds ``spec.json`` (the spec as read), ``trials.json``
(each trial's status, run directory, objective or one-line error; written atomically after every
trial), ``trials.csv`` and ``summary.csv`` (per graph and grid point: mean and std across seeds).

Executor ``local``: a process pool (``--workers``, default: one per two cores); trials run in fresh
processes (spawned: torch is not forked), each with ``cores // workers`` torch threads. A failing trial
is recorded and the others go on; Ctrl-C stops every trial (their best epochs are kept) and a
resumed sweep (``studio sweep --resume DIR``) runs only the trials that did not finish.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib
import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from studio.core.owned_dir import ForeignEntry, check_folder, owned_writer, read_json, write_owned
from studio.metric_specs import objectives

SPEC_KEYS = {"name", "graphs", "seeds", "grid", "training", "data", "objective", "executor", "workers", "resources",
             "search", "samples"}
#: the distributions of a search: name -> number of bounds (None: a list of choices)
SEARCH_KINDS = {"loguniform": 2, "uniform": 2, "int": 2, "choice": None}
FINISHED = ("finished", "early_stopped", "time_limit")
OBJECTIVES = objectives()


class SweepError(Exception):
    """A spec or sweep directory that cannot be used; one line naming the file and field."""


@dataclass(frozen=True)
class SweepExecutor:
    """Where a sweep's trials run. ``target`` names the function, ``"module:function"`` (imported only
    when a sweep runs on it, as a Recipe's target is), called as ``function(sweep, address=, workers=,
    on_trial=, cancel=, on_progress=)`` -> the sweep's trials."""

    target: str
    #: what to install when the target's module cannot be imported ("": part of the studio itself)
    needs: str = ""


#: the executors a spec's ``executor`` and ``studio sweep --executor`` name
EXECUTORS = {
    "local": SweepExecutor("studio.train.sweep:run_local"),
    "ray": SweepExecutor("studio.train.sweep_ray:run_on_ray", needs="Ray: pip install -e '.[scale]'"),
}


def executor_function(name: str):
    """The function of the executor called ``name``; SweepError when its module needs a package not
    installed."""
    executor = EXECUTORS[name]
    module_name, _, function_name = executor.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        if not executor.needs:
            raise
        raise SweepError(f"the {name} executor needs {executor.needs}") from None
    return getattr(module, function_name)


#: the files and folders of a sweep directory (sweep.log: the studio's queue; ray: Ray Tune's storage)
SWEEP_FILES = ("spec.json", "trials.json", "runs_dir.json", "trials.csv", "summary.csv", "run.lock", "sweep.log")
SWEEP_FOLDERS = ("runs", "ray")


def check_sweep_folder(path: str | os.PathLike[str]) -> None:
    """Refuse (SweepError, one line) a sweep directory holding a symbolic link or a special file: a sweep
    folder from someone else is written inside itself only (studio.core.owned_dir)."""
    try:
        check_folder(path, "sweep", files=SWEEP_FILES, folders=SWEEP_FOLDERS)
    except ForeignEntry as exc:
        raise SweepError(str(exc)) from None


@dataclass
class Trial:
    id: str
    graph: str  # resolved path of the graph file
    point: dict[str, Any]  # grid key -> value
    seed: int
    status: str = "pending"
    run_dir: str | None = None
    objective: float | None = None
    message: str = ""
    seconds: float | None = None

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class SweepSpec:
    name: str
    graphs: list[str]
    seeds: list[int]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    objective: str = "valid.ic"
    executor: str = "local"
    workers: int = 0
    #: what each trial asks of Ray: {"cpu": 1, "gpu": 0.25} (fractions share a GPU); the local executor ignores it
    resources: dict[str, float] = field(default_factory=dict)
    #: an Optuna search (on the ray executor): KEY -> {"loguniform": [lo, hi]} | {"uniform": [lo, hi]} |
    #: {"int": [lo, hi]} | {"choice": [values]}; ``samples`` points are tried, each with every seed
    search: dict[str, dict[str, list]] = field(default_factory=dict)
    samples: int = 0

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def grid_points(self) -> list[dict[str, Any]]:
        keys = sorted(self.grid)
        return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(self.grid[k] for k in keys))]

    @staticmethod
    def trial_for(graph: str, point: dict[str, Any], seed: int) -> Trial:
        text = json.dumps({"graph": graph, "point": point, "seed": seed}, sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        return Trial(f"{Path(graph).stem}-s{seed}-{digest}", graph, point, seed)

    def trials(self) -> list[Trial]:
        """Every trial of a grid sweep (a search makes its trials as it samples points: none up front)."""
        if self.search:
            return []
        return [self.trial_for(graph, point, seed) for graph in self.graphs for point in self.grid_points()
                for seed in self.seeds]


def _read_spec_file(path: Path) -> dict:
    from studio.core.files import FileReadError, read_regular_file

    try:
        text = read_regular_file(path, 1 << 20, "sweep spec").decode("utf-8")
    except FileReadError as exc:
        raise SweepError(str(exc)) from None
    except UnicodeDecodeError:
        raise SweepError(f"{path}: not UTF-8 text") from None
    if path.suffix.lower() == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SweepError(f"{path}: not TOML ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SweepError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise SweepError(f"{path}: a sweep spec is an object of settings")
    return data


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and check a sweep spec: every problem is a one-line SweepError naming the file and field."""
    path = Path(path)
    raw = _read_spec_file(path)
    unknown = sorted(set(raw) - SPEC_KEYS)
    if unknown:
        raise SweepError(f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(SPEC_KEYS))})")
    where = path.resolve().parent
    patterns = raw.get("graphs")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
        raise SweepError(f"{path}: graphs: expects a list of graph files or globs")
    graphs: list[str] = []
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(where / pattern)
        matched = sorted(glob.glob(full)) if glob.has_magic(pattern) else ([full] if Path(full).is_file() else [])
        if not matched:
            raise SweepError(f"{path}: graphs: {pattern!r} matches no file")
        graphs += [str(Path(m).resolve()) for m in matched if str(Path(m).resolve()) not in graphs]
    seeds = raw.get("seeds", 1)
    count_ok = isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1
    list_ok = isinstance(seeds, list) and bool(seeds) and all(
        isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    if not (count_ok or list_ok):
        raise SweepError(f"{path}: seeds: expects a count >= 1 or a list of integers, gets {seeds!r}")
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(dict.fromkeys(seeds))
    grid = raw.get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise SweepError(f"{path}: grid: expects an object of KEY: [values...] (each list non-empty)")
    for section in ("training", "data"):
        if not isinstance(raw.get(section, {}), dict):
            raise SweepError(f"{path}: {section}: expects an object of settings")
    objective = raw.get("objective", "valid.ic")
    split, _, metric = str(objective).partition(".")
    if split not in ("valid", "test", "train") or metric not in OBJECTIVES:
        raise SweepError(f"{path}: objective: expects SPLIT.METRIC (split valid, test or train; metric one of "
                         f"{', '.join(OBJECTIVES)}), gets {objective!r}")
    executor = raw.get("executor", "local")
    if executor not in EXECUTORS:
        raise SweepError(f"{path}: executor: expects {' or '.join(EXECUTORS)}, gets {executor!r}")
    workers = raw.get("workers", 0)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise SweepError(f"{path}: workers: expects an integer >= 0, gets {workers!r}")
    resources = raw.get("resources", {})
    if not isinstance(resources, dict) or set(resources) - {"cpu", "gpu"} or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in resources.values()):
        raise SweepError(f"{path}: resources: expects {{\"cpu\": N, \"gpu\": N}} with numbers >= 0 "
                         f"(fractions share a GPU), gets {resources!r}")
    search, samples = raw.get("search", {}), raw.get("samples", 0)
    if not isinstance(search, dict):
        raise SweepError(f"{path}: search: expects an object of KEY: {{KIND: [...]}}")
    for key, domain in search.items():
        kind = next(iter(domain), None) if isinstance(domain, dict) and len(domain) == 1 else None
        values = domain.get(kind) if kind in SEARCH_KINDS else None
        bounds = SEARCH_KINDS.get(kind, 0)
        ok = isinstance(values, list) and values and (bounds is None or (
            len(values) == 2 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            and values[0] < values[1] and (kind != "loguniform" or values[0] > 0)))
        if not ok:
            raise SweepError(f"{path}: search: {key!r}: expects one of {{\"loguniform\": [lo, hi]}}, "
                             f"{{\"uniform\": [lo, hi]}}, {{\"int\": [lo, hi]}} (lo < hi) or "
                             f"{{\"choice\": [values]}}, gets {domain!r}")
    if search:
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise SweepError(f"{path}: samples: a search needs a number of points to try >= 1, gets {samples!r}")
        if executor != "ray":
            raise SweepError(f"{path}: a search runs on Ray Tune with Optuna: set \"executor\": \"ray\" "
                             "(pip install -e '.[scale]')")
        if len(graphs) != 1:
            raise SweepError(f"{path}: a search tunes one graph; it names {len(graphs)}")
        if grid:
            raise SweepError(f"{path}: a sweep has a grid or a search, not both (a choice in the search is a grid "
                             "the search picks from)")
    spec = SweepSpec(str(raw.get("name") or path.stem), graphs, seeds, {k: list(v) for k, v in grid.items()},
                     dict(raw.get("training", {})), dict(raw.get("data", {})), objective, executor, workers,
                     {k: float(v) for k, v in resources.items()}, {k: dict(v) for k, v in search.items()},
                     int(samples) if search else 0)
    checks = spec.trials()[:: max(1, len(spec.seeds))]  # one per graph and point: seeds change nothing here
    if spec.search:  # a point of the search (the low bounds, the first choices) checks its keys
        checks = [spec.trial_for(spec.graphs[0], {k: next(iter(d.values()))[0] for k, d in spec.search.items()},
                                 spec.seeds[0])]
    for trial in checks:
        try:
            prepare_trial(spec, trial)
        except SweepError as exc:
            raise SweepError(f"{path}: {exc}") from None
    return spec


#: keys of a spec's data section that say where the bars come from (the rest are data settings)
SOURCE_KEYS = ("source", "synthetic", "path", "import")


def _trial_source(data: dict):
    """The spec's data source: ``source`` as config.json records one (any kind declared in
    studio.train.data_sources), or the short forms ``path`` + ``import`` and ``synthetic``."""
    from studio.train.config import ConfigError, SourceSpec

    if "source" in data:
        if not isinstance(data["source"], dict):
            raise ConfigError("data: source: expects an object like config.json's data.source")
        return SourceSpec.from_json(data["source"])
    if data.get("path"):
        return SourceSpec("import", path=str(data["path"]), importer=dict(data.get("import", {})))
    return SourceSpec(synthetic=dict(data.get("synthetic", {})))


def prepare_trial(spec: SweepSpec, trial: Trial):
    """(graph, source, training config, data config) of a trial; a SweepError names what is wrong."""
    from studio.core.graph_file import GraphFileError, load_graph
    from studio.data.dataset import DataConfig
    from studio.data.panel import DataError
    from studio.train.config import ConfigError, TrainConfig

    try:
        graph = load_graph(trial.graph)
    except GraphFileError as exc:
        raise SweepError(str(exc)) from None
    training = {**spec.training, "seed": trial.seed}
    data_settings = {k: v for k, v in spec.data.items() if k not in SOURCE_KEYS}
    for key, value in trial.point.items():
        head, _, name = key.partition(".")
        if not name:
            raise SweepError(f"grid: {key!r} is not SECTION.FIELD or NODE_ID.PARAM")
        if head == "training":
            training[name] = value
        elif head == "data":
            data_settings[name] = value
        elif head in graph.nodes:
            graph.nodes[head].params[name] = value
        else:
            raise SweepError(f"grid: {key!r}: {Path(trial.graph).name} has no node {head!r} "
                             "(keys are training.FIELD, data.FIELD or NODE_ID.PARAM)")
    try:
        config = TrainConfig.from_json(training)
        source = _trial_source(spec.data)
        from studio.train.engine import data_config_for

        base = DataConfig(**{**DataConfig().to_json(), **data_settings, "split": tuple(
            data_settings.get("split", DataConfig().split))}) if graph.input is not None else None
        data = data_config_for(graph, base) if graph.input is not None else None
    except (ConfigError, DataError) as exc:
        raise SweepError(f"training or data settings: {exc}") from None
    except TypeError as exc:
        raise SweepError(f"data: {str(exc).split('(', 1)[-1].rstrip(')')}") from None
    from studio.core.validation import over_budget, validate
    from studio.nodes import default_registry

    checked = validate(graph, default_registry())  # an invalid graph is the trial's own failure, told there
    refusal = over_budget(checked, config.max_params, "training.max_params raises it") if checked.ok else None
    if refusal is not None:  # said when the spec is read, before any trial allocates the model
        raise SweepError(f"{Path(trial.graph).name}: {refusal}")
    return graph, source, config, data


# ---- one trial, in a worker process ---------------------------------------------------------------------

class TrialProgress:
    """Puts a running trial's progress on the sweep's board (``board[trial_id] = {...}``: a manager's dict
    on the local executor, a Ray actor's on Ray): at the start, after every epoch and at most once a
    ``interval`` seconds between. A board that is gone is ignored: progress is a view, the trial goes on."""

    def __init__(self, board, trial: Trial, interval: float = 1.0) -> None:
        self.board, self.interval, self.sent = board, interval, -math.inf
        self.started = time.monotonic()
        self.info: dict[str, Any] = {"trial": trial.id, "graph": Path(trial.graph).stem, "seed": trial.seed,
                                     "epoch": 0, "epochs": 0, "step": 0, "steps": 0, "fraction": 0.0,
                                     "eta": None, "valid_ic": None, "best_epoch": 0, "epochs_done": 0,
                                     "run_dir": None}

    def see(self, record: dict) -> None:
        kind, info = record.get("kind"), self.info
        if kind == "start":
            info.update(run_dir=record.get("run_dir"), epochs=record.get("epochs", 0),
                        steps=record.get("steps_per_epoch", 0))
        elif kind == "step":
            info.update(epoch=record["epoch"], step=record["step"], steps=record["steps"], eta=record.get("eta"))
        elif kind == "epoch":
            ic = (record.get("valid") or {}).get("ic")
            info.update(epoch=record["epoch"], step=info["steps"], best_epoch=record.get("best_epoch", 0),
                        epochs_done=record["epoch"],
                        valid_ic=float(ic) if isinstance(ic, int | float) and math.isfinite(ic) else None)
            if info["epochs"]:  # the epochs left at the pace so far, their scoring included
                spent = time.monotonic() - self.started
                info["eta"] = round(spent / record["epoch"] * max(0, info["epochs"] - record["epoch"]), 1)
        else:
            return
        if info["epochs"] and info["steps"]:
            done = (info["epoch"] - 1) * info["steps"] + info["step"] if info["epoch"] else 0
            info["fraction"] = round(min(1.0, done / (info["epochs"] * info["steps"])), 4)
        now = time.monotonic()
        if kind == "step" and now - self.sent < self.interval:
            return
        self.sent = now
        try:
            self.board[info["trial"]] = dict(info)
        except Exception:  # the sweep process or its board is gone: the trial itself notices and stops
            self.board = {}


def describe_trial(info: dict) -> str:
    """One running trial (TrialProgress's dict), for the queue dock and ``studio sweep``:
    'seed 2 · epoch 3/10, step 40/120 · 27% · valid IC 0.0512 · ~1m 05s left'."""
    from studio.core.text import printable

    parts = [f"seed {info['seed']}"]
    if info["epochs"]:
        epoch = max(1, info["epoch"])
        parts.append(f"epoch {epoch}/{info['epochs']}" + (f", step {info['step']}/{info['steps']}"
                                                          if info["steps"] and info["epoch"] else ""))
        parts.append(f"{info['fraction']:.0%}")
    else:
        parts.append("loading the data and building the model")
    if info.get("valid_ic") is not None:
        parts.append(f"valid IC {info['valid_ic']:.4f}")
    if time_left(info.get("eta")):
        parts.append(time_left(info["eta"]))
    return printable(" · ".join(parts))


def sweep_time_left(elapsed: float, done: float, todo: int) -> float | None:
    """The seconds a sweep has left at its pace so far: ``done`` of its ``todo`` trials (the running ones
    counted by their share of their steps) in ``elapsed`` seconds; None before there is a pace to go by."""
    if todo <= 0 or done <= 0 or elapsed < 5:
        return None
    return max(0.0, elapsed * (todo - done) / done)


def time_left(eta) -> str:
    """'~1m 05s left', '~40s left', or '' where there is no estimate."""
    if not isinstance(eta, int | float) or eta != eta or eta <= 0:
        return ""
    minutes, seconds = divmod(round(eta), 60)
    return f"~{minutes}m {seconds:02d}s left" if minutes else f"~{seconds}s left"


def run_trial(spec_json: dict, trial_json: dict, out_dir: str, threads: int, cancel=None, board=None) -> dict:
    """Train one trial; returns its record (status, run_dir, objective or a one-line error). Never raises:
    a failing trial is a record, not a crash of the sweep. ``board``: where its progress goes
    (TrialProgress), or None."""
    import threading

    spec, trial = SweepSpec(**spec_json), Trial(**trial_json)
    started = time.perf_counter()
    local_cancel = threading.Event()
    parent = _WORKER_PARENT or os.getppid()
    if cancel is not None and os.getppid() != parent:  # the sweep process is gone: train nothing more
        trial.status, trial.message = "pending", "the sweep process was gone"
        return trial.to_json()
    if cancel is not None:  # a manager's event, shared with the sweep process: watched from a thread
        def watch() -> None:
            while not local_cancel.is_set():
                try:
                    if cancel.wait(0.2):
                        local_cancel.set()
                except Exception:  # the manager is gone: stop
                    local_cancel.set()
                if os.getppid() != parent:  # the sweep process was killed: no orphan goes on training
                    local_cancel.set()

        threading.Thread(target=watch, daemon=True).start()
    if _TRIAL_RUNNING is not None:
        _TRIAL_RUNNING.set()
    try:
        from studio.train.engine import Trainer

        graph, source, config, data = prepare_trial(spec, trial)
        if config.threads == 0:
            config.threads = threads
        trainer = Trainer(graph, source, config, data, out_dir=out_dir)
        done: dict = {}
        progress = TrialProgress(board, trial) if board is not None else None
        for record in trainer.run(local_cancel):
            if progress is not None:
                progress.see(record)
            if record["kind"] == "start":
                trial.run_dir = record["run_dir"]
            done = record
        trial.status, trial.message = done.get("status", "failed"), done.get("message", "")
        trial.run_dir = done.get("run_dir", trial.run_dir)
        split, _, metric = spec.objective.partition(".")
        value = (((done.get("metrics") or {}).get("splits") or {}).get(split) or {}).get(metric)
        trial.objective = float(value) if isinstance(value, int | float) and math.isfinite(value) else None
    except Exception as exc:  # recorded with its one line; the other trials go on
        from studio.core.text import error_line

        ours = type(exc).__name__ in ("SweepError", "TrainingError", "DataError", "ConfigError", "BuildError")
        trial.status, trial.message = "failed", error_line(exc) if ours else f"{type(exc).__name__}: {error_line(exc)}"
    finally:
        local_cancel.set()
        if _TRIAL_RUNNING is not None:
            _TRIAL_RUNNING.clear()
    trial.seconds = round(time.perf_counter() - started, 2)
    return trial.to_json()


#: the sweep process that started this worker (set in the worker's initializer); a worker whose sweep was
#: killed (it is reparented) stops its trial and starts no other
_WORKER_PARENT: int | None = None


#: set while a trial runs in this worker process
_TRIAL_RUNNING = None


def _ignore_interrupts() -> None:
    """The initializer of the local executor's workers: Ctrl-C is the sweep's to handle, and a worker
    whose sweep process died leaves once its trial has stopped (it would wait for work forever)."""
    import signal
    import threading

    global _WORKER_PARENT, _TRIAL_RUNNING
    _WORKER_PARENT = os.getppid()
    _TRIAL_RUNNING = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def leave_when_orphaned() -> None:
        while os.getppid() == _WORKER_PARENT:
            time.sleep(1.0)
        deadline = time.monotonic() + 60  # the trial sees the same and stops after its batch
        while _TRIAL_RUNNING.is_set() and time.monotonic() < deadline:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=leave_when_orphaned, daemon=True).start()


class ProgressRelay:
    """The sweep process's side of the board: passes on each running trial's progress when it changed, and
    forgets a trial once it finished (a late copy of the board does not bring it back)."""

    def __init__(self, on_progress) -> None:
        import threading

        self.on_progress, self.seen, self.ended = on_progress, {}, set()
        self.lock = threading.Lock()  # on Ray, a watcher thread relays while Tune's loop finishes trials

    def relay(self, snapshot: dict) -> None:
        if self.on_progress is None:
            return
        for trial_id, info in snapshot.items():
            with self.lock:
                if trial_id in self.ended or self.seen.get(trial_id) == info:
                    continue
                self.seen[trial_id] = info
            self.on_progress(info)

    def finished(self, trial_id: str, board=None) -> None:
        with self.lock:
            self.ended.add(trial_id)
            self.seen.pop(trial_id, None)
        if board is not None:
            with contextlib.suppress(Exception):  # a board that is gone has nothing to forget
                board.pop(trial_id, None)


# ---- the sweep --------------------------------------------------------------------------------------------

class Sweep:
    """A sweep directory: its spec, its trials' records, the local executor."""

    def __init__(self, path: Path, spec: SweepSpec, trials: list[Trial], runs_dir: Path | None = None) -> None:
        self.path, self.spec, self.trials = path, spec, trials
        #: where the trials' run directories go (default: ``runs/`` in the sweep directory)
        self.runs_dir = Path(runs_dir) if runs_dir is not None else path / "runs"

    @classmethod
    def create(cls, spec: SweepSpec, out_dir: str | os.PathLike[str] = "sweeps",
               runs_dir: str | os.PathLike[str] | None = None) -> Sweep:
        """A new sweep directory under ``out_dir``; ``runs_dir``: put the trials' runs there instead of in
        the sweep directory (the studio's queue puts them with the other runs, in its runs table)."""
        import re

        root = Path(out_dir)
        root.mkdir(parents=True, exist_ok=True)
        stem = time.strftime("%Y%m%d-%H%M%S") + "-" + (re.sub(r"[^\w.-]+", "_", spec.name) or "sweep")
        for n in range(1, 10_000):
            path = root / (stem if n == 1 else f"{stem}-{n}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        sweep = cls(path, spec, spec.trials(), Path(runs_dir).resolve() if runs_dir is not None else None)
        write_owned(path / "spec.json", json.dumps(spec.to_json(), indent=2) + "\n", "sweep")
        if runs_dir is not None:
            write_owned(path / "runs_dir.json", json.dumps({"runs_dir": str(sweep.runs_dir)}) + "\n", "sweep")
        sweep.save()
        return sweep

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Sweep:
        path = Path(path)
        check_sweep_folder(path)
        try:
            spec = SweepSpec(**read_json(path / "spec.json", what="sweep"))
            records = read_json(path / "trials.json", what="sweep")
            trials = [Trial(**r) for r in records]
            elsewhere = path / "runs_dir.json"
            runs_dir = None
            if elsewhere.is_file():
                runs_dir = Path(read_json(elsewhere, what="sweep")["runs_dir"])
        except FileNotFoundError:
            raise SweepError(f"{path}: not a sweep directory (no spec.json or trials.json)") from None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise SweepError(f"{path}: cannot read the sweep ({str(exc).splitlines()[0][:120]})") from None
        return cls(path, spec, trials, runs_dir)

    def save(self) -> None:
        write_owned(self.path / "trials.json", json.dumps([t.to_json() for t in self.trials], indent=1) + "\n",
                    "sweep")

    def pending(self) -> list[Trial]:
        return [t for t in self.trials if t.status not in FINISHED]

    def run(self, workers: int = 0, on_trial=None, cancel=None, executor: str | None = None,
            address: str | None = None, on_progress=None) -> list[Trial]:
        """Run every trial that has not finished, on the spec's executor (or ``executor``; an ``address``
        means Ray); ``on_trial(trial)`` after each. ``cancel`` (a threading.Event): stop every trial; the
        unfinished ones stay pending. ``on_progress(info)``: a running trial's progress (TrialProgress's
        dict: trial, graph, seed, epoch, epochs, step, steps, fraction, eta, valid_ic), about once a second
        a trial, called from a thread of the sweep (on Ray, not the one that called ``run``). One process
        runs a sweep at a time (the lock of studio.train.run_lock on its directory): a second is refused."""
        from studio.train.run_lock import RunInUse, RunLock

        try:
            lock = RunLock.acquire(self.path, what="sweep")
        except (RunInUse, ForeignEntry) as exc:
            raise SweepError(str(exc)) from None
        try:
            check_sweep_folder(self.path)  # again, now that it is ours: nothing planted since it was opened
            run_trials = executor_function(executor or ("ray" if address else self.spec.executor))
            return run_trials(self, address=address, workers=workers, on_trial=on_trial, cancel=cancel,
                              on_progress=on_progress)
        finally:
            lock.release()

    def _run_local(self, workers: int, on_trial, cancel, on_progress=None) -> list[Trial]:
        import concurrent.futures as cf
        import multiprocessing

        todo = self.pending()
        if not todo:
            return self.trials
        cores = os.cpu_count() or 1
        workers = workers or self.spec.workers or max(1, cores // 2)
        workers = max(1, min(workers, len(todo)))
        threads = max(1, cores // workers)
        from multiprocessing.managers import SyncManager

        context = multiprocessing.get_context("spawn")
        # Ctrl-C reaches every process of the terminal's group: the workers and the manager ignore it, and
        # the sweep stops them through the shared event (a trial stops cleanly, its best epoch kept)
        manager = SyncManager(ctx=context)
        manager.start(_ignore_interrupts)
        shared_cancel = manager.Event()
        board = manager.dict() if on_progress is not None else None
        relay = ProgressRelay(on_progress)
        by_id = {t.id: t for t in self.trials}
        try:
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                        initializer=_ignore_interrupts) as pool:
                futures = {pool.submit(run_trial, self.spec.to_json(), t.to_json(), str(self.runs_dir),
                                       threads, shared_cancel, board): t.id for t in todo}
                for t in todo:
                    t.status = "queued"
                pending = set(futures)
                while pending:
                    done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                    if cancel is not None and cancel.is_set() and not shared_cancel.is_set():
                        shared_cancel.set()
                        for f in pending:
                            f.cancel()
                    for future in done:
                        trial = by_id[futures[future]]
                        if future.cancelled():
                            trial.status = "pending"
                            continue
                        try:
                            result = future.result()
                        except Exception as exc:  # a worker that died (killed, out of memory)
                            result = {**trial.to_json(), "status": "failed",
                                      "message": f"the worker process died ({type(exc).__name__})"}
                        by_id[trial.id].__dict__.update(result)
                        relay.finished(trial.id, board)
                        if cancel is not None and cancel.is_set() and trial.status == "stopped":
                            trial.status = "pending"  # runs again on resume
                        self.save()
                        self.write_tables()
                        if on_trial is not None:
                            on_trial(trial)
                    if board is not None:
                        relay.relay(board.copy())
        finally:
            for t in self.trials:
                if t.status == "queued":
                    t.status = "pending"
            self.save()
            self.write_tables()
            manager.shutdown()
        return self.trials

    # ---- tables ----------------------------------------------------------------------------------------
    def write_tables(self) -> None:
        import pandas as pd

        rows = [{"trial": t.id, "graph": Path(t.graph).stem, **{f"grid:{k}": v for k, v in t.point.items()},
                 "seed": t.seed, "status": t.status, "objective": t.objective, "seconds": t.seconds,
                 "run_dir": t.run_dir, "message": t.message} for t in self.trials]
        frame = pd.DataFrame(rows)
        with owned_writer(self.path / "trials.csv", what="sweep") as fh:
            frame.to_csv(fh, index=False)
        with owned_writer(self.path / "summary.csv", what="sweep") as fh:
            self.summary().to_csv(fh, index=False)

    def summary(self):
        """Per graph and grid point: seeds done, mean and std of the objective across seeds."""
        import pandas as pd

        groups: dict[str, dict] = {}
        for t in self.trials:
            key = json.dumps({"graph": t.graph, "point": t.point}, sort_keys=True, default=str)
            g = groups.setdefault(key, {"graph": Path(t.graph).stem, **{f"grid:{k}": v for k, v in t.point.items()},
                                        "values": [], "seeds": 0, "failed": 0})
            g["seeds"] += 1
            g["failed"] += t.status == "failed"
            if t.objective is not None and t.status in FINISHED:
                g["values"].append(t.objective)
        rows = []
        for g in groups.values():
            values = g.pop("values")
            n = len(values)
            mean = sum(values) / n if n else None
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
            rows.append({**g, "done": n, f"{self.spec.objective} mean": mean, f"{self.spec.objective} std": std})
        frame = pd.DataFrame(rows)
        if len(frame):
            frame = frame.sort_values(f"{self.spec.objective} mean", ascending=False, na_position="last",
                                      kind="stable")
        return frame


def run_local(sweep: Sweep, address: str | None = None, workers: int = 0, on_trial=None, cancel=None,
              on_progress=None) -> list[Trial]:
    """The local executor: the trials in processes of this machine (``address`` is Ray's, unused here)."""
    return sweep._run_local(workers, on_trial, cancel, on_progress)
