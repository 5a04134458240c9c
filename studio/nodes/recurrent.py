"""Recurrent layers from torch: nn.GRU, nn.LSTM, nn.RNN (the seed's own cells come with the cell
catalogue, studio.nodes.cells)."""

from __future__ import annotations

from typing import ClassVar

from studio.core.node_type import NodeType, Port, Recipe
from studio.core.params import BoolParam, ChoiceParam, FloatParam, IntParam, Param
from studio.core.shapes import SEQ, VEC, TensorShape
from studio.nodes.common import MAX_CHANNELS, MAX_LAYERS, channels_param, in_channels_param

LAYOUT_NOTE = ("batch_first is fixed by the tensor layout: every stock's sequence is one batch row, and "
               "the initial state is zero.")


class _TorchRecurrent(NodeType):
    """A torch recurrent layer over the sequence: ports y (every step of the last layer) and last (its
    final hidden state, both directions)."""

    #: gate blocks per layer: GRU 3, LSTM 4, RNN 1
    gates: ClassVar[int]
    target: ClassVar[str]
    category = "Recurrent"
    inputs = (Port("x", (SEQ,), "N×L×input_size"),)
    outputs = (
        Port("y", (SEQ,), "every step's output of the last layer: N×L×(hidden_size·directions)"),
        Port("last", (VEC,), "final hidden state of the last layer: N×(hidden_size·directions)"),
    )

    @staticmethod
    def common_params(name: str) -> tuple[Param, ...]:
        return (
            in_channels_param("input_size", "input features"),
            channels_param("hidden_size", 32, "features of the hidden state"),
            IntParam("num_layers", 1, f"stacked {name} layers", min=1, max=MAX_LAYERS),
        )

    @staticmethod
    def tail_params() -> tuple[Param, ...]:
        return (
            BoolParam("bias", True, "learn the bias vectors b_ih and b_hh"),
            FloatParam("dropout", 0.0, "dropout between stacked layers (not after the last)", min=0.0,
                       below=1.0),
            BoolParam("bidirectional", False, "also run the sequence backwards and concatenate both"),
        )

    def warn_params(self, params):
        if params["dropout"] > 0 and params["num_layers"] == 1:
            return [("dropout", f"acts between stacked layers only: with num_layers 1 it does nothing "
                     f"(use a Dropout node after the {self.title.split()[0]})")]
        return []

    def output_size(self, params) -> int:
        """Features per direction of y and last."""
        return params["hidden_size"]

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        self.resolve_channels(params, "input_size", x, "x")
        width = self.output_size(params) * (2 if params["bidirectional"] else 1)
        return {"y": TensorShape.seq(x.length, width), "last": TensorShape.vec(width)}

    def param_count(self, params, inputs, ctx):
        hidden, directions = params["hidden_size"], 2 if params["bidirectional"] else 1
        out = self.output_size(params)
        projection = out * hidden if out != hidden else 0  # the LSTM's W_hr
        total, size_in = 0, inputs["x"].channels
        for _ in range(params["num_layers"]):
            rows = self.gates * hidden
            per_direction = rows * (size_in + out) + (2 * rows if params["bias"] else 0) + projection
            total += directions * per_direction
            size_in = out * directions
        return total

    def activation_count(self, params, inputs, outputs, ctx):
        # every layer keeps its gates and states at every step for the backward
        steps, directions = inputs["x"].length, 2 if params["bidirectional"] else 1
        per_step = (self.gates + 2) * params["hidden_size"] * directions
        return steps * per_step * params["num_layers"] + super().activation_count(params, inputs, outputs, ctx)

    def build_kwargs(self, params) -> dict:
        return {k: params[k] for k in ("hidden_size", "num_layers", "bias", "dropout", "bidirectional")}

    def recipe(self, params, inputs, ctx):
        return Recipe(self.target, {"input_size": inputs["x"].channels, **self.build_kwargs(params)})


class GRU(_TorchRecurrent):
    type_id = "gru"
    title = "GRU (torch)"
    doc = ("torch.nn.GRU over the sequence. Outputs the full output sequence y and the final hidden state "
           "of the last layer (forward and, if bidirectional, backward direction). " + LAYOUT_NOTE)
    gates = 3
    target = "studio.modules.layers.SeqGRU"
    params = (*_TorchRecurrent.common_params("GRU"), *_TorchRecurrent.tail_params())
    examples = (
        {"num_layers": 2, "bidirectional": True, "dropout": 0.1},
        {"bias": False, "hidden_size": 5},
        {"input_size": 4, "num_layers": 3},
    )


class LSTM(_TorchRecurrent):
    type_id = "lstm"
    title = "LSTM (torch)"
    doc = ("torch.nn.LSTM over the sequence. Outputs the full output sequence y and the final hidden state "
           "h of the last layer (both directions if bidirectional; the cell state stays inside). With "
           "proj_size > 0 the hidden state is projected to proj_size features (LSTMP). " + LAYOUT_NOTE)
    gates = 4
    target = "studio.modules.layers.SeqLSTM"
    params = (*_TorchRecurrent.common_params("LSTM"), *_TorchRecurrent.tail_params(),
              IntParam("proj_size", 0, "project the hidden state to this many features (0: no projection; "
                       "must be below hidden_size)", min=0, max=MAX_CHANNELS))
    examples = (
        {"num_layers": 2, "bidirectional": True, "dropout": 0.1},
        {"bias": False, "hidden_size": 5},
        {"proj_size": 3, "hidden_size": 6, "num_layers": 2, "bidirectional": True},
        {"input_size": 4, "proj_size": 2, "hidden_size": 4},
    )

    def check_params(self, params):
        if params["proj_size"] >= params["hidden_size"]:
            return [("proj_size", f"must be below hidden_size {params['hidden_size']} (or 0), gets "
                     f"{params['proj_size']}")]
        return []

    def output_size(self, params):
        return params["proj_size"] or params["hidden_size"]

    def build_kwargs(self, params):
        return {**super().build_kwargs(params), "proj_size": params["proj_size"]}


class RNN(_TorchRecurrent):
    type_id = "rnn"
    title = "RNN (torch)"
    doc = ("torch.nn.RNN (Elman: h' = act(W_ih·x + b_ih + W_hh·h + b_hh)) over the sequence. Outputs the "
           "full output sequence y and the final hidden state of the last layer (both directions if "
           "bidirectional). " + LAYOUT_NOTE)
    gates = 1
    target = "studio.modules.layers.SeqRNN"
    params = (*_TorchRecurrent.common_params("RNN"),
              ChoiceParam("nonlinearity", "tanh", "activation of the new state: tanh or relu",
                          choices=("tanh", "relu")),
              *_TorchRecurrent.tail_params())
    examples = (
        {"num_layers": 2, "bidirectional": True, "dropout": 0.1, "nonlinearity": "relu"},
        {"bias": False, "hidden_size": 5},
        {"input_size": 4, "num_layers": 3},
    )

    def build_kwargs(self, params):
        return {**super().build_kwargs(params), "nonlinearity": params["nonlinearity"]}
