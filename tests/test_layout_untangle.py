"""Reading large and deep graphs: a file whose stored positions are tangled opens laid out, the
layout keeps wires clear of the nodes they skip, and a grouped block's inside is laid out."""

from __future__ import annotations

from studio.core.document import Endpoint
from studio.core.edits import expand_block, graph_state, group_to_block
from studio.core.graph_file import load_graph
from studio.core.layout import (
    NODE_BOX,
    auto_layout,
    overlapping_nodes,
    tangled,
    untangle,
    wires_through_nodes,
)
from studio.core.validation import validate
from tests.conftest import GRAPHS


def test_the_encoder_blocks_stored_skip_wire_runs_through_a_node_and_the_layout_clears_it():
    graph = load_graph(GRAPHS / "blocks" / "bert_encoder.json")
    assert wires_through_nodes(graph) == [("positions.y -> skip.x1", "layers")]
    assert untangle(graph) == [None]
    assert wires_through_nodes(graph) == [] and overlapping_nodes(graph) == []


def test_stacked_nodes_are_found_and_untangled_in_inline_blocks_too():
    graph = load_graph(GRAPHS / "transformer" / "transformer_6x6.json")
    assert not tangled(graph)  # the file's own chain is readable as stored
    for node in graph.nodes.values():
        node.pos = (0.0, 0.0)  # every node on one spot
    assert len(overlapping_nodes(graph)) == len(graph.nodes) * (len(graph.nodes) - 1) // 2
    assert untangle(graph) == [None, "encoder"]  # the encoder block's skip wire ran through a node
    assert not tangled(graph) and not tangled(graph.blocks["encoder"].graph)
    spots = [n.pos for n in graph.nodes.values()]
    assert len(set(spots)) == len(spots)


def test_every_gallery_graph_and_block_lays_out_untangled():
    for path in sorted(GRAPHS.rglob("*.json")):
        graph = load_graph(path)
        auto_layout(graph)
        assert not tangled(graph), (path, overlapping_nodes(graph), wires_through_nodes(graph))


def test_a_grouped_blocks_ports_stand_clear_of_its_nodes_and_expanding_restores_them(registry):
    graph = load_graph(GRAPHS / "blocks" / "bert_encoder.json")
    auto_layout(graph)
    before = graph_state(graph)
    v = validate(graph, registry)
    shapes = {Endpoint(n, p): s for n, ports in v.out_shapes.items() for p, s in ports.items()}
    block_id = group_to_block(graph, ["positions", "layers", "skip"], shapes=shapes)
    inner = graph.blocks[graph.nodes[block_id].params["block"]].graph
    assert sorted(n.type for n in inner.nodes.values() if n.type.startswith("block_")) == [
        "block_input", "block_output"]
    assert overlapping_nodes(inner) == [] and wires_through_nodes(inner) == []
    width = NODE_BOX[0]
    inside = [n.pos[0] for n in inner.nodes.values() if not n.type.startswith("block_")]
    port_in = next(n for n in inner.nodes.values() if n.type == "block_input").pos[0]
    port_out = next(n for n in inner.nodes.values() if n.type == "block_output").pos[0]
    # a wire's gap on either side: room for its shape label between the ports
    assert min(inside) - (port_in + width) >= 120 and port_out - (max(inside) + width) >= 120
    expand_block(graph, block_id)
    assert graph_state(graph) == before
