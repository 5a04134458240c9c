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


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(default_registry(), GRAPHS, settings=settings, recovery=Recovery(tmp_path / "recovery"))
    qtbot.addWidget(w)
    w.show()
    w.finish_setup()
    panel = w.training
    panel.stocks.setValue(30)
    panel.days.setValue(90)
    panel.epochs.setValue(1)
    panel.patience.setValue(0)
    yield w
    if panel.is_running():
        panel.stop(wait=True)


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
    assert seen[-1]["status"] == "cancelled"
    steps_after_stop = [r for r in seen if r["kind"] == "step"]
    assert len(steps_after_stop) <= 3
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)
    assert panel.status.text().startswith("cancelled")


def test_an_invalid_graph_is_not_started(window):
    tab = window.open_file(GRAPHS / "default.json")
    tab.document.edit("break", lambda g: g.nodes["head"].params.__setitem__("out_features", 4))
    assert window.training.start() is False
    assert window.training.status.text() == (
        "Cannot train: score.x: expects 1 channel (one score per stock), gets 4 from head.y")
