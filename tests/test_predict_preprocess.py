"""studio.data.preprocess (raw bars -> a model's input, as exports and `studio predict` serve it) equals
the windows and masks training reads from CrossSectionData, bit for bit; preprocess.json is checked."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from studio.data import preprocess as preprocess_module
from studio.data.dataset import CrossSectionData, DataConfig
from studio.data.errors import DataError
from studio.data.panel import BarPanel
from studio.data.preprocess import history_days, preprocess
from studio.data.preprocess_spec import check_spec, load_spec, make_spec

FIELDS = ["open", "close", "volume", "turnover", "spread"]


def market(stocks=24, days=60, bars=5, seed=0) -> BarPanel:
    """Bars with every kind of field (prices, flows, one used as it is), suspensions filled with the
    previous close and zero volume, a late listing, a delisting, a missing bar and tied values."""
    rng = np.random.default_rng(seed)
    close = 30 * np.exp(np.cumsum(rng.normal(0, 0.005, size=(stocks, days * bars)), axis=1))
    open_ = close * (1 + rng.normal(0, 0.001, size=close.shape))
    volume = np.round(rng.gamma(2.0, 3.0, size=close.shape)) * 100  # whole lots: many ties for cs_rank
    spread = np.round(rng.uniform(0.01, 0.05, size=close.shape), 2)
    values = np.stack([open_, close, volume, close * volume, spread], axis=-1).astype(np.float32)
    traded = np.ones((stocks, days), dtype=bool)
    for s, d in [(2, 30), (2, 31), (6, 44)]:
        traded[s, d] = False
        values[s, d * bars:(d + 1) * bars, :2] = values[s, d * bars - 1, 1]
        values[s, d * bars:(d + 1) * bars, 2:4] = 0.0
    values[4, :15 * bars] = np.nan  # lists on day 15
    traded[4, :15] = False
    values[8, 50 * bars:] = np.nan  # delisted after day 49
    traded[8, 50:] = False
    values[10, 40 * bars + 2, 2] = np.nan  # one bar's volume missing: windows over day 40 are not samples
    dates = np.datetime64("2024-01-01") + np.arange(days).astype("timedelta64[D]")
    return BarPanel([f"S{i:02d}" for i in range(stocks)], dates, FIELDS, bars, values, traded)


def served(panel: BarPanel, spec: dict, date: int, traded=True):
    """preprocess() on the raw bars of the history ``date`` needs (fewer at the panel's start)."""
    first = max(0, date + 1 - history_days(spec))
    p = panel.bars_per_day
    bars = panel.values[:, first * p:(date + 1) * p]
    return preprocess(bars, panel.features, spec, traded=panel.traded[:, date] if traded else None)


@pytest.mark.parametrize("normalize", ["robust", "cs_zscore", "cs_rank", "none"])
@pytest.mark.parametrize("features", [["close", "volume", "turnover"], ["open", "spread", "volume"]])
def test_preprocess_equals_the_training_windows_bit_for_bit(normalize, features):
    panel = market()
    config = DataConfig(days=4, features=features, normalize=normalize, volume_days=6, min_stocks=5)
    data = CrossSectionData(panel, config)
    spec = make_spec(config, panel.bars_per_day, data.stats, {"kind": "test"})
    if normalize == "robust":  # the run's fitted statistics, as config.json and preprocess.json keep them
        spec = json.loads(json.dumps(spec))
        assert spec["median"] == data.stats["median"]
    checked = 0
    for date in range(config.days - 1, panel.n_days):
        x, mask = served(panel, spec, date)
        want = data.batch([date])
        np.testing.assert_array_equal(mask, want.mask[0])
        assert x.dtype == np.float32 and x.shape == want.x[0].shape
        assert x.tobytes() == want.x[0].tobytes(), f"date {date}"
        checked += int(mask.sum())
    assert checked > 500  # most stock-dates are samples
    assert not served(panel, spec, 30)[1][2] and served(panel, spec, 32)[1][2]  # suspended, then back
    assert not served(panel, spec, 41)[1][10] and served(panel, spec, 44)[1][10]  # the missing bar's window


def test_a_window_scaled_by_hand():
    """An independent reference: the robust formula written out on one stock's raw bars."""
    panel = market()
    config = DataConfig(days=3, features=["close", "volume"], normalize="robust", volume_days=4, min_stocks=5)
    spec = make_spec(config, panel.bars_per_day, {"median": [0.001, 0.2], "mad": [0.01, 0.5]}, {})
    date, stock, p = 35, 12, panel.bars_per_day
    x, mask = served(panel, spec, date)
    raw = panel.values[stock].astype(np.float64).reshape(panel.n_days, p, len(FIELDS))
    want = []
    for day in range(date - 2, date + 1):
        ret = raw[day, :, 1] / raw[day - 1, -1, 1] - 1
        reference = np.mean([raw[d, :, 2].sum() for d in range(day - 4, day)]) / p
        vol = np.log1p(raw[day, :, 2] / reference)
        want.append(np.stack([np.clip((ret - 0.001) / 0.01, -3, 3), np.clip((vol - 0.2) / 0.5, -3, 3)], -1))
    assert mask[stock]
    np.testing.assert_allclose(x[stock], np.concatenate(want), rtol=2e-6, atol=2e-6)


def test_without_traded_flags_the_decision_days_finite_bars_decide():
    panel = market()
    config = DataConfig(days=4, features=["close", "volume"], normalize="none", volume_days=6)
    spec = make_spec(config, panel.bars_per_day, None, {})
    _, mask = served(panel, spec, 52, traded=False)
    assert not mask[8]  # delisted: NaN bars
    _, mask = served(panel, spec, 30, traded=False)
    assert mask[2]  # suspended but filled with the previous close: the bars alone cannot tell
    with pytest.raises(ValueError, match="traded must be"):
        preprocess(panel.values[:, :50], FIELDS, spec, traded=np.ones(3, bool))


def test_bars_that_do_not_fit_are_refused_in_one_line():
    panel = market()
    spec = make_spec(DataConfig(days=4, features=["close", "volume"], normalize="none"), 5, None, {})
    with pytest.raises(ValueError, match="at least 4 days"):
        preprocess(panel.values[:, :15], FIELDS, spec)
    with pytest.raises(ValueError, match="whole days of 5 bars"):
        preprocess(panel.values[:, :23], FIELDS, spec)
    with pytest.raises(ValueError, match="lack field 'volume'"):
        preprocess(panel.values[:, :50, :2], FIELDS[:2], spec)
    with pytest.raises(ValueError, match="bars must be"):
        preprocess(panel.values[:, :50], FIELDS[:3], spec)


def test_the_module_imports_only_numpy_and_the_standard_library():
    """Exports copy its source: it may not import the studio."""
    tree = ast.parse(Path(preprocess_module.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"numpy", "__future__", "math"}


def good_spec() -> dict:
    config = DataConfig(days=4, features=["close", "volume"], normalize="robust")
    return make_spec(config, 78, {"median": [0.0, 0.1], "mad": [0.01, 0.4]}, {"kind": "import", "path": "x"})


@pytest.mark.parametrize("field, value, message", [
    ("format", 2, "field 'format' expects 1"),
    ("features", [], "field 'features' expects a list"),
    ("features", ["close", "close"], "field 'features' expects a list of distinct"),
    ("days", 0, "field 'days' expects a whole number >= 1"),
    ("bars_per_day", 2.5, "field 'bars_per_day'"),
    ("lag", True, "field 'lag'"),
    ("normalize", "zscore", "field 'normalize' expects one of robust"),
    ("median", [0.0], "field 'median' expects 2 finite numbers"),
    ("mad", [0.0, 1.0], "field 'mad' expects positive numbers"),
    ("mad", None, "field 'mad' expects 2 finite"),
    ("fields", ["close"], "field 'fields'"),
    ("source", "x", "field 'source'"),
])
def test_a_damaged_spec_is_refused_naming_the_file_and_field(tmp_path, field, value, message):
    spec = good_spec()
    spec[field] = value
    path = tmp_path / "preprocess.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(DataError, match=message) as caught:
        load_spec(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_or_unreadable_spec_is_one_line(tmp_path):
    with pytest.raises(DataError, match=r"preprocess\.json: missing .*train it again"):
        load_spec(tmp_path / "preprocess.json")
    (tmp_path / "preprocess.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot be read"):
        load_spec(tmp_path / "preprocess.json")
    (tmp_path / "preprocess.json").write_text(json.dumps(good_spec()).replace("0.4", "NaN"))
    with pytest.raises(DataError, match="field 'mad'"):
        load_spec(tmp_path / "preprocess.json")
    (tmp_path / "other").symlink_to(tmp_path / "preprocess.json")
    with pytest.raises(DataError, match="cannot be read"):
        load_spec(tmp_path / "other")
    assert check_spec(good_spec()) == good_spec()


def test_the_volume_reference_has_the_same_bits_wherever_the_bars_start():
    """A running sum from the panel's first day would differ in the last bits from one over a window's
    history alone; the reference adds the same days in the same order either way."""
    daily = np.random.default_rng(5).lognormal(12, 2, size=(8, 400))
    daily[3, 100:120] = np.nan
    whole = preprocess_module.trailing_mean(daily, 20)
    for start in (0, 150, 379):
        tail = preprocess_module.trailing_mean(daily[:, start:], 20)
        assert tail[:, 20:].tobytes() == whole[:, start + 20:].tobytes()
    np.testing.assert_allclose(whole[:, 50], daily[:, 30:50].mean(axis=1), rtol=1e-12)
    assert np.isnan(whole[:, 0]).all()
