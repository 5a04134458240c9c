"""The import policies as stages: :func:`assemble` runs :data:`IMPORT_STAGES` in order over the rows read
by :mod:`studio.data.importer` (in memory) or :mod:`studio.data.import_chunked` (buckets on disk).

A stage is one policy (duplicates, the session, the bar grid, early closes, ...) in three steps, as
Qlib's processors fit and then apply:

- ``decide(state)``: choose what to do from what the earlier stages gathered (a global statistic: the
  histogram of bar times, the dates' votes, ...); notes and counts; a DataError refuses the import (a
  mapping that would drop or merge most of a file's rows is refused, not applied).
- ``apply(state, rows)``: the decision on one bucket's rows (a bucket holds every row of its symbols),
  when ``applies(state)``; it returns what it saw there.
- ``gather(state, seen)``: what every bucket saw, merged into the facts the later stages decide from,
  with the stage's counts and notes.

Every global statistic is gathered over all buckets before a stage decides from it, so any split of the
symbols into buckets gives the same panel, bit for bit. The order of the stages is the order of the
notes and counts in the panel.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.data import store
from studio.data.importer import (
    ABSURD_VALUE_COUNTS,
    DAY_SECONDS,
    FLOW_TEXT,
    MAX_FLOW,
    MAX_PRICE,
    PRICE_TEXT,
    DataError,
    FileBars,
    FileInfo,
    ImportConfig,
    exchange_zone,
    few,
    frequent_times,
    guess_time_column,
    hhmm,
    histogram,
    is_zone,
    merge_histograms,
    parse_session,
    plural,
    read_all,
    to_local,
)
from studio.data.panel import FLOW_FEATURES, LEFT_OUT, PRICE_FEATURES, BarPanel

#: the counts of the value policy (bad closes, volumes, turnovers, opens / highs / lows), in order
VALUE_COUNTS = ("bars with NaN/zero/negative close treated as missing", "NaN/negative volume set to 0",
                "NaN/negative turnover set to 0", "NaN/zero open, high or low set to the close",
                "zero-volume bars kept", *ABSURD_VALUE_COUNTS)


# ---- rows and buckets ---------------------------------------------------------------------------

class Rows:
    """Rows of bars being imported: symbol codes, seconds, values per field and (once the bar grid is
    known) the bar slot; every array one entry per row."""

    def __init__(self, arrays: dict[str, np.ndarray], vals: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.vals = vals

    def __len__(self) -> int:
        return len(self.arrays["secs"])

    @property
    def sym(self) -> np.ndarray:
        return self.arrays["sym"]

    @property
    def secs(self) -> np.ndarray:
        return self.arrays["secs"]

    def keep(self, mask: np.ndarray) -> None:
        self.arrays = {k: v[mask] for k, v in self.arrays.items()}
        self.vals = {f: v[mask] for f, v in self.vals.items()}


class MemoryBucket:
    """The rows of every symbol, kept in memory (the import of files that fit)."""

    def __init__(self, rows: Rows) -> None:
        self.rows: Rows | None = rows

    def load(self) -> Rows:
        return self.rows

    def save(self, rows: Rows) -> None:
        self.rows = rows


def each_bucket(buckets: Sequence, step, save: bool = True) -> list:
    """``step(rows)`` on each bucket's rows (a bucket holds every row of its symbols); ``save``: the
    rows as ``step`` left them are the bucket's from now on."""
    results = []
    for bucket in buckets:
        rows = bucket.load()
        results.append(step(rows))
        if save:
            bucket.save(rows)
    return results


def _time_of_day(secs: np.ndarray) -> np.ndarray:
    return secs - secs // DAY_SECONDS * DAY_SECONDS


def _sum_padded(arrays: Sequence[np.ndarray]) -> np.ndarray:
    total = np.zeros(max((len(a) for a in arrays), default=0), np.int64)
    for a in arrays:
        total[: len(a)] += a
    return total


def _day_keys(rows: Rows) -> tuple[np.ndarray, int, int]:
    """(symbol-day key per row, first day, days spanned) of rows: keys are unique per symbol and day
    and, for rows sorted by symbol and time, ascending."""
    day = rows.secs // DAY_SECONDS
    if len(day) == 0:
        return np.zeros(0, np.int64), 0, 1
    first = int(day.min())
    span = int(day.max()) - first + 1
    return rows.sym.astype(np.int64) * span + (day - first), first, span


# ---- the rows of the files ----------------------------------------------------------------------

def import_features(files: Sequence[FileInfo]) -> list[str]:
    """The panel's features: the price fields every file has, then volume where every file has one and
    turnover where every file has one or a volume to derive it from."""
    return ([f for f in PRICE_FEATURES if all(f in i.value_fields for i in files)]
            + [f for f in FLOW_FEATURES if all(i.gives(f) for i in files)])


def file_rows(part: FileBars, symbol_index: dict[str, int], features: Sequence[str]):
    """A file's (or batch's) rows with global symbol codes (``symbol_index``, in order of first
    appearance), whether each row is usable, and its values of ``features`` (turnover derived as
    close x volume where the file has none)."""
    remap = np.array([symbol_index.setdefault(name, len(symbol_index)) for name in part.symbol_names] or [0],
                     dtype=np.int64)
    has_sym = part.symbol_codes >= 0
    sym = np.where(has_sym, remap[np.clip(part.symbol_codes, 0, None)], -1)
    vals = {}
    for f in features:
        if f in part.values:
            vals[f] = part.values[f]
        elif f == "turnover" and "volume" in part.values and not part.returns:
            with np.errstate(over="ignore", invalid="ignore"):  # from a bad close or volume: counted there
                vals[f] = part.values["close"] * part.values["volume"]
        else:
            vals[f] = np.full(len(sym), np.nan)
    return sym, part.time_ok & has_sym, vals


def read_counts(rows: int, without_symbol: int, unusable: int) -> dict[str, int]:
    """The counts of the reading, the same for both imports: rows read, those without a symbol, and
    those with a timestamp that cannot be read (``unusable``: rows without either)."""
    return {"rows read": rows, "rows without a symbol dropped": without_symbol,
            "rows with unreadable timestamps dropped": unusable - without_symbol}


