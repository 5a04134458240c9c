"""Classic bar factors: the baselines a model is judged against (docs/metrics.md, "Baselines").

Each factor is one declaration: its name, a label, the panel fields it needs, its formula in words, where it
comes from, and ``compute(panel) -> (D, S)`` float64 values known at the close of each date (the decision time
of a sample of that date: only bars of that date and before are read), NaN where unknown: the symbol did not
trade that date, or a day the formula reads did not trade (nothing is forward-filled).

The sign of every factor is fixed here, by its definition (a high value predicts a high forward return where
the literature says so: reversal is minus the last return); it is never chosen on the dates it is judged on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from studio.data.panel import BarPanel

#: days of the trailing mean the volume surprise divides by (the 20 days before the date, not the date)
VOLUME_DAYS = 20
#: of those days, how many must have traded for the mean to be known
VOLUME_MIN_DAYS = 10
#: a regular US session is 6.5 hours: the "last hour" is the day's last round(P / 6.5) bars (one bar at least)
SESSION_HOURS = 6.5


@dataclass(frozen=True)
class Factor:
    name: str
    label: str
    #: the panel fields it reads
    fields: tuple[str, ...]
    #: one line, in words
    formula: str
    #: where the definition comes from
    reference: str
    #: (panel) -> (D, S) float64, the value known at the close of each date, NaN where unknown
    compute: Callable[[BarPanel], np.ndarray]
    #: bars per day it needs at least (a return within the day needs two bars)
    min_bars: int = 1


def _traded(panel: BarPanel) -> np.ndarray:
    return panel.traded.T


def _day_bars(panel: BarPanel, feature: str) -> np.ndarray:
    """(D, S, P) float64 of one feature's bars, NaN on days the symbol did not trade."""
    bars = np.transpose(panel.day_bars(feature), (1, 0, 2)).astype(np.float64)
    bars[~_traded(panel)] = np.nan
    return bars


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = numerator / denominator
    out[~np.isfinite(out)] = np.nan
    return out


def _lagged(values: np.ndarray, days: int) -> np.ndarray:
    """(D, S) values of ``days`` dates before (NaN for the first ones)."""
    out = np.full_like(values, np.nan)
    out[days:] = values[:-days]
    return out


def _return_over(panel: BarPanel, days: int) -> np.ndarray:
    close = panel.daily_close()
    return _ratio(close, _lagged(close, days)) - 1.0


def reversal(panel: BarPanel) -> np.ndarray:
    return -_return_over(panel, 1)


def momentum_5d(panel: BarPanel) -> np.ndarray:
    return _return_over(panel, 5)


def momentum_20d(panel: BarPanel) -> np.ndarray:
    return _return_over(panel, 20)


def intraday_volatility(panel: BarPanel) -> np.ndarray:
    close = _day_bars(panel, "close")
    returns = _ratio(close[:, :, 1:], close[:, :, :-1]) - 1.0
    with np.errstate(invalid="ignore"):
        out = np.std(returns, axis=2, ddof=1)  # NaN where any bar of the day is missing
    return out


