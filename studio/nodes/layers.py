"""Basic layers: Linear, the input projection, Conv1d, Conv2d (and its depthwise and pointwise presets),
activations, dropout."""

from __future__ import annotations

from studio.core.node_type import NodeType, Port, Recipe, ShapeError
from studio.core.params import (
    BoolParam,
    ChoiceParam,
    FloatParam,
    IntOrChoiceParam,
    IntOrPairParam,
    IntParam,
    pair,
)
from studio.core.shapes import MAP, SCORE, SEQ, VEC, TensorShape, conv_out_length
from studio.nodes.common import MAX_CHANNELS, MAX_KERNEL, channels_param, in_channels_param

ANY_TENSOR = (SEQ, VEC, MAP)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
INPLACE_DOC = "overwrite the input tensor to save memory (not on a fan-out, the model's input or a block's)"


class Linear(NodeType):
    type_id = "linear"
    category = "Linear"
    title = "Linear"
    doc = "y = x·Aᵀ + b on the channel axis (torch.nn.Linear); works on sequences, vectors and maps."
    inputs = (Port("x", ANY_TENSOR),)
    outputs = (Port("y", ANY_TENSOR),)
    params = (
        in_channels_param("in_features", "input features (channels)"),
        channels_param("out_features", 16, "output features (channels)"),
        BoolParam("bias", True, "learn an additive bias b"),
    )
    examples = ({"bias": False, "out_features": 3}, {"in_features": 4, "out_features": 1})

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        self.resolve_channels(params, "in_features", x, "x")
        return {"y": x.with_channels(params["out_features"])}

    def param_count(self, params, inputs, ctx):
        c_in, c_out = inputs["x"].channels, params["out_features"]
        return c_in * c_out + (c_out if params["bias"] else 0)

    def recipe(self, params, inputs, ctx):
        return Recipe("torch.nn.Linear", {"in_features": inputs["x"].channels,
                                          "out_features": params["out_features"], "bias": params["bias"]})


class InputProjection(NodeType):
    type_id = "input_projection"
    category = "Linear"
    title = "Input projection (embedding)"
    doc = ("Embeds each bar as a token: its features (the seed's embedding dims close, volume, turnover) are "
           "projected to d_model channels by one Linear shared by every bar and stock, optionally scaled by "
           "√d_model as transformer embeddings are. A d_model that the head count divides frees attention "
           "from the 3 input features.")
    inputs = (Port("x", (SEQ,), "N×L×F: F features per bar"),)
    outputs = (Port("y", (SEQ,), "N×L×d_model"),)
    params = (
        in_channels_param("in_features", "features per bar"),
        channels_param("d_model", 32, "width of each bar's embedding (channels out)"),
        BoolParam("bias", True, "learn an additive bias"),
        BoolParam("scale", False, "multiply the embedding by √d_model (the transformer convention)"),
    )
    examples = ({"d_model": 6, "scale": True}, {"in_features": 4, "bias": False, "d_model": 8})

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        self.resolve_channels(params, "in_features", x, "x")
        return {"y": x.with_channels(params["d_model"])}

    def param_count(self, params, inputs, ctx):
        d_model = params["d_model"]
        return inputs["x"].channels * d_model + (d_model if params["bias"] else 0)

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.layers.FeatureProjection", {
            "in_features": inputs["x"].channels, "d_model": params["d_model"], "bias": params["bias"],
            "scale": params["scale"]})


