"""studio reproduce: a short run trained again from its records gives every figure exactly; a changed
figure is found; runs that no re-run here could match are refused with a one-line reason naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from studio.cli import main
from studio.train.reproduce import ReproduceError, reproduce
from studio.train.sweep import load_spec, run_trial
from tests.test_sweep import write_spec


@pytest.fixture(scope="module")
def a_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("reproduce")
    spec = load_spec(write_spec(folder, seeds=1, training={"epochs": 2, "patience": 0, "threads": 1}))
    record = run_trial(spec.to_json(), spec.trials()[0].to_json(), str(folder / "runs"), 1)
    assert record["status"] == "finished", record["message"]
    return Path(record["run_dir"])


def copy_of(run: Path, tmp_path: Path, edit_config=None, edit_metrics=None) -> Path:
    other = tmp_path / run.name
    shutil.copytree(run, other)
    for name, edit in (("config.json", edit_config), ("metrics.json", edit_metrics)):
        if edit is not None:
            data = json.loads((other / name).read_text())
            edit(data)
            (other / name).write_text(json.dumps(data))
    return other


def test_a_run_trained_again_gives_every_figure_exactly(a_run, tmp_path, capsys):
    result = reproduce(a_run, tmp_path / "again")
    assert result.exact and result.matches, result.differences
    recorded = json.loads((a_run / "metrics.json").read_text())
    assert len(result.figures) == sum(len(v) for v in recorded["splits"].values())
    assert result.rerun_dir.parent == tmp_path / "again" and (result.rerun_dir / "metrics.json").is_file()
    assert main(["reproduce", str(a_run), "--out", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "(exactly, on the CPU)" in out and "every figure matches:" in out and "of 3 splits" in out


def test_a_figure_that_changed_is_named(a_run, tmp_path, capsys):
    def nudge(metrics):
        metrics["splits"]["test"]["ic"] += 1e-12  # one bit is enough

    changed = copy_of(a_run, tmp_path, edit_metrics=nudge)
    result = reproduce(changed, tmp_path / "again")
    assert [what for what, _, _ in result.differences] == ["test.ic"]
    assert main(["reproduce", str(changed), "--out", str(tmp_path / "cli")]) == 1
    out = capsys.readouterr().out
    assert "1 of" in out and "test.ic: recorded" in out


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda c: c["versions"].__setitem__("torch", "2.9.0"), "made with torch 2.9.0, this is torch 2."),
    (lambda c: c["versions"].__setitem__("studio", "0.0.1"), "made with studio 0.0.1, this is studio"),
    (lambda c: c.__setitem__("status", "cancelled"), "the run ended 'cancelled'"),
    (lambda c: c.__setitem__("status", "time_limit"), "the run ended 'time_limit'"),
    (lambda c: c["data"].__setitem__("hash", "0" * 64), "the data differ (synthetic"),
    (lambda c: c["data"]["source"].update(kind="import", path="/nowhere/bars"), "its data cannot be read here"),
    (lambda c: c.__setitem__("device", "cuda:0 (NVIDIA H200)"), "it ran on cuda:0 (NVIDIA H200), this machine has no"),
])
def test_a_run_that_cannot_match_here_is_refused_with_one_line(a_run, tmp_path, capsys, edit, reason):
    import torch

    if "cuda" in reason and torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the run would be re-run on it")
    other = copy_of(a_run, tmp_path, edit_config=edit)
    with pytest.raises(ReproduceError) as err:
        reproduce(other, tmp_path / "again")
    message = str(err.value)
    assert reason in message and str(other) in message and "\n" not in message
    assert not (tmp_path / "again").exists()  # refused before anything was trained
    assert main(["reproduce", str(other)]) == 2
    assert reason in capsys.readouterr().err


def test_what_is_not_a_run_is_one_line(tmp_path, capsys):
    assert main(["reproduce", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"studio: {tmp_path}: not a finished run directory (no config.json)"
