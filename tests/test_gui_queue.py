"""The queue dock: the open graph x N seeds runs as a sweep while editing goes on, its runs land in the
runs table, waiting entries reorder and cancel, and the running one stops cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import GRAPHS
from tests.test_gui_training import window  # noqa: F401  (the fixture: a real window, tiny market)


def test_queue_the_open_graph_with_seeds_and_watch_the_runs_arrive(window, qtbot):  # noqa: F811
    queue, runs = window.queue, window.runs
    window.open_file(GRAPHS / "default.json")
    window.docks["queue"].raise_()  # the Queue tab, as a person clicks it
    qtbot.waitUntil(queue.add_button.isVisible)
    queue.seeds.setValue(2)
    qtbot.mouseClick(queue.add_button, qtbot_button())
    assert len(queue.entries) == 1 and queue.entries[0].state == "running"
    entry = queue.entries[0]
    # editing goes on: the queued graph is a frozen copy
    document = window.current_tab().document
    node = next(n for n in document.graph.nodes.values() if n.type == "gru")
    document.edit("set hidden size", lambda graph: graph.nodes[node.id].params.__setitem__("hidden_size", 48))
    qtbot.waitUntil(lambda: entry.state == "done", timeout=180_000)
    assert entry.done == 2 and entry.failed == 0
    assert "done · 2/2 runs" in queue.list.item(0).text()
    runs.refresh()
    assert runs.table.rowCount() == 2  # the queued runs are in the runs table
    configs = [json.loads((p / "config.json").read_text()) for p in (window.training.runs_dir).iterdir()
               if (p / "config.json").is_file()]
    assert sorted(c["seed"] for c in configs) == [0, 1]
    frozen = [json.loads((p / "graph.json").read_text()) for p in window.training.runs_dir.iterdir()
              if (p / "graph.json").is_file()]
    assert all(g["nodes"][node.id]["params"]["hidden_size"] != 48 for g in frozen)
    runs.by_seed.setChecked(True)
    assert runs.table.rowCount() == 1 and runs.table.item(0, 1).text() == "2"


def test_waiting_entries_reorder_and_cancel_and_the_running_one_stops(window, qtbot):  # noqa: F811
    queue = window.queue
    window.open_file(GRAPHS / "default.json")
    window.training.epochs.setValue(50)  # long enough to be running when cancelled
    queue.seeds.setValue(1)
    first, second, third = (queue.add_open_graph() for _ in range(3))
    assert [e.state for e in queue.entries] == ["running", "waiting", "waiting"]
    queue.list.setCurrentRow(2)
    queue.move(-1)
    assert queue.entries[1] is third and queue.entries[2] is second
    queue.move(-1)  # the running entry keeps its place
    assert queue.entries[1] is third
    queue.list.setCurrentRow(2)
    queue.cancel_selected()
    assert second.state == "cancelled"
    queue.list.setCurrentRow(1)
    queue.cancel_selected()
    assert third.state == "cancelled"
    qtbot.waitUntil(lambda: any(p.name == "metrics.jsonl" for p in window.training.runs_dir.rglob("*")),
                    timeout=120_000)  # an epoch done
    # progress within the running trial: its epoch, step and validation IC on the entry's line, the bar
    qtbot.waitUntil(lambda: any(i["epoch"] >= 1 and i["valid_ic"] is not None for i in first.progress.values()),
                    timeout=60_000)
    (info,) = first.progress.values()
    lines = queue.list.item(0).text().splitlines()
    assert lines[0].startswith(first.title + " · running · 0/1 runs · ") and len(lines) == 2
    assert f"seed 0 · epoch {info['epoch']}/50" in lines[1] and f"valid IC {info['valid_ic']:.4f}" in lines[1]
    assert queue.bar.isVisible() and queue.bar.value() == round(first.fraction() * 1000) > 0
    assert first.fraction() == info["fraction"] >= 1 / 50
    history = [json.loads(line) for line in next(window.training.runs_dir.rglob("metrics.jsonl")).read_text()
               .splitlines()]
    assert info["valid_ic"] == history[info["epoch"] - 1]["valid"]["ic"]  # the run's own figure
    import time

    first.started = time.monotonic() - 600  # ten minutes in: the entry's time left at its pace so far
    share = first.fraction()
    assert f" · {share:.0%} · ~{int(600 * (1 - share) / share // 60)}m " in first.describe().splitlines()[0]
    queue.list.setCurrentRow(0)
    queue.cancel_selected()
    qtbot.waitUntil(lambda: not queue.running(), timeout=60_000)
    assert first.state == "cancelled" and "studio sweep --resume" in first.message
    assert not first.progress and not queue.bar.isVisible() and len(queue.list.item(0).text().splitlines()) == 1
    assert [t.status for t in first.sweep.trials] == ["pending"]
    assert second.sweep.trials[0].status == "pending" and not queue.running()  # cancelled ones never started


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_entries_that_end_at_once_still_run_one_after_another(window, qtbot, monkeypatch):  # noqa: F811
    """A worker that ends before its ``finished`` slot runs must not let the next entry start beside it,
    nor have that slot finish the wrong entry."""
    import threading

    from studio.train.sweep import Sweep, SweepError

    active, most, lock = [0], [0], threading.Lock()

    def quick_run(self, **_):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        with lock:
            active[0] -= 1
        if len(self.spec.seeds) == 2:  # an unexpected error, several lines long: one line on the entry
            raise RuntimeError("\n  An attempt has been made to start a new process\n  before the current one ...\n")
        raise SweepError(f"{self.path}: no data")

    monkeypatch.setattr(Sweep, "run", quick_run)
    queue = window.queue
    window.open_file(GRAPHS / "default.json")
    queue.seeds.setValue(1)
    entries = [queue.add_open_graph() for _ in range(3)]
    qtbot.waitUntil(lambda: not queue.running() and all(e.state == "failed" for e in entries), timeout=30_000)
    assert most[0] == 1
    assert all("no data" in e.message for e in entries)
    assert "failed" in queue.list.item(2).text()
    queue.seeds.setValue(2)
    odd = queue.add_open_graph()
    qtbot.waitUntil(lambda: not queue.running() and odd.state == "failed", timeout=30_000)
    assert odd.message == "RuntimeError: An attempt has been made to start a new process"
    assert "\n" not in queue.list.item(3).text() and "\\n" not in queue.list.item(3).text()


@pytest.mark.ray
def test_the_queue_runs_on_a_local_ray_in_a_process_of_its_own_and_cancels_it(window, qtbot):  # noqa: F811
    import sys

    queue, runs = window.queue, window.runs
    window.open_file(GRAPHS / "default.json")
    queue.seeds.setValue(2)
    queue.executor.setCurrentText("ray")  # the address left empty: a local Ray
    entry = queue.add_open_graph()
    assert entry.executor == "ray" and entry.address is None
    assert "Ray (local)" in queue.list.item(0).text()
    qtbot.waitUntil(lambda: entry.state in ("done", "failed"), timeout=240_000)
    assert entry.state == "done" and entry.done == 2 and entry.failed == 0, entry.message
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()  # no Ray driver in the studio
    log = (entry.sweep.path / "sweep.log").read_text()  # the sweep process's own lines
    assert all(f"[{t.id}] finished" in log for t in entry.sweep.trials) and "seeds done" in log
    runs.refresh()
    assert runs.table.rowCount() == 2
    assert sorted(t.seed for t in entry.sweep.trials) == [0, 1]
    assert all(t.status == "finished" and t.objective is not None for t in entry.sweep.trials)
    # a long one, cancelled once it trains: its sweep process stops every trial after its batch
    window.training.epochs.setValue(60)
    queue.seeds.setValue(1)
    long = queue.add_open_graph()
    qtbot.waitUntil(lambda: any(i["epochs_done"] >= 1 for i in long.progress.values()), timeout=120_000)
    queue.list.setCurrentRow(1)
    queue.cancel_selected()
    qtbot.waitUntil(lambda: not queue.running(), timeout=90_000)
    assert long.state == "cancelled" and "studio sweep --resume" in long.message
    (trial,) = long.sweep.trials
    assert trial.status == "pending" and trial.run_dir  # stopped cleanly: runs again on resume
    config = json.loads((Path(trial.run_dir) / "config.json").read_text())
    assert config["status"] == "stopped" and (Path(trial.run_dir) / "metrics.json").is_file()


def test_a_ray_entry_whose_sweep_process_fails_shows_its_one_line(window, qtbot, monkeypatch):  # noqa: F811
    from studio.gui.queue import QueueWorker

    real = QueueWorker._run_apart

    def lose_the_spec_first(self):
        (self.entry.sweep.path / "spec.json").unlink()
        real(self)

    monkeypatch.setattr(QueueWorker, "_run_apart", lose_the_spec_first)
    queue = window.queue
    window.open_file(GRAPHS / "default.json")
    queue.seeds.setValue(1)
    queue.executor.setCurrentText("ray")
    entry = queue.add_open_graph()
    qtbot.waitUntil(lambda: not queue.running(), timeout=60_000)
    assert entry.state == "failed"
    assert entry.message == f"{entry.sweep.path}: not a sweep directory (no spec.json or trials.json)"


def test_on_a_ray_address_the_trials_run_as_many_at_once_as_the_cluster_holds(window, qtbot, monkeypatch):  # noqa: F811
    from studio.gui.queue import QueueWorker
    from studio.train.sweep import Sweep

    asked = []

    def record_run(self, **settings):
        asked.append((settings["executor"], settings["address"], self.spec.workers, self.spec.resources))
        return self.trials

    def record_run_apart(self):  # a Ray entry runs in a sweep process of its own
        asked.append(("ray", self.entry.address, self.entry.sweep.spec.workers, self.entry.sweep.spec.resources))

    monkeypatch.setattr(Sweep, "run", record_run)
    monkeypatch.setattr(QueueWorker, "_run_apart", record_run_apart)
    queue = window.queue
    window.open_file(GRAPHS / "default.json")
    queue.seeds.setValue(2)
    queue.address.setText(" 10.0.0.5:6379 ")
    queue.add_open_graph()  # the executor is local: the address is not for it
    qtbot.waitUntil(lambda: len(asked) == 1 and not queue.running(), timeout=30_000)
    queue.executor.setCurrentText("ray")
    queue.add_open_graph()
    qtbot.waitUntil(lambda: len(asked) == 2 and not queue.running(), timeout=30_000)
    queue.address.clear()
    queue.add_open_graph()
    qtbot.waitUntil(lambda: len(asked) == 3 and not queue.running(), timeout=30_000)
    # this machine: one trial at a time (the desktop stays responsive); a cluster: what it holds
    assert asked == [("local", None, 1, {"cpu": 1}), ("ray", "10.0.0.5:6379", 0, {"cpu": 1}),
                     ("ray", None, 1, {"cpu": 1})]
