"""The training engine: run records, figures recomputable with pandas, cancel, NaN, resume,
repeatability, and the command line's train and compare."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from studio.cli import main
from studio.core.graph_file import load_graph
from studio.train import engine
from studio.train.config import SourceSpec, TrainConfig
from studio.train.engine import Trainer, TrainingError
from tests.conftest import GRAPHS

SMALL = {"stocks": 48, "days": 110}
DEFAULT = GRAPHS / "default.json"


def small_run(tmp_path: Path, epochs: int = 2, **train) -> Trainer:
    config = TrainConfig(epochs=epochs, threads=1, patience=0, **train)
    return Trainer(load_graph(DEFAULT), SourceSpec(synthetic=SMALL), config, out_dir=tmp_path)


def finish(trainer: Trainer, cancel: threading.Event | None = None, resume: bool = False) -> list[dict]:
    return list(trainer.run(cancel, resume=resume))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, list[dict]]:
    records = finish(small_run(tmp_path_factory.mktemp("runs")))
    return Path(records[-1]["run_dir"]), records


def test_records_are_plain_progress_messages(finished_run):
    _, records = finished_run
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("epoch") == 2
    step = next(r for r in records if r["kind"] == "step")
    assert {"epoch", "step", "steps", "loss", "elapsed", "eta"} <= set(step)
    epoch = next(r for r in records if r["kind"] == "epoch")
    assert {"train_loss", "valid_loss", "valid", "lr", "daily", "oracle_ic", "seconds"} <= set(epoch)
    assert len(epoch["daily"]["ic"]) == len(epoch["daily"]["dates"]) > 0
    assert records[-1]["status"] == "finished"
    json.dumps(records[-1]["metrics"])  # plain data all the way


def test_the_run_directory_holds_every_record(finished_run):
    run_dir, _ = finished_run
    names = {p.name for p in run_dir.iterdir()}
    assert {"graph.json", "config.json", "metrics.jsonl", "metrics.json", "daily.csv", "predictions.parquet",
            "model.pt", "pnl.png", "checkpoint.pt"} <= names
    config = json.loads((run_dir / "config.json").read_text())
    assert config["status"] == "finished" and config["seed"] == 0
    assert {"studio", "torch", "python", "numpy"} <= set(config["versions"])
    assert len(config["graph"]["hash"]) == 16 and len(config["data"]["hash"]) == 16
    assert config["data"]["source"]["kind"] == "synthetic"
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2
    assert (run_dir / "graph.json").read_text() == DEFAULT.read_text()
    import torch

    state = torch.load(run_dir / "model.pt", weights_only=True)
    assert "conv_1.weight" in state
    assert (run_dir / "pnl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_figure_is_recomputable_from_predictions_with_pandas(finished_run):
    run_dir, _ = finished_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    predictions = pd.read_parquet(run_dir / "predictions.parquet")
    assert list(predictions.columns) == ["date", "symbol", "split", "score", "label"]
    q, cost, min_stocks = metrics["quantile"], metrics["cost"], metrics["min_stocks"]
    for split, figures in metrics["splits"].items():
        frame = predictions[predictions.split == split].dropna(subset=["score", "label"])
        by_date = frame.groupby("date")
        sizes = by_date.size()
        usable = frame[frame.date.isin(sizes[sizes >= min_stocks].index)].groupby("date")
        ic = usable[["score", "label"]].apply(lambda g: g.score.corr(g.label))
        rank_ic = usable[["score", "label"]].apply(
            lambda g: scipy.stats.spearmanr(g.score, g.label).statistic)
        assert figures["ic"] == pytest.approx(ic.mean(), abs=1e-9)
        assert figures["icir"] == pytest.approx(ic.mean() / ic.std(), abs=1e-9)
        assert figures["rank_ic"] == pytest.approx(rank_ic.mean(), abs=1e-9)
        assert figures["rank_icir"] == pytest.approx(rank_ic.mean() / rank_ic.std(), abs=1e-9)
        legs = {}
        for date, g in usable:
            n = int(len(g) * q)
            top, bottom = g.nlargest(n, "score"), g.nsmallest(n, "score")
            legs[date] = {"ls": (top.label.mean() - bottom.label.mean()) / 2,
                          "top": set(top.symbol), "bottom": set(bottom.symbol)}
        days = sorted(legs)
        ls = pd.Series([legs[d]["ls"] for d in days])
        assert figures["annual_return"] == pytest.approx(ls.mean() * 252, abs=1e-9)
        assert figures["sharpe"] == pytest.approx(ls.mean() / ls.std() * math.sqrt(252), abs=1e-6)
        curve = ls.cumsum()
        assert figures["max_drawdown"] == pytest.approx((curve - curve.cummax()).min(), abs=1e-9)
        turnover = []
        for i, d in enumerate(days):
            both = []
            for leg in ("top", "bottom"):
                kept = len(legs[d][leg] & legs[days[i - 1]][leg]) if i else 0
                both.append(1 - kept / len(legs[d][leg]))
            turnover.append(sum(both) / 2)
        assert figures["turnover"] == pytest.approx(np.mean(turnover), abs=1e-9)
        net = ls - cost * pd.Series(turnover)
        assert figures["net_annual_return"] == pytest.approx(net.mean() * 252, abs=1e-9)
        assert figures["dates"] == len(ic)
        assert figures["oracle_ic"] is not None


def test_daily_csv_matches_the_predictions(finished_run):
    run_dir, _ = finished_run
    daily = pd.read_csv(run_dir / "daily.csv")
    assert list(daily.columns[:7]) == ["date", "split", "ic", "rank_ic", "long", "short", "long_short"]
    predictions = pd.read_parquet(run_dir / "predictions.parquet")
    row = daily.dropna(subset=["ic"]).iloc[0]
    day = predictions[predictions.date == pd.Timestamp(row["date"])]
    assert row["ic"] == pytest.approx(day.score.corr(day.label), abs=1e-9)


def test_same_seed_same_figures(tmp_path, finished_run):
    run_dir, _ = finished_run
    again = finish(small_run(tmp_path))[-1]
    first = json.loads((run_dir / "metrics.json").read_text())
    second = json.loads((Path(again["run_dir"]) / "metrics.json").read_text())
    assert first == second


def test_cancel_takes_effect_within_a_second(tmp_path):
    trainer = small_run(tmp_path, epochs=50)
    cancel = threading.Event()
    seen: list[dict] = []
    stop_at: list[float] = []

    def consume():
        for record in trainer.run(cancel):
            seen.append(record)
            if record["kind"] == "epoch" and not stop_at:
                stop_at.append(time.monotonic())
                cancel.set()

    worker = threading.Thread(target=consume)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive()
    done = seen[-1]
    assert done["kind"] == "done" and done["status"] == "stopped"
    steps_after = [r for r in seen if r["kind"] == "step" and r["epoch"] == 2]
    assert steps_after == [], "a stop asked between two batches ends the run before the next one"
    assert time.monotonic() - stop_at[0] < 10  # including writing the records of the best epoch
    assert done["best_epoch"] == 1 and (Path(done["run_dir"]) / "metrics.json").is_file()


def test_cancel_reaches_the_loop_within_a_second(tmp_path):
    trainer = small_run(tmp_path, epochs=50)
    cancel = threading.Event()
    times = {}
    for record in trainer.run(cancel):
        if record["kind"] == "step" and record["epoch"] == 2 and "set" not in times:
            times["set"] = time.monotonic()
            cancel.set()
        if record["kind"] == "done":
            break
    # the next thing after the cancel is the end of the loop: no further training step ran
    assert record["status"] == "stopped" and record["message"].startswith("stopped at epoch 2, step")


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = engine.LOSS_FUNCTIONS["ic"]

    def poisoned(scores, labels, weight):
        calls["n"] += 1
        loss = real(scores, labels, weight)
        return loss * float("nan") if calls["n"] > 40 else loss

    monkeypatch.setitem(engine.LOSS_FUNCTIONS, "ic", poisoned)
    records = finish(small_run(tmp_path, epochs=5))
    # the loss read back every 4 steps (as on a GPU): the same steps recorded, the same step named
    calls["n"] = 0
    batched = finish(small_run(tmp_path, epochs=5, sync_every=4))
    assert [r for r in batched if r["kind"] == "step"][-1]["step"] == [
        r for r in records if r["kind"] == "step"][-1]["step"]
    assert batched[-1]["message"] == records[-1]["message"]
    done = records[-1]
    steps = records[0]["steps_per_epoch"]
    epoch = 40 // steps + 1
    assert done["status"] == "failed"
    assert done["message"].startswith(f"the loss became nan at epoch {epoch}, step ")
    assert f"kept the checkpoint of epoch {epoch - 1}" in done["message"]
    import torch

    checkpoint = torch.load(Path(done["run_dir"]) / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == epoch - 1
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values())


def test_a_resumed_run_ends_with_the_same_figures(tmp_path):
    straight = finish(small_run(tmp_path / "a", epochs=3))[-1]
    cancel = threading.Event()
    trainer = small_run(tmp_path / "b", epochs=3)
    for record in trainer.run(cancel):
        if record["kind"] == "epoch" and record["epoch"] == 2:
            cancel.set()
    interrupted = Path(record["run_dir"])
    assert record["status"] == "stopped"
    resumed = finish(Trainer.resume(interrupted), resume=True)
    assert resumed[0]["resumed_from"] == 2 and resumed[-1]["status"] == "finished"
    first = json.loads((Path(straight["run_dir"]) / "metrics.json").read_text())
    second = json.loads((interrupted / "metrics.json").read_text())
    assert first == second
    assert len((interrupted / "metrics.jsonl").read_text().splitlines()) == 3


def stop_in_the_middle(trainer: Trainer, cancel: threading.Event, when) -> None:
    """Set ``cancel`` from inside the model's forward pass (a stop pressed mid-step) once ``when(model)``."""
    def hook(model, args):
        if when(model):
            cancel.set()

    original = trainer._prepare

    def prepare():
        original()
        trainer.model.register_forward_pre_hook(hook)

    trainer._prepare = prepare


