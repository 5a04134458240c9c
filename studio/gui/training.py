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

import contextlib
import os
import threading
import time
from pathlib import Path

import shiboken6
from PySide6.QtCore import Qt, QThread, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.edits import set_input_window
from studio.core.text import printable, status_line
from studio.core.validation import validate
from studio.data.panel import missing_features
from studio.gui.garbage import freeze_long_lived_objects, gui_garbage_collection
from studio.gui.panel_text import panel_report, panel_summary
from studio.gui.qlib_form import QlibForm
from studio.metrics import MIN_DATES, sample_size
from studio.train.config import LOSSES, OPTIMIZERS, TrainConfig
from studio.train.data_sources import DATA_SOURCES

_warmed = threading.Event()


def divisors(n: int) -> list[int]:
    """The divisors of ``n``, largest first: the bars per day ``n`` bars a day can be resampled to."""
    return [d for d in range(n, 0, -1) if n % d == 0]


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
            if self.cancel.is_set():  # stopped (or the studio quit) while torch loaded
                self.record.emit({"kind": "done", "status": "stopped", "message": "stopped before the run started",
                                  "best_epoch": 0, "metrics": None, "run_dir": None})
                return
            from studio.train.engine import Trainer

            trainer = Trainer(self.graph, self.source, self.config, out_dir=self.out_dir)
            for record in trainer.run(self.cancel):
                self.record.emit(record)
        except Exception as exc:  # every failure ends as a record the panel shows
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.record.emit({"kind": "done", "status": "failed", "message": text, "best_epoch": 0,
                              "metrics": None, "run_dir": None})

    def stop(self) -> None:
        # read by the engine between batches and, in a long step or scoring pass, between its operations
        self.cancel.set()


