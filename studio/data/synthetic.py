"""The embedded synthetic market: the default data of demos, tests and ``make run``.

``generate(SyntheticConfig(...))`` returns a :class:`SyntheticMarket`: a :class:`BarPanel` of intraday
bars, deterministic from the seed, plus the generator's hidden states, so that the true expected label
(the *oracle*) is known and a model's IC can be read against the best IC any model could reach.

Returns (daily, in log): for stock s on day t

    r[t, s] = drift[t, s] + beta_s * market[t] + gamma_s * sector[t, sector(s)] + firm[t, s]

- ``market`` and ``sector`` are factors with Student-t innovations; the market's volatility follows a
  GARCH(1, 1) and the sector factors' volatility moves with it. Sectors are contiguous blocks of
  symbols (``S000``, ``S001``, ... in order), so adjacent symbols are usually related stocks.
- ``firm`` is the stock's own shock: Student-t noise scaled by a per-stock GARCH(1, 1) volatility
  (fat tails, volatility clustering), part of it *informed flow* (``informed``, below).
- ``drift`` is the planted alpha, the only predictable part (the factor and firm shocks have mean
  zero given the past).

Planted alpha: three *impulses* are computed at each day's close from that day's shocks only; each
shifts the expected return of the following days with a geometric decay (``half_life_*`` days):

- ``intraday``: informed flow. A share of the firm shock (``informed``) arrives in the last
  ``late_bars`` bars of the day with extra volume; the price continues in its direction on the next
  days (``alpha_intraday`` x informed). Seen by a model as the late-day return, louder when volume is
  unusually high at the end of the day: a pattern inside the last day's bars.
- ``daily``: the uninformed part of the day's move (shock - informed) reverts over the next days
  (``-alpha_daily`` x it). With a half-life of 3 days the expected return depends on the returns of the
  last several days: a day-level pattern of the window ("daily view").
- ``sector``: lead-lag between related stocks. A stock follows its sector neighbours' (the adjacent
  symbols of the same sector) firm shocks of the day (``alpha_sector`` x their mean), so convolutions
  across adjacent stocks can help.

With ``A_c[d] = a_c[d] + w_c * A_c[d - 1]`` (``a_c`` the impulse of component c on day d, ``w_c =
0.5 ** (1 / half_life_c)``), ``drift[t] = sum_c A_c[t - 1]``. Future impulses have mean zero given
day d's close, so the conditional expectation at day d's close of the label's log return
``log(1 + label)`` (lag L, horizon h: the return over days d+L+1 .. d+L+h) is exactly

    expected_label[d] = sum_c A_c[d] * (w_c ** L + ... + w_c ** (L + h - 1))

i.e. the alpha of the impulses of days <= d that lands in the label's days, and nothing after day d
(:func:`expected_log_label` computes it from the hidden arrays of days <= d only). This is in log-return
units; E[label] itself would add a convexity term ~sigma^2 / 2 that carries no information (and is
infinite for Student-t log returns), so the oracle is the expected log return.

Intraday bars: the day's log return is split over ``bars_per_day`` bars by a Brownian bridge with a
U-shaped volatility profile (bar log returns sum to the day's log return; the last bar's close is the
day's close); the informed flow lands in the last bars. Volume is U-shaped over the day and rises with
|bar return|, with the stock's volatility and with informed flow; turnover = bar close x bar volume.

Missing data (the panel's policies): some stock-days are suspended (traded False; bars hold the
previous close, volume and turnover 0; the move made while suspended shows in the first bar of the day
trading resumes); a few stocks list late or delist early (bars NaN outside their listed span; their
first and last listed days trade).

Generation is vectorised over stocks and bars (a cheap loop over days for the GARCH and decay
recursions): well under a second for the default size. numpy only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from studio.data.labels import panel_labels
from studio.data.panel import BarPanel

FEATURES = ("open", "high", "low", "close", "volume", "turnover")
COMPONENTS = ("intraday", "daily", "sector")


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes, stylised facts and planted alpha of a synthetic market. Defaults: the default size, on which
    the default graph (10 days x 24 bars x close, volume, turnover) trains in about a minute on 2 CPU
    cores; the oracle IC (lag 1, horizon 1) is about 0.16 (0.12-0.18 on the last 20% of dates, by seed)."""

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

    # ---- planted alpha ---------------------------------------------------------------------------
    #: multiplies every alpha_* (0 gives a market with nothing to predict)
    signal_scale: float = 1.0
    alpha_intraday: float = 0.28
    alpha_daily: float = 0.10
    alpha_sector: float = 0.20
    half_life_intraday: float = 1.0
    half_life_daily: float = 3.0
    half_life_sector: float = 1.0
    #: share of the firm shock's variance that is informed flow
    informed_share: float = 0.25
    #: bars at the end of the day that carry the informed flow (None: bars_per_day // 6, at least 1)
    late_bars: int | None = None

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
        if not 0 <= self.informed_share < 1:
            raise ValueError(f"informed_share must be in [0, 1), gets {self.informed_share}")
        if min(self.half_life_intraday, self.half_life_daily, self.half_life_sector) <= 0:
            raise ValueError("half lives must be > 0")
        if self.late_bars is not None and not 1 <= self.late_bars <= self.bars_per_day:
            raise ValueError(f"late_bars must be between 1 and bars_per_day, gets {self.late_bars}")
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
        """Daily decay w_c of a component's alpha: 0.5 ** (1 / half life)."""
        return 0.5 ** (1.0 / getattr(self, f"half_life_{component}"))


