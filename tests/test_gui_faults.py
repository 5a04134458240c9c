"""The faults a first-hour user hit in the studio (issue: the studio a researcher lives in), one test
each, as the user met them."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt

from studio.core.graph_file import load_graph, save_graph
from tests.conftest import GRAPHS, ROOT
from tests.test_gui_editor import drag, mouse, window  # noqa: F401  (window is a fixture)

QUIT_AFTER_BLOCK_EDITS = r"""
import os, sys
from pathlib import Path
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox
from studio.gui.main_window import MainWindow
from studio.gui.recovery import Recovery
from studio.nodes import default_registry

root = Path(sys.argv[1])
graphs = Path(sys.argv[2])
app = QApplication([])
QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard)
w = MainWindow(default_registry(), graphs, settings=QSettings(str(root / "s.ini"), QSettings.Format.IniFormat),
               recovery=Recovery(root / "rec"))
w.resize(1400, 900); w.show(); QTest.qWaitForWindowExposed(w); w.activateWindow()
tab = w.open_file(graphs / "default.json")
app.processEvents()
tab.scene.select_nodes(["conv_1", "relu_1"])
tab.view.setFocus()
QTest.keyClick(tab.view, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
app.processEvents()
blocks = [n for n, node in tab.graph.nodes.items() if node.type == "block"]
assert blocks, "Ctrl+G grouped nothing"
w.open_block(tab, blocks[0])  # what a double-click on the block does
app.processEvents()
assert w.tabs.count() == 2
QTest.keyClick(w.tabs.currentWidget().view, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
app.processEvents()
assert w.tabs.count() == 1, w.tabs.count()
tab.scene.select_nodes(blocks)
tab.view.setFocus()
QTest.keyClick(tab.view, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
app.processEvents()
assert not [n for n, node in tab.graph.nodes.items() if node.type == "block"], "Ctrl+Shift+G expanded nothing"
QTimer.singleShot(0, lambda: QTest.keyClick(tab.view, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier))
QTimer.singleShot(3000, lambda: (print("still open"), app.exit(5)))
w.destroyed.connect(lambda: None)
code = app.exec()
print("exit", code)
sys.exit(code)
"""


def test_quit_after_editing_inside_a_closed_block_tab_exits_cleanly(tmp_path):
    """Open, select 2 nodes, Ctrl+G, open the block, Ctrl+W, select the block, Ctrl+Shift+G, Ctrl+Q,
    Discard: the process ends with exit 0 and nothing on stderr about deleted objects."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", QUIT_AFTER_BLOCK_EDITS, str(tmp_path), str(GRAPHS)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exit 0" in proc.stdout
    assert "Traceback" not in proc.stderr and "already deleted" not in proc.stderr, proc.stderr


def test_a_click_that_moves_nothing_is_not_an_edit(window, tmp_path):  # noqa: F811
    """A file whose positions are off the grid: a click on a node changes nothing; a drag snaps only
    the node dragged."""
    graph = load_graph(GRAPHS / "default.json")
    for i, node in enumerate(graph.nodes.values()):
        node.pos = (node.pos[0] + 7 + i, node.pos[1] + 13)
    path = tmp_path / "off_grid.json"
    save_graph(graph, path)
    tab = window.open_file(path)
    item = tab.scene.nodes["conv_1"]
    at = tab.view.mapFromScene(item.sceneBoundingRect().center())
    viewport = tab.view.viewport()
    mouse(viewport, QEvent.Type.MouseButtonPress, at)
    mouse(viewport, QEvent.Type.MouseButtonRelease, at, buttons=Qt.MouseButton.NoButton)
    assert item.isSelected()
    assert tab.document.undo_stack.count() == 0 and not tab.document.modified
    before = {n: tuple(node.pos) for n, node in tab.graph.nodes.items()}
    drag(tab.view, item.sceneBoundingRect().center(), item.sceneBoundingRect().center() + QPointF(95, 0))
    assert tab.document.undo_stack.count() == 1
    assert tab.document.undo_stack.text(0) == "Move 1 node"
    after = {n: tuple(node.pos) for n, node in tab.graph.nodes.items()}
    assert [n for n in after if after[n] != before[n]] == ["conv_1"]
    assert after["conv_1"][0] % 20 == 0 and after["conv_1"][1] % 20 == 0


# ---- 3: frame, layout, placing -----------------------------------------------------------------------

def nodes_in_view(tab) -> bool:
    visible = tab.view.mapToScene(tab.view.viewport().rect()).boundingRect()
    return all(visible.contains(item.sceneBoundingRect()) for item in tab.scene.nodes.values())


def test_frame_all_fits_a_500_node_graph(window, tmp_path, qtbot):  # noqa: F811
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from gui import big_graph
    finally:
        sys.path.remove(str(ROOT / "bench"))
    big_graph(tmp_path / "big.json")
    tab = window.open_file(tmp_path / "big.json")
    qtbot.wait(10)
    tab.view.zoom(3.0)  # the user zoomed in; F brings everything back
    assert not nodes_in_view(tab)
    window.act_frame.trigger()
    assert nodes_in_view(tab)
    assert tab.view.transform().m11() < 0.45  # small: the nodes draw their overview


def test_the_first_frame_holds_once_the_docks_are_in(window, qtbot):  # noqa: F811
    tab = window.open_file(GRAPHS / "multigrid" / "multigrid_31.json")
    qtbot.wait(10)
    window.finish_setup()  # the training, plots and runs docks take room from the canvas
    qtbot.wait(50)
    assert nodes_in_view(tab)
    window.resize(1280, 800)
    qtbot.wait(50)
    assert nodes_in_view(tab), "a smaller window keeps the graph framed until the user zooms"


def wire_passes_through_a_node(tab, edge) -> list[str]:
    item = tab.scene.edges[edge]
    path = item.path()
    crossed = set()
    for i in range(5, 96):
        point = path.pointAtPercent(i / 100)
        for node_id, node in tab.scene.nodes.items():
            if node_id not in (edge.src.node, edge.dst.node) and node.sceneBoundingRect().contains(point):
                crossed.add(node_id)
    return sorted(crossed)


def test_auto_layout_gives_skips_and_branches_lanes_of_their_own(window, qtbot):  # noqa: F811
    tab = window.new_document()
    for type_id in ("conv1d", "relu", "conv1d", "add"):
        tab.add_node(type_id, QPointF(0, 0))
    g = tab.graph
    tab.document.edit("wire", lambda g: [g.connect(a, b) for a, b in (
        ("bars.bars", "conv1d_1.x"), ("conv1d_1.y", "relu_1.x"), ("relu_1.y", "conv1d_2.x"),
        ("conv1d_2.y", "add_1.x1"), ("bars.bars", "add_1.x2"), ("add_1.y", "score.x"))])
    assert len({n.pos for n in g.nodes.values()}) == len(g.nodes), "new nodes landed on each other"
    tab.view.setFocus()
    window.act_layout.trigger()
    skip = next(e for e in g.edges if str(e) == "bars.bars -> add_1.x2")
    assert wire_passes_through_a_node(tab, skip) == []
    assert len({g.nodes[n].pos[0] for n in g.nodes}) == 6, "one column per layer"
    two = window.open_file(GRAPHS / "two_branch.json")
    window.act_layout.trigger()
    long, short = two.graph.nodes["conv_long"].pos, two.graph.nodes["conv_short"].pos
    assert long[0] == short[0] and long[1] != short[1], "parallel branches in parallel rows"
    for edge in two.graph.edges:
        assert wire_passes_through_a_node(two, edge) == [], edge


def test_a_new_node_never_lands_on_another(window):  # noqa: F811
    tab = window.open_file(GRAPHS / "default.json")
    conv = tab.scene.nodes["conv_1"]
    new = tab.add_node("relu", conv.pos())
    assert not tab.scene.nodes[new].sceneBoundingRect().intersects(conv.sceneBoundingRect())


# ---- 6: wires over nodes, shapes inside blocks, colours ---------------------------------------------

def test_wires_lie_above_nodes_and_show_shapes_inside_blocks(window):  # noqa: F811
    tab = window.open_file(GRAPHS / "residual_blocks.json")
    edge_z = {item.zValue() for item in tab.scene.edges.values()}
    node_z = {item.zValue() for item in tab.scene.nodes.values()}
    assert min(edge_z) > max(node_z)
    window.open_block(tab, "down")
    inner = window.current_tab()
    assert inner.scope == "downsample"
    labels = {str(e): item.label for e, item in inner.scene.edges.items()}
    assert labels["x.y -> conv.x"] == "N×240×16" and labels["conv.y -> relu.x"] == "N×60×16"


def test_a_selected_node_keeps_its_problem_outline(window, qtbot):  # noqa: F811
    from PySide6.QtGui import QColor, QImage, QPainter

    from studio.gui import theme

    def distance(a: QColor, b: QColor) -> int:
        return abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue())

    assert distance(theme.SELECTED, theme.WARNING) > 150 and distance(theme.SELECTED, theme.ERROR) > 150
    tab = window.open_file(GRAPHS / "default.json")
    tab.document.edit("break", lambda g: g.nodes["head"].params.__setitem__("out_features", 3))
    item = tab.scene.nodes["score"]
    assert item.severity == "error"
    item.setSelected(True)
    rect = item.sceneBoundingRect()
    image = QImage(int(rect.width()) * 2, int(rect.height()) * 2, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    tab.scene.render(painter, source=rect)
    painter.end()
    colours = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())]
    assert sum(distance(c, theme.ERROR) < 60 for c in colours) > 50, "the error outline is hidden"
    assert sum(distance(c, theme.SELECTED) < 40 for c in colours) > 50, "no selection halo"


# ---- 4: docks at 1280 x 800, layout kept -------------------------------------------------------------

def make_window(qtbot, tmp_path, settings_name="settings.ini"):
    from PySide6.QtCore import QSettings

    from studio.gui.main_window import MainWindow
    from studio.gui.recovery import Recovery
    from studio.nodes import default_registry

    settings = QSettings(str(tmp_path / settings_name), QSettings.Format.IniFormat)
    w = MainWindow(default_registry(), GRAPHS, settings=settings, recovery=Recovery(tmp_path / "recovery"))
    qtbot.addWidget(w)
    return w


def test_docks_have_room_at_1280x800_and_the_layout_comes_back(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QApplication, QMessageBox

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    room = QApplication.primaryScreen().availableGeometry()
    w = make_window(qtbot, tmp_path)
    assert w.width() <= room.width() and w.height() <= room.height(), "the window follows the screen"
    w.resize(1203, 752)  # what a 1280 x 800 screen gets
    w.show()
    qtbot.waitExposed(w)
    w.open_file(GRAPHS / "default.json")
    w.finish_setup()
    qtbot.wait(50)
    assert w.plots_dock.height() >= 150, w.plots_dock.height()
    assert w.inspector_dock.height() >= 180 and w.training_dock.height() >= 140
    assert w.tabifiedDockWidgets(w.inspector_dock) == [], "inspector and training are separate docks"
    assert w.inspector_dock.isVisible() and w.training_dock.isVisible()
    w.resizeDocks([w.plots_dock], [320], Qt.Orientation.Vertical)
    qtbot.wait(20)
    height = w.plots_dock.height()
    assert w.close()
    again = make_window(qtbot, tmp_path)
    again.show()
    qtbot.waitExposed(again)
    again.finish_setup()
    qtbot.wait(50)
    assert abs(again.plots_dock.height() - height) <= 6, (again.plots_dock.height(), height)
    assert again.settings.value("window/geometry") is not None  # restored, and fitted to the screen


# ---- 5: numbers sort as numbers -----------------------------------------------------------------------

def fake_run(folder, name, sharpe):
    import json

    run = folder / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"graph": {"name": name}, "status": "finished"}))
    test = {"ic": 0.01, "sharpe": sharpe, "dates": 40, "icir": 0.1}
    (run / "metrics.json").write_text(json.dumps({"splits": {"test": test}}))


