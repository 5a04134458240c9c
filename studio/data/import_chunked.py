"""Importing folders larger than memory: files read one at a time (large files by batches), their rows
sorted into buckets of symbols on disk, the policies applied a bucket at a time, and the panel written
into a memory-mapped ``.npy`` file.

The importer's policies are global: the bar grid comes from the histogram of bar times, early closes
from the dates' votes, trading dates from the number of symbols that traded. Each of them only needs
statistics of all rows, and every row of a symbol sits in one bucket, so the policies' stages
(:mod:`studio.data.import_stages`) gather the statistics over the buckets, decide, and apply the decision
bucket by bucket. The
in-memory import is the same code with one bucket: both give the same panel, bit for bit.

Pass 1 (here): each file (or each batch of 4 MB of a file over ``STREAM_ABOVE_BYTES``) is read by the
importer's own reader, its rows get global symbol codes in order of first appearance, and they are
appended to the bucket of their symbol (``code % buckets``) as fixed 65-byte records, in file order
(the duplicate policy keeps the last row in file order). A batch whose column turns out to hold text
further down is read again as text: the file's records are cut back to where they started.

Disk: the buckets hold the rows once (65 bytes a row) and are removed at the end; the panel is
``S x D x P x F`` float32. Memory: one file or batch, the write buffers (``BUFFER_BYTES``), and one
bucket (``BUCKET_BYTES`` of records, a few times that while it is sorted and laid out).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from studio.core.files import NO_ROOM, DiskFullError
from studio.core.text import error_line
from studio.data import importer, store
from studio.data.bar_files import VALUE_FIELDS, is_parquet
from studio.data.cache import PANEL_FORMAT, panel_description, panel_from_description
from studio.data.import_stages import Rows, assemble, file_rows, import_features, read_counts
from studio.data.importer import (
    DataError,
    FileBars,
    FileInfo,
    ImportConfig,
    bars_from_table,
    read_header,
    resolve_columns,
)
from studio.data.panel import BarPanel

#: records of one bucket (rows of its symbols), in bytes: a bucket is what one step holds in memory
BUCKET_BYTES = 128 << 20
#: rows waiting to be appended to the bucket files
BUFFER_BYTES = 64 << 20
#: files larger than this are read by batches, not whole
STREAM_ABOVE_BYTES = 256 << 20
#: the CSV reader's block, as in a whole-file read (its column types are guessed from the first one)
CSV_BLOCK_BYTES = 1 << 22
PARQUET_BATCH_ROWS = 1 << 20

#: a row: its symbol code, stamp, values, and whether the stamp is a UTC instant (FileBars.utc)
RECORD = np.dtype([("sym", "<i8"), ("secs", "<i8"), *((f, "<f8") for f in VALUE_FIELDS), ("utc", "u1")])


def estimated_rows_bytes(files: list[Path]) -> int:
    """About how many bytes the files' rows take as arrays: text rows grow a little (45 characters
    become 65 bytes), compressed text and Parquet a lot more."""
    total = 0
    for f in files:
        size = f.stat().st_size
        name = f.name.lower()
        factor = 8 if is_parquet(f) else 6 if name.endswith((".gz", ".bz2", ".xz", ".zst")) else 1.5
        total += int(size * factor)
    return total


def wants_disk(files: list[Path]) -> bool:
    """The import goes through buckets on disk into a mapped panel when the rows would take more than
    ``$STUDIO_ON_DISK_ABOVE_MB`` (default 1024 MB; 0: always)."""
    return estimated_rows_bytes(files) > store.on_disk_above()


# ---- reading, a file or a batch at a time -----------------------------------------------------------

def file_batches(path: Path, config: ImportConfig, as_text: bool = False):
    """The rows of ``path`` as FileBars: the whole file at once, or (over ``STREAM_ABOVE_BYTES``) a batch at a
    time. ``as_text``: every column read as text (after a conversion error in a later batch)."""
    import pyarrow as pa

    if path.stat().st_size <= STREAM_ABOVE_BYTES and not as_text:
        yield importer.read_file(path, config)
        return
    header = read_header(path)
    cols = resolve_columns(path, header, config)
    columns = sorted(set(cols.values()), key=header.index)
    try:
        if is_parquet(path):
            import pyarrow.parquet as pq

            source = pq.ParquetFile(path)
            reader = source.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns, use_threads=False)
            schema = source.schema_arrow
        else:
            import pyarrow.csv as pcsv

            types = {c: pa.string() for c in columns} if as_text else None
            reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES),
                                   convert_options=pcsv.ConvertOptions(include_columns=columns,
                                                                       strings_can_be_null=True, column_types=types))
            schema = reader.schema
        any_batch = False
        for batch in reader:
            any_batch = True
            yield bars_from_table(path, pa.Table.from_batches([batch]), cols, header, config)
        if not any_batch:
            table = schema.empty_table()
            yield bars_from_table(path, table.select([c for c in columns if c in table.column_names]), cols,
                                  header, config)
    except (DataError, _TextFurtherDown):
        raise
    except pa.ArrowInvalid as exc:
        if not as_text and "conversion error" in str(exc).lower():
            raise _TextFurtherDown from None
        raise DataError(f"{path}: cannot read ({error_line(exc)})") from None
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({error_line(exc)})") from None


class _TextFurtherDown(Exception):
    """A column whose type was guessed from the first batch holds other text in a later one."""


# ---- the buckets ----------------------------------------------------------------------------------

class BucketWriter:
    """Appends rows to the record files of their buckets, buffered; ``mark`` and ``cut_back`` undo the
    rows of a file read again."""

    def __init__(self, folder: Path, buckets: int) -> None:
        self.folder = folder
        self.buckets = buckets
        self.written = np.zeros(buckets, np.int64)  # records on disk per bucket
        self.pending: list[list[np.ndarray]] = [[] for _ in range(buckets)]
        self.pending_bytes = 0

    def path(self, bucket: int) -> Path:
        return self.folder / f"bucket-{bucket:05d}.rows"

    def append(self, sym: np.ndarray, secs: np.ndarray, vals: dict[str, np.ndarray], utc: bool = False) -> None:
        records = np.empty(len(sym), RECORD)
        records["sym"], records["secs"], records["utc"] = sym, secs, utc
        for f in VALUE_FIELDS:
            records[f] = vals[f]
        which = sym % self.buckets
        order = np.argsort(which, kind="stable")  # file order kept within each bucket
        records, which = records[order], which[order]
        bounds = np.searchsorted(which, np.arange(self.buckets + 1))
        for b in np.flatnonzero(np.diff(bounds)):
            self.pending[b].append(records[bounds[b]:bounds[b + 1]])
        self.pending_bytes += records.nbytes
        if self.pending_bytes > BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        for b, chunks in enumerate(self.pending):
            if chunks:
                try:
                    with open(self.path(b), "ab") as fh:
                        for chunk in chunks:
                            chunk.tofile(fh)
                            self.written[b] += len(chunk)
                except OSError as exc:  # the import's work folder goes; the disk's state is said in one line
                    raise _disk_full(exc, self.path(b)) from None
                chunks.clear()
        self.pending_bytes = 0

    def mark(self) -> tuple[np.ndarray, list[int]]:
        return self.written.copy(), [len(c) for c in self.pending]

    def cut_back(self, mark: tuple[np.ndarray, list[int]]) -> None:
        written, pending = mark
        for b in range(self.buckets):
            del self.pending[b][pending[b]:]
            if self.written[b] > written[b]:
                os.truncate(self.path(b), int(written[b]) * RECORD.itemsize)
                self.written[b] = written[b]
        self.pending_bytes = sum(c.nbytes for chunks in self.pending for c in chunks)


class DiskBucket:
    """A bucket's rows: its record file at first, then the arrays each step leaves (``.npy`` files)."""

    def __init__(self, records: Path, features: list[str]) -> None:
        self.records = records
        self.features = features
        self.folder = records.with_suffix(".state")
        self.names: list[str] | None = None

    def load(self) -> Rows:
        if self.names is None:
            data = (np.fromfile(self.records, RECORD) if self.records.exists() else np.zeros(0, RECORD))
            return Rows({"sym": data["sym"].copy(), "secs": data["secs"].copy(), "ok": np.ones(len(data), bool),
                         "utc": data["utc"].astype(bool)},
                        {f: data[f].copy() for f in self.features})
        arrays = {n: np.load(self.folder / f"{n}.npy") for n in self.names}
        return Rows({k[2:]: v for k, v in arrays.items() if k.startswith("a-")},
                    {k[2:]: v for k, v in arrays.items() if k.startswith("v-")})

    def save(self, rows: Rows) -> None:
        self.folder.mkdir(exist_ok=True)
        names = [f"a-{k}" for k in rows.arrays] + [f"v-{f}" for f in rows.vals]
        for name in names:
            kind, key = name[:2], name[2:]
            try:
                np.save(self.folder / f"{name}.npy", rows.arrays[key] if kind == "a-" else rows.vals[key])
            except OSError as exc:
                raise _disk_full(exc, self.folder / f"{name}.npy") from None
        for stale in set(self.names or ()) - set(names):
            (self.folder / f"{stale}.npy").unlink(missing_ok=True)
        self.names = names
        if self.records.exists():
            self.records.unlink()  # the raw records are not read again