@dataclass
class SyntheticMarket:
    """A generated market: the panel a user sees, and the hidden states behind it (all (D, S), day-major,
    float64) from which the oracle is computed."""

    config: SyntheticConfig
    panel: BarPanel
    #: (S,) sector of each stock (contiguous blocks in symbol order)
    sectors: np.ndarray
    #: (D, S) the stock is listed (between its first and last traded day)
    listed: np.ndarray
    #: (D, S) latent daily log return (on a suspended day: the move the stock would have made)
    returns: np.ndarray
    #: (D, S) the planted alpha in the day's return: its expectation given the previous close
    drift: np.ndarray
    #: (D, S) returns - drift: factor and firm shocks, mean zero given the past
    shocks: np.ndarray
    #: (D, S) the stock's own shock (informed flow included)
    firm: np.ndarray
    #: (D, S) informed flow (part of firm): arrives in the last bars, continues afterwards
    informed: np.ndarray
    #: (D, S) the stock's GARCH volatility of the day (of its own shock)
    volatility: np.ndarray
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # ---- the oracle --------------------------------------------------------------------------------
    def impulses(self) -> dict[str, np.ndarray]:
        """Each component's (D, S) impulse, computed at each day's close from that day's shocks."""
        if "impulses" not in self._cache:
            self._cache["impulses"] = alpha_impulses(self.shocks, self.firm, self.informed, self.listed,
                                                     self.sectors, self.config)
        return self._cache["impulses"]

    def expected_label(self, lag: int = 1, horizon: int = 1,
                       components: tuple[str, ...] | list[str] | str | None = None) -> np.ndarray:
        """(D, S) the generator's expectation of the label's log return given day d's close (all components,
        or those named); NaN where the label (studio.data.labels.panel_labels) is NaN."""
        expected = expected_log_label(self.impulses(), self.config, lag, horizon, components)
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
        perfect model, the ceiling for any model trained on this market."""
        from studio.metrics import daily_ic

        ic = daily_ic(self.expected_label(lag, horizon, components), self.labels(lag, horizon))
        if dates is not None:
            ic = ic[dates]
        ic = ic[np.isfinite(ic)]
        return float(ic.mean()) if len(ic) else math.nan

    def oracle_summary(self, lag: int = 1, horizon: int = 1, test_share: float = 0.2) -> dict[str, float]:
        """Oracle IC on all dates and on the last ``test_share`` of them, overall and per component."""
        tail = np.arange(self.panel.n_days) >= round(self.panel.n_days * (1 - test_share))
        out = {"all": self.oracle_ic(None, lag, horizon), "test": self.oracle_ic(tail, lag, horizon)}
        for c in COMPONENTS:
            out[c] = self.oracle_ic(None, lag, horizon, c)
        return out


# ---- the alpha (pure functions of the hidden arrays; causal by construction) -----------------------------
def sector_neighbours(sectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S,) bool: the stock has a left / right neighbour (adjacent symbol) in its own sector."""
    same = sectors[1:] == sectors[:-1]
    left = np.concatenate([[False], same])
    right = np.concatenate([same, [False]])
    return left, right


