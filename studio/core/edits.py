"""The editing rules of a document, for the editor and for scripts: which wires may be made
(``can_connect``, as orange-canvas-core's ``scheme.check_connect``), and the edits that take several
steps: copy and paste a selection, group a selection into a block and expand a block back, each also
in a *scope* (None: the file's own graph; a name: one of its inline blocks, whose nested blocks live
in the file's table). The editor wraps each in one undo step and keeps only gestures and drawing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from studio.core.document import (
    BLOCK,
    INPUT_LIMITS,
    MODEL,
    BlockEntry,
    Edge,
    Endpoint,
    Graph,
    InputSpec,
    Node,
    block_reference,
)
from studio.core.layout import COLUMN_WIDTH, GRID, NODE_SIZE, auto_layout, tangled
from studio.core.shapes import KIND_NAMES, SEQ, TensorShape

CLIPBOARD_FORMAT = "model-studio.selection"
BOUNDARY_TYPES = ("input", "output")


class EditError(Exception):
    """An edit that cannot be made; one line saying why."""


# ---- scopes and wires ------------------------------------------------------------------------------

def scoped(graph: Graph, scope: str | None) -> Graph:
    """The graph a scope names: the file's own (None) or one of its inline blocks."""
    if scope is None:
        return graph
    entry = graph.blocks.get(scope)
    if entry is None or entry.graph is None:
        raise EditError(f"there is no block {scope!r} in this file any more")
    return entry.graph


def can_connect(graph: Graph, validation, src: Endpoint, dst: Endpoint) -> str | None:
    """Why a wire from output ``src`` to input ``dst`` of ``graph`` cannot be made, or None. A wire
    into a connected input replaces the old one, so that one does not count. ``validation`` is the
    graph's (a core Validation): it knows the ports and the shape leaving ``src``."""
    if src.node not in graph.nodes or dst.node not in graph.nodes:
        missing = src.node if src.node not in graph.nodes else dst.node
        return f"there is no node {missing!r}"
    if src.node == dst.node:
        return f"{dst.node} cannot feed itself"
    out_ports = validation.out_ports.get(src.node)
    if out_ports is not None and src.port not in {p.name for p in out_ports}:
        return f"{src.node} has no output {src.port!r}"
    in_ports = validation.in_ports.get(dst.node)
    if in_ports is not None and dst.port not in {p.name for p in in_ports}:
        return f"{dst.node} has no input {dst.port!r}"
    path = _path(graph, dst.node, src.node, ignore=dst)
    if path is not None:
        return f"a wire {src} -> {dst} would make a cycle: {' -> '.join([src.node, *path])}"
    shape = validation.shape(src)
    port = next((p for p in in_ports or () if p.name == dst.port), None)
    if shape is not None and port is not None and not port.accepts(shape.kind):
        kind = KIND_NAMES[shape.kind].split(" (")[0]
        return f"{dst}: expects {port.describe_kinds()}, gets {kind} {shape} from {src}"
    return None


def _path(graph: Graph, start: str, goal: str, ignore: Endpoint) -> list[str] | None:
    """Node ids of a wire path from ``start`` to ``goal`` (both included), or None; the wire into
    ``ignore`` does not count."""
    successors: dict[str, list[str]] = {}
    for e in graph.edges:
        if e.dst != ignore:
            successors.setdefault(e.src.node, []).append(e.dst.node)
    came_from: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:  # breadth first: the shortest path, as the message shows it
        node = queue.pop(0)
        if node == goal:
            path = [node]
            while came_from[path[-1]] is not None:
                path.append(came_from[path[-1]])  # type: ignore[arg-type]
            return path[::-1]
        for nxt in sorted(successors.get(node, ())):
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    return None


def connect_replacing(graph: Graph, src: Endpoint, dst: Endpoint) -> Edge:
    """Wire ``src`` to ``dst``; a wire already into ``dst`` goes (an input takes one wire)."""
    for e in [e for e in graph.edges if e.dst == dst]:
        graph.disconnect(e)
    return graph.connect(src, dst)


# ---- copy and paste --------------------------------------------------------------------------------

def copy_selection(graph: Graph, node_ids: Iterable[str]) -> str:
    """The selected nodes and the wires between them, as JSON text (the clipboard's content). Blocks
    the selection uses travel with it, so a paste into another file works."""
    ids = sorted(set(node_ids) & set(graph.nodes))
    nodes = {i: {"type": graph.nodes[i].type, "version": graph.nodes[i].version,
                 "params": copy.deepcopy(graph.nodes[i].params), "pos": list(graph.nodes[i].pos)} for i in ids}
    edges = [{"from": str(e.src), "to": str(e.dst)} for e in sorted(graph.edges)
             if e.src.node in nodes and e.dst.node in nodes]
    blocks = {}
    for i in ids:
        name = block_reference(graph.nodes[i])  # block instances and per-day nodes
        if name is not None:
            entry = graph.blocks.get(name)
            if entry is not None and entry.graph is not None and entry.path is None:
                from studio.core.graph_file import _document_json

                blocks[name] = _document_json(entry.graph, top=False)
            elif entry is not None and entry.path is not None:
                blocks[name] = {"path": entry.path}
    return json.dumps({"format": CLIPBOARD_FORMAT, "nodes": nodes, "edges": edges, "blocks": blocks})


