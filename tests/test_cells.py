"""The seed's cells: equal to torch's RNNs in linear mode, exact cross-section convolutions with
masks, gradients, and the cell nodes in graphs."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from studio.modules.cells import GATE_MODES, Cell, cross_section_neighbours, load_torch_rnn
from studio.nodes.cells import CELLS

TORCH = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}


def layers(cell: str, hidden: int, count: int, mode: str = "linear", **conv) -> list[dict]:
    gates = [{"mode": mode, **conv} for _ in CELLS[cell][1]]
    return [{"hidden_size": hidden, "gates": gates}] * count


@pytest.mark.parametrize(("cell", "num_layers", "bidirectional", "mode"), [
    (c, n, bi, m) for c in TORCH for n, bi in ((1, False), (2, True), (3, False))
    for m in ("linear", "pointwise")
])
def test_linear_cells_equal_torch_rnns(cell, num_layers, bidirectional, mode):
    torch.manual_seed(0)
    ref = TORCH[cell](3, 5, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    ours = Cell(cell, 3, layers(cell, 5, num_layers, mode), bidirectional=bidirectional)
    load_torch_rnn(ours, ref)
    x = torch.randn(2, 6, 9, 3)
    expected, state = ref(x.reshape(12, 9, 3))
    assert (ours(x).reshape(12, 9, -1) - expected).abs().max() <= 1e-5
    # the final state: the last layer's h_n (both directions, in torch's order)
    h_n = state[0] if cell == "lstm" else state
    ours.output = "last"
    want = torch.cat(list(h_n[-(2 if bidirectional else 1):]), dim=-1)
    assert (ours(x).reshape(12, -1) - want).abs().max() <= 1e-5


def conv_over_stocks(values, weight, kernel, dilation, padding_mode):
    """Reference: F.conv1d along the stock axis of (N, C) rows, "same" length, torch's padding."""
    total = dilation * (kernel - 1)
    left, right = total // 2, total - total // 2
    seq = values.t().unsqueeze(0)  # (1, C, N)
    if padding_mode == "zeros":
        seq = F.pad(seq, (left, right))
    else:
        seq = F.pad(seq, (left, right), mode=padding_mode)
    return F.conv1d(seq, weight, dilation=dilation)[0].t()


@pytest.mark.parametrize(("kernel", "dilation", "padding_mode"),
                         list(itertools.product([1, 2, 3, 5], [1, 2],
                                                ["zeros", "replicate", "reflect", "circular"])))
def test_cross_section_gather_is_a_convolution_over_stocks(kernel, dilation, padding_mode):
    from studio.modules.cells import GateLayer

    torch.manual_seed(kernel * 10 + dilation)
    stocks, channels = 11, 4
    layer = GateLayer(channels, 0, 6, "cross_section", kernel, dilation, padding_mode, bias=False)
    values = torch.randn(stocks, channels)
    index = cross_section_neighbours(None, 1, stocks, kernel, dilation, padding_mode, "cpu")
    wx, _ = layer._matrices()
    ours = GateLayer.gather(values, index) @ wx.t()
    expected = conv_over_stocks(values, layer.weight, kernel, dilation, padding_mode)
    assert (ours - expected).abs().max() <= 1e-5


def _cell_cross(cell="gru", padding_mode="zeros", kernel=3):
    torch.manual_seed(3)
    return Cell(cell, 3, layers(cell, 4, 2, "cross_section", kernel_size=kernel, dilation=1,
                                padding_mode=padding_mode), output="sequence").eval()


@pytest.mark.parametrize("padding_mode", ["zeros", "replicate", "reflect", "circular"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_a_masked_stock_is_the_same_as_an_absent_one(cell, padding_mode):
    model = _cell_cross(cell, padding_mode)
    x = torch.randn(2, 9, 6, 3)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 4] = False  # absent in the middle of date 0
    mask[1, 0] = False  # absent at the edge of date 1
    with torch.no_grad():
        full = model(x, mask)
        x_poisoned = x.clone()
        x_poisoned[0, 4] = 1e3  # what sits in an absent slot must not matter
        x_poisoned[1, 0] = -1e3
        assert torch.allclose(model(x_poisoned, mask)[mask], full[mask], atol=1e-6)
        # compared with the stock removed from the data altogether
        keep0 = [i for i in range(9) if i != 4]
        keep1 = list(range(1, 9))
        alone0 = model(x[:1, keep0], None)
        alone1 = model(x[1:, keep1], None)
    assert torch.allclose(full[0, keep0], alone0[0], atol=1e-6)
    assert torch.allclose(full[1, keep1], alone1[0], atol=1e-6)


def test_kernel_one_is_equivariant_to_permuting_stocks_and_kernel_three_is_not():
    x = torch.randn(1, 8, 5, 3)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    for kernel, equivariant in ((1, True), (3, False)):
        model = _cell_cross("gru", "zeros", kernel)
        with torch.no_grad():
            moved = model(x[:, perm])
            back = model(x)[:, perm]
        assert torch.allclose(moved, back, atol=1e-6) is equivariant


def test_pointwise_and_linear_compute_the_same_function():
    torch.manual_seed(4)
    lin = Cell("lstmc", 3, layers("lstmc", 5, 2, "linear"))
    pw = Cell("lstmc", 3, layers("lstmc", 5, 2, "pointwise"))
    with torch.no_grad():
        for a, b in zip(lin.parameters(), pw.parameters(), strict=True):
            b.copy_(a.view_as(b))
    x = torch.randn(2, 4, 6, 3)
    assert torch.allclose(lin(x), pw(x), atol=1e-6)


@pytest.mark.parametrize(("cell", "mode"), list(itertools.product(CELLS, GATE_MODES)))
def test_gradients_are_right(cell, mode):
    torch.manual_seed(5)
    model = Cell(cell, 2, layers(cell, 3, 1, mode, kernel_size=3, dilation=1, padding_mode="replicate"),
                 bidirectional=True).double()
    x = torch.randn(1, 5, 4, 2, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, False, True, True]])
    assert torch.autograd.gradcheck(lambda inp: model(inp, mask), (x,), eps=1e-6, atol=1e-5)


