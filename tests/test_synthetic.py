"""The synthetic market: determinism, panel layout and policies, stylised facts, the planted alpha (a
function of the observable bars, recomputed here independently) and its oracle (no look-ahead, exact,
calibrated, IC in the intended range)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from studio.data.labels import panel_labels
from studio.data.synthetic import (
    COMPONENTS,
    SyntheticConfig,
    alpha_states,
    expected_log_label,
    generate,
    observable_components,
)
from studio.metrics import daily_ic

SMALL = SyntheticConfig(stocks=30, days=40, bars_per_day=8, sectors=4, seed=3, suspension_rate=0.02,
                        late_listings=0.1, delistings=0.1)
PER_STOCK = ("intraday", "volume", "daily")


@pytest.fixture(scope="module")
def market():
    """The default size (the data of demos and `make run`)."""
    return generate()


@pytest.fixture(scope="module")
def small():
    return generate(SMALL)


def daily_log_returns(panel) -> np.ndarray:
    """(D, S) log close-to-close return of traded days after a traded day, NaN elsewhere."""
    close = np.log(panel.daily_close())
    out = np.full(close.shape, np.nan)
    out[1:] = close[1:] - close[:-1]
    return out


def mean_ic(feature: np.ndarray, label: np.ndarray) -> tuple[float, float]:
    """Mean daily IC and its t statistic."""
    ic = daily_ic(np.where(np.isfinite(label), feature, np.nan), label)
    ic = ic[np.isfinite(ic)]
    return float(ic.mean()), float(ic.mean() / ic.std(ddof=1) * np.sqrt(len(ic)))


def kurtosis(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x ** 4).mean() / (x ** 2).mean() ** 2)


# ---- an independent, vectorised reading of the module docstring's components -----------------------------
def trailing_sum(x: np.ndarray, days: int, include_today: bool) -> np.ndarray:
    """(D, S) sum over the ``days`` days before each day (and the day itself, if include_today)."""
    c = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])
    end = np.arange(len(x)) + (1 if include_today else 0)
    return c[end] - c[np.maximum(end - days, 0)]


def standardise(x: np.ndarray, ok: np.ndarray, clip: float) -> np.ndarray:
    """Per day (row): robust z-score over ``ok``, (x - median) / (1.4826 MAD), clipped; 0 elsewhere."""
    out = np.zeros(x.shape)
    for d in range(len(x)):
        v = x[d, ok[d]]
        if len(v) >= 2:
            scale = 1.4826 * np.median(np.abs(v - np.median(v)))
            if scale > 0:
                out[d, ok[d]] = np.clip((v - np.median(v)) / scale, -clip, clip)
    return out


def raw_components(panel, sectors: np.ndarray, config: SyntheticConfig) -> dict[str, tuple]:
    """Each component before standardisation, (value, available) as (D, S), from the panel only."""
    k = config.n_late_bars
    log_close = np.log(panel.day_bars("close").astype(np.float64)).transpose(1, 0, 2)  # (D, S, P)
    volume = panel.day_bars("volume").astype(np.float64).transpose(1, 0, 2)
    traded = panel.traded.T
    day = log_close[:, :, -1]
    prev = np.full(day.shape, np.nan)
    prev[1:] = day[:-1]
    has_return = traded & np.isfinite(prev)
    r = np.where(has_return, day - prev, 0.0)
    late = np.where(traded, day - log_close[:, :, -1 - k], 0.0)
    late_volume = np.where(traded, volume[:, :, -k:].sum(axis=-1), 0.0)
    seen = trailing_sum(traded.astype(float), config.volume_days, include_today=False)
    mean = trailing_sum(late_volume, config.volume_days, include_today=False) / np.maximum(seen, 1)
    ok_volume = traded & (seen >= min(5, config.volume_days))
    with np.errstate(invalid="ignore", divide="ignore"):
        surprise = np.where(ok_volume, np.log(late_volume / mean), 0.0) * np.sign(late)
    reversal = -trailing_sum(r, config.reversal_days, include_today=True)
    # adjacent same-sector neighbours with a return that day
    s = len(sectors)
    total, count = np.zeros(r.shape), np.zeros(r.shape)
    for j in range(s):
        for i in (j - 1, j + 1):
            if 0 <= i < s and sectors[i] == sectors[j]:
                total[:, j] += np.where(has_return[:, i], r[:, i], 0.0)
                count[:, j] += has_return[:, i]
    neighbours = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return {"intraday": (late, traded), "volume": (surprise, ok_volume), "daily": (reversal, has_return),
            "sector": (neighbours, traded & (count > 0))}


# ---- determinism, sizes, layout ---------------------------------------------------------------------------
def test_same_seed_same_market_other_seed_differs(small):
    again = generate(SMALL)
    assert np.array_equal(small.panel.values, again.panel.values, equal_nan=True)
    assert np.array_equal(small.panel.traded, again.panel.traded)
    assert np.array_equal(small.expected_label(), again.expected_label(), equal_nan=True)
    assert small.panel.counts == again.panel.counts and small.panel.notes == again.panel.notes
    other = generate(SMALL, seed=4)
    both = np.isfinite(small.panel.values) & np.isfinite(other.panel.values)
    assert both.mean() > 0.5
    assert not np.allclose(small.panel.values[both], other.panel.values[both])


def test_shapes_dtypes_and_panel_fields(market):
    c, p = market.config, market.panel
    s, d, bars = c.stocks, c.days, c.bars_per_day
    assert (s, d, bars) == (240, 400, 24)
    assert p.values.dtype == np.float32 and p.values.shape == (s, d * bars, 3)
    assert p.traded.dtype == bool and p.traded.shape == (s, d)
    assert p.features == ["close", "volume", "turnover"]
    assert p.symbols == sorted(p.symbols) and p.symbols[0] == "S000" and p.symbols[-1] == "S239"
    assert p.dates.dtype == np.dtype("datetime64[D]") and p.dates[0] == np.datetime64("2020-01-02")
    assert np.all(np.is_busday(p.dates)) and np.all(np.diff(p.dates) > np.timedelta64(0, "D"))
    assert p.source == "synthetic (seed 0, 240 stocks, 400 days, 24 bars)"
    assert set(p.counts) == {"suspended stock-days", "late listings", "delistings"}
    assert any("turnover = bar close x bar volume" in n for n in p.notes)
    assert market.sectors.shape == (s,) and np.all(np.diff(market.sectors) >= 0)  # contiguous blocks
    assert len(np.unique(market.sectors)) == c.sectors
    for name in ("returns", "drift", "shocks", "firm", "volatility", "listed"):
        assert getattr(market, name).shape == (d, s)
    assert set(market.components()) == set(COMPONENTS) == set(market.states())
    assert all(x.shape == (d, s) for x in market.components().values())


def test_sizes_and_features_are_configurable():
    config = dataclasses.replace(SMALL, stocks=7, days=12, bars_per_day=4, sectors=2,
                                 features=("open", "high", "low", "close", "volume", "turnover"))
    m = generate(config)
    p = m.panel
    assert p.values.shape == (7, 12 * 4, 6) and p.symbols[-1] == "S006"
    o, h, lo, cl = (p.day_bars(f).astype(np.float64) for f in ("open", "high", "low", "close"))
    ok = p.traded[..., None] & np.ones(4, bool)
    assert np.all(h[ok] >= np.maximum(o, cl)[ok] * (1 - 1e-6))
    assert np.all(lo[ok] <= np.minimum(o, cl)[ok] * (1 + 1e-6))
    assert np.allclose(o[:, :, 1:], cl[:, :, :-1], rtol=1e-6, equal_nan=True)  # a bar opens at the last close
    # extra features do not change the others (each part of the market has its own random stream)
    base = generate(dataclasses.replace(config, features=("close", "volume", "turnover")))
    for f in ("close", "volume", "turnover"):
        assert np.array_equal(p.day_bars(f), base.panel.day_bars(f), equal_nan=True)
    assert generate(stocks=12, days=30).panel.values.shape == (12, 30 * 24, 3)
    # a panel without volume shows the same market (the alpha reads the volume bars all the same)
    close_only = generate(dataclasses.replace(config, features=("close",)))
    assert np.array_equal(close_only.panel.day_bars("close"), p.day_bars("close"), equal_nan=True)
    assert np.array_equal(close_only.expected_label(), m.expected_label(), equal_nan=True)
    with pytest.raises(ValueError, match="no volume"):
        observable_components(close_only.panel, close_only.sectors, close_only.config)
    # one late bar: the late-day return is the last bar's
    assert generate(SMALL, late_bars=1).oracle_ic() > 0


@pytest.mark.parametrize("bad", [dict(stocks=1), dict(days=1), dict(bars_per_day=0), dict(sectors=0),
                                 dict(sectors=99, stocks=10), dict(features=("volume",)),
                                 dict(features=("close", "volume", "vwap")), dict(tail_df=2.0),
                                 dict(garch_alpha=0.2, garch_beta=0.85), dict(late_bars=30),
                                 dict(half_life_daily=-1.0), dict(reversal_days=0), dict(volume_days=0),
                                 dict(clip=0.0)])
def test_invalid_configs_are_refused(bad):
    with pytest.raises(ValueError):
        SyntheticConfig(**bad)


# ---- bars, prices and the panel's policies ----------------------------------------------------------------
def test_daily_close_is_the_last_bar_and_bar_returns_sum_to_the_day(market):
    p = market.panel
    close = p.day_bars("close").astype(np.float64)  # (S, D, P)
    assert np.all(close[np.isfinite(close)] > 0)
    assert np.array_equal(p.daily_close(), np.where(p.traded.T, close[:, :, -1].T, np.nan), equal_nan=True)
    # bar log returns of day d (the first from day d-1's close) sum to the day's log return
    prev = np.concatenate([np.full((close.shape[0], 1), np.nan), close[:, :-1, -1]], axis=1)
    bar_returns = np.diff(np.log(np.concatenate([prev[..., None], close], axis=-1)), axis=-1)
    day_return = np.log(close[:, :, -1] / prev)
    ok = np.isfinite(day_return) & p.traded
    assert ok.sum() > 0.95 * ok.size
    assert np.allclose(bar_returns.sum(axis=-1)[ok], day_return[ok], atol=1e-9)
    # ... and the day's return is the generator's (float32 prices): after a suspension it includes the
    # moves made while suspended
    latent = np.cumsum(market.returns, axis=0).T
    last_traded = np.maximum.accumulate(np.where(p.traded, np.arange(p.n_days), 0), axis=1)
    prev_traded = np.concatenate([np.zeros((p.n_symbols, 1), int), last_traded[:, :-1]], axis=1)
    expected = latent - np.take_along_axis(latent, prev_traded, axis=1)
    assert np.allclose(day_return[ok], expected[ok], atol=2e-6)
    resumed = ok & ~np.concatenate([np.ones((p.n_symbols, 1), bool), p.traded[:, :-1]], axis=1)
    assert resumed.sum() > 10
    assert np.allclose(day_return[resumed], expected[resumed], atol=2e-6)


def test_turnover_is_close_times_volume(market):
    p = market.panel
    close, volume, turnover = (p.day_bars(f).astype(np.float64) for f in ("close", "volume", "turnover"))
    ok = np.isfinite(close)
    assert np.allclose(turnover[ok], close[ok] * volume[ok], rtol=1e-7, atol=0)
    assert np.all(volume[ok] >= 0) and np.array_equal(volume[ok], np.rint(volume[ok]))


def test_suspended_days_hold_the_previous_close_with_no_volume(market, small):
    for m in (market, small):
        p = m.panel
        close, volume, turnover = (p.day_bars(f) for f in ("close", "volume", "turnover"))
        listed = m.listed.T
        suspended = listed & ~p.traded
        assert suspended.sum() == p.counts["suspended stock-days"] > 0
        assert np.all(volume[suspended] == 0) and np.all(turnover[suspended] == 0)
        s_idx, d_idx = np.nonzero(suspended)
        assert np.all(d_idx > 0)
        flat = close[s_idx, d_idx]  # (n, P)
        assert np.all(flat == close[s_idx, d_idx - 1, -1][:, None])
        assert np.all(volume[p.traded] > 0)
        assert np.all(np.isnan(p.daily_close()[suspended.T]))


def test_bars_are_nan_outside_the_listed_span(market, small):
    for m in (market, small):
        p = m.panel
        known = ~np.isnan(p.values).any(axis=-1).reshape(p.n_symbols, p.n_days, p.bars_per_day)
        assert np.all(known == ~np.isnan(p.values).all(axis=-1).reshape(known.shape))  # all or nothing
        known = known.all(axis=-1)
        assert np.array_equal(known, m.listed.T)
        first = known.argmax(axis=1)
        last = p.n_days - 1 - known[:, ::-1].argmax(axis=1)
        span = (np.arange(p.n_days) >= first[:, None]) & (np.arange(p.n_days) <= last[:, None])
        assert np.array_equal(known, span)  # one contiguous span per stock
        rows = np.arange(p.n_symbols)
        assert np.all(p.traded[rows, first]) and np.all(p.traded[rows, last])
        assert not np.any(p.traded & ~known)
        assert p.counts["late listings"] == int((first > 0).sum()) > 0
        assert p.counts["delistings"] == int((last < p.n_days - 1).sum()) > 0


# ---- stylised facts ----------------------------------------------------------------------------------------
def test_fat_tails_and_volatility_clustering(market):
    r = daily_log_returns(market.panel)[1:]
    standardised = [(x - x.mean()) / x.std() for x in (col[np.isfinite(col)] for col in r.T)]
    assert kurtosis(np.concatenate(standardised)) > 4.5
    assert np.median([kurtosis(x) for x in standardised]) > 3.8
    # |r| autocorrelation at lags 1..5, pooled over stocks (market mean removed)
    a = np.abs(r - np.nanmean(r, axis=1, keepdims=True))
    a = (a - np.nanmean(a, axis=0)) / np.nanstd(a, axis=0)
    for lag in range(1, 6):
        pairs = a[lag:] * a[:-lag]
        pairs = pairs[np.isfinite(pairs)]
        acf = pairs.mean()
        assert acf > 0.03 and acf / (pairs.std() / np.sqrt(len(pairs))) > 5, (lag, acf)


def test_market_and_sector_factors(market):
    r = daily_log_returns(market.panel)[1:]
    r = np.where(np.isfinite(r), r, np.nanmean(r, axis=1, keepdims=True))
    corr = np.corrcoef(r.T)
    upper = np.triu_indices(len(corr), 1)
    same = (market.sectors[:, None] == market.sectors[None, :])[upper]
    pairs = corr[upper]
    assert pairs.mean() > 0.05 and np.mean(pairs > 0) > 0.8
    assert pairs[same].mean() > pairs[~same].mean() + 0.04
    # adjacent symbols are usually in one sector
    assert np.mean(market.sectors[1:] == market.sectors[:-1]) > 0.9


def test_u_shaped_intraday_volume_and_volatility(market):
    p = market.panel
    volume = p.day_bars("volume").astype(np.float64)
    traded = volume[p.traded]  # (n, P) bars of traded days
    profile = (traded / traded.sum(axis=-1, keepdims=True)).mean(axis=0)
    middle = profile[len(profile) // 2 - 2:len(profile) // 2 + 2].mean()
    assert profile[0] > 2 * middle and profile[-1] > 2 * middle
    close = np.log(p.day_bars("close").astype(np.float64))
    vol_profile = np.abs(np.diff(close, axis=-1))[p.traded].mean(axis=0)  # within-day bar moves
    middle = vol_profile[len(vol_profile) // 2 - 2:len(vol_profile) // 2 + 2].mean()
    assert vol_profile[0] > 1.2 * middle and vol_profile[-1] > 1.2 * middle


def test_volume_rises_with_absolute_return_and_volatility(market):
    p = market.panel
    close = np.log(p.day_bars("close").astype(np.float64))
    volume = p.day_bars("volume").astype(np.float64)
    move = np.abs(np.diff(close, axis=-1))
    vol = volume[..., 1:]
    per_stock = [np.corrcoef(np.log(vol[s][p.traded[s]].ravel()), move[s][p.traded[s]].ravel())[0, 1]
                 for s in range(p.n_symbols)]
    assert np.mean(per_stock) > 0.2 and np.mean(np.array(per_stock) > 0) > 0.95
    # days: log volume with |daily return| (each stock's own series)
    daily_volume = volume.sum(axis=-1).T
    r = np.abs(daily_log_returns(p))
    per_stock = []
    for s in range(p.n_symbols):
        ok = np.isfinite(r[:, s])  # traded, after a traded day: volume > 0
        per_stock.append(np.corrcoef(np.log(daily_volume[ok, s]), r[ok, s])[0, 1])
    assert np.mean(per_stock) > 0.2


# ---- the planted alpha: a function of the observable bars -------------------------------------------------
@pytest.mark.parametrize("which", ["default", "small"])
def test_components_are_what_the_docstring_says(market, small, which):
    """An independent, vectorised computation from the panel (per the module docstring) gives the
    components the generator used; recomputing them from the panel gives exactly the same numbers."""
    m = market if which == "default" else small
    c = m.config
    used = m.components()  # kept from the generation
    recomputed = observable_components(m.panel, m.sectors, c)
    raw = raw_components(m.panel, m.sectors, c)
    for name in COMPONENTS:
        assert np.array_equal(recomputed[name], used[name]), name
        value, ok = raw[name]
        assert np.allclose(standardise(value, ok, c.clip), used[name], rtol=0, atol=1e-9), name
        assert np.all(used[name][~ok] == 0)
        assert np.abs(used[name]).max() <= c.clip
    if which == "default":
        for name in COMPONENTS:
            _, ok = raw[name]
            assert ok[30:].mean() > 0.9, name  # available for most stocks most days
            z = used[name][30:][ok[30:]]
            assert abs(np.median(z)) < 0.01 and 0.66 < np.median(np.abs(z)) < 0.69, name  # MAD 1 / 1.4826
            assert np.mean(np.abs(z) == c.clip) < 0.06, name  # a few clipped


def test_drift_is_the_alpha_of_the_bars_two_days_before(market):
    """mu[t] = sum_c alpha_c * A_c[t - 2], A_c the decayed components, to the last bit; and the returns
    are mu + shocks."""
    c = market.config
    states = alpha_states(market.components(), c)
    mu = np.zeros(market.drift.shape)
    for name in COMPONENTS:
        mu[2:] += c.alpha(name) * states[name][:-2]
    assert np.array_equal(mu, market.drift)
    assert np.all(market.drift[:2] == 0)
    assert np.allclose(market.returns - market.drift, market.shocks, rtol=0, atol=1e-15)
    for name in COMPONENTS:  # the decay: A = g + w A[previous day]
        w = c.decay(name)
        assert w == pytest.approx(0.5 ** (1 / getattr(c, f"half_life_{name}")))
        assert np.allclose(states[name][1:], market.components()[name][1:] + w * states[name][:-1], atol=0)
    # the shocks carry no alpha: they are uncorrelated with the expected return
    ok = np.isfinite(market.drift[30:]) & market.listed[30:]
    assert abs(np.corrcoef(market.drift[30:][ok], market.shocks[30:][ok])[0, 1]) < 0.02
    # per-stock components carry about 80% of the variance of the alpha, the sector one about 20%
    per_stock = sum(c.alpha(n) * states[n] for n in PER_STOCK)[30:]
    sector = (c.alpha("sector") * states["sector"])[30:]
    share = per_stock.var() / (per_stock.var() + sector.var())
    assert 0.72 < share < 0.88, share
    # a half life of 0: no persistence
    flat = generate(SMALL, half_life_intraday=0.0, half_life_volume=0.0, half_life_daily=0.0,
                    half_life_sector=0.0)
    assert np.array_equal(flat.states()["daily"], flat.components()["daily"])
    assert np.all(expected_log_label(flat.states(), flat.config, lag=2) == 0)


def test_the_oracle_is_exact_where_the_label_is_known(market):
    """lag + horizon <= 2: the oracle is the sum of the label's days' mu, exactly."""
    d = market.drift
    for lag, horizon, days in [(0, 1, (1,)), (1, 1, (2,)), (0, 2, (1, 2))]:
        expected = expected_log_label(market.states(), market.config, lag, horizon)
        truth = sum(np.concatenate([d[k:], np.zeros((k, d.shape[1]))]) for k in days)
        rows = len(d) - lag - horizon
        assert np.allclose(expected[:rows], truth[:rows], rtol=0, atol=1e-15), (lag, horizon)
    # longer: the known part, w ** n * A[d] for the days whose alpha comes from later bars
    c, states = market.config, market.states()
    two = expected_log_label(states, c, lag=1, horizon=3)
    parts = sum(expected_log_label(states, c, lag=k, horizon=1) for k in (1, 2, 3))
    assert np.allclose(two, parts, rtol=0, atol=1e-15)
    for name in COMPONENTS:
        lag2 = expected_log_label(states, c, lag=2, components=name)
        assert np.allclose(lag2, c.alpha(name) * c.decay(name) * states[name], rtol=0, atol=1e-15)


def test_expected_label_is_calibrated(market):
    """Regressing the realised log label on the oracle gives a slope near 1 at lag 0 and 1 (where it is
    the exact expectation); at lag 2, where it is only the known part, the slope is positive."""
    for lag, low, high in [(0, 0.85, 1.15), (1, 0.85, 1.15), (2, 0.5, 3.0)]:
        expected = market.expected_label(lag, 1)
        realised = np.log1p(panel_labels(market.panel, lag, 1))
        ok = np.isfinite(expected) & np.isfinite(realised)
        e = expected[ok] - expected[ok].mean()
        y = realised[ok] - realised[ok].mean()
        slope = (e * y).sum() / (e * e).sum()
        assert low < slope < high, (lag, slope)


@pytest.mark.parametrize("day", [15, 200, 397])
def test_expected_label_has_no_look_ahead(market, day):
    """Row d of the oracle comes from the bars of days <= d only: recomputed from a panel whose later days
    were scrambled (prices, volumes, traded flags), rows <= d are identical."""
    m, c = market, market.config
    p = m.panel
    rng = np.random.default_rng(99)
    values = p.values.copy().reshape(p.n_symbols, p.n_days, p.bars_per_day, -1)
    later = values[:, day + 1:]
    values[:, day + 1:] = rng.permuted(later, axis=0) * rng.uniform(0.5, 2.0, later.shape).astype(np.float32)
    traded = p.traded.copy()
    traded[:, day + 1:] = rng.random(traded[:, day + 1:].shape) < 0.7
    perturbed = dataclasses.replace(p, values=values.reshape(p.values.shape), traded=traded)
    components = observable_components(perturbed, m.sectors, c)
    states = alpha_states(components, c)
    cut = slice(0, day + 1)
    for name in COMPONENTS:
        assert np.array_equal(components[name][cut], m.components()[name][cut])
    for lag, horizon in [(0, 1), (1, 1), (2, 1), (1, 5)]:
        assert np.array_equal(expected_log_label(states, c, lag, horizon)[cut],
                              expected_log_label(m.states(), c, lag, horizon)[cut])
    # the perturbation really changed the future
    assert not np.array_equal(components["intraday"][day + 1:], m.components()["intraday"][day + 1:])


def test_expected_label_is_nan_where_the_label_is(market):
    for lag, horizon in [(0, 1), (1, 1), (2, 3)]:
        labels = panel_labels(market.panel, lag, horizon)
        expected = market.expected_label(lag, horizon)
        assert np.array_equal(np.isnan(expected), np.isnan(labels))


def test_oracle_ic_is_in_the_intended_range(market):
    days = market.panel.n_days
    test_dates = np.arange(round(days * 0.8), days)
    ic = market.oracle_ic(test_dates)
    assert 0.12 < ic < 0.19
    assert 0.12 < market.oracle_ic() < 0.19
    manual = daily_ic(market.expected_label(), panel_labels(market.panel))[test_dates]
    assert ic == pytest.approx(np.nanmean(manual))
    by_lag = [market.oracle_ic(None, lag) for lag in (0, 1, 2)]
    # lag 0 and 1 are both exact (the same pairs, one day apart); lag 2 knows only part of the alpha
    assert by_lag[0] == pytest.approx(by_lag[1], abs=0.005)
    assert by_lag[1] > by_lag[2] > 0.04
    assert market.oracle_ic(None, 1, 5) > 0.05
    assert any(n.startswith("oracle IC (lag 1, horizon 1") and f"{ic:.3f}" in n for n in market.panel.notes)
    summary = market.oracle_summary()
    assert summary["test"] == pytest.approx(ic) and set(summary) == {"all", "test", *COMPONENTS}
    # the default graph sees one stock at a time: its ceiling is the per-stock part
    per_stock = market.oracle_ic(None, 1, 1, PER_STOCK)
    assert 0.8 * summary["all"] < per_stock < summary["all"]
    assert np.isnan(generate(SMALL, signal_scale=0.0).oracle_ic())  # nothing planted, nothing to find


def hand_features(market) -> dict[str, np.ndarray]:
    """One simple observable feature per planted component, (D, S) at each day's close (not standardised,
    not decayed)."""
    raw = raw_components(market.panel, market.sectors, market.config)
    out = {name: np.where(ok, value, np.nan) for name, (value, ok) in raw.items()}
    # the sector feature: the neighbours' return beyond the sector's mean (the common factor removed)
    r = daily_log_returns(market.panel)
    known = np.isfinite(r)
    sector_mean = np.zeros_like(r)
    for j in np.unique(market.sectors):
        members = market.sectors == j
        count = np.maximum(known[:, members].sum(axis=1, keepdims=True), 1)
        sector_mean[:, members] = np.where(known, r, 0.0)[:, members].sum(axis=1, keepdims=True) / count
    out["sector"] = out["sector"] - sector_mean
    return out


def test_each_planted_component_carries_signal(market):
    """A hand-made feature per component predicts the label (lag 1); in a market without that component
    (same seed, the component's alpha set to 0) it predicts much less."""
    labels = market.labels(1, 1)
    features = hand_features(market)
    for name in COMPONENTS:
        ic, t = mean_ic(features[name], labels)
        assert ic > 0.02 and t > 4, (name, ic, t)
        assert market.oracle_ic(None, 1, 1, name) > 0.02, name
        assert market.oracle_ic(None, 0, 1, name) > 0.02, name
        # w * A[d] is a part of the alpha; the volume component's small default alpha (0.0006) leaves that
        # part at noise level, so it is checked where the component is as strong as the others
        strong = market if name != "volume" else generate(market.config, alpha_volume=0.0018)
        assert strong.oracle_ic(None, 2, 1, name) > 0.003, name
        without = generate(market.config, **{f"alpha_{name}": 0.0})
        assert np.all(without.drift == sum(without.config.alpha(n) * np.concatenate(
            [np.zeros((2, without.config.stocks)), without.states()[n][:-2]]) for n in COMPONENTS))
        ic_without, _ = mean_ic(hand_features(without)[name], without.labels(1, 1))
        assert ic_without < ic - 0.02, (name, ic, ic_without)
