"""Score new bars with a finished run: ``studio predict RUN_DIR --data PATH --dates ...``.

The run directory holds everything a prediction needs: graph.json (the frozen graph), model.pt (the
best epoch's weights), config.json (the data source and its import settings, the batch size) and
preprocess.json (features, window and the normalisation fitted on the training dates). Each chosen
date's input is made from raw bars by studio.data.preprocess with the stored statistics (never refitted
on the new data), so the scores of a run's own test dates are its predictions.parquet's.

A date needs no label (today has none); where the label is known it is given with the date's IC. What
is left out is counted in ``notes``, never silently: dates with too few stocks, the run's symbols the
data lacks, stocks not traded on a date and stocks whose window misses bars.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: output files by suffix: a table, or Qlib's pred.pkl (what its SignalRecord writes)
OUTPUT_SUFFIXES = (".csv", ".parquet", ".pkl")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")
#: the data a run of each source kind trained on, as refusals name it
_KIND_WORDS = {"synthetic": "the synthetic market", "import": "files of bars", "qlib": "a Qlib data folder"}


class PredictError(Exception):
    """A prediction that cannot be made as asked (one line naming the run, file or date)."""


@dataclass
class Prediction:
    run_dir: Path
    #: one row per scored stock and date: date, symbol, score, rank (1: the highest score of its date)
    #: and, where any label of the chosen dates is known, label (raw forward return) and ic (the date's)
    frame: Any
    #: where the bars came from, one line
    source: str
    #: what was left out or differs, with counts, one line each
    notes: list[str] = field(default_factory=list)


def predict(run_dir: str | os.PathLike[str], data: str | None = None, dates: str = "last",
            registry=None, cancel=None) -> Prediction:
    """Scores of the chosen ``dates`` (``last``, ``YYYY-MM-DD`` or ``A..B``) of the run's data, or of
    the data at ``data`` read with the run's import settings. ``cancel``: a threading.Event (the studio's
    Close) read between dates; once set, PredictError("stopped")."""
    from studio.data.panel import DataError
    from studio.data.preprocess_spec import load_spec, spec_path

    run_dir = Path(run_dir)
    config = _run_config(run_dir)
    if config.get("kind") == "ensemble":  # no model of its own: its members', combined as it combined them
        return _predict_ensemble(run_dir, config, data, dates, registry, cancel)
    try:
        spec = load_spec(spec_path(run_dir))
    except DataError as exc:
        raise PredictError(f"{run_dir}: cannot predict: {exc}") from None
    graph, model = _model(run_dir, spec, registry)
    source, panel = _panel(run_dir, config, graph, data)
    if panel.bars_per_day != spec["bars_per_day"]:
        raise PredictError(f"{source}: the data has {panel.bars_per_day} bars per day, the run "
                           f"{spec['bars_per_day']}")
    chosen = choose_dates(panel.dates, dates, source)
    notes = _symbol_notes(run_dir, panel)
    frame = _score(model, panel, spec, chosen, config, notes, cancel)
    return Prediction(run_dir, frame, source, notes)


def _predict_ensemble(run_dir: Path, config: dict, data: str | None, dates: str, registry, cancel) -> Prediction:
    """An ensemble's scores: each member's prediction of the same dates, normalised across the stocks every
    member scored and averaged (studio.train.ensemble.average_normalised, as its predictions.parquet was made)."""
    import pandas as pd

    from studio.metrics import daily_ic
    from studio.train.ensemble import average_normalised
    from studio.train.ensemble_kind import describe, member_paths

    how = (config.get("ensemble") or {}).get("combine")
    members = member_paths(config)
    for path in members:
        if not (path / "config.json").is_file():
            raise PredictError(f"{describe(run_dir, config)}; its member {path} is gone, so it cannot predict")
    parts = [predict(path, data, dates, registry, cancel) for path in members]
    wide = [p.frame.pivot(index="date", columns="symbol", values="score") for p in parts]
    index = pd.DatetimeIndex(sorted(set().union(*(set(w.index) for w in wide))))
    columns = sorted(set().union(*(set(w.columns) for w in wide)))
    scores, present, dropped = average_normalised(
        [w.reindex(index=index, columns=columns).to_numpy(dtype=np.float64) for w in wide], how)
    d_idx, s_idx = np.nonzero(present)
    frame = pd.DataFrame({"date": index[d_idx], "symbol": np.asarray(columns, dtype=object)[s_idx],
                          "score": scores[d_idx, s_idx]})
    frame["rank"] = frame.groupby("date")["score"].rank(ascending=False, method="min").astype(np.int64)
    if "label" in parts[0].frame:
        labels = (parts[0].frame.pivot(index="date", columns="symbol", values="label")
                  .reindex(index=index, columns=columns).to_numpy(dtype=np.float64))
        min_stocks = max(int((config.get("metrics") or {}).get("min_stocks", 10)), 2)
        frame["label"] = labels[d_idx, s_idx]
        frame["ic"] = daily_ic(np.where(present, scores, np.nan), labels, min_stocks)[d_idx]
    notes = [f"scores: the {how} average of its {len(members)} members' scores", *parts[0].notes]
    if dropped:
        notes.append(f"{dropped} stock-dates scored by some members but not all are left out")
    frame = frame.sort_values(["date", "rank", "symbol"], kind="stable").reset_index(drop=True)
    return Prediction(run_dir, frame, parts[0].source, notes)


def data_dates(run_dir: str | os.PathLike[str], data: str | None = None) -> tuple[str, np.ndarray]:
    """(where the bars came from, their dates as datetime64[D]) of the run's data or of ``data`` read with
    the run's import settings: the dates a prediction can be asked for (the studio's date lists)."""
    from studio.core.graph_file import GraphFileError, load_graph

    run_dir = Path(run_dir)
    config = _run_config(run_dir)
    try:
        graph = load_graph(run_dir / "graph.json")
    except GraphFileError as exc:
        raise PredictError(f"{run_dir}: {exc}") from None
    if graph.input is None:
        raise PredictError(f"{run_dir}: graph.json has no input window")
    source, panel = _panel(run_dir, config, graph, data)
    return source, np.asarray(panel.dates).astype("datetime64[D]")


def _run_config(run_dir: Path) -> dict:
    from studio.core.owned_dir import ForeignEntry, read_json
    from studio.train.records import check_run_folder

    try:  # a run folder from someone else: nothing in it read through a link
        check_run_folder(run_dir)
        config = read_json(run_dir / "config.json")
    except ForeignEntry as exc:
        raise PredictError(str(exc)) from None
    except FileNotFoundError:
        what = "no such run directory" if not run_dir.is_dir() else "not a run directory (no config.json)"
        raise PredictError(f"{run_dir}: {what}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PredictError(f"{run_dir}: cannot read config.json ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(config, dict) or not isinstance(config.get("data"), dict):
        raise PredictError(f"{run_dir}: config.json is not the settings of a run")
    if config.get("kind") == "walk_forward":
        raise PredictError(f"{run_dir}: a walk-forward run has a model per fold: predict with one of them "
                           f"(studio predict {run_dir / 'folds' / 'fold-1'})")
    return config


def _model(run_dir: Path, spec: dict, registry):
    """The run's frozen graph built, with its best weights (checked: weights_only, fitting the graph)."""
    from studio.core.graph_file import GraphFileError, load_graph
    from studio.torchgraph.builder import BuildError, build_model
    from studio.train.checkpoints import CheckpointError, read_weights

    try:
        graph = load_graph(run_dir / "graph.json")
    except GraphFileError as exc:
        raise PredictError(f"{run_dir}: {exc}") from None
    window = graph.input
    if window is None or (list(window.features), window.days, window.bars_per_day) != (
            spec["features"], spec["days"], spec["bars_per_day"]):
        raise PredictError(f"{run_dir}: graph.json and preprocess.json disagree on the input window (the run "
                           "directory was changed after it ran)")
    try:
        model = build_model(graph, registry)
        model.load_state_dict(read_weights(run_dir / "model.pt", model))
    except BuildError as exc:
        raise PredictError(f"{run_dir}: graph.json cannot be built ({exc})") from None
    except CheckpointError as exc:
        raise PredictError(f"{run_dir}: cannot predict: {exc}") from None
    return graph, model.eval()


