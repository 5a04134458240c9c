"""Bars stamped with a time zone (issue 25 item 3): the US files written as UTC instants (`...Z`, `+00:00`)
or with their own offsets (`-04:00` in summer, `-05:00` in winter) import to the same panel as the
local-time files, in memory and through the import on disk; the zone is inferred from the sessions or
named with --timezone, and said in the notes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studio.cli import main
from studio.data import importer
from studio.data.importer import DataError, ImportConfig
from studio.data.load import load_bars

US = Path(__file__).resolve().parents[2] / "shared" / "data" / "us_stocks_5min"
#: three symbols: one with extended-hours bars, both daylight-saving changes of 2025-26 inside
SYMBOLS = ("AAPL", "ADBE", "AFRM")
TZ_COUNT = "stamps with a time zone read in the exchange's"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(params=["memory", "disk"])
def import_path(request, monkeypatch):
    """In memory, and through the import of folders larger than memory (buckets on disk, files read by
    batches, the panel in a mapped file)."""
    if request.param == "disk":
        from studio.data import import_chunked

        monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
        monkeypatch.setattr(import_chunked, "BUCKET_BYTES", 2_000_000)
        monkeypatch.setattr(import_chunked, "STREAM_ABOVE_BYTES", 100_000)
        monkeypatch.setattr(import_chunked, "CSV_BLOCK_BYTES", 200_000)
    return request.param


STAMP_FORMS = {
    "Z": lambda local: local.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
    "+00:00": lambda local: local.dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S+00:00"),
    # the exchange's own offsets, which change with daylight saving
    "local offset": lambda local: local.map(lambda t: t.isoformat()),
}


def rewrite(folder: Path, form: str, symbols=SYMBOLS) -> Path:
    """The US files of ``symbols`` (naive US Eastern, bar-start stamps) with their stamps written as
    ``form``: the same instants, stamped with a zone."""
    folder.mkdir(parents=True, exist_ok=True)
    for symbol in symbols:
        frame = pd.read_csv(US / f"{symbol}_5min.csv.gz")
        local = pd.to_datetime(frame["datetime"]).dt.tz_localize("America/New_York")
        frame["datetime"] = STAMP_FORMS[form](local)
        frame.to_csv(folder / f"{symbol}_5min.csv", index=False)
    return folder


def local_files(folder: Path, symbols=SYMBOLS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for symbol in symbols:
        (folder / f"{symbol}_5min.csv.gz").write_bytes((US / f"{symbol}_5min.csv.gz").read_bytes())
    return folder


def assert_same_panel(local, zoned) -> None:
    assert zoned.symbols == local.symbols
    np.testing.assert_array_equal(zoned.dates, local.dates)
    assert zoned.bars_per_day == local.bars_per_day == 78
    np.testing.assert_array_equal(zoned.traded, local.traded)
    np.testing.assert_array_equal(np.asarray(zoned.values), np.asarray(local.values))
    differ = {k: (local.counts.get(k), v) for k, v in zoned.counts.items() if local.counts.get(k) != v}
    assert set(differ) == {TZ_COUNT}, differ


@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize("form", list(STAMP_FORMS))
def test_zone_stamped_us_bars_import_as_the_local_time_files(tmp_path, import_path, form):
    """The attack: the US files stamped `2025-05-12T13:30:00Z` were read as a 13:30-19:55 session, and
    each daylight-saving change cost an hour (extended-hours bars dropped, short days, filled bars)."""
    local = load_bars(local_files(tmp_path / "local"))
    zoned = load_bars(rewrite(tmp_path / "zoned", form))
    assert_same_panel(local, zoned)
    assert zoned.counts[TZ_COUNT] == local.counts["rows read"]
    note = next(n for n in zoned.notes if n.startswith("time zone"))
    assert "America/New_York" in note and "inferred" in note and "NYSE" in note
    assert any("bars stamped 09:30 to 15:55" in n for n in zoned.notes)
    assert not any(n.startswith("time zone") for n in local.notes)


@pytest.mark.usefixtures("shared_data")
def test_timezone_option_names_the_zone(tmp_path, import_path, capsys):
    local = load_bars(local_files(tmp_path / "local"))
    zoned_folder = rewrite(tmp_path / "zoned", "Z")
    named = load_bars(zoned_folder, ImportConfig(timezone="America/New_York"))
    assert_same_panel(local, named)
    assert any(n.startswith("time zone") and "as set with --timezone" in n for n in named.notes)
    # the same name on the command line; a zone that is not one is a one-line exit 2
    assert main(["data", "inspect", str(zoned_folder), "--timezone", "America/New_York", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "America/New_York wall-clock time (as set with --timezone" in out
    assert main(["data", "inspect", str(zoned_folder), "--timezone", "Mars/Olympus_Mons"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Mars/Olympus_Mons" in err and "is not a time zone" in err
    # files without a zone are read as they are, and the note says the option was not used
    unused = load_bars(tmp_path / "local", ImportConfig(timezone="Asia/Tokyo"))
    np.testing.assert_array_equal(np.asarray(unused.values), np.asarray(local.values))
    assert any("Asia/Tokyo not used" in n for n in unused.notes)


def night_bars(folder: Path) -> Path:
    """Two symbols of 5-minute bars stamped 03:00 .. 04:55 UTC through a year: a session that fits no
    exchange's hours in any zone tried."""
    folder.mkdir(parents=True, exist_ok=True)
    days = pd.bdate_range("2025-01-06", "2025-12-19")
    for s_i, symbol in enumerate(("AAA", "BBB")):
        stamps = [d + pd.Timedelta(hours=3, minutes=5 * b) for d in days for b in range(24)]
        close = 10.0 * (s_i + 1) + np.arange(len(stamps)) * 0.001
        pd.DataFrame({"datetime": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in stamps], "open": close,
                      "high": close, "low": close, "close": close, "volume": 100}).to_csv(
            folder / f"{symbol}.csv", index=False)
    return folder


