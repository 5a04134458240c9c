"""Ensembles of runs (studio ensemble): the combined scores against a pandas recomputation of the members'
cross-sectional ranks and z-scores, metrics.json against summarize(), compare, a seed group by its id,
every refusal, and what run diffs, reproduce, predict and resume say of an ensemble."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studio.cli import main
from studio.metrics import summarize
from studio.train.ensemble import EnsembleError, make_ensemble
from studio.train.records import seed_group
from tests.conftest import GRAPHS

TRAIN = ["--synthetic", "stocks=30", "--synthetic", "days=120", "--epochs", "1", "--patience", "0",
         "--threads", "1", "-q"]
RANK_SCALE = 3.46  # Qlib's CSRankNorm: (rank_pct - 0.5) * 3.46


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Three seeds of one tiny synthetic run, and one of another label horizon."""
    out = tmp_path_factory.mktemp("ensemble")
    for seed in (0, 1, 2):
        assert main(["train", str(GRAPHS / "default.json"), "--seed", str(seed), "--out", str(out / "runs"),
                     *TRAIN]) == 0
    assert main(["train", str(GRAPHS / "default.json"), "--seed", "0", "--horizon", "2",
                 "--out", str(out / "other"), *TRAIN]) == 0
    (other,) = (out / "other").iterdir()
    return {"root": out, "seeds": sorted((out / "runs").iterdir()), "other_horizon": other}


def _members_wide(seeds: list[Path], split: str) -> list[pd.DataFrame]:
    frames = [pd.read_parquet(p / "predictions.parquet") for p in seeds]
    return [f[f["split"] == split].pivot(index="date", columns="symbol", values="score") for f in frames]


def _expected(seeds: list[Path], split: str, how: str) -> pd.DataFrame:
    """The mean of the members' per-date ranks (pct, ties averaged) or z-scores (std ddof 0), recomputed with
    pandas over the stocks every member scored that date."""
    wide = _members_wide(seeds, split)
    common = wide[0].notna()
    for w in wide[1:]:
        common &= w.reindex_like(wide[0]).notna()
    parts = []
    for w in wide:
        w = w.reindex_like(wide[0]).where(common)
        if how == "rank":
            parts.append((w.rank(axis=1, pct=True, method="average") - 0.5) * RANK_SCALE)
        else:
            parts.append(w.sub(w.mean(axis=1), axis=0).div(w.std(axis=1, ddof=0), axis=0))
    return sum(parts) / len(parts)


@pytest.mark.parametrize("how", ["rank", "zscore"])
def test_the_ensemble_scores_are_the_mean_of_the_members_cross_sectional_ranks_or_z_scores(runs, tmp_path, how):
    out = tmp_path / f"ens-{how}"
    assert main(["ensemble", *map(str, runs["seeds"]), "--to", str(out), "--combine", how]) == 0
    got = pd.read_parquet(out / "predictions.parquet")
    assert set(got["split"]) == {"train", "valid", "test"}
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "ensemble" and config["status"] == "finished"
    assert config["ensemble"]["combine"] == how
    assert [m["run"] for m in config["ensemble"]["members"]] == [p.name for p in runs["seeds"]]
    assert [m["seed"] for m in config["ensemble"]["members"]] == [0, 1, 2]
    member_config = json.loads((runs["seeds"][0] / "config.json").read_text())
    assert config["data"]["source"] == member_config["data"]["source"]
    assert config["data"]["hash"] == member_config["data"]["hash"]
    assert config["data"]["config"] == member_config["data"]["config"]
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("train", "valid", "test"):
        expected = _expected(runs["seeds"], split, how)
        mine = got[got["split"] == split].pivot(index="date", columns="symbol", values="score")
        mine = mine.reindex(index=expected.index, columns=expected.columns)
        assert np.isfinite(expected.to_numpy()).sum() > 20 * 25
        np.testing.assert_allclose(mine.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)
        # metrics.json is summarize() of these scores against the members' raw labels, as a run's is
        labels = pd.read_parquet(runs["seeds"][0] / "predictions.parquet")
        labels = labels[labels["split"] == split].pivot(index="date", columns="symbol", values="label")
        labels = labels.reindex(index=expected.index, columns=expected.columns).where(expected.notna())
        settings = member_config["metrics"]
        summary, daily = summarize(expected.to_numpy(), labels.to_numpy(), quantile=settings["quantile"],
                                   cost=settings["cost"], min_stocks=settings["min_stocks"])
        for key, value in summary.items():
            assert metrics["splits"][split][key] == pytest.approx(value, rel=1e-9, abs=1e-12), (split, key)
        rows = pd.read_csv(out / "daily.csv").query("split == @split")
        assert list(rows["date"]) == [str(d.date()) for d in expected.index]
        np.testing.assert_allclose(rows["ic"], daily["ic"], rtol=1e-9)
    for name in ("pnl.png", "report.html", "graph.json"):
        assert (out / name).is_file()


