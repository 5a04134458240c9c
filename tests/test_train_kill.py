"""Run records that survive a kill: wherever a run dies (before its first checkpoint, between a
checkpoint and its epoch line, while writing its results, or at a random moment of a real SIGKILL),
`--resume` finishes it with records equal to those of an uninterrupted run; and two runs starting in
the same second in one folder get two directories."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from studio.cli import main
from studio.core.graph_file import load_graph
from studio.train.config import SourceSpec, TrainConfig
from studio.train.engine import Trainer
from studio.train.records import RunWriter
from tests.conftest import GRAPHS, ROOT

SMALL = {"stocks": 40, "days": 100}
EPOCHS = 3

DYING_RUN = r"""
import os, sys, json
from pathlib import Path
import torch
torch.set_num_threads(1)
from studio.core.graph_file import load_graph
from studio.train import engine, records
from studio.train.config import SourceSpec, TrainConfig

where, out = sys.argv[1], Path(sys.argv[2])
calls = {"n": 0}

def die(*args, **kwargs):
    os._exit(137)  # as abrupt as kill -9: no cleanup, no finally

if where == "before_first_checkpoint":
    engine.Trainer.evaluate = die
elif where == "between_checkpoint_and_record":
    original = records.RunWriter.write_jsonl  # each epoch rewrites metrics.jsonl after its checkpoint
    def rewrite(self, name, lines):
        calls["n"] += 1
        if calls["n"] == 2:
            die()
        original(self, name, lines)
    records.RunWriter.write_jsonl = rewrite
elif where == "writing_results":
    records.RunWriter.write_predictions = die
config = TrainConfig(epochs=int(sys.argv[3]), threads=1, patience=0)
trainer = engine.Trainer(load_graph(sys.argv[4]), SourceSpec(synthetic=json.loads(sys.argv[5])), config, out_dir=out)
for record in trainer.run():
    if record["kind"] == "start":
        print("started", flush=True)
"""


def epoch_lines(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock seconds."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("seconds")
    return lines


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    config = TrainConfig(epochs=EPOCHS, threads=1, patience=0)
    trainer = Trainer(load_graph(GRAPHS / "default.json"), SourceSpec(synthetic=SMALL), config,
                      out_dir=tmp_path_factory.mktemp("straight"))
    records = list(trainer.run())
    assert records[-1]["status"] == "finished"
    return Path(records[-1]["run_dir"])


def dying_run(out: Path, where: str, kill_after: float | None = None) -> Path:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", DYING_RUN, where, str(out), str(EPOCHS),
                             str(GRAPHS / "default.json"), json.dumps(SMALL)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if kill_after is not None:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (137, -9), f"the run was meant to die (exit {proc.returncode}): {err[-1500:]}"
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize(("where", "kill_after"), [
    ("before_first_checkpoint", None),
    ("between_checkpoint_and_record", None),
    ("writing_results", None),
    ("sigkill", 1.5),
])
def test_a_killed_run_resumes_to_the_same_records(tmp_path, straight, where, kill_after):
    run_dir = dying_run(tmp_path, where, kill_after)
    assert json.loads((run_dir / "config.json").read_text())["status"] == "running"
    code = main(["train", "--resume", str(run_dir), "--quiet"])
    assert code == 0
    assert json.loads((run_dir / "config.json").read_text())["status"] == "finished"
    assert epoch_lines(run_dir) == epoch_lines(straight), "the epoch records differ from an uninterrupted run"
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads((straight / "metrics.json").read_text())
    assert (run_dir / "daily.csv").read_text() == (straight / "daily.csv").read_text()


def test_a_run_killed_before_it_started_says_so(tmp_path, capsys):
    (tmp_path / "20260101-000000-default").mkdir()
    code = main(["train", "--resume", str(tmp_path / "20260101-000000-default")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "killed before its run started" in err


def test_two_runs_starting_in_the_same_second_get_two_directories(tmp_path):
    barrier = threading.Barrier(8)
    made: list[Path] = []
    errors: list[BaseException] = []

    def create():
        barrier.wait()
        try:
            made.append(RunWriter.create(tmp_path, "model").path)
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(made)) == 8


def test_a_killed_run_reads_interrupted_and_a_live_one_is_not_resumed_twice(tmp_path, capsys):
    """Issue 24, item 1 and issue 25, item 2: a run whose process died showed "running" for ever in the
    Runs table and in compare, and a second --resume of a live run wrote its epochs a second time."""
    from studio.cli.train_commands import compare_table
    from studio.train.records import read_run
    from studio.train.run_lock import held_by

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(GRAPHS / "default.json"), "--synthetic",
                             "stocks=40", "--synthetic", "days=100", "--epochs", "300", "--patience", "0",
                             "--threads", "1", "--out", str(tmp_path), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        lines = []
        while len(lines) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not reach its second epoch"
            time.sleep(0.2)
            runs = [p for p in tmp_path.iterdir() if (p / "metrics.jsonl").is_file()]
            lines = runs[0].joinpath("metrics.jsonl").read_text().splitlines() if runs else []
        (run_dir,) = runs
        assert held_by(run_dir) == proc.pid
        assert read_run(run_dir)["status"] == "running" and compare_table([str(run_dir)])["status"].tolist() == [
            "running"]
        for argv in (["train", "--resume", str(run_dir), "-q"], ["reproduce", str(run_dir)]):
            assert main(argv) == 2
            assert capsys.readouterr().err == f"studio: run {run_dir} is in use by process {proc.pid}\n"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert json.loads((run_dir / "config.json").read_text())["status"] == "running"  # as the kill left it
    assert held_by(run_dir) is None and read_run(run_dir)["status"] == "interrupted"
    assert main(["compare", str(run_dir)]) == 0
    assert "interrupted" in capsys.readouterr().out
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, len(epochs) + 1))
    # nothing owns it now: it resumes from its checkpoint
    running = Trainer.resume(run_dir).run(resume=True)
    assert next(running)["resumed_from"] >= 2
    assert read_run(run_dir)["status"] == "running"
    running.close()
