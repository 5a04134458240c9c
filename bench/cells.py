"""The seed's fused cells, forward + backward: T=240 steps, 512 stocks, 3 features, hidden 64.

Paired, interleaved runs in one process (medians over rounds, alternating the order):
- r1 fused_vs_nn_gru: the fused GRU cell (linear gate layers) / torch.nn.GRU;
- r2 fused_vs_per_gate: the fused GRU cell / the same GRU with one layer per gate (r, z, n each with
  its own weight; x parts also precomputed, so only the fusion differs);
- r3 cross_section_vs_linear: the GRU cell with both gate layers across stocks (kernel 3) / linear;
- r4 pointwise_vs_linear: pointwise gate layers / linear;
- r5 compiled_steps_vs_fused: the fused GRU cell with its step's pointwise update compiled by
  torch.compile (studio.modules.cells.compile_cell_steps, `--compile-steps` in training) / eager;
  its compile time (the first forward + backward, less an eager one) is stated as compile_steps_s.
  ``--skip-compile`` leaves it out.
Before timing, the fused cell with torch's weights must equal nn.GRU, and the per-gate GRU with the
fused cell's weights must equal the fused cell (1e-5); otherwise the script exits with status 1.
The last line is JSON: {"fused_vs_nn_gru": r1, "fused_vs_per_gate": r2, "cross_section_vs_linear": r3,
"pointwise_vs_linear": r4, "compiled_steps_vs_fused": r5,
"compile_steps_s": seconds} (time ratios A/B: below 1 means A is faster).

    python bench/cells.py [--threads 1] [--rounds 7] [--device cpu|cuda] [--stocks 512] [--steps 240] [--skip-compile]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time

import torch
from torch import nn

from studio.modules.cells import Cell, compile_cell_steps, load_torch_rnn


class PerGateGRU(nn.Module):
    """GRU with a separate weight for each gate (the layout the seed's fusion replaces)."""

    def __init__(self, cell: Cell) -> None:
        super().__init__()
        gates = cell.layers[0][0].gates
        hidden = cell.layers[0][0].hidden_size
        w1, w2 = gates[0].weight.detach(), gates[1].weight.detach()
        self.hidden = hidden
        self.w = nn.ParameterList([nn.Parameter(w1[:hidden].clone()), nn.Parameter(w1[hidden:].clone()),
                                   nn.Parameter(w2.clone())])
        self.b = nn.ParameterList([nn.Parameter(gates[0].bias.detach()[:hidden].clone()),
                                   nn.Parameter(gates[0].bias.detach()[hidden:].clone()),
                                   nn.Parameter(gates[1].bias.detach().clone()),
                                   nn.Parameter(gates[1].state_bias.detach().clone())])

    def forward(self, x, mask=None):
        batch, stocks, steps, channels = x.shape
        seq = x.reshape(batch * stocks, steps, channels).transpose(0, 1)
        wr, wz, wn = self.w
        br, bz, bn, bnh = self.b
        gr = (torch.matmul(seq, wr[:, :channels].t()) + br).unbind(0)
        gz = (torch.matmul(seq, wz[:, :channels].t()) + bz).unbind(0)
        gn = (torch.matmul(seq, wn[:, :channels].t()) + bn).unbind(0)
        hr, hz, hn = wr[:, channels:].t(), wz[:, channels:].t(), wn[:, channels:].t()
        h = seq.new_zeros(seq.shape[1], self.hidden)
        outputs = []
        for xr, xz, xn in zip(gr, gz, gn, strict=True):
            r = torch.sigmoid(xr + h @ hr)
            z = torch.sigmoid(xz + h @ hz)
            n = torch.tanh(xn + r * torch.addmm(bnh, h, hn))
            h = torch.lerp(n, h, z)
            outputs.append(h)
        return torch.stack(outputs).transpose(0, 1).reshape(batch, stocks, steps, -1)


def gru_cell(mode: str, features: int, hidden: int) -> Cell:
    return Cell("gru", features, [{"hidden_size": hidden, "gates": [
        {"mode": mode, "kernel_size": 3, "dilation": 1, "padding_mode": "zeros"}] * 2}])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--stocks", type=int, default=512)
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--skip-compile", action="store_true", help="leave out the compiled step (r5)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    features, hidden = 3, args.hidden
    x = torch.randn(1, args.stocks, args.steps, features, device=device)
    mask = torch.ones(1, args.stocks, dtype=torch.bool, device=device)

    reference = nn.GRU(features, hidden, batch_first=True).to(device)
    fused = gru_cell("linear", features, hidden)
    load_torch_rnn(fused, reference.cpu())
    reference.to(device)
    fused.to(device)
    per_gate = PerGateGRU(fused).to(device)
    cross = gru_cell("cross_section", features, hidden).to(device)
    pointwise = gru_cell("pointwise", features, hidden).to(device)

    with torch.no_grad():
        ours = fused(x, mask)
        theirs = reference(x.reshape(args.stocks, args.steps, features))[0].reshape_as(ours)
        if (ours - theirs).abs().max() > 1e-5 or (per_gate(x, mask) - ours).abs().max() > 1e-5:
            print("the fused cell differs from nn.GRU or the per-gate GRU: not timing", file=sys.stderr)
            return 1

    def step(model) -> float:
        for p in model.parameters():
            p.grad = None
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        flat = x.reshape(args.stocks, args.steps, features)
        out = model(flat)[0] if model is reference else model(x, mask)
        out.square().mean().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    models = {"nn.GRU": reference, "fused": fused, "per_gate": per_gate, "cross_section": cross,
              "pointwise": pointwise}
    compile_s = None
    if not args.skip_compile:
        compiled = copy.deepcopy(fused)
        compile_cell_steps(compiled)
        eager_first = step(fused)
        compile_s = step(compiled) - eager_first
        with torch.no_grad():
            if (compiled(x, mask) - ours).abs().max() > 1e-5:
                print("the compiled steps differ from the eager cell: not timing", file=sys.stderr)
                return 1
        models["compiled_steps"] = compiled
    for model in models.values():  # warm-up
        step(model)
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            times[name].append(step(models[name]))
        print("round", r + 1, "  ".join(f"{n} {times[n][-1] * 1e3:.0f} ms" for n in names))
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"medians ({args.device}, {args.threads} thread(s)): "
          + ", ".join(f"{n} {t * 1e3:.0f} ms" for n, t in med.items()))
    print(json.dumps({
        "fused_vs_nn_gru": round(med["fused"] / med["nn.GRU"], 3),
        "fused_vs_per_gate": round(med["fused"] / med["per_gate"], 3),
        "cross_section_vs_linear": round(med["cross_section"] / med["fused"], 3),
        "pointwise_vs_linear": round(med["pointwise"] / med["fused"], 3),
        **({} if compile_s is None else {"compiled_steps_vs_fused": round(med["compiled_steps"] / med["fused"], 3),
                                         "compile_steps_s": round(compile_s, 1)}),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
