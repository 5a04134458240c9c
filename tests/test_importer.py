"""Importing real bars: the two real data sets read in place, a small hand-made market per policy, the
Parquet cache, and `studio data inspect`."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studio.cli import main
from studio.data import cache as data_cache
from studio.data import importer
from studio.data.importer import DataError, ImportConfig
from studio.data.labels import panel_labels
from studio.data.load import import_bars, load_bars

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
US = DATA / "us_stocks_5min"
SSE_HOURLY = DATA / "sse50_hourly" / "A_stock_hourly.csv"
SSE_DAILY = DATA / "sse50_hourly" / "daily_prices_sse_50.csv"
needs_data = pytest.mark.usefixtures("shared_data")

TIMES = ("09:30", "09:35", "09:40", "09:45", "09:50", "09:55")
DAYS = ("2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05")
HEADER = ("datetime", "open", "high", "low", "close", "volume")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(folder))
    return folder / "imports"


#: tests of how the in-memory import is cached (the on-disk one has its own: tests/test_import_chunked.py)
MEMORY_ONLY = {"test_second_load_is_served_from_the_cache", "test_a_corrupt_cache_is_ignored_and_rebuilt"}


def pytest_generate_tests(metafunc):
    # every policy test runs twice: in memory, and through the import of folders larger than memory
    # (buckets of a few symbols on disk, files read by small batches, the panel in a mapped file)
    if metafunc.function.__name__ not in MEMORY_ONLY:
        metafunc.fixturenames.append("import_path")
        metafunc.parametrize("import_path", ["memory", "disk"], indirect=True)


@pytest.fixture
def import_path(request, monkeypatch):
    if request.param == "disk":
        from studio.data import import_chunked

        monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
        monkeypatch.setattr(import_chunked, "BUCKET_BYTES", 4000)
        monkeypatch.setattr(import_chunked, "STREAM_ABOVE_BYTES", 500)
        monkeypatch.setattr(import_chunked, "CSV_BLOCK_BYTES", 600)
        monkeypatch.setattr(import_chunked, "PARQUET_BATCH_ROWS", 50)
    return request.param


# ---- a small hand-made market -----------------------------------------------------------------------

def close_of(symbol: str, day: int, bar: int) -> float:
    """The fixture's close of bar ``bar`` of day ``day`` (index into DAYS) of ``symbol``: exact in float32."""
    base = {"AAA": 10.0, "BBB": 20.0, "CCC": 40.0, "DDD": 80.0, "EEE": 160.0}[symbol]
    return base + day + bar * 0.125


def day_rows(symbol: str, day: int, bars=None, volume: int = 100) -> list[list]:
    rows = []
    for b in range(len(TIMES)) if bars is None else bars:
        c = close_of(symbol, day, b)
        rows.append([f"{DAYS[day]} {TIMES[b]}:00", c - 0.0625, c + 0.25, c - 0.25, c, volume + b])
    return rows


def full_rows(symbol: str, days=None) -> list[list]:
    return [row for d in (range(len(DAYS)) if days is None else days) for row in day_rows(symbol, d)]


def write_csv(path: Path, rows: list[list], header=HEADER) -> Path:
    text = ",".join(header) + "\n" + "".join(",".join("" if v is None else str(v) for v in r) + "\n"
                                             for r in rows)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def market(folder: Path, **rows_by_symbol: list[list]) -> Path:
    """One CSV per symbol, ``SYMBOL_5min.csv``, in ``folder``; symbols not given trade every bar."""
    folder.mkdir(parents=True, exist_ok=True)
    for symbol in ("AAA", "BBB", "CCC"):
        write_csv(folder / f"{symbol}_5min.csv", rows_by_symbol.pop(symbol, full_rows(symbol)))
    for symbol, rows in rows_by_symbol.items():
        write_csv(folder / f"{symbol}_5min.csv", rows)
    return folder


def bar(panel, symbol: str, day: int, b: int, feature: str) -> float:
    return float(panel.values[panel.symbols.index(symbol), day * panel.bars_per_day + b,
                              panel.feature_index(feature)])


ZERO_KEYS = ("rows without a symbol dropped", "rows with unreadable timestamps dropped",
             "duplicate timestamps dropped (last kept)", "extended-hours bars dropped",
             "off-grid bars dropped", "early-close days found", "bars after an early close dropped",
             "bars with NaN/zero/negative close treated as missing", "NaN/negative volume set to 0",
             "NaN/negative turnover set to 0", "NaN/zero open, high or low set to the close",
             "partial days treated as not traded", "dates dropped (too few symbols traded)",
             "traded symbol-days on dropped dates discarded", "symbols without a traded day dropped",
             "short days kept (missing bars filled)", "missing bars filled in traded days",
             "missing bars before a symbol's first bar filled from its open",
             "suspended days filled (listed, not traded)", "symbols starting late", "symbols ending early")


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    """The policy counts that applied (the bookkeeping ones left out)."""
    skip = {"files read", "rows read", "files with turnover derived as close x volume",
            "zero-volume bars kept"}
    return {k: v for k, v in counts.items() if v and k not in skip}


# ---- the clean case ---------------------------------------------------------------------------------

def test_clean_market_layout_and_derived_turnover(tmp_path):
    panel = load_bars(market(tmp_path / "m"))
    assert panel.symbols == ["AAA", "BBB", "CCC"]
    assert [str(d) for d in panel.dates] == list(DAYS)
    assert panel.bars_per_day == 6
    assert panel.features == ["open", "high", "low", "close", "volume", "turnover"]
    assert panel.values.shape == (3, 24, 6) and panel.values.dtype == np.float32
    assert panel.traded.all()
    assert panel.counts["files read"] == 3 and panel.counts["rows read"] == 72
    assert set(ZERO_KEYS) <= set(panel.counts) and nonzero(panel.counts) == {}
    assert panel.counts["files with turnover derived as close x volume"] == 3
    assert "turnover derived as close x volume (the files have no turnover column)" in panel.notes
    assert bar(panel, "BBB", 2, 3, "close") == close_of("BBB", 2, 3)
    assert bar(panel, "BBB", 2, 3, "volume") == 103
    assert bar(panel, "BBB", 2, 3, "turnover") == pytest.approx(close_of("BBB", 2, 3) * 103, rel=1e-6)
    np.testing.assert_allclose(panel.daily_close()[:, 0], [close_of("AAA", d, 5) for d in range(4)])
    assert "AAA_5min.csv" not in panel.source and "3 CSV files" in panel.source


