"""Parameter declarations and shape helpers shared by several node types."""

from __future__ import annotations

from studio.core.node_type import ShapeError
from studio.core.params import IntParam
from studio.core.shapes import TensorShape

MAX_CHANNELS = 65_536
MAX_KERNEL = 4_096
MAX_LAYERS = 64
MAX_STEPS = 1_000_000


def in_channels_param(name: str = "in_channels", what: str = "input channels") -> IntParam:
    """An ``in_*`` size that is taken from the input wire when left null, and checked when set."""
    return IntParam(name, None, f"{what}; null = taken from the input wire (checked when set)",
                    min=1, max=MAX_CHANNELS, optional=True, none_means="from the input wire")


def channels_param(name: str, default: int, doc: str) -> IntParam:
    return IntParam(name, default, doc, min=1, max=MAX_CHANNELS)


def merge_ports_count(params) -> int:
    return int(params["inputs"])


def same_shapes(inputs: dict[str, TensorShape], ports: list[str]) -> TensorShape:
    """All inputs must have the first one's shape (for element-wise merges)."""
    first = inputs[ports[0]]
    for name in ports[1:]:
        if inputs[name] != first:
            raise ShapeError(f"expects {first.kind} {first} (like {ports[0]}), gets {inputs[name].kind} "
                             f"{inputs[name]}", port=name)
    return first


def bars_per_day_param() -> IntParam:
    return IntParam("bars_per_day", None, "bars of one day; must divide the length", min=1, max=MAX_STEPS,
                    optional=True, none_means="the graph's input.bars_per_day")


def bars_per_day(params, ctx) -> int:
    """The node's bars_per_day, or the graph's when it is null (not available inside a block)."""
    if params["bars_per_day"] is not None:
        return params["bars_per_day"]
    if ctx is None or ctx.input_spec is None:
        raise ShapeError("is null, and there is no bar window to take it from (inside a block): set it",
                         param="bars_per_day")
    return ctx.input_spec.bars_per_day


def whole_days(x: TensorShape, width: int) -> int:
    """Days in a sequence of ``width`` bars a day (the length must be a whole number of them)."""
    if x.length % width:
        raise ShapeError(f"length {x.length} is not a whole number of days of {width} bars "
                         f"(bars_per_day {width})", port="x")
    return x.length // width
