"""Validation and shape inference of graph documents (no torch needed).

``validate(graph, registry)`` returns every problem at once, each naming the node, ``node.port``,
``node.param`` or edge, together with the inferred shape of every port, the checked parameters of
every node and its parameter count. The editor draws shapes on wires and marks nodes from it; the
builder builds only from a validation without errors.

Inference runs in topological order from the graph's bar window. A node whose inputs could not be
inferred is skipped silently, so one fault upstream is reported once, where it happens.
"""

from __future__ import annotations

import difflib
import json
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from studio.core.document import (
    BLOCK,
    MODEL,
    BlockEntry,
    Edge,
    Endpoint,
    Graph,
    Problem,
    article,
    id_problem,
)
from studio.core.node_type import InferContext, NodeType, Port, ShapeError, Unbound
from studio.core.params import show
from studio.core.registry import Registry
from studio.core.shapes import KINDS, TensorShape

# Type ids of the graph's boundary nodes: they are part of the format, not of the catalogue.
INPUT_TYPE = "input"
OUTPUT_TYPE = "output"
BLOCK_INPUT_TYPE = "block_input"
BLOCK_OUTPUT_TYPE = "block_output"
BLOCK_TYPE = "block"

#: refuse models that could not be built on any sane machine (fuzzed or mistyped huge numbers)
MAX_PARAMETERS = 2_000_000_000
MAX_ELEMENTS_PER_STOCK = 200_000_000
#: the parameter budget of the commands that build a model (train, export, reproduce, sweep, the studio's
#: Start; ``--max-params``): far above every gallery graph (the largest has under 100 thousand), far below
#: what exhausts a desktop (a GRU of hidden_size 25000 has 1.9 billion, 7.5 GB before its gradients)
DEFAULT_MAX_PARAMS = 50_000_000
#: bytes of a float32 number, as the models train
BYTES_PER_NUMBER = 4
#: the activation estimate (elements per stock and date, summed over nodes: their outputs and what the
#: node types say they compute inside) x this, for the inputs and intermediates autograd saves as well.
#: Measured against torch's saved tensors on the gallery, the estimate is within about 0.5x-3x; the
#: training engine measures a probe step itself (docs/training.md)
AUTOGRAD_FACTOR = 2


@dataclass
class Validation:
    graph: Graph
    problems: list[Problem] = field(default_factory=list)
    #: node -> port -> shape of each output port that could be inferred
    out_shapes: dict[str, dict[str, TensorShape]] = field(default_factory=dict)
    #: node -> port -> shape arriving at each connected input port
    in_shapes: dict[str, dict[str, TensorShape]] = field(default_factory=dict)
    #: node -> checked (and, for older type versions, migrated) params
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    param_counts: dict[str, int] = field(default_factory=dict)
    #: node -> numbers per stock and date its forward makes (NodeType.activation_count, an estimate)
    activation_counts: dict[str, int] = field(default_factory=dict)
    #: node ids in the order the model computes them (nodes that could be inferred)
    order: list[str] = field(default_factory=list)
    #: node -> its input / output ports (nodes whose type and params are valid)
    in_ports: dict[str, tuple[Port, ...]] = field(default_factory=dict)
    out_ports: dict[str, tuple[Port, ...]] = field(default_factory=dict)
    #: node -> declaration, for nodes whose type is known
    types: dict[str, NodeType] = field(default_factory=dict)
    #: block scope used (the builder needs it to build block instances)
    scope: BlockScope | None = None
    #: nodes whose result reaches an output (the builder builds only these); None = not known
    useful: set[str] | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def total_params(self) -> int:
        """Parameters of the model as built (nodes that reach no output are left out)."""
        return sum(c for n, c in self.param_counts.items() if self.useful is None or n in self.useful)

    @property
    def param_bytes(self) -> int:
        """Bytes of the model's parameters (float32), before gradients and optimiser state."""
        return self.total_params * BYTES_PER_NUMBER

    @property
    def activation_count(self) -> int:
        """Numbers per stock and date the model's forward makes (nodes that reach an output)."""
        return sum(c for n, c in self.activation_counts.items() if self.useful is None or n in self.useful)

    @property
    def activation_bytes_per_stock(self) -> int:
        """An estimate of the bytes a training step keeps per stock of each date for the backward:
        activation_count x 4 bytes x AUTOGRAD_FACTOR. A step of D dates of N stocks keeps about D x N
        times this."""
        return self.activation_count * BYTES_PER_NUMBER * AUTOGRAD_FACTOR

    def shape(self, endpoint: Endpoint | str) -> TensorShape | None:
        ep = endpoint if isinstance(endpoint, Endpoint) else Endpoint.parse(endpoint)
        return self.out_shapes.get(ep.node, {}).get(ep.port)

    def problems_of(self, node_id: str) -> list[Problem]:
        return [p for p in self.problems if p.node == node_id]

    def output_node(self) -> str | None:
        outs = [n for n in self.order if self.graph.nodes[n].type == OUTPUT_TYPE]
        return outs[0] if len(outs) == 1 else None


