"""The editor view: zoom, pan, frame, drop node types from the palette, Tab to add by name; and the
editor tab that pairs a document (or one of its blocks) with its scene and view."""

from __future__ import annotations

import contextlib
import html

import shiboken6
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QGraphicsView, QLabel, QVBoxLayout, QWidget

from studio.core.layout import auto_layout, free_spot
from studio.gui.document import EditorDocument
from studio.gui.scene import GraphScene, snap

NODE_MIME = "application/x-model-studio-node-type"
#: how far out the view may zoom (a 500-node chain, 110,000 units long, fits a 1280-wide window)
MIN_ZOOM = 0.004


class GraphView(QGraphicsView):
    #: a node type was dropped or chosen at a scene position
    addRequested = Signal(str, QPointF)
    #: Tab / Shift+A: open the search popup at this scene position
    searchRequested = Signal(QPointF)
    #: a right click (not a right drag): the context menu at this scene and screen position
    contextRequested = Signal(QPointF, QPoint)

    def __init__(self, scene: GraphScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._pan_from: QPointF | None = None
        self._pan_button = Qt.MouseButton.NoButton
        self._panned = False
        #: the view keeps the whole graph framed (as the window and its docks settle) until the user
        #: zooms or pans
        self.keep_framed = True

    # ---- zoom and pan ------------------------------------------------------------------------
    def zoom(self, factor: float) -> None:
        self.keep_framed = False
        scale = self.transform().m11()
        factor = max(MIN_ZOOM / scale, min(4.0 / scale, factor))
        self.scale(factor, factor)
        self.scene().set_detail(self.transform().m11())

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.zoom(1.0015 ** event.angleDelta().y())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.keep_framed:
            self.frame_all()

    def mousePressEvent(self, event) -> None:
        if event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._pan_from = event.position()
            self._pan_button = event.button()
            self._panned = False
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            if not self._panned and abs(delta.x()) + abs(delta.y()) < 4:
                return  # a right click may still be a click: not a pan yet
            if not self._panned:
                self._panned = True
                self.keep_framed = False
                self.setCursor(Qt.CursorShape.ClosedHandCursor)
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(int(self.horizontalScrollBar().value() - delta.x()))
            self.verticalScrollBar().setValue(int(self.verticalScrollBar().value() - delta.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None:
            clicked = not self._panned and self._pan_button == Qt.MouseButton.RightButton
            self._pan_from = None
            self.unsetCursor()
            event.accept()
            if clicked:
                point = event.position().toPoint()
                self.contextRequested.emit(self.mapToScene(point), self.viewport().mapToGlobal(point))
            return
        super().mouseReleaseEvent(event)

    def frame_all(self) -> None:
        """Fit every node in view. A large graph may get small: nodes then draw their names at a
        readable size and leave the details out (level of detail, see NodeItem.paint)."""
        rect = self.scene().items_rect()
        self.resetTransform()
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        scale = self.transform().m11()
        if scale > 1.2 or scale < MIN_ZOOM:  # not closer than 1.2, never out past MIN_ZOOM
            self.resetTransform()
            factor = min(1.2, max(MIN_ZOOM, scale))
            self.scale(factor, factor)
            self.centerOn(rect.center())
        self.keep_framed = True
        self.scene().set_detail(self.transform().m11())

    def cursor_scene_pos(self) -> QPointF:
        local = self.mapFromGlobal(self.cursor().pos())
        if not self.rect().contains(local):
            return self.mapToScene(self.viewport().rect().center())
        return self.mapToScene(local)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, mods = event.key(), event.modifiers()
        if key == Qt.Key.Key_Tab or (key == Qt.Key.Key_A and mods == Qt.KeyboardModifier.ShiftModifier):
            self.searchRequested.emit(self.cursor_scene_pos())
            event.accept()
            return
        super().keyPressEvent(event)

    def focusNextPrevChild(self, next: bool) -> bool:
        return False

    # ---- drops from the palette --------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(NODE_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasFormat(NODE_MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        if event.mimeData().hasFormat(NODE_MIME):
            type_id = bytes(event.mimeData().data(NODE_MIME)).decode()
            self.addRequested.emit(type_id, self.mapToScene(event.position().toPoint()))
            event.acceptProposedAction()
        else:
            super().dropEvent(event)


class EditorTab(QWidget):
    """One tab of the editor: a document (or one inline block of it), its scene and view."""

    #: the document changed (re-emitted by the tab, so listeners go when the tab goes)
    documentChanged = Signal(object)
    #: the breadcrumb's file part was clicked in a block tab: back out to the file
    leaveBlock = Signal()

    def __init__(self, document: EditorDocument, scope: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document, self.scope = document, scope
        document.changed.connect(self.documentChanged)
        self.scene = GraphScene(document, scope, self)
        self.view = GraphView(self.scene, self)
        # above the canvas: where you are (file › block, the file part a link back out) and what the
        # graph is (its description: the gallery cites the seed's model number and reported IC / pnl)
        self.breadcrumb = QLabel()
        self.breadcrumb.setTextFormat(Qt.TextFormat.RichText)
        self.breadcrumb.linkActivated.connect(lambda _link: self.leaveBlock.emit())
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: #9aa3ad")
        self.description.setMaximumHeight(34)
        header = QVBoxLayout()
        header.setContentsMargins(8, 4, 8, 2)
        header.setSpacing(0)
        header.addWidget(self.breadcrumb)
        header.addWidget(self.description)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(self.view)
        self.view.addRequested.connect(self.add_node)
        self.documentChanged.connect(lambda _change: self.update_header())
        document.titleChanged.connect(self.update_header)
        self.update_header()

    @property
    def graph(self):
        return self.document.graph_of(self.scope)

    def update_header(self) -> None:
        if not shiboken6.isValid(self):
            return
        graph = self.graph
        file_name = html.escape(self.document.title)
        if self.scope is None:
            self.breadcrumb.setText(f"<b>{file_name}</b>")
        else:
            self.breadcrumb.setText(f"<a href='file' style='color:#7fb8ec'>{file_name}</a> › "
                                    f"<b>block {html.escape(self.scope)}</b>")
        text = (graph.description if graph is not None else "") or ""
        short = text if len(text) <= 240 else text[:237] + "…"
        self.description.setText(short)
        self.description.setToolTip(text if len(text) > 240 else "")
        self.description.setVisible(bool(text))

    def detach(self) -> None:
        """Stop listening to the document (the tab is closing; the document may live on in others)."""
        for slot in (self.documentChanged, self.scene.on_change):
            with contextlib.suppress(RuntimeError, TypeError):  # not connected (any more)
                self.document.changed.disconnect(slot)

    @property
    def title(self) -> str:
        base = self.document.title
        return f"{base} › {self.scope}" if self.scope else base

    # ---- edits the window's actions call -----------------------------------------------------
    def add_node(self, type_id: str, at: QPointF) -> str | None:
        node_type = self.document.registry.get(type_id)
        if node_type is None:
            return None
        result: dict[str, str] = {}

        def add(g) -> None:
            spot = free_spot(g, (snap(at.x()), snap(at.y())))  # never on top of another node
            node = g.add_node(type_id, node_type.version, node_type.default_params(), pos=spot)
            result["id"] = node.id

        self.document.edit(f"Add {node_type.title}", add, self.scope)
        self.scene.select_nodes([result["id"]])
        return result["id"]

    def delete_selection(self) -> None:
        nodes, edges = self.scene.selected_nodes(), self.scene.selected_edges()
        if not nodes and not edges:
            return

        def delete(g) -> None:
            for edge in edges:
                if edge in g.edges:
                    g.disconnect(edge)
            for node_id in nodes:
                if node_id in g.nodes:
                    g.remove_node(node_id)

        count = len(nodes) + len(edges)
        self.document.edit(f"Delete {count} item{'s' if count > 1 else ''}", delete, self.scope)

    def auto_layout(self) -> None:
        self.document.edit("Auto-layout", auto_layout, self.scope)
        self.view.keep_framed = True
        self.view.frame_all()
