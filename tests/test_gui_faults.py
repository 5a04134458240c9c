"""The faults a first-hour user hit in the studio (issue: the studio a researcher lives in), one test
each, as the user met them."""

from __future__ import annotations

import os
import subprocess
import sys

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