class BlockScope:
    """Resolves block names to definitions and infers block instances (with a cache).

    Inline blocks resolve names in the table of the file that holds them; a block read from its own
    file resolves names in that file's table.
    """

    def __init__(self, table: Mapping[str, BlockEntry], registry: Registry,
                 stack: tuple[int, ...] = ()) -> None:
        self.table = table
        self.registry = registry
        self.stack = stack
        self._checked: dict[str, Validation] = {}
        self._inferred: dict[tuple, Validation] = {}

    def entry(self, name: str) -> BlockEntry:
        entry = self.table.get(name)
        if entry is None:
            known = ", ".join(sorted(self.table)) or "none in this file"
            raise ShapeError(f"no block named {show(name)} (blocks: {known})", param="block")
        if entry.graph is None:
            raise ShapeError(f"block {show(name)} could not be read (see its problem)", param="block")
        if id(entry.graph) in self.stack:
            raise ShapeError(f"block {show(name)} contains itself", param="block")
        return entry

    def _inner_scope(self, entry: BlockEntry) -> BlockScope:
        assert entry.graph is not None
        table = entry.graph.blocks if entry.path is not None else self.table
        return BlockScope(table, self.registry, (*self.stack, id(entry.graph)))

    def check(self, name: str) -> Validation:
        """The block definition checked on its own (structure and params, no shapes)."""
        if name not in self._checked:
            entry = self.entry(name)
            self._checked[name] = _check(entry.graph, self.registry, self._inner_scope(entry), None)
        return self._checked[name]

    def ports(self, name: str) -> tuple[tuple[Port, ...], tuple[Port, ...]]:
        graph = self.entry(name).graph
        assert graph is not None
        inputs, outputs = [], []
        for node in graph.nodes_of_type(BLOCK_INPUT_TYPE):
            port_name, kind = node.params.get("name"), node.params.get("kind")
            if isinstance(port_name, str) and kind in KINDS:
                inputs.append(Port(port_name, (kind,), f"block input {node.id}"))
        for node in graph.nodes_of_type(BLOCK_OUTPUT_TYPE):
            port_name = node.params.get("name")
            if isinstance(port_name, str):
                outputs.append(Port(port_name, KINDS, f"block output {node.id}"))
        return (tuple(sorted(inputs, key=lambda p: p.name)), tuple(sorted(outputs, key=lambda p: p.name)))

    def infer(self, name: str, inputs: Mapping[str, TensorShape]) -> Validation:
        """The block's inner graph inferred with its inputs bound to ``inputs``."""
        key = (name, tuple(sorted(inputs.items())))
        if key not in self._inferred:
            entry = self.entry(name)
            checked = self.check(name)
            if not checked.ok:
                raise ShapeError(f"block {show(name)} has problems (listed as \"block {name} > ...\")",
                                 param="block")
            self._inferred[key] = _check(entry.graph, self.registry, self._inner_scope(entry), dict(inputs))
        return self._inferred[key]

    def instances(self, name: str) -> list[Validation]:
        """The inferences of block ``name`` made so far (one per distinct set of input shapes it was
        used with), in a stable order: the editor shows the first one's shapes inside the block."""
        return [v for key, v in sorted(self._inferred.items(), key=lambda kv: repr(kv[0])) if key[0] == name]

    def problems(self) -> list[Problem]:
        """Problems of every block definition in the table, prefixed with the block's name."""
        found = []
        for name in sorted(self.table):
            entry = self.table[name]
            if entry.graph is None:
                continue
            for p in self.check(name).problems:
                found.append(Problem(f"block {name} > {p.where}", p.message, p.severity))
        return found


