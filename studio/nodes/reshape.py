"""Views and resampling of the per-stock axes: Flatten, the day view of the bar window and its inverse,
swapping time and channels, and Upsample. None of them has weights."""

from __future__ import annotations

from studio.core.node_type import NodeType, Port, Recipe, ShapeError
from studio.core.params import BoolParam, ChoiceParam, FloatParam, IntOrPairParam, IntParam, pair
from studio.core.shapes import MAP, SEQ, VEC, TensorShape

MAX_SIZE = 65_536
INTERPOLATING = ("linear", "bilinear", "bicubic")


class Flatten(NodeType):
    type_id = "flatten"
    category = "Reshape"
    title = "Flatten"
    doc = ("All per-stock axes into channels: a sequence N×L×C or a map N×H×W×C becomes a vector "
           "N×(L·C) or N×(H·W·C), row-major (all channels of the first step, then the next step...), "
           "e.g. before a Linear head (torch.nn.Flatten from the third axis).")
    inputs = (Port("x", (SEQ, MAP), "N×L×C or N×H×W×C"),)
    outputs = (Port("y", (VEC,), "N×(L·C) or N×(H·W·C)"),)

    def output_aliases_input(self, params):
        return True

    def infer(self, params, inputs, ctx):
        return {"y": TensorShape.vec(inputs["x"].numel())}

    def recipe(self, params, inputs, ctx):
        return Recipe("torch.nn.Flatten", {"start_dim": 2, "end_dim": -1})


