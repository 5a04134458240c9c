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

Nothing is forward-filled into a label: labels come from the daily closes of traded days only.
Imports are cached as Parquet (:mod:`studio.data.cache`). Folders larger than memory go through buckets
of symbols on disk into a memory-mapped panel (:mod:`studio.data.import_chunked`): :func:`assemble`
applies the same policies to any split of the symbols into buckets, with the same result.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import math
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
from studio.data.panel import FLOW_FEATURES, PRICE_FEATURES, BarPanel, DataError

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
}
#: a finite price above this, or a volume / turnover above MAX_FLOW, is no market's: a bad value (a
#: close of 1e308 would become inf in the float32 panel)
MAX_PRICE = 1e9
MAX_FLOW = 1e15
_PRICE_TEXT, _FLOW_TEXT = "1e9", "1e15"
#: the counts of infinite and absurd values, each under its own name (panel.counts)
ABSURD_VALUE_COUNTS = (
    "bars with an infinite close treated as missing",
    f"bars with a close over {_PRICE_TEXT} treated as missing",
    "infinite volume set to 0",
    f"volume over {_FLOW_TEXT} set to 0",
    "infinite turnover set to 0",
    f"turnover over {_FLOW_TEXT} set to 0",
    f"infinite open, high or low, or over {_PRICE_TEXT}, set to the close",
)
_DAY = 86_400


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


def _hhmm(seconds: int) -> str:
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

    @property
    def date_only(self) -> bool:
        """Every readable stamp is a midnight: daily bars (or dates without a time)."""
        stamps = self.seconds[self.time_ok]
        return len(stamps) > 0 and bool(np.all(stamps % _DAY == 0))


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
    for fld in ("close", "volume"):
        if fld not in found:
            raise DataError(f"{path}: no {fld} column (tried {', '.join(CANDIDATES[fld])}; name it with the "
                            f"{fld} option); it has: {listing}")
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
            elif fld == "symbol":
                source = "the file name"
            elif fld == "turnover":
                source = "derived: close x volume"
            elif fld in ("open", "high", "low"):
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
                seconds = day_secs - day_secs % _DAY + tod[0]
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
    return FileBars(path, codes, names, seconds.astype(np.int64), ok.astype(bool), values,
                    rows_without_symbol, cols, list(header), zone is not None,
                    zone if zone and "/" in zone and not zone.startswith("Etc/") else None)


def _read_all(files: list[Path], config: ImportConfig) -> list[FileBars]:
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

    @property
    def date_only(self) -> bool:
        return self.stamps > 0 and self.intraday_stamps == 0

    @classmethod
    def of(cls, part: FileBars) -> FileInfo:
        info = cls(part.path, 0, dict(part.columns_used), list(part.header), np.zeros(0, np.int64), 0, 0,
                   frozenset(part.values))
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
        self.intraday_stamps += int(np.count_nonzero(stamps % _DAY))
        if part.named_zone:
            self.named_zones |= {part.named_zone}
        if part.utc:
            seen = _histogram(stamps)
            self.utc_times = seen if self.utc_times is None else _merge_histograms([self.utc_times, seen])


_HEAD_ROWS = 20_000


def _guess_time_column(part: FileInfo) -> str | None:
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


