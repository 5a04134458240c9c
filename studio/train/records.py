"""Run records: plain files in one directory per run, readable with pandas and any JSON reader.

    runs/<YYYYmmdd-HHMMSS>-<graph name>/
      graph.json           the frozen graph that was trained
      config.json          data, training, seed, versions, device, graph and data hashes, status
      preprocess.json      raw bars -> the model's input: features, window, the fitted normalisation
                           (studio.data.preprocess_spec; read by studio predict and export --run)
      metrics.jsonl        one line per epoch
      metrics.json         final figures per split (from the best epoch's model)
      daily.csv            date, split, ic, rank_ic, long, short, long_short, turnover
      predictions.parquet  date, symbol, split, score, label (raw forward return)
      model.pt             the best epoch's state dict (torch.load(..., weights_only=True))
      pnl.png              cumulative long, short and long-short of the test dates, and IC per date
      baselines.json       classic bar factors judged on the run's own dates, and the incremental IC
                           (studio.train.baselines; `studio baselines RUN` writes it for older runs)
      checkpoint.pt        the last epoch's full state, for resuming
      run.lock             locked by the process that runs it (studio.train.run_lock), while it runs

Every file of a run is opened inside its directory only (studio.core.owned_dir): a symbolic link or a
special file planted there is refused, never followed.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.owned_dir import append_owned, check_folder, owned_writer, read_json, write_owned
from studio.train.run_lock import run_status

#: the files of a run directory (regular files; ``folds`` is a walk-forward's folder of fold runs)
RUN_FILES = ("graph.json", "config.json", "preprocess.json", "metrics.jsonl", "metrics.json", "daily.csv",
             "predictions.parquet", "model.pt", "pnl.png", "checkpoint.pt", "run.lock", "baselines.json")
RUN_FOLDERS = ("folds",)


def check_run_folder(path: str | os.PathLike[str]) -> None:
    """Refuse (ForeignEntry, one line) a run directory holding a symbolic link or a special file."""
    check_folder(path, "run", files=RUN_FILES, folders=RUN_FOLDERS)


def _clean(value: Any) -> Any:
    """JSON without NaN: NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


#: settings that do not make two runs different experiments (the seed is what a group of runs spans)
NOT_THE_EXPERIMENT = ("seed", "threads", "device", "feed", "sync_every")


def seed_group(config: dict) -> str:
    """A key shared by runs of the same graph (by its hash), data source, data and training settings that
    differ only in their seed (and the device, threads or feed they ran on)."""
    import hashlib

    training = {k: v for k, v in (config.get("training") or {}).items() if k not in NOT_THE_EXPERIMENT}
    data = config.get("data") or {}
    key = {"graph": (config.get("graph") or {}).get("hash"), "source": data.get("source"),
           "data": data.get("config"), "training": training}
    if config.get("kind") == "walk_forward":  # another experiment than one run of the same settings
        key["walk_forward"] = {k: v for k, v in (config.get("walk_forward") or {}).items() if k != "plan"}
    if config.get("kind") == "ensemble":  # a group of its own, never one of its members' seeds
        key["ensemble"] = config.get("ensemble")
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


#: the per-date figures of daily.csv, after its date and split
DAILY_FIGURES = ("ic", "rank_ic", "long", "short", "long_short", "turnover")


def daily_rows(split: str, dates: list[str], daily: dict) -> list[dict]:
    """daily.csv's rows of one split: its dates (as text) and the per-date series of studio.metrics.summarize."""
    return [{"date": date, "split": split, **{key: float(daily[key][i]) for key in DAILY_FIGURES}}
            for i, date in enumerate(dates)]


class RunWriter:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, out_dir: Path | None, graph_name: str, name: str | None = None) -> RunWriter:
        """A new, empty run directory under ``out_dir``: ``name`` (which must not exist yet), or the time
        and the graph's name (with -2, -3, ... when taken)."""
        root = Path(out_dir) if out_dir is not None else Path("runs")
        if name is not None:
            root.mkdir(parents=True, exist_ok=True)
            (root / name).mkdir()
            return cls(root / name)
        stem = time.strftime("%Y%m%d-%H%M%S") + "-" + (re.sub(r"[^\w.-]+", "_", graph_name) or "graph")
        root.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            path = root / (stem if n == 1 else f"{stem}-{n}")
            try:
                path.mkdir()  # atomic: of two runs starting in the same second, one gets -2
            except FileExistsError:
                continue
            return cls(path)
        raise FileExistsError(f"{root}: no free run directory name for {stem}")

    def write_json(self, name: str, data: dict) -> None:
        write_owned(self.path / name, json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")

    def update_json(self, name: str, changes: dict) -> None:
        data = read_json(self.path / name)
        data.update(changes)
        self.write_json(name, data)

    def write_jsonl(self, name: str, records: list[dict]) -> None:
        """Replace ``name`` with these records, one line each (atomically)."""
        write_owned(self.path / name, "".join(json.dumps(_clean(r), allow_nan=False) + "\n" for r in records))

    def append_jsonl(self, name: str, record: dict) -> None:
        append_owned(self.path / name, json.dumps(_clean(record), allow_nan=False) + "\n")

    def write_text(self, name: str, text: str) -> None:
        write_owned(self.path / name, text)

    def save_torch(self, name: str, value: Any) -> None:
        """``torch.save(value)`` to a file of the run, atomically and never through a link (made in memory
        first, so that a full disk is met by the save's own write: studio.core.files.DiskFullError)."""
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(value, buffer)
        write_owned(self.path / name, buffer.getvalue())

    def write_predictions(self, frames, panel) -> None:
        import pandas as pd

        parts = []
        for split, dates, scores, labels in frames:
            d_idx, s_idx = np.nonzero(np.isfinite(scores))
            parts.append(pd.DataFrame({
                "date": pd.to_datetime(panel.dates[dates[d_idx]]),
                "symbol": np.asarray(panel.symbols, dtype=object)[s_idx],
                "split": split,
                "score": scores[d_idx, s_idx],
                "label": labels[d_idx, s_idx],
            }))
        frame = pd.concat(parts, ignore_index=True)
        frame["split"] = frame["split"].astype("category")
        with owned_writer(self.path / "predictions.parquet", binary=True) as fh:
            frame.to_parquet(fh, index=False)

    def write_daily(self, rows: list[dict]) -> None:
        import pandas as pd

        with owned_writer(self.path / "daily.csv") as fh:
            pd.DataFrame(rows).to_csv(fh, index=False, float_format="%.10g")

    def write_pnl_chart(self, rows: list[dict], title: str, test: dict) -> None:
        from studio.train.charts import pnl_chart

        test_rows = [r for r in rows if r["split"] == "test"]
        if test_rows:
            with owned_writer(self.path / "pnl.png", binary=True) as fh:
                pnl_chart(test_rows, fh, title, test)


def read_run(path: str | os.PathLike[str]) -> dict:
    """config.json and metrics.json of a run directory (metrics may be missing for a failed run), and its
    status as it is now: ``running`` while a live process owns it, ``interrupted`` when the process that
    ran it died (docs/training.md)."""
    path = Path(path)
    try:
        config = read_json(path / "config.json")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not a run directory (no config.json)") from None
    try:
        metrics = read_json(path / "metrics.json")
    except FileNotFoundError:
        metrics = None
    return {"path": str(path), "config": config, "metrics": metrics,
            "status": run_status(path, config.get("status") if isinstance(config, dict) else None)}
