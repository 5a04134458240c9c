"""Fuzzing the loader, validator and builder with mutated copies of the graph files in graphs/.

Each example takes one file of graphs/, mutates it at the JSON level (dropped keys, retyped values,
huge numbers, long strings, renamed nodes, extra wires, nodes of another type...) and at the text
level (duplicate keys, truncation, garbage characters or bytes, deep nesting, numbers JSON cannot
hold), writes it into a copy of graphs/ and loads it. Whatever the input:

* loading raises GraphFileError with a one-line message that starts with the file's path, or gives a
  graph;
* validate() never raises;
* a graph without errors builds, and its forward pass on a tiny input (B=1 date, N=2 stocks) gives a
  finite (B, N) tensor (checked for a sample of the small ones, to keep the suite fast).

Nothing else may raise. ``STUDIO_FUZZ_EXAMPLES`` sets the number of examples (default 300).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from studio.core.graph_file import GraphFileError, load_graph, loads_graph
from studio.core.params import BoolParam, ChoiceParam, FloatParam, IntOrChoiceParam, IntOrPairParam, IntParam
from studio.core.validation import Validation, validate
from studio.nodes import default_registry
from studio.torchgraph.builder import BuildError, build
from tests.conftest import GRAPHS

EXAMPLES = int(os.environ.get("STUDIO_FUZZ_EXAMPLES", "300"))
FILES = sorted(p.relative_to(GRAPHS).as_posix() for p in GRAPHS.rglob("*.json"))
REGISTRY = default_registry()
TYPE_IDS = [*REGISTRY.type_ids()]

#: build and run only models this small (the validator's own limits allow far larger ones)
BUILD_MAX_PARAMS = 2_000_000
BUILD_MAX_NUMBERS = 2_000_000
#: how often a valid small model is built: 1 in BUILD_EVERY (drawn, so hypothesis can shrink it)
BUILD_EVERY = 2

# ---- values --------------------------------------------------------------------------------------

NUMBERS = [1e308, -1e308, 10**30, -(10**30), 2**63, 2**31, -1, 0, 1, 2, 3, 4, 0.0, -0.0, 0.5, 1.0, 1.5,
           5e-324, 240, 241, 4096, 4097, 65536, 65537, 1000, 10_000, 10_001]
WORDS = [
    # ids that are not ids, or are taken
    "", " ", "class", "None", "True", "forward", "self", "training", "type", "_x", "__init__", "2x", "a-b",
    "a b", "a.b", "a.b.c", "ü", "x\ny", "x\u2028y", "x\ry", "x\x85y", "\x00",
    # ids that are fine for the validator but may trouble torch.fx or Python
    "x", "mask", "inf", "nan", "torch", "getattr", "print", "output", "placeholder", "Tensor", "operator",
    "math", "bool", "int", "list", "fx", "l", "bars", "score", "y", "x1", "x2", "last",
    # words the file format and the node types know
    "same", "valid", "zeros", "reflect", "replicate", "circular", "seq", "vec", "map", "last", "mean",
    "max", "model", "block", "model-studio.graph", *TYPE_IDS, "conv_relu", "downsample",
    # endpoints and block paths
    "bars.bars", "conv_1.y", "relu_1.x", "head.y", "score.x", ".", "a.", ".b",
    "blocks/conv_relu.json", "default.json", "../default.json", "residual_blocks.json", "/etc/hostname",
    "blocks\\conv_relu.json", "nope.json", "blocks",
]
PORTS = ["x", "y", "bars", "last", "x1", "x2", "x3", "q"]
#: replaced by deeply nested arrays in the text (json.dumps could not write them)
DEEP_MARK = "\u0001deep\u0001"

scalars = st.one_of(
    st.none(), st.booleans(), st.sampled_from(NUMBERS), st.integers(-5, 5000),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(WORDS), st.text(max_size=12),
    st.integers(1_000, 200_000).map(lambda n: "x" * n),  # very long strings
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)


# ---- JSON-level mutations ------------------------------------------------------------------------

def _places(doc: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every value below the root."""
    found = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        found.append((*path, key))
        found.extend(_places(value, (*path, key)))
    return found


