"""Autosave and crash recovery: modified documents are written every minute to a recovery folder;
a clean save or close removes them, so files found there at start-up are left by a crash.

Each studio process writes into its own session folder, ``recovery/PID-TOKEN/``, which holds a ``lock``
file locked with ``flock`` for as long as the process lives: the kernel releases the lock when the
process dies, however it dies. A session folder whose lock can be taken therefore belongs to a dead
studio, and only such folders are offered; another live studio's unsaved work is never offered nor
deleted. The studio that offers a dead session's files holds its lock meanwhile, so a third studio
starting at the same moment does not offer them too.

Each document's autosave is one file, ``KEY.recovery.json`` ({"meta": {...}, "graph": "<graph file
text>"}), written atomically (studio.core.files): a kill while autosaving leaves the previous autosave
whole. Every file of the recovery folder is opened as itself only (studio.core.owned_dir): a symbolic link
or a special file planted there is never followed, offered nor written through. Files left directly in
the recovery folder by older versions (``KEY.recovery.json``, or pairs of
``KEY.json`` + ``KEY.meta.json``) are still offered unless the process id they name still runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import time
import weakref
from pathlib import Path

from studio.core.graph_file import MAX_FILE_BYTES, GraphFileError, dumps_graph, loads_graph
from studio.core.owned_dir import open_owned, read_json, read_owned, write_owned

SUFFIX = ".recovery.json"
LOCK_NAME = "lock"


def recovery_dir() -> Path:
    base = os.environ.get("STUDIO_STATE_DIR")
    root = Path(base) if base else Path.home() / ".local" / "state" / "model-studio"
    return root / "recovery"


def _lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on ``path``, or None when another holder has it
    (or the file is gone). flock, not fcntl's record locks: those are per process, so a second window
    of one process would take its own lock again; flock belongs to the open file."""
    try:  # a link or a FIFO planted as the lock is no session's lock (ForeignEntry, an OSError)
        fd = open_owned(path, os.O_RDWR, what="recovery")
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _close_all(held: dict[Path, int]) -> None:
    for fd in held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    held.clear()


def _process_alive(pid: object) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, under another user
    return True


