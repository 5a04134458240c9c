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


def framed(tab) -> bool:
    """What F shows: every node, or (a graph too large for that) its start at the readable zoom with
    the minimap for the rest (issue 24, item 8)."""
    from studio.gui.view import READABLE_ZOOM

    if nodes_in_view(tab):
        return True
    visible = tab.view.mapToScene(tab.view.viewport().rect()).boundingRect()
    first = min(tab.scene.nodes.values(), key=lambda item: (item.pos().x(), item.pos().y()))
    return (abs(tab.view.transform().m11() - READABLE_ZOOM) < 1e-9 and visible.contains(first.sceneBoundingRect())
            and tab.view.minimap.isVisible())


def test_frame_all_shows_a_500_node_graph_readable_with_a_minimap(window, tmp_path, qtbot):  # noqa: F811
    from studio.gui.view import READABLE_ZOOM

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from gui import big_graph
    finally:
        sys.path.remove(str(ROOT / "bench"))
    big_graph(tmp_path / "big.json")
    tab = window.open_file(tmp_path / "big.json")
    qtbot.wait(10)
    tab.view.zoom(3.0)  # the user zoomed in; F brings the start back, at a zoom where names are read
    assert not nodes_in_view(tab)
    window.act_frame.trigger()
    qtbot.wait(10)
    assert tab.view.transform().m11() == pytest.approx(READABLE_ZOOM)  # the nodes draw their overview
    assert framed(tab)


def test_the_first_frame_holds_once_the_docks_are_in(window, qtbot):  # noqa: F811
    tab = window.open_file(GRAPHS / "multigrid" / "multigrid_31.json")
    qtbot.wait(10)
    window.finish_setup()  # the training, plots and runs docks take room from the canvas
    qtbot.wait(50)
    assert framed(tab)
    window.resize(1280, 800)
    qtbot.wait(50)
    assert framed(tab), "a smaller window keeps the graph framed until the user zooms"


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
    assert w.docks["plots"].height() >= 150, w.docks["plots"].height()
    assert w.docks["inspector"].height() >= 180 and w.docks["training"].height() >= 140
    assert w.tabifiedDockWidgets(w.docks["inspector"]) == [], "inspector and training are separate docks"
    assert w.docks["inspector"].isVisible() and w.docks["training"].isVisible()
    w.resizeDocks([w.docks["plots"]], [320], Qt.Orientation.Vertical)
    qtbot.wait(20)
    height = w.docks["plots"].height()
    assert w.close()
    again = make_window(qtbot, tmp_path)
    again.show()
    qtbot.waitExposed(again)
    again.finish_setup()
    qtbot.wait(50)
    assert abs(again.docks["plots"].height() - height) <= 6, (again.docks["plots"].height(), height)
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


# ---- 8: recovery offers only what was not saved --------------------------------------------------------

def test_recovery_does_not_offer_work_saved_with_save_as(window, tmp_path, monkeypatch, qtbot):  # noqa: F811
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from studio.gui.app import offer_recovery

    tab = window.new_document()
    tab.add_node("relu", QPointF(300, 0))
    window.save_recovery()
    assert len(window.recovery.entries()) == 1
    target = tmp_path / "saved_as.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    assert window.save_as()
    assert window.recovery.entries() == [], "the autosave of the unsaved document was left behind"
    # a file's autosave, then a save: a crash afterwards offers nothing
    tab.add_node("relu", QPointF(600, 0))
    window.save_recovery()
    assert len(window.recovery.entries()) == 1
    window.save()
    assert window.recovery.entries() == []
    # an autosave equal to the file on disk (the save happened, its discard did not) is not offered
    tab.add_node("tanh", QPointF(900, 0))
    window.save_recovery()
    window.save()
    stale = window.recovery.folder / "stale.recovery.json"
    import json

    from studio.core.graph_file import dumps_graph
    stale.write_text(json.dumps({"meta": {"path": str(target), "title": "x", "saved": "now"},
                                 "graph": dumps_graph(tab.graph)}))
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)
    offer_recovery(window)
    assert asked == [] and not stale.exists()


# ---- 9: discoverability ----------------------------------------------------------------------------------