def _get(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _nodes(doc: Any) -> dict | None:
    """The nodes object of the document or of one of its inline blocks."""
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    return nodes if isinstance(nodes, dict) and nodes else None


def _graphs_in(doc: Any) -> list[dict]:
    """The document and its inline blocks (each has its own nodes and edges)."""
    found = [doc] if isinstance(doc, dict) else []
    blocks = doc.get("blocks") if isinstance(doc, dict) else None
    if isinstance(blocks, dict):
        found += [b for b in blocks.values() if isinstance(b, dict) and "nodes" in b]
    return found


def _pick_graph(data, doc) -> dict:
    graphs = _graphs_in(doc)
    return graphs[data.draw(st.integers(0, len(graphs) - 1), label="graph (0: the file, then inline blocks)")]


def _drop(data, doc) -> None:
    places = _places(doc)
    if places:
        path = data.draw(st.sampled_from(places))
        parent = _get(doc, path[:-1])
        del parent[path[-1]]


def _retype(data, doc) -> None:
    places = _places(doc)
    if places:
        path = data.draw(st.sampled_from(places))
        _get(doc, path[:-1])[path[-1]] = data.draw(values)


def _deep(data, doc) -> None:
    places = _places(doc)
    if places:
        path = data.draw(st.sampled_from(places))
        _get(doc, path[:-1])[path[-1]] = DEEP_MARK


def _plausible(param) -> st.SearchStrategy:
    """Values a parameter may well accept: mutations that keep a graph valid reach the builder."""
    if isinstance(param, BoolParam):
        return st.booleans()
    if isinstance(param, IntParam | IntOrChoiceParam | IntOrPairParam):
        low = param.min if param.min is not None else 0
        ints = st.integers(low, min(param.max or 8, 8)) | st.integers(low, min(param.max or 300, 300))
        if isinstance(param, IntOrPairParam):
            ints = ints | st.lists(st.integers(low, min(param.max or 8, 8)), min_size=2, max_size=2)
        if isinstance(param, IntOrChoiceParam | IntOrPairParam) and param.choices:
            ints = ints | st.sampled_from(param.choices)
        return st.none() | ints if param.optional else ints
    if isinstance(param, ChoiceParam):
        return st.sampled_from(param.choices)
    if isinstance(param, FloatParam):
        return st.floats(0.0, 1.0)
    return st.sampled_from(WORDS)


def _set_param(data, doc, wild: bool = True) -> None:
    """A parameter of a node set to another value, often (``wild`` False: always) one it accepts."""
    graph = _pick_graph(data, doc)
    nodes = _nodes(graph)
    if not nodes:
        return
    node = nodes[data.draw(st.sampled_from(sorted(nodes)))]
    if not isinstance(node, dict) or not isinstance(node.get("params"), dict):
        return
    node_type = REGISTRY.get(node.get("type")) if isinstance(node.get("type"), str) else None
    declared = {p.name: p for p in node_type.params} if node_type else {}
    names = sorted({*node["params"], *declared})
    if names:
        name = data.draw(st.sampled_from(names))
        anything = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(WORDS), st.none())
        plausible = _plausible(declared[name]) if name in declared else anything
        node["params"][name] = data.draw(st.one_of(plausible, plausible, plausible, anything) if wild
                                         else plausible)


def _set_plausible_param(data, doc) -> None:
    _set_param(data, doc, wild=False)


def _rename(data, doc) -> None:
    """A node renamed (its wires follow), mostly to ids that are not ids."""
    graph = _pick_graph(data, doc)
    nodes = _nodes(graph)
    if not nodes:
        return
    old = data.draw(st.sampled_from(sorted(nodes)))
    new = data.draw(st.sampled_from(WORDS) | st.text(max_size=8))
    nodes[new] = nodes.pop(old)
    edges = graph.get("edges")
    if isinstance(edges, list):
        for edge in edges:
            if isinstance(edge, dict):
                for side in ("from", "to"):
                    end = edge.get(side)
                    if isinstance(end, str) and end.startswith(old + "."):
                        edge[side] = new + end[len(old):]


