"""studio predict: a finished run scores raw bars as it scored its own test dates (bit for bit), writes
CSV, Parquet and Qlib's pred.pkl, states what it leaves out, and refuses what it cannot use in one line.
Runs record their data path as typed and absolute, so predict and reproduce work from another folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studio.cli import main
from studio.core.graph_file import load_graph
from studio.train.config import SourceSpec, TrainConfig
from studio.train.engine import Trainer
from studio.train.predict import PredictError, predict
from tests.conftest import GRAPHS

SYMBOLS = [f"S{i:02d}" for i in range(24)]
BARS = 6  # 09:30 .. 09:55, five-minute bars
DAYS = 70


def write_market(folder: Path, symbols=SYMBOLS, days=DAYS, first_day: dict[str, int] | None = None) -> Path:
    """One CSV per symbol (datetime, open, high, low, close, volume), ``BARS`` bars a day on weekdays;
    ``first_day``: symbols whose file starts on that day (listed later)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2024-01-02", periods=days)
    stamps = [d + pd.Timedelta(minutes=570 + 5 * b) for d in dates for b in range(BARS)]
    for symbol in symbols:
        close = np.round(20 * np.exp(np.cumsum(rng.normal(0, 0.004, len(stamps)))), 2)
        frame = pd.DataFrame({"datetime": stamps, "open": close, "high": close + 0.01, "low": close - 0.01,
                              "close": close, "volume": rng.integers(100, 5000, len(stamps))})
        frame.iloc[(first_day or {}).get(symbol, 0) * BARS:].to_csv(folder / f"{symbol}_5min.csv", index=False)
    return folder


def small_graph(tmp: Path, bars: int = BARS, days: int = 4) -> Path:
    graph = json.loads((GRAPHS / "default.json").read_text())
    graph["input"].update(bars_per_day=bars, days=days)
    path = tmp / "graph.json"
    path.write_text(json.dumps(graph))
    return path


def side_by_side(run: Path, frame: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """predictions.parquet's rows of ``split`` beside ``frame``'s of the same dates and symbols."""
    recorded = pd.read_parquet(run / "predictions.parquet")
    recorded = recorded[recorded["split"] == split]
    return recorded.merge(frame, on=["date", "symbol"], how="outer", suffixes=("_run", "_predicted"),
                          indicator=True)


def span(run: Path, split: str = "test") -> str:
    dates = pd.read_parquet(run / "predictions.parquet").query("split == @split")["date"]
    return f"{dates.min().date()}..{dates.max().date()}"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory, cache) -> Path:
    trainer = Trainer(load_graph(GRAPHS / "default.json"), SourceSpec(synthetic={"stocks": 40, "days": 100}),
                      TrainConfig(epochs=1, threads=1, patience=0), out_dir=tmp_path_factory.mktemp("runs"))
    done = list(trainer.run())[-1]
    assert done["status"] == "finished", done["message"]
    return Path(done["run_dir"])


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory, cache) -> Path:
    """A run on a folder of CSV files, its path typed relative to the folder it was trained in."""
    home = tmp_path_factory.mktemp("desk")
    write_market(home / "bars")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(home)
        trainer = Trainer(load_graph(small_graph(home)), SourceSpec(kind="import", path="bars"),
                          TrainConfig(epochs=1, threads=1, patience=0, dates_per_batch=3), out_dir="runs")
        done = list(trainer.run())[-1]
    assert done["status"] == "finished", done["message"]
    return home / done["run_dir"]


def test_predict_gives_the_runs_own_test_scores_bit_for_bit(synthetic_run):
    result = predict(synthetic_run, dates=span(synthetic_run))
    both = side_by_side(synthetic_run, result.frame)
    assert len(both) > 300 and (both["_merge"] == "both").all()  # the same stocks of the same dates
    # the same inputs (studio.data.preprocess, bit for bit with training's windows) through the same
    # weights, in batches of the run's dates per batch on the CPU: the same bits
    assert (both["score_run"].to_numpy() == both["score_predicted"].to_numpy()).all()
    np.testing.assert_array_equal(both["label_run"], both["label_predicted"])  # NaN where not yet known
    daily = pd.read_csv(synthetic_run / "daily.csv").query("split == 'test'")
    ic = result.frame.groupby("date")["ic"].first()
    np.testing.assert_allclose(ic.to_numpy(), daily["ic"].to_numpy(), rtol=1e-8)  # daily.csv keeps 10 digits
    ranks = result.frame.groupby("date")["score"].rank(ascending=False).astype(int)
    assert (ranks == result.frame["rank"]).all() and (result.frame.groupby("date")["rank"].min() == 1).all()


