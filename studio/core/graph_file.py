"""Reading and writing graph files (format ``model-studio.graph``, version 1; docs/graph-format.md).

Writing is deterministic: the top-level fields in a fixed order, every nested object with sorted keys,
edges sorted, 2-space indent (short lists and objects of plain values on one line), a trailing
newline. Reading a file this module wrote and writing it again gives the same bytes.

A file that cannot be a graph at all (missing, not JSON, wrong format tag, a version from the future)
raises :class:`GraphFileError` with a one-line message naming the file. Smaller faults inside a graph
file (a node without a type, an edge that is not ``node.port``) are collected in
``Graph.load_problems`` so the validator can list them with everything else at once.

Nothing in a file is ever executed: values are plain JSON, and block references are other JSON files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from studio import __version__
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
    Problem,
)
from studio.core.files import FileReadError, atomic_write, read_regular_file
from studio.core.migrations import CURRENT_VERSION, FORMAT_TAG, migrate
from studio.core.params import show
from studio.core.text import printable

TOP_LEVEL_ORDER = ("format", "version", "studio_version", "kind", "name", "description", "input",
                   "nodes", "edges", "blocks")
BLOCK_ORDER = ("kind", "name", "description", "nodes", "edges")
NODE_FIELDS = ("type", "version", "params", "pos")
MAX_FILE_BYTES = 50_000_000
MAX_BLOCK_DEPTH = 16


class GraphFileError(Exception):
    """The input is not a readable graph file. The message is one line and names the file."""


# ---- reading --------------------------------------------------------------------------------------

def load_graph(path: str | os.PathLike[str], *, _open_blocks: tuple[Path, ...] = (),
               _root: Path | None = None) -> Graph:
    """Read a graph file; referenced block files are read too (relative to this file, and only from
    inside its block root: see :func:`block_root`)."""
    path = Path(path)
    try:
        raw = read_regular_file(path, MAX_FILE_BYTES, "graph file")
    except FileReadError as exc:
        raise GraphFileError(str(exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GraphFileError(f"{printable(path)}: not a text file (byte {exc.start} is not UTF-8)") from None
    graph = loads_graph(text, source=printable(path), base_dir=path.parent,
                        _open_blocks=(*_open_blocks, Path(os.path.realpath(path))), _root=_root)
    graph.path = path
    return graph


def block_root(base_dir: Path) -> Path:
    """Where the block files of a graph in ``base_dir`` may be: that folder and the one above it (the
    gallery's ``cnn1d/model.json`` uses ``../blocks/base.json``), symlinks followed. A block path that
    leads anywhere else (``../../..``, a symlink out) is refused: a graph file names JSON files near
    it, never the user's other files."""
    real = Path(os.path.realpath(base_dir))
    return real.parent if real.parent != real else real


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _duplicate_place(text: str) -> tuple[int, int] | None:
    """Where the first object holding a key twice starts (line, column). Found by the pure-Python
    decoder, which tells where each object starts; it runs only after a duplicate was found."""
    from json import decoder, scanner

    found: list[int] = []

    def parse_object(s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo=None, _w=None):
        start = s_and_end[1] - 1  # the "{"
        pairs, end = decoder.JSONObject(s_and_end, strict, scan_once, None, lambda p: p, memo)
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            found.append(start)
        return dict(pairs), end

    dec = json.JSONDecoder()
    dec.parse_object = parse_object  # type: ignore[attr-defined]
    dec.scan_once = scanner.py_make_scanner(dec)  # type: ignore[attr-defined]
    try:
        dec.decode(text)
    except (ValueError, RecursionError):
        return None
    if not found:
        return None
    pos = found[0]  # the object the fast decoder stopped at: both finish objects in the same order
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


def parse_json(text: str, source: str) -> Any:
    """JSON as a graph file may hold it: no NaN or Infinity, and no key twice in one object (Python's
    json would silently keep the last)."""
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_refuse_duplicates)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise GraphFileError(f"{source}: not JSON ({where}: {exc.msg})") from None
    except _DuplicateKey as exc:
        place = _duplicate_place(text)
        where = f" (the object at line {place[0]}, column {place[1]})" if place else ""
        raise GraphFileError(f"{source}: the key {show(exc.key)} appears twice in one object{where}; "
                             "each key may appear once") from None
    except (ValueError, RecursionError) as exc:
        raise GraphFileError(f"{source}: not JSON ({printable(str(exc).splitlines()[0][:100])})") from None


