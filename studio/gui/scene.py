"""The node-graph canvas: nodes with ports, curved wires labelled with their tensor shapes.

The scene draws one graph (a file's, or one of its blocks') from the document and the document's
validation, and turns mouse gestures into document edits: moving nodes, dragging wires from port to
port (a wire that cannot fit is refused with the reason), deleting. It holds no graph state of its
own: after every change ``sync()`` brings the items in line with the document.
"""

from __future__ import annotations

import math

import networkx as nx
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

from studio.core.document import Edge, Endpoint, Graph, block_reference
from studio.core.node_type import Port
from studio.core.shapes import KIND_NAMES
from studio.core.validation import format_count
from studio.gui import theme
from studio.gui.document import EditorDocument

TITLE_FONT = QFont()
TITLE_FONT.setBold(True)
TITLE_FONT.setPointSizeF(9.5)
SMALL_FONT = QFont()
SMALL_FONT.setPointSizeF(8.0)


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

    # ---- content -----------------------------------------------------------------------------
    def refresh(self, graph: Graph, doc: EditorDocument, scope: str | None) -> None:
        node = graph.nodes[self.node_id]
        v = doc.validation_of(scope)
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
        problems = v.problems_of(self.node_id) if self.node_id in graph.nodes else []
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
        return QRectF(-4, -4, theme.NODE_WIDTH + 8, self.height + 8)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(0, 0, theme.NODE_WIDTH, self.height)
        severity_colour = {"error": theme.ERROR, "warning": theme.WARNING}.get(self.severity, QColor("#15171a"))
        border = theme.SELECTED if self.isSelected() else severity_colour
        painter.setPen(QPen(border, 2.5 if self.isSelected() or self.severity else 1.0))
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
        self.setZValue(-1)
        self.setAcceptHoverEvents(True)

    def set_ends(self, a: QPointF, b: QPointF) -> None:
        self.setPath(wire_path(a, b))
        self.mid = self.path().pointAtPercent(0.5)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = theme.KIND_COLOURS.get(self.kind, theme.UNKNOWN_KIND)
        painter.setPen(QPen(theme.SELECTED if self.isSelected() else colour, 3.0 if self.isSelected() else 2.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path())
        if self.label:
            painter.setFont(SMALL_FONT)
            metrics = QFontMetricsF(SMALL_FONT)
            w = metrics.horizontalAdvance(self.label) + 10
            box = QRectF(self.mid.x() - w / 2, self.mid.y() - 9, w, 18)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(theme.LABEL_BACKGROUND)
            painter.drawRoundedRect(box, 4, 4)
            painter.setPen(colour.lighter(130))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.label)

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-60, -12, 60, 12)

    def shape(self) -> QPainterPath:
        stroker = QPainterPath(self.path())
        from PySide6.QtGui import QPainterPathStroker

        s = QPainterPathStroker()
        s.setWidth(10)
        return s.createStroke(stroker)


def wire_path(a: QPointF, b: QPointF) -> QPainterPath:
    dx = max(60.0, abs(b.x() - a.x()) * 0.5)
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    return path


