"""Damaged and tampered checkpoints and weights are refused in one line (issue 25 item 6).

The attack: a run stopped after 2 of 4 epochs, its checkpoint.pt then truncated, emptied, replaced by a
folder, by random bytes, by a pickle of a custom class, or edited (epoch 10^9, a history shorter than its
epoch, weights of another shape, wrong types). ``studio train --resume`` exited 3 with
``internal error: EOFError:`` or torch's paragraph suggesting ``weights_only=False``; a folder emptied
metrics.jsonl; epoch 10^9 was trusted and written into metrics.json. Now ``train --resume`` and
``studio reproduce`` exit 2 with one line naming the file, metrics.jsonl and config.json untouched, and
nothing in the file runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from studio.cli import main
from studio.core.graph_file import load_graph
from studio.train.checkpoints import read_checkpoint
from studio.train.config import SourceSpec, TrainConfig
from studio.train.engine import RunState, Trainer
from tests.conftest import GRAPHS
from tests.test_run_confinement import stopped_after_two_epochs

SMALL = {"stocks": 30, "days": 80}
MARKER = "studio-checkpoint-payload-ran"


class Payload:
    """What a hostile pickle carries: unpickling it would create a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> Path:
    """A run of 4 epochs stopped after its second: a checkpoint of epoch 2, two lines in metrics.jsonl;
    its finished twin (for reproduce) is made by resuming a copy."""
    return stopped_after_two_epochs(tmp_path_factory.mktemp("stopped"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    trainer = Trainer(load_graph(GRAPHS / "default.json"), SourceSpec(synthetic=SMALL),
                      TrainConfig(epochs=2, threads=1, patience=0), out_dir=out)
    last = list(trainer.run())[-1]
    assert last["status"] == "finished"
    return Path(last["run_dir"])


def _edited(path: Path, edit) -> None:
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)


def _history(payload: dict, keep: int) -> None:
    payload["history"] = json.dumps(json.loads(payload["history"])[:keep])


def _wrong_shape(payload: dict) -> None:
    first = next(iter(payload["model"]))
    payload["model"][first] = torch.zeros(3, 3)


def _bit_flipped(data: bytes) -> bytes:
    """One bit of the first tensor's bytes flipped (torch itself would load the file)."""
    import io
    import struct
    import zipfile

    member = next(i for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if "/data/" in i.filename)
    name_length, extra_length = struct.unpack("<HH", data[member.header_offset + 26:member.header_offset + 30])
    at = member.header_offset + 30 + name_length + extra_length
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


def _moment_reshaped(payload: dict) -> None:
    moments = payload["optimizer"]["state"][0]
    moments["exp_avg"] = torch.zeros(5, 5)


def _tamper(kind: str, path: Path, tmp_path: Path) -> None:
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "zero bytes":
        path.write_bytes(b"")
    elif kind == "a folder":
        path.unlink()
        path.mkdir()
        (path / "data.pkl").write_bytes(b"x")
    elif kind == "random bytes":
        path.write_bytes(os.urandom(50_000))
    elif kind == "a pickle of a custom class":
        torch.save({"epoch": 2, "model": Payload(str(tmp_path / MARKER))}, path)
    elif kind == "epoch 10^9":
        _edited(path, lambda p: p.update(epoch=10**9))
    elif kind == "history too short":
        _edited(path, lambda p: _history(p, 1))
    elif kind == "epoch a string":
        _edited(path, lambda p: p.update(epoch="2"))
    elif kind == "no model":
        _edited(path, lambda p: p.pop("model"))
    elif kind == "weights of another shape":
        _edited(path, _wrong_shape)
    elif kind == "a tensor, not a dict":
        torch.save(torch.zeros(3), path)
    elif kind == "a bit flipped in a tensor":
        path.write_bytes(_bit_flipped(path.read_bytes()))
    elif kind == "an optimiser moment of another shape":
        _edited(path, _moment_reshaped)
    else:
        raise AssertionError(kind)


KINDS = ["truncated", "zero bytes", "a folder", "random bytes", "a pickle of a custom class", "epoch 10^9",
         "history too short", "epoch a string", "no model", "weights of another shape", "a tensor, not a dict",
         "a bit flipped in a tensor", "an optimiser moment of another shape"]


def _digest(run: Path) -> dict[str, str]:
    return {name: hashlib.sha256((run / name).read_bytes()).hexdigest()
            for name in ("metrics.jsonl", "config.json", "metrics.json", "model.pt") if (run / name).is_file()}


def assert_one_line(code: int, capsys, names: str) -> str:
    _, err = capsys.readouterr()
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert "Traceback" not in err and "internal error" not in err
    assert "weights_only" not in err and "unpickl" not in err.lower(), err
    assert names in err, err
    return err


@pytest.mark.parametrize("kind", KINDS)
def test_train_resume_refuses_a_damaged_checkpoint_in_one_line(stopped_run, tmp_path, capsys, kind):
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    _tamper(kind, run / "checkpoint.pt", tmp_path)
    before = _digest(run)
    capsys.readouterr()
    code = main(["train", "--resume", str(run), "-q"])
    assert_one_line(code, capsys, "checkpoint.pt")
    assert _digest(run) == before, "the run's records changed"
    assert not (tmp_path / MARKER).exists(), "the pickle's payload ran"


def test_the_refusals_say_what_is_wrong(stopped_run, tmp_path, capsys):
    said = {}
    for kind in ("zero bytes", "a folder", "a pickle of a custom class", "epoch 10^9", "history too short",
                 "weights of another shape"):
        run = tmp_path / kind.replace(" ", "_")
        shutil.copytree(stopped_run, run)
        _tamper(kind, run / "checkpoint.pt", tmp_path)
        capsys.readouterr()
        said[kind] = assert_one_line(main(["train", "--resume", str(run), "-q"]), capsys, "checkpoint.pt")
    assert "empty" in said["zero bytes"]
    assert "folder" in said["a folder"]
    assert "could run code" in said["a pickle of a custom class"]
    assert "epoch 1000000000 is outside 1..4" in said["epoch 10^9"]
    assert "history holds 1 epochs, not the 2" in said["history too short"]
    assert "shape" in said["weights of another shape"]


def test_an_untouched_checkpoint_still_resumes(stopped_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    assert main(["train", "--resume", str(run), "-q"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 4
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4


def test_the_run_state_keeps_the_checkpoint_names_older_runs_wrote(stopped_run):
    """The engine's RunState names its fields for what they hold (epochs_done, best_weights,
    epochs_since_best); checkpoint.pt keeps the keys runs have always written (epoch, best_state, stale),
    so a run stopped by an older version resumes, and the state reads back as it was saved."""
    payload = read_checkpoint(stopped_run / "checkpoint.pt", 4)
    assert set(payload) == {"epoch", "best_ic", "best_epoch", "best_state", "stale", "history", "model",
                            "optimizer", "scheduler"}
    state = RunState.from_checkpoint(payload)
    assert state.epochs_done == 2 and [r["epoch"] for r in state.history] == [1, 2]
    assert (state.best_epoch, state.best_ic, state.epochs_since_best) == (
        payload["best_epoch"], payload["best_ic"], payload["stale"])
    assert state.best_weights is not None and state.best_weights.keys() == payload["model"].keys()
    entries = state.checkpoint_entries()
    assert list(entries) == ["epoch", "best_ic", "best_epoch", "best_state", "stale", "history"]
    assert json.loads(entries["history"]) == payload["history"]
    assert all(entries[key] is payload[key] for key in ("epoch", "best_ic", "best_epoch", "best_state", "stale"))


@pytest.mark.parametrize("kind", ["truncated", "zero bytes", "a folder", "a pickle of a custom class",
                                  "epoch 10^9", "history too short", "weights of another shape",
                                  "a bit flipped in a tensor", "an optimiser moment of another shape"])
def test_reproduce_refuses_a_damaged_checkpoint_in_one_line(finished_run, tmp_path, capsys, kind):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    _tamper(kind, run / "checkpoint.pt", tmp_path)
    capsys.readouterr()
    code = main(["reproduce", str(run), "--out", str(tmp_path / "again")])
    assert_one_line(code, capsys, "checkpoint.pt")
    assert not (tmp_path / "again").exists(), "it trained before refusing"
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("kind", ["truncated", "zero bytes", "random bytes", "a pickle of a custom class",
                                  "a tensor, not a dict", "a bit flipped in a tensor"])
def test_reproduce_refuses_damaged_weights_in_one_line(finished_run, tmp_path, capsys, kind):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    _tamper(kind, run / "model.pt", tmp_path)
    capsys.readouterr()
    code = main(["reproduce", str(run), "--out", str(tmp_path / "again")])
    assert_one_line(code, capsys, "model.pt")
    assert not (tmp_path / MARKER).exists()


def test_reproduce_compares_the_weights_too(finished_run, tmp_path, capsys):
    from studio.train.reproduce import reproduce

    result = reproduce(finished_run, tmp_path / "again")
    assert ("weights (model.pt)", "as recorded", "as recorded") in result.course and result.matches
    # weights that fit but are not the run's own: the re-run's differ from them
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    state = torch.load(run / "model.pt", weights_only=True)
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, run / "model.pt")
    other = reproduce(run, tmp_path / "again2")
    assert ("weights (model.pt)", "as recorded", "different") in other.differences


def test_export_weights_refuse_a_pickle_without_running_it(finished_run, tmp_path, capsys):
    weights = tmp_path / "w.pt"
    torch.save({"conv_1.weight": Payload(str(tmp_path / MARKER))}, weights)
    capsys.readouterr()
    code = main(["export", str(GRAPHS / "default.json"), "--to", str(tmp_path / "m.py"), "--weights", str(weights)])
    assert_one_line(code, capsys, str(weights))
    assert not (tmp_path / MARKER).exists()
    assert not (tmp_path / "m.py").exists()


def test_a_runs_own_weights_export(finished_run, tmp_path, capsys):
    code = main(["export", str(GRAPHS / "default.json"), "--to", str(tmp_path / "m.py"),
                 "--weights", str(finished_run / "model.pt")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "m.py").is_file() and (tmp_path / "m.pt").is_file()
