"""Labels: forward returns after the decision time (the close of the sample's date).

With entry lag ``lag`` and horizon ``h``, the label of date d is the return from the close of day
d + lag to the close of day d + lag + h:  close[d + lag + h] / close[d + lag] - 1.
The default lag 1, horizon 1 is Qlib's ``Ref($close, -2) / Ref($close, -1) - 1``: a score known at
day d's close is traded at day d+1's close and held one day. ``lag = 0`` trades at the decision close
itself (optimistic; Alphalens' ``pct_change(h).shift(-h)``).

A label is NaN when the symbol did not trade on either end day: nothing is forward-filled into a
label. The last ``lag + h`` dates have no label.
"""

from __future__ import annotations

import numpy as np

from studio.data.panel import BarPanel
from studio.data.preprocess import cross_section


def forward_returns(daily_close: np.ndarray, lag: int = 1, horizon: int = 1) -> np.ndarray:
    """(D, S) forward returns from a (D, S) close array with NaN where a symbol did not trade."""
    if lag < 0 or horizon < 1:
        raise ValueError(f"lag must be >= 0 and horizon >= 1, gets lag {lag}, horizon {horizon}")
    days = daily_close.shape[0]
    out = np.full(daily_close.shape, np.nan)
    if days > lag + horizon:
        entry = daily_close[lag:days - horizon]
        exit_ = daily_close[lag + horizon:]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:days - lag - horizon] = exit_ / entry - 1.0
    out[~np.isfinite(out)] = np.nan
    return out


def panel_labels(panel: BarPanel, lag: int = 1, horizon: int = 1) -> np.ndarray:
    return forward_returns(panel.daily_close(), lag, horizon)


def cross_section_normalize(values: np.ndarray, how: str) -> np.ndarray:
    """Per date (row), across stocks: ``zscore`` (Qlib CSZScoreNorm) or ``rank`` ((pct rank - 0.5) * 3.46,
    Qlib CSRankNorm); NaN stays NaN. ``raw`` returns the values unchanged."""
    if how == "raw":
        return values
    if how == "zscore":  # the one implementation, which predict and the exports also run
        return cross_section(values, "zscore")
    if how == "rank":
        from studio.metrics import average_ranks

        ranks = average_ranks(values)  # 1..n, NaN kept
        n = np.sum(~np.isnan(values), axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (ranks / n - 0.5) * 3.46
    raise ValueError(f"unknown cross-section normalisation {how!r} (raw, zscore or rank)")
