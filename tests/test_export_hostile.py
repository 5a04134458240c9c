"""Hostile text in a graph file never runs as code in a .py export.

Names, descriptions, feature names and block names full of quotes, backslashes, NUL, carriage returns,
Unicode line separators, lone surrogates, terminal escapes and coding declarations are exported; the
exported file is run in a fresh interpreter, where a marker payload must not have run, every text
comes back unchanged through GRAPH_NAME / GRAPH_DESCRIPTION / FEATURES, and the model equals the
built module.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studio.cli import main
from studio.core.graph_file import load_graph
from studio.torchgraph.builder import build
from studio.torchgraph.export import ExportError, example_inputs, python_source
from tests.conftest import GRAPHS

#: each would run (and write the marker file) if it reached the source unquoted
RUN = "import os; open(os.environ['STUDIO_MARKER'], 'w').write('ran')"
PAYLOADS = [
    f'"""\n{RUN}\n"""',
    f"'''\n{RUN}\n'''",
    f'";{RUN};"',
    f"';{RUN};'",
    "C:\\Users\\name\\N{x}\\",  # backslash escapes, and a trailing backslash
    "\\",
    f"NUL\x00{RUN}",
    f"cr\r{RUN}",
    f"crlf\r\n{RUN}",
    f"separators\u2028{RUN}\u2029{RUN}\x85{RUN}\x0c{RUN}\x0b{RUN}",
    "surrogate \ud800 and \udfff",
    "\x1b]0;pwned\x07\x1b[2J\x9b31m terminal escapes",
    f"# -*- coding: utf-7 -*-\n+AAo-{RUN}",
    f"#\n# coding: utf-7\n+AAo-{RUN}",
    "名称 séance",
]


def hostile_graph(tmp_path: Path) -> Path:
    """residual_blocks.json (a block file and an inline block) with every text field made hostile."""
    data = json.loads((GRAPHS / "residual_blocks.json").read_text(encoding="utf-8"))
    data["name"] = "".join(PAYLOADS)
    data["description"] = "\n".join(PAYLOADS)
    data["input"]["features"] = [PAYLOADS[0], PAYLOADS[4], PAYLOADS[6]]
    inline = data["blocks"].pop("downsample")
    inline["name"] = PAYLOADS[1]
    inline["description"] = PAYLOADS[2]
    # a block name Python would fold to another one (NFKC: the ligature reads "fi")
    data["blocks"]["\ufb01ve"] = inline
    data["nodes"]["down"]["params"]["block"] = "\ufb01ve"
    (tmp_path / "blocks").mkdir()
    shutil.copy(GRAPHS / "blocks" / "conv_relu.json", tmp_path / "blocks" / "conv_relu.json")
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(data), encoding="utf-8")  # ensure_ascii: the lone surrogates survive
    return path


RUNNER = """
import json, runpy, sys
import torch
namespace = runpy.run_path(sys.argv[1])
model = namespace["load_model"]()
x, mask = torch.load(sys.argv[2], weights_only=True)
with torch.no_grad():
    torch.save(model(x, mask), sys.argv[3])
