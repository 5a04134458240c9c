"""The transformer nodes (encoder stack, positional encoding, CLS/SEP tokens), select_step, slice_steps,
day_mean and stack: what they compute, beyond the registry-wide shape and parameter-count checks."""

from __future__ import annotations

import math

import pytest
import torch

from studio.core.node_type import InferContext, ShapeError
from studio.core.shapes import TensorShape
from studio.torchgraph.builder import instantiate


def make(registry, type_id: str, shapes: dict[str, TensorShape], **params):
    node_type = registry[type_id]
    full = {**node_type.default_params(), **params}
    assert node_type.check_params(full) == []
    declared = node_type.infer(full, shapes, InferContext(None))
    return instantiate(node_type.recipe(full, shapes, InferContext(None))), declared


@pytest.mark.parametrize("d_model", [6, 7])
def test_sinusoidal_positions_follow_the_formula(registry, d_model):
    module, _ = make(registry, "positional_encoding", {"x": TensorShape.seq(5, d_model)})
    pe = module(torch.zeros(1, 1, 5, d_model))[0, 0]
    for t in range(5):
        for c in range(d_model):
            angle = t / 10000 ** ((c - c % 2) / d_model)
            expected = math.sin(angle) if c % 2 == 0 else math.cos(angle)
            assert pe[t, c].item() == pytest.approx(expected, abs=1e-6), (t, c)
    assert sum(p.numel() for p in module.parameters()) == 0


def test_learned_positions_use_the_first_rows_of_the_table(registry):
    module, _ = make(registry, "positional_encoding", {"x": TensorShape.seq(4, 3)}, mode="learned", max_len=9)
    x = torch.randn(2, 3, 4, 3)
    torch.testing.assert_close(module(x), x + module.weight[:4])
    node_type = registry["positional_encoding"]
    params = {**node_type.default_params(), "mode": "learned", "max_len": 3}
    with pytest.raises(ShapeError, match="max_len 3 is shorter than the 4 steps"):
        node_type.infer(params, {"x": TensorShape.seq(4, 3)}, InferContext(None))
    assert node_type.warn_params({**node_type.default_params(), "max_len": 5})  # unused by sinusoidal


def test_cls_and_sep_tokens_wrap_the_sequence(registry):
    module, declared = make(registry, "cls_sep_tokens", {"x": TensorShape.seq(4, 3)})
    assert declared == {"y": TensorShape.seq(6, 3)}
    x = torch.randn(2, 5, 4, 3)
    y = module(x)
    torch.testing.assert_close(y[:, :, 1:5], x)
    torch.testing.assert_close(y[:, :, 0], module.cls_token.expand(2, 5, 3))
    torch.testing.assert_close(y[:, :, 5], module.sep_token.expand(2, 5, 3))
    only_sep, declared = make(registry, "cls_sep_tokens", {"x": TensorShape.seq(4, 3)}, cls=False)
    assert declared == {"y": TensorShape.seq(5, 3)} and only_sep(x).shape == (2, 5, 5, 3)
    node_type = registry["cls_sep_tokens"]
    assert node_type.check_params({**node_type.default_params(), "cls": False, "sep": False})


def test_select_step_takes_one_token_and_checks_the_index(registry):
    module, _ = make(registry, "select_step", {"x": TensorShape.seq(6, 2)}, index=-2)
    x = torch.randn(1, 3, 6, 2)
    torch.testing.assert_close(module(x), x[:, :, 4])
    node_type = registry["select_step"]
    with pytest.raises(ShapeError, match=r"index 6 is outside the 6 steps arriving \(valid: -6 to 5\)"):
        node_type.infer({"index": 6}, {"x": TensorShape.seq(6, 2)}, InferContext(None))


@pytest.mark.parametrize(("start", "stop", "step"), [(0, None, 1), (-3, None, 1), (1, -1, 2), (-5, 4, 3),
                                                   (2, 100, 1), (-100, 2, 1)])