def build_panel(parts: list[FileBars], config: ImportConfig, source: str = "") -> BarPanel:
    """Apply the import policies to the rows of ``parts`` and lay them out as a BarPanel in memory."""
    files = [FileInfo.of(p) for p in parts]
    symbol_index: dict[str, int] = {}
    features = import_features(files)
    sym_list, sec_list, ok_list, utc_list = [], [], [], []
    value_lists: dict[str, list[np.ndarray]] = {f: [] for f in features}
    for p in parts:
        sym, ok, vals = file_rows(p, symbol_index, features)
        sym_list.append(sym)
        sec_list.append(p.seconds)
        ok_list.append(ok)
        utc_list.append(np.full(len(sym), p.utc))
        for f in features:
            value_lists[f].append(vals[f])
    sym = np.concatenate(sym_list) if parts else np.zeros(0, np.int64)
    rows = Rows({"sym": sym, "secs": np.concatenate(sec_list) if parts else np.zeros(0, np.int64),
                 "ok": np.concatenate(ok_list) if parts else np.zeros(0, bool),
                 "utc": np.concatenate(utc_list) if parts else np.zeros(0, bool)},
                {f: np.concatenate(v) if v else np.zeros(0) for f, v in value_lists.items()})
    read = read_counts(len(sym), sum(p.rows_without_symbol for p in parts), int((~rows.arrays["ok"]).sum()))
    return assemble([MemoryBucket(rows)], files, list(symbol_index), features, read, config, source)


def import_in_memory(files: list[Path], config: ImportConfig, source: str) -> BarPanel:
    """Read every file whole and build the panel in memory (the import of files that fit; the entry point,
    studio.data.load.import_bars, decides)."""
    return build_panel(read_all(files, config), config, source)


# ---- the state the stages share -------------------------------------------------------------------

@dataclass
class ImportState:
    """The import under way: its rows (``buckets``), settings, the panel's notes and counts, and the facts
    and decisions of the stages so far (each set by the stage named beside it)."""

    buckets: Sequence
    files: list[FileInfo]
    #: symbol names by code
    names: list[str]
    features: list[str]
    #: the counts of the reading (read_counts)
    read: dict[str, int]
    config: ImportConfig
    source: str = ""
    #: where the values go (None: in memory)
    values_file: Path | None = None
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    # FilesStage
    derived_files: list[FileInfo] = field(default_factory=list)
    # TimeZoneStage
    zone: str | None = None
    # ReturnsStage: the files hold returns, from which the close is rebuilt
    from_returns: bool = False
    # DuplicatesStage, then EdgePrintsStage: the histogram of the rows' times of day
    times: np.ndarray | None = None
    time_counts: np.ndarray | None = None
    # EdgePrintsStage: (which, at, into) of edge_print, and the bar stamp its prints tell
    edge: tuple[str, int, int] | None = None
    stamp_override: str | None = None
    # SessionStage: the session given (open, close, bar stamp), how it was read, the bars outside it
    session: tuple[int, int, str] | None = None
    stamp_text: str = ""
    extended: int = 0
    n_rows: int = 0
    # BarGridStage: bars per day, their times, the session's note, how P was found, bars a traded day needs
    p: int = 0
    grid: np.ndarray | None = None
    bounded: bool = False
    session_text: str = ""
    bars_how: str = ""
    need: int = 1
    # ValuesStage: the dates' early-close votes (votes[day - day0, slot]: symbols whose last bar it is)
    day0: int = 0
    n_span: int = 1
    votes: np.ndarray | None = None
    # SymbolDaysStage: the early-close slot per date (None: none), the days with any bar, traded symbol-days
    cut: np.ndarray | None = None
    early_dates: list[str] = field(default_factory=list)
    all_days: np.ndarray | None = None
    traded_sym: np.ndarray | None = None
    traded_day: np.ndarray | None = None
    traded_bars: np.ndarray | None = None
    # TradingDatesStage
    good_day: np.ndarray | None = None
    kept_days: np.ndarray | None = None
    # SymbolsStage: the panel's symbols and dates, codes and days to their rows, traded, first / last days
    symbols: list[str] = field(default_factory=list)
    dates: np.ndarray | None = None
    s_of_code: np.ndarray | None = None
    d_of_day: np.ndarray | None = None
    traded: np.ndarray | None = None
    first_d: np.ndarray | None = None
    last_d: np.ndarray | None = None
    # LayOutStage
    values: np.ndarray | None = None

    @property
    def source_name(self) -> str:
        return self.source or "the source"

    def nothing_left(self) -> DataError:
        return DataError(f"{self.source_name}: no bars left after filtering ({_summary(self.counts)})")


class ImportStage:
    """One import policy (see the module doc). The defaults do nothing: a stage that only decides
    defines ``decide``; one that walks the rows defines ``applies``, ``apply`` and ``gather``."""

    #: the rows as ``apply`` leaves them are the bucket's from now on (False: the walk only reads them)
    saves_rows = True

    def decide(self, state: ImportState) -> None:
        pass

    def applies(self, state: ImportState) -> bool:
        return False

    def apply(self, state: ImportState, rows: Rows):
        return None

    def gather(self, state: ImportState, seen: list) -> None:
        pass


def run_stage(stage: ImportStage, state: ImportState) -> None:
    """Decide, apply bucket by bucket (when the stage applies), gather."""
    stage.decide(state)
    if stage.applies(state):
        seen = each_bucket(state.buckets, functools.partial(stage.apply, state), save=stage.saves_rows)
        stage.gather(state, seen)


# ---- the stages, in order -----------------------------------------------------------------------

class FilesStage(ImportStage):
    """Daily and intraday files are not mixed; fields not every file has are left out (said); which files
    derive their turnover; the reading's counts."""

    def decide(self, state: ImportState) -> None:
        files, n_files = state.files, len(state.files)
        daily = [f for f in files if f.date_only]
        if daily and len(daily) < n_files:
            intraday = next(f for f in files if not f.date_only)
            raise DataError(f"{daily[0].path}: holds dates without a time of day (daily bars?) while "
                            f"{intraday.path} holds intraday bars; import them separately (a folder's files "
                            "can be chosen with the pattern option)")
        for fld in ("open", "high", "low"):
            if fld not in state.features and any(fld in f.value_fields for f in files):
                state.notes.append(f"{fld} left out: not every file has an {fld} column")
        left_out = [fld for fld in FLOW_FEATURES if fld not in state.features]
        if left_out:
            state.notes.append(flows_left_out(left_out, files))
        state.derived_files = ([f for f in files if "turnover" not in f.value_fields]
                               if "turnover" in state.features else [])
        state.counts["files read"] = n_files
        state.counts.update(state.read)


def flows_left_out(fields: Sequence[str], files: Sequence[FileInfo]) -> str:
    """The note on volume and / or turnover left out: which files lack them and, for one, its columns
    (studio.data.panel.missing_features quotes it to a graph that reads them)."""
    lacking = [f for f in files if not all(f.gives(fld) for fld in fields)]
    which = "the files have" if len(lacking) == len(files) else f"{len(lacking)} of {len(files)} files have"
    first = lacking[0].header
    columns = ", ".join(h.strip() for h in first[:12]) + (", ..." if len(first) > 12 else "")
    named = " and ".join(fields)
    return f"{named} {LEFT_OUT} {which} no {' or '.join(fields)} column ({lacking[0].path.name} has {columns})"