def loads_graph(text: str, *, source: str = "<graph>", base_dir: Path | None = None,
                _open_blocks: tuple[Path, ...] = (), _root: Path | None = None,
                block_files: Mapping[str, Graph] | None = None) -> Graph:
    """Parse graph-file text; ``source`` names it in messages, ``base_dir`` anchors block paths (which
    must stay inside ``block_root(base_dir)`` of the first file read). ``block_files`` maps block paths
    to graphs already read (the editor's undo restores a state without reading block files again)."""
    source = printable(source)
    if _root is None and base_dir is not None:
        _root = block_root(base_dir)
    data = parse_json(text, source)
    if not isinstance(data, dict):
        raise GraphFileError(f"{source}: not a graph file (the top level is not a JSON object)")
    tag = data.get("format")
    if tag != FORMAT_TAG:
        if tag is None:
            raise GraphFileError(f"{source}: not a graph file (no \"format\": \"{FORMAT_TAG}\" field)")
        raise GraphFileError(f"{source}: not a graph file (format {show(tag)}, expected \"{FORMAT_TAG}\")")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise GraphFileError(f"{source}: \"version\" must be an integer, gets {show(version)}")
    if version > CURRENT_VERSION:
        raise GraphFileError(f"{source}: written by a newer Model Studio (format version {version}; "
                             f"this one reads versions up to {CURRENT_VERSION})")
    if version < 0:
        raise GraphFileError(f"{source}: \"version\" {version} is not a format version")
    try:
        data = migrate(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GraphFileError(f"{source}: cannot upgrade this version-{version} file ({exc})") from None
    return _read_document(data, source, base_dir, _open_blocks, top=True, root=_root, block_files=block_files)


def _read_document(data: dict, source: str, base_dir: Path | None, open_blocks: tuple[Path, ...],
                   *, top: bool, where: str = "", root: Path | None = None,
                   block_files: Mapping[str, Graph] | None = None) -> Graph:
    """Read a model or block document (already migrated). Faults go to ``graph.load_problems``."""
    graph = Graph()
    problems = graph.load_problems
    prefix = f"{where} > " if where else ""

    def problem(place: str, message: str, node: str | None = None) -> None:
        problems.append(Problem(prefix + place, message, node=None if prefix else node))

    allowed = set(TOP_LEVEL_ORDER) if top else set(BLOCK_ORDER)
    for key in sorted(k for k in data if k not in allowed):
        problem("graph", f"unknown field {show(key)} (dropped)")

    kind = data.get("kind", MODEL if top else BLOCK)
    if kind not in (MODEL, BLOCK):
        problem("graph.kind", f"expects \"model\" or \"block\", gets {show(kind)}")
        kind = MODEL if top else BLOCK
    if not top and kind != BLOCK:
        problem("graph.kind", "an inline block must have kind \"block\"")
        kind = BLOCK
    graph.kind = kind

    for text_field in ("name", "description"):
        value = data.get(text_field, "")
        if not isinstance(value, str):
            problem(f"graph.{text_field}", f"expects a string, gets {show(value)}")
            value = ""
        setattr(graph, text_field, value)
    studio_version = data.get("studio_version", __version__) if top else __version__
    graph.studio_version = studio_version if isinstance(studio_version, str) else __version__

    if kind == MODEL:
        graph.input = _read_input(data.get("input"), problem)
    elif "input" in data and data["input"] is not None:
        problem("graph.input", "a block takes its inputs from block_input nodes, not an input spec")

    nodes = data.get("nodes", {})
    if not isinstance(nodes, dict):
        problem("graph.nodes", f"expects an object of nodes keyed by id, gets {show(nodes)}")
        nodes = {}
    for node_id in sorted(nodes):
        node = _read_node(node_id, nodes[node_id], problem)
        if node is not None:
            graph.nodes[node_id] = node
        else:
            graph.unreadable_nodes.add(node_id)

    edges = data.get("edges", [])
    if not isinstance(edges, list):
        problem("graph.edges", f"expects a list of edges, gets {show(edges)}")
        edges = []
    seen: set[Edge] = set()
    for i, item in enumerate(edges):
        edge = _read_edge(i, item, problem)
        if edge is None:
            continue
        if edge in seen:
            problem(f"edge {edge}", "the same wire appears twice (kept once)", node=edge.dst.node)
            continue
        seen.add(edge)
        graph.edges.append(edge)

    blocks = data.get("blocks", {}) if top else {}
    if not isinstance(blocks, dict):
        problem("graph.blocks", f"expects an object of blocks keyed by name, gets {show(blocks)}")
        blocks = {}
    for name in sorted(blocks):
        entry = _read_block_entry(name, blocks[name], source, base_dir, open_blocks, problem, root, block_files)
        if entry is not None:
            graph.blocks[name] = entry
    return graph


def _read_input(value: Any, problem) -> InputSpec | None:
    if value is None:
        problem("graph.input", "a model needs an input spec: {\"features\": [...], \"days\": D, "
                "\"bars_per_day\": B}")
        return None
    if not isinstance(value, dict):
        problem("graph.input", f"expects an object, gets {show(value)}")
        return None
    ok = True
    for key in sorted(set(value) - {"features", "days", "bars_per_day"}):
        problem("graph.input", f"unknown field {show(key)} (dropped)")
    features = value.get("features")
    if (not isinstance(features, list) or not features
            or not all(isinstance(f, str) and f for f in features)):
        problem("graph.input.features", f"expects a non-empty list of feature names, gets {show(features)}")
        ok = False
    elif len(set(features)) != len(features):
        problem("graph.input.features", "feature names must be unique")
        ok = False
    for key, limit in INPUT_LIMITS.items():
        n = value.get(key)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= limit:
            problem(f"graph.input.{key}", f"expects an integer in [1, {limit}], gets {show(n)}")
            ok = False
    if not ok:
        return None
    return InputSpec(list(features), value["days"], value["bars_per_day"])


def _read_node(node_id: str, value: Any, problem) -> Node | None:
    if not isinstance(value, dict):
        problem(node_id, f"a node must be an object with {', '.join(NODE_FIELDS)}, gets {show(value)}",
                node_id)
        return None
    for key in sorted(set(value) - set(NODE_FIELDS)):
        problem(node_id, f"unknown field {show(key)} (dropped)", node_id)
    type_id = value.get("type")
    if not isinstance(type_id, str) or not type_id:
        problem(node_id, f"\"type\" must be a node type id, gets {show(type_id)}", node_id)
        return None
    version = value.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problem(node_id, f"\"version\" must be an integer >= 1, gets {show(version)}", node_id)
        return None
    params = value.get("params", {})
    if not isinstance(params, dict):
        problem(node_id, f"\"params\" must be an object, gets {show(params)}", node_id)
        return None
    pos = value.get("pos", [0, 0])
    if (not isinstance(pos, list) or len(pos) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                       for v in pos)):
        problem(node_id, f"\"pos\" must be [x, y], gets {show(pos)} (placed at 0, 0)", node_id)
        pos = [0, 0]
    return Node(node_id, type_id, version, dict(params), (float(pos[0]), float(pos[1])))