def paste(graph: Graph, text: str, offset: tuple[float, float] = (40.0, 40.0)) -> list[str]:
    """Add a copied selection to ``graph`` (ids renamed where taken, positions shifted by ``offset``);
    returns the new node ids."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise EditError("the clipboard holds no Model Studio nodes") from None
    if not isinstance(data, dict) or data.get("format") != CLIPBOARD_FORMAT:
        raise EditError("the clipboard holds no Model Studio nodes")
    renamed: dict[str, str] = {}
    added: list[str] = []
    for old_id, spec in sorted(data.get("nodes", {}).items()):
        new_id = old_id if old_id not in graph.nodes else graph.new_id(_stem(old_id))
        renamed[old_id] = new_id
        x, y = spec.get("pos", [0, 0])
        graph.add_node(spec["type"], spec["version"], spec.get("params", {}), node_id=new_id,
                       pos=(x + offset[0], y + offset[1]))
        added.append(new_id)
    for edge in data.get("edges", []):
        src, dst = Endpoint.parse(edge["from"]), Endpoint.parse(edge["to"])
        graph.connect(Endpoint(renamed[src.node], src.port), Endpoint(renamed[dst.node], dst.port))
    for name, spec in data.get("blocks", {}).items():
        if name in graph.blocks:
            continue  # the target file's own block of that name is used
        if "path" in spec:
            graph.blocks[name] = BlockEntry(name, None, spec["path"])
        else:
            from studio.core.graph_file import _read_document

            graph.blocks[name] = BlockEntry(name, _read_document(spec, "clipboard", None, (), top=False))
    return added


def paste_into(graph: Graph, scope: str | None, text: str, offset: tuple[float, float] = (40.0, 40.0)) -> list[str]:
    """Paste into the scope's graph; blocks the selection brings join the file's table (a block tab's
    nested blocks resolve there)."""
    target = scoped(graph, scope)
    added = paste(target, text, offset)
    if scope is not None:
        for name, entry in list(target.blocks.items()):
            graph.blocks.setdefault(name, entry)
        target.blocks.clear()
    return added


def _stem(node_id: str) -> str:
    head, _, tail = node_id.rpartition("_")
    return head if head and tail.isdigit() else node_id


# ---- blocks ----------------------------------------------------------------------------------------

def group_to_block(graph: Graph, node_ids: Iterable[str], name: str | None = None,
                   shapes: dict[Endpoint, TensorShape] | None = None) -> str:
    """Move the selected nodes into a new inline block and put one block node in their place. Wires
    that crossed the selection's border become the block's ports (one input port per outside
    source, one output port per inside source). ``shapes`` (from a validation) gives the kind of
    each input port; without it, ports take sequences. Returns the block node's id."""
    chosen = set(node_ids) & set(graph.nodes)
    if not chosen:
        raise EditError("select the nodes to group first")
    boundary = sorted(i for i in chosen if graph.nodes[i].type in BOUNDARY_TYPES)
    if boundary:
        raise EditError(f"{boundary[0]} is the model's {graph.nodes[boundary[0]].type}; it cannot go into a block")
    name = name or _free_name(graph, "block")
    if name in graph.blocks:
        raise EditError(f"a block named {name!r} exists already")
    inner = Graph(name=name, kind="block", description=f"Grouped from {', '.join(sorted(chosen))}.")
    for node_id in sorted(chosen):
        inner.nodes[node_id] = graph.nodes[node_id]
    inbound = [e for e in graph.edges if e.dst.node in chosen and e.src.node not in chosen]
    outbound = [e for e in graph.edges if e.src.node in chosen and e.dst.node not in chosen]
    inside = [e for e in graph.edges if e.src.node in chosen and e.dst.node in chosen]
    inner.edges = list(inside)
    xs = [graph.nodes[i].pos[0] for i in chosen]
    ys = [graph.nodes[i].pos[1] for i in chosen]
    used = set(chosen)

    def port_node(base: str) -> str:
        candidate, n = base, 1
        while candidate in used or candidate in graph.nodes:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate)
        return candidate

    outer_new: list[Edge] = []
    block_id = graph.new_id("block")
    in_names: dict[Endpoint, str] = {}
    for edge in sorted(inbound):
        if edge.src not in in_names:
            port = _port_name(edge.dst.port, in_names.values())
            node_id = port_node(f"in_{port}")
            kind = shapes.get(edge.src).kind if shapes and edge.src in shapes else SEQ
            inner.nodes[node_id] = Node(node_id, "block_input", 1, {"name": port, "kind": kind},
                                        (min(xs) - 200.0, graph.nodes[edge.dst.node].pos[1]))
            in_names[edge.src] = port
            outer_new.append(Edge(edge.src, Endpoint(block_id, port)))
        inner.edges.append(Edge(Endpoint(_input_node(inner, in_names[edge.src]), "y"), edge.dst))
    out_names: dict[Endpoint, str] = {}
    for edge in sorted(outbound):
        if edge.src not in out_names:
            port = _port_name(edge.src.port if edge.src.port != "y" else edge.src.node, out_names.values())
            node_id = port_node(f"out_{port}")
            inner.nodes[node_id] = Node(node_id, "block_output", 1, {"name": port},
                                        (max(xs) + 200.0, graph.nodes[edge.src.node].pos[1]))
            inner.edges.append(Edge(edge.src, Endpoint(node_id, "x")))
            out_names[edge.src] = port
        outer_new.append(Edge(Endpoint(block_id, out_names[edge.src]), edge.dst))
    for node_id in chosen:
        del graph.nodes[node_id]
    graph.edges = [e for e in graph.edges if e not in inbound and e not in outbound and e not in inside]
    _place_ports(inner, chosen)
    graph.blocks[name] = BlockEntry(name, inner)
    graph.add_node(BLOCK, 1, {"block": name}, node_id=block_id,
                   pos=(sum(xs) / len(xs), sum(ys) / len(ys)))
    graph.edges.extend(outer_new)
    return block_id


