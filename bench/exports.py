"""Every gallery model exported in every format, and checked against the built module.

For each model under graphs/ (blocks left out): export .py, .pt2 and .onnx with one seed; load each
(the .py in a fresh interpreter, as a user would import it), run it on the example inputs and on
other B / N with absent stocks, and compare with ``build(graph, seed=...)`` in eval mode (1e-5).
An export the studio refuses with a reason (e.g. ONNX has no LSTM with a projection) counts as
refused, not failed. The suite checks .py for every model and .pt2 / .onnx on a covering subset
(tests/test_export.py); this script is the full sweep (about 30 minutes on 2 cores).

Models whose cells loop over time steps in Python (the seed's cells) are unrolled by torch.export
and ONNX: at 240 steps that takes about 2 minutes (.pt2) and 5 minutes (.onnx) a model on 2 cores.
By default they are exported on a 1-day x 4-bar window (every code path, 4 steps); --full-length
exports them at their own window (hours for the 32 cell models).

The last line is JSON: counts per format (ok, refused, failed) and the export time per model of each
format as a ratio to the time to build the model ("pt2_vs_build", "onnx_vs_build", "py_vs_build").

    python bench/exports.py [--only SUBSTRING] [--formats py,pt2,onnx] [--full-length]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.core.graph_file import load_graph  # noqa: E402
from studio.torchgraph.builder import build  # noqa: E402
from studio.torchgraph.export import ExportError, example_inputs, export  # noqa: E402

ATOL = 1e-5
RUN_PY = """
import runpy, sys, torch
ns = runpy.run_path(sys.argv[1])
model = ns["load_model"]()
cases = torch.load(sys.argv[2], weights_only=True)
with torch.no_grad():
    torch.save([model(x, m) for x, m in cases], sys.argv[3])
"""


def cases_for(graph):
    cases = [example_inputs(graph)]
    gen = torch.Generator().manual_seed(1234)
    for dates, stocks in ((3, 11), (1, 4)):
        x = torch.randn(dates, stocks, graph.input.length, len(graph.input.features), generator=gen)
        mask = torch.rand(dates, stocks, generator=gen) > 0.3
        mask[0, 0] = False
        mask[-1, -1] = True
        cases.append((x, mask))
    return cases


def close(outputs, expected) -> str | None:
    for i, (a, e) in enumerate(zip(outputs, expected, strict=True)):
        a = torch.as_tensor(a)
        if a.shape != e.shape:
            return f"case {i}: shape {tuple(a.shape)} != {tuple(e.shape)}"
        diff = (a - e).abs().max().item() if a.numel() else 0.0
        if not diff <= ATOL:
            return f"case {i}: differs by {diff:.3g}"
    return None


STEP_LOOP_TYPES = {"cell_rnn", "cell_gru", "cell_lstm", "cell_lstmc", "cell_pass1", "cell_pass2", "cell_stack"}


def shortened(graph):
    """A step-loop model on the shortest window that validates (None: not a step-loop model)."""
    from studio.core.validation import validate
    from studio.nodes import default_registry

    types = {n.type for n in graph.nodes.values()}
    for entry in graph.blocks.values():
        if entry.graph is not None:
            types |= {n.type for n in entry.graph.nodes.values()}
    if not types & STEP_LOOP_TYPES:
        return None
    for days, bars in ((1, 4), (1, 8), (1, 16), (2, 12), (1, 24)):
        graph.input.days, graph.input.bars_per_day = days, bars
        if validate(graph, default_registry()).ok:
            return graph
    return None


def check(path: Path, fmt: str, folder: Path, full_length: bool) -> tuple[str, str, float, float]:
    """(status ok / refused / failed, detail, export seconds, build seconds)."""
    graph = load_graph(path)
    if fmt != "py" and not full_length:
        graph = shortened(graph) or graph
    start = time.perf_counter()
    module = build(graph, seed=3).module.eval()
    build_s = time.perf_counter() - start
    cases = cases_for(graph)
    with torch.no_grad():
        expected = [module(x, m) for x, m in cases]
    out = folder / f"{path.stem}.{fmt}"
    start = time.perf_counter()
    try:
        export(graph, out, seed=3)
    except ExportError as exc:
        return "refused", str(exc), time.perf_counter() - start, build_s
    except Exception as exc:  # a bench reports every failure and goes on
        return "failed", f"export: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", 0.0, build_s
    export_s = time.perf_counter() - start
    try:
        if fmt == "py":
            torch.save(cases, folder / "cases.pt")
            proc = subprocess.run([sys.executable, "-I", "-c", RUN_PY, str(out), str(folder / "cases.pt"),
                                   str(folder / "out.pt")], capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                return "failed", f"import: {proc.stderr.strip().splitlines()[-1][:200]}", export_s, build_s
            outputs = torch.load(folder / "out.pt", weights_only=True)
        elif fmt == "pt2":
            program = torch.export.load(str(out)).module()
            with torch.no_grad():
                outputs = [program(x, m) for x, m in cases]
        else:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            outputs = [session.run(None, {"x": x.numpy(), "mask": m.numpy()})[0] for x, m in cases]
    except Exception as exc:  # as above
        return "failed", f"load/run: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", export_s, build_s
    problem = close(outputs, expected)
    return ("failed", problem, export_s, build_s) if problem else ("ok", "", export_s, build_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="models whose path contains this")
    parser.add_argument("--formats", default="py,pt2,onnx")
    parser.add_argument("--full-length", action="store_true",
                        help="export step-loop cell models at their own window for .pt2 / .onnx too")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    models = [p for p in sorted((ROOT / "graphs").rglob("*.json"))
              if json.loads(p.read_text(encoding="utf-8")).get("kind") == "model" and args.only in str(p)]
    formats = args.formats.split(",")
    counts = {f: {"ok": 0, "refused": 0, "failed": 0} for f in formats}
    ratios: dict[str, list[float]] = {f: [] for f in formats}
    with tempfile.TemporaryDirectory() as tmp:
        for path in models:
            for fmt in formats:
                folder = Path(tmp) / f"{path.parent.name}_{path.stem}_{fmt}"
                folder.mkdir()
                status, detail, export_s, build_s = check(path, fmt, folder, args.full_length)
                counts[fmt][status] += 1
                if status == "ok" and build_s > 0:
                    ratios[fmt].append(export_s / build_s)
                name = path.relative_to(ROOT / "graphs")
                print(f"{name!s:45s} {fmt:5s} {status:8s} {export_s:6.1f} s  {detail}", flush=True)
    summary = {"models": len(models), **{f"{f}_{k}": v for f, c in counts.items() for k, v in c.items()},
               **{f"{f}_vs_build": round(sorted(r)[len(r) // 2], 1) for f, r in ratios.items() if r}}
    print(json.dumps(summary))
    return 1 if any(c["failed"] for c in counts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
