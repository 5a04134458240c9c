"""Close-only data (issue 27): files with a timestamp and a close but no volume import (fields a graph does not
read are not required), a graph reading the close trains on them, and a graph reading volume is refused
before training in one line naming its features and the files' columns; in memory and through the import
of folders larger than memory alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studio.cli import main
from studio.data.importer import ImportConfig, column_mapping
from studio.data.load import load_bars
from studio.data.store import mapping
from tests.conftest import GRAPHS, SHARED_DATA

US = SHARED_DATA / "us_stocks_5min"
CLOSE_ONLY_GRAPH = GRAPHS / "close_only.json"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(params=["memory", "disk"])
def import_path(request, monkeypatch):
    """In memory, and through buckets on disk into a mapped panel (files read by batches)."""
    if request.param == "disk":
        from studio.data import import_chunked

        monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
        monkeypatch.setattr(import_chunked, "BUCKET_BYTES", 200_000)
        monkeypatch.setattr(import_chunked, "STREAM_ABOVE_BYTES", 50_000)
        monkeypatch.setattr(import_chunked, "CSV_BLOCK_BYTES", 100_000)
    return request.param


def close_only_folder(folder: Path, symbols: int = 12, days: int = 60, seed: int = 0) -> Path:
    """``symbols`` files of 24 fifteen-minute bars a day (10:00 .. 15:45) with a timestamp and a close only:
    random-walk prices."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    dates = pd.bdate_range("2025-01-06", periods=days)
    times = pd.timedelta_range("10:00:00", periods=24, freq="15min")
    stamps = (dates.values[:, None] + times.values[None, :]).ravel()
    for i in range(symbols):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.003, len(stamps))))
        frame = pd.DataFrame({"timestamp": pd.DatetimeIndex(stamps).strftime("%Y-%m-%d %H:%M:%S"),
                              "close": np.round(close, 4)})
        frame.to_csv(folder / f"S{i:02d}.csv", index=False)
    return folder


def test_a_close_only_folder_imports_with_close_alone(tmp_path, import_path):
    folder = close_only_folder(tmp_path / "bars", symbols=4, days=12)
    panel = load_bars(folder, ImportConfig())
    assert (mapping(panel.values) is not None) == (import_path == "disk")
    assert panel.features == ["close"]
    assert panel.n_symbols == 4 and panel.n_days == 12 and panel.bars_per_day == 24
    expected = pd.read_csv(folder / "S02.csv")["close"].to_numpy().reshape(12, 24)
    np.testing.assert_array_equal(panel.day_bars("close")[2], expected.astype(np.float32))
    left_out = [n for n in panel.notes if n.startswith("volume and turnover left out")]
    assert left_out == ["volume and turnover left out of the data: the files have no volume or turnover column "
                        "(S00.csv has timestamp, close)"]
    assert not any("turnover derived" in n for n in panel.notes)
    assert ("volume", "not in the files", 4) in column_mapping(folder, ImportConfig())
    assert ("turnover", "not in the files", 4) in column_mapping(folder, ImportConfig())


def test_some_files_without_volume_leave_volume_out_and_say_which(tmp_path, import_path):
    folder = close_only_folder(tmp_path / "bars", symbols=3, days=6)
    with_volume = pd.read_csv(folder / "S01.csv").assign(volume=1000.0)
    with_volume.to_csv(folder / "S01.csv", index=False)
    panel = load_bars(folder, ImportConfig())
    assert panel.features == ["close"]
    assert any(n.startswith("volume and turnover left out of the data: 2 of 3 files have no volume or turnover "
                            "column (S00.csv has timestamp, close)") for n in panel.notes)


def test_turnover_without_volume_is_kept_and_not_derived(tmp_path, import_path):
    folder = close_only_folder(tmp_path / "bars", symbols=3, days=6)
    for path in folder.iterdir():
        frame = pd.read_csv(path)
        frame.assign(amount=frame["close"] * 100).to_csv(path, index=False)
    panel = load_bars(folder, ImportConfig())
    assert panel.features == ["close", "turnover"]
    close, turnover = panel.day_bars("close"), panel.day_bars("turnover")
    np.testing.assert_allclose(turnover, close * 100, rtol=1e-6)
    assert any(n.startswith("volume left out of the data: the files have no volume column") for n in panel.notes)
    assert panel.counts["files with turnover derived as close x volume"] == 0


