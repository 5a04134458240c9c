"""The editor as a person uses it (offscreen): palette, wires, inspector, undo, blocks, files."""

from __future__ import annotations

import itertools
import shutil

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QDropEvent, QMouseEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from studio.core.graph_file import dumps_graph, graph_to_json, load_graph
from studio.gui.main_window import MainWindow
from studio.gui.recovery import Recovery
from studio.gui.view import NODE_MIME
from studio.nodes import default_registry
from tests.conftest import GRAPHS


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    # closing the window at the end of a test must not wait on a question nobody answers
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(default_registry(), GRAPHS, settings=settings, recovery=Recovery(tmp_path / "recovery"))
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    return w


def mouse(widget, kind, pos: QPoint, buttons=Qt.MouseButton.LeftButton, button=Qt.MouseButton.LeftButton):
    event = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(view, start: QPointF, end: QPointF, steps: int = 6) -> None:
    """Press at ``start``, move with the button held, release at ``end`` (scene coordinates)."""
    viewport = view.viewport()
    a, b = view.mapFromScene(start), view.mapFromScene(end)
    mouse(viewport, QEvent.Type.MouseButtonPress, a)
    for i in range(1, steps + 1):
        p = a + (b - a) * i / steps
        mouse(viewport, QEvent.Type.MouseMove, p, button=Qt.MouseButton.NoButton)
    mouse(viewport, QEvent.Type.MouseButtonRelease, b, buttons=Qt.MouseButton.NoButton)


def port(tab, node_id: str, name: str, output: bool):
    return tab.scene.nodes[node_id].port(output, name).scenePos()


def wire(tab, src: str, dst: str) -> None:
    (a, pa), (b, pb) = src.split("."), dst.split(".")
    drag(tab.view, port(tab, a, pa, True), port(tab, b, pb, False))


def drop_type(tab, type_id: str, scene_pos: QPointF) -> None:
    mime = QMimeData()
    mime.setData(NODE_MIME, type_id.encode())
    pos = QPointF(tab.view.mapFromScene(scene_pos))
    # what Qt calls when a palette item is let go over the canvas (a real drag loop needs a window system)
    tab.view.dropEvent(QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                  Qt.KeyboardModifier.NoModifier))


def select(tab, *ids: str) -> None:
    tab.scene.select_nodes(list(ids))


def test_build_a_model_from_the_palette_wire_it_and_edit_params(window, qtbot):
    tab = window.new_document()
    graph = tab.graph
    assert set(graph.nodes) == {"bars", "score"}
    drop_type(tab, "conv1d", QPointF(240, 0))
    assert "conv1d_1" in graph.nodes and graph.nodes["conv1d_1"].pos == (240.0, 0.0)
    # the palette: search, then double-click a type to add it in the middle of the view
    window.palette_widget.search.setText("reduce_time")
    assert window.palette_widget.visible_types() == ["reduce_time"]
    tree = window.palette_widget.tree
    shown = [item for i in range(tree.topLevelItemCount()) for item in
             [tree.topLevelItem(i).child(j) for j in range(tree.topLevelItem(i).childCount())] if not item.isHidden()]
    tree.itemDoubleClicked.emit(shown[0], 0)
    assert "reduce_time_1" in tab.graph.nodes
    tab.graph.nodes["reduce_time_1"]
    # Tab opens the search popup: type a name, Enter adds it where the cursor is
    tab.view.setFocus()
    qtbot.keyClick(tab.view, Qt.Key.Key_Tab)
    assert window.search_popup.isVisible()
    qtbot.keyClicks(window.search_popup.edit, "linear")
    qtbot.keyClick(window.search_popup.edit, Qt.Key.Key_Return)
    assert "linear_1" in tab.graph.nodes
    # lay the new nodes out so their ports can be reached, then wire with the mouse
    tab.auto_layout()
    wire(tab, "bars.bars", "conv1d_1.x")
    wire(tab, "conv1d_1.y", "reduce_time_1.x")
    wire(tab, "reduce_time_1.y", "linear_1.x")
    wire(tab, "linear_1.y", "score.x")
    assert {str(e) for e in tab.graph.edges} == {"bars.bars -> conv1d_1.x", "conv1d_1.y -> reduce_time_1.x",
                                                 "reduce_time_1.y -> linear_1.x", "linear_1.y -> score.x"}
    # the inspector: out_features of the head must be 1 for a score
    v = tab.document.validation
    assert [str(p) for p in v.errors] == ["score.x: expects 1 channel (one score per stock), gets 16 from linear_1.y"]
    assert tab.scene.nodes["score"].severity == "error"
    select(tab, "linear_1")
    editor = window.inspector.editors["out_features"]
    editor.widget.setValue(1)
    assert tab.graph.nodes["linear_1"].params["out_features"] == 1
    assert tab.document.validation.ok
    assert tab.scene.nodes["score"].severity is None
    # every wire shows its shape
    labels = {str(e): item.label for e, item in tab.scene.edges.items()}
    assert labels["bars.bars -> conv1d_1.x"] == "N×240×3"
    assert labels["conv1d_1.y -> reduce_time_1.x"] == "N×238×16"
    assert labels["linear_1.y -> score.x"] == "N×1"
    assert window.statusBar().currentMessage().startswith("valid · ")