class ImportDialog(QDialog):
    """A file or folder of bars, and how to read it (columns, session). Inspect reads it and shows
    which column feeds each field, what is derived, and the importer's notes and counts in full; OK
    reads it first when that has not been done, and stays open when the bars cannot be read."""

    #: the column fields the dialog maps (``returns``: for files without a price, the close is an index
    #: rebuilt from them)
    FIELDS = ("symbol", "datetime", "date", "time", "close", "volume", "turnover", "returns")

    def __init__(self, parent=None, settings: dict | None = None, path: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Import bars")
        settings = settings or {}
        #: panel.describe() of the bars as last inspected, and the settings it was read with
        self.described: dict | None = None
        self._described_for: tuple | None = None
        outer = QVBoxLayout(self)
        form = QFormLayout()
        outer.addLayout(form)
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
        # stamps that carry a zone (…Z, -04:00) are read in the exchange's: named here, or inferred
        self.timezone = QLineEdit(settings.get("timezone") or "")
        self.timezone.setPlaceholderText("e.g. America/New_York (empty: inferred for stamps with a zone)")
        form.addRow("time zone", self.timezone)
        inspect = QPushButton("Inspect")
        inspect.clicked.connect(self.inspect)
        self.summary = QLabel("Inspect reads the bars and shows what was found.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)  # names from files are text, never markup
        form.addRow(inspect, self.summary)
        # field <- column, one row per source; derived fields say how
        self.mapping = QTableWidget(0, 3)
        self.mapping.setHorizontalHeaderLabels(["field", "read from", "files"])
        self.mapping.verticalHeader().hide()
        self.mapping.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.mapping.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.mapping.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        row_height = self.fontMetrics().height() + 6
        self.mapping.verticalHeader().setDefaultSectionSize(row_height)
        # room for every field of a usual mapping (symbol, time stamp, OHLC, volume, turnover)
        self.mapping.setMinimumHeight(self.mapping.horizontalHeader().sizeHint().height() + 8 * row_height + 4)
        outer.addWidget(self.mapping, 2)
        # the notes and counts in full: every policy the importer applied and what it did
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.report.setPlaceholderText("the importer's notes and counts")
        self.report.setMinimumHeight(160)
        outer.addWidget(self.report, 3)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        outer.addWidget(buttons)
        self.resize(760, 720)

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
        if self.timezone.text().strip():
            out["timezone"] = self.timezone.text().strip()
        return out

    def _key(self) -> tuple:
        return self.path.text().strip(), tuple(sorted(self.settings().items()))

    def inspect(self) -> bool:
        """Read the bars; show the mapping, sizes, notes and counts (or why they cannot be read)."""
        from studio.core.text import error_line
        from studio.data.importer import ImportConfig, column_mapping
        from studio.data.load import load_bars
        from studio.data.panel import DataError

        self.described, self._described_for = None, None
        self.mapping.setRowCount(0)
        try:
            config = ImportConfig(**self.settings())
            mapping = column_mapping(self.path.text().strip(), config)
            panel = load_bars(self.path.text().strip(), config)
        except (DataError, TypeError, ValueError, OSError) as exc:
            self.summary.setText(f"Cannot read these bars: {error_line(exc)}")
            self.summary.setStyleSheet("color: #e05252")
            self.report.setPlainText(error_line(exc, limit=5000))  # in full where the label cuts it
            return False
        d = panel.describe()
        self.described, self._described_for = d, self._key()
        self.summary.setStyleSheet("")
        self.summary.setText(panel_summary(d))
        self.mapping.setRowCount(len(mapping))
        for r, (field_name, source, files) in enumerate(mapping):
            for c, text in enumerate((field_name, printable(source), str(files))):
                self.mapping.setItem(r, c, QTableWidgetItem(text))
        self.report.setPlainText(panel_report(d))
        return True

    def accept(self) -> None:
        stale = self.described is None or self._described_for != self._key()
        if stale and not self.inspect():
            return  # the reason shows above; nothing unreadable reaches the panel
        super().accept()


class SettingsForm:
    """A data source's settings as spin boxes (the form of its declaration): the synthetic market's
    stocks, days and seed, and any source declared without a form class of its own (SOURCE_FORMS).
    The rows stay in the data form whichever source is chosen; a source not chosen greys them."""

    def __init__(self, panel, source, rows: QFormLayout) -> None:
        self.source = source
        self.spins: dict[str, QSpinBox] = {}
        for setting in source.form:
            spin = QSpinBox()
            spin.setRange(setting.minimum, setting.maximum)
            spin.setValue(setting.default)
            rows.addRow(setting.label, spin)
            self.spins[setting.key] = spin

    def choose(self) -> bool:
        """Chosen in the data form's list: usable at once."""
        return True

    def show_chosen(self, chosen: bool) -> None:
        for spin in self.spins.values():
            spin.setEnabled(chosen)

    def described(self) -> dict | None:
        return None  # made for the graph's window, so it always fits

    def spec(self):
        from studio.train.config import SourceSpec

        return SourceSpec.of(self.source.kind, None, {key: spin.value() for key, spin in self.spins.items()})


class ImportForm:
    """Imported bars: chosen through the import dialog, shown as one line (name, sizes, features)."""

    def __init__(self, panel, source, rows: QFormLayout) -> None:
        self.panel, self.source = panel, source
        self.path, self.settings = "", {}
        #: panel.describe() of the imported bars (from the import dialog), for the fit check
        self.bars: dict | None = None
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        rows.addRow(self.label)

    def choose(self) -> bool:
        """Open the import dialog; False when it ends with no bars to train on."""
        dialog = ImportDialog(self.panel, self.settings, self.path)
        if dialog.exec():
            self.use(dialog.path.text().strip(), dialog.settings(), dialog.described)
        return bool(self.path)

    def use(self, path: str, settings: dict, described: dict | None) -> None:
        self.path, self.settings, self.bars = path, dict(settings), described

    def show_chosen(self, chosen: bool) -> None:
        text = ""
        if chosen:
            text = f"Imported: {Path(self.path).name or self.path}"
            d = self.bars
            if d:
                text += (f" ({d['symbols']} symbols, {d['dates']} dates, {d['bars_per_day']} bars a day; "
                         f"{', '.join(d['features'])})")
            text = printable(text)
            self.label.setToolTip(printable(self.path))
        self.label.setText(text)

    def described(self) -> dict | None:
        return self.bars

    def spec(self):
        from studio.train.config import SourceSpec

        return SourceSpec.of(self.source.kind, self.path, self.settings) if self.path else None


#: the data form of a kind of source (studio.train.data_sources.DATA_SOURCES); any other kind gets a
#: SettingsForm of its declared settings
SOURCE_FORMS = {"import": ImportForm, "qlib": QlibForm}


class TrainingPanel(QWidget):
    """Data source, settings, Start / Stop and progress of one run at a time."""

    record = Signal(object)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.worker: TrainingWorker | None = None
        #: called once the worker thread has ended (a quit that waits for the run to stop)
        self._after_stop: list = []
        self.runs_dir = Path(os.environ.get("STUDIO_RUNS_DIR", "runs"))
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        # a fixed header: Start, Stop, progress, the last word and whether the data fits stay in view
        # however far the settings below are scrolled
        self.header = QWidget()
        self.header.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._add_run_controls(QVBoxLayout(self.header))
        outer.addWidget(self.header)
        self.scroll = QScrollArea()  # a short dock scrolls the settings instead of clipping them
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        layout = QVBoxLayout(body)
        self.scroll.setWidget(body)
        outer.addWidget(self.scroll, 1)
        layout.addWidget(self._data_group())
        layout.addWidget(self._training_group())
        layout.addStretch(1)
        self._steps_done = 0
        self._watched = None  # the document whose edits re-check the fit
        self._fill_bars_per_day()
        window.tabs.currentChanged.connect(lambda _: self._watch_current())
        self._watch_current()

    def _add_run_controls(self, run_controls: QVBoxLayout) -> None:
        """Start, Stop, the progress bar, the status line and the fit message with its two fixes."""
        buttons = QHBoxLayout()
        self.start_button, self.stop_button = QPushButton("Start"), QPushButton("Stop")
        # a colour when they can be pressed, the palette's faded grey when not
        self.start_button.setStyleSheet("QPushButton:enabled { background: #2f6b3a; color: white; }")
        self.stop_button.setStyleSheet("QPushButton:enabled { background: #8a3232; color: white; }")
        self.start_button.setToolTip("Train the current tab's graph (Ctrl+R)")
        self.stop_button.setToolTip("Stop within about a second; the run keeps its best epoch and "
                                    "studio train --resume continues it (Ctrl+.)")
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
        run_controls.addWidget(self._fit_box())

    def _fit_box(self) -> QWidget:
        """Does the chosen data fit the graph's bar window? Said before Start, with a fix a click away."""
        self.fit_box = QWidget()
        fit_column = QVBoxLayout(self.fit_box)
        fit_column.setContentsMargins(0, 0, 0, 0)
        self.fit_message = QLabel()
        self.fit_message.setWordWrap(True)
        self.fit_message.setTextFormat(Qt.TextFormat.PlainText)
        self.fit_message.setStyleSheet("color: #e0a030")
        fit_column.addWidget(self.fit_message)
        self.resample_button, self.set_window_button = QPushButton(), QPushButton()
        self.set_features_button = QPushButton()
        self.resample_button.setToolTip("Train on the data resampled to this many bars a day; the run's "
                                        "graph reads as many (the graph file stays as it is)")
        self.set_window_button.setToolTip("Change the graph's bar window to the data's bars per day "
                                          "(an edit of the graph: Ctrl+Z takes it back)")
        self.set_features_button.setToolTip("Have the graph's bar window read only the features the data has "
                                            "(an edit of the graph: Ctrl+Z takes it back)")
        self.resample_button.clicked.connect(self._resample_to_fit)
        self.set_window_button.clicked.connect(self._set_window_to_data)
        self.set_features_button.clicked.connect(self._set_features_to_data)
        for button in (self.resample_button, self.set_window_button, self.set_features_button):
            fit_column.addWidget(button)
        self.fit_box.hide()
        return self.fit_box

    def _data_group(self) -> QGroupBox:
        """One entry per declared data source in the list, each source's form below it, and the bars
        per day the run trains on."""
        data = QGroupBox("Data")
        data_form = QFormLayout(data)
        self.source = QComboBox()
        self.source.addItems([source.title for source in DATA_SOURCES.values()])
        self.source.activated.connect(self._source_chosen)
        data_form.addRow(self.source)
        self.forms = {kind: SOURCE_FORMS.get(kind, SettingsForm)(self, source, data_form)
                      for kind, source in DATA_SOURCES.items()}
        # the synthetic market's settings and the import's line, by the names the tests use
        synthetic = self.forms["synthetic"].spins
        self.stocks, self.days, self.data_seed = synthetic["stocks"], synthetic["days"], synthetic["seed"]
        self.import_label = self.forms["import"].label
        # the window's control for `studio train --bars-per-day`: imported bars resampled for the run
        self.bars_per_day = QComboBox()
        self.bars_per_day.setToolTip("bars per day the run trains on: the graph's own, or a divisor of the "
                                     "data's (the data is resampled to it and the run's graph reads as many)")
        self.bars_per_day.currentIndexChanged.connect(lambda _: self.check_fit())
        data_form.addRow("bars per day", self.bars_per_day)
        return data

    def _training_group(self) -> QGroupBox:
        train = QGroupBox("Training")
        form = QFormLayout(train)
        self.epochs, self.batch, self.patience, self.seed = QSpinBox(), QSpinBox(), QSpinBox(), QSpinBox()
        self.epochs.setRange(1, 10_000)
        self.epochs.setValue(20)
        # 0 reads "auto": the engine picks the most dates (up to 4) whose step fits the free memory
        self.batch.setRange(0, 256)
        self.batch.setSpecialValueText("auto")
        self.batch.setValue(0)
        self.patience.setRange(0, 1000)
        self.patience.setValue(5)
        self.seed.setRange(0, 10**6)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(2e-3)
        self.loss, self.optimizer, self.device = QComboBox(), QComboBox(), QComboBox()
        self.loss.addItems(sorted(LOSSES, key=lambda name: name != TrainConfig.loss))  # the default first
        self.optimizer.addItems(sorted(OPTIMIZERS, key=lambda name: name != TrainConfig.optimizer))
        self.device.addItems(["auto", "cpu", "cuda"])
        for label, widget, tip in (
            ("epochs", self.epochs, "passes over the training dates"),
            ("dates per batch", self.batch, "whole cross-sections of this many dates per step; auto: the "
             "most, up to 4, whose step fits half the free memory (a number that cannot fit is refused)"),
            ("learning rate", self.lr, ""),
            ("loss", self.loss, "ic: minus the per-date correlation; mse; rank: pairwise ranking"),
            ("optimiser", self.optimizer, ""),
            ("early stopping", self.patience, "epochs without a better validation IC (0: off)"),
            ("seed", self.seed, "initial weights, shuffling and dropout"),
            ("device", self.device, "auto uses a GPU when there is one"),
        ):
            widget.setToolTip(tip)
            form.addRow(label, widget)
        return train

    # ---- settings ----------------------------------------------------------------------------
    def chosen_form(self):
        """The form of the source chosen in the data form's list."""
        return list(self.forms.values())[max(self.source.currentIndex(), 0)]

    def _source_chosen(self, index: int) -> None:
        if not self.chosen_form().choose():
            self.source.setCurrentIndex(0)
        self._source_changed()

    def use_import(self, path: str, settings: dict, described: dict | None) -> None:
        """Train on the bars at ``path`` (read with ``settings``; ``described`` is what the dialog found)."""
        self.forms["import"].use(path, settings, described)
        self.source.setCurrentIndex(list(self.forms).index("import"))
        self._source_changed()

    def _source_changed(self) -> None:
        chosen = self.chosen_form()
        for form in self.forms.values():
            form.show_chosen(form is chosen)
        self._fill_bars_per_day()
        self.check_fit()

    # ---- does the data fit the graph? --------------------------------------------------------
    def _data_bars_per_day(self) -> int | None:
        described = self.chosen_form().described()
        return int(described["bars_per_day"]) if described else None  # None: made at the graph's window

    def _fill_bars_per_day(self) -> None:
        """The graph's own, then every divisor of the data's bars per day (imported bars only)."""
        have = self._data_bars_per_day()
        chosen = self.bars_per_day.currentData()
        self.bars_per_day.blockSignals(True)
        self.bars_per_day.clear()
        self.bars_per_day.addItem("the graph's window", None)
        for n in divisors(have) if have else []:
            self.bars_per_day.addItem(f"{n}" + (" (the data's)" if n == have else f" ({have // n} bars each)"), n)
        index = self.bars_per_day.findData(chosen) if chosen is not None else 0
        self.bars_per_day.setCurrentIndex(max(index, 0))
        self.bars_per_day.setEnabled(have is not None)
        self.bars_per_day.blockSignals(False)

    def _watch_current(self) -> None:
        """Re-check the fit whenever the current tab's document changes (its window may have)."""
        tab = self.window.current_tab()
        document = tab.document if tab is not None else None
        if document is self._watched:
            self.check_fit()
            return
        if self._watched is not None and shiboken6.isValid(self._watched):
            with contextlib.suppress(RuntimeError, TypeError):  # already gone with its tab
                self._watched.changed.disconnect(self._document_changed)
        self._watched = document
        if document is not None:
            document.changed.connect(self._document_changed)
        self.check_fit()

    def _document_changed(self, _change) -> None:
        self.check_fit()

    def training_graph(self):
        """The current tab's graph as the run will read it: a copy at the bars per day chosen here."""
        tab = self.window.current_tab()
        if tab is None:
            return None
        graph = tab.document.graph
        chosen = self.bars_per_day.currentData()
        if chosen is None or graph.input is None or graph.input.bars_per_day == chosen:
            return graph
        graph = graph.copy()
        graph.input.bars_per_day = chosen
        return graph

    def fit_problem(self) -> str | None:
        """Why the chosen data cannot feed the current graph (and sets the fixes' buttons), or None."""
        self.resample_button.hide()
        self.set_window_button.hide()
        self.set_features_button.hide()
        tab = self.window.current_tab()
        have = self._data_bars_per_day()
        if tab is None or have is None or tab.document.graph.input is None:
            return None
        spec = tab.document.graph.input
        want = self.bars_per_day.currentData() or spec.bars_per_day
        described = self.chosen_form().described()
        missing = missing_features(list(spec.features), list(described["features"]), described.get("notes", []))
        if missing:
            # close-only data under a graph that reads volume: reading what the data has is one click
            kept = [f for f in spec.features if f in described["features"]]
            if kept:
                self.set_features_button.setText(f"Set graph features to {', '.join(kept)}")
                self.set_features_button.setProperty("features", kept)
                self.set_features_button.show()
            return (f"{missing[0].upper()}{missing[1:]}. Set the features of the graph's bar window (select its "
                    "input node) to ones the data has.")
        if want == have or (want < have and have % want == 0):
            if want != spec.bars_per_day:
                graph = self.training_graph()
                v = validate(graph, tab.document.registry)
                if not v.ok:
                    return f"At {want} bars a day the graph does not fit: {v.errors[0]}"
            return None
        nearest = min(divisors(have), key=lambda n: (abs(n - spec.bars_per_day), -n))
        self.resample_button.setText(f"Resample data to {nearest} bars/day")
        self.resample_button.setProperty("bars_per_day", nearest)
        self.set_window_button.setText(f"Set graph window to {have} bars/day")
        self.resample_button.show()
        self.set_window_button.show()
        return (f"The graph reads {spec.bars_per_day} bars a day, the data has {have}: "
                f"resample the data to a divisor of {have}, or set the graph's window to {have}.")

    def check_fit(self) -> str | None:
        """Say before Start whether the data fits the graph; returns the reason it does not."""
        if not shiboken6.isValid(self.fit_message):
            return None
        reason = self.fit_problem()
        self.fit_message.setText(reason or "")
        self.fit_box.setVisible(reason is not None)
        return reason

    def _resample_to_fit(self) -> None:
        n = self.resample_button.property("bars_per_day")
        index = self.bars_per_day.findData(n)
        if index >= 0:
            self.bars_per_day.setCurrentIndex(index)  # re-checks the fit
            self.status.setText(f"The run trains on the data resampled to {n} bars a day.")

    def _set_window_to_data(self) -> None:
        tab, have = self.window.current_tab(), self._data_bars_per_day()
        if tab is None or have is None:
            return
        self.bars_per_day.setCurrentIndex(0)  # the graph's own window, which now is the data's
        tab.document.edit(f"Set input bars_per_day to {have}", lambda g: set_input_window(g, bars_per_day=have))
        self.status.setText(f"The graph's window now reads {have} bars a day (Ctrl+Z takes it back).")

    def _set_features_to_data(self) -> None:
        tab, features = self.window.current_tab(), self.set_features_button.property("features")
        if tab is None or not features:
            return
        features = list(features)
        tab.document.edit(f"Set input features to {', '.join(features)}",
                          lambda g: set_input_window(g, features=features))
        self.status.setText(f"The graph now reads {', '.join(features)} (Ctrl+Z takes it back).")

    def source_spec(self):
        """The chosen source's spec; the first source's while the chosen one has nothing to read."""
        return self.chosen_form().spec() or next(iter(self.forms.values())).spec()

    def train_config(self):
        from studio.train.config import TrainConfig

        return TrainConfig(epochs=self.epochs.value(), dates_per_batch=self.batch.value() or "auto", lr=self.lr.value(),
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
        elif self.check_fit() is not None:
            reason = f"Cannot train: {self.fit_message.text()}"
        if reason is not None:
            self.status.setText(reason)
            # where the user looks: the status bar, and the training panel brought to the front
            self.window.statusBar().showMessage(reason, 15000)
            dock = self.window.docks["training"]
            dock.show()
            dock.raise_()
            return False
        self.worker = TrainingWorker(self.training_graph(), self.source_spec(), self.train_config(), self.runs_dir,
                                     self)
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

    def stop(self, wait: bool = False, then=None) -> None:
        """Stop the run: the engine ends it within about a second and closes it as stopped, its best
        epoch kept. ``then``: called on the GUI thread once the worker thread has ended (at once when
        none runs). ``wait``: block until it has ended, with no time limit: a QThread destroyed while it
        runs aborts the whole process."""
        worker = self.worker
        if worker is None or not worker.isRunning():
            if then is not None:
                QTimer.singleShot(0, then)
            return
        if then is not None:
            self._after_stop.append(then)
        worker.stop()
        self.status.setText("Stopping…")
        if wait:
            worker.wait()

    def _on_record(self, record: dict) -> None:
        kind = record["kind"]
        if kind == "start":
            self.total_steps = record["steps_per_epoch"] * record["epochs"]
            oracle = record["oracle_ic"].get("test")
            self.status.setText(f"Training {self.graph_name}: {record['parameters']:,} parameters on "
                                f"{record['device']}" + (f"; oracle test IC {oracle:.3f}" if oracle else "")
                                + f"; {record['batch']}")
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
        worker = self.sender()
        if isinstance(worker, QThread):
            worker.wait()  # finished() is emitted just before the thread has ended: let it end
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        waiting, self._after_stop = self._after_stop, []
        for then in waiting:
            then()


def wire_training(window) -> None:
    """Connect the training panel, the plots, the runs table and the queue (their docks are declared
    in studio.gui.docks and made by the window) and add the Train menu's actions."""
    panel, plots, runs, queue = window.training, window.plots, window.runs, window.queue
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
    start = QAction("&Start Training", window)
    start.setShortcut(QKeySequence("Ctrl+R"))
    start.triggered.connect(lambda: panel.start() and window.docks["training"].raise_())
    stop = QAction("S&top Training", window)
    stop.setShortcut(QKeySequence("Ctrl+."))
    stop.triggered.connect(lambda: panel.stop())
    for action in (start, stop):
        window.train_menu.addAction(action)
        window.addAction(action)
    QTimer.singleShot(0, runs.refresh)
