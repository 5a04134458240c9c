"""Arrays larger than memory: numpy ``.npy`` files mapped into memory.

The bar panel and the normalised features of the seed's universe (5,000 stocks x 500 days x 240
bars x 3 features, 7.2 GB of float32 each) do not fit in memory, so they live in files and windows
stay views of them. The format is numpy's own ``.npy``:

- a memory-mapped ``.npy`` is an ndarray: every numpy operation, slice and view works on it
  unchanged, so the in-memory and the on-disk paths run the same code and give the same bits;
- its header states shape, dtype and order, and the data is one raw little-endian block after it,
  so a file cut short is found before it is read (its size must be the header plus the data);
- it needs nothing new. Arrow IPC would make the bars a table of columns (no (S, L, F) views, a
  copy per batch), and zarr adds a dependency and chunked compression that defeats zero-copy views.

Files are written under a ``.partial`` name and renamed when complete, so a killed write never
leaves a file that looks whole. The files are opened as themselves only (studio.core.owned_dir): a
symbolic link or a special file planted in the cache under one of their names is removed (``.partial``)
or refused, never followed. Pages read or written in blocks are handed back
(``madvise(DONTNEED)``) after each block: the kernel keeps them in its page cache for the next
epoch, but they stop counting in the process's resident memory. Batches read their windows with
positional reads (``RowReader``), which map nothing.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from pathlib import Path

import numpy as np

from studio.core.files import NO_ROOM, DiskFullError
from studio.data.errors import DataError


def create(path: str | os.PathLike[str], shape: tuple[int, ...], dtype=np.float32) -> np.memmap:
    """A new writable array file at ``path`` + ``.partial``; ``finish`` gives it its name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    # a killed write's leftover, or a link planted under its name: removed (the link itself), and the file
    # made anew with O_EXCL, so open_memmap's "w+" opens this regular file and writes through nothing
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666))
    array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.dtype(dtype), shape=tuple(shape))
    try:
        _reserve(partial)
    except OSError as exc:
        del array
        partial.unlink(missing_ok=True)
        if exc.errno in NO_ROOM:
            raise DiskFullError(path, exc.errno) from None
        raise
    return array


def _reserve(path: Path) -> None:
    """The disk blocks of the whole (sparse) file, taken now: on a full disk this is an error of one
    line here, not a SIGBUS that kills the process when a page of the mapping is first written."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):  # no fallocate there: as before
            raise
    finally:
        os.close(fd)


def finish(array: np.memmap) -> Path:
    """Flush a created array and rename it to its final name (atomic: the file is whole or absent)."""
    array.flush()
    partial = Path(array.filename)
    final = partial.with_name(partial.name[: -len(".partial")])
    os.replace(partial, final)
    return final


def open_array(path: str | os.PathLike[str], shape: tuple[int, ...] | None = None, dtype=None,
               writable: bool = False) -> np.memmap:
    """The array in ``path``, mapped (read-only unless ``writable``); a file that is not a whole
    ``.npy`` of the expected shape and dtype is a one-line DataError naming it."""
    from studio.core.owned_dir import entry_problem

    path = Path(path)
    problem = entry_problem(path)
    if problem:  # a link or a special file planted in the cache: never followed (np.load would follow it)
        raise DataError(f"{path}: is {problem}, not an array file; refusing to read it")
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)(fh)
            offset = fh.tell()
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path}: no such array file") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not an array file ({str(exc).splitlines()[0][:100]})") from None
    file_shape, fortran, file_dtype = header
    expected = offset + int(np.prod(file_shape, dtype=np.int64)) * file_dtype.itemsize
    if size != expected:
        raise DataError(f"{path}: truncated or damaged ({size:,} of {expected:,} bytes); delete it and it is "
                        "made again")
    if fortran:
        raise DataError(f"{path}: Fortran order is not used here")
    if shape is not None and tuple(file_shape) != tuple(shape):
        raise DataError(f"{path}: holds shape {tuple(file_shape)}, expected {tuple(shape)}")
    if dtype is not None and file_dtype != np.dtype(dtype):
        raise DataError(f"{path}: holds {file_dtype}, expected {np.dtype(dtype)}")
    return np.load(path, mmap_mode="r+" if writable else "r")


def mapping(array: np.ndarray) -> mmap.mmap | None:
    """The mmap behind a memory-mapped array or a view of one (None for arrays in memory)."""
    while array is not None:
        m = getattr(array, "_mmap", None)
        if isinstance(m, mmap.mmap):
            return m
        array = array.base if isinstance(array.base, np.ndarray) else None
    return None


def release(array: np.ndarray) -> None:
    """Hand the pages of a mapped array back to the kernel (they stay in its page cache; dirty pages
    of a shared file mapping are kept and written back): the process's resident size drops."""
    m = mapping(array)
    if m is not None and hasattr(mmap, "MADV_DONTNEED"):
        try:
            if isinstance(array, np.memmap):
                array.flush()
            m.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # a closed map, or a platform without it: only memory is lost
            pass


