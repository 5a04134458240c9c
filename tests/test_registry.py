"""Registry-wide checks: every node type is built, run, and its declared shape rule and parameter
count agree with what torch really does. New node types are covered automatically."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.node_type import InferContext, NodeType, Port, ShapeError
from studio.core.registry import Registry, RegistryError
from studio.core.shapes import MAP, SCORE, SEQ, VEC, TensorShape
from studio.nodes import builtin_types, default_registry
from studio.torchgraph.builder import instantiate

# Types that only make sense inside a graph (the model's argument, block ports, block instances and
# blocks run per day) are covered by tests/test_builder.py and tests/test_blocks.py.
GRAPH_ONLY = {"input", "block_input", "block_output", "block", "per_day"}
SAMPLE = {SEQ: TensorShape.seq(12, 4), VEC: TensorShape.vec(4), MAP: TensorShape.map(3, 4, 4),
          SCORE: TensorShape.score()}
B, N = 2, 3


def _inputs(ports: tuple[Port, ...], kind: str | None) -> dict[str, TensorShape]:
    shapes = {p.name: SAMPLE[kind if kind in p.kinds else p.kinds[0]] for p in ports}
    return shapes


def _accepts(node_type: NodeType, params: dict, shapes: dict[str, TensorShape]) -> bool:
    try:
        node_type.infer(params, shapes, InferContext(None))
    except ShapeError:
        return False
    return True


def cases():
    """(type, params, kind) for the defaults and every example, with every input kind the type takes.
    Combinations the type's own rule refuses (a score output fed 4 channels) are left out."""
    for node_type in default_registry():
        if node_type.type_id in GRAPH_ONLY:
            continue
        for i, overrides in enumerate(({}, *node_type.examples)):
            params = {**node_type.default_params(), **overrides}
            ports = node_type.input_ports(params)
            # every kind the first port accepts, the other ports following it (merges need alike inputs)
            for kind in ports[0].kinds if ports else (None,):
                shapes = _inputs(ports, kind)
                if kind == VEC and node_type.type_id == "output":
                    shapes = {"x": TensorShape.vec(1)}
                if _accepts(node_type, params, shapes):
                    case_id = f"{node_type.type_id}-{i}-{kind}"
                    yield pytest.param(node_type.type_id, params, shapes, id=case_id)


CASES = list(cases())


def test_every_node_type_has_runnable_cases():
    covered = {case.values[0] for case in CASES}
    assert covered == set(default_registry().type_ids()) - GRAPH_ONLY


@pytest.mark.parametrize(("type_id", "params", "shapes"), CASES)
def test_node_type_builds_runs_and_matches_its_shape_rule(type_id, params, shapes):
    node_type = default_registry()[type_id]
    ctx = InferContext(None)
    ports = node_type.input_ports(params, ctx)
    for p in node_type.params:
        assert p.check(params[p.name]) is None, f"{type_id}: example value of {p.name} is invalid"
    assert node_type.check_params(params) == []
    declared = node_type.infer(params, shapes, ctx)
    module = instantiate(node_type.recipe(params, shapes, ctx))
    module.train()
    torch.manual_seed(0)
    args = [torch.randn(shapes[p.name].torch_shape(B, N)) for p in ports]
    if node_type.uses_mask:
        args.append(torch.ones(B, N, dtype=torch.bool))
    out = module(*args)
    outs = out if isinstance(out, tuple) else (out,)
    out_ports = node_type.output_ports(params, ctx)
    if type_id == "output":
        assert declared == {} and outs[0].shape == (B, N)
    else:
        assert len(outs) == len(out_ports)
        for port, tensor in zip(out_ports, outs, strict=True):
            assert tuple(tensor.shape) == declared[port.name].torch_shape(B, N), port.name
            assert torch.isfinite(tensor).all()
    trainable = [t for t in outs if t.requires_grad]
    if trainable:  # gradients flow back to the parameters
        sum(t.sum() for t in trainable).backward()
        assert all(p.grad is not None for p in module.parameters())
    real = sum(p.numel() for p in module.parameters())
    assert node_type.param_count(params, shapes, ctx) == real


def test_every_declaration_is_complete():
    for node_type in default_registry():
        assert node_type.type_id.isidentifier(), node_type
        assert node_type.title and node_type.category and node_type.doc, node_type
        names = [p.name for p in node_type.params]
        assert len(names) == len(set(names)), node_type
        for p in node_type.params:
            assert p.doc and "\n" not in p.doc, (node_type, p.name)
            assert p.check(p.default) is None, (node_type, p.name, "default value is invalid")
        for example in node_type.examples:
            assert set(example) <= set(names), (node_type, example)


def test_builtin_types_are_all_registered():
    assert {t.type_id for t in builtin_types()} == set(default_registry().type_ids())
    assert {"input", "output", "linear", "conv1d", "relu", "dropout", "gru", "add", "concat",
            "reduce_time"} <= set(default_registry().type_ids())


def test_registry_refuses_duplicate_ids_and_non_types():
    reg = Registry()
    reg.register(default_registry()["relu"].__class__)
    with pytest.raises(RegistryError, match=r"relu.*taken"):
        reg.register(default_registry()["relu"].__class__)
    with pytest.raises(RegistryError, match="not a NodeType"):
        reg.register(object())  # type: ignore[arg-type]

    class NoId(NodeType):
        pass

    with pytest.raises(RegistryError, match="no type_id"):
        reg.register(NoId)


def test_categories_group_types_for_the_palette():
    groups = default_registry().by_category()
    assert "Convolution" in groups and any(t.type_id == "conv1d" for t in groups["Convolution"])
    assert sum(len(v) for v in groups.values()) == len(default_registry())


# ---- the Conv1d shape rule against torch, on random settings ----------------------------------------

@settings(max_examples=150, deadline=None)
@given(length=st.integers(1, 40), kernel=st.integers(1, 9), stride=st.integers(1, 4),
       padding=st.one_of(st.integers(0, 6), st.sampled_from(["same", "valid"])), dilation=st.integers(1, 4),
       mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
def test_conv1d_shape_rule_agrees_with_torch(length, kernel, stride, padding, dilation, mode):
    conv = default_registry()["conv1d"]
    params = {**conv.default_params(), "kernel_size": kernel, "stride": stride, "padding": padding,
              "dilation": dilation, "padding_mode": mode, "out_channels": 2}
    shapes = {"x": TensorShape.seq(length, 3)}
    try:
        if conv.check_params(params):
            raise ShapeError("params")
        declared = conv.infer(params, shapes, InferContext(None))["y"]
    except ShapeError:
        declared = None
    try:
        real = instantiate(conv.recipe(params, shapes, InferContext(None)))(torch.randn(1, 2, length, 3))
    except (RuntimeError, ValueError, NotImplementedError):
        real = None
    if declared is None:
        assert real is None, f"the rule refuses what torch computes: {params}, L={length}"
    else:
        assert real is not None and tuple(real.shape) == declared.torch_shape(1, 2)


@pytest.mark.parametrize(("length", "kernel", "stride", "padding", "dilation"),
                         list(itertools.product([10, 240], [1, 3, 5], [1, 2, 4], [0, 2], [1, 3])))
def test_conv_length_formula(length, kernel, stride, padding, dilation):
    from studio.core.shapes import conv_out_length

    expected = (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    assert conv_out_length(length, kernel, stride, padding, dilation) == max(expected, 0)