def right_click(tab, scene_pos):
    viewport = tab.view.viewport()
    at = tab.view.mapFromScene(scene_pos)
    mouse(viewport, QEvent.Type.MouseButtonPress, at, buttons=Qt.MouseButton.RightButton,
          button=Qt.MouseButton.RightButton)
    mouse(viewport, QEvent.Type.MouseButtonRelease, at, buttons=Qt.MouseButton.NoButton,
          button=Qt.MouseButton.RightButton)


def menu_texts(main_window):
    return [a.text().replace("&", "") for a in main_window.last_context_menu.actions() if not a.isSeparator()]


def test_right_click_menus_on_canvas_node_and_wire(window):  # noqa: F811
    tab = window.open_file(GRAPHS / "residual_blocks.json")
    right_click(tab, QPointF(-3000, -3000))
    assert {"Add node…", "Paste", "Select All", "Frame All", "Auto-layout"} <= set(menu_texts(window))
    window.last_context_menu.close()
    right_click(tab, tab.scene.nodes["res_1"].sceneBoundingRect().center())
    texts = menu_texts(window)
    assert {"Open block", "Group into Block", "Copy", "Duplicate", "Delete"} <= set(texts)
    assert any(t.startswith("Disconnect (2 wires)") for t in texts)
    assert tab.scene.selected_nodes() == ["res_1"]
    window.last_context_menu.close()
    right_click(tab, tab.scene.nodes["down"].sceneBoundingRect().center())
    assert "Expand Block" in menu_texts(window)
    window.last_context_menu.close()
    edge = next(e for e in tab.graph.edges if str(e) == "gru_1.last -> head.x")
    right_click(tab, tab.scene.edges[edge].path().pointAtPercent(0.5))
    assert menu_texts(window)[0] == "Disconnect"
    window.last_context_menu.actions()[0].trigger()
    assert edge not in tab.graph.edges
    # a right drag pans and opens no menu
    window.last_context_menu = None
    before = tab.view.horizontalScrollBar().value()
    drag_right = [QPointF(0, 0), QPointF(-200, 0)]
    viewport = tab.view.viewport()
    a, b = tab.view.mapFromScene(drag_right[0]), tab.view.mapFromScene(drag_right[1])
    right, none = Qt.MouseButton.RightButton, Qt.MouseButton.NoButton
    mouse(viewport, QEvent.Type.MouseButtonPress, a, buttons=right, button=right)
    mouse(viewport, QEvent.Type.MouseMove, b, buttons=right, button=none)
    mouse(viewport, QEvent.Type.MouseButtonRelease, b, buttons=none, button=right)
    assert window.last_context_menu is None and tab.view.horizontalScrollBar().value() != before


def test_help_lists_every_shortcut(window):  # noqa: F811
    rows = dict(window.shortcut_rows())
    for name, keys in (("Group into Block", "Ctrl+G"), ("Expand Block", "Ctrl+Shift+G"), ("Quit", "Ctrl+Q"),
                       ("Frame All", "F"), ("Auto-layout", "L"), ("Keyboard Shortcuts", "Ctrl+/")):
        assert keys in rows[name], (name, rows.get(name))
    assert "Tab or Shift+A on the canvas" in rows.values()
    from PySide6.QtGui import QAction

    with_keys = {a.text().replace("&", "") for a in window.findChildren(QAction) if a.shortcuts()}
    assert with_keys <= set(rows)
    dialog = window.show_shortcuts()
    assert dialog.isVisible()
    dialog.close()


def test_a_wire_let_go_on_empty_canvas_adds_a_wired_node(window, qtbot):  # noqa: F811
    tab = window.open_file(GRAPHS / "default.json")
    start = tab.scene.nodes["relu_2"].port(True, "y").scenePos()
    drag(tab.view, start, start + QPointF(0, 400))
    assert window.search_popup.isVisible()
    window.search_popup.chosen.emit("tanh")
    added = [n for n in tab.graph.nodes if n.startswith("tanh")]
    assert added and any(str(e) == f"relu_2.y -> {added[0]}.x" for e in tab.graph.edges)


def test_description_breadcrumb_and_leaving_a_block(window):  # noqa: F811
    tab = window.open_file(GRAPHS / "cnn1d" / "cnn1d_15.json")
    assert tab.description.isVisible() or tab.description.text()
    assert "IC" in tab.description.text() + tab.description.toolTip()
    tab = window.open_file(GRAPHS / "residual_blocks.json")
    window.open_block(tab, "down")
    inner = window.current_tab()
    assert "residual_blocks.json" in inner.breadcrumb.text() and "downsample" in inner.breadcrumb.text()
    inner.breadcrumb.linkActivated.emit("file")
    assert window.current_tab() is tab
    window.close_tab(window.tabs.indexOf(tab))
    inner.breadcrumb.linkActivated.emit("file")  # the file's tab was closed: it opens again
    assert window.current_tab().scope is None and window.current_tab().document is inner.document


