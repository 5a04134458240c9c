"""Basic layers: Linear, Conv1d, activations, dropout."""

from __future__ import annotations

from studio.core.node_type import NodeType, Port, Recipe, ShapeError
from studio.core.params import BoolParam, ChoiceParam, FloatParam, IntOrChoiceParam, IntParam
from studio.core.shapes import MAP, SCORE, SEQ, VEC, TensorShape, conv_out_length
from studio.nodes.common import MAX_CHANNELS, MAX_KERNEL, channels_param, in_channels_param

ANY_TENSOR = (SEQ, VEC, MAP)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


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

    def build(self, params, inputs, ctx):
        return Recipe("torch.nn.Linear", {"in_features": inputs["x"].channels,
                                          "out_features": params["out_features"], "bias": params["bias"]})


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

    def build(self, params, inputs, ctx):
        kwargs = {k: params[k] for k in ("out_channels", "kernel_size", "stride", "padding", "dilation",
                                         "groups", "bias", "padding_mode")}
        return Recipe("studio.modules.layers.SeqConv1d", {"in_channels": inputs["x"].channels, **kwargs})


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
    params = (BoolParam("inplace", False, "overwrite the input tensor to save memory (not on a fan-out)"),)
    examples = ({"inplace": True},)

    def build(self, params, inputs, ctx):
        return Recipe("torch.nn.ReLU", {"inplace": params["inplace"]})


class Dropout(_Elementwise):
    type_id = "dropout"
    category = "Regularisation"
    title = "Dropout"
    doc = "Zeroes each element with probability p while training and scales the rest by 1/(1−p)."
    params = (
        FloatParam("p", 0.1, "probability of zeroing an element", min=0.0, max=1.0),
        BoolParam("inplace", False, "overwrite the input tensor to save memory (not on a fan-out)"),
    )
    examples = ({"p": 0.5}, {"p": 0.0, "inplace": True})

    def warn_params(self, params):
        return [("p", "1 zeroes every element while training")] if params["p"] == 1 else []

    def build(self, params, inputs, ctx):
        return Recipe("torch.nn.Dropout", {"p": params["p"], "inplace": params["inplace"]})
