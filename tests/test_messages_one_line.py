"""Names from files in messages (issue 25 item 9): a newline in a file name or a symbol is escaped like
any other control, so a one-line error stays one line and `data inspect`'s symbol list stays whole; a
100,000-character feature name is shown by its ends, not echoed whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.cli import main
from studio.core.text import error_line, one_line, shown
from studio.data.panel import DataError

ROOT = Path(__file__).resolve().parents[1]
TIMES = ("09:30", "09:35", "09:40", "09:45")
DAYS = ("2024-01-02", "2024-01-03", "2024-01-04")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))


def bars_csv(path: Path, base: float) -> None:
    rows = [f"{d} {t}:00,{base + i},{base + i + 1},{base + i - 1},{base + i},100"
            for d in DAYS for i, t in enumerate(TIMES)]
    path.write_text("datetime,open,high,low,close,volume\n" + "\n".join(rows) + "\n", encoding="utf-8")


def test_a_file_name_with_a_newline_gives_a_one_line_error(tmp_path, capsys):
    folder = tmp_path / "bars"
    folder.mkdir()
    bars_csv(folder / "AAA_5min.csv", 10.0)
    (folder / "BAD\nNAME_5min.csv").write_text("when,price\nsoon,1\n", encoding="utf-8")
    assert main(["data", "inspect", str(folder), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "BAD\\nNAME_5min.csv" in err


def test_inspect_lists_a_symbol_with_a_newline_on_its_line(tmp_path, capsys):
    import pandas as pd

    folder = tmp_path / "bars"
    folder.mkdir()
    rows = [{"symbol": symbol, "datetime": pd.Timestamp(f"{d} {t}"), "close": base + i, "volume": 100}
            for symbol, base in (("AA\nPL", 10.0), ("MSFT", 20.0)) for d in DAYS for i, t in enumerate(TIMES)]
    pd.DataFrame(rows).to_parquet(folder / "bars.parquet")
    assert main(["data", "inspect", str(folder), "--no-cache"]) == 0
    lines = capsys.readouterr().out.splitlines()
    symbols = next(line for line in lines if line.startswith("symbols:"))
    assert symbols == "symbols: 2 (AA\\nPL, MSFT)"
    assert not any(line.startswith("PL") for line in lines)
    assert main(["data", "inspect", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["symbol_list"] == ["AA\nPL", "MSFT"]


def test_a_100000_character_feature_name_is_cut_in_the_train_error(tmp_path, capsys):
    graph = json.loads((ROOT / "graphs" / "default.json").read_text(encoding="utf-8"))
    long_name = "x" * 100_000
    graph["input"]["features"] = ["close", long_name, "turnover"]
    path = tmp_path / "long_feature.json"
    path.write_text(json.dumps(graph), encoding="utf-8")
    assert main(["train", str(path), "--data", "synthetic", "--epochs", "1", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 1000, len(err)
    assert "characters)" in err and "features" in err


def test_one_line_keeps_paths_and_cuts_huge_names():
    path = "/home/someone/" + "deep/" * 40 + "AAPL_5min.csv"  # 227 characters: kept whole
    assert one_line(f"{path}: cannot read") == f"{path}: cannot read"
    line = one_line("feature 'a\nb' and " + "y" * 100_000 + " end")
    assert line.startswith("feature 'a\\nb' and yyy") and line.endswith("(100,000 characters) end")
    assert len(line) < 400
    assert shown("z" * 1000) == "z" * 51 + "..." + "z" * 25 + " (1,000 characters)"
    assert one_line(line) == line  # cut once, it stays as it is (a message pickled and made again)
    assert str(DataError(f"{path}\nx: bad")) == f"{path}\\nx: bad"
    assert error_line(ValueError("\nfirst\x1b " + "q" * 5000 + "\nsecond")) == "first\\x1b " + "q" * 493


def test_summary_shows_feature_names_escaped_and_cut(tmp_path, capsys):
    graph = json.loads((ROOT / "graphs" / "default.json").read_text(encoding="utf-8"))
    graph["input"]["features"] = ["close", "bad\nname", "v" * 100_000]
    path = tmp_path / "features.json"
    path.write_text(json.dumps(graph), encoding="utf-8")
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("input:"))
    assert line.startswith("input: 3 features (close, bad\\nname, vvv") and "(100,000 characters)" in line
    assert len(out) < 5000 and not any(line.startswith("name") for line in out.splitlines())
