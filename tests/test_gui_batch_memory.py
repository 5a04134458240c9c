"""The studio's dates per batch (issue 25 item 10): "auto" by default, the choice said when the run starts,
and a number that cannot fit the free memory refused in one line instead of the OOM killer ending the
studio without a word."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from studio.train import engine
from tests.conftest import GRAPHS
from tests.test_gui_training import studio_window


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    yield from studio_window(qtbot, tmp_path, monkeypatch, days=60, epochs=1)


def run_to_the_end(window, qtbot) -> list[dict]:
    panel = window.training
    seen: list[dict] = []
    panel.record.connect(seen.append)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(seen) and seen[-1]["kind"] == "done", timeout=180_000)
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)
    return seen


def test_dates_per_batch_reads_auto_and_the_start_says_the_choice(window, qtbot, tmp_path):
    window.open_file(GRAPHS / "default.json")
    panel = window.training
    assert panel.batch.text() == "auto" and panel.train_config().dates_per_batch == "auto"
    seen = run_to_the_end(window, qtbot)
    start = next(r for r in seen if r["kind"] == "start")
    assert start["batch"].startswith("dates per batch: auto -> 4 (a step needs ~")
    assert seen[-1]["status"] == "finished"
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "config.json").read_text())["training"]["dates_per_batch"] == 4
    panel.batch.setValue(2)
    assert panel.batch.text() == "2" and panel.train_config().dates_per_batch == 2


def test_a_number_of_dates_that_cannot_fit_is_refused_in_one_line(window, qtbot, tmp_path, monkeypatch):
    # a desktop with 40 MB free: the default graph's step of 30 stocks takes about 5 MB a date
    monkeypatch.setattr(engine, "free_memory", lambda device: 40_000_000)
    window.open_file(GRAPHS / "default.json")
    panel = window.training
    panel.batch.setValue(16)
    seen = run_to_the_end(window, qtbot)
    done = seen[-1]
    assert done["status"] == "failed" and "\n" not in done["message"]
    assert "dates_per_batch 16: a step needs ~" in done["message"]
    assert "of RAM free; the largest that fits is" in done["message"] and "(or auto)" in done["message"]
    assert "dates_per_batch 16" in panel.status.text()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
