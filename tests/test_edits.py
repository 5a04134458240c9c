"""Copy/paste, grouping a selection into a block and expanding it back (the editor's Ctrl+C/V/G)."""

from __future__ import annotations

import pytest
import torch

from studio.core.edits import EditError, copy_selection, expand_block, graph_state, group_to_block, paste
from studio.core.graph_file import dumps_graph, load_graph, loads_graph
from studio.core.validation import validate
from studio.torchgraph.builder import build_model
from tests.conftest import GRAPHS

BRANCHES = ["conv_short", "conv_long", "add_1", "relu_1"]


def outputs(graph, registry):
    model = build_model(graph, registry, seed=0).eval()
    x = torch.randn(1, 5, graph.input.length, len(graph.input.features), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model(x)


def test_group_then_expand_gives_back_the_same_document(registry):
    graph = load_graph(GRAPHS / "two_branch.json")
    before = graph_state(graph)
    v = validate(graph, registry)
    block_id = group_to_block(graph, BRANCHES, shapes={e: s for n, ports in v.out_shapes.items()
                                                        for e, s in _endpoints(n, ports)})
    assert set(BRANCHES).isdisjoint(graph.nodes) and graph.nodes[block_id].type == "block"
    inner = graph.blocks["block_1"].graph
    assert sorted(n.type for n in inner.nodes.values() if n.type.startswith("block_")) == [
        "block_input", "block_output"]  # one source outside (bars.bars feeds both convs), one result
    grouped = validate(graph, registry)
    assert grouped.ok, [str(p) for p in grouped.problems]
    assert grouped.out_shapes[block_id] == {"relu_1": v.out_shapes["relu_1"]["y"]}
    expand_block(graph, block_id)
    assert graph_state(graph) == before


def _endpoints(node, ports):
    from studio.core.document import Endpoint

    return [(Endpoint(node, port), shape) for port, shape in ports.items()]


def test_a_grouped_model_computes_the_same_function(registry):
    graph = load_graph(GRAPHS / "two_branch.json")
    expected = outputs(graph, registry)
    group_to_block(graph, BRANCHES)
    text = dumps_graph(graph)
    reread = loads_graph(text)
    assert validate(reread, registry).ok
    # the same seed builds the same weights in the same order only if node order is kept; compare by
    # copying the weights of the grouped nodes over instead
    flat = build_model(load_graph(GRAPHS / "two_branch.json"), registry, seed=0).eval()
    grouped = build_model(reread, registry, seed=3).eval()
    state = {}
    for key, value in flat.state_dict().items():
        head = key.split(".")[0]
        state[f"block_1.{key}" if head in BRANCHES else key] = value
    grouped.load_state_dict(state)
    x = torch.randn(1, 5, 240, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(grouped(x), expected, atol=1e-6)


def test_group_refuses_the_model_boundary_and_empty_selections():
    graph = load_graph(GRAPHS / "default.json")
    with pytest.raises(EditError, match="bars is the model's input"):
        group_to_block(graph, ["bars", "conv_1"])
    with pytest.raises(EditError, match="select the nodes"):
        group_to_block(graph, [])


def test_expanding_a_block_from_a_file_keeps_the_file_reference(registry):
    graph = load_graph(GRAPHS / "residual_blocks.json")
    added = expand_block(graph, "res_1")
    assert sorted(added) == ["conv", "relu", "skip"]
    assert "conv_relu" in graph.blocks  # res_2 still uses it, and it lives in its own file
    assert validate(graph, registry).ok
    added = expand_block(graph, "res_2")
    assert sorted(added) == ["res_2_conv", "res_2_relu", "res_2_skip"]
    assert validate(graph, registry).ok


def test_copy_and_paste_within_and_across_files(registry):
    source = load_graph(GRAPHS / "two_branch.json")
    text = copy_selection(source, ["conv_short", "conv_long", "add_1"])
    added = paste(source, text)
    assert sorted(added) == ["add_2", "conv_long_1", "conv_short_1"]
    assert {str(e) for e in source.edges if e.dst.node == "add_2"} == {
        "conv_short_1.y -> add_2.x1", "conv_long_1.y -> add_2.x2"}
    assert source.nodes["add_2"].pos == (source.nodes["add_1"].pos[0] + 40, source.nodes["add_1"].pos[1] + 40)
    # a block travels with the selection into another file
    blocks = load_graph(GRAPHS / "residual_blocks.json")
    target = load_graph(GRAPHS / "default.json")
    paste(target, copy_selection(blocks, ["down"]))
    assert "downsample" in target.blocks and target.nodes["down"].type == "block"
    with pytest.raises(EditError, match="no Model Studio nodes"):
        paste(target, "hello")


def test_the_bar_window_is_set_within_the_limits_a_file_is_read_with(registry):
    from studio.core.edits import set_input_window

    graph = load_graph(GRAPHS / "default.json")
    set_input_window(graph, bars_per_day=78)
    spec = graph.input
    assert (spec.days, spec.bars_per_day, spec.features) == (10, 78, ["close", "volume", "turnover"])
    assert validate(graph, registry).out_shapes["bars"]["bars"].dims == (780, 3)
    set_input_window(graph, days=3, features=["open", "close"])
    assert loads_graph(dumps_graph(graph)).input == graph.input
    for change, reason in (({"days": 0}, "days must be a whole number from 1 to 1,000"),
                           ({"bars_per_day": 10_001}, "bars_per_day must be a whole number"),
                           ({"days": True}, "days must be"),
                           ({"features": []}, "at least one feature"),
                           ({"features": ["close", "close"]}, "'close' is listed twice"),
                           ({"features": ["close\nx"]}, "letters, digits and _")):
        with pytest.raises(EditError, match=reason):
            set_input_window(graph, **change)
    assert (graph.input.days, graph.input.bars_per_day, graph.input.features) == (3, 78, ["open", "close"])
    block = load_graph(GRAPHS / "blocks" / "bottleneck1.json")
    with pytest.raises(EditError, match="a block has no bar window"):
        set_input_window(block, days=2)
