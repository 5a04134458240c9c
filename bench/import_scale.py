"""Importing a folder larger than memory: peak memory and time of the importer's two paths on the same files.

The script writes a folder of minute bars as CSV (``--stocks 600 --days 60 --bars 240``: one file per
stock with datetime, close, volume and turnover, a few suspensions and half-filled days in it; or, with
``--long``, one long file with a symbol column, which the on-disk path reads by batches), then imports it
twice, each in a fresh child process (its peak resident set, VmHWM, is its own) with its own empty
cache:

- in memory (``STUDIO_ON_DISK_ABOVE_MB`` large: every row held at once, the baseline);
- on disk (``STUDIO_ON_DISK_ABOVE_MB=0``: rows sorted into buckets of symbols on disk, the policies
  applied a bucket at a time, the panel written into a mapped file; studio.data.import_chunked).

and a third child that only imports the modules (the floor). Figures, as ratios in the JSON last line:
peak RSS on disk / in memory (goal < 0.5 at the default size: the on-disk path does not hold the rows),
peak RSS of each path / the bytes of the rows as arrays, time on disk / in memory, and whether the two
panels are the same bits (sha256 of values and traded, and the notes).

    python bench/import_scale.py [--stocks 600 --days 60 --bars 240] [--long] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import children
from children import peak_rss

ROOT = Path(__file__).resolve().parent.parent
GB = 1 << 30


def write_folder(folder: Path, stocks: int, days: int, bars: int, long: bool) -> dict:
    """Minute bars of ``stocks`` over ``days`` trading days (09:31 .. on a 1-minute grid)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(7)
    folder.mkdir(parents=True)
    dates = np.busday_offset(np.datetime64("2024-01-02"), np.arange(days), roll="forward")
    minutes = np.arange(bars) + 9 * 60 + 31
    stamps = (dates.astype("datetime64[m]")[:, None] + minutes[None, :].astype("timedelta64[m]")).ravel()
    rows = 0
    tables = []
    for s in range(stocks):
        steps = rng.standard_t(4, size=len(stamps)).astype(np.float64) * 1e-3
        close = np.round(10 * (1 + s % 50) * np.exp(np.cumsum(steps)), 3)
        volume = rng.integers(0, 5000, size=len(stamps)).astype(np.float64) * 100
        keep = np.ones(len(stamps), bool)
        if s % 17 == 3:  # a suspension of three days
            keep[(days // 3) * bars:(days // 3 + 3) * bars] = False
        if s % 23 == 5:  # a day with a third of its bars
            keep[(days // 2) * bars + bars // 3:(days // 2 + 1) * bars] = False
        table = pa.table({"datetime": pa.array(stamps[keep].astype("datetime64[s]").astype(str)),
                          "close": close[keep], "volume": volume[keep],
                          "turnover": np.round(close[keep] * volume[keep], 2)})
        rows += table.num_rows
        if long:
            tables.append(table.add_column(0, "symbol", pa.array([f"S{s:05d}"] * table.num_rows)))
        else:
            pcsv.write_csv(table, folder / f"S{s:05d}_1min.csv")
    if long:
        pcsv.write_csv(pa.concat_tables(tables), folder / "bars.csv")
    size = sum(f.stat().st_size for f in folder.iterdir())
    return {"rows": rows, "csv_bytes": size}


def child_import(folder: Path) -> dict:
    import numpy as np

    from studio.data import store
    from studio.data.load import import_bars

    t = time.perf_counter()
    result = import_bars(folder)
    seconds = time.perf_counter() - t
    panel = result.panel
    return {"peak_rss": peak_rss(), "seconds": seconds, "mapped": store.mapping(panel.values) is not None,
            "panel_bytes": int(panel.values.nbytes), "values_sha256": store.digest(panel.values),
            "traded_sha256": hashlib.sha256(np.packbits(panel.traded).tobytes()).hexdigest(),
            "notes_sha256": hashlib.sha256(json.dumps([panel.notes, panel.counts]).encode()).hexdigest(),
            "shape": list(panel.values.shape)}


def child_floor(_folder: Path) -> dict:
    import pandas  # noqa: F401
    import pyarrow.csv  # noqa: F401

    import studio.data.import_chunked
    import studio.data.importer  # noqa: F401

    return {"peak_rss": peak_rss()}


CHILDREN = {"import": child_import, "floor": child_floor}


def run_child(phase: str, folder: Path, cache: Path, on_disk_above_mb: str) -> dict:
    return children.run_child(__file__, phase, ["--data", str(folder)],
                              {"STUDIO_CACHE_DIR": str(cache), "STUDIO_ON_DISK_ABOVE_MB": on_disk_above_mb})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stocks", type=int, default=600)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--bars", type=int, default=240)
    parser.add_argument("--long", action="store_true", help="one long file with a symbol column")
    parser.add_argument("--quick", action="store_true", help="40 stocks x 10 days: checks the script only")
    parser.add_argument("--folder", default=None, help="where the temporary files go (default: system temp)")
    parser.add_argument("--phase", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(CHILDREN[args.phase](Path(args.data))))
        return
    if args.quick:
        args.stocks, args.days = 40, 10
    base = Path(tempfile.mkdtemp(prefix="studio-import-scale-", dir=args.folder))
    try:
        t = time.perf_counter()
        written = write_folder(base / "bars", args.stocks, args.days, args.bars, args.long)
        print(f"{args.stocks} stocks x {args.days} days x {args.bars} bars: {written['rows']:,} rows, "
              f"{written['csv_bytes'] / 2**20:.0f} MB of CSV written in {time.perf_counter() - t:.0f} s", flush=True)
        floor = run_child("floor", base / "bars", base / "c0", "1e9")
        memory = run_child("import", base / "bars", base / "c1", "1e9")
        shutil.rmtree(base / "c1", ignore_errors=True)
        disk = run_child("import", base / "bars", base / "c2", "0")
        if memory["mapped"] or not disk["mapped"]:
            raise SystemExit("bench/import_scale.py: the children did not take the paths they were meant to")
        row_bytes = written["rows"] * 64  # symbol, time and six values of 8 bytes each, as arrays
        figures = {
            "scale": [args.stocks, args.days, args.bars], "long_file": args.long, "rows": written["rows"],
            "csv_mb": round(written["csv_bytes"] / 2**20, 1), "panel_mb": round(disk["panel_bytes"] / 2**20, 1),
            "in_memory_peak_mb": round(memory["peak_rss"] / 2**20), "on_disk_peak_mb": round(disk["peak_rss"] / 2**20),
            "floor_peak_mb": round(floor["peak_rss"] / 2**20),
            "on_disk_vs_in_memory_peak": round(disk["peak_rss"] / memory["peak_rss"], 3),
            "in_memory_peak_over_rows": round(memory["peak_rss"] / row_bytes, 3),
            "on_disk_peak_over_rows": round(disk["peak_rss"] / row_bytes, 3),
            "on_disk_vs_in_memory_time": round(disk["seconds"] / memory["seconds"], 3),
            "in_memory_s": round(memory["seconds"], 1), "on_disk_s": round(disk["seconds"], 1),
            "same_panel": all(memory[k] == disk[k] for k in ("values_sha256", "traded_sha256", "notes_sha256",
                                                               "shape")),
        }
        print(f"in memory: peak {figures['in_memory_peak_mb']} MB in {figures['in_memory_s']} s; on disk: peak "
              f"{figures['on_disk_peak_mb']} MB ({figures['on_disk_vs_in_memory_peak']}x) in {figures['on_disk_s']} s "
              f"({figures['on_disk_vs_in_memory_time']}x); imports alone {figures['floor_peak_mb']} MB; "
              f"same panel: {figures['same_panel']}", flush=True)
        figures["goals_met"] = figures["same_panel"] and figures["on_disk_vs_in_memory_peak"] < 0.5
        print(json.dumps(figures))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