def test_the_runs_table_sorts_figures_as_numbers(qtbot, tmp_path):
    from studio.gui.runs import COLUMNS, RunsWidget

    for name, sharpe in (("a", 9.5), ("b", 19.9), ("c", None), ("d", -3.0), ("e", 100.0)):
        fake_run(tmp_path / "runs", name, sharpe)
    runs = RunsWidget(tmp_path / "runs")
    qtbot.addWidget(runs)
    runs.refresh()
    col = [k for k, _ in COLUMNS].index("sharpe")

    def order():
        return [runs.table.item(r, col).text() for r in range(runs.table.rowCount())]

    runs.table.sortItems(col, Qt.SortOrder.DescendingOrder)
    assert order() == ["100.00", "19.90", "9.50", "-3.00", "-"]
    runs.table.sortItems(col, Qt.SortOrder.AscendingOrder)
    assert order() == ["-3.00", "9.50", "19.90", "100.00", "-"]


# ---- 7: plots a person can read ------------------------------------------------------------------------

def test_training_plots_have_axes_dates_legends_and_exports(qtbot, tmp_path):
    import csv

    import pyqtgraph as pg
    from PySide6.QtGui import QImage

    from studio.gui.plots import EpochAxis, PlotsWidget

    plots = PlotsWidget()
    qtbot.addWidget(plots)
    plots.resize(1200, 260)
    dates = ["2024-03-01", "2024-03-04", "2024-03-05"]
    plots.add_record({"kind": "start", "oracle_ic": {"valid": 0.1}})
    for epoch in (1, 2, 3):
        plots.add_record({"kind": "epoch", "epoch": epoch, "train_loss": 1.0 / epoch, "valid_loss": 1.1 / epoch,
                          "valid": {"ic": 0.01 * epoch, "rank_ic": 0.02}, "daily": {
                              "dates": dates, "ic": [0.1, -0.2, 0.05], "long": [0.01, 0.0, 0.02],
                              "short": [0.0, 0.01, -0.01], "long_short": [0.005, -0.005, 0.015]}})
    plots.redraw()
    for plot, x, y in ((plots.loss_plot, "epoch", "loss"), (plots.ic_plot, "epoch", "IC"),
                       (plots.daily_plot, "date", "IC"), (plots.pnl_plot, "date", "cumulative return")):
        assert plot.getAxis("bottom").labelText == x and plot.getAxis("left").labelText == y
    assert isinstance(plots.daily_plot.getAxis("bottom"), pg.DateAxisItem)
    assert isinstance(plots.loss_plot.getAxis("bottom"), EpochAxis)
    ticks = plots.loss_plot.getAxis("bottom").tickValues(0.6, 3.4, 400)
    assert ticks and all(float(v).is_integer() for _, values in ticks for v in values)
    x, _ = plots.curves["long_short"].getData()
    assert x[0] == np.datetime64("2024-03-01", "s").astype(np.int64)  # dates, not positions
    for legend, plot in zip(plots.legends, (plots.loss_plot, plots.ic_plot, plots.daily_plot, plots.pnl_plot),
                            strict=True):
        assert not plot.vb.sceneBoundingRect().intersects(legend.sceneBoundingRect()), "legend over data"
    styles = {k: plots.curves[k].opts["pen"].style() for k in ("long", "short", "long_short")}
    assert styles["short"] != styles["long"]
    png = tmp_path / "plots.png"
    plots.export_png(str(png))
    assert QImage(str(png)).width() == 1800
    written = plots.export_csv(str(tmp_path / "plots.csv"))
    with open(written[0]) as fh:
        epochs = list(csv.DictReader(fh))
    with open(written[1]) as fh:
        daily = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in epochs] == [1, 2, 3] and float(epochs[2]["ic"]) == pytest.approx(0.03)
    assert [r["date"] for r in daily] == dates and float(daily[1]["ic"]) == -0.2


