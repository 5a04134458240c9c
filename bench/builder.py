"""Forward+backward time of the built graphs/default.json model vs the same network written by hand.

The handwritten network uses plain nn.Conv1d / nn.GRU / nn.Linear with the built module's weights
(same parameter names, so its state dict loads as is). Before timing, its outputs and gradients must
match the built module's to 1e-5 in eval mode; otherwise the script exits with status 1.

Timing runs in training mode (dropout on), paired and interleaved in one process: after warm-up, each
round measures both models (the mean of a few steps each), alternating which goes first; the figure is
the ratio of the medians over the rounds.
The last line printed is JSON: {"built_vs_handwritten": median built / median handwritten}
(below 1: the built model is faster), and the validator's cost on long chains: the default graph
with 10,000 and 100,000 ReLU nodes inserted after its input, validated once each:
"validate_ms_per_node" (at 100,000 nodes) and "validate_per_node_100k_vs_10k" (the ratio of the two
per-node times: about 1 while validation stays linear).

    python bench/builder.py [--threads 1] [--rounds 30] [--steps 3] [--dates 1] [--stocks 512]
                            [--chain 100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from studio.core.graph_file import load_graph
from studio.torchgraph.builder import build

GRAPH = Path(__file__).resolve().parent.parent / "graphs" / "default.json"
ATOL = 1e-5


class Handwritten(nn.Module):
    """graphs/default.json by hand: conv(3->16, k5, same, replicate) -> ReLU -> conv(16->32, k4, stride 4)
    -> ReLU -> GRU(32) -> final state -> dropout 0.1 -> linear -> (B, N) scores, absent stocks 0."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_1 = nn.Conv1d(3, 16, kernel_size=5, padding="same", padding_mode="replicate")
        self.conv_2 = nn.Conv1d(16, 32, kernel_size=4, stride=4)
        self.gru_1 = nn.GRU(32, 32, batch_first=True)
        self.dropout_1 = nn.Dropout(0.1)
        self.head = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        dates, stocks, length, features = x.shape
        h = x.reshape(dates * stocks, length, features).transpose(1, 2)  # (B*N, F, L)
        h = torch.relu(self.conv_1(h))
        h = torch.relu(self.conv_2(h))
        _, h_n = self.gru_1(h.transpose(1, 2))
        score = self.head(self.dropout_1(h_n[-1])).reshape(dates, stocks)
        if mask is not None:
            score = score.masked_fill(~mask, 0.0)
        return score