def group_in(graph: Graph, scope: str | None, node_ids: Iterable[str],
             shapes: dict[Endpoint, TensorShape] | None = None) -> str:
    """Group in the scope's graph; the new block joins the file's table. Returns the block node's id."""
    target = scoped(graph, scope)
    if scope is not None:
        name = _free_name(_union_table(graph, target), "block")  # free in the file's table too
        block_id = group_to_block(target, node_ids, name=name, shapes=shapes)
        graph.blocks[name] = target.blocks.pop(name)
        return block_id
    return group_to_block(target, node_ids, shapes=shapes)


def _place_ports(inner: Graph, chosen: set[str]) -> None:
    """Lay out a freshly grouped block's inside: its input nodes a column left of the grouped nodes,
    its outputs a column right (room for the wires' shape labels), each level with the node it
    feeds or reads and none on another; the grouped nodes keep where the user put them (expanding
    puts them back there). Where that still draws a wire through a node, the whole inside is laid out."""
    xs = [inner.nodes[i].pos[0] for i in chosen]
    left, right = min(xs) - COLUMN_WIDTH, max(xs) + COLUMN_WIDTH
    taken: list[float] = []
    for port_type, x in (("block_input", left), ("block_output", right)):
        taken.clear()
        for node in sorted((n for n in inner.nodes.values() if n.type == port_type), key=lambda n: n.id):
            y = node.pos[1]
            while any(abs(y - other) < NODE_SIZE[1] for other in taken):
                y += GRID
            taken.append(y)
            node.pos = (x, y)
    if tangled(inner):
        auto_layout(inner)


def _union_table(graph: Graph, other: Graph) -> Graph:
    union = Graph()
    union.blocks = {**graph.blocks, **other.blocks}
    return union


def expand_in(graph: Graph, scope: str | None, node_ids: Iterable[str]) -> list[str]:
    """Expand block nodes of the scope's graph (names resolve in the file's table). Returns the ids
    of the nodes added."""
    target = scoped(graph, scope)
    added: list[str] = []
    for node_id in node_ids:
        if scope is None:
            added.extend(expand_block(target, node_id))
            continue
        node = target.nodes.get(node_id)
        name = node.params.get("block") if node is not None else None
        if not isinstance(name, str) or name not in graph.blocks:
            raise EditError(f"{node_id}: its block {name!r} is not available")
        target.blocks[name] = graph.blocks[name]  # lent for the expansion
        try:
            added.extend(expand_block(target, node_id))
        finally:
            target.blocks.pop(name, None)
        still_used = any(block_reference(n) == name
                         for g in [graph, *(e.graph for e in graph.blocks.values() if e.graph is not None)]
                         for n in g.nodes.values())
        if not still_used and graph.blocks[name].path is None:
            del graph.blocks[name]
    return added


def _input_node(inner: Graph, port: str) -> str:
    return next(n.id for n in inner.nodes.values() if n.type == "block_input" and n.params.get("name") == port)


