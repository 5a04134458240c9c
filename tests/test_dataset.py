"""Windows, features, labels, splits and batches: views not copies, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest

from studio.data.dataset import CrossSectionData, DataConfig, DataError, bar_features
from studio.data.labels import forward_returns
from studio.data.panel import BarPanel
from studio.data.splits import split_dates, walk_forward


def make_panel(stocks=30, days=80, bars=6, seed=0, suspend=True) -> BarPanel:
    """A small random panel with suspensions, a late listing and a delisting."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.004, size=(stocks, days * bars))
    close = 20 * np.exp(np.cumsum(r, axis=1))
    volume = rng.gamma(2.0, 1000.0, size=close.shape)
    values = np.stack([close, volume, close * volume], axis=-1).astype(np.float32)
    traded = np.ones((stocks, days), dtype=bool)
    if suspend:
        for s, d in [(3, 30), (3, 31), (7, 50), (11, 65)]:
            traded[s, d] = False
            block = slice(d * bars, (d + 1) * bars)
            values[s, block, 0] = values[s, d * bars - 1, 0]
            values[s, block, 1:] = 0.0
        values[5, :20 * bars] = np.nan  # lists on day 20
        traded[5, :20] = False
        values[9, 70 * bars:] = np.nan  # delisted after day 69
        traded[9, 70:] = False
    dates = \
        np.datetime64("2024-01-01") + np.arange(days).astype("timedelta64[D]")
    return BarPanel([f"S{i:03d}" for i in range(stocks)], dates, ["close", "volume", "turnover"], bars,
                    values, traded, source="test panel")


def test_windows_are_views_of_one_array():
    data = CrossSectionData(make_panel(), DataConfig(days=5, min_stocks=5))
    w = data.window(40)
    assert w.shape == (30, 5 * 6, 3)
    assert np.shares_memory(w, data.features) and w.base is not None
    p = data.panel.window(40, 5)
    assert np.shares_memory(p, data.panel.values)


def test_masks_follow_listing_suspension_and_history():
    data = CrossSectionData(make_panel(), DataConfig(days=5, min_stocks=5))
    assert not data.mask[30, 3] and not data.mask[31, 3]  # suspended on the decision day
    assert data.mask[32, 3]  # suspended days inside the window are filled past data
    assert not data.mask[:25, 5].any() and data.mask[25, 5]  # listed day 20; first reference day 21
    assert data.mask[69, 9] and not data.mask[70:, 9].any()  # delisted
    assert not data.has_label[68, 9]  # its label would need day 70's close


@pytest.mark.parametrize("normalize", ["none", "cs_zscore", "cs_rank", "robust"])
def test_no_bar_after_the_decision_time_reaches_a_feature(normalize):
    panel = make_panel(seed=1)
    config = DataConfig(days=5, normalize=normalize, min_stocks=5)
    base = CrossSectionData(panel, config)
    # decision dates to check: for robust, after the training dates its statistics are fitted on
    dates = base.splits.test if normalize == "robust" else [10, 33, 52]
    for d in dates[:3]:
        later = make_panel(seed=1)
        rng = np.random.default_rng(d)
        cut = (d + 1) * panel.bars_per_day
        later.values[:, cut:] *= rng.uniform(0.5, 1.5, size=later.values[:, cut:].shape).astype(np.float32)
        later.traded[:, d + 1:] = rng.random(later.traded[:, d + 1:].shape) > 0.3
        changed = CrossSectionData(later, config, splits=base.splits)
        np.testing.assert_array_equal(changed.window(d), base.window(d))
        np.testing.assert_array_equal(changed.mask[d], base.mask[d])


def test_labels_use_only_bars_after_the_decision_time():
    panel = make_panel(seed=2)
    base = CrossSectionData(panel, DataConfig(days=5, lag=1, horizon=2, min_stocks=5))
    d = 40
    earlier = make_panel(seed=2)
    earlier.values[:, :(d + 1) * panel.bars_per_day] *= 1.7  # every bar up to the decision close
    changed = CrossSectionData(earlier, DataConfig(days=5, lag=1, horizon=2, min_stocks=5))
    np.testing.assert_array_equal(changed.raw_label[d], base.raw_label[d])
    # and the label is the return from day d+1's close to day d+3's close
    close = panel.daily_close()
    np.testing.assert_allclose(base.raw_label[d], close[d + 3] / close[d + 1] - 1)


def test_labels_are_never_forward_filled_over_suspensions():
    panel = make_panel()
    labels = forward_returns(panel.daily_close(), lag=1, horizon=1)
    assert np.isnan(labels[29, 3]) and np.isnan(labels[30, 3])  # entry or exit on a suspended day
    assert np.isnan(labels[-2:]).all()  # no closes after the end


