"""Reproduce a run: train it again from its recorded graph, settings, seed and data, and say whether every
figure comes out the same (exactly, on the CPU). A re-run that could not match is refused up front with
one line saying why: other data (the fingerprint differs), another studio or torch version, a run that
stopped at a moment no re-run can hit (stopped, out of time), one still running in another process (its
lock, studio.train.run_lock) or interrupted, or a device this machine lacks.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio import __version__

#: statuses of runs whose end a re-run reaches the same way
REPRODUCIBLE = ("finished", "early_stopped")


class ReproduceError(Exception):
    """A run that cannot be reproduced here (one line: the run directory and the reason)."""


@dataclass
class Reproduction:
    run_dir: Path
    rerun_dir: Path
    #: (split.figure, recorded, reproduced)
    figures: list[tuple[str, Any, Any]] = field(default_factory=list)
    #: (what, recorded, reproduced) of the run's course: best epoch, epochs run
    course: list[tuple[str, Any, Any]] = field(default_factory=list)
    exact: bool = True

    @property
    def differences(self) -> list[tuple[str, Any, Any]]:
        return [row for row in self.course + self.figures if not _equal(row[1], row[2], self.exact)]

    @property
    def matches(self) -> bool:
        return not self.differences


def _equal(a: Any, b: Any, exact: bool) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b if exact else math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


def _read_json(path: Path, run_dir: Path) -> Any:
    from studio.core.owned_dir import read_json

    try:  # inside the run folder only: a link or a special file there is refused (ForeignEntry)
        return read_json(path)
    except FileNotFoundError:
        raise ReproduceError(f"{run_dir}: not a finished run directory (no {path.name})") from None
    except (OSError, ValueError) as exc:
        raise ReproduceError(f"{run_dir}: cannot read {path.name} ({str(exc).splitlines()[0][:120]})") from None


def _refusal(config: dict, torch_version: str) -> str | None:
    """Why a re-run here could not give the recorded figures, or None."""
    status = config.get("status")
    if status == "running":  # no live process owns it (reproduce checked): the one that ran it died
        status = "interrupted"
    if status not in REPRODUCIBLE:
        return (f"the run ended {status!r}: only a finished or early-stopped run ends where a re-run does"
                if status else "the run has no status: it did not finish")
    versions = config.get("versions") or {}
    for name, here in (("studio", __version__), ("torch", torch_version)):
        if versions.get(name) != here:
            return f"it was made with {name} {versions.get(name)}, this is {name} {here}"
    return None


def reproduce(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None,
              registry=None, data: str | None = None) -> Reproduction:
    """Train ``run_dir`` again (into ``out_dir``, default a temporary folder) and compare its figures.
    ``data``: the path of its data here (default: the recorded absolute path when it exists, else the
    path as typed); the data's fingerprint must still be the run's."""
    import torch

    from studio.core.graph_file import GraphFileError, load_graph
    from studio.core.owned_dir import ForeignEntry
    from studio.data.panel import DataError
    from studio.train.config import ConfigError, TrainConfig
    from studio.train.engine import Trainer, TrainingError, _data_config, given_splits, recorded_source
    from studio.train.records import check_run_folder
    from studio.train.run_lock import RunInUse, held_by
    from studio.train.sources import load_source

    run_dir = Path(run_dir)
    try:  # a run folder from someone else: none of its files (model.pt included) read through a link
        check_run_folder(run_dir)
    except ForeignEntry as exc:
        raise ReproduceError(str(exc)) from None
    owner = held_by(run_dir)
    if owner is not None:  # its figures are not final while it runs
        raise ReproduceError(str(RunInUse(run_dir, owner)))
    config = _read_json(run_dir / "config.json", run_dir)
    recorded = _read_json(run_dir / "metrics.json", run_dir)
    if not isinstance(config, dict) or not isinstance(recorded, dict):
        raise ReproduceError(f"{run_dir}: config.json or metrics.json is not a JSON object")
    if config.get("kind") == "walk_forward":
        raise ReproduceError(f"{run_dir}: cannot reproduce a walk-forward run as a whole: reproduce each fold "
                             f"(studio reproduce {run_dir / 'folds' / 'fold-1'})")
    if config.get("kind") == "ensemble":
        from studio.train.ensemble_kind import describe

        raise ReproduceError(f"{describe(run_dir, config)}; reproduce each member, then studio ensemble them "
                             "again")
    reason = _refusal(config, torch.__version__)
    if reason:
        raise ReproduceError(f"{run_dir}: cannot reproduce: {reason}")
    device = str(config.get("device", "cpu")).split(" ")[0]
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ReproduceError(f"{run_dir}: cannot reproduce: it ran on {config['device']}, this machine has no "
                             "CUDA GPU")
    try:
        graph = load_graph(run_dir / "graph.json")
        source = recorded_source(config, data)
        training = TrainConfig.from_json({**config["training"], "device": device,
                                          "threads": int(config.get("threads") or 1)})
        data_config = _data_config(config["data"]["config"])
        fold_splits = given_splits(config)
    except GraphFileError as exc:
        raise ReproduceError(f"{run_dir}: {exc}") from None
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ReproduceError(f"{run_dir}: config.json lacks what a re-run needs ({exc})") from None
    if graph.input is None:
        raise ReproduceError(f"{run_dir}: graph.json is not a model")
    recorded_weights = _checked_weights(run_dir, graph, training.epochs, registry)
    try:
        loaded = load_source(source, graph.input)
    except (DataError, OSError) as exc:
        raise ReproduceError(f"{run_dir}: cannot reproduce: its data cannot be read here "
                             f"({str(exc).splitlines()[0][:160]}); give its path with --data") from None
    if loaded.fingerprint() != config["data"].get("hash"):
        raise ReproduceError(f"{run_dir}: cannot reproduce: the data differ ({source.describe()} has "
                             f"fingerprint {loaded.fingerprint()[:12]}, the run recorded "
                             f"{str(config['data'].get('hash'))[:12]})")
    metrics = config.get("metrics") or {}
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="studio-reproduce-"))
    try:
        trainer = Trainer(graph, source, training, data_config, out_dir=out, registry=registry, loaded=loaded,
                          cost=metrics.get("cost", 0.002), quantile=metrics.get("quantile", 0.2),
                          splits=fold_splits)
        done: dict = {}
        for record in trainer.run():
            done = record
    except TrainingError as exc:
        raise ReproduceError(f"{run_dir}: the re-run failed ({exc})") from None
    rerun_dir = Path(done.get("run_dir", out))
    if done.get("status") not in REPRODUCIBLE:
        raise ReproduceError(f"{run_dir}: the re-run ended {done.get('status')!r}: {done.get('message', '')}")
    again = _read_json(rerun_dir / "metrics.json", rerun_dir)  # as the run wrote its own (NaN as null)
    result = Reproduction(run_dir, rerun_dir, exact=device == "cpu")
    result.course = [(key, recorded.get(key), again.get(key)) for key in ("status", "best_epoch", "epochs_run")]
    if result.exact:  # on the CPU the best epoch's weights come out the same bits too
        from studio.train.checkpoints import CheckpointError, read_weights

        try:
            same = _same_weights(recorded_weights, read_weights(rerun_dir / "model.pt"))
        except CheckpointError:
            same = False
        result.course.append(("weights (model.pt)", "as recorded", "as recorded" if same else "different"))
    splits = sorted(set(recorded.get("splits") or {}) | set(again.get("splits") or {}))
    for split in splits:
        mine, theirs = (recorded.get("splits") or {}).get(split) or {}, (again.get("splits") or {}).get(split) or {}
        for key in sorted(set(mine) | set(theirs)):
            result.figures.append((f"{split}.{key}", mine.get(key), theirs.get(key)))
    return result


def _checked_weights(run_dir: Path, graph, epochs: int, registry) -> dict:
    """The run's model.pt, checked to be this graph's weights, and its checkpoint (when it has one)
    checked as --resume checks it: a damaged or tampered run is refused before anything trains."""
    from studio.torchgraph.builder import BuildError, build_model
    from studio.train.checkpoints import CheckpointError, checkpoint_present, read_checkpoint, read_weights

    try:
        model = build_model(graph, registry)
    except BuildError as exc:
        raise ReproduceError(f"{run_dir}: graph.json cannot be built ({exc})") from None
    try:
        weights = read_weights(run_dir / "model.pt", model)
        if checkpoint_present(run_dir / "checkpoint.pt"):
            read_checkpoint(run_dir / "checkpoint.pt", epochs, model)
    except CheckpointError as exc:
        raise ReproduceError(f"{run_dir}: cannot reproduce: {exc}") from None
    return weights


def _same_weights(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
