"""The graph document: what a graph file holds, as plain Python objects.

A :class:`Graph` is a model (it has an input spec, ``input`` nodes and one ``output`` node) or a
block (a reusable subgraph whose ports are its ``block_input`` / ``block_output`` nodes). Nodes are
keyed by stable ids that are Python identifiers; edges join ``node.port`` to ``node.port``.

Editing operations (add, remove, connect...) live here so that the command line, the GUI and the
tests all edit documents the same way; they keep the document consistent (removing a node removes
its wires) but do not validate: ``studio.core.validation`` does that.
"""

from __future__ import annotations

import copy
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio import __version__
from studio.core.params import show

MODEL = "model"
BLOCK = "block"

# Attributes of torch.nn.Module: a node id becomes a submodule attribute and must not shadow them.
# (Kept here as data so the core needs no torch; tests/test_ids.py checks it against torch.)
RESERVED_IDS = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children",
    "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward",
    "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict",
    "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters",
    "parameters", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "smart_apply", "state_dict",
    "to", "to_empty", "train", "training", "type", "xpu", "zero_grad",
    # the generated forward()'s own first argument
    "self",
    # fx GraphModule attributes
    "add_submodule", "code", "graph", "meta", "recompile", "print_readable", "to_folder", "delete_submodule",
    "delete_all_unused_submodules",
})


def id_problem(node_id: str) -> str | None:
    """Why ``node_id`` cannot be a node id, or None."""
    if not isinstance(node_id, str) or not node_id.isidentifier() or not node_id.isascii():
        return "a node id must be a Python identifier (letters, digits, _; not starting with a digit)"
    if keyword.iskeyword(node_id):
        return "a node id cannot be a Python keyword"
    if node_id.startswith("_"):
        return "a node id cannot start with _"
    if node_id in RESERVED_IDS:
        return "this name is taken by torch.nn.Module or the generated forward()"
    return None


#: the largest days and bars per day an input spec may ask for (graph files and the editor check them)
INPUT_LIMITS = {"days": 1000, "bars_per_day": 10_000}


@dataclass
class InputSpec:
    """The bar window every sample of the model sees: ``days`` x ``bars_per_day`` bars of ``features``."""

    features: list[str]
    days: int
    bars_per_day: int

    @property
    def length(self) -> int:
        return self.days * self.bars_per_day


@dataclass
class Node:
    id: str
    type: str
    version: int
    params: dict[str, Any]
    pos: tuple[float, float] = (0.0, 0.0)


_ENDPOINT = re.compile(r"^([^.\s]+)\.([^.\s]+)$")


@dataclass(frozen=True, order=True)
class Endpoint:
    node: str
    port: str

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        match = _ENDPOINT.match(text) if isinstance(text, str) else None
        if not match:
            raise ValueError(f"expects \"node.port\", gets {show(text)}")
        return cls(match.group(1), match.group(2))

    def __str__(self) -> str:
        return f"{self.node}.{self.port}"


@dataclass(frozen=True, order=True)
class Edge:
    src: Endpoint
    dst: Endpoint

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst}"


@dataclass
class BlockEntry:
    """A block of the graph's block table: defined inline, or read from ``path`` (relative to the file)."""

    name: str
    graph: Graph | None
    path: str | None = None


def block_reference(node: Node) -> str | None:
    """The name of the block a node uses, or None. Nodes refer to blocks of the file's block table by
    their ``block`` param: block instances, and nodes that wrap a block (the per-day node)."""
    name = node.params.get("block")
    return name if isinstance(name, str) else None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph. ``where`` names the node, ``node.port``, ``node.param`` or edge."""

    where: str
    message: str
    severity: str = "error"
    #: the node to mark in the editor, when there is one
    node: str | None = None

    def __str__(self) -> str:
        return one_line(f"{self.where}: {self.message}")


def one_line(text: str) -> str:
    """Escape line breaks (also U+2028 and friends) that names from a file may carry."""
    if len(text.splitlines()) <= 1 and "\n" not in text:
        return text
    return "".join(c if len(("x" + c + "x").splitlines()) == 1 else c.encode("unicode_escape").decode()
                   for c in text)


def article(word: str) -> str:
    """'a conv1d', 'an output'."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


@dataclass
class Graph:
    name: str = ""
    description: str = ""
    kind: str = MODEL
    input: InputSpec | None = None
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    blocks: dict[str, BlockEntry] = field(default_factory=dict)
    studio_version: str = __version__
    #: where the document was read from (not saved)
    path: Path | None = None
    #: parts of the file that could not be read; the validator reports them (not saved)
    load_problems: list[Problem] = field(default_factory=list)
    #: ids of nodes the file has but that could not be read (reported once, in load_problems)
    unreadable_nodes: set[str] = field(default_factory=set)

    # ---- queries -----------------------------------------------------------------------------
    def wires_into(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.dst.node == node_id]

    def wires_from(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.src.node == node_id]

    def source_of(self, dst: Endpoint) -> Endpoint | None:
        for e in self.edges:
            if e.dst == dst:
                return e.src
        return None

    def nodes_of_type(self, type_id: str) -> list[Node]:
        return [n for _, n in sorted(self.nodes.items()) if n.type == type_id]

    def new_id(self, prefix: str) -> str:
        """The first free id ``prefix_1``, ``prefix_2``, ..."""
        base = re.sub(r"\W", "_", prefix).strip("_").lower() or "node"
        if base[0].isdigit():
            base = "n_" + base
        i = 1
        while f"{base}_{i}" in self.nodes:
            i += 1
        return f"{base}_{i}"

    def copy(self) -> Graph:
        """A deep copy (a frozen snapshot for training or export)."""
        return copy.deepcopy(self)

    # ---- edits -------------------------------------------------------------------------------
    def add_node(self, type_id: str, version: int, params: dict[str, Any], *, node_id: str | None = None,
                 pos: tuple[float, float] = (0.0, 0.0)) -> Node:
        node_id = node_id or self.new_id(type_id)
        if node_id in self.nodes:
            raise ValueError(f"node id {node_id!r} is taken")
        node = Node(node_id, type_id, version, dict(params), (float(pos[0]), float(pos[1])))
        self.nodes[node_id] = node
        return node

    def remove_node(self, node_id: str) -> tuple[Node, list[Edge]]:
        """Remove a node and its wires; returns both (an undo needs them)."""
        node = self.nodes.pop(node_id)
        removed = [e for e in self.edges if node_id in (e.src.node, e.dst.node)]
        self.edges = [e for e in self.edges if e not in removed]
        return node, removed

    def connect(self, src: Endpoint | str, dst: Endpoint | str) -> Edge:
        src = src if isinstance(src, Endpoint) else Endpoint.parse(src)
        dst = dst if isinstance(dst, Endpoint) else Endpoint.parse(dst)
        edge = Edge(src, dst)
        if edge not in self.edges:
            self.edges.append(edge)
        return edge

    def disconnect(self, edge: Edge) -> None:
        self.edges.remove(edge)

    def rename_node(self, old: str, new: str) -> None:
        if new in self.nodes:
            raise ValueError(f"node id {new!r} is taken")
        node = self.nodes.pop(old)
        node.id = new
        self.nodes[new] = node

        def fix(ep: Endpoint) -> Endpoint:
            return Endpoint(new, ep.port) if ep.node == old else ep

        self.edges = [Edge(fix(e.src), fix(e.dst)) for e in self.edges]