def _disk_full(exc: OSError, path: Path) -> OSError:
    """``exc`` as a DiskFullError naming ``path`` when the write found no room, else ``exc`` itself.
    numpy says a short write as "N requested and M written", with no errno: on a disk, no room."""
    if exc.errno in NO_ROOM or (exc.errno is None and "requested and" in str(exc)):
        return DiskFullError(path)
    return exc


def bucket_count(files: list[Path]) -> int:
    return max(1, min(4096, math.ceil(estimated_rows_bytes(files) / BUCKET_BYTES)))


def build_on_disk(files: list[Path], config: ImportConfig, source: str, values_file: Path,
                  work: Path, buckets: int | None = None) -> BarPanel:
    """The panel of ``files`` with its values in ``values_file`` (mapped), through buckets in ``work``."""
    n_buckets = buckets or bucket_count(files)
    work.mkdir(parents=True, exist_ok=True)
    writer = BucketWriter(work, n_buckets)
    symbol_index: dict[str, int] = {}
    infos: list[FileInfo] = []
    tally = [0, 0, 0]  # rows read, rows without a symbol, unusable rows (read_counts)
    for path in files:
        mark, known = writer.mark(), len(symbol_index)
        for as_text in (False, True):
            info, file_tally = None, [0, 0, 0]
            try:
                for part in file_batches(path, config, as_text):
                    info = _add(info, part)
                    sym, ok, vals = file_rows(part, symbol_index, VALUE_FIELDS)
                    file_tally[0] += len(sym)
                    file_tally[1] += part.rows_without_symbol
                    file_tally[2] += int((~ok).sum())
                    if ok.any():
                        writer.append(sym[ok], part.seconds[ok], {f: v[ok] for f, v in vals.items()}, part.utc)
                break
            except _TextFurtherDown:
                writer.cut_back(mark)
                for name in list(symbol_index)[known:]:
                    del symbol_index[name]
        infos.append(info)
        tally = [a + b for a, b in zip(tally, file_tally, strict=True)]
    writer.flush()
    features = import_features(infos)
    bucket_list = [DiskBucket(writer.path(b), features) for b in range(n_buckets)]
    return assemble(bucket_list, infos, list(symbol_index), features, read_counts(*tally), config, source,
                    values_file=values_file)


