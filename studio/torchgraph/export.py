"""Exporting a graph as plain PyTorch code (.py + .pt weights), a torch.export program (.pt2) or ONNX.

All three are made from one built module, so with the same seed (or the same ``--weights``) they give
the same outputs for the same input. Exports are for inference: the module is put in eval mode.
Every export takes ``(x, mask)`` with dynamic dates (B) and stocks (N) axes; see docs/graph-format.md.
With a run's preprocessing (``--run``, studio.torchgraph.export_preprocess) they take raw bars as well.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import inspect
import io
import keyword
import logging
import math
import os
import re
import secrets
import shutil
import textwrap
import unicodedata
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from studio import __version__
from studio.core.document import Graph
from studio.core.files import DiskFullError, atomic_save, atomic_write_all, atomic_writer, no_room
from studio.core.node_type import Recipe
from studio.core.registry import Registry
from studio.core.text import printable
from studio.torchgraph.builder import BuiltGraph, WrappedBlock, build, resolve_target
from studio.torchgraph.export_preprocess import (
    COPIED_NAME,
    RawBarsModel,
    RunPreprocessing,
    copied_source,
    description_text,
    python_parts,
    raw_bars_shapes,
)
from studio.torchgraph.torch_files import TorchFileError, load_weights, misfit

SUFFIXES = (".py", ".pt2", ".onnx")


class ExportError(Exception):
    """A one-line reason why an export cannot be made."""


def example_inputs(graph: Graph, batch: int = 2, stocks: int = 7, seed: int = 0):
    """A random (x, mask) pair of the graph's input shape; one stock of the first date is absent."""
    assert graph.input is not None
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, stocks, graph.input.length, len(graph.input.features), generator=gen)
    mask = torch.ones(batch, stocks, dtype=torch.bool)
    mask[0, -1] = False
    return x, mask


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict saved with torch.save, through the checked loader (studio.torchgraph.torch_files: never
    unpickles code); a bad file is an ExportError of one line."""
    try:
        return load_weights(path)
    except TorchFileError as exc:
        raise ExportError(str(exc)) from None


def apply_weights(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    problem = misfit(state, module)
    if problem:
        raise ExportError(f"{printable(source)}: {problem}")
    module.load_state_dict(state)


def export(graph: Graph, out: str | os.PathLike[str], *, seed: int = 0, weights: str | None = None,
           registry: Registry | None = None, run: RunPreprocessing | None = None) -> list[Path]:
    """Write ``out`` (.py, .pt2 or .onnx); returns the files written. ``run``: the preprocessing of the run
    the weights come from (studio.torchgraph.export_preprocess.read_run), carried by the export."""
    out = Path(out)
    if out.suffix not in SUFFIXES:
        raise ExportError(f"{out}: the output must end in .py, .pt2 or .onnx")
    if graph.kind != "model":
        raise ExportError(f"{graph.path or graph.name}: a block cannot be exported on its own; "
                          "use it in a model")
    built = build(graph, registry, seed=seed)
    if weights is not None:
        apply_weights(built.module, load_state_dict_file(weights), weights)
    built.module.eval()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".py":
            return export_python(built, graph, out, run)
        if run is not None:
            return export_program_with_run(built.module, graph, out, run)
        if out.suffix == ".pt2":
            return [export_pt2(built.module, graph, out)]
        return export_onnx(built.module, graph, out)
    except OSError as exc:  # every output is written whole or not at all; a full disk says so in one line
        if no_room(exc) and not isinstance(exc, DiskFullError):
            raise DiskFullError(out, exc.errno if exc.errno else 28) from None
        raise


# ---- .py ------------------------------------------------------------------------------------------
#
# Text from a graph file (its name, description, feature and block names, string parameters) never
# reaches the generated source unquoted: values go through repr() (checked to be plain literals), and
# prose goes into comments with every non-printable character escaped. Names that become Python
# identifiers (node ids, block class names) are checked again here, whatever the loader allowed.

#: names the generated file imports itself
_PROVIDED = {"math": math, "torch": torch, "nn": nn, "F": F}


def _check_identifier(name: str, what: str) -> str:
    if (not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name)
            or unicodedata.normalize("NFKC", name) != name or name.startswith("__")):
        raise ExportError(f"{what} {printable(name)} cannot be a Python name in the exported file")
    return name


def _comment(text: str, width: int = 100) -> list[str]:
    """Prose as ``# `` comment lines; each source line of ``text`` becomes one (escaped) line."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        lines.extend(("# " + part).rstrip()
                     for part in textwrap.wrap(printable(line), width, break_on_hyphens=False) or [""])
    return lines