def test_a_close_graph_trains_on_close_only_files_and_a_volume_graph_is_refused_in_one_line(
        tmp_path, capsys, import_path):
    folder = close_only_folder(tmp_path / "bars")
    runs = tmp_path / "runs"
    base = ["--data", str(folder), "--out", str(runs), "--epochs", "1", "--patience", "0", "--threads", "1", "-q"]
    assert main(["train", str(CLOSE_ONLY_GRAPH), *base]) == 0
    (run,) = runs.iterdir()
    assert (run / "metrics.json").is_file() and (run / "model.pt").is_file()
    capsys.readouterr()

    assert main(["train", str(GRAPHS / "default.json"), *base]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.endswith("the graph reads close, volume, turnover; the data has close only: the files have no "
                        "volume or turnover column (S00.csv has timestamp, close)")
    assert len(list(runs.iterdir())) == 1  # refused before a run folder was made


@pytest.mark.usefixtures("shared_data")
def test_real_files_without_their_volume_import_the_same_closes(tmp_path, import_path):
    symbols = ("AAPL", "AFRM", "BA")
    full, close_only = tmp_path / "full", tmp_path / "close_only"
    full.mkdir()
    close_only.mkdir()
    for symbol in symbols:
        frame = pd.read_csv(US / f"{symbol}_5min.csv.gz")
        assert "volume" in frame.columns
        frame.to_csv(full / f"{symbol}_5min.csv", index=False)
        frame.drop(columns=["volume"]).to_csv(close_only / f"{symbol}_5min.csv", index=False)
    a, b = load_bars(full, ImportConfig()), load_bars(close_only, ImportConfig())
    assert a.features == ["open", "high", "low", "close", "volume", "turnover"]
    assert b.features == ["open", "high", "low", "close"]
    assert a.symbols == b.symbols and a.bars_per_day == b.bars_per_day == 78
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.traded, b.traded)
    for field in b.features:
        assert a.day_bars(field).tobytes() == b.day_bars(field).tobytes(), field  # bit for bit, NaN included


