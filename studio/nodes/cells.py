"""The seed's recurrent cells (section 3): fused gate layers, each linear, pointwise or a convolution
across the stocks of a date; and the stack node that wires several layers in series.

Equations: docs/cells.md. Torch implementation: studio.modules.cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from studio.core.node_type import NodeType, Port, Recipe
from studio.core.params import (
    BoolParam,
    ChoiceParam,
    FloatParam,
    IntParam,
    ListParam,
    Param,
    RecordParam,
)
from studio.core.shapes import SEQ, VEC, TensorShape
from studio.nodes.common import MAX_LAYERS, channels_param, in_channels_param

GATE_MODES = ("linear", "pointwise", "cross_section")
PADDING_MODES = ("zeros", "replicate", "reflect", "circular")
MAX_STOCK_KERNEL = 63

#: cell -> (title, [(gate channels per hidden unit, state vectors seen, what the layer computes)])
CELLS: dict[str, tuple[str, list[tuple[int, int, str]]]] = {
    "rnn": ("RNN", [(1, 1, "h")]),
    "gru": ("GRU", [(2, 1, "r, z"), (1, 1, "n")]),
    "lstm": ("LSTM", [(4, 1, "i, f, g, o")]),
    "lstmc": ("LSTMC", [(4, 2, "i, f, g, o from x, h, c")]),
    "pass1": ("PassCell-1", [(2, 1, "gate, value")]),
    "pass2": ("PassCell-2", [(1, 1, "gate"), (2, 2, "u, o from x, h, c")]),
}


def cells_activation_count(cell: str, x: TensorShape, layers: list[dict], bidirectional: bool) -> int:
    """Numbers per stock a cell's steps keep for the backward (an estimate): a cell runs step by step in
    Python, and each step keeps every gate layer's input and output and the pointwise products of the
    update, over the whole window."""
    per_step, size_in = 0, x.channels
    for layer in layers:
        hidden = layer["hidden_size"]
        for gates, seen, _ in CELLS[cell][1]:
            per_step += size_in + seen * hidden + 2 * gates * hidden
        per_step += 2 * hidden
        size_in = hidden * (2 if bidirectional else 1)
    return x.length * per_step * (2 if bidirectional else 1)


def layer_param_count(cell: str, size_in: int, hidden: int, kernels: list[int], bias: bool) -> int:
    """Parameters of one direction of one layer."""
    total = 0
    for i, ((gates, seen, _), k) in enumerate(zip(CELLS[cell][1], kernels, strict=True)):
        out = gates * hidden
        total += out * (size_in + seen * hidden) * k
        if bias:
            total += out * (2 if cell == "gru" and i == 1 else 1)  # the GRU n layer keeps two biases
    return total


def cells_param_count(cell: str, size_in: int, layers: list[dict], bias: bool, bidirectional: bool) -> int:
    directions = 2 if bidirectional else 1
    total = 0
    for layer in layers:
        kernels = [g["kernel_size"] if g["mode"] == "cross_section" else 1 for g in layer["gates"]]
        total += directions * layer_param_count(cell, size_in, layer["hidden_size"], kernels, bias)
        size_in = layer["hidden_size"] * directions
    return total


COMMON_PARAMS: tuple[Param, ...] = (
    BoolParam("bias", True, "learn biases in every gate layer"),
    FloatParam("dropout", 0.0, "dropout between stacked layers while training (not after the last)",
               min=0.0, below=1.0),
    BoolParam("bidirectional", False, "also run the sequence backwards and concatenate both directions"),
    ChoiceParam("output", "last", "the whole output sequence, or the final hidden state of the last layer",
                choices=("sequence", "last")),
)


def _gate_params(i: int, role: str) -> tuple[Param, ...]:
    return (
        ChoiceParam(f"gate{i}_mode", "linear", f"gate layer {i} ({role}): linear, pointwise (kernel-1 conv "
                    "per stock) or cross_section (conv across the date's stocks)", choices=GATE_MODES),
        IntParam(f"gate{i}_kernel_size", 3, f"gate layer {i}: stocks each cross-section kernel spans",
                 min=1, max=MAX_STOCK_KERNEL),
        IntParam(f"gate{i}_dilation", 1, f"gate layer {i}: spacing of the cross-section kernel's taps",
                 min=1, max=64),
        ChoiceParam(f"gate{i}_padding_mode", "zeros", f"gate layer {i}: how the cross-section convolution "
                    "pads the ends of the date's stocks", choices=PADDING_MODES),
    )


class _Cell(NodeType):
    """One cell type over a sequence: ``num_layers`` identical layers."""

    cell: ClassVar[str]
    category = "Cells"
    inputs = (Port("x", (SEQ,), "N×L×input_size"),)
    outputs = (Port("y", (SEQ, VEC), "N×L×(hidden·directions) or N×(hidden·directions)"),)
    uses_mask = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        gates = CELLS[cls.cell][1]
        extra: tuple[Param, ...] = ()
        if cls.cell == "rnn":
            extra = (ChoiceParam("nonlinearity", "tanh", "activation of the new state",
                                 choices=("tanh", "relu")),)
        cls.params = (
            in_channels_param("input_size", "input features"),
            channels_param("hidden_size", 32, "features of the hidden state"),
            IntParam("num_layers", 1, "stacked layers (each with the same settings)", min=1, max=MAX_LAYERS),
            *COMMON_PARAMS,
            *extra,
            *(p for i, (_, _, role) in enumerate(gates, start=1) for p in _gate_params(i, role)),
        )
        cls.examples = (
            {"num_layers": 2, "bidirectional": True, "output": "sequence", "dropout": 0.1},
            {"gate1_mode": "cross_section", "gate1_kernel_size": 3, "output": "sequence"},
            {"gate1_mode": "pointwise", "bias": False, "hidden_size": 6},
            {f"gate{len(gates)}_mode": "cross_section", f"gate{len(gates)}_padding_mode": "replicate",
             f"gate{len(gates)}_dilation": 2, "bidirectional": True},
        )

    def layers(self, params: Mapping[str, Any]) -> list[dict]:
        gates = []
        for i in range(1, len(CELLS[self.cell][1]) + 1):
            gates.append({"mode": params[f"gate{i}_mode"], "kernel_size": params[f"gate{i}_kernel_size"],
                          "dilation": params[f"gate{i}_dilation"],
                          "padding_mode": params[f"gate{i}_padding_mode"]})
        return [{"hidden_size": params["hidden_size"], "gates": gates}] * params["num_layers"]

    def output_ports(self, params, ctx=None):
        kind = SEQ if params["output"] == "sequence" else VEC
        return (Port("y", (kind,), "the last layer's output sequence" if kind == SEQ
                     else "the last layer's final hidden state"),)

    def warn_params(self, params):
        if params["dropout"] > 0 and params["num_layers"] == 1:
            return [("dropout", "acts between stacked layers only: with num_layers 1 it does nothing")]
        return []

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        self.resolve_channels(params, "input_size", x, "x")
        width = params["hidden_size"] * (2 if params["bidirectional"] else 1)
        if params["output"] == "sequence":
            return {"y": TensorShape.seq(x.length, width)}
        return {"y": TensorShape.vec(width)}

    def param_count(self, params, inputs, ctx):
        return cells_param_count(self.cell, inputs["x"].channels, self.layers(params), params["bias"],
                                 params["bidirectional"])

    def activation_count(self, params, inputs, outputs, ctx):
        return cells_activation_count(self.cell, inputs["x"], self.layers(params),
                                      params["bidirectional"]) + super().activation_count(params, inputs, outputs, ctx)

    def recipe(self, params, inputs, ctx):
        kwargs = {"cell": self.cell, "input_size": inputs["x"].channels, "layers": self.layers(params),
                  "bias": params["bias"], "dropout": params["dropout"],
                  "bidirectional": params["bidirectional"], "output": params["output"]}
        if self.cell == "rnn":
            kwargs["nonlinearity"] = params["nonlinearity"]
        return Recipe("studio.modules.cells.Cell", kwargs)


class RNNCell(_Cell):
    type_id = "cell_rnn"
    cell = "rnn"
    title = "RNN cell (convRNN)"
    doc = "h' = act(W[x, h] + b): one fused gate layer, linear, pointwise or across stocks."


class GRUCell(_Cell):
    type_id = "cell_gru"
    cell = "gru"
    title = "GRU cell (convGRU)"
    doc = ("GRU with two fused gate layers: r, z from [x, h], then n from x and r ⊙ (h part); each layer "
           "linear, pointwise or across stocks. Equals torch.nn.GRU in linear mode.")


class LSTMCell(_Cell):
    type_id = "cell_lstm"
    cell = "lstm"
    title = "LSTM cell (convLSTM)"
    doc = "LSTM with one fused gate layer for i, f, g, o. Equals torch.nn.LSTM in linear mode."


class LSTMCCell(_Cell):
    type_id = "cell_lstmc"
    cell = "lstmc"
    title = "LSTMC cell (convLSTMC)"
    doc = "An LSTM whose gates also see the cell state: one fused gate layer over [x, h, c]."


class PassCell1(_Cell):
    type_id = "cell_pass1"
    cell = "pass1"
    title = "PassCell-1 (conv_passcell_1)"
    doc = "A gated pass-through of the input: h' = g ⊙ tanh(v) + (1 − g) ⊙ h, g and v from one gate layer."


class PassCell2(_Cell):
    type_id = "cell_pass2"
    cell = "pass2"
    title = "PassCell-2 (conv_passcell_2)"
    doc = ("Two gate layers: a gate g from [x, h], then u, o from [x, h, c]; the gate passes tanh(u) into "
           "the cell state c, and h' = σ(o) ⊙ tanh(c').")


LAYER_FIELDS = (
    channels_param("hidden_size", 32, "features of this layer's hidden state"),
    ListParam("modes", ["linear"], "one mode per gate layer of the cell: linear, pointwise or cross_section",
              item=ChoiceParam("mode", "linear", "gate layer mode", choices=GATE_MODES), min_items=1,
              max_items=2),
    IntParam("kernel_size", 3, "stocks each cross-section kernel spans", min=1, max=MAX_STOCK_KERNEL),
    IntParam("dilation", 1, "spacing of the cross-section kernel's taps", min=1, max=64),
    ChoiceParam("padding_mode", "zeros", "padding at the ends of the date's stocks", choices=PADDING_MODES),
)


class CellStack(NodeType):
    type_id = "cell_stack"
    category = "Cells"
    title = "Cell stack (multilayer)"
    doc = ("Several layers of one cell type in series, each with its own size and gate modes — the seed's "
           "multilayer linking device, e.g. convGRU(conv+conv) with layers (pointwise), (pointwise), "
           "(cross_section k=3), (cross_section k=3).")
    inputs = (Port("x", (SEQ,), "N×L×input_size"),)
    outputs = (Port("y", (SEQ, VEC), "N×L×(hidden·directions) or N×(hidden·directions)"),)
    uses_mask = True
    params = (
        ChoiceParam("cell", "gru", "cell type of every layer", choices=tuple(CELLS)),
        in_channels_param("input_size", "input features"),
        ListParam("layers", [{"hidden_size": 32, "modes": ["linear", "linear"], "kernel_size": 3,
                              "dilation": 1, "padding_mode": "zeros"}],
                  "one object per layer, first to last: hidden_size, modes (one per gate layer), "
                  "kernel_size, dilation, padding_mode", item=RecordParam("layer", None, "a layer",
                                                                         fields=LAYER_FIELDS),
                  min_items=1, max_items=MAX_LAYERS),
        *COMMON_PARAMS,
        ChoiceParam("nonlinearity", "tanh", "activation of RNN cells (others ignore it)",
                    choices=("tanh", "relu")),
    )
    examples = (
        {"cell": "lstm", "layers": [
            {"hidden_size": 8, "modes": ["pointwise"], "kernel_size": 1, "dilation": 1,
             "padding_mode": "zeros"},
            {"hidden_size": 6, "modes": ["cross_section"], "kernel_size": 3, "dilation": 2,
             "padding_mode": "reflect"}], "output": "sequence", "bidirectional": True},
        {"cell": "pass2", "layers": [
            {"hidden_size": 5, "modes": ["cross_section", "linear"], "kernel_size": 3, "dilation": 1,
             "padding_mode": "circular"}]},
    )

    def output_ports(self, params, ctx=None):
        return (Port("y", (SEQ if params["output"] == "sequence" else VEC,)),)

    def check_params(self, params):
        needed = len(CELLS[params["cell"]][1])
        return [("layers", f"item {i}: a {params['cell']} cell has {needed} gate layer"
                 f"{'s' if needed > 1 else ''}, so modes needs {needed} entr{'ies' if needed > 1 else 'y'}, "
                 f"gets {len(layer['modes'])}")
                for i, layer in enumerate(params["layers"]) if len(layer["modes"]) != needed]

    def layers(self, params) -> list[dict]:
        return [{"hidden_size": layer["hidden_size"],
                 "gates": [{"mode": mode, "kernel_size": layer["kernel_size"], "dilation": layer["dilation"],
                            "padding_mode": layer["padding_mode"]} for mode in layer["modes"]]}
                for layer in params["layers"]]

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        self.resolve_channels(params, "input_size", x, "x")
        width = params["layers"][-1]["hidden_size"] * (2 if params["bidirectional"] else 1)
        if params["output"] == "sequence":
            return {"y": TensorShape.seq(x.length, width)}
        return {"y": TensorShape.vec(width)}

    def param_count(self, params, inputs, ctx):
        return cells_param_count(params["cell"], inputs["x"].channels, self.layers(params), params["bias"],
                                 params["bidirectional"])

    def activation_count(self, params, inputs, outputs, ctx):
        return cells_activation_count(params["cell"], inputs["x"], self.layers(params),
                                      params["bidirectional"]) + super().activation_count(params, inputs, outputs, ctx)

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.cells.Cell", {
            "cell": params["cell"], "input_size": inputs["x"].channels, "layers": self.layers(params),
            "bias": params["bias"], "dropout": params["dropout"], "bidirectional": params["bidirectional"],
            "output": params["output"], "nonlinearity": params["nonlinearity"]})
