"""The import of folders larger than memory (studio.data.import_chunked): the same panel as the in-memory
import, bit for bit, for any number of buckets and batch size; files re-read as text after a conversion
error in a later batch; the mapped cache, its invalidation and a damaged one refused in one line; no
work files left behind. (tests/test_importer.py runs every policy test through this path as well.)"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from studio.data import import_chunked, import_stages, importer
from studio.data.importer import DataError, ImportConfig, find_files
from studio.data.load import import_bars, load_bars
from studio.data.store import mapping

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
US = DATA / "us_stocks_5min"
SSE_HOURLY = DATA / "sse50_hourly" / "A_stock_hourly.csv"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "imports"


def assert_same_panel(a, b) -> None:
    assert a.symbols == b.symbols and a.features == b.features and a.bars_per_day == b.bars_per_day
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.traded, b.traded)
    assert np.asarray(a.values).tobytes() == np.asarray(b.values).tobytes()  # bit for bit, NaN included
    assert a.notes == b.notes
    assert list(a.counts.items()) == list(b.counts.items())


def in_memory(path: Path, config: ImportConfig | None = None):
    config = config or ImportConfig()
    files = find_files(path, config)
    return import_stages.import_in_memory(files, config, importer.describe_source([path], files))


def on_disk(files, tmp_path: Path, name: str, buckets: int, config: ImportConfig | None = None, source=""):
    return import_chunked.build_on_disk(files, config or ImportConfig(), source, tmp_path / name / "values.npy",
                                        tmp_path / name / "work", buckets=buckets)


@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize("path", [US, SSE_HOURLY], ids=["us_5min_folder", "sse50_long_file"])
def test_the_real_data_sets_give_the_in_memory_panel_bit_for_bit(path, tmp_path, monkeypatch):
    config = ImportConfig()
    files = find_files(path, config)
    memory = load_bars(path, config, cache=False)
    assert mapping(memory.values) is None
    # one bucket and whole files; several buckets and every file read by batches of 4 MB / 64 KB
    whole = on_disk(files, tmp_path, "one", 1, config, memory.source)
    monkeypatch.setattr(import_chunked, "STREAM_ABOVE_BYTES", 0)
    batched = on_disk(files, tmp_path, "many", 7, config, memory.source)
    monkeypatch.setattr(import_chunked, "CSV_BLOCK_BYTES", 1 << 16)
    small = on_disk(files, tmp_path, "small", 5, config, memory.source)
    for panel in (whole, batched, small):
        assert mapping(panel.values) is not None
        assert_same_panel(memory, panel)


def long_file(path: Path, rows_per_symbol: int = 400, text_at: int | None = None) -> Path:
    """A long CSV (symbol column) of three symbols' 5-minute bars; ``text_at``: that row's volume is text."""
    lines = ["symbol,datetime,close,volume"]
    n = 0
    for day in range(rows_per_symbol // 40):
        for bar in range(40):
            minute = 9 * 60 + 30 + 5 * bar
            for k, symbol in enumerate(("BBB", "AAA", "CCC")):
                volume = "x" if n == text_at else str(100 + bar + k)
                lines.append(f"{symbol},2024-03-{day + 4:02d} {minute // 60:02d}:{minute % 60:02d}:00,"
                             f"{10 + k + day + bar / 64},{volume}")
                n += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_text_in_a_later_batch_reads_the_file_again_as_text(tmp_path, monkeypatch):
    # the volume column looks like integers in the first batch and holds "x" far down: the whole-file
    # read (one block) takes it as text, the batched one reads the file again as text, without keeping
    # the rows of its first try
    path = long_file(tmp_path / "bars.csv", text_at=1100)
    memory = load_bars(path, cache=False)
    assert memory.counts["rows read"] == 1200 and memory.counts["NaN/negative volume set to 0"] == 1
    monkeypatch.setattr(import_chunked, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(import_chunked, "CSV_BLOCK_BYTES", 4096)
    assert len(list(import_chunked.file_batches(path, ImportConfig(), as_text=True))) > 3
    with pytest.raises(import_chunked._TextFurtherDown):
        _exhaust_typed(path)
    panel = on_disk([path], tmp_path, "d", 2)
    assert_same_panel(memory, panel)


def _exhaust_typed(path: Path) -> None:
    for _ in import_chunked.file_batches(path, ImportConfig()):
        pass


def test_the_mapped_cache_is_used_invalidated_and_refused_when_damaged(tmp_path, monkeypatch, capsys,
                                                                      isolated_cache):
    monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
    path = long_file(tmp_path / "bars.csv")
    first = import_bars(path)
    assert not first.from_cache and first.cached and first.cache_file.is_dir()
    assert mapping(first.panel.values) is not None
    assert sorted(p.name for p in isolated_cache.iterdir()) == [first.cache_file.name]  # no work folder left

    def no_reading(*args, **kwargs):
        raise AssertionError("the raw file was read again")

    monkeypatch.setattr(importer, "read_file", no_reading)
    second = import_bars(path)
    assert second.from_cache and second.cache_file == first.cache_file
    assert_same_panel(first.panel, second.panel)
    monkeypatch.undo()
    monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(isolated_cache.parent))

    # a changed setting is another entry
    assert not import_bars(path, ImportConfig(min_day_share=0.9)).from_cache

    # a values file cut short: one line naming it, from the API and from the command line
    values = first.cache_file / "values.npy"
    with open(values, "r+b") as fh:
        fh.truncate(values.stat().st_size - 100)
    with pytest.raises(DataError, match=r"values\.npy: truncated or damaged .*delete it and it is made again"):
        import_bars(path)
    assert main(["data", "inspect", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "values.npy: truncated or damaged" in err and "Traceback" not in err

    # an entry without its description (a killed import) is made again
    (first.cache_file / "panel.json").unlink()
    again = import_bars(path)
    assert not again.from_cache and again.cached
    assert_same_panel(in_memory(path), again.panel)


def test_a_failed_import_leaves_no_work_files(tmp_path, monkeypatch, isolated_cache):
    monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
    path = tmp_path / "AAA_5min.csv"
    path.write_text("datetime,close,volume\n" + "2024-03-04,10,1\n" * 50, encoding="utf-8")  # daily, repeated
    with pytest.raises(DataError, match="repeat a symbol's timestamp"):
        import_bars(path)
    assert not isolated_cache.exists() or list(isolated_cache.iterdir()) == []


def test_an_unwritable_cache_imports_into_a_temporary_file(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
    path = long_file(tmp_path / "bars.csv")
    result = import_bars(path)
    assert not result.cached and mapping(result.panel.values) is not None
    assert_same_panel(in_memory(path), result.panel)


def test_many_buckets_of_one_symbol_each(tmp_path):
    path = long_file(tmp_path / "bars.csv")
    memory = load_bars(path, cache=False)
    assert_same_panel(memory, on_disk([path], tmp_path, "d", 64, source=memory.source))


def test_a_mapped_cache_entry_linked_elsewhere_is_not_read_through_and_is_rebuilt_in_its_place(
        tmp_path, monkeypatch, isolated_cache):
    # someone plants imports/<key> -> a folder of their own holding a whole panel of other numbers: the
    # import neither reads it nor writes into it; the link is replaced by the real entry
    monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
    path = long_file(tmp_path / "bars.csv")
    first = import_bars(path)
    entry = first.cache_file
    planted = tmp_path / "planted"
    entry.rename(planted)
    values = planted / "values.npy"
    doctored = np.load(values, mmap_mode="r+")
    doctored[:] = 123.0
    doctored.flush()
    del doctored
    before = {p.name: p.read_bytes() for p in planted.iterdir()}
    os.symlink(planted, entry)
    again = import_bars(path)
    assert not again.from_cache
    assert not entry.is_symlink() and entry.is_dir()
    assert_same_panel(in_memory(path), again.panel)
    assert {p.name: p.read_bytes() for p in planted.iterdir()} == before