def test_a_single_date_scores_as_it_does_within_a_range(synthetic_run):
    last_test = span(synthetic_run).split("..")[1]
    one = predict(synthetic_run, dates=last_test).frame
    both = side_by_side(synthetic_run, one).query("_merge == 'both'")
    assert len(both) == len(one) > 20 and (both["score_run"] == both["score_predicted"]).all()
    last = predict(synthetic_run).frame  # the default: the data's last date, which has no label yet
    assert last["date"].nunique() == 1 and last["date"].iloc[0] > pd.Timestamp(last_test)
    assert "label" not in last and last["score"].notna().all()


def test_a_run_trained_elsewhere_predicts_from_its_recorded_absolute_path(imported_run, tmp_path, monkeypatch):
    config = json.loads((imported_run / "config.json").read_text())
    assert config["data"]["source"]["path"] == "bars"  # as typed
    assert config["data"]["resolved_path"] == str(imported_run.parent.parent / "bars")
    monkeypatch.chdir(tmp_path)  # where "bars" is nothing
    result = predict(imported_run, dates=span(imported_run))
    both = side_by_side(imported_run, result.frame)
    assert (both["_merge"] == "both").all() and (both["score_run"] == both["score_predicted"]).all()
    copy = shutil.copytree(imported_run.parent.parent / "bars", tmp_path / "elsewhere")
    again = predict(imported_run, data=str(copy), dates=span(imported_run)).frame
    assert again["score"].tolist() == result.frame["score"].tolist()


