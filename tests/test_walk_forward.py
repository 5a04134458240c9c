"""Walk-forward runs: the fold plan, one ordinary run per fold, the out-of-sample figures of all folds
together (checked against per-date correlations computed here), compare, resume and reproduce."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studio.cli import main
from studio.core.graph_file import load_graph
from studio.data.splits import walk_forward
from studio.train.config import SourceSpec, TrainConfig
from studio.train.walk_forward import WalkForward, WalkForwardError, plan_folds
from tests.conftest import GRAPHS

SYNTHETIC = ["--synthetic", "stocks=30", "--synthetic", "days=120"]
TRAIN = [*SYNTHETIC, "--epochs", "1", "--patience", "0", "--threads", "1", "-q"]


def test_the_plan_tiles_the_last_dates_with_gaps():
    usable = np.arange(5, 105)  # 100 usable dates
    folds = plan_folds(usable, 4, gap=2)
    size = 100 // 7
    assert [len(f.test) for f in folds] == [size] * 4 and [len(f.valid) for f in folds] == [size] * 4
    assert folds[-1].test[-1] == usable[-1]
    for before, after in itertools.pairwise(folds):
        assert after.test[0] == before.test[-1] + 1  # the test windows follow each other
    for f in folds:
        assert f.valid[0] - f.train[-1] == 3 and f.test[0] - f.valid[-1] == 3  # two dates left out between
    assert len({len(f.train) for f in folds}) == 1  # rolling: every fold trains on as many dates
    expanding = plan_folds(usable, 4, gap=2, expanding=True)
    assert all(f.train[0] == usable[0] for f in expanding)
    assert [len(f.train) for f in expanding] == [len(folds[0].train) + k * size for k in range(4)]
    assert [list(f.test) for f in expanding] == [list(f.test) for f in folds]
    same = walk_forward(usable, 4, valid_dates=size, test_dates=size, gap=2, train_dates=len(folds[0].train))
    assert all((a.train == b.train).all() and (a.test == b.test).all() for a, b in zip(folds, same, strict=True))


@pytest.mark.parametrize(("folds", "fold_dates", "message"), [
    (1, None, "expects at least 2 folds"),
    (4, 0, "--fold-dates: expects a count >= 1"),
    (4, 30, "100 usable dates are too few for 4 folds of 30 test dates"),
])
def test_a_plan_that_cannot_be_made_is_one_line(folds, fold_dates, message):
    with pytest.raises(WalkForwardError, match=message):
        plan_folds(np.arange(100), folds, gap=2, fold_dates=fold_dates)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wf")
    assert main(["train", str(GRAPHS / "default.json"), "--walk-forward", "3", "--out", str(out), *TRAIN]) == 0
    (run_dir,) = out.iterdir()
    return run_dir


def test_each_fold_is_an_ordinary_run_on_its_planned_dates(run):
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "walk_forward" and config["status"] == "finished"
    plan = config["walk_forward"]["plan"]
    assert len(plan) == 3 and not config["walk_forward"]["expanding"]
    for fold in plan:
        fold_dir = run / fold["dir"]
        fold_config = json.loads((fold_dir / "config.json").read_text())
        given = fold_config["data"]["given_splits"]
        assert [given[name] for name in ("train", "valid", "test")] == [fold[n] for n in ("train", "valid", "test")]
        assert max(fold["train"]) < min(fold["valid"]) and max(fold["valid"]) < min(fold["test"])
        assert json.loads((fold_dir / "metrics.json").read_text())["status"] == "finished"
        test = pd.read_parquet(fold_dir / "predictions.parquet").query("split == 'test'")
        assert test["date"].nunique() == len(fold["test"])


def test_the_figures_are_those_of_all_folds_test_dates_together(run):
    predictions = pd.read_parquet(run / "predictions.parquet")
    assert set(predictions["split"]) == {"test"} and sorted(predictions["fold"].unique()) == [1, 2, 3]
    parts = [pd.read_parquet(run / "folds" / f"fold-{k}" / "predictions.parquet").query("split == 'test'")
             for k in (1, 2, 3)]
    together = pd.concat(parts, ignore_index=True)
    assert np.array_equal(predictions["score"].to_numpy(), together["score"].to_numpy())
    assert predictions["date"].is_monotonic_increasing
    # an independent reference: per-date Pearson and Spearman correlations of score and label
    per_date = together.groupby("date").apply(
        lambda g: pd.Series({"ic": g["score"].corr(g["label"]),
                             "rank_ic": g["score"].corr(g["label"], method="spearman")}), include_groups=False)
    daily = pd.read_csv(run / "daily.csv", parse_dates=["date"]).set_index("date")
    assert list(daily.index) == list(per_date.index)
    np.testing.assert_allclose(daily["ic"], per_date["ic"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(daily["rank_ic"], per_date["rank_ic"], rtol=0, atol=1e-9)
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["splits"]["test"]
    assert test["dates"] == len(per_date)
    assert test["ic"] == pytest.approx(per_date["ic"].mean(), abs=1e-12)
    assert test["rank_ic"] == pytest.approx(per_date["rank_ic"].mean(), abs=1e-12)
    assert test["icir"] == pytest.approx(per_date["ic"].mean() / per_date["ic"].std(ddof=1), rel=1e-9)
    # each fold's own daily figures are the same dates' figures of the whole (one date, one model)
    for k in (1, 2, 3):
        fold_daily = pd.read_csv(run / "folds" / f"fold-{k}" / "daily.csv", parse_dates=["date"])
        fold_daily = fold_daily[fold_daily["split"] == "test"].set_index("date")
        np.testing.assert_array_equal(daily.loc[fold_daily.index, "ic"], fold_daily["ic"])
        assert metrics["folds"][k - 1]["test"] == json.loads(
            (run / "folds" / f"fold-{k}" / "metrics.json").read_text())["splits"]["test"]
    assert (run / "pnl.png").stat().st_size > 0


def test_compare_shows_the_run_with_its_folds(run, capsys):
    assert main(["compare", str(run.parent)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith(run.name))
    assert "(walk-forward)" in lines[head]
    assert [line.split()[0] for line in lines[head + 1:head + 4]] == ["fold-1", "fold-2", "fold-3"]
    test = json.loads((run / "metrics.json").read_text())["splits"]["test"]
    assert f"{test['ic']:.4f}" in lines[head]
    fold_2 = json.loads((run / "folds" / "fold-2" / "metrics.json").read_text())["splits"]["test"]
    assert f"{fold_2['ic']:.4f}" in lines[head + 2]


def test_a_stopped_walk_forward_resumes_to_the_same_records(run, tmp_path):
    graph = load_graph(GRAPHS / "default.json")
    job = WalkForward(graph, SourceSpec("synthetic", synthetic={"stocks": 30, "days": 120}),
                      TrainConfig(epochs=1, patience=0, threads=1), out_dir=tmp_path, folds=3)
    cancel = threading.Event()
    last = None
    for record in job.run(cancel):
        last = record
        if record.get("fold") == 3 and record["kind"] == "start":
            cancel.set()  # stopped in the last fold
    assert last["kind"] == "done" and last["status"] == "stopped" and "fold 3 of 3" in last["message"]
    stopped = json.loads((job.run_dir / "metrics.json").read_text())
    assert stopped["folds_done"] == 2 and stopped["splits"]["test"]["dates"] < json.loads(
        (run / "metrics.json").read_text())["splits"]["test"]["dates"]
    assert main(["train", "--resume", str(job.run_dir), "-q"]) == 0
    again, whole = (json.loads((d / "metrics.json").read_text()) for d in (job.run_dir, run))
    assert again["status"] == "finished" and again["splits"] == whole["splits"]
    pd.testing.assert_frame_equal(pd.read_parquet(job.run_dir / "predictions.parquet"),
                                  pd.read_parquet(run / "predictions.parquet"))


def test_a_fold_reproduces_and_the_whole_is_refused_in_one_line(run, capsys):
    assert main(["reproduce", str(run)]) == 2
    err = capsys.readouterr().err
    assert "cannot reproduce a walk-forward run as a whole" in err and "folds/fold-1" in err
    assert main(["reproduce", str(run / "folds" / "fold-2")]) == 0
    assert "every figure matches" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    (["--expanding"], "--expanding and --fold-dates go with --walk-forward K"),
    (["--walk-forward", "1"], "expects at least 2 folds"),
    (["--walk-forward", "6", "--fold-dates", "20"], "too few for 6 folds of 20 test dates"),
])
def test_bad_walk_forward_options_are_one_line(tmp_path, capsys, extra, message):
    code = main(["train", str(GRAPHS / "default.json"), *extra, "--out", str(tmp_path / "runs"), *TRAIN])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_the_runs_table_shows_one_run_with_its_folds(run, qtbot):
    from studio.gui.runs import RunsWidget, read_runs

    (row,) = [r for r in read_runs(run.parent) if r["path"] == run]
    metrics = json.loads((run / "metrics.json").read_text())
    assert row["run"] == f"{run.name} (walk-forward, 3 folds)"
    assert row["ic"] == metrics["splits"]["test"]["ic"]
    assert [line.split(" (")[0] for line in row["folds"]] == ["fold 1", "fold 2", "fold 3"]
    assert f"IC {metrics['folds'][1]['test']['ic']:.4f}" in row["folds"][1]
    widget = RunsWidget(run.parent)
    qtbot.addWidget(widget)
    widget.refresh()
    (cell,) = [widget.table.item(r, 0) for r in range(widget.table.rowCount())
               if widget.table.item(r, 0).text().startswith(run.name)]
    assert "fold 3" in cell.toolTip()


def test_on_disk_each_fold_has_its_own_features_and_the_same_figures(run, tmp_path, monkeypatch):
    # features in memory-mapped files (as at the seed's scale): each fold's scaling is fitted on its own
    # training dates, so each has its own file, and the records are those of the in-memory run
    monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "runs"
    assert main(["train", str(GRAPHS / "default.json"), "--walk-forward", "3", "--out", str(out), *TRAIN]) == 0
    (on_disk,) = out.iterdir()
    files = sorted((tmp_path / "cache" / "features").glob("*.npy"))
    assert len([f for f in files if not f.name.endswith(".known.npy")]) == 4  # the plan's and 3 folds'
    again, whole = (json.loads((d / "metrics.json").read_text()) for d in (on_disk, run))
    assert again["splits"] == whole["splits"]
