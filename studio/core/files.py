"""Reading files we did not write, and writing files so that a kill never leaves half of one.

Reading: :func:`read_regular_file` reads only regular files (a path to a device, a FIFO or a socket
is refused before it is opened, so ``/dev/zero`` cannot fill memory and a FIFO cannot hang), through a
read bounded by a size limit (checked on the bytes read, not only on the size the file reports).

Writing: :func:`atomic_write` writes a temporary file beside the target, flushes it to disk and
renames it over the target, so a reader (or a crash) sees the old file or the new one, never a mix.

- The temporary file is named ``.NAME.studio-save-PID-TOKEN.tmp``: recognisable, unique per process
  and call (two processes saving at once never share one), and left only by a killed save. Such
  leftovers are removed at the next save of the same file once their process is gone (or after an
  hour, in case the process id was reused).
- A symlink stays a symlink: the file it points to is replaced.
- The mode of an existing file is kept; a new file gets the user's usual mode (0666 less the umask,
  as ``open()`` gives), not the 0600 of ``mkstemp``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

TEMP_MARK = ".studio-save-"
STALE_SECONDS = 3600


class FileReadError(Exception):
    """A file cannot be read; the message is one line and names the file."""


#: errno values of a write that found no room: the disk is full, or the user's quota is used up
NO_ROOM = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)


class DiskFullError(OSError):
    """A write found no room; ``str()`` is the one line "disk full: PATH" naming the file it was for."""

    def __init__(self, path: str | os.PathLike[str], errno_value: int = errno.ENOSPC) -> None:
        super().__init__(errno_value, os.strerror(errno_value), os.fspath(path))

    def __str__(self) -> str:
        from studio.core.text import printable

        return f"disk full: {printable(self.filename)}"


def no_room(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a write that found no room. Libraries wrap it: torch's
    writer raises "enforce fail at inline_container.cc ... file write failed", protobuf its own."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            return True
        text = str(exc)
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a loop of symbolic links"
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENAMETOOLONG:
        return "the path is too long"
    return f"cannot read ({exc.strerror or exc})"


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot even be handed to the operating system (a NUL character), or None."""
    return "the path holds a NUL character" if "\x00" in os.fspath(path) else None


def read_regular_file(path: str | os.PathLike[str], limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is a FileReadError."""
    from studio.core.text import printable

    shown = printable(os.fspath(path))
    problem = path_problem(path)
    if problem:
        raise FileReadError(f"{shown}: {problem}")
    try:
        info = os.stat(path)
    except OSError as exc:
        raise FileReadError(f"{shown}: {_reason(exc)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise FileReadError(f"{shown}: is a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise FileReadError(f"{shown}: not a regular file (a device, FIFO or socket), so not a {what}")
    if info.st_size > limit:
        raise FileReadError(f"{shown}: {info.st_size:,} bytes is too large for a {what} (limit {limit:,})")
    try:
        # O_NONBLOCK: should the path have turned into a FIFO since the stat, opening does not hang
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileReadError(f"{shown}: {_reason(exc)}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileReadError(f"{shown}: not a regular file (a device, FIFO or socket), so not a {what}")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileReadError(f"{shown}: more than {limit:,} bytes is too large for a {what}")
        return b"".join(chunks)
    except OSError as exc:
        raise FileReadError(f"{shown}: {_reason(exc)}") from None
    finally:
        os.close(fd)


# ---- writing --------------------------------------------------------------------------------------

def _target_of(path: Path) -> Path:
    """The file a save replaces: the end of a chain of symlinks (a dangling one: where it points)."""
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def temp_files_of(target: Path) -> list[Path]:
    """Temporary files of saves of ``target`` (by any process) found beside it."""
    prefix = f".{target.name}{TEMP_MARK}"
    try:
        return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp"))
    except OSError:
        return []


def remove_stale_temp_files(target: Path) -> int:
    """Remove what killed saves of ``target`` left; returns how many were removed."""
    removed = 0
    prefix = f".{target.name}{TEMP_MARK}"
    now = time.time()
    for tmp in temp_files_of(target):
        pid_text = tmp.name[len(prefix):].split("-", 1)[0]
        try:
            age = now - tmp.lstat().st_mtime
        except OSError:
            continue
        alive = pid_text.isdigit() and int(pid_text) != os.getpid() and _process_alive(int(pid_text))
        if not alive or age > STALE_SECONDS:
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], *, binary: bool = False,
                  follow_symlinks: bool = True) -> Iterator[IO]:
    """``with atomic_writer(p) as fh: fh.write(...)``: ``p`` is replaced when the block ends without
    an exception (and left as it was otherwise). ``follow_symlinks=False`` (files of a folder the studio
    owns, studio.core.owned_dir): a link at ``p`` is replaced itself, never what it points to."""
    target = _target_of(Path(path)) if follow_symlinks else Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(target)
    try:
        info = os.stat(target) if follow_symlinks else os.lstat(target)
        mode = stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None
    except FileNotFoundError:
        mode = None
    tmp = target.parent / f".{target.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}.tmp"
    # 0o666 through open(): the kernel applies the umask, as for any new file of this user
    # O_EXCL (and O_NOFOLLOW): a name planted there, a link included, is never written through
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": "\n"})) as fh:
            fd = -1
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, DiskFullError) and exc.errno in NO_ROOM:
            # named after the file being saved, not its temporary file (which is gone again)
            raise DiskFullError(path, exc.errno) from None
        raise
    _sync_folder(target.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see the module doc)."""
    with atomic_writer(path, binary=isinstance(data, bytes)) as fh:
        fh.write(data)


def atomic_save(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Replace ``path`` atomically with what ``write(fh)`` writes to a binary file (e.g. torch.save).
    ``write`` fills a buffer in memory first: a full disk is then met by our own write, and said as
    "disk full: PATH", not as a library's error from the middle of its writer."""
    import io

    buffer = io.BytesIO()
    write(buffer)
    with atomic_writer(path, binary=True) as fh:
        fh.write(buffer.getbuffer())


def atomic_write_all(contents: dict[str | os.PathLike[str], str | bytes]) -> None:
    """Write several files that belong together (an exported ``.py`` and its ``.pt`` weights) whole or
    not at all: each goes to a temporary file beside its target, written and flushed to disk; only when
    every one is whole are they renamed over their targets (a rename needs no room). A failure before
    that leaves every target as it was."""
    temps: list[tuple[Path, Path]] = []
    target = Path()
    try:
        for path, data in contents.items():
            target = _target_of(Path(path))
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(target)
            tmp = target.parent / f".{target.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            temps.append((tmp, target))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException as exc:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            raise DiskFullError(target, exc.errno) from None
        raise
    for tmp, target in temps:
        os.replace(tmp, target)
    for folder in {target.parent for _, target in temps}:
        _sync_folder(folder)
