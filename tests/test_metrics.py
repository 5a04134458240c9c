"""Every metric against a straightforward pandas / scipy computation, on real daily closes from
../shared/data and on random data with ties and gaps."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from studio import metrics

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _real_panel() -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) as (dates, stocks): label = next-day close-to-close return (lag 1, horizon 1)
    of the US 5-minute set's regular-session daily closes; score = minus the 5-day return (reversal)."""
    closes = {}
    for path in sorted((DATA / "us_stocks_5min").glob("*_5min.csv.gz"))[:40]:
        bars = pd.read_csv(path, usecols=["datetime", "close"], parse_dates=["datetime"])
        regular = bars[(bars.datetime.dt.time >= pd.Timestamp("09:30").time())
                       & (bars.datetime.dt.time < pd.Timestamp("16:00").time())]
        closes[path.name.split("_")[0]] = regular.groupby(regular.datetime.dt.date).close.last()
    close = pd.DataFrame(closes).sort_index()
    label = close.shift(-2) / close.shift(-1) - 1
    score = -(close / close.shift(5) - 1)
    return score.to_numpy(), label.to_numpy()


@pytest.fixture(scope="module")
def real(shared_data):
    return _real_panel()


def _long(scores: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    d, s = np.meshgrid(np.arange(scores.shape[0]), np.arange(scores.shape[1]), indexing="ij")
    frame = pd.DataFrame({"date": d.ravel(), "stock": s.ravel(), "score": scores.ravel(),
                          "label": labels.ravel()})
    return frame.dropna()


def _reference_ic(frame: pd.DataFrame, method: str, min_stocks: int) -> pd.Series:
    def one(g: pd.DataFrame) -> float:
        if len(g) < min_stocks:
            return math.nan
        if method == "pearson":
            return g.score.corr(g.label)
        return scipy.stats.spearmanr(g.score, g.label).statistic
    return frame.groupby("date")[["score", "label"]].apply(one)


def _reference_long_short(frame: pd.DataFrame, q: float, min_stocks: int) -> pd.DataFrame:
    """Qlib's calc_long_short_return, written out (with pandas nlargest / nsmallest)."""
    rows = {}
    for date, g in frame.groupby("date"):
        n = int(len(g) * q)
        if len(g) < min_stocks or n < 1:
            continue
        top, bottom = g.nlargest(n, "score"), g.nsmallest(n, "score")
        rows[date] = {"long": top.label.mean(), "short": bottom.label.mean(), "market": g.label.mean(),
                      "top": set(top.stock), "bottom": set(bottom.stock)}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out["long_short"] = (out["long"] - out["short"]) / 2
    return out


def test_ic_and_rank_ic_match_pandas_and_scipy_on_real_data(real):
    scores, labels = real
    frame = _long(scores, labels)
    for method, fn in (("pearson", metrics.daily_ic), ("spearman", metrics.daily_rank_ic)):
        ours = pd.Series(fn(scores, labels, min_stocks=10))
        ref = _reference_ic(frame, method, 10).reindex(range(len(scores)))
        assert ours.notna().sum() > 150
        np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), atol=1e-10, equal_nan=True)


def test_long_short_legs_and_turnover_match_qlib_on_real_data(real):
    scores, labels = real
    legs = metrics.long_short(scores, labels, quantile=0.2, min_stocks=10)
    ref = _reference_long_short(_long(scores, labels), 0.2, 10)
    for column in ("long", "short", "market", "long_short"):
        np.testing.assert_allclose(legs[column][ref.index], ref[column], atol=1e-12)
    assert np.isnan(np.delete(legs["long"], ref.index)).all()
    # turnover: share of a leg's names that were not in it on the previous (usable) date
    dates = list(ref.index)
    for leg, key in (("top", "turnover_long"), ("bottom", "turnover_short")):
        for prev, cur in itertools.pairwise(dates):
            if cur != prev + 1:
                continue
            expected = 1 - len(ref.at[cur, leg] & ref.at[prev, leg]) / len(ref.at[cur, leg])
            assert legs[key][cur] == pytest.approx(expected)


