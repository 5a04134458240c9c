"""Commands on graph files: validate, summary, export, nodes, schema."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio.cli.errors import CliError, disk_full_line
from studio.cli.table import format_table
from studio.core.document import Graph, block_reference
from studio.core.graph_file import GraphFileError, load_graph
from studio.core.registry import Registry
from studio.core.text import printable, shown
from studio.core.validation import DEFAULT_MAX_PARAMS, Validation, format_bytes, format_count, over_budget, validate
from studio.nodes import default_registry


def add_graph_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("validate", help="check graph files; exit 0 valid, 1 problems, 2 unreadable",
                            description="Check graph files and list every problem, each naming its node, "
                                        "port or parameter. Exit 0 when all are valid, 1 when any has "
                                        "problems, 2 when any cannot be read.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--quiet", "-q", action="store_true", help="print problems only")
    p.set_defaults(run=validate_command)

    p = commands.add_parser("summary", help="table of nodes, output shapes and parameter counts",
                            description="Print each node with its type, output shape(s) and parameters, "
                                        "and the totals.")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(run=summary_command)

    p = commands.add_parser("export", help="export as plain PyTorch code (.py), .pt2 or ONNX",
                            description="Build the graph and export it. OUT ending in .py writes a "
                                        "standalone module (imports only torch, class Model) and OUT.pt "
                                        "with its weights; .pt2 writes a torch.export program; .onnx an "
                                        "ONNX model. Inputs: x (B, N, L, F) and mask (B, N), with B and N "
                                        "dynamic. --run RUN_DIR also carries the run's preprocessing (raw "
                                        "bars in, with its statistics; docs/graph-format.md).")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--to", required=True, metavar="OUT", help="output file: .py, .pt2 or .onnx")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    p.add_argument("--weights", metavar="STATE_DICT",
                   help="a state dict (.pt, e.g. a run's model.pt) to export instead of fresh weights")
    p.add_argument("--run", metavar="RUN_DIR", dest="run_dir",
                   help="carry this run's preprocessing: .py gains preprocess(bars) and score(bars) (needs "
                        "numpy); .pt2/.onnx take raw bars, or get NAME.preprocess.json beside them "
                        "(--weights defaults to RUN_DIR/model.pt)")
    p.add_argument("--max-params", type=int, default=DEFAULT_MAX_PARAMS, metavar="N",
                   help=f"refuse a model with more parameters than N (default {DEFAULT_MAX_PARAMS:,})")
    p.set_defaults(run=export_command)

    p = commands.add_parser("diff", help="what changed between two graph files; exit 0 when the same model",
                            description="List what turns graph A into graph B: nodes added, removed and "
                                        "retyped, parameter changes (conv_2.kernel_size: 3 -> 5), wires "
                                        "added and removed, the input spec and each block's inside, in a "
                                        "stable order. Positions are left out and a parameter left out has "
                                        "its default. Exit 0 when equal, 1 when they differ, 2 when a file "
                                        "cannot be read.")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--json", action="store_true", help="print the changes as a JSON list")
    p.set_defaults(run=diff_command)

    p = commands.add_parser("nodes", help="list node types, or show one type's ports and parameters")
    p.add_argument("type_id", nargs="?", metavar="TYPE")
    p.add_argument("--markdown", action="store_true",
                   help="print every type's ports and parameters as Markdown (docs/nodes.md)")
    p.set_defaults(run=nodes_command)

    p = commands.add_parser("schema", help="print (or write) the JSON Schema of graph files")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of printing")
    p.set_defaults(run=schema_command)


def registry() -> Registry:
    """The node registry; node packs that failed to load are reported once, as warnings."""
    reg = default_registry()
    global _warned
    if not _warned:
        for line in reg.pack_errors:
            print(f"studio: warning: {line}", file=sys.stderr)
        _warned = True
    return reg


_warned = False


def read_graph(path: str) -> Graph:
    try:
        return load_graph(path)
    except GraphFileError as exc:
        raise CliError(str(exc)) from None


def _print_problems(label: str, v: Validation) -> None:
    for p in v.problems:
        tag = "warning: " if p.severity == "warning" else ""
        print(f"{label}: {tag}{p}")


def validate_command(args: argparse.Namespace) -> int:
    reg = registry()
    worst = 0
    for name in args.files:
        try:
            graph = load_graph(name)
        except GraphFileError as exc:
            print(f"studio: {exc}", file=sys.stderr)
            worst = 2
            continue
        v = validate(graph, reg)
        _print_problems(name, v)
        if v.ok:
            if not args.quiet:
                print(f"{name}: valid ({len(graph.nodes)} nodes, {v.total_params:,} parameters; "
                      f"{memory_text(v)})")
        else:
            worst = max(worst, 1)
    return worst


def memory_text(v: Validation) -> str:
    """The parameters' bytes and the estimate of a training step's activations per stock."""
    return (f"{format_bytes(v.param_bytes)} of weights, ~{format_bytes(v.activation_bytes_per_stock)} of "
            "activations per stock and date in training (estimate)")


def _shape_text(v: Validation, node_id: str) -> str:
    shapes = v.out_shapes.get(node_id)
    if shapes is None:
        return "?"
    if not shapes:
        return "score N" if v.graph.nodes[node_id].type == "output" else "-"
    if len(shapes) == 1:
        return str(next(iter(shapes.values())))
    return ", ".join(f"{port} {shape}" for port, shape in shapes.items())


def diff_command(args: argparse.Namespace) -> int:
    from studio.core.graph_diff import diff_graphs

    diff = diff_graphs(read_graph(args.a), read_graph(args.b), registry())
    if args.json:
        print(json.dumps(diff.to_json(), indent=1, default=str))
    elif diff.equal:
        print(f"{printable(args.a)} and {printable(args.b)}: the same model (positions aside)")
    else:
        count = len(diff.changes)
        print(f"{printable(args.a)} -> {printable(args.b)}: {count} change{'s' if count != 1 else ''}")
        for line in diff.lines():
            print(f"  {line}")
    return 0 if diff.equal else 1


def summary_command(args: argparse.Namespace) -> int:
    graph = read_graph(args.file)
    v = validate(graph, registry())
    spec = graph.input
    print(f"{graph.name or Path(args.file).stem} ({graph.kind}) - {args.file}")
    if graph.description:
        print(graph.description)
    if spec is not None:
        names = ", ".join(shown(f) for f in spec.features)  # names from the file: escaped, cut
        print(f"input: {len(spec.features)} features ({names}) x {spec.days} days x "
              f"{spec.bars_per_day} bars = N×{spec.length}×{len(spec.features)}")
    rows = []
    order = v.order + sorted(set(graph.nodes) - set(v.order))
    for node_id in order:
        node = graph.nodes[node_id]
        note = "" if v.useful is None or node_id in v.useful else " (unused)"
        block = block_reference(node)
        type_text = node.type + (f" {block}" if block is not None else "")
        count = v.param_counts.get(node_id)
        rows.append([node_id + note, type_text, _shape_text(v, node_id),
                     f"{count:,}" if count is not None else "?"])
    print(format_table(["node", "type", "output shape", "params"], rows, align="lllr"))
    if v.ok:
        print(f"memory: {memory_text(v)}")
    print(f"total: {len(graph.nodes)} nodes, {v.total_params:,} parameters ({format_count(v.total_params)})")
    if not v.ok or v.warnings:
        _print_problems(args.file, v)
    return 0 if v.ok else 1


def export_command(args: argparse.Namespace) -> int:
    graph = read_graph(args.file)
    reg = registry()
    v = validate(graph, reg)
    if not v.ok:
        _print_problems(args.file, v)
        return 1
    refusal = over_budget(v, args.max_params)
    if refusal is not None:  # before torch allocates the weights
        raise CliError(f"{printable(args.file)}: {refusal}")
    from studio.torchgraph.export import ExportError, export  # torch is needed from here on
    from studio.torchgraph.export_preprocess import RunError, read_run

    weights = args.weights
    try:
        run = read_run(args.run_dir, graph, reg) if args.run_dir is not None else None
        if run is not None and weights is None:
            weights = str(Path(args.run_dir) / "model.pt")
        written = export(graph, args.to, seed=args.seed, weights=weights, registry=reg, run=run)
    except (ExportError, RunError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(disk_full_line(exc) or f"{args.to}: cannot write ({exc.strerror or exc})") from None
    for path in written:
        print(f"wrote {path}")
    if run is not None:
        print(_run_export_note(Path(args.to), run))
    return 0


def _run_export_note(out: Path, run) -> str:
    """What the export with --run takes and gives, on one line."""
    spec, fields = run.spec, ", ".join(printable(f) for f in run.fields)
    bars = f"(N stocks, {run.history} days x {spec['bars_per_day']} bars, fields {fields})"
    if out.suffix == ".py":
        return (f"{out.name}: preprocess(bars) and score(bars) take raw bars {bars} with the run's "
                f"{spec['normalize']} preprocessing; the file now needs numpy as well as torch")
    if run.in_program:
        across = " (give every stock of the date: cs_zscore is across them)" if spec["normalize"] == "cs_zscore" else ""
        return (f"{out.name}: the program takes raw bars {bars} as float32 and traded (N,) bool, and gives "
                f"(N,) scores (NaN where a stock is not a sample); the run's {spec['normalize']} "
                f"preprocessing is inside it{across}")
    return (f"{out.name}: {spec['normalize']} ranks the stocks of each bar, which is not put in the program: "
            f"it takes (x, mask) as without --run; {out.with_suffix('.preprocess.json').name} beside it holds "
            "every constant and step that makes them from raw bars")


def nodes_command(args: argparse.Namespace) -> int:
    reg = registry()
    if args.markdown:
        from studio.core.node_docs import nodes_markdown

        if args.type_id is not None:
            raise CliError("--markdown lists every node type; leave out TYPE")
        sys.stdout.write(nodes_markdown(reg))
        return 0
    if args.type_id is None:
        width = max((len(t.type_id) for t in reg), default=0)
        for category, types in reg.by_category().items():
            print(category)
            for t in types:
                print(f"  {t.type_id:<{width}}  {t.title}")
        return 0
    t = reg.get(args.type_id)
    if t is None:
        raise CliError(f"unknown node type {args.type_id!r} (studio nodes lists them)")
    print(f"{t.type_id} - {t.title} ({t.category}, version {t.version})")
    if t.doc:
        print(t.doc)
    for label, ports in (("inputs", t.inputs), ("outputs", t.outputs)):
        if ports:
            print(f"{label}:")
            for port in ports:
                print(f"  {port.name}: {port.describe_kinds()}" + (f" - {port.doc}" if port.doc else ""))
    if t.params:
        print("params:")
        rows = [[p.name, json.dumps(p.default), p.describe(), p.doc] for p in t.params]
        print(format_table(["name", "default", "accepts", "meaning"], rows, indent=2))
    return 0


def schema_command(args: argparse.Namespace) -> int:
    from studio.core.schema import graph_schema

    text = json.dumps(graph_schema(registry()), indent=2, ensure_ascii=False) + "\n"
    if args.out:
        from studio.core.files import atomic_write

        try:
            atomic_write(args.out, text)
        except OSError as exc:
            raise CliError(disk_full_line(exc) or f"{args.out}: cannot write ({exc.strerror or exc})") from None
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0