class TimeZoneStage(ImportStage):
    """Stamps with a time zone are UTC instants, read as the exchange's wall-clock time: the zone given,
    the one the files name, else the one in which the sessions keep their clock times year-round."""

    def decide(self, state: ImportState) -> None:
        config, counts, notes, n_files = state.config, state.counts, state.notes, len(state.files)
        utc_files = [f for f in state.files if f.utc_times is not None]
        counts["stamps with a time zone read in the exchange's"] = 0
        if not utc_files:
            if config.timezone is not None:
                notes.append(f"time zone {config.timezone} not used: the stamps carry no zone and are read as "
                             "they are")
            return
        utc_times, utc_counts = merge_histograms([f.utc_times for f in utc_files])
        which = ("the files'" if len(utc_files) == n_files
                 else f"{len(utc_files)} of {n_files} files' (the others' are read as they are)")
        named = {z for f in utc_files for z in f.named_zones}  # a name no zone has (a file's text): inferred
        named = named if all(is_zone(z) for z in named) else set()
        if config.timezone is not None:
            zone, how = config.timezone, "as set with --timezone"
        elif len(named) == 1 and all(f.named_zones for f in utc_files):
            zone, how = next(iter(named)), "the zone the files' timestamp column names"
        elif len(utc_times) and not np.any(utc_times % DAY_SECONDS):
            zone = None  # stamped at midnight UTC: dates, not instants of a session
            notes.append(f"time zone: {which} stamps are midnights UTC and are read as dates")
        else:
            zone, how = exchange_zone(utc_times, utc_counts, state.source)
        if zone is not None:
            state.zone = zone
            counts["stamps with a time zone read in the exchange's"] = int(utc_counts.sum())
            notes.append(f"time zone: {which} stamps carry a UTC offset and are read as {zone} wall-clock time "
                         f"({how}; {plural(int(utc_counts.sum()), 'stamp')})")


class DuplicatesStage(ImportStage):
    """Rows sorted by (symbol, time), stable, and the last of equal keys kept; unusable rows dropped and
    stamps with a zone read in the exchange's. Too many duplicates (a time-of-day column not mapped)
    refuse the import."""

    def applies(self, state: ImportState) -> bool:
        return True

    def apply(self, state: ImportState, rows: Rows):
        rows.keep(rows.arrays.pop("ok"))
        utc = rows.arrays.pop("utc", None)
        if state.zone is not None and utc is not None and utc.any():
            secs = rows.secs.copy()
            secs[utc] = to_local(secs[utc], state.zone)
            rows.arrays["secs"] = secs
        dropped = 0
        if len(rows):
            t0 = int(rows.secs.min())
            key = rows.sym.astype(np.int64) * (1 << 40) + (rows.secs - t0)
            order = np.argsort(key, kind="stable")
            key = key[order]
            rows.keep(order)
            last = np.ones(len(key), dtype=bool)
            last[:-1] = key[1:] != key[:-1]
            dropped = int((~last).sum())
            rows.keep(last)
        return dropped, histogram(_time_of_day(rows.secs))

    def gather(self, state: ImportState, seen: list) -> None:
        counts, config = state.counts, state.config
        duplicates = sum(d for d, _ in seen)
        state.times, state.time_counts = merge_histograms([h for _, h in seen])
        counts["duplicate timestamps dropped (last kept)"] = duplicates
        state.notes.append("duplicate timestamps of a symbol: the last row kept "
                           f"({plural(duplicates, 'row')} dropped)")
        readable = counts["rows read"] - counts["rows without a symbol dropped"] - counts[
            "rows with unreadable timestamps dropped"]
        if readable and duplicates > config.max_duplicate_share * readable:
            raise DataError(duplicates_message(state.files, duplicates, readable, config))


class ReturnsStage(ImportStage):
    """Returns-only files (a column of simple returns, no price): each symbol's close becomes an index, the
    cumulative product of (1 + return) over its rows in time order (duplicates dropped, before any bar is
    dropped: a bar outside the session still moved the price), starting at 1 before its first row. A return
    that is missing, infinite or -100% or less makes that bar missing and leaves the index where it was.
    Files with returns and files with prices are not mixed."""

    def decide(self, state: ImportState) -> None:
        from_returns = [f for f in state.files if f.returns]
        if from_returns and len(from_returns) < len(state.files):
            first, priced = from_returns[0], next(f for f in state.files if not f.returns)
            raise DataError(f"{first.path}: holds returns (column {first.columns_used['returns']!r}) while "
                            f"{priced.path} holds prices; import them separately (a folder's files can be chosen "
                            "with the pattern option)")
        state.from_returns = bool(from_returns)

    def applies(self, state: ImportState) -> bool:
        return state.from_returns

    def apply(self, state: ImportState, rows: Rows):
        close, bad = returns_index(rows.sym, rows.vals["close"])
        rows.vals["close"] = close
        return bad

    def gather(self, state: ImportState, seen: list) -> None:
        bad = state.counts["bars with a missing, infinite or <= -100% return treated as missing"] = sum(seen)
        column = state.files[0].columns_used["returns"]
        state.notes.append(f"close rebuilt from returns (column {column!r}, read as simple returns: 0.01 = 1%): each "
                           "symbol's close is an index, the cumulative product of (1 + return) over its rows in "
                           "time order, starting at 1 before its first row; a missing, infinite or <= -100% return "
                           f"makes its bar missing and leaves the index unchanged ({plural(bad, 'bar')})")


def returns_index(sym: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, int]:
    """Each symbol's index of ``returns`` (rows sorted by symbol and time): the cumulative product of
    (1 + return) over its rows, NaN where a return is unusable (that step leaves the index unchanged); and
    how many were. Each symbol is compounded on its own, so the bits do not depend on its neighbours."""
    usable = np.isfinite(returns) & (returns > -1)
    growth = np.where(usable, 1.0 + np.where(usable, returns, 0.0), 1.0)
    index = np.empty(len(returns))
    if len(sym):
        starts = np.flatnonzero(np.r_[True, sym[1:] != sym[:-1]])
        for a, b in zip(starts, np.r_[starts[1:], len(sym)], strict=True):
            np.cumprod(growth[a:b], out=index[a:b])
    return np.where(usable, index, np.nan), int((~usable).sum())