def _read_edge(index: int, value: Any, problem) -> Edge | None:
    if not isinstance(value, dict) or set(value) != {"from", "to"}:
        shape = '{"from": "node.port", "to": "node.port"}'
        problem(f"graph.edges[{index}]", f"an edge must be {shape}, gets {show(value)}")
        return None
    try:
        return Edge(Endpoint.parse(value["from"]), Endpoint.parse(value["to"]))
    except ValueError as exc:
        problem(f"graph.edges[{index}]", str(exc))
        return None


def _read_block_entry(name: str, value: Any, source: str, base_dir: Path | None,
                      open_blocks: tuple[Path, ...], problem, root: Path | None,
                      block_files: Mapping[str, Graph] | None = None) -> BlockEntry | None:
    where = f"blocks.{printable(name)}"
    if not isinstance(name, str) or not name.isidentifier():
        problem(where, "a block name must be a Python identifier")
        return None
    if not isinstance(value, dict):
        problem(where, f"expects {{\"path\": \"file.json\"}} or an inline block, gets {show(value)}")
        return None
    if "path" in value:
        ref = value["path"]
        if set(value) != {"path"} or not isinstance(ref, str) or not ref.endswith(".json"):
            problem(where, f"a block reference is {{\"path\": \"relative/file.json\"}}, gets {show(value)}")
            return None
        if not ref.isprintable():
            problem(where, f"block path {show(ref)} holds control characters")
            return None
        if Path(ref).is_absolute() or "\\" in ref:
            problem(where, f"block path {ref!r} must be relative to the graph file, with / separators")
            return None
        if block_files is not None and ref in block_files:
            return BlockEntry(name, block_files[ref], ref)
        if base_dir is None:
            problem(where, f"cannot resolve {ref!r}: this graph was not read from a file")
            return BlockEntry(name, None, ref)
        target = Path(os.path.realpath(base_dir / ref))
        if root is not None and not target.is_relative_to(root):
            problem(where, f"block path {ref!r} leads out of {root} (a block file must be in the graph's "
                    "folder or the one above it; copy the block there)")
            return BlockEntry(name, None, ref)
        if target in open_blocks or len(open_blocks) > MAX_BLOCK_DEPTH:
            problem(where, f"{ref} refers back to a file that includes it (a cycle of block files)")
            return BlockEntry(name, None, ref)
        try:
            block = load_graph(base_dir / ref, _open_blocks=open_blocks, _root=root)
        except GraphFileError as exc:
            problem(where, f"cannot read block file: {exc}")
            return BlockEntry(name, None, ref)
        if block.kind != BLOCK:
            problem(where, f"{ref} is a {block.kind}, not a block")
            return BlockEntry(name, None, ref)
        return BlockEntry(name, block, ref)
    block = _read_document(value, source, base_dir, open_blocks, top=False, where=f"block {name}", root=root,
                           block_files=block_files)
    if block.name == "":
        block.name = name
    # faults inside an inline block are listed with the file's own, already prefixed "block NAME > "
    for p in block.load_problems:
        problem(p.where, p.message)
    block.load_problems = []
    return BlockEntry(name, block)


