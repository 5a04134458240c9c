"""Graph document -> torch module.

The builder validates first and refuses invalid graphs with the validator's problems. It then makes
one torch.fx GraphModule per (sub)graph: submodules are named after the node ids, fan-out is just one
value used by several calls, merges are modules with several arguments, and ``module.code`` is the
readable ``forward``. A block instance becomes a nested GraphModule; a node that wraps a block (the
per-day node) gets the block instance's GraphModule as its module's first argument.

The model's signature is ``forward(x, mask=None) -> scores`` with ``x`` of shape (B, N, L, F) (B dates,
N stocks, L = days x bars_per_day bars, F features) and ``mask`` (B, N) marking the stocks present;
scores are (B, N). See docs/graph-format.md, "The model's input".
"""

from __future__ import annotations

import importlib
import operator
import unicodedata
from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch import nn

from studio.core.document import MODEL, Endpoint, Graph, Problem
from studio.core.node_type import InferContext, Recipe
from studio.core.registry import Registry
from studio.core.validation import (
    BLOCK_INPUT_TYPE,
    BLOCK_OUTPUT_TYPE,
    BLOCK_TYPE,
    INPUT_TYPE,
    OUTPUT_TYPE,
    Validation,
    validate,
)


class BuildError(Exception):
    """The graph is not valid; ``problems`` lists why (one line each)."""

    def __init__(self, problems: list, source: str = "graph") -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "unknown problem"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{source}: cannot build: {first}{more}")


@dataclass
class BuiltGraph:
    """A built (sub)graph: the module, and for each submodule how it was made (for code export)."""

    module: fx.GraphModule
    class_name: str
    #: submodule name -> the recipe it came from, the BuiltGraph of a block instance, or a module that
    #: wraps a block instance (WrappedBlock)
    parts: dict[str, Recipe | BuiltGraph | WrappedBlock] = field(default_factory=dict)
    #: names of forward()'s arguments
    arguments: tuple[str, ...] = ()
    block_name: str | None = None


@dataclass
class WrappedBlock:
    """A module made by ``recipe`` around a built block instance ``inner`` (the per-day node):
    ``target(inner.module, **recipe.kwargs)``."""

    recipe: Recipe
    inner: BuiltGraph


def resolve_target(target: str) -> type[nn.Module]:
    module_name, _, attr = target.rpartition(".")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"{target} is not a torch.nn.Module class")
    return cls


def instantiate(recipe: Recipe) -> nn.Module:
    return resolve_target(recipe.target)(**recipe.kwargs)


def build_model(graph: Graph, registry: Registry | None = None, *, seed: int | None = None,
                validation: Validation | None = None) -> fx.GraphModule:
    """Validate and build; ``seed`` makes the initial weights reproducible."""
    return build(graph, registry, seed=seed, validation=validation).module


def build(graph: Graph, registry: Registry | None = None, *, seed: int | None = None,
          validation: Validation | None = None) -> BuiltGraph:
    if registry is None:
        from studio.nodes import default_registry

        registry = default_registry()
    v = validation if validation is not None else validate(graph, registry)
    source = str(graph.path) if graph.path else (graph.name or "graph")
    if not v.ok:
        raise BuildError(v.errors, source)
    if graph.kind != MODEL:
        raise BuildError([Problem("graph", f"a {graph.kind} cannot be built on its own; use it in a model")],
                         source)
    if seed is not None:
        torch.manual_seed(seed)
    return _build_graph(v, "Model", block_name=None)