def neighbour_mean(x: np.ndarray, listed: np.ndarray, sectors: np.ndarray) -> np.ndarray:
    """(D, S) mean of ``x`` over each stock's listed same-sector adjacent neighbours (0 if none)."""
    left, right = sector_neighbours(sectors)
    total = np.zeros_like(x)
    count = np.zeros(x.shape)
    ok_left = left[1:] & listed[:, :-1]  # stock s >= 1 has its left neighbour s - 1
    ok_right = right[:-1] & listed[:, 1:]
    total[:, 1:] += np.where(ok_left, x[:, :-1], 0.0)
    count[:, 1:] += ok_left
    total[:, :-1] += np.where(ok_right, x[:, 1:], 0.0)
    count[:, :-1] += ok_right
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def alpha_impulses(shocks: np.ndarray, firm: np.ndarray, informed: np.ndarray, listed: np.ndarray,
                   sectors: np.ndarray, config: SyntheticConfig) -> dict[str, np.ndarray]:
    """Each component's impulse on each day, from that day's hidden shocks only (no mixing of days):

    intraday = alpha_intraday * informed;  daily = -alpha_daily * (shocks - informed);
    sector = alpha_sector * mean firm shock of the listed same-sector adjacent neighbours.
    Zero where the stock is not listed."""
    on = listed.astype(np.float64)
    return {
        "intraday": config.alpha("intraday") * informed * on,
        "daily": -config.alpha("daily") * (shocks - informed) * on,
        "sector": config.alpha("sector") * neighbour_mean(firm, listed, sectors) * on,
    }


def decayed(impulse: np.ndarray, w: float) -> np.ndarray:
    """A[d] = impulse[d] + w * A[d - 1] along the days (axis 0)."""
    out = np.empty_like(impulse)
    acc = np.zeros(impulse.shape[1:])
    for d in range(len(impulse)):
        acc = impulse[d] + w * acc
        out[d] = acc
    return out


def expected_log_label(impulses: dict[str, np.ndarray], config: SyntheticConfig, lag: int = 1,
                       horizon: int = 1, components: tuple[str, ...] | list[str] | str | None = None
                       ) -> np.ndarray:
    """(D, S) E[log(1 + label) | day d's close]: sum over components of A_c[d] * (w^lag + ... +
    w^(lag + horizon - 1)). Row d uses the impulses of days <= d only. Not masked."""
    if lag < 0 or horizon < 1:
        raise ValueError(f"lag must be >= 0 and horizon >= 1, gets lag {lag}, horizon {horizon}")
    if components is None:
        components = COMPONENTS
    elif isinstance(components, str):
        components = (components,)
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown:
        raise ValueError(f"unknown alpha component {unknown[0]!r} ({', '.join(COMPONENTS)})")
    out = np.zeros(next(iter(impulses.values())).shape)
    for c in components:
        w = config.decay(c)
        weight = sum(w ** k for k in range(lag, lag + horizon))
        out += weight * decayed(impulses[c], w)
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