def _wire(data, doc) -> None:
    """An extra wire between existing nodes: cycles, fan-outs, two wires into one input, bad ports."""
    graph = _pick_graph(data, doc)
    nodes = _nodes(graph)
    if not nodes or not isinstance(graph.get("edges"), list):
        return
    ids = sorted(nodes)
    src = f"{data.draw(st.sampled_from(ids))}.{data.draw(st.sampled_from(PORTS))}"
    dst = f"{data.draw(st.sampled_from(ids))}.{data.draw(st.sampled_from(PORTS))}"
    graph["edges"].append({"from": src, "to": dst})


def _retype_node(data, doc) -> None:
    """A node turned into another type with that type's default params (a block instance: of a block
    of the file)."""
    graph = _pick_graph(data, doc)
    nodes = _nodes(graph)
    if not nodes:
        return
    node_id = data.draw(st.sampled_from(sorted(nodes)))
    type_id = data.draw(st.sampled_from(TYPE_IDS))
    params = REGISTRY[type_id].default_params()
    if type_id == "block":
        blocks = doc.get("blocks") if isinstance(doc.get("blocks"), dict) else {}
        params["block"] = data.draw(st.sampled_from([*sorted(blocks), "nope"]))
    nodes[node_id] = {"type": type_id, "version": 1, "params": params, "pos": [0, 0]}


INSERTABLE = ["relu", "dropout", "linear", "conv1d", "gru", "reduce_time", "block"]


def _insert_node(data, doc, merge: str | None = None) -> None:
    """A node of another type spliced into a wire; with ``merge`` (add or concat), as a side branch
    joined to the wire's source again: the mutation that most often gives a new valid topology."""
    graph = _pick_graph(data, doc)
    nodes, edges = _nodes(graph), graph.get("edges")
    if not nodes or not isinstance(edges, list) or not edges:
        return
    i = data.draw(st.integers(0, len(edges) - 1), label="wire")
    edge = edges[i]
    if not isinstance(edge, dict) or not all(isinstance(edge.get(k), str) for k in ("from", "to")):
        return
    type_id = data.draw(st.sampled_from(INSERTABLE), label="type")
    node_type = REGISTRY[type_id]
    params = node_type.default_params()
    if type_id == "block":
        blocks = doc.get("blocks") if isinstance(doc.get("blocks"), dict) else {}
        params["block"] = data.draw(st.sampled_from([*sorted(blocks), "nope"]))
    for _ in range(data.draw(st.integers(0, 2), label="changed params")):
        param = data.draw(st.sampled_from(node_type.params)) if node_type.params else None
        if param is not None and type_id != "block":
            params[param.name] = data.draw(_plausible(param))
    new = "fuzz_" + str(len(nodes))
    while new in nodes:
        new += "_"
    nodes[new] = {"type": type_id, "version": 1, "params": params, "pos": [0, 0]}
    out = data.draw(st.sampled_from(["y", "last"])) if type_id == "gru" else "y"
    if merge is None:
        edges[i] = {"from": edge["from"], "to": f"{new}.x"}
        edges.append({"from": f"{new}.{out}", "to": edge["to"]})
        return
    join = new + "_" + merge
    nodes[join] = {"type": merge, "version": 1, "params": {"inputs": 2}, "pos": [0, 0]}
    edges[i] = {"from": edge["from"], "to": f"{join}.x1"}
    edges += [{"from": edge["from"], "to": f"{new}.x"}, {"from": f"{new}.{out}", "to": f"{join}.x2"},
              {"from": f"{join}.y", "to": edge["to"]}]


def _insert_branch(data, doc) -> None:
    _insert_node(data, doc, merge=data.draw(st.sampled_from(["add", "concat"])))


