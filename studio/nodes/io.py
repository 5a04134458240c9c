"""Boundary nodes: the model's bar window and score output, the ports of blocks, block instances and the
per-day application of a block."""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from typing import Any

from studio.core.node_type import InferContext, NodeType, Port, Recipe, ShapeError, Unbound
from studio.core.params import ChoiceParam, StrParam, show
from studio.core.shapes import KINDS, MAP, SCORE, SEQ, VEC, TensorShape
from studio.core.validation import (
    BLOCK_INPUT_TYPE,
    BLOCK_OUTPUT_TYPE,
    BLOCK_TYPE,
    INPUT_TYPE,
    OUTPUT_TYPE,
)
from studio.nodes.common import bars_per_day, bars_per_day_param, whole_days

BOUNDARY = "Input / output"


class BarWindow(NodeType):
    type_id = INPUT_TYPE
    category = BOUNDARY
    title = "Bar window"
    doc = ("The model's input: for each stock of a date, the last `days` x `bars_per_day` bars of the "
           "graph's features, oldest first (shape N×L×F). Several input nodes all give the same window.")
    outputs = (Port("bars", (SEQ,), "the bar window, N×(days·bars_per_day)×features"),)

    def infer(self, params, inputs, ctx):
        spec = ctx.input_spec
        if spec is None:
            raise ShapeError("the graph has no input spec (features, days, bars_per_day)")
        return {"bars": TensorShape.seq(spec.length, len(spec.features))}

    def recipe(self, params, inputs, ctx):
        raise NotImplementedError("the bar window is the model's argument x; the builder wires it")


class ScoreOutput(NodeType):
    type_id = OUTPUT_TYPE
    category = BOUNDARY
    title = "Score output"
    doc = ("The model's output: one score per stock, used to rank the date's cross-section. Takes a "
           "one-channel vector (e.g. from Linear(out_features=1)). Scores of stocks missing from the "
           "mask are set to 0.")
    inputs = (Port("x", (VEC, SCORE), "one value per stock: N×1"),)
    uses_mask = True

    def infer(self, params, inputs, ctx):
        shape = inputs["x"]
        if shape.kind == VEC and shape.channels != 1:
            raise ShapeError(f"expects 1 channel (one score per stock), gets {shape.channels}", port="x")
        return {}

    def recipe(self, params, inputs, ctx):
        return Recipe("studio.modules.io.ScoreOutput", {})


class BlockInput(NodeType):
    type_id = BLOCK_INPUT_TYPE
    category = BOUNDARY
    title = "Block input"
    doc = "An input port of the block this node sits in; its shape comes from the wire into the block."
    outputs = (Port("y", KINDS, "what arrives at the block's port"),)
    params = (
        StrParam("name", "x", "name of the block's input port", identifier=True),
        ChoiceParam("kind", SEQ, "tensor kind the port accepts", choices=(SEQ, VEC, MAP)),
    )

    def check_params(self, params):
        # the name becomes an argument of the block's generated forward(self, <inputs>, mask=None)
        name = params["name"]
        if not name.isascii():  # Python folds some letters together (NFKC): "ℌ" and "H" are one name
            return [("name", f"a port name must be ASCII letters, digits and _, gets {show(name)}")]
        if keyword.iskeyword(name):
            return [("name", f"a port name cannot be a Python keyword, gets {show(name)}")]
        if name in ("self", "mask"):
            return [("name", f"{show(name)} is taken by the block's forward(self, ..., mask)")]
        return []

    def output_ports(self, params, ctx=None):
        return (Port("y", (params["kind"],), "what arrives at the block's port"),)

    def infer(self, params, inputs, ctx):
        if ctx.bound is None:
            raise Unbound()
        if params["name"] not in ctx.bound:
            raise ShapeError(f"the block instance gives no input {show(params['name'])}", param="name")
        return {"y": ctx.bound[params["name"]]}

    def recipe(self, params, inputs, ctx):
        raise NotImplementedError("block inputs are arguments of the block's forward")


class BlockOutput(NodeType):
    type_id = BLOCK_OUTPUT_TYPE
    category = BOUNDARY
    title = "Block output"
    doc = "An output port of the block this node sits in."
    inputs = (Port("x", (SEQ, VEC, MAP, SCORE), "what the block gives out at this port"),)
    params = (StrParam("name", "y", "name of the block's output port", identifier=True),)

    def infer(self, params, inputs, ctx):
        return {}

    def recipe(self, params, inputs, ctx):
        raise NotImplementedError("block outputs are what the block's forward returns")


