"""Issue 27: Qlib data folders as a data source (``--data qlib:DIR --freq F --market M``).

The folders are written here by Qlib's documented layout (calendars/<freq>.txt, instruments/<market>.txt,
features/<code>/<field>.<freq>.bin: little-endian float32, the first value the start index into the
calendar) and read back by the studio, value by value, through the importer's policies; hostile folders
are refused in one line naming the file. Where pyqlib is installed, a CSV market dumped by Qlib's own
scripts/dump_bin.py is read by qlib.data.D.features and by the studio and compared bar for bar."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio.cli import build_parser, main
from studio.core.document import InputSpec
from studio.data import store
from studio.data.errors import DataError
from studio.data.importer import ImportConfig
from studio.data.qlib_folder import qlib_panel
from studio.train.config import SourceSpec
from studio.train.sources import load_source

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = str(ROOT / "graphs" / "default.json")
DAYS = [f"2024-01-{d:02d}" for d in (2, 3, 4, 5, 8, 9)]
#: a US 5-minute session: 78 bars stamped 09:30 .. 15:55
US_TIMES = [f"{(570 + 5 * i) // 60:02d}:{(570 + 5 * i) % 60:02d}:00" for i in range(78)]


def write_bin(path: Path, start: int, values) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.hstack([start, np.asarray(values, np.float64)]).astype("<f").tofile(path)


def write_folder(root: Path, freq: str, stamps: list[str], instruments: dict[str, dict[str, tuple[int, np.ndarray]]],
                 markets: dict[str, list[tuple[str, str, str]]] | None = None) -> Path:
    """A Qlib data folder by the documented layout; ``instruments``: code -> field -> (start index, values)."""
    (root / "calendars").mkdir(parents=True, exist_ok=True)
    (root / "calendars" / f"{freq}.txt").write_text("\n".join(stamps) + "\n")
    markets = markets or {"all": [(code, stamps[0], stamps[-1]) for code in instruments]}
    (root / "instruments").mkdir(exist_ok=True)
    for name, rows in markets.items():
        (root / "instruments" / f"{name}.txt").write_text("".join(f"{c}\t{a}\t{b}\n" for c, a, b in rows))
    for code, fields in instruments.items():
        for field, (start, values) in fields.items():
            write_bin(root / "features" / code.lower() / f"{field}.{freq}.bin", start, values)
    return root


def _ohlcv(rng, n: int, factor: float | None = None) -> dict[str, np.ndarray]:
    close = (10 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))).astype(np.float32)
    out = {"close": close, "open": close * np.float32(1.001), "high": close * np.float32(1.004),
           "low": close * np.float32(0.996), "volume": rng.integers(100, 5000, n).astype(np.float32),
           "amount": (close * rng.integers(100, 5000, n)).astype(np.float32)}
    if factor is not None:
        out["factor"] = np.float32(factor) * (1 + np.arange(n) // 78).astype(np.float32)  # a split each day
    return out


def tiny_market(root: Path) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """5 instruments, 6 days of 78 five-minute bars: one plain, one listed a day late, one suspended on day 3
    (every field NaN) with a factor, one with a bar missing at 11:00 on day 2, one plain."""
    rng = np.random.default_rng(7)
    stamps = [f"{d} {t}" for d in DAYS for t in US_TIMES]
    n = len(stamps)
    arrays = {code: _ohlcv(rng, n, factor=2.0 if code == "SZ000002" else None)
              for code in ("SH600000", "SH600001", "SZ000002", "SH600004", "SZ300005")}
    for field in arrays["SZ000002"]:
        if field != "factor":
            arrays["SZ000002"][field][2 * 78:3 * 78] = np.nan
    for field in arrays["SH600004"]:
        arrays["SH600004"][field][78 + 18] = np.nan  # day 2, 11:00
    instruments = {code: {f: (78 if code == "SH600001" else 0, v[78:] if code == "SH600001" else v)
                          for f, v in fields.items()} for code, fields in arrays.items()}
    return write_folder(root, "5min", stamps, instruments), arrays


def test_a_5min_qlib_folder_reads_value_by_value_through_the_import_policies(tmp_path):
    root, arrays = tiny_market(tmp_path / "cn")
    panel = qlib_panel(root, {"freq": "5min"})
    assert panel.symbols == ["SH600000", "SH600001", "SH600004", "SZ000002", "SZ300005"]  # Qlib's codes, sorted
    assert [str(d) for d in panel.dates] == DAYS and panel.bars_per_day == 78
    assert panel.features == ["open", "high", "low", "close", "volume", "turnover"]
    qlib_name = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume",
                 "turnover": "amount"}
    for s, code in enumerate(panel.symbols):
        for f, feature in enumerate(panel.features):
            written = arrays[code][qlib_name[feature]]
            read = panel.values[s, :, f]
            bar = np.isfinite(written) & (np.arange(len(written)) >= (78 if code == "SH600001" else 0))
            np.testing.assert_array_equal(read[bar], written[bar], err_msg=f"{code} {feature}")
    s1, s2, s4 = (panel.symbols.index(code) for code in ("SH600001", "SZ000002", "SH600004"))
    # listed a day late: not traded, no bars before its first day
    assert not panel.traded[s1, 0] and panel.traded[s1, 1:].all() and np.isnan(panel.values[s1, :78]).all()
    # suspended (Qlib's NaN day): not traded, its bars the previous close with no volume (the import's policy)
    close, volume = panel.features.index("close"), panel.features.index("volume")
    assert not panel.traded[s2, 2] and panel.traded[s2, [0, 1, 3, 4, 5]].all()
    assert (panel.values[s2, 156:234, close] == arrays["SZ000002"]["close"][155]).all()
    assert (panel.values[s2, 156:234, volume] == 0).all()
    # a bar missing inside a traded day: the previous bar's close, no volume
    assert panel.traded[s4].all()
    assert panel.values[s4, 96, close] == arrays["SH600004"]["close"][95] and panel.values[s4, 96, volume] == 0
    assert panel.counts["qlib calendar entries with every field NaN (no bar)"] == 78 + 1
    assert panel.counts["suspended days filled (listed, not traded)"] == 1
    assert panel.notes[0].startswith("qlib prices: adjusted, as Qlib stores them (1 of 5 instruments have a factor")


def test_raw_prices_undo_the_factor_as_qlib_documents(tmp_path):
    root, arrays = tiny_market(tmp_path / "cn")
    (root / "instruments" / "one.txt").write_text(f"SZ000002\t{DAYS[0]} 09:30:00\t{DAYS[-1]} 15:55:00\n")
    panel = qlib_panel(root, {"freq": "5min", "market": "one", "prices": "raw"})
    # alone in its market, its suspended day is no trading date
    assert [str(d) for d in panel.dates] == DAYS[:2] + DAYS[3:]
    kept = np.r_[0:156, 234:468]
    written = {f: v[kept] for f, v in arrays["SZ000002"].items()}
    factor = written["factor"].astype(np.float64)
    for feature, expected in (("close", written["close"] / factor), ("open", written["open"] / factor),
                              ("volume", written["volume"] * factor), ("turnover", written["amount"])):
        read = panel.values[0, :, panel.features.index(feature)]
        np.testing.assert_array_equal(read, expected.astype(np.float32), err_msg=feature)
    assert panel.notes[0].startswith("qlib prices: raw")
    with pytest.raises(DataError, match=r"sh600000: no factor\.5min\.bin to undo the adjustment with"):
        qlib_panel(root, {"freq": "5min", "prices": "raw"})


def test_daily_bars_and_a_market_with_spans(tmp_path):
    rng = np.random.default_rng(3)
    days = [str(d) for d in np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-02-01")) if np.is_busday(d)]
    arrays = {code: _ohlcv(rng, len(days)) for code in ("SH600000", "SH600001", "SH600002")}
    markets = {"all": [(c, days[0], days[-1]) for c in arrays],
               # membership: SH600001 leaves after day 4 and comes back on day 10; the end date is a whole day
               "csi300": [("SH600000", days[0], days[-1]), ("SH600001", days[0], days[4]),
                          ("SH600001", days[10], days[-1])]}
    written = {c: {f: (0, v) for f, v in a.items()} for c, a in arrays.items()}
    root = write_folder(tmp_path / "day", "day", days, written, markets)
    panel = qlib_panel(root, {})  # day and all are the defaults
    assert panel.bars_per_day == 1 and [str(d) for d in panel.dates] == days and panel.n_symbols == 3
    close = panel.features.index("close")
    for s, code in enumerate(panel.symbols):
        np.testing.assert_array_equal(panel.values[s, :, close], arrays[code]["close"])
    members = qlib_panel(root, {"market": "csi300"})
    assert members.symbols == ["SH600000", "SH600001"]
    assert members.traded[1].tolist() == [d <= 4 or d >= 10 for d in range(len(days))]
    inside = [d for d in range(len(days)) if d <= 4 or d >= 10]
    np.testing.assert_array_equal(members.values[1, inside, close], arrays["SH600001"]["close"][inside])
    # a market given as a file of its own
    mine = tmp_path / "mine.txt"
    mine.write_text(f"SH600002\t{days[0]}\t{days[-1]}\n")
    assert qlib_panel(root, {"market": str(mine)}).symbols == ["SH600002"]


def _refusal(capsys, folder: Path, *flags: str) -> str:
    assert main(["data", "inspect", f"qlib:{folder}", *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    return captured.err


def test_hostile_qlib_folders_are_refused_in_one_line_naming_the_file(tmp_path, capsys):
    root, _ = tiny_market(tmp_path / "cn")
    ok = _refusal(capsys, root, "--freq", "1min")  # no such calendar: the ones there are named
    assert "calendars/1min.txt: no such calendar (the folder has 5min)" in ok
    bad = root / "features" / "sh600000" / "close.5min.bin"
    for start, values, said in ((0, np.zeros(469), "469 values from calendar index 0 run past the calendar's 468"),
                                (2.5, np.zeros(4), "start index 2.5 is not an entry of the calendar"),
                                (-1, np.zeros(4), "start index -1 is not an entry of the calendar"),
                                (float("nan"), np.zeros(4), "start index nan is not an entry")):
        write_bin(bad, start, values)
        assert f"{bad}: {said}" in _refusal(capsys, root, "--freq", "5min")
    bad.write_bytes(b"\0\0\0\0\0\0")
    assert f"{bad}: 6 bytes is not a start index and whole float32 values" in _refusal(capsys, root, "--freq", "5min")
    bad.unlink()
    assert "sh600000: no close.5min.bin (it has amount.5min.bin" in _refusal(capsys, root, "--freq", "5min")

    calendar = root / "calendars" / "5min.txt"
    stamps = calendar.read_text().splitlines()
    calendar.write_text("\n".join([stamps[1], stamps[0], *stamps[2:]]))
    assert f"{calendar}: line 2: the calendar is not sorted" in _refusal(capsys, root, "--freq", "5min")
    calendar.write_text("\n".join([*stamps[:5], "import os", *stamps[5:]]))
    assert f"{calendar}: line 6: 'import os' is not a date" in _refusal(capsys, root, "--freq", "5min")

    root, _ = tiny_market(tmp_path / "cn2")
    market = root / "instruments" / "all.txt"
    market.write_text(market.read_text() + f"SH688888\t{DAYS[0]}\t{DAYS[-1]}\n")
    said = _refusal(capsys, root, "--freq", "5min")
    assert f"{market}: names 1 instrument without a folder in {root / 'features'} (SH688888)" in said
    market.write_text(f"SH600000 {DAYS[0]} {DAYS[-1]}\n")
    assert f"{market}: line 1: expects code<TAB>start<TAB>end" in _refusal(capsys, root, "--freq", "5min")
    market.write_text(f"../../etc\t{DAYS[0]}\t{DAYS[-1]}\n")
    assert f"{market}: line 1: '../../etc' is not an instrument code" in _refusal(capsys, root, "--freq", "5min")
    assert "instruments/csi300.txt: no such market file (markets: all)" in _refusal(
        capsys, root, "--freq", "5min", "--market", "csi300")
    assert "not a Qlib data folder (no features folder)" in _refusal(capsys, tmp_path / "cn2" / "calendars")
    assert "qlib: freq '../x' is not a Qlib frequency" in _refusal(capsys, root, "--freq", "../x")


def training_folder(root: Path, stocks: int = 12, days: int = 40) -> Path:
    """A market of 5-minute bars, 6 a day (09:30 .. 09:55), with a factor file per instrument."""
    rng = np.random.default_rng(11)
    dates = [d for d in np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-06-01")) if np.is_busday(d)][:days]
    stamps = [f"{d} 09:{30 + 5 * i}:00" for d in dates for i in range(6)]
    instruments = {f"SH6{i:05d}": {f: (0, v) for f, v in _ohlcv(rng, len(stamps), factor=1.0).items()}
                   for i in range(stocks)}
    return write_folder(root, "5min", stamps, instruments)


def test_a_qlib_folder_trains_is_recorded_and_inspected(tmp_path, capsys, monkeypatch):
    from studio.cli.train_commands import _source

    root = training_folder(tmp_path / "cn")
    args = build_parser().parse_args(["train", DEFAULT, "--data", f"qlib:{root}", "--freq", "5min",
                                      "--qlib", "market=all", "--min-date-share", "0.3"])
    spec = _source(args)  # the import's own flags reach the Qlib folder's policies
    assert (spec.kind, spec.path, spec.settings) == (
        "qlib", str(root), {"freq": "5min", "market": "all", "prices": "adjusted", "min_date_share": 0.3})
    assert SourceSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    loaded = load_source(spec, InputSpec(["close", "volume", "turnover"], 10, 6))
    assert loaded.panel.n_symbols == 12 and loaded.panel.bars_per_day == 6
    assert [str(d) for d in loaded.panel.dates[[0, -1]]] == ["2024-01-01", "2024-02-23"]

    code = main(["train", DEFAULT, "--data", f"qlib:{root}", "--freq", "5min", "--bars-per-day", "6",
                 "--epochs", "1", "--threads", "1", "--out", str(tmp_path / "runs"), "-q"])
    out = capsys.readouterr()
    assert code == 0, out.err
    (run_dir,) = (tmp_path / "runs").iterdir()
    recorded = json.loads((run_dir / "config.json").read_text())["data"]["source"]
    assert recorded["kind"] == "qlib" and recorded["path"] == str(root)
    assert recorded["settings"] == {"freq": "5min", "market": "all", "prices": "adjusted"}
    assert SourceSpec.from_json(recorded).describe() == f"qlib:{root} (5min, market all, adjusted prices)"

    assert main(["data", "inspect", f"qlib:{root}", "--freq", "5min", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["symbols"] == 12 and shown["bars_per_day"] == 6 and shown["dates"] == 40
    assert shown["symbol_list"][:2] == ["SH600000", "SH600001"]
    assert shown["loaded"] == "read from the Qlib folder (memory-mapped .bin files)"
    assert shown["counts"]["qlib instruments in the market"] == 12
    monkeypatch.setenv("HOME", str(tmp_path))  # qlib:~/cn is the folder in the home folder, as the shell says ~
    assert _source(build_parser().parse_args(["train", DEFAULT, "--data", "qlib:~/cn"])).path == str(root)
    assert main(["train", DEFAULT, "--data", f"qlib:{tmp_path / 'nowhere'}"]) == 2
    assert "nowhere: no such file or folder (--data takes synthetic or qlib:DIR or a path)" in capsys.readouterr().err


def test_a_large_qlib_market_is_laid_out_on_disk_as_in_memory(tmp_path, monkeypatch):
    root, _ = tiny_market(tmp_path / "cn")
    in_memory = qlib_panel(root, {"freq": "5min"}, ImportConfig())
    monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
    on_disk = qlib_panel(root, {"freq": "5min"}, ImportConfig())
    assert store.mapping(on_disk.values) is not None and store.mapping(in_memory.values) is None
    np.testing.assert_array_equal(np.asarray(on_disk.values), in_memory.values)
    np.testing.assert_array_equal(on_disk.traded, in_memory.traded)
    assert (on_disk.symbols, on_disk.notes, on_disk.counts) == (in_memory.symbols, in_memory.notes, in_memory.counts)


def test_a_close_only_qlib_folder_trains_a_close_graph_and_refuses_a_volume_graph_in_one_line(
        tmp_path, capsys, monkeypatch):
    """A Qlib folder with close.<freq>.bin alone (no volume, no amount): the close-only work and the Qlib
    reader meet. 24 fifteen-minute bars a day, graphs/close_only.json's window."""
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(5)
    dates = [d for d in np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-06-01")) if np.is_busday(d)][:40]
    stamps = [f"{d} {10 + i // 4:02d}:{15 * (i % 4):02d}:00" for d in dates for i in range(24)]
    closes = {f"SH6{i:05d}": 10 * np.exp(np.cumsum(rng.normal(0, 0.002, len(stamps)))) for i in range(12)}
    root = write_folder(tmp_path / "cn", "15min", stamps, {code: {"close": (0, c)} for code, c in closes.items()})
    data = ["--data", f"qlib:{root}", "--freq", "15min"]

    assert main(["data", "inspect", f"qlib:{root}", "--freq", "15min"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "features: close (not in the data: volume, turnover)" in lines and "bars per day: 24" in lines
    panel = qlib_panel(root, {"freq": "15min"}, ImportConfig())
    assert panel.features == ["close"] and panel.n_symbols == 12 and panel.n_days == 40
    np.testing.assert_array_equal(panel.day_bars("close")[3], closes["SH600003"].astype(np.float32).reshape(40, 24))

    runs = tmp_path / "runs"
    train = ["--epochs", "1", "--patience", "0", "--threads", "1", "--out", str(runs), "-q"]
    assert main(["train", str(ROOT / "graphs" / "close_only.json"), *data, *train]) == 0, capsys.readouterr().err
    (run,) = runs.iterdir()
    assert json.loads((run / "preprocess.json").read_text())["fields"] == ["close"]
    assert (run / "model.pt").is_file() and json.loads((run / "metrics.json").read_text())["status"] == "finished"
    capsys.readouterr()

    assert main(["train", DEFAULT, *data, *train]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.endswith("the graph reads close, volume, turnover; the data has close only: the files have no volume "
                        "or turnover column (sh600000 has close.15min.bin)"), err
    assert list(runs.iterdir()) == [run]  # refused before a run folder was made


# ---- against Qlib itself ----------------------------------------------------------------------------

def _qlib_dump(csv_dir: Path, qlib_dir: Path, freq: str) -> None:
    """Qlib's own scripts/dump_bin.py (tests/fixtures/qlib_dump_bin.py) on a folder of CSV files, run as Qlib's
    docs run it (in a process of its own: it forks workers, and Qlib's state stays out of the tests')."""
    subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "qlib_dump_bin.py"), "dump_all",
                    "--data_path", str(csv_dir), "--qlib_dir", str(qlib_dir), "--freq", freq, "--max_workers", "1",
                    "--date_field_name", "date", "--symbol_field_name", "symbol", "--exclude_fields", "symbol,date"],
                   check=True, capture_output=True, timeout=120)


#: Qlib reads the folder in a process of its own (qlib.init sets process-wide state) and pickles the frame
_QLIB_READS = """
import sys, qlib
from qlib.data import D
qlib.init(provider_uri=sys.argv[1], region="cn", expression_cache=None, dataset_cache=None, kernels=1)
fields = ["$open", "$high", "$low", "$close", "$volume", "$amount", "$close / $factor", "$volume * $factor"]
D.features(D.instruments("all"), fields, freq=sys.argv[2]).to_pickle(sys.argv[3])
"""


def test_qlib_reads_what_its_dump_script_wrote_as_the_studio_does(tmp_path):
    pytest.importorskip("qlib.data", reason="pyqlib is not installed (pyproject.toml's qlib extra says how)")
    import pandas as pd

    rng = np.random.default_rng(5)
    stamps = [np.datetime64(f"{d}T{t}") for d in DAYS for t in US_TIMES]
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for i, code in enumerate(("SH600000", "SH600001", "SZ000002", "SZ000003", "SH600004")):
        values = _ohlcv(rng, len(stamps), factor=1.5)
        frame = pd.DataFrame({"date": stamps, "symbol": code, **values})
        if i == 1:
            frame = frame.iloc[78:]  # listed a day late
        if i == 2:
            frame.loc[156:233, ["open", "high", "low", "close", "volume", "amount"]] = np.nan  # suspended
        frame.to_csv(csv_dir / f"{code.lower()}.csv", index=False)
    _qlib_dump(csv_dir, tmp_path / "qlib", "5min")

    subprocess.run([sys.executable, "-c", _QLIB_READS, str(tmp_path / "qlib"), "5min", str(tmp_path / "theirs.pkl")],
                   check=True, capture_output=True, timeout=120)
    theirs = pd.read_pickle(tmp_path / "theirs.pkl")
    fields = list(theirs.columns)
    assert fields[-2:] == ["$close / $factor", "$volume * $factor"]
    for prices, columns in (("adjusted", dict(zip(["open", "high", "low", "close", "volume", "turnover"], fields[:6],
                                                  strict=True))),
                            ("raw", {"close": fields[6], "volume": fields[7]})):
        ours = qlib_panel(tmp_path / "qlib", {"freq": "5min", "prices": prices})
        assert sorted(ours.symbols) == sorted(theirs.index.get_level_values("instrument").unique())
        compared = 0
        for code, bars in theirs.groupby(level="instrument"):
            s = ours.symbols.index(code)
            stamps_of = bars.index.get_level_values("datetime").to_numpy()
            day = np.searchsorted(ours.dates.astype("datetime64[ns]"), stamps_of.astype("datetime64[D]"))
            slot = (stamps_of - stamps_of.astype("datetime64[D]")).astype("timedelta64[m]").astype(int) // 5 - 114
            traded = np.isfinite(bars["$close"].to_numpy())
            assert (ours.traded[s, day] == traded).all(), code  # Qlib's NaN days are the studio's suspensions
            for feature, column in columns.items():
                read = ours.values[s, day * 78 + slot, ours.features.index(feature)]
                np.testing.assert_array_equal(read[traded], bars[column].to_numpy()[traded], err_msg=f"{code} {column}")
                compared += int(traded.sum())
        assert compared > 2000


# ---- in the studio ----------------------------------------------------------------------------------------

@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    from tests.test_gui_training import studio_window

    yield from studio_window(qtbot, tmp_path, monkeypatch)


def test_the_studio_picks_a_qlib_folder_from_its_data_list_and_trains_on_it(window, qtbot, monkeypatch, tmp_path):
    from PySide6.QtCore import Qt

    from studio.gui.qlib_form import QlibDialog
    from tests.test_gui_training import records_of

    root = training_folder(tmp_path / "cn")
    (root / "instruments" / "csi300.txt").write_text((root / "instruments" / "all.txt").read_text())
    tab = window.open_file(ROOT / "graphs" / "default.json")
    panel = window.training
    shown = []

    def run_dialog(dialog):  # the user types the folder, picks 5min from the folder's calendars, presses OK
        shown.append(dialog)
        dialog.path.setText(str(root))
        dialog.path.editingFinished.emit()
        assert [dialog.freq.itemText(i) for i in range(dialog.freq.count())] == ["5min"]  # its calendars
        assert dialog.freq.currentText() == "5min"
        assert [dialog.market.itemText(i) for i in range(dialog.market.count())] == ["all", "csi300"]
        dialog.market.setCurrentIndex(1)
        dialog.accept()
        return dialog.result()

    monkeypatch.setattr(QlibDialog, "exec", run_dialog)
    kinds = list(panel.forms)
    panel.source.setCurrentIndex(kinds.index("qlib"))
    panel.source.activated.emit(kinds.index("qlib"))
    assert panel.source.currentText() == "Qlib data folder…"
    assert shown[0].summary.text().startswith("12 instruments, 40 dates (2024-01-01 .. 2024-02-23), 6 bars per day")
    report = shown[0].report.toPlainText()
    assert "qlib prices: adjusted, as Qlib stores them (12 of 12 instruments have a factor" in report
    assert panel.forms["qlib"].label.text() == (
        "Qlib: cn (5min, csi300, adjusted): 12 instruments, 40 dates, 6 bars a day; "
        "open, high, low, close, volume, turnover")
    assert panel.source_spec() == SourceSpec("qlib", path=str(root),
                                             settings={"freq": "5min", "market": "csi300", "prices": "adjusted"})
    # the graph reads 24 bars a day: said before Start, fixed with one click
    assert panel.fit_box.isVisible() and "the data has 6" in panel.fit_message.text()
    qtbot.mouseClick(panel.set_window_button, Qt.MouseButton.LeftButton)
    assert tab.graph.input.bars_per_day == 6 and not panel.fit_box.isVisible()
    seen = records_of(panel)
    assert panel.start() is True
    qtbot.waitUntil(lambda: bool(seen) and seen[-1]["kind"] == "done", timeout=120_000)
    assert seen[-1]["status"] == "finished", seen[-1]["message"]
    (run_dir,) = (tmp_path / "runs").iterdir()
    recorded = json.loads((run_dir / "config.json").read_text())["data"]["source"]
    assert (recorded["kind"], recorded["path"], recorded["settings"]["market"]) == ("qlib", str(root), "csi300")


def test_the_qlib_dialog_stays_open_on_a_folder_it_cannot_read(window, tmp_path):
    from studio.gui.qlib_form import QlibDialog

    root, _ = tiny_market(tmp_path / "cn")
    (root / "calendars" / "5min.txt").write_text("2024-01-03 09:30:00\n2024-01-02 09:30:00\n")
    dialog = QlibDialog(window.training, {"freq": "5min"}, str(root))
    dialog.accept()
    assert dialog.result() == 0 and dialog.described is None
    calendar = root / "calendars" / "5min.txt"
    assert dialog.summary.text() == (f"Cannot read this folder: {calendar}: line 2: the calendar is not sorted (a "
                                     "stamp at or before the one above it)")


#: Qlib's backtest (TopkDropoutStrategy, 3 stocks, 1 swapped a day) on a pred.pkl, in a process of its own
_QLIB_BACKTEST = """
import sys, pandas as pd, qlib
from qlib.backtest import backtest
from qlib.backtest.executor import SimulatorExecutor
from qlib.contrib.strategy import TopkDropoutStrategy
provider, pred_file, out = sys.argv[1:4]
qlib.init(provider_uri=provider, region="cn", expression_cache=None, dataset_cache=None, kernels=1)
pred = pd.read_pickle(pred_file)
dates = pred.index.get_level_values("datetime").unique().sort_values()
codes = sorted(pred.index.get_level_values("instrument").unique())
portfolio, _ = backtest(start_time=dates[0], end_time=dates[-2], strategy=TopkDropoutStrategy(signal=pred, topk=3,
                        n_drop=1), executor=SimulatorExecutor(time_per_step="day", generate_portfolio_metrics=True),
                        benchmark=codes, account=1_000_000, exchange_kwargs={"freq": "day", "limit_threshold": None,
                        "deal_price": "close", "open_cost": 0.0005, "close_cost": 0.0015, "min_cost": 5})
report, positions = portfolio["1day"]
held = {str(day.date()): sorted(p.get_stock_list()) for day, p in positions.items()}
pd.to_pickle({"report": report, "held": held}, out)
"""


def with_day_bars(root: Path) -> None:
    """Daily bars beside a folder's 6 five-minute bars a day (close: the day's last, volume: the sum, change, a
    factor of 1): what Qlib's backtest trades on."""
    stamps = (root / "calendars" / "5min.txt").read_text().split("\n")
    days = sorted({s[:10] for s in stamps if s})
    (root / "calendars" / "day.txt").write_text("\n".join(days) + "\n")
    for folder in (root / "features").iterdir():
        close = np.fromfile(folder / "close.5min.bin", "<f4")[1:].reshape(-1, 6)[:, -1]
        volume = np.fromfile(folder / "volume.5min.bin", "<f4")[1:].reshape(-1, 6).sum(1)
        change = np.r_[np.nan, close[1:] / close[:-1] - 1]
        for name, values in {"open": close, "high": close, "low": close, "close": close, "volume": volume,
                             "factor": np.ones(len(close)), "change": change}.items():
            write_bin(folder / f"{name}.day.bin", 0, values)


def test_qlib_backtests_the_pred_pkl_the_studio_writes_for_a_qlib_folder(tmp_path, capsys):
    pytest.importorskip("qlib.contrib.strategy", reason="pyqlib's backtest is not installed (it needs gym and cvxpy "
                                                        "besides pyproject.toml's qlib extra)")
    import pandas as pd

    root = training_folder(tmp_path / "cn")
    with_day_bars(root)
    assert main(["train", DEFAULT, "--data", f"qlib:{root}", "--freq", "5min", "--bars-per-day", "6", "--epochs", "1",
                 "--threads", "1", "--out", str(tmp_path / "runs"), "-q"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert main(["predict", str(run), "--dates", "2024-01-15..2024-02-23", "--to", str(tmp_path / "pred.pkl")]) == 0
    capsys.readouterr()
    pred = pd.read_pickle(tmp_path / "pred.pkl")
    subprocess.run([sys.executable, "-c", _QLIB_BACKTEST, str(root), str(tmp_path / "pred.pkl"),
                    str(tmp_path / "backtest.pkl")], check=True, capture_output=True, timeout=180)
    result = pd.read_pickle(tmp_path / "backtest.pkl")
    report, held = result["report"], result["held"]
    days = sorted(pred.index.get_level_values("datetime").unique())
    assert list(report.index) == days[:-1] and np.isfinite(report["account"]).all()
    assert report["turnover"].iloc[1] > 0  # it traded
    # Qlib buys on a day the 3 best scores of the day before: it read the studio's scores under Qlib's codes
    first = pred.loc[days[0], "score"].sort_values()
    assert held[str(days[1].date())] == sorted(first.index[-3:])
    assert set().union(*held.values()) <= set(pred.index.get_level_values("instrument"))
