"""Folders the studio owns are written inside themselves only (issue 25 item 1).

The attack: a run folder from someone else, killed after 2 epochs, with ``checkpoint.pt -> ../created.bin``
and ``metrics.jsonl -> ../victim.json`` planted in it. ``studio train --resume RUN`` exited 0, overwrote
victim.json with metrics lines and created created.bin. Now it is refused in one line naming the entry,
and the same goes for special files (a FIFO, a device), sweep folders, the import and feature caches,
recovery folders and MLflow's local store. A graph saved through the user's own symlink is saved as before.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from studio.core.graph_file import load_graph, save_graph
from studio.core.owned_dir import ForeignEntry, check_folder, read_json, write_owned
from studio.train.config import SourceSpec, TrainConfig
from studio.train.engine import Trainer
from studio.train.records import RunWriter, read_run
from studio.train.run_lock import LOCK_FILE, RunLock, held_by
from tests.conftest import GRAPHS

SMALL = {"stocks": 30, "days": 80}
VICTIM_TEXT = '{"precious": true}\n'


def stopped_after_two_epochs(out: Path) -> Path:
    """A run of 4 epochs that ended after its second (stopped, as a kill there leaves it: a checkpoint of
    epoch 2 and two epoch lines)."""
    cancel = threading.Event()
    trainer = Trainer(load_graph(GRAPHS / "default.json"), SourceSpec(synthetic=SMALL),
                      TrainConfig(epochs=4, threads=1, patience=0), out_dir=out)
    last = {}
    for record in trainer.run(cancel):
        if record["kind"] == "epoch" and record["epoch"] == 2:
            cancel.set()
        last = record
    assert last["status"] == "stopped"
    run_dir = Path(last["run_dir"])
    assert (run_dir / "checkpoint.pt").is_file()
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2
    return run_dir


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory) -> Path:
    return stopped_after_two_epochs(tmp_path_factory.mktemp("killed"))


@pytest.fixture
def run_copy(killed_run, tmp_path) -> Path:
    """A fresh copy of the killed run (each test plants its own entries), alone in ``tmp_path/runs``."""
    import shutil

    copy = tmp_path / "runs" / killed_run.name
    shutil.copytree(killed_run, copy)
    return copy


def _link(name: str) -> str:
    return re.escape(f"{name} is a symbolic link")


def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_resume_of_a_run_with_planted_links_is_refused_and_writes_nothing(run_copy, capsys):
    outside = run_copy.parent
    victim = outside / "victim.json"
    victim.write_text(VICTIM_TEXT)
    (run_copy / "checkpoint.pt").unlink()
    (run_copy / "metrics.jsonl").unlink()
    os.symlink("../created.bin", run_copy / "checkpoint.pt")
    os.symlink("../victim.json", run_copy / "metrics.jsonl")
    config_before = (run_copy / "config.json").read_bytes()

    code = main(["train", "--resume", str(run_copy), "--quiet"])

    line = _one_line(capsys.readouterr().err)
    assert code == 2
    assert "checkpoint.pt is a symbolic link; refusing to use this run folder" in line
    assert str(run_copy) in line
    assert victim.read_text() == VICTIM_TEXT
    assert not (outside / "created.bin").exists()
    assert (run_copy / "config.json").read_bytes() == config_before  # not even marked running


@pytest.mark.parametrize("plant", ["fifo", "dev_null", "dev_zero_config", "folder"])
def test_resume_refuses_a_special_file_in_the_run(run_copy, capsys, plant):
    name = {"fifo": "checkpoint.pt", "dev_null": "checkpoint.pt", "dev_zero_config": "config.json",
            "folder": "checkpoint.pt"}[plant]
    (run_copy / name).unlink()
    if plant == "fifo":
        os.mkfifo(run_copy / name)
    elif plant == "folder":
        (run_copy / name).mkdir()
    else:
        os.symlink("/dev/null" if plant == "dev_null" else "/dev/zero", run_copy / name)

    code = main(["train", "--resume", str(run_copy), "--quiet"])

    line = _one_line(capsys.readouterr().err)
    assert code == 2
    reason = {"fifo": "a FIFO", "folder": "a folder, not a file"}.get(plant, "a symbolic link")
    assert f"{name} is {reason}; refusing to use this run folder" in line
    if plant == "fifo":
        assert (run_copy / name).is_fifo()


def test_a_foreign_entry_of_any_name_is_refused(run_copy, capsys):
    os.symlink(os.path.expanduser("~"), run_copy / "notes")

    code = main(["train", "--resume", str(run_copy), "--quiet"])

    assert code == 2
    assert "notes is a symbolic link" in _one_line(capsys.readouterr().err)


def test_a_link_planted_while_the_run_is_ours_is_never_written_through(run_copy):
    """Past the folder check, every write of a run still refuses a link: the atomic saves replace the
    entry itself, the appended epoch lines and the lock open with O_NOFOLLOW."""
    outside = run_copy.parent
    victim = outside / "victim.json"
    victim.write_text(VICTIM_TEXT)
    writer = RunWriter(run_copy)
    for name in ("metrics.jsonl", "config.json", "model.pt", "daily.csv"):
        (run_copy / name).unlink(missing_ok=True)
        os.symlink("../victim.json", run_copy / name)
    with pytest.raises(ForeignEntry, match=_link("metrics.jsonl")):
        writer.append_jsonl("metrics.jsonl", {"epoch": 3})
    with pytest.raises(ForeignEntry, match=_link("config.json")):
        writer.update_json("config.json", {"status": "running"})
    with pytest.raises(ForeignEntry, match=_link("config.json")):
        writer.write_json("config.json", {"status": "running"})
    with pytest.raises(ForeignEntry, match=_link("model.pt")):
        writer.save_torch("model.pt", {"w": 1})
    with pytest.raises(ForeignEntry, match=_link("daily.csv")):
        writer.write_daily([{"date": "2020-01-01", "ic": 0.1}])
    with pytest.raises(ForeignEntry, match=_link("config.json")):
        read_run(run_copy)
    assert victim.read_text() == VICTIM_TEXT

    (run_copy / LOCK_FILE).unlink(missing_ok=True)
    os.symlink("../created.lock", run_copy / LOCK_FILE)
    with pytest.raises(ForeignEntry, match=_link("run.lock")):
        RunLock.acquire(run_copy)
    assert not (outside / "created.lock").exists()
    (run_copy / LOCK_FILE).unlink()
    os.mkfifo(run_copy / LOCK_FILE)
    assert held_by(run_copy) is None  # a FIFO is no live run's lock, and reading it does not hang


def test_the_runs_table_passes_over_a_run_whose_config_is_a_device(run_copy, tmp_path):
    from studio.cli.train_commands import _read_config

    (run_copy / "config.json").unlink()
    os.symlink("/dev/zero", run_copy / "config.json")
    with pytest.raises(ForeignEntry):
        read_run(run_copy)
    assert _read_config(run_copy) is None


def test_a_fresh_run_and_a_plain_resume_still_work(run_copy, capsys):
    code = main(["train", "--resume", str(run_copy), "--quiet"])
    capsys.readouterr()
    assert code == 0
    run = read_run(run_copy)
    assert run["status"] == "finished" and run["metrics"]["epochs_run"] == 4
    assert len((run_copy / "metrics.jsonl").read_text().splitlines()) == 4
    check_folder(run_copy)  # what a run writes is all regular files


def test_a_graph_saved_through_the_users_own_symlink_is_saved_as_before(tmp_path):
    real = tmp_path / "graphs" / "model.json"
    real.parent.mkdir()
    save_graph(load_graph(GRAPHS / "default.json"), real)
    link = tmp_path / "current.json"
    os.symlink(real, link)
    graph = load_graph(link)
    graph.name = "renamed through the link"
    save_graph(graph, link)
    assert link.is_symlink()
    assert load_graph(real).name == "renamed through the link"


def test_write_owned_replaces_a_regular_file_and_keeps_its_mode(tmp_path):
    target = tmp_path / "config.json"
    target.write_text("{}")
    target.chmod(0o640)
    write_owned(target, '{"a": 1}\n')
    assert read_json(target) == {"a": 1}
    assert (target.stat().st_mode & 0o777) == 0o640


# ---- sweep folders ----------------------------------------------------------------------------------

def _tiny_sweep(tmp_path: Path):
    from studio.train.sweep import Sweep, load_spec

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "tiny", "graphs": [str(GRAPHS / "default.json")], "seeds": 1,
                                "training": {"epochs": 1, "patience": 0, "threads": 1},
                                "data": {"synthetic": SMALL}}))
    return Sweep.create(load_spec(spec), tmp_path / "sweeps")


@pytest.mark.parametrize("name", ["trials.json", "summary.csv", "run.lock"])
def test_resume_of_a_sweep_with_a_planted_link_is_refused(tmp_path, capsys, name):
    sweep = _tiny_sweep(tmp_path)
    victim = tmp_path / "victim.json"
    victim.write_text(VICTIM_TEXT)
    (sweep.path / name).unlink(missing_ok=True)
    os.symlink(victim, sweep.path / name)

    code = main(["sweep", "--resume", str(sweep.path), "-q"])

    line = _one_line(capsys.readouterr().err)
    assert code == 2
    assert f"sweep {sweep.path}: {name} is a symbolic link; refusing to use this sweep folder" in line
    assert victim.read_text() == VICTIM_TEXT
    assert not (sweep.path / "runs").exists()  # no trial ran


def test_a_sweeps_records_are_never_written_through_a_link(tmp_path):
    sweep = _tiny_sweep(tmp_path)
    victim = tmp_path / "victim.json"
    victim.write_text(VICTIM_TEXT)
    for name in ("trials.json", "trials.csv"):
        (sweep.path / name).unlink(missing_ok=True)
        os.symlink(victim, sweep.path / name)
    with pytest.raises(ForeignEntry, match=_link("trials.json")):
        sweep.save()
    with pytest.raises(ForeignEntry, match=_link("trials.csv")):
        sweep.write_tables()
    assert victim.read_text() == VICTIM_TEXT


# ---- the import and feature caches ------------------------------------------------------------------

def test_a_link_planted_in_the_import_cache_is_ignored_and_replaced_not_followed(tmp_path):
    from studio.data.cache import read_panel, write_panel
    from studio.data.synthetic import SyntheticConfig, generate

    panel = generate(SyntheticConfig(stocks=12, days=8)).panel
    elsewhere = tmp_path / "elsewhere.parquet"
    assert write_panel(elsewhere, panel)
    before = elsewhere.read_bytes()
    entry = tmp_path / "imports" / "0123abcd.parquet"
    entry.parent.mkdir()
    os.symlink(elsewhere, entry)
    assert read_panel(entry) is None  # a whole panel there, but not read through the link
    assert write_panel(entry, panel)  # the rebuilt entry replaces the link itself
    assert not entry.is_symlink() and read_panel(entry) is not None
    assert elsewhere.read_bytes() == before
    fifo = tmp_path / "imports" / "fifo.parquet"
    os.mkfifo(fifo)
    assert read_panel(fifo) is None  # and a FIFO does not hang it


def test_links_planted_in_the_feature_cache_are_never_written_through(tmp_path):
    from studio.data import store
    from studio.data.panel import DataError

    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    features = tmp_path / "features" / "key.npy"
    features.parent.mkdir()
    os.symlink(victim, features.with_name("key.npy.partial"))  # where the features are made
    array = store.create(features, (4, 6, 2))
    array[:] = 1.5
    path = store.finish(array)
    assert victim.read_bytes() == b"precious" and not path.is_symlink()
    os.symlink(victim, Path(str(path) + ".sha256.json"))  # the digest's memo beside it
    mapped = store.open_array(path, (4, 6, 2), np.float32)
    store.digest(mapped)
    assert victim.read_bytes() == b"precious"
    os.symlink(path, tmp_path / "features" / "linked.npy")
    with pytest.raises(DataError, match=re.escape("linked.npy: is a symbolic link")):
        store.open_array(tmp_path / "features" / "linked.npy")


# ---- recovery folders -------------------------------------------------------------------------------

def _recovery_record(graph_text: str) -> str:
    return json.dumps({"meta": {"path": None, "title": "x", "saved": "now", "pid": 999_999_999}, "graph": graph_text})


def test_a_dead_sessions_link_is_not_offered_nor_followed(tmp_path):
    from studio.gui.recovery import LOCK_NAME, SUFFIX, Recovery

    outside = tmp_path / f"outside{SUFFIX}"
    outside.write_text(_recovery_record((GRAPHS / "default.json").read_text()))
    session = tmp_path / "recovery" / "12345-abcd"
    session.mkdir(parents=True)
    (session / LOCK_NAME).write_text("12345\n")
    os.symlink(outside, session / f"0123456789abcdef{SUFFIX}")
    os.mkfifo(tmp_path / "recovery" / "old.meta.json")  # the older two-file form: a FIFO must not hang
    (tmp_path / "recovery" / "old.json").write_text((GRAPHS / "default.json").read_text())

    recovery = Recovery(tmp_path / "recovery")
    offered = [path for _, path in recovery.pending()]

    assert offered == [tmp_path / "recovery" / "old.json"]  # the regular older file, not the link
    assert outside.is_file()  # the link went, what it pointed to stays


def test_an_autosave_is_never_written_through_a_link_in_its_session(tmp_path):
    from studio.gui.recovery import SUFFIX, Recovery

    class Document:
        path, title, recovery_id = None, "untitled", "doc-1"
        graph = load_graph(GRAPHS / "default.json")

    recovery = Recovery(tmp_path / "recovery")
    first = recovery.save(Document())
    victim = tmp_path / "victim.json"
    victim.write_text(VICTIM_TEXT)
    first.unlink()
    os.symlink(victim, first)
    with pytest.raises(ForeignEntry, match=_link(first.name)):
        recovery.save(Document())
    assert victim.read_text() == VICTIM_TEXT and first.name.endswith(SUFFIX)
    recovery.close()


# ---- MLflow's local store ---------------------------------------------------------------------------

@pytest.mark.parametrize("planted", ["mlflow.db", "artifacts"])
def test_an_mlflow_store_with_a_planted_link_is_refused(tmp_path, planted):
    from studio.train.tracking import RunTracker, TrackingError

    store = tmp_path / "mlruns"
    store.mkdir()
    victim = tmp_path / "victim"
    victim.write_text(VICTIM_TEXT) if planted == "mlflow.db" else victim.mkdir()
    os.symlink(victim, store / planted)
    uri = f"sqlite:///{store}/mlflow.db"
    with pytest.raises(TrackingError) as refused:
        RunTracker(uri)
    assert str(refused.value) == (f"mlflow {uri}: mlflow store {store}: {planted} is a symbolic link; "
                                  "refusing to use this mlflow store folder")
    if planted == "mlflow.db":
        assert victim.read_text() == VICTIM_TEXT
    else:
        assert list(victim.iterdir()) == []


# ---- as the studio's user meets them ----------------------------------------------------------------

def test_the_runs_table_lists_the_run_but_not_one_whose_records_are_links_outside(qtbot, killed_run, tmp_path):
    """A runs folder with someone's run whose config.json and metrics.jsonl point outside (a file of the
    user's that happens to be JSON): the table lists the user's own run only, and draws nothing from
    outside."""
    import shutil

    from studio.gui.runs import RunsWidget

    folder = tmp_path / "runs"
    own = folder / killed_run.name
    shutil.copytree(killed_run, own)
    foreign = folder / "20200101-000000-foreign"
    shutil.copytree(killed_run, foreign)
    private = tmp_path / "private.json"
    private.write_text((own / "config.json").read_text())
    (foreign / "config.json").unlink()
    os.symlink(private, foreign / "config.json")
    os.mkfifo(tmp_path / "pipe")
    (foreign / "metrics.jsonl").unlink()
    os.symlink(tmp_path / "pipe", foreign / "metrics.jsonl")

    runs = RunsWidget(folder)
    qtbot.addWidget(runs)
    runs.resize(1280, 500)
    runs.show()
    runs.refresh()

    assert [row["path"] for row in runs.rows] == [own]
    assert runs._epoch_curve(foreign) is None  # the FIFO behind the link is neither followed nor waited on


def test_a_studio_starting_after_a_crash_offers_no_autosave_planted_as_a_link(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    from studio.gui.main_window import MainWindow
    from studio.gui.recovery import LOCK_NAME, SUFFIX, Recovery
    from studio.gui.recovery_dialog import RecoveryDialog, offer_recovery
    from studio.nodes import default_registry

    graph = load_graph(GRAPHS / "default.json")
    graph.description = "someone else's file, not this studio's autosave"
    from studio.core.graph_file import dumps_graph

    outside = tmp_path / f"outside{SUFFIX}"
    outside.write_text(_recovery_record(dumps_graph(graph)))
    session = tmp_path / "recovery" / "12345-abcd"  # a dead studio's session: nobody holds its lock
    session.mkdir(parents=True)
    (session / LOCK_NAME).write_text("12345\n")
    os.symlink(outside, session / f"0123456789abcdef{SUFFIX}")
    shown: list = []
    monkeypatch.setattr(RecoveryDialog, "exec", lambda self: shown.append(self) or 0)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)

    window = MainWindow(default_registry(), GRAPHS, settings=QSettings(str(tmp_path / "s.ini"),
                                                                       QSettings.Format.IniFormat),
                        recovery=Recovery(tmp_path / "recovery"))
    qtbot.addWidget(window)
    offer_recovery(window)

    assert shown == []  # nothing offered: the only "autosave" was a link out of the recovery folder
    assert outside.read_text() == _recovery_record(dumps_graph(graph))


def test_reproduce_refuses_a_run_whose_weights_link_outside(run_copy, capsys):
    elsewhere = run_copy.parent / "someone-elses.pt"
    elsewhere.write_bytes(b"not the run's weights")
    (run_copy / "model.pt").unlink(missing_ok=True)
    os.symlink(elsewhere, run_copy / "model.pt")

    code = main(["reproduce", str(run_copy)])

    assert code == 2
    assert f"run {run_copy}: model.pt is a symbolic link" in _one_line(capsys.readouterr().err)


def test_a_hard_link_planted_as_the_lock_is_not_written_in_place(run_copy):
    """run.lock is written in place (the owner's process id): as a hard link to a file outside it would
    overwrite that file, so it is refused; the saves, which rename, break a hard link instead."""
    victim = run_copy.parent / "victim.json"
    victim.write_text(VICTIM_TEXT)
    (run_copy / LOCK_FILE).unlink(missing_ok=True)
    os.link(victim, run_copy / LOCK_FILE)
    with pytest.raises(ForeignEntry, match=re.escape("run.lock is a hard link (2 names of one file)")):
        RunLock.acquire(run_copy)
    (run_copy / "metrics.jsonl").unlink()
    os.link(victim, run_copy / "metrics.jsonl")
    with pytest.raises(ForeignEntry, match=re.escape("metrics.jsonl is a hard link")):
        RunWriter(run_copy).append_jsonl("metrics.jsonl", {"epoch": 3})
    RunWriter(run_copy).write_jsonl("metrics.jsonl", [{"epoch": 1}])  # renamed over the name: the link breaks
    assert victim.read_text() == VICTIM_TEXT


def test_resume_of_a_walk_forward_with_a_link_planted_in_a_fold_is_refused_before_any_data_loads(
        run_copy, tmp_path, capsys):
    import shutil

    walk = tmp_path / "wf"
    fold = walk / "folds" / "fold-1"
    shutil.copytree(run_copy, fold)
    config = json.loads((run_copy / "config.json").read_text())
    config.update(kind="walk_forward", walk_forward={"plan": [], "expanding": False})
    (walk / "config.json").write_text(json.dumps(config))
    shutil.copy(run_copy / "graph.json", walk / "graph.json")
    victim = tmp_path / "victim.json"
    victim.write_text(VICTIM_TEXT)
    (fold / "metrics.jsonl").unlink()
    os.symlink(victim, fold / "metrics.jsonl")

    code = main(["train", "--resume", str(walk), "--quiet"])

    assert code == 2
    assert f"run {fold}: metrics.jsonl is a symbolic link" in _one_line(capsys.readouterr().err)
    assert victim.read_text() == VICTIM_TEXT
