"""The studio's responsiveness: the longest stall of the GUI thread while a run trains, the time to
open and draw a 500-node graph, and the time from process start to the window on screen.

- max_stall_ms: a 10 ms timer ticks on the GUI thread while the default graph trains on the
  synthetic market in the worker thread (after the first training step, i.e. after torch's warm-up);
  the figure is the longest gap between ticks minus the 10 ms period, with a baseline of the same
  measurement taken with no run, printed beside it.
- open_500_nodes_s: open a generated 500-node graph file in the window and paint the view once.
- start_to_window_s: a fresh process that imports the studio and shows the main window on the default
  graph (median of 3); torch must not be loaded by then.
- edit_to_redraw_ms: on the 500-node graph (fitted in view, so every node is on screen), the time from an
  edit to the end of the view's next paint (Qt repaints what changed): a parameter set in the
  inspector (kernel_size of a convolution: validation runs again) and a node dragged to a new place
  (the scene writes the move); the median of 15 of each, the slower of the two. Beside it: a full
  repaint of the framed view with no edit (repaint_ms).
Runs offscreen (QT_QPA_PLATFORM=offscreen) unless a display is set. The last line is JSON:
{"max_stall_ms": ., "open_500_nodes_s": ., "start_to_window_s": ., "edit_to_redraw_ms": .}
(goals <= 50, <= 1, <= 2.5, <= 30).

    python bench/gui.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

CHILD = """
import sys, time
t0 = time.perf_counter()
from studio.gui.app import application, make_window
from pathlib import Path
app = application()
window = make_window(sys.argv[1], Path(sys.argv[2]))
window.show()
app.processEvents()
print("shown", time.perf_counter() - t0, "torch" in sys.modules, flush=True)
"""


def start_to_window(runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT / "graphs" / "default.json"),
                                  str(ROOT / "graphs")], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        line = child.stdout.readline().split()
        elapsed = time.perf_counter() - start
        child.kill()
        child.wait()
        if not line or line[0] != "shown":
            raise RuntimeError("the window did not show")
        if line[2] == "True":
            raise RuntimeError("torch was imported before the window showed")
        times.append(elapsed)
        print(f"start to window: {elapsed:.2f} s (in-process part {float(line[1]):.2f} s)")
    return statistics.median(times)


def big_graph(path: Path, nodes: int = 500) -> None:
    """A long model with parallel branches: conv / relu pairs in series, every tenth a fan-out
    merged by Add; then a GRU head."""
    from studio.core.document import Graph, InputSpec
    from studio.core.graph_file import save_graph
    from studio.core.layout import auto_layout
    from studio.nodes import default_registry

    reg = default_registry()
    g = Graph(name="big", input=InputSpec(["close", "volume", "turnover"], 10, 24))

    def add(type_id, **params):
        p = reg[type_id].default_params()
        p.update(params)
        return g.add_node(type_id, 1, p).id

    last = add("input") + ".bars"
    first = add("linear", out_features=16)
    g.connect(last, first + ".x")
    last = first + ".y"
    while len(g.nodes) < nodes - 4:
        a = add("conv1d", out_channels=16, kernel_size=3, padding="same")
        b = add("relu")
        c = add("conv1d", out_channels=16, kernel_size=5, padding="same")
        m = add("add")
        g.connect(last, a + ".x")
        g.connect(a + ".y", b + ".x")
        g.connect(b + ".y", m + ".x1")
        g.connect(last, c + ".x")
        g.connect(c + ".y", m + ".x2")
        last = m + ".y"
    r = add("reduce_time", mode="mean")
    h = add("linear", out_features=1)
    o = add("output")
    g.connect(last, r + ".x")
    g.connect(r + ".y", h + ".x")
    g.connect(h + ".y", o + ".x")
    auto_layout(g)
    save_graph(g, path)


def show_every_node(view) -> None:
    """Fit the whole graph in view at any zoom (F stops at a readable zoom and leaves the rest to the
    minimap; the figures here are for every node on screen, the most there is to paint)."""
    from PySide6.QtCore import Qt

    view.resetTransform()
    view.fitInView(view.scene().items_rect(), Qt.AspectRatioMode.KeepAspectRatio)
    view.keep_framed = False
    view.scene().set_detail(view.transform().m11())


def open_500(window, app, path: Path) -> float:
    start = time.perf_counter()
    tab = window.open_file(path)
    app.processEvents()
    show_every_node(tab.view)
    tab.view.viewport().repaint()
    app.processEvents()
    elapsed = time.perf_counter() - start
    print(f"open and draw {len(tab.graph.nodes)} nodes, {len(tab.graph.edges)} wires: {elapsed:.3f} s "
          f"({'valid' if tab.document.validation.ok else 'invalid'})")
    return elapsed


def edit_to_redraw(window, app, rounds: int = 15) -> dict[str, float]:
    """Median milliseconds from an edit to the repainted view, for a parameter edit and a move."""
    from PySide6.QtCore import QEvent, QObject, QPointF

    tab = window.current_tab()
    view = tab.view
    conv = sorted(n for n, node in tab.graph.nodes.items() if node.type == "conv1d")[len(tab.graph.nodes) // 8]
    tab.scene.select_nodes([conv])
    app.processEvents()

    class PaintWatch(QObject):
        """Counts the viewport's paint events: the redraw the user sees (Qt repaints what changed)."""

        def __init__(self) -> None:
            super().__init__()
            self.paints = 0

        def eventFilter(self, obj, event) -> bool:
            if event.type() == QEvent.Type.Paint:
                self.paints += 1
            return False

    watch = PaintWatch()
    view.viewport().installEventFilter(watch)

    def timed(action) -> float:
        """From the edit to the end of the first paint of the view after it."""
        app.processEvents()
        start = time.perf_counter()
        seen = watch.paints
        action()
        deadline = start + 2.0
        while watch.paints == seen and time.perf_counter() < deadline:
            app.processEvents()
        return (time.perf_counter() - start) * 1000

    def full_repaint() -> float:
        start = time.perf_counter()
        view.viewport().repaint()
        return (time.perf_counter() - start) * 1000

    repaint = statistics.median(full_repaint() for _ in range(rounds))
    params = [timed(lambda k=k: window.inspector._commit("kernel_size", 3 + 2 * (k % 2), None))
              for k in range(rounds)]
    item = tab.scene.nodes[conv]

    def move(k: int) -> None:
        item.setPos(item.pos() + QPointF(40 if k % 2 else -40, 0))
        tab.scene.commit_moves()

    moves = [timed(lambda k=k: move(k)) for k in range(rounds)]
    return {"param": statistics.median(params), "move": statistics.median(moves), "repaint": repaint}


