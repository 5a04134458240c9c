"""Reducing a sequence over time to one vector per stock."""

from __future__ import annotations

from studio.core.node_type import NodeType, Port, Recipe
from studio.core.params import ChoiceParam
from studio.core.shapes import SEQ, VEC, TensorShape


class TimeReduce(NodeType):
    type_id = "reduce_time"
    category = "Reduce"
    title = "Reduce over time"
    doc = "One vector per stock from a sequence: the last step, or the mean or maximum over all steps."
    inputs = (Port("x", (SEQ,), "N×L×C"),)
    outputs = (Port("y", (VEC,), "N×C"),)
    params = (ChoiceParam("mode", "last", "last step, mean or max over time",
                          choices=("last", "mean", "max")),)
    examples = ({"mode": "mean"}, {"mode": "max"})

    def infer(self, params, inputs, ctx):
        return {"y": TensorShape.vec(inputs["x"].channels)}

    def build(self, params, inputs, ctx):
        return Recipe("studio.modules.reduce.TimeReduce", {"mode": params["mode"]})
