"""Raw bars -> a model's input window and mask, exactly as training made them (numpy only).

Self-contained: it imports only numpy and the standard library, because its source is copied into
``.py`` exports beside the model. ``studio.data.dataset`` computes its per-bar features with the same
functions, and the tests check ``preprocess`` against ``CrossSectionData`` bit for bit.

``spec`` is a run's ``preprocess.json`` (studio.data.preprocess_spec reads and checks the file):
``features``, ``days``, ``bars_per_day``, ``volume_days``, ``normalize`` and, for ``robust``, the
``median`` and ``mad`` fitted on the run's training dates (used as they are, never refitted).

The steps, per stock, on float32 bars promoted to float64 (as the panel stores and training reads them):

1. prices (open, high, low, close): ``price / previous day's last close - 1``;
   volume, turnover: ``log(1 + value / (mean daily total of the previous volume_days days / bars_per_day))``;
   any other field as it is; anything not finite becomes NaN; then float32.
2. the last ``days`` days are the window; a stock is a sample (mask) when every bar of every window day
   has every feature finite and it traded on the decision day.
3. ``robust``: ``clip((x - median) / mad, -3, 3)`` in float32; ``cs_zscore`` / ``cs_rank``: across the
   given stocks of each bar and feature, in float64, then float32; ``none``: as it is.
4. zeros where the mask is False.

The first window day needs the day before it (the previous close), and a volume or turnover needs
``volume_days`` days before it for its full reference: give at least ``history_days(spec)`` days for
the numbers training saw (fewer are accepted down to ``days``; their early days have a shorter or no
reference, as a stock's first days have in training).
"""

from __future__ import annotations

import numpy as np

PRICE_FEATURES = ("open", "high", "low", "close")
FLOW_FEATURES = ("volume", "turnover")
NORMALISATIONS = ("robust", "cs_zscore", "cs_rank", "none")
#: Qlib's CSRankNorm scale: (percentile rank - 0.5) * 3.46 has about unit variance
RANK_SCALE = 3.46


def history_days(spec: dict) -> int:
    """How many whole days of bars, ending at the decision date, give the window its full history."""
    features = spec["features"]
    before = 0
    if any(name in FLOW_FEATURES for name in features):
        before = int(spec["volume_days"])
    if any(name in PRICE_FEATURES for name in features):
        before = max(before, 1)
    return int(spec["days"]) + before


def trailing_mean(daily: np.ndarray, days: int) -> np.ndarray:
    """(S, D): mean of the previous ``days`` days' finite values (not the day itself); NaN when there
    is none. The days are added nearest first, so the same days give the same bits wherever the array
    starts (a running sum would depend on everything before)."""
    s, d = daily.shape
    valid = np.isfinite(daily)
    values = np.where(valid, daily, 0.0)
    total = np.zeros((s, d))
    count = np.zeros((s, d))
    for back in range(1, min(days, d - 1) + 1):
        total[:, back:] += values[:, :-back]
        count[:, back:] += valid[:, :-back]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def previous_close(close: np.ndarray) -> np.ndarray:
    """(S, D) last close of the day before (NaN for the first day), from (S, D, P) float64 closes."""
    prev = np.full(close.shape[:2], np.nan)
    prev[:, 1:] = close[:, :-1, -1]
    return prev