def _frequent_times(times: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Of a histogram of bar times, those stamped on at least half as many rows as the most common one."""
    return times[counts * 2 >= counts.max()] if len(times) else times


def _edge_print(times: np.ndarray, counts: np.ndarray, config: ImportConfig) -> tuple[str, int, int] | None:
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
    frequent = _frequent_times(times, counts)
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


def _merge_edge_prints(sym: np.ndarray, secs: np.ndarray, vals: dict[str, np.ndarray], which: str, at: int,
                       into: int):
    """Fold each print at time of day ``at`` into its symbol-day's bar at ``into`` (rows sorted by symbol
    and time, timestamps unique); a print without such a bar becomes it. Returns the new rows and the
    numbers merged and moved."""
    day = secs // _DAY
    is_print = secs - day * _DAY == at
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


def _is_zone(name: str) -> bool:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        return False
    return True


def _check_zone(name: str) -> None:
    if not _is_zone(name):
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
    tod = to_local(times, zone) % _DAY
    uniq, inverse = np.unique(tod, return_inverse=True)
    frequent = _frequent_times(uniq, np.bincount(inverse, weights=counts))
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


def _duplicates_message(files: list[FileInfo], duplicates: int, readable: int, config: ImportConfig) -> str:
    """One line: how many rows repeat a timestamp, where the timestamps come from, the column that
    probably holds the time and the option that maps it."""
    part = max(files, key=lambda f: f.rows)
    stamp = part.columns_used.get("datetime") or "/".join(
        part.columns_used[k] for k in ("date", "time") if k in part.columns_used)
    guess = _guess_time_column(part)
    share = duplicates / readable
    head = (f"{part.path}: {duplicates:,} of {readable:,} rows ({share:.0%}) repeat a symbol's timestamp, which is "
            f"read from column {stamp!r} alone")
    if guess is not None:
        fix = f"column {guess!r} probably holds the time of day: map it with --time-col {guess}"
    else:
        fix = "map the column that holds the time of day with --time-col NAME"
    return f"{head}; {fix}, or allow this with --max-duplicate-share 1 (keeps the last row of each)"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _few(items: Sequence[str], k: int = 5) -> str:
    items = list(items)
    return ", ".join(items[:k]) + (f", ... ({len(items)} in all)" if len(items) > k else "")


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


def _each(buckets: Sequence, step, save: bool = True) -> list:
    """``step(rows)`` on each bucket's rows (a bucket holds every row of its symbols); ``save``: the
    rows as ``step`` left them are the bucket's from now on."""
    results = []
    for bucket in buckets:
        rows = bucket.load()
        results.append(step(rows))
        if save:
            bucket.save(rows)
    return results


