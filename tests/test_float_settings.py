"""Float training settings are finite and sane (issue 25 item 8, first half).

The attack: ``studio train --lr inf`` was accepted (``nan`` was refused); the run failed on NaN,
config.json recorded the rate as null, and ``--resume`` then exited 3 with a TypeError. Now a non-finite
or absurd value of any float setting is refused in one line naming the setting, and a run folder whose
config.json holds such a value (as that bug left it) is refused by ``--resume`` in one line.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from studio.cli import main
from studio.core.graph_file import load_graph
from studio.train.config import ConfigError, SourceSpec, TrainConfig
from studio.train.engine import Trainer
from tests.conftest import GRAPHS


def one_line_error(capsys) -> str:
    _, err = capsys.readouterr()
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert "Traceback" not in err and "internal error" not in err
    return err


@pytest.mark.parametrize(("flag", "value", "name"), [
    ("--lr", "inf", "lr"),
    ("--lr", "-inf", "lr"),
    ("--lr", "nan", "lr"),
    ("--lr", "1e9", "lr"),
    ("--lr", "0", "lr"),
    ("--max-minutes", "inf", "max_minutes"),
    ("--max-minutes", "nan", "max_minutes"),
])
def test_train_refuses_a_non_finite_or_absurd_float_option(tmp_path, capsys, flag, value, name):
    code = main(["train", str(GRAPHS / "default.json"), f"{flag}={value}", "--out", str(tmp_path / "runs"), "-q"])
    err = one_line_error(capsys)
    assert code == 2 and err.startswith(f"studio: {name}: expects a ") and "finite" in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("setting", "value"), [
    ("lr", float("inf")), ("weight_decay", float("inf")), ("grad_clip", float("inf")),
    ("step_gamma", float("nan")), ("lr", True), ("lr", "0.001"), ("lr", None),
])
def test_a_config_file_with_a_bad_float_is_refused(tmp_path, capsys, setting, value):
    config = tmp_path / "training.json"
    # json.dumps writes inf as Infinity, which Python's json reads back: the attack's file
    config.write_text(json.dumps({setting: value}))
    code = main(["train", str(GRAPHS / "default.json"), "--config", str(config), "--out", str(tmp_path / "r"), "-q"])
    err = one_line_error(capsys)
    assert code == 2 and f"{setting}: expects" in err and str(config) in err, err


def test_sane_values_still_pass():
    config = TrainConfig(lr=10.0, weight_decay=0.01, grad_clip=0.0, max_minutes=1.5, step_gamma=1.0)
    assert TrainConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="lr: expects a finite number > 0 and <= 10, gets inf"):
        TrainConfig(lr=float("inf"))


def test_resume_of_a_run_that_recorded_its_rate_as_null_is_one_line(tmp_path, capsys):
    """What --lr inf left behind: a stopped run whose config.json says "lr": null."""
    cancel = threading.Event()
    trainer = Trainer(load_graph(GRAPHS / "default.json"), SourceSpec(synthetic={"stocks": 30, "days": 80}),
                      TrainConfig(epochs=3, threads=1, patience=0), out_dir=tmp_path / "runs")
    for record in trainer.run(cancel):
        if record["kind"] == "epoch":
            cancel.set()
    run = Path(trainer.run_dir)
    config = json.loads((run / "config.json").read_text())
    config["training"]["lr"] = None
    (run / "config.json").write_text(json.dumps(config))
    kept = tmp_path / "kept"
    shutil.copytree(run, kept)
    capsys.readouterr()
    code = main(["train", "--resume", str(run), "-q"])
    err = one_line_error(capsys)
    assert code == 2 and "config.json" in err and "lr: expects a finite number" in err, err
    for name in ("config.json", "metrics.jsonl", "checkpoint.pt"):
        assert (run / name).read_bytes() == (kept / name).read_bytes()