def test_a_wire_that_does_not_fit_is_refused_with_the_reason(window):
    tab = window.open_file(GRAPHS / "default.json")
    tab.add_node("conv1d", QPointF(1800, 300))
    edges_before = set(tab.graph.edges)
    undo_steps = tab.document.undo_stack.count()
    wire(tab, "gru_1.last", "conv1d_1.x")  # a vector into a convolution over a sequence
    assert set(tab.graph.edges) == edges_before
    message = window.statusBar().currentMessage()
    assert message == ("Refused: conv1d_1.x: expects a sequence (N×L×C), gets a vector per stock N×32 from gru_1.last")
    wire(tab, "head.y", "conv_1.x")  # would make a cycle
    assert "would make a cycle: head -> conv_1" in window.statusBar().currentMessage()
    assert set(tab.graph.edges) == edges_before
    assert tab.document.undo_stack.count() == undo_steps


def test_a_node_with_a_problem_is_marked_and_its_tooltip_says_why(window):
    tab = window.open_file(GRAPHS / "default.json")
    select(tab, "conv_1")
    window.inspector.editors["in_channels"].widget.setValue(5)
    item = tab.scene.nodes["conv_1"]
    assert item.severity == "error"
    assert "✖ conv_1.x: expects 5 channels, gets 3 from bars.bars" in item.toolTip()
    assert "5 channels, gets 3" in window.inspector.facts.text()


def test_undo_and_redo_walk_back_and_forth_through_a_sequence_of_edits(window):
    tab = window.open_file(GRAPHS / "default.json")
    doc = tab.document
    states = [graph_to_json(doc.graph)]

    def step(action):
        action()
        states.append(graph_to_json(doc.graph))

    step(lambda: tab.add_node("tanh", QPointF(400, 300)))
    step(lambda: tab.scene.connect_ports(*map(_ep, ("conv_1.y", "tanh_1.x"))))
    select(tab, "conv_2")
    step(lambda: window.inspector.editors["kernel_size"].widget.setValue(8))
    step(lambda: window.inspector.editors["kernel_size"].widget.setValue(2))  # same field: merged
    states.pop(-2)
    select(tab, "tanh_1", "dropout_1")
    step(lambda: _move(tab, ("tanh_1", "dropout_1"), QPointF(60, 40)))
    select(tab, "tanh_1")
    step(tab.delete_selection)
    assert all(a != b for a, b in itertools.pairwise(states)), "every step changed the document"
    assert doc.undo_stack.count() == len(states) - 1
    for expected in reversed(states[:-1]):
        window.act_undo.trigger()
        assert graph_to_json(doc.graph) == expected
    assert not doc.modified
    for expected in states[1:]:
        window.act_redo.trigger()
        assert graph_to_json(doc.graph) == expected
    assert doc.modified


