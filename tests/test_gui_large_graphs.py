"""Large and deep graphs on the canvas, and the canvas's text (issue 24, items 8 and 9), one test per
fault as the user met it."""

from __future__ import annotations

import json

from tests.conftest import GRAPHS
from tests.test_gui_editor import window  # noqa: F401  (a fixture)


def node_rects_that_intersect(tab) -> list[tuple[str, str]]:
    items = sorted(tab.scene.nodes.items())
    found = []
    for i, (a, item_a) in enumerate(items):
        body_a = item_a.mapRectToScene(item_a.boundingRect().adjusted(12, 12, -12, -12))  # less the halo
        for b, item_b in items[i + 1:]:
            if body_a.intersects(item_b.mapRectToScene(item_b.boundingRect().adjusted(12, 12, -12, -12))):
                found.append((a, b))
    return found


def wires_through_node_rects(tab) -> list[tuple[str, str]]:
    found = []
    for edge, item in tab.scene.edges.items():
        path = item.path()
        for node_id, node in tab.scene.nodes.items():
            if node_id in (edge.src.node, edge.dst.node):
                continue
            body = node.mapRectToScene(node.boundingRect().adjusted(12, 12, -12, -12))
            if any(body.contains(path.pointAtPercent(i / 100)) for i in range(3, 98)):
                found.append((str(edge), node_id))
    return sorted(found)


def test_a_graph_whose_stored_positions_overlap_opens_laid_out(window, tmp_path):  # noqa: F811
    data = json.loads((GRAPHS / "two_branch.json").read_text())
    for node in data["nodes"].values():
        node["pos"] = [0, 0]  # written by a script that placed nothing
    path = tmp_path / "stacked.json"
    path.write_text(json.dumps(data))
    tab = window.open_file(path)
    assert node_rects_that_intersect(tab) == []
    assert wires_through_node_rects(tab) == []
    assert not tab.document.modified, "opening is no edit"
    assert "laid out the graph" in window.statusBar().currentMessage()


def test_the_encoder_blocks_skip_wire_runs_clear_of_the_nodes_it_skips(window):  # noqa: F811
    tab = window.open_file(GRAPHS / "blocks" / "bert_encoder.json")
    assert wires_through_node_rects(tab) == []
    six = window.open_file(GRAPHS / "transformer" / "transformer_6x6.json")
    window.open_block(six, "encoder_1")
    inner = window.current_tab()
    assert inner.scope == "encoder" and wires_through_node_rects(inner) == []


# ---- frame-all, overview names and the minimap ------------------------------------------------------

def overview_labels(tab) -> dict[str, str]:
    scale = tab.view.transform().m11()
    return {node_id: "\n".join(item.overview_label(scale)[0]) for node_id, item in tab.scene.nodes.items()}


def test_frame_all_on_a_deep_transformer_keeps_the_encoders_names_readable(window, qtbot):  # noqa: F811
    from studio.gui.scene import DETAIL_ZOOM
    from studio.gui.view import READABLE_ZOOM

    tab = window.open_file(GRAPHS / "transformer" / "transformer_6x6.json")
    window.finish_setup()  # the training, plots and runs docks take their room, as the user sees it
    qtbot.wait(50)
    tab.view.setFocus()
    window.act_frame.trigger()
    scale = tab.view.transform().m11()
    assert READABLE_ZOOM <= scale < DETAIL_ZOOM  # the overview, at a zoom where names are read
    labels = overview_labels(tab)
    assert [labels[f"encoder_{i}"] for i in range(1, 7)] == [f"encoder_{i}" for i in range(1, 7)]
    assert not any("…" in text for text in labels.values()), labels
    assert len(set(labels.values())) == len(labels)
    # the graph does not fit: its start is in view, the minimap shows the whole
    seen = tab.view.mapToScene(tab.view.viewport().rect()).boundingRect()
    assert seen.contains(tab.scene.nodes["bars"].sceneBoundingRect())
    qtbot.waitUntil(lambda: tab.view.minimap.isVisible())
    assert tab.view.viewport().geometry().contains(tab.view.minimap.geometry())


