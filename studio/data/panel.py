"""The bar panel: intraday bars of many symbols over many trading days, on one regular grid.

Every data source (the synthetic market, imported CSV or Parquet files) produces a BarPanel; windows,
labels, normalisation and batches are all computed from it.

Layout: ``values[s, d * P + b, f]`` is bar ``b`` (of ``P = bars_per_day``) of day ``d`` for symbol
``s`` and feature ``f``. A symbol's bars are contiguous in time, so the window of the last ``days``
days before a decision is a slice (a view, never a copy): ``values[s, (d - days + 1) * P:(d + 1) * P]``.

Missing data (policies, counted in ``counts`` by the source that built the panel):
- ``traded[s, d]`` is True when the symbol traded on day ``d`` (it has a real closing price). Labels
  use only traded days; nothing is ever forward-filled into a label.
- On days a listed symbol did not trade (suspended), the source fills its bars with the previous close
  and zero volume and turnover: that is what a trader saw, and it is past data for later windows.
- Before a symbol's first traded day and after its last one, bars are NaN: no window reaches there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from studio.data import store
from studio.data.errors import DataError  # noqa: F401  (re-exported: callers import it from here)

PRICE_FEATURES = ("open", "high", "low", "close")
FLOW_FEATURES = ("volume", "turnover")
#: the words after the fields' names in the importer's note on fields its files lack (close-only data)
LEFT_OUT = "left out of the data:"


def missing_features(wanted: list[str], features: list[str], notes: list[str]) -> str | None:
    """One line on the features a graph reads (``wanted``) that data with ``features`` lacks: the graph's
    features, the data's and, from the importer's note (``notes``), the files' columns; None if none."""
    missing = [f for f in wanted if f not in features]
    if not missing:
        return None
    why = next((n.split(LEFT_OUT, 1)[1].strip() for n in notes if LEFT_OUT in n), "")
    return (f"the graph reads {', '.join(wanted)}; the data has {', '.join(features)} only"
            + (f": {why}" if why else f", no {' or '.join(missing)}"))