def _ep(text):
    from studio.core.document import Endpoint

    return Endpoint.parse(text)


def _move(tab, ids, delta: QPointF) -> None:
    """Drag the first selected node by ``delta``: all selected nodes move, as one undo step."""
    item = tab.scene.nodes[ids[0]]
    start = item.sceneBoundingRect().center() - QPointF(0, item.boundingRect().height() / 2 - 12)
    drag(tab.view, start, start + delta)


def test_dragging_several_nodes_is_one_step_and_snaps_to_the_grid(window):
    tab = window.open_file(GRAPHS / "default.json")
    before = {i: tab.graph.nodes[i].pos for i in ("relu_1", "conv_2", "relu_2")}
    select(tab, "relu_1", "conv_2", "relu_2")
    _move(tab, ("relu_1",), QPointF(47, 93))
    after = {i: tab.graph.nodes[i].pos for i in before}
    for i in before:
        assert after[i] != before[i]
        assert all(v % 20 == 0 for v in after[i])
    assert tab.document.undo_stack.count() == 1
    window.act_undo.trigger()
    assert {i: tab.graph.nodes[i].pos for i in before} == before


def test_group_into_a_block_expand_it_and_edit_its_inside(window, qtbot):
    tab = window.open_file(GRAPHS / "two_branch.json")
    original = graph_to_json(tab.graph)
    select(tab, "conv_short", "conv_long", "add_1", "relu_1")
    window.act_group.trigger()
    assert tab.graph.nodes["block_1"].type == "block" and "block_1" in tab.graph.blocks
    assert tab.document.validation.ok
    # double-click opens the block's inside in a tab of its own
    tab.scene.nodeDoubleClicked.emit("block_1")
    inside = window.current_tab()
    assert inside is not tab and inside.scope == "block_1" and "conv_short" in inside.graph.nodes
    select(inside, "conv_long")
    window.inspector.editors["dilation"].widget.setValue(2)
    assert tab.graph.blocks["block_1"].graph.nodes["conv_long"].params["dilation"] == 2
    window.act_undo.trigger()
    window.tabs.setCurrentWidget(tab)
    select(tab, "block_1")
    window.act_expand.trigger()
    assert graph_to_json(tab.graph) == original
    qtbot.waitUntil(lambda: window.tabs.count() == 1)  # the block's tab closed with the block


def test_double_click_on_a_per_day_node_opens_its_block(window):
    tab = window.open_file(GRAPHS / "blocks" / "daily_view_per_day.json")
    assert tab.scene.nodes["each_day"].subtitle == "Per-day block · day_model"
    tab.scene.nodeDoubleClicked.emit("each_day")
    opened = window.current_tab()
    assert opened is not tab and opened.document.path.name == "day_conv.json"


def test_save_reopen_and_compare_bytes(window, tmp_path):
    path = tmp_path / "model.json"
    shutil.copy(GRAPHS / "default.json", path)
    tab = window.open_file(path)
    assert "[*]" in window.windowTitle() and not window.isWindowModified()
    select(tab, "gru_1")
    window.inspector.editors["hidden_size"].widget.setValue(48)
    assert window.isWindowModified() and window.tabs.tabText(0).endswith("*")
    assert window.save()
    assert not window.isWindowModified()
    text = path.read_text(encoding="utf-8")
    assert text == dumps_graph(tab.graph)
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # the atomic save left no temporary file
    window.close_tab(0)
    tab = window.open_file(path)
    assert dumps_graph(tab.graph) == text
    assert tab.graph.nodes["gru_1"].params["hidden_size"] == 48


def test_copy_paste_and_duplicate_also_across_files(window):
    first = window.open_file(GRAPHS / "two_branch.json")
    select(first, "conv_short", "add_1")
    window.act_duplicate.trigger()
    assert {"conv_short_1", "add_2"} <= set(first.graph.nodes)
    assert first.scene.selected_nodes() == ["add_2", "conv_short_1"]
    assert first.document.undo_stack.count() == 1
    select(first, "gru_1", "last_1")
    window.act_copy.trigger()
    second = window.new_document()
    window.act_paste.trigger()
    assert {"gru_1", "last_1"} <= set(second.graph.nodes)
    assert "gru_1.y -> last_1.x" in {str(e) for e in second.graph.edges}