def test_slice_steps_is_pythons_slice(registry, start, stop, step):
    module, declared = make(registry, "slice_steps", {"x": TensorShape.seq(6, 2)}, start=start, stop=stop,
                            step=step)
    x = torch.arange(6.0).repeat_interleave(2).reshape(1, 1, 6, 2).expand(2, 3, 6, 2)
    y = module(x)
    expected = list(range(6))[start:stop:step]
    assert declared == {"y": TensorShape.seq(len(expected), 2)}
    assert y[0, 0, :, 0].tolist() == expected and y.shape == (2, 3, len(expected), 2)


def test_slice_steps_refuses_an_empty_region(registry):
    node_type = registry["slice_steps"]
    with pytest.raises(ShapeError, match="the region from 4 to 2 holds no step of the 6 arriving"):
        node_type.infer({"start": 4, "stop": 2, "step": 1}, {"x": TensorShape.seq(6, 2)}, InferContext(None))
    with pytest.raises(ShapeError, match="the region from 9 to the end holds no step of the 6 arriving"):
        node_type.infer({"start": 9, "stop": None, "step": 1}, {"x": TensorShape.seq(6, 2)}, InferContext(None))


def test_day_mean_averages_each_days_bars(registry):
    module, declared = make(registry, "day_mean", {"x": TensorShape.seq(6, 1)}, bars_per_day=3)
    assert declared == {"y": TensorShape.seq(2, 1)}
    x = torch.tensor([1.0, 2.0, 3.0, 10.0, 20.0, 60.0]).reshape(1, 1, 6, 1)
    torch.testing.assert_close(module(x), torch.tensor([2.0, 30.0]).reshape(1, 1, 2, 1))
    node_type = registry["day_mean"]
    with pytest.raises(ShapeError, match="length 7 is not a whole number of days of 3 bars"):
        node_type.infer({"bars_per_day": 3}, {"x": TensorShape.seq(7, 1)}, InferContext(None))


def test_stack_puts_input_i_at_step_i(registry):
    module, declared = make(registry, "stack", {f"x{i}": TensorShape.vec(2) for i in (1, 2, 3)}, inputs=3)
    assert declared == {"y": TensorShape.seq(3, 2)}
    xs = [torch.full((1, 2, 2), float(i)) for i in range(3)]
    torch.testing.assert_close(module(*xs)[0, 0, :, 0], torch.tensor([0.0, 1.0, 2.0]))
    node_type = registry["stack"]
    with pytest.raises(ShapeError, match="like x1"):
        node_type.infer({"inputs": 2}, {"x1": TensorShape.vec(2), "x2": TensorShape.vec(3)}, InferContext(None))


def test_transformer_encoder_is_torchs_per_stock(registry):
    torch.manual_seed(0)
    module, _ = make(registry, "transformer_encoder", {"x": TensorShape.seq(5, 8)}, nhead=2, num_layers=2,
                     dropout=0.0, dim_feedforward=16)
    module.eval()
    x = torch.randn(2, 3, 5, 8)
    reference = torch.nn.TransformerEncoder.forward(module, x.reshape(6, 5, 8)).reshape(2, 3, 5, 8)
    torch.testing.assert_close(module(x), reference)
    # each stock's sequence is attended on its own: changing one stock leaves the others unchanged
    x2 = x.clone()
    x2[0, 1] += 5
    y, y2 = module(x), module(x2)
    torch.testing.assert_close(y[0, [0, 2]], y2[0, [0, 2]])
    torch.testing.assert_close(y[1], y2[1])
    # every layer starts with weights of its own (torch's clones would start equal)
    first, second = module.layers[0], module.layers[1]
    assert not torch.equal(first.self_attn.in_proj_weight, second.self_attn.in_proj_weight)
    assert not torch.equal(first.linear1.weight, second.linear1.weight)


def test_transformer_heads_must_divide_d_model(registry):
    node_type = registry["transformer_encoder"]
    params = {**node_type.default_params(), "nhead": 2}
    with pytest.raises(ShapeError, match=r"nhead 2 must divide the 3 channels \(d_model\); project") as info:
        node_type.infer(params, {"x": TensorShape.seq(5, 3)}, InferContext(None))
    assert info.value.param == "nhead"
    assert node_type.check_params({**params, "d_model": 3}) == [("nhead", "nhead 2 must divide d_model 3")]
    assert node_type.warn_params({**params, "final_norm": True})  # post-LN already ends in a LayerNorm
