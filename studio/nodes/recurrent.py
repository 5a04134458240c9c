"""Recurrent layers from torch (the seed's own cells come with the cell catalogue)."""

from __future__ import annotations

from studio.core.node_type import NodeType, Port, Recipe
from studio.core.params import BoolParam, FloatParam, IntParam
from studio.core.shapes import SEQ, VEC, TensorShape
from studio.nodes.common import MAX_LAYERS, channels_param, in_channels_param


class GRU(NodeType):
    type_id = "gru"
    category = "Recurrent"
    title = "GRU (torch)"
    doc = ("torch.nn.GRU over the sequence, batch first. Outputs the full output sequence y and the final "
           "hidden state of the last layer (forward and, if bidirectional, backward direction).")
    inputs = (Port("x", (SEQ,), "N×L×input_size"),)
    outputs = (
        Port("y", (SEQ,), "every step's output of the last layer: N×L×(hidden_size·directions)"),
        Port("last", (VEC,), "final hidden state of the last layer: N×(hidden_size·directions)"),
    )
    params = (
        in_channels_param("input_size", "input features"),
        channels_param("hidden_size", 32, "features of the hidden state"),
        IntParam("num_layers", 1, "stacked GRU layers", min=1, max=MAX_LAYERS),
        BoolParam("bias", True, "learn the bias vectors b_ih and b_hh"),
        FloatParam("dropout", 0.0, "dropout between stacked layers (not after the last)", min=0.0, below=1.0),
        BoolParam("bidirectional", False, "also run the sequence backwards and concatenate both"),
    )
    examples = (
        {"num_layers": 2, "bidirectional": True, "dropout": 0.1},
        {"bias": False, "hidden_size": 5},
        {"input_size": 4, "num_layers": 3},
    )

    def warn_params(self, params):
        if params["dropout"] > 0 and params["num_layers"] == 1:
            return [("dropout", "acts between stacked layers only: with num_layers 1 it does nothing "
                     "(use a Dropout node after the GRU)")]
        return []

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        self.resolve_channels(params, "input_size", x, "x")
        width = params["hidden_size"] * (2 if params["bidirectional"] else 1)
        return {"y": TensorShape.seq(x.length, width), "last": TensorShape.vec(width)}

    def param_count(self, params, inputs, ctx):
        hidden, directions = params["hidden_size"], 2 if params["bidirectional"] else 1
        total, size_in = 0, inputs["x"].channels
        for _ in range(params["num_layers"]):
            per_direction = 3 * hidden * (size_in + hidden) + (6 * hidden if params["bias"] else 0)
            total += directions * per_direction
            size_in = hidden * directions
        return total

    def build(self, params, inputs, ctx):
        kwargs = {k: params[k] for k in ("hidden_size", "num_layers", "bias", "dropout", "bidirectional")}
        return Recipe("studio.modules.layers.SeqGRU", {"input_size": inputs["x"].channels, **kwargs})
