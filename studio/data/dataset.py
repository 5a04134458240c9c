"""Samples, features, labels and cross-section batches from a bar panel (numpy; no torch).

A sample is (date, stock): the last ``days`` days x ``bars_per_day`` bars x features up to the
decision time, the close of the date. A batch is whole cross-sections: every stock of each of its
dates, with a mask of the stocks that are samples that date.

Features are normalised once for the whole panel, bar by bar, from information known at the bar's
own day (never later), so each window is a view of one array:

- prices (open, high, low, close): ``price / previous day's close - 1`` (Qlib's high-frequency
  handler divides by the previous day's last close);
- volume and turnover: ``log(1 + value / mean bar value of the previous volume_days days)``;
- then, per the config: ``cs_zscore`` or ``cs_rank`` across the stocks of the same bar (same day and
  time), or ``robust`` z-score per feature, (x - median) / (1.4826 MAD) clipped to [-3, 3], with the
  median and MAD fitted on the training dates only (Qlib RobustZScoreNorm), or ``none``.

Labels are raw forward returns (studio.data.labels) for metrics, and cross-sectionally normalised
(z-score or rank, or raw) for training.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from studio.core.owned_dir import owned_writer, read_json, write_owned
from studio.data import store
from studio.data.labels import cross_section_normalize, forward_returns
from studio.data.panel import BarPanel, DataError
from studio.data.preprocess import bar_feature, previous_close
from studio.data.splits import Splits, split_dates

NORMALISATIONS = ("robust", "cs_zscore", "cs_rank", "none")
LABEL_NORMALISATIONS = ("zscore", "rank", "raw")


@dataclass
class DataConfig:
    days: int = 10
    features: list[str] = field(default_factory=lambda: ["close", "volume", "turnover"])
    lag: int = 1
    horizon: int = 1
    normalize: str = "robust"
    volume_days: int = 20
    label_normalize: str = "zscore"
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    #: dates with fewer samples than this are not used (too small to rank)
    min_stocks: int = 10
    #: at most this many training dates are sampled to fit the robust statistics
    robust_fit_dates: int = 64
    #: a control: training labels shuffled among the stocks of each date (metrics keep the real ones),
    #: so a model can learn nothing and its IC should stay near zero
    shuffle_labels: bool = False

    def __post_init__(self) -> None:
        if self.normalize not in NORMALISATIONS:
            raise DataError(f"normalize: expects one of {', '.join(NORMALISATIONS)}, gets {self.normalize!r}")
        if self.label_normalize not in LABEL_NORMALISATIONS:
            raise DataError(f"label_normalize: expects one of {', '.join(LABEL_NORMALISATIONS)}, "
                            f"gets {self.label_normalize!r}")
        if self.days < 1 or self.lag < 0 or self.horizon < 1 or self.volume_days < 1:
            raise DataError("days, horizon and volume_days must be >= 1 and lag >= 0")

    def to_json(self) -> dict:
        data = asdict(self)
        data["split"] = list(self.split)
        return data


@dataclass
class Batch:
    """Whole cross-sections of some dates; arrays are (B, S, ...) with S the panel's symbols."""

    dates: np.ndarray  # (B,) date indices
    x: np.ndarray  # float32 (B, S, L, F); zeros where mask is False
    mask: np.ndarray  # bool (B, S): the stock is a sample that date (features known, traded)
    label: np.ndarray  # float32 (B, S): training label, 0 where it has none
    has_label: np.ndarray  # bool (B, S): mask and a finite label
    raw_label: np.ndarray  # float64 (B, S): raw forward return, NaN where none


def bar_features(panel: BarPanel, features: Sequence[str], volume_days: int,
                 out: np.ndarray | None = None, symbols: slice | None = None) -> np.ndarray:
    """(S, D * P, F) float32 of the per-bar normalised features (before cross-section / robust
    scaling). NaN where a bar is unknown or has no reference yet (a symbol's first day). ``symbols``
    computes only those rows (every stock's features use its own bars only); ``out`` receives them."""
    rows = symbols or slice(0, panel.n_symbols)
    s, d, p = len(range(*rows.indices(panel.n_symbols))), panel.n_days, panel.bars_per_day
    if out is None:
        out = np.empty((s, d * p, len(features)), dtype=np.float32)
    # the formulas live in studio.data.preprocess, which exports copy: serving computes what training did
    prev_close = previous_close(panel.day_bars("close")[rows].astype(np.float64))
    for i, name in enumerate(features):
        if name not in panel.features:
            raise DataError(f"feature {name!r} is not in the data (it has {', '.join(panel.features)})")
        value = bar_feature(name, panel.day_bars(name)[rows].astype(np.float64), prev_close, volume_days)
        out[:, :, i] = value.reshape(s, d * p)
    return out


