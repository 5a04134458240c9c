"""The builder: graph -> torch.fx GraphModule with readable forward code and node-named submodules."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import fx, nn

from studio.core.document import RESERVED_IDS
from studio.core.graph_file import load_graph
from studio.core.validation import validate
from studio.torchgraph.builder import BuildError, build, build_model, parameter_counts
from tests.conftest import GRAPHS, ROOT, gallery_models


def inputs(b=2, n=6, length=240, f=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, length, f, generator=gen)
    mask = torch.ones(b, n, dtype=torch.bool)
    return x, mask


@pytest.mark.parametrize("path", gallery_models(), ids=lambda p: p.stem)
def test_gallery_models_build_run_forward_and_backward(path, registry):
    graph = load_graph(path)
    v = validate(graph, registry)
    model = build_model(graph, registry, seed=0, validation=v)
    x, mask = inputs(length=graph.input.length, f=len(graph.input.features))
    out = model(x, mask)
    assert out.shape == (2, 6) and torch.isfinite(out).all()
    out.pow(2).mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    # declared parameter counts agree with torch, per node and in total
    real = parameter_counts(model)
    assert sum(p.numel() for p in model.parameters()) == v.total_params
    for node_id, count in real.items():
        assert count == v.param_counts[node_id], node_id


def test_forward_is_readable_python_named_after_node_ids(registry):
    model = build_model(load_graph(GRAPHS / "default.json"), registry, seed=0)
    assert isinstance(model, fx.GraphModule)
    code = model.code
    assert "def forward(self, x, mask = None):" in code
    for line in ("conv_1 = self.conv_1(x)", "gru_1_last = gru_1[1]", "score = self.score(head, mask)"):
        assert line in code, code
    assert [name for name, _ in model.named_children()] == [
        "conv_1", "relu_1", "conv_2", "relu_2", "gru_1", "dropout_1", "head", "score"]
    assert isinstance(model.conv_1, nn.Conv1d) and isinstance(model.gru_1, nn.GRU)


def test_fan_out_and_merge(registry):
    model = build_model(load_graph(GRAPHS / "two_branch.json"), registry, seed=0)
    code = model.code
    assert "conv_long = self.conv_long(x)" in code and "conv_short = self.conv_short(x)" in code
    assert "add_1 = self.add_1(conv_short, conv_long)" in code
    assert "self.mean_1(gru_1_y)" in code and "self.last_1(gru_1_y)" in code
    assert "concat_1 = self.concat_1(mean_1, last_1)" in code


def test_merge_computes_what_it_says(registry):
    graph = load_graph(GRAPHS / "two_branch.json")
    model = build_model(graph, registry, seed=0)
    x, _ = inputs()
    a, b = model.conv_short(x), model.conv_long(x)
    assert torch.allclose(model.add_1(a, b), a + b)
    assert model.concat_1(a, b).shape[-1] == a.shape[-1] + b.shape[-1]


def test_blocks_become_nested_modules(registry):
    model = build_model(load_graph(GRAPHS / "residual_blocks.json"), registry, seed=0)
    assert isinstance(model.res_1, fx.GraphModule) and isinstance(model.down, fx.GraphModule)
    assert "skip = self.skip(x, relu)" in model.res_1.code
    keys = set(model.state_dict())
    assert {"res_1.conv.weight", "res_2.conv.weight", "down.conv.weight"} <= keys
    # the residual block really adds its input: with the conv zeroed, it is the identity
    with torch.no_grad():
        model.res_1.conv.weight.zero_()
        model.res_1.conv.bias.zero_()
    h = torch.randn(1, 3, 240, 16)
    assert torch.equal(model.res_1(h), h)


def test_same_seed_same_weights_and_other_seed_other_weights(registry):
    graph = load_graph(GRAPHS / "default.json")
    a = build_model(graph, registry, seed=7).state_dict()
    b = build_model(graph, registry, seed=7).state_dict()
    c = build_model(graph, registry, seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_masked_stocks_score_zero_and_do_not_touch_the_others(registry):
    model = build_model(load_graph(GRAPHS / "default.json"), registry, seed=0).eval()
    x, mask = inputs(b=1, n=5)
    mask[0, 2] = False
    out = model(x, mask)
    assert out[0, 2] == 0
    x2 = x.clone()
    x2[0, 2] = 1e3  # garbage in the absent stock's slot
    assert torch.allclose(model(x2, mask), out)


def test_dates_in_a_batch_are_independent(registry):
    model = build_model(load_graph(GRAPHS / "two_branch.json"), registry, seed=0).eval()
    x, mask = inputs(b=3, n=4)
    together = model(x, mask)
    apart = torch.cat([model(x[i:i + 1], mask[i:i + 1]) for i in range(3)])
    assert torch.allclose(together, apart, atol=1e-6)


def test_building_refuses_an_invalid_graph_with_the_problems(registry):
    graph = load_graph(GRAPHS / "default.json")
    graph.nodes["conv_2"].params["kernel_size"] = 0
    graph.nodes["head"].params["out_features"] = "one"
    with pytest.raises(BuildError) as info:
        build(graph, registry)
    assert [str(p) for p in info.value.problems] == [
        "conv_2.kernel_size: expects an integer in [1, 4096], gets 0",
        'head.out_features: expects an integer in [1, 65536], gets "one"',
    ]
    assert str(info.value).endswith("cannot build: conv_2.kernel_size: expects an integer in [1, 4096], "
                                    "gets 0 (and 1 more)")


def test_nodes_that_reach_no_output_are_left_out(registry):
    graph = load_graph(GRAPHS / "default.json")
    graph.add_node("linear", 1, {"in_features": None, "out_features": 5, "bias": True}, node_id="stray")
    graph.connect("relu_2.y", "stray.x")
    v = validate(graph, registry)
    assert v.ok and [str(p) for p in v.warnings] == [
        "stray: its result reaches no output (it is left out of the model)"]
    model = build_model(graph, registry, validation=v)
    assert not hasattr(model, "stray")
    assert sum(p.numel() for p in model.parameters()) == v.total_params


def test_reserved_ids_cover_torch_module_attributes():
    public = {a for a in dir(nn.Module) if not a.startswith("_")}
    public |= {a for a in dir(fx.GraphModule) if not a.startswith("_")}
    assert public <= RESERVED_IDS, sorted(public - RESERVED_IDS)


def test_core_and_catalogue_work_without_torch_or_qt():
    script = f"""
import sys
from pathlib import Path
from studio.nodes import default_registry
from studio.core.graph_file import load_graph, dumps_graph
from studio.core.validation import validate
from studio.core.layout import auto_layout
from studio.core.schema import graph_schema
reg = default_registry()
for path in sorted(Path({str(GRAPHS)!r}).rglob('*.json')):
    g = load_graph(path)
    assert validate(g, reg).ok
    auto_layout(g)
    dumps_graph(g)
graph_schema(reg)
heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'pyqtgraph', 'pandas')]
print(heavy)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