def measure_stall(app, seconds: float, running=None) -> float:
    """Longest gap beyond the timer period between 10 ms ticks on the GUI thread."""
    from PySide6.QtCore import QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and (running is None or running()):
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    return max(0.0, (max(gaps) if gaps else 0.0) - 0.010) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="training time measured for stalls")
    args = parser.parse_args(argv)
    from PySide6.QtCore import QSettings

    from studio.gui.app import application
    from studio.gui.main_window import MainWindow
    from studio.gui.recovery import Recovery
    from studio.nodes import default_registry

    startup = start_to_window()
    app = application()
    with tempfile.TemporaryDirectory(prefix="studio-gui-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["STUDIO_RUNS_DIR"] = str(tmp / "runs")
        window = MainWindow(default_registry(), ROOT / "graphs",
                            settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat),
                            recovery=Recovery(tmp / "recovery"))
        window.resize(1500, 920)
        window.show()
        app.processEvents()
        big_graph(tmp / "big.json")
        opening = open_500(window, app, tmp / "big.json")
        edits = edit_to_redraw(window, app)
        print(f"edit to redraw on 500 nodes: parameter {edits['param']:.1f} ms, move {edits['move']:.1f} ms "
              f"(a repaint alone: {edits['repaint']:.1f} ms)")
        window.open_file(ROOT / "graphs" / "default.json")
        window.finish_setup()
        idle = measure_stall(app, 2.0)
        panel = window.training
        panel.epochs.setValue(100)
        panel.patience.setValue(0)
        steps: list[dict] = []
        panel.record.connect(lambda r: r["kind"] == "step" and steps.append(r))
        panel.start()
        while not steps:  # torch loads and warms up first
            app.processEvents()
            time.sleep(0.01)
        stall = measure_stall(app, args.seconds, panel.is_running)
        print(f"longest GUI stall while training ({args.seconds:.0f} s, {len(steps)} steps): {stall:.1f} ms "
              f"(idle baseline {idle:.1f} ms)")
        panel.stop(wait=True)
        app.processEvents()
        for document in window.documents:
            document.undo_stack.setClean()
        window.close()
    print(json.dumps({"max_stall_ms": round(stall, 1), "open_500_nodes_s": round(opening, 3),
                      "start_to_window_s": round(startup, 3),
                      "edit_to_redraw_ms": round(max(edits["param"], edits["move"]), 1),
                      "edit_param_ms": round(edits["param"], 1), "edit_move_ms": round(edits["move"], 1),
                      "repaint_ms": round(edits["repaint"], 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