# ---- one policy at a time ---------------------------------------------------------------------------

def test_duplicate_timestamps_keep_the_last_row(tmp_path):
    rows = full_rows("AAA")
    again = list(rows[1])
    again[4] = 99.5  # a second 09:35 bar on the first day, later in the file: it wins
    rows.insert(3, again)
    rows.append(list(rows[10]))  # an exact repeat at the end of the file
    panel = load_bars(market(tmp_path / "m", AAA=rows))
    assert nonzero(panel.counts) == {"duplicate timestamps dropped (last kept)": 2}
    assert bar(panel, "AAA", 0, 1, "close") == 99.5
    assert bar(panel, "AAA", 0, 2, "close") == close_of("AAA", 0, 2)
    assert any("the last row kept (2 rows dropped)" in n for n in panel.notes)


def test_missing_bars_inside_a_traded_day_are_filled(tmp_path):
    rows = (day_rows("AAA", 0) + day_rows("AAA", 1, bars=[0, 1, 4, 5])  # 09:40, 09:45 missing
            + day_rows("AAA", 2, bars=[1, 2, 3, 4, 5]) + day_rows("AAA", 3))  # 09:30 missing
    panel = load_bars(market(tmp_path / "m", AAA=rows))
    assert nonzero(panel.counts) == {"short days kept (missing bars filled)": 2,
                                     "missing bars filled in traded days": 3}
    assert panel.traded.all()
    for b in (2, 3):  # carried from the 09:35 bar of the same day; no volume
        for f in ("open", "high", "low", "close"):
            assert bar(panel, "AAA", 1, b, f) == close_of("AAA", 1, 1)
        assert bar(panel, "AAA", 1, b, "volume") == 0 and bar(panel, "AAA", 1, b, "turnover") == 0
    # a day's first bar: the previous day's close
    assert bar(panel, "AAA", 2, 0, "close") == close_of("AAA", 1, 5)
    assert bar(panel, "AAA", 2, 0, "volume") == 0
    assert bar(panel, "AAA", 2, 1, "close") == close_of("AAA", 2, 1)


def test_missing_first_bars_of_a_symbols_first_day_take_its_first_open(tmp_path):
    rows = day_rows("AAA", 0, bars=[2, 3, 4, 5]) + full_rows("AAA", days=range(1, 4))
    panel = load_bars(market(tmp_path / "m", AAA=rows))
    assert panel.counts["missing bars before a symbol's first bar filled from its open"] == 2
    assert bar(panel, "AAA", 0, 0, "close") == close_of("AAA", 0, 2) - 0.0625
    assert bar(panel, "AAA", 0, 1, "volume") == 0
    assert not np.isnan(panel.values).any()


def test_partial_day_counts_as_not_traded(tmp_path):
    aaa = day_rows("AAA", 0) + day_rows("AAA", 1) + day_rows("AAA", 2, bars=[0, 1]) + day_rows("AAA", 3)
    bbb = day_rows("BBB", 0) + day_rows("BBB", 1) + day_rows("BBB", 2, bars=[0, 1, 2]) + day_rows("BBB", 3)
    panel = load_bars(market(tmp_path / "m", AAA=aaa, BBB=bbb))
    # AAA: 2 of 6 bars (< 50%): not traded, filled like a suspension; BBB: 3 of 6 (= 50%): traded
    assert nonzero(panel.counts) == {"partial days treated as not traded": 1,
                                     "suspended days filled (listed, not traded)": 1,
                                     "short days kept (missing bars filled)": 1,
                                     "missing bars filled in traded days": 3}
    a, b = panel.symbols.index("AAA"), panel.symbols.index("BBB")
    assert not panel.traded[a, 2] and panel.traded[b, 2]
    day = panel.day_bars("close")[a, 2]
    assert np.all(day == np.float32(close_of("AAA", 1, 5)))  # the previous close, not the partial bars
    assert np.all(panel.day_bars("volume")[a, 2] == 0)
    assert np.isnan(panel.daily_close()[2, a])
    assert panel.day_bars("close")[b, 2, -1] == np.float32(close_of("BBB", 2, 2))
    assert any("fewer than 3 of the 6 bars (50%) counts as not traded" in n for n in panel.notes)


def test_partial_day_share_is_configurable(tmp_path):
    aaa = day_rows("AAA", 0) + day_rows("AAA", 1) + day_rows("AAA", 2, bars=[0, 1]) + day_rows("AAA", 3)
    panel = load_bars(market(tmp_path / "m", AAA=aaa), ImportConfig(min_day_share=0.3))
    assert panel.traded.all()
    assert panel.counts["partial days treated as not traded"] == 0
    assert panel.counts["missing bars filled in traded days"] == 4


def test_extended_hours_bars_are_dropped_and_counted(tmp_path):
    extra = [[f"{DAYS[d]} {t}:00", 11, 11, 11, 11, 5] for d in (0, 1) for t in ("08:00", "09:00", "16:00")]
    rows = full_rows("AAA") + extra + [[f"{DAYS[3]} 09:33:00", 12, 12, 12, 12, 7]]
    folder = market(tmp_path / "m", AAA=rows)
    inferred = load_bars(folder)
    assert nonzero(inferred.counts) == {"extended-hours bars dropped": 6, "off-grid bars dropped": 1}
    assert inferred.bars_per_day == 6
    assert any("session inferred from the 6 most common bar times: bars stamped 09:30 to 09:55" in n
               for n in inferred.notes)
    given = load_bars(folder, ImportConfig(session="09:30-10:00"))
    assert nonzero(given.counts) == {"extended-hours bars dropped": 6, "off-grid bars dropped": 1}
    assert any(n.startswith("session 09:30-10:00 (bar-start stamps") for n in given.notes)
    np.testing.assert_array_equal(inferred.values, given.values)
    np.testing.assert_allclose(inferred.daily_close()[:, 0], [close_of("AAA", d, 5) for d in range(4)])