class EdgePrintsStage(ImportStage):
    """A closing print stamped at the session's end (US 1-minute files: 09:30 .. 16:00, 391 stamps) is the
    day's close, not a bar of its own: merged into the last bar; likewise an opening print stamped at the
    session's start in bar-end files."""

    def decide(self, state: ImportState) -> None:
        state.edge = edge_print(state.times, state.time_counts, state.config)

    def applies(self, state: ImportState) -> bool:
        return state.edge is not None

    def apply(self, state: ImportState, rows: Rows):
        if not len(rows):
            return 0, 0, histogram(rows.secs)
        sym, secs, rows.vals, merged, moved = merge_edge_prints(rows.sym, rows.secs, rows.vals, *state.edge)
        rows.arrays = {"sym": sym, "secs": secs}
        return merged, moved, histogram(_time_of_day(secs))

    def gather(self, state: ImportState, seen: list) -> None:
        which, at, into = state.edge
        merged, moved = sum(d[0] for d in seen), sum(d[1] for d in seen)
        state.times, state.time_counts = merge_histograms([d[2] for d in seen])
        closing = which == "closing"
        state.stamp_override = "start" if closing else "end"
        state.counts[f"{which} prints merged into the {'last' if closing else 'first'} bar"] = merged
        state.counts[f"{which} prints taken as the bar (no bar at {hhmm(into)})"] = moved
        what = "close is the print; high / low widened" if closing else "open is the print; high / low widened"
        state.notes.append(f"{which} prints stamped {hhmm(at)} (the session's {'end' if closing else 'start'}) "
                           f"belong to the day's {'close' if closing else 'open'}: each is merged into the "
                           f"{hhmm(into)} bar ({what}; volume and turnover added), or becomes that bar where the "
                           f"day has none ({plural(merged, 'print')} merged, {moved:,} taken as the bar)")


class SessionStage(ImportStage):
    """A session given: bars outside it (bar-start or bar-end stamps, given or found) are extended-hours
    bars, dropped. (Without one, BarGridStage infers it.)"""

    def decide(self, state: ImportState) -> None:
        config, times, time_counts = state.config, state.times, state.time_counts
        state.n_rows = int(time_counts.sum())
        if config.session is None:
            return
        open_s, close_s = parse_session(config.session)
        stamp = config.bar_stamp
        if state.stamp_override is not None and stamp in ("auto", state.stamp_override):
            stamp = state.stamp_override
            state.stamp_text = f" (bar-{stamp} stamps, with {state.edge[0]} prints at {hhmm(state.edge[1])})"
        elif stamp == "auto":
            at_open, at_close = (int(time_counts[times == t].sum()) for t in (open_s, close_s))
            stamp = "end" if at_close > at_open else "start"
            state.stamp_text = f" (bar-{stamp} stamps, found from the bars at {hhmm(open_s)} and {hhmm(close_s)})"
        else:
            state.stamp_text = f" (bar-{stamp} stamps)"
        inside = (times >= open_s) & (times < close_s) if stamp == "start" else (times > open_s) & (times <= close_s)
        state.extended = int(time_counts[~inside].sum())
        state.n_rows -= state.extended
        state.counts["extended-hours bars dropped"] = state.extended
        state.session = (open_s, close_s, stamp)

    def applies(self, state: ImportState) -> bool:
        return state.session is not None

    def apply(self, state: ImportState, rows: Rows):
        open_s, close_s, stamp = state.session
        tod = _time_of_day(rows.secs)
        rows.keep((tod >= open_s) & (tod < close_s) if stamp == "start" else (tod > open_s) & (tod <= close_s))


class BarGridStage(ImportStage):
    """Bars per day (set, or the most common number on a symbol-day) and the grid of bar times (the most
    common ones); without a session given, the session is the grid's span (bars outside it: extended
    hours)."""

    def decide(self, state: ImportState) -> None:
        config = state.config
        if state.n_rows == 0:
            raise state.nothing_left()
        p, grid, per_day_hist, (times, time_counts) = self.grid_for(state)
        state.bounded = config.session is None
        if state.bounded:
            # the session is the span of the grid; bars per day again, now without the extended hours
            p2, grid2, per_day_hist, _ = self.grid_for(state, int(grid[0]), int(grid[-1]))
            if p2 != p:
                p, grid = p2, grid2
                per_day_hist = self.grid_for(state, int(grid[0]), int(grid[-1]))[2]
            state.extended = int(time_counts[(times < grid[0]) | (times > grid[-1])].sum())
            state.session_text = (f"session inferred from the {p} most common bar times: bars stamped "
                                  f"{hhmm(grid[0])} to {hhmm(grid[-1])}")
        else:
            state.session_text = f"session {config.session}{state.stamp_text}"
        n_full = int(per_day_hist[p]) if p < len(per_day_hist) else 0
        found = ("as set" if config.bars_per_day is not None
                 else "the most common number of in-session bars on a symbol-day")
        state.bars_how = f"{found}; {n_full:,} of {int(per_day_hist.sum()):,} symbol-days have {p}"
        state.p, state.grid = p, grid
        state.need = max(1, math.ceil(config.min_day_share * p - 1e-9))

    @staticmethod
    def grid_for(state: ImportState, lo: int | None = None,
                 hi: int | None = None) -> tuple[int, np.ndarray, np.ndarray, tuple]:
        """Bars per day (set or the most common count), the grid of bar times, the histogram of bars per
        symbol-day and that of the bar times, of the rows whose time of day is in [lo, hi] (all: None)."""
        def statistics(rows: Rows):
            keys = _day_keys(rows)[0]
            tod = _time_of_day(rows.secs)
            if lo is not None:
                chosen = (tod >= lo) & (tod <= hi)
                keys, tod = keys[chosen], tod[chosen]
            return np.bincount(np.unique(keys, return_counts=True)[1]), histogram(tod)

        done = each_bucket(state.buckets, statistics, save=False)
        per_day_hist = _sum_padded([d[0] for d in done])
        bar_times, bar_counts = merge_histograms([d[1] for d in done])
        if state.config.bars_per_day is not None:
            n_bars = state.config.bars_per_day
        else:
            n_bars = int(np.flatnonzero(per_day_hist == per_day_hist.max())[-1])
        if len(bar_times) < n_bars:
            raise DataError(f"{state.source_name}: only {len(bar_times)} distinct bar times for {n_bars} "
                            "bars per day")
        top = np.argsort(-bar_counts, kind="stable")[:n_bars]
        return n_bars, np.sort(bar_times[top]), per_day_hist, (bar_times, bar_counts)


