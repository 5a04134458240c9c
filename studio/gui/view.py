"""The editor view: zoom, pan, frame, drop node types from the palette, Tab to add by name; and the
editor tab that pairs a document (or one of its blocks) with its scene and view."""

from __future__ import annotations

import contextlib
import html

import shiboken6
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import QGraphicsView, QLabel, QVBoxLayout, QWidget

from studio.core.layout import auto_layout, free_spot
from studio.gui import theme
from studio.gui.editor_document import EditorDocument
from studio.gui.scene import HALO, GraphScene, snap

NODE_MIME = "application/x-model-studio-node-type"
#: how far out the view may zoom (a 500-node chain, 110,000 units long, fits a 1280-wide window)
MIN_ZOOM = 0.004
#: frame-all goes no further out than this: the nodes' overviews show ids like "encoder_3"
#: and "relu_down_3" whole (7 points on screen in a node 190 units wide; longer ids on two lines);
#: the minimap shows the rest of a larger graph
READABLE_ZOOM = 0.35
#: the minimap's largest size on screen and its distance from the view's corner
MINIMAP_SIZE = (240, 150)
MINIMAP_MARGIN = 10


class Minimap(QWidget):
    """The whole graph in the view's bottom-right corner while it does not fit the view: a dot per
    node in its category's colour and a frame round the part in view; a click or a drag centres the
    view there. Hidden while every node is in view."""

    def __init__(self, view: GraphView) -> None:
        super().__init__(view)  # on the view, not its viewport: scrolling the viewport would move it
        self.view = view
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("The whole graph: click or drag to look there")
        self._pending = False
        self.hide()

    def refresh(self) -> None:
        """Show or hide, and redraw, once the event loop turns (a scroll or a drag of many nodes
        asks many times)."""
        if not self._pending:
            self._pending = True
            QTimer.singleShot(0, self._refresh_now)

    def _refresh_now(self) -> None:
        self._pending = False
        if not shiboken6.isValid(self) or not shiboken6.isValid(self.view):
            return
        wanted = bool(self.view.scene().nodes) and not self.view.all_in_view()
        if wanted:
            self.place()
        self.setVisible(wanted)
        if wanted:
            self.raise_()
            self.update()

    def graph_rect(self) -> QRectF:
        return self.view.scene().items_rect()

    def place(self) -> None:
        """Bottom-right of the viewport, shaped like the graph (within MINIMAP_SIZE)."""
        rect = self.graph_rect()
        most_w, most_h = MINIMAP_SIZE
        port = self.view.viewport()
        most_w, most_h = min(most_w, max(60, port.width() // 3)), min(most_h, max(40, port.height() // 3))
        scale = min(most_w / max(rect.width(), 1.0), most_h / max(rect.height(), 1.0))
        w, h = max(60, int(rect.width() * scale) + 8), max(30, int(rect.height() * scale) + 8)
        corner = port.geometry().bottomRight()
        self.setGeometry(corner.x() - w - MINIMAP_MARGIN + 1, corner.y() - h - MINIMAP_MARGIN + 1, w, h)

    def _transform(self) -> tuple[QRectF, float, QPointF]:
        """The graph's rect, the scale from scene to minimap, and the minimap point of its top-left."""
        rect = self.graph_rect()
        inner = QRectF(self.rect()).adjusted(4, 4, -4, -4)
        scale = min(inner.width() / max(rect.width(), 1.0), inner.height() / max(rect.height(), 1.0))
        offset = QPointF(inner.center().x() - rect.width() * scale / 2, inner.center().y() - rect.height() * scale / 2)
        return rect, scale, offset

    def to_scene(self, point: QPointF) -> QPointF:
        rect, scale, offset = self._transform()
        return QPointF(rect.left() + (point.x() - offset.x()) / scale, rect.top() + (point.y() - offset.y()) / scale)

    def to_map(self, point: QPointF, transform: tuple[QRectF, float, QPointF] | None = None) -> QPointF:
        rect, scale, offset = transform or self._transform()
        return QPointF(offset.x() + (point.x() - rect.left()) * scale, offset.y() + (point.y() - rect.top()) * scale)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor("#4a5058"), 1))
        painter.setBrush(QColor(20, 22, 26, 225))
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 5, 5)
        transform = self._transform()  # once: it walks every node
        scale = transform[1]
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        by_colour: dict[int, tuple[QColor, list[QRectF]]] = {}
        for item in self.view.scene().nodes.values():
            body = item.sceneBoundingRect().adjusted(HALO, HALO, -HALO, -HALO)
            top_left = self.to_map(body.topLeft(), transform)
            box = QRectF(top_left.x(), top_left.y(), max(2.0, body.width() * scale), max(2.0, body.height() * scale))
            by_colour.setdefault(item.colour.rgba(), (item.colour, []))[1].append(box)
        for colour, boxes in by_colour.values():  # one call per colour
            painter.setBrush(colour)
            painter.drawRects(boxes)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        seen = self.view.mapToScene(self.view.viewport().rect()).boundingRect()
        frame = QRectF(self.to_map(seen.topLeft(), transform), self.to_map(seen.bottomRight(), transform))
        painter.setPen(QPen(theme.SELECTED, 1.5))
        painter.setBrush(QColor(255, 255, 255, 28))
        painter.drawRect(frame.intersected(QRectF(self.rect()).adjusted(1, 1, -1, -1)))

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._look_at(event.position())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._look_at(event.position())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def _look_at(self, point: QPointF) -> None:
        self.view.keep_framed = False
        self.view.centerOn(self.to_scene(point))
        self.refresh()


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
        self.minimap = Minimap(self)
        scene.changed.connect(lambda _rects: self.minimap.refresh())

    # ---- zoom and pan ------------------------------------------------------------------------
    def zoom(self, factor: float) -> None:
        self.keep_framed = False
        scale = self.transform().m11()
        factor = max(MIN_ZOOM / scale, min(4.0 / scale, factor))
        self.scale(factor, factor)
        self.scene().set_detail(self.transform().m11())
        self.minimap.refresh()

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.zoom(1.0015 ** event.angleDelta().y())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.keep_framed:
            self.frame_all()
        self.minimap.place()

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
        """Fit every node in view, but never smaller than READABLE_ZOOM, where the nodes' overviews
        still show their names whole: a graph too large for that shows its start (the inputs, on
        the left; its top where it is also too tall) and the minimap in the corner shows the rest."""
        rect = self.scene().items_rect()
        self.resetTransform()
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        scale = self.transform().m11()
        if scale > 1.2 or scale < READABLE_ZOOM:
            self.resetTransform()
            factor = min(1.2, max(READABLE_ZOOM, scale))
            self.scale(factor, factor)
            seen = self.viewport().rect()
            half_w, half_h = seen.width() / factor / 2, seen.height() / factor / 2
            x = rect.center().x() if rect.width() <= 2 * half_w else rect.left() + half_w
            y = rect.center().y() if rect.height() <= 2 * half_h else rect.top() + half_h
            self.centerOn(QPointF(x, y))
        self.keep_framed = True
        self.scene().set_detail(self.transform().m11())
        self.minimap.refresh()

    def all_in_view(self) -> bool:
        seen = self.mapToScene(self.viewport().rect()).boundingRect()
        return all(seen.contains(item.sceneBoundingRect()) for item in self.scene().nodes.values())

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.minimap.refresh()

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