def _rename_block_port(data, doc) -> None:
    """A port of an inline block renamed, and the wires of the block's instances with it (so the graph
    may stay valid): port names become arguments of the block's generated forward()."""
    blocks = doc.get("blocks") if isinstance(doc, dict) else None
    if not isinstance(blocks, dict):
        return
    ports = [(name, node_id) for name, block in sorted(blocks.items()) if isinstance(_nodes(block), dict)
             for node_id, node in sorted(block["nodes"].items())
             if isinstance(node, dict) and node.get("type") in ("block_input", "block_output")
             and isinstance(node.get("params"), dict)]
    if not ports:
        return
    block_name, node_id = data.draw(st.sampled_from(ports), label="block port")
    node = blocks[block_name]["nodes"][node_id]
    old, new = node["params"].get("name"), data.draw(st.sampled_from(WORDS), label="port name")
    node["params"]["name"] = new
    side = "to" if node["type"] == "block_input" else "from"
    instances = {i for i, n in (_nodes(doc) or {}).items()
                 if isinstance(n, dict) and n.get("type") == "block" and isinstance(n.get("params"), dict)
                 and n["params"].get("block") == block_name}
    for edge in doc.get("edges") if isinstance(doc.get("edges"), list) else []:
        if isinstance(edge, dict) and isinstance(edge.get(side), str) and "." in edge[side]:
            instance, port = edge[side].split(".", 1)
            if instance in instances and port == old:
                edge[side] = f"{instance}.{new}"


def _copy_node(data, doc) -> None:
    graph = _pick_graph(data, doc)
    nodes = _nodes(graph)
    if not nodes:
        return
    node_id = data.draw(st.sampled_from(sorted(nodes)))
    nodes[node_id + "_copy"] = json.loads(json.dumps(nodes[node_id]))


class _Named:
    """A mutation that hypothesis prints by name."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def __repr__(self) -> str:
        return self.fn.__name__


#: drawn uniformly: repeats make a mutation likelier
JSON_MUTATIONS = [_drop, _retype, _retype, _deep, *[_set_param] * 4, _rename, _wire, _wire, _retype_node,
                  _retype_node, _copy_node, _insert_node, _insert_branch, _rename_block_port]
#: mutations that often keep a graph valid
GENTLE_MUTATIONS = [_set_plausible_param, _set_plausible_param, _insert_node, _insert_branch,
                    _rename_block_port]


# ---- text-level mutations ------------------------------------------------------------------------

def _emit(value: Any, path: tuple, dup: tuple | None) -> str:
    """JSON text of ``value``; ``dup`` = (path, key, value, first) adds a duplicate key to one object,
    before (``first``) or after the original members (json keeps the last one)."""
    if isinstance(value, dict):
        members = [f"{json.dumps(k)}: {_emit(v, (*path, k), dup)}" for k, v in value.items()]
        if dup is not None and dup[0] == path:
            extra = f"{json.dumps(dup[1])}: {json.dumps(dup[2])}"
            members = [extra, *members] if dup[3] else [*members, extra]
        return "{" + ", ".join(members) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_emit(v, (*path, i), dup) for i, v in enumerate(value)) + "]"
    return json.dumps(value)


def _to_text(data, doc: Any) -> str:
    dup = None
    objects = [p for p in [(), *_places(doc)] if isinstance(_get(doc, p), dict) and _get(doc, p)]
    if objects and data.draw(st.booleans()):
        path = data.draw(st.sampled_from(objects))
        key = data.draw(st.sampled_from(sorted(_get(doc, path))))
        dup = (path, key, data.draw(values), data.draw(st.booleans()))
    text = _emit(doc, (), dup)
    while json.dumps(DEEP_MARK) in text:
        # around 990 levels json.loads stops: just below, a value loads but may be too deep to show
        depth = data.draw(st.integers(1, 3000) | st.integers(900, 1000), label="depth")
        text = text.replace(json.dumps(DEEP_MARK), "[" * depth + "0" + "]" * depth, 1)
    return text


def _mutate_text(data, text: str) -> str:
    op = data.draw(st.sampled_from(["truncate", "insert", "delete", "number", "bom"]))
    at = data.draw(st.integers(0, len(text)))
    if op == "truncate":
        return text[:at]
    if op == "insert":
        return text[:at] + data.draw(st.text(min_size=1, max_size=8)) + text[at:]
    if op == "delete":
        return text[:at] + text[at + data.draw(st.integers(1, 20)):]
    if op == "number":  # numbers JSON allows but Python cannot hold as they are
        number = data.draw(st.sampled_from(["9" * 5000, "1e400", "-1e400", "1e-400", "-0", "NaN",
                                            "Infinity", "1" + "0" * 30]))
        if '"version": 1' in text and data.draw(st.booleans()):
            return text.replace('"version": 1', f'"version": {number}', 1)
        return text[:at] + number + text[at:]
    return "\ufeff" + text


def _mutate_bytes(data, raw: bytes) -> bytes:
    at = data.draw(st.integers(0, len(raw)))
    return raw[:at] + data.draw(st.binary(min_size=1, max_size=8)) + raw[at:]


# ---- the properties ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A copy of graphs/ that each example writes its mutated file into (and restores after)."""
    target = tmp_path_factory.mktemp("fuzz") / "graphs"
    shutil.copytree(GRAPHS, target)
    return target


