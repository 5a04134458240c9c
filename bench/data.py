"""Data pipeline timings: importing the real US 5-minute bars (../shared/data/us_stocks_5min), cold and
from the Parquet cache, and the share of a training step spent producing its batch.

- cold: ``load_bars`` with a fresh, empty cache folder (read the 64 gzipped CSVs, apply the policies,
  write the cache); the median of ``--cold-runs`` runs, each with its own new folder. The first run
  also pays for lazy imports; it is printed but part of the median like the others.
- cached: ``load_bars`` again on the same files and settings (stat the files, read the Parquet cache);
  the median of ``--cached-runs`` runs.

- batch share: on the default synthetic market, training steps of graphs/default.json (forward,
  backward, Adam step; ``--dates-per-batch`` dates a batch, torch on 2 threads): the time to produce
  the batch (windows copied into one array, mask and labels, handed to torch) over the whole step,
  summed over ``--steps`` steps after a warm-up.

Goals on the 2-core development machine: cold <= 3 s, cached <= 0.3 s, batch share <= 0.05. The cache
folders are temporary (STUDIO_CACHE_DIR is pointed at them during the runs); the user's cache is not
touched. The last line printed is JSON: {"import_cold_s": ..., "import_cached_s": ..., "batch_share": ...}

    python bench/data.py [--source DIR] [--cold-runs 3] [--cached-runs 5] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from studio.data.importer import DataError
from studio.data.load import import_bars

ROOT = Path(__file__).resolve().parent.parent
US_BARS = ROOT.parent / "shared" / "data" / "us_stocks_5min"


@contextmanager
def cache_dir(folder: str):
    """STUDIO_CACHE_DIR pointed at ``folder`` for the duration."""
    before = os.environ.get("STUDIO_CACHE_DIR")
    os.environ["STUDIO_CACHE_DIR"] = folder
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("STUDIO_CACHE_DIR", None)
        else:
            os.environ["STUDIO_CACHE_DIR"] = before


def measure_import(source: Path = US_BARS, cold_runs: int = 3, cached_runs: int = 5,
                   report=print) -> dict[str, float]:
    """Median seconds of a cold import (fresh empty cache) and of a load served from the cache."""
    cold: list[float] = []
    cached: list[float] = []
    panel = None
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as root:
        for i in range(cold_runs):
            with cache_dir(os.path.join(root, f"cold-{i}")):
                t0 = time.perf_counter()
                result = import_bars(source)
                cold.append(time.perf_counter() - t0)
                if result.from_cache:
                    raise RuntimeError("a cold import was served from the cache")
                panel = result.panel
                report(f"cold run {i + 1}: {cold[-1]:.3f} s")
        with cache_dir(os.path.join(root, f"cold-{cold_runs - 1}")):
            for i in range(cached_runs):
                t0 = time.perf_counter()
                result = import_bars(source)
                cached.append(time.perf_counter() - t0)
                if not result.from_cache:
                    raise RuntimeError("a second import was not served from the cache")
                report(f"cached run {i + 1}: {cached[-1] * 1e3:.1f} ms")
    if panel is not None:
        report(f"panel: {panel.n_symbols} symbols x {panel.n_days} dates x {panel.bars_per_day} bars x "
               f"{len(panel.features)} features ({panel.values.nbytes / 2**20:.1f} MiB float32)")
    return {"import_cold_s": statistics.median(cold), "import_cached_s": statistics.median(cached)}


def measure_batch_share(steps: int = 30, dates_per_batch: int = 4, report=print) -> float:
    """Share of a training step of the default graph spent producing its batch."""
    import numpy as np
    import torch

    from studio.core.graph_file import load_graph
    from studio.data.dataset import CrossSectionData, DataConfig
    from studio.data.synthetic import SyntheticConfig, generate
    from studio.torchgraph.builder import build_model

    torch.set_num_threads(2)
    data = CrossSectionData(generate(SyntheticConfig()).panel, DataConfig())
    model = build_model(load_graph(ROOT / "graphs" / "default.json"), seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    producing = total = 0.0
    for step in range(steps + 3):
        dates = rng.choice(data.splits.train, size=dates_per_batch, replace=False)
        t0 = time.perf_counter()
        batch = data.batch(dates)
        x, mask = torch.from_numpy(batch.x), torch.from_numpy(batch.mask)
        label, weight = torch.from_numpy(batch.label), torch.from_numpy(batch.has_label)
        t1 = time.perf_counter()
        scores = model(x, mask)
        loss = ((scores - label) ** 2 * weight).sum() / weight.sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        t2 = time.perf_counter()
        if step >= 3:  # after warm-up
            producing += t1 - t0
            total += t2 - t0
    report(f"batch share: {producing * 1e3 / steps:.1f} ms of {total * 1e3 / steps:.1f} ms per step "
           f"({dates_per_batch} dates x {data.panel.n_symbols} stocks x {data.window_length} bars)")
    return producing / total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=US_BARS, help="folder or file of bars to import")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--cached-runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30, help="training steps timed for the batch share")
    parser.add_argument("--dates-per-batch", type=int, default=4)
    args = parser.parse_args(argv)
    if args.cold_runs < 1 or args.cached_runs < 1:
        parser.error("--cold-runs and --cached-runs must be at least 1")
    print(f"import of {args.source} ({os.cpu_count()} CPU cores)")
    try:
        figures = measure_import(args.source, args.cold_runs, args.cached_runs)
    except DataError as exc:
        print(f"data bench: {exc}", file=sys.stderr)
        return 2
    print(f"median: cold {figures['import_cold_s']:.3f} s (goal <= 3 s), "
          f"cached {figures['import_cached_s'] * 1e3:.1f} ms (goal <= 300 ms)")
    share = measure_batch_share(args.steps, args.dates_per_batch)
    print(json.dumps({"import_cold_s": round(figures["import_cold_s"], 4),
                      "import_cached_s": round(figures["import_cached_s"], 4),
                      "batch_share": round(share, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
