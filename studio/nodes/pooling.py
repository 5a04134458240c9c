"""Pooling over the length of a sequence (1d) or the height and width of a map (2d): max, average and
adaptive pools, as torch computes them (output sizes, ceil_mode, the padding limit)."""

from __future__ import annotations

from typing import ClassVar

from studio.core.node_type import NodeType, Port, Recipe, ShapeError
from studio.core.params import BoolParam, IntOrPairParam, IntParam, Param, pair
from studio.core.shapes import MAP, SEQ, TensorShape, pool_out_length
from studio.nodes.common import MAX_KERNEL

SEQ_IN = (Port("x", (SEQ,), "N×L×C"),)
SEQ_OUT = (Port("y", (SEQ,), "N×L_out×C"),)
MAP_IN = (Port("x", (MAP,), "N×H×W×C"),)
MAP_OUT = (Port("y", (MAP,), "N×H_out×W_out×C"),)
NO_INDICES = ("return_indices is fixed false: a graph wire carries one tensor, and the indices are only "
              "needed to undo a max pool.")
PADDING_ONLY = ("A dilated window that would cover only padding is refused: torch 2.13 writes out of bounds "
                "there.")
PAIR_DOC = " (one integer for both axes, or [height, width])"


def _size_params(spatial: int, dilation: bool) -> tuple[Param, ...]:
    """kernel_size, stride, padding (and dilation) as ints (1d) or ints-or-pairs (2d)."""
    def make(name: str, default, doc: str, low: int, **extra) -> Param:
        if spatial == 1:
            return IntParam(name, default, doc, min=low, max=MAX_KERNEL, **extra)
        return IntOrPairParam(name, default, doc + PAIR_DOC, min=low, max=MAX_KERNEL, **extra)

    found = [
        make("kernel_size", 2, "window size", 1),
        make("stride", None, "step between windows; null = kernel_size", 1, optional=True,
             none_means="kernel_size"),
        make("padding", 0, "implicit padding on both sides (at most half the kernel size)", 0),
    ]
    if dilation:
        found.append(make("dilation", 1, "spacing between the elements of a window", 1))
    return tuple(found)