def generate(config: SyntheticConfig | None = None, **overrides) -> SyntheticMarket:
    """Generate a synthetic market; ``overrides`` replace config fields (``generate(stocks=50)``)."""
    c = replace(config or SyntheticConfig(), **overrides)
    S, D, P, K = c.stocks, c.days, c.bars_per_day, c.n_late_bars
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(c.seed).spawn(8)]
    g_static, g_list, g_susp, g_factor, g_firm, g_bars, g_volume, g_range = streams

    # ---- static: sectors, loadings, volatility levels, prices, volumes
    sectors = np.repeat(np.arange(c.sectors), _sector_sizes(g_static, S, c.sectors))
    beta = np.clip(g_static.normal(1.0, 0.3, S), 0.2, 2.0)
    gamma = np.clip(g_static.normal(1.0, 0.3, S), 0.2, 2.0)
    level = c.idio_vol * np.clip(np.exp(g_static.normal(0.0, 0.35, S)), 0.4, 2.5)
    log_p0 = g_static.normal(math.log(15.0), 0.7, S)
    base_volume = np.exp(g_static.normal(math.log(4e4), 0.8, S))

    # ---- listing spans and suspensions
    first, last, n_late, n_delist = _listing_spans(g_list, c)
    day = np.arange(D)[:, None]
    listed = (day >= first) & (day <= last)
    suspended = _suspensions(g_susp, c, listed)
    suspended[first, np.arange(S)] = False
    suspended[last, np.arange(S)] = False
    traded = listed & ~suspended

    # ---- factor and firm shocks, GARCH volatilities, volume level (one cheap loop over days)
    z_m = _student_t(g_factor, c.tail_df, D)
    z_f = _student_t(g_factor, c.tail_df, (D, c.sectors))
    z = _student_t(g_firm, c.tail_df, (D, S))
    q = g_firm.standard_normal((D, S)) * traded
    h_noise = g_volume.normal(0.0, 0.2, (D, S))
    k = math.sqrt(c.informed_share)
    e = math.sqrt(1.0 - c.informed_share) * z + k * q  # the firm shock, unit variance
    a, b = c.garch_alpha, c.garch_beta
    var_m = np.empty(D)
    var = np.empty((D, S))
    volume_level = np.empty((D, S))
    vm, v, h = c.market_vol ** 2, level ** 2, np.zeros(S)
    omega_m, omega = (1 - a - b) * c.market_vol ** 2, (1 - a - b) * level ** 2
    for t in range(D):
        var_m[t], var[t] = vm, v
        h = 0.8 * h + h_noise[t]
        volume_level[t] = h
        vm = omega_m + a * vm * z_m[t] ** 2 + b * vm
        v = omega + a * v * e[t] ** 2 + b * v
    sigma_m, sigma = np.sqrt(var_m), np.sqrt(var)
    market = sigma_m * z_m
    sigma_f = c.sector_vol * sigma_m / c.market_vol  # sector volatility moves with the market's
    sector_f = sigma_f[:, None] * z_f
    firm = sigma * e
    informed = sigma * k * q
    shocks = beta * market[:, None] + gamma * sector_f[:, sectors] + firm

    # ---- planted alpha -> drift -> latent returns and prices
    impulses = alpha_impulses(shocks, firm, informed, listed, sectors, c)
    state = sum(decayed(impulses[name], c.decay(name)) for name in COMPONENTS)
    drift = np.zeros((D, S))
    drift[1:] = state[:-1]
    returns = drift + shocks
    log_p = log_p0 + np.cumsum(returns, axis=0)
    log_prev = np.concatenate([log_p0[None], log_p[:-1]])
    # observed close: the latent close on traded days (stored as float32), frozen while suspended
    last_traded = np.maximum.accumulate(np.where(traded, day, 0), axis=0)
    close32 = np.exp(log_p).astype(np.float32)[last_traded, np.arange(S)]
    close32[~listed] = np.nan
    close = close32.astype(np.float64)
    listed_before = np.zeros_like(listed)
    listed_before[1:] = listed[:-1]
    prev = np.where(listed_before, np.r_[close[:1], close[:-1]], np.exp(log_prev))
    move = np.log(close) - np.log(prev)  # the observed day's log return (0 while suspended)

    # ---- intraday bars, (S, D, P): a Brownian bridge with the informed flow in the last K bars and the
    # move made while suspended (and float32 rounding) in the first bar
    share, vol_profile = _profiles(P)
    T = np.transpose
    sd = T(np.sqrt((beta * sigma_m[:, None]) ** 2 + (gamma * sigma_f[:, None]) ** 2 + var))  # daily shock vol
    rest = T(returns - informed)
    catch_up = T(np.where(traded, move - returns, 0.0))
    u = _student_t(g_bars, c.tail_df, (S, D, P)) * np.sqrt(share)
    x = share * rest[..., None] + sd[..., None] * (u - share * u.sum(axis=-1, keepdims=True))
    x[..., P - K:] += T(informed / K)[..., None]
    x[..., 0] += catch_up
    bar_close = np.exp(T(np.log(prev))[..., None] + np.cumsum(x, axis=-1))
    traded_t, listed_t = T(traded), T(listed)
    bar_close[..., -1] = T(close)
    bar_close = np.where(traded_t[..., None], bar_close, T(close)[..., None])  # flat while suspended

    # volume: U-shaped, rising with |bar return|, with volatility and with informed flow
    z_abs = np.abs(x) / (sd[..., None] * np.sqrt(share))
    volume = (base_volume[:, None, None] * vol_profile * np.exp(T(volume_level))[..., None]
              * T(sigma / level)[..., None] * (0.4 + 0.6 * np.minimum(z_abs, 8.0))
              * np.exp(g_volume.normal(-0.045, 0.3, (S, D, P))))
    volume[..., P - K:] *= 1.0 + 0.8 * (np.abs(T(q)) - math.sqrt(2.0 / math.pi))[..., None]  # mean 1
    volume = np.where(traded_t[..., None], np.maximum(np.rint(volume), 1.0), 0.0)

    stored_close = bar_close.astype(np.float32).astype(np.float64)
    columns = {"close": bar_close, "volume": volume, "turnover": stored_close * volume}
    if {"open", "high", "low"} & set(c.features):
        opened = np.concatenate([T(prev)[..., None], bar_close[..., :-1]], axis=-1)
        opened = np.where(traded_t[..., None], opened, bar_close)
        wiggle = sd[..., None] * np.sqrt(share) * 0.5
        up = np.exp(np.abs(g_range.standard_normal((S, D, P))) * wiggle)
        down = np.exp(-np.abs(g_range.standard_normal((S, D, P))) * wiggle)
        flat = ~traded_t[..., None]
        columns["open"] = opened
        columns["high"] = np.where(flat, bar_close, np.maximum(opened, bar_close) * up)
        columns["low"] = np.where(flat, bar_close, np.minimum(opened, bar_close) * down)
    values = np.empty((S, D, P, len(c.features)), dtype=np.float32)
    for i, name in enumerate(c.features):
        values[..., i] = columns[name]
    values[~listed_t] = np.nan

    width = max(3, len(str(S - 1)))
    symbols = [f"S{i:0{width}d}" for i in range(S)]
    dates = np.busday_offset(np.datetime64(c.start, "D"), np.arange(D), roll="forward")
    n_suspended = int(suspended.sum())
    panel = BarPanel(
        symbols=symbols, dates=dates, features=list(c.features), bars_per_day=P,
        values=values.reshape(S, D * P, len(c.features)), traded=traded_t.copy(),
        source=f"synthetic (seed {c.seed}, {S} stocks, {D} days, {P} bars)",
        notes=[
            "synthetic market (studio.data.synthetic): Student-t GARCH returns, market and sector factors "
            "(sectors are contiguous symbol blocks), U-shaped intraday volume and volatility",
            "planted alpha: intraday (late-day informed flow), daily (multi-day reversal), sector "
            "(lead-lag from adjacent same-sector stocks); the oracle is SyntheticMarket.expected_label",
            "turnover = bar close x bar volume",
            "the last bar's close is the day's close; bar log returns sum to the day's log return",
            "suspended days: bars hold the previous close, volume and turnover 0, traded False; the move "
            "made while suspended shows in the first bar of the day trading resumes",
            "outside a symbol's listed span (late listing, early delisting) bars are NaN",
        ],
        counts={"suspended stock-days": n_suspended, "late listings": n_late, "delistings": n_delist},
    )
    out = SyntheticMarket(config=c, panel=panel, sectors=sectors, listed=listed, returns=returns, drift=drift,
                          shocks=shocks, firm=firm, informed=informed, volatility=sigma)
    out._cache["impulses"] = impulses
    if D > 2:
        report = out.oracle_summary()
        panel.notes.append(f"oracle IC (lag 1, horizon 1; the ceiling for any model): {report['all']:.3f} on "
                           f"all dates, {report['test']:.3f} on the last 20%")
    return out


def config_dict(config: SyntheticConfig) -> dict:
    """The config as plain data (for run records)."""
    out = asdict(config)
    out["features"] = list(config.features)
    return out
