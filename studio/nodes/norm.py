"""Normalisation layers: BatchNorm1d (sequences, vectors), BatchNorm2d (maps), LayerNorm (channels)."""

from __future__ import annotations

from typing import ClassVar

from studio.core.node_type import NodeType, Port, Recipe
from studio.core.params import BoolParam, FloatParam, Param
from studio.core.shapes import MAP, SEQ, VEC
from studio.nodes.common import in_channels_param

EPS = FloatParam("eps", 1e-5, "added to the variance before the square root, for numerical stability",
                 min=0.0)


def _batch_norm_params() -> tuple[Param, ...]:
    return (
        in_channels_param("num_features", "channels"),
        EPS,
        FloatParam("momentum", 0.1, "weight of the newest batch in the running statistics", min=0.0, max=1.0,
                   optional=True, none_means="a cumulative moving average"),
        BoolParam("affine", True, "learn a per-channel scale (weight) and shift (bias)"),
        BoolParam("track_running_stats", True, "keep running mean and variance for eval mode (off: eval "
                  "uses the batch's own statistics too)"),
    )


def _eps_warning(params) -> list[tuple[str, str]]:
    return [("eps", "0 divides by zero on a constant channel")] if params["eps"] == 0 else []


class _BatchNorm(NodeType):
    target: ClassVar[str]
    category = "Normalisation"
    params = _batch_norm_params()
    examples = (
        {"affine": False, "momentum": None},
        {"track_running_stats": False, "eps": 1e-3},
        {"num_features": 4, "momentum": 0.01},
    )

    def warn_params(self, params):
        return _eps_warning(params)

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        self.resolve_channels(params, "num_features", x, "x")
        return {"y": x}

    def param_count(self, params, inputs, ctx):
        return 2 * inputs["x"].channels if params["affine"] else 0

    def recipe(self, params, inputs, ctx):
        return Recipe(self.target, {"num_features": inputs["x"].channels, **{
            k: params[k] for k in ("eps", "momentum", "affine", "track_running_stats")}})


class BatchNorm1d(_BatchNorm):
    type_id = "batchnorm1d"
    title = "BatchNorm1d"
    doc = ("torch.nn.BatchNorm1d on the channel axis of a sequence or of vectors. While training, each "
           "channel is normalised with the batch's statistics, taken over every other axis: B dates × N "
           "stocks × L steps for a sequence, B × N for vectors (stocks absent from the mask included). "
           "Eval mode uses the running statistics.")
    inputs = (Port("x", (SEQ, VEC), "N×L×C or N×C"),)
    outputs = (Port("y", (SEQ, VEC), "the input's shape"),)
    target = "studio.modules.layers.ChannelBatchNorm1d"


class BatchNorm2d(_BatchNorm):
    type_id = "batchnorm2d"
    title = "BatchNorm2d"
    doc = ("torch.nn.BatchNorm2d on the channel axis of a map: statistics over B dates × N stocks × H × W "
           "per channel while training, running statistics in eval mode.")
    inputs = (Port("x", (MAP,), "N×H×W×C"),)
    outputs = (Port("y", (MAP,), "the input's shape"),)
    target = "studio.modules.layers.MapBatchNorm2d"


class LayerNorm(NodeType):
    type_id = "layernorm"
    category = "Normalisation"
    title = "LayerNorm"
    doc = ("torch.nn.LayerNorm over the channel axis: every step (or cell, or vector) of every stock is "
           "normalised on its own, with no batch statistics; the same in training and eval.")
    inputs = (Port("x", (SEQ, VEC, MAP), "channels last"),)
    outputs = (Port("y", (SEQ, VEC, MAP), "the input's shape"),)
    params = (
        in_channels_param("normalized_shape", "channels normalised (the last axis)"),
        EPS,
        BoolParam("elementwise_affine", True, "learn a per-channel scale (weight) and, with bias, a shift"),
        BoolParam("bias", True, "learn the shift too (only with elementwise_affine)"),
    )
    examples = ({"elementwise_affine": False}, {"bias": False, "eps": 1e-6}, {"normalized_shape": 4})

    def warn_params(self, params):
        return _eps_warning(params)

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        self.resolve_channels(params, "normalized_shape", x, "x")
        return {"y": x}

    def param_count(self, params, inputs, ctx):
        if not params["elementwise_affine"]:
            return 0
        return inputs["x"].channels * (2 if params["bias"] else 1)

    def recipe(self, params, inputs, ctx):
        return Recipe("torch.nn.LayerNorm", {"normalized_shape": inputs["x"].channels, "eps": params["eps"],
                                             "elementwise_affine": params["elementwise_affine"],
                                             "bias": params["bias"]})