def _trailing_mean(daily: np.ndarray, days: int, min_days: int) -> np.ndarray:
    """(D, S) mean of the ``days`` dates before each date (not the date itself) over those that are known;
    NaN where fewer than ``min_days`` are."""
    known = np.isfinite(daily)
    sums = np.vstack([np.zeros((1, daily.shape[1])), np.cumsum(np.where(known, daily, 0.0), axis=0)])
    counts = np.vstack([np.zeros((1, daily.shape[1])), np.cumsum(known, axis=0)])
    end = np.arange(daily.shape[0])  # the window of date d is d - days .. d - 1
    start = np.maximum(end - days, 0)
    total, count = sums[end] - sums[start], counts[end] - counts[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    mean[count < min_days] = np.nan
    return mean


def _day_sum(panel: BarPanel, feature: str) -> np.ndarray:
    return _day_bars(panel, feature).sum(axis=2)


def volume_surprise(panel: BarPanel) -> np.ndarray:
    volume = _day_sum(panel, "volume")
    return _ratio(volume, _trailing_mean(volume, VOLUME_DAYS, VOLUME_MIN_DAYS))


def turnover(panel: BarPanel) -> np.ndarray:
    traded = _day_sum(panel, "turnover")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log(traded)
    out[~np.isfinite(out)] = np.nan
    return out


def last_hour_bars(bars_per_day: int) -> int:
    return max(1, round(bars_per_day / SESSION_HOURS))


def last_hour_return(panel: BarPanel) -> np.ndarray:
    close = _day_bars(panel, "close")
    k = last_hour_bars(panel.bars_per_day)  # < P for the two bars or more the factor needs
    return _ratio(close[:, :, -1], close[:, :, -1 - k]) - 1.0


def overnight_gap(panel: BarPanel) -> np.ndarray:
    first = _day_bars(panel, "open" if "open" in panel.features else "close")[:, :, 0]
    return _ratio(first, _lagged(panel.daily_close(), 1)) - 1.0


def intraday_range(panel: BarPanel) -> np.ndarray:
    high = np.max(_day_bars(panel, "high"), axis=2)
    low = np.min(_day_bars(panel, "low"), axis=2)
    return _ratio(high - low, panel.daily_close())


FACTORS: tuple[Factor, ...] = (
    Factor("reversal_1d", "reversal (minus the last day's return)", ("close",),
           "-(close_d / close_(d-1) - 1)",
           "short-term reversal (Jegadeesh 1990); Alpha158 ROC1 = Ref($close,1)/$close ranks alike", reversal),
    Factor("momentum_5d", "momentum, 5 days", ("close",), "close_d / close_(d-5) - 1",
           "Alpha158 ROC5 = Ref($close,5)/$close (its inverse ratio: opposite sign)", momentum_5d),
    Factor("momentum_20d", "momentum, 20 days", ("close",), "close_d / close_(d-20) - 1",
           "Alpha158 ROC20 = Ref($close,20)/$close (its inverse ratio: opposite sign); Jegadeesh & Titman 1993",
           momentum_20d),
    Factor("intraday_volatility", "intraday volatility", ("close",),
           "std (ddof 1) of the day's bar-to-bar close returns (the overnight return left out)",
           "realised volatility (Andersen et al. 2001); low-volatility anomaly (Ang et al. 2006)",
           intraday_volatility, min_bars=3),
    Factor("volume_surprise", "volume surprise", ("volume",),
           f"the day's volume / mean daily volume of the {VOLUME_DAYS} dates before it (at least "
           f"{VOLUME_MIN_DAYS} traded)",
           "Alpha158 VMA20 = Mean($volume,20)/$volume (inverse, and ours leaves the day out of the mean); "
           "Gervais, Kaniel & Mingelgrin 2001", volume_surprise),
    Factor("turnover", "turnover (log)", ("turnover",), "log of the day's turnover (sum of its bars' price x volume)",
           "liquidity / size proxy (Amihud 2002; Datar, Naik & Radcliffe 1998)", turnover),
    Factor("last_hour_return", "last hour's return", ("close",),
           f"close_d / close of the bar round(P / {SESSION_HOURS}) bars before the day's last - 1",
           "intraday momentum (Gao, Han, Li & Zhou 2018)", last_hour_return, min_bars=2),
    Factor("overnight_gap", "overnight gap", ("close",),
           "the day's first bar open (its close where the data has no open) / close_(d-1) - 1",
           "overnight return (Lou, Polk & Skouras 2019)", overnight_gap),
    Factor("intraday_range", "intraday range", ("high", "low", "close"),
           "(the day's highest high - lowest low) / close_d",
           "Alpha158 KLEN = ($high-$low)/$open (daily bar, divided by the open)", intraday_range),
)


def by_name(name: str) -> Factor:
    for factor in FACTORS:
        if factor.name == name:
            return factor
    raise KeyError(name)


def available(panel: BarPanel) -> tuple[list[Factor], list[tuple[str, str]]]:
    """(the factors the panel's fields allow, [(name, why left out)] for the others)."""
    usable, left_out = [], []
    for factor in FACTORS:
        missing = [f for f in factor.fields if f not in panel.features]
        if missing:
            left_out.append((factor.name, f"the data has no {' or '.join(missing)}"))
        elif panel.bars_per_day < factor.min_bars:
            left_out.append((factor.name, f"needs {factor.min_bars} bars a day, the data has {panel.bars_per_day}"))
        else:
            usable.append(factor)
    return usable, left_out
