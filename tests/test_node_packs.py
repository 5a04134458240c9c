"""Third-party node packs register through the ``model_studio.nodes`` entry-point group."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import FIXTURES, GRAPHS, ROOT

SCRIPT = f"""
import json, sys, torch
from studio.nodes import default_registry
from studio.core.graph_file import load_graph
from studio.core.validation import validate
from studio.torchgraph.builder import build_model

reg = default_registry()
assert "example_scale" in reg, reg.type_ids()
assert reg["example_scale"].category == "Example pack"
assert len(reg.pack_errors) == 1 and "broken" in reg.pack_errors[0], reg.pack_errors

graph = load_graph({str(GRAPHS / "default.json")!r})
graph.add_node("example_scale", 1, {{"factor": 3.0}}, node_id="scale_1")
graph.edges = [e for e in graph.edges if str(e.dst) != "head.x"]
graph.connect("dropout_1.y", "scale_1.x")
graph.connect("scale_1.y", "head.x")
v = validate(graph, reg)
assert v.ok, [str(p) for p in v.problems]
model = build_model(graph, reg, seed=0)
assert "self.scale_1(" in model.code
# a pack's module is copied into a .py export like the built-in ones
from studio.torchgraph.builder import build
from studio.torchgraph.export import python_source
built = build(graph, reg, seed=0)
namespace = {{}}
exec(compile(python_source(built, graph), "export.py", "exec"), namespace)
exported = namespace["Model"]()
exported.load_state_dict(built.module.state_dict())
x = torch.randn(1, 4, 240, 3)
assert torch.equal(exported.eval()(x), built.module.eval()(x))
print(tuple(model(torch.randn(1, 4, 240, 3)).shape))
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FIXTURES / "packs"), str(ROOT)])
    return env


def test_a_pack_adds_node_types_and_a_broken_pack_is_reported_not_fatal():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=_env(),
                          cwd=ROOT, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 4)"


def test_the_cli_lists_pack_types_and_warns_about_broken_packs():
    done = subprocess.run([sys.executable, "-m", "studio", "validate", str(GRAPHS / "default.json")],
                          capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120)
    assert done.returncode == 0
    assert "studio: warning: node pack 'broken'" in done.stderr
    listing = subprocess.run([sys.executable, "-m", "studio", "nodes"], capture_output=True, text=True,
                             env=_env(), cwd=ROOT, timeout=120)
    assert "Example pack" in listing.stdout and "example_scale" in listing.stdout


def test_a_pack_type_that_still_defines_build_gets_it_as_its_recipe_with_a_deprecation_warning():
    import warnings

    from studio.core.node_type import NodeType, Recipe

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        class OldPackType(NodeType):
            type_id = "old_pack_type"

            def build(self, params, inputs, ctx):
                return Recipe("torch.nn.Identity", {})

    assert OldPackType().recipe({}, {}, None) == Recipe("torch.nn.Identity", {})
    assert [w.category for w in caught] == [DeprecationWarning]
    assert "OldPackType: NodeType.build is now named recipe" in str(caught[0].message)