def bar_feature(name: str, raw: np.ndarray, prev_close: np.ndarray, volume_days: int) -> np.ndarray:
    """(S, D, P) float64 per-bar feature ``name`` from its raw (S, D, P) float64 bars; NaN where unknown."""
    bars_per_day = raw.shape[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        if name in PRICE_FEATURES:
            value = raw / prev_close[:, :, None] - 1.0
        elif name in FLOW_FEATURES:
            per_bar = trailing_mean(raw.sum(axis=2), volume_days) / bars_per_day
            value = np.log1p(raw / per_bar[:, :, None])
        else:  # other fields: as they are
            value = raw.copy()
    value[~np.isfinite(value)] = np.nan
    return value


def cross_section(values: np.ndarray, how: str) -> np.ndarray:
    """Per row (float64), across its columns (stocks): ``zscore`` or ``rank`` ((ranks / n - 0.5) *
    3.46); NaN stays NaN (the steps of studio.data.labels.cross_section_normalize)."""
    if how == "zscore":
        finite = np.isfinite(values)
        n = finite.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(finite, values, 0.0).sum(axis=1, keepdims=True) / n
            std = np.sqrt((np.where(finite, values - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / n)
            out = (values - mean) / std
        return np.where(std > 0, out, 0.0) * np.where(np.isnan(values), np.nan, 1.0)
    if how == "rank":
        ranks = np.full(values.shape, np.nan)
        for row, line in enumerate(values):
            finite = np.isfinite(line)
            ordered = np.sort(line[finite])
            below = np.searchsorted(ordered, line[finite], side="left")
            upto = np.searchsorted(ordered, line[finite], side="right")
            ranks[row, finite] = (below + 1 + upto) / 2.0  # ties share their average rank, exactly
        n = np.sum(~np.isnan(values), axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (ranks / n - 0.5) * RANK_SCALE
    raise ValueError(f"unknown cross-section normalisation {how!r}")


def _check(bars: np.ndarray, fields: list[str], spec: dict, traded) -> tuple[int, int]:
    if bars.ndim != 3 or bars.shape[2] != len(fields):
        raise ValueError(f"bars must be (stocks, days x bars, {len(fields)} fields: {', '.join(fields)}), "
                         f"gets shape {tuple(bars.shape)}")
    for name in [*spec["features"], "close"]:
        if name not in fields:
            raise ValueError(f"bars lack field {name!r} (they have {', '.join(fields) or 'none'})")
    per_day, days = int(spec["bars_per_day"]), int(spec["days"])
    if bars.shape[1] % per_day or bars.shape[1] // per_day < days:
        raise ValueError(f"bars must hold whole days of {per_day} bars, at least {days} days, "
                         f"gets {bars.shape[1]} bars")
    if spec["normalize"] not in NORMALISATIONS:
        raise ValueError(f"normalize {spec['normalize']!r} is not one of {', '.join(NORMALISATIONS)}")
    if traded is not None and np.shape(traded) != (bars.shape[0],):
        raise ValueError(f"traded must be ({bars.shape[0]},) bool, gets shape {np.shape(traded)}")
    return per_day, days


def preprocess(bars, fields, spec: dict, traded=None) -> tuple[np.ndarray, np.ndarray]:
    """``bars`` (S, D * P, len(fields)) raw bars of whole days ending at the decision date (a numpy array
    or a CPU tensor); ``traded`` (S,) bool: traded on the decision day (None: every stock whose
    decision-day bars are all finite). Returns the model's input x float32 (S, days * P, F), zeros
    where the mask is False, and mask bool (S,)."""
    fields = list(fields)
    bars = np.asarray(bars, dtype=np.float32)  # what a panel stores
    per_day, days = _check(bars, fields, spec, traded)
    features = list(spec["features"])
    stocks, total_days = bars.shape[0], bars.shape[1] // per_day

    def day_bars(name: str) -> np.ndarray:
        return bars[:, :, fields.index(name)].reshape(stocks, total_days, per_day).astype(np.float64)

    prev_close = previous_close(day_bars("close"))
    window = slice(total_days - days, total_days)
    x = np.empty((stocks, days * per_day, len(features)), dtype=np.float32)
    for i, name in enumerate(features):
        value = bar_feature(name, day_bars(name), prev_close, int(spec["volume_days"]))
        x[:, :, i] = value[:, window].reshape(stocks, days * per_day)
    known = np.isfinite(x).all(axis=2).reshape(stocks, days, per_day).all(axis=2).all(axis=1)
    if traded is None:
        last_day = bars[:, (total_days - 1) * per_day:, :]
        used = [fields.index(name) for name in dict.fromkeys([*features, "close"])]
        traded = np.isfinite(last_day[:, :, used]).all(axis=(1, 2))
    mask = known & np.asarray(traded, dtype=bool)
    x = _normalise(x, spec)
    x[~mask] = 0.0
    return x, mask


def _normalise(x: np.ndarray, spec: dict) -> np.ndarray:
    how = spec["normalize"]
    if how == "robust":
        median = np.asarray(spec["median"], dtype=np.float64).astype(np.float32)
        mad = np.asarray(spec["mad"], dtype=np.float64).astype(np.float32)
        with np.errstate(invalid="ignore"):
            return np.clip((x - median) / mad, -3, 3)
    if how in ("cs_zscore", "cs_rank"):
        stocks, length, count = x.shape
        moved = np.moveaxis(x, 0, -1).reshape(-1, stocks).astype(np.float64)  # a row per bar and feature
        scaled = cross_section(moved, "zscore" if how == "cs_zscore" else "rank")
        return np.moveaxis(scaled.reshape(length, count, stocks), -1, 0).astype(np.float32)
    return x
