"""Close-only data in the studio (issue 27): imported bars without volume under a graph that reads volume are
said before Start in one line naming the graph's features and the files' columns, with the fix (read what the
data has) one undoable click away; the close-only graph trains on them."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.conftest import GRAPHS
from tests.test_close_only import close_only_folder
from tests.test_gui_training import inspected_import, records_of, studio_window


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    yield from studio_window(qtbot, tmp_path, monkeypatch)


def test_close_only_bars_under_a_volume_graph_are_said_before_start_and_fixed_in_one_click(
        window, qtbot, monkeypatch, tmp_path):
    folder = close_only_folder(tmp_path / "bars")
    tab = window.open_file(GRAPHS / "default.json")
    panel = window.training
    dialog = inspected_import(window, monkeypatch, folder)
    rows = {dialog.mapping.item(r, 0).text(): dialog.mapping.item(r, 1).text()
            for r in range(dialog.mapping.rowCount())}
    assert rows["volume"] == "not in the files" and rows["turnover"] == "not in the files"
    assert "features close" in dialog.summary.text()
    assert panel.fit_box.isVisible()
    message = panel.fit_message.text()
    assert message.startswith("The graph reads close, volume, turnover; the data has close only: the files have "
                              "no volume or turnover column (S00.csv has timestamp, close).")
    assert "\n" not in message
    assert not panel.resample_button.isVisible() and not panel.set_window_button.isVisible()
    assert panel.set_features_button.isVisible()
    assert panel.set_features_button.text() == "Set graph features to close"
    assert panel.start() is False and "the data has close only" in panel.status.text()
    assert not panel.is_running()
    # the graph's features to the data's: an undoable edit of the graph
    qtbot.mouseClick(panel.set_features_button, Qt.MouseButton.LeftButton)
    assert tab.graph.input.features == ["close"] and not panel.fit_box.isVisible()
    tab.document.undo_stack.undo()
    assert tab.graph.input.features == ["close", "volume", "turnover"] and panel.fit_box.isVisible()


def test_the_close_only_graph_trains_on_close_only_bars_from_the_studio(window, qtbot, monkeypatch, tmp_path):
    folder = close_only_folder(tmp_path / "bars")
    window.open_file(GRAPHS / "close_only.json")
    panel = window.training
    inspected_import(window, monkeypatch, folder)
    assert not panel.fit_box.isVisible()
    seen = records_of(panel)
    assert panel.start() is True
    qtbot.waitUntil(lambda: bool(seen) and seen[-1]["kind"] == "done", timeout=120_000)
    assert seen[-1]["status"] == "finished", seen[-1]["message"]


def test_the_import_dialog_reads_returns_only_files_and_maps_a_returns_column(window, tmp_path):
    from studio.gui.training import ImportDialog
    from tests.test_close_only import returns_folder

    folder = returns_folder(tmp_path / "bars")
    dialog = ImportDialog(window.training, {}, str(folder))
    assert dialog.inspect()
    rows = {dialog.mapping.item(r, 0).text(): dialog.mapping.item(r, 1).text()
            for r in range(dialog.mapping.rowCount())}
    assert rows["close"] == "index from the returns in column 'ret'"
    assert "close rebuilt from returns" in dialog.report.toPlainText()
    # a returns column under a name nobody uses is mapped in the dialog
    for path in folder.iterdir():
        path.write_text(path.read_text().replace("timestamp,ret", "timestamp,r1", 1))
    assert not dialog.inspect() and "no returns column" in dialog.summary.text()
    dialog.columns["returns"].setText("r1")
    assert dialog.settings() == {"returns": "r1"}
    assert dialog.inspect()
    assert "features close" in dialog.summary.text()
