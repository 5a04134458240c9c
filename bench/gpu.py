"""The GPU path, bounded (<= 8 minutes): the engine's training step on CUDA against a hand-written loop.

On a machine without CUDA it prints so, prints ``{"cuda": false}`` and exits 0.

For graphs/default.json at 24 and at 240 bars per day (synthetic markets of ``--stocks`` stocks;
``--dates-per-batch`` dates a batch):

- engine: ``Trainer.run`` for one epoch (its own feed: features resident on the device when they fit,
  else prefetched into pinned memory; the loss read back every 16 steps); step time from its step
  records, after the first burst (cuDNN benchmarking, allocations);
- hand: the same model (same weights) and the same batches in a plain PyTorch loop written here:
  features, masks and labels as device tensors, windows sliced, forward, IC loss, backward, clipping,
  Adam; ``torch.cuda.synchronize`` only at the end. Goal: engine / hand <= 1.05;
- GPU utilisation during the engine's epoch (``torch.cuda.utilization``, else ``nvidia-smi``), and the
  bytes the engine copied from the host per step;
- ``--amp``: the engine's bf16 autocast step time too.

Then bench/cells.py on CUDA (fused GRU cell vs per-gate vs cuDNN nn.GRU), and the default model under
``torch.compile`` (compile time, compiled step / eager step). The last line is JSON with every figure.

    python bench/gpu.py [--stocks 1000] [--days 400] [--dates-per-batch 4] [--skip-cells] [--skip-compile]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 8 * 60


def utilisation_sampler(device: torch.device):
    """A thread sampling the device's utilisation (%) every 0.2 s; returns (start, stop -> mean)."""
    samples: list[float] = []
    stop = threading.Event()

    def read() -> float | None:
        try:
            return float(torch.cuda.utilization(device))
        except Exception:  # no pynvml: ask nvidia-smi (fixed arguments, no user text)
            smi = shutil.which("nvidia-smi")
            if smi is None:
                return None
            out = subprocess.run([smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                  "-i", str(device.index or 0)], capture_output=True, text=True, timeout=5)
            try:
                return float(out.stdout.strip().splitlines()[0])
            except (ValueError, IndexError):
                return None

    def loop() -> None:
        while not stop.wait(0.2):
            value = read()
            if value is not None:
                samples.append(value)

    worker = threading.Thread(target=loop, daemon=True)

    def finish() -> float | None:
        stop.set()
        worker.join()
        return round(sum(samples) / len(samples), 1) if samples else None

    return worker.start, finish


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def graph_at(bars: int):
    from studio.core.document import InputSpec
    from studio.core.graph_file import load_graph

    graph = load_graph(ROOT / "graphs" / "default.json")
    graph.input = InputSpec(bars_per_day=bars, days=graph.input.days, features=list(graph.input.features))
    return graph


def engine_step(bars: int, args, amp: bool = False) -> dict:
    from studio.train.config import SourceSpec, TrainConfig
    from studio.train.engine import Trainer

    source = SourceSpec(synthetic={"stocks": args.stocks, "days": args.days, "bars_per_day": bars})
    config = TrainConfig(epochs=1, dates_per_batch=args.dates_per_batch, device=args.device, amp=amp, patience=0)
    trainer = Trainer(graph_at(bars), source, config)
    start, finish = utilisation_sampler(torch.device(args.device))
    marks: list[tuple[int, float]] = []
    first_record = None
    for record in trainer.run():
        if record["kind"] == "start":
            first_record = record
            start()
        elif record["kind"] == "step":
            marks.append((record["step"], time.perf_counter()))
        elif record["kind"] == "epoch":
            break
    utilisation = finish()
    burst = trainer.sync_every
    timed = [m for m in marks if m[0] > burst]  # after the first burst
    if len(timed) < 2:
        raise SystemExit("bench/gpu.py: too few steps to time; raise --days")
    # records of a burst arrive together: time from the end of the first timed burst to the last one
    ends = [m for i, m in enumerate(timed) if i + 1 == len(timed) or timed[i + 1][1] - m[1] > 1e-4]
    (s0, t0), (s1, t1) = ends[0], ends[-1]
    step_s = (t1 - t0) / max(s1 - s0, 1)
    return {"step_s": step_s, "steps": len(marks), "gpu_utilisation": utilisation, "feed": first_record["feed"],
            "h2d_bytes_per_step": trainer.feed.stats.bytes_per_batch, "trainer": trainer}


