"""The open document of an editor tab: a core Graph, its undo stack and its latest validation.

Every edit goes through ``EditorDocument.edit(label, change, scope)``: ``change`` gets the graph of the
scope (None: the file's own; a name: one of its inline blocks) and changes it in place, and the
document pushes one undo step. A step holds the document's serialized text before and after (compact
JSON of the file's content: no deep copies; consecutive steps share their texts), so every kind of
edit — a parameter, a drag of many nodes, a paste, a group — undoes the same way. The text after an
edit is serialized a moment later, once the view has redrawn (or at the next edit or undo, whichever
comes first), so it costs nothing between the edit and the redraw; edits that merge into the last
step (typing into one field) skip it altogether. The stack keeps the last ``UNDO_LIMIT`` steps.

After each change the document emits ``changed`` with a :class:`Change`: per scope, the node ids
added, removed or modified, whether wires or blocks changed, and whether the validation was redone.
An edit that only moves nodes keeps the validation (positions do not enter it; the graph is the
same object); an undo or redo validates the restored graph. Views redraw what the
change names, and whatever the new validation changed (napari's evented fields).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from studio.core.document import Graph
from studio.core.edits import scoped
from studio.core.graph_file import graph_to_json, load_graph, loads_graph, save_graph
from studio.core.layout import untangle
from studio.core.node_type import ShapeError
from studio.core.registry import Registry
from studio.core.shapes import TensorShape
from studio.core.validation import EXAMPLE_CHANNELS, Validation, example_inputs, validate, validate_alone

UNDO_LIMIT = 200
#: the text after an edit is made this long after it (the redraw first; a burst of edits, one text)
SERIALIZE_AFTER_MS = 200


@dataclass
class Change:
    """What one edit, undo or redo changed."""

    #: scope -> ids of the nodes added, removed or changed there (None: the file's own graph)
    nodes: dict[str | None, set[str]] = field(default_factory=dict)
    #: scopes whose wires changed
    wires: set[str | None] = field(default_factory=set)
    #: the file's block table, a block's name or ports, the input window or the name changed
    structure: bool = False
    #: the validation was redone (shapes, problems and counts may differ anywhere)
    validated: bool = True
    #: everything may differ (a load); views rebuild
    everything: bool = False

    def touches(self, scope: str | None) -> bool:
        return self.everything or self.structure or bool(self.nodes.get(scope)) or scope in self.wires

    @staticmethod
    def between(before: dict, after: dict) -> Change:
        """The change from one graph_to_json state to another."""
        change = Change()

        def compare(old: dict, new: dict, scope: str | None) -> None:
            old_nodes, new_nodes = old.get("nodes", {}), new.get("nodes", {})
            ids = {i for i in old_nodes.keys() | new_nodes.keys() if old_nodes.get(i) != new_nodes.get(i)}
            if ids:
                change.nodes[scope] = ids
            if old.get("edges") != new.get("edges"):
                change.wires.add(scope)

        compare(before, after, None)
        old_blocks, new_blocks = before.get("blocks", {}), after.get("blocks", {})
        for name in old_blocks.keys() | new_blocks.keys():
            old, new = old_blocks.get(name), new_blocks.get(name)
            if old is None or new is None or ("path" in old) != ("path" in new) or old.get("path") != new.get("path"):
                change.structure = True
                continue
            if {k: v for k, v in old.items() if k not in ("nodes", "edges")} != {
                    k: v for k, v in new.items() if k not in ("nodes", "edges")}:
                change.structure = True
            compare(old, new, name)
        for key in before.keys() | after.keys():
            if key not in ("nodes", "edges", "blocks") and before.get(key) != after.get(key):
                change.structure = True
        return change

    def moves_only(self, before: dict, after: dict) -> bool:
        """True when the change is node positions and nothing else (the validation stays right)."""
        if self.structure or self.wires or self.everything:
            return False
        for scope, ids in self.nodes.items():
            old = _nodes_of(before, scope)
            new = _nodes_of(after, scope)
            for node_id in ids:
                a, b = old.get(node_id), new.get(node_id)
                if a is None or b is None or {k: v for k, v in a.items() if k != "pos"} != {
                        k: v for k, v in b.items() if k != "pos"}:
                    return False
        return True


def _nodes_of(state: dict, scope: str | None) -> dict:
    if scope is None:
        return state.get("nodes", {})
    return (state.get("blocks", {}).get(scope) or {}).get("nodes", {})


class SnapshotCommand(QUndoCommand):
    """One undo step: the document's text before and after (block tables included)."""

    def __init__(self, document: EditorDocument, label: str, before: str, merge_key: str | None = None) -> None:
        super().__init__(label)
        self.document = document
        self.before = before
        #: filled in by the document when it serializes the state after the edit
        self.after: str | None = None
        self.merge_key = merge_key
        self._first = True

    def id(self) -> int:
        return 1 if self.merge_key else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        # typing digits into one parameter field is one step, not one per key
        if isinstance(other, SnapshotCommand) and other.merge_key and other.merge_key == self.merge_key:
            self.document._take_pending(other, self)
            self.after = other.after
            return True
        return False

    def redo(self) -> None:
        if self._first:  # the edit has just been made; the graph is already in this state
            self._first = False
            return
        self.document._restore(self._after_text())

    def undo(self) -> None:
        self._after_text()  # the state being left must have its text before it goes
        self.document._restore(self.before)

    def _after_text(self) -> str:
        if self.after is None:
            self.document._serialize()
        assert self.after is not None
        return self.after


