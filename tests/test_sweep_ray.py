"""The ray executor: the same trials on a local Ray (ray.init(num_cpus=2)) give the local executor's
figures; without Ray installed, the local executor and the rest of the studio do not need it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from studio.train.sweep import Sweep, SweepError, load_spec
from tests.test_sweep import write_spec


def test_a_sweep_on_a_local_ray_equals_the_local_executor(tmp_path):
    spec = load_spec(write_spec(tmp_path, resources={"cpu": 1}))
    on_ray = Sweep.create(spec, tmp_path / "ray")
    seen = []
    on_ray.run(executor="ray", on_trial=lambda trial: seen.append(trial.id))
    local = Sweep.create(spec, tmp_path / "local")
    local.run(workers=2)
    assert sorted(seen) == sorted(t.id for t in on_ray.trials)
    ray_trials = {t.id: t for t in Sweep.open(on_ray.path).trials}
    for t in Sweep.open(local.path).trials:
        theirs = ray_trials[t.id]
        assert theirs.status == t.status == "finished"
        assert theirs.objective == t.objective  # same seed, same bits
        assert Path(theirs.run_dir).resolve().is_relative_to((on_ray.path / "runs").resolve())
        ours = json.loads((Path(theirs.run_dir) / "metrics.json").read_text())
        assert ours == json.loads((Path(t.run_dir) / "metrics.json").read_text())
    assert (on_ray.path / "summary.csv").is_file()


def test_without_ray_the_ray_executor_is_one_line_and_nothing_else_needs_it(tmp_path, monkeypatch):
    spec = load_spec(write_spec(tmp_path, seeds=1))
    sweep = Sweep.create(spec, tmp_path / "out")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as without the scale extra
    monkeypatch.delitem(sys.modules, "studio.train.sweep_ray", raising=False)  # imported afresh
    try:
        sweep.run(executor="ray")
    except SweepError as exc:
        assert str(exc) == "the ray executor needs Ray: pip install -e '.[scale]'"
    else:
        raise AssertionError("the ray executor ran without Ray")
    code = ("import sys; sys.modules['ray'] = None; sys.modules['optuna'] = None\n"
            "from studio.cli import main\n"
            f"code = main(['sweep', {str(write_spec(tmp_path, 'local.json', seeds=1))!r}, '--out', "
            f"{str(tmp_path / 'local')!r}, '-q'])\n"
            "assert code == 0, code\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_an_optuna_search_on_ray_samples_points_within_bounds_and_resumes_to_its_count(tmp_path):
    search = {"training.lr": {"loguniform": [0.0005, 0.01]}, "gru_1.hidden_size": {"choice": [8, 16]}}
    spec = load_spec(write_spec(tmp_path, seeds=2, executor="ray", resources={"cpu": 1}, search=search,
                                samples=2))
    assert spec.trials() == []  # a search makes its trials as it samples
    sweep = Sweep.create(spec, tmp_path / "out")
    sweep.run()
    trials = Sweep.open(sweep.path).trials
    points = {json.dumps(t.point, sort_keys=True) for t in trials}
    assert len(trials) == 4 and len(points) == 2 and all(t.status == "finished" for t in trials)
    for t in trials:
        assert 0.0005 <= t.point["training.lr"] <= 0.01 and t.point["gru_1.hidden_size"] in (8, 16)
        config = json.loads((Path(t.run_dir) / "config.json").read_text())
        assert config["training"]["lr"] == t.point["training.lr"] and config["seed"] == t.seed
        graph = json.loads((Path(t.run_dir) / "graph.json").read_text())
        assert graph["nodes"]["gru_1"]["params"]["hidden_size"] == t.point["gru_1.hidden_size"]
    assert sorted({t.seed for t in trials}) == [0, 1]
    Sweep.open(sweep.path).run()  # its count reached: nothing more runs
    assert len(Sweep.open(sweep.path).trials) == 4


def test_a_search_spec_is_checked(tmp_path):
    bad = [({"search": {"training.lr": {"loguniform": [0.0, 1.0]}}, "samples": 2, "executor": "ray"}, "lo < hi"),
           ({"search": {"training.lr": {"uniform": [0.1, 1.0]}}, "executor": "ray"}, "samples: a search needs"),
           ({"search": {"training.lr": {"uniform": [0.1, 1.0]}}, "samples": 2}, "runs on Ray Tune with Optuna"),
           ({"search": {"gru_9.hidden_size": {"choice": [8]}}, "samples": 2, "executor": "ray"}, "no node 'gru_9'")]
    for settings, message in bad:
        try:
            load_spec(write_spec(tmp_path, **settings))
        except SweepError as exc:
            assert message in str(exc) and "\n" not in str(exc), (settings, str(exc))
        else:
            raise AssertionError(f"accepted {settings}")
