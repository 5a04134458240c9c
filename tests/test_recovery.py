"""Autosave files survive kills and concurrent studios; a studio offers only what a dead one left, in one
prompt, and a recovered document takes the place of a clean tab of its file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from studio.core.graph_file import load_graph
from studio.gui.main_window import MainWindow
from studio.gui.recovery import LOCK_NAME, SUFFIX, Recovery
from studio.gui.recovery_dialog import RecoveryDialog, offer_recovery
from studio.nodes import default_registry
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
        recovery.remove(path)  # as the prompt does: the dead session's folder goes with its last file
        assert list(folder.iterdir()) == []


def test_two_studios_autosaving_at_once_never_collide(tmp_path):
    folder = tmp_path / "recovery"
    graph = tmp_path / "model.json"
    graph.write_text((GRAPHS / "default.json").read_text(encoding="utf-8"), encoding="utf-8")
    procs = [saver(folder, graph, 1.5) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-1500:]
        assert int(out.strip()) > 0
    # both ended without a clean close: each left its own session folder, one autosave in each
    pending = Recovery(folder).pending()
    assert len(pending) == 2 and {path.parent for _meta, path in pending} == set(folder.iterdir())
    for _meta, path in pending:
        assert Recovery(folder).load(path, str(graph)) is not None
        assert sorted(p.name for p in path.parent.iterdir()) == sorted([LOCK_NAME, path.name]), \
            "temporary files left behind"


def test_an_older_pair_with_a_cut_meta_file_is_still_offered(tmp_path):
    folder = tmp_path / "recovery"
    folder.mkdir()
    (folder / "abc.json").write_text((GRAPHS / "default.json").read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "abc.meta.json").write_text('{"path": "/some/where.json", "tit', encoding="utf-8")
    pending = Recovery(folder).pending()
    assert len(pending) == 1
    assert Recovery(folder).load(pending[0][1], None) is not None


# ---- studios as a person runs them: a second window, a killed one -----------------------------------

STUDIO = r"""
import os, sys, time
from pathlib import Path
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QPointF, QSettings
from PySide6.QtWidgets import QApplication
from studio.gui.main_window import MainWindow
from studio.gui.recovery import Recovery
from studio.nodes import default_registry

root = Path(sys.argv[1])
app = QApplication([])
w = MainWindow(default_registry(), None, settings=QSettings(str(root / "s.ini"), QSettings.Format.IniFormat),
               recovery=Recovery(root / "recovery"))
for name in sys.argv[2:]:
    w.open_file(root / name).add_node("relu", QPointF(0, 400))
w.new_document().add_node("tanh", QPointF(300, 0))
w.save_recovery()  # what the autosave timer does every minute
print("saved", flush=True)
time.sleep(600)
"""


def unsaved_studio(root: Path, *names: str) -> subprocess.Popen:
    """A studio process with the files ``names`` (in ``root``) edited and one new document, autosaved."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-c", STUDIO, str(root), *names], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline().strip()
    if line != "saved":
        proc.kill()
        raise AssertionError(f"the studio did not autosave: {line} {proc.stderr.read()[-2000:]}")
    return proc


def end(proc: subprocess.Popen) -> None:
    proc.kill()  # SIGKILL: no clean close, as after a crash
    proc.communicate(timeout=60)


def model_files(root: Path, *names: str) -> None:
    for name in names:
        shutil.copy(GRAPHS / "default.json", root / name)


@pytest.fixture
def studio_window(qtbot, tmp_path, monkeypatch):
    """Make main windows the way `studio gui` does, each with its own Recovery on one shared folder."""
    def make(settings_name: str = "settings.ini") -> MainWindow:
        settings = QSettings(str(tmp_path / settings_name), QSettings.Format.IniFormat)
        w = MainWindow(default_registry(), GRAPHS, settings=settings, recovery=Recovery(tmp_path / "recovery"))
        qtbot.addWidget(w)
        return w

    # closing the windows at the end of a test must not wait on a question nobody answers
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    return make


def prompts_shown(monkeypatch) -> list[RecoveryDialog]:
    """Record the recovery prompts instead of waiting on them (closed, as if by Esc)."""
    shown: list[RecoveryDialog] = []
    monkeypatch.setattr(RecoveryDialog, "exec", lambda self: shown.append(self) or 0)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: shown.append(a) or QMessageBox.StandardButton.No)
    return shown


def test_a_second_window_neither_offers_nor_deletes_the_first_ones_unsaved_work(studio_window, tmp_path,
                                                                                monkeypatch):
    model_files(tmp_path, "a.json", "b.json")
    first = studio_window()
    for name in ("a.json", "b.json"):
        first.open_file(tmp_path / name).add_node("relu", QPointF(0, 400))
    for _ in range(2):
        first.new_document().add_node("tanh", QPointF(300, 0))
    first.save_recovery()
    written = first.recovery.entries()
    assert len(written) == 4
    second = studio_window("second.ini")
    second.new_document()
    shown = prompts_shown(monkeypatch)
    offer_recovery(second)
    assert shown == [], "a live studio's documents were offered for recovery"
    assert first.recovery.entries() == written and all(path.is_file() for path in written)
    assert Recovery(tmp_path / "recovery").pending() == []
    # the first one autosaves again and closes cleanly: its session goes, the second one's stays
    first.save_recovery()
    assert all(path.is_file() for path in written)
    assert first.close()
    assert not any(path.exists() for path in written)