def _literal(value: object, where: str) -> str:
    """Source text of a plain value (None, bool, int, float, str and lists / tuples / dicts of them)
    that evaluates back to it; anything else is refused rather than written."""
    if value is None or isinstance(value, bool | int | str):
        return repr(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return f"float({repr(value)!r})"  # float('inf'), float('nan')
    if isinstance(value, tuple):
        items = [_literal(v, where) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v, where) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k, where)}: {_literal(v, where)}" for k, v in value.items()) + "}"
    raise ExportError(f"{where}: a value of type {type(value).__name__} cannot be written as Python source")


def _expression(recipe: Recipe, where: str, first: str | None = None) -> tuple[str, type | None]:
    """Constructor call text for a recipe (``first``: a positional first argument's text), and the class
    whose source must be copied (None for nn.*)."""
    cls = resolve_target(recipe.target)
    args = ", ".join([*([first] if first else []),
                      *(f"{_check_identifier(k, f'{where}: argument')}={_literal(v, f'{where}.{k}')}"
                        for k, v in recipe.kwargs.items())])
    if recipe.target.startswith("torch.nn.") and getattr(nn, cls.__name__, None) is cls:
        return f"nn.{cls.__name__}({args})", None
    return f"{cls.__name__}({args})", cls


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else "" for line in text.splitlines())