def test_early_close_ends_the_day_for_every_symbol(tmp_path):
    # 2024-01-04 is a half day: AAA and BBB stop after 09:45; CCC trades on after the close
    aaa = full_rows("AAA", days=(0, 1, 3)) + day_rows("AAA", 2, bars=range(4))
    bbb = full_rows("BBB", days=(0, 1, 3)) + day_rows("BBB", 2, bars=range(4))
    panel = load_bars(market(tmp_path / "m", AAA=aaa, BBB=bbb))
    assert nonzero(panel.counts) == {"early-close days found": 1, "bars after an early close dropped": 2,
                                     "short days kept (missing bars filled)": 3,
                                     "missing bars filled in traded days": 6}
    assert panel.traded.all()
    np.testing.assert_allclose(panel.daily_close()[2], [close_of(s, 2, 3) for s in ("AAA", "BBB", "CCC")])
    assert np.all(panel.day_bars("volume")[:, 2, 4:] == 0)
    assert any("(1 date: 2024-01-04; 2 bars)" in n for n in panel.notes)


def test_bar_end_stamps_as_in_a_shares(tmp_path):
    times = ("09:30", "10:30", "11:30", "14:00", "15:00")
    rows = [[f"{DAYS[d]} {t}", "600000.SH", 10 + d + i, 1000] for d in range(3) for i, t in enumerate(times)]
    rows += [[f"{DAYS[d]} {t}", "600001.SH", 20 + d + i, 1000]
             for d in range(3) for i, t in enumerate(times[1:])]
    path = write_csv(tmp_path / "hourly.csv", rows, header=("trade_date", "stock_code", "close", "volume"))
    panel = load_bars(path, ImportConfig(session="09:30-15:00"))
    assert panel.bars_per_day == 4 and panel.symbols == ["600000.SH", "600001.SH"]
    # the 09:30 stamps end no bar of the session: they are opening prints, merged into the 10:30 bar
    assert panel.counts["extended-hours bars dropped"] == 0
    assert panel.counts["opening prints merged into the first bar"] == 3
    assert any("bar-end stamps, with opening prints at 09:30" in n for n in panel.notes)
    assert bar(panel, "600000.SH", 0, 0, "volume") == 2000  # the print's volume joins the first bar
    np.testing.assert_allclose(panel.daily_close()[:, 0], [14, 15, 16])
    start = load_bars(path, ImportConfig(session="09:30-15:00", bar_stamp="start"))
    # the 15:00 bars are after a start-stamped session
    assert start.counts["extended-hours bars dropped"] == 6


def test_late_start_and_delisting_keep_the_dates_they_traded(tmp_path):
    folder = market(tmp_path / "m", BBB=full_rows("BBB", days=range(1, 4)),
                    CCC=full_rows("CCC", days=range(2)))
    panel = load_bars(folder)
    assert [str(d) for d in panel.dates] == list(DAYS)
    assert nonzero(panel.counts) == {"symbols starting late": 1, "symbols ending early": 1}
    b, c = panel.symbols.index("BBB"), panel.symbols.index("CCC")
    assert panel.traded[b].tolist() == [False, True, True, True]
    assert panel.traded[c].tolist() == [True, True, False, False]
    assert np.isnan(panel.values[b, :6]).all() and not np.isnan(panel.values[b, 6:]).any()
    assert np.isnan(panel.values[c, 12:]).all() and not np.isnan(panel.values[c, :12]).any()
    assert (~np.isnan(panel.day_bars("close")[:, :, -1])).tolist() == [[True] * 4, [False, True, True, True],
                                                                       [True, True, False, False]]
    assert any("start late: BBB; end early: CCC" in n for n in panel.notes)


def test_suspended_day_is_filled_and_never_labelled(tmp_path):
    folder = market(tmp_path / "m", AAA=full_rows("AAA", days=(0, 1, 3)))
    panel = load_bars(folder)
    assert nonzero(panel.counts) == {"suspended days filled (listed, not traded)": 1}
    a = panel.symbols.index("AAA")
    assert panel.traded[a].tolist() == [True, True, False, True]
    assert np.all(panel.day_bars("close")[a, 2] == np.float32(close_of("AAA", 1, 5)))
    assert np.all(panel.day_bars("volume")[a, 2] == 0) and np.all(panel.day_bars("turnover")[a, 2] == 0)
    labels = panel_labels(panel, lag=0, horizon=1)
    assert np.isnan(labels[1, a]) and np.isnan(labels[2, a])  # nothing carried into a label
    assert labels[0, a] == pytest.approx(close_of("AAA", 1, 5) / close_of("AAA", 0, 5) - 1, rel=1e-6)


def test_nan_zero_and_negative_values(tmp_path):
    rows = full_rows("AAA")
    rows[1][4] = None     # NaN close
    rows[2][4] = 0        # zero close
    rows[3][4] = -1       # negative close
    rows[7][5] = None     # NaN volume
    rows[8][1] = None     # NaN open
    rows[9][4] = "bad"    # text where a number belongs: missing
    rows.append(["2024-13-45 09:30:00", 1, 1, 1, 1, 1])  # a timestamp that is none: dropped
    panel = load_bars(market(tmp_path / "m", AAA=rows))
    assert nonzero(panel.counts) == {"rows with unreadable timestamps dropped": 1,
                                     "bars with NaN/zero/negative close treated as missing": 4,
                                     "NaN/negative volume set to 0": 1,
                                     "NaN/zero open, high or low set to the close": 1,
                                     "short days kept (missing bars filled)": 2,
                                     "missing bars filled in traded days": 4}
    for b in (1, 2, 3):
        assert bar(panel, "AAA", 0, b, "close") == close_of("AAA", 0, 0)
        assert bar(panel, "AAA", 0, b, "volume") == 0
    assert bar(panel, "AAA", 1, 1, "volume") == 0 and bar(panel, "AAA", 1, 1, "turnover") == 0
    assert bar(panel, "AAA", 1, 1, "close") == close_of("AAA", 1, 1)
    assert bar(panel, "AAA", 1, 2, "open") == close_of("AAA", 1, 2)
    assert bar(panel, "AAA", 1, 3, "close") == close_of("AAA", 1, 2)
    assert panel.traded.all()