def _panel(run_dir: Path, config: dict, graph, data: str | None):
    """The bars: the run's source with its import settings, at ``data`` when given; fitted to the graph."""
    from studio.data.panel import DataError
    from studio.train.config import ConfigError
    from studio.train.data_sources import source_for_data
    from studio.train.engine import recorded_source
    from studio.train.sources import BarsPerDayMismatch, load_source

    try:
        source = recorded_source(config, data)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise PredictError(f"{run_dir}: config.json lacks its data source ({exc})") from None
    if data is not None and source.kind == "synthetic":
        raise PredictError(f"--data {data}: the run trained on the synthetic market, which reads no files")
    if data is not None:
        given = source_for_data(data)
        # another source's name or prefix (synthetic, qlib:DIR); a plain path is read as the run's kind reads it
        if given.kind != source.kind and (given.name is not None or given.prefix is not None):
            raise PredictError(f"--data {data}: {_KIND_WORDS.get(given.kind, given.kind)}, but the run trained "
                               f"on {_KIND_WORDS.get(source.kind, source.kind)} (predict reads the kind of data "
                               "its run trained on)")
        if source.path is not None and not Path(source.path).exists():
            raise PredictError(f"--data {data}: no such file or folder")
    if source.path is not None and not Path(source.path).exists():
        raise PredictError(f"{source.path}: no such file or folder (the run's data; give its path with --data)")
    try:
        loaded = load_source(source, graph.input)
    except BarsPerDayMismatch as exc:  # its advice is for training; a run's window is fixed
        raise PredictError(f"{exc.source}: the run reads {exc.want} bars per day, the data has {exc.have}; "
                           f"predict needs bars with {exc.want} a day, or a multiple of {exc.want} (resampled "
                           f"to {exc.want} as in training)") from None
    except (DataError, OSError) as exc:
        raise PredictError(str(exc).splitlines()[0][:500]) from None  # it names the data's file or folder
    return source.describe(), loaded.panel


