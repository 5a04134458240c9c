"""Signal and portfolio metrics of cross-sectional scores, vectorised over dates (numpy only).

One implementation serves training, the command line and the GUI. Inputs are (D, S) arrays of scores
and raw forward returns (labels) with NaN where a stock has no score or no label; a stock counts on a
date only when both are present. Dates with fewer than ``min_stocks`` such stocks are left out (NaN).

Definitions follow Qlib (qlib/contrib/eva/alpha.py) and Alphalens; see docs/metrics.md:
- IC_t: Pearson correlation over the stocks of date t of score and label; RankIC_t: Spearman (Pearson
  of average ranks). IC = mean IC_t; ICIR = mean / std (ddof 1, not annualised).
- Long-short (Qlib calc_long_short_return): n_t = int(quantile * N_t); long_t = mean label of the n_t
  highest scores, short_t = mean label of the n_t lowest; long_short_t = (long_t - short_t) / 2.
  Ties are broken by stock order (as pandas nlargest / nsmallest with keep="first").
- Turnover of a leg: the share of the leg's names replaced since the previous date (equal weights;
  1 on the first date); the long-short book's turnover is the mean of its two legs'.
- Annualised return = mean(r) * 252; Sharpe = mean(r) / std(r) * sqrt(252); max drawdown =
  min_t (C_t - max_{s<=t} C_s) with C the running sum of r (Qlib risk_analysis, mode "sum").
- With a cost c per unit of turnover: r_net_t = r_t - c * turnover_t.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

TRADING_DAYS = 252
DEFAULT_QUANTILE = 0.2
DEFAULT_MIN_STOCKS = 10
#: a summary over fewer dates than this is flagged: its Sharpe and ICIR mean little
MIN_DATES = 20


def _pair_mask(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    if scores.shape != labels.shape or scores.ndim != 2:
        raise ValueError(f"scores and labels must be (dates, stocks) arrays of one shape, gets "
                         f"{scores.shape} and {labels.shape}")
    return np.isfinite(scores) & np.isfinite(labels)


def _row_pearson(a: np.ndarray, b: np.ndarray, valid: np.ndarray, min_stocks: int) -> np.ndarray:
    """Pearson correlation of each row's valid pairs (centred first: stable for any offset)."""
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        da = np.where(valid, a, 0.0)
        db = np.where(valid, b, 0.0)
        da -= (da.sum(axis=1) / n)[:, None]
        db -= (db.sum(axis=1) / n)[:, None]
        da *= valid
        db *= valid
        cov = np.einsum("ij,ij->i", da, db)
        var = np.sqrt(np.einsum("ij,ij->i", da, da) * np.einsum("ij,ij->i", db, db))
        out = cov / var
    out[(n < max(min_stocks, 2)) | ~(var > 0)] = np.nan
    return out


def _rank_pearson(ra: np.ndarray, rb: np.ndarray, n: np.ndarray, min_stocks: int) -> np.ndarray:
    """Pearson of average ranks 1..n (0 where a pair is missing): their mean is (n + 1) / 2 with or
    without ties, so only three sums are needed."""
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = n * ((n + 1) / 2.0) ** 2
        cov = np.einsum("ij,ij->i", ra, rb) - shift
        var = np.sqrt((np.einsum("ij,ij->i", ra, ra) - shift) * (np.einsum("ij,ij->i", rb, rb) - shift))
        out = cov / var
    out[(n < max(min_stocks, 2)) | ~(var > 1e-9)] = np.nan
    return out


_FLOAT_SIGNLESS = np.int64(0x7FFFFFFFFFFFFFFF)