class DayView(NodeType):
    type_id = "day_view"
    category = "Reshape"
    title = "Day view (days × bars)"
    doc = ("The bar window as a 2-D map: a sequence of L = days × bars_per_day steps becomes a map of "
           "H = days rows and W = bars_per_day columns (row d is day d, oldest first), channels kept. A "
           "Conv2d on it sees the same minute across days as well as neighbouring minutes. No copy, no "
           "weights; seq_view undoes it.")
    inputs = (Port("x", (SEQ,), "N×(days·bars_per_day)×C"),)
    outputs = (Port("y", (MAP,), "N×days×bars_per_day×C"),)
    params = (IntParam("bars_per_day", None, "columns of the map: bars of one day; must divide the length",
                       min=1, max=MAX_SIZE, optional=True, none_means="the graph's input.bars_per_day"),)
    examples = ({"bars_per_day": 4}, {"bars_per_day": 12}, {"bars_per_day": 1})

    def output_aliases_input(self, params):
        return True

    def bars_per_day(self, params, ctx) -> int:
        if params["bars_per_day"] is not None:
            return params["bars_per_day"]
        if ctx is None or ctx.input_spec is None:
            raise ShapeError("is null, and there is no bar window to take it from (inside a block): set it",
                             param="bars_per_day")
        return ctx.input_spec.bars_per_day

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        width = self.bars_per_day(params, ctx)
        if x.length % width:
            raise ShapeError(f"length {x.length} is not a whole number of days of {width} bars "
                             f"(bars_per_day {width})", port="x")
        return {"y": TensorShape.map(x.length // width, width, x.channels)}

    def recipe(self, params, inputs, ctx):
        width = self.bars_per_day(params, ctx)
        return Recipe("torch.nn.Unflatten", {"dim": 2, "unflattened_size": [inputs["x"].length // width,
                                                                           width]})


class SeqView(NodeType):
    type_id = "seq_view"
    category = "Reshape"
    title = "Sequence view (rows in a row)"
    doc = ("The inverse of the day view: a map N×H×W×C becomes a sequence of H·W steps, the rows one "
           "after another (day after day), channels kept (torch.nn.Flatten of H and W).")
    inputs = (Port("x", (MAP,), "N×H×W×C"),)
    outputs = (Port("y", (SEQ,), "N×(H·W)×C"),)

    def output_aliases_input(self, params):
        return True

    def infer(self, params, inputs, ctx):
        height, width, channels = inputs["x"].dims
        return {"y": TensorShape.seq(height * width, channels)}

    def recipe(self, params, inputs, ctx):
        return Recipe("torch.nn.Flatten", {"start_dim": 2, "end_dim": 3})


class Transpose(NodeType):
    type_id = "transpose"
    category = "Reshape"
    title = "Swap time and channels"
    doc = ("Swaps the two axes of a sequence: N×L×C becomes N×C×L, so the C features are the steps and "
           "the L bars the channels; a Conv1d after it runs across features instead of time. Apply it "
           "again to swap back.")
    inputs = (Port("x", (SEQ,), "N×L×C"),)
    outputs = (Port("y", (SEQ,), "N×C×L"),)

    def output_aliases_input(self, params):
        return True

    def infer(self, params, inputs, ctx):
        length, channels = inputs["x"].dims
        return {"y": TensorShape.seq(channels, length)}

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.views.SwapTimeChannels", {})


class Upsample(NodeType):
    type_id = "upsample"
    category = "Resample"
    title = "Upsample"
    doc = ("Resizes a sequence's length or a map's height and width (torch.nn.Upsample) to `size`, or "
           "by `scale_factor` (out = floor(in × scale_factor)); set exactly one. linear interpolates "
           "sequences; bilinear and bicubic maps; nearest both.")
    inputs = (Port("x", (SEQ, MAP), "N×L×C or N×H×W×C"),)
    outputs = (Port("y", (SEQ, MAP), "N×L_out×C or N×H_out×W_out×C"),)
    params = (
        IntOrPairParam("size", None, "output length, or output [height, width] of a map (an integer: both)",
                       min=1, max=MAX_SIZE, optional=True, none_means="use scale_factor"),
        FloatParam("scale_factor", 2.0, "multiplier of the length (or of height and width)", min=0.0,
                   max=1024.0, optional=True, none_means="use size"),
        ChoiceParam("mode", "nearest", "nearest or nearest-exact (copy the closest step), linear "
                    "(sequences), bilinear or bicubic (maps)",
                    choices=("nearest", "nearest-exact", *INTERPOLATING)),
        BoolParam("align_corners", None, "interpolating modes: align the corner samples of input and output",
                  optional=True, none_means="torch's default, false; must be null for nearest"),
        BoolParam("recompute_scale_factor", False, "with scale_factor: interpolate with the scale "
                  "implied by the rounded output size instead of scale_factor itself"),
    )
    examples = (
        {"scale_factor": 1.5, "mode": "linear", "align_corners": True},
        {"size": 7, "scale_factor": None, "mode": "linear"},
        {"size": [2, 9], "scale_factor": None, "mode": "bilinear", "align_corners": False},
        {"scale_factor": 0.5, "mode": "nearest-exact", "recompute_scale_factor": True},
        {"scale_factor": 3.0, "mode": "bicubic"},
    )

    def check_params(self, params):
        problems = []
        if (params["size"] is None) == (params["scale_factor"] is None):
            problems.append(("scale_factor", "set exactly one of size and scale_factor (the other null)"))
        if params["align_corners"] is not None and params["mode"] not in INTERPOLATING:
            problems.append(("align_corners", f"applies to {', '.join(INTERPOLATING)} only: null it for "
                             f"{params['mode']}"))
        if params["recompute_scale_factor"] and params["size"] is not None:
            problems.append(("recompute_scale_factor", "only means something with scale_factor, not size"))
        return problems

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        mode = params["mode"]
        if mode == "linear" and x.kind != SEQ:
            raise ShapeError("linear interpolates sequences: use bilinear or bicubic on a map", param="mode")
        if mode in ("bilinear", "bicubic") and x.kind != MAP:
            raise ShapeError(f"{mode} interpolates maps: use linear on a sequence", param="mode")
        spatial = x.dims[:-1]
        size = params["size"]
        if size is not None:
            if isinstance(size, list) and x.kind == SEQ:
                raise ShapeError(f"a sequence has one axis: size must be an integer, gets {size}",
                                 param="size")
            sizes = (size,) if x.kind == SEQ else pair(size)
        else:
            sizes = tuple(int(n * params["scale_factor"]) for n in spatial)
            if min(sizes) < 1:
                raise ShapeError(f"output size would be {'×'.join(map(str, sizes))}: scale_factor "
                                 f"{params['scale_factor']} is too small for {x}", param="scale_factor")
        return {"y": TensorShape(x.kind, (*sizes, x.channels))}

    def recipe(self, params, inputs, ctx):
        names = ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor")
        return Recipe("studio.modules.layers.ChannelsLastUpsample", {k: params[k] for k in names})
