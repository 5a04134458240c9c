"""One live owner per run directory, told by a lock that the kernel holds for the owning process.

A run (a training, a resume, a walk-forward) holds an exclusive ``flock`` on ``RUN_DIR/run.lock`` for its
whole life. The kernel releases it when the process ends in any way, kill -9 and power loss included, so
whether a run is alive is read from the lock, never from a file a dead process could not tidy up:

- ``RunLock.acquire(run_dir)`` takes it or raises ``RunInUse`` ("run DIR is in use by process PID");
- ``held_by(run_dir)`` says which process holds it (None: no live process does), taking a shared lock for
  an instant and giving it back;
- ``run_status(run_dir, recorded)`` is the status a reader shows: a run recorded ``running`` is
  ``running`` while its lock is held and ``interrupted`` once its process is gone.

A sweep holds the same lock on its directory while it runs, so two ``studio sweep --resume`` of one
sweep do not run its trials twice. The lock file stays in the directory after the run (removing it
would race with a process opening it); it holds the owner's process id as text, for the message. flock
is POSIX; the studio runs on Linux and macOS. The lock file is opened inside the directory only
(studio.core.owned_dir): a symbolic link or a FIFO planted as ``run.lock`` is refused, never followed.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from studio.core.files import NO_ROOM, DiskFullError
from studio.core.owned_dir import open_owned

LOCK_FILE = "run.lock"

#: a reader's shared lock lasts microseconds; an owner trying to start meanwhile tries again for this long
_CONTENDED_S = 0.5


class RunInUse(Exception):
    """Another live process owns the run (one line: the directory and the process id)."""

    def __init__(self, run_dir: Path, pid: int | None, what: str = "run") -> None:
        super().__init__(f"{what} {run_dir} is in use by process {pid if pid else '(unknown)'}")
        self.run_dir, self.pid = run_dir, pid


class RunLock:
    """The lock of one run directory, held from ``acquire`` to ``release`` (or the process's end)."""

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir, self._fd = run_dir, fd

    @classmethod
    def acquire(cls, run_dir: str | os.PathLike[str], what: str = "run") -> RunLock:
        """``what``: the word for the directory in the refusal (a sweep's directory is locked the same way)."""
        run_dir = Path(run_dir)
        # not inherited by child processes (O_CLOEXEC): a child must not keep a dead run "alive"; a link
        # planted as run.lock is refused (ForeignEntry), not followed to create or lock a file elsewhere
        fd = open_owned(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644, what=what)
        deadline = time.monotonic() + _CONTENDED_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # the owner keeps it; a reader's probe is gone within microseconds
                if time.monotonic() > deadline:
                    pid = _read_pid(fd)
                    os.close(fd)
                    raise RunInUse(run_dir, pid, what) from None
                time.sleep(0.02)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:  # a full disk: the lock is not kept (nor its descriptor), and it says so
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            if exc.errno in NO_ROOM:
                raise DiskFullError(run_dir / LOCK_FILE, exc.errno) from None
            raise
        return cls(run_dir, fd)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def held_by(run_dir: str | os.PathLike[str]) -> int | None:
    """The id of the live process that owns the run; None when none does (0 when one does but its id
    cannot be read yet)."""
    try:
        fd = open_owned(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except OSError:  # no lock file (a run from before the lock, or one that never started), or a link or
        return None  # a FIFO planted as one (ForeignEntry): no live run's lock
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def run_status(run_dir: str | os.PathLike[str], recorded: str | None) -> str:
    """The status to show for a run whose config.json records ``recorded``: a run records "running" when
    it starts (or resumes) and its end status when it ends, so only a "running" one needs its lock read."""
    if recorded not in (None, "running"):
        return recorded
    # no live owner: its process died (kill -9, power loss) before it could close the run
    return "running" if held_by(run_dir) is not None else "interrupted"