class ValuesStage(ImportStage):
    """Bars on the grid get their slot (others are dropped: off-grid, or outside the inferred session);
    bad values: a NaN, zero, negative, infinite or absurd close makes the bar missing, such a volume or
    turnover is 0, such an open / high / low is the close. Gathers each date's early-close votes."""

    def applies(self, state: ImportState) -> bool:
        return True

    def apply(self, state: ImportState, rows: Rows):
        grid, p = state.grid, state.p
        tod = _time_of_day(rows.secs)
        in_session = (tod >= grid[0]) & (tod <= grid[-1]) if state.bounded else np.ones(len(tod), dtype=bool)
        slot = np.searchsorted(grid, tod)
        on_grid = in_session & (slot < p) & (grid[np.clip(slot, 0, p - 1)] == tod)
        off_grid = int((in_session & ~on_grid).sum())
        rows.arrays["slot"] = slot
        rows.keep(on_grid)
        tally, bad_close = _clean_values(rows.vals, bool(state.derived_files))
        rows.keep(~bad_close)
        return (off_grid, tally, *_last_bar_votes(rows, p))

    def gather(self, state: ImportState, seen: list) -> None:
        counts, notes, p, grid = state.counts, state.notes, state.p, state.grid
        counts["extended-hours bars dropped"] = state.extended
        counts["off-grid bars dropped"] = off_grid = sum(d[0] for d in seen)
        notes.append(f"{state.session_text}; {plural(state.extended, 'bar')} outside it dropped (extended hours)")
        grid_text = ", ".join(hhmm(t) for t in grid) if p <= 8 else f"{hhmm(grid[0])} .. {hhmm(grid[-1])}"
        notes.append(f"{p} bars per day ({state.bars_how}); bar times {grid_text}; "
                     f"{plural(off_grid, 'bar')} at other times dropped")
        for i, name in enumerate(VALUE_COUNTS):
            counts[name] = sum(d[1][i] for d in seen)
        notes.extend(value_notes(state.features, counts))
        # the votes of every bucket on one calendar of dates
        spans = [d[2] for d in seen if d[2][1]]
        state.day0 = day0 = min((first for first, _ in spans), default=0)
        state.n_span = (max(first + span for first, span in spans) - day0) if spans else 1
        votes = np.zeros((state.n_span, p), dtype=np.int64)
        for (first, span), bucket_votes in ((d[2], d[3]) for d in seen):
            if len(bucket_votes):
                votes[first - day0: first - day0 + span] += bucket_votes
        state.votes = votes if spans else None


def value_notes(features: Sequence[str], counts: dict[str, int]) -> list[str]:
    """The value policy's two notes, worded for the fields the data has (close-only data hears nothing of
    volume, turnover or open / high / low)."""
    flows = [f for f in FLOW_FEATURES if f in features]
    ohl = [f for f in ("open", "high", "low") if f in features]
    absurd = [name for name in ABSURD_VALUE_COUNTS if counts[name]]
    flow_limit = f" or {' / '.join(flows)} (over {FLOW_TEXT})" if flows else ""
    rules = ["such a close makes the bar missing"]
    if flows:
        rules.append(f"such a {' or '.join(flows)} is set to 0")
    if ohl:
        rules.append(f"such an {' / '.join(ohl)} is set to the close")
    bad = (f"infinite values, and numbers no price (over {PRICE_TEXT}){flow_limit} is, are bad values: "
           + ", ".join(rules) + " ("
           + ("; ".join(f"{name}: {counts[name]:,}" for name in absurd) if absurd else "none") + ")")
    nan = [f"a NaN, zero or negative close makes the bar missing "
           f"({plural(counts['bars with NaN/zero/negative close treated as missing'], 'bar')})"]
    if flows:
        nan.append(f"NaN or negative {' / '.join(flows)} set to 0 ("
                   + " / ".join(f"{counts[f'NaN/negative {f} set to 0']:,}" for f in flows) + ")")
    if ohl:
        nan.append(f"NaN {' / '.join(ohl)} set to the close "
                   f"({counts['NaN/zero open, high or low set to the close']:,})")
    if "volume" in flows:
        nan.append("zero volume kept as a real value")
    return [bad, "; ".join(nan)]


def filled_bars_notes(features: Sequence[str], n_short: int, n_missing: int, n_first: int,
                      n_suspended: int) -> list[str]:
    """The notes on short days and suspended days, worded for the fields the data has."""
    flows = [f for f in FLOW_FEATURES if f in features]
    ohl = [f for f in ("open", "high", "low") if f in features]
    short_fills = ["close carried from the previous bar (the previous day's close for a day's first bars)"]
    if ohl:
        short_fills.append(" = ".join(ohl) + " = that close")
    if flows:
        short_fills.append(" and ".join(flows) + " 0")
    first_from = "open" if "open" in features else "close"
    suspended_fill = "the previous close" + (f", zero {' and '.join(flows)}" if flows else "")
    return [f"short days: the missing bars of a traded day are filled: {', '.join(short_fills)} "
            f"({plural(n_short, 'symbol-day')}, {plural(n_missing, 'bar')}; {n_first:,} before a symbol's first "
            f"bar take that bar's {first_from})",
            f"suspended days (listed, not traded): traded False, bars filled with {suspended_fill} "
            f"({plural(n_suspended, 'symbol-day')})"]


