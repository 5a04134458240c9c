"""Autosave and crash recovery: modified documents are written every minute to a recovery folder;
a clean save or close removes them, so files found there at start-up are left by a crash.

Each document's autosave is one file, ``KEY.recovery.json`` ({"meta": {...}, "graph": "<graph file
text>"}), written atomically with a temporary name unique to the process (studio.core.files): a kill
while autosaving leaves the previous autosave whole, and two studios autosaving at once never share a
temporary file. Pairs of ``KEY.json`` + ``KEY.meta.json`` left by older versions are still offered.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from studio.core.files import FileReadError, atomic_write, read_regular_file
from studio.core.graph_file import MAX_FILE_BYTES, GraphFileError, dumps_graph, loads_graph

SUFFIX = ".recovery.json"


def recovery_dir() -> Path:
    base = os.environ.get("STUDIO_STATE_DIR")
    root = Path(base) if base else Path.home() / ".local" / "state" / "model-studio"
    return root / "recovery"


class Recovery:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or recovery_dir()

    @staticmethod
    def key(document) -> str:
        """One key per open document for its whole life: a Save As keeps it, so the autosave made
        before is the one a clean save removes (a key from the path would leave it to be offered)."""
        ident = getattr(document, "recovery_id", None) or (
            str(document.path.resolve()) if document.path else f"unsaved-{id(document)}-{os.getpid()}")
        return hashlib.sha256(ident.encode()).hexdigest()[:16]

    def save(self, document) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{self.key(document)}{SUFFIX}"
        meta = {"path": str(document.path) if document.path else None, "title": document.title,
                "saved": time.strftime("%Y-%m-%d %H:%M:%S"), "pid": os.getpid()}
        atomic_write(target, json.dumps({"meta": meta, "graph": dumps_graph(document.graph)}, ensure_ascii=False))
        return target

    def discard(self, document) -> None:
        key = self.key(document)
        for name in (f"{key}{SUFFIX}", f"{key}.json", f"{key}.meta.json"):
            (self.folder / name).unlink(missing_ok=True)

    def pending(self) -> list[tuple[dict, Path]]:
        """Recovery files left by an earlier session: (meta, file)."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            record = self._read(path)
            if record is not None:
                found.append((record[0], path))
        for meta_file in sorted(self.folder.glob("*.meta.json")):  # the older two-file form
            graph_file = meta_file.with_name(meta_file.name.replace(".meta.json", ".json"))
            try:
                meta = json.loads(meta_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                meta = {"path": None, "title": graph_file.name, "saved": "?"}
            if graph_file.is_file() and isinstance(meta, dict):
                found.append((meta, graph_file))
        return found

    @staticmethod
    def _read(path: Path) -> tuple[dict, str] | None:
        try:
            record = json.loads(read_regular_file(path, 2 * MAX_FILE_BYTES, "recovery file").decode("utf-8"))
        except (FileReadError, ValueError):
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
                text = graph_file.read_text(encoding="utf-8")
            except (OSError, ValueError):
                text = None
        if text is None:
            return None
        try:
            return loads_graph(text, source=str(graph_file), base_dir=base)
        except GraphFileError:
            return None

    def remove(self, graph_file: Path) -> None:
        graph_file.unlink(missing_ok=True)
        if not graph_file.name.endswith(SUFFIX):
            graph_file.with_name(graph_file.name.replace(".json", ".meta.json")).unlink(missing_ok=True)