def test_frame_all_on_the_multibox_head_block_after_layout_is_no_smear(window, qtbot):  # noqa: F811
    from studio.gui.view import READABLE_ZOOM

    tab = window.open_file(GRAPHS / "blocks" / "multibox_head.json")
    window.resize(1280, 800)
    tab.view.setFocus()
    window.act_layout.trigger()
    window.act_frame.trigger()
    assert tab.view.transform().m11() >= READABLE_ZOOM
    labels = overview_labels(tab)
    assert len(set(labels.values())) == len(labels), "every node's name tells it from the others"
    assert all(labels[n].replace("\n", "") == n for n in labels), labels  # whole, on one line or two


def test_clicking_the_minimap_takes_the_view_there(window, qtbot):  # noqa: F811
    from PySide6.QtCore import QEvent, QPointF, Qt

    from tests.test_gui_editor import mouse

    tab = window.open_file(GRAPHS / "transformer" / "transformer_6x6.json")
    qtbot.wait(20)
    window.act_frame.trigger()
    minimap = tab.view.minimap
    qtbot.waitUntil(minimap.isVisible)
    score = tab.scene.nodes["score"].sceneBoundingRect().center()
    seen = tab.view.mapToScene(tab.view.viewport().rect()).boundingRect()
    assert not seen.contains(score)
    at = minimap.to_map(score).toPoint()
    mouse(minimap, QEvent.Type.MouseButtonPress, at)
    mouse(minimap, QEvent.Type.MouseButtonRelease, at, buttons=Qt.MouseButton.NoButton)
    centre = tab.view.mapToScene(tab.view.viewport().rect().center())
    assert (centre - score).manhattanLength() < 40 or tab.view.mapToScene(
        tab.view.viewport().rect()).boundingRect().contains(score)
    assert tab.view.mapToScene(tab.view.viewport().rect()).boundingRect().contains(score)
    # a drag along it pans on
    start = minimap.to_map(tab.scene.nodes["bars"].sceneBoundingRect().center()).toPoint()
    mouse(minimap, QEvent.Type.MouseButtonPress, at)
    mouse(minimap, QEvent.Type.MouseMove, start, button=Qt.MouseButton.NoButton)
    mouse(minimap, QEvent.Type.MouseButtonRelease, start, buttons=Qt.MouseButton.NoButton)
    seen = tab.view.mapToScene(tab.view.viewport().rect()).boundingRect()
    assert seen.contains(tab.scene.nodes["bars"].sceneBoundingRect().center()) and not seen.contains(score)
    assert not tab.view.keep_framed, "a look elsewhere is the user's: a resize does not frame it back"
    assert QPointF(minimap.to_scene(minimap.to_map(score))) == score or (
        minimap.to_scene(minimap.to_map(score)) - score).manhattanLength() < 1


def test_a_small_graph_needs_no_minimap(window, qtbot):  # noqa: F811
    tab = window.open_file(GRAPHS / "default.json")
    window.act_frame.trigger()
    qtbot.wait(20)
    assert tab.view.all_in_view() and not tab.view.minimap.isVisible()


# ---- a block file opened alone ----------------------------------------------------------------------

def test_a_block_file_opened_alone_shows_shapes_and_parameters(window):  # noqa: F811
    tab = window.open_file(GRAPHS / "blocks" / "bert_encoder.json")
    labels = {str(e): item.label for e, item in tab.scene.edges.items()}
    assert labels and all(labels.values()), labels
    assert labels["x.y -> embed.x"] == "N×240×3" and labels["cls.y -> y.x"] == "N×16"
    assert tab.document.validation.total_params > 0
    assert "parameters" in window.statusBar().currentMessage() or tab.document.laid_out
    assert "0 parameters" not in window.statusBar().currentMessage()
    assert "example input" in tab.breadcrumb.text() and "N×240×3" in tab.breadcrumb.text()
    # a block that needs 16 channels gets them, with no false problem
    conv = window.open_file(GRAPHS / "blocks" / "conv_relu.json")
    assert conv.document.validation.ok and conv.document.validation.total_params > 0
    assert all(item.label for item in conv.scene.edges.values())


def test_an_inline_block_no_node_uses_shows_shapes_for_its_declared_inputs(window, tmp_path):  # noqa: F811
    data = json.loads((GRAPHS / "two_branch.json").read_text())
    block = json.loads((GRAPHS / "blocks" / "bert_encoder.json").read_text())
    data["blocks"] = {"spare": {k: block[k] for k in ("kind", "name", "description", "nodes", "edges")}}
    path = tmp_path / "spare_block.json"
    path.write_text(json.dumps(data))
    tab = window.open_file(path)
    inner = window.add_document(tab.document, "spare")
    labels = {str(e): item.label for e, item in inner.scene.edges.items()}
    assert labels["x.y -> embed.x"] == "N×240×3" and all(labels.values()), labels


