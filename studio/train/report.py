"""The tear sheet of one split of a run: ``studio report RUN_DIR --to report.html|report.png``.

Made from the run's ``predictions.parquet`` (date, symbol, split, score, label = the raw forward return)
and ``daily.csv`` only, with the metric settings of ``config.json`` ("metrics": quantile, cost,
min_stocks). :func:`tear_sheet` returns every figure the plots show as plain pandas objects (a
:class:`TearSheet`); :func:`figure` draws them (matplotlib, Agg); :func:`write_report` writes the PNG or a
self-contained HTML page (the PNG as base64 and the numbers as tables).

Definitions (quant-notes; docs/metrics.md, docs/research.md "Tear sheet"):

- A stock counts on a date when it has a score and a label; dates with fewer than ``min_stocks`` such
  stocks are left out (NaN), as in every figure of the studio.
- Groups (Qlib's report, ``qlib/contrib/report/analysis_model``): the date's stocks sorted by score,
  highest first, n = N_t // 5; G1 is the first n (the highest scores), G2 the next n, ..., G5 the fifth
  n. The N_t - 5n (< 5) lowest-scored stocks are in no group, as in Qlib. Equal weights: a group's return
  is the mean label of its stocks. G1-G5 is Qlib's long-short (not halved). Curves are cumulated by
  summing. Ties in scores are broken by symbol order (Qlib leaves them to an unstable sort). G1 is the
  run's long leg when the run's quantile is 0.2; G5 is its short leg when N_t is a multiple of 5.
- IC_t: Pearson, RankIC_t: Spearman (average ranks), from :mod:`studio.metrics`; a 20-date rolling mean
  (over the dates so far while fewer than 20).
- RankIC decay at horizon h: the RankIC of the scores of date t with the labels of the date h - 1 dates
  later (same symbol), both dates of the split; the dates are those of predictions.parquet (all splits),
  so a score never looks into another split, and the last h - 1 dates of the split have no pair.
- Turnover of a group: the share of its names not in it on the previous date of the split (1 on the
  first date), quant-notes' and studio.metrics' leg turnover.
- Long-short (the run's own, studio.metrics.long_short): (long - short) / 2 of the top and bottom
  ``quantile`` of stocks; net of cost: r_t - cost x turnover_t, turnover the mean of the two legs'.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio import metric_specs, metrics
from studio.core.files import DiskFullError, FileReadError, atomic_write, read_regular_file
from studio.core.text import printable

GROUPS = 5
DECAY_HORIZONS = 10
ROLLING_DATES = 20
CONFIG_LIMIT = 16 << 20
PREDICTION_COLUMNS = ("date", "symbol", "split", "score", "label")
DAILY_COLUMNS = ("date", "split", "ic", "rank_ic", "long", "short", "long_short", "turnover")
#: how far the recomputed daily figures may be from daily.csv's (written with 10 significant digits)
DAILY_TOLERANCE = 1e-8
FORMATS = ("html", "png")

#: (headline key, label, format): the figures of the headline table, formatted as studio compare does
HEADLINE = [(spec.key, spec.label, spec.format) for spec in metric_specs.headline()]

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
GROUP_COLOURS = ("#1a7f37", "#7cb342", "#9e9e9e", "#ef8a62", "#c62828")
LONG_SHORT, NET, AMBER = "#1565c0", "#6a1b9a", "#b06000"


class ReportError(Exception):
    """The tear sheet cannot be made: one line naming the file (or option) at fault."""


@dataclass
class TearSheet:
    """Every figure of the tear sheet of one split; the plots draw exactly these.

    Per-date frames are indexed by the split's dates (those of predictions.parquet, ascending)."""

    run: str
    split: str
    #: quantile, cost, min_stocks, lag, horizon: the run's metric settings (config.json "metrics")
    settings: dict[str, Any]
    #: the headline figures (keys of HEADLINE plus rank_ic_t, max drawdowns, few_dates): studio.metrics.summarize
    headline: dict[str, Any]
    #: G1..G5 and G1-G5: the mean label of each group per date (NaN where the date is left out)
    groups: Any
    #: the running sums of ``groups`` (a left-out date adds 0)
    groups_cumulative: Any
    #: n_stocks (stocks with a score and a label) and per_group (n = n_stocks // 5; 0 where left out)
    sizes: Any
    #: ic, rank_ic and ic_rolling (the 20-date rolling mean of ic)
    ic: Any
    #: mean IC per month: years (rows) x months 1..12 (columns), NaN where a month has no IC
    monthly_ic: Any
    #: per horizon h = 1..10 (index): rank_ic (mean), std, dates (dates with a pair), t
    decay: Any
    #: turnover per date of G1 and G5, and of the run's long-short book (long_short: the mean of its legs')
    turnover: Any
    #: the run's legs: long, short, gross = (long - short) / 2, net = gross - cost x turnover, and the
    #: running sums gross_cumulative, net_cumulative
    long_short: Any
    #: what the reader should know (daily.csv disagreeing with predictions.parquet, defaults used, ...)
    notes: list[str] = field(default_factory=list)
    #: the model against the factor baselines on the test dates (studio.train.report_baselines.BaselinePanel);
    #: None for another split or a run without baselines.json
    baselines: Any = None

    @property
    def dates(self):
        return self.groups.index