def loss_of(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((model(x, mask) - target)[mask] ** 2).mean()


def check_same(built: nn.Module, hand: nn.Module, x, mask, target) -> str | None:
    """None when outputs and gradients match (eval mode), else why not."""
    built.eval()
    hand.eval()
    with torch.no_grad():
        diff = (built(x, mask) - hand(x, mask)).abs().max().item()
    if not diff <= ATOL:
        return f"outputs differ by {diff:.3g} (> {ATOL})"
    for model in (built, hand):
        model.zero_grad(set_to_none=True)
        loss_of(model, x, mask, target).backward()
    hand_grads = dict(hand.named_parameters())
    for name, p in built.named_parameters():
        g, h = p.grad, hand_grads[name].grad
        if g is None or h is None or not torch.allclose(g, h, rtol=1e-4, atol=ATOL):
            return f"gradients of {name} differ"
    for model in (built, hand):
        model.zero_grad(set_to_none=True)
        model.train()
    return None


def timed_steps(model: nn.Module, x, mask, target, steps: int) -> float:
    """Seconds per forward+backward step, averaged over ``steps`` steps."""
    elapsed = 0.0
    for _ in range(steps):
        start = time.perf_counter()
        loss_of(model, x, mask, target).backward()
        elapsed += time.perf_counter() - start
        model.zero_grad(set_to_none=True)
    return elapsed / steps


def chain_graph(n: int):
    """graphs/default.json with ``n`` ReLU nodes in series between its input and its first layer."""
    from studio.core.document import Edge, Endpoint, Node

    graph = load_graph(GRAPH)
    first = next(e for e in graph.edges if e.src.node == "bars")
    graph.edges.remove(first)
    previous = Endpoint("bars", "bars")
    for i in range(n):
        node_id = f"chain_{i}"
        graph.nodes[node_id] = Node(node_id, "relu", 1, {"inplace": False}, (0.0, 0.0))
        graph.edges.append(Edge(previous, Endpoint(node_id, "x")))
        previous = Endpoint(node_id, "y")
    graph.edges.append(Edge(previous, first.dst))
    return graph


def validation_seconds_per_node(n: int) -> float:
    from studio.core.validation import validate
    from studio.nodes import default_registry

    graph = chain_graph(n)
    registry = default_registry()
    gc.collect()
    start = time.perf_counter()
    v = validate(graph, registry)
    elapsed = time.perf_counter() - start
    if not v.ok:
        raise SystemExit(f"builder bench: the chain of {n} nodes does not validate: {v.errors[0]}")
    return elapsed / len(graph.nodes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds (default 30)")
    parser.add_argument("--steps", type=int, default=3, help="steps per measurement (default 3)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--dates", type=int, default=1, help="B (default 1)")
    parser.add_argument("--stocks", type=int, default=512, help="N (default 512)")
    parser.add_argument("--chain", type=int, default=100_000, help="nodes of the long chain (default 100000)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    graph = load_graph(GRAPH)
    assert graph.input is not None
    built = build(graph, seed=0).module
    hand = Handwritten()
    try:
        hand.load_state_dict(built.state_dict())
    except RuntimeError as exc:
        print(f"builder bench: the handwritten network does not fit {GRAPH.name}: {exc}", file=sys.stderr)
        return 1

    gen = torch.Generator().manual_seed(0)
    length, features = graph.input.length, len(graph.input.features)
    x = torch.randn(args.dates, args.stocks, length, features, generator=gen)
    mask = torch.rand(args.dates, args.stocks, generator=gen) > 0.05
    target = torch.randn(args.dates, args.stocks, generator=gen)
    print(f"{GRAPH.name}: x {tuple(x.shape)}, {args.threads} thread(s), {args.rounds} rounds of "
          f"{args.steps} steps after {args.warmup} warm-up, forward+backward in training mode")

    problem = check_same(built, hand, x, mask, target)
    if problem is not None:
        print(f"builder bench: built and handwritten do not match: {problem}", file=sys.stderr)
        return 1
    print(f"check: outputs and gradients match to {ATOL} (eval mode)")

    models = {"built": built, "handwritten": hand}
    for _ in range(args.warmup):
        for model in models.values():
            timed_steps(model, x, mask, target, 1)

    times: dict[str, list[float]] = {name: [] for name in models}
    gc.collect()
    gc.disable()
    try:
        for i in range(args.rounds):
            order = list(models) if i % 2 == 0 else list(reversed(models))
            for name in order:
                times[name].append(timed_steps(models[name], x, mask, target, args.steps))
            print(f"round {i + 1:2d}: built {times['built'][-1] * 1e3:7.1f} ms   "
                  f"handwritten {times['handwritten'][-1] * 1e3:7.1f} ms")
    finally:
        gc.enable()

    med = {name: statistics.median(t) for name, t in times.items()}
    ratio = med["built"] / med["handwritten"]
    paired = statistics.median(b / h for b, h in zip(times["built"], times["handwritten"], strict=True))
    print(f"median: built {med['built'] * 1e3:.1f} ms, handwritten {med['handwritten'] * 1e3:.1f} ms; "
          f"ratio of medians {ratio:.3f}, median of paired ratios {paired:.3f}")
    small, large = max(args.chain // 10, 1), args.chain
    per_small, per_large = validation_seconds_per_node(small), validation_seconds_per_node(large)
    print(f"validation: {per_small * 1e3:.3f} ms per node on {small:,} nodes, {per_large * 1e3:.3f} ms per node on "
          f"{large:,} ({per_large * large:.1f} s)")
    print(json.dumps({"built_vs_handwritten": round(ratio, 4), "validate_ms_per_node": round(per_large * 1e3, 4),
                      "validate_per_node_100k_vs_10k": round(per_large / per_small, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