def test_separate_date_and_time_columns(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    for symbol in ("AAA", "BBB"):
        rows = [[DAYS[d].replace("-", ""), TIMES[b].replace(":", ""), close_of(symbol, d, b), 100 + b]
                for d in range(4) for b in range(6)]
        write_csv(folder / f"{symbol}.csv", rows, header=("Date", "Time", "Close", "Vol"))
    panel = load_bars(folder)
    assert panel.symbols == ["AAA", "BBB"] and panel.bars_per_day == 6
    assert panel.features == ["close", "volume", "turnover"]
    np.testing.assert_allclose(panel.daily_close()[:, 1], [close_of("BBB", d, 5) for d in range(4)])
    assert bar(panel, "AAA", 2, 4, "volume") == 104
    # text dates and "HH:MM" times, with the columns named
    rows = [[DAYS[d], TIMES[b], close_of("AAA", d, b), 100 + b] for d in range(4) for b in range(6)]
    path = write_csv(tmp_path / "AAA_x.csv", rows, header=("day_of", "bar", "px", "qty"))
    named = load_bars(path, ImportConfig(date="day_of", time="bar", close="px", volume="qty"))
    np.testing.assert_array_equal(named.values, panel.select_symbols(["AAA"]).values)


def test_parquet_files_import_like_csv(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv_folder = market(tmp_path / "csv")
    pq_folder = tmp_path / "pq"
    pq_folder.mkdir()
    for symbol in ("AAA", "BBB", "CCC"):
        frame = pd.read_csv(csv_folder / f"{symbol}_5min.csv", parse_dates=["datetime"])
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), pq_folder / f"{symbol}.parquet")
    from_csv, from_pq = load_bars(csv_folder), load_bars(pq_folder)
    assert from_pq.symbols == from_csv.symbols and from_pq.bars_per_day == 6
    np.testing.assert_array_equal(from_pq.values, from_csv.values)
    np.testing.assert_array_equal(from_pq.dates, from_csv.dates)
    assert "3 Parquet files" in from_pq.source


def test_long_file_with_a_symbol_column_and_a_turnover_column(tmp_path):
    rows = [[symbol, f"{DAYS[d]} {TIMES[b]}", close_of(symbol, d, b), 10 * (b + 1), 7.5 * (b + 1)]
            for d in range(4) for symbol in ("CCC", "AAA") for b in range(6)]
    rows.append(["", f"{DAYS[0]} 09:30", 1.0, 1, 1])  # no symbol: dropped
    path = write_csv(tmp_path / "long.csv", rows, header=("ts_code", "trade_time", "close", "vol", "amount"))
    panel = load_bars(path)
    assert panel.symbols == ["AAA", "CCC"]
    assert panel.counts["rows without a symbol dropped"] == 1
    assert panel.counts["files with turnover derived as close x volume"] == 0
    assert not any("derived" in n for n in panel.notes)
    assert bar(panel, "CCC", 3, 2, "turnover") == 22.5  # the amount column, not close x volume
    assert bar(panel, "CCC", 3, 2, "volume") == 30
    assert bar(panel, "AAA", 3, 2, "close") == close_of("AAA", 3, 2)


def test_trading_dates_need_a_share_of_the_symbols(tmp_path):
    lone = [[f"2024-01-08 {t}:00", 9, 9, 9, 9, 1] for t in TIMES]  # only AAA trades on 2024-01-08
    folder = market(tmp_path / "m", AAA=full_rows("AAA") + lone)
    strict = load_bars(folder, ImportConfig(min_date_share=0.5))
    assert [str(d) for d in strict.dates] == list(DAYS)
    assert nonzero(strict.counts) == {"dates dropped (too few symbols traded)": 1,
                                      "traded symbol-days on dropped dates discarded": 1}
    assert any("at least 2 symbols traded (50% of the most on any day, 3); 1 date dropped: 2024-01-08" in n
               for n in strict.notes)
    union = load_bars(folder, ImportConfig(min_date_share=0))
    assert [str(d) for d in union.dates] == [*DAYS, "2024-01-08"]
    assert union.traded[:, -1].tolist() == [True, False, False]
    assert union.counts["symbols ending early"] == 2
    assert any("trading dates: every day any symbol traded" in n for n in union.notes)