def _one_line(message: str) -> bool:
    return len(message.splitlines()) == 1


def _small(v: Validation) -> bool:
    numbers = sum(s.numel() for ports in v.out_shapes.values() for s in ports.values())
    return v.total_params <= BUILD_MAX_PARAMS and numbers <= BUILD_MAX_NUMBERS


def _build_and_run(graph, validation: Validation) -> None:
    model = build(graph, REGISTRY, seed=0, validation=validation).module.eval()
    spec = graph.input
    x = torch.randn(1, 2, spec.length, len(spec.features))
    with torch.no_grad():
        scores = model(x, torch.tensor([[True, True]]))
    assert scores.shape == (1, 2)
    assert torch.isfinite(scores).all()
    event("built and run")


def _check(path: Path, data) -> None:
    try:
        graph = load_graph(path)
    except GraphFileError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: "), message[:300]
        assert _one_line(message), message[:300]
        event("not a graph file")
        return
    validation = validate(graph, REGISTRY)
    assert all(p.severity in ("error", "warning") for p in validation.problems)
    event("valid" if validation.ok else "invalid")
    if not validation.ok:
        with pytest.raises(BuildError):
            build(graph, REGISTRY, validation=validation)
        return
    if graph.kind == "block":  # a block is built inside the models that use it, not on its own
        with pytest.raises(BuildError):
            build(graph, REGISTRY, validation=validation)
        return
    if not _small(validation) or data.draw(st.integers(0, BUILD_EVERY - 1), label="build?") != 0:
        return
    _build_and_run(graph, validation)


#: a GRU's dropout with num_layers 1 has no effect: torch warns, the validator accepts it (see the report)
IGNORE_GRU_DROPOUT = pytest.mark.filterwarnings("ignore:dropout option adds dropout:UserWarning")


@IGNORE_GRU_DROPOUT
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_graph_files(workdir: Path, data) -> None:
    rel = data.draw(st.sampled_from(FILES), label="file")
    original = (GRAPHS / rel).read_bytes()
    # "gentle": mutations that often keep the graph valid, so that it reaches the builder
    levels = ["json"] * 5 + ["gentle"] * 3 + ["json+text"] * 2 + ["text", "bytes"]
    level = data.draw(st.sampled_from(levels), label="level")
    if level == "text":
        raw = _mutate_text(data, original.decode()).encode()
    elif level == "bytes":
        raw = _mutate_bytes(data, original)
    else:
        doc = json.loads(original)
        mutations = GENTLE_MUTATIONS if level == "gentle" else JSON_MUTATIONS
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            data.draw(st.sampled_from(mutations).map(_Named), label="mutation").fn(data, doc)
        text = _to_text(data, doc)
        if level == "json+text":
            text = _mutate_text(data, text)
        raw = text.encode("utf-8", "surrogatepass")
    target = workdir / rel
    target.write_bytes(raw)
    try:
        _check(target, data)
        if rel.startswith("blocks/"):  # a block file is also read through the model that uses it
            _check(workdir / "residual_blocks.json", data)
    finally:
        target.write_bytes(original)


