"""PNG charts of a run (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from studio.metrics import MIN_DATES, sample_size

LONG, SHORT, LONG_SHORT = "#2e7d32", "#c62828", "#1565c0"


def pnl_chart(rows: list[dict], out: Path | BinaryIO, title: str, summary: dict) -> None:
    """Cumulative (summed) long, short and long-short returns of the dates in ``rows``, and the IC of
    each date: a reversed signal shows the short leg above the long leg and negative ICs."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    dates = np.array([np.datetime64(r["date"]) for r in rows])

    def cumulative(key: str) -> np.ndarray:
        return np.cumsum(np.nan_to_num(np.array([r[key] for r in rows], dtype=float)))

    ic = np.array([r["ic"] for r in rows], dtype=float)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=(3, 1.4))
    top.plot(dates, cumulative("long"), color=LONG, label="long leg (top quantile)")
    top.plot(dates, cumulative("short"), color=SHORT, label="short leg (bottom quantile)")
    top.plot(dates, cumulative("long_short"), color=LONG_SHORT, linewidth=2, label="long-short")
    top.axhline(0, color="#888", linewidth=0.8)
    top.set_ylabel("cumulative return")
    top.legend(loc="upper left", frameon=False)
    figures = []
    for key, label in (("ic", "IC"), ("rank_ic", "RankIC"), ("oracle_ic", "oracle IC"),
                       ("annual_return", "annual LS"), ("sharpe", "Sharpe")):
        value = summary.get(key)
        if value is not None and np.isfinite(value):
            figures.append(f"{label} {value:.3f}" if key != "annual_return" else f"{label} {value:.1%}")
    dates_n, ic_t, few = sample_size(summary)
    if dates_n is not None:
        figures.append(f"IC t {ic_t:.2f} over {dates_n} dates" + (f" (fewer than {MIN_DATES}: means little)"
                                                                  if few else ""))
    text = f"{title} - test dates: " + ", ".join(figures)
    if len(text) > 110:  # two lines rather than a title cut off at the figure's edges
        text = f"{title} - test dates:\n" + ", ".join(figures)
    top.set_title(text, fontsize=10, color="#b06000" if few else "black")
    colours = np.where(np.nan_to_num(ic) >= 0, LONG, SHORT)
    bottom.bar(dates, np.nan_to_num(ic), color=colours, width=1.0)
    mean = np.nanmean(ic) if np.isfinite(ic).any() else 0.0
    bottom.axhline(mean, color=LONG_SHORT, linewidth=1, label=f"mean IC {mean:.3f}")
    bottom.axhline(0, color="#888", linewidth=0.8)
    bottom.set_ylabel("IC per date")
    bottom.legend(loc="upper left", frameon=False, fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, dpi=100, format="png")  # out: a path or an open binary file
    plt.close(fig)