def test_symbol_regex_and_gzip_files(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    for symbol in ("AAA", "BBB"):
        write_csv(folder / f"bars-{symbol}-2024.csv.gz", full_rows(symbol))
    assert load_bars(folder).symbols == ["bars-AAA-2024", "bars-BBB-2024"]
    panel = load_bars(folder, ImportConfig(symbol_regex=r"bars-(\w+)-\d+"))
    assert panel.symbols == ["AAA", "BBB"]
    assert load_bars(folder, ImportConfig(pattern="*AAA*")).symbols == ["bars-AAA-2024"]


def test_header_with_a_bom_and_spaces_and_extra_columns(tmp_path):
    rows = [[f"{DAYS[d]} {TIMES[b]}", "x", close_of("AAA", d, b), 5] for d in range(2) for b in range(6)]
    text = "\ufeffDateTime , Name, Close ,VOLUME\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    (tmp_path / "AAA.csv").write_text(text, encoding="utf-8")
    panel = load_bars(tmp_path / "AAA.csv")
    assert panel.symbols == ["AAA"] and panel.n_days == 2 and panel.bars_per_day == 6
    np.testing.assert_allclose(panel.daily_close()[:, 0], [close_of("AAA", 0, 5), close_of("AAA", 1, 5)])


# ---- errors -----------------------------------------------------------------------------------------

def test_errors_name_the_file_and_field(tmp_path):
    folder = market(tmp_path / "m")
    with pytest.raises(DataError, match=r"nowhere: no such file or folder"):
        load_bars(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no data files"):
        load_bars(tmp_path / "empty")
    with pytest.raises(DataError) as err:
        load_bars(folder, ImportConfig(close="px"))
    assert str(err.value) == (f"{folder / 'AAA_5min.csv'}: no column 'px' (the close column); it has: "
                              "datetime, open, high, low, close, volume")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "XYZ.csv.gz").write_bytes(b"this is not gzip data")
    with pytest.raises(DataError, match=r"XYZ\.csv\.gz: cannot read"):
        load_bars(bad)
    nocol = write_csv(tmp_path / "n.csv", [["2024-01-02 09:30", 1.0]], header=("datetime", "bid"))
    with pytest.raises(DataError,
                       match=r"n\.csv: no close column \(tried close, .*\); it has: datetime, bid"):
        load_bars(nocol)
    with pytest.raises(DataError, match=r"no bars left after filtering"):
        load_bars(folder, ImportConfig(session="12:00-13:00"))
    with pytest.raises(DataError, match=r"session '9-5' is not HH:MM-HH:MM"):
        ImportConfig(session="9-5")
    (tmp_path / "bars.xlsx").write_bytes(b"PK")
    with pytest.raises(DataError, match=r"bars\.xlsx: not a CSV or Parquet file"):
        load_bars(tmp_path / "bars.xlsx")
    daily = write_csv(folder / "daily.csv", [["SYM", "2024-01-02", 1.0, 5]],
                      header=("symbol", "date", "close", "volume"))
    with pytest.raises(DataError, match=r"daily\.csv: holds dates without a time of day"):
        load_bars(folder)
    assert load_bars(daily).bars_per_day == 1


# ---- the cache --------------------------------------------------------------------------------------

def test_second_load_is_served_from_the_cache(tmp_path, monkeypatch, isolated_cache):
    folder = market(tmp_path / "m", BBB=full_rows("BBB", days=(0, 1, 3)))
    first = import_bars(folder)
    assert not first.from_cache and first.cache_file.parent == isolated_cache and first.cache_file.is_file()

    def no_reading(*args, **kwargs):
        raise AssertionError("the raw files were read again")

    monkeypatch.setattr(importer, "read_file", no_reading)
    second = import_bars(folder)
    assert second.from_cache and second.cache_file == first.cache_file
    a, b = first.panel, second.panel
    assert (a.symbols, a.features, a.bars_per_day, a.notes, a.counts, a.source) == \
           (b.symbols, b.features, b.bars_per_day, b.notes, b.counts, b.source)
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.traded, b.traded)
    np.testing.assert_array_equal(a.values, b.values)  # NaN where NaN
    assert b.values.dtype == np.float32


def test_a_changed_file_or_config_invalidates_the_cache(tmp_path, monkeypatch):
    folder = market(tmp_path / "m")
    import_bars(folder)
    calls = []
    real = importer.read_file
    monkeypatch.setattr(importer, "read_file",
                        lambda path, config: calls.append(path.name) or real(path, config))
    assert import_bars(folder).from_cache and calls == []
    write_csv(folder / "AAA_5min.csv", full_rows("AAA", days=range(3)))
    os.utime(folder / "AAA_5min.csv", ns=(1, 1_000_000_000))
    changed = import_bars(folder)
    assert not changed.from_cache and len(calls) == 3
    assert changed.panel.counts["symbols ending early"] == 1
    assert not import_bars(folder, ImportConfig(min_day_share=0.9)).from_cache
    assert import_bars(folder).from_cache
    write_csv(folder / "DDD_5min.csv", full_rows("DDD"))  # a new file in the folder
    added = import_bars(folder)
    assert not added.from_cache and added.panel.symbols[-1] == "DDD"


def test_a_corrupt_cache_is_ignored_and_rebuilt(tmp_path):
    folder = market(tmp_path / "m")
    first = import_bars(folder)
    first.cache_file.write_bytes(b"PAR1 not really parquet")
    again = import_bars(folder)
    assert not again.from_cache
    np.testing.assert_array_equal(again.panel.values, first.panel.values)
    assert import_bars(folder).from_cache
    assert data_cache.read_panel(tmp_path / "missing.parquet") is None


def test_an_unwritable_cache_only_costs_speed(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(blocker / "cache"))
    folder = market(tmp_path / "m")
    first, second = import_bars(folder), import_bars(folder)
    assert not first.cached and not second.from_cache
    np.testing.assert_array_equal(first.panel.values, second.panel.values)


def test_no_cache_neither_reads_nor_writes(tmp_path, isolated_cache):
    folder = market(tmp_path / "m")
    result = import_bars(folder, cache=False)
    assert result.cache_file is None and not isolated_cache.exists()


# ---- the real data sets, read in place ---------------------------------------------------------------

ENDING_2026_03_09 = ["AVGO", "BA", "CAT", "COST", "CRM", "GS", "HAL", "JOBY", "LCID", "LMT", "MARA", "MELI",
                     "META", "NIO", "OXY", "PANW", "PYPL", "SLB", "SOFI"]


@pytest.fixture(scope="module")
def us_panel():
    return load_bars(US, cache=False)


