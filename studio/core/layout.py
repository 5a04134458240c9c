"""Automatic layout of a graph: a layered (Sugiyama-style) drawing, left to right.

1. Layers: each node's layer is its longest path from a source (wires that close a cycle, in an
   invalid graph, are ignored).
2. A wire that spans several layers gets a dummy point in each layer between, so it claims a lane
   of its own: a skip connection runs beside the chain it skips, parallel branches run in parallel
   rows, instead of everything in one row with wires through the nodes.
3. Order within each layer: barycentre sweeps, left to right and back, a few times (fewer crossings);
   real nodes before dummy lanes on ties.
4. Rows: each node where its inputs are (the mean row of its predecessors), pushed apart to keep the
   order and one row of space, then averaged with the same placement from the other side, so a fan
   is centred on its source and a chain stays straight.

Deterministic: the same graph always gets the same positions. Used by the editor's auto-layout (L),
to place the nodes of generated graphs and of a freshly grouped block, and when a file opens whose
stored positions are tangled (``tangled``: nodes on top of each other, or a wire drawn through a node
it does not join; ``untangle`` lays out the file and its inline blocks that are). ``free_spot`` finds
room for a new node.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass

from studio.core.document import Graph

#: a column is a node (190 wide) and a gap that holds a wire's shape label ("N×240×16") clear of the ports
COLUMN_WIDTH = 340.0
ROW_HEIGHT = 150.0
#: the room a node takes on the canvas (the editor draws nodes 190 wide, 60-140 high)
NODE_SIZE = (200.0, 120.0)
#: the part of a node that nothing else may cover when a file opens: its width and the smallest
#: height the editor draws (a header and one port row), the first port row's centre below its top
NODE_BOX = (190.0, 60.0)
PORT_Y = 48.0
SWEEPS = 4
GRID = 20.0


def _acyclic_edges(nodes: list[str], edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``edges`` without the ones that close a cycle (depth-first, nodes and wires in a fixed order)."""
    successors: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        successors[a].append(b)
    state: dict[str, int] = {}  # 1: on the path, 2: done
    back: set[tuple[str, str]] = set()
    for root in nodes:
        if root in state:
            continue
        stack = [(root, iter(sorted(successors[root])))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1 or nxt == node:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(sorted(successors[nxt]))))
    return [e for e in edges if e not in back and e[0] != e[1]]