@dataclass
class BarPanel:
    symbols: list[str]
    #: trading days, ascending (numpy datetime64[D])
    dates: np.ndarray
    features: list[str]
    bars_per_day: int
    #: float32 (S, D * P, F)
    values: np.ndarray
    #: bool (S, D): the symbol traded that day
    traded: np.ndarray
    #: where the data came from, one line
    source: str = ""
    #: policies applied, one line each ("turnover derived as close x volume", ...)
    notes: list[str] = field(default_factory=list)
    #: how often each policy applied ("duplicate timestamps dropped": 12, ...)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s, d, p, f = len(self.symbols), len(self.dates), self.bars_per_day, len(self.features)
        if self.values.shape != (s, d * p, f):
            raise ValueError(f"values has shape {self.values.shape}, expected {(s, d * p, f)}")
        if self.traded.shape != (s, d):
            raise ValueError(f"traded has shape {self.traded.shape}, expected {(s, d)}")
        if "close" not in self.features:
            raise ValueError("a bar panel needs a close feature")
        if len(set(self.symbols)) != s:
            raise ValueError("symbols must be unique")
        if d > 1 and not np.all(self.dates[1:] > self.dates[:-1]):
            raise ValueError("dates must be strictly ascending")

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def n_days(self) -> int:
        return len(self.dates)

    def feature_index(self, name: str) -> int:
        return self.features.index(name)

    # ---- views -------------------------------------------------------------------------------
    def day_bars(self, feature: str) -> np.ndarray:
        """(S, D, P) view of one feature."""
        s, d, p = self.n_symbols, self.n_days, self.bars_per_day
        return self.values[:, :, self.feature_index(feature)].reshape(s, d, p)

    def daily_close(self) -> np.ndarray:
        """(D, S) closing price of each day; NaN where the symbol did not trade. For bars in a file, read
        a block of stocks at a time, handing the pages back (the last bar of each day touches every page)."""
        bars = self.day_bars("close")
        close = np.empty((self.n_days, self.n_symbols))
        step = max(1, (64 << 20) // max(1, self.n_days * self.bars_per_day * len(self.features) * 4))
        for first in range(0, self.n_symbols, step):
            close[:, first:first + step] = bars[first:first + step, :, -1].T
            store.release(self.values)
        return np.where(self.traded.T, close, np.nan)

    def window(self, day: int, days: int) -> np.ndarray:
        """(S, days * P, F) view of every symbol's bars for the ``days`` days ending with ``day``."""
        if day - days + 1 < 0 or day >= self.n_days:
            raise IndexError(f"no {days}-day window ends on day {day} (0..{self.n_days - 1})")
        p = self.bars_per_day
        return self.values[:, (day - days + 1) * p:(day + 1) * p, :]

    def fingerprint(self) -> str:
        """A hash of the bars, trading flags, symbols, dates and layout (recorded with every run; keys the
        feature files made from the panel). Bars in a file are hashed once (studio.data.store.digest)."""
        import hashlib

        h = hashlib.sha256()
        h.update(store.digest(self.values).encode())
        h.update(np.ascontiguousarray(self.traded, dtype=bool).tobytes())
        h.update("|".join(self.symbols).encode())
        h.update("|".join(self.features).encode() + b"/" + str(self.bars_per_day).encode())
        h.update(np.asarray(self.dates).astype("datetime64[D]").astype(np.int64).tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        """Sizes and policy counts, for `studio data inspect` and run records."""
        traded_per_day = self.traded.sum(axis=0)
        return {
            "source": self.source,
            "symbols": self.n_symbols,
            "dates": self.n_days,
            "first_date": str(self.dates[0]) if self.n_days else None,
            "last_date": str(self.dates[-1]) if self.n_days else None,
            "bars_per_day": self.bars_per_day,
            "features": list(self.features),
            "stocks_per_day_min": int(traded_per_day.min()) if self.n_days else 0,
            "stocks_per_day_median": float(np.median(traded_per_day)) if self.n_days else 0.0,
            "stocks_per_day_max": int(traded_per_day.max()) if self.n_days else 0,
            "notes": list(self.notes),
            "counts": dict(self.counts),
        }

    def select_symbols(self, symbols: list[str]) -> BarPanel:
        """A panel of some symbols (in the given order)."""
        index = [self.symbols.index(s) for s in symbols]
        return BarPanel(list(symbols), self.dates, list(self.features), self.bars_per_day,
                        self.values[index], self.traded[index], self.source, list(self.notes),
                        dict(self.counts))

    def resample(self, bars_per_day: int) -> BarPanel:
        """Fewer, longer bars: every ``k = P / bars_per_day`` bars become one (open: the first; high:
        the max; low: the min; close: the last; volume and turnover: summed)."""
        p = self.bars_per_day
        if bars_per_day == p:
            return self
        if bars_per_day < 1 or p % bars_per_day:
            raise ValueError(f"cannot resample {p} bars per day to {bars_per_day} (it must divide {p})")
        k = p // bars_per_day
        s, d = self.n_symbols, self.n_days
        grouped = self.values.reshape(s, d * bars_per_day, k, len(self.features))
        columns = []
        for i, name in enumerate(self.features):
            part = grouped[..., i]
            if name in FLOW_FEATURES:
                columns.append(part.sum(axis=-1))
            elif name == "high":
                columns.append(part.max(axis=-1))
            elif name == "low":
                columns.append(part.min(axis=-1))
            elif name == "open":
                columns.append(part[..., 0])
            else:
                columns.append(part[..., -1])
        values = np.stack(columns, axis=-1).astype(np.float32)
        notes = [*self.notes, f"resampled from {p} to {bars_per_day} bars per day ({k} bars each)"]
        return BarPanel(list(self.symbols), self.dates, list(self.features), bars_per_day, values,
                        self.traded.copy(), self.source, notes, dict(self.counts))
