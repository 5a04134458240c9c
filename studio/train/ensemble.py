"""Ensembles of runs (``studio ensemble RUN... | SEED_GROUP --to DIR [--combine rank|zscore]``): the
members' scores, made comparable date by date and averaged, judged like any run.

Each member's scores of a date are first normalised across that date's stocks by
studio.data.preprocess.cross_section, as the studio normalises inputs: ``rank`` (the default) gives
Qlib's CSRankNorm, (average rank / n - 0.5) x 3.46, ties sharing their average rank; ``zscore`` gives
(score - mean) / std (std over the stocks, ddof 0). The ensemble's score is the mean of the members'
normalised scores. A stock counts on a date only where every member scored it, so that each score is the
mean of as many terms and each member's normalisation runs over the same stocks. The test split is
always combined; train and valid too where every member has them (predictions.parquet's split column).

An ensemble is a run directory of its own, read by compare, report, run diffs and the studio:

    DIR/
      config.json          kind "ensemble"; its members (paths, run names, seeds), the combine method, and
                           the data source, data settings, splits and metric settings the members share
                           (so the run's data can be loaded again, as studio predict and studio baselines do)
      graph.json           the first member's graph (its input window is what loads the data)
      predictions.parquet  date, symbol, split, score (the combined score), label (raw forward return)
      daily.csv, metrics.json, pnl.png   as a trained run's, from studio.metrics.summarize
      report.html          the tear sheet of the test split (studio report)
      baselines.json       the factor baselines on the same dates, when studio.train.baselines exists

Members must be complete runs (finished or early-stopped) of the same data (source and fingerprint),
split, lag, horizon, metric settings, dates and labels; anything else is refused in one line.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.owned_dir import ForeignEntry, owned_file, read_owned
from studio.core.text import error_line, printable
from studio.data.preprocess import cross_section
from studio.metrics import summarize
from studio.train.ensemble_kind import KIND, is_ensemble
from studio.train.records import RunWriter, check_run_folder, daily_rows, read_run, seed_group

#: the normalisation of each member's scores before they are averaged (studio.data.preprocess.cross_section)
COMBINES = {"rank": "rank", "zscore": "zscore"}
#: member statuses whose predictions are those of a whole run
COMPLETE = ("finished", "early_stopped")
#: a seed group's id as records.seed_group makes it (compare's "group" column); a prefix of 6+ names it
GROUP_ID = re.compile(r"^#?([0-9a-f]{6,12})$")
SPLIT_ORDER = ("train", "valid", "test")


class EnsembleError(Exception):
    """An ensemble that cannot be made as asked (one line naming the run or folder)."""


@dataclass
class Member:
    path: Path
    config: dict
    metrics: dict
    #: predictions.parquet as written: date, symbol, split, score, label
    predictions: Any


def group_members(runs_dir: str | os.PathLike[str], group: str) -> list[Path]:
    """Every run in ``runs_dir`` whose seed group (records.seed_group) starts with ``group``."""
    match = GROUP_ID.match(group)
    if match is None:
        raise EnsembleError(f"{printable(group)}: neither a run directory nor a seed group id (6 to 12 hex "
                            "digits, as studio compare's group column shows)")
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise EnsembleError(f"--runs-dir {printable(str(runs_dir))}: no such folder of runs")
    found, groups = [], set()
    for path in sorted(p for p in runs_dir.iterdir() if (p / "config.json").is_file()):
        try:
            config = read_run(path)["config"]
        except (OSError, ValueError, ForeignEntry):
            continue
        if not isinstance(config, dict) or is_ensemble(config):
            continue
        key = seed_group(config)
        if key.startswith(match[1]):
            found.append(path)
            groups.add(key)
    if not found:
        raise EnsembleError(f"seed group {match[1]}: no run of {printable(str(runs_dir))} is in it "
                            "(studio compare lists the groups; --runs-dir names another folder)")
    if len(groups) > 1:
        raise EnsembleError(f"seed group {match[1]}: names {len(groups)} groups of {printable(str(runs_dir))} "
                            f"({', '.join(sorted(groups))}); give more of the id")
    return found


def read_member(path: str | os.PathLike[str]) -> Member:
    """A complete plain run: its config, metrics and predictions (read inside its folder only)."""
    import pandas as pd

    path = Path(path)
    shown = printable(str(path))
    if not (path / "config.json").is_file():
        what = "no such run directory" if not path.exists() else "not a run directory (no config.json)"
        raise EnsembleError(f"{shown}: {what}")
    try:
        check_run_folder(path)
        run = read_run(path)
    except ForeignEntry as exc:
        raise EnsembleError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise EnsembleError(f"{shown}: cannot read the run ({error_line(exc, 120)})") from None
    config, metrics = run["config"], run["metrics"]
    if not isinstance(config, dict) or not isinstance(config.get("data"), dict):
        raise EnsembleError(f"{shown}: config.json is not the settings of a run")
    kind = config.get("kind", "run")
    if kind != "run":
        what = "an ensemble itself" if kind == KIND else f"a {str(kind).replace('_', '-')} run"
        raise EnsembleError(f"{shown}: is {what}; an ensemble combines plain runs")
    status = metrics.get("status") if isinstance(metrics, dict) else None
    if run["status"] not in COMPLETE or status not in COMPLETE:
        raise EnsembleError(f"{shown}: not finished (status {printable(str(status or run['status']))}); an "
                            "ensemble combines runs that ran to their end")
    try:
        with owned_file(path / "predictions.parquet") as fh:
            predictions = pd.read_parquet(fh, columns=["date", "symbol", "split", "score", "label"])
    except ForeignEntry as exc:
        raise EnsembleError(str(exc)) from None
    except Exception as exc:  # absent or damaged: pyarrow's own errors are many
        raise EnsembleError(f"{shown}: cannot read predictions.parquet ({error_line(exc, 120)})") from None
    predictions["split"] = predictions["split"].astype(str)
    return Member(path, config, metrics, predictions)


def _differ(members: list[Member], what: str, value) -> None:
    """Refuse when ``value(member)`` is not the same for every member (naming the first that differs)."""
    first = value(members[0])
    for other in members[1:]:
        if value(other) != first:
            raise EnsembleError(f"{printable(str(other.path))} and {printable(str(members[0].path))}: {what} "
                                "differ; an ensemble combines runs on the same data, split and dates")


def check_members(members: list[Member]) -> None:
    """Refuse (one line) members that are not the same experiment's data, split, dates and labels."""
    if len({m.path.resolve() for m in members}) < 2:
        raise EnsembleError(f"an ensemble needs at least 2 runs, gets {len({m.path.resolve() for m in members})}")
    _differ(members, "the data source", lambda m: m.config["data"].get("source"))
    _differ(members, "the data (fingerprint)", lambda m: m.config["data"].get("hash"))
    settings = ("lag", "horizon", "split", "min_stocks")
    _differ(members, "the data settings (" + ", ".join(settings) + ")",
            lambda m: {k: (m.config["data"].get("config") or {}).get(k) for k in settings})
    _differ(members, "the given splits", lambda m: m.config["data"].get("given_splits"))
    _differ(members, "the metric settings (cost, quantile)",
            lambda m: {k: (m.config.get("metrics") or {}).get(k) for k in ("cost", "quantile")})
    _differ(members, "the dates of each split", lambda m: {
        split: tuple(part["date"].drop_duplicates().sort_values())
        for split, part in m.predictions.groupby("split", observed=True)})
    if "test" not in set(members[0].predictions["split"]):
        raise EnsembleError(f"{printable(str(members[0].path))}: has no test predictions")


