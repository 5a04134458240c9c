"""The ray executor: the same trials on a local Ray (ray.init(num_cpus=2)) give the local executor's
figures; without Ray installed, the local executor and the rest of the studio do not need it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.train.sweep import Sweep, SweepError, load_spec
from tests.test_sweep import write_spec

pytestmark = pytest.mark.ray


def test_a_sweep_on_a_local_ray_equals_the_local_executor(tmp_path):
    spec = load_spec(write_spec(tmp_path, resources={"cpu": 1}))
    on_ray = Sweep.create(spec, tmp_path / "ray")
    seen, progress = [], []
    on_ray.run(executor="ray", on_trial=lambda trial: seen.append(trial.id), on_progress=progress.append)
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
    # progress came from the trials on Ray through the board actor, for the sweep's trials only
    assert progress and {info["trial"] for info in progress} <= set(seen)
    assert all(0 <= info["fraction"] <= 1 and info["epochs"] == 1 for info in progress)


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
    from studio.train.sweep_tune import evaluated_points

    resumed = Sweep.open(sweep.path)
    known, rewards = evaluated_points(resumed)  # what the resumed study is told it has tried
    assert sorted(json.dumps(p, sort_keys=True) for p in known) == sorted(points)
    for point, reward in zip(known, rewards, strict=True):
        objectives = [t.objective for t in trials if t.point == point]
        assert len(objectives) == 2 and abs(reward - sum(objectives) / 2) < 1e-12
    resumed.spec.samples = 3  # one more point, sampled by a study that knows the first two
    resumed.run()
    trials = Sweep.open(sweep.path).trials
    assert len(trials) == 6 and len({json.dumps(t.point, sort_keys=True) for t in trials}) == 3
    assert all(t.status == "finished" for t in trials)


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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_same_spec_runs_unchanged_against_a_ray_address(tmp_path):
    """A Ray cluster started apart (``ray start --head``), joined with --address: the spec as it is."""
    import contextlib
    import os
    import shutil
    import signal
    import tempfile

    ray_cli = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    import secrets

    # a cluster with token authentication, Ray's default: whoever joins by address says so and has the token
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay short
    # in a process group of its own: `ray stop` would stop every Ray on the machine, also the local Ray of
    # a test running beside this one (its driver then exits), so the cluster's group is killed instead
    head = subprocess.Popen([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", "--node-ip-address=127.0.0.1", f"--temp-dir={ray_tmp}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    _, stderr = head.communicate(timeout=120)
    assert head.returncode == 0, stderr[-2000:]
    try:
        spec = write_spec(tmp_path, seeds=2, resources={"cpu": 1})  # a local spec, not changed
        done = subprocess.run([sys.executable, "-m", "studio", "sweep", str(spec), "--out", str(tmp_path / "out"),
                               "--address", f"127.0.0.1:{port}", "-q"],
                              capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        (folder,) = (tmp_path / "out").iterdir()
        trials = Sweep.open(folder).trials
        assert len(trials) == 2 and all(t.status == "finished" for t in trials)
        assert all((Path(t.run_dir) / "metrics.json").is_file() for t in trials)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # every process of this cluster, and no other Ray
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_ctrl_c_stops_a_sweep_on_ray_cleanly_and_it_resumes(tmp_path):
    """Ctrl-C in the terminal (SIGINT to the whole process group) during a Ray sweep: exit 130 soon, the
    running trials keep their best epoch and are pending, no Ray process is left, and --resume ends it."""
    import os
    import signal
    import time

    spec = write_spec(tmp_path, seeds=2, executor="ray", resources={"cpu": 1},
                      training={"epochs": 40, "patience": 0, "threads": 1})
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "studio", "sweep", str(spec), "--out", str(out), "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not list(out.glob("*/runs/*/metrics.jsonl")):
        time.sleep(0.2)  # a trial is training
    assert list(out.glob("*/runs/*/metrics.jsonl")), "no trial started"
    os.killpg(process.pid, signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("the sweep did not stop within 90 s of Ctrl-C") from None
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    (folder,) = out.iterdir()
    trials = Sweep.open(folder).trials
    assert {t.status for t in trials} <= {"pending", "finished"} and any(t.status == "pending" for t in trials)
    stopped = [json.loads((Path(t.run_dir) / "config.json").read_text()) for t in trials
               if t.status == "pending" and t.run_dir and (Path(t.run_dir) / "metrics.jsonl").is_file()]
    assert stopped and all(c["status"] == "stopped" for c in stopped)  # stopped cleanly, not killed
    assert all((Path(t.run_dir) / "metrics.json").is_file() for t in trials
               if t.run_dir and (Path(t.run_dir) / "metrics.jsonl").is_file())  # the best epoch kept
    time.sleep(2)
    left = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True).stdout.split()
    for pid in left:
        os.kill(int(pid), signal.SIGKILL)
    assert not left, "Ray processes outlived the sweep"
    resumed = subprocess.run([sys.executable, "-m", "studio", "sweep", "--resume", str(folder), "-q"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert all(t.status == "finished" for t in Sweep.open(folder).trials)


def test_ray_tasks_start_no_more_trials_than_the_cluster_holds_and_a_missing_gpu_is_one_line(tmp_path, monkeypatch):
    import ray

    from studio.train import sweep_ray

    for total, cpus, gpus, room in (({"CPU": 2.0}, 1.0, 0.0, 2), ({"CPU": 8.0, "GPU": 1.0}, 1.0, 0.25, 4),
                                    ({"CPU": 1.0}, 0.1, 0.0, 10), ({"CPU": 3.0}, 2.0, 0.0, 1)):
        monkeypatch.setattr(ray, "cluster_resources", lambda total=total: total)
        assert sweep_ray._capacity(cpus, gpus) == room
    monkeypatch.undo()
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")  # no --address: a Ray of its own, not this one
    spec = load_spec(write_spec(tmp_path, seeds=1, resources={"cpu": 1, "gpu": 0.5}))
    sweep = Sweep.create(spec, tmp_path / "out")
    with pytest.raises(SweepError) as raised:
        sweep.run(executor="ray")
    assert str(raised.value) == "resources: each trial asks for 0.5 GPU, and the Ray cluster has 0"
    assert not ray.is_initialized()  # the local Ray it started is gone
    assert [t.status for t in Sweep.open(sweep.path).trials] == ["pending"]


def test_a_trial_whose_ray_worker_dies_is_failed_and_the_other_finishes(tmp_path, monkeypatch):
    from studio.train import sweep_ray

    real_task = sweep_ray._trial_task

    def dies_on_seed_one(spec, trial, out, threads, flag, board):  # pickled by value into the Ray worker
        if trial["seed"] == 1:
            os._exit(3)  # as an out-of-memory kill would: no exception, no record
        return real_task(spec, trial, out, threads, flag, board)

    monkeypatch.setattr(sweep_ray, "_trial_task", dies_on_seed_one)
    sweep = Sweep.create(load_spec(write_spec(tmp_path, resources={"cpu": 1})), tmp_path / "out")
    trials = sweep.run(executor="ray")
    by_seed = {t.seed: t for t in trials}
    assert by_seed[0].status == "finished" and by_seed[0].objective is not None
    assert by_seed[1].status == "failed"
    assert by_seed[1].message.startswith("the Ray trial failed (") and "\n" not in by_seed[1].message
    assert [t.status for t in sorted(Sweep.open(sweep.path).trials, key=lambda t: t.seed)] == ["finished", "failed"]


def test_importing_the_tune_search_sets_no_environment_variable():
    from studio.train.sweep_tune import TUNE_ENVIRONMENT

    clean = {k: v for k, v in os.environ.items() if k not in TUNE_ENVIRONMENT}
    code = ("import os, studio.train.sweep_tune as tune_search; "
            "print(sorted(k for k in tune_search.TUNE_ENVIRONMENT if k in os.environ))")
    done = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_tune_environment_holds_for_the_search_only(monkeypatch):
    from studio.train.sweep_tune import TUNE_ENVIRONMENT, _tune_environment

    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)
    monkeypatch.setenv("TUNE_DISABLE_SIGINT_HANDLER", "0")  # the user's own value is kept
    with _tune_environment():
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == TUNE_ENVIRONMENT["RAY_AIR_NEW_OUTPUT"] == "0"
        assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "0"
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ
    assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "0"
