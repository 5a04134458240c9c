"""Saving files: atomic under kill -9, leftovers of killed saves cleaned, symlinks and modes kept, the
user's umask for new files; and bounded reads of regular files only."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.core.files import FileReadError, atomic_write, read_regular_file, temp_files_of
from studio.core.graph_file import load_graph, save_graph
from tests.conftest import GRAPHS, ROOT


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_the_users_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        save_graph(load_graph(GRAPHS / "default.json"), tmp_path / "a.json")
        os.umask(0o027)
        atomic_write(tmp_path / "b.txt", "text")
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "a.json") == 0o644
    assert mode_of(tmp_path / "b.txt") == 0o640


def test_an_existing_files_mode_is_kept(tmp_path):
    target = tmp_path / "g.json"
    target.write_text("{}")
    os.chmod(target, 0o664)
    save_graph(load_graph(GRAPHS / "default.json"), target)
    assert mode_of(target) == 0o664
    os.chmod(target, 0o600)
    save_graph(load_graph(GRAPHS / "default.json"), target)
    assert mode_of(target) == 0o600


def test_a_symlinked_file_stays_a_symlink_and_its_target_is_written(tmp_path):
    real = tmp_path / "real" / "g.json"
    real.parent.mkdir()
    real.write_text("old")
    os.chmod(real, 0o644)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    graph = load_graph(GRAPHS / "default.json")
    save_graph(graph, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load_graph(real).name == graph.name
    assert mode_of(real) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real"]
    assert [p.name for p in real.parent.iterdir()] == ["g.json"]


KILLED_SAVER = r"""
import os, sys, time
from studio.core.graph_file import load_graph, save_graph
graph = load_graph(sys.argv[1])
graph.description = "x" * 2_000_000  # a large file: a kill lands inside the write most of the time
if sys.argv[3:] == ["pause-before-rename"]:
    # a kill certain to land inside a write: the new text is on disk under the temporary name, not yet renamed
    sync = os.fsync
    def sync_then_wait(fd):
        sync(fd)
        print("inside", flush=True)
        time.sleep(60)
    os.fsync = sync_then_wait
print("ready", flush=True)
while True:
    graph.name = "new"
    save_graph(graph, sys.argv[2])
"""


def test_kill_during_save_leaves_old_or_new_and_the_next_save_cleans_up(tmp_path):
    target = tmp_path / "g.json"
    graph = load_graph(GRAPHS / "default.json")
    save_graph(graph, target)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def kill_a_saver(wait_for: str, delay: float, *mode: str) -> None:
        proc = subprocess.Popen([sys.executable, "-c", KILLED_SAVER, str(GRAPHS / "default.json"), str(target), *mode],
                                stdout=subprocess.PIPE, env=env, text=True)
        assert proc.stdout.readline().strip() == "ready"
        if wait_for:
            assert proc.stdout.readline().strip() == wait_for
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()

    kill_a_saver("inside", 0.0, "pause-before-rename")
    assert load_graph(target).name == graph.name, "a save killed before its rename leaves the old file"
    assert len(temp_files_of(target)) == 1
    names = set()
    for i in range(8):  # kills at moments the saver does not choose
        kill_a_saver("", 0.02 + 0.013 * i)
        names.add(json.loads(target.read_text(encoding="utf-8"))["name"])  # whole JSON every time
    assert names <= {graph.name, "new"}
    for tmp in temp_files_of(target):
        assert tmp.name.startswith(".g.json.studio-save-") and tmp.name.endswith(".tmp")
    save_graph(graph, target)
    assert temp_files_of(target) == [], "the next save removes what killed saves left"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json"]


def test_a_live_saves_temporary_file_is_not_removed(tmp_path):
    """Another process saving the same file right now keeps its temporary file."""
    target = tmp_path / "g.json"
    target.write_text("{}")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = tmp_path / f".g.json.studio-save-{sleeper.pid}-abcd.tmp"
        live.write_text("half")
        dead = tmp_path / ".g.json.studio-save-999999999-abcd.tmp"
        dead.write_text("half")
        atomic_write(target, "new")
        assert live.exists() and not dead.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_bounded_read_of_regular_files_only(tmp_path):
    small = tmp_path / "small.json"
    small.write_bytes(b"x" * 100)
    assert read_regular_file(small, 100) == b"x" * 100
    with pytest.raises(FileReadError, match="too large"):
        read_regular_file(small, 99)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(FileReadError, match="not a regular file"):
        read_regular_file(fifo, 100)
    with pytest.raises(FileReadError, match="not a regular file"):
        read_regular_file("/dev/zero", 100)
    with pytest.raises(FileReadError, match="NUL"):
        read_regular_file(str(tmp_path / "a\x00b"), 100)
    with pytest.raises(FileReadError, match="is a folder"):
        read_regular_file(tmp_path, 100)
