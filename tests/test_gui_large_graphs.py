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
