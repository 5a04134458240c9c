"""Automatic layout of a graph: columns by depth, rows ordered to keep wires short.

Used by the editor's "auto-layout" and to place nodes of generated graphs. Deterministic: the same
graph always gets the same positions.
"""

from __future__ import annotations

import networkx as nx

from studio.core.document import Graph

COLUMN_WIDTH = 300.0
ROW_HEIGHT = 150.0


def layered_positions(graph: Graph) -> dict[str, tuple[float, float]]:
    g = nx.DiGraph()
    g.add_nodes_from(sorted(graph.nodes))
    g.add_edges_from((e.src.node, e.dst.node) for e in graph.edges
                     if e.src.node in graph.nodes and e.dst.node in graph.nodes)
    # a cycle (an invalid graph) must not stop the layout: break it by ignoring back edges
    dag = nx.DiGraph()
    dag.add_nodes_from(g.nodes)
    order = {n: i for i, n in enumerate(sorted(g.nodes))}
    for a, b in g.edges:
        dag.add_edge(a, b)
        if not nx.is_directed_acyclic_graph(dag):
            dag.remove_edge(a, b)
    depth: dict[str, int] = {}
    for node in nx.lexicographical_topological_sort(dag, key=lambda n: order[n]):
        preds = list(dag.predecessors(node))
        depth[node] = 1 + max(depth[p] for p in preds) if preds else 0
    columns: dict[int, list[str]] = {}
    for node in sorted(depth, key=lambda n: (depth[n], n)):
        columns.setdefault(depth[node], []).append(node)
    row_of: dict[str, float] = {}
    for col in sorted(columns):
        members = columns[col]

        def barycentre(node: str) -> float:
            preds = [row_of[p] for p in dag.predecessors(node) if p in row_of]
            return sum(preds) / len(preds) if preds else float(order[node])

        members.sort(key=lambda n: (barycentre(n), n))
        for i, node in enumerate(members):
            row_of[node] = i - (len(members) - 1) / 2
    return {n: (depth[n] * COLUMN_WIDTH, row_of[n] * ROW_HEIGHT) for n in graph.nodes}


def auto_layout(graph: Graph) -> None:
    """Place every node of ``graph`` (in place)."""
    for node_id, pos in layered_positions(graph).items():
        graph.nodes[node_id].pos = pos
