"""The synthetic market: determinism, panel layout and policies, stylised facts, the planted alpha and
its oracle (no look-ahead, calibrated, IC in the intended range)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from studio.data.labels import panel_labels
from studio.data.synthetic import (
    COMPONENTS,
    SyntheticConfig,
    alpha_impulses,
    expected_log_label,
    generate,
    neighbour_mean,
)
from studio.metrics import daily_ic

SMALL = SyntheticConfig(stocks=30, days=40, bars_per_day=8, sectors=4, seed=3, suspension_rate=0.02,
                        late_listings=0.1, delistings=0.1)


@pytest.fixture(scope="module")
def market():
    """The default size (the data of demos and `make run`)."""
    return generate()


@pytest.fixture(scope="module")
def small():
    return generate(SMALL)


def daily_log_close(panel) -> np.ndarray:
    """(D, S) log of the last bar's close (the frozen close on suspended days; NaN when not listed)."""
    return np.log(panel.day_bars("close")[:, :, -1].astype(np.float64)).T


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
    for name in ("returns", "drift", "shocks", "firm", "informed", "volatility", "listed"):
        assert getattr(market, name).shape == (d, s)


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


@pytest.mark.parametrize("bad", [dict(stocks=1), dict(days=1), dict(bars_per_day=0), dict(sectors=0),
                                 dict(sectors=99, stocks=10), dict(features=("volume",)),
                                 dict(features=("close", "vwap")), dict(tail_df=2.0),
                                 dict(garch_alpha=0.2, garch_beta=0.85), dict(informed_share=1.0),
                                 dict(late_bars=30), dict(half_life_daily=0.0)])
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


# ---- the oracle ------------------------------------------------------------------------------------------
def test_expected_label_is_the_drift_the_generator_used(market):
    raw = expected_log_label(market.impulses(), market.config, lag=0, horizon=1)
    assert np.allclose(raw[:-1], market.drift[1:], rtol=0, atol=1e-15)
    assert np.allclose(market.returns - market.drift, market.shocks, atol=1e-15)
    # horizon h = sum of the days' drifts expected at d: lag 1, horizon 3 from the decayed states
    c = market.config
    three = expected_log_label(market.impulses(), c, lag=1, horizon=3)
    parts = sum(expected_log_label(market.impulses(), c, lag=k, horizon=1) for k in (1, 2, 3))
    assert np.allclose(three, parts, atol=1e-15)


def test_expected_label_is_calibrated(market):
    """Regressing the realised log label on the expected one gives a slope near 1 (no missing or extra
    alpha), for lag 0, 1 and 2."""
    for lag in (0, 1, 2):
        expected = market.expected_label(lag, 1)
        realised = np.log1p(panel_labels(market.panel, lag, 1))
        ok = np.isfinite(expected) & np.isfinite(realised)
        e = expected[ok] - expected[ok].mean()
        y = realised[ok] - realised[ok].mean()
        slope = (e * y).sum() / (e * e).sum()
        assert 0.8 < slope < 1.2, (lag, slope)


@pytest.mark.parametrize("day", [15, 200, 398])
def test_expected_label_has_no_look_ahead(market, day):
    """Row d of the expected label comes from the hidden states of days <= d only: computing it from a
    market cut after day d, or from one whose later days were replaced by noise, gives the same rows."""
    m, c = market, market.config
    cut = slice(0, day + 1)
    truncated = alpha_impulses(m.shocks[cut], m.firm[cut], m.informed[cut], m.listed[cut], m.sectors, c)
    rng = np.random.default_rng(99)

    def scrambled(x):
        x = x.copy()
        x[day + 1:] = rng.permuted(x[day + 1:]) * 3.0 + rng.standard_normal(x[day + 1:].shape) * 0.05
        return x

    listed = m.listed.copy()
    listed[day + 1:] = rng.random(listed[day + 1:].shape) < 0.5
    perturbed = dataclasses.replace(m, shocks=scrambled(m.shocks), firm=scrambled(m.firm),
                                    informed=scrambled(m.informed), listed=listed)
    for lag, horizon in [(0, 1), (1, 1), (2, 1), (1, 5)]:
        full = expected_log_label(m.impulses(), c, lag, horizon)
        assert np.array_equal(expected_log_label(truncated, c, lag, horizon), full[cut])
        assert np.array_equal(perturbed.expected_label(lag, horizon)[cut],
                              m.expected_label(lag, horizon)[cut], equal_nan=True)
    # the perturbation really changed the future
    assert not np.array_equal(expected_log_label(perturbed.impulses(), c)[day + 1:],
                              expected_log_label(m.impulses(), c)[day + 1:])