# ---- grouping ---------------------------------------------------------------------------------------

def test_a_freshly_grouped_block_is_laid_out_inside(window, qtbot):  # noqa: F811
    from PySide6.QtCore import Qt

    tab = window.open_file(GRAPHS / "default.json")
    tab.scene.select_nodes(["conv_2", "relu_2", "gru_1"])
    tab.view.setFocus()
    qtbot.keyClick(tab.view, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    block_id = tab.scene.selected_nodes()[0]
    window.open_block(tab, block_id)
    inner = window.current_tab()
    assert inner.scope == tab.graph.nodes[block_id].params["block"]
    assert node_rects_that_intersect(inner) == []
    assert wires_through_node_rects(inner) == []
    for edge, item in inner.scene.edges.items():  # shape labels lie between the ports, over none
        text, box = item.label_box()
        assert text == item.label, (str(edge), text, item.label)
        for node in inner.scene.nodes.values():
            for port in node.ports.values():
                assert not box.contains(port.scenePos()), (str(edge), node.node_id)


# ---- canvas text: the description, refusals, closing a block's tab ---------------------------------

def test_the_description_above_the_canvas_is_cut_with_the_whole_in_its_tooltip(window, qtbot):  # noqa: F811
    tab = window.open_file(GRAPHS / "transformer" / "transformer_6x6.json")
    full = " ".join(tab.graph.description.split())
    for width in (1600, 1280, 900):
        window.resize(width, 800)
        qtbot.wait(20)
        label = tab.description
        metrics = label.fontMetrics()
        assert metrics.horizontalAdvance(label.text()) <= label.contentsRect().width()
        assert label.text().endswith("…") and label.toolTip() == full
        assert full.startswith(label.text()[:-1])
        assert label.height() >= metrics.height(), "a whole line shows, not a cut one"


def test_a_refused_cycle_says_why_clear_of_the_nodes(window, qtbot):  # noqa: F811
    from tests.test_gui_editor import wire

    tab = window.open_file(GRAPHS / "default.json")
    qtbot.wait(20)
    before = {str(e) for e in tab.graph.edges}
    wire(tab, "relu_2.y", "conv_1.x")  # back to the start: a cycle
    assert {str(e) for e in tab.graph.edges} == before
    refusal = tab.scene.refusal
    assert refusal is not None and refusal.scene() is tab.scene and "cycle" in refusal.text()
    note = tab.scene.refusal_rect()
    assert note.height() * tab.view.transform().m11() >= refusal.font().pointSizeF(), "as large as text on screen"
    assert [n for n, item in tab.scene.nodes.items() if item.sceneBoundingRect().intersects(note)] == []
    near = tab.scene.nodes["conv_1"].port(False, "x").scenePos()
    assert abs(note.center().y() - near.y()) < 200, "next to where the wire was let go"


def test_closing_a_blocks_tab_goes_back_to_its_parent(window):  # noqa: F811
    six = window.open_file(GRAPHS / "transformer" / "transformer_6x6.json")
    window.open_file(GRAPHS / "default.json")
    window.open_file(GRAPHS / "two_branch.json")
    window.tabs.setCurrentWidget(six)
    window.open_block(six, "encoder_3")
    inner = window.current_tab()
    assert inner.scope == "encoder"
    window.close_tab(window.tabs.indexOf(inner))
    assert window.current_tab() is six
    # a block file opened from a node goes back to that node's file as well
    daily = window.open_file(GRAPHS / "daily_view" / "cnn1d_10_day_mean.json")
    block_node = next(n for n, node in daily.graph.nodes.items() if node.type in ("block", "per_day")
                      and daily.graph.blocks[node.params["block"]].path is not None)
    window.open_file(GRAPHS / "default.json")  # another tab between
    window.tabs.setCurrentWidget(daily)
    window.open_block(daily, block_node)
    opened = window.current_tab()
    assert opened.document is not daily.document
    window.close_tab(window.tabs.indexOf(opened))
    assert window.current_tab() is daily