def test_qlib_label_definition_and_lag_zero():
    close = np.array([[10.0], [11.0], [12.1], [10.89]])
    np.testing.assert_allclose(forward_returns(close, 1, 1)[:, 0], [0.1, -0.1, np.nan, np.nan])
    np.testing.assert_allclose(forward_returns(close, 0, 1)[:, 0], [0.1, 0.1, -0.1, np.nan])
    np.testing.assert_allclose(forward_returns(close, 0, 2)[:, 0], [0.21, -0.01, np.nan, np.nan])


def test_splits_are_ordered_gapped_and_share_no_label_days():
    data = CrossSectionData(make_panel(), DataConfig(days=5, lag=1, horizon=2, min_stocks=5))
    s = data.splits
    assert s.gap == 3
    lag, horizon = 1, 2
    label_days = {name: {d + lag + k for d in idx for k in range(horizon + 1)} for name, idx in s.items()}
    assert not label_days["train"] & label_days["valid"]
    assert not label_days["valid"] & label_days["test"]
    assert s.train.max() + s.gap < s.valid.min() and s.valid.max() + s.gap < s.test.min()
    # every decision of a later split comes after every label of an earlier one
    assert max(label_days["train"]) < s.valid.min()


def test_walk_forward_folds():
    usable = np.arange(10, 110)
    folds = walk_forward(usable, folds=3, valid_dates=10, test_dates=10, gap=2)
    assert [f.test.tolist()[-1] for f in folds] == [89, 99, 109]
    for f in folds:
        assert f.train.max() + 2 < f.valid.min() and f.valid.max() + 2 < f.test.min()
    rolling = walk_forward(usable, folds=2, valid_dates=10, test_dates=10, gap=2, train_dates=30)
    assert all(len(f.train) == 30 for f in rolling)
    with pytest.raises(ValueError, match="no training dates"):
        walk_forward(usable[:20], folds=3, valid_dates=10, test_dates=10)


def test_split_fractions():
    s = split_dates(np.arange(100), (0.6, 0.2, 0.2), gap=2)
    assert (len(s.train), len(s.valid), len(s.test)) == (58, 19, 19)
    with pytest.raises(ValueError, match="sum"):
        split_dates(np.arange(100), (0.6, 0.6, 0.2))


def test_batches_are_whole_cross_sections():
    data = CrossSectionData(make_panel(), DataConfig(days=5, min_stocks=5))
    dates = data.splits.valid[:3]
    b = data.batch(dates)
    assert b.x.shape == (3, 30, 30, 3) and b.x.dtype == np.float32
    assert b.mask.shape == b.label.shape == b.raw_label.shape == (3, 30)
    assert (b.x[~b.mask] == 0).all() and np.isfinite(b.x).all()
    for i, d in enumerate(dates):
        np.testing.assert_array_equal(b.x[i][b.mask[i]], data.window(int(d))[b.mask[i]])
        lab = b.label[i][b.has_label[i]]
        assert abs(lab.mean()) < 1e-5 and abs(lab.std() - 1) < 1e-4  # cross-sectional z-score
    seen = np.concatenate([bb.dates for bb in data.batches("train", 4, shuffle=True,
                                                            rng=np.random.default_rng(0))])
    assert sorted(seen) == sorted(data.splits.train)


def test_feature_normalisation_by_hand():
    panel = make_panel(suspend=False)
    feats = bar_features(panel, ["close", "volume"], volume_days=3)
    p, s, d, b = panel.bars_per_day, 4, 10, 2
    values = panel.values.astype(np.float64)
    prev_close = values[s, d * p - 1, 0]
    assert feats[s, d * p + b, 0] == pytest.approx(values[s, d * p + b, 0] / prev_close - 1, rel=1e-5)
    daily_volume = values[s, :, 1].reshape(-1, p).sum(axis=1)
    per_bar = daily_volume[d - 3:d].mean() / p
    assert feats[s, d * p + b, 1] == pytest.approx(np.log1p(values[s, d * p + b, 1] / per_bar), rel=1e-5)
    assert np.isnan(feats[:, :p]).all()  # day 0 has no previous close


def test_robust_statistics_come_from_training_dates_only():
    panel = make_panel(seed=3)
    config = DataConfig(days=5, normalize="robust", min_stocks=5)
    base = CrossSectionData(panel, config)
    later = make_panel(seed=3)
    cut = (base.splits.valid.min()) * panel.bars_per_day
    later.values[:, cut:, 1] *= 50.0  # a volume regime change after training
    changed = CrossSectionData(later, config, splits=base.splits)
    assert changed.stats == base.stats
    assert abs(np.median(base.window(int(base.splits.train[-1]))[base.mask[base.splits.train[-1]]])) < 1.0


def test_bad_config_is_a_clear_error():
    with pytest.raises(DataError, match="normalize: expects one of robust"):
        DataConfig(normalize="minmax")
    with pytest.raises(DataError, match="feature 'open' is not in the data"):
        CrossSectionData(make_panel(), DataConfig(days=5, features=["open"], min_stocks=5))
    with pytest.raises(DataError, match="only 0 dates"):
        CrossSectionData(make_panel(days=8, suspend=False), DataConfig(days=10, min_stocks=5))