def validate(graph: Graph, registry: Registry) -> Validation:
    """Check a model or block document: every problem at once, plus shapes and parameter counts."""
    scope = BlockScope(graph.blocks, registry)
    result = _check(graph, registry, scope, None)
    result.problems.extend(scope.problems())
    return result


#: the bar window a block's inputs are given where nothing else does (a block file opened alone):
#: the studio's new-graph window, 10 days of 24 bars; channels as the first of EXAMPLE_CHANNELS the
#: block accepts (3 features, one value, or a layer's width)
EXAMPLE_DAYS, EXAMPLE_BARS_PER_DAY = 10, 24
EXAMPLE_CHANNELS = (3, 1, 16, 32, 64, 128)


def example_inputs(graph: Graph, channels: int = EXAMPLE_CHANNELS[0]) -> dict[str, TensorShape]:
    """A shape for each input a block declares (its block_input nodes' name and kind), cut from the
    example bar window: a sequence N×240×C, a map N×10×24×C (days × bars), a vector N×C."""
    examples = {"seq": TensorShape.seq(EXAMPLE_DAYS * EXAMPLE_BARS_PER_DAY, channels),
                "map": TensorShape.map(EXAMPLE_DAYS, EXAMPLE_BARS_PER_DAY, channels),
                "vec": TensorShape.vec(channels)}
    found = {}
    for node in graph.nodes_of_type(BLOCK_INPUT_TYPE):
        name, kind = node.params.get("name", "x"), node.params.get("kind", "seq")
        if isinstance(name, str) and kind in examples:
            found[name] = examples[kind]
    return found


def validate_alone(graph: Graph, registry: Registry) -> tuple[Validation, dict[str, TensorShape] | None]:
    """A document validated as it is shown on its own: a model as ``validate`` does; a block with
    its declared inputs bound to ``example_inputs`` (the first channel count it accepts), so that
    its wires have shapes and its nodes parameter counts. Returns the validation and the example
    inputs used (None where none were: a model, a block with problems, or one no example suits)."""
    plain = validate(graph, registry)
    if graph.kind != BLOCK or plain.errors or not graph.nodes_of_type(BLOCK_INPUT_TYPE):
        return plain, None
    for channels in EXAMPLE_CHANNELS:
        bound = example_inputs(graph, channels)
        scope = BlockScope(graph.blocks, registry)
        result = _check(graph, registry, scope, bound)
        if not result.errors:
            result.problems.extend(scope.problems())
            return result, bound
    return plain, None


def _check(graph: Graph, registry: Registry, scope: BlockScope,
           bound: dict[str, TensorShape] | None) -> Validation:
    return _Checker(graph, registry, scope, bound).run()


