"""What a crashed studio left: one prompt listing every recoverable document, with checkboxes.

A recovered document takes the place of a clean tab of the same file (the one `studio gui FILE` opened
at start, say) and is marked modified: nothing opens twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from studio.core.text import printable
from studio.gui.editor_document import EditorDocument


@dataclass
class Recoverable:
    meta: dict
    file: Path
    graph: object

    @property
    def path(self) -> Path | None:
        path = self.meta.get("path")
        return Path(path) if isinstance(path, str) and path else None

    def text(self, key: str, fallback: str) -> str:
        value = self.meta.get(key)
        return printable(value) if isinstance(value, str) and value else fallback


class RecoveryDialog(QDialog):
    """Recover the checked documents (the others' autosaves are deleted), or Discard them all; closing
    the dialog leaves every autosave for the next start."""

    RECOVER, DISCARD = "recover", "discard"

    def __init__(self, entries: list[Recoverable], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Recover unsaved work")
        self.entries = entries
        #: RECOVER or DISCARD once a button is pressed; None when the dialog was closed
        self.choice: str | None = None
        note = QLabel("Model Studio did not close normally. These documents have unsaved changes that no "
                      "file holds. The checked ones open with their changes; the autosaves of the others "
                      "are deleted.")
        note.setTextFormat(Qt.TextFormat.PlainText)
        note.setWordWrap(True)
        self.list = QTreeWidget()
        self.list.setHeaderLabels(["Document", "File", "Autosaved"])
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        for entry in entries:
            item = QTreeWidgetItem([entry.text("title", entry.file.name),
                                    printable(str(entry.path)) if entry.path else "not saved yet",
                                    entry.text("saved", "?")])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked)
            item.setToolTip(1, item.text(1))
            self.list.addTopLevelItem(item)
        header = self.list.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox()
        self.recover_button = QPushButton("Recover")
        self.discard_button = QPushButton("Discard all")
        buttons.addButton(self.recover_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.discard_button, QDialogButtonBox.ButtonRole.DestructiveRole)
        self.recover_button.setDefault(True)
        self.recover_button.clicked.connect(lambda: self._finish(self.RECOVER))
        self.discard_button.clicked.connect(lambda: self._finish(self.DISCARD))
        self.list.itemChanged.connect(self._update_recover_button)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.resize(760, 160 + 26 * min(len(entries), 12))

    def _update_recover_button(self) -> None:
        self.recover_button.setText("Recover" if self.chosen() else "Recover none")

    def _finish(self, choice: str) -> None:
        self.choice = choice
        self.accept()

    def chosen(self) -> list[Recoverable]:
        return [entry for i, entry in enumerate(self.entries)
                if self.list.topLevelItem(i).checkState(0) == Qt.CheckState.Checked]


def _same_as_saved(graph, path: Path | None) -> bool:
    """The recovered graph is what the file holds already (it was saved after the autosave)."""
    from studio.core.graph_file import GraphFileError, dumps_graph, load_graph

    if path is None:
        return False
    try:
        saved = load_graph(path)
    except GraphFileError:
        return False
    graph.studio_version = saved.studio_version
    return dumps_graph(saved) == dumps_graph(graph)


def offer_recovery(window) -> None:
    """At start: what dead studios left, in one prompt. A live studio's autosaves are not among them."""
    entries = []
    for meta, graph_file in window.recovery.pending():
        entry = Recoverable(meta, graph_file, None)
        entry.graph = window.recovery.load(graph_file, str(entry.path) if entry.path else None)
        if entry.graph is None or _same_as_saved(entry.graph, entry.path):
            window.recovery.remove(graph_file)  # unreadable, or nothing that the file lacks
            continue
        entries.append(entry)
    if not entries:
        return
    dialog = RecoveryDialog(entries, window)
    dialog.exec()
    dialog.deleteLater()
    if dialog.choice is None:
        window.recovery.let_go_of_offered()
        return
    chosen = dialog.chosen() if dialog.choice == RecoveryDialog.RECOVER else []
    blank = _blank_start_document(window)
    for entry in chosen:
        recover(window, entry)
    if chosen:
        window.save_recovery()  # in this studio's own autosaves before the dead one's go
        if blank is not None:
            _close_document(window, blank)
    for entry in entries:
        window.recovery.remove(entry.file)


def recover(window, entry: Recoverable) -> None:
    """Open a recovered document, in the place of a clean tab of the same file."""
    at = None
    if entry.path is not None:
        for document in list(window.documents):
            if (document.path and not document.modified
                    and os.path.realpath(document.path) == os.path.realpath(entry.path)):
                tabs = window.tabs_of(document)
                if tabs:
                    at = window.tabs.indexOf(tabs[0]) if at is None else min(at, window.tabs.indexOf(tabs[0]))
                _close_document(window, document)
    document = EditorDocument(entry.graph, window.registry, entry.path, window)
    document.undo_stack.resetClean()  # it holds changes that no file has
    tab = window.add_document(document)
    if at is not None:
        window.tabs.tabBar().moveTab(window.tabs.indexOf(tab), at)
        window.tabs.setCurrentWidget(tab)


def _blank_start_document(window) -> EditorDocument | None:
    """The untouched untitled document a plain `studio` start opens: recovered work replaces it."""
    if len(window.documents) != 1:
        return None
    document = window.documents[0]
    if document.path is None and not document.modified and document.undo_stack.count() == 0:
        return document
    return None


def _close_document(window, document: EditorDocument) -> None:
    for tab in window.tabs_of(document):  # clean: closing asks nothing
        window.close_tab(window.tabs.indexOf(tab))
