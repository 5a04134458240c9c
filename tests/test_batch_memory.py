"""dates_per_batch = "auto" by memory (issue 25 item 10): the engine probes what a step keeps per date,
reads the device's free memory and picks the most dates (up to 4) that fit half of it; an explicit setting
that cannot fit is refused in one line with the estimate and the largest that fits; the run records its
choice, and resume and reproduce train with that number again."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from studio.cli import main
from studio.core.graph_file import load_graph
from studio.train import engine, memory
from studio.train.config import ConfigError, SourceSpec, TrainConfig
from studio.train.engine import Trainer
from tests.conftest import GRAPHS

SMALL = ["--synthetic", "stocks=30", "--synthetic", "days=60", "--patience", "0", "--threads", "1"]


def train_cli(tmp_path: Path, capsys, *extra: str) -> tuple[int, str, list[Path]]:
    code = main(["train", str(GRAPHS / "default.json"), "--out", str(tmp_path / "runs"), *SMALL, *extra])
    err = capsys.readouterr().err
    runs = sorted((tmp_path / "runs").iterdir()) if (tmp_path / "runs").exists() else []
    return code, err, runs


def config_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "config.json").read_text(encoding="utf-8"))


def with_free_memory(monkeypatch, free: int | None) -> None:
    monkeypatch.setattr(engine, "free_memory", lambda device: free)


@pytest.fixture(scope="module")
def one_date(tmp_path_factory) -> dict:
    """What the probe measures for the default graph on the small market (a run with plenty of memory)."""
    folder = tmp_path_factory.mktemp("probe")
    code = main(["train", str(GRAPHS / "default.json"), "--out", str(folder), *SMALL, "--epochs", "1", "-q"])
    assert code == 0
    (run_dir,) = folder.iterdir()
    return config_of(run_dir)["batch"]


def test_auto_is_the_default_and_takes_four_dates_where_memory_is_plenty(one_date):
    assert TrainConfig().dates_per_batch == "auto"
    assert one_date["asked"] == "auto" and one_date["dates_per_batch"] == 4
    assert one_date["line"].startswith("dates per batch: auto -> 4 (a step needs ~")


def test_auto_picks_fewer_dates_when_memory_is_small(tmp_path, capsys, monkeypatch, one_date):
    # free memory for two dates' step and a bit (half of it is kept as headroom)
    fixed = one_date["step_bytes"] - 4 * one_date["date_bytes"]
    with_free_memory(monkeypatch, 2 * (2.5 * one_date["date_bytes"] + fixed))
    code, err, (run_dir,) = train_cli(tmp_path, capsys, "--epochs", "1")
    assert code == 0, err
    config = config_of(run_dir)
    assert config["training"]["dates_per_batch"] == 2 and config["batch"]["asked"] == "auto"
    start = err.splitlines()[0]
    train_dates = config["data"]["splits"]["train"]["dates"]
    assert "dates per batch: auto -> 2 (a step needs ~" in start and "of RAM free)" in start
    assert f"{math.ceil(train_dates / 2)} steps per epoch" in start
    # resume and reproduce read the number back, not auto: the same batches again on any machine
    assert Trainer.resume(run_dir).config.dates_per_batch == 2


def test_an_explicit_setting_that_cannot_fit_is_refused_with_the_estimate_and_the_largest_that_fits(
        tmp_path, capsys, monkeypatch, one_date):
    fixed = one_date["step_bytes"] - 4 * one_date["date_bytes"]
    free = int(2 * (3.5 * one_date["date_bytes"] + fixed))  # three dates fit
    with_free_memory(monkeypatch, free)
    code, err, runs = train_cli(tmp_path, capsys, "--epochs", "1", "--dates-per-batch", "8", "-q")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    needed = memory.gb(8 * one_date["date_bytes"] + fixed)
    assert lines[0] == (f"studio: {GRAPHS / 'default.json'}: dates_per_batch 8: a step needs ~{needed}, more than "
                        f"half the {memory.gb(free)} of RAM free; the largest that fits is 3 (or auto)")
    assert runs == []  # refused before the run directory was made
    code, err, (run_dir,) = train_cli(tmp_path, capsys, "--epochs", "1", "--dates-per-batch", "3", "-q")
    assert code == 0 and config_of(run_dir)["batch"]["line"].startswith("dates per batch: 3 (a step needs ~")


def test_auto_refuses_when_not_even_one_date_fits(tmp_path, capsys, monkeypatch, one_date):
    with_free_memory(monkeypatch, one_date["date_bytes"])
    code, err, runs = train_cli(tmp_path, capsys, "--epochs", "1", "-q")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "a step of one date needs ~" in lines[0] and "fewer stocks, a shorter window" in lines[0]
    assert runs == []


def test_the_probe_leaves_no_trace_in_the_figures(tmp_path, monkeypatch):
    # base_18 has batch norms (their running statistics) and dropout (the random generator): a run whose
    # probe is skipped comes out the same bits
    graph = load_graph(GRAPHS / "base" / "base_18.json")
    source = SourceSpec(synthetic={"stocks": 24, "days": 50})
    config = TrainConfig(epochs=2, patience=0, threads=1, dates_per_batch=4)

    def figures(out: Path) -> tuple[str, bytes]:
        done = engine.train(graph, source, config, out_dir=out)
        run_dir = Path(done["run_dir"])
        return (run_dir / "metrics.json").read_text(), (run_dir / "model.pt").read_bytes()

    probed = figures(tmp_path / "probed")
    monkeypatch.setattr(engine, "probe_date_bytes", lambda *args, **kwargs: 1000)
    assert figures(tmp_path / "skipped") == probed


def test_the_probe_measures_what_a_step_keeps():
    import torch

    from studio.nodes import default_registry
    from studio.torchgraph.builder import build_model

    graph = load_graph(GRAPHS / "default.json")
    model = build_model(graph, default_registry())
    window, features = graph.input.days * graph.input.bars_per_day, len(graph.input.features)
    per_date = memory.probe_date_bytes(model, window, features, 1000, torch.device("cpu"),
                                       torch.autocast("cpu", enabled=False))
    # conv_1's output alone, 240 steps x 16 channels x 4 bytes per stock, is kept (twice: its relu's too)
    assert per_date > 1000 * 240 * 16 * 4 * 2
    # linear in the stocks: the probe's few stocks scaled up
    half = memory.probe_date_bytes(model, window, features, 500, torch.device("cpu"),
                                   torch.autocast("cpu", enabled=False))
    assert abs(per_date - 2 * half) <= 2


def test_free_memory_is_the_smaller_of_memavailable_and_the_cgroup_limit(monkeypatch):
    import torch

    files = {"/proc/meminfo": "MemTotal: 32000000 kB\nMemAvailable:    8000000 kB\n",
             "/sys/fs/cgroup/memory.max": "6000000000\n", "/sys/fs/cgroup/memory.current": "2000000000\n"}
    monkeypatch.setattr(memory, "_read_small", files.get)
    assert memory.free_memory(torch.device("cpu")) == 4_000_000_000
    files["/sys/fs/cgroup/memory.max"] = "max\n"
    assert memory.free_memory(torch.device("cpu")) == 8_000_000 * 1024


def test_dates_per_batch_reads_auto_or_a_number():
    assert TrainConfig.from_json({"dates_per_batch": 3}).dates_per_batch == 3
    for bad in (0, "many", True, 2.5):
        with pytest.raises(ConfigError, match="dates_per_batch: expects auto or an integer >= 1"):
            TrainConfig(dates_per_batch=bad)


def test_the_cli_flag_refuses_a_word_other_than_auto(tmp_path, capsys):
    assert main(["train", str(GRAPHS / "default.json"), "--dates-per-batch", "lots"]) == 2
    assert "--dates-per-batch: expects auto or an integer >= 1, gets 'lots'" in capsys.readouterr().err