class GraphScene(QGraphicsScene):
    #: a one-line message for the status bar (refused wires, hints)
    message = Signal(str)
    nodeDoubleClicked = Signal(str)

    def __init__(self, document: EditorDocument, scope: str | None = None, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.scope = scope
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[Edge, EdgeItem] = {}
        self.dragging = False
        self.wire_from: PortItem | None = None
        self.wire_preview: QGraphicsPathItem | None = None
        self.refusal: QGraphicsSimpleTextItem | None = None
        self.setBackgroundBrush(theme.BACKGROUND)
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        document.changed.connect(self.sync)
        self.sync()

    @property
    def graph(self) -> Graph | None:
        return self.document.graph_of(self.scope)

    # ---- model -> items ----------------------------------------------------------------------
    def sync(self) -> None:
        graph = self.graph
        if graph is None:
            return
        for node_id in list(self.nodes):
            if node_id not in graph.nodes:
                self.removeItem(self.nodes.pop(node_id))
        for node_id in graph.nodes:
            item = self.nodes.get(node_id)
            if item is None:
                item = self.nodes[node_id] = NodeItem(self, node_id)
                self.addItem(item)
            item.refresh(graph, self.document, self.scope)
        current = set(graph.edges)
        for edge in list(self.edges):
            if edge not in current:
                self.removeItem(self.edges.pop(edge))
        v = self.document.validation_of(self.scope)
        for edge in graph.edges:
            item = self.edges.get(edge)
            if item is None:
                item = self.edges[edge] = EdgeItem(edge)
                self.addItem(item)
            shape = v.shape(edge.src)
            item.label = str(shape) if shape is not None else ""
            item.kind = shape.kind if shape is not None else None
            item.setToolTip(f"{edge}\n{shape.describe()}" if shape is not None else f"{edge}\n(shape unknown)")
            self._place(item)
        self.update()

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
        for edge, edge_item in self.edges.items():
            if item.node_id in (edge.src.node, edge.dst.node):
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
        """Write the positions of moved nodes to the document, snapped to the grid (one undo step)."""
        graph = self.graph
        if graph is None:
            return
        moved = {}
        for node_id, item in self.nodes.items():
            if node_id in graph.nodes:
                x, y = snap(item.pos().x()), snap(item.pos().y())
                if (x, y) != tuple(graph.nodes[node_id].pos):
                    moved[node_id] = (x, y)
        if not moved:
            return

        def move(g: Graph) -> None:
            target = g if self.scope is None else g.blocks[self.scope].graph
            for node_id, pos in moved.items():
                target.nodes[node_id].pos = pos

        self.document.edit(f"Move {len(moved)} node{'s' if len(moved) > 1 else ''}", move)

    # ---- wiring ------------------------------------------------------------------------------
    def start_wire(self, port: PortItem) -> None:
        graph = self.graph
        if graph is None:
            return
        if not port.output:
            # dragging from a connected input picks its wire up
            existing = next((e for e in graph.edges if e.dst == port.endpoint), None)
            if existing is not None:
                self.document.edit("Disconnect", lambda g: self._target(g).disconnect(existing))
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
        if start is None or target is None or target is start:
            return
        if start.output == target.output:
            self.refuse(at, "a wire joins an output to an input")
            return
        src, dst = (start, target) if start.output else (target, start)
        self.connect_ports(src.endpoint, dst.endpoint, at)

    def _target(self, graph: Graph) -> Graph:
        return graph if self.scope is None else graph.blocks[self.scope].graph

    def fit_problem(self, src: Endpoint, dst: Endpoint) -> str | None:
        """Why a wire from ``src`` to ``dst`` cannot be made, or None."""
        graph = self.graph
        assert graph is not None
        if src.node == dst.node:
            return f"{dst.node} cannot feed itself"
        g = nx.DiGraph((e.src.node, e.dst.node) for e in graph.edges if e.dst != dst)
        if g.has_node(dst.node) and g.has_node(src.node) and nx.has_path(g, dst.node, src.node):
            path = nx.shortest_path(g, dst.node, src.node)
            return f"a wire {src} -> {dst} would make a cycle: {' -> '.join([src.node, *path])}"
        v = self.document.validation_of(self.scope)
        shape = v.shape(src)
        port = next((p for p in v.in_ports.get(dst.node, ()) if p.name == dst.port), None)
        if shape is not None and port is not None and not port.accepts(shape.kind):
            kind = KIND_NAMES[shape.kind].split(" (")[0]
            return f"{dst}: expects {port.describe_kinds()}, gets {kind} {shape} from {src}"
        return None

    def connect_ports(self, src: Endpoint, dst: Endpoint, at: QPointF | None = None) -> bool:
        problem = self.fit_problem(src, dst)
        if problem:
            self.refuse(at, problem)
            return False

        def wire(g: Graph) -> None:
            target = self._target(g)
            for e in [e for e in target.edges if e.dst == dst]:  # a new wire replaces the old one
                target.disconnect(e)
            target.connect(src, dst)

        self.document.edit(f"Connect {src} -> {dst}", wire)
        return True

    def refuse(self, at: QPointF | None, reason: str) -> None:
        self.message.emit(f"Refused: {reason}")
        if at is None:
            return
        if self.refusal is not None and self.refusal.scene() is self:
            self.removeItem(self.refusal)
        self.refusal = QGraphicsSimpleTextItem(reason)
        self.refusal.setBrush(theme.ERROR.lighter(140))
        self.refusal.setPos(at + QPointF(12, -24))
        self.refusal.setZValue(10)
        self.addItem(self.refusal)
        item = self.refusal

        def fade() -> None:
            if shiboken6.isValid(item) and shiboken6.isValid(self) and item.scene() is self:
                self.removeItem(item)

        QTimer.singleShot(3500, fade)

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
        super().drawBackground(painter, rect)
        step = theme.GRID
        left, top = math.floor(rect.left() / step) * step, math.floor(rect.top() / step) * step
        lines_minor, lines_major = [], []
        from PySide6.QtCore import QLineF

        x = left
        while x < rect.right():
            (lines_major if round(x / step) % 5 == 0 else lines_minor).append(QLineF(x, rect.top(), x, rect.bottom()))
            x += step
        y = top
        while y < rect.bottom():
            (lines_major if round(y / step) % 5 == 0 else lines_minor).append(QLineF(rect.left(), y, rect.right(), y))
            y += step
        painter.setPen(QPen(theme.GRID_MINOR, 1))
        painter.drawLines(lines_minor)
        painter.setPen(QPen(theme.GRID_MAJOR, 1))
        painter.drawLines(lines_major)
