"""A run judged against classic bar factors on its own dates and stocks: ``RUN/baselines.json``.

For each factor of studio.data.factors the panel allows: its IC, RankIC and t-statistic on the run's test
dates and on its training dates (so a reader sees whether the factor's sign held), and the mean over the test
dates of its cross-sectional correlation with the model's score. Each date's cross-section is the model's: the
stocks the run scored that date (predictions.parquet), with the run's own labels and ``min_stocks``.

The incremental IC is the IC of what is left of the model's score once it is regressed, date by date, on an
intercept and every baseline with a test IC (ordinary least squares over the stocks with a score and every
baseline; a date where the baselines are collinear is left out and counted). Definitions: docs/metrics.md.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from studio.data.factors import available
from studio.metrics import DEFAULT_QUANTILE, daily_ic, daily_ics, long_short, t_statistic

FORMAT = 1
FILE = "baselines.json"
#: |t| under this is no evidence (docs/metrics.md, "Small samples")
T_EVIDENCE = 2.0
#: a training IC with t above this is significant enough that a test IC without evidence reads as overfitting
T_OVERFIT = 3.0
#: the smallest singular value of a date's standardised baselines, relative to the largest, below which the
#: regression is singular (collinear baselines)
SINGULAR = 1e-9


class BaselineError(Exception):
    """A run whose baselines cannot be computed (one line naming the run or its data)."""


def evaluate(run_dir: str | os.PathLike[str], data: str | None = None, *, panel=None) -> dict[str, Any]:
    """The contents of baselines.json for the run in ``run_dir``: its data loaded again as ``studio predict``
    loads it (at ``data`` when given), unless ``panel`` (the run's own, still in memory) is given."""
    run_dir = Path(run_dir)
    config = _config(run_dir)
    if panel is None:
        panel = _load_panel(run_dir, config, data)
    frame = _predictions(run_dir)
    min_stocks = max(int((config.get("metrics") or {}).get("min_stocks", 10)), 2)
    quantile = float((config.get("metrics") or {}).get("quantile", DEFAULT_QUANTILE))
    return judge(panel, frame, min_stocks, quantile)


def write_baselines(run_dir: str | os.PathLike[str], data: str | None = None, *, panel=None) -> Path:
    """evaluate() written to RUN/baselines.json; returns its path."""
    from studio.train.records import RunWriter

    result = evaluate(run_dir, data, panel=panel)
    RunWriter(Path(run_dir)).write_json(FILE, result)
    return Path(run_dir) / FILE


# ---- the run's records -------------------------------------------------------------------------------
def _config(run_dir: Path) -> dict:
    from studio.train.predict import PredictError, _run_config

    try:
        return _run_config(run_dir)
    except PredictError as exc:
        if (run_dir / "folds").is_dir():  # a walk-forward's top folder: each fold is a run with its own dates
            raise BaselineError(f"{run_dir}: a walk-forward run is judged fold by fold (studio baselines "
                                f"{run_dir / 'folds'}/fold-*; each fold wrote its baselines.json)") from None
        raise BaselineError(str(exc)) from None


def _load_panel(run_dir: Path, config: dict, data: str | None):
    from studio.core.graph_file import GraphFileError, load_graph
    from studio.train.predict import PredictError, _panel

    try:
        graph = load_graph(run_dir / "graph.json")
    except GraphFileError as exc:
        raise BaselineError(f"{run_dir}: {exc}") from None
    if graph.input is None:
        raise BaselineError(f"{run_dir}: graph.json has no input window")
    try:
        return _panel(run_dir, config, graph, data)[1]
    except PredictError as exc:
        raise BaselineError(str(exc)) from None


def _predictions(run_dir: Path):
    import pandas as pd

    from studio.core.owned_dir import ForeignEntry, owned_file

    try:
        with owned_file(run_dir / "predictions.parquet") as fh:
            frame = pd.read_parquet(fh, columns=["date", "symbol", "split", "score", "label"])
    except FileNotFoundError:
        raise BaselineError(f"{run_dir}: no predictions.parquet (the run was not scored)") from None
    except ForeignEntry as exc:
        raise BaselineError(str(exc)) from None
    except Exception as exc:  # pyarrow's errors on a damaged or foreign file have no common base
        raise BaselineError(f"{run_dir}: cannot read predictions.parquet ({str(exc).splitlines()[0][:120]})") from None
    return frame


def split_arrays(frame, panel, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(panel date indices, (D, S) scores, (D, S) labels) of one split's rows of predictions.parquet, on the
    panel's symbols (NaN where the run scored no such stock that date)."""
    import pandas as pd

    part = frame[frame["split"].astype(str) == split]
    day = pd.Index(pd.to_datetime(np.asarray(panel.dates).astype("datetime64[D]"))).get_indexer(
        pd.to_datetime(part["date"]))
    stock = pd.Index(list(panel.symbols)).get_indexer(part["symbol"].astype(str))
    known = (day >= 0) & (stock >= 0)
    day, stock = day[known], stock[known]
    dates = np.unique(day)
    row = np.searchsorted(dates, day)
    scores = np.full((len(dates), panel.n_symbols), np.nan)
    labels = np.full((len(dates), panel.n_symbols), np.nan)
    scores[row, stock] = part["score"].to_numpy(dtype=np.float64)[known]
    labels[row, stock] = part["label"].to_numpy(dtype=np.float64)[known]
    return dates, scores, labels


# ---- the figures -------------------------------------------------------------------------------------
def _mean_t(daily: np.ndarray) -> tuple[float, float, int]:
    x = daily[np.isfinite(daily)]
    if not len(x):
        return math.nan, math.nan, 0
    std = float(x.std(ddof=1)) if len(x) > 1 else math.nan
    return float(x.mean()), t_statistic(float(x.mean()), std, len(x)), len(x)


def ic_summary(values: np.ndarray, labels: np.ndarray, min_stocks: int) -> dict[str, float]:
    ic, rank_ic = daily_ics(values, labels, min_stocks)
    mean, t, dates = _mean_t(ic)
    return {"ic": mean, "rank_ic": _mean_t(rank_ic)[0], "ic_t": t, "dates": dates}


def residual_scores(scores: np.ndarray, regressors: list[np.ndarray], min_stocks: int
                    ) -> tuple[np.ndarray, dict[str, int]]:
    """(D, S) residual of each date's OLS of the scores on an intercept and ``regressors`` (each (D, S)) over
    the stocks where all are known; NaN elsewhere and on dates left out, counted: ``few`` (fewer stocks than
    ``min_stocks`` or than the coefficients plus two), ``singular`` (collinear regressors)."""
    k = len(regressors)
    x = np.stack(regressors, axis=2) if k else np.zeros((*scores.shape, 0))
    valid = np.isfinite(scores) & np.isfinite(x).all(axis=2)
    n = valid.sum(axis=1)
    enough = n >= max(min_stocks, k + 2, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        # centring every column over the date's stocks is the intercept; unit norms condition the fit
        y = np.where(valid, scores, 0.0)
        y = (y - (y.sum(axis=1) / np.maximum(n, 1))[:, None]) * valid
        x = np.where(valid[:, :, None], x, 0.0)
        x = (x - (x.sum(axis=1) / np.maximum(n, 1)[:, None])[:, None, :]) * valid[:, :, None]
        norm = np.sqrt((x * x).sum(axis=1))
        x = x / np.where(norm > 0, norm, 1.0)[:, None, :]
    singular = np.zeros(len(scores), dtype=bool)
    if k:
        sv = np.linalg.svd(x, compute_uv=False)  # (D, k), descending
        singular = enough & ~(sv[:, -1] > SINGULAR * np.maximum(sv[:, 0], 1e-300))
    fit = enough & ~singular
    residual = np.full(scores.shape, np.nan)
    if fit.any():
        if k:
            q, _ = np.linalg.qr(x[fit])  # (F, S, k): orthonormal columns spanning the baselines
            projected = np.einsum("fsk,fk->fs", q, np.einsum("fsk,fs->fk", q, y[fit]))
        else:
            projected = 0.0
        residual[fit] = np.where(valid[fit], y[fit] - projected, np.nan)
    return residual, {"few": int((~enough & (n > 0)).sum()), "singular": int(singular.sum())}


def _factor_values(panel, factors) -> dict[str, np.ndarray]:
    return {f.name: f.compute(panel) for f in factors}


def judge(panel, frame, min_stocks: int, quantile: float = DEFAULT_QUANTILE) -> dict[str, Any]:
    """baselines.json's contents from the run's panel and predictions (see the module's docstring)."""
    splits = {name: split_arrays(frame, panel, name) for name in ("test", "train")}
    if not len(splits["test"][0]):
        raise BaselineError("the run has no scored test date in its predictions.parquet")
    factors, left_out = available(panel)
    values = _factor_values(panel, factors)
    model = {name: ic_summary(scores, labels, min_stocks) for name, (_, scores, labels) in splits.items()}
    baselines, regressors, names = [], [], []
    test_dates, test_scores, test_labels = splits["test"]
    for factor in factors:
        entry: dict[str, Any] = {"name": factor.name, "label": factor.label}
        for name, (dates, scores, labels) in splits.items():
            entry[name] = ic_summary(_on(values[factor.name], dates, scores), labels, min_stocks)
        seen = _on(values[factor.name], test_dates, test_scores)
        entry["corr"] = _mean_t(daily_ic(test_scores, seen, min_stocks))[0]
        baselines.append(entry)
        if entry["test"]["dates"]:
            regressors.append(seen)
            names.append(factor.name)
        else:
            left_out.append((factor.name, _why_no_ic(seen, min_stocks)))
            baselines.pop()
    residual, dropped = residual_scores(test_scores, regressors, min_stocks)
    ic, t, dates = _mean_t(daily_ic(residual, test_labels, min_stocks))
    incremental = {"ic": ic, "ic_t": t, "dates": dates, "on": names, "singular_dates": dropped["singular"],
                   "few_stock_dates": dropped["few"]}
    best = max(baselines, key=lambda b: b["test"]["ic"], default=None)
    # each one's long-short legs on the test dates, for the tear sheet's baselines panel (which then needs no data)
    legs = {"model": test_scores, **{name: seen for name, seen in zip(names, regressors, strict=True)}}
    day = np.asarray(panel.dates).astype("datetime64[D]")[test_dates].astype(str).tolist()
    return {
        "format": FORMAT,
        "split_dates": {name: len(arrays[0]) for name, arrays in splits.items()},
        "baselines": baselines,
        "left_out": [{"name": name, "reason": reason} for name, reason in left_out],
        "model": model,
        "incremental": incremental,
        "best": {"name": best["name"], "ic": best["test"]["ic"]} if best else None,
        "verdicts": verdicts(model, baselines, incremental),
        "long_short": {"quantile": quantile, "dates": day,
                       **{name: long_short(values, test_labels, quantile, min_stocks)["long_short"].tolist()
                          for name, values in legs.items()}},
    }


def _why_no_ic(values: np.ndarray, min_stocks: int) -> str:
    known = np.isfinite(values)
    if not (known.sum(axis=1) >= min_stocks).any():
        return f"no test date has {min_stocks} scored stocks with a value"
    return "the same value for every stock on every test date (no IC)"


def _on(values: np.ndarray, dates: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """A factor's (D, S) values on the split's dates, on the stocks the model scored."""
    out = values[dates] if len(dates) else np.zeros((0, values.shape[1]))
    return np.where(np.isfinite(scores), out, np.nan)


def _number(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if isinstance(x, int | float) and math.isfinite(x) else "n/a"


def verdicts(model: dict, baselines: list[dict], incremental: dict) -> list[str]:
    """Short sentences on what the figures mean: a baseline that beats the model on the same dates, an
    incremental IC without evidence, a training IC that did not carry over, a baseline whose sign flipped."""
    out = []
    test_ic = model["test"]["ic"]
    best = max(baselines, key=lambda b: b["test"]["ic"], default=None)
    if best is not None and math.isfinite(test_ic) and best["test"]["ic"] > test_ic:
        out.append(f"{best['name']} beats the model on the same dates (IC {_number(best['test']['ic'])} vs "
                   f"{_number(test_ic)})")
    t = incremental["ic_t"]
    if incremental["on"] and not (isinstance(t, float) and abs(t) >= T_EVIDENCE):
        out.append(f"incremental IC t {_number(t, 1)} < {T_EVIDENCE:g}: no evidence the model adds to the baselines")
    elif incremental["on"]:
        out.append(f"incremental IC {_number(incremental['ic'])} (t {_number(t, 1)}): the model adds to the "
                   "baselines")
    train_t, test_t = model["train"]["ic_t"], model["test"]["ic_t"]
    if math.isfinite(train_t) and train_t > T_OVERFIT and not (math.isfinite(test_t) and test_t >= T_EVIDENCE):
        out.append(f"training IC significant (t {_number(train_t, 1)}) but test IC not (t {_number(test_t, 1)}): "
                   "overfitting?")
    for b in baselines:
        train, test = b["train"], b["test"]
        if (math.isfinite(train["ic_t"]) and abs(train["ic_t"]) >= T_EVIDENCE and math.isfinite(test["ic"])
                and test["ic"] * train["ic"] < 0):
            out.append(f"{b['name']}'s sign did not hold: training IC {_number(train['ic'])} (t "
                       f"{_number(train['ic_t'], 1)}), test IC {_number(test['ic'])}")
    return out