def test_closing_unsaved_work_asks_first(window, monkeypatch):
    tab = window.open_file(GRAPHS / "default.json")
    tab.add_node("relu", QPointF(0, 300))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    assert not window.close()
    assert window.isVisible()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    assert window.close()


def test_delete_frame_and_layout(window):
    tab = window.open_file(GRAPHS / "default.json")
    select(tab, "dropout_1")
    tab.view.setFocus()
    window.act_delete.trigger()
    assert "dropout_1" not in tab.graph.nodes
    assert not any("dropout_1" in str(e) for e in tab.graph.edges)
    window.act_undo.trigger()
    assert "dropout_1" in tab.graph.nodes and len(tab.graph.edges) == 8
    window.act_layout.trigger()
    assert tab.document.undo_stack.count() in (1, 2)
    window.act_frame.trigger()
    visible = tab.view.mapToScene(tab.view.viewport().rect()).boundingRect()
    assert visible.contains(tab.scene.nodes["bars"].sceneBoundingRect())


def test_opening_a_broken_file_reports_it_and_keeps_going(window, tmp_path, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope", encoding="utf-8")
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    assert window.open_file(bad) is None
    assert warned and warned[0].startswith(f"{bad}: not JSON")
    assert load_graph(GRAPHS / "default.json")  # nothing else broke


def test_inspector_editors_keep_null_and_pairs(window):
    tab = window.new_document()
    for type_id in ("conv2d", "upsample", "batchnorm1d"):
        tab.add_node(type_id, QPointF(0, 300))
    select(tab, "conv2d_1")
    kernel = window.inspector.editors["kernel_size"]
    kernel.widget.setText("1, 5")
    kernel.widget.editingFinished.emit()
    assert tab.graph.nodes["conv2d_1"].params["kernel_size"] == [1, 5]
    kernel.widget.setText("1, 2, 3")
    kernel.widget.editingFinished.emit()
    assert tab.graph.nodes["conv2d_1"].params["kernel_size"] == [1, 5]
    assert "expects a pair" in kernel.error.text()
    padding = window.inspector.editors["padding"]
    padding.widget.setText("same")
    padding.widget.editingFinished.emit()
    assert tab.graph.nodes["conv2d_1"].params["padding"] == "same"
    select(tab, "batchnorm1d_1")
    momentum = window.inspector.editors["momentum"]
    assert tab.graph.nodes["batchnorm1d_1"].params["momentum"] == 0.1
    momentum.kind.use.setChecked(False)
    assert tab.graph.nodes["batchnorm1d_1"].params["momentum"] is None  # cumulative average
    momentum.kind.use.setChecked(True)
    assert tab.graph.nodes["batchnorm1d_1"].params["momentum"] == pytest.approx(0.1)
    select(tab, "upsample_1")
    corners = window.inspector.editors["align_corners"]
    assert corners.widget.checkState() == Qt.CheckState.PartiallyChecked


def test_hostile_files_open_with_a_message_not_a_hang(window, tmp_path, monkeypatch):
    """A FIFO, a device and a symlink loop opened in the studio: a warning naming the file, no tab, no
    hang (the FIFO would block an open() forever), and the window still works."""
    import os

    os.mkfifo(tmp_path / "fifo.json")
    os.symlink("/dev/zero", tmp_path / "zero.json")
    os.symlink("loop.json", tmp_path / "loop.json")
    window.open_file(GRAPHS / "default.json")  # an open document: the loop must not trip the lookup
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: warnings.append(text))
    for name, words in (("fifo.json", "not a regular file"), ("zero.json", "not a regular file"),
                        ("loop.json", "a loop of symbolic links")):
        assert window.open_file(tmp_path / name) is None
        assert name in warnings[-1] and words in warnings[-1]
    assert len(window.documents) == 1 and window.open_file(GRAPHS / "two_branch.json") is not None


