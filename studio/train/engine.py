"""The training engine: one graph, one data source, one configuration -> a run directory.

``Trainer(...).run()`` is a generator of plain progress records (dicts) that any front end consumes:
the command line prints them, the GUI receives them on a worker thread. Records:

- ``start``: run directory, device, parameter count, data description, splits, oracle IC;
- ``step``: epoch, step, steps per epoch, training loss, elapsed seconds, seconds left (estimate);
- ``epoch``: training and validation loss, validation figures (IC, RankIC, long-short...), the
  per-date IC and legs of the validation dates, learning rate, whether it is the best epoch so far;
- ``done``: status (finished, early_stopped, time_limit, stopped, failed), a one-line message, the
  best epoch and the final figures per split.

Stop: set the ``cancel`` event. The loop checks it between batches and, in a step or a scoring pass
that takes longer than a fifth of a second, before every torch operation and between the operations of
the backward pass (``_StopChecks``), so a run ends within about a second whatever the model; the run is
closed as ``stopped``, its best epoch kept. A run owns its directory through ``studio.train.run_lock``
for as long as it runs. A loss that is not finite stops the run with a clear message; the checkpoint of
the last good epoch stays. ``resume(run_dir)`` continues a run from its checkpoint and ends with the
same figures as an uninterrupted run (each epoch's shuffling and dropout are seeded from the run seed
and the epoch number). The same seed on the CPU gives identical figures.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio import __version__
from studio.core.document import Graph
from studio.core.graph_file import dumps_graph, load_graph
from studio.core.owned_dir import ForeignEntry, read_json
from studio.core.registry import Registry
from studio.core.text import error_line, printable
from studio.core.validation import over_budget, validate
from studio.data import store
from studio.data.dataset import CrossSectionData, DataConfig, features_cache_file
from studio.data.preprocess_spec import SPEC_FILE, make_spec
from studio.data.splits import SPLIT_NAMES, Splits
from studio.metrics import summarize
from studio.modules.cells import compile_cell_steps
from studio.torchgraph.builder import BuildError, build_model
from studio.train.checkpoints import CheckpointError, checkpoint_present, read_checkpoint
from studio.train.config import ConfigError, SourceSpec, TrainConfig
from studio.train.feed import Feed, choose_feed, device_bytes_needed
from studio.train.losses import LOSS_FUNCTIONS
from studio.train.memory import BatchChoice, BatchTooLarge, free_memory, probe_date_bytes
from studio.train.memory import choose as choose_batch
from studio.train.process_state import run_settings
from studio.train.records import RunWriter, check_run_folder, daily_rows
from studio.train.run_lock import RunInUse, RunLock, held_by
from studio.train.sources import LoadedData, graph_fingerprint, load_source

CHECKPOINT = "checkpoint.pt"
#: a step or scoring batch slower than this is checked for a stop between its torch operations
FINE_CHECKS_ABOVE_S = 0.2
#: after a stop, the best epoch's figures are scored only if that takes at most this long
SCORING_AFTER_STOP_S = 2.0
#: what a run's directory holds once its best epoch has been scored
RESULT_FILES = ("metrics.json", "daily.csv", "predictions.parquet", "pnl.png", "baselines.json")
#: the optimiser of each name of studio.train.config.OPTIMIZERS, made from the parameters and the TrainConfig
OPTIMIZER_FACTORIES = {
    "adam": lambda params, c: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay),
    "adamw": lambda params, c: torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay),
    "sgd": lambda params, c: torch.optim.SGD(params, lr=c.lr, momentum=0.9, weight_decay=c.weight_decay),
}


class TrainingError(Exception):
    """The run cannot start; one line naming what is wrong."""


class RunStopped(Exception):
    """A stop was asked for in the middle of a step or a scoring pass (the run catches it)."""


#: RunState's fields under the names checkpoint.pt has always used (older runs' checkpoints resume)
_CHECKPOINT_KEYS = {"epochs_done": "epoch", "best_ic": "best_ic", "best_epoch": "best_epoch",
                    "best_weights": "best_state", "epochs_since_best": "stale", "history": "history"}


@dataclass
class RunState:
    """Where a run stands after its last finished epoch: what its checkpoint holds besides the model's,
    the optimiser's and the schedule's own state, and what resume goes on from."""

    #: the last finished epoch (0: none yet)
    epochs_done: int = 0
    #: the best epoch so far by validation IC (0: none yet) and that IC (-inf: none yet)
    best_epoch: int = 0
    best_ic: float = -math.inf
    #: the best epoch's weights, copied to the CPU (None: no best epoch yet)
    best_weights: dict[str, torch.Tensor] | None = None
    #: finished epochs since the best one (early stopping counts them against the patience)
    epochs_since_best: int = 0
    #: each finished epoch's record as metrics.jsonl holds it
    history: list[dict] = field(default_factory=list)

    def checkpoint_entries(self) -> dict[str, Any]:
        """The state as checkpoint.pt holds it (the history as JSON text)."""
        entries = {key: getattr(self, name) for name, key in _CHECKPOINT_KEYS.items()}
        entries["history"] = json.dumps(self.history)
        return entries

    @classmethod
    def from_checkpoint(cls, payload: dict[str, Any]) -> RunState:
        """The state of a checkpoint read by studio.train.checkpoints.read_checkpoint (history parsed)."""
        return cls(**{name: payload.get(key) for name, key in _CHECKPOINT_KEYS.items()})


@dataclass(frozen=True)
class Ending:
    """How a run ends: its status (finished, early_stopped, time_limit, stopped, failed) and one line."""

    status: str
    message: str


@dataclass
class _Progress:
    """The training steps of this run so far, for the step records' elapsed time and estimate left."""

    steps_per_epoch: int
    #: the steps of the epochs this run trains (a resumed run: of the epochs left)
    total_steps: int
    started: float = field(default_factory=time.perf_counter)
    done_steps: int = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def over_time(self, max_minutes: float) -> bool:
        """The run's time limit (``--max-minutes``, 0: none) has passed."""
        return bool(max_minutes) and self.elapsed() > max_minutes * 60

    def step_record(self, epoch: int, step: int, loss: float) -> dict[str, Any]:
        self.done_steps += 1
        elapsed = self.elapsed()
        return {"kind": "step", "epoch": epoch, "step": step, "steps": self.steps_per_epoch, "loss": loss,
                "elapsed": elapsed, "eta": elapsed / self.done_steps * (self.total_steps - self.done_steps)}


