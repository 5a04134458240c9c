"""Merging parallel branches: element-wise Add and channel Concat."""

from __future__ import annotations

from studio.core.node_type import NodeType, Port, Recipe, ShapeError
from studio.core.params import IntParam
from studio.core.shapes import MAP, SEQ, VEC, TensorShape
from studio.nodes.common import same_shapes

MERGEABLE = (SEQ, VEC, MAP)


def _ports(params) -> tuple[Port, ...]:
    return tuple(Port(f"x{i}", MERGEABLE, f"branch {i}") for i in range(1, params["inputs"] + 1))


class Add(NodeType):
    type_id = "add"
    category = "Merge"
    title = "Add"
    doc = "Element-wise sum of parallel branches of the same shape (e.g. a residual connection)."
    outputs = (Port("y", MERGEABLE),)
    params = (IntParam("inputs", 2, "number of branches to add", min=2, max=16),)
    examples = ({"inputs": 3},)

    def input_ports(self, params, ctx=None):
        return _ports(params)

    def infer(self, params, inputs, ctx):
        return {"y": same_shapes(inputs, [p.name for p in _ports(params)])}

    def build(self, params, inputs, ctx):
        return Recipe("studio.modules.merge.AddN", {})


class Concat(NodeType):
    type_id = "concat"
    category = "Merge"
    title = "Concat"
    doc = "Joins parallel branches along the channel axis; other axes (length, height, width) must agree."
    outputs = (Port("y", MERGEABLE),)
    params = (IntParam("inputs", 2, "number of branches to join", min=2, max=16),)
    examples = ({"inputs": 4},)

    def input_ports(self, params, ctx=None):
        return _ports(params)

    def infer(self, params, inputs, ctx):
        names = [p.name for p in _ports(params)]
        first = inputs[names[0]]
        for name in names[1:]:
            shape = inputs[name]
            if shape.kind != first.kind or shape.dims[:-1] != first.dims[:-1]:
                like = "×".join(["N", *map(str, first.dims[:-1]), "C"])
                raise ShapeError(f"expects {first.kind} {like} (like {names[0]}: {first}), gets {shape.kind} "
                                 f"{shape}", port=name)
        channels = sum(inputs[n].channels for n in names)
        return {"y": TensorShape(first.kind, (*first.dims[:-1], channels))}

    def build(self, params, inputs, ctx):
        return Recipe("studio.modules.merge.ConcatChannels", {})