texts = {k: namespace[k] for k in ("GRAPH_NAME", "GRAPH_DESCRIPTION", "FEATURES")}
open(sys.argv[4], "w", encoding="utf-8").write(json.dumps(texts))
"""


def test_hostile_text_is_quoted_and_the_export_still_works(tmp_path, capsys):
    path = hostile_graph(tmp_path)
    graph = load_graph(path)
    assert not graph.load_problems, graph.load_problems
    out_dir = tmp_path / "out"
    out = out_dir / "model '''\"\"\" x.py"  # an odd file name: load_model() still finds its weights
    assert main(["export", str(path), "--to", str(out), "--seed", "3"]) == 0, capsys.readouterr().err
    source = out.read_text(encoding="utf-8")
    tree = ast.parse(source)
    # the payloads sit only in string constants and comments: no statement but the expected ones
    statements = {type(n).__name__ for n in tree.body}
    assert statements <= {"Expr", "Import", "ImportFrom", "Assign", "ClassDef", "FunctionDef"}
    calls_at_top = [n for n in tree.body if isinstance(n, ast.Expr) and not isinstance(n.value, ast.Constant)]
    assert calls_at_top == []
    assert "\x00" not in source and "\r" not in source and "\u2028" not in source and "\x1b" not in source
    assert source.splitlines()[0].startswith("# Exported by Model Studio")  # no coding line from the file

    x, mask = example_inputs(graph)
    torch.save((x, mask), tmp_path / "inputs.pt")
    (tmp_path / "runner.py").write_text(RUNNER, encoding="utf-8")
    marker = tmp_path / "marker"
    env = {**os.environ, "STUDIO_MARKER": str(marker)}
    proc = subprocess.run([sys.executable, "-I", str(tmp_path / "runner.py"), str(out), str(tmp_path / "inputs.pt"),
                           str(tmp_path / "outputs.pt"), str(tmp_path / "texts.json")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not marker.exists(), "a payload from the graph file ran"

    texts = json.loads((tmp_path / "texts.json").read_text(encoding="utf-8"))
    assert texts["GRAPH_NAME"] == graph.name
    assert texts["GRAPH_DESCRIPTION"] == graph.description
    assert texts["FEATURES"] == graph.input.features
    with torch.no_grad():
        expected = build(graph, seed=3).module.eval()(x, mask)
    torch.testing.assert_close(torch.load(tmp_path / "outputs.pt", weights_only=True), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_each_payload_alone_gives_a_compiling_file(tmp_path, payload):
    """One payload per field at a time (a fault in one quoting path cannot hide behind another)."""
    graph = load_graph(GRAPHS / "default.json")
    graph.name, graph.description = payload, payload
    graph.input.features = [payload, "b", "c"]
    built = build(graph, seed=0)
    source = python_source(built, graph)
    namespace: dict = {}
    marker = tmp_path / "marker"
    os.environ["STUDIO_MARKER"] = str(marker)
    try:
        exec(compile(source, "export.py", "exec"), namespace)  # the test runs generated code, not a file's text
    finally:
        del os.environ["STUDIO_MARKER"]
    assert not marker.exists()
    assert (namespace["GRAPH_NAME"], namespace["GRAPH_DESCRIPTION"]) == (payload, payload)
    assert namespace["FEATURES"] == (payload, "b", "c")


def test_names_python_would_fold_get_distinct_classes(tmp_path):
    """Two blocks whose names fold to one identifier under NFKC ("ﬁ" and "fi") stay two classes."""
    data = json.loads((GRAPHS / "residual_blocks.json").read_text(encoding="utf-8"))
    data["blocks"]["fi"] = data["blocks"]["downsample"]
    data["blocks"]["\ufb01"] = json.loads(json.dumps(data["blocks"]["downsample"]))
    data["blocks"]["\ufb01"]["nodes"]["conv"]["params"]["kernel_size"] = 2
    data["blocks"]["\ufb01"]["nodes"]["conv"]["params"]["stride"] = 2
    del data["blocks"]["downsample"]
    data["nodes"]["down"]["params"]["block"] = "fi"
    data["nodes"]["down2"] = {"type": "block", "version": 1, "params": {"block": "\ufb01"}, "pos": [0, 0]}
    data["edges"] = [e for e in data["edges"] if e["from"] != "down.y"]
    data["edges"] += [{"from": "down.y", "to": "down2.x"}, {"from": "down2.y", "to": "gru_1.x"}]
    (tmp_path / "blocks").mkdir()
    shutil.copy(GRAPHS / "blocks" / "conv_relu.json", tmp_path / "blocks" / "conv_relu.json")
    path = tmp_path / "fold.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    graph = load_graph(path)
    built = build(graph, seed=1)
    source = python_source(built, graph)
    namespace: dict = {}
    exec(compile(source, "export.py", "exec"), namespace)
    model = namespace["Model"]()
    model.load_state_dict(built.module.state_dict())
    x, mask = example_inputs(graph)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x, mask), built.module.eval()(x, mask), rtol=0, atol=1e-6)


def test_a_value_that_is_not_a_plain_literal_is_refused(monkeypatch):
    """The exporter writes only literals it can check; anything else is an error, never repr() text."""
    graph = load_graph(GRAPHS / "default.json")
    built = build(graph, seed=0)
    recipe = next(p for p in built.parts.values() if hasattr(p, "kwargs") and p.kwargs)
    recipe.kwargs[next(iter(recipe.kwargs))] = object()
    with pytest.raises(ExportError, match="cannot be written as Python source"):
        python_source(built, graph)