def test_fuzz_sources_are_valid() -> None:
    """The files the fuzzer starts from are valid (else it would mostly test one fault)."""
    assert len(FILES) >= 4
    for rel in FILES:
        validation = validate(load_graph(GRAPHS / rel), REGISTRY)
        assert validation.problems == [], rel


MODELS = [rel for rel in FILES if json.loads((GRAPHS / rel).read_text()).get("kind") == "model"]


@IGNORE_GRU_DROPOUT
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_valid_variants_build_and_run(workdir: Path, data) -> None:
    """Gentle mutations of the models (plausible params, spliced-in nodes and branches): every variant
    the validator accepts builds and runs (the other test builds only a sample)."""
    rel = data.draw(st.sampled_from(MODELS), label="file")
    original = (GRAPHS / rel).read_bytes()
    doc = json.loads(original)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        data.draw(st.sampled_from(GENTLE_MUTATIONS).map(_Named), label="mutation").fn(data, doc)
    target = workdir / rel
    target.write_text(json.dumps(doc), encoding="utf-8")
    try:
        graph = load_graph(target)
    finally:
        target.write_bytes(original)
    validation = validate(graph, REGISTRY)
    event("valid" if validation.ok else "invalid")
    if validation.ok and _small(validation):
        _build_and_run(graph, validation)


def test_deeply_nested_value_is_reported_not_raised() -> None:
    """A value nested as deep as json.loads allows, validated from a deeper call stack than it was
    loaded from (as the editor does): the message shows it shortly instead of raising RecursionError."""
    text = (GRAPHS / "default.json").read_text(encoding="utf-8")
    for depth in range(900, 1000, 2):
        deep = "[" * depth + "0" + "]" * depth
        try:
            graph = loads_graph(text.replace('"kernel_size": 5', f'"kernel_size": {deep}', 1), source="deep")
        except GraphFileError:
            continue  # too deep for json.loads itself
        problems = _deeper(60, lambda graph=graph: validate(graph, REGISTRY).problems)
        assert [p.where for p in problems] == ["conv_1.kernel_size"]
        assert problems[0].message.startswith("expects an integer in [1, 4096], gets ")
        assert len(problems[0].message) < 100


@pytest.mark.parametrize("value", ["x\u2028y", "x\x85y", "x\ny", ["a\u2029b"]], ids=repr)
@pytest.mark.parametrize("field", ["format", "version"])
def test_file_error_with_line_breaking_characters_stays_one_line(field, value) -> None:
    doc = json.loads((GRAPHS / "default.json").read_text(encoding="utf-8"))
    doc[field] = value
    with pytest.raises(GraphFileError) as info:
        loads_graph(json.dumps(doc, ensure_ascii=False), source="odd.json")
    assert str(info.value).startswith("odd.json: ")
    assert _one_line(str(info.value)), str(info.value)


def test_problem_with_line_breaking_characters_stays_one_line() -> None:
    doc = json.loads((GRAPHS / "default.json").read_text(encoding="utf-8"))
    doc["nodes"]["relu_1"]["type"] = "re\u2028lu"
    doc["nodes"]["conv_1"]["params"]["padding_mode"] = "zeros\x85"
    graph = loads_graph(json.dumps(doc, ensure_ascii=False), source="odd.json")
    problems = [str(p) for p in validate(graph, REGISTRY).problems]
    assert problems == [
        'conv_1.padding_mode: expects one of "zeros", "reflect", "replicate", "circular", '
        'gets "zeros\\u0085"',
        'relu_1: unknown node type "re\\u2028lu" (did you mean "relu"?)',
    ]
    assert all(_one_line(p) for p in problems)


def _deeper(frames: int, fn):
    return fn() if frames == 0 else _deeper(frames - 1, fn)