def test_the_pnl_overlay_exports_large_and_light(qtbot, tmp_path):
    import json

    from PySide6.QtGui import QImage

    from studio.gui.runs import RunsWidget

    fake_run(tmp_path / "runs", "a", 1.0)
    (tmp_path / "runs" / "a" / "daily.csv").write_text(
        "date,split,ic,rank_ic,long,short,long_short,turnover\\n"
        "2024-01-02,test,0.1,0.1,0.01,0.0,0.005,0.2\\n2024-01-03,test,0.1,0.1,0.01,0.0,0.004,0.2\\n")
    runs = RunsWidget(tmp_path / "runs")
    qtbot.addWidget(runs)
    runs.refresh()
    runs.table.selectRow(0)
    assert len(runs.plot.listDataItems()) == 1
    dark, light = tmp_path / "dark.png", tmp_path / "light.png"
    runs.export_png(str(dark), light=False)
    runs.export_png(str(light), light=True)
    image = QImage(str(light))
    assert image.width() == 1600
    corner = image.pixelColor(3, 3)
    assert (corner.red(), corner.green(), corner.blue()) == (255, 255, 255)
    corner = QImage(str(dark)).pixelColor(3, 3)
    assert corner.red() < 60
    assert json.loads((tmp_path / "runs" / "a" / "config.json").read_text())["status"] == "finished"
