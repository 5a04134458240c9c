"""What changed between two graphs: nodes added, removed and retyped, parameter changes, wires added and
removed, the input spec and the blocks (each block's inside diffed the same way), in a stable order.

Positions on the canvas are left out: moving a node changes no model. Parameters are compared as the
model sees them: with a registry, a parameter a file leaves out has its type's default, so writing a
default out explicitly is no change. No torch, no Qt: ``studio diff``, ``studio compare`` and the GUI
share it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from studio.core.document import Graph, Node
from studio.core.registry import Registry
from studio.core.text import printable

#: the order of the kinds of change in a diff (then by where the change is)
KINDS = ("graph", "input", "node added", "node removed", "node retyped", "param", "wire added",
         "wire removed", "block added", "block removed", "block")


@dataclass(frozen=True)
class Change:
    """One change. ``where``: the node id, ``node.param`` or wire; ``block``: the block whose inside it
    is in ("" for the graph itself); ``old`` / ``new``: the values (``(none)`` where a side has none)."""

    kind: str
    where: str
    old: Any = None
    new: Any = None
    block: str = ""
    #: the node of the second graph (the first, for one removed) to highlight on the canvas
    node: str | None = None

    def sort_key(self) -> tuple:
        top = KINDS.index("block") if self.block else KINDS.index(self.kind)
        return (top, self.block, KINDS.index(self.kind), self.where)

    def __str__(self) -> str:
        where = printable(self.where)
        prefix = f"block {printable(self.block)} > " if self.block else ""
        if self.kind in ("param", "input", "graph"):
            text = f"{where}: {_value(self.old)} -> {_value(self.new)}"
        elif self.kind == "node retyped":
            text = f"node retyped: {where}: {printable(str(self.old))} -> {printable(str(self.new))}"
        elif self.kind in ("node added", "node removed"):
            text = f"{self.kind}: {where} ({printable(str(self.new if self.kind == 'node added' else self.old))})"
        else:
            text = f"{self.kind}: {where}"
        return prefix + text

    def to_json(self) -> dict:
        return {"kind": self.kind, "where": self.where, "block": self.block,
                "old": None if self.old is _MISSING else self.old,
                "new": None if self.new is _MISSING else self.new, "node": self.node}


def _value(value: Any, limit: int = 72) -> str:
    """A value as JSON writes it; a long one shortened (the JSON output keeps it whole)."""
    if value is _MISSING:
        return "(none)"
    text = printable(json.dumps(value, sort_keys=True, default=str))
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _Missing:
    def __repr__(self) -> str:
        return "(none)"


_MISSING = _Missing()


@dataclass
class GraphDiff:
    changes: list[Change]

    @property
    def equal(self) -> bool:
        return not self.changes

    def lines(self) -> list[str]:
        return [str(c) for c in self.changes]

    def changed_nodes(self) -> set[str]:
        """Nodes of the second graph that are new, retyped or have other parameters (to highlight)."""
        return {c.node for c in self.changes if c.node and c.kind in ("node added", "node retyped", "param")}

    def to_json(self) -> list[dict]:
        return [c.to_json() for c in self.changes]


def _params(node: Node, registry: Registry | None) -> dict[str, Any]:
    node_type = registry.get(node.type) if registry is not None else None
    return {**(node_type.default_params() if node_type is not None else {}), **node.params}


def diff_graphs(a: Graph, b: Graph, registry: Registry | None = None, *, _block: str = "") -> GraphDiff:
    """The changes that turn ``a`` into ``b``, sorted: by kind in KINDS order (a block's inside after the
    graph's own changes, block by block), then by where."""
    changes: list[Change] = []

    def add(kind: str, where: str, old: Any = None, new: Any = None, node: str | None = None) -> None:
        changes.append(Change(kind, where, old, new, _block, None if _block else node))

    for name in ("name", "description", "kind"):
        if getattr(a, name) != getattr(b, name):
            add("graph", f"graph.{name}", getattr(a, name), getattr(b, name))
    if (a.input is None) != (b.input is None):
        add("input", "input", _input(a), _input(b))
    elif a.input is not None and b.input is not None:
        for name in ("features", "days", "bars_per_day"):
            if getattr(a.input, name) != getattr(b.input, name):
                add("input", f"input.{name}", getattr(a.input, name), getattr(b.input, name))

    for node_id in sorted(set(b.nodes) - set(a.nodes)):
        add("node added", node_id, new=b.nodes[node_id].type, node=node_id)
    for node_id in sorted(set(a.nodes) - set(b.nodes)):
        add("node removed", node_id, old=a.nodes[node_id].type)
    for node_id in sorted(set(a.nodes) & set(b.nodes)):
        old, new = a.nodes[node_id], b.nodes[node_id]
        if old.type != new.type:
            add("node retyped", node_id, old.type, new.type, node=node_id)
        elif old.version != new.version:
            add("param", f"{node_id}.(version)", old.version, new.version, node=node_id)
        old_params, new_params = _params(old, registry), _params(new, registry)
        for name in sorted(set(old_params) | set(new_params)):
            before, after = old_params.get(name, _MISSING), new_params.get(name, _MISSING)
            if not same_value(before, after):
                add("param", f"{node_id}.{name}", before, after, node=node_id)

    old_wires, new_wires = {str(e): e for e in a.edges}, {str(e): e for e in b.edges}
    for wire in sorted(set(new_wires) - set(old_wires)):
        add("wire added", wire, node=new_wires[wire].dst.node)
    for wire in sorted(set(old_wires) - set(new_wires)):
        target = old_wires[wire].dst.node
        add("wire removed", wire, node=target if target in b.nodes else None)

    for name in sorted(set(b.blocks) - set(a.blocks)):
        add("block added", name)
    for name in sorted(set(a.blocks) - set(b.blocks)):
        add("block removed", name)
    if not _block:  # blocks are defined at the top of a file only
        for name in sorted(set(a.blocks) & set(b.blocks)):
            old_entry, new_entry = a.blocks[name], b.blocks[name]
            if old_entry.path != new_entry.path:
                changes.append(Change("graph", "(file)", old_entry.path, new_entry.path, name))
            if old_entry.graph is not None and new_entry.graph is not None:
                changes.extend(diff_graphs(old_entry.graph, new_entry.graph, registry, _block=name).changes)
    return GraphDiff(sorted(changes, key=Change.sort_key))


def same_value(x: Any, y: Any) -> bool:
    """One value as a graph file means it: 3 and 3.0 are one number (JSON has one number type); True
    and 1 are not, nor 1 and "1"."""
    if type(x) is not type(y):
        return _same_number(x, y)
    if isinstance(x, list):
        return len(x) == len(y) and all(same_value(i, j) for i, j in zip(x, y, strict=True))
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(same_value(x[k], y[k]) for k in x)
    return x == y


def _same_number(x: Any, y: Any) -> bool:
    """3 and 3.0 are one value in a graph file (JSON has one number type); True and 1 are not."""
    numbers = (int, float)
    return (isinstance(x, numbers) and isinstance(y, numbers) and not isinstance(x, bool)
            and not isinstance(y, bool) and x == y)


def _input(graph: Graph) -> Any:
    if graph.input is None:
        return None
    return {"features": graph.input.features, "days": graph.input.days, "bars_per_day": graph.input.bars_per_day}