def test_a_zone_the_sessions_do_not_tell_asks_for_timezone(tmp_path, import_path, capsys):
    folder = night_bars(tmp_path / "night")
    with pytest.raises(DataError, match="--timezone"):
        load_bars(folder)
    assert main(["data", "inspect", str(folder), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "carry a time zone" in err and "--timezone ZONE" in err
    named = load_bars(folder, ImportConfig(timezone="UTC"))
    assert named.bars_per_day == 24 and named.counts[TZ_COUNT] == 2 * 24 * named.n_days


@pytest.mark.usefixtures("shared_data")
def test_two_zones_with_different_clocks_that_both_fit_ask_for_timezone(tmp_path, import_path, monkeypatch):
    """Chicago keeps New York's daylight saving an hour earlier: an exchange there opening at 08:30 would
    fit the US bars as well as NYSE does, and then the zone is the user's to name."""
    monkeypatch.setattr(importer, "EXCHANGE_SESSIONS",
                        (*importer.EXCHANGE_SESSIONS, ("Chicago stocks", "America/Chicago", "08:30-15:00")))
    folder = rewrite(tmp_path / "zoned", "Z", symbols=SYMBOLS[:1])
    with pytest.raises(DataError, match=r"more than one exchange's: name it with --timezone ZONE .* fit "
                                        r"America/New_York \(NYSE / Nasdaq 09:30-16:00\) and America/Chicago"):
        load_bars(folder)
    assert load_bars(folder, ImportConfig(timezone="America/Chicago")).counts[TZ_COUNT] > 0


@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize("column_zone", ["America/New_York", "UTC"])
def test_parquet_stamps_with_a_zone(tmp_path, import_path, column_zone):
    """A Parquet timestamp column with a place zone (America/New_York) is read in that zone; one in UTC
    is inferred like the text stamps."""
    local = load_bars(local_files(tmp_path / "local"))
    folder = tmp_path / "parquet"
    folder.mkdir()
    for symbol in SYMBOLS:
        frame = pd.read_csv(US / f"{symbol}_5min.csv.gz")
        frame["datetime"] = pd.to_datetime(frame["datetime"]).dt.tz_localize("America/New_York").dt.tz_convert(
            column_zone)
        frame.to_parquet(folder / f"{symbol}_5min.parquet")
    zoned = load_bars(folder)
    assert_same_panel(local, zoned)
    note = next(n for n in zoned.notes if n.startswith("time zone"))
    assert ("the zone the files' timestamp column names" in note) == (column_zone != "UTC")
    assert "America/New_York wall-clock time" in note