class ElidedLabel(QLabel):
    """One line of text cut short with "…" to the label's width (any width), the whole text in its
    tooltip when cut: a long description above the canvas reads the same in a narrow window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full_text = ""
        self.setTextFormat(Qt.TextFormat.PlainText)

    def set_full_text(self, text: str) -> None:
        self.full_text = " ".join(text.split())  # one line: the file's line breaks become spaces
        self._elide()

    def minimumSizeHint(self) -> QSize:
        return QSize(16, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        return QSize(16, super().sizeHint().height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(0, self.contentsRect().width())
        shown = self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight, width)
        if shown != self.text():
            self.setText(shown)
        self.setToolTip(self.full_text if shown != self.full_text else "")


class EditorTab(QWidget):
    """One tab of the editor: a document (or one inline block of it), its scene and view."""

    #: the document changed (re-emitted by the tab, so listeners go when the tab goes)
    documentChanged = Signal(object)
    #: the breadcrumb's file part was clicked in a block tab: back out to the file
    leaveBlock = Signal()

    def __init__(self, document: EditorDocument, scope: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document, self.scope = document, scope
        #: the tab whose block node opened this one (closing this one goes back there)
        self.opened_from: EditorTab | None = None
        document.changed.connect(self.documentChanged)
        self.scene = GraphScene(document, scope, self)
        self.view = GraphView(self.scene, self)
        # above the canvas: where you are (file › block, the file part a link back out) and what the
        # graph is (its description: the gallery cites the seed's model number and reported IC / pnl)
        self.breadcrumb = QLabel()
        self.breadcrumb.setTextFormat(Qt.TextFormat.RichText)
        self.breadcrumb.linkActivated.connect(lambda _link: self.leaveBlock.emit())
        self.description = ElidedLabel()
        self.description.setStyleSheet("color: #9aa3ad")
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
            example = self.document.example_inputs
            note = ("" if not example else " <span style='color:#9aa3ad'>· shapes and parameters for an example "
                    "input: " + html.escape(", ".join(f"{k} {v}" for k, v in sorted(example.items()))) + "</span>")
            self.breadcrumb.setText(f"<b>{file_name}</b>{note}")
        else:
            self.breadcrumb.setText(f"<a href='file' style='color:#7fb8ec'>{file_name}</a> › "
                                    f"<b>block {html.escape(self.scope)}</b>")
        text = (graph.description if graph is not None else "") or ""
        self.description.set_full_text(text)
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