def test_data_inspect_says_which_fields_the_data_lacks_and_why(tmp_path, capsys, import_path):
    folder = close_only_folder(tmp_path / "bars", symbols=3, days=6)
    assert main(["data", "inspect", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "features: close (not in the data: volume, turnover)" in lines
    assert ("  - volume and turnover left out of the data: the files have no volume or turnover column (S00.csv has "
            "timestamp, close)") in lines


def test_data_inspect_words_the_value_notes_for_the_fields_close_only_data_has(tmp_path, capsys, import_path):
    # the value notes spoke of "NaN or negative volume / turnover set to 0 (0 / 0)" on data without either
    folder = close_only_folder(tmp_path / "bars", symbols=3, days=6)
    assert main(["data", "inspect", str(folder)]) == 0
    notes = [line[4:] for line in capsys.readouterr().out.splitlines() if line.startswith("  - ")]
    assert "infinite values, and numbers no price (over 1e9) is, are bad values: such a close makes the bar missing " \
           "(none)" in notes
    assert "a NaN, zero or negative close makes the bar missing (0 bars)" in notes
    assert ("short days: the missing bars of a traded day are filled: close carried from the previous bar (the "
            "previous day's close for a day's first bars) (0 symbol-days, 0 bars; 0 before a symbol's first bar "
            "take that bar's close)") in notes
    assert "suspended days (listed, not traded): traded False, bars filled with the previous close (0 symbol-days)" \
        in notes
    left_out = [n for n in notes if n.startswith("volume and turnover left out of the data")]
    assert len(left_out) == 1
    for note in set(notes) - set(left_out):
        assert not any(word in note for word in ("volume", "turnover", "open", "high", "low")), note


def test_the_value_notes_name_turnover_alone_where_the_files_have_an_amount_but_no_volume(tmp_path, import_path):
    folder = close_only_folder(tmp_path / "bars", symbols=3, days=6)
    for path in folder.iterdir():
        frame = pd.read_csv(path)
        turnover = frame["close"] * 100
        turnover[5] = -1.0  # one negative amount, set to 0 and counted
        frame.assign(amount=turnover).to_csv(path, index=False)
    panel = load_bars(folder, ImportConfig())
    assert panel.features == ["close", "turnover"]
    assert ("a NaN, zero or negative close makes the bar missing (0 bars); NaN or negative turnover set to 0 (3)"
            in panel.notes)
    assert any(n.startswith("infinite values, and numbers no price (over 1e9) or turnover (over 1e15) is, are bad "
                            "values: such a close makes the bar missing, such a turnover is set to 0 (")
               for n in panel.notes)
    assert any(n.endswith(", turnover 0 (0 symbol-days, 0 bars; 0 before a symbol's first bar take that bar's "
                          "close)") for n in panel.notes)


# ---- returns-only data: the close rebuilt as an index ---------------------------------------------

def returns_folder(folder: Path, symbols: int = 3, days: int = 8, seed: int = 1) -> Path:
    """Files of 24 bars a day with a timestamp and a simple return (column ``ret``) only."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    dates = pd.bdate_range("2025-03-03", periods=days)
    times = pd.timedelta_range("10:00:00", periods=24, freq="15min")
    stamps = pd.DatetimeIndex((dates.values[:, None] + times.values[None, :]).ravel())
    for i in range(symbols):
        frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"),
                              "ret": rng.normal(0, 0.004, len(stamps))})
        frame.to_csv(folder / f"R{i:02d}.csv", index=False)
    return folder


def test_returns_only_files_rebuild_the_close_as_the_cumulative_product(tmp_path, import_path):
    folder = returns_folder(tmp_path / "bars")
    frame = pd.read_csv(folder / "R01.csv")
    frame.loc[30, "ret"] = np.nan  # a missing return, and one that would take the price below zero
    frame.loc[50, "ret"] = -1.5
    frame.to_csv(folder / "R01.csv", index=False)
    panel = load_bars(folder, ImportConfig())
    assert panel.features == ["close"] and panel.symbols == ["R00", "R01", "R02"]
    # the reference: a plain loop over the rows, compounding only the usable returns
    level, expected = 1.0, []
    for r in frame["ret"]:
        usable = np.isfinite(r) and r > -1
        level = level * (1 + r) if usable else level
        expected.append(level if usable else np.nan)
    expected = np.array(expected, dtype=np.float32).reshape(8, 24)
    # a missing bar of a traded day carries the close of the bar before it
    expected[1, 6], expected[2, 2] = expected[1, 5], expected[2, 1]
    assert panel.day_bars("close")[1].tobytes() == expected.tobytes()
    assert panel.counts["bars with a missing, infinite or <= -100% return treated as missing"] == 2
    assert any(n.startswith("close rebuilt from returns (column 'ret', read as simple returns: 0.01 = 1%)")
               for n in panel.notes)
    assert ("close", "index from the returns in column 'ret'", 3) in column_mapping(folder, ImportConfig())


def test_files_with_returns_and_files_with_prices_are_not_mixed(tmp_path, capsys, import_path):
    folder = returns_folder(tmp_path / "bars")
    close_only_folder(folder, symbols=1, days=8)
    assert main(["data", "inspect", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "R00.csv: holds returns (column 'ret') while" in err and "S00.csv holds prices" in err


@pytest.mark.usefixtures("shared_data")
def test_real_files_as_returns_give_the_closes_over_the_first_one(tmp_path, import_path):
    symbols = ("AAPL", "BA")
    prices, returns = tmp_path / "prices", tmp_path / "returns"
    prices.mkdir()
    returns.mkdir()
    first = {}
    for symbol in symbols:
        frame = pd.read_csv(US / f"{symbol}_5min.csv.gz")
        frame[["datetime", "close"]].to_csv(prices / f"{symbol}.csv", index=False)
        ret = frame["close"].pct_change().fillna(0.0)  # the first row: the index starts at 1
        pd.DataFrame({"datetime": frame["datetime"], "ret": ret}).to_csv(returns / f"{symbol}.csv", index=False)
        first[symbol] = frame["close"].iloc[0]
    a, b = load_bars(prices, ImportConfig()), load_bars(returns, ImportConfig())
    assert a.symbols == b.symbols and a.features == b.features == ["close"]
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.traded, b.traded)
    for i, symbol in enumerate(a.symbols):
        close, index = a.day_bars("close")[i], b.day_bars("close")[i]
        np.testing.assert_array_equal(np.isnan(close), np.isnan(index))
        # two float32 roundings apart at most (the index's and the price's)
        np.testing.assert_allclose(index * first[symbol], close, rtol=2.5e-7)


@pytest.mark.parametrize("make", [close_only_folder, returns_folder], ids=["close_only", "returns"])
def test_the_chunked_import_gives_the_in_memory_panel_bit_for_bit(tmp_path, monkeypatch, make):
    from studio.data import import_chunked
    from tests.test_import_chunked import assert_same_panel, in_memory, on_disk

    folder = make(tmp_path / "bars", symbols=5, days=6)
    memory = in_memory(folder)
    files = sorted(folder.iterdir())
    monkeypatch.setattr(import_chunked, "STREAM_ABOVE_BYTES", 0)  # every file read by batches
    monkeypatch.setattr(import_chunked, "CSV_BLOCK_BYTES", 1 << 12)
    for buckets in (1, 3):  # each symbol's returns compounded on their own, whatever shares its bucket
        assert_same_panel(memory, on_disk(files, tmp_path, f"b{buckets}", buckets, source=memory.source))


def test_prices_beside_returns_are_not_read_and_a_named_returns_column_wins_over_a_close(tmp_path, import_path):
    folder = returns_folder(tmp_path / "bars")
    for path in folder.iterdir():
        frame = pd.read_csv(path)
        frame.assign(open=100.0, price=100.0).to_csv(path, index=False)
    # the usual names: the close column ('price') wins, returns are not read
    assert load_bars(folder, ImportConfig()).day_bars("close")[0, 0, 0] == 100.0
    # returns named: the close is their index; the open (a price on another scale) is not read
    panel = load_bars(folder, ImportConfig(returns="ret"))
    ret = pd.read_csv(folder / "R00.csv")["ret"]
    assert panel.features == ["close"]
    assert panel.day_bars("close")[0, 0, 0] == np.float32(1 + ret[0])
    mapped = dict(((fld, source) for fld, source, _ in column_mapping(folder, ImportConfig(returns="ret"))))
    assert mapped["open"] == "not read (the close is an index rebuilt from returns)"