# ---- reading --------------------------------------------------------------------------------------

def _shown(path: Path) -> str:
    return printable(os.fspath(path))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return printable(f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)[:300]


def _require_file(path: Path, what: str) -> None:
    try:
        info = os.lstat(path)  # the entry itself: a run's files are read inside its folder only
    except FileNotFoundError:
        raise ReportError(f"{_shown(path)}: no such file (a run directory has {what})") from None
    except OSError as exc:
        raise ReportError(f"{_shown(path)}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISLNK(info.st_mode):
        raise ReportError(f"{_shown(path)}: is a symbolic link; a run's files are read inside its folder only")
    if not stat.S_ISREG(info.st_mode):
        raise ReportError(f"{_shown(path)}: not a regular file, so not {what}")
    if not os.access(path, os.R_OK):
        raise ReportError(f"{_shown(path)}: permission denied")


def _run_dir(path: str | os.PathLike[str]) -> Path:
    run = Path(path)
    if "\x00" in os.fspath(run):
        raise ReportError(f"{_shown(run)}: the path holds a NUL character")
    if not run.exists():
        raise ReportError(f"{_shown(run)}: no such run directory")
    if not run.is_dir():
        raise ReportError(f"{_shown(run)}: not a run directory (a file)")
    return run


def _settings(run: Path) -> tuple[dict[str, Any], list[str]]:
    path = run / "config.json"
    _require_file(path, "the run's settings (config.json)")
    try:
        config = json.loads(read_regular_file(path, CONFIG_LIMIT, "run configuration"))
    except FileReadError as exc:
        raise ReportError(str(exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"{_shown(path)}: not JSON ({_first_line(exc)})") from None
    if not isinstance(config, dict):
        raise ReportError(f"{_shown(path)}: expects a JSON object (a run's config.json)")
    given = config.get("metrics")
    notes = []
    defaults = {"quantile": metrics.DEFAULT_QUANTILE, "cost": 0.0, "min_stocks": metrics.DEFAULT_MIN_STOCKS,
                "lag": 1, "horizon": 1}
    if not isinstance(given, dict):
        given = {}
        notes.append("config.json has no metric settings: quantile 0.2, cost 0, min_stocks 10 assumed")
    settings = {}
    for key, default in defaults.items():
        value = given.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ReportError(f"{_shown(path)}: metrics.{key} is {printable(repr(value))}, expects a number")
        settings[key] = value
    if not 0 < settings["quantile"] <= 0.5:
        raise ReportError(f"{_shown(path)}: metrics.quantile is {settings['quantile']}, expects (0, 0.5]")
    if settings["cost"] < 0:
        raise ReportError(f"{_shown(path)}: metrics.cost is {settings['cost']}, expects 0 or more")
    settings["min_stocks"] = int(settings["min_stocks"])
    return settings, notes


def _read_predictions(run: Path):
    import pandas as pd

    path = run / "predictions.parquet"
    _require_file(path, "the run's predictions (predictions.parquet)")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many kinds; each is a file that cannot be used
        raise ReportError(f"{_shown(path)}: cannot read it as Parquet ({_first_line(exc)})") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ReportError(f"{_shown(path)}: no column {', '.join(missing)} (expects {', '.join(PREDICTION_COLUMNS)})")
    try:
        out = pd.DataFrame({
            "date": pd.to_datetime(frame["date"]).astype("datetime64[ns]"),
            "symbol": frame["symbol"].astype(str),
            "split": frame["split"].astype(str),
            "score": pd.to_numeric(frame["score"]).astype(np.float64),
            "label": pd.to_numeric(frame["label"]).astype(np.float64),
        })
    except Exception as exc:
        raise ReportError(f"{_shown(path)}: unusable values ({_first_line(exc)})") from None
    if out["date"].isna().any():
        raise ReportError(f"{_shown(path)}: {int(out['date'].isna().sum())} rows without a date")
    return out


def _read_daily(run: Path):
    import pandas as pd

    path = run / "daily.csv"
    _require_file(path, "the run's daily figures (daily.csv)")
    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # a parser error, an encoding error, an empty file ...
        raise ReportError(f"{_shown(path)}: cannot read it as CSV ({_first_line(exc)})") from None
    missing = [c for c in DAILY_COLUMNS if c not in frame.columns]
    if missing:
        raise ReportError(f"{_shown(path)}: no column {', '.join(missing)} (expects {', '.join(DAILY_COLUMNS)})")
    try:
        frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
        frame["split"] = frame["split"].astype(str)
        for column in DAILY_COLUMNS[2:]:
            frame[column] = pd.to_numeric(frame[column]).astype(np.float64)
    except Exception as exc:
        raise ReportError(f"{_shown(path)}: unusable values ({_first_line(exc)})") from None
    return frame


# ---- the figures ----------------------------------------------------------------------------------

def quintile_groups(scores: np.ndarray, labels: np.ndarray, min_stocks: int = metrics.DEFAULT_MIN_STOCKS,
                    groups: int = GROUPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Qlib's report groups of (D, S) scores and labels: (means (D, groups), member group index (D, S) with
    -1 for none, names per group (D,)). Row r: the stocks with both values sorted by score, highest first
    (ties in column order); group g holds positions g*n .. (g+1)*n - 1, n = N_r // groups."""
    valid = np.isfinite(scores) & np.isfinite(labels)
    count = valid.sum(axis=1)
    n = count // groups
    usable = (count >= max(min_stocks, 2)) & (n >= 1)
    n = np.where(usable, n, 0)
    rows, cols = scores.shape
    key = np.where(valid, -scores, np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    position = np.empty((rows, cols), dtype=np.int64)
    np.put_along_axis(position, order, np.broadcast_to(np.arange(cols), (rows, cols)), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        member = np.where(valid & (position < groups * n[:, None]), position // np.maximum(n, 1)[:, None], -1)
    safe = np.where(valid, labels, 0.0)
    means = np.full((rows, groups), np.nan)
    for g in range(groups):
        inside = member == g
        with np.errstate(divide="ignore", invalid="ignore"):
            means[:, g] = (safe * inside).sum(axis=1) / n
    means[~usable] = np.nan
    return means, member, n


def rank_ic_decay(scores: np.ndarray, labels: np.ndarray, positions: np.ndarray,
                  horizons: int = DECAY_HORIZONS, min_stocks: int = metrics.DEFAULT_MIN_STOCKS):
    """Per h = 1..horizons: the RankIC of row i's scores with the labels of the row whose date is h - 1
    dates later on the run's date axis (``positions``: each row's index on that axis, ascending); rows
    without such a row of their own (another split's date, or past the end) have no pair. Returns a
    DataFrame indexed by h: rank_ic (mean), std (ddof 1), dates (with a RankIC), t."""
    import pandas as pd

    row_of = {int(p): i for i, p in enumerate(positions)}
    out = []
    for h in range(1, horizons + 1):
        pairs = [(i, row_of[int(p) + h - 1]) for i, p in enumerate(positions) if int(p) + h - 1 in row_of]
        if pairs:
            src, dst = (np.array(x, dtype=np.int64) for x in zip(*pairs, strict=True))
            values = metrics.daily_rank_ic(scores[src], labels[dst], min_stocks)
        else:
            values = np.array([])
        finite = values[np.isfinite(values)]
        mean = float(finite.mean()) if len(finite) else math.nan
        std = float(finite.std(ddof=1)) if len(finite) > 1 else math.nan
        out.append({"horizon": h, "rank_ic": mean, "std": std, "dates": len(finite),
                    "t": metrics.t_statistic(mean, std, len(finite))})
    return pd.DataFrame(out).set_index("horizon")


def _pivot(frame, dates, symbols, column: str) -> np.ndarray:
    table = frame.pivot(index="date", columns="symbol", values=column)
    return table.reindex(index=dates, columns=symbols).to_numpy(dtype=np.float64)


def _daily_check(daily, split: str, sheet: dict) -> list[str]:
    """Notes where daily.csv (the run's record) and the figures recomputed from predictions.parquet differ."""
    import pandas as pd

    rows = daily[daily["split"] == split].drop_duplicates("date", keep="last").set_index("date")
    dates = sheet["dates"]
    if rows.empty:
        return [f"daily.csv has no {split} rows: the figures are recomputed from predictions.parquet only"]
    notes = []
    extra = rows.index.difference(dates)
    if len(extra) and rows.loc[extra, "ic"].notna().any():
        notes.append(f"daily.csv has {len(extra)} {split} dates with figures that predictions.parquet has no "
                     f"scores for")
    ours = pd.DataFrame({"ic": sheet["ic"], "rank_ic": sheet["rank_ic"], "long": sheet["long"],
                         "short": sheet["short"], "long_short": sheet["long_short"],
                         "turnover": sheet["book_turnover"]}, index=dates)
    theirs = rows.reindex(dates)
    differ = []
    bad_dates = np.zeros(len(dates), dtype=bool)
    for column in ours.columns:
        a, b = ours[column].to_numpy(), theirs[column].to_numpy(dtype=np.float64)
        both_nan = np.isnan(a) & np.isnan(b)
        with np.errstate(invalid="ignore"):
            close = np.abs(a - b) <= DAILY_TOLERANCE * (1 + np.abs(b))
        wrong = ~(both_nan | close)
        if wrong.any():
            differ.append(column)
            bad_dates |= wrong
    if differ:
        notes.append(f"daily.csv differs from the figures recomputed from predictions.parquet on "
                     f"{int(bad_dates.sum())} of {len(dates)} dates ({', '.join(differ)}): the sheet shows "
                     f"the recomputed figures")
    return notes


def tear_sheet(run_dir: str | os.PathLike[str], split: str = "test") -> TearSheet:
    """The figures of the tear sheet of ``split`` of a run directory (a ReportError names what is wrong)."""
    import pandas as pd

    run = _run_dir(run_dir)
    settings, notes = _settings(run)
    predictions = _read_predictions(run)
    daily = _read_daily(run)
    splits = sorted(predictions["split"].unique())
    path = run / "predictions.parquet"
    if split not in splits:
        raise ReportError(f"{_shown(path)}: no split {printable(repr(split))} (it has "
                          f"{', '.join(printable(s) for s in splits) or 'no rows'})")
    part = predictions[predictions["split"] == split]
    if part.duplicated(["date", "symbol"]).any():
        row = part[part.duplicated(["date", "symbol"])].iloc[0]
        raise ReportError(f"{_shown(path)}: {printable(row['symbol'])} appears twice on "
                          f"{row['date'].date()} in the {printable(split)} split")
    dates = pd.DatetimeIndex(sorted(part["date"].unique()), name="date")
    if len(dates) < 2:
        raise ReportError(f"{_shown(path)}: the {printable(split)} split has {len(dates)} date; a tear sheet "
                          f"needs at least 2")
    symbols = sorted(part["symbol"].unique())
    scores = _pivot(part, dates, symbols, "score")
    labels = _pivot(part, dates, symbols, "label")
    min_stocks, quantile, cost = settings["min_stocks"], settings["quantile"], settings["cost"]

    headline, series = metrics.summarize(scores, labels, quantile=quantile, cost=cost, min_stocks=min_stocks)
    means, member, per_group = quintile_groups(scores, labels, min_stocks)
    names = [f"G{g + 1}" for g in range(GROUPS)]
    groups = pd.DataFrame(means, index=dates, columns=names)
    groups["G1-G5"] = groups["G1"] - groups[f"G{GROUPS}"]
    ic = pd.DataFrame({"ic": series["ic"], "rank_ic": series["rank_ic"]}, index=dates)
    ic["ic_rolling"] = ic["ic"].rolling(ROLLING_DATES, min_periods=1).mean()
    by_month = ic["ic"].groupby([dates.year.rename("year"), dates.month.rename("month")]).mean()
    monthly = by_month.unstack("month").reindex(columns=range(1, 13))
    monthly.columns.name = "month"

    all_dates = pd.DatetimeIndex(sorted(predictions["date"].unique()))
    positions = all_dates.get_indexer(dates)
    decay = rank_ic_decay(scores, labels, positions, DECAY_HORIZONS, min_stocks)

    turnover = pd.DataFrame({"G1": metrics.leg_turnover(member == 0),
                             f"G{GROUPS}": metrics.leg_turnover(member == GROUPS - 1),
                             "long_short": series["turnover"]}, index=dates)
    gross = series["long_short"]
    legs = pd.DataFrame({"long": series["long"], "short": series["short"], "gross": gross,
                         "net": gross - cost * series["turnover"]}, index=dates)
    legs["gross_cumulative"] = legs["gross"].fillna(0.0).cumsum()
    legs["net_cumulative"] = legs["net"].fillna(0.0).cumsum()
    sizes = pd.DataFrame({"n_stocks": series["n_stocks"], "per_group": per_group}, index=dates)

    notes += _daily_check(daily, split, {"dates": dates, **series, "book_turnover": series["turnover"]})
    if headline["few_dates"]:
        notes.append(f"{headline['dates']} dates with an IC: fewer than {metrics.MIN_DATES}, the figures mean little")
    if settings["horizon"] > 1:
        notes.append(f"labels span {settings['horizon']} days and overlap: ICIR and Sharpe look better than "
                     "they are")
    baselines = None
    if split == "test":  # the baselines are judged on the test dates (and the training dates, for their sign)
        from studio.train.report_baselines import baseline_panel

        baselines, baseline_notes = baseline_panel(run)
        notes += baseline_notes
    return TearSheet(run=os.fspath(run), split=split, settings=settings, headline=headline, groups=groups,
                     groups_cumulative=groups.fillna(0.0).cumsum(), sizes=sizes, ic=ic, monthly_ic=monthly,
                     decay=decay, turnover=turnover, long_short=legs, notes=notes, baselines=baselines)


# ---- the figure -----------------------------------------------------------------------------------

def _text(value: object) -> str:
    """Text from files for matplotlib: printable, and "$" cannot start mathtext."""
    return printable(value).replace("$", r"\$")


def _fmt(pattern: str, value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return pattern.format(value)


def headline_cells(sheet: TearSheet) -> list[tuple[str, str]]:
    """(label, formatted value) of the headline figures."""
    cells = [(label, _fmt(pattern, sheet.headline.get(key))) for key, label, pattern in HEADLINE]
    if sheet.headline.get("few_dates"):
        cells[-1] = (cells[-1][0], cells[-1][1] + " !")
    return cells


def _describe(sheet: TearSheet) -> str:
    first, last = sheet.dates[0].date(), sheet.dates[-1].date()
    s = sheet.settings
    return (f"{sheet.split} split, {len(sheet.dates)} dates ({first} .. {last}); legs: top / bottom "
            f"{s['quantile']:.0%}, cost {s['cost']:.2%} per unit of turnover; min {s['min_stocks']} stocks a date")


def _date_axis(ax) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _legend_above(ax, ncol: int) -> None:
    """The legend in a strip between the panel's title and its plot: it covers no line."""
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=ncol, frameon=False, fontsize=9, borderaxespad=0.2,
              handlelength=2.2, columnspacing=1.4)


def _title(ax, text: str, legend: bool = True) -> None:
    ax.set_title(text, fontsize=11, loc="left", pad=22 if legend else 6)


def figure(sheet: TearSheet):
    """The tear sheet as a matplotlib Figure (Agg): the headline table and six panels."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    panel = sheet.baselines
    rows = 5 if panel is not None else 4  # a fifth row: the model against the baselines
    fig = Figure(figsize=(15, 17 + 4 * (rows - 4)), dpi=100, layout="constrained")
    grid = fig.add_gridspec(rows, 2, height_ratios=(0.75, 3, 3, 3, 3)[:rows])
    title = f"Tear sheet: {_text(Path(sheet.run).name)}"
    fig.suptitle(title, fontsize=15, fontweight="bold")
    _headline_table(fig.add_subplot(grid[0, :]), sheet)
    dates = sheet.dates.to_numpy()
    _group_returns_panel(fig.add_subplot(grid[1, 0]), sheet, dates)
    _ic_panel(fig.add_subplot(grid[1, 1]), sheet, dates)
    _monthly_ic_panel(fig, fig.add_subplot(grid[2, 0]), sheet)
    _decay_panel(fig.add_subplot(grid[2, 1]), sheet)
    _turnover_panel(fig.add_subplot(grid[3, 0]), sheet, dates)
    _long_short_panel(fig.add_subplot(grid[3, 1]), sheet, dates)
    if panel is not None:
        _baselines_panels(fig.add_subplot(grid[4, 0]), fig.add_subplot(grid[4, 1]), panel, sheet.settings)
    return fig


def _baselines_panels(curves_ax, table_ax, panel, settings: dict) -> None:
    """7. the model's and each baseline's cumulative long-short; 8. the correlation table."""
    from studio.train.report_baselines import draw, draw_table

    q = f"{settings['quantile']:.0%}"
    if panel.curves is not None:
        draw(curves_ax, panel)
        _title(curves_ax, f"7. Model vs baselines: long-short (top {q} - bottom {q}) / 2, summed, same dates",
               legend=False)
        _date_axis(curves_ax)
    else:
        curves_ax.axis("off")
        curves_ax.text(0, 0.5, "\n".join(_text(n) for n in panel.notes), fontsize=10, color=AMBER, wrap=True)
        _title(curves_ax, "7. Model vs baselines: long-short not drawn", legend=False)
    draw_table(table_ax, panel)
    _title(table_ax, "8. Baselines on the run's test dates (sign fixed by each factor's definition)", legend=False)


def _headline_table(head, sheet: TearSheet) -> None:
    """The headline figures as a one-row table, the run's description above it (amber when few dates)."""
    head.axis("off")
    cells = headline_cells(sheet)
    labels = [k.replace(" ann. return", "\nann. return") for k, _ in cells]
    table = head.table(cellText=[[v for _, v in cells]], colLabels=labels, loc="center",
                       cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(11)
    table.scale(1, 1.9)
    for (row, _col), cell in table.get_celld().items():
        cell.set_edgecolor("#bbbbbb")
        if row == 0:
            cell.set_height(cell.get_height() * 1.5)
            cell.set_facecolor("#eef2f7")
            cell.set_text_props(fontweight="bold")
    few = bool(sheet.headline.get("few_dates"))
    subtitle = _describe(sheet) + (f"  -  ! fewer than {metrics.MIN_DATES} dates: the figures mean little"
                                   if few else "")
    head.set_title(_text(subtitle), fontsize=10.5, color=AMBER if few else "#333333")


def _group_returns_panel(ax, sheet: TearSheet, dates: np.ndarray) -> None:
    """1. cumulative return of the five groups"""
    cumulative = sheet.groups_cumulative
    for g, colour in enumerate(GROUP_COLOURS):
        name = f"G{g + 1}"
        label = name + (" (highest scores)" if g == 0 else " (lowest)" if g == GROUPS - 1 else "")
        ax.plot(dates, cumulative[name].to_numpy(), color=colour, linewidth=1.4, label=label)
    ax.plot(dates, cumulative["G1-G5"].to_numpy(), color="black", linewidth=2.2, linestyle="--", label="G1-G5")
    ax.axhline(0, color="#888", linewidth=0.8)
    _title(ax, "1. Cumulative return of 5 score groups (Qlib's report: equal weights, summed)")
    ax.set_ylabel("cumulative return")
    _legend_above(ax, 6)
    _date_axis(ax)


def _ic_panel(ax, sheet: TearSheet, dates: np.ndarray) -> None:
    """2. IC per date and its rolling mean"""
    ic = sheet.ic["ic"].to_numpy()
    ax.bar(dates, np.nan_to_num(ic), color=np.where(np.nan_to_num(ic) >= 0, GROUP_COLOURS[0], GROUP_COLOURS[-1]),
           width=0.8, label="IC per date")
    ax.plot(dates, sheet.ic["ic_rolling"].to_numpy(), color=LONG_SHORT, linewidth=2,
            label=f"{ROLLING_DATES}-date rolling mean")
    mean = sheet.headline.get("ic")
    if mean is not None and math.isfinite(mean):
        ax.axhline(mean, color="black", linewidth=1, linestyle=":", label=f"mean IC {mean:.4f}")
    ax.axhline(0, color="#888", linewidth=0.8)
    _title(ax, "2. IC per date (Pearson of score and next-day return)")
    ax.set_ylabel("IC")
    _legend_above(ax, 3)
    _date_axis(ax)


def _monthly_ic_panel(fig, ax, sheet: TearSheet) -> None:
    """3. mean IC by month: a year x month heat map, each cell's value written in it"""
    monthly = sheet.monthly_ic
    values = monthly.to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    scale = max(float(np.abs(finite).max()) if len(finite) else 0.0, 0.01)
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", vmin=-scale, vmax=scale, aspect="auto")
    ax.set_facecolor("#f2f2f2")
    ax.set_xticks(range(12), MONTHS)
    ax.set_yticks(range(len(monthly.index)), [str(y) for y in monthly.index])
    fontsize = 9 if len(monthly.index) <= 6 else 8 if len(monthly.index) <= 12 else 6
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                dark = abs(values[i, j]) > 0.6 * scale
                shown = f"{values[i, j]:.3f}"
                ax.text(j, i, "0.000" if shown == "-0.000" else shown, ha="center", va="center", fontsize=fontsize,
                        color="white" if dark else "black")
    _title(ax, "3. Mean IC by month (grey: no dates)", legend=False)
    ax.set_xlabel("month")
    ax.set_ylabel("year")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="mean IC")


def _decay_panel(ax, sheet: TearSheet) -> None:
    """4. RankIC decay: a bar per horizon, the number of dates with a pair above it"""
    decay = sheet.decay
    horizons = decay.index.to_numpy()
    rank = decay["rank_ic"].to_numpy()
    ax.bar(horizons, np.nan_to_num(rank), color=np.where(np.nan_to_num(rank) >= 0, LONG_SHORT, GROUP_COLOURS[-1]),
           width=0.7)
    span = max(float(np.nanmax(np.abs(rank))) if np.isfinite(rank).any() else 0.0, 0.005)
    for h, value, n in zip(horizons, rank, decay["dates"].to_numpy(), strict=True):
        y = np.nan_to_num(value)
        ax.text(h, y + (0.04 * span if y >= 0 else -0.04 * span), f"{n}", ha="center",
                va="bottom" if y >= 0 else "top", fontsize=8, color="#555555")
    ax.set_ylim(-1.25 * span, 1.25 * span)
    ax.axhline(0, color="#888", linewidth=0.8)
    ax.set_xticks(horizons)
    ax.set_xlabel("horizon h: the score of date t against the return of date t+h-1 (same split)")
    ax.set_ylabel("mean RankIC")
    _title(ax, _text(f"4. RankIC decay within the {sheet.split} split (numbers: dates with a pair)"), legend=False)


def _turnover_panel(ax, sheet: TearSheet, dates: np.ndarray) -> None:
    """5. turnover of the top and bottom groups"""
    turnover = sheet.turnover
    width = 1.4 if len(dates) <= 60 else 0.9
    ax.plot(dates, turnover["G1"].to_numpy(), color=GROUP_COLOURS[0], linewidth=width, label="G1 (top group)")
    ax.plot(dates, turnover[f"G{GROUPS}"].to_numpy(), color=GROUP_COLOURS[-1], linewidth=width, alpha=0.85,
            label=f"G{GROUPS} (bottom group)")
    ax.plot(dates, turnover["long_short"].to_numpy(), color=LONG_SHORT, linewidth=1, linestyle="--",
            label="long-short book (the cost's base)")
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("share of names replaced")
    _title(ax, "5. Turnover: share of a group's names not in it the date before (1 on the first date)")
    _legend_above(ax, 3)
    _date_axis(ax)


def _long_short_panel(ax, sheet: TearSheet, dates: np.ndarray) -> None:
    """6. long-short gross and net of cost"""
    legs = sheet.long_short
    s = sheet.settings
    ax.plot(dates, legs["gross_cumulative"].to_numpy(), color=LONG_SHORT, linewidth=2, label="gross")
    ax.plot(dates, legs["net_cumulative"].to_numpy(), color=NET, linewidth=2, linestyle="--",
            label=f"net of cost ({s['cost']:.2%} x turnover)")
    ax.axhline(0, color="#888", linewidth=0.8)
    ax.set_ylabel("cumulative return")
    q = f"{s['quantile']:.0%}"
    _title(ax, f"6. Long-short return, summed: (top {q} - bottom {q}) / 2, the run's legs")
    _legend_above(ax, 2)
    _date_axis(ax)


def png_bytes(sheet: TearSheet) -> bytes:
    buffer = io.BytesIO()
    figure(sheet).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


# ---- HTML -----------------------------------------------------------------------------------------

def _cell(value: Any, pattern: str = "{:.6g}") -> str:
    if isinstance(value, bool):
        return html.escape(str(value))
    if isinstance(value, float):
        return "" if not math.isfinite(value) else html.escape(pattern.format(value))
    return html.escape(str(value))


def _table(frame, index_label: str, patterns: dict[str, str] | None = None, index_format=str) -> str:
    """An HTML table of a DataFrame (every text escaped; a NaN is an empty cell)."""
    patterns = patterns or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [index_label, *frame.columns])
    columns = [(frame[c].tolist(), patterns.get(str(c), "{:.6g}")) for c in frame.columns]
    rows = []
    for i, index in enumerate(frame.index):
        cells = "".join(f"<td>{_cell(values[i], pattern)}</td>" for values, pattern in columns)
        rows.append(f"<tr><th>{html.escape(index_format(index))}</th>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


_STYLE = """body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1560px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}p,li{font-size:14px;line-height:1.45}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:right;font-variant-numeric:tabular-nums}thead th{background:#eef2f7}tbody th{font-weight:normal;
text-align:left}.headline td{font-size:15px}.note{color:#b06000}img{max-width:100%;height:auto}
.scroll{max-height:520px;overflow:auto;display:inline-block}"""


def html_page(sheet: TearSheet, png: bytes) -> str:
    """A self-contained page: the headline, the notes, the figure (base64) and every number as tables."""
    name = html.escape(printable(Path(sheet.run).name))
    cells = headline_cells(sheet)
    headline = ("<table class='headline'><thead><tr>" + "".join(f"<th>{html.escape(k)}</th>" for k, _ in cells)
                + "</tr></thead><tbody><tr>" + "".join(f"<td>{html.escape(v)}</td>" for _, v in cells)
                + "</tr></tbody></table>")
    notes = "".join(f"<li class='note'>{html.escape(printable(n))}</li>" for n in sheet.notes)
    per_date = sheet.groups.join(sheet.sizes).join(sheet.ic).join(
        sheet.turnover.add_prefix("turnover ")).join(sheet.long_short[["gross", "net"]].add_prefix("LS "))
    per_date = per_date.rename(columns={"n_stocks": "stocks", "per_group": "per group", "ic": "IC",
                                        "rank_ic": "RankIC", "ic_rolling": f"IC {ROLLING_DATES}-date mean",
                                        "turnover long_short": "turnover LS book"})
    decay = sheet.decay.rename(columns={"rank_ic": "mean RankIC", "std": "std", "dates": "dates", "t": "t"})
    monthly = sheet.monthly_ic.copy()
    monthly.columns = list(MONTHS)
    day = lambda d: str(d.date())  # noqa: E731
    image = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Tear sheet: {name} ({html.escape(printable(sheet.split))})</title>
<style>{_STYLE}</style></head><body>
<h1>Tear sheet: {name}</h1>
<p>Run directory: <code>{html.escape(printable(sheet.run))}</code><br>{html.escape(printable(_describe(sheet)))}.
Made from predictions.parquet and daily.csv with <code>studio report</code> (docs/research.md, "Tear sheet").</p>
<h2>Headline</h2>
{headline}
{f"<ul>{notes}</ul>" if notes else ""}
{_baselines_html(sheet)}
<img alt="tear sheet figure" src="data:image/png;base64,{image}">
<h2>RankIC decay (within the {html.escape(printable(sheet.split))} split)</h2>
<p>At horizon h: the RankIC of the scores of date t with the returns of date t+h-1 (same symbol, both dates of
the split; fewer dates pair up at larger h).</p>
{_table(decay, "h", {"mean RankIC": "{:.4f}", "std": "{:.4f}", "t": "{:.2f}"}, str)}
<h2>Mean IC by month</h2>
{_table(monthly, "year", {m: "{:.4f}" for m in MONTHS}, str)}
<h2>Per date</h2>
<p>G1..G5: mean return of each score group (G1 the highest scores, n = stocks // 5 each, Qlib's report);
G1-G5 not halved; ic / rank_ic: Pearson / Spearman of score and return; turnover: share of the group's names
not in it the date before; LS gross: (long - short) / 2 of the run's legs, LS net: gross - cost x turnover.</p>
<div class="scroll">{_table(per_date, "date", {}, day)}</div>
</body></html>
"""


def _baselines_html(sheet: TearSheet) -> str:
    """The baselines section: the verdicts in words and the correlation table (panels 7 and 8 draw them)."""
    from studio.train.report_baselines import TABLE_FORMATS

    panel = sheet.baselines
    if panel is None:
        return ""
    words = "".join(f"<li>{html.escape(printable(v))}</li>" for v in panel.verdicts)
    return (f"<h2 id='baselines'>Model vs baselines (same test dates and stocks)</h2>\n"
            f"<p>Classic bar factors judged on the run's own cross-sections (baselines.json; docs/metrics.md, "
            f"\"Baselines\"). Panel 7 of the figure: the cumulative long-short of each.</p>\n"
            f"{f'<ul>{words}</ul>' if words else ''}\n{_table(panel.table, 'baseline', TABLE_FORMATS, str)}")


# ---- writing --------------------------------------------------------------------------------------

def output_format(path: str | os.PathLike[str]) -> str:
    """"html" or "png" from the file name (a ReportError otherwise)."""
    suffix = Path(path).suffix.lower()
    kind = {".html": "html", ".htm": "html", ".png": "png"}.get(suffix)
    if kind is None:
        raise ReportError(f"--to {printable(os.fspath(path))}: expects a .html or .png file")
    return kind


def write_report(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], split: str = "test") -> TearSheet:
    """Write the tear sheet of ``split`` to ``out`` (.html or .png), atomically; returns its figures."""
    return write_report_and_figure(run_dir, out, split)[0]


def write_report_and_figure(run_dir: str | os.PathLike[str], out: str | os.PathLike[str],
                            split: str = "test") -> tuple[TearSheet, bytes]:
    """As :func:`write_report`, and the figure as PNG bytes too (the studio shows it; drawn once)."""
    kind = output_format(out)
    if "\x00" in os.fspath(out):
        raise ReportError("--to: the path holds a NUL character")
    sheet = tear_sheet(run_dir, split)
    png = png_bytes(sheet)
    data: str | bytes = png if kind == "png" else html_page(sheet, png)
    target = Path(out)
    if target.is_dir():
        raise ReportError(f"{_shown(target)}: is a folder, not a file to write")
    try:
        atomic_write(target, data)
    except DiskFullError as exc:  # written whole or not at all; said as every command says it
        raise ReportError(str(exc)) from None
    except OSError as exc:
        raise ReportError(f"{_shown(target)}: cannot write ({exc.strerror or exc})") from None
    return sheet, png