class _StopChecks(torch.overrides.TorchFunctionMode):
    """Checks for a stop before every torch operation and, by a gradient hook on each result, between
    the operations of the backward pass. One step of a large model takes tens of seconds on a CPU (a
    36-layer transformer); with these checks it ends within one operation of Stop. The hooks return
    nothing, so the figures are the same bits as without them."""

    #: a gradient hook on every this-many-th result: one on each cost a quarter more time on the cell
    #: graphs (bench/stop_checks.py); one in 32 keeps the backward's checks a few time steps apart
    HOOK_EVERY = 32

    def __init__(self, stopping: Callable[[], bool]) -> None:
        super().__init__()
        self.stopping = stopping
        self._results = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if self.stopping():
            raise RunStopped
        result = func(*args, **(kwargs or {}))
        self._results += 1
        # results made by this step only: a hook on a parameter (a no-op .to() returns it) would stay
        if (self._results % self.HOOK_EVERY == 0 and isinstance(result, torch.Tensor)
                and result.grad_fn is not None):
            result.register_hook(self._check_gradient)
        return result

    def _check_gradient(self, grad: torch.Tensor) -> None:
        if self.stopping():
            raise RunStopped


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name}: no CUDA GPU is available to torch {torch.__version__}")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(name)


def data_config_for(graph: Graph, base: DataConfig | None = None) -> DataConfig:
    """The data settings a graph needs: its window length and features."""
    assert graph.input is not None
    settings = base.to_json() if base else DataConfig().to_json()
    settings.update(days=graph.input.days, features=list(graph.input.features),
                    split=tuple(settings["split"]))
    return DataConfig(**settings)


