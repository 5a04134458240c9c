"""Why a panel gives too few dates with enough samples: the error names the data policy that removed
them and how often it applied, not only the count of dates left.

A sample (date, stock) needs the stock traded that day, every feature known on every bar of its
``days``-day window, and a label. A feature is unknown where its normalisation has no reference
(studio.data.dataset.bar_features): a price needs the previous day's close; a volume or turnover
needs a non-zero mean of the previous ``volume_days`` days, so a stock whose volume was zero on every
bar of those days has none. Each reason is counted on the traded stock-days, with the import's own
counts of the bad values behind it (panel.counts).
"""

from __future__ import annotations

import numpy as np

from studio.data.panel import FLOW_FEATURES, PRICE_FEATURES, BarPanel

#: the import counts (studio.data.importer) behind an unknown feature, by the field they are about
_IMPORT_COUNTS = {
    "close": ("bars with NaN/zero/negative close treated as missing", "bars with an infinite close treated as missing",
              "bars with a close over 1e9 treated as missing", "suspended days filled (listed, not traded)"),
    "volume": ("zero-volume bars kept", "NaN/negative volume set to 0", "infinite volume set to 0",
               "volume over 1e15 set to 0"),
    "turnover": ("zero-volume bars kept", "NaN/negative turnover set to 0", "infinite turnover set to 0",
                 "turnover over 1e15 set to 0"),
}


def _trailing_sums(daily: np.ndarray, days: int) -> tuple[np.ndarray, np.ndarray]:
    """(S, D) sums and counts of the known values of the previous ``days`` days (not the day itself)."""
    s, d = daily.shape
    valid = np.isfinite(daily)
    csum = np.concatenate([np.zeros((s, 1)), np.cumsum(np.where(valid, daily, 0.0), axis=1)], axis=1)
    ccnt = np.concatenate([np.zeros((s, 1)), np.cumsum(valid, axis=1)], axis=1)
    end = np.arange(d)
    start = np.maximum(0, end - days)
    return csum[:, end] - csum[:, start], ccnt[:, end] - ccnt[:, start]


def _imported(panel: BarPanel, field: str) -> str:
    shown = [f"{name} {panel.counts[name]:,}" for name in _IMPORT_COUNTS.get(field, ()) if panel.counts.get(name)]
    return f"; import counts: {', '.join(shown)}" if shown else ""


def feature_reasons(panel: BarPanel, features: list[str], volume_days: int) -> list[str]:
    """For each feature unknown on traded stock-days after each stock's first (which never has a
    reference): on how many, and which policy made it so; the most first."""
    traded = panel.traded
    after_first = traded & (np.cumsum(traded, axis=1) > 1)
    n_days = int(after_first.sum())
    found: list[tuple[int, str]] = []
    for name in features:
        if name not in panel.features:
            continue
        bars = panel.day_bars(name)  # (S, D, P)
        if name in PRICE_FEATURES:
            close = panel.day_bars("close")[:, :, -1].astype(np.float64)
            no_reference = np.ones(traded.shape, dtype=bool)
            no_reference[:, 1:] = ~(np.isfinite(close[:, :-1]) & (close[:, :-1] != 0))
            unknown = after_first & (no_reference | ~np.isfinite(bars).all(axis=2))
            why = (f"it divides by the previous day's close, absent on {int((after_first & no_reference).sum()):,}"
                   f"{_imported(panel, 'close')}")
        elif name in FLOW_FEATURES:
            total, count = _trailing_sums(bars.astype(np.float64).sum(axis=2), volume_days)
            zero_mean = after_first & (count > 0) & (total == 0)
            unknown = after_first & ((count == 0) | (total == 0) | ~np.isfinite(bars).all(axis=2))
            why = (f"it divides by the mean {name} of the previous {volume_days} days (volume_days), zero on "
                   f"{int(zero_mean.sum()):,} (zero {name} on every bar of those days){_imported(panel, name)}")
        else:
            continue
        if unknown.any():
            found.append((int(unknown.sum()), f"{name} is unknown on {int(unknown.sum()):,} of {n_days:,} traded "
                                              f"stock-days after each stock's first: {why}"))
    return [text for _, text in sorted(found, key=lambda item: -item[0])]


def too_few_dates_message(panel: BarPanel, config, usable: int, has_label: np.ndarray, mask: np.ndarray) -> str:
    """The one-line error of a panel with too few usable dates (``usable``), naming why: too few stocks,
    the features a data policy left unknown (with the policy's counts), or missing labels."""
    head = (f"{panel.source or 'the data'}: only {usable} dates have at least {config.min_stocks} stocks with a "
            f"full {config.days}-day window and a label")
    if panel.n_symbols < max(config.min_stocks, 2):
        return f"{head}: the data has {panel.n_symbols} stocks (min_stocks {config.min_stocks})"
    reasons = feature_reasons(panel, list(config.features), config.volume_days)
    samples, labelled = int(mask.sum()), int(has_label.sum())
    if not reasons:
        reasons.append(f"{samples:,} stock-days have a full {config.days}-day window, {labelled:,} of them a "
                       f"label (lag {config.lag}, horizon {config.horizon}, over {panel.n_days} dates)")
    return f"{head}: " + "; ".join(reasons)
