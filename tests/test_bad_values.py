"""Bad values (issue 25 item 8, second half): closes of 1e308, infinite volume and all-zero volume. Each
is counted under its own name by the import, in memory and on disk, and a train error that follows from
a data policy names the policy and its count."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studio.cli import main
from studio.data import sample_reasons
from studio.data.dataset import CrossSectionData, DataConfig
from studio.data.importer import ABSURD_VALUE_COUNTS
from studio.data.load import load_bars

ROOT = Path(__file__).resolve().parents[1]
N_STOCKS, N_DAYS, BARS = 12, 40, 6


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(params=["memory", "disk"])
def import_path(request, monkeypatch):
    if request.param == "disk":
        from studio.data import import_chunked

        monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
        monkeypatch.setattr(import_chunked, "BUCKET_BYTES", 60_000)
        monkeypatch.setattr(import_chunked, "STREAM_ABOVE_BYTES", 5_000)
        monkeypatch.setattr(import_chunked, "CSV_BLOCK_BYTES", 4_000)
    return request.param


def market(folder: Path, edit=None) -> Path:
    """12 stocks of 5-minute bars, 09:30 .. 09:55, 40 days; ``edit(symbol_index, frame)`` spoils them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    days = pd.bdate_range("2024-01-01", periods=N_DAYS)
    stamps = [d + pd.Timedelta(hours=9, minutes=30 + 5 * b) for d in days for b in range(BARS)]
    for s in range(N_STOCKS):
        close = (20.0 + s) * np.cumprod(1 + rng.normal(0, 0.002, len(stamps)))
        frame = pd.DataFrame({"datetime": [t.strftime("%Y-%m-%d %H:%M:%S") for t in stamps], "open": close,
                              "high": close * 1.001, "low": close * 0.999, "close": close,
                              "volume": 100.0 + np.arange(len(stamps)) % 7})
        if edit is not None:
            edit(s, frame)
        frame.to_csv(folder / f"S{s:02d}_5min.csv", index=False)
    return folder


def spoil(s: int, frame: pd.DataFrame) -> None:
    """The attack's values: closes of 1e308, an infinite close, infinite and absurd volume, an infinite
    high, on the first stocks."""
    if s == 0:
        frame.loc[[10, 20, 30], "close"] = 1e308
        frame.loc[40, "close"] = np.inf
    if s == 1:
        frame.loc[[11, 12], "volume"] = np.inf
        frame.loc[13, "volume"] = 1e300
        frame.loc[14, "volume"] = np.nan
    if s == 2:
        frame.loc[15, "high"] = np.inf
        frame.loc[16, "open"] = 1e200


def test_infinite_and_absurd_values_are_counted_under_their_own_names(tmp_path, import_path):
    folder = market(tmp_path / "m", spoil)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 1e308 cast to float32 warned twice, and passed
        panel = load_bars(folder)
    c = panel.counts
    assert c["bars with a close over 1e9 treated as missing"] == 3
    assert c["bars with an infinite close treated as missing"] == 1
    assert c["bars with NaN/zero/negative close treated as missing"] == 0
    assert c["infinite volume set to 0"] == 2
    assert c["volume over 1e15 set to 0"] == 1
    assert c["NaN/negative volume set to 0"] == 1  # the NaN one only, not the infinite ones
    assert c["infinite open, high or low, or over 1e9, set to the close"] == 2
    assert c["NaN/zero open, high or low set to the close"] == 0
    assert c["infinite turnover set to 0"] == 0  # derived from the infinite volume: counted once, there
    values = np.asarray(panel.values)
    assert np.isfinite(values[panel.traded.repeat(BARS, axis=1)]).all()
    assert np.nanmax(values[..., panel.feature_index("close")]) < 100
    assert any("infinite values" in n and "over 1e9" in n for n in panel.notes)
    data = CrossSectionData(panel, DataConfig(days=5))
    assert len(data.usable) >= N_DAYS - 10  # the spoilt bars cost their stock-days, not every date


def test_every_import_count_the_train_error_names_exists(tmp_path, import_path):
    counts = load_bars(market(tmp_path / "m")).counts
    named = {name for names in sample_reasons._IMPORT_COUNTS.values() for name in names}
    assert named <= set(counts), named - set(counts)
    assert set(ABSURD_VALUE_COUNTS) <= set(counts)


def zero_volume(s: int, frame: pd.DataFrame) -> None:
    frame["volume"] = 0.0


def test_training_on_all_zero_volume_names_the_policy_and_its_count(tmp_path, import_path, capsys):
    folder = market(tmp_path / "zero", zero_volume)
    assert main(["train", str(ROOT / "graphs" / "default.json"), "--data", str(folder), "--epochs", "1",
                 "--bars-per-day", str(BARS), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "only 0 dates have at least 10 stocks" in err
    days = N_STOCKS * (N_DAYS - 1)
    assert f"volume is unknown on {days:,} of {days:,} traded stock-days" in err
    assert "mean volume of the previous 20 days (volume_days), zero on" in err
    assert f"zero-volume bars kept {N_STOCKS * N_DAYS * BARS:,}" in err
