"""The validator's problems, one test per kind: the exact line each one gives (``str(problem)``, which
is "where: message"), for small hand-made faults in the gallery graphs.

Most tests start from graphs/default.json:
bars -> conv_1 (same padding, 16 ch) -> relu_1 -> conv_2 (k=4, stride 4, 32 ch) -> relu_2 -> gru_1
-> dropout_1 -> head (1 feature) -> score, on a 240-bar window of 3 features.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable

import pytest

from studio.core.document import Graph, InputSpec
from studio.core.graph_file import load_graph, loads_graph
from studio.core.validation import Validation, validate
from studio.torchgraph.builder import BuildError, build
from tests.conftest import GRAPHS

RELU = {"inplace": False}
NOT_AN_ID = "a node id must be a Python identifier (letters, digits, _; not starting with a digit)"
LINEAR_8 = {"in_features": None, "out_features": 8, "bias": True}


@pytest.fixture
def default() -> Graph:
    return load_graph(GRAPHS / "default.json")


@pytest.fixture
def residual() -> Graph:
    return load_graph(GRAPHS / "residual_blocks.json")


def lines(v: Validation) -> list[str]:
    return [str(p) for p in v.problems]


def check(graph: Graph, registry) -> list[str]:
    return lines(validate(graph, registry))


def splice(graph: Graph, src: str, dst: str, node_id: str, type_id: str, params: dict,
           in_port: str = "x", out_port: str = "y") -> None:
    """Put a new node on the wire src -> dst."""
    edge = next(e for e in graph.edges if str(e.src) == src and str(e.dst) == dst)
    graph.disconnect(edge)
    graph.add_node(type_id, 1, params, node_id=node_id)
    graph.connect(src, f"{node_id}.{in_port}")
    graph.connect(f"{node_id}.{out_port}", dst)


def from_json(name: str, edit: Callable[[dict], object]) -> Graph:
    """A gallery file edited as JSON, then read (for faults only a file can have)."""
    doc = json.loads((GRAPHS / name).read_text(encoding="utf-8"))
    edit(doc)
    return loads_graph(json.dumps(doc), source=name, base_dir=GRAPHS)


def test_gallery_graphs_have_no_problems(registry):
    for path in sorted(GRAPHS.rglob("*.json")):
        assert check(load_graph(path), registry) == [], path.name


# ---- nodes and parameters ------------------------------------------------------------------------

def test_unknown_node_type_suggests_the_closest(default, registry):
    default.nodes["relu_1"].type = "reul"
    v = validate(default, registry)
    assert lines(v) == ['relu_1: unknown node type "reul" (did you mean "relu"?)']
    assert v.problems[0].node == "relu_1"
    assert v.problems[0].severity == "error"


def test_unknown_node_type_without_a_close_one(default, registry):
    default.nodes["relu_1"].type = "wavelet_packet"
    assert check(default, registry) == ['relu_1: unknown node type "wavelet_packet"']


@pytest.mark.parametrize(("node", "param", "value", "line"), [
    ("conv_1", "kernel_size", "5", 'conv_1.kernel_size: expects an integer in [1, 4096], gets "5"'),
    ("conv_1", "kernel_size", 5.0, "conv_1.kernel_size: expects an integer in [1, 4096], gets 5.0"),
    ("conv_1", "kernel_size", True, "conv_1.kernel_size: expects an integer in [1, 4096], gets true"),
    ("conv_1", "bias", "yes", 'conv_1.bias: expects true or false, gets "yes"'),
    ("conv_1", "bias", None, "conv_1.bias: expects true or false, gets null"),
    ("dropout_1", "p", "0.1", 'dropout_1.p: expects a number in [0.0, 1.0], gets "0.1"'),
    ("gru_1", "input_size", [3], "gru_1.input_size: expects an integer in [1, 65536] or null "
                                 "(from the input wire), gets [3]"),
    ("conv_1", "padding", 1.5, 'conv_1.padding: expects an integer in [0, 4096] or one of "same", "valid", '
                               "gets 1.5"),
], ids=["str-for-int", "float-for-int", "bool-for-int", "str-for-bool", "null-for-bool", "str-for-float",
        "list-for-optional-int", "float-for-int-or-choice"])
def test_wrong_param_type(default, registry, node, param, value, line):
    default.nodes[node].params[param] = value
    assert check(default, registry) == [line]


@pytest.mark.parametrize(("node", "param", "value", "line"), [
    ("conv_1", "kernel_size", 0, "conv_1.kernel_size: expects an integer in [1, 4096], gets 0"),
    ("conv_1", "kernel_size", 4097, "conv_1.kernel_size: expects an integer in [1, 4096], gets 4097"),
    ("conv_1", "out_channels", 10**30, "conv_1.out_channels: expects an integer in [1, 65536], "
                                       "gets 1000000000000000000000000000000"),
    ("dropout_1", "p", 1.5, "dropout_1.p: expects a number in [0.0, 1.0], gets 1.5"),
    ("gru_1", "dropout", 1.0, "gru_1.dropout: expects a number >= 0.0 below 1.0, gets 1.0"),
    ("gru_1", "num_layers", -1, "gru_1.num_layers: expects an integer in [1, 64], gets -1"),
])
def test_out_of_range_param(default, registry, node, param, value, line):
    default.nodes[node].params[param] = value
    assert check(default, registry) == [line]


@pytest.mark.parametrize(("node", "param", "value", "line"), [
    ("conv_1", "padding_mode", "mirror", 'conv_1.padding_mode: expects one of "zeros", "reflect", '
                                         '"replicate", "circular", gets "mirror"'),
    ("conv_1", "padding", "full", 'conv_1.padding: expects an integer in [0, 4096] or one of "same", '
                                  '"valid", gets "full"'),
    ("conv_1", "padding_mode", "Zeros", 'conv_1.padding_mode: expects one of "zeros", "reflect", '
                                        '"replicate", "circular", gets "Zeros"'),
])
def test_bad_choice(default, registry, node, param, value, line):
    default.nodes[node].params[param] = value
    assert check(default, registry) == [line]


def test_missing_param_names_its_default(default, registry):
    del default.nodes["conv_1"].params["bias"]
    del default.nodes["dropout_1"].params["p"]
    assert check(default, registry) == [
        "conv_1.bias: missing parameter (default true)",
        "dropout_1.p: missing parameter (default 0.1)",
    ]


def test_unknown_param_lists_the_known_ones(default, registry):
    default.nodes["conv_1"].params["padding_type"] = "same"
    default.nodes["score"].params["scale"] = 2
    assert check(default, registry) == [
        "conv_1.padding_type: unknown parameter (a conv1d has in_channels, out_channels, kernel_size, "
        "stride, padding, dilation, groups, bias, padding_mode)",
        "score.scale: unknown parameter (an output has no parameters)",
    ]


def test_node_type_version_newer_than_known(default, registry):
    default.nodes["relu_1"].version = 2
    assert check(default, registry) == [
        "relu_1: written for relu version 2; this studio knows version 1 (update Model Studio)"]


@pytest.mark.parametrize(("new_id", "line"), [
    ("class", "class: a node id cannot be a Python keyword"),
    ("None", "None: a node id cannot be a Python keyword"),
    ("forward", "forward: this name is taken by torch.nn.Module or the generated forward()"),
    ("training", "training: this name is taken by torch.nn.Module or the generated forward()"),
    ("self", "self: this name is taken by torch.nn.Module or the generated forward()"),
    ("_hidden", "_hidden: a node id cannot start with _"),
    ("2nd", f"2nd: {NOT_AN_ID}"),
    ("relu-1", f"relu-1: {NOT_AN_ID}"),
    ("réLU", f"réLU: {NOT_AN_ID}"),
])
def test_invalid_node_id(default, registry, new_id, line):
    default.rename_node("relu_1", new_id)
    assert check(default, registry) == [line]


# ---- wires ---------------------------------------------------------------------------------------

def test_dangling_edge_to_a_missing_node(default, registry):
    default.connect("conv_1.y", "ghost.x")
    v = validate(default, registry)
    assert lines(v) == ['edge conv_1.y -> ghost.x: no node "ghost"']
    assert v.problems[0].node == "conv_1"  # the end that exists is marked


def test_dangling_edge_from_a_missing_node(registry):
    graph = Graph(input=InputSpec(["close"], 2, 3))
    graph.add_node("input", 1, {}, node_id="bars")
    graph.add_node("linear", 1, {"in_features": None, "out_features": 1, "bias": True}, node_id="head")
    graph.add_node("reduce_time", 1, {"mode": "last"}, node_id="last")
    graph.add_node("add", 1, {"inputs": 2}, node_id="mix")
    graph.add_node("output", 1, {}, node_id="score")
    graph.connect("bars.bars", "head.x")
    graph.connect("head.y", "last.x")
    graph.connect("last.y", "mix.x1")
    graph.connect("ghost.y", "mix.x2")
    graph.connect("last.y", "mix.x2")
    graph.connect("mix.y", "score.x")
    # only the wire is wrong: it does not count as a second wire into mix.x2
    assert check(graph, registry) == ['edge ghost.y -> mix.x2: no node "ghost"']


def test_unknown_input_port(default, registry):
    default.connect("conv_1.y", "relu_1.inp")
    v = validate(default, registry)
    assert lines(v) == ['edge conv_1.y -> relu_1.inp: relu relu_1 has no input port "inp" (inputs: x)']
    assert v.problems[0].node == "relu_1"


def test_unknown_output_port(default, registry):
    default.add_node("relu", 1, RELU, node_id="extra")
    default.connect("gru_1.hidden", "extra.x")
    default.connect("extra.y", "dropout_1.x")
    default.disconnect(next(e for e in default.edges if str(e.src) == "gru_1.last"))
    v = validate(default, registry)
    assert lines(v)[0] == ('edge gru_1.hidden -> extra.x: gru gru_1 has no output port "hidden" '
                           "(outputs: y, last)")
    assert v.problems[0].node == "gru_1"


def test_unknown_port_on_a_node_with_no_inputs(default, registry):
    default.connect("conv_1.y", "bars.x")
    assert check(default, registry) == ['edge conv_1.y -> bars.x: input bars has no input port "x" '
                                        "(inputs: none)"]


def test_two_wires_into_one_input(default, registry):
    default.connect("bars.bars", "relu_1.x")
    v = validate(default, registry)
    assert lines(v) == ["relu_1.x: 2 wires into one input (from bars.bars, conv_1.y); merge them with an Add "
                        "or Concat node"]
    assert v.problems[0].node == "relu_1"


def test_unconnected_required_input(default, registry):
    default.disconnect(next(e for e in default.edges if str(e.dst) == "conv_2.x"))
    v = validate(default, registry)
    assert [str(p) for p in v.errors] == ["conv_2.x: required input is not connected"]
    # what is cut off upstream is computed for nothing: a warning for each node
    assert [str(p) for p in v.warnings] == [
        "bars: its result reaches no output (it is left out of the model)",
        "conv_1: its result reaches no output (it is left out of the model)",
        "relu_1: its result reaches no output (it is left out of the model)",
    ]


def test_add_with_more_inputs_than_wires(default, registry):
    default.add_node("add", 1, {"inputs": 3}, node_id="mix")
    default.disconnect(next(e for e in default.edges if str(e.dst) == "conv_2.x"))
    default.connect("relu_1.y", "mix.x1")
    default.connect("conv_1.y", "mix.x2")
    default.connect("mix.y", "conv_2.x")
    assert check(default, registry) == ["mix.x3: required input is not connected"]


def test_cycle(default, registry):
    # relu_2 is fed back through an Add into conv_2: conv_2 -> relu_2 -> mix -> conv_2
    splice(default, "relu_1.y", "conv_2.x", "mix", "add", {"inputs": 2}, in_port="x1")
    default.connect("relu_2.y", "mix.x2")
    v = validate(default, registry)
    assert lines(v) == ["cycle: conv_2 -> relu_2 -> mix -> conv_2 (a wire leads back to where it came from)"]
    assert v.problems[0].node == "conv_2"


def test_self_loop(default, registry):
    splice(default, "relu_1.y", "conv_2.x", "mix", "add", {"inputs": 2}, in_port="x1")
    default.connect("mix.y", "mix.x2")
    assert check(default, registry) == ["cycle: mix -> mix (a wire leads back to where it came from)"]


# ---- the model's boundary ------------------------------------------------------------------------

def test_no_output_node(default, registry):
    default.remove_node("score")
    assert check(default, registry) == ["graph: no output node (a model ends in one score output)"]


def test_two_output_nodes(default, registry):
    default.add_node("output", 1, {}, node_id="score_2")
    default.connect("head.y", "score_2.x")
    assert check(default, registry) == ["graph: 2 output nodes (score, score_2); a model has one"]


def test_no_input_node(default, registry):
    default.remove_node("bars")
    assert check(default, registry) == [
        "conv_1.x: required input is not connected",
        "graph: no input node (a model starts from the bar window)",
    ]


def test_block_nodes_in_a_model(default, registry):
    default.add_node("block_output", 1, {"name": "y"}, node_id="out")
    default.connect("head.y", "out.x")
    assert check(default, registry) == ["out: a block_output node belongs inside a block, not in a model"]


# ---- shapes --------------------------------------------------------------------------------------

def test_explicit_in_channels_mismatch(default, registry):
    splice(default, "relu_1.y", "conv_2.x", "linear_1", "linear", LINEAR_8)
    default.nodes["conv_2"].params["in_channels"] = 3
    v = validate(default, registry)
    assert lines(v) == ["conv_2.x: expects 3 channels, gets 8 from linear_1.y"]
    assert v.problems[0].node == "conv_2"


def test_in_features_mismatch_of_one_channel(default, registry):
    default.nodes["head"].params["in_features"] = 1
    assert check(default, registry) == ["head.x: expects 1 channel, gets 32 from dropout_1.y"]


def test_vector_into_a_gru(default, registry):
    splice(default, "relu_2.y", "gru_1.x", "last_step", "reduce_time", {"mode": "last"})
    assert check(default, registry) == ["gru_1.x: expects a sequence (N×L×C), gets vec N×32 from last_step.y"]


def test_sequence_into_the_output(default, registry):
    default.disconnect(next(e for e in default.edges if str(e.dst) == "score.x"))
    default.connect("relu_2.y", "score.x")
    v = validate(default, registry)
    assert [str(p) for p in v.errors] == [
        "score.x: expects a vector per stock (N×C) or a score per stock (N), gets seq N×60×32 from relu_2.y"]


def test_output_of_more_than_one_channel(default, registry):
    default.nodes["head"].params["out_features"] = 2
    assert check(default, registry) == [
        "score.x: expects 1 channel (one score per stock), gets 2 from head.y"]


def test_add_of_different_shapes(default, registry):
    splice(default, "relu_1.y", "conv_2.x", "mix", "add", {"inputs": 2}, in_port="x1")
    default.connect("bars.bars", "mix.x2")
    assert check(default, registry) == [
        "mix.x2: expects seq N×240×16 (like x1), gets seq N×240×3 from bars.bars"]


def test_conv_output_length_would_be_zero(default, registry):
    default.nodes["conv_2"].params["kernel_size"] = 241
    assert check(default, registry) == [
        "conv_2.kernel_size: output length would be 0: input length 240 is shorter than the dilated kernel "
        "241 plus padding 0"]


def test_dilated_conv_output_length_would_be_zero(default, registry):
    default.nodes["conv_2"].params.update(kernel_size=5, dilation=60, stride=1)
    assert check(default, registry) == [
        "conv_2.kernel_size: output length would be 0: input length 240 is shorter than the dilated kernel "
        "241 plus padding 0"]


def test_reflect_padding_too_large(default, registry):
    default.nodes["conv_2"].params.update(padding=240, padding_mode="reflect")
    assert check(default, registry) == [
        "conv_2.padding: reflect padding 240 needs an input longer than that, gets length 240"]


def test_circular_padding_too_large(default, registry):
    default.nodes["conv_2"].params.update(padding=241, padding_mode="circular")
    assert check(default, registry) == [
        "conv_2.padding: circular padding 241 cannot exceed the input length 240"]


def test_same_padding_with_stride_2(default, registry):
    default.nodes["conv_1"].params["stride"] = 2
    assert check(default, registry) == ['conv_1.padding: "same" padding needs stride 1, gets stride 2']


def test_groups_must_divide_out_channels(default, registry):
    default.nodes["conv_1"].params["groups"] = 5
    assert check(default, registry) == ["conv_1.groups: groups 5 must divide out_channels 16"]


def test_groups_must_divide_in_channels(default, registry):
    default.nodes["conv_1"].params["groups"] = 2  # divides 16 out, not the 3 features in
    assert check(default, registry) == ["conv_1.groups: groups 2 must divide in_channels 3"]


def test_inplace_relu_on_a_fan_out(default, registry):
    # a residual around relu_2: an in-place ReLU would overwrite the skip connection's value
    default.nodes["relu_2"].params["inplace"] = True
    splice(default, "relu_2.y", "gru_1.x", "skip", "add", {"inputs": 2}, in_port="x1")
    default.connect("conv_2.y", "skip.x2")
    v = validate(default, registry)
    assert lines(v) == [
        "relu_2.inplace: would overwrite conv_2.y, which also feeds other nodes; turn inplace off"]
    assert v.problems[0].node == "relu_2"


def test_inplace_relu_on_the_model_input(default, registry):
    # the caller's tensor (a cached batch, say) would change under it
    splice(default, "bars.bars", "conv_1.x", "relu_0", "relu", {"inplace": True})
    assert check(default, registry) == [
        "relu_0.inplace: would overwrite bars.bars, the model's input, which belongs to the caller; turn "
        "inplace off"]


def test_inplace_dropout_on_a_view_of_the_model_input(default, registry):
    splice(default, "bars.bars", "conv_1.x", "view_0", "day_view", {"bars_per_day": None})
    splice(default, "view_0.y", "conv_1.x", "drop_0", "dropout", {"p": 0.1, "inplace": True})
    splice(default, "drop_0.y", "conv_1.x", "seq_0", "seq_view", {})
    assert check(default, registry) == [
        "drop_0.inplace: would overwrite bars.bars (view_0.y is a view of it), the model's input, which "
        "belongs to the caller; turn inplace off"]


def test_inplace_relu_on_a_block_input(registry):
    # inside a block, its input is a tensor of the graph around it, which may feed other nodes there
    block = from_json("blocks/conv_relu.json", lambda doc: None)
    splice(block, "x.y", "conv.x", "relu_0", "relu", {"inplace": True})
    block.disconnect(next(e for e in block.edges if str(e.dst) == "skip.x1"))
    block.connect("conv.y", "skip.x1")
    assert check(block, registry) == [
        "relu_0.inplace: would overwrite x.y, the block's input, which belongs to the graph around it; turn "
        "inplace off"]


def test_inplace_relu_without_a_fan_out_is_fine(default, registry):
    default.nodes["relu_2"].params["inplace"] = True
    assert check(default, registry) == []


def test_model_too_large(default, registry):
    wide = {"in_features": None, "out_features": 65536, "bias": True}
    splice(default, "dropout_1.y", "head.x", "wide_1", "linear", wide)
    splice(default, "wide_1.y", "head.x", "wide_2", "linear", wide)
    assert check(default, registry) == [
        "graph: the model would have 4.3e+09 parameters (limit 2e+09; largest: wide_2)"]


def test_node_whose_result_reaches_no_output_is_a_warning(default, registry):
    default.add_node("relu", 1, RELU, node_id="extra")
    default.connect("conv_1.y", "extra.x")
    v = validate(default, registry)
    assert lines(v) == ["extra: its result reaches no output (it is left out of the model)"]
    assert v.problems[0].severity == "warning"
    assert v.problems[0].node == "extra"
    assert v.ok
    assert "extra" not in v.useful
    build(default, registry)  # a warning does not stop the build


def test_unused_input_node_is_not_warned_about(default, registry):
    default.add_node("input", 1, {}, node_id="bars_2")
    assert check(default, registry) == []


# ---- blocks --------------------------------------------------------------------------------------

def test_unknown_block_name(residual, registry):
    residual.nodes["down"].params["block"] = "downsampel"
    v = validate(residual, registry)
    assert lines(v) == ['down.block: no block named "downsampel" (blocks: conv_relu, downsample)']
    assert v.problems[0].node == "down"


def test_block_inner_problem_is_reported_with_the_block_name(residual, registry):
    residual.blocks["downsample"].graph.nodes["conv"].params["kernel_size"] = 0
    v = validate(residual, registry)
    assert lines(v) == [
        # the instance, marked in the model, points to the block's problems...
        'down.block: block "downsample" has problems (listed as "block downsample > ...")',
        # ...which are listed once, prefixed with the block's name
        "block downsample > conv.kernel_size: expects an integer in [1, 4096], gets 0",
    ]
    assert [p.node for p in v.problems] == ["down", None]


def test_block_inner_unknown_type(residual, registry):
    residual.blocks["downsample"].graph.nodes["relu"].type = "rleu"
    assert check(residual, registry) == [
        'down.block: block "downsample" has problems (listed as "block downsample > ...")',
        'block downsample > relu: unknown node type "rleu" (did you mean "relu"?)',
    ]


def test_block_whose_inner_shape_fails_for_the_given_input(residual, registry):
    # valid on its own; the instance feeds it 16 channels, and its conv insists on 5
    residual.blocks["downsample"].graph.nodes["conv"].params["in_channels"] = 5
    v = validate(residual, registry)
    assert lines(v) == ['down: inside block "downsample": conv.x: expects 5 channels, gets 16 from x.y']
    assert v.problems[0].node == "down"


def test_block_whose_inner_length_fails_for_the_given_input(residual, registry):
    residual.blocks["downsample"].graph.nodes["conv"].params["kernel_size"] = 241
    assert check(residual, registry) == [
        'down: inside block "downsample": conv.kernel_size: output length would be 0: input length 240 is '
        "shorter than the dilated kernel 241 plus padding 0"]


def test_block_instance_with_an_unknown_port(residual, registry):
    residual.connect("bars.bars", "down.skip")
    assert check(residual, registry) == [
        'edge bars.bars -> down.skip: block down has no input port "skip" (inputs: x)']


def test_block_file_problem_is_reported_with_the_block_name(tmp_path, registry):
    shutil.copytree(GRAPHS, tmp_path / "graphs")
    block_file = tmp_path / "graphs" / "blocks" / "conv_relu.json"
    doc = json.loads(block_file.read_text(encoding="utf-8"))
    doc["nodes"]["skip"]["params"]["inputs"] = 17
    block_file.write_text(json.dumps(doc), encoding="utf-8")
    line = "skip.inputs: expects an integer in [2, 16], gets 17"
    assert check(load_graph(tmp_path / "graphs" / "residual_blocks.json"), registry) == [
        # res_2, after res_1, is not inferred
        'res_1.block: block "conv_relu" has problems (listed as "block conv_relu > ...")',
        f"block conv_relu > {line}",
    ]


@pytest.mark.parametrize(("port", "message"), [
    ("mask", '"mask" is taken by the block\'s forward(self, ..., mask)'),
    ("self", '"self" is taken by the block\'s forward(self, ..., mask)'),
    ("class", 'a port name cannot be a Python keyword, gets "class"'),
    ("ℌ", 'a port name must be ASCII letters, digits and _, gets "ℌ"'),
    ("2x", 'expects a Python identifier, gets "2x"'),
])
def test_block_input_name_that_cannot_be_an_argument(residual, registry, port, message):
    # the block's inputs are the arguments of its generated forward(self, <inputs>, mask=None)
    residual.blocks["downsample"].graph.nodes["x"].params["name"] = port
    wire = next(e for e in residual.edges if str(e.dst) == "down.x")
    residual.disconnect(wire)
    residual.connect(wire.src, f"down.{port}")
    assert check(residual, registry) == [
        'down.block: block "downsample" has problems (listed as "block downsample > ...")',
        f"block downsample > x.name: {message}",
    ]


def test_missing_block_file(registry):
    graph = from_json("residual_blocks.json",
                      lambda d: d["blocks"].__setitem__("conv_relu", {"path": "blocks/gone.json"}))
    assert check(graph, registry) == [
        f"blocks.conv_relu: cannot read block file: {GRAPHS / 'blocks' / 'gone.json'}: no such file",
        'res_1.block: block "conv_relu" could not be read (see its problem)',
        'res_2.block: block "conv_relu" could not be read (see its problem)',
    ]


def test_block_that_contains_itself(residual, registry):
    inner = residual.blocks["downsample"].graph
    splice(inner, "conv.y", "relu.x", "again", "block", {"block": "downsample"})
    lines_ = check(residual, registry)
    assert 'block downsample > again.block: block "downsample" contains itself' in lines_


# ---- load problems -------------------------------------------------------------------------------

def test_edge_that_is_not_node_port(registry):
    graph = from_json("default.json", lambda d: d["edges"].append({"from": "conv_1", "to": "relu_1.x"}))
    v = validate(graph, registry)
    assert lines(v) == ['graph.edges[8]: expects "node.port", gets "conv_1"']
    assert v.problems[0].node is None


def test_edge_that_is_not_an_edge(registry):
    graph = from_json("default.json", lambda d: d["edges"].append(["conv_1.y", "relu_1.x"]))
    assert check(graph, registry) == [
        'graph.edges[8]: an edge must be {"from": "node.port", "to": "node.port"}, gets ["conv_1.y", '
        '"relu_1.x"]']


def test_node_without_type(registry):
    graph = from_json("default.json", lambda d: d["nodes"]["relu_1"].pop("type"))
    v = validate(graph, registry)
    assert lines(v)[0] == 'relu_1: "type" must be a node type id, gets null'
    assert v.problems[0].node == "relu_1"
    assert not v.ok


def test_node_without_type_is_reported_once(registry):
    graph = from_json("default.json", lambda d: d["nodes"]["relu_1"].pop("type"))
    assert check(graph, registry) == ['relu_1: "type" must be a node type id, gets null']


@pytest.mark.parametrize(("edit", "line"), [
    (lambda d: d["nodes"]["relu_1"].__setitem__("version", "1"),
     'relu_1: "version" must be an integer >= 1, gets "1"'),
    (lambda d: d["nodes"]["relu_1"].__setitem__("params", [False]),
     'relu_1: "params" must be an object, gets [false]'),
    (lambda d: d["nodes"].__setitem__("relu_1", "relu"),
     'relu_1: a node must be an object with type, version, params, pos, gets "relu"'),
], ids=["version", "params", "node"])
def test_unreadable_node(registry, edit, line):
    assert check(from_json("default.json", edit), registry)[0] == line


@pytest.mark.parametrize(("edit", "line"), [
    (lambda d: d["nodes"]["relu_1"].__setitem__("pos", "left"),
     'relu_1: "pos" must be [x, y], gets "left" (placed at 0, 0)'),
    (lambda d: d["nodes"]["relu_1"].__setitem__("colour", "red"), 'relu_1: unknown field "colour" (dropped)'),
    (lambda d: d.__setitem__("author", "me"), 'graph: unknown field "author" (dropped)'),
    (lambda d: d["edges"].append({"from": "conv_1.y", "to": "relu_1.x"}),
     "edge conv_1.y -> relu_1.x: the same wire appears twice (kept once)"),
    (lambda d: d.__setitem__("name", 7), "graph.name: expects a string, gets 7"),
], ids=["pos", "node-field", "graph-field", "same-wire", "name"])
def test_load_problem_that_keeps_the_rest(registry, edit, line):
    assert check(from_json("default.json", edit), registry) == [line]


@pytest.mark.parametrize(("edit", "line"), [
    (lambda d: d.pop("input"),
     'graph.input: a model needs an input spec: {"features": [...], "days": D, "bars_per_day": B}'),
    (lambda d: d["input"].__setitem__("days", 0),
     "graph.input.days: expects an integer in [1, 1000], gets 0"),
    (lambda d: d["input"].__setitem__("features", ["close", "close"]),
     "graph.input.features: feature names must be unique"),
])
def test_bad_input_spec(registry, edit, line):
    # without a window the bar window node has no shape to give: said once, at the node
    assert check(from_json("default.json", edit), registry) == [
        line, "bars: the graph has no input spec (features, days, bars_per_day)"]


def test_load_problem_inside_an_inline_block(registry):
    graph = from_json("residual_blocks.json",
                      lambda d: d["blocks"]["downsample"]["nodes"]["relu"].__setitem__("pos", None))
    assert check(graph, registry) == [
        'block downsample > relu: "pos" must be [x, y], gets null (placed at 0, 0)']


# ---- all at once, and once each ------------------------------------------------------------------

def test_all_problems_are_returned_at_once(default, registry):
    default.nodes["conv_1"].params["kernel_size"] = "5"
    default.nodes["relu_2"].type = "relux"
    default.remove_node("score")
    assert check(default, registry) == [
        'conv_1.kernel_size: expects an integer in [1, 4096], gets "5"',
        'relu_2: unknown node type "relux" (did you mean "relu"?)',
        "graph: no output node (a model ends in one score output)",
    ]


def test_independent_faults_in_parallel_branches_are_all_reported(registry):
    graph = load_graph(GRAPHS / "two_branch.json")
    graph.nodes["conv_long"].params.update(dilation=120, padding_mode="reflect")  # pads 240 at each end
    graph.nodes["conv_short"].params["groups"] = 3  # divides 3 features in, not 16 out
    graph.nodes["last_1"].params["mode"] = "first"
    assert check(graph, registry) == [
        # parameters first (node by node), then shapes (in the order the model computes them)
        "conv_short.groups: groups 3 must divide out_channels 16",
        'last_1.mode: expects one of "last", "mean", "max", gets "first"',
        "conv_long.padding: reflect padding 240 needs an input longer than that, gets length 240",
    ]


def test_fault_upstream_is_not_reported_again_downstream(default, registry):
    default.nodes["conv_1"].params.update(kernel_size=300, padding=0)
    # this would also be wrong, but it cannot be known while conv_1 has no shape
    default.nodes["head"].params["in_features"] = 7
    v = validate(default, registry)
    assert lines(v) == [
        "conv_1.kernel_size: output length would be 0: input length 240 is shorter than the dilated kernel "
        "300 plus padding 0"]
    assert v.order == ["bars"]  # nothing after conv_1 was inferred
    with pytest.raises(BuildError, match=r"cannot build: conv_1\.kernel_size: output length would be 0"):
        build(default, registry, validation=v)


def test_param_fault_upstream_is_not_reported_again_downstream(default, registry):
    default.nodes["relu_1"].params["inplace"] = "no"
    assert check(default, registry) == ['relu_1.inplace: expects true or false, gets "no"']


def test_wire_from_a_missing_port_is_reported_once(default, registry):
    edge = next(e for e in default.edges if str(e.dst) == "relu_1.x")
    default.disconnect(edge)
    default.connect("conv_1.out", "relu_1.x")
    assert check(default, registry) == [
        'edge conv_1.out -> relu_1.x: conv1d conv_1 has no output port "out" (outputs: y)']


def test_a_block_document_cannot_be_built_on_its_own(registry):
    block = load_graph(GRAPHS / "blocks" / "conv_relu.json")
    assert validate(block, registry).ok
    with pytest.raises(BuildError, match=r"conv_relu\.json: cannot build: graph: a block cannot be built "
                                         r"on its own; use it in a model$"):
        build(block, registry)


def test_settings_that_do_nothing_are_warnings(default, registry):
    default.nodes["gru_1"].params["dropout"] = 0.3
    default.nodes["dropout_1"].params["p"] = 1.0
    v = validate(default, registry)
    assert v.ok
    assert [(str(p), p.severity) for p in v.problems] == [
        ("dropout_1.p: 1 zeroes every element while training", "warning"),
        ("gru_1.dropout: acts between stacked layers only: with num_layers 1 it does nothing (use a Dropout "
         "node after the GRU)", "warning"),
    ]


def limited_linear(limit: int):
    """A fresh declaration of the linear node that refuses more than ``limit`` out_features. It says it
    lives in studio.nodes, as the built-ins do: the validator reuses checks only of those."""
    from studio.nodes.layers import Linear

    class LimitedLinear(Linear):
        __module__ = "studio.nodes.layers"

        def check_params(self, params):
            return [("out_features", f"more than {limit}")] if params["out_features"] > limit else []

    return LimitedLinear()


def one_linear_node() -> Graph:
    from studio.core.document import Node

    return Graph(nodes={"linear_1": Node("linear_1", "linear", 1, dict(LINEAR_8))})


def registry_of(*declarations):
    from studio.core.registry import Registry

    registry = Registry()
    for declaration in declarations:
        registry.register(declaration)
    return registry


def test_a_reused_node_check_is_never_another_declaration_s():
    """Node checks are reused by declaration, type id, version and params: a declaration with the same
    type id and version but other rules (a pack reloaded, a new registry), alive beside the first or made
    after it was collected (when its address may be reused), is checked by its own rules."""
    import gc

    graph = one_linear_node()
    refused = "linear_1.out_features: more than 4"
    strict, lenient = registry_of(limited_linear(4)), registry_of(limited_linear(16))
    assert refused in lines(validate(graph, strict))
    assert refused not in lines(validate(graph, lenient))
    assert refused in lines(validate(graph, strict))
    del strict, lenient
    for limit in (4, 16, 4, 16, 4, 16):
        gc.collect()
        assert (refused in lines(validate(graph, registry_of(limited_linear(limit))))) == (limit < 8), limit


def test_the_node_check_cache_keeps_no_declaration_alive():
    """The cache holds its declarations weakly: a registry dropped takes its checks with it."""
    import gc
    import weakref

    from studio.core import validation as validation_module

    graph = one_linear_node()
    declaration = limited_linear(16)
    validate(graph, registry_of(declaration))
    assert len(validation_module._NODE_CHECKS[declaration]) == 1
    gone = weakref.ref(declaration)
    del declaration
    gc.collect()
    assert gone() is None


def test_reused_node_checks_give_the_same_validation_as_fresh_ones(registry):
    """The validator reuses a node's check when its type, version and params were seen before: the
    result must equal a fresh check, and a changed param must be checked anew."""
    from studio.core import validation as validation_module
    from studio.core.graph_file import load_graph
    from tests.conftest import GRAPHS

    def summary(v):
        return ([str(p) for p in v.problems], {n: (v.in_ports.get(n), v.out_ports.get(n), v.params.get(n))
                                              for n in v.graph.nodes}, v.out_shapes, v.param_counts)

    for name in ("two_branch.json", "residual_blocks.json", "cells/convgru_1.json"):
        graph = load_graph(GRAPHS / name)
        validation_module._NODE_CHECKS.clear()
        fresh = summary(validate(graph, registry))
        again = summary(validate(graph, registry))  # every node from the cache
        assert again == fresh, name
    graph = load_graph(GRAPHS / "two_branch.json")
    validate(graph, registry)
    graph.nodes["conv_long"].params["kernel_size"] = 0
    v = validate(graph, registry)
    assert any(p.where == "conv_long.kernel_size" for p in v.problems)
    graph.nodes["conv_long"].params["kernel_size"] = 3
    assert validate(graph, registry).ok
