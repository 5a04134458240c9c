"""The open document of an editor tab: a core Graph, its undo stack and its latest validation.

Every edit goes through ``EditorDocument.edit(label, fn)``: ``fn`` changes the graph in place and the
document pushes one undo step holding the graph before and after (snapshots, so every kind of edit —
a parameter, a drag of many nodes, a paste, a group — undoes the same way). Views listen to
``changed`` and redraw from the graph and ``validation``; they never keep their own copy of it.

A block tab shows the graph of one inline block of the same file: it shares the file's document and
undo stack, and ``scope`` names the block.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from studio.core.document import Graph
from studio.core.graph_file import dumps_graph, load_graph, save_graph
from studio.core.registry import Registry
from studio.core.validation import Validation, validate


class SnapshotCommand(QUndoCommand):
    """One undo step: the whole document before and after (block tables included)."""

    def __init__(self, document: EditorDocument, label: str, before: Graph, after: Graph,
                 merge_key: str | None = None) -> None:
        super().__init__(label)
        self.document = document
        self.before, self.after = before, after
        self.merge_key = merge_key
        self._first = True

    def id(self) -> int:
        return 1 if self.merge_key else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        # typing digits into one parameter field is one step, not one per key
        if isinstance(other, SnapshotCommand) and other.merge_key and other.merge_key == self.merge_key:
            self.after = other.after
            return True
        return False

    def redo(self) -> None:
        if self._first:  # the edit has just been made; the graph is already in this state
            self._first = False
            return
        self.document._restore(self.after)

    def undo(self) -> None:
        self.document._restore(self.before)


class EditorDocument(QObject):
    #: the graph changed (an edit, an undo, a load): redraw
    changed = Signal()
    #: a new validation is available
    validated = Signal(object)
    #: the file name or saved state changed (window titles)
    titleChanged = Signal()  # connected to QUndoStack.cleanChanged(bool) too, hence no-arg slots only

    def __init__(self, graph: Graph, registry: Registry, path: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.registry = registry
        self.path = Path(path) if path else (graph.path if graph.path else None)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self.titleChanged)  # signal to signal: safe while Qt tears down
        self.validation: Validation = validate(graph, registry)

    @classmethod
    def open(cls, path: str | Path, registry: Registry, parent: QObject | None = None) -> EditorDocument:
        return cls(load_graph(path), registry, Path(path), parent)

    # ---- state -------------------------------------------------------------------------------
    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

    @property
    def title(self) -> str:
        return self.path.name if self.path else (self.graph.name or "untitled") + ".json"

    def graph_of(self, scope: str | None) -> Graph | None:
        """The graph a tab shows: the file's own, or one of its inline blocks."""
        if scope is None:
            return self.graph
        entry = self.graph.blocks.get(scope)
        return entry.graph if entry is not None else None

    def validation_of(self, scope: str | None) -> Validation:
        if scope is None:
            return self.validation
        graph = self.graph_of(scope)
        try:
            return self.validation.scope.check(scope) if graph is not None else self.validation
        except Exception:  # a broken block: show what can be shown
            return validate(graph, self.registry) if graph is not None else self.validation

    def revalidate(self) -> None:
        self.validation = validate(self.graph, self.registry)
        self.validated.emit(self.validation)

    # ---- editing -----------------------------------------------------------------------------
    def edit(self, label: str, change: Callable[[Graph], object], merge_key: str | None = None) -> object:
        """Apply ``change`` to the graph as one undo step. If it raises, nothing changes."""
        before = copy.deepcopy(self.graph)
        try:
            result = change(self.graph)
        except Exception:
            self.graph = before
            raise
        after = copy.deepcopy(self.graph)
        if dumps_graph(before) == dumps_graph(after):
            return result  # nothing changed: no undo step
        self.undo_stack.push(SnapshotCommand(self, label, before, after, merge_key))
        self._changed()
        return result

    def _restore(self, state: Graph) -> None:
        path = self.graph.path
        self.graph = copy.deepcopy(state)
        self.graph.path = path
        self._changed()

    def _changed(self) -> None:
        self.revalidate()
        self.changed.emit()

    # ---- files -------------------------------------------------------------------------------
    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path else self.path
        if target is None:
            raise ValueError("no file name")
        save_graph(self.graph, target)  # atomic: a temporary file renamed over the old one
        self.path = target
        self.undo_stack.setClean()
        self.titleChanged.emit()
        return target
