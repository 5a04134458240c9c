"""``studio export``: the .py, .pt2 and .onnx exports reproduce the built module.

Every model of the gallery (graphs/, all families) is exported to .py through the command line with one
seed and run in a fresh interpreter that cannot import ``studio`` at all (which proves it is
standalone): ``load_model()`` must load it, and its outputs must equal ``build(graph, seed=...)`` in
eval mode, on the example inputs and on inputs with other dates (B) and stocks (N) counts and absent
stocks. .pt2 (about 4 s a model) and .onnx (about 12 s) are checked on the smallest set of gallery
models that together use every node type, cell kind and gate mode the gallery uses (``cover``), so a
node whose export breaks is caught without exporting all 81 models three ways in the suite;
``bench/exports.py`` exports every gallery model in every format.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studio.cli import main
from studio.core.document import Graph
from studio.core.graph_file import load_graph
from studio.core.validation import validate
from studio.nodes import default_registry
from studio.torchgraph.builder import build
from studio.torchgraph.export import example_inputs, export
from tests.conftest import GRAPHS, gallery_models

SEED = 5
OTHER_SEED = 11
ATOL = 1e-5
#: what an exported .py file may import
ALLOWED_IMPORTS = {"math", "torch", "torch.nn", "torch.nn.functional"}


def model_files() -> list[Path]:
    """Every model of the gallery, blocks left out."""
    return gallery_models()


def export_features(path: Path) -> set[str]:
    """What a model asks of an exporter: its node types (inside its blocks too), and for recurrent
    cells each cell kind with each gate mode."""
    graph = load_graph(path)
    found: set[str] = set()
    graphs = [graph] + [entry.graph for entry in graph.blocks.values() if entry.graph is not None]
    while graphs:
        g = graphs.pop()
        for node in g.nodes.values():
            found.add(node.type)
            params = node.params
            for layer in params.get("layers", []) if isinstance(params.get("layers"), list) else []:
                for mode in layer.get("modes", []) if isinstance(layer, dict) else []:
                    found.add(f"{node.type}:{params.get('cell')}:{mode}")
        graphs.extend(entry.graph for entry in g.blocks.values() if entry.graph is not None)
    return found


def cover(paths: list[Path]) -> list[Path]:
    """A small set of models that together have every export feature of ``paths`` (greedy set cover,
    ties broken by name: the same set on every run)."""
    features = {p: export_features(p) for p in paths}
    needed = set().union(*features.values())
    chosen: list[Path] = []
    while needed:
        best = max(sorted(paths), key=lambda p: len(features[p] & needed))
        chosen.append(best)
        needed -= features[best]
    return sorted(chosen)


#: node types whose modules loop over time steps in Python: torch.export and ONNX unroll the loop, which
#: takes minutes at 240 steps (bench/exports.py does that); the suite exports them on a 1-day x 4-bar
#: window, which runs every code path of the cell with 4 steps
STEP_LOOP_TYPES = {"cell_rnn", "cell_gru", "cell_lstm", "cell_lstmc", "cell_pass1", "cell_pass2", "cell_stack"}


def export_graph(path: Path) -> Graph:
    """The graph the .pt2 / .onnx tests export: the model itself, or a step-loop model on a short window."""
    graph = load_graph(path)
    if export_features(path) & STEP_LOOP_TYPES:
        for days, bars in ((1, 4), (1, 8), (1, 16), (2, 12), (1, 24)):
            graph.input.days, graph.input.bars_per_day = days, bars
            if validate(graph, default_registry()).ok:
                return graph
        raise AssertionError(f"{path}: no short window validates")
    return graph


MODELS = {str(p.relative_to(GRAPHS).with_suffix("")): p for p in model_files()}
COVER = [str(p.relative_to(GRAPHS).with_suffix("")) for p in cover(model_files())]


def cli_export(path: Path, out: Path, *extra: str, seed: int = SEED) -> None:
    code = main(["export", str(path), "--to", str(out), "--seed", str(seed), *extra])
    assert code == 0, f"studio export {path.name} --to {out.name} exited {code}"


def input_cases(path: Path | Graph) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The export's example inputs, then other B and N (dynamic axes) with several stocks absent."""
    graph = load_graph(path) if isinstance(path, Path) else path
    assert graph.input is not None
    cases = [example_inputs(graph)]
    gen = torch.Generator().manual_seed(1234)
    length, features = graph.input.length, len(graph.input.features)
    for dates, stocks in ((3, 11), (1, 4)):
        x = torch.randn(dates, stocks, length, features, generator=gen)
        mask = torch.rand(dates, stocks, generator=gen) > 0.3
        mask[0, 0] = False
        mask[-1, -1] = True
        cases.append((x, mask))
    return cases


