"""Import intraday bars from CSV or Parquet files into a :class:`~studio.data.panel.BarPanel`.

Sources: one file per symbol (the symbol is taken from the file name, ``AAPL_5min.csv.gz`` -> ``AAPL``)
or long files with a symbol column; a path may be a file or a folder (its CSV / Parquet files). Columns
are found by their usual names (see ``CANDIDATES``) or named in :class:`ImportConfig`.

Policies (each is stated in ``panel.notes`` and counted in ``panel.counts``):

- Timestamps that cannot be read: the row is dropped.
- Time zones: stamps that carry one are instants, read as the exchange's wall-clock time: in the zone
  given (``timezone``), else the place zone their column names (Parquet), else the one exchange zone
  (``EXCHANGE_SESSIONS``) in which the sessions keep their clock times year-round and span its regular
  hours; none or several: an error asking for it.
- Duplicate timestamps of a symbol: the last row (in file order) is kept.
- Session: bars outside the regular session are extended-hours bars and are dropped. The session is
  given (``session="09:30-16:00"``, with bar-start or bar-end stamps) or inferred from the bar times.
- Bars per day ``P``: the most common number of in-session bars on a symbol-day; the bar grid is the
  ``P`` most common in-session bar times. Bars at other times are dropped ("off-grid").
- Early closes (half days): a date on which most symbols' last bar is the same bar before the session's
  last one (and the day still has at least ``min_day_share`` of the bars) ends there for every symbol;
  bars after it are after-hours trading and are dropped.
- Values: a NaN, zero or negative close makes the bar missing; NaN or negative volume / turnover is 0;
  a NaN, zero or negative open / high / low is the bar's close. Infinite values and numbers no market
  has (a price over ``MAX_PRICE``, a volume or turnover over ``MAX_FLOW``) are bad values too, each
  counted under its own name. Zero volume is a real value, kept.
- Partial days: a symbol-day with fewer than ``min_day_share`` (default 50%) of the ``P`` bars counts
  as not traded (its bars are dropped); a day with at least that many is traded and its missing bars
  are filled: close carried forward from the previous bar of the day (the previous day's close for the
  first bars; on a symbol's first day, from its first bar's open), open = high = low = that close,
  volume and turnover 0.
- Trading dates: the days on which at least ``min_date_share`` (default 20%) of the largest number of
  symbols that traded on any day traded. ``min_date_share=0`` keeps every day any symbol traded.
- Symbols: sorted by name; a symbol without any traded day is dropped.
- Symbols that start late or stop (delisted): kept for the dates they traded; bars before their first
  and after their last traded date are NaN (``traded`` False).
- Days a listed symbol did not trade (suspended): ``traded`` False, bars filled with the previous close,
  zero volume and turnover.
- Turnover: when a file has no turnover column it is derived as close x volume (and said so).
- Fields: only a timestamp and a close are required. Open, high, low, volume or turnover that not every
  file has are left out of the panel (said so, naming the files' columns); turnover is derived only where
  there is a volume. A graph that reads a field the panel lacks is refused before training.
- Returns instead of prices (a ``return`` / ``ret`` column, no close): each symbol's close is an index,
  the cumulative product of (1 + return) over its rows in time order, starting at 1 (ReturnsStage).

Nothing is forward-filled into a label: labels come from the daily closes of traded days only.
Imports are cached as Parquet (:mod:`studio.data.cache`). Folders larger than memory go through buckets
of symbols on disk into a memory-mapped panel (:mod:`studio.data.import_chunked`): the policies are stages
(:mod:`studio.data.import_stages`) that apply to any split of the symbols into buckets, with the same
result.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.data import cache as _cache
from studio.data.bar_files import VALUE_FIELDS, is_parquet
from studio.data.import_options import IMPORT_OPTIONS, ImportOption, import_option_names  # noqa: F401
from studio.data.panel import DataError

#: bump when a policy changes: old cache entries are then ignored
IMPORTER_VERSION = 1

DEFAULT_SYMBOL_REGEX = r"^(?P<symbol>.+?)(?:_[^.]*)?\.(?:csv|txt|parquet|pq)(?:\.gz|\.bz2|\.xz|\.zst)?$"
SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zst", ".txt", ".txt.gz",
                      ".parquet", ".pq")

#: column names tried, in order, when a column is not named (compared lower-case, with spaces, dots
#: and dashes read as underscores)
CANDIDATES: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol", "ticker", "stock_code", "ts_code", "code", "instrument", "sec_code", "sym"),
    "datetime": ("datetime", "timestamp", "date_time", "time_stamp", "dt"),
    "date": ("date", "trade_date", "trading_date", "tradedate", "day"),
    "time": ("time", "tod", "time_of_day", "timeofday", "trade_time", "bar_time", "minute", "hhmm", "hhmmss",
             "hms", "clock", "bar_start", "start_time", "min"),
    "open": ("open", "open_price", "opening_price"),
    "high": ("high", "high_price"),
    "low": ("low", "low_price"),
    "close": ("close", "close_price", "closing_price", "last", "price"),
    "volume": ("volume", "vol", "trade_volume", "shares"),
    "turnover": ("turnover", "amount", "amt", "dollar_volume", "traded_value", "turnover_value"),
    # returns-only data (no price): the close is rebuilt as an index from them (ReturnsStage)
    "returns": ("return", "returns", "ret", "simple_return", "pct_return"),
}
#: a finite price above this, or a volume / turnover above MAX_FLOW, is no market's: a bad value (a
#: close of 1e308 would become inf in the float32 panel)
MAX_PRICE = 1e9
MAX_FLOW = 1e15
PRICE_TEXT, FLOW_TEXT = "1e9", "1e15"
#: the counts of infinite and absurd values, each under its own name (panel.counts)
ABSURD_VALUE_COUNTS = (
    "bars with an infinite close treated as missing",
    f"bars with a close over {PRICE_TEXT} treated as missing",
    "infinite volume set to 0",
    f"volume over {FLOW_TEXT} set to 0",
    "infinite turnover set to 0",
    f"turnover over {FLOW_TEXT} set to 0",
    f"infinite open, high or low, or over {PRICE_TEXT}, set to the close",
)
DAY_SECONDS = 86_400


# ---- configuration -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportConfig:
    """How to read the files (column mapping) and which policies to apply.

    Column fields name a column; None finds it by its usual names. ``datetime`` or ``date`` (+ ``time``)
    give the bar's timestamp.
    """

    symbol: str | None = None
    datetime: str | None = None
    date: str | None = None
    time: str | None = None
    open: str | None = None
    high: str | None = None
    low: str | None = None
    close: str | None = None
    volume: str | None = None
    turnover: str | None = None
    #: a column of simple returns (0.01 = 1%) for files without a price: the close becomes an index
    #: rebuilt from them, the cumulative product of (1 + return) per symbol (a close column found beside
    #: returns found by their usual name wins)
    returns: str | None = None
    #: regular expression on the file name giving the symbol (group "symbol", else group 1, else all)
    #: for files without a symbol column
    symbol_regex: str = DEFAULT_SYMBOL_REGEX
    #: glob for the files of a folder; None: every CSV / Parquet file
    pattern: str | None = None
    #: regular session "HH:MM-HH:MM"; None infers it from the most common bar times
    session: str | None = None
    #: "start" (a bar is stamped when it opens: 09:30 .. 15:55 in 09:30-16:00), "end" (stamped when it
    #: closes: 10:30 .. 15:00 in 09:30-15:00) or "auto" (from the bars at the session's ends)
    bar_stamp: str = "auto"
    #: the exchange's zone, in whose wall-clock time stamps that carry a zone are read (None: inferred
    #: from the sessions, see exchange_zone); stamps without a zone are read as they are
    timezone: str | None = None
    #: force the number of bars per day (None: the most common number)
    bars_per_day: int | None = None
    #: a symbol-day with fewer than this share of the bars counts as not traded
    min_day_share: float = 0.5
    #: a date is a trading date when at least this share of the most symbols on any date traded
    min_date_share: float = 0.2
    #: more than this share of the rows dropped as duplicate timestamps is an error (a time-of-day column
    #: was probably not mapped): 1.0 accepts any share
    max_duplicate_share: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_duplicate_share <= 1.0:
            raise DataError(f"max_duplicate_share must be in [0, 1], gets {self.max_duplicate_share}")
        if not 0.0 < self.min_day_share <= 1.0:
            raise DataError(f"min_day_share must be in (0, 1], gets {self.min_day_share}")
        if not 0.0 <= self.min_date_share <= 1.0:
            raise DataError(f"min_date_share must be in [0, 1], gets {self.min_date_share}")
        if self.bar_stamp not in ("auto", "start", "end"):
            raise DataError(f"bar_stamp must be auto, start or end, gets {self.bar_stamp!r}")
        if self.bars_per_day is not None and self.bars_per_day < 1:
            raise DataError(f"bars_per_day must be at least 1, gets {self.bars_per_day}")
        if self.session is not None:
            parse_session(self.session)
        if self.timezone is not None:
            _check_zone(self.timezone)
        try:
            re.compile(self.symbol_regex)
        except re.error as exc:
            raise DataError(f"symbol_regex {self.symbol_regex!r} is not a regular expression ({exc})") \
                from None

    def mapping(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in CANDIDATES}

    def settings(self) -> dict:
        return dataclasses.asdict(self)


def import_config_from_options(options: dict, base: dict | None = None) -> ImportConfig:
    """An ImportConfig from ``{option name: value}`` (``time-col`` or ``time_col``; values as text or
    JSON values), over ``base`` (ImportConfig field values). An unknown name or a bad value is a
    one-line DataError."""
    by_name = {o.name: o for o in IMPORT_OPTIONS}
    fields = dict(base or {})
    for key, value in options.items():
        option = by_name.get(str(key).strip().replace("_", "-"))
        if option is None:
            raise DataError(f"unknown import option {key!r}; known: {', '.join(import_option_names())}")
        if value is None:
            fields[option.field] = None
            continue
        try:
            if option.kind is str:
                converted = str(value)
            elif option.kind is int and not (isinstance(value, float) and not value.is_integer()):
                converted = int(value)
            elif option.kind is float:
                converted = float(value)
            else:
                raise ValueError
        except (TypeError, ValueError):
            raise DataError(f"import option {option.name}: expects {option.kind.__name__}, gets {value!r}") from None
        if option.choices and converted not in option.choices:
            raise DataError(f"import option {option.name}: expects one of {', '.join(option.choices)}, "
                            f"gets {converted!r}")
        fields[option.field] = converted
    known = {f.name for f in dataclasses.fields(ImportConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise DataError(f"unknown import setting {unknown[0]!r}; known: {', '.join(import_option_names())}")
    return ImportConfig(**fields)


def parse_session(text: str) -> tuple[int, int]:
    """"09:30-16:00" -> (34200, 57600) seconds after midnight."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if not m:
        raise DataError(f"session {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59:
        raise DataError(f"session {text!r} is not HH:MM-HH:MM")
    start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if end <= start:
        raise DataError(f"session {text!r} ends before it starts")
    return start, end


def hhmm(seconds: int) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


# ---- finding files -----------------------------------------------------------------------------

def _is_data_file(path: Path) -> bool:
    name = path.name.lower()
    return not name.startswith(".") and name.endswith(SUPPORTED_SUFFIXES)


def find_files(paths: str | os.PathLike | Sequence[str | os.PathLike], config: ImportConfig) -> list[Path]:
    """The files a source names: files as given, folders' CSV / Parquet files (or ``config.pattern``)."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise DataError("no source given")
    files: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            try:
                if config.pattern:
                    found = sorted(p for p in path.glob(config.pattern) if p.is_file())
                else:
                    found = sorted(p for p in path.iterdir() if p.is_file() and _is_data_file(p))
            except OSError as exc:
                raise DataError(f"{path}: cannot list the folder ({exc.strerror or exc})") from None
            if not found:
                what = f"matching {config.pattern!r}" if config.pattern else "(.csv, .csv.gz, .parquet)"
                raise DataError(f"{path}: no data files {what} in this folder")
            files.extend(found)
        elif path.is_file():
            if not _is_data_file(path):
                raise DataError(f"{path}: not a CSV or Parquet file (.csv, .csv.gz, .txt, .parquet, .pq)")
            files.append(path)
        elif path.exists():
            raise DataError(f"{path}: not a file or folder")
        else:
            raise DataError(f"{path}: no such file or folder")
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


# ---- reading one file --------------------------------------------------------------------------

@dataclass
class FileBars:
    """The rows of one file, as numpy arrays (one entry per row)."""

    path: Path
    #: symbol per row as codes into ``symbol_names``
    symbol_codes: np.ndarray
    symbol_names: list[str]
    #: seconds since 1970-01-01 of the bars' wall-clock time (UTC instants where ``utc``); ``time_ok``
    #: False where unreadable
    seconds: np.ndarray
    time_ok: np.ndarray
    values: dict[str, np.ndarray]
    rows_without_symbol: int = 0
    columns_used: dict[str, str] = field(default_factory=dict)
    #: every column of the file (for diagnostics: which unmapped column may hold the time)
    header: list[str] = field(default_factory=list)
    #: ``seconds`` are UTC instants (stamps with a time zone), not wall-clock time: the build converts
    #: them to the exchange's zone (``ImportConfig.timezone``, else inferred from the sessions)
    utc: bool = False
    #: the place zone a column of such stamps names (a Parquet column's America/New_York; not UTC or an
    #: offset): the exchange's zone when no other is given
    named_zone: str | None = None
    #: ``values["close"]`` holds the file's simple returns, not prices: ReturnsStage makes them an index
    returns: bool = False

    @property
    def date_only(self) -> bool:
        """Every readable stamp is a midnight: daily bars (or dates without a time)."""
        stamps = self.seconds[self.time_ok]
        return len(stamps) > 0 and bool(np.all(stamps % DAY_SECONDS == 0))


def _norm(name: str) -> str:
    return re.sub(r"[\s.\-]+", "_", str(name).strip().lower())


def _one_line(exc: BaseException) -> str:
    from studio.core.text import error_line

    return error_line(exc)


def read_header(path: Path) -> list[str]:
    """The column names of a CSV or Parquet file."""
    try:
        if is_parquet(path):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        import pyarrow as pa

        with pa.input_stream(str(path), compression="detect") as stream:
            head = stream.read(65536)
        text = head.decode("utf-8-sig", errors="replace")
        line = text.splitlines()[0] if text.strip() else ""
        return next(csv.reader(io.StringIO(line)), [])
    except (OSError, ValueError, StopIteration) as exc:
        raise DataError(f"{path}: cannot read ({_one_line(exc)})") from None
    except Exception as exc:  # pyarrow's own errors (ArrowInvalid, ...)
        raise DataError(f"{path}: cannot read ({_one_line(exc)})") from None


def resolve_columns(path: Path, header: list[str], config: ImportConfig) -> dict[str, str]:
    """Field -> column name for one file: the configured names (which must exist) or the usual names."""
    if not header or all(not h.strip() for h in header):
        raise DataError(f"{path}: no header line (empty file?)")
    by_norm: dict[str, str] = {}
    for name in header:
        by_norm.setdefault(_norm(name), name)
    listing = ", ".join(h.strip() for h in header[:30]) + (", ..." if len(header) > 30 else "")
    found: dict[str, str] = {}
    for fld, wanted in config.mapping().items():
        if wanted is not None:
            if wanted in header:
                found[fld] = wanted
            elif _norm(wanted) in by_norm:
                found[fld] = by_norm[_norm(wanted)]
            else:
                raise DataError(f"{path}: no column {wanted!r} (the {fld} column); it has: {listing}")
    for fld, names in CANDIDATES.items():
        if fld in found or config.mapping()[fld] is not None:
            continue
        for n in names:
            if n in by_norm and by_norm[n] not in found.values():
                found[fld] = by_norm[n]
                break
    # the timestamp: a datetime column, or date (+ time) columns
    if config.datetime is not None or (config.date is None and config.time is None and "datetime" in found):
        found.pop("date", None)
        found.pop("time", None)
    else:
        found.pop("datetime", None)
        if "date" not in found and "time" in found and config.time is None:
            found["datetime"] = found.pop("time")  # a lone "time" column holds the whole timestamp
        elif "date" not in found and "time" in found:
            raise DataError(f"{path}: a time column {found['time']!r} but no date column; it has: {listing}")
        elif "date" in found and "time" not in found:
            found["datetime"] = found.pop("date")  # the date column holds the timestamp (e.g. trade_date)
    if "datetime" not in found and "date" not in found:
        tried = ", ".join(CANDIDATES["datetime"] + CANDIDATES["date"])
        raise DataError(f"{path}: no datetime column (tried {tried}; name it with the datetime or date "
                        f"option); it has: {listing}")
    # only a close (or returns to rebuild one from) is needed: fields a graph does not read may be absent
    if "returns" in found and "close" in found:
        if config.returns is not None and config.close is not None:
            raise DataError(f"{path}: name a close column or a returns column, not both")
        found.pop("close" if config.returns is not None else "returns")
    if "returns" in found:  # prices beside a close rebuilt as an index would be on another scale
        for fld in ("open", "high", "low"):
            found.pop(fld, None)
    if "close" not in found and "returns" not in found:
        raise DataError(f"{path}: no close column (tried {', '.join(CANDIDATES['close'])}; name it with the "
                        f"close option) and no returns column (tried {', '.join(CANDIDATES['returns'])}); it has: "
                        f"{listing}")
    return found


#: the fields a column mapping lists, in the order shown
MAPPED_FIELDS = ("symbol", "datetime", "date", "time", *VALUE_FIELDS)


def column_mapping(paths: str | os.PathLike | Sequence[str | os.PathLike],
                   config: ImportConfig) -> list[tuple[str, str, int]]:
    """Where each field comes from, over the files of a source (their headers only): rows of
    (field, source, files), ``source`` being ``column 'NAME'``, ``the file name``, ``derived: close x
    volume`` or ``not in the files``; fields read differently by some files get a row per source."""
    tally: dict[tuple[str, str], int] = {}
    for path in find_files(paths, config):
        found = resolve_columns(path, read_header(path), config)
        for fld in MAPPED_FIELDS:
            if fld in found:
                source = f"column {found[fld]!r}"
            elif fld == "close" and "returns" in found:
                source = f"index from the returns in column {found['returns']!r}"
            elif fld in ("open", "high", "low") and "returns" in found:
                source = "not read (the close is an index rebuilt from returns)"
            elif fld == "symbol":
                source = "the file name"
            elif fld == "turnover" and "volume" in found and "returns" not in found:
                source = "derived: close x volume"
            elif fld in ("open", "high", "low", "volume", "turnover"):
                source = "not in the files"
            else:
                continue  # the time stamp is read from datetime, or from date + time
            tally[(fld, source)] = tally.get((fld, source), 0) + 1
    return sorted(((fld, source, n) for (fld, source), n in tally.items()),
                  key=lambda row: (MAPPED_FIELDS.index(row[0]), -row[2], row[1]))


def _symbol_from_name(path: Path, config: ImportConfig) -> str:
    m = re.search(config.symbol_regex, path.name)
    if m is None:
        raise DataError(f"{path}: no symbol column and the file name does not match the symbol regex "
                        f"{config.symbol_regex!r}")
    if "symbol" in m.groupdict():
        symbol = m.group("symbol")
    elif m.groups():
        symbol = m.group(1)
    else:
        symbol = m.group(0)
    if not symbol:
        raise DataError(f"{path}: the symbol regex {config.symbol_regex!r} gives an empty symbol")
    return symbol


def _to_float(column, path: Path, name: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_null(t):
        return np.full(len(column), np.nan)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        import pandas as pd

        text = pc.cast(column, pa.string()).to_numpy(zero_copy_only=False)
        return pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    raise DataError(f"{path}: column {name!r} holds {column.type}, not numbers")


def _timestamp_seconds(column) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Seconds since the epoch, a validity mask, and the column's time zone (None: none, the seconds
    are wall-clock time; else they are UTC instants), from an arrow timestamp."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ts_type = column.type
    ok = pc.is_valid(column).to_numpy(zero_copy_only=False)
    # an arrow timestamp with a zone holds the UTC instant: the same integers as without one
    raw = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False)
    raw = np.where(ok, np.nan_to_num(raw, nan=0), 0).astype(np.int64)
    per_second = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[ts_type.unit]
    return raw // per_second, ok, ts_type.tz or None


def _parse_text_datetimes(text: np.ndarray) -> tuple[np.ndarray, np.ndarray, str | None]:
    import pandas as pd

    series = pd.Series(text, dtype=object)
    try:
        parsed = pd.to_datetime(series, format="ISO8601", errors="coerce")
    except ValueError:  # offsets that differ through the year (-04:00 in summer, -05:00 in winter)
        parsed = pd.to_datetime(series, format="ISO8601", errors="coerce", utc=True)
    if parsed.isna().mean() > 0.5:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                other = pd.to_datetime(series, errors="coerce", format="mixed")
            except ValueError:
                other = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
        if other.isna().sum() < parsed.isna().sum():
            parsed = other
    zone = "UTC" if getattr(parsed.dt, "tz", None) is not None else None  # offsets in the text
    if zone:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    ok = parsed.notna().to_numpy()
    secs = parsed.to_numpy(dtype="datetime64[s]").astype(np.int64)
    return np.where(ok, secs, 0), ok, zone


def _parse_int_datetimes(values: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """20251009 (date), 202510091030, 20251009103000, or seconds / milliseconds since the epoch."""
    import pandas as pd

    if not ok.any():
        return np.zeros(len(values), np.int64), ok
    v = np.where(ok, values, 0).astype(np.int64)
    typical = int(np.median(v[ok]))
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    digits = len(str(abs(typical)))
    if digits in formats and str(typical).startswith(("19", "20")):
        parsed = pd.to_datetime(pd.Series(v.astype(str)), format=formats[digits], errors="coerce")
        good = parsed.notna().to_numpy() & ok
        secs = parsed.to_numpy(dtype="datetime64[s]").astype(np.int64)
        return np.where(good, secs, 0), good
    secs = v // 1000 if typical > 100_000_000_000 else v  # milliseconds after ~1973
    return np.where(ok, secs, 0), ok


def _column_seconds(column) -> tuple[np.ndarray, np.ndarray, str | None]:
    """A timestamp column of any usual type -> (seconds since the epoch, valid, the stamps' time zone:
    None where they have none and are wall-clock time, else they are UTC instants)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = column.type
    if pa.types.is_dictionary(t):
        column = pc.cast(column, t.value_type)
        t = column.type
    if pa.types.is_timestamp(t):
        return _timestamp_seconds(column)
    if pa.types.is_date(t):
        return _timestamp_seconds(pc.cast(column, pa.timestamp("s")))
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        ok = pc.is_valid(column).to_numpy(zero_copy_only=False)
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        ok &= np.isfinite(values)
        return (*_parse_int_datetimes(np.where(ok, values, 0), ok), None)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _parse_text_datetimes(column.to_numpy(zero_copy_only=False))
    raise TypeError(f"holds {t}, not timestamps")


def _time_of_day_seconds(column) -> tuple[np.ndarray, np.ndarray] | None:
    """A time-of-day column -> (seconds after midnight, valid); None when it holds whole timestamps."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    t = column.type
    if pa.types.is_dictionary(t):
        column = pc.cast(column, t.value_type)
        t = column.type
    if pa.types.is_time(t):
        ok = pc.is_valid(column).to_numpy(zero_copy_only=False)
        raw = pc.cast(column, pa.int32() if t.bit_width == 32 else pa.int64()).to_numpy(zero_copy_only=False)
        per = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[t.unit]
        return np.where(ok, np.nan_to_num(raw, nan=0), 0).astype(np.int64) // per, ok
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return None
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        ok = pc.is_valid(column).to_numpy(zero_copy_only=False)
        v = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        ok &= np.isfinite(v) & (np.nan_to_num(v, nan=-1) >= 0)
        return _integer_time_of_day(np.where(ok, v, 0).astype(np.int64), ok)
    text = pd.Series(pc.cast(column, pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    sample = text.dropna()
    if len(sample) and sample.str.contains(r"\d[-/]\d|\d{8}", regex=True).mean() > 0.5:
        return None  # "2025-10-09 10:30": a whole timestamp in the time column
    parts = text.str.extract(r"^\s*(\d{1,2}):?(\d{2})(?::?(\d{2}))?(?:\.\d+)?\s*$")
    h = pd.to_numeric(parts[0], errors="coerce").to_numpy(dtype=np.float64)
    m = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype=np.float64)
    s = np.nan_to_num(pd.to_numeric(parts[2], errors="coerce").to_numpy(dtype=np.float64), nan=0)
    ok = np.isfinite(h) & np.isfinite(m) & (np.nan_to_num(h, nan=99) < 24) & (np.nan_to_num(m, nan=99) < 60)
    secs = np.where(ok, np.nan_to_num(h) * 3600 + np.nan_to_num(m) * 60 + s, 0).astype(np.int64)
    return secs, ok


def _integer_time_of_day(v: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numbers in a time-of-day column: the first reading that fits (almost) every value of
    HHMM (930), HHMMSS (93000), minutes after midnight (570) or seconds after midnight (34200)."""
    present = v[ok]
    readings = [
        (v // 100, v % 100, 0 * v),
        (v // 10000, v // 100 % 100, v % 100),
        (v // 60, v % 60, 0 * v),
        (v // 3600, v // 60 % 60, v % 60),
    ]
    for h, m, sec in readings:
        valid = (h < 24) & (m < 60) & (sec < 60)
        if len(present) == 0 or valid[ok].mean() >= 0.99:
            ok = ok & valid
            return np.where(ok, h * 3600 + m * 60 + sec, 0), ok
    return np.zeros(len(v), np.int64), np.zeros(len(v), bool)


def _read_table(path: Path, columns: list[str]):
    import pyarrow as pa

    if is_parquet(path):
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=columns, use_threads=False)
    import pyarrow.csv as pcsv

    read = pcsv.ReadOptions(use_threads=False, block_size=1 << 22)
    conv = pcsv.ConvertOptions(include_columns=columns, strings_can_be_null=True)
    try:
        return pcsv.read_csv(path, read_options=read, convert_options=conv)
    except pa.ArrowInvalid as exc:
        if "conversion error" not in str(exc).lower():
            raise
        # a column whose type was guessed from its first rows holds other text further down: read
        # everything as text and convert column by column (unparsable values become missing)
        conv = pcsv.ConvertOptions(include_columns=columns, strings_can_be_null=True,
                                   column_types={c: pa.string() for c in columns})
        return pcsv.read_csv(path, read_options=read, convert_options=conv)


def read_file(path: Path, config: ImportConfig) -> FileBars:
    """Read one CSV or Parquet file into arrays (no policies applied yet)."""
    header = read_header(path)
    cols = resolve_columns(path, header, config)
    try:
        table = _read_table(path, sorted(set(cols.values()), key=header.index))
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({_one_line(exc)})") from None
    return bars_from_table(path, table, cols, header, config)


def bars_from_table(path: Path, table, cols: dict[str, str], header: list[str], config: ImportConfig) -> FileBars:
    """The rows of an arrow table read from ``path`` (a whole file, or a batch of one) as arrays."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows

    def col(fld: str):
        return table.column(cols[fld])

    # symbols
    rows_without_symbol = 0
    if "symbol" in cols:
        sym = col("symbol")
        if not (pa.types.is_string(sym.type) or pa.types.is_large_string(sym.type)):
            sym = pc.cast(sym, pa.string())
        sym = pc.utf8_trim_whitespace(sym)
        encoded = pc.dictionary_encode(sym).combine_chunks() if n else None
        if n:
            names = [str(x) for x in encoded.dictionary.to_pylist()]
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            valid = pc.is_valid(encoded.indices).to_numpy(zero_copy_only=False)
            empty = [i for i, name in enumerate(names) if name == ""]
            for i in empty:
                valid &= codes != i
            codes = np.where(valid, np.nan_to_num(codes, nan=-1), -1).astype(np.int64)
            rows_without_symbol = int((~valid).sum())
        else:
            names, codes = [], np.zeros(0, np.int64)
    else:
        names = [_symbol_from_name(path, config)]
        codes = np.zeros(n, np.int64)

    # timestamps
    try:
        zone = None
        if "datetime" in cols:
            seconds, ok, zone = _column_seconds(col("datetime"))
        else:
            tod = _time_of_day_seconds(col("time"))
            if tod is None:  # the time column holds whole timestamps
                seconds, ok, zone = _column_seconds(col("time"))
            else:  # a date and a wall-clock time of day
                day_secs, day_ok, _ = _column_seconds(col("date"))
                seconds = day_secs - day_secs % DAY_SECONDS + tod[0]
                ok = day_ok & tod[1]
    except DataError:
        raise
    except Exception as exc:
        which = cols.get("datetime") or f"{cols.get('date')}/{cols.get('time')}"
        text = str(exc) if isinstance(exc, TypeError) else f"cannot be read as timestamps ({_one_line(exc)})"
        raise DataError(f"{path}: column {which!r} {text}") from None

    values = {}
    for fld in VALUE_FIELDS:
        if fld in cols:
            try:
                values[fld] = _to_float(col(fld), path, cols[fld])
            except DataError:
                raise
            except Exception as exc:
                raise DataError(f"{path}: column {cols[fld]!r} cannot be read as numbers "
                                f"({_one_line(exc)})") from None
    if "returns" in cols:  # carried as the close until ReturnsStage compounds them into an index
        try:
            values["close"] = _to_float(col("returns"), path, cols["returns"])
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{path}: column {cols['returns']!r} cannot be read as numbers "
                            f"({_one_line(exc)})") from None
    return FileBars(path, codes, names, seconds.astype(np.int64), ok.astype(bool), values,
                    rows_without_symbol, cols, list(header), zone is not None,
                    zone if zone and "/" in zone and not zone.startswith("Etc/") else None, "returns" in cols)


def read_all(files: list[Path], config: ImportConfig) -> list[FileBars]:
    if len(files) == 1:
        return [read_file(files[0], config)]
    workers = max(1, min(8, (os.cpu_count() or 1) * 2, len(files)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: read_file(p, config), files))


# ---- building the panel ------------------------------------------------------------------------

_TIME_HINTS = re.compile(r"time|tod|min|hh|hour|clock|sec|bar|stamp|^t$", re.IGNORECASE)


@dataclass
class FileInfo:
    """What the build keeps of a file once its rows are read: for its messages and its policies."""

    path: Path
    rows: int
    columns_used: dict[str, str]
    header: list[str]
    #: seconds of the file's first rows (a hint for the column that may hold the time of day)
    head_seconds: np.ndarray
    #: readable stamps, and those that are not a midnight (daily bars have none)
    stamps: int
    intraday_stamps: int
    value_fields: frozenset[str]
    #: the histogram (distinct UTC seconds, rows) of the stamps that carry a time zone: the exchange's
    #: zone is inferred from it
    utc_times: tuple[np.ndarray, np.ndarray] | None = None
    #: the place zones its timestamp column names (FileBars.named_zone)
    named_zones: frozenset[str] = frozenset()
    #: its close is rebuilt from returns (FileBars.returns)
    returns: bool = False

    def gives(self, fld: str) -> bool:
        """The file has the field, or the import derives it: turnover as close x volume (where the close is
        a price, not an index rebuilt from returns)."""
        return fld in self.value_fields or (fld == "turnover" and "volume" in self.value_fields
                                            and not self.returns)

    @property
    def date_only(self) -> bool:
        return self.stamps > 0 and self.intraday_stamps == 0

    @classmethod
    def of(cls, part: FileBars) -> FileInfo:
        info = cls(part.path, 0, dict(part.columns_used), list(part.header), np.zeros(0, np.int64), 0, 0,
                   frozenset(part.values), returns=part.returns)
        info.add(part)
        return info

    def add(self, part: FileBars) -> None:
        """Count a (further) batch of the file's rows."""
        if len(self.head_seconds) < _HEAD_ROWS:
            self.head_seconds = np.concatenate([self.head_seconds,
                                                part.seconds[: _HEAD_ROWS - len(self.head_seconds)]])
        stamps = part.seconds[part.time_ok]
        self.rows += len(part.seconds)
        self.stamps += len(stamps)
        self.intraday_stamps += int(np.count_nonzero(stamps % DAY_SECONDS))
        if part.named_zone:
            self.named_zones |= {part.named_zone}
        if part.utc:
            seen = histogram(stamps)
            self.utc_times = seen if self.utc_times is None else merge_histograms([self.utc_times, seen])


_HEAD_ROWS = 20_000


def guess_time_column(part: FileInfo) -> str | None:
    """The unmapped column of a file that most likely holds the time of day: by its name, else the one
    with the most distinct values among the first rows that share a timestamp."""
    used = set(part.columns_used.values())
    unused = [h for h in part.header if h.strip() and h not in used]
    named = [h for h in unused if _TIME_HINTS.search(_norm(h))]
    if named:
        return named[0]
    if not unused:
        return None
    import pyarrow as pa

    try:
        table = _read_table(part.path, unused)
    except Exception:  # only a hint for a message: an unreadable column is simply not suggested
        return None
    sample = table.slice(0, _HEAD_ROWS)
    secs = part.head_seconds[: sample.num_rows]
    if len(secs) == 0:
        return None
    uniq, inverse = np.unique(secs, return_inverse=True)
    same = secs == uniq[np.bincount(inverse).argmax()]  # the rows of the most repeated timestamp
    best, best_count = None, 1
    for name in unused:
        column = sample.column(name)
        if pa.types.is_floating(column.type):
            raw = column.to_numpy(zero_copy_only=False)
            if not np.all(np.isnan(raw) | (raw == np.round(raw))):
                continue  # prices and sizes with fractions are not times of day
        try:
            tod = _time_of_day_seconds(column)
        except Exception:  # a hint only
            continue
        if tod is None or tod[1].mean() < 0.99:
            continue
        count = len(np.unique(tod[0][same]))
        if count > best_count:
            best, best_count = name, count
    return best


def frequent_times(times: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Of a histogram of bar times, those stamped on at least half as many rows as the most common one."""
    return times[counts * 2 >= counts.max()] if len(times) else times


#: (exchange, IANA zone, regular session): the zones tried for stamps with a time zone, each with the
#: session its exchange keeps in local time (the first of those that read the same clock is named)
EXCHANGE_SESSIONS: tuple[tuple[str, str, str], ...] = (
    ("NYSE / Nasdaq", "America/New_York", "09:30-16:00"),
    ("London", "Europe/London", "08:00-16:30"),
    ("Xetra / Euronext", "Europe/Berlin", "09:00-17:30"),
    ("Shanghai / Shenzhen", "Asia/Shanghai", "09:30-15:00"),
    ("Hong Kong", "Asia/Hong_Kong", "09:30-16:00"),
    ("Tokyo", "Asia/Tokyo", "09:00-15:30"),
    ("Tokyo (before November 2024)", "Asia/Tokyo", "09:00-15:00"),
    ("Korea", "Asia/Seoul", "09:00-15:30"),
    ("India (NSE)", "Asia/Kolkata", "09:15-15:30"),
    ("Australia (ASX)", "Australia/Sydney", "10:00-16:00"),
)


def is_zone(name: str) -> bool:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        return False
    return True


def _check_zone(name: str) -> None:
    if not is_zone(name):
        from studio.core.text import shown

        raise DataError(f"timezone {shown(name)!r} is not a time zone (an IANA name such as America/New_York)")


def to_local(utc_seconds: np.ndarray, zone: str) -> np.ndarray:
    """UTC instants (seconds since the epoch) as seconds of the wall-clock time in ``zone``."""
    import pandas as pd

    stamps = pd.DatetimeIndex(utc_seconds.astype("datetime64[s]")).tz_localize("UTC").tz_convert(zone)
    return stamps.tz_localize(None).to_numpy(dtype="datetime64[s]").astype(np.int64)


def _session_in(zone: str, times: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, int]:
    """The frequent bar times of day (those on at least half as many rows as the most common one) of
    the UTC instants ``times`` read in ``zone``, and the most common step between them."""
    tod = to_local(times, zone) % DAY_SECONDS
    uniq, inverse = np.unique(tod, return_inverse=True)
    frequent = frequent_times(uniq, np.bincount(inverse, weights=counts))
    steps, step_counts = np.unique(np.diff(frequent), return_counts=True)
    return frequent, int(steps[np.argmax(step_counts)]) if len(steps) else 0


def exchange_zone(times: np.ndarray, counts: np.ndarray, source: str = "") -> tuple[str, str]:
    """The zone of stamps with a time zone (``times``: distinct UTC instants, ``counts``: rows at each),
    and why: the one exchange zone (``EXCHANGE_SESSIONS``) in which the frequent bar times stay at the
    same clock times year-round (daylight saving included) and span its regular session, bar-start or
    bar-end stamped. None or several that read different clocks: a one-line DataError asking for
    --timezone."""
    fits: list[tuple[str, str, str, np.ndarray]] = []
    for exchange, zone, session in EXCHANGE_SESSIONS:
        frequent, step = _session_in(zone, times, counts)
        if not step:
            continue
        open_s, close_s = parse_session(session)
        if frequent[0] in (open_s, open_s + step) and frequent[-1] in (close_s - step, close_s):
            fits.append((exchange, zone, session, to_local(times, zone)))
    clocks = {zone for _, zone, _, _ in fits}
    if len(fits) > 1:
        distinct = [f for i, f in enumerate(fits)
                    if not any(np.array_equal(f[3], g[3]) for g in fits[:i])]
        if len(distinct) > 1:
            raise DataError(f"{source or 'the source'}: the stamps carry a time zone, and the bar times fit more "
                            "than one exchange's: name it with --timezone ZONE (in the studio: Import bars, time "
                            f"zone); they fit {' and '.join(f'{z} ({e} {s})' for e, z, s, _ in distinct[:3])}")
    if not fits:
        tried = ", ".join(sorted({z for _, z, _ in EXCHANGE_SESSIONS}))
        raise DataError(f"{source or 'the source'}: the stamps carry a time zone, and the bar times do not tell "
                        "the exchange's: name it with --timezone ZONE, e.g. America/New_York (in the studio: Import "
                        f"bars, time zone); in none of the zones tried ({tried}) do they span the exchange's "
                        "session year-round")
    exchange, zone, session, _ = fits[0]
    also = sorted(clocks - {zone})
    same = f"; {', '.join(also)} read the same clock here" if also else ""
    return zone, (f"inferred: the one exchange zone tried in which the bars keep their clock times year-round "
                  f"and span its regular session, {exchange} {session}{same}")


def plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def few(items: Sequence[str], k: int = 5) -> str:
    items = list(items)
    return ", ".join(items[:k]) + (f", ... ({len(items)} in all)" if len(items) > k else "")


def histogram(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.unique(values, return_counts=True)


def merge_histograms(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One histogram (sorted values, counts) from several."""
    values = np.concatenate([v for v, _ in parts]) if parts else np.zeros(0, np.int64)
    counts = np.concatenate([c for _, c in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
    uniq, inverse = np.unique(values, return_inverse=True)
    total = np.zeros(len(uniq), np.int64)
    np.add.at(total, inverse, counts)
    return uniq, total


# ---- the entry points --------------------------------------------------------------------------

@functools.cache
def code_digest() -> str:
    """A digest of the importer's code (its readers, its policies, the cache format): an edited importer
    never reads panels cached by an older one."""
    try:
        data = (Path(__file__).read_bytes() + Path(__file__).with_name("import_stages.py").read_bytes()
                + Path(_cache.__file__).read_bytes())
    except OSError:
        return str(IMPORTER_VERSION)
    return hashlib.sha256(data).hexdigest()[:16]


def describe_source(items: Iterable, files: list[Path]) -> str:
    """The panel's ``source``: what was asked for and how many files of which format it found."""
    items = [str(i) for i in items]
    kinds = sorted({"Parquet" if is_parquet(f) else "CSV" for f in files})
    what = f"{plural(len(files), '/'.join(kinds) + ' file')}"
    return f"{', '.join(items)} ({what})"