def test_reproduce_runs_from_another_folder(imported_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", str(imported_run), "--out", str(tmp_path / "again")]) == 0
    assert "every figure matches" in capsys.readouterr().out
    moved = shutil.copytree(imported_run.parent.parent / "bars", tmp_path / "moved")
    config = json.loads((imported_run / "config.json").read_text())
    other = shutil.copytree(imported_run, tmp_path / "run")
    (other / "run.lock").unlink(missing_ok=True)
    config["data"]["resolved_path"] = "/nowhere/bars"
    (other / "config.json").write_text(json.dumps(config))
    assert main(["reproduce", str(other), "--out", str(tmp_path / "a")]) == 2
    assert "its data cannot be read here" in capsys.readouterr().err
    assert main(["reproduce", str(other), "--data", str(moved), "--out", str(tmp_path / "b")]) == 0


def test_the_command_writes_csv_parquet_and_qlibs_pred_pkl(imported_run, tmp_path, capsys):
    dates = span(imported_run)
    for name in ("scores.csv", "scores.parquet", "pred.pkl"):
        assert main(["predict", str(imported_run), "--dates", dates, "--to", str(tmp_path / name)]) == 0
        assert f"wrote {tmp_path / name}" in capsys.readouterr().out
    table = pd.read_parquet(tmp_path / "scores.parquet")
    assert list(table.columns) == ["date", "symbol", "score", "rank", "label", "ic"]
    csv = pd.read_csv(tmp_path / "scores.csv", parse_dates=["date"])
    np.testing.assert_allclose(csv["score"], table["score"], rtol=1e-9)
    pred = pd.read_pickle(tmp_path / "pred.pkl")
    assert list(pred.index.names) == ["datetime", "instrument"] and list(pred.columns) == ["score"]
    assert pred.index.is_monotonic_increasing and pred["score"].dtype == np.float64
    assert set(pred.index.get_level_values("instrument")) <= set(SYMBOLS)
    same = table.set_index(["date", "symbol"])["score"].sort_index()
    assert (pred["score"].to_numpy() == same.to_numpy()).all()
    assert main(["predict", str(imported_run)]) == 0  # without --to: a summary of the last date
    out = capsys.readouterr().out
    assert "scores of 1 date(s)" in out and "top 3" in out and "bottom 3" in out


def test_what_is_left_out_is_counted(imported_run, tmp_path):
    symbols = [*SYMBOLS[:-2], "NEW"]
    folder = write_market(tmp_path / "bars", symbols=symbols, first_day={"NEW": DAYS - 2})
    result = predict(imported_run, data=str(folder), dates="last")
    assert result.notes == [
        "2 of the run's 24 symbols are not in the data (e.g. S22, S23)",
        "1 symbols of the data are new to the run, scored all the same (e.g. NEW)",
        "1 stock-dates not scored: bars missing in their window (a gap, or listed within it)"]
    assert set(result.frame["symbol"]) == set(SYMBOLS[:-2])
    early = predict(imported_run, data=str(folder), dates="2024-01-02..2024-01-12")
    assert early.notes[2:] == [
        "3 dates left out: fewer than the window's 4 days of data before them (2024-01-02 .. 2024-01-04)",
        "6 dates have fewer than 24 days of bars up to them: the previous close or the 20-day volume reference "
        "of their first window days is partial (give more days before them)",
        # its first window day has no previous close: no stock has a full window
        "1 dates left out: fewer than 10 stocks with a full window (e.g. 2024-01-05)",
        "6 stock-dates not scored: not traded that date",  # NEW, before it lists
        "22 stock-dates not scored: bars missing in their window (a gap, or listed within it)"]
    assert early.frame.groupby("date").size().tolist() == [22] * 5


@pytest.mark.parametrize("case, message", [
    ("no preprocess.json", r"preprocess\.json: missing \(a run trained before"),
    ("damaged preprocess.json", r"preprocess\.json: field 'days' expects"),
    ("damaged weights", r"model\.pt"),
    ("no model.pt", r"model\.pt: no such file"),
    ("walk-forward", "a walk-forward run has a model per fold"),
    ("date outside", "--dates 2031-01-05: outside the data"),
    ("not a date", "--dates 'yesterday': expects last, YYYY-MM-DD"),
    ("weekend", "not a trading date of the data"),
    ("other bars per day", "the run reads 6 bars per day, the data has 4"),
    ("close-only data", "close: .*volume"),
    ("bad suffix", "--to .*scores.xlsx: expects a .csv, .parquet or .pkl file"),
    ("not a run", "not a run directory"),
    # these two said "PATH: no such file or folder (the run's data; give its path with --data)" to a --data given
    ("no such data", r"--data \S*nowhere: no such file or folder$"),
    ("a Qlib folder for a run on files", r"--data qlib:\S*: a Qlib data folder, but the run trained on files of "
                                         r"bars \(predict reads the kind of data its run trained on\)$"),
])
def test_what_cannot_be_used_is_one_line_and_exit_2(imported_run, tmp_path, capsys, case, message):
    run = Path(shutil.copytree(imported_run, tmp_path / "run"))
    argv = ["predict", str(run)]
    if case == "no preprocess.json":
        (run / "preprocess.json").unlink()
    elif case == "damaged preprocess.json":
        spec = json.loads((run / "preprocess.json").read_text())
        (run / "preprocess.json").write_text(json.dumps({**spec, "days": "4"}))
    elif case == "damaged weights":
        (run / "model.pt").write_bytes(b"PK\x03\x04 not a state dict")
    elif case == "no model.pt":
        (run / "model.pt").unlink()
    elif case == "walk-forward":
        config = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**config, "kind": "walk_forward"}))
    elif case == "date outside":
        argv += ["--dates", "2031-01-05"]
    elif case == "not a date":
        argv += ["--dates", "yesterday"]
    elif case == "weekend":
        argv += ["--dates", "2024-01-06"]
    elif case == "other bars per day":
        folder = tmp_path / "four"
        write_market(folder)
        for path in folder.iterdir():  # keep 4 of the 6 bars of each day
            frame = pd.read_csv(path)
            frame[pd.to_datetime(frame["datetime"]).dt.minute < 50].to_csv(path, index=False)
        argv += ["--data", str(folder)]
    elif case == "close-only data":
        folder = write_market(tmp_path / "close")
        for path in folder.iterdir():
            pd.read_csv(path)[["datetime", "close"]].to_csv(path, index=False)
        argv += ["--data", str(folder)]
    elif case == "bad suffix":
        argv += ["--to", str(tmp_path / "scores.xlsx")]
    elif case == "not a run":
        argv = ["predict", str(tmp_path)]
    elif case == "no such data":
        argv += ["--data", str(tmp_path / "nowhere")]
    elif case == "a Qlib folder for a run on files":
        from tests.test_qlib_source import training_folder

        argv += ["--data", f"qlib:{training_folder(tmp_path / 'cn', stocks=3, days=12)}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "scores.xlsx").exists()


def test_bars_per_day_that_do_not_fit_the_run_are_refused_with_what_predict_needs(imported_run, tmp_path, capsys):
    # predict passed on the training advice "(train with --bars-per-day N, ...)": a run's window is fixed
    folder = write_market(tmp_path / "four", days=12)
    for path in folder.iterdir():  # 4 of the 6 bars of each day: not the run's 6, nor a multiple of them
        frame = pd.read_csv(path)
        frame[pd.to_datetime(frame["datetime"]).dt.minute < 50].to_csv(path, index=False)
    assert main(["predict", str(imported_run), "--data", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.endswith(f"{folder}: the run reads 6 bars per day, the data has 4; predict needs bars with 6 a day, "
                        "or a multiple of 6 (resampled to 6 as in training)"), err
    assert "--bars-per-day" not in err and "train with" not in err


def test_a_run_made_before_preprocess_json_names_what_it_lacks(synthetic_run, tmp_path):
    old = Path(shutil.copytree(synthetic_run, tmp_path / "old"))
    (old / "preprocess.json").unlink()
    with pytest.raises(PredictError, match="train it again") as caught:
        predict(old)
    assert str(old / "preprocess.json") in str(caught.value)
    assert os.path.isfile(synthetic_run / "preprocess.json")


def test_every_walk_forward_fold_records_its_own_preprocessing(tmp_path, cache):
    from studio.train.walk_forward import WalkForward

    market = SourceSpec("synthetic", synthetic={"stocks": 30, "days": 120})
    job = WalkForward(load_graph(GRAPHS / "default.json"), market, TrainConfig(epochs=1, patience=0, threads=1),
                      out_dir=tmp_path, folds=2)
    done = list(job.run())[-1]
    assert done["status"] == "finished", done["message"]
    whole = Path(done["run_dir"])
    assert not (whole / "preprocess.json").exists()  # the whole has no model of its own
    specs = [json.loads((whole / "folds" / f"fold-{k}" / "preprocess.json").read_text()) for k in (1, 2)]
    assert specs[0]["median"] != specs[1]["median"]  # each fitted on its own training dates
    fold = whole / "folds" / "fold-2"
    both = side_by_side(fold, predict(fold, dates=span(fold)).frame)
    assert (both["_merge"] == "both").all() and (both["score_run"] == both["score_predicted"]).all()


def test_a_qlib_folder_trains_and_predicts_with_its_codes_round_tripping(tmp_path, cache, capsys):
    from tests.test_qlib_source import training_folder

    root = training_folder(tmp_path / "cn", stocks=16, days=50)
    graph = small_graph(tmp_path)
    assert main(["train", str(graph), "--data", f"qlib:{root}", "--freq", "5min", "--epochs", "1",
                 "--threads", "1", "--out", str(tmp_path / "runs"), "-q"]) == 0, \
        capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    both = side_by_side(run, predict(run, dates=span(run)).frame)
    assert (both["_merge"] == "both").all() and (both["score_run"] == both["score_predicted"]).all()
    copy = shutil.copytree(root, tmp_path / "copy")
    assert main(["predict", str(run), "--data", f"qlib:{copy}", "--to", str(tmp_path / "pred.pkl")]) == 0
    pred = pd.read_pickle(tmp_path / "pred.pkl")
    codes = set(pred.index.get_level_values("instrument"))
    assert codes <= {line.split("\t")[0] for line in (root / "instruments" / "all.txt").read_text().splitlines()}
    assert len(codes) == 16


@pytest.mark.usefixtures("shared_data")
def test_us_stocks_5min_predicted_from_the_raw_files_equals_the_runs_test_scores(tmp_path, cache):
    """The real 5-minute bars (78 a day, resampled to the graph's 6: the same pipeline, a quick run)."""
    from tests.conftest import SHARED_DATA

    bars = SourceSpec(kind="import", path=str(SHARED_DATA / "us_stocks_5min"))
    trainer = Trainer(load_graph(small_graph(tmp_path)), bars, TrainConfig(epochs=1, threads=1, patience=0),
                      out_dir=tmp_path / "runs")
    done = list(trainer.run())[-1]
    assert done["status"] == "finished", done["message"]
    run = Path(done["run_dir"])
    both = side_by_side(run, predict(run, dates=span(run)).frame)
    assert len(both) > 2000 and (both["_merge"] == "both").all()
    assert (both["score_run"] == both["score_predicted"]).all()
    last = predict(run)  # the last whole day: 19 of the 64 symbols ended on 2026-03-09
    assert str(last.frame["date"].iloc[0].date()) == "2026-03-11" and last.frame["symbol"].nunique() == 44
    assert last.notes == ["20 stock-dates not scored: not traded that date"]
