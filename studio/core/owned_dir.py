"""Folders the studio owns (run, sweep, cache and recovery folders): their files are opened inside them only.

A run folder can come from someone else (a shared drive, an archive), so each entry the studio opens there
may be a symbolic link planted to point anywhere (``checkpoint.pt -> ~/.bashrc``) or a special file
(``config.json -> /dev/zero``, a FIFO). Here:

- :func:`check_folder` refuses a folder whose entries hold a symbolic link or a special file (one line:
  ``run DIR: checkpoint.pt is a symbolic link; refusing to use this run folder``), before anything is read
  or written there;
- :func:`open_owned` opens one entry with ``O_NOFOLLOW`` (a link is refused by the kernel itself, so a link
  planted after the check is refused too) and ``O_NONBLOCK`` (a FIFO cannot hang the open), then refuses what
  is not a regular file; :func:`read_owned`, :func:`read_json`, :func:`append_owned` and :func:`owned_file`
  are built on it;
- :func:`write_owned` and :func:`owned_writer` save atomically without following links: the temporary file
  is made with ``O_EXCL`` (never through a link) beside the entry and renamed over it, so a link or a
  special file already there is refused, never written through.

Saving a graph through a symbolic link the user made (``studio.core.files.atomic_write``) still replaces
the file the link points to: that link is the user's own choice, not an entry of a folder the studio owns.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

#: the largest JSON record of a folder the studio owns that is read whole (config.json, trials.json, ...)
JSON_LIMIT = 64 << 20


class ForeignEntry(OSError):
    """An entry of a folder the studio owns that it will not open (one line naming the folder and entry).
    An OSError, so that a reader that passes over an unreadable file (the runs table, a cache) passes
    over this one too."""

    def __init__(self, path: str | os.PathLike[str], reason: str, what: str = "run") -> None:
        from studio.core.text import printable

        path = Path(path)
        super().__init__(f"{what} {printable(str(path.parent))}: {printable(path.name)} is {reason}; "
                         f"refusing to use this {what} folder")
        self.path, self.reason, self.what = path, reason, what


def kind_of(mode: int) -> str | None:
    """What an entry of this (lstat) mode is, when it is neither a regular file nor a folder."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return "not a regular file"


def entry_problem(path: str | os.PathLike[str], folder_ok: bool = False) -> str | None:
    """Why the entry at ``path`` cannot be used as a file of an owned folder (None: absent or fine). The
    entry itself is looked at (lstat), never what a link points to."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    problem = kind_of(mode)
    if problem is None and stat.S_ISDIR(mode) and not folder_ok:
        return "a folder, not a file"
    return problem


def check_entry(path: str | os.PathLike[str], what: str = "run", folder_ok: bool = False) -> None:
    """Refuse (ForeignEntry) a symbolic link or special file at ``path``; an absent entry is fine."""
    problem = entry_problem(path, folder_ok)
    if problem:
        raise ForeignEntry(path, problem, what)


def check_folder(folder: str | os.PathLike[str], what: str = "run", files: Iterable[str] = (),
                 folders: Iterable[str] = ()) -> None:
    """Refuse a folder that holds a symbolic link or a special file among its entries (not recursing), a
    folder where one of ``files`` is expected, or anything but a folder where one of ``folders`` is. An
    absent folder is fine (its caller says what is missing)."""
    folder = Path(folder)
    expected_files, expected_folders = set(files), set(folders)
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in sorted(entries, key=lambda e: e.name):
        mode = entry.stat(follow_symlinks=False).st_mode
        problem = kind_of(mode)
        if problem is None and entry.name in expected_files and stat.S_ISDIR(mode):
            problem = "a folder, not a file"
        if problem is None and entry.name in expected_folders and not stat.S_ISDIR(mode):
            problem = "a file, not a folder"
        if problem:
            raise ForeignEntry(folder / entry.name, problem, what)


def open_owned(path: str | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o666,
               what: str = "run") -> int:
    """A descriptor of the regular file at ``path``, opened without following a link (a link, a FIFO, a
    device, a socket or a folder there is a ForeignEntry). ``flags``: os.O_RDONLY, or writing flags."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | nofollow | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as exc:
        # ELOOP: O_NOFOLLOW met a link; ENXIO: a FIFO with no reader opened for writing; EISDIR: a folder
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENXIO, errno.EISDIR, errno.ENODEV):
            raise ForeignEntry(path, entry_problem(path) or "not a regular file", what) from None
        raise
    try:
        info = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    problem = kind_of(info.st_mode) or ("a folder, not a file" if stat.S_ISDIR(info.st_mode) else None)
    if not problem and flags & (os.O_WRONLY | os.O_RDWR) and info.st_nlink > 1:
        # written in place (an append, the lock's process id), a hard link would carry the write to the
        # file's other names, which may be outside the folder; atomic saves rename and never write in place
        problem = f"a hard link ({info.st_nlink} names of one file)"
    if problem:
        os.close(fd)
        raise ForeignEntry(path, problem, what)
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


def read_owned(path: str | os.PathLike[str], limit: int = JSON_LIMIT, what: str = "run") -> bytes:
    """The bytes of an owned folder's regular file of at most ``limit`` bytes (read bounded: a file that
    grows past the limit while read is refused too; ValueError names it)."""
    fd = open_owned(path, os.O_RDONLY, what=what)
    try:
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ValueError(f"{path}: more than {limit:,} bytes is too large for this {what} folder's file")
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike[str], limit: int = JSON_LIMIT, what: str = "run") -> Any:
    """An owned folder's JSON file (FileNotFoundError when absent; ValueError when not JSON)."""
    return json.loads(read_owned(path, limit, what).decode("utf-8"))


def append_owned(path: str | os.PathLike[str], text: str, what: str = "run") -> None:
    """Append ``text`` to an owned folder's file (made when absent), never through a link."""
    fd = open_owned(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, what=what)
    try:
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def owned_file(path: str | os.PathLike[str], mode: str = "rb", what: str = "run") -> IO:
    """A file object of an owned folder's entry (``rb``, ``wb`` or ``ab``: binary), for readers and writers
    that take one (pandas, torch). ``wb`` truncates the regular file there, never what a link points to."""
    flags = {"rb": os.O_RDONLY, "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
             "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND}[mode]
    if mode == "wb":  # the entry is checked before O_TRUNC could cut a FIFO's or device's open short
        check_entry(path, what)
    return os.fdopen(open_owned(path, flags, what=what), mode)


@contextlib.contextmanager
def owned_writer(path: str | os.PathLike[str], *, binary: bool = False, what: str = "run") -> Iterator[IO]:
    """``studio.core.files.atomic_writer`` for an owned folder's entry: a link or a special file there is
    refused (ForeignEntry), and the new file is renamed over the entry itself, never written through it."""
    from studio.core.files import atomic_writer

    check_entry(path, what)
    with atomic_writer(path, binary=binary, follow_symlinks=False) as fh:
        yield fh


def write_owned(path: str | os.PathLike[str], data: str | bytes, what: str = "run") -> None:
    """Replace an owned folder's file with ``data``, atomically and never through a link."""
    with owned_writer(path, binary=isinstance(data, bytes), what=what) as fh:
        fh.write(data)