def choose_dates(dates: np.ndarray, chosen: str, source: str) -> np.ndarray:
    """Indices into ``dates`` of ``last``, one ``YYYY-MM-DD`` or the dates of ``A..B`` (both included)."""
    dates = np.asarray(dates).astype("datetime64[D]")
    span = f"{dates[0]} .. {dates[-1]}" if len(dates) else "no dates"
    if chosen == "last":
        if not len(dates):
            raise PredictError(f"{source}: the data has no dates")
        return np.array([len(dates) - 1])
    ends = _RANGE.match(chosen)
    try:
        first, last = (np.datetime64(ends[1], "D"), np.datetime64(ends[2], "D")) if ends else (
            np.datetime64(chosen, "D"),) * 2
    except ValueError:
        raise PredictError(f"--dates {chosen!r}: expects last, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD") from None
    if first > last:
        raise PredictError(f"--dates {chosen}: the first date is after the last")
    picked = np.flatnonzero((dates >= first) & (dates <= last))
    if len(picked):
        return picked
    if not len(dates) or last < dates[0] or first > dates[-1]:
        raise PredictError(f"--dates {chosen}: outside the data ({source}: {span})")
    raise PredictError(f"--dates {chosen}: not a trading date of the data (nearest before "
                       f"{dates[dates < first][-1]}, after {dates[dates > last][0]})")


def _symbol_notes(run_dir: Path, panel) -> list[str]:
    """The run's symbols (those it scored) that the data lacks, and the data's that are new to the run."""
    from studio.core.owned_dir import owned_file

    try:
        import pandas as pd

        with owned_file(run_dir / "predictions.parquet") as fh:
            known = set(pd.read_parquet(fh, columns=["symbol"])["symbol"].astype(str))
    except Exception:  # absent (a run stopped before scoring) or unreadable: nothing to compare with
        return ["the run's symbols are unknown (no readable predictions.parquet): not compared with the data's"]
    notes = []
    lacking = sorted(known - set(panel.symbols))
    new = [s for s in panel.symbols if s not in known]
    if lacking:
        notes.append(f"{len(lacking)} of the run's {len(known)} symbols are not in the data "
                     f"(e.g. {', '.join(lacking[:5])})")
    if new:
        notes.append(f"{len(new)} symbols of the data are new to the run, scored all the same "
                     f"(e.g. {', '.join(new[:5])})")
    return notes


def _score(model, panel, spec: dict, chosen: np.ndarray, config: dict, notes: list[str], cancel=None):
    """The scores of the chosen dates, a batch of the run's dates per batch at a time (as it scored); only
    one batch of inputs is held at a time."""
    min_stocks = max(int((config.get("metrics") or {}).get("min_stocks", 10)), 2)
    per_batch = max(1, int((config.get("training") or {}).get("dates_per_batch") or 1))
    days = spec["days"]
    early = [d for d in chosen if d + 1 < days]
    if len(early) == len(chosen):
        raise PredictError(f"{panel.dates[chosen[0]]}: the run's window is {days} days, the data has "
                           f"{chosen[0] + 1} up to that date")
    counts = {"few": [], "not traded": 0, "bars missing": 0, "short history": 0}
    scored: list[int] = []
    rows: list[np.ndarray] = []
    pending: list[tuple[int, np.ndarray, np.ndarray]] = []
    for d in chosen[len(early):]:
        if cancel is not None and cancel.is_set():
            raise PredictError("stopped")
        x, mask = _input(panel, spec, int(d), counts)
        if mask.sum() < min_stocks:
            counts["few"].append(d)
            continue
        pending.append((int(d), x, mask))
        if len(pending) == per_batch:
            rows.extend(_model_scores(model, pending))
            scored.extend(item[0] for item in pending)
            pending = []
    if pending:
        rows.extend(_model_scores(model, pending))
        scored.extend(item[0] for item in pending)
    notes.extend(_count_notes(panel, early, counts, spec, min_stocks))
    if not scored:
        raise PredictError(f"no date of {panel.dates[chosen[0]]} .. {panel.dates[chosen[-1]]} has {min_stocks} "
                           f"stocks to score ({'; '.join(notes)})")
    return _frame(panel, spec, scored, np.stack(rows), min_stocks)