def digest(array: np.ndarray, block_bytes: int = 64 << 20) -> str:
    """sha256 of an array's bytes (C order), read a block of rows at a time. For an array kept in a
    file the digest is remembered beside it (``<file>.sha256.json``, keyed by the file's size and
    modification time), so a panel of many GB is hashed once, not at every run."""
    import hashlib
    import json

    from studio.core.owned_dir import read_json, write_owned

    m = mapping(array)
    whole_file = isinstance(array, np.memmap) and m is not None and array.base is m
    memo = Path(str(array.filename) + ".sha256.json") if whole_file and array.filename else None
    stamp = None
    if memo is not None:
        st = Path(array.filename).stat()
        stamp = [st.st_size, st.st_mtime_ns]
        try:
            saved = read_json(memo, 1 << 16, "cache")
            if saved.get("stamp") == stamp and isinstance(saved.get("sha256"), str):
                return saved["sha256"]
        except (OSError, ValueError, AttributeError):
            pass
    h = hashlib.sha256()
    h.update(repr((array.shape, array.dtype.str)).encode())
    if array.ndim == 0 or array.size == 0:
        h.update(np.ascontiguousarray(array).tobytes())
    else:
        row = max(1, array.nbytes // max(1, array.shape[0]))
        step = max(1, block_bytes // row)
        for first in range(0, array.shape[0], step):
            h.update(np.ascontiguousarray(array[first:first + step]).data)
            if m is not None:
                release(array)
    value = h.hexdigest()
    if memo is not None:
        with contextlib.suppress(OSError):  # a read-only folder (or a link planted there): hashed again next time
            write_owned(memo, json.dumps({"stamp": stamp, "sha256": value}), "cache")
    return value


def on_disk_above() -> int:
    """Arrays larger than this many bytes are kept in files, not in memory: ``$STUDIO_ON_DISK_ABOVE_MB``
    (default 1024 MB; 0 keeps every array in a file)."""
    text = os.environ.get("STUDIO_ON_DISK_ABOVE_MB", "").strip()
    try:
        return int(float(text) * (1 << 20)) if text else 1 << 30
    except ValueError:
        raise DataError(f"STUDIO_ON_DISK_ABOVE_MB: expects a number of megabytes, gets {text!r}") from None


class RowReader:
    """Reads the same column range of every row of an (S, N, F) array kept in a file, with positional
    reads (``os.preadv``) straight into the destination: nothing is mapped into the process. Reading a
    window of every stock through the mapping would map far more than it reads (the kernel maps whole
    read-ahead folios, megabytes per stock), and the process's resident size would grow by gigabytes
    per batch. For arrays in memory (or views of a file) it copies from the array."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.fd: int | None = None
        m = mapping(array)
        if (isinstance(array, np.memmap) and m is not None and array.base is m and array.filename
                and array.ndim == 3 and array.flags.c_contiguous and hasattr(os, "preadv")):
            self.path, self.offset = str(array.filename), int(array.offset)
            self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))

    def read(self, start: int, stop: int, out: np.ndarray) -> None:
        """``out[s] = array[s, start:stop]`` for every row s (``out``: C-contiguous (S, stop - start, F))."""
        if self.fd is None:
            np.copyto(out, self.array[:, start:stop])
            return
        s, n, f = self.array.shape
        item = self.array.dtype.itemsize
        row, length = n * f * item, (stop - start) * f * item
        flat = out.reshape(s, -1).view(np.uint8)
        for i in range(s):
            got = os.preadv(self.fd, [flat[i]], self.offset + i * row + start * f * item)
            if got != length:
                raise DataError(f"{self.path}: truncated or damaged (a read at row {i} got {got} of {length} bytes)")

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