def test_pass_cells_follow_their_equations():
    """PassCell-1: h' = g * tanh(v) + (1 - g) * h with (g, v) = split(W [x, h] + b), g = sigmoid(.)."""
    torch.manual_seed(6)
    model = Cell("pass1", 2, layers("pass1", 3, 1))
    x = torch.randn(1, 1, 4, 2)
    gate = model.layers[0][0].gates[0]
    h = torch.zeros(3)
    for t in range(4):
        pre = gate.weight @ torch.cat([x[0, 0, t], h]) + gate.bias
        g, v = torch.sigmoid(pre[:3]), torch.tanh(pre[3:])
        h = g * v + (1 - g) * h
    assert torch.allclose(model(x)[0, 0, -1], h, atol=1e-6)

    model = Cell("pass2", 2, layers("pass2", 3, 1))
    g1, g2 = model.layers[0][0].gates
    h, c = torch.zeros(3), torch.zeros(3)
    for t in range(4):
        g = torch.sigmoid(g1.weight @ torch.cat([x[0, 0, t], h]) + g1.bias)
        u, o = (g2.weight @ torch.cat([x[0, 0, t], h, c]) + g2.bias).chunk(2)
        c = g * torch.tanh(u) + (1 - g) * c
        h = torch.sigmoid(o) * torch.tanh(c)
    assert torch.allclose(model(x)[0, 0, -1], h, atol=1e-6)


def test_lstmc_gates_see_the_cell_state():
    torch.manual_seed(7)
    model = Cell("lstmc", 2, layers("lstmc", 3, 1))
    gate = model.layers[0][0].gates[0]
    assert gate.weight.shape == (12, 2 + 3 + 3)
    x = torch.randn(1, 1, 3, 2)
    h, c = torch.zeros(3), torch.zeros(3)
    for t in range(3):
        i, f, g, o = (gate.weight @ torch.cat([x[0, 0, t], h, c]) + gate.bias).chunk(4)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    assert torch.allclose(model(x)[0, 0, -1], h, atol=1e-6)


@pytest.mark.parametrize("cell", ["gru", "pass2"])
def test_compiled_steps_give_the_eager_outputs_and_gradients(cell):
    """compile_cell_steps swaps in torch.compile of each step's pointwise update: the same function."""
    from studio.modules.cells import CellDirection, compile_cell_steps, step_update

    torch.manual_seed(3)
    gates = [{"mode": "cross_section", "kernel_size": 3, "dilation": 1, "padding_mode": "zeros"},
             {"mode": "linear"}]
    model = Cell(cell, 3, [{"hidden_size": 8, "gates": gates}, {"hidden_size": 8, "gates": gates}])
    x = torch.randn(2, 6, 5, 3)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False

    def outputs_and_grads():
        model.zero_grad()
        out = model(x, mask)
        out.square().mean().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters()]

    eager_out, eager_grads = outputs_and_grads()
    assert compile_cell_steps(model) == 2  # one direction in each of two layers
    directions = [m for m in model.modules() if isinstance(m, CellDirection)]
    assert all(d.update is not step_update(cell) for d in directions)
    compiled_out, compiled_grads = outputs_and_grads()
    torch.testing.assert_close(compiled_out, eager_out, rtol=1e-5, atol=1e-6)
    for got, want in zip(compiled_grads, eager_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert compile_cell_steps(model, on=False) == 2
    assert all(d.update is step_update(cell) for d in directions)
    torch.testing.assert_close(outputs_and_grads()[0], eager_out, rtol=0, atol=0)
