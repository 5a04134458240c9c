"""The node-graph canvas: nodes with ports, curved wires labelled with their tensor shapes.

The scene draws one graph (a file's, or one of its blocks') from the document and the document's
validation, and turns mouse gestures into document edits: moving nodes, dragging wires from port to
port (a wire that cannot fit is refused with the reason the core's ``can_connect`` gives), deleting.
It holds no graph state of its own: after each change it updates the items the change names and those
whose shapes, counts or problems the new validation changed (``on_change``); ``sync()`` rebuilds all.
Wires are drawn above the nodes, so a wire that skips a node is seen to pass over it.
"""

from __future__ import annotations

import math

import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QGraphicsSimpleTextItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from studio.core.document import Edge, Endpoint, Graph, Problem, block_reference
from studio.core.edits import can_connect, connect_replacing
from studio.core.node_type import Port
from studio.core.validation import Validation, format_count
from studio.gui import theme
from studio.gui.editor_document import Change, EditorDocument

TITLE_FONT = QFont()
TITLE_FONT.setBold(True)
TITLE_FONT.setPointSizeF(9.5)
SMALL_FONT = QFont()
SMALL_FONT.setPointSizeF(8.0)
#: below this zoom nodes draw an overview (name only, readable) and wires drop their shape labels
DETAIL_ZOOM = 0.45
#: room round a node for its selection halo (scene units)
HALO = 12.0
#: below this zoom ports are hidden (too small to aim at; zoom in to wire)
PORT_ZOOM = 0.15
#: the finest grid spacing drawn, on screen
MIN_GRID_PIXELS = 8.0
#: the scene reaches this far beyond the nodes (room to pan and to add nodes)
SCENE_MARGIN = 20000.0


def snap(value: float) -> float:
    return round(value / theme.GRID) * theme.GRID


class PortItem(QGraphicsItem):
    def __init__(self, node: NodeItem, port: Port, output: bool, index: int) -> None:
        super().__init__(node)
        self.node, self.port, self.output, self.index = node, port, output, index
        self.setAcceptHoverEvents(True)
        self.hovered = False
        self.setPos(theme.NODE_WIDTH if output else 0.0, theme.HEADER + (index + 0.5) * theme.PORT_ROW)
        self.setToolTip(f"{port.name}: {port.describe_kinds()}" + (f"\n{port.doc}" if port.doc else ""))
        self.setCursor(Qt.CursorShape.CrossCursor)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.node.node_id, self.port.name)

    def boundingRect(self) -> QRectF:
        r = theme.PORT_RADIUS + 3
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if option.levelOfDetailFromTransform(painter.worldTransform()) < PORT_ZOOM:
            return  # too small to aim at
        kind = self.port.kinds[0] if len(self.port.kinds) == 1 else None
        colour = theme.KIND_COLOURS.get(kind, theme.UNKNOWN_KIND)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(theme.SELECTED if self.hovered else QColor("#15171a"), 1.5))
        painter.setBrush(colour)
        r = theme.PORT_RADIUS + (1.5 if self.hovered else 0)
        painter.drawEllipse(QPointF(0, 0), r, r)

    def hoverEnterEvent(self, event) -> None:
        self.hovered = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self.hovered = False
        self.update()

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.scene().start_wire(self)
            event.accept()
        else:
            super().mousePressEvent(event)