def _port_name(base: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    base = base if base.isidentifier() else "port"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def _free_name(graph: Graph, base: str) -> str:
    n = 1
    while f"{base}_{n}" in graph.blocks:
        n += 1
    return f"{base}_{n}"


def expand_block(graph: Graph, node_id: str) -> list[str]:
    """Replace a block node by the nodes of its block (inner ids kept where free, else prefixed with
    the block node's id), rewiring its ports. An inline block no other node uses leaves the block
    table. Returns the ids of the nodes added."""
    node = graph.nodes.get(node_id)
    if node is None or node.type != BLOCK:
        raise EditError(f"{node_id} is not a block node")
    entry = graph.blocks.get(node.params.get("block"))
    if entry is None or entry.graph is None:
        raise EditError(f"{node_id}: its block {node.params.get('block')!r} is not available")
    inner = entry.graph
    renamed: dict[str, str] = {}
    taken = set(graph.nodes) - {node_id}
    for inner_id, inner_node in sorted(inner.nodes.items()):
        if inner_node.type in ("block_input", "block_output"):
            continue
        new_id = inner_id if inner_id not in taken else _unique(f"{node_id}_{inner_id}", taken)
        taken.add(new_id)
        renamed[inner_id] = new_id
    inputs = {n.params["name"]: n.id for n in inner.nodes.values() if n.type == "block_input"}
    outputs = {n.params["name"]: n.id for n in inner.nodes.values() if n.type == "block_output"}
    into = {e.dst.port: e.src for e in graph.edges if e.dst.node == node_id}
    out_of = [e for e in graph.edges if e.src.node == node_id]
    graph.edges = [e for e in graph.edges if node_id not in (e.src.node, e.dst.node)]
    del graph.nodes[node_id]
    for inner_id, new_id in renamed.items():
        copy_node = copy.deepcopy(inner.nodes[inner_id])
        copy_node.id = new_id
        graph.nodes[new_id] = copy_node
    source_of_output = {}
    for e in inner.edges:
        if inner.nodes[e.dst.node].type == "block_output":
            source_of_output[inner.nodes[e.dst.node].params["name"]] = e.src
    for e in inner.edges:
        src_node, dst_node = inner.nodes[e.src.node], inner.nodes[e.dst.node]
        if dst_node.type == "block_output":
            continue
        dst = Endpoint(renamed[e.dst.node], e.dst.port)
        if src_node.type == "block_input":
            outer = into.get(src_node.params["name"])
            if outer is not None:
                graph.connect(outer, dst)
        else:
            graph.connect(Endpoint(renamed[e.src.node], e.src.port), dst)
    for e in out_of:
        src = source_of_output.get(e.src.port)
        if src is None:
            continue
        src_node = inner.nodes[src.node]
        if src_node.type == "block_input":  # a port passed straight through
            outer = into.get(src_node.params["name"])
            if outer is not None:
                graph.connect(outer, e.dst)
        else:
            graph.connect(Endpoint(renamed[src.node], src.port), e.dst)
    name = node.params.get("block")
    still_used = any(block_reference(n) == name for n in graph.nodes.values())
    if entry.path is None and not still_used:
        del graph.blocks[name]
    del inputs, outputs
    return list(renamed.values())


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def graph_state(graph: Graph) -> dict[str, Any]:
    """The saved form of a document (for comparisons in tests and undo checks)."""
    from studio.core.graph_file import graph_to_json

    return graph_to_json(graph)


# ---- the model's bar window ------------------------------------------------------------------------

def input_window_problem(days: Any, bars_per_day: Any, features: Any) -> str | None:
    """Why a bar window of ``days`` x ``bars_per_day`` bars of ``features`` cannot be a graph's input
    spec, or None (the limits a graph file is read with)."""
    for name, value in (("days", days), ("bars_per_day", bars_per_day)):
        limit = INPUT_LIMITS[name]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            return f"{name} must be a whole number from 1 to {limit:,}, not {value!r}"
    if not isinstance(features, list) or not features:
        return "the window needs at least one feature"
    for name in features:
        if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
            return f"a feature is a name of letters, digits and _, not {name!r}"
    repeated = sorted({f for f in features if features.count(f) > 1})
    if repeated:
        return f"feature {repeated[0]!r} is listed twice"
    return None


def set_input_window(graph: Graph, *, days: int | None = None, bars_per_day: int | None = None,
                     features: list[str] | None = None) -> None:
    """Change the model's bar window (the fields given); an EditError says why it cannot be."""
    if graph.kind != MODEL:
        raise EditError("a block has no bar window: its inputs come from its block_input nodes")
    spec = graph.input or InputSpec(["close", "volume", "turnover"], 10, 24)
    new_days = spec.days if days is None else days
    new_bars = spec.bars_per_day if bars_per_day is None else bars_per_day
    new_features = list(spec.features if features is None else features)
    reason = input_window_problem(new_days, new_bars, new_features)
    if reason is not None:
        raise EditError(reason)
    graph.input = InputSpec(new_features, new_days, new_bars)
