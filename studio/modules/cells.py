"""The seed's recurrent cells with fused, swappable gate layers (docs/cells.md has the equations).

Every gate layer computes all its gates with ONE weight over the concatenated inputs (x, h, and c
where the cell uses it), then splits. Its mode says what that weight is:

- ``linear``: a matrix, like nn.Linear, per stock;
- ``pointwise``: a kernel-1 convolution per stock (weight (out, in, 1)) — the same arithmetic as
  ``linear``, the seed's "batch: n, kernel: 1";
- ``cross_section``: a convolution whose length axis is the stocks of one date (weight (out, in, k)),
  the seed's "batch: 1, kernel: 3": each stock's gates see its neighbours in the date's stock order.
  Stocks absent that day (mask False) are removed before the convolution — the neighbours of a
  present stock are the nearest *present* stocks — so an absent stock changes nothing, exactly as
  if it were not in the data. Padding at the ends of each date's present stocks follows
  ``padding_mode`` (zeros, replicate, reflect, circular; "same" length).

The x part of every gate layer is computed for all time steps at once (one large matrix product);
only the state part runs step by step. Steps are taken with ``unbind`` (slicing a precomputed tensor
with ``g[t]`` inside the loop makes the backward quadratic).

Tensors: x (B, N, T, C) with B dates and N stocks; the loop runs on (B*N, ...) rows.
Self-contained (only torch), so the .py exporter can copy it.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F  # noqa: F401  (kept for exported files that use it)

GATE_MODES = ("linear", "pointwise", "cross_section")


def cross_section_neighbours(mask, batch: int, stocks: int, kernel_size: int, dilation: int,
                             padding_mode: str, device):
    """Index (B*N, k) of each stock's k neighbours among the present stocks of its date (in stock
    order), for a "same"-length convolution over stocks. Index B*N stands for "no neighbour" (zero
    padding, or an absent stock): GateLayer.gather appends a zero row there."""
    rows = batch * stocks
    if mask is None:
        mask = torch.ones(batch, stocks, dtype=torch.bool, device=device)
    present = mask.long()
    count = present.sum(dim=1, keepdim=True).unsqueeze(-1)  # (B, 1, 1)
    rank = (present.cumsum(dim=1) - 1).unsqueeze(-1)  # compact position of each present stock
    # slots of the present stocks in order, then the absent ones
    order = torch.argsort((1 - present) * stocks + torch.arange(stocks, device=device), dim=1)
    left = dilation * (kernel_size - 1) // 2
    offsets = torch.arange(kernel_size, device=device) * dilation - left
    pos = rank + offsets  # (B, N, k) compact positions of the neighbours
    last = (count - 1).clamp(min=0)
    valid = torch.ones_like(pos, dtype=torch.bool)
    if padding_mode == "zeros":
        valid = (pos >= 0) & (pos <= last)
    elif padding_mode == "replicate":
        pos = torch.minimum(pos.clamp(min=0), last)
    elif padding_mode == "reflect":
        period = (2 * last).clamp(min=1)
        pos = torch.remainder(pos, period)
        pos = torch.where(pos > last, 2 * last - pos, pos)
    elif padding_mode == "circular":
        pos = torch.remainder(pos, count.clamp(min=1))
    else:
        raise ValueError(f"unknown padding mode {padding_mode!r}")
    pos = pos.clamp(0, stocks - 1)
    slot = torch.gather(order, 1, pos.reshape(batch, -1)).reshape(batch, stocks, kernel_size)
    index = slot + (torch.arange(batch, device=device) * stocks).view(batch, 1, 1)
    valid = valid & mask.unsqueeze(-1)  # an absent stock's own gates see nothing
    return torch.where(valid, index, rows).reshape(rows, kernel_size)


class GateLayer(nn.Module):
    """One fused gate layer: ``out_size`` gate channels from the inputs (x, state parts...).

    ``state_bias``: a second bias on the state part, kept apart (the GRU's n layer adds it before
    the reset gate multiplies the state part, as torch does).
    """

    def __init__(self, x_size: int, state_size: int, out_size: int, mode: str = "linear",
                 kernel_size: int = 3, dilation: int = 1, padding_mode: str = "zeros", bias: bool = True,
                 state_bias: bool = False, hidden_size: int | None = None) -> None:
        super().__init__()
        if mode not in GATE_MODES:
            raise ValueError(f"unknown gate mode {mode!r}")
        self.x_size, self.state_size, self.out_size = x_size, state_size, out_size
        self.mode = mode
        self.kernel_size = kernel_size if mode == "cross_section" else 1
        self.dilation = dilation
        self.padding_mode = padding_mode
        in_size = x_size + state_size
        shape = (out_size, in_size) if mode == "linear" else (out_size, in_size, self.kernel_size)
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(out_size)) if bias else None
        self.state_bias = nn.Parameter(torch.empty(out_size)) if bias and state_bias else None
        # torch's recurrent layers draw every weight from U(-1/sqrt(hidden), 1/sqrt(hidden))
        bound = 1.0 / math.sqrt(hidden_size or out_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _matrices(self):
        """(x matrix, state matrix), each (out, k * part): the weight laid out for gathered rows."""
        w = self.weight
        if self.mode == "linear":
            return w[:, :self.x_size], w[:, self.x_size:]
        if self.mode == "pointwise":
            return w[:, :self.x_size, 0], w[:, self.x_size:, 0]
        out = self.out_size
        wx = w[:, :self.x_size].permute(0, 2, 1).reshape(out, -1)
        ws = w[:, self.x_size:].permute(0, 2, 1).reshape(out, -1)
        return wx, ws

    @staticmethod
    def gather(rows, index):
        """(..., R, C) rows -> (..., R, k * C): each row's k neighbours side by side; index R (one past
        the last row) reads zeros."""
        zero = rows.new_zeros(*rows.shape[:-2], 1, rows.shape[-1])
        picked = torch.cat([rows, zero], dim=-2)[..., index, :]  # (..., R, k, C)
        return picked.reshape(*picked.shape[:-2], -1)

    def project_x(self, x, neighbours, wx):
        """x (T, R, C) -> (T, R, out): the x part of every step, plus the bias."""
        if self.mode == "cross_section":
            x = self.gather(x, neighbours)
        y = torch.matmul(x, wx.t())
        return y + self.bias if self.bias is not None else y


# The pointwise part of one step of each cell: what follows the step's matrix products. Kept apart so
# that torch.compile can fuse it into one kernel (compile_cell_steps); eager, it is the same code.
def gru_update(g0, rz_h, g1, n_h, h):
    r, z = torch.sigmoid(g0 + rz_h).chunk(2, dim=1)
    n = torch.tanh(torch.addcmul(g1, r, n_h))
    return torch.lerp(n, h, z)  # (1 - z) * n + z * h


def lstm_update(gates, c):
    hidden = c.shape[1]
    i, f = torch.sigmoid(gates[:, :2 * hidden]).chunk(2, dim=-1)
    o = torch.sigmoid(gates[:, 3 * hidden:])
    c = torch.addcmul(f * c, i, torch.tanh(gates[:, 2 * hidden:3 * hidden]))
    return o * torch.tanh(c), c


def pass1_update(pre, h):
    hidden = h.shape[1]
    gate = torch.sigmoid(pre[:, :hidden])
    return torch.lerp(h, torch.tanh(pre[:, hidden:]), gate)  # gate * tanh(v) + (1 - gate) * h


def pass2_update(gate_pre, pre, c):
    hidden = c.shape[1]
    c = torch.lerp(c, torch.tanh(pre[:, :hidden]), torch.sigmoid(gate_pre))  # gate * tanh(u) + (1 - gate) * c
    return torch.sigmoid(pre[:, hidden:]) * torch.tanh(c), c


def step_update(cell: str):
    """The pointwise update of a step of ``cell`` (None for the plain rnn: one activation, nothing to fuse)."""
    return {"gru": gru_update, "lstm": lstm_update, "lstmc": lstm_update, "pass1": pass1_update,
            "pass2": pass2_update}.get(cell)


_compiled_updates: dict[str, object] = {}  # by update's name: compiled once a process


def compile_cell_steps(model: nn.Module, on: bool = True) -> int:
    """Run every recurrent cell in ``model`` with its step's pointwise update compiled by torch.compile
    (``on=False``: back to eager). The loop over steps stays in Python, so the compile is of one small
    function per cell type (seconds, once per process), not of the unrolled sequence (minutes); the
    results equal the eager ones to float rounding. Returns the number of cell directions changed."""
    changed = 0
    for module in model.modules():
        if isinstance(module, CellDirection) and step_update(module.cell) is not None:
            eager = step_update(module.cell)
            if on and eager.__name__ not in _compiled_updates:
                _compiled_updates[eager.__name__] = torch.compile(eager)
            module.update = _compiled_updates[eager.__name__] if on else eager
            changed += 1
    return changed


class CellDirection(nn.Module):
    """One direction of one layer of a cell: its gate layers and the recurrence.

    ``gates``: one dict per gate layer with ``mode`` and, for cross_section, ``kernel_size``,
    ``dilation`` and ``padding_mode``.
    """

    # per cell type: (gate channels / hidden, state vectors the layer sees) of each gate layer
    LAYOUT = {  # noqa: RUF012 (read only)
        "rnn": [(1, 1)],
        "gru": [(2, 1), (1, 1)],
        "lstm": [(4, 1)],
        "lstmc": [(4, 2)],
        "pass1": [(2, 1)],
        "pass2": [(1, 1), (2, 2)],
    }

    def __init__(self, cell: str, input_size: int, hidden_size: int, gates, bias: bool = True,
                 nonlinearity: str = "tanh") -> None:
        super().__init__()
        if cell not in self.LAYOUT:
            raise ValueError(f"unknown cell {cell!r}")
        layout = self.LAYOUT[cell]
        if len(gates) != len(layout):
            raise ValueError(f"a {cell} cell has {len(layout)} gate layers, gets {len(gates)}")
        self.cell, self.hidden_size, self.nonlinearity = cell, hidden_size, nonlinearity
        self.gates = nn.ModuleList([
            GateLayer(input_size, seen * hidden_size, n * hidden_size, g["mode"], g.get("kernel_size", 3),
                      g.get("dilation", 1), g.get("padding_mode", "zeros"), bias,
                      state_bias=(cell == "gru" and i == 1), hidden_size=hidden_size)
            for i, ((n, seen), g) in enumerate(zip(layout, gates, strict=True))
        ])
        #: the step's pointwise update: eager, or compiled by compile_cell_steps
        self.update = step_update(cell)

    def forward(self, x, neighbours):
        """x (T, R, C), neighbours: one neighbour index (R, k) or None per gate layer ->
        (outputs (T, R, H), final hidden (R, H))."""
        mats = [g._matrices() for g in self.gates]
        gx = [g.project_x(x, nb, m[0]).unbind(0)
              for g, nb, m in zip(self.gates, neighbours, mats, strict=True)]
        rows, hidden = x.shape[1], self.hidden_size
        h = x.new_zeros(rows, hidden)
        c = x.new_zeros(rows, hidden)
        # state matrices transposed once; the GRU's two layers share one product when they see alike
        ws = [m[1].t() for m in mats]
        shared = self.cell == "gru" and neighbours[0] is neighbours[1]
        if shared:
            w_shared = torch.cat(ws, dim=1)

        def state_part(i, s, bias=None):
            if neighbours[i] is not None:
                s = GateLayer.gather(s, neighbours[i])
            return torch.mm(s, ws[i]) if bias is None else torch.addmm(bias, s, ws[i])

        outputs = []
        cell, update = self.cell, self.update
        if cell == "rnn":
            act = torch.tanh if self.nonlinearity == "tanh" else torch.relu
            for g0 in gx[0]:
                h = act(g0 + state_part(0, h))
                outputs.append(h)
        elif cell == "gru":
            nb = neighbours[0]
            n_bias = self.gates[1].state_bias
            for g0, g1 in zip(gx[0], gx[1], strict=True):
                if shared:
                    hh = torch.mm(GateLayer.gather(h, nb) if nb is not None else h, w_shared)
                    # split, not slices: its backward is one cat, where each slice's fills a zero tensor
                    rz_h, n_h = hh.split([2 * hidden, hidden], dim=1)
                    if n_bias is not None:
                        n_h = n_h + n_bias
                else:
                    rz_h, n_h = state_part(0, h), state_part(1, h, n_bias)
                h = update(g0, rz_h, g1, n_h, h)
                outputs.append(h)
        elif cell in ("lstm", "lstmc"):
            for g0 in gx[0]:
                s = h if cell == "lstm" else torch.cat([h, c], dim=-1)
                h, c = update(g0 + state_part(0, s), c)
                outputs.append(h)
        elif cell == "pass1":
            for g0 in gx[0]:
                h = update(g0 + state_part(0, h), h)
                outputs.append(h)
        else:  # pass2
            for g0, g1 in zip(gx[0], gx[1], strict=True):
                gate_pre = g0 + state_part(0, h)
                h, c = update(gate_pre, g1 + state_part(1, torch.cat([h, c], dim=-1)), c)
                outputs.append(h)
        return torch.stack(outputs), h


class Cell(nn.Module):
    """Stacked (and optionally bidirectional) layers of one cell type over a (B, N, T, C) sequence.

    ``layers``: one dict per layer: ``hidden_size`` and ``gates`` (one dict per gate layer, see
    CellDirection). Returns the last layer's sequence (B, N, T, H * directions) or, with
    ``output="last"``, its final hidden states (B, N, H * directions); the backward direction's final
    state is the one at the first step, as in torch. ``dropout`` acts between layers while training.
    """


    def __init__(self, cell: str, input_size: int, layers, bias: bool = True, dropout: float = 0.0,
                 bidirectional: bool = False, output: str = "sequence", nonlinearity: str = "tanh") -> None:
        super().__init__()
        if output not in ("sequence", "last"):
            raise ValueError(f"output must be 'sequence' or 'last', gets {output!r}")
        self.cell, self.output, self.dropout, self.bidirectional = cell, output, dropout, bidirectional
        directions = 2 if bidirectional else 1
        self.specs = [[(g["mode"], g.get("kernel_size", 3), g.get("dilation", 1),
                        g.get("padding_mode", "zeros")) for g in spec["gates"]] for spec in layers]
        self.layers = nn.ModuleList()
        size = input_size
        for spec in layers:
            self.layers.append(nn.ModuleList([
                CellDirection(cell, size, spec["hidden_size"], spec["gates"], bias, nonlinearity)
                for _ in range(directions)
            ]))
            size = spec["hidden_size"] * directions

    def forward(self, x, mask=None):
        batch, stocks, steps, channels = x.shape
        seq = x.reshape(batch * stocks, steps, channels).transpose(0, 1)  # (T, R, C)
        found = {}

        def neighbours(mode, kernel_size, dilation, padding_mode):
            if mode != "cross_section":
                return None
            key = (kernel_size, dilation, padding_mode)
            if key not in found:
                found[key] = cross_section_neighbours(mask, batch, stocks, kernel_size, dilation,
                                                      padding_mode, x.device)
            return found[key]

        finals = []
        for i, layer in enumerate(self.layers):
            if i > 0 and self.dropout > 0 and self.training:
                seq = torch.nn.functional.dropout(seq, self.dropout, True)
            nbs = [neighbours(*spec) for spec in self.specs[i]]
            out, last = layer[0](seq, nbs)
            finals = [last]
            if self.bidirectional:
                back, back_last = layer[1](seq.flip(0), nbs)
                out = torch.cat([out, back.flip(0)], dim=-1)
                finals.append(back_last)
            seq = out
        if self.output == "last":
            return torch.cat(finals, dim=-1).reshape(batch, stocks, -1)
        return seq.transpose(0, 1).reshape(batch, stocks, steps, -1)


@torch.no_grad()
def load_torch_rnn(cell: Cell, rnn: nn.Module) -> None:
    """Copy a torch.nn.GRU / nn.LSTM / nn.RNN's weights into a Cell of the same type, sizes, layers
    and directions whose gate layers are linear or pointwise: both then compute the same function.

    Mapping (layer l, direction d; torch's names with suffix _l{l}, plus _reverse for d = 1):
    - GRU: gate layer 1 (r, z) weight = [W_ih[:2H] | W_hh[:2H]], bias = b_ih[:2H] + b_hh[:2H];
      gate layer 2 (n) weight = [W_ih[2H:] | W_hh[2H:]], bias = b_ih[2H:], state_bias = b_hh[2H:].
    - LSTM (gates i, f, g, o) and RNN: gate layer 1 weight = [W_ih | W_hh], bias = b_ih + b_hh.
    """
    kinds = {"GRU": "gru", "LSTM": "lstm", "RNN": "rnn"}
    kind = kinds.get(type(rnn).__name__)
    if kind != cell.cell or len(cell.layers) != rnn.num_layers or cell.bidirectional != rnn.bidirectional:
        raise ValueError("the torch module and the cell differ in type, layers or directions")
    hidden = rnn.hidden_size
    for index, layer in enumerate(cell.layers):
        for d, direction in enumerate(layer):
            suffix = f"_l{index}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(rnn, "weight_ih" + suffix), getattr(rnn, "weight_hh" + suffix)
            b_ih = getattr(rnn, "bias_ih" + suffix, None)
            b_hh = getattr(rnn, "bias_hh" + suffix, None)
            cuts = [(0, 2 * hidden), (2 * hidden, 3 * hidden)] if kind == "gru" else [(0, w_ih.shape[0])]
            for i, (lo, hi) in enumerate(cuts):
                gate = direction.gates[i]
                if gate.mode == "cross_section":
                    raise ValueError("only linear or pointwise gate layers match a torch RNN")
                weight = torch.cat([w_ih[lo:hi], w_hh[lo:hi]], dim=1)
                gate.weight.copy_(weight.view_as(gate.weight))
                if gate.bias is not None and b_ih is not None:
                    if gate.state_bias is not None:
                        gate.bias.copy_(b_ih[lo:hi])
                        gate.state_bias.copy_(b_hh[lo:hi])
                    else:
                        gate.bias.copy_(b_ih[lo:hi] + b_hh[lo:hi])