class _Checker:
    def __init__(self, graph: Graph, registry: Registry, scope: BlockScope,
                 bound: dict[str, TensorShape] | None) -> None:
        self.graph = graph
        self.registry = registry
        self.ctx = InferContext(graph.input, scope, bound)
        self.v = Validation(graph, scope=scope)
        self.v.problems.extend(graph.load_problems)
        #: the one wire into each connected input
        self.incoming: dict[Endpoint, Edge] = {}
        self.good_edges: list[Edge] = []

    def error(self, where: str, message: str, node: str | None = None, severity: str = "error") -> None:
        self.v.problems.append(Problem(where, message, severity, node))

    def run(self) -> Validation:
        for node_id in sorted(self.graph.nodes):
            self.check_node(node_id)
        self.check_edges()
        self.check_required_inputs()
        cyclic = self.check_cycles()
        self.check_boundary()
        self.infer(cyclic)
        self.check_reach()
        self.check_size()
        self.check_inplace()
        return self.v

    # ---- nodes and params --------------------------------------------------------------------
    def check_node(self, node_id: str) -> None:
        node = self.graph.nodes[node_id]
        reason = id_problem(node_id)
        if reason:
            self.error(node_id, reason, node_id)
        node_type = self.registry.get(node.type)
        key = _check_key(node_type, node)
        cached = _NODE_CHECKS.get(node_type, {}).get(key) if key is not None else None
        if cached is not None:  # the same declaration, version and params were checked before
            problems, params, in_ports, out_ports = cached
            self.v.types[node_id] = node_type
            for suffix, message, severity in problems:
                self.error(node_id + suffix, message, node_id, severity)
            if params is not None:
                self.v.in_ports[node_id], self.v.out_ports[node_id] = in_ports, out_ports
                self.v.params[node_id] = dict(params)
            return
        first_problem = len(self.v.problems)
        self._check_node(node_id, node, node_type)
        if key is not None:
            problems = [(p.where[len(node_id):], p.message, p.severity) for p in self.v.problems[first_problem:]
                        if p.where.startswith(node_id)]
            if len(problems) == len(self.v.problems) - first_problem:
                if sum(len(checks) for checks in _NODE_CHECKS.values()) > NODE_CHECK_CACHE:
                    _NODE_CHECKS.clear()
                params = self.v.params.get(node_id)
                _NODE_CHECKS.setdefault(node_type, {})[key] = (
                    problems, dict(params) if params is not None else None,
                    self.v.in_ports.get(node_id), self.v.out_ports.get(node_id))

    def _check_node(self, node_id: str, node, node_type) -> None:
        if node_type is None:
            close = difflib.get_close_matches(node.type, self.registry.type_ids(), n=1)
            hint = f" (did you mean {show(close[0])}?)" if close else ""
            self.error(node_id, f"unknown node type {show(node.type)}{hint}", node_id)
            return
        self.v.types[node_id] = node_type
        params = dict(node.params)
        if node.version > node_type.version:
            self.error(node_id, f"written for {node.type} version {node.version}; this studio knows "
                       f"version {node_type.version} (update Model Studio)", node_id)
            return
        if node.version < node_type.version:
            try:
                params = node_type.migrate(params, node.version)
            except Exception as exc:
                self.error(node_id, f"cannot upgrade {node.type} version {node.version} to "
                           f"{node_type.version}: {exc}", node_id)
                return
        ok = True
        declared = {p.name: p for p in node_type.params}
        for key in sorted(k for k in params if k not in declared):
            names = ", ".join(declared) or "no parameters"
            self.error(f"{node_id}.{key}", f"unknown parameter ({article(node.type)} has {names})", node_id)
            ok = False
        for p in node_type.params:
            if p.name not in params:
                self.error(f"{node_id}.{p.name}", f"missing parameter (default {show(p.default)})", node_id)
                ok = False
                continue
            reason = p.check(params[p.name])
            if reason:
                self.error(f"{node_id}.{p.name}", reason, node_id)
                ok = False
        if not ok:
            return
        try:
            rule_problems = node_type.check_params(params)
            for param_name, reason in rule_problems:
                self.error(f"{node_id}.{param_name}", reason, node_id)
            if rule_problems:
                return
            for param_name, reason in node_type.warn_params(params):
                self.error(f"{node_id}.{param_name}", reason, node_id, severity="warning")
            self.v.in_ports[node_id] = tuple(node_type.input_ports(params, self.ctx))
            self.v.out_ports[node_id] = tuple(node_type.output_ports(params, self.ctx))
        except ShapeError as exc:
            self.error(self._where(node_id, exc), exc.message, node_id)
            return
        except Exception as exc:  # a faulty node pack must not crash validation
            failure = f"{type(exc).__name__}: {exc}"
            self.error(node_id, f"the declaration of {node.type} failed ({failure})", node_id)
            return
        self.v.params[node_id] = params

    @staticmethod
    def _where(node_id: str, exc: ShapeError) -> str:
        if exc.port:
            return f"{node_id}.{exc.port}"
        if exc.param:
            return f"{node_id}.{exc.param}"
        return node_id

    # ---- wires -------------------------------------------------------------------------------
    def check_edges(self) -> None:
        into: dict[Endpoint, list[Edge]] = {}
        # sorted as Edge's own order, on plain strings (the dataclass comparison is slow)
        for edge in sorted(self.graph.edges, key=lambda e: (e.src.node, e.src.port, e.dst.node, e.dst.port)):
            ok = True
            for end, side in ((edge.src, "output"), (edge.dst, "input")):
                node = self.graph.nodes.get(end.node)
                if node is None and end.node in self.graph.unreadable_nodes:
                    ok = False  # the node's own problem was reported by the loader
                    continue
                if node is None:
                    self.error(f"edge {edge}", f"no node {show(end.node)}",
                               edge.dst.node if side == "output" else edge.src.node)
                    ok = False
                    continue
                ports = (self.v.out_ports if side == "output" else self.v.in_ports).get(end.node)
                if ports is None:
                    continue  # the node itself has a problem; its ports are unknown
                names = [p.name for p in ports]
                if end.port not in names:
                    listed = ", ".join(names) or "none"
                    self.error(f"edge {edge}", f"{node.type} {end.node} has no {side} port {show(end.port)} "
                               f"({side}s: {listed})", end.node)
                    ok = False
            if ok:
                self.good_edges.append(edge)
                into.setdefault(edge.dst, []).append(edge)
        for dst, edges in sorted(into.items(), key=lambda item: (item[0].node, item[0].port)):
            if len(edges) > 1:
                sources = ", ".join(str(e.src) for e in edges)
                self.error(str(dst), f"{len(edges)} wires into one input (from {sources}); "
                           "merge them with an Add or Concat node", dst.node)
            else:
                self.incoming[dst] = edges[0]

    def check_required_inputs(self) -> None:
        # any wire counts: a faulty one is reported on its own, not again as a missing input
        wired = {e.dst for e in self.graph.edges}
        for node_id, ports in sorted(self.v.in_ports.items()):
            for port in ports:
                end = Endpoint(node_id, port.name)
                if not port.optional and end not in wired:
                    self.error(str(end), "required input is not connected", node_id)

    def check_cycles(self) -> set[str]:
        pairs = [(e.src.node, e.dst.node) for e in self.good_edges]
        if _topological_order(set(self.graph.nodes), pairs) is not None:
            return set()  # the common case, without building a networkx graph
        g = nx.DiGraph()
        g.add_edges_from(pairs)
        cyclic: set[str] = set()
        for component in sorted(nx.strongly_connected_components(g), key=min):
            if len(component) == 1:
                only = next(iter(component))
                if not g.has_edge(only, only):
                    continue
            cyclic |= component
            cycle = nx.find_cycle(g.subgraph(component), source=min(component))
            path = " -> ".join([cycle[0][0], *(b for _, b in cycle)])
            self.error("cycle", f"{path} (a wire leads back to where it came from)", min(component))
        return cyclic

    def check_boundary(self) -> None:
        nodes = self.graph.nodes
        by_type: dict[str, list[str]] = {}
        for node_id, node in sorted(nodes.items()):
            by_type.setdefault(node.type, []).append(node_id)
        if self.graph.kind == MODEL:
            for misplaced in (BLOCK_INPUT_TYPE, BLOCK_OUTPUT_TYPE):
                for node_id in by_type.get(misplaced, []):
                    self.error(node_id, f"{article(misplaced)} node belongs inside a block, not in a model",
                               node_id)
            outputs = by_type.get(OUTPUT_TYPE, [])
            if not outputs:
                self.error("graph", "no output node (a model ends in one score output)")
            elif len(outputs) > 1:
                self.error("graph", f"{len(outputs)} output nodes ({', '.join(outputs)}); a model has one")
            if not by_type.get(INPUT_TYPE):
                self.error("graph", "no input node (a model starts from the bar window)")
        elif self.graph.kind == BLOCK:
            for misplaced in (INPUT_TYPE, OUTPUT_TYPE):
                for node_id in by_type.get(misplaced, []):
                    self.error(node_id, f"a block uses block_input/block_output nodes, not {misplaced}",
                               node_id)
            if not by_type.get(BLOCK_OUTPUT_TYPE):
                self.error("graph", "no block_output node (a block needs at least one output)")
            for boundary in (BLOCK_INPUT_TYPE, BLOCK_OUTPUT_TYPE):
                seen: dict[Any, str] = {}
                for node_id in by_type.get(boundary, []):
                    name = nodes[node_id].params.get("name")
                    if not isinstance(name, str):
                        continue  # reported as a parameter problem (and may be unhashable)
                    if name in seen:
                        self.error(f"{node_id}.name", f"port name {show(name)} is also used by {seen[name]}",
                                   node_id)
                    else:
                        seen[name] = node_id

    # ---- shapes ------------------------------------------------------------------------------
    def infer(self, cyclic: set[str]) -> None:
        nodes = {n for n in self.graph.nodes if n not in cyclic}
        pairs = [(e.src.node, e.dst.node) for e in self.good_edges
                 if e.src.node not in cyclic and e.dst.node not in cyclic]
        order = _topological_order(nodes, pairs)
        assert order is not None, "the cyclic nodes were left out"
        for node_id in order:
            if node_id in self.v.params:
                self.infer_node(node_id)

    def infer_node(self, node_id: str) -> None:
        node_type = self.v.types[node_id]
        params = self.v.params[node_id]
        inputs: dict[str, TensorShape] = {}
        sources: dict[str, Endpoint] = {}
        for port in self.v.in_ports[node_id]:
            edge = self.incoming.get(Endpoint(node_id, port.name))
            if edge is None:
                if port.optional:
                    continue
                return  # reported as unconnected (or as several wires)
            shape = self.v.shape(edge.src)
            if shape is None:
                return  # the fault is upstream and reported there
            if not port.accepts(shape.kind):
                self.error(f"{node_id}.{port.name}", f"expects {port.describe_kinds()}, gets {shape.kind} "
                           f"{shape} from {edge.src}", node_id)
                return
            inputs[port.name] = shape
            sources[port.name] = edge.src
        try:
            outputs = node_type.infer(params, inputs, self.ctx)
            count = node_type.param_count(params, inputs, self.ctx)
        except Unbound:
            return
        except ShapeError as exc:
            message = exc.message
            if exc.port in sources:
                message += f" from {sources[exc.port]}"
            self.error(self._where(node_id, exc), message, node_id)
            return
        except Exception as exc:  # a faulty node pack must not crash validation
            self.error(node_id, f"the shape rule of {node_type.type_id} failed "
                       f"({type(exc).__name__}: {exc})", node_id)
            return
        expected = {p.name for p in self.v.out_ports[node_id]}
        if set(outputs) != expected:
            self.error(node_id, f"the shape rule of {node_type.type_id} gave ports {sorted(outputs)}, "
                       f"declared {sorted(expected)}", node_id)
            return
        for port_name, shape in sorted(outputs.items()):
            if shape.numel() > MAX_ELEMENTS_PER_STOCK:
                self.error(f"{node_id}.{port_name}", f"{shape} would need {shape.numel():.3g} numbers per "
                           f"stock (limit {MAX_ELEMENTS_PER_STOCK:.0e})", node_id)
                return
        try:
            activations = int(node_type.activation_count(params, inputs, outputs, self.ctx))
        except Exception:  # a faulty node pack's estimate: its outputs count, validation goes on
            activations = sum(shape.numel() for shape in outputs.values())
        self.v.out_shapes[node_id] = outputs
        self.v.in_shapes[node_id] = inputs
        self.v.param_counts[node_id] = count
        self.v.activation_counts[node_id] = activations
        self.v.order.append(node_id)

    def check_size(self) -> None:
        total = self.v.total_params
        if total > MAX_PARAMETERS:
            biggest = max(self.v.param_counts, key=self.v.param_counts.__getitem__)
            self.error("graph", f"the model would have {total:.3g} parameters (limit {MAX_PARAMETERS:.0e}; "
                       f"largest: {biggest})", biggest)

    def check_reach(self) -> None:
        """Warn about nodes whose result never reaches an output: they would be computed for nothing."""
        sinks = {OUTPUT_TYPE, BLOCK_OUTPUT_TYPE}
        # every wire between existing nodes counts here: a faulty one is reported on its own
        known = set(self.graph.nodes) | self.graph.unreadable_nodes
        feeds: dict[str, list[str]] = {}
        has_out: set[str] = set()
        for e in self.graph.edges:
            if e.src.node in known and e.dst.node in known:
                feeds.setdefault(e.dst.node, []).append(e.src.node)
                if e.src.node != e.dst.node:
                    has_out.add(e.src.node)
        targets = [n for n, node in self.graph.nodes.items() if node.type in sinks]
        if not targets:
            return
        useful = set(targets)
        stack = list(targets)
        while stack:  # everything upstream of an output
            for src in feeds.get(stack.pop(), ()):
                if src not in useful:
                    useful.add(src)
                    stack.append(src)
        useful &= set(self.graph.nodes)
        self.v.useful = useful
        for node_id in sorted(set(self.graph.nodes) - useful):
            if self.graph.nodes[node_id].type in (INPUT_TYPE, BLOCK_INPUT_TYPE) and node_id not in has_out:
                continue  # an unused input is harmless
            self.error(node_id, "its result reaches no output (it is left out of the model)", node_id,
                       severity="warning")

    def check_inplace(self) -> None:
        """An in-place op overwrites its input: wrong when that tensor also feeds another node."""
        fan_out: dict[Endpoint, int] = {}
        for e in self.good_edges:
            fan_out[e.src] = fan_out.get(e.src, 0) + 1
        for node_id, params in sorted(self.v.params.items()):
            if params.get("inplace") is not True:
                continue
            for port in self.v.in_ports.get(node_id, ()):
                edge = self.incoming.get(Endpoint(node_id, port.name))
                shared = self._shared_source(edge.src, fan_out) if edge is not None else None
                if shared is not None:
                    assert edge is not None
                    via = "" if shared == edge.src else f" ({edge.src} is a view of it)"
                    owner = self.v.types.get(shared.node)
                    why = {INPUT_TYPE: "the model's input, which belongs to the caller",
                           BLOCK_INPUT_TYPE: "the block's input, which belongs to the graph around it"}.get(
                        owner.type_id if owner else None, "which also feeds other nodes")
                    self.error(f"{node_id}.inplace", f"would overwrite {shared}{via}, {why}; turn inplace off",
                               node_id)

    def _shared_source(self, src: Endpoint, fan_out: dict[Endpoint, int]) -> Endpoint | None:
        """The first tensor, from ``src`` up through nodes whose output is a view of their input, that
        also feeds other nodes or that the graph does not own (the model's or a block's input); None when
        there is none."""
        seen: set[str] = set()
        while src.node not in seen:
            node_type, params = self.v.types.get(src.node), self.v.params.get(src.node)
            if fan_out.get(src, 0) > 1 or (node_type is not None
                                           and node_type.type_id in (INPUT_TYPE, BLOCK_INPUT_TYPE)):
                return src
            seen.add(src.node)
            if node_type is None or params is None or not node_type.output_aliases_input(params):
                return None
            ports = self.v.in_ports.get(src.node, ())
            edge = self.incoming.get(Endpoint(src.node, ports[0].name)) if ports else None
            if edge is None:
                return None
            src = edge.src
        return None


