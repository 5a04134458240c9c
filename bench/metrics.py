"""IC + RankIC of 1000 dates x 3000 stocks: studio.metrics vs a pandas groupby computation.

Both compute the per-date Pearson IC and Spearman RankIC of the same scores and labels (10 % of the
pairs missing); the figures are checked to agree before timing. Paired runs in one process, medians
of several repeats. The last line is JSON: {"metrics_vs_pandas": studio time / pandas time}
(below 1: studio is faster; goal <= 0.05).

    python bench/metrics.py [--dates 1000] [--stocks 3000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import pandas as pd

from studio import metrics


def pandas_ic(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The straightforward pandas way: groupby date, correlate; rank within date for RankIC."""
    grouped = frame.groupby("date")
    ic = grouped[["score", "label"]].corr().xs("score", level=1)["label"]
    ranked = frame[["score", "label"]].groupby(frame["date"]).rank()
    ranked["date"] = frame["date"]
    rank_ic = ranked.groupby("date")[["score", "label"]].corr().xs("score", level=1)["label"]
    return ic, rank_ic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=1000)
    parser.add_argument("--stocks", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    labels = rng.standard_t(4, size=(args.dates, args.stocks)) * 0.02
    scores = 0.05 * labels / labels.std() + rng.normal(size=labels.shape)
    missing = rng.random(labels.shape) < 0.1
    scores[missing] = np.nan
    d, _ = np.meshgrid(np.arange(args.dates), np.arange(args.stocks), indexing="ij")
    frame = pd.DataFrame({"date": d.ravel(), "score": scores.ravel(), "label": labels.ravel()}).dropna()

    ours_ic, ours_ric = metrics.daily_ics(scores, labels)
    ref_ic, ref_ric = pandas_ic(frame)
    if not (np.allclose(ours_ic, ref_ic.to_numpy(), atol=1e-9)
            and np.allclose(ours_ric, ref_ric.to_numpy(), atol=1e-9)):
        print("studio and pandas disagree: not timing", file=sys.stderr)
        return 1

    studio_times, pandas_times = [], []
    for i in range(args.repeats):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            start = time.perf_counter()
            if which == 0:
                metrics.daily_ics(scores, labels)
                studio_times.append(time.perf_counter() - start)
            else:
                pandas_ic(frame)
                pandas_times.append(time.perf_counter() - start)
    s, p = statistics.median(studio_times), statistics.median(pandas_times)
    print(f"{args.dates} dates x {args.stocks} stocks, IC + RankIC: studio {s * 1000:.1f} ms, "
          f"pandas groupby {p * 1000:.1f} ms (medians of {args.repeats})")
    print(json.dumps({"metrics_vs_pandas": round(s / p, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
