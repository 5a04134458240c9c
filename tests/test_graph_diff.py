"""studio diff: what changed between two graphs, on hand-made pairs; the order is stable, positions and
defaults written out are no change, text from the files is escaped, and the exit code says equal or not."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from studio.cli import main
from studio.core.graph_diff import diff_graphs
from studio.core.graph_file import load_graph
from studio.nodes import default_registry
from tests.conftest import GRAPHS


def edited(tmp_path: Path, source: Path, name: str, edit) -> Path:
    data = json.loads(source.read_text())
    edit(data)
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=1))
    return path


def lines(a: Path, b: Path) -> list[str]:
    return diff_graphs(load_graph(a), load_graph(b), default_registry()).lines()


def test_the_same_model_moved_about_and_with_defaults_left_out_is_equal(tmp_path):
    def edit(data):
        for node in data["nodes"].values():
            node["pos"] = [node["pos"][0] + 40, node["pos"][1] - 10]
        data["nodes"]["conv_2"]["params"].pop("padding_mode")  # its default, "zeros", left out
        data["nodes"]["conv_2"]["params"]["kernel_size"] = 4.0  # one JSON number
        random.Random(1).shuffle(data["edges"])

    other = edited(tmp_path, GRAPHS / "default.json", "moved.json", edit)
    diff = diff_graphs(load_graph(GRAPHS / "default.json"), load_graph(other), default_registry())
    assert diff.equal and diff.lines() == []
    assert main(["diff", str(GRAPHS / "default.json"), str(other)]) == 0


def test_a_changed_parameter_is_one_line(tmp_path, capsys):
    other = edited(tmp_path, GRAPHS / "default.json", "k5.json",
                   lambda d: d["nodes"]["conv_2"]["params"].__setitem__("kernel_size", 5))
    assert lines(GRAPHS / "default.json", other) == ["conv_2.kernel_size: 4 -> 5"]
    assert main(["diff", str(GRAPHS / "default.json"), str(other)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{GRAPHS / 'default.json'} -> {other}: 1 change", "  conv_2.kernel_size: 4 -> 5"]


def test_nodes_wires_input_and_types_in_a_stable_order(tmp_path, capsys):
    def edit(data):
        del data["nodes"]["dropout_1"]
        data["edges"] = [e for e in data["edges"] if "dropout_1" not in json.dumps(e)]
        data["edges"].append({"from": "gru_1.last", "to": "head.x"})
        data["nodes"]["gru_1"]["type"] = "lstm"
        data["nodes"]["relu_2"]["type"] = "gelu"
        data["nodes"]["relu_2"]["params"] = {}
        data["nodes"]["act"] = {"type": "tanh", "version": 1, "params": {}, "pos": [0, 0]}
        data["input"]["days"] = 5
        data["nodes"]["head"]["params"]["bias"] = False

    other = edited(tmp_path, GRAPHS / "default.json", "b.json", edit)
    got = lines(GRAPHS / "default.json", other)
    assert got == [
        "input.days: 10 -> 5",
        "node added: act (tanh)",
        "node removed: dropout_1 (dropout)",
        "node retyped: gru_1: gru -> lstm",
        "node retyped: relu_2: relu -> gelu",
        "gru_1.proj_size: (none) -> 0",  # the LSTM's own parameter, at its default
        "head.bias: true -> false",
        'relu_2.approximate: (none) -> "none"',
        "relu_2.inplace: false -> (none)",
        "wire added: gru_1.last -> head.x",
        "wire removed: dropout_1.y -> head.x",
        "wire removed: gru_1.last -> dropout_1.x",
    ]
    kinds = [c.kind for c in diff_graphs(load_graph(GRAPHS / "default.json"), load_graph(other),
                                         default_registry()).changes]
    assert kinds == sorted(kinds, key=["input", "node added", "node removed", "node retyped", "param",
                                       "wire added", "wire removed"].index)
    assert lines(GRAPHS / "default.json", other) == got  # the same every time
    reverse = lines(other, GRAPHS / "default.json")
    assert "node added: dropout_1 (dropout)" in reverse and "node removed: act (tanh)" in reverse
    assert main(["diff", str(GRAPHS / "default.json"), str(other), "--json"]) == 1
    changes = json.loads(capsys.readouterr().out)
    assert {"kind": "param", "where": "head.bias", "block": "", "old": True, "new": False,
            "node": "head"} in changes
    highlighted = diff_graphs(load_graph(GRAPHS / "default.json"), load_graph(other),
                              default_registry()).changed_nodes()
    assert highlighted == {"act", "gru_1", "relu_2", "head"}


def test_a_change_inside_a_block_names_the_block(tmp_path):
    folder = tmp_path / "gallery"
    shutil.copytree(GRAPHS / "bottleneck", folder / "bottleneck")
    shutil.copytree(GRAPHS / "blocks", folder / "blocks")
    model = folder / "bottleneck" / "bottleneck_16.json"
    before = load_graph(model)
    block_file = folder / "blocks" / "bottleneck1.json"
    data = json.loads(block_file.read_text())
    data["nodes"]["conv"]["params"]["kernel_size"] = 5
    block_file.write_text(json.dumps(data))
    after = load_graph(model)
    assert diff_graphs(before, after, default_registry()).lines() == ["block bottleneck1 > conv.kernel_size: 3 -> 5"]
    assert diff_graphs(before, after, default_registry()).changed_nodes() == set()  # not a node of the model


def test_numbers_and_flags_are_told_apart_as_json_means_them(tmp_path):
    other = edited(tmp_path, GRAPHS / "default.json", "flags.json",
                   lambda d: d["nodes"]["head"]["params"].__setitem__("bias", 1))
    assert lines(GRAPHS / "default.json", other) == ["head.bias: true -> 1"]


def test_text_from_a_file_is_escaped_and_a_bad_file_is_one_line(tmp_path, capsys):
    other = edited(tmp_path, GRAPHS / "default.json", "hostile.json",
                   lambda d: d.__setitem__("description", "ok\x1b[2J\nrm -rf /"))
    assert main(["diff", str(GRAPHS / "default.json"), str(other)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "graph.description:" in out and len(out.splitlines()) == 2
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    assert main(["diff", str(GRAPHS / "default.json"), str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(broken) in err and "\n" not in err
