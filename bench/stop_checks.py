"""What the engine's in-step stop checks cost (studio.train.engine._StopChecks).

A training step slower than FINE_CHECKS_ABOVE_S runs under a torch function mode that checks for a
stop before every torch operation and, by a gradient hook on each result, between the operations of the
backward pass, so Stop ends a long step within about a second. This measures a step (forward, loss,
backward) of gallery graphs with and without those checks, paired and interleaved in one process
(alternating which goes first each round), and prints the ratio of the medians: checked / plain
(1.0: free). The last line printed is JSON {graph: ratio, ...}.

    python bench/stop_checks.py [--threads 1] [--rounds 7] [--stocks 128] [--dates 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch

from studio.core.graph_file import load_graph
from studio.torchgraph.builder import build_model
from studio.train.engine import _StopChecks

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"
DEFAULT_GRAPHS = ("default.json", "cells/convgru_1.json", "cells/conv_passcell_2_1.json",
                  "transformer/transformer_3x1.json")


def step_seconds(model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor, checked: bool) -> float:
    never = _StopChecks(lambda: False) if checked else contextlib.nullcontext()
    started = time.perf_counter()
    with never:
        scores = model(x, mask)
        loss = scores.square().mean()
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def measure(path: Path, stocks: int, dates: int, rounds: int) -> dict:
    graph = load_graph(path)
    model = build_model(graph).train()
    spec = graph.input
    x = torch.randn(dates, stocks, spec.length, len(spec.features))
    mask = torch.ones(dates, stocks, dtype=torch.bool)
    for checked in (False, True):  # warm-up
        step_seconds(model, x, mask, checked)
    plain, checked = [], []
    for r in range(rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        for flag in order:
            (checked if flag else plain).append(step_seconds(model, x, mask, flag))
    return {"plain_s": statistics.median(plain), "checked_s": statistics.median(checked),
            "ratio": statistics.median(checked) / statistics.median(plain)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--stocks", type=int, default=128)
    parser.add_argument("--dates", type=int, default=1)
    parser.add_argument("--graphs", nargs="*", default=list(DEFAULT_GRAPHS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ratios = {}
    for name in args.graphs:
        figures = measure(GRAPHS / name, args.stocks, args.dates, args.rounds)
        print(f"{name}: plain {figures['plain_s'] * 1000:.0f} ms, checked {figures['checked_s'] * 1000:.0f} ms"
              f" per step -> checked/plain {figures['ratio']:.3f}")
        ratios[name] = round(figures["ratio"], 3)
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