#: check_node results of each declaration (the NodeType object itself, held weakly: its entries go
#: with it, and no other declaration can ever read them), by type id, version and params: a graph
#: validated again after one edit checks only the nodes whose params changed (the editor validates
#: after every edit)
_NODE_CHECKS: weakref.WeakKeyDictionary[NodeType, dict[tuple, tuple]] = weakref.WeakKeyDictionary()
NODE_CHECK_CACHE = 50_000


def over_budget(validation: Validation, max_params: int = DEFAULT_MAX_PARAMS,
                remedy: str = "--max-params N raises it") -> str | None:
    """One line refusing a model with more than ``max_params`` parameters, naming its largest node
    (None: within the budget). Commands that build the model call it before anything is allocated."""
    total = validation.total_params
    if total <= max_params:
        return None
    useful = validation.useful
    counts = {n: c for n, c in validation.param_counts.items() if useful is None or n in useful}
    biggest = max(counts, key=counts.__getitem__)
    weights = format_bytes(counts[biggest] * BYTES_PER_NUMBER)
    return (f"{biggest} has {format_count(counts[biggest])} parameters ({weights} of weights); the model's "
            f"{format_count(total)} are over the budget of {format_count(max_params)} ({remedy})")


def format_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as free memory is shown)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _check_key(node_type: NodeType | None, node) -> tuple | None:
    """The cache key of a node's check, or None when it cannot be reused: an unknown type, a type
    whose ports come from the context, or one from a node pack (whose rules we cannot vouch for)."""
    if node_type is None or node_type.ports_from_context or not type(node_type).__module__.startswith("studio."):
        return None
    try:
        frozen = json.dumps(node.params, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError, RecursionError):  # not plain JSON, or nested too deep: not cached
        return None
    return (node.type, node.version, frozen)


def _topological_order(nodes: set[str], pairs: list[tuple[str, str]]) -> list[str] | None:
    """``nodes`` in topological order, the smallest id first among those ready (networkx's
    lexicographical_topological_sort, without building a graph); None when the wires make a cycle.
    Wires to or from nodes outside ``nodes`` are ignored."""
    import heapq

    indegree = dict.fromkeys(nodes, 0)
    successors: dict[str, list[str]] = {}
    for a, b in pairs:
        if a in indegree and b in indegree:
            successors.setdefault(a, []).append(b)
            indegree[b] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for nxt in successors.get(node, ()):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(ready, nxt)
    return order if len(order) == len(indegree) else None


def format_count(n: int) -> str:
    """1234567 -> '1.23M' for tables."""
    if n < 1000:
        return str(n)
    exp = min(int(math.log10(n)) // 3, 4)
    return f"{n / 1000**exp:.3g}{'kMGT'[exp - 1]}"