@needs_data
def test_us_5min_bars(us_panel):
    p = us_panel
    dates = [str(d) for d in p.dates]
    assert p.n_symbols == 64 and p.symbols[:3] == ["AAPL", "ADBE", "AFRM"]
    assert p.bars_per_day == 78
    # 2025-05-12 .. 2026-03-11: MSTR's 12 lone early days and the partial last day are no trading dates
    assert p.n_days == 209 and dates[0] == "2025-05-12" and dates[-1] == "2026-03-11"
    c = p.counts
    assert c["rows read"] == 1_041_873
    assert c["extended-hours bars dropped"] == 7_136
    assert c["dates dropped (too few symbols traded)"] == 13
    assert c["traded symbol-days on dropped dates discarded"] == 12
    assert c["partial days treated as not traded"] == 44  # 2026-03-12, ends 10:30: 12-14 of 78 bars
    assert c["duplicate timestamps dropped (last kept)"] == 0 and c["off-grid bars dropped"] == 0
    assert c["symbols ending early"] == 20 and c["symbols starting late"] == 0
    assert c["suspended days filled (listed, not traded)"] == 0
    assert c["zero-volume bars kept"] == 810
    assert c["early-close days found"] == 3 and c["bars after an early close dropped"] == 42
    assert any("2025-04-24 .. 2025-05-09 (12), 2026-03-12" in n for n in p.notes)
    # delisted (the files stop): kept for the dates they traded, then traded False with NaN bars
    i9 = dates.index("2026-03-09")
    ended = [s for k, s in enumerate(p.symbols) if p.traded[k, i9] and not p.traded[k, i9 + 1:].any()]
    assert ended == ENDING_2026_03_09
    for s in ended:
        k = p.symbols.index(s)
        assert p.traded[k, :i9 + 1].all()
        assert np.isnan(p.values[k, (i9 + 1) * 78:]).all()
    mstr = p.symbols.index("MSTR")
    assert p.traded[mstr, dates.index("2026-03-06")] and not p.traded[mstr, i9:].any()
    assert p.traded[:, -1].sum() == 44
    assert p.describe()["stocks_per_day_min"] == 44
    # short days: the three half days (13:00 close) are traded for every symbol, bars after 12:55 filled
    # (the after-hours bars some files hold after 13:00 on those days are dropped)
    assert c["short days kept (missing bars filled)"] == 207
    for half in ("2025-07-03", "2025-11-28", "2025-12-24"):
        assert p.traded[:, dates.index(half)].all()
    aapl = pd.read_csv(US / "AAPL_5min.csv.gz", parse_dates=["datetime"])
    d = dates.index("2025-07-03")
    a = p.symbols.index("AAPL")
    half_day = aapl[aapl.datetime.dt.strftime("%Y-%m-%d") == "2025-07-03"]
    assert len(half_day) == 42 and half_day.datetime.iloc[-1].strftime("%H:%M") == "12:55"
    assert p.daily_close()[d, a] == pytest.approx(half_day.close.iloc[-1], rel=1e-6)
    assert np.all(p.day_bars("volume")[a, d, 42:] == 0)
    assert np.all(p.day_bars("volume")[a, d, :42] == half_day.volume.to_numpy(np.float32))
    nflx = pd.read_csv(US / "NFLX_5min.csv.gz", parse_dates=["datetime"])
    nflx = nflx[(nflx.datetime >= "2025-11-28 09:30") & (nflx.datetime < "2025-11-28 16:00")]
    nflx = nflx.set_index("datetime").close
    assert len(nflx) == 49 and nflx.iloc[-1] != nflx[pd.Timestamp("2025-11-28 12:55")]  # 7 bars after 13:00
    d, n = dates.index("2025-11-28"), p.symbols.index("NFLX")
    assert p.daily_close()[d, n] == pytest.approx(nflx[pd.Timestamp("2025-11-28 12:55")], rel=1e-6)
    # turnover derived (and said so); no NaN inside any symbol's span
    assert c["files with turnover derived as close x volume"] == 64
    assert "turnover derived as close x volume (the files have no turnover column)" in p.notes
    v = p.values[a, d * 78 + 5]
    close, volume = v[p.feature_index("close")], v[p.feature_index("volume")]
    assert v[p.feature_index("turnover")] == pytest.approx(close * volume, rel=1e-6)
    listed = ~np.isnan(p.day_bars("close")[:, :, -1])
    assert not np.isnan(p.values.reshape(64, p.n_days, 78, 6)[listed]).any()
    # the first bar of the first day, from the file
    assert p.values[a, 0, p.feature_index("open")] == np.float32(aapl.open.iloc[0])


@needs_data
def test_us_session_given_explicitly_matches_the_inferred_one(us_panel):
    given = load_bars(US, ImportConfig(session="09:30-16:00"), cache=False)
    assert given.counts["extended-hours bars dropped"] == 7_136
    np.testing.assert_array_equal(given.values, us_panel.values)


@needs_data
def test_sse50_hourly_bars_and_their_daily_closes():
    p = load_bars(SSE_HOURLY, cache=False)
    assert p.n_symbols == 50 and p.bars_per_day == 4 and p.n_days == 30
    assert str(p.dates[0]) == "2025-10-09" and str(p.dates[-1]) == "2025-11-19"
    assert p.traded.all() and nonzero(p.counts) == {}
    assert any("bar times 10:30, 11:30, 14:00, 15:00" in n for n in p.notes)
    # the last hourly bar (15:00) against tushare's daily close
    daily = pd.read_csv(SSE_DAILY)
    daily["date"] = pd.to_datetime(daily.trade_date.astype(str), format="%Y%m%d")
    closes = daily.pivot(index="date", columns="ts_code", values="close")
    closes = closes.reindex(index=pd.DatetimeIndex(p.dates), columns=p.symbols).to_numpy()
    hourly = p.daily_close()
    both = ~np.isnan(hourly) & ~np.isnan(closes)
    assert both.sum() == 1500
    mismatch = both & (np.abs(hourly - closes) > 0.005)
    print(f"\nA-share daily close, hourly file vs daily file: {int(mismatch.sum())} of {int(both.sum())} "
          f"stock-days differ, in {int(mismatch.any(axis=0).sum())} stocks")
    # The hourly file is forward-adjusted for dividends: 141 stock-days of 12 stocks, all before each
    # stock's ex-dividend date, are 0.1% to 4% below the raw daily close; every other day agrees.
    assert int(mismatch.sum()) == 141 and int(mismatch.any(axis=0).sum()) == 12
    for k in np.flatnonzero(mismatch.any(axis=0)):
        n = int(mismatch[:, k].sum())
        assert mismatch[:n, k].all() and not mismatch[n:, k].any()
        ratio = hourly[:n, k] / closes[:n, k]
        assert np.all((ratio > 0.95) & (ratio < 1.0))
    # ... so the daily returns (which labels use) agree everywhere with tushare's pct_chg
    pct = daily.pivot(index="date", columns="ts_code", values="pct_chg")
    pct = pct.reindex(index=pd.DatetimeIndex(p.dates), columns=p.symbols).to_numpy()
    returns = hourly[1:] / hourly[:-1] - 1
    assert np.nanmax(np.abs(returns * 100 - pct[1:])) < 0.15


# ---- the command line -------------------------------------------------------------------------------