class EditorDocument(QObject):
    #: the graph changed (an edit, an undo, a load): a Change says what
    changed = Signal(object)
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
        self.undo_stack.setUndoLimit(UNDO_LIMIT)
        #: names this document's autosave (studio.gui.recovery) for as long as it is open
        self.recovery_id = uuid.uuid4().hex
        self.undo_stack.cleanChanged.connect(self.titleChanged)  # signal to signal: safe while Qt tears down
        #: the shapes a block file's inputs are given while it is open alone (None: a model, or a block
        #: no example suits); its wires show shapes and its nodes parameter counts for them
        self.example_inputs: dict[str, TensorShape] | None = None
        self.validation: Validation = self._validate()
        #: graph_to_json of the current state, and its text (None until serialized)
        self._state: dict = graph_to_json(graph)
        self._text: str | None = json.dumps(self._state)
        #: the command waiting for the text of the current state
        self._pending: SnapshotCommand | None = None
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(SERIALIZE_AFTER_MS)
        self._idle.timeout.connect(self._serialize)
        #: the scopes laid out when the file opened, their stored positions being tangled (see open)
        self.laid_out: list[str | None] = []

    @classmethod
    def open(cls, path: str | Path, registry: Registry, parent: QObject | None = None) -> EditorDocument:
        """The file as a document. Where its stored positions are tangled (nodes on top of each other,
        a wire through a node) the file's graph or inline block opens laid out; ``laid_out`` names
        them. That is no edit: the file on disk changes only when saved."""
        graph = load_graph(path)
        laid_out = untangle(graph)
        document = cls(graph, registry, Path(path), parent)
        document.laid_out = laid_out
        return document

    # ---- state -------------------------------------------------------------------------------
    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

    @property
    def title(self) -> str:
        """The file's name; a run's graph (every run's is graph.json) is named after its run."""
        run = self.run_dir
        if run is not None:
            return f"{run.name} (run)"
        return self.path.name if self.path else (self.graph.name or "untitled") + ".json"

    @property
    def run_dir(self) -> Path | None:
        """The run directory when the file is the graph a run recorded (graph.json beside config.json)."""
        if self.path is None or self.path.name != "graph.json":
            return None
        return self.path.parent if (self.path.parent / "config.json").is_file() else None

    def graph_of(self, scope: str | None) -> Graph | None:
        """The graph a tab shows: the file's own, or one of its inline blocks."""
        if scope is None:
            return self.graph
        entry = self.graph.blocks.get(scope)
        return entry.graph if entry is not None else None

    def validation_of(self, scope: str | None) -> Validation:
        """The validation a tab draws: the file's, or for a block tab its inference with the shapes of
        its first use in the file (so wires inside show shapes), else the block checked alone."""
        if scope is None:
            return self.validation
        graph = self.graph_of(scope)
        try:
            if graph is None:
                return self.validation
            uses = self.validation.scope.instances(scope) if self.validation.scope is not None else []
            if uses:
                return uses[0]
            for channels in EXAMPLE_CHANNELS:  # a block the file does not use: its declared inputs
                try:
                    inferred = self.validation.scope.infer(scope, example_inputs(graph, channels))
                except ShapeError:  # the block has problems of its own
                    break
                if not inferred.errors:
                    return inferred
            return self.validation.scope.check(scope)
        except Exception:  # a broken block: show what can be shown
            return validate(graph, self.registry) if graph is not None else self.validation

    def _validate(self) -> Validation:
        validation, self.example_inputs = validate_alone(self.graph, self.registry)
        return validation

    def revalidate(self) -> None:
        self.validation = self._validate()
        self.validated.emit(self.validation)

    # ---- editing -----------------------------------------------------------------------------
    def edit(self, label: str, change: Callable[[Graph], object], scope: str | None = None,
             merge_key: str | None = None) -> object:
        """Apply ``change`` to the scope's graph as one undo step (None: the file's own graph; an
        inline block's name: that block's graph). If it raises, nothing changes."""
        top = self.undo_stack.command(self.undo_stack.index() - 1) if self.undo_stack.index() else None
        merging = (merge_key is not None and top is self._pending and isinstance(top, SnapshotCommand)
                   and top.merge_key == merge_key and self.undo_stack.index() == self.undo_stack.count()
                   and self.undo_stack.cleanIndex() != self.undo_stack.index())  # Qt does not merge into a saved step
        # an edit that will merge into the last step needs no text of the state before it
        before_text = None if merging else self._serialize()
        before_state = self._state
        try:
            result = change(scoped(self.graph, scope))
        except Exception:
            self._replace_graph(before_text if before_text is not None else json.dumps(before_state))
            raise
        after_state = graph_to_json(self.graph)
        if after_state == before_state:
            return result  # nothing changed: no undo step
        what = Change.between(before_state, after_state)
        self._state, self._text = after_state, None
        command = SnapshotCommand(self, label, before_text or "", merge_key)
        self._pending = command
        self.undo_stack.push(command)
        self._changed(what, revalidate=not what.moves_only(before_state, after_state))
        self._idle.start()  # the text after the edit, once the redraw is done
        return result

    def _serialize(self) -> str:
        """The text of the current state (made now if it is not yet), handed to the waiting command."""
        if self._text is None:
            self._text = json.dumps(self._state)
        if self._pending is not None:
            self._pending.after = self._text
            self._pending = None
        return self._text

    def _take_pending(self, merged: SnapshotCommand, into: SnapshotCommand) -> None:
        if self._pending is merged:
            self._pending = into

    def _replace_graph(self, text: str) -> None:
        """Make the graph the state of ``text`` (block files reused, not read again)."""
        block_files = {e.path: e.graph for e in self.graph.blocks.values() if e.path is not None and e.graph}
        restored = loads_graph(text, source=str(self.path or self.title),
                               base_dir=self.path.parent if self.path else None, block_files=block_files)
        restored.path = self.graph.path
        # what the loader said about the file when it was opened stays with the document
        restored.load_problems = list(self.graph.load_problems)
        restored.unreadable_nodes = set(self.graph.unreadable_nodes)
        self.graph = restored

    def _restore(self, text: str) -> None:
        self._serialize()
        before_state = self._state
        self._replace_graph(text)
        self._state, self._text = json.loads(text), text
        # a new graph object: validate it afresh (only edits in place may keep the validation)
        self._changed(Change.between(before_state, self._state), revalidate=True)

    def _changed(self, what: Change, revalidate: bool = True) -> None:
        what.validated = revalidate
        if revalidate:
            self.revalidate()
        self.changed.emit(what)

    # ---- files -------------------------------------------------------------------------------
    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path else self.path
        if target is None:
            raise ValueError("no file name")
        self._serialize()  # the last step's text, before the save stamps the studio version
        save_graph(self.graph, target)  # atomic: a temporary file renamed over the old one
        self._state = graph_to_json(self.graph)
        self._text = json.dumps(self._state)
        self.path = target
        self.undo_stack.setClean()
        self.titleChanged.emit()
        return target
