"""The palette of node types by category, with a search box; and the Tab search-to-add popup."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, Qt, Signal
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import (
    QFrame,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.registry import Registry
from studio.gui.view import NODE_MIME

TYPE_ROLE = Qt.ItemDataRole.UserRole


def rank(node_type, text: str) -> int:
    """How well a type matches what was typed, 0 best: 0 its title or id exactly, 1 the start of either,
    2 inside either, 3 one of its keywords ("last" -> Reduce over time, "last step"), 4 a parameter's name
    or one of its choices, 5 a match in the doc or category only (the bar window's doc says "the last
    bars": the weakest hit)."""
    text = text.lower().strip()
    title, type_id = node_type.title.lower(), node_type.type_id.lower()
    if text in (title, type_id):
        return 0
    if title.startswith(text) or type_id.startswith(text):
        return 1
    if text in title or text in type_id:
        return 2
    if any(keyword.lower().startswith(text) for keyword in node_type.keywords):
        return 3
    words = text.split()
    for param in node_type.params:
        named = {param.name.lower(), *(str(choice).lower() for choice in getattr(param, "choices", ()))}
        if text in named or any(word in named for word in words):
            return 4
    return 5


def matches(node_type, text: str) -> bool:
    text = text.lower().strip()
    if not text:
        return True
    params = [f"{param.name} {' '.join(str(c) for c in getattr(param, 'choices', ()))}" for param in node_type.params]
    haystack = " ".join([node_type.type_id, node_type.title, *node_type.keywords, node_type.category, node_type.doc,
                         *params]).lower()
    return all(word in haystack for word in text.split())


class _TypeTree(QTreeWidget):
    def startDrag(self, actions) -> None:
        item = self.currentItem()
        type_id = item.data(0, TYPE_ROLE) if item else None
        if not type_id:
            return
        mime = QMimeData()
        mime.setData(NODE_MIME, type_id.encode())
        mime.setText(type_id)
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)


class Palette(QWidget):
    """Every node type of the registry by category; drag one onto the canvas or double-click it."""

    activated = Signal(str)

    def __init__(self, registry: Registry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search node types…")
        self.search.setClearButtonEnabled(True)
        self.tree = _TypeTree(self)
        self.tree.setHeaderHidden(True)
        self.tree.setIndentation(12)  # two levels at Qt's 20 px cost the long names their last words
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QTreeWidget.DragDropMode.DragOnly)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self.filter)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.populate()

    def populate(self) -> None:
        self.tree.clear()
        for category, types in self.registry.by_category().items():
            group = QTreeWidgetItem([category])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for node_type in types:
                item = QTreeWidgetItem([node_type.title])
                item.setData(0, TYPE_ROLE, node_type.type_id)
                item.setToolTip(0, f"{node_type.title} ({node_type.type_id})\n{node_type.doc}")
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
                group.addChild(item)
            self.tree.addTopLevelItem(group)
        self.tree.expandAll()
        self.tree.setMinimumWidth(self.names_width())

    def names_width(self) -> int:
        """The tree's width that shows every type's name whole: the longest name at its indent, the
        vertical scroll bar and the frame (a narrow dock at 1280 x 800 cut "PassCell-1 (conv_pa…")."""
        metrics = self.tree.fontMetrics()
        longest = max((metrics.horizontalAdvance(t.title) for t in self.registry), default=0)
        scroll_bar = self.tree.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        return longest + 2 * self.tree.indentation() + scroll_bar + 2 * self.tree.frameWidth() + 12

    def filter(self, text: str) -> None:
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            shown = 0
            for j in range(group.childCount()):
                item = group.child(j)
                visible = matches(self.registry[item.data(0, TYPE_ROLE)], text)
                item.setHidden(not visible)
                shown += visible
            group.setHidden(shown == 0)

    def visible_types(self) -> list[str]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            out += [group.child(j).data(0, TYPE_ROLE) for j in range(group.childCount())
                    if not group.child(j).isHidden() and not group.isHidden()]
        return out

    def _double_clicked(self, item: QTreeWidgetItem) -> None:
        type_id = item.data(0, TYPE_ROLE)
        if type_id:
            self.activated.emit(type_id)


class SearchPopup(QFrame):
    """Type a few letters, Enter adds the first match at the place Tab was pressed."""

    chosen = Signal(str)

    def __init__(self, registry: Registry, parent: QWidget) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.registry = registry
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("Add node…")
        self.list = QListWidget(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.edit)
        layout.addWidget(self.list)
        self.resize(300, 320)
        self.edit.textChanged.connect(self.refill)
        self.edit.returnPressed.connect(self.accept_current)
        self.list.itemActivated.connect(lambda _item: self.accept_current())
        self.refill("")

    def refill(self, text: str) -> None:
        self.list.clear()
        found = sorted((t for t in self.registry if matches(t, text)), key=lambda t: (rank(t, text), t.title))
        for node_type in found:
            item = QListWidgetItem(f"{node_type.title}   ({node_type.category})")
            item.setData(TYPE_ROLE, node_type.type_id)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up):
            row = self.list.currentRow() + (1 if event.key() == Qt.Key.Key_Down else -1)
            self.list.setCurrentRow(max(0, min(self.list.count() - 1, row)))
            return
        super().keyPressEvent(event)

    def accept_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.chosen.emit(item.data(TYPE_ROLE))
        self.close()

    def open_at(self, global_pos: QPoint) -> None:
        self.edit.clear()
        self.move(global_pos)
        self.show()
        self.edit.setFocus()