def _matrices(member: Member, split: str, dates, symbols) -> tuple[np.ndarray, np.ndarray]:
    part = member.predictions[member.predictions["split"] == split]
    scores = part.pivot(index="date", columns="symbol", values="score").reindex(index=dates, columns=symbols)
    labels = part.pivot(index="date", columns="symbol", values="label").reindex(index=dates, columns=symbols)
    return scores.to_numpy(dtype=np.float64), labels.to_numpy(dtype=np.float64)


def combine(members: list[Member], split: str, how: str = "rank"):
    """(dates, symbols, scores, labels, dropped) of one split: the mean of the members' cross-sectionally
    normalised scores where every member scored the stock, the labels there, and how many stock-dates
    some but not all members scored. Refuses members whose labels differ."""
    import pandas as pd

    frames = [m.predictions[m.predictions["split"] == split] for m in members]
    dates = pd.DatetimeIndex(sorted(set(frames[0]["date"])))
    symbols = sorted(set().union(*(set(f["symbol"]) for f in frames)))
    scored = [_matrices(m, split, dates, symbols) for m in members]
    scores, present, dropped = average_normalised([s for s, _ in scored], how)
    labels = scored[0][1]
    for member, (_, other) in zip(members[1:], scored[1:], strict=True):
        both = present & (np.isfinite(labels) | np.isfinite(other))
        if not np.array_equal(labels[both], other[both], equal_nan=True):
            raise EnsembleError(f"{printable(str(member.path))} and {printable(str(members[0].path))}: the labels "
                                f"of the {split} split differ (another label, lag or horizon); an ensemble "
                                "combines runs on the same data")
    return dates, symbols, scores, np.where(present, labels, np.nan), dropped


