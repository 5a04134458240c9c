"""The tear sheet's baselines panel: the model against the factor baselines on the run's own test dates.

From RUN/baselines.json (studio.train.baselines): each baseline's correlation with the model's score, its test
IC and t and its training IC, and the verdicts in words; and the cumulative long-short of the model and of each
baseline from the daily legs baselines.json keeps (studio.metrics.long_short on the factor values, the run's
quantile and min_stocks): the tear sheet needs no data. Plain reading, no data sources (a lower layer than
studio.train.baselines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.train.run_figures import NO_BASELINES_NOTE, read_baselines

#: the table's columns: (header, key path in a baselines.json entry)
TABLE_COLUMNS = (("corr (model)", ("corr",)), ("test IC", ("test", "ic")), ("test IC t", ("test", "ic_t")),
                 ("test RankIC", ("test", "rank_ic")), ("train IC", ("train", "ic")),
                 ("train IC t", ("train", "ic_t")))
TABLE_FORMATS = {"corr (model)": "{:.3f}", "test IC": "{:.4f}", "test IC t": "{:.2f}", "test RankIC": "{:.4f}",
                 "train IC": "{:.4f}", "train IC t": "{:.2f}"}


@dataclass
class BaselinePanel:
    """What the tear sheet shows of a run's baselines."""

    #: one row per baseline (its name), TABLE_COLUMNS, with the model's own row first ("model")
    table: Any
    #: baselines.json's verdicts (and the incremental IC's figure) in words
    verdicts: list[str]
    #: cumulative long-short per test date: "model" and one column per baseline; None when not drawn
    curves: Any = None
    notes: list[str] = field(default_factory=list)


def _value(entry: dict, path: tuple[str, ...]) -> float:
    for key in path:
        entry = entry.get(key) if isinstance(entry, dict) else None
    return float(entry) if isinstance(entry, int | float) else float("nan")


def _table(baselines: dict):
    import pandas as pd

    model = baselines.get("model") or {}
    rows = {"model": [1.0, *(_value(model, path) for _, path in TABLE_COLUMNS[1:])]}
    for b in baselines.get("baselines") or []:
        rows[str(b.get("name"))] = [_value(b, path) for _, path in TABLE_COLUMNS]
    return pd.DataFrame.from_dict(rows, orient="index", columns=[h for h, _ in TABLE_COLUMNS])


def _curves(baselines: dict):
    """The cumulative long-short of the model and of each baseline on the run's test dates, from the daily
    legs baselines.json keeps (studio.metrics.long_short at the run's quantile); None where it has none."""
    import pandas as pd

    legs = baselines.get("long_short")
    if not isinstance(legs, dict) or not isinstance(legs.get("dates"), list) or not legs["dates"]:
        return None
    names = ["model", *(str(b.get("name")) for b in baselines.get("baselines") or [])]
    index = pd.DatetimeIndex(pd.to_datetime(legs["dates"]), name="date")
    columns = {}
    for name in names:
        values = legs.get(name)
        if isinstance(values, list) and len(values) == len(index):
            columns[name] = [float(v) if isinstance(v, int | float) else np.nan for v in values]
    return pd.DataFrame(columns, index=index).fillna(0.0).cumsum() if "model" in columns else None


def baseline_panel(run: Path) -> tuple[BaselinePanel | None, list[str]]:
    """The panel of a run's test split, and the notes for the tear sheet (no baselines.json: none)."""
    baselines = read_baselines(run)
    if baselines is None:
        return None, [NO_BASELINES_NOTE.removeprefix("- in the baseline columns: ")]
    incremental = baselines.get("incremental") or {}
    verdicts = [str(v) for v in baselines.get("verdicts") or []]
    if isinstance(incremental.get("ic"), int | float):
        t = incremental.get("ic_t")
        verdicts.append(f"incremental IC (the score's residual on every baseline, date by date) "
                        f"{incremental['ic']:.4f}, t {t:.2f}" if isinstance(t, int | float) else
                        f"incremental IC {incremental['ic']:.4f}")
    panel = BaselinePanel(table=_table(baselines), verdicts=verdicts, curves=_curves(baselines))
    if panel.curves is None:  # a baselines.json written before it kept the legs
        panel.notes.append("the baselines' long-short is not drawn: baselines.json has no daily legs (studio "
                           "baselines RUN writes them)")
    return panel, panel.notes


def draw(ax, panel: BaselinePanel) -> None:
    """7. The cumulative long-short of the model (thick) and of each baseline."""
    curves = panel.curves
    dates = curves.index.to_numpy()
    for name in curves.columns:
        model = name == "model"
        ax.plot(dates, curves[name].to_numpy(), linewidth=2.4 if model else 1.1, color="#1565c0" if model else None,
                label=name, zorder=3 if model else 2)
    ax.axhline(0, color="#888", linewidth=0.8)
    ax.set_ylabel("cumulative long-short return")
    ax.legend(loc="upper left", ncol=3, fontsize=8, framealpha=0.75)


def draw_table(ax, panel: BaselinePanel) -> None:
    """8. The correlation table (corr with the model's score, test IC and t, training IC), the verdicts under
    it. Inside its own axes (a bbox, no row labels outside it), so the layout around it does not move."""
    import textwrap

    ax.axis("off")
    frame = panel.table
    cells = [[str(name), *(TABLE_FORMATS[c].format(v) if np.isfinite(v) else "-" for c, v in row.items())]
             for name, row in frame.iterrows()]
    width = 0.74 / len(frame.columns)  # the names' column wide enough for "intraday_volatility"
    table = ax.table(cellText=cells, colLabels=["", *frame.columns], cellLoc="right", bbox=[0, 0.3, 1, 0.7],
                     colWidths=[0.26, *[width] * len(frame.columns)])
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    lines = [textwrap.fill(v, 95) for v in panel.verdicts]
    ax.text(0, 0.26, "\n".join(lines), va="top", fontsize=9, color="#b06000")