def reference_outputs(path: Path | Graph, cases, seed: int = SEED) -> list[torch.Tensor]:
    module = build(load_graph(path) if isinstance(path, Path) else path, seed=seed).module.eval()
    with torch.no_grad():
        return [module(x, mask) for x, mask in cases]


def assert_all_close(actual, expected, what: str) -> None:
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        a = torch.as_tensor(a)
        assert a.shape == e.shape, f"{what}, case {i}: shape {tuple(a.shape)} != {tuple(e.shape)}"
        torch.testing.assert_close(a, e, rtol=0, atol=ATOL, msg=lambda m, i=i: f"{what}, case {i}: {m}")


# ---- .py: run in a fresh interpreter that cannot import studio ------------------------------------

RUNNER = '''
import importlib.abc
import json
import runpy
import sys


class NoStudio(importlib.abc.MetaPathFinder):
    """Refuses every studio module: an exported file must need nothing but torch."""

    def find_spec(self, name, path=None, target=None):
        if name.startswith("studio"):
            raise ImportError(f"blocked import of {name}: the export is not standalone")
        return None


sys.meta_path.insert(0, NoStudio())
try:
    import studio  # noqa: F401
except ImportError:
    pass
else:
    sys.exit("the import blocker does not work")

import torch

for job in json.loads(open(sys.argv[1], encoding="utf-8").read()):
    namespace = runpy.run_path(job["file"])
    model = namespace["load_model"]()
    assert isinstance(model, namespace["Model"]) and not model.training
    cases = torch.load(job["inputs"], weights_only=True)
    with torch.no_grad():
        outputs = [model(x, mask) for x, mask in cases]
    torch.save(outputs, job["outputs"])

leaked = sorted(name for name in sys.modules if name.startswith("studio"))
if leaked:
    sys.exit(f"studio modules were imported: {leaked}")
'''


def py_cases(path: Path):
    """The .py export is also called without a mask."""
    cases = input_cases(path)
    return [*cases, (cases[1][0], None)]