def test_cannot_train_is_said_where_the_user_looks(window, qtbot):  # noqa: F811
    window.finish_setup()
    tab = window.open_file(GRAPHS / "default.json")
    tab.document.edit("break", lambda g: g.nodes["head"].params.__setitem__("out_features", 2))
    window.docks["training"].hide()
    assert window.training.start() is False
    assert window.statusBar().currentMessage().startswith("Cannot train: ")
    assert window.docks["training"].isVisible()
    assert not window.training.stop_button.isEnabled()
    from PySide6.QtGui import QPalette

    from studio.gui.app import dark_palette

    palette = dark_palette()
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText)
    active = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText)
    assert disabled != active, "a disabled button must look disabled"


def test_renaming_to_a_taken_id_says_why(window, qtbot):  # noqa: F811
    tab = window.open_file(GRAPHS / "default.json")
    tab.scene.select_nodes(["conv_1"])
    inspector = window.inspector
    inspector.id_edit.setText("conv_2")
    inspector.id_edit.editingFinished.emit()
    assert not inspector.id_error.isHidden()
    assert "taken" in inspector.id_error.text() and "conv_2" in inspector.id_error.text()
    assert "conv_1" in tab.graph.nodes


# ---- 10: the cell stack's layers in a table ---------------------------------------------------------------

def test_cell_stack_layers_are_edited_in_a_table(window, qtbot):  # noqa: F811
    from PySide6.QtWidgets import QComboBox, QSpinBox

    from studio.gui.inspector import RecordTable

    tab = window.open_file(GRAPHS / "cells" / "convgru_1.json")
    tab.scene.select_nodes(["cells"])
    table = window.inspector.editors["layers"].widget
    assert isinstance(table, RecordTable)
    headers = [table.table.horizontalHeaderItem(c).text() for c in range(table.table.columnCount())]
    # short headers (the field's first word) so six columns fit the inspector; tooltips name the field
    assert headers == ["hidden", "mode 1", "mode 2", "kernel", "dilation", "padding"]
    assert table.table.rowCount() == 2
    layers = lambda: tab.graph.nodes["cells"].params["layers"]  # noqa: E731
    spin = table.table.cellWidget(1, headers.index("hidden"))
    assert isinstance(spin, QSpinBox) and spin.value() == 32
    spin.setValue(48)
    assert layers()[1]["hidden_size"] == 48 and layers()[0]["hidden_size"] == 32
    mode = table.table.cellWidget(0, headers.index("mode 1"))
    assert isinstance(mode, QComboBox) and mode.currentText() == "cross_section"
    mode.setCurrentText("pointwise")
    assert layers()[0]["modes"] == ["pointwise", "linear"]
    steps = tab.document.undo_stack.count()
    table.add_row()
    assert len(layers()) == 3 and layers()[2] == layers()[1]
    table.table.selectRow(0)
    table.move_row(1)
    assert layers()[1]["modes"] == ["pointwise", "linear"]
    table.table.selectRow(2)
    table.remove_row()
    assert len(layers()) == 2
    assert tab.document.undo_stack.count() == steps + 3
    tab.document.undo_stack.undo()
    assert len(layers()) == 3 and table.table.rowCount() == 3, "the table follows undo"
    assert tab.document.validation.ok


# ---- the Qt bindings themselves ----------------------------------------------------------------------------

def test_void_qt_calls_keep_the_reference_count_of_none(qapp):
    """PySide6 6.12.0 dropped a reference to None on each void call; on Python 3.11 a few thousand
    paints then aborted the process. The pinned bindings must not."""
    from PySide6.QtGui import QColor, QImage, QPainter, QPen

    image = QImage(8, 8, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    pen = QPen(QColor("red"), 2.0)
    before = sys.getrefcount(None)
    for _ in range(2000):
        painter.setPen(pen)
        pen.setCosmetic(True)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    after = sys.getrefcount(None)
    painter.end()
    assert after - before > -50, f"None lost {before - after} references in 6,000 void calls"
