"""Qlib data folders as bars: ``--data qlib:DIR --freq 5min --market csi300``.

Qlib's layout (its scripts/dump_bin.py writes it, qlib.data.storage.file_storage reads it):

- ``calendars/<freq>.txt``: one timestamp a line, ascending (``2020-01-02`` for day, ``2020-01-02 09:30:00``
  for intraday frequencies);
- ``instruments/<market>.txt``: tab-separated code, start, end (a code may have several spans, e.g. the
  terms of an index membership);
- ``features/<code, lower case>/<field>.<freq>.bin``: little-endian float32, the first value the index into
  the calendar where the file starts (as a float), then one value per calendar entry from there, NaN for
  gaps and suspensions.

Each instrument becomes the rows of one "file" (its folder) that go through the importer's policies
(studio.data.import_stages: sessions, bar grid, partial days, suspensions, trading dates, counts), as
imported CSV files do. The ``.bin`` files are memory-mapped and only the calendar entries inside the
market's spans are read. Fields: open, high, low, close, volume, and ``amount`` as turnover. Qlib's prices
and volumes are adjusted (``factor = adjusted / original price``); ``prices=raw`` undoes it with ``factor``
(close / factor, volume x factor; amount is money and stays). Symbols are Qlib's codes as the market file
spells them (SH600000), so scores written for Qlib name the same instruments.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.data import store
from studio.data.errors import DataError
from studio.data.importer import DAY_SECONDS, FileBars, FileInfo, ImportConfig, plural
from studio.data.panel import BarPanel

#: Qlib's field file -> the studio's feature
FIELDS = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume", "amount": "turnover"}
PRICES = ("open", "high", "low", "close")
#: how prices are given: as Qlib stores them, or with Qlib's adjustment undone by ``factor``
PRICE_MODES = ("adjusted", "raw")
#: settings of the source and their defaults (config.json records them)
DEFAULTS = {"freq": "day", "market": "all", "prices": "adjusted"}
#: Qlib's frequency names: day, week, month, 1min, 5min, 30min, 1h, ... (its Freq class)
FREQ_NAME = re.compile(r"^[0-9]*(?:min|minute|h|hour|d|day|w|week|mon|month)$", re.IGNORECASE)
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?$")
#: Qlib prefixes the file names Windows reserves (qlib.utils.code_to_fname)
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
#: bytes a row takes in the on-disk import (import_chunked.RECORD)
_ROW_BYTES = 65


@dataclass(frozen=True)
class QlibFolder:
    """A Qlib data folder read at one frequency for one market."""

    root: Path
    freq: str
    market: str

    @property
    def calendar_file(self) -> Path:
        return self.root / "calendars" / f"{self.freq.lower()}.txt"

    @property
    def market_file(self) -> Path:
        """``instruments/<market>.txt``, or the market given as a file of its own."""
        given = Path(self.market)
        if given.suffix.lower() == ".txt" or len(given.parts) > 1:
            return given
        return self.root / "instruments" / f"{self.market.lower()}.txt"

    def feature_folder(self, code: str) -> Path:
        name = f"_qlib_{code}" if code.upper() in _RESERVED else code
        return self.root / "features" / name.lower()

    def bin_file(self, code: str, field: str) -> Path:
        return self.feature_folder(code) / f"{field}.{self.freq.lower()}.bin"


def check_settings(settings: dict) -> dict:
    """The source's settings with their defaults, checked: an unknown name or a bad value is a DataError."""
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise DataError(f"qlib: unknown setting {unknown[0]!r} (known: {', '.join(DEFAULTS)})")
    out = {**DEFAULTS, **{k: str(v).strip() for k, v in settings.items()}}
    if not FREQ_NAME.match(out["freq"]):
        raise DataError(f"qlib: freq {out['freq']!r} is not a Qlib frequency (e.g. day, 1min, 5min, 60min)")
    if not out["market"] or "\n" in out["market"]:
        raise DataError(f"qlib: market {out['market']!r} names no market (e.g. all, csi300, or a .txt file)")
    if out["prices"] not in PRICE_MODES:
        raise DataError(f"qlib: prices {out['prices']!r} must be adjusted or raw")
    return out


# ---- the calendar and the market ------------------------------------------------------------------

def _stamp_seconds(text: str) -> int:
    day = np.datetime64(text[:10], "D").astype(np.int64) * DAY_SECONDS
    if len(text) == 10:
        return int(day)
    hours, minutes, seconds = (int(x) for x in (text[11:13], text[14:16], text[17:19] or 0))
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(text)
    return int(day) + hours * 3600 + minutes * 60 + seconds