def _global_names(obj: object) -> list[str]:
    """Every name a class or function reads (its locals too: the caller keeps those its module
    defines), in source order."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))  # type: ignore[arg-type]
    names: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.setdefault(node.id)
    return list(names)


class _Codegen:
    def __init__(self) -> None:
        #: copied classes and functions, dependencies first, and module-level constants they read
        self.copied: list[object] = []
        self.constants: dict[str, str] = {}
        self.classes: dict[str, str] = {}  # class name -> source

    def need(self, obj: object, _visiting: tuple = ()) -> None:
        """Copy ``obj`` (a class or function behind a node type: studio.modules, or an installed node
        pack) and every module-level name it reads: functions and classes (copied in turn) and plain
        constants (written as checked literals)."""
        if obj in self.copied or obj in _visiting:
            return
        module = inspect.getmodule(obj)
        if module is None or module.__name__.split(".")[0] == "torch":
            raise ExportError(f"{getattr(obj, '__qualname__', obj)} cannot be copied into a standalone file")
        for name in _global_names(obj):
            if name in _PROVIDED or not hasattr(module, name):
                continue  # a local, a builtin, or an import the file makes itself
            value = getattr(module, name)
            if value is getattr(builtins, name, object()):
                continue
            if value is _PROVIDED.get(name):
                continue
            if inspect.isclass(value) or inspect.isfunction(value):
                if value is obj:
                    continue
                origin = inspect.getmodule(value)
                if origin is not None and origin.__name__.split(".")[0] == "torch":
                    raise ExportError(f"{obj.__qualname__} uses {name} from torch without the torch prefix; "
                                      "write torch.X or nn.X so the exported file can find it")
                self.need(value, (*_visiting, obj))
            else:
                text = _literal(value, f"{module.__name__}.{name}")
                if self.constants.get(name, text) != text:
                    raise ExportError(f"two copied modules define {name} differently")
                self.constants[name] = text
        self.copied.append(obj)

    def graph_class(self, built: BuiltGraph) -> str:
        """Emit the class of a built (sub)graph; returns its (deduplicated) name."""
        _check_identifier(built.class_name, "block class")
        lines = []
        for name, part in built.parts.items():
            _check_identifier(name, "node id")
            if isinstance(part, BuiltGraph):
                lines.append(f"self.{name} = {self.graph_class(part)}()")
            elif isinstance(part, WrappedBlock):
                text, cls = _expression(part.recipe, f"node {name}", f"{self.graph_class(part.inner)}()")
                if cls is not None:
                    self.need(cls)
                lines.append(f"self.{name} = {text}")
            else:
                text, cls = _expression(part, f"node {name}")
                if cls is not None:
                    self.need(cls)
                lines.append(f"self.{name} = {text}")
        # fx frees each value after its last use ("a = None"); the standalone code reads better without
        forward = re.sub(r";  [\w =]+ = None$", "", built.module.code.strip(), flags=re.MULTILINE)
        doc = (repr(f"Block {built.block_name}.") if built.block_name
               else '"""forward(x, mask=None): x (B dates, N stocks, L bars, F features) -> (B, N)."""')
        body_of = "\n".join(["def __init__(self):", "    super().__init__()", *("    " + ln for ln in lines)])

        def render(class_name: str) -> str:
            head = f"class {class_name}(nn.Module):\n    {doc}\n\n"
            return f"{head}{_indent(body_of, 4)}\n\n{_indent(forward, 4)}\n"

        # two instances of one block can differ (channels taken from their wires): one class each
        name, suffix = built.class_name, 1
        while name in self.classes and self.classes[name] != render(name):
            suffix += 1
            name = f"{built.class_name}_{suffix}"
        self.classes[name] = render(name)
        return name


def python_source(built: BuiltGraph, graph: Graph, run: RunPreprocessing | None = None) -> str:
    """The standalone module; with ``run``, also the run's preprocessing (numpy) and score()."""
    gen = _Codegen()
    gen.graph_class(built)
    spec = graph.input
    assert spec is not None
    # The first two lines are fixed text: Python reads a coding declaration from them.
    needs = ("plain PyTorch, needs only torch." if run is None
             else "plain PyTorch and the run's preprocessing, needs torch and numpy.")
    comment = [
        "# Exported by Model Studio " + printable(__version__) + ": " + needs,
        "# The graph's name and description (as written in its file; see GRAPH_NAME, GRAPH_DESCRIPTION):",
        *_comment(graph.name or "model"),
        *(_comment(graph.description) if graph.description else []),
    ]
    docstring = (
        '"""A model exported by Model Studio.\n\n'
        f"Input x: (B dates, N stocks, L={spec.length} bars = {spec.days} days x {spec.bars_per_day} bars, "
        f"F={len(spec.features)} features, in the order of FEATURES);\n"
        "mask: (B, N) bool, True where a stock is present (optional). Output: (B, N) scores.\n"
        "Weights: the .pt file of this file's name beside it; load_model() reads them.\n"
        + ("" if run is None else
           "Raw bars: preprocess(bars, traded=None) -> (x, mask) with the run's statistics, and\n"
           "score(bars, traded=None) -> (N,) scores; they need numpy (see FIELDS, SPEC).\n")
        + '"""\n'
    )
    header = "\n".join(comment) + "\n" + docstring
    imports, copied = copied_source() if run is not None else ([], "")
    parts = [header, ("" if run is None else "from __future__ import annotations\n\n")
             + "import math  # noqa: F401\n\n" + "".join(line + "\n" for line in imports)
             + "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F  # noqa: F401\n",
             "\n".join([f"GRAPH_NAME = {_literal(graph.name, 'graph name')}",
                        f"GRAPH_DESCRIPTION = {_literal(graph.description, 'graph description')}",
                        f"FEATURES = {_literal(tuple(spec.features), 'input features')}"]) + "\n"]
    if gen.constants:
        parts.append("\n".join(f"{name} = {text}" for name, text in gen.constants.items()) + "\n")
    parts.extend(inspect.getsource(obj) for obj in gen.copied)  # type: ignore[arg-type]
    parts.extend(gen.classes.values())
    parts.append(
        "def load_model(weights: str | None = None) -> Model:\n"
        '    """The exported model with its weights (by default the .pt file beside this one), in eval mode."""\n'
        "    model = Model()\n"
        "    path = weights if weights is not None else __file__[: -len('.py')] + '.pt'\n"
        "    model.load_state_dict(torch.load(path, map_location='cpu', weights_only=True))\n"
        "    return model.eval()\n"
    )
    if run is not None:
        _check_copied_names(copied, gen)
        parts.extend(["# The source of studio/data/preprocess.py (numpy only), copied; its preprocess() is "
                      f"{COPIED_NAME}() here.\n" + copied, *python_parts(run, _literal)])
    source = "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"
    try:
        compile(source, "<export>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # a bug here, never a file's fault: refuse to write it
        raise ExportError(f"internal error: the generated source does not compile ({exc})") from None
    return source


def _check_copied_names(copied: str, gen: _Codegen) -> None:
    """The copied preprocessing and the model's copied code must not define one name twice."""
    ours = {*gen.constants, *gen.classes, *(getattr(obj, "__name__", "") for obj in gen.copied), *_PROVIDED,
            "GRAPH_NAME", "GRAPH_DESCRIPTION", "FEATURES", "load_model", "preprocess", "score", "FIELDS", "SPEC",
            "RUN_DIR", "HISTORY_DAYS", "np"}
    tree = ast.parse(copied)
    theirs = {t.id for s in tree.body if isinstance(s, ast.Assign) for t in s.targets if isinstance(t, ast.Name)}
    theirs |= {s.name for s in tree.body if isinstance(s, ast.FunctionDef | ast.ClassDef)}
    clash = sorted(theirs & ours)
    if clash:
        raise ExportError(f"internal error: the copied preprocessing and the model both define {clash[0]}")


def export_python(built: BuiltGraph, graph: Graph, out: Path, run: RunPreprocessing | None = None) -> list[Path]:
    """The source and its weights, written as a pair: both whole or neither (a full disk leaves the
    files that were there, never a .py beside a truncated .pt)."""
    weights = out.with_suffix(".pt")
    source = python_source(built, graph, run)
    buffer = io.BytesIO()
    torch.save(built.module.state_dict(), buffer)
    atomic_write_all({weights: buffer.getvalue(), out: source})
    return [out, weights]


# ---- .pt2 and .onnx -------------------------------------------------------------------------------

def _dynamic_shapes():
    dates = torch.export.Dim("dates", min=1, max=4096)
    stocks = torch.export.Dim("stocks", min=2, max=100_000)
    return {"x": {0: dates, 1: stocks}, "mask": {0: dates, 1: stocks}}


@contextlib.contextmanager
def _quiet():
    """torch's exporters print progress and known-harmless warnings (GRU _flat_weights, torchvision)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_pt2(module: nn.Module, graph: Graph, out: Path, inputs: tuple | None = None,
               shapes: dict | None = None) -> Path:
    """``inputs`` / ``shapes``: example inputs and their dynamic axes (default: the model's (x, mask))."""
    inputs = example_inputs(graph) if inputs is None else inputs
    with _quiet():
        program = torch.export.export(module, inputs, dynamic_shapes=shapes or _dynamic_shapes())
    # saved in memory, then written whole or not at all
    atomic_save(out, lambda fh: torch.export.save(program, fh))
    return out


def export_onnx(module: nn.Module, graph: Graph, out: Path, inputs: tuple | None = None,
                shapes: dict | None = None) -> list[Path]:
    """``inputs`` / ``shapes``: example inputs and their dynamic axes (default: the model's (x, mask)),
    named after ``shapes``' keys. Returns the files written: the .onnx, then its weights' file if any."""
    for name, part in module.named_modules():
        # torch writes such a file without complaint, but ONNX's LSTM has no projection: it cannot run
        if isinstance(part, nn.LSTM) and part.proj_size > 0:
            raise ExportError(f"{out}: ONNX has no LSTM with proj_size ({name}: proj_size {part.proj_size}); "
                              "export .py or .pt2 instead")
    inputs = example_inputs(graph) if inputs is None else inputs
    shapes = shapes or _dynamic_shapes()
    # torch writes NAME.onnx and its weights NAME.onnx.data (which the .onnx names): both go to a
    # temporary folder beside the output first and are moved in only when torch has written them whole
    staging = out.parent / f".{out.name}.studio-export-{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        with _quiet():
            torch.onnx.export(module, inputs, str(staging / out.name), dynamo=True,
                              input_names=list(shapes), output_names=["score"],
                              dynamic_shapes=shapes, verbose=False)
        written = sorted(staging.iterdir(), key=lambda p: p.name != out.name)  # the .onnx first
        if not written or written[0].name != out.name:
            raise ExportError(f"{out}: torch wrote no ONNX file")
        for part in written[1:]:  # its data first: an .onnx never names a missing or older .data
            os.replace(part, out.parent / part.name)
        os.replace(written[0], out)
        return [out, *(out.parent / part.name for part in written[1:])]
    except OSError as exc:
        if no_room(exc):
            raise DiskFullError(out) from None
        raise
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the onnx and onnxscript packages ({exc})") from None
    except torch.onnx.OnnxExporterError as exc:
        # e.g. an adaptive max pool whose output size does not divide its input: no ONNX operator
        detail = _onnx_failure(exc)
        if no_room(exc):
            raise DiskFullError(out) from None
        raise ExportError(f"{out}: torch cannot convert this graph to ONNX ({detail}); export .py or .pt2 "
                          "instead") from None
    except Exception as exc:
        if no_room(exc):  # onnx's writer wraps the OSError of a full disk in its own errors
            raise DiskFullError(out) from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_program_with_run(module: nn.Module, graph: Graph, out: Path, run: RunPreprocessing) -> list[Path]:
    """A .pt2 or ONNX program that takes raw bars (bars, traded) when the run's normalisation can be
    expressed in it; else the plain program and ``NAME.preprocess.json`` beside it (the steps in words)."""
    def write(*args) -> list[Path]:
        return [export_pt2(*args)] if out.suffix == ".pt2" else export_onnx(*args)

    if run.in_program:
        program = RawBarsModel(module, run).eval()
        return write(program, graph, out, program.example_inputs(), raw_bars_shapes())
    beside = out.with_suffix(".preprocess.json")
    # a pair, whole or not at all: the steps go to disk first under a temporary name (a full disk stops
    # the export before the program is written), the program is written, then the steps are renamed in
    # (a rename needs no room); a failing program write removes the steps' temporary file
    with atomic_writer(beside) as steps:
        steps.write(description_text(run, out.name))
        steps.flush()
        os.fsync(steps.fileno())
        written = write(module, graph, out)
    return [*written, beside]


def _onnx_failure(exc: BaseException) -> str:
    """The innermost cause of an ONNX export failure, on one line."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return line[:160]
