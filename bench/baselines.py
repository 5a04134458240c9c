"""What judging a run against the factor baselines costs at the end of a run (studio.train.baselines).

A finished run writes baselines.json from its panel, still in memory, and its predictions. This trains
the default graph on the shipped us_stocks_5min bars (78 bars a day, a 5-day window, one epoch; the
whole `studio train` command, baselines included), then times ``write_baselines`` on that run with the
panel in memory as the engine calls it, and prints the ratio: baselines time / whole run (goal: <= 0.05).
The last line printed is JSON {"run_s": ..., "baselines_s": ..., "ratio": ...}.

    python bench/baselines.py [--data ../shared/data/us_stocks_5min] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from studio.cli import main
from studio.train.baselines import _config, _load_panel, write_baselines

ROOT = Path(__file__).resolve().parent.parent


def run() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "us_stocks_5min"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        code = main(["train", str(ROOT / "graphs" / "default.json"), "--data", args.data, "--bars-per-day", "78",
                     "--days", "5", "--epochs", "1", "--out", folder, "--quiet"])
        run_s = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"the training run failed (exit {code})")
        run_dir = next(Path(folder).iterdir())
        panel = _load_panel(run_dir, _config(run_dir), None)
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            write_baselines(run_dir, panel=panel)
            times.append(time.perf_counter() - started)
    baselines_s = statistics.median(times)
    print(f"whole run (train, score, write, baselines): {run_s:.2f} s")
    print(f"baselines.json from the panel in memory:     {baselines_s:.3f} s (median of {args.rounds})")
    print(f"ratio baselines / run: {baselines_s / run_s:.3f}")
    return {"run_s": round(run_s, 3), "baselines_s": round(baselines_s, 4), "ratio": round(baselines_s / run_s, 4)}


if __name__ == "__main__":
    print(json.dumps(run()))