def _window_in_padding_only(size: int, kernel: int, stride: int, padding: int, dilation: int,
                            out: int) -> int | None:
    """The first of ``out`` windows whose elements all fall into the padding, or None. A dilated window can
    skip every real element; torch 2.13 then gives -inf, and its backward writes outside the gradient."""
    if padding == 0:
        return None  # every window starts inside the input, torch's ceil_mode included
    # a window starting inside the input holds its first element: only those starting in the padding count
    left = range(min(out, -(-padding // stride)))
    right = range(max(0, (size - 1 + padding) // stride + 1), out)
    for i in (*left, *right):
        start = i * stride - padding
        first_inside = max(0, -(start // dilation))  # the smallest j with start + j * dilation >= 0
        if first_inside > kernel - 1 or start + first_inside * dilation > size - 1:
            return i
    return None


CEIL_MODE = BoolParam("ceil_mode", False, "round the output size up, so a last partial window is kept")


class _Pool(NodeType):
    """A sliding-window pool over the length (spatial 1) or height and width (spatial 2)."""

    spatial: ClassVar[int]
    target: ClassVar[str]
    category = "Pooling"

    def axis_values(self, params, name: str) -> tuple[int, ...]:
        value = params.get(name, 1)
        if value is None:  # stride null: the kernel size
            value = params["kernel_size"]
        return (value,) if self.spatial == 1 else pair(value)

    def check_params(self, params):
        for k, p in zip(self.axis_values(params, "kernel_size"), self.axis_values(params, "padding"),
                        strict=True):
            if p > k // 2:
                return [("padding", f"must be at most half the kernel size ({k // 2}), as torch requires, "
                         f"gets {params['padding']}")]
        return []

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        axes = ("length",) if self.spatial == 1 else ("height", "width")
        sizes = []
        for axis, size, k, s, p, d in zip(axes, x.dims[:-1], self.axis_values(params, "kernel_size"),
                                          self.axis_values(params, "stride"),
                                          self.axis_values(params, "padding"),
                                          self.axis_values(params, "dilation"), strict=True):
            out = pool_out_length(size, k, s, p, d, params["ceil_mode"])
            if out < 1:
                raise ShapeError(f"output {axis} would be {out}: input {axis} {size} is shorter than the "
                                 f"window {d * (k - 1) + 1} plus padding {2 * p}", param="kernel_size")
            empty = _window_in_padding_only(size, k, s, p, d, out)
            if empty is not None:
                raise ShapeError(f"window {empty} of the {axis} covers only padding (kernel {k}, dilation {d}, "
                                 f"padding {p}, input {axis} {size}): torch's max pool writes out of bounds "
                                 "there; lower the padding or the dilation", param="padding")
            sizes.append(out)
        return {"y": TensorShape(x.kind, (*sizes, x.channels))}

    def recipe(self, params, inputs, ctx):
        return Recipe(self.target, {p.name: params[p.name] for p in self.params})


class MaxPool1d(_Pool):
    type_id = "maxpool1d"
    title = "MaxPool1d"
    doc = ("Maximum over sliding windows along the sequence (torch.nn.MaxPool1d). L_out = floor((L + "
           "2·padding − dilation·(kernel_size − 1) − 1)/stride + 1), rounded up with ceil_mode. "
           + NO_INDICES + " " + PADDING_ONLY)
    spatial = 1
    target = "studio.modules.layers.SeqMaxPool1d"
    inputs, outputs = SEQ_IN, SEQ_OUT
    params = (*_size_params(1, dilation=True), CEIL_MODE)
    examples = (
        {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2},
        {"kernel_size": 5, "stride": 3, "ceil_mode": True},
        {"kernel_size": 4, "stride": 1, "padding": 2},
    )


class AvgPool1d(_Pool):
    type_id = "avgpool1d"
    title = "AvgPool1d"
    doc = ("Mean over sliding windows along the sequence (torch.nn.AvgPool1d). L_out = floor((L + "
           "2·padding − kernel_size)/stride + 1), rounded up with ceil_mode.")
    spatial = 1
    target = "studio.modules.layers.SeqAvgPool1d"
    inputs, outputs = SEQ_IN, SEQ_OUT
    params = (
        *_size_params(1, dilation=False), CEIL_MODE,
        BoolParam("count_include_pad", True, "count the zero padding in each window's mean"),
    )
    examples = (
        {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
        {"kernel_size": 5, "stride": 3, "ceil_mode": True},
        {"kernel_size": 4, "stride": 1},
    )


class MaxPool2d(_Pool):
    type_id = "maxpool2d"
    title = "MaxPool2d"
    doc = ("Maximum over sliding windows of a map's height and width (torch.nn.MaxPool2d); each axis as in "
           "MaxPool1d. " + NO_INDICES + " " + PADDING_ONLY)
    spatial = 2
    target = "studio.modules.layers.MapMaxPool2d"
    inputs, outputs = MAP_IN, MAP_OUT
    params = (*_size_params(2, dilation=True), CEIL_MODE)
    examples = (
        {"kernel_size": [1, 3], "stride": [1, 2], "padding": [0, 1], "dilation": [1, 2]},
        {"kernel_size": 3, "stride": 2, "ceil_mode": True},
        {"kernel_size": [2, 1], "stride": 1, "padding": [1, 0]},
    )


class AvgPool2d(_Pool):
    type_id = "avgpool2d"
    title = "AvgPool2d"
    doc = ("Mean over sliding windows of a map's height and width (torch.nn.AvgPool2d); each axis as in "
           "AvgPool1d.")
    spatial = 2
    target = "studio.modules.layers.MapAvgPool2d"
    inputs, outputs = MAP_IN, MAP_OUT
    params = (
        *_size_params(2, dilation=False), CEIL_MODE,
        BoolParam("count_include_pad", True, "count the zero padding in each window's mean"),
        IntParam("divisor_override", None, "divide each window's sum by this instead of its size",
                 min=1, max=MAX_KERNEL * MAX_KERNEL, optional=True, none_means="the window's size"),
    )
    examples = (
        {"kernel_size": [1, 3], "stride": [1, 2], "padding": [0, 1], "count_include_pad": False},
        {"kernel_size": 3, "stride": 2, "ceil_mode": True, "divisor_override": 4},
        {"kernel_size": [2, 1], "stride": 1},
    )


class _AdaptivePool(NodeType):
    """A pool that picks its windows so the output has ``output_size`` steps (or cells)."""

    spatial: ClassVar[int]
    target: ClassVar[str]
    category = "Pooling"

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        size = params["output_size"]
        sizes = (size,) if self.spatial == 1 else pair(size)
        return {"y": TensorShape(x.kind, (*sizes, x.channels))}

    def recipe(self, params, inputs, ctx):
        return Recipe(self.target, {"output_size": params["output_size"]})


ADAPTIVE_NOTE = (" Windows may overlap; an output larger than the input repeats steps.")


class AdaptiveAvgPool1d(_AdaptivePool):
    type_id = "adaptive_avgpool1d"
    title = "AdaptiveAvgPool1d"
    doc = ("Mean over output_size windows that evenly cover the sequence (torch.nn.AdaptiveAvgPool1d): "
           "any input length gives output_size steps." + ADAPTIVE_NOTE)
    spatial = 1
    target = "studio.modules.layers.SeqAdaptiveAvgPool1d"
    inputs, outputs = SEQ_IN, (Port("y", (SEQ,), "N×output_size×C"),)
    params = (IntParam("output_size", 8, "steps of the output", min=1, max=MAX_KERNEL),)
    examples = ({"output_size": 5}, {"output_size": 20})


class AdaptiveMaxPool1d(_AdaptivePool):
    type_id = "adaptive_maxpool1d"
    title = "AdaptiveMaxPool1d"
    doc = ("Maximum over output_size windows that evenly cover the sequence (torch.nn.AdaptiveMaxPool1d)."
           + ADAPTIVE_NOTE + " " + NO_INDICES)
    spatial = 1
    target = "studio.modules.layers.SeqAdaptiveMaxPool1d"
    inputs, outputs = SEQ_IN, (Port("y", (SEQ,), "N×output_size×C"),)
    params = (IntParam("output_size", 8, "steps of the output", min=1, max=MAX_KERNEL),)
    examples = ({"output_size": 5}, {"output_size": 20})


class AdaptiveAvgPool2d(_AdaptivePool):
    type_id = "adaptive_avgpool2d"
    title = "AdaptiveAvgPool2d"
    doc = ("Mean over windows that evenly cover the map, giving output_size rows × columns "
           "(torch.nn.AdaptiveAvgPool2d)." + ADAPTIVE_NOTE)
    spatial = 2
    target = "studio.modules.layers.MapAdaptiveAvgPool2d"
    inputs, outputs = MAP_IN, MAP_OUT
    params = (IntOrPairParam("output_size", 2, "rows and columns of the output" + PAIR_DOC, min=1,
                             max=MAX_KERNEL),)
    examples = ({"output_size": [1, 3]}, {"output_size": [5, 2]})


class AdaptiveMaxPool2d(_AdaptivePool):
    type_id = "adaptive_maxpool2d"
    title = "AdaptiveMaxPool2d"
    doc = ("Maximum over windows that evenly cover the map, giving output_size rows × columns "
           "(torch.nn.AdaptiveMaxPool2d)." + ADAPTIVE_NOTE + " " + NO_INDICES)
    spatial = 2
    target = "studio.modules.layers.MapAdaptiveMaxPool2d"
    inputs, outputs = MAP_IN, MAP_OUT
    params = (IntOrPairParam("output_size", 2, "rows and columns of the output" + PAIR_DOC, min=1,
                             max=MAX_KERNEL),)
    examples = ({"output_size": [1, 3]}, {"output_size": [5, 2]})