def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@needs_data
def test_inspect_us_folder(capsys):
    code, out, err = run(capsys, "data", "inspect", str(US))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert "symbols: 64 (AAPL, ADBE, AFRM, AMD, AMZN, ARM, AVGO, BA, ...)" in lines
    assert "dates: 209 (2025-05-12 .. 2026-03-11)" in lines
    assert "bars per day: 78" in lines
    assert "stocks per day: min 44, median 64, max 64" in lines
    assert "features: open, high, low, close, volume, turnover" in lines
    assert any(line.startswith("loaded: imported; cached in ") for line in lines)
    assert any(line.split() == ["extended-hours", "bars", "dropped", "7,136"] for line in lines)
    assert any(line.split() == ["partial", "days", "treated", "as", "not", "traded", "44"] for line in lines)
    assert "  - turnover derived as close x volume (the files have no turnover column)" in lines
    code, out, _ = run(capsys, "data", "inspect", str(US))
    assert code == 0 and "loaded: read from the cache (" in out


@needs_data
def test_inspect_sse50_hourly_json(capsys):
    code, out, err = run(capsys, "data", "inspect", str(SSE_HOURLY), "--session", "09:30-15:00", "--json")
    assert code == 0 and err == ""
    info = json.loads(out)
    assert (info["symbols"], info["bars_per_day"], info["dates"]) == (50, 4, 30)
    assert info["stocks_per_day_min"] == info["stocks_per_day_max"] == 50
    assert info["symbol_list"][0] == "600028.SH" and len(info["symbol_list"]) == 50
    assert info["counts"]["extended-hours bars dropped"] == 0
    assert any("bar-end stamps" in n for n in info["notes"])


def test_inspect_synthetic(capsys):
    code, out, err = run(capsys, "data", "inspect", "synthetic")
    assert code == 0 and err == ""
    assert out.startswith("source: synthetic")
    assert "bars per day: 24" in out.splitlines() and "symbols: 240 (S000," in out


