"""Reducing a sequence over time to one vector per stock."""

from __future__ import annotations

from studio.core.node_type import NodeType, Port, Recipe, ShapeError
from studio.core.params import ChoiceParam, IntParam
from studio.core.shapes import SEQ, VEC, TensorShape
from studio.nodes.common import in_channels_param


class TimeReduce(NodeType):
    type_id = "reduce_time"
    category = "Reduce"
    title = "Reduce over time"
    doc = ("One vector per stock from a sequence: the last step, or the mean or maximum over all steps "
           "(Attention pooling learns the weighting).")
    inputs = (Port("x", (SEQ,), "N×L×C"),)
    outputs = (Port("y", (VEC,), "N×C"),)
    params = (ChoiceParam("mode", "last", "last step, mean or max over time",
                          choices=("last", "mean", "max")),)
    examples = ({"mode": "mean"}, {"mode": "max"})

    def output_aliases_input(self, params):
        return params["mode"] == "last"  # a view of the last step

    def infer(self, params, inputs, ctx):
        return {"y": TensorShape.vec(inputs["x"].channels)}

    def build(self, params, inputs, ctx):
        return Recipe("studio.modules.reduce.TimeReduce", {"mode": params["mode"]})


class AttentionPool(NodeType):
    type_id = "attention_pool"
    category = "Reduce"
    title = "Attention pooling"
    doc = ("One vector per stock as a learned weighting of the steps: a learned query per head scores every "
           "step (x_t · q / √(C/heads)), a softmax over time turns the scores into weights, and the "
           "output is the weighted sum of the steps. The queries start at zero, i.e. as the mean over time.")
    inputs = (Port("x", (SEQ,), "N×L×C"),)
    outputs = (
        Port("y", (VEC,), "the weighted sum: N×C"),
        Port("weights", (SEQ,), "each step's weight per head (sums to 1 over time): N×L×heads"),
    )
    params = (
        in_channels_param(),
        IntParam("heads", 1, "independent queries, each on its own C/heads channels", min=1, max=64),
    )
    examples = ({"heads": 2}, {"in_channels": 4, "heads": 4})

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        channels = self.resolve_channels(params, "in_channels", x, "x")
        if channels % params["heads"]:
            raise ShapeError(f"heads {params['heads']} must divide the {channels} channels", param="heads")
        return {"y": TensorShape.vec(channels), "weights": TensorShape.seq(x.length, params["heads"])}

    def param_count(self, params, inputs, ctx):
        return inputs["x"].channels

    def build(self, params, inputs, ctx):
        return Recipe("studio.modules.reduce.AttentionPool", {"channels": inputs["x"].channels,
                                                              "heads": params["heads"]})