class Block(NodeType):
    type_id = BLOCK_TYPE
    category = "Blocks"
    title = "Block"
    doc = ("A reusable subgraph from the file's block table (defined inline or in its own file). Its "
           "ports are the block's block_input and block_output nodes.")
    params = (StrParam("block", "block", "name of the block in the graph file's block table",
                       identifier=True),)
    uses_mask = True
    ports_from_context = True

    def input_ports(self, params: Mapping[str, Any], ctx: InferContext | None = None):
        if ctx is None or ctx.blocks is None:
            return ()
        return ctx.blocks.ports(params["block"])[0]

    def output_ports(self, params: Mapping[str, Any], ctx: InferContext | None = None):
        if ctx is None or ctx.blocks is None:
            return ()
        return ctx.blocks.ports(params["block"])[1]

    def _inner(self, params, inputs, ctx):
        inner = ctx.blocks.infer(params["block"], inputs)
        if not inner.ok:
            raise ShapeError(f"inside block {show(params['block'])}: {inner.errors[0]}")
        return inner

    def infer(self, params, inputs, ctx):
        inner = self._inner(params, inputs, ctx)
        outputs = {}
        for node_id in inner.order:
            node = inner.graph.nodes[node_id]
            if node.type == BLOCK_OUTPUT_TYPE:
                outputs[node.params["name"]] = inner.in_shapes[node_id]["x"]
        return outputs

    def param_count(self, params, inputs, ctx):
        return self._inner(params, inputs, ctx).total_params

    def activation_count(self, params, inputs, outputs, ctx):
        return self._inner(params, inputs, ctx).activation_count

    def recipe(self, params, inputs, ctx):
        # the builder builds the block's own graph module (see studio.torchgraph.builder)
        return Recipe(BLOCK_TYPE, {"block": params["block"]})


class PerDay(NodeType):
    type_id = "per_day"
    category = "Blocks"
    title = "Per-day block"
    doc = ("The seed's daily view, second mode (section 2.2): runs a block on each day of the bar window "
           "separately, with the same weights for every day, and joins the day results in day order. The "
           "block (from the file's block table) takes one sequence (one day: N×bars_per_day×C) and gives "
           "one vector per stock. The days are folded into the dates axis, never into the stocks axis, so "
           "a cross-section layer inside still sees one date's stocks together. output sequence: one step "
           "per day (N×days×C'); concat: the day vectors side by side (N×(days·C')).")
    inputs = (Port("x", (SEQ,), "N×(days·bars_per_day)×C"),)
    outputs = (Port("y", (SEQ, VEC), "N×days×C' (sequence) or N×(days·C') (concat)"),)
    params = (
        StrParam("block", "block", "name of the block in the graph file's block table (one sequence in, one "
                 "vector out)", identifier=True),
        bars_per_day_param(),
        ChoiceParam("output", "sequence", "sequence: one step per day; concat: the day vectors joined on the "
                    "channel axis", choices=("sequence", "concat")),
    )
    uses_mask = True

    def output_ports(self, params, ctx=None):
        kind = SEQ if params["output"] == "sequence" else VEC
        return (Port("y", (kind,), self.outputs[0].doc),)

    def _port_names(self, params, ctx) -> tuple[str, str]:
        name = params["block"]
        ins, outs = ctx.blocks.ports(name)
        if len(ins) != 1 or ins[0].kinds != (SEQ,):
            raise ShapeError(f"block {show(name)} must have one sequence input (one day's bars), has "
                             f"{', '.join(f'{p.name} ({p.kinds[0]})' for p in ins) or 'none'}", param="block")
        if len(outs) != 1:
            raise ShapeError(f"block {show(name)} must have one output (a vector per stock and day), has "
                             f"{len(outs)}", param="block")
        return ins[0].name, outs[0].name

    def _bound(self, params, inputs, ctx) -> tuple[str, TensorShape]:
        x = inputs["x"]
        width = bars_per_day(params, ctx)
        whole_days(x, width)
        port, _ = self._port_names(params, ctx)
        return port, TensorShape.seq(width, x.channels)

    def _inner(self, params, inputs, ctx):
        port, day = self._bound(params, inputs, ctx)
        inner = ctx.blocks.infer(params["block"], {port: day})
        if not inner.ok:
            raise ShapeError(f"inside block {show(params['block'])} (on one day, {day}): {inner.errors[0]}")
        return inner

    def infer(self, params, inputs, ctx):
        x = inputs["x"]
        days = whole_days(x, bars_per_day(params, ctx))
        inner = self._inner(params, inputs, ctx)
        _, out_name = self._port_names(params, ctx)
        shape = next(inner.in_shapes[n]["x"] for n in inner.order
                     if inner.graph.nodes[n].type == BLOCK_OUTPUT_TYPE and inner.params[n]["name"] == out_name)
        if shape.kind != VEC:
            raise ShapeError(f"block {show(params['block'])} gives {shape.kind} {shape} for one day; it must give "
                             "a vector per stock (end it with a reduction such as reduce_time)", param="block")
        if params["output"] == "concat":
            return {"y": TensorShape.vec(days * shape.channels)}
        return {"y": TensorShape.seq(days, shape.channels)}

    def param_count(self, params, inputs, ctx):
        return self._inner(params, inputs, ctx).total_params

    def activation_count(self, params, inputs, outputs, ctx):
        days = whole_days(inputs["x"], bars_per_day(params, ctx))  # the block runs once per day
        return days * self._inner(params, inputs, ctx).activation_count + super().activation_count(
            params, inputs, outputs, ctx)

    def recipe(self, params, inputs, ctx):
        port, day = self._bound(params, inputs, ctx)
        return Recipe("studio.modules.blocks.PerDay",
                      {"bars_per_day": bars_per_day(params, ctx), "output": params["output"]},
                      block=params["block"], block_inputs={port: day})
