"""Autosave and crash recovery: modified documents are written every minute to a recovery folder;
a clean save or close removes them, so files found there at start-up are left by a crash."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from studio.core.graph_file import GraphFileError, dumps_graph, loads_graph


def recovery_dir() -> Path:
    base = os.environ.get("STUDIO_STATE_DIR")
    root = Path(base) if base else Path.home() / ".local" / "state" / "model-studio"
    return root / "recovery"


class Recovery:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or recovery_dir()

    @staticmethod
    def key(document) -> str:
        ident = str(document.path.resolve()) if document.path else f"unsaved-{id(document)}-{os.getpid()}"
        return hashlib.sha256(ident.encode()).hexdigest()[:16]

    def save(self, document) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        key = self.key(document)
        target = self.folder / f"{key}.json"
        tmp = self.folder / f".{key}.json.tmp"
        tmp.write_text(dumps_graph(document.graph), encoding="utf-8")
        os.replace(tmp, target)
        meta = {"path": str(document.path) if document.path else None, "title": document.title,
                "saved": time.strftime("%Y-%m-%d %H:%M:%S")}
        (self.folder / f"{key}.meta.json").write_text(json.dumps(meta), encoding="utf-8")
        return target

    def discard(self, document) -> None:
        key = self.key(document)
        for name in (f"{key}.json", f"{key}.meta.json"):
            (self.folder / name).unlink(missing_ok=True)

    def pending(self) -> list[tuple[dict, Path]]:
        """Recovery files left by an earlier session: (meta, file)."""
        if not self.folder.is_dir():
            return []
        found = []
        for meta_file in sorted(self.folder.glob("*.meta.json")):
            graph_file = meta_file.with_name(meta_file.name.replace(".meta.json", ".json"))
            try:
                meta = json.loads(meta_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if graph_file.is_file():
                found.append((meta, graph_file))
        return found

    def load(self, graph_file: Path, original: str | None = None):
        """The recovered graph; block files are found beside the original file."""
        base = Path(original).parent if original else None
        try:
            return loads_graph(graph_file.read_text(encoding="utf-8"), source=str(graph_file), base_dir=base)
        except (OSError, GraphFileError):
            return None

    def remove(self, graph_file: Path) -> None:
        graph_file.unlink(missing_ok=True)
        graph_file.with_name(graph_file.name.replace(".json", ".meta.json")).unlink(missing_ok=True)