def test_the_ensemble_of_seeds_differs_from_every_member_and_compare_lists_it_with_them(runs, tmp_path, capsys):
    out = tmp_path / "runs" / "ens"
    out.parent.mkdir()
    for seed_run in runs["seeds"]:  # one folder of runs: the members and their ensemble, as train --out leaves it
        shutil.copytree(seed_run, tmp_path / "runs" / seed_run.name)
    members = sorted(p for p in (tmp_path / "runs").iterdir() if p.name != "ens")
    assert main(["ensemble", *map(str, members), "--to", str(out)]) == 0
    line = capsys.readouterr().out
    assert "ensemble of 3 runs (rank), test IC" in line and "members' test IC" in line
    assert main(["compare", str(tmp_path / "runs")]) == 0
    table = capsys.readouterr().out
    assert "ens (ensemble of 3, rank)" in table
    assert all(f"  = {m.name}" in table for m in members)
    # the ensemble is not a fourth seed of its members' group
    groups = table.split("across seeds")[1]
    group = seed_group(json.loads((members[0] / "config.json").read_text()))
    rows = [line for line in groups.strip().splitlines() if "IC std over its seeds" not in line]  # words under it
    assert group in groups and " 3 " in groups.splitlines()[3] and len(rows) == 4
    ensemble_ic = json.loads((out / "metrics.json").read_text())["splits"]["test"]["ic"]
    member_ics = [json.loads((m / "metrics.json").read_text())["splits"]["test"]["ic"] for m in members]
    assert all(ensemble_ic != pytest.approx(ic, abs=1e-9) for ic in member_ics)