def _input(panel, spec: dict, date: int, counts: dict) -> tuple[np.ndarray, np.ndarray]:
    """The model's input and mask of one date from the panel's raw bars (the history its features read)."""
    from studio.data.preprocess import history_days, preprocess

    p, history = panel.bars_per_day, history_days(spec)
    first = max(0, date + 1 - history)
    counts["short history"] += int(date + 1 < history)
    x, mask = preprocess(panel.values[:, first * p:(date + 1) * p], panel.features, spec,
                         traded=panel.traded[:, date])
    counts["not traded"] += int((~panel.traded[:, date]).sum())
    counts["bars missing"] += int((panel.traded[:, date] & ~mask).sum())
    return x, mask


def _model_scores(model, batch: list[tuple[int, np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """(S,) float64 scores of each date of ``batch``, NaN where the mask is False (as Trainer.predict)."""
    import torch

    x = torch.from_numpy(np.stack([item[1] for item in batch]))
    mask = torch.from_numpy(np.stack([item[2] for item in batch]))
    with torch.no_grad():
        out = model(x, mask).float()
    return list(torch.where(mask, out, torch.full_like(out, np.nan)).double().numpy())


def _count_notes(panel, early: list, counts: dict, spec: dict, min_stocks: int) -> list[str]:
    from studio.data.preprocess import history_days

    notes, days = [], spec["days"]
    if early:
        notes.append(f"{len(early)} dates left out: fewer than the window's {days} days of data before them "
                     f"({panel.dates[early[0]]} .. {panel.dates[early[-1]]})")
    if counts["short history"]:  # as a stock's first days in training: a shorter reference than the rest
        notes.append(f"{counts['short history']} dates have fewer than {history_days(spec)} days of bars up to "
                     f"them: the previous close or the {spec['volume_days']}-day volume reference of their "
                     "first window days is partial (give more days before them)")
    if counts["few"]:
        few = counts["few"]
        notes.append(f"{len(few)} dates left out: fewer than {min_stocks} stocks with a full window "
                     f"(e.g. {', '.join(str(panel.dates[d]) for d in few[:3])})")
    if counts["not traded"]:
        notes.append(f"{counts['not traded']} stock-dates not scored: not traded that date")
    if counts["bars missing"]:
        notes.append(f"{counts['bars missing']} stock-dates not scored: bars missing in their window "
                     "(a gap, or listed within it)")
    return notes


def _frame(panel, spec: dict, dates: list[int], scores: np.ndarray, min_stocks: int):
    """The table: date, symbol, score, rank and, where any label is known, label and the date's IC."""
    import pandas as pd

    from studio.data.labels import forward_returns
    from studio.metrics import daily_ic

    labels = forward_returns(panel.daily_close(), spec["lag"], spec["horizon"])[dates]
    d_idx, s_idx = np.nonzero(np.isfinite(scores))
    frame = pd.DataFrame({"date": pd.to_datetime(panel.dates[np.asarray(dates)[d_idx]]),
                          "symbol": np.asarray(panel.symbols, dtype=object)[s_idx],
                          "score": scores[d_idx, s_idx]})
    frame["rank"] = frame.groupby("date")["score"].rank(ascending=False, method="min").astype(np.int64)
    known = labels[d_idx, s_idx]
    if np.isfinite(known).any():
        frame["label"] = known
        frame["ic"] = daily_ic(scores, labels, min_stocks)[d_idx]
    return frame.sort_values(["date", "rank", "symbol"], kind="stable").reset_index(drop=True)


def write_scores(frame, path: str | os.PathLike[str]) -> None:
    """``frame`` to ``path``: .csv, .parquet, or .pkl as Qlib's SignalRecord writes pred.pkl (a DataFrame
    with a MultiIndex (datetime, instrument) and one column ``score``, pickled by pandas)."""
    from studio.core.files import atomic_save

    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise PredictError(f"--to {path}: expects a .csv, .parquet or .pkl file")
    if suffix == ".csv":
        atomic_save(path, lambda fh: fh.write(frame.to_csv(index=False, float_format="%.10g").encode()))
    elif suffix == ".parquet":
        atomic_save(path, lambda fh: frame.to_parquet(fh, index=False))
    else:
        atomic_save(path, lambda fh: qlib_scores(frame).to_pickle(fh))


def qlib_scores(frame):
    """Qlib's prediction frame: index (datetime, instrument), one float column ``score``."""
    import pandas as pd

    index = pd.MultiIndex.from_arrays([pd.DatetimeIndex(frame["date"]), frame["symbol"].astype(str)],
                                      names=["datetime", "instrument"])
    return pd.DataFrame({"score": frame["score"].to_numpy(dtype=np.float64)}, index=index).sort_index()
