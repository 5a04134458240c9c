"""Graph files: byte-exact round trips, the JSON schema, migrations, blocks and unreadable input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from studio.core.document import BlockEntry, Graph, InputSpec
from studio.core.graph_file import GraphFileError, dumps_graph, load_graph, loads_graph, save_graph
from studio.core.schema import SCHEMA_PATH, graph_schema
from studio.core.validation import validate
from tests.conftest import FIXTURES, GRAPHS, gallery_files, gallery_models

SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
#: one validator for every gallery file (jsonschema.validate would check the large schema itself each time)
SCHEMA_VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)


@pytest.mark.parametrize("path", gallery_files(), ids=lambda p: str(p.relative_to(GRAPHS)))
def test_gallery_file_round_trips_byte_for_byte(path: Path):
    text = path.read_text(encoding="utf-8")
    assert dumps_graph(load_graph(path)) == text


@pytest.mark.parametrize("path", gallery_files(), ids=lambda p: str(p.relative_to(GRAPHS)))
def test_gallery_file_matches_the_schema_and_validates(path: Path, registry):
    SCHEMA_VALIDATOR.validate(json.loads(path.read_text(encoding="utf-8")))
    v = validate(load_graph(path), registry)
    assert v.problems == [], [str(p) for p in v.problems]


def test_gallery_has_the_default_and_a_parallel_graph():
    names = {p.name for p in gallery_models()}
    assert {"default.json", "two_branch.json"} <= names
    two = load_graph(GRAPHS / "two_branch.json")
    fan_out = {}
    for e in two.edges:
        fan_out.setdefault(e.src, []).append(e.dst)
    assert any(len(v) > 1 for v in fan_out.values()), "two_branch fans out"
    assert two.nodes_of_type("add"), "two_branch merges with Add"


def test_committed_schema_is_up_to_date(registry):
    jsonschema.validators.validator_for(SCHEMA).check_schema(SCHEMA)
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == graph_schema(registry), (
        "run: studio schema --out studio/core/graph.schema.json")


def test_schema_rejects_what_the_validator_rejects_at_param_level():
    doc = json.loads((GRAPHS / "default.json").read_text(encoding="utf-8"))
    doc["nodes"]["conv_1"]["params"]["kernel_size"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
    doc = json.loads((GRAPHS / "default.json").read_text(encoding="utf-8"))
    doc["nodes"]["conv_1"]["params"]["padding_mode"] = "mirror"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_writing_is_deterministic_and_ordered():
    g = load_graph(GRAPHS / "two_branch.json")
    g.edges.reverse()
    g.nodes = dict(reversed(list(g.nodes.items())))
    text = dumps_graph(g)
    assert text == (GRAPHS / "two_branch.json").read_text(encoding="utf-8")
    assert text.endswith("}\n") and "\t" not in text
    top = list(json.loads(text))
    assert top[:2] == ["format", "version"]
    assert json.loads(text)["format"] == "model-studio.graph"


def test_v0_file_is_migrated_to_the_current_format():
    graph = load_graph(FIXTURES / "v0_prototype.json")
    assert dumps_graph(graph) == (FIXTURES / "v0_prototype.v1.json").read_text(encoding="utf-8")
    assert graph.input == InputSpec(["close", "volume", "turnover"], 10, 24)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path, monkeypatch):
    target = tmp_path / "g.json"
    graph = load_graph(GRAPHS / "default.json")
    save_graph(graph, target)
    before = target.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    graph.name = "changed"
    with pytest.raises(OSError, match="disk full"):
        save_graph(graph, target)
    assert target.read_bytes() == before, "a failed save must not touch the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


def test_save_stamps_the_writing_studio_version(tmp_path: Path):
    from studio import __version__

    graph = load_graph(FIXTURES / "v0_prototype.json")
    assert graph.studio_version == "0.0.0"
    save_graph(graph, tmp_path / "g.json")
    assert json.loads((tmp_path / "g.json").read_text())["studio_version"] == __version__


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not JSON (line 1, column 2: Expecting property name enclosed in double quotes)"),
    ("[1, 2]", "not a graph file (the top level is not a JSON object)"),
    ("{}", 'not a graph file (no "format": "model-studio.graph" field)'),
    ('{"format": "other"}', 'not a graph file (format "other", expected "model-studio.graph")'),
    ('{"format": "model-studio.graph", "version": "1"}', '"version" must be an integer, gets "1"'),
    ('{"format": "model-studio.graph", "version": 7}',
     "written by a newer Model Studio (format version 7; this one reads versions up to 1)"),
    ('{"format": "model-studio.graph", "version": 1, "x": NaN}', "not JSON (NaN is not allowed in JSON)"),
    ('{"format": "model-studio.graph", "version": 0, "nodes": [{"type": "relu"}]}',
     "cannot upgrade this version-0 file (nodes[0]: \"id\" must be a string, gets null)"),
])
def test_unreadable_text_gives_one_line_naming_the_source(text, message):
    with pytest.raises(GraphFileError) as info:
        loads_graph(text, source="g.json")
    assert str(info.value) == f"g.json: {message}"


def test_unreadable_files(tmp_path: Path):
    with pytest.raises(GraphFileError, match=r"missing\.json: no such file"):
        load_graph(tmp_path / "missing.json")
    with pytest.raises(GraphFileError, match="is a folder"):
        load_graph(tmp_path)
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(GraphFileError, match=r"b\.json: not a text file"):
        load_graph(binary)


def test_faults_inside_a_graph_file_are_collected_not_fatal():
    doc = json.loads((GRAPHS / "default.json").read_text(encoding="utf-8"))
    doc["nodes"]["relu_1"] = {"version": 1, "params": {}, "pos": [0, 0]}
    doc["edges"].append({"from": "nowhere", "to": "head.x"})
    doc["extra"] = 1
    graph = loads_graph(json.dumps(doc), source="g.json")
    messages = [str(p) for p in graph.load_problems]
    assert 'relu_1: "type" must be a node type id, gets null' in messages
    assert 'graph.edges[8]: expects "node.port", gets "nowhere"' in messages
    assert 'graph: unknown field "extra" (dropped)' in messages


def test_inline_and_file_blocks_are_read_and_written_back(tmp_path: Path):
    graph = load_graph(GRAPHS / "residual_blocks.json")
    assert graph.blocks["conv_relu"].path == "blocks/conv_relu.json"
    assert graph.blocks["conv_relu"].graph is not None and graph.blocks["conv_relu"].graph.kind == "block"
    assert graph.blocks["downsample"].path is None
    saved = json.loads(dumps_graph(graph))
    assert saved["blocks"]["conv_relu"] == {"path": "blocks/conv_relu.json"}
    assert saved["blocks"]["downsample"]["kind"] == "block"


def test_block_file_problems(tmp_path: Path):
    a = Graph(name="a", kind="block")
    b = Graph(name="b", kind="block")
    a.blocks["b"] = BlockEntry("b", b, "b.json")
    b.blocks["a"] = BlockEntry("a", a, "a.json")
    save_graph(a, tmp_path / "a.json")
    save_graph(b, tmp_path / "b.json")
    model = Graph(name="m", input=InputSpec(["close"], 1, 4))
    model.blocks["a"] = BlockEntry("a", a, "a.json")
    model.blocks["missing"] = BlockEntry("missing", None, "nothere.json")
    model.blocks["model"] = BlockEntry("model", None, "m2.json")
    save_graph(Graph(name="m2", input=InputSpec(["close"], 1, 4)), tmp_path / "m2.json")
    save_graph(model, tmp_path / "m.json")
    messages = [str(p) for p in load_graph(tmp_path / "m.json").load_problems]
    assert any(m.startswith("blocks.missing: cannot read block file:") and "nothere.json: no such file" in m
               for m in messages)
    assert "blocks.model: m2.json is a model, not a block" in messages
    # a -> b -> a: the cycle of block files is found, not followed forever
    nested = load_graph(tmp_path / "a.json")
    inner = nested.blocks["b"].graph
    assert inner is not None
    assert [str(p) for p in inner.load_problems] == [
        "blocks.a: a.json refers back to a file that includes it (a cycle of block files)"]


def test_block_paths_must_be_relative():
    doc = json.loads((GRAPHS / "default.json").read_text(encoding="utf-8"))
    doc["blocks"] = {"abs": {"path": "/etc/passwd.json"}, "bad": {"path": 3}}
    graph = loads_graph(json.dumps(doc), source="g.json", base_dir=GRAPHS)
    messages = [str(p) for p in graph.load_problems]
    assert "blocks.abs: block path '/etc/passwd.json' must be relative to the graph file, with / separators" \
        in messages
    assert 'blocks.bad: a block reference is {"path": "relative/file.json"}, gets {"path": 3}' in messages