def test_a_running_studio_process_keeps_its_autosaves_until_it_dies(studio_window, tmp_path, monkeypatch):
    model_files(tmp_path, "a.json")
    proc = unsaved_studio(tmp_path, "a.json")
    try:
        left = sorted((tmp_path / "recovery").rglob(f"*{SUFFIX}"))
        assert len(left) == 2
        window = studio_window()
        shown = prompts_shown(monkeypatch)
        offer_recovery(window)
        assert shown == [] and sorted((tmp_path / "recovery").rglob(f"*{SUFFIX}")) == left
    finally:
        end(proc)
    offer_recovery(window)
    assert len(shown) == 1 and len(shown[0].entries) == 2, "a dead studio's work was not offered"


def row_texts(dialog: RecoveryDialog) -> list[list[str]]:
    return [[dialog.list.topLevelItem(i).text(c) for c in range(3)] for i in range(dialog.list.topLevelItemCount())]


def test_after_a_kill_one_prompt_recovers_the_checked_documents_in_place_of_clean_tabs(studio_window, tmp_path,
                                                                                    qtbot):
    model_files(tmp_path, "a.json", "b.json")
    end(unsaved_studio(tmp_path, "a.json", "b.json"))
    window = studio_window()
    window.show()
    window.open_file(tmp_path / "a.json")  # `studio gui a.json` after the crash: a clean tab from disk
    seen = {}

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        try:
            seen["rows"] = row_texts(dialog)
            # while the prompt is up, a third studio starting now is not offered the same files
            seen["third"] = Recovery(tmp_path / "recovery").pending()
            for i, row in enumerate(seen["rows"]):
                if row[0] == "b.json":
                    dialog.list.topLevelItem(i).setCheckState(0, Qt.CheckState.Unchecked)
            qtbot.mouseClick(dialog.recover_button, Qt.MouseButton.LeftButton)
        finally:
            if dialog.isVisible():  # a failed step above must not leave the test waiting on the prompt
                dialog.reject()

    QTimer.singleShot(0, answer)
    offer_recovery(window)
    rows = seen["rows"]
    assert sorted(row[0] for row in rows) == ["a.json", "b.json", "untitled.json"], rows
    assert {row[1] for row in rows} == {str(tmp_path / "a.json"), str(tmp_path / "b.json"), "not saved yet"}
    assert all(row[2][:2] == "20" for row in rows), rows  # when each was autosaved
    assert seen["third"] == []
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["a.json *", "untitled.json *"], titles  # a.json once, recovered, in its tab's place
    a_document = window.tabs.widget(0).document
    assert a_document.modified and "relu_1" in a_document.graph.nodes
    assert window.tabs.widget(1).document.modified
    assert [p for p in (tmp_path / "recovery").iterdir() if p != window.recovery.session] == [], \
        "the dead studio's autosaves were left (b.json's was not wanted)"
    assert len(window.recovery.entries()) == 2  # the recovered work is in this studio's autosaves now
    assert Recovery(tmp_path / "recovery").pending() == []


def test_closing_the_prompt_keeps_the_autosaves_and_discard_deletes_them(studio_window, tmp_path, qtbot):
    model_files(tmp_path, "a.json")
    end(unsaved_studio(tmp_path, "a.json"))
    window = studio_window()
    window.show()

    open_after_escape = []

    def close_it() -> None:
        dialog = QApplication.activeModalWidget()
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
        open_after_escape.append(dialog.isVisible())
        if dialog.isVisible():
            dialog.reject()

    QTimer.singleShot(0, close_it)
    offer_recovery(window)
    assert open_after_escape == [False]
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == []
    assert len(Recovery(tmp_path / "recovery").pending()) == 2, "closing the prompt deleted the autosaves"

    def discard() -> None:
        qtbot.mouseClick(QApplication.activeModalWidget().discard_button, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, discard)
    offer_recovery(window)
    assert window.tabs.count() == 0
    assert list((tmp_path / "recovery").iterdir()) == []


def test_an_edit_is_autosaved_seconds_after_it_not_only_at_the_minute(studio_window, tmp_path, qtbot):
    """kill -9 twenty seconds after an edit lost it: the autosave ran only once a minute."""
    model_files(tmp_path, "a.json")
    window = studio_window()
    window.open_file(tmp_path / "a.json").add_node("relu", QPointF(0, 400))
    assert window.recovery.entries() == []  # not at every change: a drag is many
    qtbot.waitUntil(lambda: len(window.recovery.entries()) == 1, timeout=8_000)
    import json

    from studio.core.graph_file import loads_graph

    saved = loads_graph(json.loads(window.recovery.entries()[0].read_text(encoding="utf-8"))["graph"])
    assert len(saved.nodes) == len(load_graph(tmp_path / "a.json").nodes) + 1