def read_calendar(path: Path) -> np.ndarray:
    """The calendar's stamps as seconds since 1970 (wall-clock time), strictly ascending."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        found = sorted(p.stem for p in path.parent.glob("*.txt")) if path.parent.is_dir() else []
        raise DataError(f"{path}: no such calendar (the folder has "
                        f"{', '.join(found) if found else 'no calendars'})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    stamps = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        try:
            if not _STAMP.match(text):
                raise ValueError(text)
            stamps.append(_stamp_seconds(text))
        except ValueError:
            raise DataError(f"{path}: line {number}: {text[:40]!r} is not a date or a date and time") from None
    if not stamps:
        raise DataError(f"{path}: the calendar is empty")
    secs = np.array(stamps, np.int64)
    back = np.flatnonzero(np.diff(secs) <= 0)
    if len(back):
        raise DataError(f"{path}: line {back[0] + 2}: the calendar is not sorted (a stamp at or before the one "
                        "above it)")
    return secs


def read_market(folder: QlibFolder, calendar: np.ndarray) -> dict[str, list[tuple[int, int]]]:
    """Each instrument of the market file and its spans as calendar index ranges [lo, hi). A span ending on a
    date (no time) takes that whole day."""
    path = folder.market_file
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        found = sorted(p.stem for p in path.parent.glob("*.txt")) if path.parent.is_dir() else []
        raise DataError(f"{path}: no such market file (markets: {', '.join(found) if found else 'none'})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    spans: dict[str, list[tuple[int, int]]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split("\t")]
        try:
            if len(cells) < 3 or not cells[0] or not (_STAMP.match(cells[1]) and _STAMP.match(cells[2])):
                raise ValueError
            start, end = _stamp_seconds(cells[1]), _stamp_seconds(cells[2])
        except ValueError:
            raise DataError(f"{path}: line {number}: expects code<TAB>start<TAB>end, gets {line[:60]!r}") from None
        if cells[0] in (".", "..") or any(c in cells[0] for c in "/\\\0:"):
            raise DataError(f"{path}: line {number}: {cells[0][:40]!r} is not an instrument code")
        if len(cells[2]) == 10:
            lo, hi = np.searchsorted(calendar, start), np.searchsorted(calendar, end + DAY_SECONDS)
        else:
            lo, hi = np.searchsorted(calendar, start), np.searchsorted(calendar, end, side="right")
        spans.setdefault(cells[0], []).append((int(lo), int(hi)))
    if not spans:
        raise DataError(f"{path}: the market names no instruments")
    unknown = [code for code in spans if not folder.feature_folder(code).is_dir()]
    if unknown:
        raise DataError(f"{path}: names {plural(len(unknown), 'instrument')} without a folder in "
                        f"{folder.root / 'features'} ({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''})")
    return spans


# ---- the feature files ----------------------------------------------------------------------------

def map_bin(path: Path, calendar_size: int, calendar_file: Path) -> tuple[int, np.ndarray]:
    """(start index, the values mapped) of a ``.bin`` file; one whose length or start index does not fit the
    calendar is a DataError naming it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size < 4 or size % 4:
        raise DataError(f"{path}: {size} bytes is not a start index and whole float32 values")
    try:
        data = np.memmap(path, dtype="<f4", mode="r")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    start = float(data[0])
    if not (np.isfinite(start) and start.is_integer() and 0 <= start < calendar_size):
        raise DataError(f"{path}: start index {start:g} is not an entry of the calendar "
                        f"({calendar_file.name}: {calendar_size} entries)")
    count = len(data) - 1
    if int(start) + count > calendar_size:
        raise DataError(f"{path}: {count} values from calendar index {int(start)} run past the calendar's "
                        f"{calendar_size} entries ({calendar_file})")
    return int(start), data[1:]


def _span_mask(spans: list[tuple[int, int]], lo: int, hi: int) -> np.ndarray:
    """Which calendar entries in [lo, hi) lie inside any span."""
    inside = np.zeros(hi - lo, bool)
    for a, b in spans:
        inside[max(a, lo) - lo:max(min(b, hi) - lo, 0)] = True
    return inside


def instrument_bars(folder: QlibFolder, code: str, spans: list[tuple[int, int]], calendar: np.ndarray,
                    prices: str) -> tuple[FileBars, int]:
    """The instrument's bars inside its spans as the rows of one file, and how many calendar entries
    inside them had every field NaN (Qlib's gaps: no bar, left out)."""
    where = folder.feature_folder(code)
    present = {name: folder.bin_file(code, name) for name in (*FIELDS, "factor")
               if folder.bin_file(code, name).is_file()}
    if "close" not in present:
        raise DataError(f"{where}: no close.{folder.freq.lower()}.bin (it has "
                        f"{', '.join(sorted(p.name for p in where.glob('*.bin'))) or 'no .bin files'})")
    if prices == "raw" and "factor" not in present:
        raise DataError(f"{where}: no factor.{folder.freq.lower()}.bin to undo the adjustment with (prices=raw)")
    mapped = {name: map_bin(path, len(calendar), folder.calendar_file) for name, path in present.items()}
    lo = min(start for start, _ in mapped.values())
    hi = max(start + len(values) for start, values in mapped.values())
    inside = _span_mask(spans, lo, hi)
    index = lo + np.flatnonzero(inside)
    columns = {}
    for name, (start, values) in mapped.items():
        column = np.full(len(index), np.nan)
        have = (index >= start) & (index < start + len(values))
        column[have] = values[index[have] - start]  # only these entries are read from the mapped file
        columns[name] = column
    factor = columns.pop("factor", None)
    if prices == "raw":
        with np.errstate(invalid="ignore", divide="ignore"):
            for name in PRICES:
                if name in columns:
                    columns[name] = columns[name] / factor
            if "volume" in columns:
                columns["volume"] = columns["volume"] * factor
    bar = ~np.all(np.isnan(np.stack(list(columns.values()))), axis=0)
    values = {FIELDS[name]: column[bar] for name, column in columns.items()}
    n = int(bar.sum())
    part = FileBars(where, np.zeros(n, np.int64), [code], calendar[index[bar]], np.ones(n, bool), values,
                    columns_used={FIELDS[name]: present[name].name for name in columns},
                    header=[present[name].name for name in present])
    return part, int(len(index) - n)


