"""Autosave files survive kills and concurrent studios (no window needed: Recovery is plain files)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from studio.core.graph_file import load_graph
from studio.gui.recovery import Recovery
from tests.conftest import GRAPHS, ROOT

SAVER = r"""
import sys, time
from pathlib import Path
from studio.core.graph_file import load_graph
from studio.gui.recovery import Recovery

class Doc:
    def __init__(self, path):
        self.path, self.title, self.graph = Path(path), "model.json", load_graph(path)

doc = Doc(sys.argv[2])
doc.graph.description = "x" * 1_000_000
recovery = Recovery(Path(sys.argv[1]))
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[3])
count = 0
while time.monotonic() < end:
    recovery.save(doc)
    count += 1
print(count, flush=True)
"""


def saver(folder: Path, graph: Path, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(folder), str(graph), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_kill_while_autosaving_leaves_an_offered_recovery(tmp_path):
    folder = tmp_path / "recovery"
    graph = tmp_path / "model.json"
    graph.write_text((GRAPHS / "default.json").read_text(encoding="utf-8"), encoding="utf-8")
    for delay in (0.05, 0.11, 0.17, 0.23):
        proc = saver(folder, graph, 60)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        recovery = Recovery(folder)
        pending = recovery.pending()
        assert len(pending) == 1, pending
        meta, path = pending[0]
        assert meta["path"] == str(graph)
        restored = recovery.load(path, meta["path"])
        assert restored is not None and restored.description == "x" * 1_000_000
        assert restored.nodes.keys() == load_graph(graph).nodes.keys()


def test_two_studios_autosaving_at_once_never_collide(tmp_path):
    folder = tmp_path / "recovery"
    graph = tmp_path / "model.json"
    graph.write_text((GRAPHS / "default.json").read_text(encoding="utf-8"), encoding="utf-8")
    procs = [saver(folder, graph, 1.5) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-1500:]
        assert int(out.strip()) > 0
    pending = Recovery(folder).pending()
    assert len(pending) == 1 and Recovery(folder).load(pending[0][1], str(graph)) is not None
    assert [p.name for p in folder.iterdir()] == [pending[0][1].name], "temporary files left behind"


def test_an_older_pair_with_a_cut_meta_file_is_still_offered(tmp_path):
    folder = tmp_path / "recovery"
    folder.mkdir()
    (folder / "abc.json").write_text((GRAPHS / "default.json").read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "abc.meta.json").write_text('{"path": "/some/where.json", "tit', encoding="utf-8")
    pending = Recovery(folder).pending()
    assert len(pending) == 1
    assert Recovery(folder).load(pending[0][1], None) is not None