def _rank_rows(keyed: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Average ranks of each row's values, where ``keyed`` holds +inf for missing values (which must
    be exactly the ``count[r]`` last in order); missing values get rank 0.

    Sorting float64 values with their column index packed into the low bits of one int64 key is
    several times faster than argsort. Two values that differ only in those low bits (a relative
    difference below ~1e-12) can come out in index order; such rows are detected and re-sorted
    exactly with argsort, so the ranks are always exact.
    """
    rows, cols = keyed.shape
    # int64 keys that sort like the floats: a negative float gets every bit but the sign flipped
    bits = keyed.view(np.int64)
    key = bits ^ ((bits >> 63) & _FLOAT_SIGNLESS)
    low = np.int64((1 << max(1, (cols - 1).bit_length())) - 1)
    key &= ~low
    key |= np.arange(cols, dtype=np.int64)
    key.sort(axis=1)
    key &= low
    order = key  # column index of each row's 1st, 2nd, ... smallest value
    flat = (order + (np.arange(rows, dtype=np.int64) * cols)[:, None]).ravel()
    ordered = keyed.ravel()[flat].reshape(rows, cols)
    for r in np.flatnonzero((ordered[:, 1:] < ordered[:, :-1]).any(axis=1)):
        exact = np.argsort(keyed[r], kind="stable")
        flat[r * cols:(r + 1) * cols] = exact + r * cols
        ordered[r] = keyed[r, exact]
    position = np.arange(1, cols + 1, dtype=np.float64)
    present = position <= count[:, None]
    mean_rank = position * present  # the missing (+inf) values, last in order: rank 0
    # ties among present values only (the missing ones all tie at +inf, and their rank is 0 anyway)
    ties = (ordered[:, 1:] == ordered[:, :-1]) & present[:, 1:]
    tied = np.flatnonzero(ties.any(axis=1))
    if len(tied):
        starts = np.ones((len(tied), cols), dtype=bool)
        starts[:, 1:] = ~ties[tied]
        group = np.cumsum(starts.ravel()) - 1
        sums = np.bincount(group, weights=np.tile(position, len(tied)))
        mean_rank[tied] = (sums / np.bincount(group))[group].reshape(len(tied), cols) * present[tied]
    ranks = np.empty(rows * cols)
    ranks[flat] = mean_rank.ravel()
    return ranks.reshape(rows, cols)


BLOCK_ROWS = 64


def _blockwise(fn, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Run ``fn`` on blocks of rows (small enough to stay in cache) on up to two threads: numpy
    releases the GIL in sorts and ufuncs. ``fn`` returns a tuple of per-row arrays."""
    rows = arrays[0].shape[0]
    starts = list(range(0, rows, BLOCK_ROWS))
    if len(starts) <= 1:
        return fn(*arrays)
    pieces: dict[int, tuple[np.ndarray, ...]] = {}

    def run(part: list[int]) -> None:
        for i in part:
            pieces[i] = fn(*(a[i:i + BLOCK_ROWS] for a in arrays))

    workers = min(2, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, [starts[k::workers] for k in range(workers)]))
    return tuple(np.concatenate([pieces[i][j] for i in starts]) for j in range(len(pieces[0])))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Per row, ranks 1..n of the finite values with ties sharing their average rank (as pandas
    ``rank(method="average")`` and scipy ``rankdata``); NaN where the value is not finite."""
    values = np.ascontiguousarray(values, dtype=np.float64)

    def block(v: np.ndarray) -> tuple[np.ndarray]:
        finite = np.isfinite(v)
        ranks = _rank_rows(np.where(finite, v, np.inf), finite.sum(axis=1))
        ranks[~finite] = np.nan
        return (ranks,)

    return _blockwise(block, values)[0]


def _ics(scores: np.ndarray, labels: np.ndarray, min_stocks: int, pearson: bool, spearman: bool):
    scores = np.ascontiguousarray(scores, dtype=np.float64)
    labels = np.ascontiguousarray(labels, dtype=np.float64)
    _pair_mask(scores, labels)  # checks shapes

    def block(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        valid = np.isfinite(a) & np.isfinite(b)
        nan = np.full(len(a), np.nan)
        ic = _row_pearson(a, b, valid, min_stocks) if pearson else nan
        if not spearman:
            return ic, nan
        count = valid.sum(axis=1)
        ra = _rank_rows(np.where(valid, a, np.inf), count)
        rb = _rank_rows(np.where(valid, b, np.inf), count)
        return ic, _rank_pearson(ra, rb, count, min_stocks)

    return _blockwise(block, scores, labels)


def daily_ic(scores: np.ndarray, labels: np.ndarray, min_stocks: int = DEFAULT_MIN_STOCKS) -> np.ndarray:
    """(D,) Pearson IC per date."""
    return _ics(scores, labels, min_stocks, True, False)[0]


def daily_rank_ic(scores: np.ndarray, labels: np.ndarray, min_stocks: int = DEFAULT_MIN_STOCKS) -> np.ndarray:
    """(D,) Spearman RankIC per date (ranks of the stocks that have both a score and a label)."""
    return _ics(scores, labels, min_stocks, False, True)[1]


def daily_ics(scores: np.ndarray, labels: np.ndarray,
              min_stocks: int = DEFAULT_MIN_STOCKS) -> tuple[np.ndarray, np.ndarray]:
    """(IC, RankIC) per date, computed together (one pass over the data)."""
    return _ics(scores, labels, min_stocks, True, True)


def _leg_members(scores: np.ndarray, valid: np.ndarray, n: np.ndarray, top: bool) -> np.ndarray:
    """(D, S) bool: the n_t stocks with the highest (top) or lowest scores of each date."""
    rows, cols = scores.shape
    key = np.where(valid, -scores if top else scores, np.inf)
    order = np.argsort(key, axis=1, kind="stable")  # stable: ties keep stock order, like nlargest
    rank = np.empty((rows, cols), dtype=np.int64)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(cols), (rows, cols)), axis=1)
    return (rank < n[:, None]) & valid


def leg_turnover(members: np.ndarray) -> np.ndarray:
    """(D,) share of each date's members (a (D, S) bool array) not members the date before (1 on the first
    date, NaN where a date has none)."""
    size = members.sum(axis=1).astype(np.float64)
    kept = np.zeros(len(members))
    kept[1:] = (members[1:] & members[:-1]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 1.0 - kept / size
    out[size == 0] = np.nan
    return out


def long_short(scores: np.ndarray, labels: np.ndarray, quantile: float = DEFAULT_QUANTILE,
               min_stocks: int = DEFAULT_MIN_STOCKS) -> dict[str, np.ndarray]:
    """Per-date legs of the top/bottom ``quantile`` portfolios: long, short, long_short, the mean
    label of all stocks (market), leg sizes and turnovers. Dates too small to rank are NaN."""
    if not 0 < quantile <= 0.5:
        raise ValueError(f"quantile must be in (0, 0.5], gets {quantile}")
    valid = _pair_mask(scores, labels)
    count = valid.sum(axis=1)
    n = np.floor(quantile * count).astype(np.int64)  # int(q * N_t), as Qlib
    usable = (count >= max(min_stocks, 2)) & (n >= 1)
    n = np.where(usable, n, 0)
    top = _leg_members(scores, valid, n, top=True)
    bottom = _leg_members(scores, valid, n, top=False)
    safe = np.where(valid, labels, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        long = (safe * top).sum(axis=1) / n
        short = (safe * bottom).sum(axis=1) / n
        market = safe.sum(axis=1) / count
    long[~usable] = short[~usable] = market[~usable] = np.nan
    turnover_long, turnover_short = leg_turnover(top), leg_turnover(bottom)
    turnover_long[~usable] = turnover_short[~usable] = np.nan
    return {
        "long": long,
        "short": short,
        "long_short": (long - short) / 2.0,
        "market": market,
        "n_stocks": count,
        "n_leg": n,
        "turnover_long": turnover_long,
        "turnover_short": turnover_short,
        "turnover": (turnover_long + turnover_short) / 2.0,
    }


def _mean_std(x: np.ndarray) -> tuple[float, float, int]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, 0
    return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else math.nan, len(x)


def t_statistic(mean: float, std: float, n: int) -> float:
    """mean / (std / sqrt(n)): the t-statistic of a mean of n daily figures (NaN under 2)."""
    return ratio(mean, std) * math.sqrt(n) if n >= 2 else math.nan


def ratio(mean: float, std: float) -> float:
    return mean / std if std and math.isfinite(std) and std > 0 else math.nan


def max_drawdown(returns: np.ndarray) -> float:
    """min_t (C_t - max_{s<=t} C_s), C the running sum of the finite returns, from the first date's
    (Qlib's risk_analysis: the peak is taken over the curve, not over a starting capital of 0)."""
    r = returns[np.isfinite(returns)]
    if len(r) == 0:
        return math.nan
    curve = np.cumsum(r)
    return float(np.min(curve - np.maximum.accumulate(curve)))


def return_summary(returns: np.ndarray, prefix: str = "") -> dict[str, float]:
    mean, std, _ = _mean_std(returns)
    return {
        f"{prefix}annual_return": mean * TRADING_DAYS,
        f"{prefix}sharpe": ratio(mean, std) * math.sqrt(TRADING_DAYS),
        f"{prefix}max_drawdown": max_drawdown(returns),
    }


def sample_size(summary: dict) -> tuple[int | None, float, bool]:
    """(dates, t-statistic of the mean IC, too few dates) of a summary; summaries written before the
    t-statistic was recorded get it from their ICIR and date count."""
    dates = summary.get("dates")
    if not isinstance(dates, int) or isinstance(dates, bool):
        return None, math.nan, False
    t = summary.get("ic_t")
    if not isinstance(t, int | float) or t is None:
        icir = summary.get("icir")
        t = icir * math.sqrt(dates) if isinstance(icir, int | float) and dates >= 2 else math.nan
    return dates, float(t), dates < MIN_DATES


def summarize(scores: np.ndarray, labels: np.ndarray, *, quantile: float = DEFAULT_QUANTILE,
              cost: float = 0.0, min_stocks: int = DEFAULT_MIN_STOCKS) -> tuple[dict[str, float], dict]:
    """Summary figures and the per-date series they come from.

    Returns (summary, daily): summary has ic, icir, rank_ic, rank_icir, annual_return, sharpe,
    max_drawdown, turnover (of the long-short book), the same three return figures net of ``cost``
    (prefix ``net_``), dates (counted), ic_t and rank_ic_t (the t-statistics of the mean IC and RankIC),
    few_dates (fewer than MIN_DATES dates: the figures mean little) and cost; daily has ic, rank_ic and
    the long_short() series.
    """
    ic, rank_ic = daily_ics(scores, labels, min_stocks)
    legs = long_short(scores, labels, quantile, min_stocks)
    ic_mean, ic_std, dates = _mean_std(ic)
    ric_mean, ric_std, _ = _mean_std(rank_ic)
    net = legs["long_short"] - cost * legs["turnover"]
    summary = {
        "ic": ic_mean,
        "icir": ratio(ic_mean, ic_std),
        "rank_ic": ric_mean,
        "rank_icir": ratio(ric_mean, ric_std),
        **return_summary(legs["long_short"]),
        "turnover": _mean_std(legs["turnover"])[0],
        **return_summary(net, "net_"),
        "cost": cost,
        "quantile": quantile,
        "dates": dates,
        # how far the mean IC is from 0 in standard errors: mean / (std / sqrt(n)) = ICIR * sqrt(n)
        "ic_t": t_statistic(ic_mean, ic_std, dates),
        "rank_ic_t": t_statistic(ric_mean, ric_std, dates),
        "few_dates": dates < MIN_DATES,
    }
    return summary, {"ic": ic, "rank_ic": rank_ic, **legs}