def _clean_values(vals: dict[str, np.ndarray], derived_turnover: bool) -> tuple[tuple, np.ndarray]:
    """The value policy on one bucket's bars (``vals`` edited in place): the counts of VALUE_COUNTS, and
    which bars have a bad close (missing)."""
    close = vals["close"]
    # NaN, zero or negative (-inf too); infinite; a finite number no price is (1e308 would become
    # inf in the float32 panel): each counted under its own name
    close_nan = np.isnan(close) | (close <= 0)
    close_inf, close_absurd = np.isposinf(close), np.isfinite(close) & (close > MAX_PRICE)
    bad_close = close_nan | close_inf | close_absurd

    def flow(f: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if f not in vals:  # a field the files do not have (close-only data): nothing to clean or count
            none = np.zeros(len(close), dtype=bool)
            return none, none, none, none
        value = vals[f]
        nan = np.isnan(value) | (value < 0)
        inf, absurd = np.isposinf(value), np.isfinite(value) & (value > MAX_FLOW)
        bad = nan | inf | absurd
        vals[f] = np.where(bad, 0.0, value)
        return bad, nan, inf, absurd

    bad_vol, vol_nan, vol_inf, vol_absurd = flow("volume")
    _, turn_nan, turn_inf, turn_absurd = flow("turnover")
    # turnover derived from a bad volume is 0 like the volume, not counted twice
    turn_counted = ~bad_close & (~bad_vol if derived_turnover else True)
    bad_ohl = ohl_absurd = 0
    for f in ("open", "high", "low"):
        if f in vals:
            value = vals[f]
            nan = np.isnan(value) | (value <= 0)
            absurd = np.isposinf(value) | (np.isfinite(value) & (value > MAX_PRICE))
            bad_ohl += int((nan & ~bad_close).sum())
            ohl_absurd += int((absurd & ~bad_close).sum())
            vals[f] = np.where(nan | absurd, close, value)
    tally = (int(close_nan.sum()), int((vol_nan & ~bad_close).sum()), int((turn_nan & turn_counted).sum()),
             bad_ohl, int(((vals["volume"] == 0) & ~bad_vol & ~bad_close).sum()) if "volume" in vals else 0,
             int(close_inf.sum()), int(close_absurd.sum()), int((vol_inf & ~bad_close).sum()),
             int((vol_absurd & ~bad_close).sum()), int((turn_inf & turn_counted).sum()),
             int((turn_absurd & turn_counted).sum()), ohl_absurd)
    return tally, bad_close


def _last_bar_votes(rows: Rows, p: int) -> tuple[tuple[int, int], np.ndarray]:
    """Early-close votes of one bucket: the last bar of each symbol-day (rows are sorted by symbol and
    time, so each symbol-day is one run of rows), counted per date; and (first day, days spanned)."""
    keys, first, span = _day_keys(rows)
    votes = np.zeros((0, p), dtype=np.int64)
    if len(keys) and p > 1:
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        last_slot = np.maximum.reduceat(rows.arrays["slot"], starts)
        votes = np.zeros((span, p), dtype=np.int64)
        np.add.at(votes, ((keys[starts] % span).astype(np.int64), last_slot), 1)
    return (first, span if len(keys) else 0), votes


class SymbolDaysStage(ImportStage):
    """Early closes: a date on which most symbols' last bar is the same one before the session's last (a
    half day) ends there for every symbol; bars after it are after-hours trading, dropped. Partial days:
    a symbol-day with fewer than ``need`` bars is not traded, its bars dropped. Gathers the traded
    symbol-days."""

    def decide(self, state: ImportState) -> None:
        p, votes = state.p, state.votes
        if votes is None or p <= 1:
            return
        symbols_on = votes.sum(axis=1)
        close_slot = votes.argmax(axis=1)
        early = ((close_slot < p - 1) & (close_slot + 1 >= state.need) & (symbols_on > 0)
                 & (votes.max(axis=1) * 2 > symbols_on))
        if early.any():
            state.cut = np.where(early, close_slot, p - 1)
            state.early_dates = [str(np.datetime64(int(d) + state.day0, "D")) for d in np.flatnonzero(early)]

    def applies(self, state: ImportState) -> bool:
        return True

    def apply(self, state: ImportState, rows: Rows):
        after_close, day0 = 0, state.day0
        if state.cut is not None and len(rows):
            late_bar = rows.arrays["slot"] > state.cut[rows.secs // DAY_SECONDS - day0]
            after_close = int(late_bar.sum())
            rows.keep(~late_bar)
        keys, first, span = _day_keys(rows)
        uniq, inverse, bars_on = np.unique(keys, return_inverse=True, return_counts=True)
        full_day = bars_on >= state.need
        rows.keep(full_day[inverse])
        traded = uniq[full_day]
        return (after_close, int((~full_day).sum()), np.unique(uniq % span) + first - day0,
                traded // span, traded % span + first - day0, bars_on[full_day])

    def gather(self, state: ImportState, seen: list) -> None:
        counts, need, early_dates = state.counts, state.need, state.early_dates
        after_close = sum(d[0] for d in seen)
        counts["early-close days found"] = len(early_dates)
        counts["bars after an early close dropped"] = after_close
        state.notes.append("early closes: a date on which most symbols' last bar is the same bar before the "
                           f"session's last (and at least {need} bars) ends there for every symbol; later bars are "
                           f"after-hours and dropped ({plural(len(early_dates), 'date')}"
                           + (f": {few(early_dates, 4)}" if early_dates else "") + f"; {plural(after_close, 'bar')})")
        counts["partial days treated as not traded"] = sum(d[1] for d in seen)
        state.notes.append(f"partial days: a symbol-day with fewer than {need} of the {state.p} bars "
                           f"({state.config.min_day_share:.0%}) counts as not traded and its bars are dropped "
                           f"({plural(counts['partial days treated as not traded'], 'symbol-day')})")
        state.all_days = np.unique(np.concatenate([d[2] for d in seen]).astype(np.int64))  # days with any bar
        state.traded_sym = np.concatenate([d[3] for d in seen]).astype(np.int64)
        state.traded_day = np.concatenate([d[4] for d in seen]).astype(np.int64)
        state.traded_bars = np.concatenate([d[5] for d in seen]).astype(np.int64)


class TradingDatesStage(ImportStage):
    """The trading dates: those on which at least ``min_date_share`` of the most symbols that traded on
    any date traded; the traded symbol-days of the others are discarded."""

    def decide(self, state: ImportState) -> None:
        counts, config, n_span, all_days = state.counts, state.config, state.n_span, state.all_days
        traded_day = state.traded_day
        per_day = np.bincount(traded_day, minlength=n_span) if len(traded_day) else np.zeros(n_span, int)
        most = int(per_day.max()) if len(per_day) else 0
        need_syms = max(1, math.ceil(config.min_date_share * most - 1e-9))
        state.good_day = good_day = per_day >= need_syms
        state.kept_days = all_days[good_day[all_days]]
        dropped_days = all_days[~good_day[all_days]]
        counts["dates dropped (too few symbols traded)"] = len(dropped_days)
        on_dropped = ~good_day[traded_day]
        counts["traded symbol-days on dropped dates discarded"] = int(on_dropped.sum())
        date_rule = (f"days on which at least {need_syms} symbols traded ({config.min_date_share:.0%} of the "
                     f"most on any day, {most})" if config.min_date_share > 0 else "every day any symbol traded")
        dropped_text = f": {_date_runs(all_days, good_day[all_days], state.day0)}" if len(dropped_days) else ""
        state.notes.append(f"trading dates: {date_rule}; {plural(len(dropped_days), 'date')} dropped{dropped_text} "
                           f"({plural(counts['traded symbol-days on dropped dates discarded'], 'traded symbol-day')}"
                           " discarded)")
        state.traded_sym = state.traded_sym[~on_dropped]
        state.traded_day = traded_day[~on_dropped]
        state.traded_bars = state.traded_bars[~on_dropped]
        if len(state.kept_days) == 0 or len(state.traded_sym) == 0:
            raise state.nothing_left()


class SymbolsStage(ImportStage):
    """The panel's symbols (sorted; one without a traded day dropped, said) and dates, which symbol-days
    traded, and each symbol's first and last traded date."""

    def decide(self, state: ImportState) -> None:
        names, counts, n_span = state.names, state.counts, state.n_span
        present = np.unique(state.traded_sym)
        counts["symbols without a traded day dropped"] = len(names) - len(present)
        if counts["symbols without a traded day dropped"]:
            gone = sorted(set(names) - {names[i] for i in present})
            state.notes.append(f"symbols without a traded day dropped: {few(gone)}")
        order = sorted(present, key=lambda i: names[i])
        state.symbols = [names[i] for i in order]
        state.s_of_code = np.full(len(names), -1, dtype=np.int64)
        state.s_of_code[order] = np.arange(len(order))
        state.d_of_day = np.full(n_span, -1, dtype=np.int64)
        state.d_of_day[state.kept_days] = np.arange(len(state.kept_days))
        state.dates = (state.kept_days + state.day0).astype("datetime64[D]")
        n_s, n_d = len(state.symbols), len(state.dates)
        state.traded = traded = np.zeros((n_s, n_d), dtype=bool)
        traded[state.s_of_code[state.traded_sym], state.d_of_day[state.traded_day]] = True
        counts["short days kept (missing bars filled)"] = int((state.traded_bars < state.p).sum())
        state.first_d = np.argmax(traded, axis=1)
        state.last_d = n_d - 1 - np.argmax(traded[:, ::-1], axis=1)


class LayOutStage(ImportStage):
    """The values array, a bucket's symbols at a time: the missing bars of a traded day filled (close
    carried, open = high = low = it, no volume), suspended days filled with the previous close; NaN
    outside a symbol's traded dates."""

    saves_rows = False

    def decide(self, state: ImportState) -> None:
        shape = (len(state.symbols), len(state.dates) * state.p, len(state.features))
        state.values = None if state.values_file is None else store.create(state.values_file, shape)

    def applies(self, state: ImportState) -> bool:
        return True

    def apply(self, state: ImportState, rows: Rows):
        n_s, n_d, p, features = len(state.symbols), len(state.dates), state.p, state.features
        day = rows.secs // DAY_SECONDS - state.day0
        rows.keep(state.good_day[day])
        if not len(rows):
            return (0, 0, 0)
        rs = state.s_of_code[rows.sym]
        block_s = np.unique(rs)
        block, tally = _lay_out_block(rows, np.searchsorted(block_s, rs),
                                      state.d_of_day[rows.secs // DAY_SECONDS - state.day0], state.traded[block_s],
                                      state.first_d[block_s], state.last_d[block_s], features, p)
        if state.values is None and len(block_s) == n_s:
            state.values = block  # every symbol in one bucket (in memory): the block is the panel
        else:
            if state.values is None:
                state.values = np.full((n_s, n_d * p, len(features)), np.nan, dtype=np.float32)
            state.values[block_s] = block
            store.release(state.values)
        return tally

    def gather(self, state: ImportState, seen: list) -> None:
        counts = state.counts
        if state.values_file is not None:
            shape = (len(state.symbols), len(state.dates) * state.p, len(state.features))
            state.values = store.open_array(store.finish(state.values), shape, np.float32)
        filled = np.zeros(3, np.int64)
        for tally in seen:
            filled[:] += tally
        counts["missing bars filled in traded days"] = n_missing = int(filled[0])
        counts["missing bars before a symbol's first bar filled from its open"] = n_first = int(filled[1])
        counts["suspended days filled (listed, not traded)"] = n_suspended = int(filled[2])
        n_short = counts["short days kept (missing bars filled)"]
        state.notes.extend(filled_bars_notes(state.features, n_short, n_missing, n_first, n_suspended))


class SpansStage(ImportStage):
    """Symbols that start late or stop are kept for the dates they traded (NaN before and after): said,
    and counted."""

    def decide(self, state: ImportState) -> None:
        symbols, n_d = state.symbols, len(state.dates)
        late = [symbols[i] for i in range(len(symbols)) if state.first_d[i] > 0]
        early_end = [symbols[i] for i in range(len(symbols)) if state.last_d[i] < n_d - 1]
        state.counts["symbols starting late"] = len(late)
        state.counts["symbols ending early"] = len(early_end)
        span_note = ("symbols that start late or stop are kept for the dates they traded; bars before their "
                     "first and after their last traded date are NaN (traded False)")
        if late:
            span_note += f"; start late: {few(late)}"
        if early_end:
            span_note += f"; end early: {few(early_end)}"
        state.notes.append(span_note)


class DerivedTurnoverStage(ImportStage):
    """Turnover derived as close x volume where a file has none (file_rows derives it): said, and
    counted; and that nothing is forward-filled into a label."""

    def decide(self, state: ImportState) -> None:
        derived, n_files = state.derived_files, len(state.files)
        if derived:
            which = "the files" if len(derived) == n_files else f"{len(derived)} of {n_files} files"
            state.notes.append(f"turnover derived as close x volume ({which} have no turnover column)")
        state.counts["files with turnover derived as close x volume"] = len(derived)
        state.notes.append("labels come from the daily closes of traded days only: nothing is forward-filled into "
                           "a label")


# ---- the policies' helpers ----------------------------------------------------------------------

def edge_print(times: np.ndarray, counts: np.ndarray, config: ImportConfig) -> tuple[str, int, int] | None:
    """("closing", its time, the last bar's time) or ("opening", its time, the first bar's time) when
    the session's edge carries a print besides the bars, else None; from the histogram of the rows'
    times of day (``times`` sorted, ``counts`` rows at each).

    With a session given (and bar_stamp auto): bars stamped at both its start and its end, the extra
    edge being the one stamped on fewer rows, and no bars beyond it (extended-hours files go on after
    16:00: there the 16:00 stamp is a bar of the evening session). Inferred: a regular grid of bar
    times whose span is a whole number of half hours only without its last stamp (09:30 .. 16:00
    in 1-minute steps is 391 stamps for a 390-minute day)."""
    if len(times) == 0 or config.bars_per_day is not None:
        return None
    frequent = frequent_times(times, counts)
    if len(frequent) < 3:
        return None
    if config.session is not None:
        open_s, close_s = parse_session(config.session)
        if open_s not in frequent or close_s not in frequent:
            return None
        inside = frequent[(frequent > open_s) & (frequent < close_s)]
        if len(inside) == 0:
            return None
        if config.bar_stamp != "auto":
            return None  # the user said how bars are stamped: a stamp outside that is outside the session
        after, before = int(counts[times > close_s].sum()), int(counts[times < open_s].sum())
        at_open, at_close = int(counts[times == open_s].sum()), int(counts[times == close_s].sum())
        # the edge stamped on fewer rows is the extra one (A-shares: an opening call auction at 09:30
        # on some days before bar-end stamps 10:30 .. 15:00); on a tie, the US habit: a closing print
        if at_open >= at_close and after * 100 < at_close:
            return "closing", int(close_s), int(inside[-1])
        # (and only in a file with no bars outside the session at all: bars after the close mean
        # start stamps with an evening session, where the opening stamp is a bar)
        if at_close >= at_open and before * 100 < at_open and after * 100 < at_close:
            return "opening", int(open_s), int(inside[0])
        return None
    steps = np.diff(frequent)
    step = int(steps[0])
    if step <= 0 or not np.all(steps == step):
        return None
    n = len(frequent)
    half_hour = 1800
    if ((n - 1) * step) % half_hour == 0 and (n * step) % half_hour != 0:
        return "closing", int(frequent[-1]), int(frequent[-2])
    return None


def merge_edge_prints(sym: np.ndarray, secs: np.ndarray, vals: dict[str, np.ndarray], which: str, at: int,
                       into: int):
    """Fold each print at time of day ``at`` into its symbol-day's bar at ``into`` (rows sorted by symbol
    and time, timestamps unique); a print without such a bar becomes it. Returns the new rows and the
    numbers merged and moved."""
    day = secs // DAY_SECONDS
    is_print = secs - day * DAY_SECONDS == at
    prints = np.flatnonzero(is_print)
    t0 = int(secs.min())
    key = sym.astype(np.int64) * (1 << 40) + (secs - t0)
    target_key = key[prints] - (at - into)
    idx = np.searchsorted(key, target_key)
    found = (idx < len(key)) & (key[np.clip(idx, 0, len(key) - 1)] == target_key)
    src, dst = prints[found], idx[found]
    vals = {f: v.copy() for f, v in vals.items()}
    price = "close" if which == "closing" else "open"
    if price in vals:
        good = np.isfinite(vals[price][src]) & (vals[price][src] > 0)
        vals[price][dst[good]] = vals[price][src[good]]
    for f, op in (("high", np.fmax), ("low", np.fmin)):
        if f in vals:
            vals[f][dst] = op(vals[f][dst], vals[f][src])
    for f in ("volume", "turnover"):
        if f in vals:
            add = np.nan_to_num(vals[f][src], nan=0.0)
            vals[f][dst] = np.nan_to_num(vals[f][dst], nan=0.0) + add
    secs = secs.copy()
    moved = prints[~found]
    secs[moved] -= at - into
    keep = np.ones(len(secs), dtype=bool)
    keep[src] = False
    sym, secs = sym[keep], secs[keep]
    vals = {f: v[keep] for f, v in vals.items()}
    if len(moved):  # a moved print may now sit before off-grid rows of its day: sort again
        order = np.lexsort((secs, sym))
        sym, secs = sym[order], secs[order]
        vals = {f: v[order] for f, v in vals.items()}
    return sym, secs, vals, int(found.sum()), len(moved)


def duplicates_message(files: list[FileInfo], duplicates: int, readable: int, config: ImportConfig) -> str:
    """One line: how many rows repeat a timestamp, where the timestamps come from, the column that
    probably holds the time and the option that maps it."""
    part = max(files, key=lambda f: f.rows)
    stamp = part.columns_used.get("datetime") or "/".join(
        part.columns_used[k] for k in ("date", "time") if k in part.columns_used)
    guess = guess_time_column(part)
    share = duplicates / readable
    head = (f"{part.path}: {duplicates:,} of {readable:,} rows ({share:.0%}) repeat a symbol's timestamp, which is "
            f"read from column {stamp!r} alone")
    if guess is not None:
        fix = f"column {guess!r} probably holds the time of day: map it with --time-col {guess}"
    else:
        fix = "map the column that holds the time of day with --time-col NAME"
    return f"{head}; {fix}, or allow this with --max-duplicate-share 1 (keeps the last row of each)"


def _lay_out_block(rows: Rows, rs: np.ndarray, rd: np.ndarray, traded: np.ndarray, first_d: np.ndarray,
                   last_d: np.ndarray, features: list[str], p: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The bars of some symbols (their rows at block rows ``rs`` and dates ``rd``) on the full grid, with
    missing bars and suspended days filled; and the counts of bars filled in traded days, of those
    before a symbol's first bar, and of suspended days. Each symbol's row depends on its own bars
    only."""
    n_s, n_d = traded.shape
    n_f = len(features)
    flat_pos = (rs * n_d + rd) * p + rows.arrays["slot"]
    grid_values = np.full((n_s * n_d * p, n_f), np.nan, dtype=np.float32)
    for i, f in enumerate(features):
        grid_values[flat_pos, i] = rows.vals[f]
    grid_values = grid_values.reshape(n_s, n_d * p, n_f)
    ci = features.index("close")
    observed = ~np.isnan(grid_values[:, :, ci])

    pos = np.arange(n_d * p, dtype=np.int32 if n_d * p < 2**31 else np.int64)
    in_span = (pos[None, :] >= (first_d * p)[:, None]) & (pos[None, :] < ((last_d + 1) * p)[:, None])
    traded_bar = np.repeat(traded, p, axis=1)

    # carry the last real close forward (across missing bars and suspended days)
    idx = np.where(observed, pos[None, :], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    close_col = grid_values[:, :, ci]
    carried = np.take_along_axis(close_col, np.clip(idx, 0, None), axis=1)
    before_first = idx < 0
    # a symbol's first day, before its first bar: that bar's open (its close without an open column)
    first_pos = np.argmax(observed, axis=1)
    oi = features.index("open") if "open" in features else ci
    first_open = grid_values[np.arange(n_s), first_pos, oi]
    carried = np.where(before_first, first_open[:, None], carried)

    fill = in_span & ~observed
    missing_in_traded = fill & traded_bar
    suspended = (~traded) & (np.arange(n_d)[None, :] >= first_d[:, None]) & (np.arange(n_d)[None, :]
                                                                              <= last_d[:, None])
    tally = (int(missing_in_traded.sum()), int((missing_in_traded & before_first).sum()), int(suspended.sum()))
    for i, f in enumerate(features):
        column = grid_values[:, :, i]
        if f in FLOW_FEATURES:
            column[fill] = 0.0
        else:
            column[fill] = carried[fill]
        column[~in_span] = np.nan
    return grid_values, tally


def _date_runs(days: np.ndarray, kept: np.ndarray, day0: int, limit: int = 4) -> str:
    """The dropped days as runs of consecutive candidate days: "2025-04-24 .. 2025-05-09 (12), 2026-03-12"."""
    runs: list[str] = []
    i = 0
    while i < len(days):
        if kept[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(days) and not kept[j + 1]:
            j += 1
        a, b = (str(np.datetime64(int(days[k]) + day0, "D")) for k in (i, j))
        runs.append(a if i == j else f"{a} .. {b} ({j - i + 1})")
        i = j + 1
    return ", ".join(runs[:limit]) + (f", ... ({len(runs)} runs)" if len(runs) > limit else "")


def _summary(counts: dict[str, int]) -> str:
    shown = [f"{k}: {v:,}" for k, v in counts.items() if v and k not in ("files read",)]
    return "; ".join(shown) if shown else "nothing read"


#: the import policies, in the order they run (and their notes and counts show)
IMPORT_STAGES: tuple[ImportStage, ...] = (
    FilesStage(), TimeZoneStage(), DuplicatesStage(), ReturnsStage(), EdgePrintsStage(), SessionStage(), BarGridStage(),
    ValuesStage(), SymbolDaysStage(), TradingDatesStage(), SymbolsStage(), LayOutStage(), SpansStage(),
    DerivedTurnoverStage(),
)


def assemble(buckets: Sequence, files: list[FileInfo], names: list[str], features: list[str],
             read: dict[str, int], config: ImportConfig, source: str = "", values_file: Path | None = None) -> BarPanel:
    """Apply the import policies (IMPORT_STAGES, in order) to the rows of ``buckets`` (each holds every row
    of its symbols, in file order) and lay them out as a BarPanel: in memory, or in the array file
    ``values_file``."""
    state = ImportState(buckets, files, names, features, read, config, source, values_file)
    for stage in IMPORT_STAGES:
        run_stage(stage, state)
    return BarPanel(state.symbols, state.dates, features, state.p, state.values, state.traded,
                    source=source, notes=state.notes, counts=state.counts)
