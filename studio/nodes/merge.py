"""Merging parallel branches: element-wise Add, Multiply and Mean, channel Concat, the Residual
connection (a skip around a branch, with an optional learned scale and projection), and Stack (vectors
into the steps of a sequence)."""

from __future__ import annotations

from studio.core.node_type import NodeType, Port, Recipe, ShapeError
from studio.core.params import ChoiceParam, FloatParam, IntParam
from studio.core.shapes import MAP, SEQ, VEC, TensorShape
from studio.nodes.common import same_shapes

MERGEABLE = (SEQ, VEC, MAP)


def _ports(params) -> tuple[Port, ...]:
    return tuple(Port(f"x{i}", MERGEABLE, f"branch {i}") for i in range(1, params["inputs"] + 1))


class _Elementwise(NodeType):
    """k branches of one shape combined element by element into that shape."""

    category = "Merge"
    outputs = (Port("y", MERGEABLE),)
    #: the torch module and the verb of the ``inputs`` param's doc
    module: str
    verb: str

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.params = (IntParam("inputs", 2, f"number of branches to {cls.verb}", min=2, max=16),)

    def input_ports(self, params, ctx=None):
        return _ports(params)

    def infer(self, params, inputs, ctx):
        return {"y": same_shapes(inputs, [p.name for p in _ports(params)])}

    def recipe(self, params, inputs, ctx):
        return Recipe(self.module, {})


class Add(_Elementwise):
    type_id = "add"
    title = "Add"
    doc = ("Element-wise sum of parallel branches of the same shape (a plain residual connection; the "
           "Residual node adds a learned scale or a projection).")
    module, verb = "studio.modules.merge.AddN", "add"
    examples = ({"inputs": 3},)


class Multiply(_Elementwise):
    type_id = "multiply"
    title = "Multiply"
    doc = ("Element-wise product of parallel branches of the same shape (e.g. a gate: a sigmoid branch "
           "times x).")
    module, verb = "studio.modules.merge.MulN", "multiply"
    examples = ({"inputs": 3},)


class Mean(_Elementwise):
    type_id = "mean"
    title = "Mean"
    doc = "Element-wise mean of parallel branches of the same shape (an ensemble of branches)."
    module, verb = "studio.modules.merge.MeanN", "average"
    examples = ({"inputs": 4},)


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

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.merge.ConcatChannels", {})


class Residual(NodeType):
    type_id = "residual"
    category = "Merge"
    title = "Residual"
    doc = ("y = shortcut(x) + gain·f: the skip connection around a branch f that starts from x. Unlike Add, "
           "it can learn a gain on the branch (ReZero with scale_init 0, LayerScale with a small one) and "
           "project x to the branch's channels when the branch changes them (a ResNet projection shortcut).")
    inputs = (Port("x", MERGEABLE, "the skip: the branch's input"),
              Port("f", MERGEABLE, "the branch's output"))
    outputs = (Port("y", MERGEABLE, "the shape of f"),)
    params = (
        ChoiceParam("shortcut", "identity", "identity: x as is (same shape as f); linear: a bias-free Linear "
                    "from x's channels to f's", choices=("identity", "linear")),
        ChoiceParam("scale", "none", "learned gain on f: none, scalar (one number) or channel (one per "
                    "channel)", choices=("none", "scalar", "channel")),
        FloatParam("scale_init", 1.0, "initial value of the gain (0: the block starts as the identity)"),
    )
    examples = ({"scale": "scalar", "scale_init": 0.0}, {"scale": "channel", "scale_init": 0.1},
                {"shortcut": "linear"})

    def warn_params(self, params):
        if params["scale"] == "none" and params["scale_init"] != 1.0:
            return [("scale_init", "used only with a learned scale (scale is none)")]
        return []

    def infer(self, params, inputs, ctx):
        x, f = inputs["x"], inputs["f"]
        if params["shortcut"] == "identity" and x != f:
            raise ShapeError(f"expects {x.kind} {x} (like x), gets {f.kind} {f}; shortcut \"linear\" "
                             "projects x when only the channels differ", port="f")
        if x.kind != f.kind or x.dims[:-1] != f.dims[:-1]:
            like = "×".join(["N", *map(str, x.dims[:-1]), "C"])
            raise ShapeError(f"expects {x.kind} {like} (like x: {x}), gets {f.kind} {f}", port="f")
        return {"y": f}

    def param_count(self, params, inputs, ctx):
        c_in, c_out = inputs["x"].channels, inputs["f"].channels
        gain = {"none": 0, "scalar": 1, "channel": c_out}[params["scale"]]
        return gain + (c_in * c_out if params["shortcut"] == "linear" else 0)

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.merge.Residual", {
            "in_channels": inputs["x"].channels, "channels": inputs["f"].channels,
            "shortcut": params["shortcut"], "scale": params["scale"], "scale_init": params["scale_init"]})


class Stack(NodeType):
    type_id = "stack"
    category = "Merge"
    title = "Stack into a sequence"
    doc = ("k vectors of the same size become a sequence of k steps, branch i at step i-1 (torch.stack on "
           "a new time axis): e.g. one summary vector per scale or per branch, then attention pooling or a "
           "transformer over them.")
    outputs = (Port("y", (SEQ,), "N×k×C"),)
    params = (IntParam("inputs", 2, "number of vectors (steps of the sequence)", min=2, max=16),)
    examples = ({"inputs": 5},)

    def input_ports(self, params, ctx=None):
        return tuple(Port(f"x{i}", (VEC,), f"step {i - 1}") for i in range(1, params["inputs"] + 1))

    def infer(self, params, inputs, ctx):
        names = [p.name for p in self.input_ports(params)]
        first = same_shapes(inputs, names)
        return {"y": TensorShape.seq(len(names), first.channels)}

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.merge.StackSteps", {})
