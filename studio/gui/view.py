"""The editor view: zoom, pan, frame, drop node types from the palette, Tab to add by name; and the
editor tab that pairs a document (or one of its blocks) with its scene and view."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QGraphicsView, QVBoxLayout, QWidget

from studio.core.layout import auto_layout
from studio.gui.document import EditorDocument
from studio.gui.scene import GraphScene, snap

NODE_MIME = "application/x-model-studio-node-type"


class GraphView(QGraphicsView):
    #: a node type was dropped or chosen at a scene position
    addRequested = Signal(str, QPointF)
    #: Tab / Shift+A: open the search popup at this scene position
    searchRequested = Signal(QPointF)

    def __init__(self, scene: GraphScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._pan_from: QPointF | None = None
        self.setSceneRect(QRectF(-50000, -50000, 100000, 100000))

    # ---- zoom and pan ------------------------------------------------------------------------
    def zoom(self, factor: float) -> None:
        scale = self.transform().m11()
        factor = max(0.1 / scale, min(4.0 / scale, factor))
        self.scale(factor, factor)

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.zoom(1.0015 ** event.angleDelta().y())

    def mousePressEvent(self, event) -> None:
        if event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(int(self.horizontalScrollBar().value() - delta.x()))
            self.verticalScrollBar().setValue(int(self.verticalScrollBar().value() - delta.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            self.unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def frame_all(self) -> None:
        """Fit every node in view, but never so small that names cannot be read (then the left end
        of the graph, where the bar window is, stays in view)."""
        rect = self.scene().items_rect()
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        scale = self.transform().m11()
        if scale > 1.2 or scale < 0.6:
            self.resetTransform()
            factor = min(1.2, max(0.6, scale))
            self.scale(factor, factor)
            if scale < 0.6:
                width = self.viewport().width() / factor
                self.centerOn(rect.left() + width / 2 - 20, rect.center().y())
            else:
                self.centerOn(rect.center())

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

    def __init__(self, document: EditorDocument, scope: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document, self.scope = document, scope
        self.scene = GraphScene(document, scope, self)
        self.view = GraphView(self.scene, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.view.addRequested.connect(self.add_node)

    @property
    def graph(self):
        return self.document.graph_of(self.scope)

    @property
    def title(self) -> str:
        base = self.document.title
        return f"{base} › {self.scope}" if self.scope else base

    def _target(self, graph):
        return graph if self.scope is None else graph.blocks[self.scope].graph

    # ---- edits the window's actions call -----------------------------------------------------
    def add_node(self, type_id: str, at: QPointF) -> str | None:
        node_type = self.document.registry.get(type_id)
        if node_type is None:
            return None
        result: dict[str, str] = {}

        def add(g) -> None:
            target = self._target(g)
            node = target.add_node(type_id, node_type.version, node_type.default_params(),
                                   pos=(snap(at.x()), snap(at.y())))
            result["id"] = node.id

        self.document.edit(f"Add {node_type.title}", add)
        self.scene.select_nodes([result["id"]])
        return result["id"]

    def delete_selection(self) -> None:
        nodes, edges = self.scene.selected_nodes(), self.scene.selected_edges()
        if not nodes and not edges:
            return

        def delete(g) -> None:
            target = self._target(g)
            for edge in edges:
                if edge in target.edges:
                    target.disconnect(edge)
            for node_id in nodes:
                if node_id in target.nodes:
                    target.remove_node(node_id)

        count = len(nodes) + len(edges)
        self.document.edit(f"Delete {count} item{'s' if count > 1 else ''}", delete)

    def auto_layout(self) -> None:
        self.document.edit("Auto-layout", lambda g: auto_layout(self._target(g)))
        self.view.frame_all()
