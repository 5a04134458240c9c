"""studio compare RUN_A RUN_B: the graph diff of the two runs beside the settings that differ and the
change in every figure, checked against the runs' own files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.cli import main
from studio.train.run_diff import FIGURES, RunDiffError, diff_runs
from studio.train.sweep import load_spec, run_trial
from tests.test_sweep import write_spec


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pair")
    spec = load_spec(write_spec(folder, seeds=1, grid={"gru_1.hidden_size": [8, 16]}))
    paths = []
    for trial in spec.trials():  # in this process: two short runs that differ in one parameter
        record = run_trial(spec.to_json(), trial.to_json(), str(folder / "runs"), 1)
        assert record["status"] == "finished", record["message"]
        paths.append(Path(record["run_dir"]))
    by_hidden = {json.loads((p / "graph.json").read_text())["nodes"]["gru_1"]["params"]["hidden_size"]: p
                 for p in paths}
    return by_hidden[8], by_hidden[16]


def test_two_runs_show_the_graph_diff_and_every_figure_change(two_runs):
    a, b = two_runs
    diff = diff_runs(a, b)
    assert diff.graph is not None and diff.graph.lines() == ["gru_1.hidden_size: 8 -> 16"]
    assert diff.graph.changed_nodes() == {"gru_1"}
    assert diff.settings == []  # same seed, data and training: the graph is the one change
    test_a = json.loads((a / "metrics.json").read_text())["splits"]["test"]
    test_b = json.loads((b / "metrics.json").read_text())["splits"]["test"]
    # the baselines' figures of each run's baselines.json beside them (issue 28)
    for run, test in ((a, test_a), (b, test_b)):
        baselines = json.loads((run / "baselines.json").read_text())
        test.update(best_baseline_ic=max(x["test"]["ic"] for x in baselines["baselines"]),
                    incremental_ic=baselines["incremental"]["ic"])
    assert [f[0] for f in diff.figures] == [key for key, _, _ in FIGURES]
    for key, _label, _pattern, x, y in diff.figures:
        assert x == test_a[key] and y == test_b[key]
    ic_line = next(line for line in diff.figure_lines() if line.startswith("IC "))
    change = test_b["ic"] - test_a["ic"]
    assert ic_line.split()[1:] == [f"{test_a['ic']:.4f}", f"{test_b['ic']:.4f}",
                                   f"{change:+.4f}"]


def test_compare_of_two_runs_prints_the_diff(two_runs, capsys):
    a, b = two_runs
    assert main(["compare", str(a), str(b), "--split", "valid"]) == 0
    out = capsys.readouterr().out
    assert "graph: 1 change\n  gru_1.hidden_size: 8 -> 16\n" in out
    assert "settings: the same" in out and "figures (valid split):" in out
    valid_b = json.loads((b / "metrics.json").read_text())["splits"]["valid"]
    assert f"{valid_b['rank_ic']:.4f}" in out


def test_settings_that_differ_are_listed_and_a_broken_run_is_one_line(two_runs, tmp_path, capsys):
    a, b = two_runs
    other = tmp_path / "other"
    other.mkdir()
    for name in ("graph.json", "metrics.json"):
        (other / name).write_bytes((b / name).read_bytes())
    config = json.loads((b / "config.json").read_text())
    config["training"]["lr"] = config["training"]["lr"] * 2
    config["seed"] = config["training"]["seed"] = 7
    (other / "config.json").write_text(json.dumps(config))
    diff = diff_runs(a, other)
    keys = [k for k, _, _ in diff.settings]
    assert keys == ["training.lr", "training.seed"]
    assert diff.settings[1][1:] == (0, 7)
    (other / "config.json").write_text("{ cut short")
    with pytest.raises(RunDiffError) as err:
        diff_runs(a, other)
    assert str(other) in str(err.value) and "\n" not in str(err.value)
    assert main(["compare", str(a), str(other)]) == 2
    assert str(other) in capsys.readouterr().err
