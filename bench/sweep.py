"""Sweep throughput: 8 trials (2 small graphs x 4 seeds) one at a time vs the local executor's workers.

- one at a time: the 8 trials trained in turn in this process (``Trainer.run``, torch on every core);
- local x1: ``studio sweep`` machinery with one worker process (every core to it);
- local x2: two worker processes (cores // 2 threads each).

Runs per hour of each, and the ratios to one at a time (goal: local x2 >= 1.8x on this 2-core machine).
The ceiling of that ratio is measured too: one trial of each graph on every core vs on one thread. Two
one-thread workers can beat one-at-a-time by at most 2 x (time on every core / time on one thread); torch
spreading a trial's kernels over the cores already takes part of the second core's gain.
- ray local: the ray executor on a local Ray of as many CPUs as cores, one CPU a trial (goal: within
  15 % of local x2); Ray's start-up (``ray.init``) timed apart. The last line is JSON.

    python bench/sweep.py [--stocks 120] [--days 200] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stocks", type=int, default=120)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    from studio.train.engine import Trainer
    from studio.train.sweep import Sweep, load_spec, prepare_trial

    folder = Path(tempfile.mkdtemp(prefix="studio-sweep-bench-"))
    try:
        spec_file = folder / "spec.json"
        spec_file.write_text(json.dumps({
            "name": "bench", "graphs": [str(ROOT / "graphs" / name) for name in ("default.json", "two_branch.json")],
            "seeds": 4, "training": {"epochs": args.epochs, "patience": 0},
            "data": {"synthetic": {"stocks": args.stocks, "days": args.days}}}))
        spec = load_spec(spec_file)
        trials = spec.trials()
        cores = os.cpu_count() or 1

        started = time.perf_counter()
        for trial in trials:
            graph, source, config, data = prepare_trial(spec, trial)
            config.threads = cores
            for _ in Trainer(graph, source, config, data, out_dir=folder / "serial").run():
                pass
        serial = time.perf_counter() - started
        print(f"one at a time: {serial:.1f} s for {len(trials)} trials", flush=True)
        # what two one-thread workers can gain at most: a trial on every core vs on one (data warm)
        per_threads = {}
        for threads in (cores, 1):
            started = time.perf_counter()
            for trial in trials[:: max(1, len(trials) // 2)][:2]:  # one seed of each graph
                graph, source, config, data = prepare_trial(spec, trial)
                config.threads = threads
                for _ in Trainer(graph, source, config, data, out_dir=folder / f"threads{threads}").run():
                    pass
            per_threads[threads] = time.perf_counter() - started
        ceiling = min(cores, 2) * per_threads[cores] / per_threads[1]
        print(f"a trial on {cores} threads vs 1: {per_threads[1] / per_threads[cores]:.2f}x faster; "
              f"two one-thread workers gain at most {ceiling:.2f}x", flush=True)

        timings = {}
        for workers in (1, 2):
            sweep = Sweep.create(spec, folder / f"local{workers}")
            started = time.perf_counter()
            sweep.run(workers=workers)
            timings[workers] = time.perf_counter() - started
            bad = [t for t in sweep.trials if t.status != "finished"]
            if bad:
                print(f"bench/sweep.py: trial {bad[0].id} {bad[0].status}: {bad[0].message}", file=sys.stderr)
                return 1
            print(f"local x{workers}: {timings[workers]:.1f} s", flush=True)
        import ray

        started = time.perf_counter()
        ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - started
        sweep = Sweep.create(spec, folder / "ray")
        sweep.spec.resources = {"cpu": 1}
        started = time.perf_counter()
        sweep.run(executor="ray")
        on_ray = time.perf_counter() - started
        ray.shutdown()
        print(f"ray local x{cores}: {on_ray:.1f} s (start-up {ray_start:.1f} s)", flush=True)
        per_hour = {name: round(len(trials) * 3600 / seconds, 1) for name, seconds in
                    (("one_at_a_time", serial), ("local_x1", timings[1]), ("local_x2", timings[2]),
                     ("ray_local", on_ray))}
        figures = {"trials": len(trials), "cores": cores, "runs_per_hour": per_hour,
                   "local_x1_vs_one_at_a_time": round(serial / timings[1], 3),
                   "local_x2_vs_one_at_a_time": round(serial / timings[2], 3),
                   "ray_vs_local_x2": round(timings[2] / on_ray, 3), "ray_start_s": round(ray_start, 2),
                   "threads_speedup_of_one_trial": round(per_threads[1] / per_threads[cores], 3),
                   "local_x2_ceiling_vs_one_at_a_time": round(ceiling, 3),
                   "local_x2_vs_its_ceiling": round(serial / timings[2] / ceiling, 3),
                   "goal_local_x2_met": serial / timings[2] >= 1.8,
                   "goal_ray_within_15pct_met": timings[2] / on_ray >= 0.85}
        print(json.dumps(figures))
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
