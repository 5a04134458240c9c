"""The seed's scale out of core: peak memory of building the data, and the cost of a batch at full size.

Each measurement runs in a fresh child process (its peak resident set, VmHWM, is its own) with the cache
in a temporary folder (STUDIO_CACHE_DIR), removed at the end:

1. ratio: the synthetic market of ``--stocks 1000 --days 120 --bars 240`` made into a memory-mapped file
   (``generate_on_disk``) and its normalised features (``CrossSectionData(..., features_file=...)``):
   peak RSS / panel bytes (goal <= 1.5). The baseline, in the same run: the same data built in memory
   (``generate`` + ``CrossSectionData``), and the resident size of a process that only imported them.
2. seed scale (``--seed-scale 5000,500,240``, cut to the days the free disk holds, stated): child A
   builds the data (market and features files); child B, fresh, opens them (mapped, read back, not
   made), produces the batch of one date (every stock x 10 days x 240 bars x 3 features) and trains
   one step of graphs/default.json at 240 bars per day on the CPU (forward, backward, Adam), through
   the training engine. Goals: peak RSS of each child < 12 GB; batch time <= 5 % of the step time.
   Child B also sums the tensors autograd saves in the forward pass (the activation memory of one
   date's whole cross-section) and its bytes per stock.

The last line printed is JSON with every figure. ``--quick`` runs a small seed scale (for a check of the
script itself, not the goals).

    python bench/scale.py [--stocks 1000 --days 120 --bars 240] [--seed-scale 5000,500,240] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import children
from children import peak_rss

ROOT = Path(__file__).resolve().parent.parent
GB = 1 << 30


def market_config(stocks: int, days: int, bars: int):
    from studio.data.synthetic import SyntheticConfig

    return SyntheticConfig(stocks=stocks, days=days, bars_per_day=bars)


# ---- the children ----------------------------------------------------------------------------------------
def child_imports(args) -> dict:
    import studio.data.dataset
    import studio.data.synthetic  # noqa: F401

    return {"peak_rss": peak_rss()}


def child_build(args) -> dict:
    from studio.data.dataset import CrossSectionData, DataConfig, features_cache_file
    from studio.data.synthetic import generate, generate_on_disk

    config = market_config(args.stocks, args.days, args.bars)
    data_config = DataConfig(days=10)
    started = time.perf_counter()
    if args.in_memory:
        market = generate(config)
        made = time.perf_counter()
        data = CrossSectionData(market.panel, data_config)
    else:
        market = generate_on_disk(config)
        made = time.perf_counter()
        data = CrossSectionData(market.panel, data_config,
                                features_file=features_cache_file(market.panel, data_config))
    done = time.perf_counter()
    return {"peak_rss": peak_rss(), "panel_bytes": int(market.panel.values.nbytes),
            "market_s": made - started, "features_s": done - made, "usable_dates": len(data.usable),
            "oracle_ic": float(market.oracle_ic(None, 1, 1))}


def child_step(args) -> dict:
    import numpy as np
    import torch

    from studio.core.document import InputSpec
    from studio.core.graph_file import load_graph
    from studio.train.config import SourceSpec, TrainConfig
    from studio.train.engine import Trainer

    graph = load_graph(ROOT / "graphs" / "default.json")
    graph.input = InputSpec(bars_per_day=args.bars, days=graph.input.days, features=list(graph.input.features))
    source = SourceSpec(synthetic={"stocks": args.stocks, "days": args.days, "bars_per_day": args.bars})
    trainer = Trainer(graph, source, TrainConfig(dates_per_batch=1, threads=os.cpu_count() or 1, device="cpu"))
    torch.set_num_threads(os.cpu_count() or 1)
    opened = time.perf_counter()
    trainer._prepare()  # the market and features files of the build child: opened, not made
    prepared = time.perf_counter() - opened
    data = trainer.data
    dates = data.splits.train
    batch_times = []
    for d in dates[np.linspace(0, len(dates) - 1, 3).round().astype(int)]:
        t = time.perf_counter()
        batch = data.batch([int(d)])
        x, mask, label, has_label = trainer._tensors(batch)
        batch_times.append(time.perf_counter() - t)
    saved: dict[int, int] = {}

    def pack(tensor):
        saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    trainer.model.train()
    steps = []
    for i in range(2):  # the first pays for allocations; the second is the step
        t = time.perf_counter()
        if i == 1:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
                scores = trainer.model(x, mask).float()
        else:
            scores = trainer.model(x, mask).float()
        loss = trainer.loss_fn(scores, label, has_label)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        steps.append(time.perf_counter() - t)
    stocks = int(batch.mask.shape[1])
    return {"peak_rss": peak_rss(), "open_s": prepared, "batch_s": sorted(batch_times)[1], "step_s": steps[1],
            "first_step_s": steps[0], "activation_bytes": int(sum(saved.values())),
            "activation_bytes_per_stock": int(sum(saved.values()) // stocks), "stocks": stocks,
            "window": list(batch.x.shape[1:]), "loss": float(loss)}


CHILDREN = {"imports": child_imports, "build": child_build, "step": child_step}


def run_child(phase: str, cache: Path, stocks: int, days: int, bars: int, in_memory: bool = False) -> dict:
    return children.run_child(__file__, phase, ["--stocks", str(stocks), "--days", str(days), "--bars", str(bars),
                                                *(["--in-memory"] if in_memory else [])],
                              {"STUDIO_CACHE_DIR": str(cache)})


def days_the_disk_holds(folder: Path, stocks: int, days: int, bars: int) -> int:
    """The most days (<= days) whose bars and features files (two float32 arrays of 3 features) fit in
    the free space of ``folder`` with 20 % to spare."""
    free = shutil.disk_usage(folder).free * 0.8
    per_day = 2 * stocks * bars * 3 * 4
    return int(min(days, free // per_day))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stocks", type=int, default=1000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--bars", type=int, default=240)
    parser.add_argument("--seed-scale", default="5000,500,240", help="STOCKS,DAYS,BARS of the full-scale run")
    parser.add_argument("--quick", action="store_true", help="a small seed scale: checks the script only")
    parser.add_argument("--folder", default=None, help="where the temporary cache goes (default: system temp)")
    parser.add_argument("--phase", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--in-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(CHILDREN[args.phase](args)))
        return

    base = Path(tempfile.mkdtemp(prefix="studio-scale-", dir=args.folder))
    try:
        figures: dict = {}
        imports = run_child("imports", base / "c0", 2, 2, 1)
        on_disk = run_child("build", base / "c1", args.stocks, args.days, args.bars)
        in_memory = run_child("build", base / "c2", args.stocks, args.days, args.bars, in_memory=True)
        shutil.rmtree(base / "c1", ignore_errors=True)
        panel = on_disk["panel_bytes"]
        figures["ratio_scale"] = [args.stocks, args.days, args.bars]
        figures["panel_mb"] = round(panel / 2**20, 1)
        figures["peak_rss_over_panel"] = round(on_disk["peak_rss"] / panel, 3)
        figures["in_memory_peak_rss_over_panel"] = round(in_memory["peak_rss"] / panel, 3)
        figures["imports_rss_over_panel"] = round(imports["peak_rss"] / panel, 3)
        figures["on_disk_vs_in_memory_peak"] = round(on_disk["peak_rss"] / in_memory["peak_rss"], 3)
        figures["build_s_on_disk_vs_in_memory"] = round(
            (on_disk["market_s"] + on_disk["features_s"]) / (in_memory["market_s"] + in_memory["features_s"]), 3)
        print(f"{args.stocks} x {args.days} x {args.bars}: panel {panel / 2**20:.0f} MB; peak RSS on disk "
              f"{on_disk['peak_rss'] / 2**20:.0f} MB ({figures['peak_rss_over_panel']}x panel), in memory "
              f"{in_memory['peak_rss'] / 2**20:.0f} MB ({figures['in_memory_peak_rss_over_panel']}x), imports "
              f"alone {imports['peak_rss'] / 2**20:.0f} MB", flush=True)

        s, d, p = (int(v) for v in ("120,30,240" if args.quick else args.seed_scale).split(","))
        fits = days_the_disk_holds(base, s, d, p)
        if fits < 30:
            raise SystemExit(f"bench/scale.py: the disk at {base} holds only {fits} days of {s} stocks x {p} bars")
        figures["seed_scale"] = [s, fits, p]
        figures["seed_scale_cut_by_disk"] = fits < d
        build = run_child("build", base / "c3", s, fits, p)
        print(f"{s} x {fits} x {p}: panel {build['panel_bytes'] / GB:.2f} GB made in {build['market_s']:.0f} s, "
              f"features in {build['features_s']:.0f} s, peak RSS {build['peak_rss'] / GB:.2f} GB", flush=True)
        step = run_child("step", base / "c3", s, fits, p)
        figures["seed_build_peak_rss_gb"] = round(build["peak_rss"] / GB, 2)
        figures["seed_step_peak_rss_gb"] = round(step["peak_rss"] / GB, 2)
        figures["seed_peak_rss_under_12gb"] = max(build["peak_rss"], step["peak_rss"]) < 12 * GB
        figures["seed_build_s"] = round(build["market_s"] + build["features_s"], 1)
        figures["seed_open_s"] = round(step["open_s"], 2)
        figures["batch_s"] = round(step["batch_s"], 4)
        figures["step_s"] = round(step["step_s"], 3)
        figures["batch_over_step"] = round(step["batch_s"] / step["step_s"], 4)
        figures["activation_gb_per_date"] = round(step["activation_bytes"] / GB, 3)
        figures["activation_mb_per_stock"] = round(step["activation_bytes_per_stock"] / 2**20, 3)
        figures["window"] = step["window"]
        print(f"one date's batch {step['batch_s'] * 1000:.0f} ms vs a training step {step['step_s']:.1f} s "
              f"({figures['batch_over_step']:.2%}); activations {figures['activation_gb_per_date']} GB per "
              f"date ({figures['activation_mb_per_stock']} MB per stock); peak RSS of the step "
              f"{figures['seed_step_peak_rss_gb']} GB", flush=True)
        figures["goals_met"] = (figures["peak_rss_over_panel"] <= 1.5 and figures["seed_peak_rss_under_12gb"]
                                and figures["batch_over_step"] <= 0.05)
        print(json.dumps(figures))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