class Recovery:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or recovery_dir()
        #: this studio's session folder, made (and locked) at the first autosave
        self.session: Path | None = None
        #: open descriptors holding flocks, by session folder: this studio's own, and dead studios'
        #: while their files are offered
        self._held: dict[Path, int] = {}
        # the kernel drops the locks when the process dies; a Recovery dropped earlier (a closed window,
        # a test) lets its locks go with it
        weakref.finalize(self, _close_all, self._held)

    @staticmethod
    def key(document) -> str:
        """One key per open document for its whole life: a Save As keeps it, so the autosave made
        before is the one a clean save removes (a key from the path would leave it to be offered)."""
        ident = getattr(document, "recovery_id", None) or (
            str(document.path.resolve()) if document.path else f"unsaved-{id(document)}-{os.getpid()}")
        return hashlib.sha256(ident.encode()).hexdigest()[:16]

    # ---- this studio's own autosaves -----------------------------------------------------------
    def _own_folder(self) -> Path:
        if self.session is not None and self.session.is_dir():
            return self.session
        if self.session is not None:  # removed under it (by hand): start another
            self._let_go(self.session)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        # made under a hidden name and renamed once locked: no other studio ever sees it unlocked
        # (it would take it for a dead session and remove it)
        making = self.folder / f".{name}.new"
        making.mkdir()
        lock = making / LOCK_NAME
        lock.write_text(f"{os.getpid()}\n", encoding="utf-8")
        fd = _lock(lock)
        if fd is None:  # nobody else knows the hidden name; a file system without flock
            raise OSError(f"cannot lock {lock}")
        os.rename(making, self.folder / name)
        self.session = self.folder / name
        self._held[self.session] = fd
        return self.session

    def save(self, document) -> Path:
        target = self._own_folder() / f"{self.key(document)}{SUFFIX}"
        meta = {"path": str(document.path) if document.path else None, "title": document.title,
                "saved": time.strftime("%Y-%m-%d %H:%M:%S"), "pid": os.getpid()}
        write_owned(target, json.dumps({"meta": meta, "graph": dumps_graph(document.graph)}, ensure_ascii=False),
                    "recovery")
        return target

    def discard(self, document) -> None:
        if self.session is not None:
            (self.session / f"{self.key(document)}{SUFFIX}").unlink(missing_ok=True)

    def entries(self) -> list[Path]:
        """This studio's own autosaves (never offered while it lives)."""
        return sorted(self.session.glob(f"*{SUFFIX}")) if self.session is not None else []

    def close(self) -> None:
        """A clean end: this session's folder goes, with any autosave left in it, and every lock is let go."""
        if self.session is not None:
            _remove_folder(self.session)
            self.session = None
        _close_all(self._held)

    def let_go_of_offered(self) -> None:
        """Dead sessions offered but neither recovered nor discarded stay for the next start."""
        for session in [s for s in self._held if s != self.session]:
            self._let_go(session)

    def _let_go(self, session: Path) -> None:
        fd = self._held.pop(session, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    # ---- what dead studios left ----------------------------------------------------------------
    def pending(self) -> list[tuple[dict, Path]]:
        """Autosaves whose writer is dead: (meta, file). Their session folders stay locked by this
        Recovery until their files are removed, so no other studio offers them meanwhile."""
        if not self.folder.is_dir():
            return []
        found = []
        for session in sorted(p for p in self.folder.iterdir() if not p.name.startswith(".") and p.is_dir()
                              and not p.is_symlink()):
            if session == self.session or not self._adopt(session):
                continue  # this studio's own, or a live studio's
            files = sorted(session.glob(f"*{SUFFIX}"))
            for path in files:
                record = self._read(path)
                if record is not None:
                    found.append((record[0], path))
                else:
                    path.unlink(missing_ok=True)  # unreadable: nothing to recover from it
            self._forget_if_empty(session)
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):  # older versions wrote here directly
            record = self._read(path)
            if record is not None and not _process_alive(record[0].get("pid")):
                found.append((record[0], path))
        for meta_file in sorted(self.folder.glob("*.meta.json")):  # the older two-file form
            graph_file = meta_file.with_name(meta_file.name.replace(".meta.json", ".json"))
            try:
                meta = read_json(meta_file, 1 << 20, "recovery")
            except (OSError, ValueError):
                meta = {"path": None, "title": graph_file.name, "saved": "?"}
            regular = not os.path.islink(graph_file) and graph_file.is_file()
            if regular and isinstance(meta, dict) and not _process_alive(meta.get("pid")):
                found.append((meta, graph_file))
        return found

    def _adopt(self, session: Path) -> bool:
        if session in self._held:
            return True
        fd = _lock(session / LOCK_NAME)
        if fd is None:
            # locked by a live studio, or no lock file: one being removed, or not a session folder
            return False
        self._held[session] = fd
        return True

    def _forget_if_empty(self, session: Path) -> None:
        """A dead session with nothing left to offer: its folder goes and its lock is let go."""
        if any(session.glob(f"*{SUFFIX}")):
            return
        _remove_folder(session)
        self._let_go(session)

    @staticmethod
    def _read(path: Path) -> tuple[dict, str] | None:
        try:
            record = json.loads(read_owned(path, 2 * MAX_FILE_BYTES, "recovery").decode("utf-8"))
        except (OSError, ValueError):  # a link or a special file planted there among them: never followed
            return None
        if not (isinstance(record, dict) and isinstance(record.get("meta"), dict)
                and isinstance(record.get("graph"), str)):
            return None
        return record["meta"], record["graph"]

    def load(self, graph_file: Path, original: str | None = None):
        """The recovered graph; block files are found beside the original file."""
        base = Path(original).parent if original else None
        if graph_file.name.endswith(SUFFIX):
            record = self._read(graph_file)
            text = record[1] if record is not None else None
        else:
            try:
                text = read_owned(graph_file, MAX_FILE_BYTES, "recovery").decode("utf-8")
            except (OSError, ValueError):
                text = None
        if text is None:
            return None
        try:
            return loads_graph(text, source=str(graph_file), base_dir=base)
        except GraphFileError:
            return None

    def remove(self, graph_file: Path) -> None:
        """An offered file is done with (recovered, discarded or unreadable)."""
        graph_file.unlink(missing_ok=True)
        if not graph_file.name.endswith(SUFFIX):
            graph_file.with_name(graph_file.name.replace(".json", ".meta.json")).unlink(missing_ok=True)
        if graph_file.parent in self._held and graph_file.parent != self.session:
            self._forget_if_empty(graph_file.parent)


def _remove_folder(folder: Path) -> None:
    """A session folder and what it holds (autosaves, a temporary file a kill left, the lock file)."""
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            if entry.is_file() or entry.is_symlink():
                entry.unlink(missing_ok=True)
        folder.rmdir()