def test_a_seed_group_id_names_every_run_of_the_group(runs, tmp_path, capsys):
    group = seed_group(json.loads((runs["seeds"][0] / "config.json").read_text()))
    out = tmp_path / "by-group"
    assert main(["ensemble", group[:8], "--runs-dir", str(runs["root"] / "runs"), "--to", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert [m["run"] for m in config["ensemble"]["members"]] == [p.name for p in runs["seeds"]]
    assert config["ensemble"]["seed_group"] == group
    capsys.readouterr()
    assert main(["ensemble", "abcdef", "--runs-dir", str(runs["root"] / "runs"), "--to", str(tmp_path / "x")]) == 2
    assert "seed group abcdef: no run of" in capsys.readouterr().err


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _other_data(run, to):
    copy = _copy(run, to)
    _edit_json(copy / "config.json", lambda c: c["data"].__setitem__("hash", "0" * 16))
    return copy


def _other_split(run, to):
    copy = _copy(run, to)
    _edit_json(copy / "config.json", lambda c: c["data"]["config"].__setitem__("split", [0.5, 0.25, 0.25]))
    return copy


def _stopped(run, to):
    copy = _copy(run, to)
    _edit_json(copy / "metrics.json", lambda m: m.__setitem__("status", "stopped"))
    _edit_json(copy / "config.json", lambda c: c.__setitem__("status", "stopped"))
    return copy


def _a_test_date_less(run, to):
    copy = _copy(run, to)
    frame = pd.read_parquet(copy / "predictions.parquet")
    last = frame.loc[frame["split"] == "test", "date"].max()
    frame[frame["date"] != last].to_parquet(copy / "predictions.parquet", index=False)
    return copy


def _other_labels(run, to):
    copy = _copy(run, to)
    frame = pd.read_parquet(copy / "predictions.parquet")
    frame["label"] = frame["label"] * 2
    frame.to_parquet(copy / "predictions.parquet", index=False)
    return copy


@pytest.mark.parametrize(("make", "message"), [
    (_other_data, "the data (fingerprint) differ"),
    (_other_split, "the data settings (lag, horizon, split, min_stocks) differ"),
    (_stopped, "not finished (status stopped)"),
    (_a_test_date_less, "the dates of each split differ"),
    (_other_labels, "the labels of the train split differ"),
])
def test_members_that_are_not_the_same_experiment_are_refused_in_one_line(runs, tmp_path, capsys, make, message):
    odd = make(runs["seeds"][1], tmp_path / "odd")
    out = tmp_path / "ens"
    assert main(["ensemble", str(runs["seeds"][0]), str(odd), "--to", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_run_of_another_horizon_is_refused(runs, tmp_path, capsys):
    assert main(["ensemble", str(runs["seeds"][0]), str(runs["other_horizon"]), "--to", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "the data settings (lag, horizon, split, min_stocks) differ" in err and len(err.strip().splitlines()) == 1


def test_one_run_or_an_occupied_folder_is_refused(runs, tmp_path, capsys):
    assert main(["ensemble", str(runs["seeds"][0]), "--to", str(tmp_path / "e")]) == 2
    assert "an ensemble needs at least 2 runs, gets 1" in capsys.readouterr().err
    assert main(["ensemble", str(runs["seeds"][0]), str(runs["seeds"][0]), "--to", str(tmp_path / "e")]) == 2
    assert "an ensemble needs at least 2 runs, gets 1" in capsys.readouterr().err
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    assert main(["ensemble", *map(str, runs["seeds"][:2]), "--to", str(occupied)]) == 2
    assert "the folder exists and is not empty" in capsys.readouterr().err
    assert (occupied / "notes.txt").read_text() == "mine" and len(list(occupied.iterdir())) == 1
    with pytest.raises(EnsembleError, match="--combine mean: expects one of rank, zscore"):
        make_ensemble(runs["seeds"], tmp_path / "e", "mean")


def test_an_ensemble_is_not_a_member_and_other_commands_say_what_it_is(runs, tmp_path, capsys):
    out = tmp_path / "ens"
    assert main(["ensemble", *map(str, runs["seeds"]), "--to", str(out)]) == 0
    capsys.readouterr()
    assert main(["ensemble", str(out), str(runs["seeds"][0]), "--to", str(tmp_path / "e2")]) == 2
    assert "is an ensemble itself; an ensemble combines plain runs" in capsys.readouterr().err
    for command in (["reproduce", str(out)], ["train", "--resume", str(out)]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert f"{out} is an ensemble of 3 runs (rank average of their scores)" in err, command
        assert len(err.strip().splitlines()) == 1
    assert main(["compare", str(runs["seeds"][0]), str(out)]) == 0  # two runs: the run diff below the table
    diff = capsys.readouterr().out
    assert f"graph: cannot compare ({out} is an ensemble of 3 runs" in diff
    assert 'kind: "run" -> "ensemble"' in diff and "training." not in diff
    assert main(["report", str(out), "--to", str(tmp_path / "sheet.png")]) == 0
    assert (tmp_path / "sheet.png").stat().st_size > 10_000


def test_predict_on_an_ensemble_combines_its_members_predictions_as_its_own_scores_were(runs, tmp_path, capsys):
    out = tmp_path / "ens"
    assert main(["ensemble", *map(str, runs["seeds"]), "--to", str(out), "--combine", "zscore"]) == 0
    recorded = pd.read_parquet(out / "predictions.parquet").query("split == 'test'")
    first, last = recorded["date"].min().date(), recorded["date"].max().date()
    assert main(["predict", str(out), "--dates", f"{first}..{last}", "--to", str(tmp_path / "scores.parquet")]) == 0
    assert "note: scores: the zscore average of its 3 members' scores" in capsys.readouterr().out
    predicted = pd.read_parquet(tmp_path / "scores.parquet")
    both = recorded.merge(predicted, on=["date", "symbol"], how="outer", indicator=True)
    assert (both["_merge"] == "both").all() and len(both) > 500
    np.testing.assert_allclose(both["score_x"], both["score_y"], rtol=0, atol=1e-12)
    daily = pd.read_csv(out / "daily.csv").query("split == 'test'")
    np.testing.assert_allclose(predicted.groupby("date")["ic"].first(), daily["ic"], rtol=1e-8)
    assert (predicted.groupby("date")["rank"].min() == 1).all()
    gone = tmp_path / "moved"
    shutil.copytree(out, gone)  # a member moved away since: said in one line
    _edit_json(gone / "config.json", lambda c: c["ensemble"]["members"][1].__setitem__("path", str(tmp_path / "no")))
    assert main(["predict", str(gone)]) == 2
    err = capsys.readouterr().err
    assert f"its member {tmp_path / 'no'} is gone, so it cannot predict" in err and len(err.strip().splitlines()) == 1


@pytest.mark.usefixtures("shared_data")
def test_three_seeds_on_us_stocks_5min_make_an_ensemble_judged_on_their_test_dates(tmp_path, monkeypatch):
    """The real 5-minute bars (resampled to 6 a day for quick runs): three seeds, their rank ensemble."""
    from studio.core.graph_file import load_graph
    from studio.train.config import SourceSpec, TrainConfig
    from studio.train.engine import Trainer
    from studio.train.sources import load_source
    from tests.conftest import SHARED_DATA

    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    graph_file = tmp_path / "graph.json"
    graph_json = json.loads((GRAPHS / "default.json").read_text())
    graph_json["input"].update(bars_per_day=6, days=5)
    graph_file.write_text(json.dumps(graph_json))
    graph = load_graph(graph_file)
    bars = SourceSpec(kind="import", path=str(SHARED_DATA / "us_stocks_5min"))
    loaded = load_source(bars, graph.input)
    seeds = []
    for seed in (0, 1, 2):
        done = list(Trainer(graph, bars, TrainConfig(epochs=1, threads=1, patience=0, seed=seed), loaded=loaded,
                            out_dir=tmp_path / "runs").run())[-1]
        assert done["status"] == "finished", done["message"]
        seeds.append(Path(done["run_dir"]))
    metrics = make_ensemble(seeds, tmp_path / "ens")
    test = metrics["splits"]["test"]
    expected = _expected(seeds, "test", "rank")
    assert test["dates"] == len(expected) >= 30  # the members' test dates, every one of them
    got = pd.read_parquet(tmp_path / "ens" / "predictions.parquet").query("split == 'test'")
    got = got.pivot(index="date", columns="symbol", values="score").reindex_like(expected)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)
    baselines = json.loads((tmp_path / "ens" / "baselines.json").read_text())
    assert baselines["split_dates"]["test"] == test["dates"]
    assert baselines["model"]["test"]["ic"] == pytest.approx(test["ic"], abs=1e-12)