#: the robust statistics are fitted on at most this many bars (of all the sampled training dates)
ROBUST_SAMPLE = 2_000_000
#: features are computed and scaled in blocks of stocks (or days) of about this many bytes of float32
BLOCK_BYTES = 64 << 20


def _blocks(total: int, per_item_bytes: int) -> list[slice]:
    step = max(1, BLOCK_BYTES // max(per_item_bytes, 1))
    return [slice(i, min(i + step, total)) for i in range(0, total, step)]


class CrossSectionData:
    """Features, masks, labels and splits of a panel for a model with a ``days``-day window."""

    def __init__(self, panel: BarPanel, config: DataConfig | None = None, splits: Splits | None = None,
                 features_file: str | os.PathLike[str] | None = None):
        """``features_file``: keep the normalised features in this memory-mapped ``.npy`` file instead
        of in memory (for panels larger than memory). It is made once, a block of stocks at a time, and
        reused while its key (the panel's fingerprint, the settings and given splits) matches; a stale
        one is made again, a damaged one is refused (DataError). Both paths give the same bits."""
        self.panel = panel
        self.config = config = config or DataConfig()
        p = panel.bars_per_day
        self.window_length = config.days * p
        shape = (panel.n_symbols, panel.n_days * p, len(config.features))
        key = self._features_key(splits) if features_file is not None else None
        reuse = (self._open_features_file(features_file, shape, key, p) if features_file is not None
                 else None)
        row_bytes = panel.n_days * p * len(config.features) * 4
        if reuse is not None:
            features, saved_stats, known = reuse
        else:
            features = (store.create(features_file, shape) if features_file is not None
                        else np.empty(shape, dtype=np.float32))
            known = np.empty((panel.n_symbols, panel.n_days), dtype=bool)
            for rows in _blocks(panel.n_symbols, row_bytes * 3):  # float64 temporaries of a block
                block = bar_features(panel, config.features, config.volume_days, symbols=rows)
                features[rows] = block
                known[rows] = np.isfinite(block).all(axis=2).reshape(len(block), panel.n_days, p).all(axis=2)
                del block
                store.release(features)  # pages of files (features made, bars read) back to the kernel
                store.release(panel.values)
        # a sample needs every bar of its window known and the stock traded on the decision day
        self.mask = _full_windows(known, config.days).T & panel.traded.T  # (D, S)
        self.raw_label = forward_returns(panel.daily_close(), config.lag, config.horizon)  # (D, S)
        self.has_label = self.mask & np.isfinite(self.raw_label)
        counts = self.has_label.sum(axis=1)
        self.usable = np.flatnonzero(counts >= max(config.min_stocks, 2))
        if splits is None:
            if len(self.usable) < 3 + 2 * (config.lag + config.horizon):
                from studio.data.sample_reasons import too_few_dates_message

                # the message names the policy that removed the samples and how often it applied
                raise DataError(too_few_dates_message(panel, config, len(self.usable), self.has_label, self.mask))
            splits = split_dates(self.usable, config.split, gap=config.lag + config.horizon)
        self.splits = splits
        self.stats: dict[str, list[float]] = {}
        if reuse is None:
            self._scale(features)
            if features_file is not None:
                path = store.finish(features)
                store.release(features)
                # never through a link planted in the cache (studio.core.owned_dir)
                with owned_writer(_known_file(path), binary=True, what="cache") as fh:
                    np.save(fh, known, allow_pickle=False)
                # the key last: a file is reused only once its statistics and known flags are written
                write_owned(_stats_file(path), json.dumps({"key": key, "stats": self.stats}), "cache")
                features = store.open_array(path, shape, np.float32)
        else:
            self.stats = saved_stats
        self.features = features
        self._reader = store.RowReader(features)
        label = np.where(self.has_label, self.raw_label, np.nan)
        self.label = cross_section_normalize(label, config.label_normalize)
        if config.shuffle_labels:
            rng = np.random.default_rng(12345)
            for d in range(panel.n_days):
                stocks = np.flatnonzero(self.has_label[d])
                self.label[d, stocks] = self.label[d, rng.permutation(stocks)]

    def _features_key(self, splits: Splits | None) -> str:
        """What the normalised features depend on: the panel's contents, the data settings and given splits."""
        import hashlib

        parts = {"panel": self.panel.fingerprint(), "config": self.config.to_json(), "format": 2,
                 "splits": None if splits is None else {k: [int(i) for i in v] for k, v in splits.items()}}
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]

    @staticmethod
    def _open_features_file(path, shape, key, bars) -> tuple[np.ndarray, dict, np.ndarray] | None:
        """The features kept in ``path`` when they were made from this panel with these settings (None:
        absent or stale, and then removed); a file of the right key that is not whole is refused."""
        path = Path(path)
        try:
            saved = read_json(_stats_file(path), 1 << 20, "cache")
        except (OSError, ValueError):  # absent, damaged, or a link or a special file planted there
            saved = None
        if not isinstance(saved, dict) or saved.get("key") != key or not path.exists():
            for stale in (path, _stats_file(path), _known_file(path)):
                stale.unlink(missing_ok=True)
            return None
        features = store.open_array(path, shape, np.float32)
        known = store.open_array(_known_file(path), (shape[0], shape[1] // bars), np.bool_)
        return features, dict(saved.get("stats") or {}), np.array(known)

    # ---- scaling -----------------------------------------------------------------------------
    def _scale(self, features: np.ndarray) -> None:
        """Scale ``features`` in place, a block at a time: robust z-scores per feature (fitted on a
        sample of the training dates), or across the stocks of each bar."""
        how = self.config.normalize
        s, n, f = features.shape
        p = self.panel.bars_per_day
        if how == "robust":
            fit_days = self.splits.train
            if len(fit_days) > self.config.robust_fit_dates:
                pick = np.linspace(0, len(fit_days) - 1, self.config.robust_fit_dates).round().astype(int)
                fit_days = fit_days[pick]
            # at most ROBUST_SAMPLE bars per date (evenly spaced through its cross-section): the median
            # of millions of values moves in the fourth digit, the memory of a whole universe's bars would not
            per_date = max(1, ROBUST_SAMPLE // max(len(fit_days), 1))
            stock_of, bar_of = [], []  # the sampled bars: (stock, bar column) pairs
            for d in fit_days:
                stocks = np.flatnonzero(self.mask[d])
                count = len(stocks) * p  # the day's bars of its samples, stock by stock
                pick = (np.linspace(0, count - 1, per_date).round().astype(np.int64) if count > per_date
                        else np.arange(count, dtype=np.int64))
                stock_of.append(stocks[pick // p])
                bar_of.append(d * p + pick % p)
            stock_of, bar_of = np.concatenate(stock_of), np.concatenate(bar_of)
            # read a block of stocks at a time (a day of every stock at once maps the whole file)
            order = np.argsort(stock_of, kind="stable")
            stock_of, bar_of = stock_of[order], bar_of[order]
            sample = np.empty((len(stock_of), f), dtype=np.float32)
            for rows in _blocks(s, n * f * 4):
                lo, hi = np.searchsorted(stock_of, [rows.start, rows.stop])
                sample[lo:hi] = features[rows][stock_of[lo:hi] - rows.start, bar_of[lo:hi]]
                store.release(features)
            median = np.nanmedian(sample, axis=0)
            mad = np.nanmedian(np.abs(sample - median), axis=0) * 1.4826
            mad = np.where(mad > 0, mad, 1.0)
            del sample
            self.stats = {"median": median.tolist(), "mad": mad.tolist()}
            median32, mad32 = median.astype(np.float32), mad.astype(np.float32)
            with np.errstate(invalid="ignore"):
                for rows in _blocks(s, n * f * 4):
                    features[rows] = np.clip((features[rows] - median32) / mad32, -3, 3)
                    store.release(features)
        elif how in ("cs_zscore", "cs_rank"):
            # across the stocks of each bar (same day, same time): blocks of days, all stocks
            kind = "zscore" if how == "cs_zscore" else "rank"
            for days in _blocks(self.panel.n_days, s * p * f * 8 * 3):
                cols = slice(days.start * p, days.stop * p)
                block = np.asarray(features[:, cols, :])
                width = block.shape[1]
                moved = np.moveaxis(block, 0, -1).reshape(-1, s).astype(np.float64)
                scaled = cross_section_normalize(moved, kind)
                features[:, cols, :] = np.moveaxis(scaled.reshape(width, f, s), -1, 0).astype(np.float32)
                store.release(features)
        store.release(features)

    # ---- samples and batches -----------------------------------------------------------------
    def window(self, date: int) -> np.ndarray:
        """(S, L, F) view of every stock's normalised window ending at ``date``."""
        p = self.panel.bars_per_day
        return self.features[:, self._window_start(date):(date + 1) * p, :]

    def _window_start(self, date: int) -> int:
        start = (date - self.config.days + 1) * self.panel.bars_per_day
        if start < 0:
            raise IndexError(f"date {date} has fewer than {self.config.days} days before it")
        return start

    def batch(self, dates: Sequence[int], out: np.ndarray | None = None) -> Batch:
        """Whole cross-sections of ``dates``; reads only those dates' windows (from the file, for
        features kept on disk, by positional reads that map nothing). ``out``: a float32 array
        of at least ``len(dates)`` windows to fill (pinned host memory, reused), else a new one."""
        dates = np.asarray(dates, dtype=np.int64)
        s, f = self.panel.n_symbols, len(self.config.features)
        shape = (len(dates), s, self.window_length, f)
        if out is not None:
            if out.shape[1:] != shape[1:] or len(out) < len(dates) or out.dtype != np.float32:
                raise ValueError(f"out has shape {out.shape} {out.dtype}, the batch needs {shape} float32")
            x = out[:len(dates)]
        else:
            x = np.empty(shape, dtype=np.float32)
        for i, d in enumerate(dates):
            start = self._window_start(int(d))
            self._reader.read(start, start + self.window_length, x[i])
        mask = self.mask[dates]
        x[~mask] = 0.0
        has_label = self.has_label[dates]
        label = np.where(has_label, self.label[dates], 0.0).astype(np.float32)
        return Batch(dates, x, mask, label, has_label, self.raw_label[dates])

    def batches(self, split: str, dates_per_batch: int = 1, shuffle: bool = False,
                rng: np.random.Generator | None = None) -> Iterator[Batch]:
        dates = np.array(self.splits[split])
        if shuffle:
            (rng or np.random.default_rng()).shuffle(dates)
        for i in range(0, len(dates), dates_per_batch):
            yield self.batch(dates[i:i + dates_per_batch])

    def describe(self) -> dict:
        return {
            "samples": int(self.has_label.sum()),
            "usable_dates": len(self.usable),
            "window": f"{self.config.days} days x {self.panel.bars_per_day} bars x "
                      f"{len(self.config.features)} features",
            "splits": self.splits.describe(self.panel.dates),
            "normalize": self.config.normalize,
            "robust_stats": self.stats,
        }


def features_cache_file(panel: BarPanel, config: DataConfig, splits: Splits | None = None) -> Path:
    """Where the cache keeps the normalised features of ``panel`` with ``config`` (and given ``splits``,
    whose training dates the scaling is fitted on: each walk-forward fold has its own file)
    (``features/<key>.npy`` of the cache folder)."""
    import hashlib

    from studio.data.cache import cache_root

    what = {"panel": panel.fingerprint(), "config": config.to_json()}
    if splits is not None:
        what["splits"] = {name: [int(i) for i in idx] for name, idx in splits.items()}
    key = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return cache_root() / "features" / f"{key}.npy"


def _stats_file(features_file: str | os.PathLike[str]) -> Path:
    """The file beside a features file that holds its key and robust statistics."""
    return Path(str(features_file) + ".stats.json")


def _known_file(features_file: str | os.PathLike[str]) -> Path:
    """The file beside a features file that holds which stock-days have every bar (S, D bool)."""
    return Path(str(features_file) + ".known.npy")


def _full_windows(known: np.ndarray, days: int) -> np.ndarray:
    """(S, D) bool: ``known`` (S, D) holds for each of the ``days`` days ending at each day."""
    s, d = known.shape
    out = np.zeros((s, d), dtype=bool)
    if d < days:
        return out
    run = np.concatenate([np.zeros((s, 1), int), np.cumsum(known, axis=1)], axis=1)
    out[:, days - 1:] = (run[:, days:] - run[:, :-days]) == days
    return out