class NodeItem(QGraphicsItem):
    def __init__(self, scene: GraphScene, node_id: str) -> None:
        super().__init__()
        self.graph_scene = scene
        self.node_id = node_id
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setAcceptHoverEvents(True)
        self.ports: dict[tuple[bool, str], PortItem] = {}
        self.height = theme.HEADER + theme.PORT_ROW
        self.title = node_id
        self.subtitle = ""
        self.summary = ""
        self.colour = theme.DEFAULT_CATEGORY
        self.severity: str | None = None
        self.port_labels: list[tuple[bool, int, str]] = []
        #: what the validation said of this node when it was last drawn (see signature())
        self.signature: tuple | None = None

    @staticmethod
    def signature_of(node_id: str, v: Validation, problems: list[Problem]) -> tuple:
        """Everything the validation says about a node that its drawing shows."""
        return (tuple((k, str(s)) for k, s in v.out_shapes.get(node_id, {}).items()),
                v.param_counts.get(node_id),
                tuple(str(p) + p.severity for p in problems),
                tuple((p.name, p.kinds) for p in v.in_ports.get(node_id, ())),
                tuple((p.name, p.kinds) for p in v.out_ports.get(node_id, ())))

    # ---- content -----------------------------------------------------------------------------
    def refresh(self, graph: Graph, doc: EditorDocument, scope: str | None, v: Validation | None = None,
                problems: list[Problem] | None = None) -> None:
        node = graph.nodes[self.node_id]
        v = v if v is not None else doc.validation_of(scope)
        node_type = doc.registry.get(node.type)
        self.title = self.node_id
        if node_type is None:
            self.subtitle, self.colour = f"? {node.type}", theme.ERROR
            ins, outs = (), ()
        else:
            block = block_reference(node)
            self.subtitle = node_type.title + (f" · {block}" if block is not None else "")
            self.colour = theme.category_colour(node_type.category)
            ins = v.in_ports.get(self.node_id) or _safe_ports(node_type, node.params, v, False)
            outs = v.out_ports.get(self.node_id) or _safe_ports(node_type, node.params, v, True)
        wanted = {(False, p.name) for p in ins} | {(True, p.name) for p in outs}
        for key in list(self.ports):
            if key not in wanted or self.ports[key].port not in (ins if not key[0] else outs):
                item = self.ports.pop(key)
                item.setParentItem(None)
                if item.scene() is not None:
                    item.scene().removeItem(item)
        self.port_labels = []
        for output, ports in ((False, ins), (True, outs)):
            for i, port in enumerate(ports):
                key = (output, port.name)
                if key not in self.ports:
                    self.ports[key] = PortItem(self, port, output, i)
                    self.ports[key].setVisible(self.graph_scene.detail)
                else:
                    self.ports[key].setPos(theme.NODE_WIDTH if output else 0.0,
                                           theme.HEADER + (i + 0.5) * theme.PORT_ROW)
                self.port_labels.append((output, i, port.name))
        rows = max(len(ins), len(outs), 1)
        count = v.param_counts.get(self.node_id)
        shapes = v.out_shapes.get(self.node_id, {})
        bits = [", ".join(str(s) for s in shapes.values())] if shapes else []
        if count:
            bits.append(f"{format_count(count)} params")
        self.summary = " · ".join(bits)
        self.prepareGeometryChange()
        self.height = theme.HEADER + rows * theme.PORT_ROW + (16 if self.summary else 4)
        problems = problems if problems is not None else v.problems_of(self.node_id)
        self.signature = self.signature_of(self.node_id, v, problems)
        errors = [p for p in problems if p.severity == "error"]
        self.severity = "error" if errors else ("warning" if problems else None)
        tip = [f"{self.node_id}: {self.subtitle}"]
        if node_type is not None and node_type.doc:
            tip.append(node_type.doc)
        tip += [("⚠ " if p.severity == "warning" else "✖ ") + str(p) for p in problems]
        self.setToolTip("\n".join(tip))
        x, y = node.pos
        if not self.graph_scene.dragging and (self.pos().x(), self.pos().y()) != (x, y):
            self.setPos(x, y)
        self.update()

    def port(self, output: bool, name: str) -> PortItem | None:
        return self.ports.get((output, name))

    # ---- painting ----------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return QRectF(-HALO, -HALO, theme.NODE_WIDTH + 2 * HALO, self.height + 2 * HALO)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(0, 0, theme.NODE_WIDTH, self.height)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if lod < DETAIL_ZOOM:
            self._paint_overview(painter, rect, lod)
            return
        severity_colour = {"error": theme.ERROR, "warning": theme.WARNING}.get(self.severity, QColor("#15171a"))
        if self.isSelected():  # a halo outside, so the error or warning outline stays visible
            painter.setPen(QPen(theme.SELECTED, 2.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(-3.5, -3.5, 3.5, 3.5), 8, 8)
        painter.setPen(QPen(severity_colour, 2.5 if self.severity else 1.0))
        painter.setBrush(theme.NODE_BODY)
        painter.drawRoundedRect(rect, 6, 6)
        header = QPainterPath()
        header.addRoundedRect(QRectF(0, 0, theme.NODE_WIDTH, theme.HEADER), 6, 6)
        painter.fillPath(header, QBrush(self.colour))
        painter.setPen(theme.NODE_TEXT)
        painter.setFont(TITLE_FONT)
        painter.drawText(QRectF(8, 2, theme.NODE_WIDTH - 30, 18), Qt.AlignmentFlag.AlignVCenter, self.title)
        painter.setFont(SMALL_FONT)
        painter.setPen(QColor("#f0f0f0"))
        metrics = QFontMetricsF(SMALL_FONT)
        painter.drawText(QRectF(8, 19, theme.NODE_WIDTH - 16, 16), Qt.AlignmentFlag.AlignVCenter,
                         metrics.elidedText(self.subtitle, Qt.TextElideMode.ElideRight, theme.NODE_WIDTH - 16))
        if self.severity:
            painter.setBrush(theme.ERROR if self.severity == "error" else theme.WARNING)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawEllipse(QPointF(theme.NODE_WIDTH - 14, 12), 8, 8)
            painter.setPen(QColor("white"))
            painter.setFont(TITLE_FONT)
            painter.drawText(QRectF(theme.NODE_WIDTH - 22, 4, 16, 16), Qt.AlignmentFlag.AlignCenter, "!")
        painter.setFont(SMALL_FONT)
        painter.setPen(theme.NODE_SUBTEXT)
        for output, i, name in self.port_labels:
            y = theme.HEADER + i * theme.PORT_ROW
            align = Qt.AlignmentFlag.AlignRight if output else Qt.AlignmentFlag.AlignLeft
            painter.drawText(QRectF(12, y, theme.NODE_WIDTH - 24, theme.PORT_ROW),
                             align | Qt.AlignmentFlag.AlignVCenter, name)
        if self.summary:
            painter.drawText(QRectF(8, self.height - 17, theme.NODE_WIDTH - 16, 14), Qt.AlignmentFlag.AlignVCenter,
                             metrics.elidedText(self.summary, Qt.TextElideMode.ElideRight, theme.NODE_WIDTH - 16))

    def _paint_overview(self, painter: QPainter, rect: QRectF, lod: float) -> None:
        """Zoomed far out: the body in its category's colour, its problem outline, and the node's id in
        a font that stays readable on screen (ports, params and shapes left out)."""
        severity_colour = {"error": theme.ERROR, "warning": theme.WARNING}.get(self.severity)
        if rect.width() * lod < 24:  # a few pixels wide: a plain block (a name would not fit)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            outline = theme.SELECTED if self.isSelected() else severity_colour
            painter.fillRect(rect, outline or self.colour)
            if outline is not None:
                painter.fillRect(rect.adjusted(rect.width() / 4, rect.height() / 4, -rect.width() / 4,
                                               -rect.height() / 4), self.colour)
            return
        if self.isSelected():  # inside the bounding rect (HALO units round the node), or it is clipped
            width = min(3.0 / lod, HALO / 2)
            gap = HALO - width / 2
            painter.setPen(QPen(theme.SELECTED, width))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(-gap, -gap, gap, gap), 8, 8)
        painter.setPen(QPen(severity_colour, 3.0 / lod) if severity_colour else Qt.PenStyle.NoPen)
        painter.setBrush(self.colour)
        painter.drawRoundedRect(rect, 6, 6)
        lines, font = self.overview_label(lod)
        painter.setFont(font)
        painter.setPen(theme.NODE_TEXT)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "\n".join(lines))

    def overview_label(self, lod: float) -> tuple[list[str], QFont]:
        """The node's id as the overview draws it at zoom ``lod``: one line at 9 points on screen down
        to 6.5; a long id then breaks in two at an underscore (or its middle) where the node is tall
        enough; else it is cut in the middle, so that "encoder_3" and "encoder_4" stay apart."""
        width = theme.NODE_WIDTH - 4
        font = QFont(TITLE_FONT)
        for points in (9.0, 8.0, 7.0, 6.5):
            font.setPointSizeF(min(60.0, points / max(lod, 0.05)))
            metrics = QFontMetricsF(font)
            if metrics.horizontalAdvance(self.title) <= width:
                return [self.title], font
        if metrics.lineSpacing() * 2 <= self.height - 4 and len(self.title) > 1:
            middle = len(self.title) / 2
            cuts = [i + 1 for i, c in enumerate(self.title[:-1]) if c in "_-."] or [round(middle)]
            cut = min(cuts, key=lambda i: (abs(i - middle), i))
            lines = [self.title[:cut], self.title[cut:]]
            if all(metrics.horizontalAdvance(line) <= width for line in lines):
                return lines, font
            return [metrics.elidedText(line, Qt.TextElideMode.ElideMiddle, width) for line in lines], font
        return [metrics.elidedText(self.title, Qt.TextElideMode.ElideMiddle, width)], font

    # ---- interaction -------------------------------------------------------------------------
    def itemChange(self, change, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged and self.scene() is not None:
            self.graph_scene.node_moved(self)
        return super().itemChange(change, value)

    def mouseDoubleClickEvent(self, event) -> None:
        self.graph_scene.nodeDoubleClicked.emit(self.node_id)
        event.accept()


def _safe_ports(node_type, params, v, output: bool) -> tuple[Port, ...]:
    try:
        ports = node_type.output_ports(params) if output else node_type.input_ports(params)
        return tuple(ports)
    except Exception:
        return node_type.outputs if output else node_type.inputs


class EdgeItem(QGraphicsPathItem):
    def __init__(self, edge: Edge) -> None:
        super().__init__()
        self.edge = edge
        self.label = ""
        self.kind: str | None = None
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(1)  # above the nodes: a wire that skips a node is seen to pass over it
        self.setAcceptHoverEvents(True)

    def set_ends(self, a: QPointF, b: QPointF) -> None:
        self.setPath(wire_path(a, b))
        self.mid = self.path().pointAtPercent(0.5)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        scene = self.scene()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, scene is None or scene.fine_wires)
        colour = theme.KIND_COLOURS.get(self.kind, theme.UNKNOWN_KIND)
        pen = QPen(theme.SELECTED if self.isSelected() else colour, 3.0 if self.isSelected() else 2.0)
        pen.setCosmetic(True)  # the same width on screen at any zoom
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path())
        if self.label and option.levelOfDetailFromTransform(painter.worldTransform()) >= DETAIL_ZOOM:
            painter.setFont(SMALL_FONT)
            text, box = self.label_box()
            if text:
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(theme.LABEL_BACKGROUND)
                painter.drawRoundedRect(box, 4, 4)
                painter.setPen(colour.lighter(130))
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def label_box(self) -> tuple[str, QRectF]:
        """The shape label and where it is drawn: at the wire's middle, cut short (the full shape is
        in the tooltip) where the whole of it would cover a port at either end; none where not even
        a few characters fit."""
        metrics = QFontMetricsF(SMALL_FONT)
        path = self.path()
        ends = [path.pointAtPercent(0.0), path.pointAtPercent(1.0)]
        room = theme.PORT_RADIUS + 4

        def box_for(text: str) -> QRectF:
            w = metrics.horizontalAdvance(text) + 10
            return QRectF(self.mid.x() - w / 2, self.mid.y() - 9, w, 18)

        def clear(box: QRectF) -> bool:
            return not any(box.intersects(QRectF(e.x() - room, e.y() - room, 2 * room, 2 * room)) for e in ends)

        box = box_for(self.label)
        if clear(box):
            return self.label, box
        width = box.width() - 10
        while width > 24:
            width -= 8
            text = metrics.elidedText(self.label, Qt.TextElideMode.ElideMiddle, width)
            box = box_for(text)
            if clear(box):
                return text, box
        return "", QRectF()

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-60, -12, 60, 12)

    def shape(self) -> QPainterPath:
        """The stroke, less a circle round each end: the wire lies above the nodes, and a press on a
        port under its end must reach the port."""
        from PySide6.QtGui import QPainterPathStroker

        s = QPainterPathStroker()
        s.setWidth(10)
        stroke = s.createStroke(QPainterPath(self.path()))
        ends = QPainterPath()
        r = theme.PORT_RADIUS + 6
        for point in (self.path().pointAtPercent(0.0), self.path().pointAtPercent(1.0)):
            ends.addEllipse(point, r, r)
        return stroke.subtracted(ends)