class Trainer:
    def __init__(self, graph: Graph, source: SourceSpec | None = None, config: TrainConfig | None = None,
                 data_config: DataConfig | None = None, out_dir: str | os.PathLike[str] | None = None,
                 registry: Registry | None = None, loaded: LoadedData | None = None,
                 cost: float = 0.002, quantile: float = 0.2, splits: Splits | None = None,
                 run_name: str | None = None) -> None:
        """``splits``: these date splits instead of the data settings' fractions (a walk-forward fold;
        recorded in config.json, so resume and reproduce use them again). ``run_name``: the run
        directory's name under ``out_dir`` (default: the time and the graph's name)."""
        if registry is None:
            from studio.nodes import default_registry

            registry = default_registry()
        self.source_name = str(graph.path) if graph.path else graph.name
        if graph.kind != "model" or graph.input is None:
            raise TrainingError(f"{self.source_name}: only a model can be trained (this is a block)")
        v = validate(graph, registry)
        if not v.ok:
            raise TrainingError(f"{self.source_name}: cannot train an invalid graph: {v.errors[0]}"
                                + (f" (and {len(v.errors) - 1} more)" if len(v.errors) > 1 else ""))
        refusal = over_budget(v, (config or TrainConfig()).max_params)
        if refusal is not None:  # before any data loads or any weight is allocated
            raise TrainingError(f"{self.source_name}: {refusal}")
        self.graph = graph.copy()  # frozen: edits to the open document do not reach the run
        self.registry = registry
        self.source = source or SourceSpec()
        self.config = config or TrainConfig()
        self.data_config = data_config_for(self.graph, data_config)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.loaded = loaded
        self.cost, self.quantile = cost, quantile
        self.given_splits, self.run_name = splits, run_name
        self.run_dir: Path | None = None
        #: a resumed run's state from its checkpoint (None: a new run, or one with no epoch finished)
        self._resumed: RunState | None = None
        self._cancel, self._grace_until = threading.Event(), 0.0
        #: after a run: each split's (dates, scores, labels) as written to predictions.parquet
        self.results: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    # ---- preparation -------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Data, model, optimiser. A stop asked meanwhile is seen between the long parts (RunStopped)."""
        self.device = pick_device(self.config.device)
        if self.loaded is None:
            self.loaded = load_source(self.source, self.graph.input)
        if self._cancel.is_set():
            raise RunStopped
        panel = self.loaded.panel
        self.data = CrossSectionData(panel, self.data_config, splits=self.given_splits,
                                     features_file=features_file_for(panel, self.data_config, self.given_splits))
        if self._cancel.is_set():
            raise RunStopped
        torch.manual_seed(self.config.seed)
        try:
            self.model = build_model(self.graph, self.registry).to(self.device)
        except BuildError as exc:
            raise TrainingError(str(exc)) from None
        # what a step keeps per date, probed before the cell steps are compiled (leaves no trace)
        date_bytes = probe_date_bytes(self.model, self.data.window_length, len(self.data_config.features),
                                      panel.n_symbols, self.device, self._autocast())
        #: cell directions whose step updates run compiled (--compile-steps; 0 when the graph has none)
        self.compiled_cell_steps = compile_cell_steps(self.model) if self.config.compile_steps else 0
        params = list(self.model.parameters())
        c = self.config
        self.optimizer = OPTIMIZER_FACTORIES[c.optimizer](params, c)
        if c.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=c.epochs)
        elif c.schedule == "step":
            self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, c.step_epochs, c.step_gamma)
        else:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)
        self.loss_fn = LOSS_FUNCTIONS[c.loss]
        self.n_params = sum(p.numel() for p in params)
        feed_kind = choose_feed(self.data, self.device, c.feed)
        #: the dates each batch holds (the setting, or auto's choice) and why: recorded, and said at the start
        self.batch_choice = self._choose_batch(date_bytes, feed_kind)
        self.dates_per_batch = self.batch_choice.dates
        self.feed = Feed(self.data, self.device, feed_kind, max_dates=self.dates_per_batch)
        self.sync_every = c.sync_every or (16 if self.device.type == "cuda" else 1)
        # checks inside a training step and a scoring batch until each turns out quick (never around
        # compiled cell steps: a torch function mode there would be traced into them)
        self._fine_checks = dict.fromkeys(("train", "score"), not self.compiled_cell_steps)
        #: seconds a scoring pass took per date (the last one), to judge whether scoring after a stop fits
        self._seconds_per_date = math.inf

    def _choose_batch(self, date_bytes: int, feed_kind: str) -> BatchChoice:
        """dates_per_batch for this device's free memory: auto's choice, or the setting if it fits."""
        free = free_memory(self.device)
        if free is not None and feed_kind == "device":  # the features are put there at the first batch
            free -= device_bytes_needed(self.data)
        fixed = self.n_params * 4 * 3  # the gradients and two moments of the optimiser, made at the first step
        try:
            return choose_batch(self.config.dates_per_batch, date_bytes, fixed, free,
                                "GPU memory" if self.device.type == "cuda" else "RAM", len(self.data.splits.train))
        except BatchTooLarge as exc:
            raise TrainingError(f"{self.source_name}: {exc}") from None

    # ---- stopping ----------------------------------------------------------------------------
    def _stopping(self) -> bool:
        """A stop was asked for and the grace given to scoring after it (if any) is over."""
        return self._cancel.is_set() and time.monotonic() > self._grace_until

    def _checks(self, kind: str):
        """The stop checks for the next training step or scoring batch (``kind``): between its operations
        when the last one took long, else none (a quick one ends soon enough, without their overhead)."""
        return _StopChecks(self._stopping) if self._fine_checks[kind] else contextlib.nullcontext()

    def _timed(self, kind: str, started: float) -> None:
        self._fine_checks[kind] = (time.perf_counter() - started > FINE_CHECKS_ABOVE_S
                                   and not self.compiled_cell_steps)

    def _tensors(self, batch):
        to = dict(device=self.device, non_blocking=True)
        return (torch.from_numpy(batch.x).to(**to), torch.from_numpy(batch.mask).to(**to),
                torch.from_numpy(batch.label).to(**to), torch.from_numpy(batch.has_label).to(**to))

    def _device_settings(self) -> dict:
        """The backend settings a run on this device uses (recorded with the run)."""
        if self.device.type != "cuda":
            return {}
        return {"cudnn_benchmark": torch.backends.cudnn.benchmark,
                "cudnn_deterministic": torch.backends.cudnn.deterministic,
                "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32}

    def _autocast(self):
        if self.config.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    @torch.no_grad()
    def predict(self, dates: np.ndarray) -> np.ndarray:
        """(len(dates), S) scores; NaN where a stock is not a sample that date."""
        self.model.eval()
        out = np.full((len(dates), self.data.panel.n_symbols), np.nan)
        step = self.dates_per_batch
        parts = []
        started = time.perf_counter()
        batches = self.feed.batches(dates, step)
        try:
            for x, mask, _, _ in batches:
                if self._stopping():
                    raise RunStopped
                batch_started = time.perf_counter()
                with self._checks("score"), self._autocast():
                    scores = self.model(x, mask).float()
                self._timed("score", batch_started)
                parts.append(torch.where(mask, scores, torch.full_like(scores, math.nan)))
        finally:
            batches.close()
        if parts:  # one read back from the device, not one per batch
            out[:] = torch.cat(parts).double().cpu().numpy()
        if len(dates):
            self._seconds_per_date = (time.perf_counter() - started) / len(dates)
        return out

    def evaluate(self, dates: np.ndarray) -> tuple[dict, dict, float]:
        scores = self.predict(dates)
        summary, daily = summarize(scores, self.data.raw_label[dates], quantile=self.quantile, cost=self.cost,
                                   min_stocks=self.data_config.min_stocks)
        # the validation loss, on the same normalised labels as training
        label = torch.from_numpy(np.nan_to_num(self.data.label[dates]).astype(np.float32))
        has = torch.from_numpy(self.data.has_label[dates])
        loss = float(self.loss_fn(torch.from_numpy(np.nan_to_num(scores).astype(np.float32)), label, has))
        return summary, daily, loss

    # ---- the run -----------------------------------------------------------------------------
    def run(self, cancel: threading.Event | None = None, resume: bool = False) -> Iterator[dict[str, Any]]:
        """Train, yielding progress records. torch's threads and generators (and Python's and numpy's)
        are the run's while it runs and given back when it ends or its generator is closed."""
        on_cpu = pick_device(self.config.device).type == "cpu"
        threads = (self.config.threads or os.cpu_count() or 1) if on_cpu else None
        # on CUDA, cuDNN benchmarks its kernels for the run's shapes (a batch's shape is the same every
        # step); TF32 stays as torch has it (off for matmuls, on for cuDNN convolutions), recorded
        with run_settings(threads=threads, cudnn_benchmark=None if on_cpu else True):
            yield from self._run(cancel, resume)

    def _run(self, cancel: threading.Event | None, resume: bool) -> Iterator[dict[str, Any]]:
        self._cancel, self._grace_until = cancel or threading.Event(), 0.0
        lock = None
        try:
            if resume:  # refused before any data loads when another process owns the run
                lock = take_run_lock(self.run_dir)
                check_run_dir(self.run_dir)  # again, now that it is ours: nothing planted meanwhile
            try:
                self._prepare()
                if self._cancel.is_set() and not resume:
                    raise RunStopped
                if resume:  # weights that fit the model, before anything of the run is written
                    self._resumed = self._restore_checkpoint()
            except RunStopped:  # stopped while preparing: a new run has no directory yet, a resumed one
                yield {"kind": "done", "status": "stopped", "message": "stopped before the run started",
                       "best_epoch": 0, "metrics": None, "run_dir": str(self.run_dir) if resume else None}
                return  # is as it was
            if resume:
                writer = RunWriter(self.run_dir)
            else:
                writer = RunWriter.create(self.out_dir, self.graph.name, name=self.run_name)
                lock = take_run_lock(writer.path)
            self.run_dir = writer.path
            try:
                yield from self._train(writer, resume)
            except ForeignEntry as exc:  # a link or a special file planted in the run: refused, one line
                raise TrainingError(str(exc)) from None
            except Exception as exc:  # the run is closed as failed, not left "running"
                if (writer.path / "config.json").is_file():
                    # a full disk may refuse this write too: the fault to report stays the first one
                    with contextlib.suppress(OSError):
                        writer.update_json("config.json", {"status": "failed", "message": error_line(exc),
                                                           "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
                raise
        finally:
            if lock is not None:
                lock.release()

    def _train(self, writer: RunWriter, resume: bool) -> Iterator[dict[str, Any]]:
        """The run in its folder: the start record, the epochs, the best epoch scored, the done record."""
        oracle = {name: self.loaded.oracle_ic(idx, self.data_config.lag, self.data_config.horizon)
                  for name, idx in self.data.splits.items()}
        state = self._open_records(writer, resume)
        steps_per_epoch = math.ceil(len(self.data.splits.train) / self.dates_per_batch)
        yield self._start_record(writer, state, oracle, steps_per_epoch, resume)
        progress = _Progress(steps_per_epoch, steps_per_epoch * (self.config.epochs - state.epochs_done))
        ending = yield from self._epochs(writer, state, oracle, progress)
        yield self._finish(writer, state, oracle, ending)

    def _open_records(self, writer: RunWriter, resume: bool) -> RunState:
        """The state the run starts from, with its folder's records made to match: a new run writes
        graph.json, then config.json; a resumed one is cut back to its checkpoint and marked running."""
        if not resume:
            # graph.json first, config.json last: a run directory with a config.json can be resumed
            writer.write_text("graph.json", dumps_graph(self.graph))
            self.graph.path = writer.path / "graph.json"
            writer.write_json(SPEC_FILE, self._preprocess_spec())
            writer.write_json("config.json", self._run_config())
            return RunState()
        if not (writer.path / SPEC_FILE).is_file():  # a run begun before runs recorded it
            writer.write_json(SPEC_FILE, self._preprocess_spec())
        state = self._resumed if self._resumed is not None else RunState()
        # the records end where the checkpoint does: an epoch line written after it (by an older
        # version, or in a kill between the two) is dropped, so the resumed run appends exactly once
        writer.write_jsonl("metrics.jsonl", state.history)
        config = read_json(writer.path / "config.json")
        config.pop("finished", None)
        writer.write_json("config.json", {**config, "status": "running", "message": "",
                                          "resumed": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return state

    def _start_record(self, writer: RunWriter, state: RunState, oracle: dict, steps_per_epoch: int,
                      resume: bool) -> dict[str, Any]:
        return {"kind": "start", "run_dir": str(writer.path), "device": str(self.device),
                "threads": torch.get_num_threads(), "feed": self.feed.kind, "sync_every": self.sync_every,
                "compiled_cell_steps": self.compiled_cell_steps, "backend": self._device_settings(),
                "parameters": self.n_params, "graph": self.graph.name,
                "data": self.data.describe(), "oracle_ic": oracle, "steps_per_epoch": steps_per_epoch,
                "dates_per_batch": self.dates_per_batch, "batch": self.batch_choice.line(),
                "epochs": self.config.epochs, "resumed_from": state.epochs_done if resume else None}

    def _epochs(self, writer: RunWriter, state: RunState, oracle: dict,
                progress: _Progress) -> Generator[dict[str, Any], None, Ending]:
        """The epochs left, each yielding its step records and its epoch record; returns how they ended."""
        patience = self.config.patience
        if patience and state.epochs_since_best >= patience:  # resumed after it had stopped early
            return self._early_stopped(state)
        for epoch in range(state.epochs_done + 1, self.config.epochs + 1):
            ending = yield from self._epoch(epoch, writer, state, oracle, progress)
            if ending is not None:
                return ending
            if patience and state.epochs_since_best >= patience:
                return self._early_stopped(state)
        return Ending("finished", f"{state.epochs_done} epochs; best epoch {state.best_epoch}")

    def _early_stopped(self, state: RunState) -> Ending:
        return Ending("early_stopped", f"no better validation IC for {self.config.patience} epochs; "
                                       f"best epoch {state.best_epoch}")

    def _epoch(self, epoch: int, writer: RunWriter, state: RunState, oracle: dict,
               progress: _Progress) -> Generator[dict[str, Any], None, Ending | None]:
        """One epoch: its training pass, its validation scoring, then its checkpoint and record. Returns
        None, or how the run ends when it ends in this epoch (which is then not recorded)."""
        epoch_start = time.perf_counter()
        losses: list[float] = []
        ending = yield from self._training_pass(epoch, state, progress, losses)
        if ending is None:
            self.scheduler.step()
            try:
                valid, daily, valid_loss = self.evaluate(self.data.splits.valid)
            except RunStopped:  # the epoch is not recorded: resume trains it again
                ending = Ending("stopped", f"stopped at epoch {epoch} while scoring its validation dates")
        if ending is not None:
            if ending.status == "stopped":
                ending = Ending("stopped", ending.message + (f"; best epoch {state.best_epoch} kept"
                                                             if state.best_epoch else "; no epoch finished"))
            return ending
        improved = self._keep_if_best(epoch, valid, state)
        record = {"kind": "epoch", "epoch": epoch, "epochs": self.config.epochs,
                  "train_loss": float(np.mean(losses)) if losses else math.nan, "valid_loss": valid_loss,
                  "valid": valid, "lr": self.optimizer.param_groups[0]["lr"],
                  "seconds": time.perf_counter() - epoch_start, "best_epoch": state.best_epoch,
                  "improved": improved, "oracle_ic": oracle.get("valid"),
                  "daily": {"dates": [str(self.data.panel.dates[d]) for d in self.data.splits.valid],
                            **{k: daily[k].tolist() for k in ("ic", "rank_ic", "long", "short", "long_short")}}}
        state.epochs_done = epoch
        state.history.append({k: v for k, v in record.items() if k not in ("daily", "kind")})
        # the checkpoint (atomic) before the record: a kill between them loses the line, which
        # resume writes again from the checkpoint's history, never a line without its checkpoint
        self._save_checkpoint(state)
        # the whole history, rewritten atomically: a full disk leaves the last whole file, never
        # a half line (a few hundred bytes an epoch; an append could stop in the middle of one)
        writer.write_jsonl("metrics.jsonl", state.history)
        yield record
        return None

    def _keep_if_best(self, epoch: int, valid: dict, state: RunState) -> bool:
        """Whether this epoch's validation IC beats the best so far; if so its weights are kept as the best."""
        valid_ic = valid["ic"] if math.isfinite(valid["ic"]) else -math.inf
        if valid_ic <= state.best_ic:
            state.epochs_since_best += 1
            return False
        state.best_weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        state.best_ic, state.best_epoch, state.epochs_since_best = valid_ic, epoch, 0
        return True

    def _training_pass(self, epoch: int, state: RunState, progress: _Progress,
                       losses: list[float]) -> Generator[dict[str, Any], None, Ending | None]:
        """One pass over the training dates in this epoch's order, yielding a step record per step and
        appending its loss to ``losses``. Returns None, or how the run ends when it ends in this pass (a
        stop, a loss that is not finite, the time limit); the step under way then is dropped."""
        c, cancel = self.config, self._cancel
        self.model.train()
        torch.manual_seed(c.seed * 100_003 + epoch)  # dropout etc.: reproducible per epoch
        generator = torch.Generator().manual_seed(c.seed * 7 + epoch)
        order = np.array(self.data.splits.train)
        np.random.default_rng([c.seed, epoch]).shuffle(order)
        pending: list[torch.Tensor] = []  # losses of steps not read back from the device yet
        batches = self.feed.batches(order, self.dates_per_batch)
        step = 0
        try:
            for step, (x, mask, label, has_label) in enumerate(batches, start=1):
                if cancel.is_set():  # asked between two batches
                    raise RunStopped
                step_started = time.perf_counter()
                loss = self._step_loss(x, mask, label, has_label, generator)
                pending.append(loss.detach())
                last = step == progress.steps_per_epoch or cancel.is_set() or progress.over_time(c.max_minutes)
                if len(pending) < self.sync_every and not last:
                    # the loss stays on the device; a step with a non-finite one is found at the next read
                    self._optimize(loss, step_started)
                    continue
                values = torch.stack(pending).float().tolist() if len(pending) > 1 else [pending[0].item()]
                pending = []
                first = step - len(values) + 1
                bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
                if bad is None:
                    self._optimize(loss, step_started)
                for i, value in enumerate(values[:bad]):
                    losses.append(value)
                    yield progress.step_record(epoch, first + i, value)
                if bad is not None:
                    kept = (f"kept the checkpoint of epoch {state.epochs_done}" if state.epochs_done
                            else "no epoch finished, so there is no checkpoint")
                    return Ending("failed", f"the loss became {values[bad]} at epoch {epoch}, step {first + bad} "
                                            f"(try a lower learning rate or gradient clipping); {kept}")
                if cancel.is_set():
                    raise RunStopped
                if progress.over_time(c.max_minutes):
                    return Ending("time_limit", f"stopped after {c.max_minutes:g} minutes at epoch {epoch}, "
                                                f"step {step}")
        except RunStopped:  # the step under way is dropped: the weights stay as the last whole step left them
            return Ending("stopped", f"stopped at epoch {epoch}, step {step}")
        finally:
            batches.close()
        return None

    def _step_loss(self, x, mask, label, has_label, generator: torch.Generator) -> torch.Tensor:
        """One training step's forward pass and loss (the rank loss draws its pairs from ``generator``)."""
        with self._checks("train"):
            with self._autocast():
                scores = self.model(x, mask).float()
            if self.config.loss == "rank":
                return self.loss_fn(scores, label, has_label, generator=generator)
            return self.loss_fn(scores, label, has_label)

    def _finish(self, writer: RunWriter, state: RunState, oracle: dict, ending: Ending) -> dict[str, Any]:
        """The best epoch's weights scored and written (if any finished), the run closed in config.json;
        returns the done record."""
        metrics = None
        if state.best_weights is not None:
            self.model.load_state_dict(state.best_weights)
            metrics = self._score_best_epoch(writer, ending, state, oracle)
            if metrics is None:
                message = ending.message
                if not message.startswith("stopped"):
                    message = f"stopped while scoring the best epoch ({message})"
                ending = Ending("stopped", message + (f"; not scored, which takes too long after a stop: studio "
                                                      f"train --resume {writer.path} trains the epochs left, "
                                                      f"then scores it"))
        writer.update_json("config.json", {"status": ending.status, "message": ending.message,
                                           "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return {"kind": "done", "status": ending.status, "message": ending.message,
                "best_epoch": state.best_epoch, "metrics": metrics, "run_dir": str(writer.path)}

    def _score_best_epoch(self, writer: RunWriter, ending: Ending, state: RunState, oracle: dict) -> dict | None:
        """The best epoch's figures and predictions, written; None when a stop leaves no time for them
        (a stop gives them SCORING_AFTER_STOP_S; the best weights are written as model.pt either way)."""
        dates = sum(len(idx) for _, idx in self.data.splits.items())
        if self._cancel.is_set():
            if self._seconds_per_date * dates > SCORING_AFTER_STOP_S:
                return self._not_scored(writer, state)
            self._grace_until = time.monotonic() + SCORING_AFTER_STOP_S
        try:
            return self._write_results(writer, ending, state, oracle)
        except RunStopped:
            return self._not_scored(writer, state)

    def _not_scored(self, writer: RunWriter, state: RunState) -> None:
        for name in RESULT_FILES:  # figures of an earlier end of this run are not this best epoch's
            (writer.path / name).unlink(missing_ok=True)
        writer.save_torch("model.pt", state.best_weights)
        return None

    def _optimize(self, loss: torch.Tensor, step_started: float) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with self._checks("train"):
            loss.backward()
        self._timed("train", step_started)
        # the update itself is never cut short: the weights are those of a whole number of steps
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()

    # ---- checkpoints -------------------------------------------------------------------------
    def _save_checkpoint(self, state: RunState) -> None:
        assert self.run_dir is not None
        payload = {**state.checkpoint_entries(), "model": self.model.state_dict(),
                   "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        RunWriter(self.run_dir).save_torch(CHECKPOINT, payload)

    def _read_checkpoint(self, model=None) -> dict | None:
        """The run's checkpoint, checked (studio.train.checkpoints); None when it has none yet (killed
        before its first epoch ended). Anything at its path, a folder or a link included, is checked,
        never taken for "no checkpoint"."""
        assert self.run_dir is not None
        path = self.run_dir / CHECKPOINT
        if not checkpoint_present(path):
            return None
        try:
            return read_checkpoint(path, self.config.epochs, model)
        except CheckpointError as exc:
            raise TrainingError(str(exc)) from None

    def _restore_checkpoint(self) -> RunState | None:
        """The model, optimiser and scheduler as the checkpoint left them, and the run's state to go on
        from; a checkpoint that does not fit them is a TrainingError (nothing of the run written yet)."""
        payload = self._read_checkpoint(self.model)
        if payload is None:
            return None
        source = printable(str(self.run_dir / CHECKPOINT))
        self.model.load_state_dict(payload["model"])
        try:  # the moments' shapes were checked against the model; what else torch finds is said here
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise TrainingError(f"{source}: its optimiser or schedule state does not fit this run "
                                f"({error_line(exc, 120)}); this run cannot be resumed from it") from None
        return RunState.from_checkpoint(payload)

    @classmethod
    def resume(cls, run_dir: str | os.PathLike[str], registry: Registry | None = None) -> Trainer:
        """A trainer that continues the run in ``run_dir`` from its last checkpoint; call
        ``run(resume=True)`` on it."""
        run_dir = Path(run_dir)
        check_run_dir(run_dir)  # a run folder from someone else: nothing in it followed out of it
        owner = held_by(run_dir)
        if owner is not None:  # said before any data loads; run() takes the lock itself
            raise TrainingError(str(RunInUse(run_dir, owner)))
        if not (run_dir / "config.json").is_file() or not (run_dir / "graph.json").is_file():
            what = "no such run directory" if not run_dir.is_dir() else (
                "not a run directory, or one killed before its run started (no config.json); train it afresh")
            raise TrainingError(f"{run_dir}: {what}")
        try:
            config = read_json(run_dir / "config.json")
        except (OSError, ValueError) as exc:
            raise TrainingError(f"{run_dir}: cannot read config.json ({exc})") from None
        try:
            training = TrainConfig.from_json(config["training"])
            settings = (recorded_source(config), training,
                        _data_config(config["data"]["config"]))
            metrics, splits = config["metrics"], given_splits(config)
            cost, quantile = float(metrics["cost"]), float(metrics["quantile"])
        except ConfigError as exc:  # e.g. a learning rate recorded as null (an older run with --lr inf)
            raise TrainingError(f"{printable(str(run_dir / 'config.json'))}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TrainingError(f"{printable(str(run_dir / 'config.json'))}: not the settings of a run "
                                f"({error_line(exc, 120)})") from None
        trainer = cls(load_graph(run_dir / "graph.json"), *settings, registry=registry, cost=cost,
                      quantile=quantile, splits=splits)
        trainer.run_dir = run_dir
        trainer._read_checkpoint()  # a damaged checkpoint is said now, before any data loads
        return trainer

    # ---- records -----------------------------------------------------------------------------
    def _run_config(self) -> dict:
        import platform

        device = str(self.device)
        if self.device.type == "cuda":
            device += f" ({torch.cuda.get_device_name(self.device)})"
        return {
            "graph": {"name": self.graph.name, "file": self.source_name,
                      "hash": graph_fingerprint(self.graph), "parameters": self.n_params},
            "data": {"source": self.source.to_json(), "resolved_path": resolved_path(self.source),
                     "config": self.data_config.to_json(),
                     "hash": self.loaded.fingerprint(), "panel": self.data.panel.describe(),
                     "splits": self.data.splits.describe(self.data.panel.dates),
                     **({"given_splits": {**{name: [int(i) for i in idx] for name, idx in self.given_splits.items()},
                                          "gap": int(self.given_splits.gap)}}
                        if self.given_splits is not None else {})},
            # the dates per batch as chosen: resume and reproduce train with that number again
            "training": {**self.config.to_json(), "dates_per_batch": self.dates_per_batch},
            "batch": self.batch_choice.to_json(),
            "seed": self.config.seed,
            "metrics": {"cost": self.cost, "quantile": self.quantile,
                        "min_stocks": self.data_config.min_stocks, "lag": self.data_config.lag,
                        "horizon": self.data_config.horizon},
            "versions": {"studio": __version__, "torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "device": device,
            "threads": torch.get_num_threads(),
            "feed": self.feed.kind,
            "backend": self._device_settings(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "status": "running",
        }

    def _preprocess_spec(self) -> dict:
        """preprocess.json: what turns raw bars into this run's input, with the statistics its data
        fitted on the training dates (studio predict and exports apply them, never refit)."""
        return make_spec(self.data_config, self.data.panel.bars_per_day, self.data.stats, self.source.to_json())

    def _write_results(self, writer: RunWriter, ending: Ending, state: RunState, oracle: dict) -> dict:
        panel, data = self.data.panel, self.data
        frames, per_split, rows = [], {}, []
        for name, dates in data.splits.items():
            scores = self.predict(dates)
            labels = data.raw_label[dates]
            summary, daily = summarize(scores, labels, quantile=self.quantile, cost=self.cost,
                                       min_stocks=self.data_config.min_stocks)
            if oracle.get(name) is not None:
                summary["oracle_ic"] = oracle[name]
            per_split[name] = summary
            frames.append((name, dates, scores, labels))
            self.results[name] = (np.asarray(dates), scores, labels)
            rows += daily_rows(name, [str(panel.dates[d]) for d in dates], daily)
        writer.write_predictions(frames, panel)
        writer.write_daily(rows)
        metrics = {"status": ending.status, "message": ending.message, "best_epoch": state.best_epoch,
                   "epochs_run": state.epochs_done, "quantile": self.quantile, "cost": self.cost,
                   "min_stocks": self.data_config.min_stocks, "lag": self.data_config.lag,
                   "horizon": self.data_config.horizon, "splits": per_split}
        writer.write_json("metrics.json", metrics)
        writer.save_torch("model.pt", state.best_weights)
        writer.write_pnl_chart(rows, self.graph.name, per_split.get("test", {}))
        self._write_baselines(writer, metrics)
        return metrics

    def _write_baselines(self, writer: RunWriter, metrics: dict) -> None:
        """baselines.json from the panel in memory; a failure is a note in metrics.json, never a failed run."""
        from studio.core.files import no_room
        from studio.train.baselines import write_baselines

        try:
            write_baselines(writer.path, panel=self.data.panel)
        except Exception as exc:  # the run's own figures are written: nothing here may undo them
            if no_room(exc):  # but a full disk is said as at any other output of the run
                raise
            (writer.path / "baselines.json").unlink(missing_ok=True)
            metrics["notes"] = [*metrics.get("notes", []), f"baselines not computed: {error_line(exc, 200)}"]
            writer.write_json("metrics.json", metrics)


def check_run_dir(run_dir: Path, refusal: type[Exception] = TrainingError) -> None:
    """studio.train.records.check_run_folder, its ForeignEntry said as ``refusal`` (one line). Shared
    with the walk-forward run (its WalkForwardError)."""
    try:
        check_run_folder(run_dir)
    except ForeignEntry as exc:
        raise refusal(str(exc)) from None


def take_run_lock(run_dir: Path, refusal: type[Exception] = TrainingError) -> RunLock:
    """The run's lock (studio.train.run_lock); another owner or something planted at its path is said as
    ``refusal`` (one line). Shared with the walk-forward run (its WalkForwardError)."""
    try:
        return RunLock.acquire(run_dir)
    except (RunInUse, ForeignEntry) as exc:
        raise refusal(str(exc)) from None


def features_file_for(panel, data_config: DataConfig, splits: Splits | None = None) -> Path | None:
    """Bars kept in a file, or features too large for memory: the features go to a cache file as well
    (None: they stay in memory)."""
    feature_bytes = panel.n_symbols * panel.n_days * panel.bars_per_day * len(data_config.features) * 4
    on_disk = store.mapping(panel.values) is not None or feature_bytes > store.on_disk_above()
    return features_cache_file(panel, data_config, splits) if on_disk else None


def resolved_path(source: SourceSpec) -> str | None:
    """The absolute path of the source's files as this process finds them (recorded beside the path as
    typed, so that reproduce and predict from another folder find the same files); None without a path."""
    return os.path.abspath(os.path.expanduser(source.path)) if source.path else None


def recorded_source(config: dict, data_path: str | None = None) -> SourceSpec:
    """The data source a run's config.json records: its files at ``data_path`` when given, else at the
    absolute path recorded beside the typed one when that exists (a run made from another folder),
    else at the path as typed. KeyError, TypeError or ConfigError when config.json lacks it."""
    from dataclasses import replace

    from studio.train.data_sources import DATA_SOURCES

    source = SourceSpec.from_json(config["data"]["source"])
    if data_path is not None:  # the kind's own prefix may be given too (qlib:DIR)
        return replace(source, path=DATA_SOURCES[source.kind].path_of(data_path))
    resolved = config["data"].get("resolved_path")
    if source.path and isinstance(resolved, str) and os.path.exists(resolved):
        return replace(source, path=resolved)
    return source


def given_splits(config: dict) -> Splits | None:
    """The splits a run was given (a walk-forward fold), from its config.json; None for a run whose
    splits came from the data settings' fractions."""
    given = (config.get("data") or {}).get("given_splits")
    if given is None:
        return None
    return Splits(*(np.asarray(given[name], dtype=np.int64) for name in SPLIT_NAMES), gap=int(given["gap"]))


def _data_config(settings: dict) -> DataConfig:
    settings = dict(settings)
    settings["split"] = tuple(settings["split"])
    return DataConfig(**settings)


def train(graph: Graph, source: SourceSpec | None = None, config: TrainConfig | None = None,
          **kwargs: Any) -> dict:
    """Run to the end without a front end; returns the ``done`` record."""
    last: dict = {}
    for record in Trainer(graph, source, config, **kwargs).run():
        last = record
    return last


