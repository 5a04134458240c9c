"""Training from the studio: the panel (data source, settings, Start / Stop, progress), the worker
thread that runs the engine, and the wiring to the plots and the runs table.

The worker runs ``studio.train.engine.Trainer`` on a frozen copy of the graph, so editing goes on
while it trains. It sends the engine's plain records to the GUI thread by a signal; nothing on the
worker touches a widget. Stop sets a ``threading.Event`` straight from the GUI thread (a queued call
into the busy worker would never run). torch is imported by the worker, not before the window shows;
the first run warms torch up, then the GUI thread freezes the garbage collector's long-lived objects,
which removes the 100-200 ms collections that otherwise stall the window. While the worker runs,
garbage is collected on the GUI thread only (studio.gui.garbage says why).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from PySide6.QtCore import QThread, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.text import status_line
from studio.gui.garbage import freeze_long_lived_objects, gui_garbage_collection
from studio.metrics import MIN_DATES, sample_size

_warmed = threading.Event()


def warm_up() -> bool:
    """Load torch and take one optimiser step on a tiny model (the first step imports hundreds of
    modules). True the first time; the caller then has the GUI thread freeze what is alive."""
    if _warmed.is_set():
        return False
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    optimiser = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 3)).sum().backward()
    optimiser.step()
    _warmed.set()
    return True


class TrainingWorker(QThread):
    record = Signal(object)
    warmed = Signal()

    def __init__(self, graph, source, config, out_dir: Path, parent=None) -> None:
        super().__init__(parent)
        self.graph, self.source, self.config, self.out_dir = graph.copy(), source, config, out_dir
        self.cancel = threading.Event()

    def run(self) -> None:
        try:
            if warm_up():
                self.warmed.emit()
            from studio.train.engine import Trainer

            trainer = Trainer(self.graph, self.source, self.config, out_dir=self.out_dir)
            for record in trainer.run(self.cancel):
                self.record.emit(record)
        except Exception as exc:  # every failure ends as a record the panel shows
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.record.emit({"kind": "done", "status": "failed", "message": text, "best_epoch": 0,
                              "metrics": None, "run_dir": None})

    def stop(self) -> None:
        self.cancel.set()  # read by the training loop after each batch


class ImportDialog(QDialog):
    """A file or folder of bars, and how to read it (columns, session)."""

    FIELDS = ("symbol", "datetime", "date", "time", "close", "volume", "turnover")

    def __init__(self, parent=None, settings: dict | None = None, path: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Import bars")
        settings = settings or {}
        form = QFormLayout(self)
        row = QHBoxLayout()
        self.path = QLineEdit(path)
        browse_file, browse_dir = QPushButton("File…"), QPushButton("Folder…")
        browse_file.clicked.connect(self._pick_file)
        browse_dir.clicked.connect(self._pick_folder)
        row.addWidget(self.path)
        row.addWidget(browse_file)
        row.addWidget(browse_dir)
        form.addRow("bars", row)
        self.columns = {}
        for name in self.FIELDS:
            edit = QLineEdit(settings.get(name) or "")
            edit.setPlaceholderText("found by its usual name")
            form.addRow(f"{name} column", edit)
            self.columns[name] = edit
        self.session = QLineEdit(settings.get("session") or "")
        self.session.setPlaceholderText("e.g. 09:30-16:00 (empty: inferred)")
        form.addRow("session", self.session)
        self.stamp = QComboBox()
        self.stamp.addItems(["auto", "start", "end"])
        self.stamp.setCurrentText(settings.get("bar_stamp", "auto"))
        form.addRow("bar time stamps", self.stamp)
        self.report = QLabel("")
        self.report.setWordWrap(True)
        inspect = QPushButton("Inspect")
        inspect.clicked.connect(self.inspect)
        form.addRow(inspect, self.report)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Bars file", "", "Bars (*.csv *.csv.gz *.parquet *.pq)")
        if path:
            self.path.setText(path)

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of bars")
        if path:
            self.path.setText(path)

    def settings(self) -> dict:
        out = {name: edit.text().strip() for name, edit in self.columns.items() if edit.text().strip()}
        if self.session.text().strip():
            out["session"] = self.session.text().strip()
        if self.stamp.currentText() != "auto":
            out["bar_stamp"] = self.stamp.currentText()
        return out

    def inspect(self) -> None:
        from studio.data.importer import ImportConfig, load_bars
        from studio.data.panel import DataError

        try:
            panel = load_bars(self.path.text(), ImportConfig(**self.settings()))
        except (DataError, TypeError, ValueError) as exc:
            self.report.setText(f"<span style='color:#e05252'>{exc}</span>")
            return
        d = panel.describe()
        self.report.setText(f"{d['symbols']} symbols, {d['dates']} dates ({d['first_date']} .. {d['last_date']}), "
                            f"{d['bars_per_day']} bars per day, {d['stocks_per_day_min']}-{d['stocks_per_day_max']} "
                            "stocks a day")


class TrainingPanel(QWidget):
    """Data source, settings, Start / Stop and progress of one run at a time."""

    record = Signal(object)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.worker: TrainingWorker | None = None
        self.import_path, self.import_settings = "", {}
        self.runs_dir = Path(os.environ.get("STUDIO_RUNS_DIR", "runs"))
        layout = QVBoxLayout(self)
        # the run's controls first: Start, Stop, progress and the last word stay in view above the settings
        run_controls = QVBoxLayout()
        layout.addLayout(run_controls)
        buttons = QHBoxLayout()
        self.start_button, self.stop_button = QPushButton("Start"), QPushButton("Stop")
        # a colour when they can be pressed, the palette's faded grey when not
        self.start_button.setStyleSheet("QPushButton:enabled { background: #2f6b3a; color: white; }")
        self.stop_button.setStyleSheet("QPushButton:enabled { background: #8a3232; color: white; }")
        self.start_button.setToolTip("Train the current tab's graph (Ctrl+R)")
        self.stop_button.setToolTip("Stop after the current batch; the best epoch is kept (Ctrl+.)")
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(lambda: self.stop())
        self.stop_button.setEnabled(False)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        run_controls.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        run_controls.addWidget(self.progress)
        self.status = QLabel("Ready to train the graph in the current tab.")
        self.status.setWordWrap(True)
        run_controls.addWidget(self.status)

        data = QGroupBox("Data")
        data_form = QFormLayout(data)
        self.source = QComboBox()
        self.source.addItems(["Synthetic market", "Imported bars…"])
        self.source.activated.connect(self._source_chosen)
        data_form.addRow(self.source)
        self.stocks, self.days, self.data_seed = QSpinBox(), QSpinBox(), QSpinBox()
        self.stocks.setRange(20, 5000)
        self.stocks.setValue(240)
        self.days.setRange(60, 5000)
        self.days.setValue(400)
        self.data_seed.setRange(0, 10**6)
        data_form.addRow("stocks", self.stocks)
        data_form.addRow("days", self.days)
        data_form.addRow("market seed", self.data_seed)
        self.import_label = QLabel("")
        self.import_label.setWordWrap(True)
        data_form.addRow(self.import_label)
        layout.addWidget(data)

        train = QGroupBox("Training")
        form = QFormLayout(train)
        self.epochs, self.batch, self.patience, self.seed = QSpinBox(), QSpinBox(), QSpinBox(), QSpinBox()
        self.epochs.setRange(1, 10_000)
        self.epochs.setValue(20)
        self.batch.setRange(1, 256)
        self.batch.setValue(4)
        self.patience.setRange(0, 1000)
        self.patience.setValue(5)
        self.seed.setRange(0, 10**6)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(2e-3)
        self.loss, self.optimizer, self.device = QComboBox(), QComboBox(), QComboBox()
        self.loss.addItems(["ic", "mse", "rank"])
        self.optimizer.addItems(["adam", "adamw", "sgd"])
        self.device.addItems(["auto", "cpu", "cuda"])
        for label, widget, tip in (
            ("epochs", self.epochs, "passes over the training dates"),
            ("dates per batch", self.batch, "whole cross-sections of this many dates per step"),
            ("learning rate", self.lr, ""),
            ("loss", self.loss, "ic: minus the per-date correlation; mse; rank: pairwise ranking"),
            ("optimiser", self.optimizer, ""),
            ("early stopping", self.patience, "epochs without a better validation IC (0: off)"),
            ("seed", self.seed, "initial weights, shuffling and dropout"),
            ("device", self.device, "auto uses a GPU when there is one"),
        ):
            widget.setToolTip(tip)
            form.addRow(label, widget)
        layout.addWidget(train)

        layout.addStretch(1)
        self._steps_done = 0

    # ---- settings ----------------------------------------------------------------------------
    def _source_chosen(self, index: int) -> None:
        if index == 1:
            dialog = ImportDialog(self, self.import_settings, self.import_path)
            if dialog.exec():
                self.import_path, self.import_settings = dialog.path.text(), dialog.settings()
            if not self.import_path:
                self.source.setCurrentIndex(0)
        imported = self.source.currentIndex() == 1
        for widget in (self.stocks, self.days, self.data_seed):
            widget.setEnabled(not imported)
        self.import_label.setText(f"{self.import_path}" if imported else "")

    def source_spec(self):
        from studio.train.config import SourceSpec

        if self.source.currentIndex() == 1 and self.import_path:
            return SourceSpec("import", path=self.import_path, importer=dict(self.import_settings))
        return SourceSpec("synthetic", synthetic={"stocks": self.stocks.value(), "days": self.days.value(),
                                                  "seed": self.data_seed.value()})

    def train_config(self):
        from studio.train.config import TrainConfig

        return TrainConfig(epochs=self.epochs.value(), dates_per_batch=self.batch.value(), lr=self.lr.value(),
                           loss=self.loss.currentText(), optimizer=self.optimizer.currentText(),
                           patience=self.patience.value(), seed=self.seed.value(), device=self.device.currentText(),
                           threads=1)  # one thread: the window keeps the other core

    # ---- runs --------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def start(self) -> bool:
        tab = self.window.current_tab()
        if tab is None or self.is_running():
            return False
        document = tab.document
        reason = None
        if not document.validation.ok:
            reason = f"Cannot train: {document.validation.errors[0]}"
        elif document.graph.kind != "model":
            reason = "Cannot train a block on its own: open a model."
        if reason is not None:
            self.status.setText(reason)
            # where the user looks: the status bar, and the training panel brought to the front
            self.window.statusBar().showMessage(reason, 15000)
            dock = getattr(self.window, "training_dock", None)
            if dock is not None:
                dock.show()
                dock.raise_()
            return False
        self.worker = TrainingWorker(document.graph, self.source_spec(), self.train_config(), self.runs_dir, self)
        self.worker.record.connect(self._on_record)
        self.worker.finished.connect(self._finished)
        self.worker.warmed.connect(self._freeze_after_warm_up)  # a method: queued to the GUI thread
        gui_garbage_collection().hold(self.worker)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.progress.setValue(0)
        self._steps_done = 0
        self.graph_name = document.graph.name or document.title
        self.status.setText(f"Preparing {self.graph_name}…" + ("" if _warmed.is_set() else " (loading torch)"))
        self.started_at = time.monotonic()
        self.worker.start()
        return True

    def _freeze_after_warm_up(self) -> None:
        freeze_long_lived_objects()

    def stop(self, wait: bool = False) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.status.setText("Stopping after the current batch…")
            if wait:
                self.worker.wait(30_000)

    def _on_record(self, record: dict) -> None:
        kind = record["kind"]
        if kind == "start":
            self.total_steps = record["steps_per_epoch"] * record["epochs"]
            oracle = record["oracle_ic"].get("test")
            self.status.setText(f"Training {self.graph_name}: {record['parameters']:,} parameters on "
                                f"{record['device']}" + (f"; oracle test IC {oracle:.3f}" if oracle else ""))
        elif kind == "step":
            self._steps_done += 1
            self.progress.setValue(int(1000 * min(1.0, self._steps_done / max(self.total_steps, 1))))
            left = time.strftime("%M:%S" if record["eta"] < 3600 else "%H:%M:%S", time.gmtime(record["eta"]))
            self.progress.setFormat(f"epoch {record['epoch']} · loss {record['loss']:+.4f} · {left} left")
        elif kind == "epoch":
            ic = record["valid"]["ic"]
            self.status.setText(f"Epoch {record['epoch']}/{record['epochs']}: validation IC "
                                + (f"{ic:.4f}" if ic is not None else "-") + f" (best epoch {record['best_epoch']})")
        elif kind == "done":
            self.progress.setFormat(record["status"])
            if record["status"] in ("finished", "early_stopped"):
                self.progress.setValue(1000)
            test = ((record.get("metrics") or {}).get("splits") or {}).get("test") or {}
            figures = f" Test IC {test['ic']:.4f}, RankIC {test['rank_ic']:.4f}." if test.get("ic") is not None else ""
            dates, ic_t, few = sample_size(test)
            if dates is not None:
                figures += f" IC t {ic_t:.2f} over {dates} test dates" + (
                    f" (fewer than {MIN_DATES}: the figures mean little)." if few else ".")
            self.status.setText(f"{status_line(record['status'], record['message'])}.{figures}")
        self.record.emit(record)

    def _finished(self) -> None:
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)


def install_training(window) -> None:
    """The training panel, the plots, the runs table and the queue as docks of the main window."""
    from PySide6.QtCore import Qt

    from studio.gui.plots import PlotsWidget
    from studio.gui.queue import QueueWidget
    from studio.gui.runs import RunsWidget

    panel = TrainingPanel(window)
    plots = PlotsWidget(window)
    runs = RunsWidget(panel.runs_dir, window)
    queue = QueueWidget(window, panel)
    queue.trialDone.connect(runs.refresh)  # queued runs land in the runs table as they finish
    panel.record.connect(plots.add_record)
    panel.record.connect(lambda record: record["kind"] == "done" and runs.refresh())
    runs.openGraph.connect(window.open_file)

    def highlight(graph_file: str, node_ids: list) -> None:
        tab = window.open_file(graph_file)
        if tab is not None:
            tab.scene.select_nodes(node_ids)
            window.statusBar().showMessage(f"{len(node_ids)} changed node(s) selected: {', '.join(node_ids)}", 10000)

    runs.highlightNodes.connect(highlight)
    window.training, window.plots, window.runs, window.queue = panel, plots, runs, queue
    docks = []
    scroll = QScrollArea()  # a short window scrolls the panel instead of clipping it
    scroll.setWidgetResizable(True)
    scroll.setWidget(panel)
    for title, widget, area in (("Training", scroll, Qt.DockWidgetArea.RightDockWidgetArea),
                                ("Plots", plots, Qt.DockWidgetArea.BottomDockWidgetArea),
                                ("Runs", runs, Qt.DockWidgetArea.BottomDockWidgetArea),
                                ("Queue", queue, Qt.DockWidgetArea.BottomDockWidgetArea)):
        dock = QDockWidget(title, window)
        dock.setObjectName(title)
        dock.setWidget(widget)
        window.addDockWidget(area, dock)
        window.view_menu.addAction(dock.toggleViewAction())
        docks.append(dock)
    window.tabifyDockWidget(docks[1], docks[2])
    window.tabifyDockWidget(docks[2], docks[3])
    docks[1].raise_()
    # the inspector above the training panel, both visible: watch a run and edit at once
    window.splitDockWidget(window.inspector_dock, docks[0], Qt.Orientation.Vertical)
    window.training_dock, window.plots_dock, window.runs_dock, window.queue_dock = docks
    plots.setMinimumHeight(160)
    start = QAction("&Start Training", window)
    start.setShortcut(QKeySequence("Ctrl+R"))
    start.triggered.connect(lambda: panel.start() and docks[0].raise_())
    stop = QAction("S&top Training", window)
    stop.setShortcut(QKeySequence("Ctrl+."))
    stop.triggered.connect(lambda: panel.stop())
    for action in (start, stop):
        window.train_menu.addAction(action)
        window.addAction(action)
    QTimer.singleShot(0, runs.refresh)
