"""Sweeps on the local executor: trials are run directories, failures are records, Ctrl-C and kills
resume; runs that differ only in their seed are grouped (mean +- std)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from studio.cli import main
from studio.train.sweep import Sweep, SweepError, load_spec
from tests.conftest import GRAPHS, ROOT

TINY = {"training": {"epochs": 1, "patience": 0, "threads": 1},
        "data": {"synthetic": {"stocks": 30, "days": 60}}}


def write_spec(folder: Path, name: str = "spec.json", **settings) -> Path:
    spec = {"name": "tiny", "graphs": [str(GRAPHS / "default.json")], "seeds": 2, **TINY, **settings}
    path = folder / name
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.parametrize(("settings", "message"), [
    ({"grids": {}}, "unknown setting 'grids'"),
    ({"graphs": ["nowhere/*.json"]}, "'nowhere/*.json' matches no file"),
    ({"graphs": []}, "graphs: expects a list"),
    ({"seeds": 0}, "seeds: expects a count >= 1"),
    ({"seeds": [1, "2"]}, "seeds: expects a count >= 1"),
    ({"grid": {"gru_9.hidden_size": [8]}}, "default.json has no node 'gru_9'"),
    ({"grid": {"lr": [0.1]}}, "'lr' is not SECTION.FIELD or NODE_ID.PARAM"),
    ({"grid": {"training.lr": []}}, "each list non-empty"),
    ({"grid": {"training.lr": [-1.0]}}, "lr: expects a finite number > 0"),
    ({"grid": {"data.normalise": ["robust"]}}, "normalise"),
    ({"objective": "valid.pnl"}, "objective: expects SPLIT.METRIC"),
    ({"executor": "slurm"}, "executor: expects local or ray"),
])
def test_a_bad_spec_is_a_one_line_error_naming_the_file_and_field(tmp_path, capsys, settings, message):
    path = write_spec(tmp_path, **settings)
    with pytest.raises(SweepError) as err:
        load_spec(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_toml_spec_and_globs_relative_to_it(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    import os

    relative = Path(os.path.relpath(GRAPHS, folder)).as_posix()  # from the spec's folder, not the cwd
    (folder / "s.toml").write_text(
        f'name = "t"\ngraphs = ["{relative}/default.json", "{relative}/default.*"]\n'
        'seeds = [3, 1, 3]\n[grid]\n"training.lr" = [0.001, 0.002]\n"gru_1.hidden_size" = [8]\n')
    spec = load_spec(folder / "s.toml")
    assert spec.graphs == [str((GRAPHS / "default.json").resolve())]  # the glob's match is not repeated
    assert spec.seeds == [3, 1]
    trials = spec.trials()
    assert len(trials) == 4 and len({t.id for t in trials}) == 4
    assert {(t.point["training.lr"], t.seed) for t in trials} == {(0.001, 3), (0.001, 1), (0.002, 3), (0.002, 1)}


def test_a_sweep_runs_its_trials_and_records_a_failing_one(tmp_path, capsys):
    # kernel_size 0 makes an invalid graph: those trials fail with one line, the others finish
    path = write_spec(tmp_path, grid={"conv_1.kernel_size": [3, 0]})
    code = main(["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "2"])
    out = capsys.readouterr()
    assert code == 1  # not every trial finished
    (folder,) = (tmp_path / "out").iterdir()
    trials = json.loads((folder / "trials.json").read_text())
    assert len(trials) == 4
    failed = [t for t in trials if t["status"] == "failed"]
    good = [t for t in trials if t["status"] == "finished"]
    assert len(failed) == 2 and len(good) == 2
    assert {t["point"]["conv_1.kernel_size"] for t in failed} == {0}
    assert all("conv_1" in t["message"] and "\n" not in t["message"] for t in failed)
    for t in good:
        metrics = json.loads((Path(t["run_dir"]) / "metrics.json").read_text())
        assert t["objective"] == pytest.approx(metrics["splits"]["valid"]["ic"], abs=0)
        config = json.loads((Path(t["run_dir"]) / "config.json").read_text())
        assert config["seed"] == t["seed"]
        assert json.loads((Path(t["run_dir"]) / "graph.json").read_text())["nodes"]["conv_1"]["params"][
            "kernel_size"] == 3
    summary = pd.read_csv(folder / "summary.csv")
    row = summary[summary["grid:conv_1.kernel_size"] == 3].iloc[0]
    values = pd.Series([t["objective"] for t in good])
    assert row["done"] == 2 and row["failed"] == 0
    assert row["valid.ic mean"] == pytest.approx(values.mean()) and row["valid.ic std"] == pytest.approx(values.std())
    assert summary[summary["grid:conv_1.kernel_size"] == 0].iloc[0]["failed"] == 2
    assert "seeds done" in out.out and str(folder) in out.out
    assert len(pd.read_csv(folder / "trials.csv")) == 4
    # not a terminal: a line per trial per epoch while it runs, with the run's own validation IC
    for t in good:
        (line,) = [x for x in out.err.splitlines() if x.startswith(f"[{t['id']}] epoch ")]
        assert line == f"[{t['id']}] epoch 1/1 · 100% · valid IC {t['objective']:.4f} (best epoch 1)"
    assert not [x for x in out.err.splitlines() if " · epoch " in x and any(t["id"] in x for t in failed)]


def test_a_cancelled_or_killed_sweep_resumes_with_the_trials_left(tmp_path, capsys):
    spec = load_spec(write_spec(tmp_path, seeds=3))
    sweep = Sweep.create(spec, tmp_path / "out")
    cancel = threading.Event()
    sweep.run(workers=1, on_trial=lambda trial: cancel.set(), cancel=cancel)  # Ctrl-C after the first
    statuses = [t.status for t in Sweep.open(sweep.path).trials]
    assert statuses.count("finished") >= 1 and "pending" in statuses
    # a kill: the record of a finished trial says it is still queued (its result never came back)
    records = json.loads((sweep.path / "trials.json").read_text())
    killed = next(r for r in records if r["status"] == "finished")
    killed["status"] = "queued"
    (sweep.path / "trials.json").write_text(json.dumps(records))
    kept = {r["id"]: r["run_dir"] for r in records if r["status"] == "finished"}
    assert main(["sweep", "--resume", str(sweep.path), "-q"]) == 0
    done = Sweep.open(sweep.path).trials
    assert [t.status for t in done] == ["finished"] * 3
    assert {t.id: t.run_dir for t in done if t.id in kept} == kept  # finished trials were not run again
    rerun = next(t for t in done if t.id == killed["id"])
    assert rerun.run_dir != killed["run_dir"] and (Path(rerun.run_dir) / "metrics.json").is_file()
    assert "3/3" in capsys.readouterr().out


def test_a_sweep_that_runs_is_not_resumed_by_a_second_process(tmp_path, capsys):
    """Issue 25, item 2: a second --resume of a live sweep would train its pending trials twice."""
    import os

    from studio.train.run_lock import RunLock

    sweep = Sweep.create(load_spec(write_spec(tmp_path)), tmp_path / "out")
    with RunLock.acquire(sweep.path, what="sweep"):  # as the process that runs it holds it
        assert main(["sweep", "--resume", str(sweep.path), "-q"]) == 2
        assert capsys.readouterr().err == f"studio: sweep {sweep.path} is in use by process {os.getpid()}\n"
        with pytest.raises(SweepError, match=f"^sweep {sweep.path} is in use by process {os.getpid()}$"):
            Sweep.open(sweep.path).run(workers=1)
    assert [t.status for t in Sweep.open(sweep.path).trials] == ["pending", "pending"]  # nothing ran


def test_compare_groups_runs_that_differ_only_in_their_seed(tmp_path, capsys):
    from studio.cli.train_commands import compare_table, seed_table

    path = write_spec(tmp_path, seeds=3, grid={"gru_1.hidden_size": [8, 16]})
    sweep = Sweep.create(load_spec(path), tmp_path / "out")
    sweep.run(workers=2)
    frame = compare_table([str(sweep.path / "runs")])
    seeds = seed_table(frame)
    assert sorted(seeds["seeds"]) == [3, 3]
    for group, runs in frame.groupby("group"):
        row = seeds[seeds["group"] == group].iloc[0]
        assert row["ic_mean"] == pytest.approx(runs["ic"].mean()) and row["ic_std"] == pytest.approx(runs["ic"].std())
        assert row["sharpe_mean"] == pytest.approx(runs["sharpe"].mean())
        assert runs["seed"].tolist() != [runs["seed"].iloc[0]] * 3
    assert main(["compare", str(sweep.path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "across seeds" in out and out.count(" +- ") >= 10 and "default #" in out


def test_ctrl_c_in_a_terminal_stops_every_trial_cleanly(tmp_path):
    """SIGINT to the whole process group (what a terminal's Ctrl-C does): the workers ignore it, the sweep
    stops them through its event; no trial is failed, the stopped ones wait for --resume."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = write_spec(tmp_path, seeds=3, training={"epochs": 50, "patience": 0, "threads": 1})
    process = subprocess.Popen([sys.executable, "-m", "studio", "sweep", str(path), "--out", str(tmp_path / "out"),
                                "--workers", "2"], stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((tmp_path / "out").glob("*/runs/*/metrics.jsonl")):
        time.sleep(0.2)  # until a trial has finished an epoch
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "stopping every trial" in err
    (folder,) = (tmp_path / "out").iterdir()
    trials = json.loads((folder / "trials.json").read_text())
    assert {t["status"] for t in trials} <= {"pending", "finished"} and "pending" in {t["status"] for t in trials}


def test_the_example_spec_reads():
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "docs" / "examples" / "three-models-five-seeds.json")
    assert len(spec.graphs) == 3 and spec.seeds == [0, 1, 2, 3, 4] and len(spec.trials()) == 15
    width = load_spec(ROOT / "docs" / "examples" / "gru-width.json")  # docs/research.md's pair of runs
    assert [t.point for t in width.trials()] == [{"gru_1.hidden_size": 8}, {"gru_1.hidden_size": 16}]


def test_workers_of_a_killed_sweep_stop_and_leave(tmp_path):
    """kill -9 of the sweep process (the studio killed, a terminal closed): its workers stop their trial
    after the batch, start no other, and exit; nothing goes on training unseen."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = write_spec(tmp_path, seeds=4, training={"epochs": 50, "patience": 0, "threads": 1})
    process = subprocess.Popen([sys.executable, "-m", "studio", "sweep", str(path), "--out", str(tmp_path / "out"),
                                "--workers", "1", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def children() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == process.pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
        return found

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((tmp_path / "out").glob("*/runs/*/metrics.jsonl")):
        time.sleep(0.2)  # a trial is training
    workers = children()
    assert workers
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.2)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "workers of a killed sweep kept running"
    assert len(list((tmp_path / "out").glob("*/runs/*"))) == 1  # no other trial started after the kill


def test_a_running_trial_puts_its_progress_on_the_board_each_epoch_and_at_most_once_a_second():
    from studio.train.sweep import Trial, TrialProgress

    board: dict = {}
    progress = TrialProgress(board, Trial("g-s3-abc", "/x/g.json", {}, 3), interval=3600)
    progress.see({"kind": "start", "run_dir": "/runs/r", "epochs": 2, "steps_per_epoch": 4})
    assert board["g-s3-abc"] == {**board["g-s3-abc"], "trial": "g-s3-abc", "graph": "g", "seed": 3, "epoch": 0,
                                 "epochs": 2, "fraction": 0.0, "run_dir": "/runs/r"}
    progress.see({"kind": "step", "epoch": 1, "step": 1, "steps": 4, "eta": 9.0})
    assert board["g-s3-abc"]["step"] == 0  # within the interval: not sent
    progress.started -= 10  # the first epoch, its scoring included, took 10 s
    progress.see({"kind": "epoch", "epoch": 1, "valid": {"ic": 0.05}, "best_epoch": 1})
    assert board["g-s3-abc"] == {**board["g-s3-abc"], "epoch": 1, "step": 4, "fraction": 0.5,
                                   "valid_ic": 0.05, "best_epoch": 1, "epochs_done": 1}
    assert board["g-s3-abc"]["eta"] == pytest.approx(10.0, abs=0.5)  # one more epoch at that pace
    progress.interval = 0
    progress.see({"kind": "step", "epoch": 2, "step": 1, "steps": 4, "eta": 3.0})
    assert board["g-s3-abc"]["fraction"] == 0.625 and board["g-s3-abc"]["eta"] == 3.0
    progress.see({"kind": "epoch", "epoch": 2, "valid": {"ic": float("nan")}, "best_epoch": 1})
    assert board["g-s3-abc"]["fraction"] == 1.0 and board["g-s3-abc"]["valid_ic"] is None
    assert board["g-s3-abc"]["epochs_done"] == 2 and board["g-s3-abc"]["eta"] == 0

    class Gone(dict):
        def __setitem__(self, key, value):
            raise ConnectionError("the manager is gone")

    quiet = TrialProgress(Gone(), Trial("t", "/x/g.json", {}, 0))
    quiet.see({"kind": "start", "epochs": 1, "steps_per_epoch": 1})  # a board that is gone is not an error
    quiet.see({"kind": "epoch", "epoch": 1, "valid": {"ic": 0.1}})


def test_the_sweep_passes_on_each_running_trials_progress_until_it_finishes(tmp_path):
    spec = load_spec(write_spec(tmp_path, training={**TINY["training"], "epochs": 3}))
    sweep = Sweep.create(spec, tmp_path / "out")
    events: list[tuple[str, object]] = []
    sweep.run(workers=2, on_trial=lambda trial: events.append(("done", trial.id)),
              on_progress=lambda info: events.append(("progress", info)))
    ids = {t.id for t in sweep.trials}
    assert all(t.status == "finished" for t in sweep.trials)
    for trial in sweep.trials:
        infos = [info for kind, info in events if kind == "progress" and info["trial"] == trial.id]
        assert infos, f"no progress of {trial.id}"
        finished_at = events.index(("done", trial.id))
        assert all(events.index(("progress", info)) < finished_at for info in infos)  # none after it ended
        assert [i["fraction"] for i in infos] == sorted(i["fraction"] for i in infos)
        assert all(0 <= i["fraction"] <= 1 and i["epochs"] == 3 and i["seed"] == trial.seed for i in infos)
        assert all(i["run_dir"] == trial.run_dir for i in infos if i["epoch"])
        history = [json.loads(line) for line in (Path(trial.run_dir) / "metrics.jsonl").read_text().splitlines()]
        for info in infos:
            if info["valid_ic"] is not None:  # the epoch's validation IC as the run recorded it
                assert info["valid_ic"] == history[info["epoch"] - 1]["valid"]["ic"]
    assert {info["trial"] for kind, info in events if kind == "progress"} == ids
    assert any(info["valid_ic"] is not None for kind, info in events if kind == "progress")


def test_on_a_terminal_the_running_trials_share_one_redrawn_line():
    import io
    from types import SimpleNamespace

    from studio.cli.sweep_commands import SweepLines
    from studio.train.sweep import SweepSpec, Trial

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    sweep = SimpleNamespace(path=Path("sweeps/s"), spec=SweepSpec(name="s", graphs=["g.json"], seeds=[0, 1]),
                            trials=[Trial("g-s0-a", "g.json", {}, 0), Trial("g-s1-b", "g.json", {}, 1)])

    screen = Terminal()
    lines = SweepLines(sweep, quiet=False, stream=screen)
    info = {"trial": "g-s0-a", "graph": "g", "seed": 0, "epoch": 1, "epochs": 3, "step": 2, "steps": 4,
            "fraction": 0.1667, "eta": 30.0, "valid_ic": None, "best_epoch": 0, "epochs_done": 0}
    lines.progress(info)
    assert screen.getvalue() == "0/2 ended · running g-s0 1/3 17%"
    lines.progress({**info, "trial": "g-s1-b", "seed": 1, "epoch": 0, "epochs": 0, "fraction": 0.0})
    status = "0/2 ended · running g-s0 1/3 17% | g-s1 starting"
    assert screen.getvalue().endswith("\r" + status) and "\n" not in screen.getvalue()
    sweep.trials[0].status, sweep.trials[0].objective = "finished", 0.0512
    lines.trial_ended(sweep.trials[0])
    # the status line is wiped, the trial's line printed, the status drawn again below it
    assert screen.getvalue().endswith("\r" + " " * len(status) + "\r[g-s0-a] finished: valid.ic 0.0512\n"
                                      "1/2 ended · running g-s1 starting")
    lines.started -= 60  # a minute in, one trial ended and the other half done: 20 s more at that pace
    lines.progress({**info, "trial": "g-s1-b", "seed": 1, "epoch": 2, "epochs": 4, "fraction": 0.5})
    assert screen.getvalue().endswith("\r1/2 ended · ~20s left · running g-s1 2/4 50%")
    lines.close()
    assert screen.getvalue().endswith("\r" + " " * len("1/2 ended · ~20s left · running g-s1 2/4 50%") + "\r")


def test_a_sweeps_time_left_is_its_pace_so_far():
    from studio.train.sweep import sweep_time_left, time_left

    assert sweep_time_left(120.0, 2.0, 8) == 360.0  # 2 trials' worth in 2 minutes: 6 more take 6
    assert sweep_time_left(30.0, 1.5, 2) == 10.0
    assert sweep_time_left(3.0, 1.0, 8) is None and sweep_time_left(60.0, 0.0, 8) is None  # no pace yet
    assert sweep_time_left(60.0, 8.0, 8) == 0.0 and time_left(0.0) == ""
    assert time_left(365.2) == "~6m 05s left" and time_left(40) == "~40s left" and time_left(None) == ""


def test_events_for_programs_are_json_lines_on_stdout_and_a_closed_pipe_stops_the_sweep(tmp_path, capsys):
    path = write_spec(tmp_path, training={"epochs": 2, "patience": 0, "threads": 1})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--events", "-q"]) == 0
    out = capsys.readouterr()
    events = [json.loads(line) for line in out.out.splitlines()]  # nothing else on stdout
    (folder,) = (tmp_path / "out").iterdir()
    trials = {t["id"]: t for t in json.loads((folder / "trials.json").read_text())}
    ended = [e["trial"] for e in events if e["event"] == "trial"]
    assert sorted(t["id"] for t in ended) == sorted(trials) and all(t == trials[t["id"]] for t in ended)
    for trial_id in trials:
        seen = [e["info"] for e in events if e["event"] == "progress" and e["info"]["trial"] == trial_id]
        done = [i["epochs_done"] for i in seen]  # a copy of the board is read 5 times a second
        assert seen and done == sorted(done) and set(done) <= {0, 1, 2} and seen[0]["epochs"] == 2
        assert events.index({"event": "progress", "info": seen[-1]}) < events.index(
            {"event": "trial", "trial": trials[trial_id]})  # progress first, then the end
    assert "seeds done" in out.err and "sweep directory" in out.err  # the summary, on stderr
    # the program reading the events goes away: the sweep stops its trials cleanly and exits
    long = write_spec(tmp_path, name="long.json", seeds=1, training={"epochs": 200, "patience": 0, "threads": 1})
    child = subprocess.Popen([sys.executable, "-m", "studio", "sweep", str(long), "--out", str(tmp_path / "gone"),
                              "--events", "-q"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    while json.loads(child.stdout.readline())["info"]["epochs_done"] < 1:
        pass
    child.stdout.close()
    assert child.wait(timeout=120) == 130
    (gone,) = (tmp_path / "gone").iterdir()
    (trial,) = json.loads((gone / "trials.json").read_text())
    assert trial["status"] == "pending"  # stopped after its batch: runs again on resume


def test_an_executor_is_named_by_its_module_and_function_and_imported_only_when_run(monkeypatch):
    from studio.train import sweep as sweep_module

    assert sweep_module.executor_function("local") is sweep_module.run_local
    assert sweep_module.EXECUTORS["ray"].target == "studio.train.sweep_ray:run_on_ray"
    # an executor whose package is not installed says what to install, in one line
    monkeypatch.setitem(sweep_module.EXECUTORS, "elsewhere",
                        sweep_module.SweepExecutor("studio.train.no_such_executor:run", needs="X: pip install x"))
    with pytest.raises(SweepError, match=r"^the elsewhere executor needs X: pip install x$"):
        sweep_module.executor_function("elsewhere")


def test_a_trial_reads_its_source_as_config_json_records_one_and_the_short_forms(tmp_path, shared_data):
    from studio.train.sweep import Trial, prepare_trial

    def source_of(data):
        spec_file = tmp_path / "sweep.json"
        spec_file.write_text(json.dumps({"graphs": [str(GRAPHS / "default.json")], "data": data}))
        spec = load_spec(spec_file)
        _, source, _, data_config = prepare_trial(spec, Trial("t", str(GRAPHS / "default.json"), {}, 0))
        return source, data_config

    us = str(shared_data / "us_stocks_5min")
    recorded = {"kind": "import", "path": us, "importer": {"session": "09:30-16:00"}}
    source, data_config = source_of({"source": recorded, "normalize": "cs_rank"})
    assert source.to_json() == {**recorded, "synthetic": {}}
    assert data_config.normalize == "cs_rank"
    short, _ = source_of({"path": us, "import": {"session": "09:30-16:00"}})
    assert short == source
    assert source_of({"synthetic": {"stocks": 50}})[0].synthetic == {"stocks": 50}
    with pytest.raises(SweepError, match=r"sweep\.json: training or data settings: data: expects .*, gets 'nowhere'$"):
        source_of({"source": {"kind": "nowhere"}})