def test_the_bar_window_is_edited_on_the_input_node_as_one_undo_step(window, qtbot):
    """Issue 24, item 2: the input node's inspector could not edit days, bars per day or features."""
    tab = window.open_file(GRAPHS / "default.json")
    select(tab, "bars")
    editor = window.inspector.window_editor
    assert editor is not None and editor.bars_per_day.value() == 24 and editor.days.value() == 10
    assert editor.features.text() == "close, volume, turnover"
    steps = tab.document.undo_stack.count()
    # typing 78 over 24: each key is an edit, together one undo step
    editor.bars_per_day.selectAll()
    qtbot.keyClicks(editor.bars_per_day, "78")
    assert tab.graph.input.bars_per_day == 78
    assert tab.document.undo_stack.count() == steps + 1
    shape = tab.document.validation.out_shapes["bars"]["bars"]
    assert shape.dims == (780, 3), "the shapes are inferred again from the new window"
    assert tab.document.validation.ok
    editor.days.setValue(5)
    assert tab.document.validation.out_shapes["bars"]["bars"].dims == (390, 3)
    editor.features.setText("close, volume")
    editor.features.editingFinished.emit()
    assert tab.graph.input.features == ["close", "volume"]
    assert tab.document.validation.out_shapes["bars"]["bars"].dims == (390, 2)
    assert tab.document.undo_stack.count() == steps + 3
    # a window that cannot be is refused where the user typed it, and nothing changes
    editor.features.setText("close, close")
    editor.features.editingFinished.emit()
    assert tab.graph.input.features == ["close", "volume"]
    assert "listed twice" in editor.error.text() and editor.error.isVisible()
    assert tab.document.undo_stack.count() == steps + 3
    for _ in range(3):
        tab.document.undo_stack.undo()
    assert (tab.graph.input.days, tab.graph.input.bars_per_day) == (10, 24)
    assert tab.graph.input.features == ["close", "volume", "turnover"]
    assert editor.bars_per_day.value() == 24 and editor.features.text() == "close, volume, turnover"
    assert tab.document.validation.out_shapes["bars"]["bars"].dims == (240, 3)


def test_the_inspector_at_1280x800_shows_parameters_and_four_layers_without_sideways_scrolling(window, qtbot):
    """Issue 24, item 5: at 1280 x 800 the inspector was 90 px high, showed a node's description and
    its table one row with a horizontal scrollbar."""
    window.resize(1203, 752)  # what a 1280 x 800 screen gets
    window.finish_setup()
    window._size_docks()
    qtbot.wait(50)
    tab = window.open_file(GRAPHS / "cells" / "convgru_10.json")
    select(tab, "cells")
    qtbot.wait(50)
    inspector = window.inspector
    assert inspector.viewport().height() >= 300, inspector.viewport().height()
    assert not inspector.horizontalScrollBar().isVisible()
    # parameters first: the description waits behind a toggle (and on the title's tooltip)
    assert inspector.doc is not None and not inspector.doc.isVisible()
    first = inspector.editors["cell"]
    assert first.mapTo(inspector.viewport(), QPoint(0, 0)).y() < 120
    table = inspector.editors["layers"].widget.table
    assert table.rowCount() == 4
    rows_shown = (table.viewport().height()) // table.rowHeight(0)
    assert rows_shown >= 4 and table.viewport().height() >= sum(table.rowHeight(r) for r in range(4))
    assert not table.horizontalScrollBar().isVisible()
    assert table.horizontalHeader().length() <= table.viewport().width()
    bottom = table.mapTo(inspector.viewport(), QPoint(0, table.height())).y()
    assert bottom <= inspector.viewport().height(), "the whole table is in view without scrolling"
    inspector.doc_toggle.click()
    assert inspector.doc.isVisible() and "Several layers" in inspector.doc.text()