class Conv1d(NodeType):
    type_id = "conv1d"
    category = "Convolution"
    title = "Conv1d"
    doc = ("1-D convolution along the sequence (torch.nn.Conv1d, every parameter). "
           "L_out = floor((L_in + 2·padding − dilation·(kernel_size − 1) − 1)/stride + 1).")
    inputs = (Port("x", (SEQ,), "N×L×C_in"),)
    outputs = (Port("y", (SEQ,), "N×L_out×C_out"),)
    params = (
        in_channels_param(),
        channels_param("out_channels", 16, "output channels (number of filters)"),
        IntParam("kernel_size", 3, "length of each filter", min=1, max=MAX_KERNEL),
        IntParam("stride", 1, "step between filter positions", min=1, max=MAX_KERNEL),
        IntOrChoiceParam("padding", 0, "bars added at both ends; \"same\" keeps the length (stride 1), "
                         "\"valid\" adds none", min=0, max=MAX_KERNEL, choices=("same", "valid")),
        IntParam("dilation", 1, "spacing between filter taps (dilated convolution)", min=1, max=MAX_KERNEL),
        IntParam("groups", 1, "split channels into groups; groups = in_channels is depthwise",
                 min=1, max=MAX_CHANNELS),
        BoolParam("bias", True, "learn an additive bias per output channel"),
        ChoiceParam("padding_mode", "zeros", "how padding is filled: zeros, reflect, replicate "
                    "(the seed's choice for time series) or circular", choices=PADDING_MODES),
    )

    examples = (
        {"kernel_size": 5, "stride": 2, "padding": 1, "dilation": 2},
        {"kernel_size": 4, "padding": "same", "padding_mode": "replicate"},
        {"kernel_size": 3, "padding": "same", "dilation": 3, "padding_mode": "reflect"},
        {"kernel_size": 2, "padding": 2, "padding_mode": "circular", "stride": 3},
        {"padding": "valid", "bias": False},
        {"groups": 4, "out_channels": 8},
        {"in_channels": 4, "kernel_size": 1},
    )

    def check_params(self, params):
        problems = []
        if params["padding"] == "same" and params["stride"] != 1:
            problems.append(("padding", f"\"same\" padding needs stride 1, gets stride {params['stride']}"))
        if params["out_channels"] % params["groups"]:
            problems.append(("groups", f"groups {params['groups']} must divide out_channels "
                             f"{params['out_channels']}"))
        return problems

    @staticmethod
    def pads(params) -> tuple[int, int]:
        """Left and right padding in bars."""
        padding = params["padding"]
        if padding == "valid":
            return 0, 0
        if padding == "same":
            total = params["dilation"] * (params["kernel_size"] - 1)
            return total // 2, total - total // 2
        return padding, padding

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        c_in = self.resolve_channels(params, "in_channels", x, "x")
        if c_in % params["groups"]:
            raise ShapeError(f"groups {params['groups']} must divide in_channels {c_in}", param="groups")
        left, right = self.pads(params)
        length = x.length
        mode = params["padding_mode"]
        if mode == "reflect" and max(left, right) >= length:
            raise ShapeError(f"reflect padding {max(left, right)} needs an input longer than that, "
                             f"gets length {length}", param="padding")
        if mode == "circular" and max(left, right) > length:
            raise ShapeError(f"circular padding {max(left, right)} cannot exceed the input length {length}",
                             param="padding")
        k, d, s = params["kernel_size"], params["dilation"], params["stride"]
        out_length = conv_out_length(length + left + right, k, s, 0, d)
        if out_length < 1:
            raise ShapeError(f"output length would be {out_length}: input length {length} is shorter than "
                             f"the dilated kernel {d * (k - 1) + 1} plus padding {left + right}",
                             param="kernel_size")
        return {"y": TensorShape.seq(out_length, params["out_channels"])}

    def param_count(self, params, inputs, ctx):
        c_in, c_out = inputs["x"].channels, params["out_channels"]
        return c_out * (c_in // params["groups"]) * params["kernel_size"] + (c_out if params["bias"] else 0)

    def recipe(self, params, inputs, ctx):
        kwargs = {k: params[k] for k in ("out_channels", "kernel_size", "stride", "padding", "dilation",
                                         "groups", "bias", "padding_mode")}
        return Recipe("studio.modules.layers.SeqConv1d", {"in_channels": inputs["x"].channels, **kwargs})


AXES = ("height", "width")
PAIR_DOC = " (one integer for both axes, or [height, width])"


def conv2d_pads(padding, kernel: tuple[int, int], dilation: tuple[int, int]) -> list[tuple[int, int]]:
    """(before, after) padding of each axis (height, width), as nn.Conv2d applies it."""
    if padding == "valid":
        return [(0, 0), (0, 0)]
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return [(t // 2, t - t // 2) for t in totals]
    h, w = pair(padding)
    return [(h, h), (w, w)]


def conv2d_params(multiplier: bool) -> tuple:
    """Conv2d's params after in_channels; the depthwise preset has a channel multiplier and no groups."""
    size = (
        IntOrPairParam("kernel_size", 3, "filter size" + PAIR_DOC, min=1, max=MAX_KERNEL),
        IntOrPairParam("stride", 1, "step between filter positions" + PAIR_DOC, min=1, max=MAX_KERNEL),
        IntOrPairParam("padding", 0, "rows/columns added on both sides" + PAIR_DOC + "; \"same\" keeps the "
                       "size (stride 1), \"valid\" adds none", min=0, max=MAX_KERNEL,
                       choices=("same", "valid")),
        IntOrPairParam("dilation", 1, "spacing between filter taps" + PAIR_DOC, min=1, max=MAX_KERNEL),
    )
    if multiplier:
        width = (IntParam("multiplier", 1, "filters per input channel: out_channels = multiplier × "
                          "in_channels", min=1, max=MAX_CHANNELS),)
        groups: tuple = ()
    else:
        width = (channels_param("out_channels", 16, "output channels (number of filters)"),)
        groups = (IntParam("groups", 1, "split channels into groups; groups = in_channels is depthwise",
                           min=1, max=MAX_CHANNELS),)
    return (*width, *size, *groups,
            BoolParam("bias", True, "learn an additive bias per output channel"),
            ChoiceParam("padding_mode", "zeros", "how padding is filled: zeros, reflect, replicate or "
                        "circular", choices=PADDING_MODES))


class _Conv2dBase(NodeType):
    """nn.Conv2d over the (height, width) axes of a map; subclasses say how params map to its settings."""

    category = "Convolution"
    inputs = (Port("x", (MAP,), "N×H×W×C_in"),)
    outputs = (Port("y", (MAP,), "N×H_out×W_out×C_out"),)

    def settings(self, params, c_in: int) -> dict:
        """nn.Conv2d's keyword arguments for ``c_in`` input channels."""
        raise NotImplementedError

    def check_params(self, params):
        conv = self.settings(params, 1)
        problems = []
        if conv["padding"] == "same" and pair(conv["stride"]) != (1, 1):
            problems.append(("padding", f"\"same\" padding needs stride 1, gets stride {conv['stride']}"))
        if "groups" in params and params["out_channels"] % params["groups"]:
            problems.append(("groups", f"groups {params['groups']} must divide out_channels "
                             f"{params['out_channels']}"))
        return problems

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        c_in = self.resolve_channels(params, "in_channels", x, "x")
        conv = self.settings(params, c_in)
        if c_in % conv["groups"]:
            raise ShapeError(f"groups {conv['groups']} must divide in_channels {c_in}", param="groups")
        kernel, stride, dilation = pair(conv["kernel_size"]), pair(conv["stride"]), pair(conv["dilation"])
        mode = conv["padding_mode"]
        sizes = []
        for axis, size, k, s, d, (before, after) in zip(AXES, x.dims[:2], kernel, stride, dilation,
                                                        conv2d_pads(conv["padding"], kernel, dilation),
                                                        strict=True):
            if mode == "reflect" and max(before, after) >= size:
                raise ShapeError(f"reflect padding {max(before, after)} needs an input {axis} above that, "
                                 f"gets {axis} {size}", param="padding")
            if mode == "circular" and max(before, after) > size:
                raise ShapeError(f"circular padding {max(before, after)} cannot exceed the input {axis} "
                                 f"{size}", param="padding")
            out = conv_out_length(size + before + after, k, s, 0, d)
            if out < 1:
                raise ShapeError(f"output {axis} would be {out}: input {axis} {size} is smaller than the "
                                 f"dilated kernel {d * (k - 1) + 1} plus padding {before + after}",
                                 param="kernel_size")
            sizes.append(out)
        return {"y": TensorShape.map(*sizes, conv["out_channels"])}

    def param_count(self, params, inputs, ctx):
        conv = self.settings(params, inputs["x"].channels)
        kh, kw = pair(conv["kernel_size"])
        c_out = conv["out_channels"]
        return c_out * (conv["in_channels"] // conv["groups"]) * kh * kw + (c_out if conv["bias"] else 0)

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.layers.MapConv2d", self.settings(params, inputs["x"].channels))


class Conv2d(_Conv2dBase):
    type_id = "conv2d"
    title = "Conv2d"
    doc = ("2-D convolution over the height and width of a map, e.g. days × bars of a day view "
           "(torch.nn.Conv2d, every parameter). Per axis: out = floor((in + 2·padding − dilation·"
           "(kernel_size − 1) − 1)/stride + 1). See also the depthwise and pointwise presets.")
    params = (in_channels_param(), *conv2d_params(multiplier=False))
    examples = (
        {"kernel_size": [2, 2], "stride": [1, 2], "padding": [1, 0], "dilation": [1, 2]},
        {"kernel_size": [2, 3], "padding": "same", "padding_mode": "replicate"},
        {"kernel_size": 3, "padding": "same", "dilation": [1, 2], "padding_mode": "reflect"},
        {"kernel_size": 2, "padding": 2, "padding_mode": "circular", "stride": 3},
        {"padding": "valid", "kernel_size": [3, 1], "bias": False},
        {"groups": 4, "out_channels": 8, "kernel_size": 1},
        {"in_channels": 4, "kernel_size": [1, 4], "padding": [0, 1], "padding_mode": "reflect"},
    )

    def settings(self, params, c_in):
        names = ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
                 "padding_mode")
        return {"in_channels": c_in, **{k: params[k] for k in names}}


class Conv2dDepthwise(_Conv2dBase):
    type_id = "conv2d_depthwise"
    title = "Conv2d depthwise"
    doc = ("Depthwise 2-D convolution (the seed's \"deepwise\"): nn.Conv2d with groups = in_channels, so "
           "each channel gets its own `multiplier` filters and channels never mix; out_channels = "
           "multiplier × in_channels. Usually followed by a pointwise convolution.")
    params = (in_channels_param(), *conv2d_params(multiplier=True))
    examples = (
        {"multiplier": 2, "kernel_size": [2, 3], "stride": [2, 1], "dilation": [2, 1]},
        {"kernel_size": 3, "padding": "same", "padding_mode": "replicate", "bias": False},
        {"in_channels": 4, "padding": 1, "padding_mode": "circular"},
    )

    def settings(self, params, c_in):
        return {"in_channels": c_in, "out_channels": params["multiplier"] * c_in, "groups": c_in,
                **{k: params[k] for k in ("kernel_size", "stride", "padding", "dilation", "bias",
                                          "padding_mode")}}


class Conv2dPointwise(_Conv2dBase):
    type_id = "conv2d_pointwise"
    title = "Conv2d pointwise (1×1)"
    doc = ("Pointwise 2-D convolution: nn.Conv2d with a 1×1 kernel, mixing the channels of each cell of "
           "the map (on sequences, a Conv1d with kernel_size 1 does the same). A stride skips rows/columns.")
    params = (
        in_channels_param(),
        channels_param("out_channels", 16, "output channels (number of filters)"),
        IntOrPairParam("stride", 1, "step between positions" + PAIR_DOC, min=1, max=MAX_KERNEL),
        IntParam("groups", 1, "split channels into groups that do not mix", min=1, max=MAX_CHANNELS),
        BoolParam("bias", True, "learn an additive bias per output channel"),
    )
    examples = ({"out_channels": 3, "stride": [1, 2], "bias": False}, {"groups": 2, "out_channels": 4},
                {"in_channels": 4, "stride": 2})

    def settings(self, params, c_in):
        return {"in_channels": c_in, "out_channels": params["out_channels"], "kernel_size": 1,
                "stride": params["stride"], "padding": 0, "dilation": 1, "groups": params["groups"],
                "bias": params["bias"], "padding_mode": "zeros"}


class _Elementwise(NodeType):
    """Shape-preserving layers on any tensor."""

    inputs = (Port("x", (SEQ, VEC, MAP, SCORE)),)
    outputs = (Port("y", (SEQ, VEC, MAP, SCORE)),)

    def infer(self, params, inputs, ctx):
        return {"y": inputs["x"]}


class ReLU(_Elementwise):
    type_id = "relu"
    category = "Activation"
    title = "ReLU"
    doc = "max(0, x) element-wise (torch.nn.ReLU)."
    params = (BoolParam("inplace", False, INPLACE_DOC),)
    examples = ({"inplace": True},)

    def recipe(self, params, inputs, ctx):
        return Recipe("torch.nn.ReLU", {"inplace": params["inplace"]})


class GELU(_Elementwise):
    type_id = "gelu"
    category = "Activation"
    title = "GELU"
    doc = "x·Φ(x) element-wise, Φ the standard normal CDF (torch.nn.GELU)."
    params = (ChoiceParam("approximate", "none", "\"none\": exact erf form; \"tanh\": the tanh approximation",
                          choices=("none", "tanh")),)
    examples = ({"approximate": "tanh"},)

    def recipe(self, params, inputs, ctx):
        return Recipe("torch.nn.GELU", {"approximate": params["approximate"]})


class Tanh(_Elementwise):
    type_id = "tanh"
    category = "Activation"
    title = "Tanh"
    doc = "tanh(x) element-wise (torch.nn.Tanh), in (−1, 1)."

    def recipe(self, params, inputs, ctx):
        return Recipe("torch.nn.Tanh", {})


class Sigmoid(_Elementwise):
    type_id = "sigmoid"
    category = "Activation"
    title = "Sigmoid"
    doc = "1/(1 + e^−x) element-wise (torch.nn.Sigmoid), in (0, 1)."

    def recipe(self, params, inputs, ctx):
        return Recipe("torch.nn.Sigmoid", {})


def _inplace_slope(params, name: str) -> list[tuple[str, str]]:
    if params["inplace"] and params[name] < 0:
        return [("inplace", f"torch cannot compute gradients of the in-place form with a negative {name} "
                 f"({params[name]}); turn inplace off")]
    return []


class LeakyReLU(_Elementwise):
    type_id = "leaky_relu"
    category = "Activation"
    title = "LeakyReLU"
    doc = "x for x ≥ 0, negative_slope·x below (torch.nn.LeakyReLU)."
    params = (
        FloatParam("negative_slope", 0.01, "slope for negative inputs"),
        BoolParam("inplace", False, INPLACE_DOC),
    )
    examples = ({"negative_slope": 0.2, "inplace": True}, {"negative_slope": -0.5})

    def check_params(self, params):
        return _inplace_slope(params, "negative_slope")

    def recipe(self, params, inputs, ctx):
        return Recipe("torch.nn.LeakyReLU", {"negative_slope": params["negative_slope"],
                                             "inplace": params["inplace"]})


class ELU(_Elementwise):
    type_id = "elu"
    category = "Activation"
    title = "ELU"
    doc = "x for x > 0, alpha·(eˣ − 1) below (torch.nn.ELU)."
    params = (
        FloatParam("alpha", 1.0, "the output tends to −alpha for very negative inputs"),
        BoolParam("inplace", False, INPLACE_DOC),
    )
    examples = ({"alpha": 0.5, "inplace": True},)

    def check_params(self, params):
        return _inplace_slope(params, "alpha")

    def recipe(self, params, inputs, ctx):
        return Recipe("torch.nn.ELU", {"alpha": params["alpha"], "inplace": params["inplace"]})



class Dropout(_Elementwise):
    type_id = "dropout"
    category = "Regularisation"
    title = "Dropout"
    doc = "Zeroes each element with probability p while training and scales the rest by 1/(1−p)."
    params = (
        FloatParam("p", 0.1, "probability of zeroing an element", min=0.0, max=1.0),
        BoolParam("inplace", False, INPLACE_DOC),
    )
    examples = ({"p": 0.5}, {"p": 0.0, "inplace": True})

    def warn_params(self, params):
        return [("p", "1 zeroes every element while training")] if params["p"] == 1 else []

    def output_aliases_input(self, params):
        return True  # in eval mode (and with p = 0) dropout returns its input itself

    def recipe(self, params, inputs, ctx):
        return Recipe("torch.nn.Dropout", {"p": params["p"], "inplace": params["inplace"]})