def _histogram(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.unique(values, return_counts=True)


def _merge_histograms(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One histogram (sorted values, counts) from several."""
    values = np.concatenate([v for v, _ in parts]) if parts else np.zeros(0, np.int64)
    counts = np.concatenate([c for _, c in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
    uniq, inverse = np.unique(values, return_inverse=True)
    total = np.zeros(len(uniq), np.int64)
    np.add.at(total, inverse, counts)
    return uniq, total


def _sum_padded(arrays: Sequence[np.ndarray]) -> np.ndarray:
    total = np.zeros(max((len(a) for a in arrays), default=0), np.int64)
    for a in arrays:
        total[: len(a)] += a
    return total


def _day_keys(rows: Rows) -> tuple[np.ndarray, int, int]:
    """(symbol-day key per row, first day, days spanned) of rows: keys are unique per symbol and day
    and, for rows sorted by symbol and time, ascending."""
    day = rows.secs // _DAY
    if len(day) == 0:
        return np.zeros(0, np.int64), 0, 1
    first = int(day.min())
    span = int(day.max()) - first + 1
    return rows.sym.astype(np.int64) * span + (day - first), first, span


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
    no_symbol = sum(p.rows_without_symbol for p in parts)
    read = {"rows read": len(sym), "rows without a symbol dropped": no_symbol,
            "rows with unreadable timestamps dropped": int((~rows.arrays["ok"]).sum()) - no_symbol}
    return assemble([MemoryBucket(rows)], files, list(symbol_index), features, read, config, source)


def import_features(files: Sequence[FileInfo]) -> list[str]:
    """The panel's features: the price fields every file has, then volume and turnover."""
    return [f for f in PRICE_FEATURES if all(f in i.value_fields for i in files)] + list(FLOW_FEATURES)


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
        elif f == "turnover":
            with np.errstate(over="ignore", invalid="ignore"):  # from a bad close or volume: counted there
                vals[f] = part.values["close"] * part.values["volume"]
        else:
            vals[f] = np.full(len(sym), np.nan)
    return sym, part.time_ok & has_sym, vals


def assemble(buckets: Sequence, files: list[FileInfo], names: list[str], features: list[str],
             read: dict[str, int], config: ImportConfig, source: str = "", values_file: Path | None = None) -> BarPanel:
    """Apply the import policies to the rows of ``buckets`` (each holds every row of its symbols, in file
    order) and lay them out as a BarPanel: in memory, or in the array file ``values_file``.

    A policy that is global (the bar grid, early closes, trading dates, ...) is decided from statistics
    gathered over every bucket, then applied bucket by bucket, so any split of the symbols into buckets
    gives the same panel, bit for bit."""
    counts: dict[str, int] = {}
    notes: list[str] = []
    n_files = len(files)
    daily = [f for f in files if f.date_only]
    if daily and len(daily) < n_files:
        intraday = next(f for f in files if not f.date_only)
        raise DataError(f"{daily[0].path}: holds dates without a time of day (daily bars?) while "
                        f"{intraday.path} holds intraday bars; import them separately (a folder's files "
                        "can be chosen with the pattern option)")
    for fld in ("open", "high", "low"):
        if fld not in features and any(fld in f.value_fields for f in files):
            notes.append(f"{fld} left out: not every file has an {fld} column")
    derived_files = [f for f in files if "turnover" not in f.value_fields]
    counts["files read"] = n_files
    counts.update(read)

    # --- time zones: stamps with one are UTC instants, read as the exchange's wall-clock time (the zone
    # given, else the one in which the sessions keep their clock times year-round)
    zone = None
    utc_files = [f for f in files if f.utc_times is not None]
    counts["stamps with a time zone read in the exchange's"] = 0
    if utc_files:
        utc_times, utc_counts = _merge_histograms([f.utc_times for f in utc_files])
        which = ("the files'" if len(utc_files) == n_files
                 else f"{len(utc_files)} of {n_files} files' (the others' are read as they are)")
        named = {z for f in utc_files for z in f.named_zones}  # a name no zone has (a file's text): inferred
        named = named if all(_is_zone(z) for z in named) else set()
        if config.timezone is not None:
            zone, how = config.timezone, "as set with --timezone"
        elif len(named) == 1 and all(f.named_zones for f in utc_files):
            zone, how = next(iter(named)), "the zone the files' timestamp column names"
        elif len(utc_times) and not np.any(utc_times % _DAY):
            how = None  # stamped at midnight UTC: dates, not instants of a session
            notes.append(f"time zone: {which} stamps are midnights UTC and are read as dates")
        else:
            zone, how = exchange_zone(utc_times, utc_counts, source)
        if zone is not None:
            counts["stamps with a time zone read in the exchange's"] = int(utc_counts.sum())
            notes.append(f"time zone: {which} stamps carry a UTC offset and are read as {zone} wall-clock time "
                         f"({how}; {_plural(int(utc_counts.sum()), 'stamp')})")
    elif config.timezone is not None:
        notes.append(f"time zone {config.timezone} not used: the stamps carry no zone and are read as they are")

    # --- duplicates: sort by (symbol, time), stable, and keep the last of equal keys ---
    def deduplicate(rows: Rows):
        rows.keep(rows.arrays.pop("ok"))
        utc = rows.arrays.pop("utc", None)
        if zone is not None and utc is not None and utc.any():
            secs = rows.secs.copy()
            secs[utc] = to_local(secs[utc], zone)
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
        return dropped, _histogram(rows.secs - rows.secs // _DAY * _DAY)

    done = _each(buckets, deduplicate)
    duplicates = sum(d for d, _ in done)
    times, time_counts = _merge_histograms([h for _, h in done])
    counts["duplicate timestamps dropped (last kept)"] = duplicates
    notes.append("duplicate timestamps of a symbol: the last row kept "
                 f"({_plural(duplicates, 'row')} dropped)")
    readable = counts["rows read"] - counts["rows without a symbol dropped"] - counts[
        "rows with unreadable timestamps dropped"]
    if readable and duplicates > config.max_duplicate_share * readable:
        raise DataError(_duplicates_message(files, duplicates, readable, config))

    # --- prints at the session's edge: a closing print stamped at the session end (US 1-minute files:
    # 09:30 .. 16:00, 391 stamps) is the day's close, not a bar of its own; likewise an opening print
    # stamped at the session start in bar-end files
    edge = _edge_print(times, time_counts, config)
    stamp_override = None
    if edge is not None:
        which, at, into = edge

        def merge(rows: Rows):
            if not len(rows):
                return 0, 0, _histogram(rows.secs)
            sym, secs, rows.vals, merged, moved = _merge_edge_prints(rows.sym, rows.secs, rows.vals, which, at,
                                                                     into)
            rows.arrays = {"sym": sym, "secs": secs}
            return merged, moved, _histogram(secs - secs // _DAY * _DAY)

        done = _each(buckets, merge)
        merged, moved = sum(d[0] for d in done), sum(d[1] for d in done)
        times, time_counts = _merge_histograms([d[2] for d in done])
        stamp_override = "start" if which == "closing" else "end"
        counts[f"{which} prints merged into the {'last' if which == 'closing' else 'first'} bar"] = merged
        counts[f"{which} prints taken as the bar (no bar at {_hhmm(into)})"] = moved
        what = ("close is the print; high / low widened" if which == "closing"
                else "open is the print; high / low widened")
        notes.append(f"{which} prints stamped {_hhmm(at)} (the session's {'end' if which == 'closing' else 'start'}) "
                     f"belong to the day's {'close' if which == 'closing' else 'open'}: each is merged into the "
                     f"{_hhmm(into)} bar ({what}; volume and turnover added), or becomes that bar where the "
                     f"day has none ({_plural(merged, 'print')} merged, {moved:,} taken as the bar)")

    def rows_at(t: int) -> int:
        return int(time_counts[times == t].sum())

    # --- session ---
    extended = 0
    stamp_text = ""
    n_rows = int(time_counts.sum())
    if config.session is not None:
        open_s, close_s = parse_session(config.session)
        stamp = config.bar_stamp
        if stamp_override is not None and stamp in ("auto", stamp_override):
            stamp = stamp_override
            stamp_text = f" (bar-{stamp} stamps, with {edge[0]} prints at {_hhmm(edge[1])})"
        elif stamp == "auto":
            at_open, at_close = rows_at(open_s), rows_at(close_s)
            stamp = "end" if at_close > at_open else "start"
            stamp_text = f" (bar-{stamp} stamps, found from the bars at {_hhmm(open_s)} and {_hhmm(close_s)})"
        else:
            stamp_text = f" (bar-{stamp} stamps)"
        inside = (times >= open_s) & (times < close_s) if stamp == "start" else (times > open_s) & (times <= close_s)
        extended = int(time_counts[~inside].sum())
        n_rows -= extended
        counts["extended-hours bars dropped"] = extended

        def in_session(rows: Rows) -> None:
            tod = rows.secs - rows.secs // _DAY * _DAY
            rows.keep((tod >= open_s) & (tod < close_s) if stamp == "start" else (tod > open_s) & (tod <= close_s))

        _each(buckets, in_session)

    # --- bars per day and the bar grid ---
    if n_rows == 0:
        raise DataError(f"{source or 'the source'}: no bars left after filtering ({_summary(counts)})")

    def grid_for(lo: int | None = None, hi: int | None = None) -> tuple[int, np.ndarray, np.ndarray, tuple]:
        """Bars per day (set or the most common count), the grid of bar times, the histogram of bars per
        symbol-day and that of the bar times, of the rows whose time of day is in [lo, hi] (all: None)."""
        def statistics(rows: Rows):
            keys = _day_keys(rows)[0]
            tod = rows.secs - rows.secs // _DAY * _DAY
            if lo is not None:
                chosen = (tod >= lo) & (tod <= hi)
                keys, tod = keys[chosen], tod[chosen]
            return np.bincount(np.unique(keys, return_counts=True)[1]), _histogram(tod)

        done = _each(buckets, statistics, save=False)
        per_day_hist = _sum_padded([d[0] for d in done])
        bar_times, bar_counts = _merge_histograms([d[1] for d in done])
        if config.bars_per_day is not None:
            n_bars = config.bars_per_day
        else:
            n_bars = int(np.flatnonzero(per_day_hist == per_day_hist.max())[-1])
        if len(bar_times) < n_bars:
            raise DataError(f"{source or 'the source'}: only {len(bar_times)} distinct bar times for {n_bars} "
                            "bars per day")
        top = np.argsort(-bar_counts, kind="stable")[:n_bars]
        return n_bars, np.sort(bar_times[top]), per_day_hist, (bar_times, bar_counts)

    p, grid, per_day_hist, (times, time_counts) = grid_for()
    bounded = config.session is None
    if bounded:
        # the session is the span of the grid; bars per day again, now without the extended hours
        p2, grid2, per_day_hist, _ = grid_for(int(grid[0]), int(grid[-1]))
        if p2 != p:
            p, grid = p2, grid2
            per_day_hist = grid_for(int(grid[0]), int(grid[-1]))[2]
        extended = int(time_counts[(times < grid[0]) | (times > grid[-1])].sum())
        session_text = (f"session inferred from the {p} most common bar times: bars stamped {_hhmm(grid[0])} "
                        f"to {_hhmm(grid[-1])}")
    else:
        session_text = f"session {config.session}{stamp_text}"
    n_full = int(per_day_hist[p]) if p < len(per_day_hist) else 0
    how = ("as set" if config.bars_per_day is not None else "the most common number of in-session bars on a "
           "symbol-day") + f"; {n_full:,} of {int(per_day_hist.sum()):,} symbol-days have {p}"

    # --- on the grid; values; early-close votes ---
    need = max(1, math.ceil(config.min_day_share * p - 1e-9))
    value_counts = ("bars with NaN/zero/negative close treated as missing", "NaN/negative volume set to 0",
                    "NaN/negative turnover set to 0", "NaN/zero open, high or low set to the close",
                    "zero-volume bars kept", *ABSURD_VALUE_COUNTS)

    def on_grid_and_values(rows: Rows):
        tod = rows.secs - rows.secs // _DAY * _DAY
        in_session = (tod >= grid[0]) & (tod <= grid[-1]) if bounded else np.ones(len(tod), dtype=bool)
        slot = np.searchsorted(grid, tod)
        on_grid = in_session & (slot < p) & (grid[np.clip(slot, 0, p - 1)] == tod)
        off_grid = int((in_session & ~on_grid).sum())
        rows.arrays["slot"] = slot
        rows.keep(on_grid)
        vals = rows.vals
        close = vals["close"]
        # NaN, zero or negative (-inf too); infinite; a finite number no price is (1e308 would become
        # inf in the float32 panel): each counted under its own name
        close_nan = np.isnan(close) | (close <= 0)
        close_inf, close_absurd = np.isposinf(close), np.isfinite(close) & (close > MAX_PRICE)
        bad_close = close_nan | close_inf | close_absurd

        def flow(f: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            value = vals[f]
            nan = np.isnan(value) | (value < 0)
            inf, absurd = np.isposinf(value), np.isfinite(value) & (value > MAX_FLOW)
            bad = nan | inf | absurd
            vals[f] = np.where(bad, 0.0, value)
            return bad, nan, inf, absurd

        bad_vol, vol_nan, vol_inf, vol_absurd = flow("volume")
        _, turn_nan, turn_inf, turn_absurd = flow("turnover")
        # turnover derived from a bad volume is 0 like the volume, not counted twice
        turn_counted = ~bad_close & (~bad_vol if derived_files else True)
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
                 bad_ohl, int(((vals["volume"] == 0) & ~bad_vol & ~bad_close).sum()),
                 int(close_inf.sum()), int(close_absurd.sum()), int((vol_inf & ~bad_close).sum()),
                 int((vol_absurd & ~bad_close).sum()), int((turn_inf & turn_counted).sum()),
                 int((turn_absurd & turn_counted).sum()), ohl_absurd)
        rows.keep(~bad_close)
        # early closes: the last bar of each symbol-day (rows are sorted by symbol and time, so each
        # symbol-day is one run of rows), counted per date
        keys, first, span = _day_keys(rows)
        votes = np.zeros((0, p), dtype=np.int64)
        if len(keys) and p > 1:
            starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
            last_slot = np.maximum.reduceat(rows.arrays["slot"], starts)
            votes = np.zeros((span, p), dtype=np.int64)
            np.add.at(votes, ((keys[starts] % span).astype(np.int64), last_slot), 1)
        return off_grid, tally, (first, span if len(keys) else 0), votes

    done = _each(buckets, on_grid_and_values)
    counts["extended-hours bars dropped"] = extended
    counts["off-grid bars dropped"] = off_grid = sum(d[0] for d in done)
    notes.append(f"{session_text}; {_plural(extended, 'bar')} outside it dropped (extended hours)")
    grid_text = ", ".join(_hhmm(t) for t in grid) if p <= 8 else f"{_hhmm(grid[0])} .. {_hhmm(grid[-1])}"
    notes.append(f"{p} bars per day ({how}); bar times {grid_text}; "
                 f"{_plural(off_grid, 'bar')} at other times dropped")
    for i, name in enumerate(value_counts[:4]):
        counts[name] = sum(d[1][i] for d in done)
    bad_ohl = counts["NaN/zero open, high or low set to the close"]
    counts["zero-volume bars kept"] = sum(d[1][4] for d in done)
    for i, name in enumerate(ABSURD_VALUE_COUNTS, start=5):
        counts[name] = sum(d[1][i] for d in done)
    absurd = [ABSURD_VALUE_COUNTS[i] for i in range(len(ABSURD_VALUE_COUNTS)) if counts[ABSURD_VALUE_COUNTS[i]]]
    notes.append(f"infinite values, and numbers no price (over {_PRICE_TEXT}) or volume / turnover (over "
                 f"{_FLOW_TEXT}) is, are bad values: such a close makes the bar missing, such a volume or "
                 "turnover is set to 0, such an open / high / low is set to the close ("
                 + ("; ".join(f"{name}: {counts[name]:,}" for name in absurd) if absurd else "none") + ")")
    notes.append(f"a NaN, zero or negative close makes the bar missing ("
                 f"{_plural(counts['bars with NaN/zero/negative close treated as missing'], 'bar')}); NaN or "
                 f"negative volume / turnover set to 0 ({counts['NaN/negative volume set to 0']:,} / "
                 f"{counts['NaN/negative turnover set to 0']:,}); NaN open / high / low set to the close "
                 f"({bad_ohl:,}); zero volume kept as a real value")

    # --- early closes: a date on which most symbols' last bar is the same one before the session's last
    # (a half day). Bars after it are after-hours trading of that day and are dropped.
    spans = [d[2] for d in done if d[2][1]]
    day0 = min((first for first, _ in spans), default=0)
    n_span = (max(first + span for first, span in spans) - day0) if spans else 1
    votes = np.zeros((n_span, p), dtype=np.int64)
    for (first, span), bucket_votes in ((d[2], d[3]) for d in done):
        if len(bucket_votes):
            votes[first - day0: first - day0 + span] += bucket_votes
    early_dates: list[str] = []
    cut = None
    if spans and p > 1:
        symbols_on = votes.sum(axis=1)
        close_slot = votes.argmax(axis=1)
        early = ((close_slot < p - 1) & (close_slot + 1 >= need) & (symbols_on > 0)
                 & (votes.max(axis=1) * 2 > symbols_on))
        if early.any():
            cut = np.where(early, close_slot, p - 1)
            early_dates = [str(np.datetime64(int(d) + day0, "D")) for d in np.flatnonzero(early)]

    # --- symbol-days: traded, partial ---
    def symbol_days(rows: Rows):
        after_close = 0
        if cut is not None and len(rows):
            late_bar = rows.arrays["slot"] > cut[rows.secs // _DAY - day0]
            after_close = int(late_bar.sum())
            rows.keep(~late_bar)
        keys, first, span = _day_keys(rows)
        uniq, inverse, bars_on = np.unique(keys, return_inverse=True, return_counts=True)
        full_day = bars_on >= need
        rows.keep(full_day[inverse])
        traded = uniq[full_day]
        return (after_close, int((~full_day).sum()), np.unique(uniq % span) + first - day0,
                traded // span, traded % span + first - day0, bars_on[full_day])

    done = _each(buckets, symbol_days)
    after_close = sum(d[0] for d in done)
    counts["early-close days found"] = len(early_dates)
    counts["bars after an early close dropped"] = after_close
    notes.append("early closes: a date on which most symbols' last bar is the same bar before the session's "
                 f"last (and at least {need} bars) ends there for every symbol; later bars are after-hours "
                 f"and dropped ({_plural(len(early_dates), 'date')}"
                 + (f": {_few(early_dates, 4)}" if early_dates else "") + f"; {_plural(after_close, 'bar')})")
    counts["partial days treated as not traded"] = sum(d[1] for d in done)
    notes.append(f"partial days: a symbol-day with fewer than {need} of the {p} bars "
                 f"({config.min_day_share:.0%}) counts as not traded and its bars are dropped "
                 f"({_plural(counts['partial days treated as not traded'], 'symbol-day')})")
    all_days = np.unique(np.concatenate([d[2] for d in done]).astype(np.int64))  # days with any bar
    traded_sym = np.concatenate([d[3] for d in done]).astype(np.int64)
    traded_day = np.concatenate([d[4] for d in done]).astype(np.int64)
    traded_bars = np.concatenate([d[5] for d in done]).astype(np.int64)

    # --- trading dates ---
    per_day = np.bincount(traded_day, minlength=n_span) if len(traded_day) else np.zeros(n_span, int)
    most = int(per_day.max()) if len(per_day) else 0
    need_syms = max(1, math.ceil(config.min_date_share * most - 1e-9))
    good_day = per_day >= need_syms
    kept_days = all_days[good_day[all_days]]
    dropped_days = all_days[~good_day[all_days]]
    counts["dates dropped (too few symbols traded)"] = len(dropped_days)
    on_dropped = ~good_day[traded_day]
    counts["traded symbol-days on dropped dates discarded"] = int(on_dropped.sum())
    date_rule = (f"days on which at least {need_syms} symbols traded ({config.min_date_share:.0%} of the "
                 f"most on any day, {most})" if config.min_date_share > 0 else "every day any symbol traded")
    dropped_text = f": {_date_runs(all_days, good_day[all_days], day0)}" if len(dropped_days) else ""
    notes.append(f"trading dates: {date_rule}; {_plural(len(dropped_days), 'date')} dropped{dropped_text} "
                 f"({_plural(counts['traded symbol-days on dropped dates discarded'], 'traded symbol-day')} "
                 f"discarded)")
    traded_sym, traded_day, traded_bars = traded_sym[~on_dropped], traded_day[~on_dropped], traded_bars[~on_dropped]

    if len(kept_days) == 0 or len(traded_sym) == 0:
        raise DataError(f"{source or 'the source'}: no bars left after filtering ({_summary(counts)})")

    # --- symbols (sorted), dates ---
    present = np.unique(traded_sym)
    counts["symbols without a traded day dropped"] = len(names) - len(present)
    if counts["symbols without a traded day dropped"]:
        gone = sorted(set(names) - {names[i] for i in present})
        notes.append(f"symbols without a traded day dropped: {_few(gone)}")
    order = sorted(present, key=lambda i: names[i])
    symbols = [names[i] for i in order]
    s_of_code = np.full(len(names), -1, dtype=np.int64)
    s_of_code[order] = np.arange(len(order))
    d_of_day = np.full(n_span, -1, dtype=np.int64)
    d_of_day[kept_days] = np.arange(len(kept_days))
    dates = (kept_days + day0).astype("datetime64[D]")
    n_s, n_d = len(symbols), len(dates)

    traded = np.zeros((n_s, n_d), dtype=bool)
    traded[s_of_code[traded_sym], d_of_day[traded_day]] = True
    counts["short days kept (missing bars filled)"] = int((traded_bars < p).sum())
    first_d = np.argmax(traded, axis=1)
    last_d = n_d - 1 - np.argmax(traded[:, ::-1], axis=1)

    # --- the values array, a bucket's symbols at a time ---
    from studio.data import store

    values = None if values_file is None else store.create(values_file, (n_s, n_d * p, len(features)))
    filled = np.zeros(3, np.int64)

    def lay_out(rows: Rows) -> None:
        nonlocal values
        rows.keep(good_day[rows.secs // _DAY - day0])
        if not len(rows):
            return
        rs = s_of_code[rows.sym]
        block_s = np.unique(rs)
        block, tally = _lay_out_block(rows, np.searchsorted(block_s, rs), d_of_day[rows.secs // _DAY - day0],
                                      traded[block_s], first_d[block_s], last_d[block_s], features, p)
        filled[:] += tally
        if values is None and len(block_s) == n_s:
            values = block  # every symbol in one bucket (in memory): the block is the panel
        else:
            if values is None:
                values = np.full((n_s, n_d * p, len(features)), np.nan, dtype=np.float32)
            values[block_s] = block
            store.release(values)

    _each(buckets, lay_out, save=False)
    if values_file is not None:
        values = store.open_array(store.finish(values), (n_s, n_d * p, len(features)), np.float32)
    counts["missing bars filled in traded days"] = n_missing = int(filled[0])
    counts["missing bars before a symbol's first bar filled from its open"] = n_first = int(filled[1])
    counts["suspended days filled (listed, not traded)"] = n_suspended = int(filled[2])
    n_short = counts["short days kept (missing bars filled)"]
    notes.append(f"short days: the missing bars of a traded day are filled: close carried from the previous "
                 f"bar (the previous day's close for a day's first bars), open = high = low = that close, "
                 f"volume and turnover 0 ({_plural(n_short, 'symbol-day')}, {_plural(n_missing, 'bar')}; "
                 f"{n_first:,} before a symbol's first bar take that bar's open)")
    notes.append(f"suspended days (listed, not traded): traded False, bars filled with the previous close, "
                 f"zero volume and turnover ({_plural(n_suspended, 'symbol-day')})")

    late = [symbols[i] for i in range(n_s) if first_d[i] > 0]
    early_end = [symbols[i] for i in range(n_s) if last_d[i] < n_d - 1]
    counts["symbols starting late"] = len(late)
    counts["symbols ending early"] = len(early_end)
    span_note = ("symbols that start late or stop are kept for the dates they traded; bars before their "
                 "first and after their last traded date are NaN (traded False)")
    if late:
        span_note += f"; start late: {_few(late)}"
    if early_end:
        span_note += f"; end early: {_few(early_end)}"
    notes.append(span_note)

    if derived_files:
        which = "the files" if len(derived_files) == n_files else f"{len(derived_files)} of {n_files} files"
        notes.append(f"turnover derived as close x volume ({which} have no turnover column)")
    counts["files with turnover derived as close x volume"] = len(derived_files)
    notes.append("labels come from the daily closes of traded days only: nothing is forward-filled into a "
                 "label")

    return BarPanel(symbols, dates, features, p, values, traded,
                    source=source, notes=notes, counts=counts)


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


# ---- the entry points --------------------------------------------------------------------------

@functools.cache
def code_digest() -> str:
    """A digest of the importer's code: an edited importer never reads panels cached by an older one."""
    try:
        data = Path(__file__).read_bytes() + Path(_cache.__file__).read_bytes()
    except OSError:
        return str(IMPORTER_VERSION)
    return hashlib.sha256(data).hexdigest()[:16]


def describe_source(items: Iterable, files: list[Path]) -> str:
    """The panel's ``source``: what was asked for and how many files of which format it found."""
    items = [str(i) for i in items]
    kinds = sorted({"Parquet" if is_parquet(f) else "CSV" for f in files})
    what = f"{_plural(len(files), '/'.join(kinds) + ' file')}"
    return f"{', '.join(items)} ({what})"


def import_in_memory(files: list[Path], config: ImportConfig, source: str) -> BarPanel:
    """Read every file whole and build the panel in memory (the import of files that fit; the entry point,
    studio.data.load.import_bars, decides)."""
    return build_panel(_read_all(files, config), config, source)