class RefusalText(QGraphicsSimpleTextItem):
    """Why a wire was refused, at screen size on a dark plate so it reads over wires and the grid."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.setBrush(theme.ERROR.lighter(140))
        # readable at any zoom: the canvas may be framed far out when a wire is refused
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-4, -2, 4, 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(theme.LABEL_BACKGROUND)
        painter.drawRoundedRect(self.boundingRect(), 4, 4)
        super().paint(painter, option, widget)


def wire_path(a: QPointF, b: QPointF) -> QPainterPath:
    dx = max(60.0, abs(b.x() - a.x()) * 0.5)
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    return path


class GraphScene(QGraphicsScene):
    #: a one-line message for the status bar (refused wires, hints)
    message = Signal(str)
    nodeDoubleClicked = Signal(str)
    #: a wire dragged from a port was let go over empty canvas: (the port's endpoint, whether it is an
    #: output, the scene position) - the window offers to add a node there, wired to that port
    wireDroppedOnCanvas = Signal(object, bool, QPointF)

    def __init__(self, document: EditorDocument, scope: str | None = None, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.scope = scope
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[Edge, EdgeItem] = {}
        #: node id -> the wires at it (moving a node moves only those)
        self._edges_at: dict[str, set[Edge]] = {}
        self.dragging = False
        self.wire_from: PortItem | None = None
        self.wire_preview: QGraphicsPathItem | None = None
        self.refusal: QGraphicsSimpleTextItem | None = None
        self._rect_set = False
        #: ports shown (the view's zoom is above DETAIL_ZOOM) and wires antialiased
        self.detail = True
        self.fine_wires = True
        self.setBackgroundBrush(theme.BACKGROUND)
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)  # paint only what is in view
        document.changed.connect(self.on_change)
        self.sync()

    @property
    def graph(self) -> Graph | None:
        return self.document.graph_of(self.scope)

    # ---- model -> items ----------------------------------------------------------------------
    def sync(self) -> None:
        """Bring every item in line with the document."""
        graph = self.graph
        if graph is None:
            return
        self._update(graph, set(graph.nodes) | set(self.nodes), wires=True, everything=True)

    def on_change(self, change: Change) -> None:
        """Update the items ``change`` names, and those the new validation changed."""
        if not shiboken6.isValid(self):
            return
        graph = self.graph
        if graph is None:
            return
        if change.everything or change.structure:
            self.sync()
            return
        nodes = set(change.nodes.get(self.scope, ()))
        wires = self.scope in change.wires
        if nodes or wires or change.validated:
            self._update(graph, nodes, wires=wires, everything=False, validated=change.validated)

    def _update(self, graph: Graph, nodes: set[str], *, wires: bool, everything: bool,
                validated: bool = True) -> None:
        v = self.document.validation_of(self.scope)
        by_node: dict[str, list[Problem]] = {}
        for p in v.problems:
            if p.node is not None:
                by_node.setdefault(p.node, []).append(p)
        refresh: set[str] = set()
        for node_id in nodes:
            if node_id not in graph.nodes:
                if node_id in self.nodes:
                    self.removeItem(self.nodes.pop(node_id))
                continue
            if node_id not in self.nodes:
                item = self.nodes[node_id] = NodeItem(self, node_id)
                self.addItem(item)
            refresh.add(node_id)
        if validated and not everything:
            for node_id, item in self.nodes.items():
                if node_id not in refresh and item.signature != NodeItem.signature_of(
                        node_id, v, by_node.get(node_id, [])):
                    refresh.add(node_id)
        for node_id in sorted(refresh):
            self.nodes[node_id].refresh(graph, self.document, self.scope, v, by_node.get(node_id, []))
        if wires or everything:
            current = set(graph.edges)
            for edge in list(self.edges):
                if edge not in current:
                    self.removeItem(self.edges.pop(edge))
                    for end in (edge.src.node, edge.dst.node):
                        self._edges_at.get(end, set()).discard(edge)
            for edge in graph.edges:
                if edge not in self.edges:
                    item = self.edges[edge] = EdgeItem(edge)
                    self.addItem(item)
                    for end in (edge.src.node, edge.dst.node):
                        self._edges_at.setdefault(end, set()).add(edge)
                    refresh.add(edge.src.node)  # placed below
        for edge, item in self.edges.items():
            if validated or everything or edge.src.node in refresh or edge.dst.node in refresh:
                shape = v.shape(edge.src)
                label = str(shape) if shape is not None else ""
                kind = shape.kind if shape is not None else None
                if label != item.label or kind != item.kind or not item.toolTip():
                    item.label, item.kind = label, kind
                    item.setToolTip(f"{edge}\n{shape.describe()}" if shape is not None else f"{edge}\n(shape unknown)")
                    item.update()
            if everything or edge.src.node in refresh or edge.dst.node in refresh:
                self._place(item)
        self._grow_scene_rect()

    def set_detail(self, zoom: float) -> None:
        """Zoomed out past PORT_ZOOM the ports are hidden (not even visited when painting), past 0.1
        wires are drawn without antialiasing (the nodes switch to overviews at DETAIL_ZOOM)."""
        detail = zoom >= PORT_ZOOM
        self.fine_wires = zoom >= 0.1
        if detail == self.detail:
            return
        self.detail = detail
        for node in self.nodes.values():
            for port in node.ports.values():
                port.setVisible(detail)

    def _grow_scene_rect(self) -> None:
        """Room to pan around every node: the graph's extent and a margin (it never shrinks while open,
        so the view does not jump)."""
        room = self.items_rect().adjusted(-SCENE_MARGIN, -SCENE_MARGIN, SCENE_MARGIN, SCENE_MARGIN)
        self.setSceneRect(room.united(self.sceneRect()) if self._rect_set else room)
        self._rect_set = True

    def _place(self, item: EdgeItem) -> None:
        a = self._port_pos(item.edge.src, True)
        b = self._port_pos(item.edge.dst, False)
        if a is not None and b is not None:
            item.set_ends(a, b)
            item.setVisible(True)
        else:
            item.setVisible(False)

    def _port_pos(self, endpoint: Endpoint, output: bool) -> QPointF | None:
        node = self.nodes.get(endpoint.node)
        port = node.port(output, endpoint.port) if node else None
        return port.scenePos() if port is not None else None

    def node_moved(self, item: NodeItem) -> None:
        for edge in self._edges_at.get(item.node_id, ()):
            edge_item = self.edges.get(edge)
            if edge_item is not None:
                self._place(edge_item)

    # ---- moving ------------------------------------------------------------------------------
    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mousePressEvent(event)
        self.dragging = event.button() == Qt.MouseButton.LeftButton

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.wire_from is not None:
            self._draw_preview(event.scenePos())
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.wire_from is not None:
            grabber = self.mouseGrabberItem()
            if grabber is not None:  # the port took the press; release it, or it keeps every later click
                grabber.ungrabMouse()
            self.dragging = False
            self.finish_wire(event.scenePos())
            return
        super().mouseReleaseEvent(event)
        if self.dragging:
            self.dragging = False
            self.commit_moves()

    def commit_moves(self) -> None:
        """Write the positions of the nodes that moved to the document, snapped to the grid (one undo
        step). A click that moved nothing is no edit, and a node that did not move keeps its position,
        on the grid or not (a file written elsewhere stays as it is)."""
        graph = self.graph
        if graph is None:
            return
        moved = {}
        for node_id, item in self.nodes.items():
            if node_id in graph.nodes:
                old = tuple(graph.nodes[node_id].pos)
                if (item.pos().x(), item.pos().y()) == old:
                    continue
                moved[node_id] = (snap(item.pos().x()), snap(item.pos().y()))
        if not moved:
            return

        def move(g: Graph) -> None:
            for node_id, pos in moved.items():
                g.nodes[node_id].pos = pos

        self.document.edit(f"Move {len(moved)} node{'s' if len(moved) > 1 else ''}", move, self.scope)
        for node_id, pos in moved.items():  # an edit that changed nothing (snapped back) redraws nothing
            item = self.nodes.get(node_id)
            if item is not None and (item.pos().x(), item.pos().y()) != pos:
                item.setPos(*pos)

    # ---- wiring ------------------------------------------------------------------------------
    def start_wire(self, port: PortItem) -> None:
        graph = self.graph
        if graph is None:
            return
        if not port.output:
            # dragging from a connected input picks its wire up
            existing = next((e for e in graph.edges if e.dst == port.endpoint), None)
            if existing is not None:
                self.document.edit("Disconnect", lambda g: g.disconnect(existing), self.scope)
                source_node = self.nodes.get(existing.src.node)
                source = source_node.port(True, existing.src.port) if source_node else None
                if source is not None:
                    port = source
        self.wire_from = port
        self.wire_preview = QGraphicsPathItem()
        self.wire_preview.setPen(QPen(theme.SELECTED, 2, Qt.PenStyle.DashLine))
        self.addItem(self.wire_preview)

    def _draw_preview(self, to: QPointF) -> None:
        if self.wire_from is None or self.wire_preview is None:
            return
        a = self.wire_from.scenePos()
        self.wire_preview.setPath(wire_path(a, to) if self.wire_from.output else wire_path(to, a))

    def finish_wire(self, at: QPointF) -> None:
        start = self.wire_from
        self.wire_from = None
        if self.wire_preview is not None:
            self.removeItem(self.wire_preview)
            self.wire_preview = None
        target = next((i for i in self.items(at) if isinstance(i, PortItem)), None)
        if start is not None and target is None and not any(isinstance(i, NodeItem | PortItem)
                                                             for i in self.items(at)):
            self.wireDroppedOnCanvas.emit(start.endpoint, start.output, at)
            return
        if start is None or target is None or target is start:
            return
        if start.output == target.output:
            self.refuse(at, "a wire joins an output to an input")
            return
        src, dst = (start, target) if start.output else (target, start)
        self.connect_ports(src.endpoint, dst.endpoint, at)

    def fit_problem(self, src: Endpoint, dst: Endpoint) -> str | None:
        """Why a wire from ``src`` to ``dst`` cannot be made, or None (the core's rule)."""
        graph = self.graph
        assert graph is not None
        return can_connect(graph, self.document.validation_of(self.scope), src, dst)

    def connect_ports(self, src: Endpoint, dst: Endpoint, at: QPointF | None = None) -> bool:
        problem = self.fit_problem(src, dst)
        if problem:
            self.refuse(at, problem)
            return False
        self.document.edit(f"Connect {src} -> {dst}", lambda g: connect_replacing(g, src, dst), self.scope)
        return True

    def refuse(self, at: QPointF | None, reason: str) -> None:
        self.message.emit(f"Refused: {reason}")
        if at is None:
            return
        if self.refusal is not None and self.refusal.scene() is self:
            self.removeItem(self.refusal)
        self.refusal = RefusalText(reason)
        self.refusal.setPos(self._clear_spot(at, self.refusal.boundingRect(), self._zoom()))
        self.refusal.setZValue(10)
        self.addItem(self.refusal)
        item = self.refusal

        def fade() -> None:
            if shiboken6.isValid(item) and shiboken6.isValid(self) and item.scene() is self:
                self.removeItem(item)

        QTimer.singleShot(3500, fade)

    def _zoom(self) -> float:
        views = self.views()
        return abs(views[0].transform().m11()) or 1.0 if views else 1.0

    def refusal_rect(self) -> QRectF:
        """The part of the scene the refusal note covers (it is drawn at screen size, at any zoom)."""
        if self.refusal is None:
            return QRectF()
        zoom = self._zoom()
        box = self.refusal.boundingRect()
        return QRectF(self.refusal.pos() + box.topLeft() / zoom, box.size() / zoom)

    def _clear_spot(self, at: QPointF, box: QRectF, zoom: float) -> QPointF:
        """Where a note drawn at screen size (``box``, in pixels) next to ``at`` covers no node: just
        above the pointer, else the nearest clear spot above or below it (a refused wire ends on a
        port, inside a crowd). Returns the note's position."""
        bodies = [item.sceneBoundingRect() for item in self.nodes.values()]
        width, height, pixel = box.width() / zoom, box.height() / zoom, 1.0 / zoom
        x = at.x() + 12 * pixel
        above, below = at.y() - height - 6 * pixel, at.y() + 16 * pixel
        for step in range(0, 200):
            for y in (above - step * 10 * pixel, below + step * 10 * pixel):
                if not any(QRectF(x, y, width, height).intersects(body) for body in bodies):
                    return QPointF(x, y) - box.topLeft() / zoom
        return QPointF(x, above) - box.topLeft() / zoom

    # ---- selection ---------------------------------------------------------------------------
    def selected_nodes(self) -> list[str]:
        return sorted(i.node_id for i in self.selectedItems() if isinstance(i, NodeItem))

    def selected_edges(self) -> list[Edge]:
        return [i.edge for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def select_nodes(self, ids: list[str]) -> None:
        self.clearSelection()
        for node_id in ids:
            if node_id in self.nodes:
                self.nodes[node_id].setSelected(True)

    def items_rect(self) -> QRectF:
        rect = QRectF()
        for item in self.nodes.values():
            rect = rect.united(item.sceneBoundingRect())
        return rect.adjusted(-60, -60, 60, 60) if not rect.isNull() else QRectF(-200, -150, 400, 300)

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        """The grid: minor lines every GRID, major every fifth; as the view zooms out, a spacing is
        drawn only while its lines stay at least MIN_GRID_PIXELS apart on screen (then the next
        coarser one, five times wider, takes over), so a framed 500-node graph is not 10,000 lines."""
        super().drawBackground(painter, rect)
        from PySide6.QtCore import QLineF

        scale = abs(painter.worldTransform().m11()) or 1.0
        step = theme.GRID
        while step * scale < MIN_GRID_PIXELS:
            step *= 5
        left, top = math.floor(rect.left() / step) * step, math.floor(rect.top() / step) * step
        lines_minor, lines_major = [], []
        x = left
        while x < rect.right():
            (lines_major if round(x / step) % 5 == 0 else lines_minor).append(QLineF(x, rect.top(), x, rect.bottom()))
            x += step
        y = top
        while y < rect.bottom():
            (lines_major if round(y / step) % 5 == 0 else lines_minor).append(QLineF(rect.left(), y, rect.right(), y))
            y += step
        minor_pen, major_pen = QPen(theme.GRID_MINOR, 0), QPen(theme.GRID_MAJOR, 0)  # 0: one pixel wide
        painter.setPen(minor_pen)
        painter.drawLines(lines_minor)
        painter.setPen(major_pen)
        painter.drawLines(lines_major)
