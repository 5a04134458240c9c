"""The layer catalogue of issue 7: shape rules against torch on random settings (Conv2d, pools,
Upsample), the int-or-pair parameter kind, the views of the bar window, what the new modules compute,
the standalone .py and .pt2 exports of a graph that uses them, and docs/nodes.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.document import Graph, InputSpec
from studio.core.graph_file import load_graph
from studio.core.node_docs import nodes_markdown
from studio.core.node_type import InferContext, ShapeError
from studio.core.params import IntOrPairParam, pair
from studio.core.shapes import TensorShape
from studio.core.validation import validate
from studio.nodes import default_registry
from studio.torchgraph.builder import build, instantiate
from tests.conftest import FIXTURES, ROOT
from tests.test_export import RUNNER, assert_all_close, cli_export, input_cases, py_cases, reference_outputs

REGISTRY = default_registry()
CATALOGUE = FIXTURES / "layer_catalogue.json"
NODES_DOC = ROOT / "docs" / "nodes.md"
TORCH_REFUSES = (RuntimeError, ValueError, NotImplementedError)
UNSAFE = "unsafe"  # the rule refuses a configuration that torch runs but corrupts memory with


def rule_and_torch(type_id: str, params: dict, shape: TensorShape, grad: bool = False):
    """(the declared output shape or None when the rule refuses, torch's output shape or None when torch
    refuses), for B=1 date of N=2 stocks."""
    node_type = REGISTRY[type_id]
    params = {**node_type.default_params(), **params}
    shapes = {"x": shape}
    ctx = InferContext(None)
    try:
        if node_type.check_params(params):
            raise ShapeError("params")
        declared = node_type.infer(params, shapes, ctx)["y"].torch_shape(1, 2)
    except ShapeError as exc:
        if "covers only padding" in str(exc):
            return UNSAFE, None  # torch would write out of bounds: do not run it
        declared = None
    try:
        module = instantiate(node_type.recipe(params, shapes, ctx))
        x = torch.randn(shape.torch_shape(1, 2), requires_grad=grad)
        real = tuple(module(x * 1.0 if grad else x).shape)
    except TORCH_REFUSES:
        real = None
    return declared, real


def a_window_covers_only_padding(params: dict, shape: TensorShape) -> bool:
    """Brute force, per axis: does some max-pool window hold no element of the input?"""
    axes = len(shape.dims) - 1
    def per_axis(name, default=None):
        value = params.get(name, default)
        value = params["kernel_size"] if value is None else value
        return [value] * axes if isinstance(value, int) else value
    for size, k, s, p, d in zip(shape.dims[:-1], per_axis("kernel_size"), per_axis("stride"),
                                per_axis("padding", 0), per_axis("dilation", 1), strict=True):
        out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if params.get("ceil_mode") else 0)) // s + 1
        if params.get("ceil_mode") and (out - 1) * s >= size + p:
            out -= 1
        if any(not any(0 <= i * s - p + j * d < size for j in range(k)) for i in range(out)):
            return True
    return False


def assert_agree(type_id: str, params: dict, shape: TensorShape, grad: bool = False) -> None:
    declared, real = rule_and_torch(type_id, params, shape, grad)
    if declared is UNSAFE:
        assert a_window_covers_only_padding(params, shape), f"refused for no reason: {type_id} {params} {shape}"
    elif declared is None:
        assert real is None, f"the rule refuses what torch computes: {type_id} {params} on {shape}"
    else:
        assert real == declared, f"{type_id} {params} on {shape}: torch gives {real}, the rule {declared}"


ints_or_pairs = st.integers(1, 4) | st.lists(st.integers(1, 4), min_size=2, max_size=2)


# ---- shape rules against torch ------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(height=st.integers(1, 9), width=st.integers(1, 12), kernel=ints_or_pairs, stride=ints_or_pairs,
       padding=st.integers(0, 4) | st.lists(st.integers(0, 4), min_size=2, max_size=2)
       | st.sampled_from(["same", "valid"]),
       dilation=ints_or_pairs, groups=st.sampled_from([1, 2, 3]),
       mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
def test_conv2d_shape_rule_agrees_with_torch(height, width, kernel, stride, padding, dilation, groups, mode):
    params = {"kernel_size": kernel, "stride": stride, "padding": padding, "dilation": dilation,
              "groups": groups, "padding_mode": mode, "out_channels": 6}
    assert_agree("conv2d", params, TensorShape.map(height, width, 6 if groups != 3 else 3))


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 6), width=st.integers(1, 8), kernel=ints_or_pairs, stride=ints_or_pairs,
       padding=st.integers(0, 3) | st.sampled_from(["same", "valid"]), multiplier=st.integers(1, 2),
       mode=st.sampled_from(["zeros", "reflect", "circular"]))
def test_depthwise_and_pointwise_rules_agree_with_torch(height, width, kernel, stride, padding, multiplier,
                                                        mode):
    shape = TensorShape.map(height, width, 3)
    assert_agree("conv2d_depthwise", {"kernel_size": kernel, "stride": stride, "padding": padding,
                                      "multiplier": multiplier, "padding_mode": mode}, shape)
    assert_agree("conv2d_pointwise", {"stride": stride, "out_channels": 2 * multiplier}, shape)


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 20), kernel=st.integers(1, 7), stride=st.none() | st.integers(1, 4),
       padding=st.integers(0, 4), dilation=st.integers(1, 3), ceil_mode=st.booleans(),
       count_include_pad=st.booleans(), grad=st.booleans())
def test_pool1d_shape_rules_agree_with_torch(length, kernel, stride, padding, dilation, ceil_mode,
                                             count_include_pad, grad):
    """Max and average pools, with and without autograd (torch takes other code paths with it)."""
    shape = TensorShape.seq(length, 3)
    common = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
    assert_agree("maxpool1d", {**common, "dilation": dilation}, shape, grad)
    assert_agree("avgpool1d", {**common, "count_include_pad": count_include_pad}, shape, grad)


@settings(max_examples=100, deadline=None)
@given(height=st.integers(1, 7), width=st.integers(1, 9), kernel=ints_or_pairs,
       stride=st.none() | ints_or_pairs, padding=st.integers(0, 2) | st.lists(st.integers(0, 2), min_size=2,
                                                                             max_size=2),
       dilation=ints_or_pairs, ceil_mode=st.booleans(), divisor=st.none() | st.integers(1, 5),
       grad=st.booleans())
def test_pool2d_shape_rules_agree_with_torch(height, width, kernel, stride, padding, dilation, ceil_mode,
                                             divisor, grad):
    shape = TensorShape.map(height, width, 2)
    common = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
    assert_agree("maxpool2d", {**common, "dilation": dilation}, shape, grad)
    assert_agree("avgpool2d", {**common, "divisor_override": divisor}, shape, grad)


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(["seq", "map"]), length=st.integers(1, 9),
       size=st.none() | st.integers(1, 12) | st.lists(st.integers(1, 6), min_size=2, max_size=2),
       scale=st.none() | st.floats(0.1, 4.0), mode=st.sampled_from(["nearest", "nearest-exact", "linear",
                                                                    "bilinear", "bicubic"]),
       align=st.none() | st.booleans(), recompute=st.booleans())
def test_upsample_shape_rule_agrees_with_torch(kind, length, size, scale, mode, align, recompute):
    shape = TensorShape.seq(length, 2) if kind == "seq" else TensorShape.map(length, length + 1, 2)
    params = {"size": size, "scale_factor": scale, "mode": mode, "align_corners": align,
              "recompute_scale_factor": recompute}
    assert_agree("upsample", params, shape)


@pytest.mark.parametrize("type_id", ["adaptive_avgpool1d", "adaptive_maxpool1d"])
@pytest.mark.parametrize(("length", "output_size"), [(1, 1), (5, 12), (12, 5), (7, 7)])
def test_adaptive_pools_give_output_size_for_any_length(type_id, length, output_size):
    assert_agree(type_id, {"output_size": output_size}, TensorShape.seq(length, 2), grad=True)


# ---- the int-or-pair parameter kind -----------------------------------------------------------------

def test_int_or_pair_param_checks_and_schema():
    param = IntOrPairParam("padding", 0, "padding", min=0, max=9, choices=("same",))
    schema = param.json_schema()
    for good in (0, 9, [0, 3], [9, 9], "same"):
        assert param.check(good) is None, good
        jsonschema.validate(good, schema)
    for bad in (-1, 10, [1], [1, 2, 3], [1, -1], [1.5, 2], [True, 1], "valid", None, True):
        assert param.check(bad) is not None, bad
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    assert param.check(2.0) is not None  # (JSON Schema counts 2.0 as an integer, like IntParam's)
    assert param.check([1, 2, 3]) == "expects a pair [h, w] (2 integers), gets 3 items"
    assert pair(3) == (3, 3) and pair([1, 5]) == (1, 5)


def _model(*chain: tuple[str, dict], days: int = 3, bars: int = 4) -> Graph:
    """bars -> the chain of (type, params) -> flatten -> linear(1) -> output."""
    g = Graph(name="t", input=InputSpec(["close", "volume"], days, bars))
    g.add_node("input", 1, {}, node_id="bars")
    previous = "bars.bars"
    for i, (type_id, params) in enumerate((*chain, ("flatten", {}), ("linear", {"out_features": 1})), 1):
        node_id = f"n{i}"
        g.add_node(type_id, 1, {**REGISTRY[type_id].default_params(), **params}, node_id=node_id)
        g.connect(previous, f"{node_id}.x")
        previous = f"{node_id}.y"
    g.add_node("output", 1, {}, node_id="score")
    g.connect(previous, "score.x")
    return g


def problems(g: Graph) -> list[str]:
    return [str(p) for p in validate(g, REGISTRY).errors]


def test_padding_only_windows_are_found_exactly():
    from studio.core.shapes import pool_out_length
    from studio.nodes.pooling import _window_in_padding_only

    checked = 0
    for size in range(1, 14):
        for k in range(1, 6):
            for s in range(1, 5):
                for p in range(k // 2 + 1):
                    for d in range(1, 6):
                        for ceil_mode in (False, True):
                            out = pool_out_length(size, k, s, p, d, ceil_mode)
                            if out < 1:
                                continue
                            first = next((i for i in range(out)
                                          if not any(0 <= i * s - p + j * d < size for j in range(k))), None)
                            assert _window_in_padding_only(size, k, s, p, d, out) == first, (size, k, s, p, d)
                            checked += 1
    assert checked > 3000


def test_refusals_name_the_param():
    assert problems(_model(("maxpool1d", {"kernel_size": 3, "padding": 2}))) == [
        "n1.padding: must be at most half the kernel size (1), as torch requires, gets 2"]
    assert problems(_model(("maxpool1d", {"kernel_size": 2, "padding": 1, "dilation": 13}))) == [
        "n1.padding: window 0 of the length covers only padding (kernel 2, dilation 13, padding 1, input "
        "length 12): torch's max pool writes out of bounds there; lower the padding or the dilation"]
    assert problems(_model(("avgpool1d", {"kernel_size": 20}))) == [
        "n1.kernel_size: output length would be 0: input length 12 is shorter than the window 20 plus "
        "padding 0"]
    assert problems(_model(("day_view", {}), ("conv2d", {"kernel_size": [1, 2, 3]}))) == [
        "n2.kernel_size: expects a pair [h, w] (2 integers), gets 3 items"]
    assert problems(_model(("day_view", {}), ("conv2d", {"kernel_size": [4, 1]}))) == [
        "n2.kernel_size: output height would be 0: input height 3 is smaller than the dilated kernel 4 "
        "plus padding 0"]
    assert problems(_model(("upsample", {"mode": "bilinear"}))) == [
        "n1.mode: bilinear interpolates maps: use linear on a sequence"]
    assert problems(_model(("lstm", {"proj_size": 32}))) == [
        "n1.proj_size: must be below hidden_size 32 (or 0), gets 32"]


# ---- views of the bar window --------------------------------------------------------------------------

def test_day_view_takes_bars_per_day_from_the_input_and_rows_are_days():
    g = _model(("day_view", {}), days=3, bars=4)
    v = validate(g, REGISTRY)
    assert v.ok and v.out_shapes["n1"]["y"] == TensorShape.map(3, 4, 2)
    module = build(g).module
    x = torch.arange(2 * 5 * 12 * 2, dtype=torch.float32).reshape(2, 5, 12, 2)
    day_map = module.n1(x)
    for day in range(3):
        assert torch.equal(day_map[:, :, day], x[:, :, 4 * day:4 * (day + 1)])
    assert torch.equal(instantiate(REGISTRY["seq_view"].recipe({}, {}, None))(day_map), x)


def test_day_view_refuses_a_length_it_does_not_divide_and_null_inside_a_block():
    assert problems(_model(("day_view", {"bars_per_day": 5}))) == [
        "n1.x: length 12 is not a whole number of days of 5 bars (bars_per_day 5) from bars.bars"]
    with pytest.raises(ShapeError, match="no bar window"):
        REGISTRY["day_view"].infer({"bars_per_day": None}, {"x": TensorShape.seq(12, 2)}, InferContext(None))


def test_transpose_swaps_time_and_channels_and_back():
    g = _model(("transpose", {}), ("conv1d", {"out_channels": 12, "kernel_size": 2, "padding": "same"}),
               ("transpose", {}))
    v = validate(g, REGISTRY)
    assert v.ok and v.out_shapes["n1"]["y"] == TensorShape.seq(2, 12)
    assert v.out_shapes["n3"]["y"] == TensorShape.seq(12, 2)
    swap = instantiate(REGISTRY["transpose"].recipe({}, {}, None))
    x = torch.randn(2, 3, 12, 2)
    assert torch.equal(swap(x)[:, :, 1, 7], x[:, :, 7, 1])


def test_flatten_is_row_major():
    flat = instantiate(REGISTRY["flatten"].recipe({}, {}, None))
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(flat(x)[:, :, 5 * 2 + 3], x[:, :, 2, 3])


def test_inplace_after_a_view_counts_the_fan_out_of_the_viewed_tensor():
    """relu(inplace) on transpose(conv.y) overwrites conv.y itself, which the add also reads."""
    g = Graph(name="t", input=InputSpec(["close", "volume"], 3, 4))
    for node_id, type_id, params in [("bars", "input", {}), ("conv", "conv1d", {"out_channels": 4}),
                                     ("swap", "transpose", {}), ("relu", "relu", {"inplace": True}),
                                     ("back", "transpose", {}), ("skip", "add", {}), ("flat", "flatten", {}),
                                     ("head", "linear", {"out_features": 1}), ("score", "output", {})]:
        g.add_node(type_id, 1, {**REGISTRY[type_id].default_params(), **params}, node_id=node_id)
    for src, dst in [("bars.bars", "conv.x"), ("conv.y", "swap.x"), ("swap.y", "relu.x"),
                     ("relu.y", "back.x"), ("back.y", "skip.x1"), ("conv.y", "skip.x2"), ("skip.y", "flat.x"),
                     ("flat.y", "head.x"), ("head.y", "score.x")]:
        g.connect(src, dst)
    assert problems(g) == ["relu.inplace: would overwrite conv.y (swap.y is a view of it), which also feeds "
                           "other nodes; turn inplace off"]
    g.remove_node("skip")
    g.connect("back.y", "flat.x")  # conv.y feeds only the view now: fine
    assert problems(g) == []


# ---- what the modules compute -------------------------------------------------------------------------

def _module(type_id: str, shapes: dict[str, TensorShape], **params):
    node_type = REGISTRY[type_id]
    params = {**node_type.default_params(), **params}
    return instantiate(node_type.recipe(params, shapes, InferContext(None)))


def test_merges_multiply_and_mean():
    a, b, c = torch.randn(3, 2, 3, 5, 4).unbind(0)
    shapes = {f"x{i}": TensorShape.seq(5, 4) for i in (1, 2, 3)}
    torch.testing.assert_close(_module("multiply", shapes, inputs=3)(a, b, c), a * b * c)
    torch.testing.assert_close(_module("mean", shapes, inputs=3)(a, b, c), (a + b + c) / 3)


def test_residual_scale_and_projection():
    x, f = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4)
    shapes = {"x": TensorShape.seq(5, 4), "f": TensorShape.seq(5, 4)}
    torch.testing.assert_close(_module("residual", shapes)(x, f), x + f)
    rezero = _module("residual", shapes, scale="scalar", scale_init=0.0)
    torch.testing.assert_close(rezero(x, f), x)
    layer_scale = _module("residual", shapes, scale="channel", scale_init=0.5)
    assert layer_scale.gain.shape == (4,)
    torch.testing.assert_close(layer_scale(x, f), x + 0.5 * f)
    wide = {"x": TensorShape.seq(5, 4), "f": TensorShape.seq(5, 6)}
    projected = _module("residual", wide, shortcut="linear")
    f6 = torch.randn(2, 3, 5, 6)
    torch.testing.assert_close(projected(x, f6), x @ projected.project.weight.T + f6)
    residual = REGISTRY["residual"]
    with pytest.raises(ShapeError, match="shortcut \"linear\" projects x") as refused:
        residual.infer(residual.default_params(), wide, InferContext(None))
    assert refused.value.port == "f"
    longer = {"x": TensorShape.seq(5, 4), "f": TensorShape.seq(6, 6)}
    with pytest.raises(ShapeError, match="expects seq N×5×C"):
        residual.infer({**residual.default_params(), "shortcut": "linear"}, longer, InferContext(None))


def test_attention_pool_starts_as_the_mean_and_weights_sum_to_one():
    pool = _module("attention_pool", {"x": TensorShape.seq(7, 4)}, heads=2)
    x = torch.randn(2, 3, 7, 4)
    y, weights = pool(x)
    torch.testing.assert_close(y, x.mean(dim=-2))
    with torch.no_grad():
        pool.query.copy_(torch.tensor([[1e4, 0.0], [0.0, -1e4]]))
    y, weights = pool(x)
    assert weights.shape == (2, 3, 7, 2)
    torch.testing.assert_close(weights.sum(dim=-2), torch.ones(2, 3, 2))
    first = x[..., 0].argmax(dim=-1)  # head 1 attends to the step with the largest channel 0
    torch.testing.assert_close(y[..., 0], x[..., 0].gather(-1, first.unsqueeze(-1)).squeeze(-1))


@pytest.mark.parametrize("type_id", ["lstm", "rnn", "gru"])
def test_recurrent_last_is_the_final_state_of_both_directions(type_id):
    params = {"hidden_size": 5, "num_layers": 2, "bidirectional": True}
    if type_id == "lstm":
        params["proj_size"] = 3
    module = _module(type_id, {"x": TensorShape.seq(6, 4)}, **params).eval()
    x = torch.randn(2, 3, 6, 4)
    y, last = module(x)
    width = y.shape[-1] // 2
    torch.testing.assert_close(last[..., :width], y[:, :, -1, :width])  # forward: the last step
    torch.testing.assert_close(last[..., width:], y[:, :, 0, width:])  # backward: the first step
    assert module.batch_first


def test_batchnorm1d_statistics_cover_dates_stocks_and_steps():
    norm = _module("batchnorm1d", {"x": TensorShape.seq(5, 4)}, affine=False).train()
    x = torch.randn(2, 3, 5, 4) * 3 + 1
    y = norm(x)
    torch.testing.assert_close(y.mean(dim=(0, 1, 2)), torch.zeros(4), atol=1e-5, rtol=0)
    vec = _module("batchnorm1d", {"x": TensorShape.vec(4)}, affine=False).train()
    v = vec(x[:, :, 0])
    torch.testing.assert_close(v.mean(dim=(0, 1)), torch.zeros(4), atol=1e-5, rtol=0)


def test_input_projection_scales_by_sqrt_d_model():
    shapes = {"x": TensorShape.seq(5, 3)}
    torch.manual_seed(0)
    plain = _module("input_projection", shapes, d_model=16)
    torch.manual_seed(0)
    scaled = _module("input_projection", shapes, d_model=16, scale=True)
    x = torch.randn(2, 3, 5, 3)
    torch.testing.assert_close(scaled(x), plain(x) * 4.0)


# ---- exports of a graph that uses the new types -------------------------------------------------------

def test_catalogue_fixture_uses_the_new_types():
    used = {node.type for node in load_graph(CATALOGUE).nodes.values()}
    assert {"conv2d", "conv2d_depthwise", "conv2d_pointwise", "maxpool1d", "maxpool2d", "avgpool1d",
            "avgpool2d", "adaptive_avgpool1d", "adaptive_maxpool1d", "adaptive_avgpool2d",
            "adaptive_maxpool2d", "input_projection", "batchnorm1d", "batchnorm2d", "layernorm", "gelu",
            "tanh", "sigmoid", "leaky_relu", "elu", "flatten", "day_view", "seq_view", "transpose",
            "upsample", "multiply", "mean", "residual", "attention_pool", "lstm", "rnn"} <= used


@pytest.mark.slow
def test_catalogue_graph_exports_to_py_and_pt2(tmp_path):
    """The .py export runs in a fresh interpreter that cannot import studio; .pt2 with other B and N."""
    cases = py_cases(CATALOGUE)
    expected = reference_outputs(CATALOGUE, cases)
    out = tmp_path / "catalogue.py"
    cli_export(CATALOGUE, out)
    torch.save(cases, tmp_path / "inputs.pt")
    jobs = [{"file": str(out), "inputs": str(tmp_path / "inputs.pt"), "outputs": str(tmp_path / "out.pt")}]
    (tmp_path / "runner.py").write_text(RUNNER, encoding="utf-8")
    (tmp_path / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-I", str(tmp_path / "runner.py"), str(tmp_path / "jobs.json")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"the exported file failed standalone:\n{proc.stderr[-3000:]}"
    assert_all_close(torch.load(tmp_path / "out.pt", weights_only=True), expected, "catalogue.py")

    cli_export(CATALOGUE, tmp_path / "catalogue.pt2")
    program = torch.export.load(str(tmp_path / "catalogue.pt2")).module()
    cases = input_cases(CATALOGUE)
    with torch.no_grad():
        outputs = [program(x, mask) for x, mask in cases]
    assert_all_close(outputs, reference_outputs(CATALOGUE, cases), "catalogue.pt2")


def test_onnx_export_refuses_an_lstm_projection_in_one_line(tmp_path, capsys):
    """ONNX's LSTM has no projection: torch would write a file that cannot run."""
    from studio.cli import main

    out = tmp_path / "catalogue.onnx"
    code = main(["export", str(CATALOGUE), "--to", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err == (f"studio: {out}: ONNX has no LSTM with proj_size (lstm: proj_size 4); "
                                 "export .py or .pt2 instead\n")
    assert not out.exists()


# ---- docs/nodes.md ------------------------------------------------------------------------------------

def test_committed_node_list_is_up_to_date():
    assert NODES_DOC.read_text(encoding="utf-8") == nodes_markdown(REGISTRY), (
        "run: studio nodes --markdown > docs/nodes.md")


def test_studio_nodes_markdown_prints_it(capsys):
    from studio.cli import main

    assert main(["nodes", "--markdown"]) == 0
    assert capsys.readouterr().out == nodes_markdown(REGISTRY)
    assert main(["nodes", "conv2d", "--markdown"]) == 2


def test_node_list_names_every_type_and_param():
    text = nodes_markdown(REGISTRY)
    for node_type in REGISTRY:
        assert f"### `{node_type.type_id}`" in text
        for p in node_type.params:
            assert f"| `{p.name}` |" in text, (node_type.type_id, p.name)


def test_every_new_type_documents_its_layout_choices():
    assert "return_indices is fixed false" in REGISTRY["maxpool1d"].doc
    for type_id in ("gru", "lstm", "rnn"):
        assert "batch_first is fixed" in REGISTRY[type_id].doc
    assert Path(NODES_DOC).is_file()


CRASH_CASES = """
import torch
from studio.torchgraph.builder import instantiate
from studio.core.node_type import InferContext
from studio.core.shapes import TensorShape
from studio.nodes import default_registry
reg = default_registry()
cases = [
    ("conv1d", {"kernel_size": 1, "stride": 2, "padding": 1, "dilation": 4}, TensorShape.seq(1, 4)),
    ("conv2d", {"kernel_size": [2, 1], "stride": 2, "padding": [1, 3], "dilation": 4}, TensorShape.map(6, 1, 6)),
    ("conv1d", {"kernel_size": 3, "stride": 2, "padding": 2, "dilation": 3}, TensorShape.seq(5, 4)),
    ("maxpool1d", {"kernel_size": 3, "stride": 1, "padding": 1, "dilation": 2}, TensorShape.seq(3, 2)),
    ("maxpool2d", {"kernel_size": 2, "stride": 1, "padding": 1, "dilation": 2}, TensorShape.map(3, 3, 2)),
]
for type_id, overrides, shape in cases:
    t = reg[type_id]
    params = {**t.default_params(), **overrides}
    module = instantiate(t.recipe(params, {"x": shape}, InferContext(None)))
    for _ in range(300):
        x = torch.randn(shape.torch_shape(1, 2), requires_grad=True)
        module(x).sum().backward()
canary = torch.nn.Conv1d(4, 16, 3)
for _ in range(1000):
    canary(torch.randn(8, 4, 30))
print("ok")
"""


def test_layouts_that_crashed_torch_convolutions_now_run():
    """torch 2.13's oneDNN convolutions corrupt memory on inputs whose size-1 axes keep odd strides; the
    process then dies later, in an unrelated operation. seq_apply / map_apply hand convolutions canonical
    copies; this runs the cases that crashed in a process of its own."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CRASH_CASES], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-500:])
