"""Training from the studio window (offscreen): live plots, stop, the runs table."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from studio.core.graph_file import dumps_graph
from studio.gui.main_window import MainWindow
from studio.gui.recovery import Recovery
from studio.nodes import default_registry
from tests.conftest import GRAPHS


def studio_window(qtbot, tmp_path, monkeypatch, *, days: int = 90, epochs: int = 1):
    """A real main window with its own settings, runs and recovery folders and a small synthetic market
    (30 stocks); a run still going at the end is stopped. Fixtures ``yield from`` it."""
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(default_registry(), GRAPHS, settings=settings, recovery=Recovery(tmp_path / "recovery"))
    qtbot.addWidget(w)
    w.show()
    w.finish_setup()
    panel = w.training
    panel.stocks.setValue(30)
    panel.days.setValue(days)
    panel.epochs.setValue(epochs)
    panel.patience.setValue(0)
    yield w
    if panel.is_running():
        panel.stop(wait=True)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    yield from studio_window(qtbot, tmp_path, monkeypatch)


def records_of(panel) -> list[dict]:
    seen: list[dict] = []
    panel.record.connect(seen.append)
    return seen


def test_train_one_small_epoch_and_watch_the_plots_fill(window, qtbot, tmp_path):
    tab = window.open_file(GRAPHS / "default.json")
    frozen = dumps_graph(tab.graph)
    panel, plots = window.training, window.plots
    seen = records_of(panel)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    # editing goes on while it trains: the run keeps the graph as it was at Start
    tab.add_node("relu", QPointF(0, 400))
    qtbot.waitUntil(lambda: bool(seen) and seen[-1]["kind"] == "done", timeout=180_000)
    done = seen[-1]
    assert done["status"] == "finished", done["message"]
    run_dir = tmp_path / "runs" / done["run_dir"].split("/")[-1]
    assert (run_dir / "graph.json").read_text() == frozen
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)
    assert [r["kind"] for r in seen].count("epoch") == 1
    plots.redraw()
    x, y = plots.curves["ic"].getData()
    assert len(x) == 1 and y[0] == pytest.approx(seen[[r["kind"] for r in seen].index("epoch")]["valid"]["ic"])
    _, pnl = plots.curves["long_short"].getData()
    assert len(pnl) > 5  # the test dates' PnL after the run
    assert plots.oracle_line.isVisible()
    assert len(plots.bars.opts["height"]) == len(pnl)
    assert panel.progress.value() == 1000 and "Test IC" in panel.status.text()
    # the runs table lists the run; selecting it overlays its PnL; the chart exports to PNG
    runs = window.runs
    qtbot.waitUntil(lambda: runs.table.rowCount() == 1, timeout=5_000)
    assert runs.table.item(0, 2).text() == "finished"
    runs.table.selectRow(0)
    assert len(runs.plot.listDataItems()) == 1
    out = tmp_path / "chart.png"
    runs.export_png(str(out))
    assert out.read_bytes()[:4] == b"\x89PNG"
    plots.export_png(str(tmp_path / "plots.png"))
    assert (tmp_path / "plots.png").stat().st_size > 1000
    metrics = json.loads((tmp_path / "runs" / runs.rows[0]["run"] / "metrics.json").read_text())
    assert runs.rows[0]["ic"] == metrics["splits"]["test"]["ic"]
    # the date count and the IC t-statistic are in the table; a small test split is marked
    test = metrics["splits"]["test"]
    headers = [runs.table.horizontalHeaderItem(c).text() for c in range(runs.table.columnCount())]
    dates_item = runs.table.item(0, headers.index("dates"))
    t_item = runs.table.item(0, headers.index("IC t"))
    assert t_item.data(Qt.ItemDataRole.UserRole) == pytest.approx(test["ic_t"])
    assert test["few_dates"], "90 synthetic days give a short test split"
    assert dates_item.text() == f"{test['dates']} !" and "fewer than 20" in dates_item.toolTip()
    assert "fewer than 20" in runs.table.item(0, headers.index("Sharpe")).toolTip()
    assert "the figures mean little" in panel.status.text()


def test_stop_ends_the_run_quickly_and_the_window_stays_usable(window, qtbot):
    window.open_file(GRAPHS / "default.json")
    panel = window.training
    panel.epochs.setValue(200)
    seen = records_of(panel)
    panel.start()
    qtbot.waitUntil(lambda: any(r["kind"] == "step" for r in seen), timeout=120_000)
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: seen[-1]["kind"] == "done", timeout=30_000)
    assert seen[-1]["status"] == "stopped"
    steps_after_stop = [r for r in seen if r["kind"] == "step"]
    assert len(steps_after_stop) <= 3
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)
    assert panel.status.text().startswith("stopped")


def test_an_invalid_graph_is_not_started(window):
    tab = window.open_file(GRAPHS / "default.json")
    tab.document.edit("break", lambda g: g.nodes["head"].params.__setitem__("out_features", 4))
    assert window.training.start() is False
    assert window.training.status.text() == (
        "Cannot train: score.x: expects 1 channel (one score per stock), gets 4 from head.y")


US_STOCKS = "us_stocks_5min"


def inspected_import(window, monkeypatch, path):
    """Training > Data > Imported bars… > the folder typed > Inspect > OK, as the user does it."""
    from studio.gui.training import ImportDialog

    shown = []

    def run_dialog(dialog):
        shown.append(dialog)
        dialog.path.setText(str(path))
        assert dialog.inspect()
        dialog.accept()
        return dialog.result()

    monkeypatch.setattr(ImportDialog, "exec", run_dialog)
    window.training.source.setCurrentIndex(1)
    window.training.source.activated.emit(1)
    return shown[0]


def test_the_import_dialog_shows_the_mapping_what_it_derived_and_every_note(window, shared_data):
    """Issue 24, item 2: the dialog showed one line of sizes; the mapping, the derived turnover and the
    notes were not to be seen."""
    from studio.gui.training import ImportDialog

    dialog = ImportDialog(window.training, {}, str(shared_data / US_STOCKS))
    assert dialog.inspect()
    rows = {dialog.mapping.item(r, 0).text(): (dialog.mapping.item(r, 1).text(), dialog.mapping.item(r, 2).text())
            for r in range(dialog.mapping.rowCount())}
    assert rows["close"] == ("column 'close'", "64") and rows["datetime"] == ("column 'datetime'", "64")
    assert rows["turnover"] == ("derived: close x volume", "64")
    assert rows["symbol"] == ("the file name", "64")
    assert "78 bars per day" in dialog.summary.text() and "64 symbols" in dialog.summary.text()
    text = dialog.report.toPlainText()
    assert dialog.report.isReadOnly()
    for note in dialog.described["notes"]:
        assert note in text, note  # every note whole, none cut off
    assert "files with turnover derived as close x volume" in text and "extended-hours bars dropped" in text
    # OK on a path that cannot be read keeps the dialog open and says why
    dialog.path.setText(str(shared_data / "no_such_folder"))
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted
    assert "Cannot read these bars" in dialog.summary.text() and "no such file or folder" in dialog.summary.text()


def test_real_minute_bars_that_do_not_fit_are_said_before_start_and_each_fix_is_one_click(
        window, qtbot, monkeypatch, shared_data):
    """Issue 24, item 2: us_stocks_5min (78 bars a day) under the default graph (24) failed at Start
    with a command-line flag for an answer."""
    tab = window.open_file(GRAPHS / "default.json")
    panel = window.training
    inspected_import(window, monkeypatch, shared_data / US_STOCKS)
    assert panel.source.currentIndex() == 1
    assert panel.import_label.text().startswith(f"Imported: {US_STOCKS} (64 symbols")
    assert panel.fit_box.isVisible()
    assert "The graph reads 24 bars a day, the data has 78" in panel.fit_message.text()
    assert panel.resample_button.text() == "Resample data to 26 bars/day"
    assert panel.set_window_button.text() == "Set graph window to 78 bars/day"
    assert panel.start() is False and "the data has 78" in panel.status.text()
    assert window.queue.add_open_graph() is None and "the data has 78" in window.queue.status.text()
    # the graph's window to the data's: an undoable edit of the graph
    qtbot.mouseClick(panel.set_window_button, Qt.MouseButton.LeftButton)
    assert tab.graph.input.bars_per_day == 78 and not panel.fit_box.isVisible()
    tab.document.undo_stack.undo()
    assert tab.graph.input.bars_per_day == 24 and panel.fit_box.isVisible()
    # or the data resampled for the run: the graph file stays as it is, the run reads 26 bars a day
    qtbot.mouseClick(panel.resample_button, Qt.MouseButton.LeftButton)
    assert panel.bars_per_day.currentData() == 26 and not panel.fit_box.isVisible()
    assert tab.graph.input.bars_per_day == 24
    seen = records_of(panel)
    assert panel.start() is True
    qtbot.waitUntil(lambda: bool(seen) and seen[-1]["kind"] == "done", timeout=300_000)
    assert seen[-1]["status"] == "finished", seen[-1]["message"]
    run_graph = json.loads((panel.runs_dir / seen[-1]["run_dir"].split("/")[-1] / "graph.json").read_text())
    assert run_graph["input"]["bars_per_day"] == 26
    config = json.loads((panel.runs_dir / seen[-1]["run_dir"].split("/")[-1] / "config.json").read_text())
    assert US_STOCKS in json.dumps(config)


def test_start_progress_and_status_stay_in_view_when_the_panel_scrolls(window, qtbot):
    """Issue 24, item 6: scrolling the training panel took Start and the progress out of view."""
    panel = window.training
    window.resizeDocks([window.docks["inspector"], window.docks["training"]], [500, 230], Qt.Orientation.Vertical)
    qtbot.wait(50)
    bar = panel.scroll.verticalScrollBar()
    assert bar.maximum() > 0, "the settings scroll in a short dock"
    bar.setValue(bar.maximum())
    qtbot.wait(20)
    for widget in (panel.start_button, panel.stop_button, panel.progress, panel.status):
        assert widget.isVisible() and not widget.visibleRegion().isEmpty(), widget
    assert not panel.header.isAncestorOf(panel.epochs)


def test_the_split_between_inspector_and_training_comes_back(window, qtbot, tmp_path):
    """Issue 24, item 5: the user sets how the right side is shared, and the studio remembers it."""
    window.resize(1203, 752)
    window._size_docks()
    qtbot.wait(50)
    window.resizeDocks([window.docks["inspector"], window.docks["training"]], [480, 220], Qt.Orientation.Vertical)
    qtbot.wait(50)
    inspector_height = window.docks["inspector"].height()
    window.save_layout()
    again = MainWindow(default_registry(), GRAPHS, settings=window.settings, recovery=Recovery(tmp_path / "again"))
    qtbot.addWidget(again)
    again.resize(1203, 752)
    again.show()
    again.finish_setup()
    qtbot.waitUntil(lambda: abs(again.docks["inspector"].height() - inspector_height) <= 4, timeout=3_000)


def test_quitting_while_a_large_model_trains_stops_the_run_within_seconds(window, qtbot):
    """Issue 24, item 1: Ctrl+Q and "Yes" while transformer_6x6 trained froze the window 20-30 s, then the
    process died with SIGABRT (a QThread destroyed while it ran), and the run stayed "running" for ever.
    Quit now stops the run inside its first step (tens of seconds long at the studio's defaults) and
    closes the window once the worker has ended; the run is stopped, its lock free, and it resumes."""
    import time
    from pathlib import Path

    from studio.train.engine import Trainer
    from studio.train.records import read_run

    window.open_file(GRAPHS / "transformer" / "transformer_6x6.json")
    panel = window.training
    panel.epochs.setValue(3)
    panel.stocks.setValue(60)  # 4 dates x 60 stocks: one training step takes about 25 s on a 2-core CPU
    seen = records_of(panel)
    assert panel.start()
    qtbot.waitUntil(lambda: any(r["kind"] == "start" for r in seen), timeout=120_000)
    qtbot.wait(300)  # into the first step's forward pass
    assert panel.is_running() and not any(r["kind"] == "step" for r in seen), "quit inside the first step"
    asked = time.monotonic()
    window.act_quit.trigger()
    assert window.isVisible() and panel.is_running(), "the window waits for the worker, live meanwhile"
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    took = time.monotonic() - asked
    print(f"quit while transformer_6x6 trained: the window closed {took:.2f} s after Ctrl+Q")
    assert panel.worker.isFinished() and not panel.is_running()
    done = seen[-1]
    assert done["kind"] == "done" and done["status"] == "stopped", done
    assert done["message"].startswith("stopped at epoch 1, step 1") and "no epoch finished" in done["message"]
    run = read_run(Path(done["run_dir"]))
    assert run["config"]["status"] == "stopped" and run["status"] == "stopped"
    # stopped before its first epoch ended, it resumes from its seed (not refused: nothing owns it now)
    resumed = Trainer.resume(done["run_dir"]).run(resume=True)
    assert next(resumed)["resumed_from"] == 0
    resumed.close()


def test_the_runs_table_shows_a_run_whose_process_died_as_interrupted(window, qtbot, tmp_path):
    """Issue 25, item 2: a run whose process was killed showed as "running" for ever. The status comes from
    the lock the live process holds, not from config.json."""
    from studio.train.run_lock import RunLock

    run_dir = tmp_path / "runs" / "20260101-000000-default"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"graph": {"name": "default"}, "status": "running"}))
    lock = RunLock.acquire(run_dir)  # as the process that trains it holds it
    runs = window.runs
    runs.refresh()
    assert runs.table.item(0, 2).text() == "running"
    lock.release()  # as the kernel does when that process dies
    runs.refresh()
    assert runs.table.item(0, 2).text() == "interrupted"


def test_stop_inside_the_first_step_of_a_large_model_leaves_a_stopped_run(window, qtbot):
    """Issue 24, item 1: Stop waited for the step under way (about 25 s here, minutes at the studio's
    defaults). It now ends the run within about a second, before its first epoch, as a stopped run that
    the Runs table shows as such."""
    import time

    window.open_file(GRAPHS / "transformer" / "transformer_6x6.json")
    panel = window.training
    panel.stocks.setValue(60)
    seen = records_of(panel)
    assert panel.start()
    qtbot.waitUntil(lambda: any(r["kind"] == "start" for r in seen), timeout=120_000)
    qtbot.wait(300)
    pressed = time.monotonic()
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)
    print(f"stop inside transformer_6x6's first step: ended {time.monotonic() - pressed:.2f} s after Stop")
    assert not panel.is_running() and not any(r["kind"] == "step" for r in seen)
    assert seen[-1]["status"] == "stopped" and panel.status.text().startswith("stopped")
    runs = window.runs
    qtbot.waitUntil(lambda: runs.table.rowCount() == 1, timeout=5_000)
    assert runs.table.item(0, 2).text() == "stopped"