def test_a_stop_inside_a_step_ends_it_there_and_the_run_resumes_to_the_same_figures(tmp_path, monkeypatch):
    """Issue 24, item 1: Stop waited for the step under way (tens of seconds for transformer_6x6). With the
    checks inside every step, a stop pressed in a forward pass ends the run before that step's update."""
    straight = finish(small_run(tmp_path / "a", epochs=3))[-1]
    monkeypatch.setattr(engine, "FINE_CHECKS_ABOVE_S", 0.0)  # checks in every step, however quick
    cancel = threading.Event()
    trainer = small_run(tmp_path / "b", epochs=3)
    calls = {"n": 0}

    def fifth_step_of_epoch_two(model):
        calls["n"] += model.training
        return model.training and calls["n"] == trainer.steps + 5

    original = trainer._prepare

    def prepare():
        original()
        trainer.steps = math.ceil(len(trainer.data.splits.train) / trainer.dates_per_batch)

    trainer._prepare = prepare
    stop_in_the_middle(trainer, cancel, fifth_step_of_epoch_two)
    records = finish(trainer, cancel)
    done = records[-1]
    assert done["status"] == "stopped" and done["message"] == "stopped at epoch 2, step 5; best epoch 1 kept"
    assert [r["step"] for r in records if r["kind"] == "step" and r["epoch"] == 2] == [1, 2, 3, 4]
    run_dir = Path(done["run_dir"])
    assert json.loads((run_dir / "config.json").read_text())["status"] == "stopped"
    assert done["metrics"]["best_epoch"] == 1 and (run_dir / "metrics.json").is_file()  # scored: quick here
    monkeypatch.undo()
    assert main(["train", "--resume", str(run_dir), "-q"]) == 0
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads(
        (Path(straight["run_dir"]) / "metrics.json").read_text())
    assert [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_the_checks_inside_a_step_leave_every_figure_the_same(tmp_path, monkeypatch):
    quick = finish(small_run(tmp_path / "a"))
    monkeypatch.setattr(engine, "FINE_CHECKS_ABOVE_S", 0.0)
    checked = finish(small_run(tmp_path / "b"))
    assert [r["loss"] for r in quick if r["kind"] == "step"] == [r["loss"] for r in checked if r["kind"] == "step"]
    assert quick[-1]["metrics"] == checked[-1]["metrics"]


def test_a_stop_while_the_validation_dates_are_scored_drops_that_epoch(tmp_path, monkeypatch):
    """The validation pass of a large model is long too: a stop there ends it, and the epoch, whose
    figures were not finished, is trained again on resume."""
    cancel = threading.Event()
    trainer = small_run(tmp_path, epochs=2)
    stop_in_the_middle(trainer, cancel, lambda model: not model.training)  # the first scoring batch
    records = finish(trainer, cancel)
    done = records[-1]
    assert done["status"] == "stopped"
    assert done["message"] == "stopped at epoch 1 while scoring its validation dates; no epoch finished"
    assert not any(r["kind"] == "epoch" for r in records)
    run_dir = Path(done["run_dir"])
    assert not (run_dir / "checkpoint.pt").exists() and not (run_dir / "metrics.json").exists()
    resumed = finish(Trainer.resume(run_dir), resume=True)
    assert resumed[0]["resumed_from"] == 0 and resumed[-1]["status"] == "finished"


def test_after_a_stop_figures_that_take_too_long_are_left_to_resume(tmp_path, monkeypatch):
    """Scoring every split of a large model takes minutes: after a stop it is skipped when it would
    not fit in SCORING_AFTER_STOP_S; the best weights are kept and --resume scores them."""
    monkeypatch.setattr(engine, "SCORING_AFTER_STOP_S", 0.0)
    cancel = threading.Event()
    trainer = small_run(tmp_path, epochs=2)
    for record in trainer.run(cancel):
        if record["kind"] == "epoch":
            cancel.set()
    run_dir = Path(record["run_dir"])
    assert record["status"] == "stopped" and record["metrics"] is None
    assert record["message"] == ("stopped at epoch 2, step 1; best epoch 1 kept; not scored, which takes too "
                                 f"long after a stop: studio train --resume {run_dir} trains the epochs left, then "
                                 "scores it")
    assert (run_dir / "model.pt").is_file() and not (run_dir / "metrics.json").exists()
    assert main(["train", "--resume", str(run_dir), "-q"]) == 0
    assert json.loads((run_dir / "metrics.json").read_text())["best_epoch"] in (1, 2)


def test_a_run_has_one_owner_at_a_time(tmp_path):
    """Issue 25, item 2: two processes resumed the same run and metrics.jsonl held epochs [1,2,3,4,5,5]."""
    import os

    cancel = threading.Event()
    for record in small_run(tmp_path, epochs=3).run(cancel):
        if record["kind"] == "epoch":
            cancel.set()
    run_dir = Path(record["run_dir"])
    first, second = Trainer.resume(run_dir), Trainer.resume(run_dir)  # both made while nobody owns it
    running = first.run(resume=True)
    assert next(running)["kind"] == "start"
    with pytest.raises(TrainingError, match=f"^run {run_dir} is in use by process {os.getpid()}$"):
        next(second.run(resume=True))
    with pytest.raises(TrainingError, match="is in use by process"):
        Trainer.resume(run_dir)
    *_, done = running
    assert done["status"] == "finished"
    assert [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_an_invalid_graph_or_a_block_cannot_be_trained():
    graph = load_graph(DEFAULT)
    graph.nodes["head"].params["out_features"] = 3
    with pytest.raises(TrainingError, match=r"cannot train an invalid graph: score\.x: expects 1 channel"):
        Trainer(graph)
    with pytest.raises(TrainingError, match="only a model can be trained"):
        Trainer(load_graph(GRAPHS / "blocks" / "conv_relu.json"))


# ---- the command line ----------------------------------------------------------------------------

def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_and_compare_from_the_command_line(tmp_path, capsys):
    code, out, err = cli(capsys, "train", DEFAULT, GRAPHS / "two_branch.json", "--synthetic", "stocks=40",
                         "--synthetic", "days=100", "--epochs", "1", "--threads", "1", "--out", tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["graph", "status", "best", "IC"]
    assert [line.split()[0] for line in lines[2:4]] == ["default", "two_branch"]
    assert all(line.split()[1] == "finished" for line in lines[2:4])
    assert lines[4].startswith("! fewer than 20 dates")  # the short test split is flagged
    assert "[default] epoch 1/1" in err
    runs = sorted(p for p in tmp_path.iterdir())
    assert len(runs) == 2
    csv, md = tmp_path / "table.csv", tmp_path / "table.md"
    code, out, _ = cli(capsys, "compare", tmp_path, "--csv", csv, "--markdown", md, "--sort", "ic")
    assert code == 0
    assert out.splitlines()[1].split()[:5] == ["run", "graph", "status", "IC", "RankIC"]
    table = pd.read_csv(csv)
    assert list(table.columns[:5]) == ["run", "graph", "status", "ic", "rank_ic"] and len(table) == 2
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    row = table[table.run == runs[0].name].iloc[0]
    assert row["ic"] == pytest.approx(metrics["splits"]["test"]["ic"])
    assert md.read_text().startswith("| run | graph | status | IC |")
    # a short test split is flagged: its date count, a "!" and a line saying what it means
    test = metrics["splits"]["test"]
    assert test["dates"] < 20 and test["few_dates"] is True
    assert test["ic_t"] == pytest.approx(test["icir"] * math.sqrt(test["dates"]))
    header = out.splitlines()[1].split()
    assert header[-3:] == ["IC", "t", "dates"]
    assert out.splitlines()[3].split()[-2:] == [str(test["dates"]), "!"]
    assert "! fewer than 20 dates: the figures of that row mean little" in out
    assert list(table.columns[-10:]) == ["ic_t", "dates", "incremental_ic_t", "best_baseline", "has_baselines",
                                         "notes", "few_dates", "seed", "group", "kind"]
    assert set(table["kind"]) == {"run"}


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "nope.json"], "studio: nope.json: no such file"),
    (["train", DEFAULT, "--device", "tpu"], "studio: device: expects auto, cpu, cuda or cuda:N, gets 'tpu'"),
    (["train", DEFAULT, "--data", "/no/such/bars"], "studio: /no/such/bars: no such file or folder"),
    (["train", DEFAULT, "--epochs", "0"], "studio: epochs: expects an integer >= 1, gets 0"),
    (["train", DEFAULT, "--synthetic", "colour=red"], "studio: synthetic: unknown setting 'colour'"),
    (["train"], "studio: train: give one or more GRAPH files, or --resume RUN_DIR"),
    (["compare", "/no/such/run"], "studio: /no/such/run: no such run directory"),
])
def test_bad_training_input_is_a_one_line_error(capsys, argv, message):
    code, _, err = cli(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.strip().startswith(message), err


def test_cuda_requested_without_a_gpu_is_a_clear_error(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")  # the device check runs on the GPU machine instead
    code, _, err = cli(capsys, "train", DEFAULT, "--device", "cuda", "--synthetic", "stocks=20")
    assert code == 2 and "device cuda: no CUDA GPU is available" in err


def test_an_invalid_graph_file_exits_2(capsys, tmp_path):
    doc = json.loads(DEFAULT.read_text())
    doc["nodes"]["conv_1"]["params"]["kernel_size"] = 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    code, _, err = cli(capsys, "train", bad)
    assert code == 2 and err.strip() == (f"studio: {bad}: cannot train an invalid graph: conv_1.kernel_size: "
                                         "expects an integer in [1, 4096], gets 0")


# ---- the proof: the default graph learns most of what the synthetic market plants ----------------

LEARN = {"stocks": 160, "days": 320, "seed": 0}


@pytest.mark.slow
def test_the_default_graph_recovers_most_of_the_oracle_ic(tmp_path):
    from studio.data.dataset import DataConfig

    config = TrainConfig(epochs=8, patience=0, seed=0, threads=1)
    trainer = Trainer(load_graph(DEFAULT), SourceSpec(synthetic=LEARN), config, DataConfig(), out_dir=tmp_path)
    done = finish(trainer)[-1]
    test = done["metrics"]["splits"]["test"]
    assert test["oracle_ic"] > 0.1
    assert test["ic"] >= 0.6 * test["oracle_ic"], (test["ic"], test["oracle_ic"])
    assert test["rank_ic"] > 0 and test["annual_return"] > 0


@pytest.mark.slow
def test_a_control_run_with_shuffled_labels_learns_nothing(tmp_path):
    from studio.data.dataset import DataConfig

    config = TrainConfig(epochs=3, patience=0, seed=0, threads=1)
    trainer = Trainer(load_graph(DEFAULT), SourceSpec(synthetic=LEARN), config, DataConfig(shuffle_labels=True),
                      out_dir=tmp_path)
    test = finish(trainer)[-1]["metrics"]["splits"]["test"]
    assert abs(test["ic"]) < 0.15 * test["oracle_ic"], (test["ic"], test["oracle_ic"])


def test_train_on_real_bars_resampled_to_the_window(capsys, tmp_path, shared_data):
    us = shared_data / "us_stocks_5min"
    code, _, err = cli(capsys, "train", DEFAULT, "--data", us, "--epochs", "1", "--threads", "1", "--out", tmp_path)
    assert code == 2 and "the data has 78 (train with --bars-per-day N, N one of 78, 39, 26" in err
    code, _, err = cli(capsys, "train", DEFAULT, "--data", us, "--bars-per-day", "26", "--epochs", "1",
                         "--threads", "1", "--out", tmp_path)
    assert code == 0, err
    run = next(tmp_path.iterdir())
    assert load_graph(run / "graph.json").input.bars_per_day == 26
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["source"] == {"kind": "import", "path": str(us), "synthetic": {}, "importer": {}}
    assert config["data"]["panel"]["bars_per_day"] == 26 and config["data"]["panel"]["symbols"] == 64
    assert "resampled from 78 to 26 bars per day (3 bars each)" in config["data"]["panel"]["notes"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert "oracle_ic" not in metrics["splits"]["test"]  # real bars have no oracle


def test_a_run_gives_back_the_process_state(tmp_path):
    """Threads, torch's and numpy's global generators and the gc settings are as before the run, so
    two runs in one process do not depend on their order."""
    import gc
    import random

    import torch

    torch.set_num_threads(2)
    torch.manual_seed(99)
    np.random.seed(7)
    random.seed(3)
    gc.set_threshold(1234, 11, 12)
    expected = (torch.rand(3), np.random.rand(2), random.random())
    torch.manual_seed(99)
    np.random.seed(7)
    random.seed(3)
    first = finish(small_run(tmp_path / "a", epochs=1))[-1]
    try:
        assert torch.get_num_threads() == 2 and gc.get_threshold() == (1234, 11, 12)
        after = (torch.rand(3), np.random.rand(2), random.random())
        assert torch.equal(after[0], expected[0]) and np.array_equal(after[1], expected[1])
        assert after[2] == expected[2]
    finally:
        torch.set_num_threads(1)
        gc.set_threshold(700, 10, 10)
    # another run first changes nothing in this one's figures
    finish(small_run(tmp_path / "b", epochs=1, seed=5))
    again = finish(small_run(tmp_path / "c", epochs=1))[-1]
    assert again["metrics"]["splits"] == first["metrics"]["splits"]


def test_a_run_on_bars_and_features_kept_on_disk_equals_the_in_memory_run(tmp_path, monkeypatch,
                                                                          finished_run):
    """Above STUDIO_ON_DISK_ABOVE_MB the market and the features live in memory-mapped cache files: the
    same seed gives the same figures; a second run reads both files back instead of making them."""
    from studio.data import store

    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
    trainer = small_run(tmp_path / "runs")
    records = finish(trainer)
    assert store.mapping(trainer.data.panel.values) is not None
    assert store.mapping(trainer.data.features) is not None
    bars = list((tmp_path / "cache" / "synthetic").glob("*/bars.npy"))
    features = list((tmp_path / "cache" / "features").glob("*.npy"))
    assert len(bars) == 1 and len([f for f in features if not f.name.endswith(".known.npy")]) == 1
    stamps = {p: p.stat().st_mtime_ns for p in [*bars, *features]}
    in_memory_dir, _ = finished_run
    on_disk = json.loads((Path(records[-1]["run_dir"]) / "metrics.json").read_text())
    assert on_disk == json.loads((in_memory_dir / "metrics.json").read_text())
    again = finish(small_run(tmp_path / "runs"))[-1]
    assert json.loads((Path(again["run_dir"]) / "metrics.json").read_text()) == on_disk
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


@pytest.mark.parametrize("feed", ["prefetch", "device"])
def test_every_feed_and_a_delayed_loss_read_give_the_same_run(tmp_path, finished_run, feed):
    """Batches prefetched by a worker thread, or gathered from features resident on the device, with the
    loss read back every 3 steps: the figures of the plain run, bit for bit (on the CPU)."""
    records = finish(small_run(tmp_path, feed=feed, sync_every=3))
    assert records[0]["feed"] == feed and records[0]["sync_every"] == 3
    in_memory_dir, plain = finished_run
    steps = [(r["epoch"], r["step"], r["loss"]) for r in records if r["kind"] == "step"]
    assert steps == [(r["epoch"], r["step"], r["loss"]) for r in plain if r["kind"] == "step"]
    ours = json.loads((Path(records[-1]["run_dir"]) / "metrics.json").read_text())
    assert ours == json.loads((in_memory_dir / "metrics.json").read_text())


def test_a_run_with_compiled_cell_steps_learns_what_the_eager_run_learns(tmp_path):
    """--compile-steps: a ConvGRU's steps run their pointwise updates through torch.compile; the loss
    curve and the figures are the eager run's up to float rounding."""
    graph = load_graph(GRAPHS / "cells" / "convgru_1.json")

    def run(**train) -> list[dict]:
        config = TrainConfig(epochs=2, threads=1, patience=0, **train)
        return finish(Trainer(graph, SourceSpec(synthetic=SMALL), config, out_dir=tmp_path))

    eager, compiled = run(), run(compile_steps=True)
    assert eager[0]["compiled_cell_steps"] == 0 and compiled[0]["compiled_cell_steps"] >= 1
    assert json.loads((Path(compiled[-1]["run_dir"]) / "config.json").read_text())["training"]["compile_steps"]
    ours = [r["loss"] for r in compiled if r["kind"] == "step"]
    theirs = [r["loss"] for r in eager if r["kind"] == "step"]
    assert len(ours) == len(theirs) and ours != []
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5)
    figures, reference = (json.loads((Path(r[-1]["run_dir"]) / "metrics.json").read_text())
                          for r in (compiled, eager))
    assert figures["best_epoch"] == reference["best_epoch"]
    assert set(figures["splits"]) == set(reference["splits"]) == {"train", "valid", "test"}
    for split, table in reference["splits"].items():
        for name in ("ic", "rank_ic"):
            assert figures["splits"][split][name] == pytest.approx(table[name], abs=1e-3), (split, name)