def test_summary_matches_hand_formulas_on_real_data(real):
    scores, labels = real
    summary, daily = metrics.summarize(scores, labels, quantile=0.2, cost=0.002, min_stocks=10)
    ic = pd.Series(daily["ic"]).dropna()
    ric = pd.Series(daily["rank_ic"]).dropna()
    r = pd.Series(daily["long_short"]).dropna()
    assert summary["ic"] == pytest.approx(ic.mean())
    assert summary["icir"] == pytest.approx(ic.mean() / ic.std(ddof=1))
    assert summary["rank_ic"] == pytest.approx(ric.mean())
    assert summary["rank_icir"] == pytest.approx(ric.mean() / ric.std(ddof=1))
    assert summary["annual_return"] == pytest.approx(r.mean() * 252)
    assert summary["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    curve = r.cumsum()
    assert summary["max_drawdown"] == pytest.approx((curve - curve.cummax()).min())
    net = (pd.Series(daily["long_short"]) - 0.002 * pd.Series(daily["turnover"])).dropna()
    assert summary["net_annual_return"] == pytest.approx(net.mean() * 252)
    assert summary["net_annual_return"] < summary["annual_return"]
    assert summary["dates"] == len(ic)
    # the t-statistics of the means, against scipy's one-sample t-test
    assert summary["ic_t"] == pytest.approx(scipy.stats.ttest_1samp(ic, 0.0).statistic)
    assert summary["rank_ic_t"] == pytest.approx(scipy.stats.ttest_1samp(ric, 0.0).statistic)
    assert summary["few_dates"] is (len(ic) < 20)


def test_a_small_sample_is_flagged():
    rng = np.random.default_rng(3)
    labels = rng.normal(size=(6, 50))
    scores = labels + rng.normal(scale=3.0, size=labels.shape)
    summary, daily = metrics.summarize(scores, labels)
    assert summary["dates"] == 6 and summary["few_dates"] is True
    ic = pd.Series(daily["ic"])
    assert summary["ic_t"] == pytest.approx(scipy.stats.ttest_1samp(ic, 0.0).statistic)
    assert metrics.sample_size(summary) == (6, summary["ic_t"], True)
    # a summary written before ic_t existed: t from ICIR and the date count
    old = {k: v for k, v in summary.items() if k not in ("ic_t", "rank_ic_t", "few_dates")}
    assert metrics.sample_size(old)[1] == pytest.approx(summary["icir"] * math.sqrt(6))
    one, _ = metrics.summarize(scores[:1], labels[:1])
    assert one["dates"] == 1 and math.isnan(one["ic_t"]) and one["few_dates"] is True


@pytest.mark.parametrize("seed", range(5))
def test_ranks_with_ties_and_gaps_match_pandas(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, size=(30, 25)).astype(float)  # many ties
    values[rng.random(values.shape) < 0.2] = np.nan
    values[3] = np.nan  # a row with nothing
    ours = metrics.average_ranks(values)
    ref = pd.DataFrame(values).rank(axis=1, method="average").to_numpy()
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("seed", range(5))
def test_rank_ic_with_ties_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(20, 40)).astype(float)
    labels = rng.normal(size=(20, 40)).round(1)
    scores[rng.random(scores.shape) < 0.1] = np.nan
    labels[rng.random(labels.shape) < 0.1] = np.nan
    ref = _reference_ic(_long(scores, labels), "spearman", 10).reindex(range(20)).to_numpy()
    np.testing.assert_allclose(metrics.daily_rank_ic(scores, labels), ref, atol=1e-12, equal_nan=True)


def test_ties_in_scores_are_broken_by_stock_order_like_nlargest():
    scores = np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    labels = np.arange(10, dtype=float)[None, :]
    legs = metrics.long_short(scores, labels, quantile=0.2, min_stocks=2)
    assert legs["long"][0] == 0.5  # stocks 0 and 1 (first among the tied highest)
    assert legs["short"][0] == 5.5  # stocks 5 and 6 (first among the tied lowest)
    ref = _reference_long_short(_long(scores, labels), 0.2, 2)
    assert legs["long"][0] == ref["long"].iloc[0] and legs["short"][0] == ref["short"].iloc[0]


def test_small_or_constant_cross_sections_are_left_out():
    scores = np.array([[1.0, 2.0, 3.0, np.nan], [1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    labels = np.array([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    ic = metrics.daily_ic(scores, labels, min_stocks=4)
    assert np.isnan(ic[0])  # three stocks with both values: too few
    assert np.isnan(ic[1])  # constant scores: no correlation defined
    assert ic[2] == pytest.approx(-1.0)


def test_a_perfect_and_a_reversed_signal():
    rng = np.random.default_rng(0)
    labels = rng.normal(size=(50, 100))
    summary, daily = metrics.summarize(labels, labels)
    assert summary["ic"] == pytest.approx(1.0) and summary["rank_ic"] == pytest.approx(1.0)
    assert np.all(daily["long"] > daily["short"]) and summary["annual_return"] > 0
    reversed_summary, reversed_daily = metrics.summarize(-labels, labels)
    assert reversed_summary["ic"] == pytest.approx(-1.0)
    assert np.all(reversed_daily["long"] < reversed_daily["short"]) and reversed_summary["annual_return"] < 0


def test_max_drawdown_by_hand():
    r = np.array([0.01, 0.02, -0.05, 0.01, -0.02, 0.04, np.nan])
    # running sum: .01 .03 -.02 -.01 -.03 .01; peak .03 -> trough -.03
    assert metrics.max_drawdown(r) == pytest.approx(-0.06)
    assert metrics.max_drawdown(np.array([0.01, 0.02])) == 0.0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        metrics.daily_ic(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="quantile"):
        metrics.long_short(np.zeros((3, 4)), np.zeros((3, 4)), quantile=0.7)