def average_normalised(scores: list[np.ndarray], how: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The ensemble's (dates, stocks) scores from its members' (same shape, NaN where not scored): each
    member's normalised across the stocks every member scored that date, then averaged; with where that
    is (bool) and how many stock-dates some but not all members scored."""
    present = np.logical_and.reduce([np.isfinite(s) for s in scores])
    anywhere = np.logical_or.reduce([np.isfinite(s) for s in scores])
    normalised = [cross_section(np.where(present, s, np.nan), COMBINES[how]) for s in scores]
    return np.mean(normalised, axis=0), present, int((anywhere & ~present).sum())


@dataclass
class _Axes:
    """The dates and symbols of the combined predictions (what RunWriter.write_predictions reads of a panel)."""

    dates: np.ndarray
    symbols: list[str]


def _shared(members: list[Member], value):
    """``value(member)`` when every member has the same, else None."""
    first = value(members[0])
    return first if all(value(m) == first for m in members[1:]) else None


def _config(members: list[Member], how: str, splits: list[str], notes: list[str]) -> dict:
    import platform

    from studio import __version__

    first = members[0].config
    names = list(dict.fromkeys(str((m.config.get("graph") or {}).get("name", "")) for m in members))
    groups = {seed_group(m.config) for m in members}
    return {
        "kind": KIND,
        "ensemble": {"combine": how, "splits": splits, "notes": notes,
                     "seed_group": groups.pop() if len(groups) == 1 else None,
                     "members": [{"path": str(m.path.resolve()), "run": m.path.name, "seed": m.config.get("seed"),
                                  "graph": (m.config.get("graph") or {}).get("name")} for m in members]},
        "graph": {"name": "+".join(names), "file": "graph.json: the first member's",
                  "hash": _shared(members, lambda m: (m.config.get("graph") or {}).get("hash"))},
        "data": {key: first["data"][key] for key in ("source", "resolved_path", "config", "hash", "panel", "splits",
                                                     "given_splits") if key in first["data"]},
        "seed": None,
        "metrics": first.get("metrics"),
        "versions": {"studio": __version__, "numpy": np.__version__, "python": platform.python_version()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "status": "running",
    }


def _output_folder(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    if os.path.lexists(out) and not out.is_dir():
        raise EnsembleError(f"--to {printable(str(out))}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise EnsembleError(f"--to {printable(str(out))}: the folder exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    return out


def make_ensemble(runs: list[str | os.PathLike[str]], out: str | os.PathLike[str], how: str = "rank") -> dict:
    """Combine the runs into the run directory ``out``; returns its metrics.json (with ``notes``)."""
    if how not in COMBINES:
        raise EnsembleError(f"--combine {printable(how)}: expects one of {', '.join(COMBINES)}")
    if len(runs) < 2:
        raise EnsembleError(f"an ensemble needs at least 2 runs, gets {len(runs)}")
    members = [read_member(path) for path in runs]
    check_members(members)
    present = [set(m.predictions["split"]) for m in members]
    splits = [s for s in SPLIT_ORDER if all(s in p for p in present)]
    combined, notes = {}, []
    for split in splits:
        dates, symbols, scores, labels, dropped = combine(members, split, how)
        combined[split] = (dates, symbols, scores, labels)
        if dropped:
            notes.append(f"{split}: {dropped} stock-dates scored by some members but not all are left out")
    folder = _output_folder(out)
    writer = RunWriter(folder)
    writer.write_text("graph.json", read_owned(members[0].path / "graph.json").decode("utf-8"))
    writer.write_json("config.json", _config(members, how, splits, notes))
    metrics = _write_results(writer, members, combined, how, notes)
    writer.update_json("config.json", {"status": "finished", "message": metrics["message"],
                                       "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return {**metrics, "notes": notes + _tear_sheet_and_baselines(folder)}


def _write_results(writer: RunWriter, members: list[Member], combined: dict, how: str, notes: list[str]) -> dict:
    """predictions.parquet, daily.csv, metrics.json and pnl.png, as a trained run writes them."""
    import pandas as pd

    settings = members[0].config.get("metrics") or {}
    quantile, cost = float(settings.get("quantile", 0.2)), float(settings.get("cost", 0.0))
    min_stocks = int(settings.get("min_stocks", 10))
    all_dates = pd.DatetimeIndex(sorted(set().union(*(set(d) for d, *_ in combined.values()))))
    symbols = sorted(set().union(*(set(s) for _, s, *_ in combined.values())))
    axes = _Axes(np.asarray(all_dates.values.astype("datetime64[D]")), symbols)
    frames, per_split, rows = [], {}, []
    for split, (dates, split_symbols, scores, labels) in combined.items():
        at = all_dates.get_indexer(dates)
        columns = pd.Index(symbols).get_indexer(split_symbols)
        wide_scores = np.full((len(dates), len(symbols)), np.nan)
        wide_labels = np.full((len(dates), len(symbols)), np.nan)
        wide_scores[:, columns], wide_labels[:, columns] = scores, labels
        summary, daily = summarize(wide_scores, wide_labels, quantile=quantile, cost=cost, min_stocks=min_stocks)
        oracle = _shared(members, lambda m, s=split: ((m.metrics.get("splits") or {}).get(s) or {}).get("oracle_ic"))
        if oracle is not None:
            summary["oracle_ic"] = oracle
        per_split[split] = summary
        frames.append((split, at, wide_scores, wide_labels))
        rows += daily_rows(split, [str(d) for d in axes.dates[at]], daily)
    writer.write_predictions(frames, axes)
    writer.write_daily(rows)
    message = f"ensemble of {len(members)} runs ({how})"
    metrics = {"status": "finished", "message": message, "kind": KIND, "best_epoch": None,
               "members": [{"run": m.path.name, "test": (m.metrics.get("splits") or {}).get("test")} for m in members],
               "notes": notes, "quantile": quantile, "cost": cost, "min_stocks": min_stocks,
               "lag": settings.get("lag"), "horizon": settings.get("horizon"), "splits": per_split}
    writer.write_json("metrics.json", metrics)
    writer.write_pnl_chart(rows, f"{message}: {members[0].config.get('graph', {}).get('name', '')}",
                           per_split.get("test", {}))
    return metrics


def _tear_sheet_and_baselines(folder: Path) -> list[str]:
    """report.html (the test split's tear sheet) and baselines.json; a failure of either is a note, never a
    failed ensemble (its figures are written by then)."""
    from studio.train.report import ReportError, write_report

    notes = []
    if importlib.util.find_spec("studio.train.baselines") is None:
        notes.append("no baselines.json: this studio has no studio.train.baselines")
    else:
        from studio.train import baselines

        try:  # before the tear sheet, whose baselines panel reads it
            baselines.write_baselines(folder)
        except Exception as exc:  # the ensemble stands without them, as a run does (a note)
            notes.append(f"no baselines.json: {error_line(exc, 200)}")
    try:
        write_report(folder, folder / "report.html", "test")
    except ReportError as exc:
        notes.append(f"no tear sheet: {exc}")
    return notes
