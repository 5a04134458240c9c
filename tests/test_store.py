"""Arrays in memory-mapped files: the out-of-core path gives the bits of the in-memory path, stale
files are made again, damaged ones are refused with one line."""

from __future__ import annotations

import numpy as np
import pytest

from studio.data import dataset, store
from studio.data.dataset import CrossSectionData, DataConfig
from studio.data.panel import BarPanel, DataError
from studio.data.synthetic import generate
from tests.test_dataset import make_panel


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few stocks and days: the chunked loops run many times on a small panel."""
    monkeypatch.setattr(dataset, "BLOCK_BYTES", 20_000)
    monkeypatch.setattr(dataset, "ROBUST_SAMPLE", 500)


def memmap_panel(panel: BarPanel, path) -> BarPanel:
    array = store.create(path, panel.values.shape)
    array[:] = panel.values
    final = store.finish(array)
    return BarPanel(panel.symbols, panel.dates, panel.features, panel.bars_per_day,
                    store.open_array(final, panel.values.shape, np.float32), panel.traded, source=panel.source)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit (NaN where NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("normalize", ["robust", "cs_zscore", "cs_rank", "none"])
def test_features_in_a_file_equal_the_in_memory_ones_bit_for_bit(tmp_path, small_blocks, normalize):
    panel = make_panel()
    config = DataConfig(days=5, min_stocks=5, normalize=normalize)
    ref = CrossSectionData(panel, config)
    path = tmp_path / "features.npy"
    made = CrossSectionData(memmap_panel(panel, tmp_path / "bars.npy"), config, features_file=path)
    assert isinstance(made.features, np.memmap) and str(made.features.filename) == str(path)
    assert not made.features.flags.writeable
    stamp = path.stat().st_mtime_ns
    reused = CrossSectionData(memmap_panel(panel, tmp_path / "bars2.npy"), config, features_file=path)
    assert path.stat().st_mtime_ns == stamp  # read back, not made again
    for data in (made, reused):
        assert same(data.features, ref.features)
        assert same(data.mask, ref.mask) and same(data.label, ref.label) and same(data.raw_label, ref.raw_label)
        assert data.stats == ref.stats
        assert {k: list(v) for k, v in data.splits.items()} == {k: list(v) for k, v in ref.splits.items()}
        got, want = data.batch(ref.splits.train[:3]), ref.batch(ref.splits.train[:3])
        assert same(got.x, want.x) and same(got.label, want.label) and same(got.mask, want.mask)
    if normalize == "robust":
        assert ref.stats and len(ref.stats["median"]) == 3


def test_a_stale_features_file_is_made_again(tmp_path):
    panel = make_panel()
    path = tmp_path / "features.npy"
    config = DataConfig(days=5, min_stocks=5, normalize="robust")
    first = np.array(CrossSectionData(panel, config, features_file=path).features)
    # other settings: made again, and equal to the in-memory features of those settings
    other = DataConfig(days=5, min_stocks=5, normalize="cs_zscore")
    again = CrossSectionData(panel, other, features_file=path)
    assert same(again.features, CrossSectionData(panel, other).features)
    assert not same(again.features, first)
    # other bars (one price changed): made again
    changed = make_panel()
    changed.values[0, 100, 0] *= 1.01
    assert changed.fingerprint() != panel.fingerprint()
    redone = CrossSectionData(changed, other, features_file=path)
    assert same(redone.features, CrossSectionData(changed, other).features)
    assert not same(redone.features, again.features)
    # a file without its key beside it (a write killed before the end) is not trusted
    dataset._stats_file(path).unlink()
    stamp = path.stat().st_mtime_ns
    CrossSectionData(changed, other, features_file=path)
    assert path.stat().st_mtime_ns != stamp


def test_a_truncated_features_file_is_refused_with_one_line(tmp_path):
    panel = make_panel()
    path = tmp_path / "features.npy"
    config = DataConfig(days=5, min_stocks=5)
    CrossSectionData(panel, config, features_file=path)
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 4096)
    with pytest.raises(DataError) as err:
        CrossSectionData(panel, config, features_file=path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "truncated" in message


def test_array_files_that_are_not_whole_are_one_line_errors(tmp_path):
    good = store.create(tmp_path / "a.npy", (10, 4))
    good[:] = np.arange(40, dtype=np.float32).reshape(10, 4)
    path = store.finish(good)
    assert not (tmp_path / "a.npy.partial").exists()
    assert same(store.open_array(path, (10, 4), np.float32), np.arange(40, dtype=np.float32).reshape(10, 4))
    cases = {
        "wrong shape": lambda: store.open_array(path, (5, 8)),
        "wrong dtype": lambda: store.open_array(path, (10, 4), np.float64),
        "missing": lambda: store.open_array(tmp_path / "none.npy"),
    }
    (tmp_path / "text.npy").write_text("close,volume\n1,2\n")
    cases["not an array"] = lambda: store.open_array(tmp_path / "text.npy")
    for what, call in cases.items():
        with pytest.raises(DataError) as err:
            call()
        assert "\n" not in str(err.value) and "npy" in str(err.value), what


def test_a_market_generated_into_a_file_equals_the_one_in_memory(tmp_path):
    ref = generate(stocks=40, days=30, bars_per_day=8, seed=3)
    target = store.create(tmp_path / "bars.npy", ref.panel.values.shape)
    on_disk = generate(stocks=40, days=30, bars_per_day=8, seed=3, out=target)
    assert same(np.asarray(on_disk.panel.values), ref.panel.values)
    assert same(on_disk.expected_label(), ref.expected_label())
    assert on_disk.panel.values is target


def test_digest_of_a_file_is_remembered_and_follows_its_contents(tmp_path):
    array = store.create(tmp_path / "a.npy", (64, 16))
    array[:] = 1.0
    path = store.finish(array)
    mapped = store.open_array(path)
    first = store.digest(mapped)
    assert first == store.digest(np.ones((64, 16), dtype=np.float32))  # the bytes, not where they live
    assert (tmp_path / "a.npy.sha256.json").exists()
    assert store.digest(store.open_array(path)) == first
    writable = store.open_array(path, writable=True)
    writable[3, 3] = 2.0
    writable.flush()
    del writable
    import os

    os.utime(path, ns=(1, 1))  # a new modification time: the remembered digest is not used
    assert store.digest(store.open_array(path)) != first
