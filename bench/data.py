"""Data pipeline timings: importing the real US 5-minute bars (../shared/data/us_stocks_5min), cold and
from the Parquet cache.

- cold: ``load_bars`` with a fresh, empty cache folder (read the 64 gzipped CSVs, apply the policies,
  write the cache); the median of ``--cold-runs`` runs, each with its own new folder. The first run
  also pays for lazy imports; it is printed but part of the median like the others.
- cached: ``load_bars`` again on the same files and settings (stat the files, read the Parquet cache);
  the median of ``--cached-runs`` runs.

Goals on the 2-core development machine: cold <= 3 s, cached <= 0.3 s. The cache folders are temporary
(STUDIO_CACHE_DIR is pointed at them during the runs); the user's cache is not touched.
The last line printed is JSON: {"import_cold_s": ..., "import_cached_s": ..., "batch_share": null}

    python bench/data.py [--source DIR] [--cold-runs 3] [--cached-runs 5]
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

from studio.data.importer import DataError, import_bars

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=US_BARS, help="folder or file of bars to import")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--cached-runs", type=int, default=5)
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
    print(json.dumps({"import_cold_s": round(figures["import_cold_s"], 4),
                      "import_cached_s": round(figures["import_cached_s"], 4),
                      "batch_share": None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