# ---- the panel ------------------------------------------------------------------------------------

def qlib_panel(root: str | Path, settings: dict, config: ImportConfig | None = None) -> BarPanel:
    """The bars of the Qlib folder ``root`` at ``settings["freq"]`` for ``settings["market"]``, through the
    importer's policies (``config``: its session, bar stamp, bars per day, day and date shares)."""
    settings = check_settings(settings)
    config = config or ImportConfig()
    folder = QlibFolder(Path(root), settings["freq"], settings["market"])
    if not (folder.root / "features").is_dir():
        raise DataError(f"{folder.root}: not a Qlib data folder (no features folder)")
    calendar = read_calendar(folder.calendar_file)
    market = read_market(folder, calendar)
    source = f"qlib:{folder.root} ({settings['freq']}, market {settings['market']}, {settings['prices']} prices)"
    rows = sum(hi - lo for spans in market.values() for lo, hi in spans)
    counts = {"qlib instruments in the market": len(market)}
    notes = [_price_note(folder, market, settings["prices"])]
    if rows * _ROW_BYTES > store.on_disk_above():
        panel = _on_disk(folder, market, calendar, settings["prices"], config, source, counts)
    else:
        parts = list(_parts(folder, market, calendar, settings["prices"], counts))
        from studio.data.import_stages import build_panel

        panel = build_panel(parts, config, source)
    panel.notes[:0] = notes
    panel.counts = {**counts, **panel.counts}
    return panel


def _parts(folder: QlibFolder, market: dict, calendar: np.ndarray, prices: str, counts: dict) -> Iterator[FileBars]:
    gaps = 0
    for code, spans in market.items():
        part, empty = instrument_bars(folder, code, spans, calendar, prices)
        gaps += empty
        yield part
    counts["qlib calendar entries with every field NaN (no bar)"] = gaps


def _price_note(folder: QlibFolder, market: dict, prices: str) -> str:
    with_factor = sum(folder.bin_file(code, "factor").is_file() for code in market)
    if prices == "raw":
        return "qlib prices: raw (Qlib's adjusted open/high/low/close divided by factor, volume times factor)"
    if with_factor:
        return (f"qlib prices: adjusted, as Qlib stores them ({with_factor} of {len(market)} instruments have "
                "a factor; the qlib setting prices=raw undoes the adjustment)")
    return "qlib prices: as stored (no instrument has a factor file)"


def _on_disk(folder: QlibFolder, market: dict, calendar: np.ndarray, prices: str, config: ImportConfig,
             source: str, counts: dict) -> BarPanel:
    """The panel of a market too large for memory: rows into buckets on disk, the panel mapped from a file
    that is gone when the process is (as studio.data.import_chunked does for large folders of files)."""
    from studio.data.bar_files import VALUE_FIELDS
    from studio.data.import_chunked import BucketWriter, DiskBucket
    from studio.data.import_stages import assemble, file_rows, import_features, read_counts

    home = Path(tempfile.mkdtemp(prefix="studio-qlib-"))
    atexit.register(shutil.rmtree, home, True)
    work = home / "rows"
    work.mkdir()
    rows = sum(hi - lo for spans in market.values() for lo, hi in spans)
    n_buckets = max(1, min(4096, -(-rows * _ROW_BYTES // (128 << 20))))
    writer = BucketWriter(work, n_buckets)
    symbol_index: dict[str, int] = {}
    infos, read = [], 0
    try:
        for part in _parts(folder, market, calendar, prices, counts):
            infos.append(FileInfo.of(part))
            sym, _, vals = file_rows(part, symbol_index, VALUE_FIELDS)  # every row has a symbol and a time
            read += len(sym)
            writer.append(sym, part.seconds, vals)
        writer.flush()
        features = import_features(infos)
        buckets = [DiskBucket(writer.path(b), features) for b in range(n_buckets)]
        return assemble(buckets, infos, list(symbol_index), features, read_counts(read, 0, 0), config, source,
                        values_file=home / "values.npy")
    finally:
        shutil.rmtree(work, ignore_errors=True)
