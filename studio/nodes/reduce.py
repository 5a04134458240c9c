"""Reducing a sequence over time: to one vector per stock (last, mean, max, attention pooling, one chosen
step), to a region of steps, or to one step per day (day means)."""

from __future__ import annotations

from studio.core.node_type import NodeType, Port, Recipe, ShapeError
from studio.core.params import ChoiceParam, IntParam
from studio.core.shapes import SEQ, VEC, TensorShape
from studio.nodes.common import MAX_STEPS, bars_per_day, bars_per_day_param, in_channels_param, whole_days


class TimeReduce(NodeType):
    type_id = "reduce_time"
    category = "Reduce"
    title = "Reduce over time"
    doc = ("One vector per stock from a sequence: the last step, or the mean or maximum over all steps "
           "(Attention pooling learns the weighting).")
    keywords = ("last step", "mean over time", "max over time", "pooling")
    inputs = (Port("x", (SEQ,), "N×L×C"),)
    outputs = (Port("y", (VEC,), "N×C"),)
    params = (ChoiceParam("mode", "last", "last step, mean or max over time",
                          choices=("last", "mean", "max")),)
    examples = ({"mode": "mean"}, {"mode": "max"})

    def output_aliases_input(self, params):
        return params["mode"] == "last"  # a view of the last step

    def infer(self, params, inputs, ctx):
        return {"y": TensorShape.vec(inputs["x"].channels)}

    def recipe(self, params, inputs, ctx):
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

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.reduce.AttentionPool", {"channels": inputs["x"].channels,
                                                              "heads": params["heads"]})


class SelectStep(NodeType):
    type_id = "select_step"
    category = "Reduce"
    title = "Select one step (token)"
    doc = ("One step of a sequence as a vector per stock: index 0 is the first step (the CLS token's output "
           "after an encoder with cls_sep_tokens), -1 the last; negative indices count from the end.")
    keywords = ("last step", "first step", "CLS token")
    inputs = (Port("x", (SEQ,), "N×L×C"),)
    outputs = (Port("y", (VEC,), "N×C: step `index`"),)
    params = (IntParam("index", 0, "the step: 0 the first, 1 the second...; -1 the last, -2 the one before",
                       min=-MAX_STEPS, max=MAX_STEPS - 1),)
    examples = ({"index": -1}, {"index": 5}, {"index": -12})

    def output_aliases_input(self, params):
        return True  # a view of one step

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        index = params["index"]
        if not -x.length <= index < x.length:
            raise ShapeError(f"index {index} is outside the {x.length} steps arriving (valid: {-x.length} to "
                             f"{x.length - 1})", param="index")
        return {"y": TensorShape.vec(x.channels)}

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.reduce.SelectStep", {"index": params["index"]})


class SliceSteps(NodeType):
    type_id = "slice_steps"
    category = "Reduce"
    title = "Slice of steps (region)"
    doc = ("A region of a sequence: steps start, start + step, ... before stop, as Python's x[start:stop:step] "
           "(negative positions count from the end), e.g. the last day of the bar window, or the regions a "
           "Fast-RCNN-style head pools (seed section 5). A view, no copy.")
    inputs = (Port("x", (SEQ,), "N×L×C"),)
    outputs = (Port("y", (SEQ,), "N×L_out×C: the steps of the region"),)
    params = (
        IntParam("start", 0, "first step: 0 the first, -24 the 24th from the end", min=-MAX_STEPS,
                 max=MAX_STEPS),
        IntParam("stop", None, "the step after the last one; null = to the end", min=-MAX_STEPS, max=MAX_STEPS,
                 optional=True, none_means="to the end"),
        IntParam("step", 1, "take every step-th step", min=1, max=MAX_STEPS),
    )
    examples = ({"start": -4}, {"start": 1, "stop": -1, "step": 2}, {"start": 0, "stop": 5})

    def output_aliases_input(self, params):
        return True  # a strided view

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        length = len(range(x.length)[params["start"]:params["stop"]:params["step"]])
        if length < 1:
            stop = "the end" if params["stop"] is None else params["stop"]
            raise ShapeError(f"the region from {params['start']} to {stop} holds no step of the {x.length} "
                             "arriving", param="start")
        return {"y": TensorShape.seq(length, x.channels)}

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.reduce.SliceSteps",
                      {"start": params["start"], "stop": params["stop"], "step": params["step"]})


class DayMean(NodeType):
    type_id = "day_mean"
    category = "Reduce"
    title = "Day means"
    doc = ("The seed's daily view, first mode (section 2.2): the bar window cut into its days, each day's "
           "bars averaged, so a sequence of days × bars_per_day steps becomes a sequence of `days` steps "
           "(one per day, oldest first), channels kept. A model after it reads the daily sequence.")
    inputs = (Port("x", (SEQ,), "N×(days·bars_per_day)×C"),)
    outputs = (Port("y", (SEQ,), "N×days×C"),)
    params = (bars_per_day_param(),)
    examples = ({"bars_per_day": 4}, {"bars_per_day": 1}, {"bars_per_day": 12})

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        return {"y": TensorShape.seq(whole_days(x, bars_per_day(params, ctx)), x.channels)}

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.reduce.DayMean", {"bars_per_day": bars_per_day(params, ctx)})