def hand_step(trainer, args, steps: int) -> float:
    """The same model and data in a plain loop; seconds per step."""
    from studio.torchgraph.builder import build_model
    from studio.train.losses import ic_loss

    data, device = trainer.data, torch.device(args.device)
    model = build_model(trainer.graph, trainer.registry).to(device)
    model.load_state_dict(trainer.model.state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=trainer.config.lr)
    features = torch.from_numpy(np.asarray(data.features)).to(device)
    mask = torch.from_numpy(data.mask).to(device)
    label = torch.from_numpy(np.where(data.has_label, data.label, 0.0).astype(np.float32)).to(device)
    has_label = torch.from_numpy(data.has_label).to(device)
    p, length = data.panel.bars_per_day, data.window_length
    dates = np.array(data.splits.train)
    per = args.dates_per_batch
    model.train()

    def step(i: int) -> None:
        chosen = dates[(i * per) % max(len(dates) - per, 1):][:per]
        idx = torch.from_numpy(chosen).to(device)
        x = torch.stack([features[:, (int(d) + 1) * p - length:(int(d) + 1) * p] for d in chosen])
        m = mask[idx]
        x = torch.where(m[:, :, None, None], x, torch.zeros((), device=device))
        loss = ic_loss(model(x, m).float(), label[idx], has_label[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for i in range(3):
        step(i)
    sync(device)
    started = time.perf_counter()
    for i in range(steps):
        step(i)
    sync(device)
    return (time.perf_counter() - started) / steps


def compiled_vs_eager(trainer, args) -> dict:
    from studio.train.losses import ic_loss

    device = torch.device(args.device)
    model = trainer.model
    batches = list(trainer.feed.batches(np.array(trainer.data.splits.train[:4 * args.dates_per_batch]),
                                        args.dates_per_batch))

    def time_steps(fn, n=10) -> float:
        sync(device)
        t = time.perf_counter()
        for i in range(n):
            x, m, y, h = batches[i % len(batches)]
            ic_loss(fn(x, m).float(), y, h).backward()
        sync(device)
        return (time.perf_counter() - t) / n

    eager = time_steps(model)
    compiled = torch.compile(model)
    t = time.perf_counter()
    x, m, y, h = batches[0]
    ic_loss(compiled(x, m).float(), y, h).backward()
    sync(device)
    compile_s = time.perf_counter() - t
    return {"compile_s": round(compile_s, 1), "compiled_over_eager": round(time_steps(compiled) / eager, 3),
            "eager_step_s": round(eager, 4), "device": str(device)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stocks", type=int, default=1000)
    parser.add_argument("--days", type=int, default=400, help="enough for 50+ steps an epoch (16 a read)")
    parser.add_argument("--dates-per-batch", type=int, default=4)
    parser.add_argument("--hand-steps", type=int, default=30)
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--skip-cells", action="store_true")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--device", default="cuda", help="cuda (cpu: runs the script's code paths, for its test)")
    args = parser.parse_args()
    if args.device != "cpu" and not torch.cuda.is_available():
        print(f"bench/gpu.py: no CUDA device is available to torch {torch.__version__}; nothing to measure")
        print(json.dumps({"cuda": False}))
        return 0
    began = time.perf_counter()
    name = torch.cuda.get_device_name(0) if args.device != "cpu" else "cpu"
    figures: dict = {"cuda": args.device != "cpu", "device": name, "torch": torch.__version__,
                     "stocks": args.stocks, "dates_per_batch": args.dates_per_batch}
    for bars in (24, 240):
        engine = engine_step(bars, args)
        hand = hand_step(engine["trainer"], args, args.hand_steps)
        key = f"bars{bars}"
        figures[f"{key}_engine_step_ms"] = round(engine["step_s"] * 1000, 2)
        figures[f"{key}_hand_step_ms"] = round(hand * 1000, 2)
        figures[f"{key}_engine_over_hand"] = round(engine["step_s"] / hand, 3)
        figures[f"{key}_gpu_utilisation"] = engine["gpu_utilisation"]
        figures[f"{key}_h2d_bytes_per_step"] = int(engine["h2d_bytes_per_step"])
        figures[f"{key}_feed"] = engine["feed"]
        if args.amp:
            figures[f"{key}_amp_step_ms"] = round(engine_step(bars, args, amp=True)["step_s"] * 1000, 2)
        if bars == 240 and not args.skip_compile and time.perf_counter() - began < DEADLINE_S * 0.5:
            try:
                figures.update({f"compile_{k}": v for k, v in compiled_vs_eager(engine["trainer"], args).items()})
            except Exception as exc:  # a compiler missing on the machine is a figure, not a crash
                figures["compile_failed"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        print(f"{bars} bars: engine {figures[f'{key}_engine_step_ms']} ms/step, hand {figures[f'{key}_hand_step_ms']} "
              f"ms ({figures[f'{key}_engine_over_hand']}x), GPU {figures[f'{key}_gpu_utilisation']} %, "
              f"{figures[f'{key}_h2d_bytes_per_step']:,} bytes from the host per step ({engine['feed']})", flush=True)
    left = DEADLINE_S - (time.perf_counter() - began)
    if not args.skip_cells and left > 60 and args.device != "cpu":
        try:
            out = subprocess.run([sys.executable, str(ROOT / "bench" / "cells.py"), "--device", "cuda", "--rounds", "5",
                                  "--stocks", "2048", "--steps", "240"], capture_output=True, text=True,
                                 timeout=left - 20)
            figures["cells"] = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {
                "failed": out.stderr.strip().splitlines()[-1:]}
        except (subprocess.TimeoutExpired, ValueError, IndexError) as exc:
            figures["cells"] = {"failed": type(exc).__name__}
    figures["seconds"] = round(time.perf_counter() - began, 1)
    ratios = [figures[f"bars{b}_engine_over_hand"] for b in (24, 240)]
    figures["goal_engine_over_hand_met"] = all(math.isfinite(r) and r <= 1.05 for r in ratios)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