def _build_graph(v: Validation, class_name: str, block_name: str | None) -> BuiltGraph:
    graph = v.graph
    fx_graph = fx.Graph()
    is_block = block_name is not None
    parts: dict[str, Recipe | BuiltGraph | WrappedBlock] = {}
    ctx = InferContext(graph.input, v.scope, None)
    values: dict[Endpoint, fx.Node] = {}
    block_outputs: dict[str, fx.Node] = {}
    order = [n for n in v.order if v.useful is None or n in v.useful]

    if is_block:
        names = sorted(graph.nodes[n].params["name"] for n in order
                       if graph.nodes[n].type == BLOCK_INPUT_TYPE)
        inputs = {name: fx_graph.placeholder(name) for name in names}
        mask = fx_graph.placeholder("mask", default_value=None)
        arguments = (*names, "mask")
    else:
        x = fx_graph.placeholder("x")
        mask = fx_graph.placeholder("mask", default_value=None)
        arguments = ("x", "mask")
    modules: dict[str, nn.Module] = {}
    result: fx.Node | None = None
    #: outputs of multi-output nodes: picked out of the module's tuple when first used
    multi: dict[Endpoint, tuple[fx.Node, int]] = {}

    def value_of(src: Endpoint) -> fx.Node:
        if src not in values:
            call, index = multi[src]
            values[src] = fx_graph.create_node("call_function", operator.getitem, (call, index),
                                               name=f"{src.node}_{src.port}")
        return values[src]

    for node_id in order:
        node = graph.nodes[node_id]
        node_type = v.types[node_id]
        params = v.params[node_id]
        in_shapes = v.in_shapes[node_id]
        if node.type == INPUT_TYPE:
            values[Endpoint(node_id, "bars")] = x
            continue
        if node.type == BLOCK_INPUT_TYPE:
            values[Endpoint(node_id, "y")] = inputs[params["name"]]
            continue
        args: list[fx.Node | None] = []
        for port in v.in_ports[node_id]:
            src = graph.source_of(Endpoint(node_id, port.name))
            args.append(value_of(src) if src is not None else None)
        if node.type == BLOCK_OUTPUT_TYPE:
            block_outputs[params["name"]] = args[0]
            continue
        recipe = node_type.recipe(params, in_shapes, ctx)
        if recipe.target == BLOCK_TYPE:
            inner = v.scope.infer(recipe.kwargs["block"], in_shapes)  # cached by the validator
            part = _build_graph(inner, _block_class_name(recipe.kwargs["block"]), recipe.kwargs["block"])
            modules[node_id] = part.module
            parts[node_id] = part
            uses_mask = True
        elif recipe.block is not None:
            inner = v.scope.infer(recipe.block, recipe.block_inputs or {})  # cached by the validator
            part = _build_graph(inner, _block_class_name(recipe.block), recipe.block)
            modules[node_id] = resolve_target(recipe.target)(part.module, **recipe.kwargs)
            parts[node_id] = WrappedBlock(recipe, part)
            uses_mask = node_type.uses_mask
        else:
            modules[node_id] = instantiate(recipe)
            parts[node_id] = recipe
            uses_mask = node_type.uses_mask
        call_args = tuple(args) + ((mask,) if uses_mask else ())
        call = fx_graph.create_node("call_module", node_id, call_args, name=node_id)
        out_ports = v.out_ports[node_id]
        if node.type == OUTPUT_TYPE:
            result = call
        elif len(out_ports) == 1:
            values[Endpoint(node_id, out_ports[0].name)] = call
        else:
            for i, port in enumerate(out_ports):
                multi[Endpoint(node_id, port.name)] = (call, i)

    if is_block:
        ordered = [block_outputs[name] for name in sorted(block_outputs)]
        fx_graph.output(ordered[0] if len(ordered) == 1 else tuple(ordered))
    else:
        assert result is not None, "a valid model has an output node"
        fx_graph.output(result)
    fx_graph.lint()
    module = fx.GraphModule(modules, fx_graph, class_name=class_name)
    return BuiltGraph(module, class_name, parts, arguments, block_name)


def _block_class_name(name: str) -> str:
    """The class of a block instance. Block names are identifiers, but Python folds identifiers with
    NFKC (the ligature "\ufb01" reads as "fi"): such characters are spelled out so two blocks never
    share a class name by accident."""
    if unicodedata.normalize("NFKC", name) == name:
        return "Block_" + name
    return "Block_" + "".join(c if unicodedata.normalize("NFKC", c) == c else f"_u{ord(c):04x}_" for c in name)


def parameter_counts(module: nn.Module) -> dict[str, int]:
    """Trainable parameters per top-level submodule (= per node)."""
    return {name: sum(p.numel() for p in child.parameters()) for name, child in module.named_children()}