# ---- writing --------------------------------------------------------------------------------------

def _sorted_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted_json(v) for v in value]
    return value


def _number(x: float) -> int | float:
    """Positions are floats in memory; whole numbers are written without ".0" for readable diffs."""
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else x


def _document_json(graph: Graph, *, top: bool) -> dict:
    doc: dict[str, Any] = {}
    if top:
        doc["format"] = FORMAT_TAG
        doc["version"] = CURRENT_VERSION
        doc["studio_version"] = graph.studio_version
    doc["kind"] = graph.kind
    doc["name"] = graph.name
    doc["description"] = graph.description
    if top and graph.kind == MODEL and graph.input is not None:
        doc["input"] = _sorted_json({"features": list(graph.input.features), "days": graph.input.days,
                                     "bars_per_day": graph.input.bars_per_day})
    doc["nodes"] = {
        node_id: {
            "params": _sorted_json(node.params),
            "pos": [_number(node.pos[0]), _number(node.pos[1])],
            "type": node.type,
            "version": node.version,
        }
        for node_id, node in sorted(graph.nodes.items())
    }
    doc["edges"] = [{"from": str(e.src), "to": str(e.dst)} for e in sorted(graph.edges)]
    if top:
        blocks: dict[str, Any] = {}
        for name, entry in sorted(graph.blocks.items()):
            if entry.path is not None:
                blocks[name] = {"path": entry.path}
            elif entry.graph is not None:
                blocks[name] = _document_json(entry.graph, top=False)
        doc["blocks"] = blocks
    return doc


def graph_to_json(graph: Graph) -> dict:
    """The JSON object of a graph file, in the order it is written."""
    return _document_json(graph, top=True)


INLINE_WIDTH = 100


def _format(value: Any, indent: int, in_list: bool = False) -> str:
    """JSON with 2-space indent, where a list of plain values, or an object of plain values inside a
    list (an edge), stays on one line when it fits: moving a node or a wire changes one line of a diff,
    and each parameter keeps a line of its own."""
    if isinstance(value, dict | list) and value:
        members = value.values() if isinstance(value, dict) else value
        flat = not any(isinstance(v, dict | list) and v for v in members)
        if flat and (isinstance(value, list) or in_list):
            one_line = json.dumps(value, ensure_ascii=False, allow_nan=False)
            if indent + len(one_line) <= INLINE_WIDTH:
                return one_line
        pad, inner = " " * indent, " " * (indent + 2)
        if isinstance(value, dict):
            items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_format(v, indent + 2)}"
                     for k, v in value.items()]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        items = [f"{inner}{_format(v, indent + 2, in_list=True)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def dumps_graph(graph: Graph) -> str:
    return _format(graph_to_json(graph), 0) + "\n"


def save_graph(graph: Graph, path: str | os.PathLike[str], *, stamp_version: bool = True) -> None:
    """Write atomically (studio.core.files.atomic_write: a temporary file beside it, flushed, renamed
    over ``path``; a symlink keeps pointing at the file, an existing file keeps its mode).

    ``stamp_version`` records this studio's version as the writer. Referenced block files are not
    written (they are documents of their own).
    """
    path = Path(path)
    if stamp_version:
        graph.studio_version = __version__
    atomic_write(path, dumps_graph(graph))
    graph.path = path
