"""A full disk while the studio trains (issue 25 item 7), as the user meets it: the disk fills when the
first epoch's checkpoint is saved. The panel says "disk full: PATH" in its one status line (it said
"OSError: [Errno 28] No space left on device" or torch's "enforce fail at inline_container.cc"), Start
works again, and the Runs table shows the run as failed with that message; no half-written file stays."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from studio.core.files import TEMP_MARK
from tests.conftest import GRAPHS
from tests.test_disk_full import fill_the_disk_at
from tests.test_gui_training import studio_window


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    yield from studio_window(qtbot, tmp_path, monkeypatch, days=80, epochs=2)


def test_a_full_disk_while_training_in_the_studio_says_so_in_the_status_line(window, qtbot, tmp_path,
                                                                             monkeypatch):
    window.open_file(GRAPHS / "default.json")
    panel = window.training
    seen: list[dict] = []
    panel.record.connect(seen.append)
    fill_the_disk_at(monkeypatch, "checkpoint.pt")
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(seen) and seen[-1]["kind"] == "done", timeout=180_000)
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)
    (run,) = (tmp_path / "runs").iterdir()
    assert seen[-1]["status"] == "failed"
    assert seen[-1]["message"] == f"disk full: {run / 'checkpoint.pt'}"
    assert panel.status.text().startswith(f"failed: disk full: {run / 'checkpoint.pt'}"), panel.status.text()
    assert "Errno" not in panel.status.text() and "enforce fail" not in panel.status.text()
    assert not (run / "checkpoint.pt").exists() and not [p for p in run.iterdir() if TEMP_MARK in p.name]
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "failed" and config["message"].startswith("disk full: ")
    runs = window.runs
    runs.refresh()
    qtbot.waitUntil(lambda: runs.table.rowCount() == 1, timeout=5_000)
    assert runs.table.item(0, 2).text() == "failed"