def test_expected_label_is_nan_where_the_label_is(market):
    for lag, horizon in [(0, 1), (1, 1), (2, 3)]:
        labels = panel_labels(market.panel, lag, horizon)
        expected = market.expected_label(lag, horizon)
        assert np.array_equal(np.isnan(expected), np.isnan(labels))


def test_oracle_ic_is_in_the_intended_range(market):
    days = market.panel.n_days
    test_dates = np.arange(round(days * 0.8), days)
    ic = market.oracle_ic(test_dates)
    assert 0.10 < ic < 0.20
    assert 0.10 < market.oracle_ic() < 0.20
    manual = daily_ic(market.expected_label(), panel_labels(market.panel))[test_dates]
    assert ic == pytest.approx(np.nanmean(manual))
    by_lag = [market.oracle_ic(None, lag) for lag in (0, 1, 2)]
    assert by_lag[0] > by_lag[1] > by_lag[2] > 0.05
    assert market.oracle_ic(None, 1, 5) > 0.1
    assert any(n.startswith("oracle IC (lag 1, horizon 1") and f"{ic:.3f}" in n for n in market.panel.notes)
    summary = market.oracle_summary()
    assert summary["test"] == pytest.approx(ic) and set(summary) == {"all", "test", *COMPONENTS}
    assert np.isnan(generate(SMALL, signal_scale=0.0).oracle_ic())  # nothing planted, nothing to find


def hand_features(market) -> dict[str, np.ndarray]:
    """One simple observable feature per planted component, (D, S) at each day's close."""
    p, k = market.panel, market.config.n_late_bars
    close = np.log(p.day_bars("close").astype(np.float64))
    day = daily_log_close(p)
    r = np.full(day.shape, np.nan)
    r[1:] = day[1:] - day[:-1]
    # intraday: the late-day move beyond its share of the day's move
    late = (close[:, :, -1] - close[:, :, -1 - k]).T - 0.25 * r
    # daily: reversal of the last 10 days' return
    reversal = np.full(day.shape, np.nan)
    reversal[10:] = -(day[10:] - day[:-10])
    # sector: the adjacent same-sector stocks' return beyond the sector's
    listed = np.isfinite(r)
    known = np.nan_to_num(r)
    sector_mean = np.zeros_like(r)
    for j in np.unique(market.sectors):
        members = market.sectors == j
        count = np.maximum(listed[:, members].sum(axis=1, keepdims=True), 1)
        sector_mean[:, members] = known[:, members].sum(axis=1, keepdims=True) / count
    neighbours = neighbour_mean(known, listed, market.sectors) - sector_mean
    return {"intraday": late, "daily": reversal, "sector": neighbours}


def test_each_planted_component_carries_signal(market):
    """A hand-made feature per component predicts the label (lag 1); in a market without that component
    (same seed, the component's alpha set to 0) it does not, or much less."""
    labels = market.labels(1, 1)
    features = hand_features(market)
    for name in COMPONENTS:
        ic, t = mean_ic(features[name], labels)
        assert ic > 0.02 and t > 4, (name, ic, t)
        assert market.oracle_ic(None, 1, 1, name) > 0.05
        for lag in (0, 2):
            assert market.oracle_ic(None, lag, 1, name) > 0.02
        without = generate(market.config, **{f"alpha_{name}": 0.0})
        ic_without, _ = mean_ic(hand_features(without)[name], without.labels(1, 1))
        assert ic_without < ic / 2, (name, ic, ic_without)