@pytest.fixture(scope="module")
def py_exports(tmp_path_factory):
    """Exports every model to .py (and default.json once more with --weights), runs them all in one
    standalone interpreter; returns {name: (exported file, its outputs)}."""
    root = tmp_path_factory.mktemp("py_export")
    jobs, files = [], {}

    def add(name: str, path: Path, *extra: str) -> None:
        out = root / name.replace("/", "__") / f"{path.stem}.py"
        cli_export(path, out, *extra)
        inputs = out.parent / "inputs.pt"
        torch.save(py_cases(path), inputs)
        files[name] = out
        jobs.append({"file": str(out), "inputs": str(inputs), "outputs": str(out.parent / "outputs.pt")})

    for stem, path in MODELS.items():
        add(stem, path)
    other = root / "other_weights.pt"
    torch.save(build(load_graph(MODELS["default"]), seed=OTHER_SEED).module.state_dict(), other)
    add("default+weights", MODELS["default"], "--weights", str(other))

    (root / "runner.py").write_text(RUNNER, encoding="utf-8")
    (root / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    # -I: no PYTHONPATH, no script folder on sys.path; cwd away from the repository
    proc = subprocess.run([sys.executable, "-I", str(root / "runner.py"), str(root / "jobs.json")],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"the exported files failed standalone:\n{proc.stderr[-3000:]}"
    return {name: (out, torch.load(out.parent / "outputs.pt", weights_only=True))
            for name, out in files.items()}


@pytest.mark.parametrize("name", list(MODELS))
def test_py_export_reproduces_the_built_module(py_exports, name):
    _, outputs = py_exports[name]
    path = MODELS[name]
    assert_all_close(outputs, reference_outputs(path, py_cases(path)), f"{name}.py")


@pytest.mark.parametrize("name", list(MODELS))
def test_py_export_is_plain_torch_code(py_exports, name):
    out, _ = py_exports[name]
    tree = ast.parse(out.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    assert imported <= ALLOWED_IMPORTS, f"{out.name} imports {sorted(imported - ALLOWED_IMPORTS)}"
    classes = {n.name: [ast.unparse(b) for b in n.bases] for n in tree.body if isinstance(n, ast.ClassDef)}
    assert classes.get("Model") == ["nn.Module"], "the file must define class Model(nn.Module)"
    assert any(isinstance(n, ast.FunctionDef) and n.name == "load_model" for n in tree.body)
    assert out.with_suffix(".pt").is_file()


def test_py_export_with_weights_uses_them(py_exports):
    _, outputs = py_exports["default+weights"]
    path = MODELS["default"]
    cases = py_cases(path)
    assert_all_close(outputs, reference_outputs(path, cases, seed=OTHER_SEED), "default.py --weights")
    fresh = reference_outputs(path, cases, seed=SEED)
    assert not torch.allclose(outputs[0], fresh[0], atol=ATOL), "--weights made no difference"


# ---- .pt2 and .onnx -------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", COVER)
def test_pt2_export_reproduces_the_built_module(tmp_path, name):
    graph = export_graph(MODELS[name])
    out = tmp_path / f"{Path(name).name}.pt2"
    export(graph, out, seed=SEED)
    program = torch.export.load(str(out)).module()
    cases = input_cases(graph)
    with torch.no_grad():
        outputs = [program(x, mask) for x, mask in cases]
    assert_all_close(outputs, reference_outputs(graph, cases), f"{name}.pt2")


@pytest.mark.slow
@pytest.mark.parametrize("name", COVER)
def test_onnx_export_reproduces_the_built_module(tmp_path, name):
    import onnxruntime

    graph = export_graph(MODELS[name])
    out = tmp_path / f"{Path(name).name}.onnx"
    written = export(graph, out, seed=SEED)
    # every file the export wrote is listed (torch puts the weights in NAME.onnx.data beside the .onnx)
    assert written[0] == out and sorted(written) == sorted(tmp_path.iterdir())
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x", "mask"]
    cases = input_cases(graph)
    outputs = [session.run(None, {"x": x.numpy(), "mask": mask.numpy()})[0] for x, mask in cases]
    assert_all_close(outputs, reference_outputs(graph, cases), f"{name}.onnx")


def test_the_pt2_and_onnx_cover_has_every_feature_of_the_gallery():
    every = set().union(*(export_features(p) for p in MODELS.values()))
    covered = set().union(*(export_features(MODELS[name]) for name in COVER))
    assert covered == every and len(COVER) < len(MODELS) // 3


# ---- errors: one line on stderr, exit 2, nothing written -------------------------------------------

def _bad_weights(kind: str, target: Path) -> None:
    state = build(load_graph(MODELS["default"]), seed=OTHER_SEED).module.state_dict()
    first = next(iter(state))
    if kind == "missing key":
        del state[first]
    elif kind == "extra key":
        state["bogus.weight"] = torch.zeros(3)
    elif kind == "wrong shape":
        state[first] = torch.zeros(state[first].shape[0] + 1, *state[first].shape[1:])
    elif kind == "not a dict":
        state = torch.zeros(3)
    if kind == "garbage":
        target.write_text("these are not torch weights\n", encoding="utf-8")
    elif kind == "empty":
        target.write_bytes(b"")
    else:
        torch.save(state, target)


def assert_one_line_error(code: int, capsys, names: Path) -> None:
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert "Traceback" not in err
    assert str(names) in err, f"the message does not name {names}: {err!r}"


@pytest.mark.parametrize(("kind", "file_name"), [
    ("missing key", "w.pt"),
    ("extra key", "w.pt"),
    ("wrong shape", "w.pt"),
    ("not a dict", "w.pt"),
    ("garbage", "weights.txt"),
    ("empty", "w.pt"),
])
def test_bad_weights_give_a_one_line_error(tmp_path, capsys, kind, file_name):
    weights = tmp_path / file_name
    _bad_weights(kind, weights)
    capsys.readouterr()
    out = tmp_path / "model.py"
    code = main(["export", str(MODELS["default"]), "--to", str(out), "--weights", str(weights)])
    assert_one_line_error(code, capsys, weights)
    assert not out.exists() and not out.with_suffix(".pt").exists()


def test_missing_weights_file_gives_a_one_line_error(tmp_path, capsys):
    weights = tmp_path / "nowhere.pt"
    code = main(["export", str(MODELS["default"]), "--to", str(tmp_path / "m.py"), "--weights", str(weights)])
    assert_one_line_error(code, capsys, weights)


@pytest.mark.parametrize("suffix", [".txt", ".pt", ""])
def test_bad_output_suffix_gives_a_one_line_error(tmp_path, capsys, suffix):
    out = tmp_path / f"model{suffix}"
    code = main(["export", str(MODELS["default"]), "--to", str(out)])
    assert_one_line_error(code, capsys, out)
    assert list(tmp_path.iterdir()) == []