def _longest_path_layers(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """1. Each node's layer: its longest path from a source (Kahn's order, smallest id first)."""
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    indegree = {n: len(preds[n]) for n in nodes}
    ready = sorted(n for n in nodes if indegree[n] == 0)
    layer: dict[str, int] = {}
    while ready:
        node = ready.pop(0)
        layer[node] = 1 + max((layer[p] for p in preds[node]), default=-1)
        for nxt in succs[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
                ready.sort()
    return layer


@dataclass
class _Lanes:
    """The nodes and the dummy points of long wires, layer by layer, with their wires to the layer before
    (``up``) and after (``down``)."""

    layer: dict[str, int]
    layers: dict[int, list[str]]
    up: dict[str, list[str]]
    down: dict[str, list[str]]
    dummy: set[str]

    @property
    def depth(self) -> int:
        return max(self.layers) + 1 if self.layers else 0


def _lanes(edges: list[tuple[str, str]], node_layer: dict[str, int]) -> _Lanes:
    """2. A dummy point on a long wire in each layer it crosses, so that the wire claims a lane."""
    layer = dict(node_layer)
    up: dict[str, list[str]] = defaultdict(list)  # point -> points of the layer before
    down: dict[str, list[str]] = defaultdict(list)
    dummy: set[str] = set()
    for a, b in edges:
        previous = a
        for k in range(layer[a] + 1, layer[b]):
            point = f"\0{a}\0{b}\0{k}"
            dummy.add(point)
            layer[point] = k
            up[point].append(previous)
            down[previous].append(point)
            previous = point
        up[b].append(previous)
        down[previous].append(b)
    layers: dict[int, list[str]] = defaultdict(list)
    for point in sorted(layer):
        layers[layer[point]].append(point)
    return _Lanes(layer, layers, up, down, dummy)


def _order_layers(lanes: _Lanes) -> None:
    """3. The order within each layer (in place): barycentre sweeps, real nodes before lanes on ties."""
    layers, dummy, depth = lanes.layers, lanes.dummy, lanes.depth
    rank = {p: i for k in layers for i, p in enumerate(layers[k])}

    def sort_layer(k: int, neighbours: dict[str, list[str]]) -> None:
        def key(p: str) -> tuple:
            near = [rank[q] for q in neighbours[p]]
            centre = sum(near) / len(near) if near else rank[p]
            return (centre, p in dummy, rank[p])

        layers[k].sort(key=key)
        for i, p in enumerate(layers[k]):
            rank[p] = i

    for _ in range(SWEEPS):
        for k in range(1, depth):
            sort_layer(k, lanes.up)
        for k in range(depth - 2, -1, -1):
            sort_layer(k, lanes.down)
    for k in range(1, depth):
        sort_layer(k, lanes.up)


def _place_rows(layers: dict[int, list[str]], order_of_layers: list[int],
                neighbours: dict[str, list[str]]) -> dict[str, float]:
    """Rows from one side: each point where its placed neighbours are, kept in order one row apart."""
    y: dict[str, float] = {}
    for k in order_of_layers:
        members = layers[k]
        wanted = []
        for p in members:
            near = [y[q] for q in neighbours[p] if q in y]
            wanted.append(sum(near) / len(near) if near else None)
        known = [w for w in wanted if w is not None]
        base = sum(known) / len(known) if known else 0.0
        # members without placed neighbours sit in order around the others
        filled = [w if w is not None else base for w in wanted]
        forward, backward = list(filled), list(filled)
        for i in range(1, len(members)):
            forward[i] = max(forward[i], forward[i - 1] + 1.0)
        for i in range(len(members) - 2, -1, -1):
            backward[i] = min(backward[i], backward[i + 1] - 1.0)
        for i, p in enumerate(members):
            y[p] = (forward[i] + backward[i]) / 2
        for i in range(1, len(members)):  # the average may crowd: keep one row apart
            if y[members[i]] < y[members[i - 1]] + 1.0:
                y[members[i]] = y[members[i - 1]] + 1.0
    return y


def _rows(lanes: _Lanes) -> dict[str, float]:
    """4. Rows: where the inputs are, kept apart, from both sides, averaged."""
    depth = lanes.depth
    left = _place_rows(lanes.layers, list(range(depth)), lanes.up)
    right = _place_rows(lanes.layers, list(range(depth - 1, -1, -1)), lanes.down)
    rows: dict[str, float] = {}
    for k in range(depth):
        members = lanes.layers[k]
        values = [(left[p] + right[p]) / 2 for p in members]
        for i in range(1, len(values)):
            values[i] = max(values[i], values[i - 1] + 1.0)
        for p, v in zip(members, values, strict=True):
            rows[p] = v
    return rows


def layered_positions(graph: Graph) -> dict[str, tuple[float, float]]:
    """Each node's position in the layered drawing (the module's four steps), on the editor's grid."""
    nodes = sorted(graph.nodes)
    edges = sorted({(e.src.node, e.dst.node) for e in graph.edges
                    if e.src.node in graph.nodes and e.dst.node in graph.nodes})
    edges = _acyclic_edges(nodes, edges)
    lanes = _lanes(edges, _longest_path_layers(nodes, edges))
    _order_layers(lanes)
    rows = _rows(lanes)
    layer = lanes.layer
    # the first node (the model's input, as a rule) at row 0; rows on the editor's 20-unit grid
    first = min(nodes, key=lambda n: (layer[n], rows[n], n)) if nodes else None
    shift = rows[first] if first is not None else 0.0
    return {n: (layer[n] * COLUMN_WIDTH, round((rows[n] - shift) * ROW_HEIGHT / GRID) * GRID) for n in nodes}


def auto_layout(graph: Graph) -> None:
    """Place every node of ``graph`` (in place)."""
    for node_id, pos in layered_positions(graph).items():
        graph.nodes[node_id].pos = pos


def _boxes(graph: Graph) -> dict[str, tuple[float, float, float, float]]:
    width, height = NODE_BOX
    return {n.id: (float(n.pos[0]), float(n.pos[1]), float(n.pos[0]) + width, float(n.pos[1]) + height)
            for n in graph.nodes.values()}


def overlapping_nodes(graph: Graph) -> list[tuple[str, str]]:
    """Pairs of nodes whose drawn bodies overlap at their stored positions."""
    boxes = sorted(_boxes(graph).items(), key=lambda kv: (kv[1][0], kv[0]))
    pairs = []
    for i, (a, (_, ay0, ax1, ay1)) in enumerate(boxes):
        for b, (bx0, by0, _, by1) in boxes[i + 1:]:
            if bx0 >= ax1:  # sorted by left edge: nothing further right can reach this one
                break
            if ay0 < by1 and by0 < ay1:
                pairs.append((a, b) if a < b else (b, a))
    return sorted(pairs)


def wire_points(a: tuple[float, float], b: tuple[float, float], steps: int = 24) -> list[tuple[float, float]]:
    """Points along the curve the editor draws from output point ``a`` to input point ``b`` (a cubic
    that leaves and enters horizontally), its ends left out."""
    dx = max(60.0, abs(b[0] - a[0]) * 0.5)
    c1, c2 = (a[0] + dx, a[1]), (b[0] - dx, b[1])
    points = []
    for i in range(1, steps):
        t = i / steps
        u = 1 - t
        points.append((u ** 3 * a[0] + 3 * u * u * t * c1[0] + 3 * u * t * t * c2[0] + t ** 3 * b[0],
                       u ** 3 * a[1] + 3 * u * u * t * c1[1] + 3 * u * t * t * c2[1] + t ** 3 * b[1]))
    return points


def wires_through_nodes(graph: Graph) -> list[tuple[str, str]]:
    """(wire, node) for each wire drawn through the body of a node it does not join, at the stored
    positions (ports taken at the first row: a wire along a row of nodes is found)."""
    boxes = sorted(_boxes(graph).items(), key=lambda kv: (kv[1][0], kv[0]))
    lefts = [box[0] for _, box in boxes]
    width = NODE_BOX[0]
    found = []
    for edge in graph.edges:
        src, dst = graph.nodes.get(edge.src.node), graph.nodes.get(edge.dst.node)
        if src is None or dst is None or src.id == dst.id:
            continue
        a = (src.pos[0] + width, src.pos[1] + PORT_Y)
        b = (dst.pos[0], dst.pos[1] + PORT_Y)
        points = wire_points(a, b)
        xs, ys = [x for x, _ in points], [y for _, y in points]
        low_x, high_x, low_y, high_y = min(xs), max(xs), min(ys), max(ys)
        # only the nodes whose left edge lies within a node's width of the wire's span (all are as wide)
        for node_id, (x0, y0, x1, y1) in boxes[bisect_left(lefts, low_x - width):bisect_right(lefts, high_x)]:
            if node_id in (src.id, dst.id) or y1 <= low_y or y0 >= high_y:
                continue
            if any(x0 < x < x1 and y0 < y < y1 for x, y in points):
                found.append((str(edge), node_id))
    return sorted(found)


def tangled(graph: Graph) -> bool:
    """True when the stored positions cannot be read: nodes on top of each other, or a wire through a
    node it does not join."""
    return bool(overlapping_nodes(graph) or wires_through_nodes(graph))


def untangle(graph: Graph) -> list[str | None]:
    """Lay out the file's graph and each of its inline blocks whose stored positions are tangled (in
    place). Returns the scopes laid out (None: the file's own graph; a name: an inline block)."""
    done: list[str | None] = []
    if graph.nodes and tangled(graph):
        auto_layout(graph)
        done.append(None)
    for name, entry in sorted(graph.blocks.items()):
        if entry.path is None and entry.graph is not None and entry.graph.nodes and tangled(entry.graph):
            auto_layout(entry.graph)
            done.append(name)
    return done


def free_spot(graph: Graph, at: tuple[float, float], size: tuple[float, float] = NODE_SIZE,
              step: float = 20.0) -> tuple[float, float]:
    """``at``, or the nearest spot below it (then to the right) where a node of ``size`` overlaps no
    node of ``graph``: a new node never lands on another."""
    width, height = size
    boxes = [(n.pos[0], n.pos[1]) for n in graph.nodes.values()]

    def clear(x: float, y: float) -> bool:
        return all(not (x < bx + width and bx < x + width and y < by + height and by < y + height)
                   for bx, by in boxes)

    x, y = at
    for column in range(50):
        cx = x + column * (width + step)
        for row in range(60):
            cy = y + row * step * 2
            if clear(cx, cy):
                return (cx, cy)
    return at
