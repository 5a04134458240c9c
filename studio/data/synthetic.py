"""The embedded synthetic market: the default data of demos, tests and ``make run``.

``generate(SyntheticConfig(...))`` returns a :class:`SyntheticMarket`: a :class:`BarPanel` of intraday
bars, deterministic from the seed, plus the generator's hidden states, and the true expected label (the
*oracle*), so that a model's IC can be read against the best IC any model could reach.

Returns (daily, in log): for stock s on day t

    r[t, s] = mu[t, s] + beta_s * market[t] + gamma_s * sector[t, sector(s)] + firm[t, s]

- ``market`` and ``sector`` are factors with Student-t innovations; the market's volatility follows a
  GARCH(1, 1) and the sector factors' volatility moves with it. Sectors are contiguous blocks of
  symbols (``S000``, ``S001``, ... in order), so adjacent symbols are usually related stocks.
- ``firm`` is the stock's own shock: Student-t noise scaled by a per-stock GARCH(1, 1) volatility (fat
  tails, volatility clustering).
- ``mu`` (``SyntheticMarket.drift``) is the planted alpha, the only predictable part: the factor and
  firm shocks have mean zero given everything before the day, and are drawn before (independently of)
  the prices.

Planted alpha: a deterministic function of the OBSERVABLE close and volume bars (the panel's values,
exactly as stored: float32, suspended days filled with the previous close and zero volume, NaN outside
the listed span). At each day e's close, four *components* g_c[e, s] are computed from the bars of days
<= e only (:class:`SignalTracker`, one day at a time; :func:`observable_components` runs it over a
panel). The market is the same whichever ``features`` the panel shows (a panel without volume hides the
volume component's input from a model; the oracle is the generator's, kept by the market):

1. ``intraday``: the late-day log return, log(last close / close ``late_bars`` bars before the end;
   ``late_bars`` = bars_per_day // 6 by default): a pattern inside the last day's bars (continuation).
2. ``volume``: the late-bar volume surprise, log(volume of the last ``late_bars`` bars / its mean over
   the days the stock traded among the previous ``volume_days`` days), times the sign of the late-day
   return: a volume-return interaction (a late move on unusual volume continues). Needs at least
   min(5, volume_days) such days.
3. ``daily``: minus the sum of the last ``reversal_days`` (5) daily log returns (days e-4 .. e; a day
   without an observed return, suspended or the first listed day, counts 0): a multi-day reversal, a
   day-level pattern of the window.
4. ``sector``: the mean day-e log return of the stock's adjacent same-sector neighbours (the symbols
   just before and after it, when in its sector and with a day-e return): structure between related
   stocks, which only a model that sees the cross-section can use.

A daily log return is log(day close / previous day's close) where the stock traded on day e and was
listed on day e - 1 (after a suspension it includes the move made while suspended). Each component is
standardised across the stocks that traded on day e and have it (robust z-score: (x - median) / (1.4826
MAD), clipped to +-``clip``) and is 0 for the other stocks, so ``alpha_c`` sets its strength. With the
default alphas the per-stock components (1-3) carry about 80% of the variance of mu and the sector one
about 20% (the intraday and daily parts partly offset each other: a late move is part of the day's
move); a model that reads one stock at a time (the default graph) can reach about sqrt(0.8) of the
oracle IC at most.

Each component's state decays geometrically: ``A_c[e] = g_c[e] + w_c * A_c[e - 1]`` with ``w_c = 0.5 **
(1 / half_life_c)`` (half life 0: ``w_c = 0``, no persistence), and the expected log return of day t is

    mu[t] = sum_c alpha_c * A_c[t - 2] = sum_c alpha_c * sum_{k >= 0} w_c ** k * g_c[t - 2 - k]

so the alpha of the bars of day e lands from day e + 2 on: the day after the decision is the entry day
of the default label (lag 1), whose return is that of day d + 2. The generator runs day by day: day t's
returns use mu[t], known from the bars of days <= t - 2, and day t's bars feed the components of day t.

The oracle (:func:`expected_log_label`): the label of date d with lag L and horizon h is the return over
days d+L+1 .. d+L+h, whose log is sum_j mu[d+L+1+j] + shocks. The oracle is the part of sum_j mu[d+L+1+j]
made of the terms g_c[e] with e <= d, i.e. known at day d's close:

    expected_label[d] = sum_c alpha_c * sum_{j=0}^{h-1} (A_c[d + n_j] if n_j <= 0 else w_c ** n_j * A_c[d]),
    n_j = L - 1 + j.

For lag + horizon <= 2 (lag 0 or 1, horizon 1; lag 0, horizon 2) every term is known at d, and the
oracle is exactly E[log(1 + label) | bars up to day d]: the best any model can do. For longer lags or
horizons it leaves out the terms of later days' bars (g_c[e], e > d), which are partly predictable
from day d's bars (a later 5-day return overlaps the known days), so it is the known part, not the full
conditional expectation. It is in log-return units: E[label] itself would add a convexity term ~sigma^2
/ 2 that carries no information (and is infinite for Student-t log returns). Row d depends on the bars
of days <= d only; :func:`observable_components` and :func:`expected_log_label` are pure functions of
the panel's arrays (and the config and sectors), so the oracle can be recomputed from any panel.

Intraday bars: the day's log return is split over ``bars_per_day`` bars by a Brownian bridge with a
U-shaped volatility profile (bar log returns sum to the day's log return; the last bar's close is the
day's close). Volume is U-shaped over the day and rises with |bar return|, with the day's |return| (a big
move brings volume all day) and with the stock's volatility; turnover = bar close x bar volume.

Missing data (the panel's policies): some stock-days are suspended (traded False; bars hold the
previous close, volume and turnover 0; the move made while suspended shows in the first bar of the day
trading resumes); a few stocks list late or delist early (bars NaN outside their listed span; their
first and last listed days trade).

Generation is vectorised over stocks and bars, with one loop over days (the GARCH recursions, then the
prices, bars and components of each day): well under a second for the default size. numpy only.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from studio.data import store
from studio.data.labels import panel_labels
from studio.data.panel import BarPanel

FEATURES = ("open", "high", "low", "close", "volume", "turnover")
COMPONENTS = ("intraday", "volume", "daily", "sector")
#: the alpha of day e's bars is in the returns from day e + DELAY on
DELAY = 2


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes, stylised facts and planted alpha of a synthetic market. Defaults: the default size, on which
    the default graph (10 days x 24 bars x close, volume, turnover) trains in about a minute on 2 CPU
    cores (bench/synthetic_learnability.py: about two thirds of the oracle IC); the oracle IC (lag 1,
    horizon 1) is about 0.17 on all dates (0.14-0.18 by seed; 0.13-0.19 on the last 20% of dates); the
    sector component carries about 20% of the variance of the alpha."""

    stocks: int = 240
    days: int = 400
    bars_per_day: int = 24
    sectors: int = 12
    seed: int = 0
    features: tuple[str, ...] = ("close", "volume", "turnover")
    start: str = "2020-01-02"

    # ---- returns (daily log-return volatilities) -----------------------------------------------
    market_vol: float = 0.010
    sector_vol: float = 0.008
    #: median idiosyncratic volatility; each stock's level is log-normal around it
    idio_vol: float = 0.020
    #: degrees of freedom of the Student-t innovations (fat tails; > 2)
    tail_df: float = 4.0
    garch_alpha: float = 0.08
    garch_beta: float = 0.90

    # ---- planted alpha (daily log return per unit of a standardised component) ------------------------
    #: multiplies every alpha_* (0 gives a market with nothing to predict)
    signal_scale: float = 1.0
    alpha_intraday: float = 0.0019
    alpha_volume: float = 0.0006
    alpha_daily: float = 0.0016
    alpha_sector: float = 0.00115
    half_life_intraday: float = 1.0
    half_life_volume: float = 1.0
    half_life_daily: float = 1.0
    half_life_sector: float = 1.0
    #: bars at the end of the day that make the late-day return and volume (None: bars_per_day // 6, >= 1)
    late_bars: int | None = None
    #: days of the reversal's return sum
    reversal_days: int = 5
    #: trailing days of the late-bar volume's mean
    volume_days: int = 20
    #: standardised components are clipped to +- this
    clip: float = 3.0

    # ---- missing data ----------------------------------------------------------------------------
    #: probability per stock-day that a suspension starts
    suspension_rate: float = 0.002
    #: mean length of a suspension, days
    suspension_days: float = 3.0
    #: shares of the stocks that list after the first day / delist before the last day
    late_listings: float = 0.03
    delistings: float = 0.03

    def __post_init__(self) -> None:
        if self.stocks < 2 or self.days < 2 or self.bars_per_day < 1:
            raise ValueError(f"a synthetic market needs >= 2 stocks, >= 2 days and >= 1 bar per day, gets "
                             f"{self.stocks} stocks, {self.days} days, {self.bars_per_day} bars")
        if not 1 <= self.sectors <= self.stocks:
            raise ValueError(f"sectors must be between 1 and the number of stocks ({self.stocks}), "
                             f"gets {self.sectors}")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown or "close" not in self.features or len(set(self.features)) != len(self.features):
            raise ValueError(f"features must be distinct names from {', '.join(FEATURES)} and include "
                             f"close, gets {list(self.features)}")
        if self.tail_df <= 2:
            raise ValueError(f"tail_df must be > 2 (finite variance), gets {self.tail_df}")
        if not (self.garch_alpha >= 0 and self.garch_beta >= 0 and self.garch_alpha + self.garch_beta < 1):
            raise ValueError("GARCH needs alpha >= 0, beta >= 0 and alpha + beta < 1")
        if min(getattr(self, f"half_life_{c}") for c in COMPONENTS) < 0:
            raise ValueError("half lives must be >= 0 (0: no persistence)")
        if self.late_bars is not None and not 1 <= self.late_bars <= self.bars_per_day:
            raise ValueError(f"late_bars must be between 1 and bars_per_day, gets {self.late_bars}")
        if self.reversal_days < 1 or self.volume_days < 1:
            raise ValueError("reversal_days and volume_days must be >= 1")
        if not self.clip > 0:
            raise ValueError(f"clip must be > 0, gets {self.clip}")
        for name in ("suspension_rate", "late_listings", "delistings"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], gets {getattr(self, name)}")
        if self.suspension_days < 1:
            raise ValueError(f"suspension_days must be >= 1, gets {self.suspension_days}")

    @property
    def n_late_bars(self) -> int:
        return self.late_bars if self.late_bars is not None else max(1, self.bars_per_day // 6)

    def alpha(self, component: str) -> float:
        return self.signal_scale * getattr(self, f"alpha_{component}")

    def decay(self, component: str) -> float:
        """Daily decay w_c of a component's state: 0.5 ** (1 / half life); 0 for a half life of 0."""
        half_life = getattr(self, f"half_life_{component}")
        return 0.5 ** (1.0 / half_life) if half_life > 0 else 0.0


def _component_names(components: tuple[str, ...] | list[str] | str | None) -> tuple[str, ...]:
    if components is None:
        return COMPONENTS
    if isinstance(components, str):
        components = (components,)
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown:
        raise ValueError(f"unknown alpha component {unknown[0]!r} ({', '.join(COMPONENTS)})")
    return tuple(components)


@dataclass
class SyntheticMarket:
    """A generated market: the panel a user sees, and the hidden states behind it (all (D, S), day-major,
    float64)."""

    config: SyntheticConfig
    panel: BarPanel
    #: (S,) sector of each stock (contiguous blocks in symbol order)
    sectors: np.ndarray
    #: (D, S) the stock is listed (between its first and last traded day)
    listed: np.ndarray
    #: (D, S) latent daily log return (on a suspended day: the move the stock would have made)
    returns: np.ndarray
    #: (D, S) mu, the planted alpha in the day's return: its expectation given the bars up to 2 days before
    drift: np.ndarray
    #: (D, S) returns - drift: factor and firm shocks, mean zero given the past
    shocks: np.ndarray
    #: (D, S) the stock's own shock
    firm: np.ndarray
    #: (D, S) the stock's GARCH volatility of the day (of its own shock)
    volatility: np.ndarray
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # ---- the oracle --------------------------------------------------------------------------------
    def components(self) -> dict[str, np.ndarray]:
        """Each component's (D, S) standardised value g_c, computed at each day's close from the panel's
        bars of days <= that day (:func:`observable_components`)."""
        if "components" not in self._cache:
            self._cache["components"] = observable_components(self.panel, self.sectors, self.config)
        return self._cache["components"]

    def states(self) -> dict[str, np.ndarray]:
        """Each component's (D, S) decayed state A_c (mu[t] = sum_c alpha_c * A_c[t - 2])."""
        if "states" not in self._cache:
            self._cache["states"] = alpha_states(self.components(), self.config)
        return self._cache["states"]

    def expected_label(self, lag: int = 1, horizon: int = 1,
                       components: tuple[str, ...] | list[str] | str | None = None) -> np.ndarray:
        """(D, S) the oracle: the part of the label's log return known at day d's close (exactly its
        expectation for lag + horizon <= 2; see the module docstring), from all components or those named;
        NaN where the label (studio.data.labels.panel_labels) is NaN."""
        expected = expected_log_label(self.states(), self.config, lag, horizon, components)
        return np.where(np.isnan(self.labels(lag, horizon)), np.nan, expected)

    def labels(self, lag: int = 1, horizon: int = 1) -> np.ndarray:
        key = ("labels", lag, horizon)
        if key not in self._cache:
            self._cache[key] = panel_labels(self.panel, lag, horizon)
        return self._cache[key]

    def oracle_ic(self, dates: np.ndarray | slice | None = None, lag: int = 1, horizon: int = 1,
                  components: tuple[str, ...] | list[str] | str | None = None) -> float:
        """Mean over ``dates`` (day indices, a bool mask or a slice; None: all) of the daily IC
        (studio.metrics.daily_ic) of the expected label against the realised label: the IC of a
        perfect model, the ceiling for any model trained on this market (for lag + horizon <= 2; beyond,
        the IC of the part known at the decision)."""
        from studio.metrics import daily_ic

        ic = daily_ic(self.expected_label(lag, horizon, components), self.labels(lag, horizon))
        if dates is not None:
            ic = ic[dates]
        ic = ic[np.isfinite(ic)]
        return float(ic.mean()) if len(ic) else math.nan

    def oracle_summary(self, lag: int = 1, horizon: int = 1, test_share: float = 0.2) -> dict[str, float]:
        """Oracle IC on all dates and on the last ``test_share`` of them, overall and per component (on
        all dates)."""
        tail = np.arange(self.panel.n_days) >= round(self.panel.n_days * (1 - test_share))
        out = {"all": self.oracle_ic(None, lag, horizon), "test": self.oracle_ic(tail, lag, horizon)}
        for c in COMPONENTS:
            out[c] = self.oracle_ic(None, lag, horizon, c)
        return out


# ---- the alpha: pure functions of the observable bars (causal by construction) ----------------------------
def sector_neighbours(sectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S,) bool: the stock has a left / right neighbour (adjacent symbol) in its own sector."""
    same = sectors[1:] == sectors[:-1]
    left = np.concatenate([[False], same])
    right = np.concatenate([same, [False]])
    return left, right


def _standardise(x: np.ndarray, ok: np.ndarray, clip: float) -> np.ndarray:
    """(S,) robust z-score of ``x`` over the stocks where ``ok``: (x - median) / (1.4826 MAD), clipped to
    +-clip; 0 elsewhere."""
    out = np.zeros(x.shape)
    if ok.sum() >= 2:
        v = x[ok]
        v = v - np.median(v)
        scale = 1.4826 * float(np.median(np.abs(v)))
        if scale > 0:
            out[ok] = np.clip(v / scale, -clip, clip)
    return out


class SignalTracker:
    """The planted components, one day at a time: ``update(close, volume, traded)`` takes day e's bars
    ((S, P) close and volume as stored in the panel, (S,) traded) and returns the (C, S) components of day
    e (order of COMPONENTS), from its state of earlier days and day e's bars only."""

    def __init__(self, sectors: np.ndarray, config: SyntheticConfig) -> None:
        s = len(sectors)
        self.config = config
        self.left, self.right = sector_neighbours(np.asarray(sectors))
        self.prev_log_close = np.full(s, np.nan)  # log close of the previous day; NaN: not listed
        self.day_returns = np.zeros((config.reversal_days, s))
        self.late_volume = np.zeros((config.volume_days, s))
        self.late_seen = np.zeros((config.volume_days, s), dtype=bool)
        self.min_seen = min(5, config.volume_days)
        self.day = 0

    def update(self, close: np.ndarray, volume: np.ndarray, traded: np.ndarray) -> np.ndarray:
        c = self.config
        close = np.array(close, dtype=np.float64)  # contiguous copies: the same numbers however stored
        volume = np.array(volume, dtype=np.float64)
        p, k = close.shape[1], min(c.n_late_bars, close.shape[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            log_close = np.log(close)
            day_close = log_close[:, -1]
            listed = np.isfinite(day_close)
            traded = np.asarray(traded, dtype=bool) & listed
            has_return = traded & np.isfinite(self.prev_log_close)
            r = np.where(has_return, day_close - self.prev_log_close, 0.0)

            # 1. the late-day log return
            start = log_close[:, p - k - 1] if k < p else self.prev_log_close
            late = day_close - start
            ok_late = traded & np.isfinite(late)
            late = np.where(ok_late, late, 0.0)

            # 2. late-bar volume surprise x sign of the late return
            late_volume = volume[:, p - k:].sum(axis=1)
            seen = self.late_seen.sum(axis=0)
            mean = np.where(self.late_seen, self.late_volume, 0.0).sum(axis=0) / np.maximum(seen, 1)
            ok_volume = ok_late & (seen >= self.min_seen) & (late_volume > 0) & (mean > 0)
            surprise = np.where(ok_volume, np.log(late_volume) - np.log(mean), 0.0) * np.sign(late)

            # 3. reversal of the last days' returns
            self.day_returns[self.day % c.reversal_days] = r
            reversal = -self.day_returns.sum(axis=0)

            # 4. the adjacent same-sector stocks' returns of the day
            total, count = np.zeros(r.shape), np.zeros(r.shape)
            ok_left = self.left[1:] & has_return[:-1]  # stock i >= 1 has its left neighbour i - 1
            ok_right = self.right[:-1] & has_return[1:]
            total[1:] += np.where(ok_left, r[:-1], 0.0)
            count[1:] += ok_left
            total[:-1] += np.where(ok_right, r[1:], 0.0)
            count[:-1] += ok_right
            neighbours = np.divide(total, count, out=np.zeros(r.shape), where=count > 0)

            # the state for the next days
            self.prev_log_close = np.where(listed, day_close, np.nan)
            slot = self.day % c.volume_days
            self.late_volume[slot] = np.where(traded, late_volume, 0.0)
            self.late_seen[slot] = traded
            self.day += 1
        return np.stack([_standardise(late, ok_late, c.clip),
                         _standardise(surprise, ok_volume, c.clip),
                         _standardise(reversal, has_return, c.clip),
                         _standardise(neighbours, traded & (count > 0), c.clip)])


def observable_components(panel: BarPanel, sectors: np.ndarray, config: SyntheticConfig
                          ) -> dict[str, np.ndarray]:
    """Each component's (D, S) g_c from the panel's close and volume bars and traded flags: row e uses the
    bars of days <= e only (a :class:`SignalTracker` fed day by day)."""
    if "volume" not in panel.features:
        raise ValueError("the planted alpha reads the close and volume bars; this panel has no volume")
    close, volume = panel.day_bars("close"), panel.day_bars("volume")
    tracker = SignalTracker(sectors, config)
    out = np.empty((len(COMPONENTS), panel.n_days, panel.n_symbols))
    for e in range(panel.n_days):
        out[:, e] = tracker.update(close[:, e], volume[:, e], panel.traded[:, e])
    return {c: out[i] for i, c in enumerate(COMPONENTS)}


def decayed(values: np.ndarray, w: float) -> np.ndarray:
    """A[d] = values[d] + w * A[d - 1] along the days (axis 0)."""
    out = np.empty_like(values)
    acc = np.zeros(values.shape[1:])
    for d in range(len(values)):
        acc = values[d] + w * acc
        out[d] = acc
    return out


def alpha_states(components: dict[str, np.ndarray], config: SyntheticConfig) -> dict[str, np.ndarray]:
    """Each component's decayed state A_c = g_c + w_c * A_c[previous day]."""
    return {c: decayed(components[c], config.decay(c)) for c in COMPONENTS}


def expected_log_label(states: dict[str, np.ndarray], config: SyntheticConfig, lag: int = 1,
                       horizon: int = 1, components: tuple[str, ...] | list[str] | str | None = None
                       ) -> np.ndarray:
    """(D, S) the known part at day d's close of the label's log return (lag, horizon): sum over components
    and the label's days j of alpha_c * (A_c[d + n] if n <= 0 else w_c ** n * A_c[d]), n = lag - 1 + j.
    Exact expectation for lag + horizon <= 2. Row d uses the states of days <= d only. Not masked."""
    if lag < 0 or horizon < 1:
        raise ValueError(f"lag must be >= 0 and horizon >= 1, gets lag {lag}, horizon {horizon}")
    names = _component_names(components)
    out = np.zeros(next(iter(states.values())).shape)
    for c in names:
        a, w, state = config.alpha(c), config.decay(c), states[c]
        for n in range(lag - 1, lag - 1 + horizon):
            if n < 0:  # lag 0: the label's first day is d + 1, whose mu comes from A[d - 1]
                term = np.zeros(state.shape)
                term[1:] = state[:-1]
                out += a * term
            else:
                out += (a * w ** n) * state
    return out


# ---- generation ----------------------------------------------------------------------------------------
def _student_t(rng: np.random.Generator, df: float, size) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(df, size=size) * math.sqrt((df - 2.0) / df)


def _sector_sizes(rng: np.random.Generator, stocks: int, sectors: int) -> np.ndarray:
    floor = 2 if stocks >= 2 * sectors else 1
    share = rng.dirichlet(np.full(sectors, 4.0))
    return floor + rng.multinomial(stocks - floor * sectors, share)


def _listing_spans(rng: np.random.Generator, c: SyntheticConfig) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(S,) first and last listed day of each stock; how many list late and delist early."""
    s, d = c.stocks, c.days
    first = np.zeros(s, dtype=np.int64)
    last = np.full(s, d - 1, dtype=np.int64)
    n_late = round(c.late_listings * s) if d >= 4 else 0
    n_delist = round(c.delistings * s) if d >= 4 else 0
    n_late, n_delist = min(n_late, s // 2), min(n_delist, s // 2)
    chosen = rng.permutation(s)
    late, gone = chosen[:n_late], chosen[n_late:n_late + n_delist]
    first[late] = rng.integers(1, d // 2, size=n_late, endpoint=True)
    last[gone] = rng.integers(d // 2, d - 2, size=n_delist, endpoint=True)
    return first, last, n_late, n_delist


def _suspensions(rng: np.random.Generator, c: SyntheticConfig, listed: np.ndarray) -> np.ndarray:
    """(D, S) bool: suspended (runs of geometric length starting at random)."""
    d, s = listed.shape
    starts = rng.random((d, s)) < c.suspension_rate
    length = rng.geometric(1.0 / c.suspension_days, size=(d, s))
    day = np.arange(d)[:, None]
    end = np.where(starts, day + length - 1, -1)
    return (np.maximum.accumulate(end, axis=0) >= day) & listed


def _profiles(p: int) -> tuple[np.ndarray, np.ndarray]:
    """(P,) intraday variance shares (sum 1) and volume profile (mean 1), both U-shaped."""
    x = (np.arange(p) + 0.5) / p
    u = (2.0 * x - 1.0) ** 2
    var = 1.0 + 2.0 * u
    var[0] *= 1.5  # the open
    vol = 1.0 + 3.0 * u
    vol[0] *= 1.6
    vol[-1] *= 1.4  # the closing auction
    return var / var.sum(), vol / vol.mean()


@dataclass
class _Stocks:
    """What stays fixed for each stock: sector, factor loadings, volatility level, first price, volume."""

    sectors: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    level: np.ndarray
    log_p0: np.ndarray
    base_volume: np.ndarray


def _stocks(rng: np.random.Generator, c: SyntheticConfig) -> _Stocks:
    sectors = np.repeat(np.arange(c.sectors), _sector_sizes(rng, c.stocks, c.sectors))
    beta = np.clip(rng.normal(1.0, 0.3, c.stocks), 0.2, 2.0)
    gamma = np.clip(rng.normal(1.0, 0.3, c.stocks), 0.2, 2.0)
    level = c.idio_vol * np.clip(np.exp(rng.normal(0.0, 0.35, c.stocks)), 0.4, 2.5)
    log_p0 = rng.normal(math.log(15.0), 0.7, c.stocks)
    base_volume = np.exp(rng.normal(math.log(4e4), 0.8, c.stocks))
    return _Stocks(sectors, beta, gamma, level, log_p0, base_volume)


@dataclass
class _Calendar:
    """(D, S) which stock-days are listed, suspended and traded; how many stocks list late and delist."""

    listed: np.ndarray
    suspended: np.ndarray
    traded: np.ndarray
    n_late: int
    n_delist: int


def _calendar(g_list: np.random.Generator, g_susp: np.random.Generator, c: SyntheticConfig) -> _Calendar:
    first, last, n_late, n_delist = _listing_spans(g_list, c)
    day = np.arange(c.days)[:, None]
    listed = (day >= first) & (day <= last)
    suspended = _suspensions(g_susp, c, listed)
    # the first and last listed days trade
    suspended[first, np.arange(c.stocks)] = False
    suspended[last, np.arange(c.stocks)] = False
    return _Calendar(listed, suspended, listed & ~suspended, n_late, n_delist)


@dataclass
class _Shocks:
    """The (D, S) factor and firm shocks of each day and the volatilities behind them."""

    #: beta * market + gamma * sector + firm: the day's return less the planted alpha
    total: np.ndarray
    firm: np.ndarray
    #: (D,) the market's GARCH volatility; (D,) the sectors' (moves with the market's)
    sigma_m: np.ndarray
    sigma_f: np.ndarray
    #: the stock's own GARCH variance and volatility
    var: np.ndarray
    sigma: np.ndarray
    #: the log of each stock's volume level (an AR(1) walk)
    volume_level: np.ndarray


def _shocks(g_factor: np.random.Generator, g_firm: np.random.Generator, g_volume: np.random.Generator,
            c: SyntheticConfig, stocks: _Stocks) -> _Shocks:
    """Factor and firm shocks with GARCH volatilities, and the volume level (a cheap loop over days)."""
    D, S = c.days, c.stocks
    z_m = _student_t(g_factor, c.tail_df, D)
    z_f = _student_t(g_factor, c.tail_df, (D, c.sectors))
    z = _student_t(g_firm, c.tail_df, (D, S))
    h_noise = g_volume.normal(0.0, 0.2, (D, S))
    a, b = c.garch_alpha, c.garch_beta
    var_m = np.empty(D)
    var = np.empty((D, S))
    volume_level = np.empty((D, S))
    vm, v, h = c.market_vol ** 2, stocks.level ** 2, np.zeros(S)
    omega_m, omega = (1 - a - b) * c.market_vol ** 2, (1 - a - b) * stocks.level ** 2
    for t in range(D):
        var_m[t], var[t] = vm, v
        h = 0.8 * h + h_noise[t]
        volume_level[t] = h
        vm = omega_m + a * vm * z_m[t] ** 2 + b * vm
        v = omega + a * v * z[t] ** 2 + b * v
    sigma_m, sigma = np.sqrt(var_m), np.sqrt(var)
    market = sigma_m * z_m
    sigma_f = c.sector_vol * sigma_m / c.market_vol  # sector volatility moves with the market's
    sector_f = sigma_f[:, None] * z_f
    firm = sigma * z
    total = stocks.beta * market[:, None] + stocks.gamma * sector_f[:, stocks.sectors] + firm
    return _Shocks(total, firm, sigma_m, sigma_f, var, sigma, volume_level)


class _DayBars:
    """Day t's bars from its return: the Brownian bridge's noise and the volume before its |bar return|
    factor are drawn day by day (a market of any size is made one day at a time)."""

    def __init__(self, c: SyntheticConfig, stocks: _Stocks, calendar: _Calendar, shocks: _Shocks,
                 g_bars: np.random.Generator, g_volume: np.random.Generator, g_range: np.random.Generator):
        self.c, self.calendar = c, calendar
        self.g_bars, self.g_volume, self.g_range = g_bars, g_volume, g_range
        self.share, self.vol_profile = _profiles(c.bars_per_day)
        self.sqrt_share = np.sqrt(self.share)
        self.base_volume = stocks.base_volume
        # the daily shock's volatility
        self.sd = np.sqrt((stocks.beta * shocks.sigma_m[:, None]) ** 2
                          + (stocks.gamma * shocks.sigma_f[:, None]) ** 2 + shocks.var)
        self.volume_level = np.exp(shocks.volume_level) * shocks.sigma / stocks.level  # rises with volatility
        self.wants_range = bool({"open", "high", "low"} & set(c.features))
        self.feature_index = {name: i for i, name in enumerate(c.features)}
        self.nan = np.full(c.stocks, np.nan)

    def make(self, t: int, ret: np.ndarray, log_p: np.ndarray, latent_prev: np.ndarray,
             close_before: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Writes day t's (S, P, F) bars into ``day``; returns its close bars (float32, as stored), its
        volume and its closes. ``log_p``: the latent log price after the day's return ``ret``."""
        S, P = self.c.stocks, self.c.bars_per_day
        share, sqrt_share, sd = self.share, self.sqrt_share, self.sd[t]
        u = _student_t(self.g_bars, self.c.tail_df, (S, P)) * sqrt_share
        bridge = sd[:, None] * (u - share * u.sum(axis=-1, keepdims=True))
        bar_scale = 1.0 / (sd[:, None] * sqrt_share)
        volume_base = self.base_volume[:, None] * self.vol_profile * self.volume_level[t][:, None] * np.exp(
            self.g_volume.normal(-0.045, 0.3, (S, P)))
        tr, li = self.calendar.traded[t], self.calendar.listed[t]
        close = np.where(tr, np.exp(log_p).astype(np.float32).astype(np.float64), close_before)
        close = np.where(li, close, self.nan)  # frozen while suspended, NaN when not listed
        prev = np.where(np.isfinite(close_before), close_before, latent_prev)
        move = np.log(close) - np.log(prev)  # the observed day's log return (0 while suspended)
        x = share * ret[:, None] + bridge
        x[:, 0] += np.where(tr, move - ret, 0.0)  # the move made while suspended, float32 rounding
        bars = np.exp(np.log(prev)[:, None] + np.cumsum(x, axis=1))
        bars[:, -1] = close
        bars = np.where(tr[:, None], bars, close[:, None]).astype(np.float32)
        busy = 0.6 + 0.5 * np.minimum(np.abs(ret) / sd, 8.0)  # a big move: volume all day
        vol = volume_base * busy[:, None] * (0.4 + 0.6 * np.minimum(np.abs(x) * bar_scale, 8.0))
        vol = np.where(tr[:, None], np.maximum(np.rint(vol), 1.0), np.where(li, 0.0, np.nan)[:, None])
        vol = vol.astype(np.float32)
        for name, column in self._columns(t, bars, vol, prev).items():
            day[:, :, self.feature_index[name]] = column
        day[~li] = np.nan
        return bars, vol, close

    def _columns(self, t: int, bars: np.ndarray, vol: np.ndarray, prev: np.ndarray) -> dict[str, np.ndarray]:
        """The day's feature columns (S, P) by name, in float64: open, high and low only when shown."""
        tr = self.calendar.traded[t]
        bars64 = bars.astype(np.float64)
        columns = {"close": bars64, "volume": vol, "turnover": bars64 * vol}
        if self.wants_range:
            S, P = self.c.stocks, self.c.bars_per_day
            opened = np.concatenate([prev[:, None], bars64[:, :-1]], axis=-1)
            opened = np.where(tr[:, None], opened, bars64)
            wiggle = self.sd[t][:, None] * self.sqrt_share * 0.5
            up = np.exp(np.abs(self.g_range.standard_normal((S, P))) * wiggle)
            down = np.exp(-np.abs(self.g_range.standard_normal((S, P))) * wiggle)
            flat = ~tr[:, None]
            columns["open"] = opened
            columns["high"] = np.where(flat, bars64, np.maximum(opened, bars64) * up)
            columns["low"] = np.where(flat, bars64, np.minimum(opened, bars64) * down)
        return {name: columns[name] for name in self.feature_index}


def _days(c: SyntheticConfig, stocks: _Stocks, shocks: _Shocks, day_bars: _DayBars,
          writer: _DayWriter) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Day by day: the day's return (shocks + mu from the bars of DELAY days before), its bars (as stored,
    float32), and the components of the day from them. Returns the (C, D, S) components, the (D, S) drift
    mu and the (D, S) latent returns."""
    D, S = c.days, c.stocks
    weights = np.array([c.alpha(name) for name in COMPONENTS])
    decays = np.array([c.decay(name) for name in COMPONENTS])[:, None]
    tracker = SignalTracker(stocks.sectors, c)
    components = np.empty((len(COMPONENTS), D, S))
    state = np.zeros((len(COMPONENTS), S))
    drift = np.zeros((D, S))
    returns = np.empty((D, S))
    log_p = stocks.log_p0.copy()
    close_before = np.full(S, np.nan)  # the previous day's stored close (NaN: not listed)
    for t in range(D):
        ret = drift[t] + shocks.total[t]
        returns[t] = ret
        latent_prev = np.exp(log_p)
        log_p = log_p + ret
        bars, vol, close = day_bars.make(t, ret, log_p, latent_prev, close_before, writer.day(t))
        g = tracker.update(bars, vol, day_bars.calendar.traded[t])
        components[:, t] = g
        state = g + decays * state
        if t + DELAY < D:
            mu = np.zeros(S)
            for i in range(len(COMPONENTS)):
                mu += weights[i] * state[i]
            drift[t + DELAY] = mu
        close_before = close
    return components, drift, returns


def _panel(c: SyntheticConfig, values: np.ndarray, calendar: _Calendar) -> BarPanel:
    """The panel a user sees, with the notes that describe how it was made."""
    S, D, P = c.stocks, c.days, c.bars_per_day
    width = max(3, len(str(S - 1)))
    symbols = [f"S{i:0{width}d}" for i in range(S)]
    dates = np.busday_offset(np.datetime64(c.start, "D"), np.arange(D), roll="forward")
    n_suspended = int(calendar.suspended.sum())
    return BarPanel(
        symbols=symbols, dates=dates, features=list(c.features), bars_per_day=P,
        values=values, traded=calendar.traded.T.copy(),
        source=f"synthetic (seed {c.seed}, {S} stocks, {D} days, {P} bars)",
        notes=[
            "synthetic market (studio.data.synthetic): Student-t GARCH returns, market and sector factors "
            "(sectors are contiguous symbol blocks), U-shaped intraday volume and volatility",
            "planted alpha, a function of the bars up to 2 days before: intraday (late-day return), volume "
            "(late-bar volume surprise x sign of the late return), daily (5-day reversal), sector (returns "
            "of the adjacent same-sector stocks); the oracle is SyntheticMarket.expected_label",
            "turnover = bar close x bar volume",
            "the last bar's close is the day's close; bar log returns sum to the day's log return",
            "suspended days: bars hold the previous close, volume and turnover 0, traded False; the move "
            "made while suspended shows in the first bar of the day trading resumes",
            "outside a symbol's listed span (late listing, early delisting) bars are NaN",
        ],
        counts={"suspended stock-days": n_suspended, "late listings": calendar.n_late,
                "delistings": calendar.n_delist},
    )


def generate(config: SyntheticConfig | None = None, out: np.ndarray | None = None, **overrides) -> SyntheticMarket:
    """Generate a synthetic market; ``overrides`` replace config fields (``generate(stocks=50)``).
    ``out``: an (S, D * P, F) float32 array to write the bars into (a memory-mapped file, for markets
    larger than memory: the bars are made a block of days at a time and never held whole); None: a new
    array in memory."""
    c = replace(config or SyntheticConfig(), **overrides)
    # one stream per kind of draw: each part's numbers do not depend on how much another part draws
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(c.seed).spawn(8)]
    g_static, g_list, g_susp, g_factor, g_firm, g_bars, g_volume, g_range = streams
    stocks = _stocks(g_static, c)
    calendar = _calendar(g_list, g_susp, c)
    shocks = _shocks(g_factor, g_firm, g_volume, c, stocks)
    writer = _DayWriter(c.stocks, c.days, c.bars_per_day, len(c.features), out)
    day_bars = _DayBars(c, stocks, calendar, shocks, g_bars, g_volume, g_range)
    components, drift, returns = _days(c, stocks, shocks, day_bars, writer)
    panel = _panel(c, writer.finish(), calendar)
    market = SyntheticMarket(config=c, panel=panel, sectors=stocks.sectors, listed=calendar.listed,
                             returns=returns, drift=drift, shocks=shocks.total, firm=shocks.firm,
                             volatility=shocks.sigma)
    market._cache["components"] = {name: components[i] for i, name in enumerate(COMPONENTS)}
    if c.days > 2:
        report = market.oracle_summary()
        panel.notes.append(f"oracle IC (lag 1, horizon 1; the ceiling for any model): {report['all']:.3f} on "
                           f"all dates, {report['test']:.3f} on the last 20%")
    return market


class _DayWriter:
    """Collects days of bars as (S, P, F) slabs in a block of days and writes each block into the
    (S, D * P, F) target in one go (S contiguous runs per block, not S per day)."""

    def __init__(self, s: int, d: int, p: int, f: int, out: np.ndarray | None,
                 block_bytes: int = 64 << 20) -> None:
        self.s, self.d, self.p, self.f = s, d, p, f
        if out is None:
            out = np.empty((s, d * p, f), dtype=np.float32)
        elif out.shape != (s, d * p, f) or out.dtype != np.float32:
            raise ValueError(f"out has shape {out.shape} {out.dtype}, the market needs {(s, d * p, f)} float32")
        self.out = out
        self.block = max(1, min(d, block_bytes // max(1, s * p * f * 4)))
        self.buffer = np.empty((s, self.block, p, f), dtype=np.float32)
        self.first = 0  # the block's first day

    def day(self, t: int) -> np.ndarray:
        if t - self.first >= self.block:
            self._flush(t)
        return self.buffer[:, t - self.first]

    def _flush(self, upto: int) -> None:
        n = upto - self.first
        if n > 0:
            self.out[:, self.first * self.p:upto * self.p, :] = self.buffer[:, :n].reshape(self.s, n * self.p, self.f)
            store.release(self.out)  # a file's written pages go to the kernel, not the process's memory
        self.first = upto

    def finish(self) -> np.ndarray:
        self._flush(self.d)
        if hasattr(self.out, "flush"):
            self.out.flush()
        return self.out


def config_dict(config: SyntheticConfig) -> dict:
    """The config as plain data (for run records)."""
    out = asdict(config)
    out["features"] = list(config.features)
    return out


#: the hidden (D, S) arrays a market keeps beside its bars when it is stored on disk
_HIDDEN = ("listed", "returns", "drift", "shocks", "firm", "volatility")


def _code_digest() -> str:
    """A digest of the generator's code: an edited generator never reads markets an older one stored."""
    import hashlib
    from pathlib import Path

    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def generate_on_disk(config: SyntheticConfig | None = None, folder=None, **overrides) -> SyntheticMarket:
    """The market of ``config`` with its bars in a memory-mapped file (for markets larger than memory):
    made once, a block of days at a time, into ``folder`` (default: the cache, ``synthetic/``) under a
    name keyed by the config and the generator's code, and read back (mapped, not loaded) next time.
    The same bits as ``generate``. A stored market whose files are not whole is a one-line DataError."""
    import hashlib
    import json
    from pathlib import Path

    from studio.data.cache import cache_root
    from studio.data.panel import DataError

    c = replace(config or SyntheticConfig(), **overrides)
    key = hashlib.sha256(json.dumps({"config": config_dict(c), "code": _code_digest()}, sort_keys=True)
                         .encode()).hexdigest()[:24]
    home = Path(folder) if folder is not None else cache_root() / "synthetic"
    where = home / key
    bars_file, hidden_file, meta_file = where / "bars.npy", where / "hidden.npz", where / "market.json"
    shape = (c.stocks, c.days * c.bars_per_day, len(c.features))
    if os.path.lexists(meta_file):
        from studio.core.owned_dir import owned_file, read_json

        try:  # inside the cache only: a link or a special file planted there is refused (ForeignEntry)
            meta = read_json(meta_file, what="cache")
            with owned_file(hidden_file, what="cache") as fh, np.load(fh, allow_pickle=False) as hidden:
                arrays = {name: hidden[name] for name in (*_HIDDEN, "sectors", "traded", *COMPONENTS)}
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{where}: a stored synthetic market that cannot be read ({exc}); delete the "
                            "folder and it is made again") from None
        values = store.open_array(bars_file, shape, np.float32)
        panel = BarPanel(
            symbols=list(meta["symbols"]), dates=np.array(meta["dates"], dtype="datetime64[D]"),
            features=list(c.features), bars_per_day=c.bars_per_day, values=values,
            traded=arrays["traded"], source=str(meta["source"]), notes=[str(n) for n in meta["notes"]],
            counts={str(k): int(v) for k, v in meta["counts"].items()})
        market = SyntheticMarket(config=c, panel=panel, sectors=arrays["sectors"],
                                 **{name: arrays[name] for name in _HIDDEN})
        market._cache["components"] = {name: arrays[name] for name in COMPONENTS}
        return market
    where.mkdir(parents=True, exist_ok=True)
    target = store.create(bars_file, shape)
    market = generate(c, out=target)
    components = market.components()
    from studio.core.owned_dir import owned_writer, write_owned

    with owned_writer(hidden_file, binary=True, what="cache") as fh:  # never through a link planted there
        np.savez(fh, sectors=market.sectors, traded=market.panel.traded,
                 **{name: getattr(market, name) for name in _HIDDEN}, **components)
    final = store.finish(target)
    panel = market.panel
    # the description last: a folder without it is made again
    write_owned(meta_file, json.dumps({
        "symbols": panel.symbols, "dates": [str(d) for d in panel.dates.astype("datetime64[D]")],
        "source": panel.source, "notes": panel.notes, "counts": panel.counts}), "cache")
    panel.values = store.open_array(final, shape, np.float32)
    return market