def _add(info: FileInfo | None, part: FileBars) -> FileInfo:
    if info is None:
        return FileInfo.of(part)
    info.add(part)
    return info


# ---- the cache of mapped panels -----------------------------------------------------------------

def read_cached(folder: Path) -> BarPanel | None:
    """The mapped panel cached in ``folder`` (None when there is none); one whose files are not whole is
    a one-line DataError."""
    from studio.core.owned_dir import read_json

    meta_file = folder / "panel.json"
    if folder.is_symlink() or not os.path.lexists(meta_file):
        return None  # an entry linked elsewhere is not read through (it is rebuilt in its place)
    try:  # inside the cache only: a link or a special file planted as panel.json is refused (ForeignEntry)
        meta = read_json(meta_file, what="cache")
        if meta.get("format") != PANEL_FORMAT:
            return None
        shape = (len(meta["symbols"]), len(meta["dates"]) * int(meta["bars_per_day"]), len(meta["features"]))
        values = store.open_array(folder / "values.npy", shape, np.float32)  # a truncated file: its own error
        return panel_from_description(meta, values)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{meta_file}: a cached import that cannot be read ({error_line(exc)}); delete "
                        f"{folder} and it is made again") from None


def import_to_cache(files: list[Path], config: ImportConfig, source: str, folder: Path | None) -> BarPanel:
    """Import ``files`` on disk into the cache ``folder`` (its description written last, so a folder
    without it is made again); ``folder`` None: into a temporary file that is gone when the process is."""
    if folder is None:
        home = Path(tempfile.mkdtemp(prefix="studio-import-"))
        atexit.register(shutil.rmtree, home, True)
        try:
            return build_on_disk(files, config, source, home / "values.npy", home / "work")
        finally:
            shutil.rmtree(home / "work", ignore_errors=True)
    # built in a folder of this process's own and renamed into place when whole: an import running
    # beside it (sweep workers on one folder) never sees, or deletes, a half-made entry
    work = folder.with_name(folder.name + f".work-{os.getpid()}")
    try:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    except OSError:  # a cache that cannot be written only costs speed
        return import_to_cache(files, config, source, None)
    try:
        panel = build_on_disk(files, config, source, work / "values.npy", work / "rows")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        shutil.rmtree(work / "rows", ignore_errors=True)
        meta = panel_description(panel)
        try:
            (work / "panel.json").write_text(json.dumps(meta), encoding="utf-8")
            if folder.is_symlink():  # planted: the link goes, never what it points to
                folder.unlink()
            elif folder.exists() and not (folder / "panel.json").is_file():
                shutil.rmtree(folder, ignore_errors=True)  # a folder without its description is not whole
            with contextlib.suppress(OSError):  # another import put its whole entry there first
                os.rename(work, folder)
            cached = read_cached(folder)
        except OSError:
            cached = None
        if cached is None:  # not cached: keep the panel where it is (its folder goes with the process)
            atexit.register(shutil.rmtree, work, True)
            return panel
        cached.source = source
        return cached
    finally:
        if folder.is_dir() and (folder / "panel.json").is_file():
            shutil.rmtree(work, ignore_errors=True)