def test_inspect_fixture_with_mapping_options(capsys, tmp_path):
    rows = [[DAYS[d], TIMES[b], close_of("AAA", d, b), 5] for d in range(4) for b in range(6)]
    path = write_csv(tmp_path / "AAA.csv", rows, header=("d", "t", "px", "q"))
    code, out, err = run(capsys, "data", "inspect", str(path), "--date-col", "d", "--time-col", "t",
                         "--close-col", "px", "--volume-col", "q", "--no-cache")
    assert code == 0 and err == ""
    assert "symbols: 1 (AAA)" in out and "bars per day: 6" in out and "loaded: imported (cache off)" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["data", "inspect", "/no/such/place"], "studio: /no/such/place: no such file or folder"),
    (["data", "inspect", "{m}", "--close-col", "px"], "no column 'px' (the close column); it has: datetime"),
    (["data", "inspect", "{m}", "--session", "9am-5pm"], "studio: session '9am-5pm' is not HH:MM-HH:MM"),
    (["data", "inspect", "{m}", "--session", "12:00-13:00"], "no bars left after filtering"),
    (["data", "inspect", "{m}", "--min-day-share", "2"], "studio: min_day_share must be in (0, 1], gets 2.0"),
    (["data", "inspect", "{bad}"], "XYZ.csv.gz: cannot read"),
    (["data", "inspect", "{m}", "--bar-stamp", "middle"], "invalid choice: 'middle'"),
    (["data"], "studio data: name a command: inspect"),
])
def test_inspect_bad_input_exits_2_with_one_line(capsys, tmp_path, argv, message):
    folder = market(tmp_path / "m")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "XYZ.csv.gz").write_bytes(b"\x1f\x8b not really gzip")
    argv = [a.format(m=folder, bad=bad) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
    assert "Traceback" not in err


# ---- date + time-of-day columns, closing prints, duplicates that mean a missed column ---------------

def minute_files(folder: Path, time_text, *, header_time: str = "ToD", days: int = 3, symbols=("AAA", "BBB"),
                 last: str = "16:00", step: int = 1) -> Path:
    """1-minute (or ``step``-minute) bars 09:30 .. ``last`` inclusive, one file per symbol, with separate
    date and time-of-day columns; ``time_text(minute_of_day)`` writes the time."""
    folder.mkdir(parents=True, exist_ok=True)
    end = int(last[:2]) * 60 + int(last[3:])
    for s_i, symbol in enumerate(symbols):
        rows = []
        for d in range(days):
            for i, minute in enumerate(range(570, end + 1, step)):
                c = 10.0 * (s_i + 1) + d + i * 0.0625
                rows.append([DAYS[d], time_text(minute), c, c + 0.5, c - 0.5, c, 100 + i])
        write_csv(folder / f"{symbol}.csv", rows, header=("date", header_time, "open", "high", "low", "close",
                                                           "volume"))
    return folder


TIME_WRITERS = {
    "hhmm": lambda m: (m // 60) * 100 + m % 60,
    "HH:MM": lambda m: f"{m // 60:02d}:{m % 60:02d}",
    "HH:MM:SS": lambda m: f"{m // 60:02d}:{m % 60:02d}:00",
    "hhmmss": lambda m: ((m // 60) * 100 + m % 60) * 100,
    "minutes": lambda m: m,
    "seconds": lambda m: m * 60,
}


@pytest.mark.parametrize("form", list(TIME_WRITERS))
def test_date_and_time_of_day_columns_need_no_options(tmp_path, form):
    """`date,ToD,...` 1-minute files, 09:30 .. 16:00 inclusive (391 stamps): the ToD column is found, and
    the 16:00 stamp is the closing print, merged into the 15:59 bar."""
    folder = minute_files(tmp_path / "m", TIME_WRITERS[form])
    panel = load_bars(folder)
    assert panel.bars_per_day == 390
    assert panel.counts["duplicate timestamps dropped (last kept)"] == 0
    assert panel.counts["closing prints merged into the last bar"] == 2 * 3
    assert panel.counts["extended-hours bars dropped"] == 0
    last = 390  # index of the 16:00 print among the day's stamps 09:30 .. 16:00
    for d in range(3):
        print_close = 10.0 + d + last * 0.0625
        assert bar(panel, "AAA", d, 389, "close") == print_close  # the day's close is the print
        assert bar(panel, "AAA", d, 389, "open") == 10.0 + d + 389 * 0.0625  # the bar's own open
        assert bar(panel, "AAA", d, 389, "high") == print_close + 0.5
        assert bar(panel, "AAA", d, 389, "volume") == (100 + 389) + (100 + last)
    np.testing.assert_allclose(panel.daily_close()[:, 0], [10.0 + d + last * 0.0625 for d in range(3)])
    assert any(n.startswith("closing prints stamped 16:00 (the session's end)") for n in panel.notes)


def test_a_closing_print_with_the_session_given(tmp_path):
    folder = minute_files(tmp_path / "m", TIME_WRITERS["HH:MM"], step=5)  # 09:30 .. 16:00: 79 stamps
    inferred = load_bars(folder)
    given = load_bars(folder, ImportConfig(session="09:30-16:00"))
    assert inferred.bars_per_day == given.bars_per_day == 78
    np.testing.assert_array_equal(inferred.values, given.values)
    assert given.counts["closing prints merged into the last bar"] == 6
    # said to be start-stamped: a 16:00 stamp is outside the session, as the user says
    start = load_bars(folder, ImportConfig(session="09:30-16:00", bar_stamp="start"))
    assert start.bars_per_day == 78 and start.counts["extended-hours bars dropped"] == 6


def test_a_closing_print_without_its_last_bar_becomes_that_bar(tmp_path):
    folder = minute_files(tmp_path / "m", TIME_WRITERS["HH:MM"], step=5)
    text = (folder / "AAA.csv").read_text(encoding="utf-8").splitlines()
    kept = [ln for ln in text if not (ln.startswith(DAYS[1]) and ",15:55," in ln)]
    (folder / "AAA.csv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    panel = load_bars(folder)
    assert panel.counts["closing prints taken as the bar (no bar at 15:55)"] == 1
    assert bar(panel, "AAA", 1, 77, "close") == 10.0 + 1 + 78 * 0.0625
    assert bar(panel, "AAA", 1, 77, "volume") == 100 + 78


def test_extended_hours_after_the_close_are_not_closing_prints(tmp_path):
    folder = minute_files(tmp_path / "m", TIME_WRITERS["HH:MM"], step=5, last="17:00")
    panel = load_bars(folder, ImportConfig(session="09:30-16:00"))
    assert "closing prints merged into the last bar" not in panel.counts
    assert panel.bars_per_day == 78 and panel.counts["extended-hours bars dropped"] == 2 * 3 * 13


def test_an_unknown_time_column_is_an_error_naming_it(tmp_path, capsys):
    folder = minute_files(tmp_path / "m", TIME_WRITERS["hhmm"], header_time="Zeit")
    code, out, err = run(capsys, "data", "inspect", str(folder), "--no-cache")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "repeat a symbol's timestamp, which is read from column 'date' alone" in err
    assert "column 'Zeit' probably holds the time of day: map it with --time-col Zeit" in err
    code, out, err = run(capsys, "data", "inspect", str(folder), "--time-col", "Zeit", "--no-cache")
    assert code == 0 and "bars per day: 390" in out
    # allowed on purpose: the last row of each date is kept (daily bars)
    code, out, _ = run(capsys, "data", "inspect", str(folder), "--max-duplicate-share", "1", "--no-cache")
    assert code == 0 and "bars per day: 1" in out


def test_train_takes_the_same_import_options(tmp_path, capsys):
    from studio.cli import build_parser
    from studio.cli.train_commands import _source
    from studio.train.sources import load_source

    folder = minute_files(tmp_path / "m", TIME_WRITERS["hhmm"], header_time="Zeit")
    graph = str(Path(__file__).resolve().parents[1] / "graphs" / "default.json")
    for argv in (["--time-col", "Zeit"], ["--import-option", "time-col=Zeit"], ["--import-option", "time_col=Zeit"]):
        args = build_parser().parse_args(["train", graph, "--data", str(folder), *argv])
        spec = _source(args)
        assert spec.importer == {"time": "Zeit"}
        from studio.core.document import InputSpec

        assert load_source(spec, InputSpec(["close", "volume", "turnover"], 2, 390)).panel.bars_per_day == 390
    code, _out, err = run(capsys, "train", graph, "--data", str(folder), "--import-option", "date_coll=x")
    assert code == 2 and err.count("\n") == 1
    assert "unknown import option 'date_coll'; known: symbol-col, datetime-col, date-col, time-col" in err
    code, _, err = run(capsys, "train", graph, "--data", str(folder), "--import-option", "min-day-share=lots")
    assert code == 2 and "import option min-day-share: expects float, gets 'lots'" in err


def test_train_on_minute_files_with_no_options_names_the_fix(tmp_path, capsys):
    """The default graph wants 24 bars a day; 390 one-minute bars do not resample to 24: one line says
    which --bars-per-day would do."""
    folder = minute_files(tmp_path / "m", TIME_WRITERS["hhmm"])
    graph = str(Path(__file__).resolve().parents[1] / "graphs" / "default.json")
    code, _, err = run(capsys, "train", graph, "--data", str(folder))
    assert code == 2 and err.count("\n") == 1
    assert "expects 24 bars per day, the data has 390 (train with --bars-per-day N, N one of 390, 195, 130, 78" in err


def test_column_mapping_says_where_each_field_comes_from_file_by_file(tmp_path):
    folder = tmp_path / "bars"
    folder.mkdir()
    write_csv(folder / "AAA_5min.csv", [["2024-01-02 09:30", 1, 1, 1, 1, 10]])
    write_csv(folder / "BBB_5min.csv", [["2024-01-02 09:30", 1, 1, 10, 100]],
              header=("Timestamp", "High", "Low", "Last", "Vol"))
    rows = importer.column_mapping(folder, ImportConfig())
    assert rows == [
        ("symbol", "the file name", 2),
        ("datetime", "column 'Timestamp'", 1),
        ("datetime", "column 'datetime'", 1),
        ("open", "column 'open'", 1),
        ("open", "not in the files", 1),
        ("high", "column 'High'", 1),
        ("high", "column 'high'", 1),
        ("low", "column 'Low'", 1),
        ("low", "column 'low'", 1),
        ("close", "column 'Last'", 1),
        ("close", "column 'close'", 1),
        ("volume", "column 'Vol'", 1),
        ("volume", "column 'volume'", 1),
        ("turnover", "derived: close x volume", 2),
    ]
    with pytest.raises(DataError, match="no column 'px'"):
        importer.column_mapping(folder, ImportConfig(close="px"))
